//! Everything received, as one 8 kHz timeline aligned to wall-clock time,
//! plus the RFC 4733 events.
//!
//! Sample `i` of the timeline is what was heard `i / 8000` s after the
//! media started. A stream is anchored where its first packet arrived and
//! then placed by RTP timestamp, so network and scheduling jitter do not
//! smear the audio; it is re-anchored when timestamp and arrival disagree
//! by more than [`REANCHOR_AFTER`] (a new talk spurt or a clock jump).
//! Gaps stay zeros, and the timeline runs up to "now" until the media stops.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::dtmf::{digit_of, EventPayload};
use crate::analysis::SAMPLE_RATE;

/// Disagreement between RTP timestamp and arrival that re-anchors a stream.
const REANCHOR_AFTER: i64 = SAMPLE_RATE as i64 / 2;

/// How a received digit was signalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// A SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    SipInfo,
}

/// One received digit (an RFC 4733 event counted once, however many
/// packets carried it).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedDtmf {
    pub digit: char,
    /// When its first packet arrived.
    pub at: Instant,
    /// Its last reported duration.
    pub duration: Duration,
    /// Whether an end packet was seen.
    pub ended: bool,
    pub volume: u8,
    pub source: DtmfSource,
}

#[derive(Debug, Clone, Copy)]
struct Anchor {
    timestamp: u32,
    position: i64,
}

pub(crate) struct Recorder {
    started: Instant,
    samples: Vec<i16>,
    anchors: HashMap<u32, Anchor>,
    stopped_at: Option<Instant>,
    dtmf: Vec<ReceivedDtmf>,
    /// (SSRC, event timestamp) of each RFC 4733 event → index in `dtmf`.
    dtmf_index: HashMap<(u32, u32), usize>,
    pub packets: u64,
}

