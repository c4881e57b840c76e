//! One key press, however many transports carry it: a phone may send the
//! same key as RFC 4733 events, a SIP INFO and in-band tones at once. Each
//! transport on its own reports every press once; across transports, a
//! key whose press started within [`MATCH_WINDOW_MS`] of the same key from
//! another transport is the same press and is dropped. The first transport
//! to report a press wins (its source tags the digit).

use crate::{DtmfDigit, DtmfSource};

/// Presses of the same key from two transports starting this close are one.
pub const MATCH_WINDOW_MS: u64 = 500;
/// Recent presses remembered.
const RECENT: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Press {
    digit: char,
    started_ms: u64,
    /// Transports that reported this press (bit per source).
    sources: u8,
}

fn bit(source: DtmfSource) -> u8 {
    match source {
        DtmfSource::Rfc4733 => 1,
        DtmfSource::SipInfo => 2,
        DtmfSource::Inband => 4,
    }
}

/// Merges one leg's digits across transports.
#[derive(Debug, Clone, Default)]
pub struct DtmfDedup {
    recent: [Option<Press>; RECENT],
    next: usize,
}

impl DtmfDedup {
    pub fn new() -> DtmfDedup {
        DtmfDedup::default()
    }

    /// A digit reported at `now_ms`. Returns it if it is a new press, `None`
    /// if another transport reported the same press already. Digits reported
    /// at their end (RFC 4733, in-band) started `duration_ms` earlier; INFO
    /// digits arrive as the key goes down.
    pub fn accept(&mut self, digit: DtmfDigit, now_ms: u64) -> Option<DtmfDigit> {
        let started_ms = match digit.source {
            DtmfSource::SipInfo => now_ms,
            DtmfSource::Rfc4733 | DtmfSource::Inband => {
                now_ms.saturating_sub(u64::from(digit.duration_ms))
            }
        };
        let me = bit(digit.source);
        let same_press = self.recent.iter_mut().flatten().find(|p| {
            p.digit == digit.digit
                && p.sources & me == 0
                && p.started_ms.abs_diff(started_ms) <= MATCH_WINDOW_MS
        });
        if let Some(press) = same_press {
            press.sources |= me;
            return None;
        }
        self.recent[self.next] = Some(Press {
            digit: digit.digit,
            started_ms,
            sources: me,
        });
        self.next = (self.next + 1) % RECENT;
        Some(digit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(digit: char, source: DtmfSource, duration_ms: u32) -> DtmfDigit {
        DtmfDigit {
            digit,
            source,
            duration_ms,
        }
    }

    #[test]
    fn same_press_over_three_transports_counts_once() {
        let mut dd = DtmfDedup::new();
        // INFO when the key goes down, in-band and RFC 4733 at its end.
        assert!(dd.accept(d('5', DtmfSource::SipInfo, 100), 1000).is_some());
        assert!(dd.accept(d('5', DtmfSource::Inband, 120), 1130).is_none());
        assert!(dd.accept(d('5', DtmfSource::Rfc4733, 100), 1150).is_none());
    }

    #[test]
    fn repeated_key_on_one_transport_counts_every_time() {
        let mut dd = DtmfDedup::new();
        for k in 0..4u64 {
            assert!(dd
                .accept(d('1', DtmfSource::Rfc4733, 100), 1000 + k * 200)
                .is_some());
        }
    }

    #[test]
    fn a_double_press_over_two_transports_is_two_presses() {
        let mut dd = DtmfDedup::new();
        let mut kept = Vec::new();
        // "11": each press arrives over INFO (down) and RFC 4733 (end).
        for (src, at, dur) in [
            (DtmfSource::SipInfo, 1000, 100),
            (DtmfSource::Rfc4733, 1110, 100),
            (DtmfSource::SipInfo, 1300, 100),
            (DtmfSource::Rfc4733, 1410, 100),
        ] {
            if let Some(x) = dd.accept(d('1', src, dur), at) {
                kept.push(x.source);
            }
        }
        assert_eq!(kept, vec![DtmfSource::SipInfo, DtmfSource::SipInfo]);
    }

    #[test]
    fn different_keys_and_far_apart_presses_are_distinct() {
        let mut dd = DtmfDedup::new();
        assert!(dd.accept(d('1', DtmfSource::SipInfo, 100), 1000).is_some());
        assert!(dd.accept(d('2', DtmfSource::Rfc4733, 100), 1100).is_some());
        assert!(dd.accept(d('1', DtmfSource::Rfc4733, 100), 5000).is_some());
    }
}
