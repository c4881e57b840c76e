//! DTMF, one pipeline for every way a key press arrives:
//!
//! - RFC 4733 telephone-events (this module): the payload format, a receiver
//!   that reports each key press exactly once at any clock rate, and the
//!   per-tick schedule for sending digits (as events, or as in-band tones
//!   when no event payload type was negotiated);
//! - in-band tones: [`inband::InbandDetector`], a Goertzel detector after
//!   ITU-T Q.24;
//! - SIP INFO bodies: [`info::parse_info`];
//! - [`dedup::DtmfDedup`] merges them so a key sent over two transports at
//!   once counts once, tagged with the transport that got there first.

pub mod dedup;
pub mod inband;
pub mod info;

use crate::{DtmfDigit, DtmfSource};

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code; 0-15 are the DTMF keys.
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// Bytes of one telephone-event payload.
pub const EVENT_LEN: usize = 4;

impl TelephoneEvent {
    /// Parses the first event of a payload.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b = payload.get(..EVENT_LEN)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the payload into `buf[..4]`; `None` if `buf` is too short.
    pub fn write(&self, buf: &mut [u8]) -> Option<usize> {
        let b = buf.get_mut(..EVENT_LEN)?;
        b[0] = self.event;
        b[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        b[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Some(EVENT_LEN)
    }
}

/// `0-9 * # A-D` for events 0-15.
pub fn event_to_digit(event: u8) -> Option<char> {
    const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
    DIGITS.get(usize::from(event)).map(|&d| char::from(d))
}

/// The event code of a DTMF key (`a-d` accepted as `A-D`).
pub fn digit_to_event(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The (low, high) frequencies of a key's tone pair.
pub fn event_frequencies(event: u8) -> Option<(f32, f32)> {
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    // Keypad position (row, column) of events 0-15.
    const POS: [(usize, usize); 16] = [
        (3, 1), // 0
        (0, 0),
        (0, 1),
        (0, 2),
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
        (3, 0), // *
        (3, 2), // #
        (0, 3), // A
        (1, 3),
        (2, 3),
        (3, 3), // D
    ];
    POS.get(usize::from(event))
        .map(|&(r, c)| (ROWS[r], COLS[c]))
}

/// How many finished events are remembered to ignore their retransmissions.
const RECENT: usize = 4;
/// A duration this close to the 16-bit limit means the sender will continue
/// the same key press in a new segment (RFC 4733 §2.5.1.3).
const SEGMENT_LIMIT: u16 = 0xFF00;

#[derive(Debug, Clone, Copy)]
struct Current {
    ts: u32,
    event: u8,
    /// Duration of earlier segments of a very long press.
    earlier: u32,
    duration: u16,
    last_seen_ms: u64,
}

/// Turns received telephone-event packets into key presses: exactly one
/// digit per event (an event is identified by its RTP timestamp).
///
/// - Retransmitted end packets are counted once.
/// - A press whose first packets were lost still counts.
/// - A press whose end packets were lost is reported when the next event
///   starts or after `timeout_ms` without packets.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    clock_rate: u32,
    timeout_ms: u64,
    current: Option<Current>,
    recent: [Option<u32>; RECENT],
    recent_next: usize,
    /// When the last event packet arrived.
    last_packet_ms: Option<u64>,
}

/// An event counts as sounding this long after its last packet (so the
/// audio around it stays out of a conference mix too).
const SOUNDING_AFTER_MS: u64 = 60;

impl DtmfReceiver {
    pub fn new(clock_rate: u32, timeout_ms: u64) -> DtmfReceiver {
        DtmfReceiver {
            clock_rate: clock_rate.max(1),
            timeout_ms,
            current: None,
            recent: [None; RECENT],
            recent_next: 0,
            last_packet_ms: None,
        }
    }

    /// Whether a key is being pressed (an event started and has not
    /// ended, or ended moments ago).
    pub fn in_progress(&self, now_ms: u64) -> bool {
        self.current.is_some()
            || self
                .last_packet_ms
                .is_some_and(|t| now_ms.saturating_sub(t) < SOUNDING_AFTER_MS)
    }

    /// Handles one telephone-event packet received at `now_ms`.
    pub fn on_packet(
        &mut self,
        ts: u32,
        ev: TelephoneEvent,
        now_ms: u64,
        mut emit: impl FnMut(DtmfDigit),
    ) {
        if ev.event > 15 {
            return;
        }
        self.last_packet_ms = Some(now_ms);
        if self.recent.contains(&Some(ts)) {
            return;
        }
        let mut cur = match self.current.take() {
            Some(cur) if cur.ts == ts => cur,
            Some(cur) if cur.event == ev.event && cur.duration >= SEGMENT_LIMIT => {
                // The same long press continued under a new timestamp.
                self.remember(cur.ts);
                Current {
                    ts,
                    earlier: cur.earlier + u32::from(cur.duration),
                    duration: 0,
                    ..cur
                }
            }
            previous => {
                if let Some(prev) = previous {
                    // Its end packets never came: the new event ends it.
                    self.finish(prev, &mut emit);
                }
                Current {
                    ts,
                    event: ev.event,
                    earlier: 0,
                    duration: 0,
                    last_seen_ms: now_ms,
                }
            }
        };
        cur.duration = cur.duration.max(ev.duration);
        cur.last_seen_ms = now_ms;
        if ev.end {
            self.finish(cur, &mut emit);
        } else {
            self.current = Some(cur);
        }
    }

    /// Reports a press whose end never came once it has been quiet too long.
    pub fn poll(&mut self, now_ms: u64, mut emit: impl FnMut(DtmfDigit)) {
        if let Some(cur) = self.current {
            if now_ms.saturating_sub(cur.last_seen_ms) >= self.timeout_ms {
                self.current = None;
                self.finish(cur, &mut emit);
            }
        }
    }

    fn finish(&mut self, cur: Current, emit: &mut impl FnMut(DtmfDigit)) {
        self.remember(cur.ts);
        if let Some(digit) = event_to_digit(cur.event) {
            let units = u64::from(cur.earlier) + u64::from(cur.duration);
            emit(DtmfDigit {
                digit,
                source: DtmfSource::Rfc4733,
                duration_ms: (units * 1000 / u64::from(self.clock_rate)) as u32,
            });
        }
    }

    fn remember(&mut self, ts: u32) {
        self.recent[self.recent_next] = Some(ts);
        self.recent_next = (self.recent_next + 1) % RECENT;
    }
}

/// Ticks of tone (event packets) per digit: 100 ms.
pub const TONE_TICKS: u32 = 5;
/// End packets sent per event (the last one repeated).
pub const END_PACKETS: u32 = 3;
/// Ticks per digit including the silent gap after it: 200 ms.
pub const DIGIT_TICKS: u32 = 10;
/// Volume of sent events, -dBm0.
pub const EVENT_VOLUME: u8 = 10;
/// Peak amplitude of each in-band tone (two tones sum to about -7 dBFS).
const INBAND_AMPLITUDE: f32 = 7000.0;

/// What a leg sends during one tick of a digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitStep {
    /// A telephone-event packet with the event's timestamp.
    Event {
        payload: TelephoneEvent,
        marker: bool,
        timestamp: u32,
    },
    /// Audio: in-band tone (already written to the frame) or gap silence.
    Audio,
}

/// Sends one digit over [`DIGIT_TICKS`] ticks: [`TONE_TICKS`] of event
/// updates every 20 ms, [`END_PACKETS`] end packets, silence for the rest.
#[derive(Debug, Clone, Copy)]
pub struct DigitSender {
    event: u8,
    tick: u32,
    start_ts: u32,
    inband: bool,
    /// RTP clock (and audio) rate of the leg.
    rate: u32,
}

impl DigitSender {
    /// `inband`: play the tone pair in the audio instead of sending events.
    /// For an 8 kHz leg; see [`DigitSender::with_rate`].
    pub fn new(event: u8, inband: bool) -> DigitSender {
        DigitSender::with_rate(event, inband, crate::CLOCK_RATE)
    }

