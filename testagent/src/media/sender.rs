//! The outgoing stream: one RTP packet per 20 ms tick, from the current
//! audio source, or from queued DTMF digits (which pause the audio).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;

use super::dtmf::{tone_pair, EventPayload};
use super::g711;
use super::rtp::{self, RtpPacket};
use super::source::{ActiveSource, Frame, PlaybackEnd, Source, FRAME_SAMPLES};
use crate::config::Codec;

/// How digits are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DtmfOptions {
    /// Length of each digit's event (or tone pair).
    pub duration: Duration,
    /// Silence between digits.
    pub gap: Duration,
    /// RFC 4733 power level in -dBm0.
    pub volume: u8,
    /// Amplitude of each of the two in-band tones (fraction of full scale).
    pub inband_amplitude: f32,
}

impl Default for DtmfOptions {
    fn default() -> Self {
        DtmfOptions {
            duration: Duration::from_millis(100),
            gap: Duration::from_millis(100),
            volume: 10,
            inband_amplitude: 0.25,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DtmfMode {
    Rfc4733,
    Inband,
}

/// A digit string being sent.
pub(crate) struct DtmfJob {
    events: Vec<u8>,
    mode: DtmfMode,
    on_ticks: u32,
    gap_ticks: u32,
    volume: u8,
    amplitude: f32,
    digit: usize,
    tick: u32,
    event_timestamp: u32,
    tone: Option<Source>,
    done: Option<oneshot::Sender<()>>,
}

/// End packets of an event are sent this many times (RFC 4733 §2.5.1.4).
const END_REPEATS: u32 = 3;

fn ticks(duration: Duration) -> u32 {
    (duration.as_millis() / 20) as u32
}

impl DtmfJob {
    pub fn new(
        events: Vec<u8>,
        mode: DtmfMode,
        options: &DtmfOptions,
        done: oneshot::Sender<()>,
    ) -> DtmfJob {
        DtmfJob {
            events,
            mode,
            on_ticks: ticks(options.duration).max(1),
            gap_ticks: ticks(options.gap),
            volume: options.volume,
            amplitude: options.inband_amplitude,
            digit: 0,
            tick: 0,
            event_timestamp: 0,
            tone: None,
            done: Some(done),
        }
    }

    fn ticks_per_digit(&self) -> u32 {
        match self.mode {
            DtmfMode::Rfc4733 => self.on_ticks + END_REPEATS + self.gap_ticks,
            DtmfMode::Inband => self.on_ticks + self.gap_ticks,
        }
    }
}

/// What the stream is encoded with.
#[derive(Debug, Clone)]
pub(crate) struct OutputFormat {
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

/// State of the outgoing RTP stream.
pub(crate) struct Sender {
    /// Encodes 8 kHz frames as Opus (created with the first Opus packet).
    opus: Option<opus::Encoder>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    first_packet: bool,
    pub source: Option<ActiveSource>,
    pub dtmf: VecDeque<DtmfJob>,
    pub packets_sent: u64,
}

// Lives on the stack for one tick: boxing the frame would only allocate.
#[allow(clippy::large_enum_variant)]
enum Payload {
    Audio(Frame),
    Event {
        payload: EventPayload,
        marker: bool,
        timestamp: u32,
    },
}

impl Sender {
    pub fn new() -> Sender {
        Sender {
            opus: None,
            ssrc: rand::random(),
            sequence: rand::random(),
            timestamp: rand::random(),
            first_packet: true,
            source: None,
            dtmf: VecDeque::new(),
            packets_sent: 0,
        }
    }

    /// Replaces the audio source, reporting the old one as stopped.
    pub fn set_source(&mut self, source: Option<ActiveSource>) {
        if let Some(old) = std::mem::replace(&mut self.source, source) {
            old.end(PlaybackEnd::Stopped);
        }
    }

    /// Ends everything in progress (the media is stopping).
    pub fn clear(&mut self) {
        self.set_source(None);
        // Dropping the jobs drops their `done` senders: waiters see an error.
        self.dtmf.clear();
    }

    /// Advances the clock without sending (the sender fell far behind).
    /// Timestamps are in units of an 8 kHz clock here; a 48 kHz codec's
    /// packets scale them (see `rtp_clock`).
    pub fn skip(&mut self, frames: u32) {
        self.timestamp = self.timestamp.wrapping_add(frames * FRAME_SAMPLES as u32);
    }

    /// The next 20 ms packet, or `None` when the codec cannot be sent.
    pub fn next_packet(&mut self, format: &OutputFormat) -> Option<Vec<u8>> {
        // The stream's RTP clock advances by one frame of the codec's clock.
        let step = format.codec.clock_rate() / 50;
        let now = self.timestamp;
        self.timestamp = now.wrapping_add(step);
        let payload = self.next_payload(now, format);
        let (payload_type, marker, timestamp, bytes) = match payload {
            Payload::Audio(frame) => {
                let bytes: Vec<u8> = match format.codec {
                    Codec::Pcmu => frame.iter().map(|&s| g711::linear_to_ulaw(s)).collect(),
                    Codec::Pcma => frame.iter().map(|&s| g711::linear_to_alaw(s)).collect(),
                    Codec::Opus => self.encode_opus(&frame)?,
                    Codec::Other { .. } => return None,
                };
                (format.codec.payload_type(), self.first_packet, now, bytes)
            }
            Payload::Event {
                payload,
                marker,
                timestamp,
            } => {
                let pt = format.telephone_event?;
                (pt, marker, timestamp, payload.write().to_vec())
            }
        };
        self.first_packet = false;
        self.sequence = self.sequence.wrapping_add(1);
        self.packets_sent += 1;
        Some(rtp::write(&RtpPacket {
            payload_type,
            marker,
            sequence: self.sequence,
            timestamp,
            ssrc: self.ssrc,
            payload: &bytes,
        }))
    }

    fn encode_opus(&mut self, frame: &Frame) -> Option<Vec<u8>> {
        if self.opus.is_none() {
            let mut e =
                opus::Encoder::new(8000, opus::Channels::Mono, opus::Application::Voip).ok()?;
            e.set_inband_fec(true).ok()?;
            e.set_packet_loss_perc(10).ok()?;
            self.opus = Some(e);
        }
        let mut out = vec![0u8; 400];
        let n = self.opus.as_mut()?.encode(frame, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    fn next_payload(&mut self, now: u32, format: &OutputFormat) -> Payload {
        while let Some(job) = self.dtmf.front_mut() {
            if job.digit >= job.events.len() {
                if let Some(done) = job.done.take() {
                    let _ = done.send(());
                }
                self.dtmf.pop_front();
                continue;
            }
            if job.mode == DtmfMode::Rfc4733 && format.telephone_event.is_none() {
                // The remote stopped accepting events: fail the job.
                self.dtmf.pop_front();
                continue;
            }
            let event = job.events[job.digit];
            let tick = job.tick;
            if tick == 0 {
                job.event_timestamp = now;
                job.tone = tone_pair(event).map(|(low, high)| {
                    Source::tones(&[(low, job.amplitude), (high, job.amplitude)])
                });
            }
            job.tick += 1;
            if job.tick >= job.ticks_per_digit() {
                job.digit += 1;
                job.tick = 0;
            }
            let mut frame = [0i16; FRAME_SAMPLES];
            return match job.mode {
                DtmfMode::Rfc4733 if tick < job.on_ticks + END_REPEATS => Payload::Event {
                    payload: EventPayload {
                        event,
                        end: tick >= job.on_ticks,
                        volume: job.volume,
                        duration: ((tick.min(job.on_ticks - 1) + 1)
                            * (format.codec.clock_rate() / 50))
                            .min(u32::from(u16::MAX)) as u16,
                    },
                    marker: tick == 0,
                    timestamp: job.event_timestamp,
                },
                DtmfMode::Inband if tick < job.on_ticks => {
                    if let Some(tone) = job.tone.as_mut() {
                        tone.fill(&mut frame);
                    }
                    Payload::Audio(frame)
                }
                _ => Payload::Audio(frame),
            };
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        if let Some(active) = self.source.as_mut() {
            if !active.source.fill(&mut frame) {
                active.end(PlaybackEnd::Finished);
                self.source = None;
            }
        }
        Payload::Audio(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: OutputFormat = OutputFormat {
        codec: Codec::Pcmu,
        telephone_event: Some(101),
    };

    #[test]
    fn digits_are_events_then_end_packets_then_a_gap() {
        let mut sender = Sender::new();
        let (done_tx, mut done_rx) = oneshot::channel();
        sender.dtmf.push_back(DtmfJob::new(
            vec![1, 11],
            DtmfMode::Rfc4733,
            &DtmfOptions::default(),
            done_tx,
        ));
        let mut packets = Vec::new();
        for _ in 0..26 {
            packets.push(sender.next_packet(&FORMAT).expect("a packet"));
        }
        let parsed: Vec<_> = packets
            .iter()
            .map(|p| rtp::parse(p).expect("rtp"))
            .collect();
        // Digit 1: 5 events, 3 end packets, 5 silence frames.
        for (i, packet) in parsed[..8].iter().enumerate() {
            assert_eq!(packet.payload_type, 101);
            assert_eq!(packet.marker, i == 0);
            assert_eq!(packet.timestamp, parsed[0].timestamp);
            let event = EventPayload::parse(packet.payload).expect("event");
            assert_eq!(event.event, 1);
            assert_eq!(event.end, i >= 5);
            assert_eq!(event.duration, 160 * (i.min(4) as u16 + 1));
        }
        assert!(parsed[8..13].iter().all(|p| p.payload_type == 0));
        assert_eq!(parsed[13].payload_type, 101);
        assert_eq!(
            parsed[13].timestamp,
            parsed[0].timestamp.wrapping_add(13 * 160)
        );
        assert!(done_rx.try_recv().is_err(), "not done before the last gap");
        assert_eq!(parsed[25].payload_type, 0);
        sender.next_packet(&FORMAT);
        assert!(done_rx.try_recv().is_ok());
        // Sequence numbers are consecutive throughout.
        for pair in parsed.windows(2) {
            assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        }
    }

    #[test]
    fn audio_pauses_during_digits_and_resumes() {
        let mut sender = Sender::new();
        let (playback, done) = super::super::source::Playback::new();
        sender.set_source(Some(ActiveSource {
            source: Source::tones(&[(1000.0, 0.5)]),
            done,
        }));
        let (done_tx, _done_rx) = oneshot::channel();
        sender.dtmf.push_back(DtmfJob::new(
            vec![5],
            DtmfMode::Inband,
            &DtmfOptions {
                gap: Duration::from_millis(40),
                ..DtmfOptions::default()
            },
            done_tx,
        ));
        let mut samples = Vec::new();
        for _ in 0..12 {
            let packet = sender.next_packet(&FORMAT).expect("a packet");
            let parsed = rtp::parse(&packet).expect("rtp");
            samples.extend(parsed.payload.iter().map(|&b| g711::ulaw_to_linear(b)));
        }
        use crate::analysis::tone_dbfs;
        let digit = &samples[..800];
        assert!(tone_dbfs(digit, 770.0) > -15.0);
        assert!(tone_dbfs(digit, 1336.0) > -15.0);
        assert!(tone_dbfs(digit, 1000.0) < -40.0);
        assert!(
            tone_dbfs(&samples[800..1120], 1000.0) < -40.0,
            "gap is silent"
        );
        assert!(tone_dbfs(&samples[1120..], 1000.0) > -10.0, "tone resumes");
        assert!(!playback.is_done());
    }

    #[test]
    fn finite_source_reports_its_end() {
        let mut sender = Sender::new();
        let (playback, done) = super::super::source::Playback::new();
        sender.set_source(Some(ActiveSource {
            source: Source::samples(vec![1000; 300].into(), false),
            done,
        }));
        sender.next_packet(&FORMAT);
        assert!(!playback.is_done());
        sender.next_packet(&FORMAT);
        assert!(playback.is_done());
        let other = Codec::Other {
            payload_type: 18,
            encoding: "G729".into(),
            clock_rate: 8000,
        };
        let format = OutputFormat {
            codec: other,
            telephone_event: None,
        };
        assert!(sender.next_packet(&format).is_none());
    }
}
