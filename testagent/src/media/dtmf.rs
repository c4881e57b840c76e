//! DTMF: RFC 4733 telephone-event payloads and the in-band tone pairs.

use crate::error::{AgentError, Result};

/// The RFC 4733 event code of a DTMF digit (`0-9 * # A-D`).
pub fn event_code(digit: char) -> Result<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Ok(d as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        d @ 'A'..='D' => Ok(d as u8 - b'A' + 12),
        other => Err(AgentError::InvalidDigit(other)),
    }
}

/// The digit of an RFC 4733 event code; `None` for non-DTMF events.
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some((b'0' + event) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + event - 12) as char),
        _ => None,
    }
}

/// Parses and validates a digit string.
pub fn event_codes(digits: &str) -> Result<Vec<u8>> {
    digits.chars().map(event_code).collect()
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPayload {
    pub event: u8,
    pub end: bool,
    /// Power level as -dBm0 (0..=63).
    pub volume: u8,
    /// In timestamp units since the event began.
    pub duration: u16,
}

impl EventPayload {
    pub fn parse(payload: &[u8]) -> Option<EventPayload> {
        if payload.len() < 4 {
            return None;
        }
        Some(EventPayload {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3f,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    pub fn write(&self) -> [u8; 4] {
        let [hi, lo] = self.duration.to_be_bytes();
        let flags = if self.end { 0x80 } else { 0 } | (self.volume & 0x3f);
        [self.event, flags, hi, lo]
    }
}

/// The (low, high) frequencies of a digit's in-band tone pair (Q.23).
pub fn tone_pair(event: u8) -> Option<(f32, f32)> {
    const LOW: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const HIGH: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    // Keypad position (row, column) of each event code 0..=15.
    let (row, column) = match event {
        1 => (0, 0),
        2 => (0, 1),
        3 => (0, 2),
        12 => (0, 3),
        4 => (1, 0),
        5 => (1, 1),
        6 => (1, 2),
        13 => (1, 3),
        7 => (2, 0),
        8 => (2, 1),
        9 => (2, 2),
        14 => (2, 3),
        10 => (3, 0),
        0 => (3, 1),
        11 => (3, 2),
        15 => (3, 3),
        _ => return None,
    };
    Some((LOW[row], HIGH[column]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_both_ways() {
        for digit in "0123456789*#ABCD".chars() {
            let code = event_code(digit).expect("valid digit");
            assert_eq!(digit_of(code), Some(digit));
            assert!(tone_pair(code).is_some());
        }
        assert_eq!(event_code('a').ok(), Some(12));
        assert!(matches!(
            event_code('x'),
            Err(AgentError::InvalidDigit('X'))
        ));
        assert_eq!(digit_of(16), None);
        assert_eq!(tone_pair(11), Some((941.0, 1477.0)));
    }

    #[test]
    fn payload_round_trip() {
        let payload = EventPayload {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(payload.write(), [11, 0x8a, 3, 0x20]);
        assert_eq!(EventPayload::parse(&payload.write()), Some(payload));
        assert_eq!(EventPayload::parse(&[1, 2, 3]), None);
    }
}