impl Recorder {
    pub fn new(started: Instant) -> Recorder {
        Recorder {
            started,
            samples: Vec::new(),
            anchors: HashMap::new(),
            stopped_at: None,
            dtmf: Vec::new(),
            dtmf_index: HashMap::new(),
            packets: 0,
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Timeline position of `at`.
    pub fn position(&self, at: Instant) -> i64 {
        let elapsed = at.saturating_duration_since(self.started);
        (elapsed.as_nanos() * u128::from(SAMPLE_RATE) / 1_000_000_000) as i64
    }

    /// Stops the timeline at `at`: later audio is dropped.
    pub fn stop(&mut self, at: Instant) {
        self.stopped_at.get_or_insert(at);
    }

    /// Places decoded audio (8 kHz) of one packet whose RTP clock runs at
    /// 8 kHz (G.711).
    pub fn write_audio(&mut self, ssrc: u32, timestamp: u32, arrival: Instant, pcm: &[i16]) {
        self.write_audio_clocked(ssrc, timestamp, SAMPLE_RATE, arrival, pcm);
    }

    /// Places decoded audio (8 kHz) of one packet whose RTP clock runs at
    /// `clock_rate` (48 kHz for Opus).
    pub fn write_audio_clocked(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        clock_rate: u32,
        arrival: Instant,
        pcm: &[i16],
    ) {
        if self.stopped_at.is_some() {
            return;
        }
        let arrived = self.position(arrival);
        let anchor = *self.anchors.entry(ssrc).or_insert(Anchor {
            timestamp,
            position: arrived,
        });
        let ticks = i64::from(timestamp.wrapping_sub(anchor.timestamp) as i32);
        let mut position =
            anchor.position + ticks * i64::from(SAMPLE_RATE) / i64::from(clock_rate.max(1));
        if (position - arrived).abs() > REANCHOR_AFTER {
            self.anchors.insert(
                ssrc,
                Anchor {
                    timestamp,
                    position: arrived,
                },
            );
            position = arrived;
        }
        let Ok(start) = usize::try_from(position) else {
            return;
        };
        let end = start + pcm.len();
        if self.samples.len() < end {
            self.samples.resize(end, 0);
        }
        self.samples[start..end].copy_from_slice(pcm);
    }

    /// Counts an RFC 4733 packet; returns true when it starts a new event.
    pub fn write_event(
        &mut self,
        ssrc: u32,
        timestamp: u32,
        arrival: Instant,
        event: EventPayload,
    ) -> bool {
        let Some(digit) = digit_of(event.event) else {
            return false;
        };
        let duration = Duration::from_secs_f64(f64::from(event.duration) / f64::from(SAMPLE_RATE));
        if let Some(&index) = self.dtmf_index.get(&(ssrc, timestamp)) {
            let known = &mut self.dtmf[index];
            known.duration = known.duration.max(duration);
            known.ended |= event.end;
            return false;
        }
        self.dtmf_index.insert((ssrc, timestamp), self.dtmf.len());
        self.dtmf.push(ReceivedDtmf {
            digit,
            at: arrival,
            duration,
            ended: event.end,
            volume: event.volume,
            source: DtmfSource::Rfc4733,
        });
        true
    }

    pub fn push_info_digit(&mut self, digit: char, duration: Duration, at: Instant) {
        self.dtmf.push(ReceivedDtmf {
            digit,
            at,
            duration,
            ended: true,
            volume: 0,
            source: DtmfSource::SipInfo,
        });
    }

    pub fn dtmf(&self) -> &[ReceivedDtmf] {
        &self.dtmf
    }

    /// Length of the timeline now: up to `now` (or the stop), or further
    /// when audio was placed ahead of the clock.
    pub fn len_at(&self, now: Instant) -> usize {
        match self.stopped_at {
            Some(stop) => self.position(stop.min(now)).max(0) as usize,
            None => (self.position(now).max(0) as usize).max(self.samples.len()),
        }
    }

    /// Samples `[from, to)` of the timeline, zeros where nothing arrived.
    pub fn range(&self, from: usize, to: usize) -> Vec<i16> {
        let mut out = vec![0; to.saturating_sub(from)];
        if from < self.samples.len() {
            let available = &self.samples[from..to.min(self.samples.len())];
            out[..available.len()].copy_from_slice(available);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn packets_land_by_timestamp_despite_jitter() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        // First packet at 100 ms anchors; the next two arrive together late.
        recorder.write_audio(7, 1000, at(start, 100), &[1; 160]);
        recorder.write_audio(7, 1160, at(start, 160), &[2; 160]);
        recorder.write_audio(7, 1320, at(start, 161), &[3; 160]);
        let timeline = recorder.range(0, recorder.len_at(at(start, 200)));
        assert_eq!(timeline.len(), 1600);
        assert_eq!(timeline[799], 0);
        assert_eq!(timeline[800], 1);
        assert_eq!(timeline[960], 2);
        assert_eq!(timeline[1120], 3);
        assert_eq!(timeline[1280], 0, "gap up to now stays silent");
    }

    #[test]
    fn a_timestamp_jump_reanchors() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        recorder.write_audio(7, 0, at(start, 0), &[1; 160]);
        // A new talk spurt whose timestamp does not account for the pause.
        recorder.write_audio(7, 160, at(start, 2000), &[2; 160]);
        let timeline = recorder.range(0, recorder.len_at(at(start, 2020)));
        assert_eq!(timeline[16000], 2);
        assert_eq!(timeline[160], 0);
    }

    #[test]
    fn stopped_timeline_stops_growing() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        recorder.write_audio(1, 0, start, &[5; 160]);
        recorder.stop(at(start, 100));
        recorder.write_audio(1, 160, at(start, 120), &[6; 160]);
        assert_eq!(recorder.len_at(at(start, 5000)), 800);
        assert_eq!(recorder.range(0, 800)[170], 0);
    }

    #[test]
    fn each_event_counts_once() {
        let start = Instant::now();
        let mut recorder = Recorder::new(start);
        let event = |end, duration| EventPayload {
            event: 11,
            end,
            volume: 10,
            duration,
        };
        assert!(recorder.write_event(9, 500, start, event(false, 160)));
        assert!(!recorder.write_event(9, 500, start, event(false, 320)));
        for _ in 0..3 {
            assert!(!recorder.write_event(9, 500, start, event(true, 800)));
        }
        assert!(recorder.write_event(9, 3000, start, event(false, 160)));
        assert!(!recorder.write_event(
            9,
            4000,
            start,
            EventPayload {
                event: 16,
                ..event(false, 1)
            }
        ));
        let dtmf = recorder.dtmf();
        assert_eq!(dtmf.len(), 2);
        assert_eq!(dtmf[0].digit, '#');
        assert!(dtmf[0].ended);
        assert_eq!(dtmf[0].duration, Duration::from_millis(100));
        assert!(!dtmf[1].ended);
    }
}