    /// For a leg whose RTP clock (and audio) runs at `rate`: event
    /// durations count in its units, tones are written at its rate.
    pub fn with_rate(event: u8, inband: bool, rate: u32) -> DigitSender {
        DigitSender {
            event,
            tick: 0,
            start_ts: 0,
            inband,
            rate: rate.max(8000),
        }
    }

    /// The step for this tick, whose RTP timestamp is `media_ts`; writes the
    /// audio of the tick into `frame` (tone or silence) when the step is
    /// audio. `None` once the digit and its gap are over.
    pub fn next(&mut self, media_ts: u32, frame: &mut [i16]) -> Option<DigitStep> {
        if self.tick >= DIGIT_TICKS {
            return None;
        }
        let tick = self.tick;
        self.tick += 1;
        if tick == 0 {
            self.start_ts = media_ts;
        }
        if self.inband {
            match (tick < TONE_TICKS, event_frequencies(self.event)) {
                (true, Some((low, high))) => write_tone_pair(low, high, tick, self.rate, frame),
                _ => frame.fill(0),
            }
            return Some(DigitStep::Audio);
        }
        if tick >= TONE_TICKS + END_PACKETS - 1 {
            frame.fill(0);
            return Some(DigitStep::Audio);
        }
        let end = tick + 1 >= TONE_TICKS;
        let elapsed = (tick + 1).min(TONE_TICKS) * crate::frame_samples(self.rate) as u32;
        Some(DigitStep::Event {
            payload: TelephoneEvent {
                event: self.event,
                end,
                volume: EVENT_VOLUME,
                duration: elapsed.min(u32::from(u16::MAX)) as u16,
            },
            marker: tick == 0,
            timestamp: self.start_ts,
        })
    }
}

fn write_tone_pair(low: f32, high: f32, tick: u32, rate: u32, frame: &mut [i16]) {
    let first = tick as usize * crate::frame_samples(rate);
    let rate = rate as f32;
    for (i, s) in frame.iter_mut().enumerate() {
        let t = (first + i) as f32 / rate;
        let v = (std::f32::consts::TAU * low * t).sin() + (std::f32::consts::TAU * high * t).sin();
        *s = (v * INBAND_AMPLITUDE) as i16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    fn collect(rx: &mut DtmfReceiver, packets: &[(u32, TelephoneEvent, u64)]) -> Vec<(char, u32)> {
        let mut out = Vec::new();
        for &(ts, e, now) in packets {
            rx.on_packet(ts, e, now, |d| out.push((d.digit, d.duration_ms)));
        }
        out
    }

    #[test]
    fn payload_round_trip() {
        let e = ev(11, true, 800);
        let mut buf = [0u8; 4];
        assert_eq!(e.write(&mut buf), Some(4));
        assert_eq!(buf, [11, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&buf), Some(e));
        assert_eq!(TelephoneEvent::parse(&buf[..3]), None);
        assert_eq!(e.write(&mut [0u8; 3]), None);
    }

    #[test]
    fn digit_mapping() {
        let all: String = (0..16).map(|e| event_to_digit(e).unwrap()).collect();
        assert_eq!(all, "0123456789*#ABCD");
        assert_eq!(event_to_digit(16), None);
        for (e, d) in all.chars().enumerate() {
            assert_eq!(digit_to_event(d), Some(e as u8));
        }
        assert_eq!(digit_to_event('b'), Some(13));
        assert_eq!(digit_to_event('x'), None);
        assert_eq!(event_frequencies(1), Some((697.0, 1209.0)));
        assert_eq!(event_frequencies(0), Some((941.0, 1336.0)));
        assert_eq!(event_frequencies(11), Some((941.0, 1477.0)));
        assert_eq!(event_frequencies(16), None);
    }

    #[test]
    fn one_digit_per_event_with_retransmitted_ends() {
        let mut rx = DtmfReceiver::new(8000, 500);
        let got = collect(
            &mut rx,
            &[
                (1000, ev(5, false, 160), 0),
                (1000, ev(5, false, 320), 20),
                (1000, ev(5, false, 480), 40),
                (1000, ev(5, true, 800), 60),
                (1000, ev(5, true, 800), 80),
                (1000, ev(5, true, 800), 100),
            ],
        );
        assert_eq!(got, vec![('5', 100)]);
        // Nothing pending afterwards.
        let mut late = Vec::new();
        rx.poll(10_000, |d| late.push(d));
        assert!(late.is_empty());
    }

    #[test]
    fn same_digit_twice_is_two_events() {
        let mut rx = DtmfReceiver::new(8000, 500);
        let got = collect(
            &mut rx,
            &[
                (1000, ev(1, false, 160), 0),
                (1000, ev(1, true, 800), 80),
                (1000, ev(1, true, 800), 100),
                (2600, ev(1, false, 160), 200),
                (2600, ev(1, true, 800), 280),
                (2600, ev(1, true, 800), 300),
            ],
        );
        assert_eq!(got, vec![('1', 100), ('1', 100)]);
    }

    #[test]
    fn lost_start_still_counts() {
        let mut rx = DtmfReceiver::new(8000, 500);
        // Only the end packets arrive.
        let got = collect(
            &mut rx,
            &[(4000, ev(10, true, 960), 0), (4000, ev(10, true, 960), 20)],
        );
        assert_eq!(got, vec![('*', 120)]);
    }

    #[test]
    fn lost_end_reported_by_next_event() {
        let mut rx = DtmfReceiver::new(8000, 500);
        let got = collect(
            &mut rx,
            &[
                (1000, ev(2, false, 160), 0),
                (1000, ev(2, false, 480), 40),
                // The ends of '2' are lost; '3' starts.
                (3000, ev(3, false, 160), 200),
                (3000, ev(3, true, 800), 280),
            ],
        );
        assert_eq!(got, vec![('2', 60), ('3', 100)]);
    }

    #[test]
    fn lost_end_reported_after_timeout() {
        let mut rx = DtmfReceiver::new(8000, 500);
        assert!(collect(&mut rx, &[(1000, ev(9, false, 400), 0)]).is_empty());
        let mut got = Vec::new();
        rx.poll(499, |d| got.push(d.digit));
        assert!(got.is_empty());
        rx.poll(500, |d| got.push(d.digit));
        assert_eq!(got, vec!['9']);
        // A straggler of the same event afterwards is not a new press.
        assert!(collect(&mut rx, &[(1000, ev(9, true, 800), 600)]).is_empty());
    }

    #[test]
    fn non_dtmf_events_are_ignored() {
        let mut rx = DtmfReceiver::new(8000, 500);
        assert!(collect(&mut rx, &[(1000, ev(16, true, 800), 0)]).is_empty());
    }

    #[test]
    fn long_press_across_segments_is_one_digit() {
        let mut rx = DtmfReceiver::new(8000, 500);
        let got = collect(
            &mut rx,
            &[
                (1000, ev(4, false, 0xFFFF), 0),
                (1000 + 0xFFFF, ev(4, false, 800), 20),
                (1000 + 0xFFFF, ev(4, true, 1600), 40),
            ],
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, '4');
        assert_eq!(got[0].1, (0xFFFF + 1600) * 1000 / 8000);
    }

    #[test]
    fn sender_schedule_is_received_as_one_digit() {
        let mut tx = DigitSender::new(11, false);
        let mut rx = DtmfReceiver::new(8000, 500);
        let mut frame = [0i16; crate::FRAME_SAMPLES];
        let mut steps = Vec::new();
        let mut ts = 5000u32;
        while let Some(step) = tx.next(ts, &mut frame) {
            steps.push(step);
            ts = ts.wrapping_add(160);
        }
        assert_eq!(steps.len(), DIGIT_TICKS as usize);
        let events: Vec<TelephoneEvent> = steps
            .iter()
            .filter_map(|s| match s {
                DigitStep::Event {
                    payload, timestamp, ..
                } => {
                    assert_eq!(*timestamp, 5000);
                    Some(*payload)
                }
                DigitStep::Audio => None,
            })
            .collect();
        assert_eq!(events.len(), (TONE_TICKS + END_PACKETS - 1) as usize);
        assert_eq!(
            events.iter().filter(|e| e.end).count(),
            END_PACKETS as usize
        );
        assert!(matches!(steps[0], DigitStep::Event { marker: true, .. }));
        assert!(matches!(steps[1], DigitStep::Event { marker: false, .. }));
        let durations: Vec<u16> = events.iter().map(|e| e.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        let mut got = Vec::new();
        for (i, e) in events.iter().enumerate() {
            rx.on_packet(5000, *e, i as u64 * 20, |d| got.push(d));
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].digit, '#');
        assert_eq!(got[0].duration_ms, 100);
    }

    #[test]
    fn inband_sender_writes_the_tone_pair() {
        let mut tx = DigitSender::new(5, true);
        let mut frame = [0i16; crate::FRAME_SAMPLES];
        let mut tone = Vec::new();
        for t in 0..DIGIT_TICKS {
            assert_eq!(tx.next(t * 160, &mut frame), Some(DigitStep::Audio));
            if t < TONE_TICKS {
                tone.extend_from_slice(&frame);
            } else {
                assert!(frame.iter().all(|&s| s == 0));
            }
        }
        assert_eq!(tx.next(0, &mut frame), None);
        let p = |f| crate::analysis::goertzel_power(&tone, 8000, f);
        // '5' is 770 + 1336 Hz.
        assert!(p(770.0) > 100.0 * p(697.0));
        assert!(p(1336.0) > 100.0 * p(1209.0));
    }
}
