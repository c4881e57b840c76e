//! DTMF carried in SIP INFO bodies: `application/dtmf-relay` (`Signal=5`,
//! `Duration=160` lines) and `application/dtmf` (the bare key).

use super::digit_to_event;

/// Duration assumed when the body names none.
pub const DEFAULT_INFO_DURATION_MS: u32 = 100;

/// A key parsed from an INFO body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoDigit {
    /// One of `0-9 * # A-D` (upper case).
    pub digit: char,
    pub duration_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoDtmfError {
    #[error("content type {0:?} does not carry DTMF")]
    NotDtmf(String),
    #[error("no key in the INFO body")]
    NoSignal,
    #[error("invalid key {0:?} in the INFO body")]
    InvalidSignal(String),
}

/// Whether an INFO with this `Content-Type` carries DTMF.
pub fn is_dtmf_content_type(content_type: &str) -> bool {
    matches!(
        media_type(content_type).as_str(),
        "application/dtmf-relay" | "application/dtmf"
    )
}

/// Parses the key of an INFO body of type `content_type` (parameters after
/// `;` are ignored, case-insensitive).
pub fn parse_info(content_type: &str, body: &[u8]) -> Result<InfoDigit, InfoDtmfError> {
    let text = String::from_utf8_lossy(body);
    match media_type(content_type).as_str() {
        "application/dtmf-relay" => parse_relay(&text),
        "application/dtmf" => {
            // The bare key; some senders add a line break or a Duration line.
            let first = text.lines().map(str::trim).find(|l| !l.is_empty());
            let first = first.ok_or(InfoDtmfError::NoSignal)?;
            if first.contains('=') {
                return parse_relay(&text);
            }
            Ok(InfoDigit {
                digit: key(first)?,
                duration_ms: DEFAULT_INFO_DURATION_MS,
            })
        }
        other => Err(InfoDtmfError::NotDtmf(other.to_string())),
    }
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn parse_relay(text: &str) -> Result<InfoDigit, InfoDtmfError> {
    let mut digit = None;
    let mut duration_ms = DEFAULT_INFO_DURATION_MS;
    for line in text.lines() {
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "signal" => digit = Some(key(value.trim())?),
            "duration" => {
                if let Ok(ms) = value.trim().parse::<u32>() {
                    // Nonsense durations are clamped, not trusted.
                    duration_ms = ms.clamp(1, 60_000);
                }
            }
            _ => {}
        }
    }
    Ok(InfoDigit {
        digit: digit.ok_or(InfoDtmfError::NoSignal)?,
        duration_ms,
    })
}

/// A key as written: `0-9 * # A-D` (any case), or the event codes 10-15
/// some gateways write for `* # A-D`.
fn key(value: &str) -> Result<char, InfoDtmfError> {
    let invalid = || InfoDtmfError::InvalidSignal(value.chars().take(16).collect());
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => digit_to_event(c)
            .and_then(super::event_to_digit)
            .ok_or_else(invalid),
        _ => match value.parse::<u8>() {
            Ok(code @ 10..=15) => super::event_to_digit(code).ok_or_else(invalid),
            _ => Err(invalid()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_bodies() {
        let d = parse_info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n").unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: '5',
                duration_ms: 160
            }
        );
        let d = parse_info(
            "Application/DTMF-Relay; charset=x",
            b"Signal= #\nDuration= 250",
        )
        .unwrap();
        assert_eq!(
            d,
            InfoDigit {
                digit: '#',
                duration_ms: 250
            }
        );
        let d = parse_info("application/dtmf-relay", b"signal=a").unwrap();
        assert_eq!(d.digit, 'A');
        assert_eq!(d.duration_ms, DEFAULT_INFO_DURATION_MS);
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=10")
                .unwrap()
                .digit,
            '*'
        );
        assert_eq!(
            parse_info("application/dtmf-relay", b"Signal=11\r\n")
                .unwrap()
                .digit,
            '#'
        );
    }

    #[test]
    fn dtmf_bodies() {
        assert_eq!(parse_info("application/dtmf", b"7").unwrap().digit, '7');
        assert_eq!(
            parse_info("application/dtmf", b"\r\n*\r\n").unwrap().digit,
            '*'
        );
        assert_eq!(
            parse_info("application/dtmf", b"Signal=9\r\nDuration=80").unwrap(),
            InfoDigit {
                digit: '9',
                duration_ms: 80
            }
        );
    }

    #[test]
    fn bad_bodies_are_errors() {
        assert_eq!(
            parse_info("application/dtmf-relay", b"Duration=100"),
            Err(InfoDtmfError::NoSignal)
        );
        assert!(matches!(
            parse_info("application/dtmf-relay", b"Signal=x"),
            Err(InfoDtmfError::InvalidSignal(_))
        ));
        assert!(matches!(
            parse_info("application/dtmf-relay", b"Signal=16"),
            Err(InfoDtmfError::InvalidSignal(_))
        ));
        assert!(matches!(
            parse_info("application/dtmf", b""),
            Err(InfoDtmfError::NoSignal)
        ));
        assert!(matches!(
            parse_info("application/sdp", b"v=0"),
            Err(InfoDtmfError::NotDtmf(_))
        ));
        assert!(matches!(
            parse_info("application/dtmf", &[0xff, 0xfe]),
            Err(InfoDtmfError::InvalidSignal(_))
        ));
        assert!(is_dtmf_content_type("application/dtmf-relay;x=y"));
        assert!(!is_dtmf_content_type("text/plain"));
    }
}
