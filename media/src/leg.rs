//! One call's RTP stream as the media worker sees it: receive into the jitter
//! buffer, detect DTMF, play clips and DTMF, encode and send one packet per
//! tick. Plus the part shared with the control plane: the leg's mailbox.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;

use crate::conference::ConfShared;
use crate::dtmf::{DigitSender, DigitStep, DtmfReceiver, TelephoneEvent};
use crate::jitter::{JitterBuffer, JitterConfig, PayloadDecoder};
use crate::mixer::{Pcm, SILENCE};
use crate::player::{Completion, Player, PlayerSlot};
use crate::rtp::{RtpHeader, RtpPacket, HEADER_LEN};
use crate::stats::{AtomicLegStats, LegStats};
use crate::{
    g711, AudioClip, Codec, LegEvent, LegId, LegParams, ParticipantOptions, PlayOutcome,
    FRAME_SAMPLES,
};

/// Datagrams read from one socket per tick at most (a flood cannot starve
/// the other legs).
const MAX_RX_PER_TICK: usize = 32;
/// How long the latched source must be silent before another source may
/// take over (symmetric RTP re-latching).
const RELATCH_MS: u64 = 500;
/// A DTMF key whose end never arrives is reported after this much quiet.
const DTMF_END_TIMEOUT_MS: u64 = 500;
/// RFC 3389 comfort noise: no audio, not an error.
const COMFORT_NOISE_PT: u8 = 13;

/// Commands for one leg, executed in order by whichever worker owns it.
pub(crate) enum LegCommand {
    Play {
        clip: AudioClip,
        looped: bool,
        done: Completion,
    },
    /// Stops the player and any DTMF being sent.
    StopMedia,
    SendDtmf {
        events: Vec<u8>,
        done: Completion,
    },
    Join {
        conf: Arc<ConfShared>,
        opts: ParticipantOptions,
    },
    Leave {
        conf: u64,
    },
    Close,
}

/// The commands a leg hands back to its worker (they involve conferences or
/// the leg's own slot).
pub(crate) enum Control {
    Join {
        conf: Arc<ConfShared>,
        opts: ParticipantOptions,
    },
    Leave {
        conf: u64,
    },
    Close,
}

/// The control plane's view of a leg, shared with the worker that owns it.
/// The mailbox travels with the leg when it moves between workers, so
/// commands keep their order.
pub(crate) struct LegShared {
    pub(crate) id: LegId,
    pub(crate) label: String,
    pub(crate) local_addr: SocketAddr,
    pub(crate) stats: AtomicLegStats,
    mailbox: Mutex<Mailbox>,
    /// Commands are waiting (checked every tick without locking).
    pending: AtomicBool,
    /// No more commands accepted (mirrors `Mailbox::closed`).
    closed: AtomicBool,
}

struct Mailbox {
    queue: VecDeque<LegCommand>,
    closed: bool,
}

impl LegShared {
    pub(crate) fn new(id: LegId, label: String, local_addr: SocketAddr) -> LegShared {
        LegShared {
            id,
            label,
            local_addr,
            stats: AtomicLegStats::default(),
            mailbox: Mutex::new(Mailbox {
                queue: VecDeque::new(),
                closed: false,
            }),
            pending: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Mailbox> {
        // A worker that panicked mid-command leaves a usable queue.
        self.mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a command; gives it back if the leg is closed.
    pub(crate) fn push(&self, cmd: LegCommand) -> Result<(), LegCommand> {
        let mut mb = self.lock();
        if mb.closed {
            return Err(cmd);
        }
        let closing = matches!(cmd, LegCommand::Close);
        mb.queue.push_back(cmd);
        if closing {
            // Later commands are refused; queued ones still run first.
            mb.closed = true;
            self.closed.store(true, Ordering::Release);
        }
        drop(mb);
        self.pending.store(true, Ordering::Release);
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether commands arrived since the last call.
    pub(crate) fn take_pending(&self) -> bool {
        self.pending.swap(false, Ordering::AcqRel)
    }

    /// Makes the owning worker look at the mailbox on its next tick.
    pub(crate) fn set_pending(&self) {
        self.pending.store(true, Ordering::Release);
    }

    pub(crate) fn next_command(&self) -> Option<LegCommand> {
        self.lock().queue.pop_front()
    }

    /// Refuses further commands and ends those still queued as `Closed`.
    fn shut(&self) {
        let queued = {
            let mut mb = self.lock();
            mb.closed = true;
            self.closed.store(true, Ordering::Release);
            std::mem::take(&mut mb.queue)
        };
        for cmd in queued {
            match cmd {
                LegCommand::Play { done, .. } | LegCommand::SendDtmf { done, .. } => {
                    done.complete(PlayOutcome::Closed)
                }
                LegCommand::StopMedia
                | LegCommand::Join { .. }
                | LegCommand::Leave { .. }
                | LegCommand::Close => {}
            }
        }
    }
}

/// G.711 for the jitter buffer.
struct G711Decoder(Codec);

impl PayloadDecoder for G711Decoder {
    fn samples(&self, payload: &[u8]) -> usize {
        payload.len()
    }
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        g711::decode(self.0, payload, out)
    }
}

/// Digits queued by one `send_dtmf` call.
struct DtmfJob {
    events: Vec<u8>,
    next: usize,
    sending: Option<DigitSender>,
    done: Completion,
}

/// Where a leg sits in a conference on its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConfLink {
    pub(crate) id: u64,
    pub(crate) slot: usize,
}

/// The worker-side state of one leg.
pub(crate) struct Leg {
    pub(crate) shared: Arc<LegShared>,
    socket: UdpSocket,
    codec: Codec,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,

    /// Where packets go: the SDP address until RTP arrives, then its source.
    remote: SocketAddr,
    latched: Option<SocketAddr>,
    latched_rx_ms: u64,

    ssrc: u32,
    seq: u16,
    timestamp: u32,
    sent_any: bool,

    jitter: JitterBuffer,
    decoder: G711Decoder,
    dtmf_rx: DtmfReceiver,
    /// What the caller said this tick (decoded, after the jitter buffer).
    pub(crate) rx_frame: Pcm,
    pub(crate) rx_has_audio: bool,

    pub(crate) conference: Option<ConfLink>,
    /// What the conference mixed for this leg this tick.
    pub(crate) mix_frame: Pcm,

    player: PlayerSlot,
    dtmf_tx: VecDeque<DtmfJob>,
    events: UnboundedSender<LegEvent>,

    counters: LegStats,
    published: LegStats,
}

impl Leg {
    pub(crate) fn new(
        shared: Arc<LegShared>,
        socket: UdpSocket,
        params: &LegParams,
        events: UnboundedSender<LegEvent>,
    ) -> Leg {
        Leg {
            shared,
            socket,
            codec: params.codec,
            payload_type: params.payload_type,
            dtmf_payload_type: params.dtmf_payload_type,
            remote: params.remote,
            latched: None,
            latched_rx_ms: 0,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            sent_any: false,
            jitter: JitterBuffer::new(JitterConfig::default()),
            decoder: G711Decoder(params.codec),
            dtmf_rx: DtmfReceiver::new(params.codec.clock_rate(), DTMF_END_TIMEOUT_MS),
            rx_frame: SILENCE,
            rx_has_audio: false,
            conference: None,
            mix_frame: SILENCE,
            player: PlayerSlot::default(),
            dtmf_tx: VecDeque::new(),
            events,
            counters: LegStats::default(),
            published: LegStats::default(),
        }
    }

    /// Runs a command that concerns only this leg; gives back the ones the
    /// worker must handle (conference membership, close).
    pub(crate) fn apply(&mut self, cmd: LegCommand) -> Option<Control> {
        match cmd {
            LegCommand::Play { clip, looped, done } => {
                self.player.start(Player::new(clip, looped, done));
                None
            }
            LegCommand::StopMedia => {
                self.player.stop(PlayOutcome::Interrupted);
                self.stop_dtmf(PlayOutcome::Interrupted);
                None
            }
            LegCommand::SendDtmf { events, done } => {
                self.dtmf_tx.push_back(DtmfJob {
                    events,
                    next: 0,
                    sending: None,
                    done,
                });
                None
            }
            LegCommand::Join { conf, opts } => Some(Control::Join { conf, opts }),
            LegCommand::Leave { conf } => Some(Control::Leave { conf }),
            LegCommand::Close => Some(Control::Close),
        }
    }

    /// Reads what arrived on the socket since the last tick. `now_ms` is the
    /// engine's clock (shared by all workers, so it survives moves).
    pub(crate) fn receive(&mut self, buf: &mut [u8], now_ms: u64) {
        for _ in 0..MAX_RX_PER_TICK {
            match self.socket.recv_from(buf) {
                Ok((n, src)) => self.on_datagram(&buf[..n], src, now_ms),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::trace!(leg = %self.shared.id, "recv: {e}");
                    break;
                }
            }
        }
    }

    fn on_datagram(&mut self, data: &[u8], src: SocketAddr, now_ms: u64) {
        let Ok(pkt) = RtpPacket::parse(data) else {
            self.counters.malformed += 1;
            return;
        };
        self.counters.packets_in += 1;
        self.counters.bytes_in += data.len() as u64;
        if !self.accept_source(src, now_ms) {
            self.counters.discarded += 1;
            return;
        }
        let h = pkt.header;
        if h.payload_type == self.payload_type {
            let r = self
                .jitter
                .insert(h.ssrc, h.sequence, h.timestamp, pkt.payload, &self.decoder);
            if r == crate::jitter::Insert::Rejected {
                self.counters.discarded += 1;
            }
        } else if Some(h.payload_type) == self.dtmf_payload_type {
            self.jitter.note_non_audio(h.ssrc, h.sequence);
            let Some(ev) = TelephoneEvent::parse(pkt.payload) else {
                self.counters.discarded += 1;
                return;
            };
            let (events, counters) = (&self.events, &mut self.counters);
            self.dtmf_rx.on_packet(h.timestamp, ev, now_ms, |d| {
                counters.dtmf_in += 1;
                let _ = events.send(LegEvent::Dtmf(d));
            });
        } else if h.payload_type == COMFORT_NOISE_PT {
            self.jitter.note_non_audio(h.ssrc, h.sequence);
        } else {
            self.counters.discarded += 1;
        }
    }

    /// Symmetric RTP: latch onto the first source, switch only once it has
    /// been quiet for a while (so a stray sender cannot hijack the stream).
    fn accept_source(&mut self, src: SocketAddr, now_ms: u64) -> bool {
        match self.latched {
            Some(l) if l == src => {}
            Some(_) if now_ms.saturating_sub(self.latched_rx_ms) < RELATCH_MS => return false,
            _ => {
                if self.latched.is_some() {
                    tracing::debug!(leg = %self.shared.id, %src, "RTP source changed");
                }
                self.latched = Some(src);
                self.remote = src;
            }
        }
        self.latched_rx_ms = now_ms;
        true
    }

    /// Takes this tick's frame out of the jitter buffer; reports DTMF keys
    /// whose end never came.
    pub(crate) fn pull_audio(&mut self, now_ms: u64) {
        let frame = self.jitter.pop(&mut self.decoder, &mut self.rx_frame);
        self.rx_has_audio = frame.has_audio();
        let (events, counters) = (&self.events, &mut self.counters);
        self.dtmf_rx.poll(now_ms, |d| {
            counters.dtmf_in += 1;
            let _ = events.send(LegEvent::Dtmf(d));
        });
    }

    /// Builds and sends this tick's packet: DTMF if any is being sent,
    /// otherwise the conference mix (if in one) with the leg's player on top.
    /// `skipped` ticks were lost to a stall: the RTP clock jumps over them
    /// (timestamps follow real time; the audio itself just resumes).
    pub(crate) fn send(&mut self, buf: &mut [u8], skipped: u32) {
        self.timestamp = self
            .timestamp
            .wrapping_add(skipped.wrapping_mul(FRAME_SAMPLES as u32));
        let mut frame = if self.conference.is_some() {
            self.mix_frame
        } else {
            SILENCE
        };
        let media_ts = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(FRAME_SAMPLES as u32);
        match self.next_dtmf_step(media_ts, &mut frame) {
            Some(DigitStep::Event {
                payload,
                marker,
                timestamp,
            }) => {
                let pt = self.dtmf_payload_type.unwrap_or(self.payload_type);
                let len = payload.write(&mut buf[HEADER_LEN..]).unwrap_or(0);
                self.send_packet(buf, pt, marker, timestamp, len);
            }
            Some(DigitStep::Audio) => self.send_audio(buf, &frame, media_ts),
            None => {
                // The player is paused while DTMF is sent.
                self.player.add_to(&mut frame);
                self.send_audio(buf, &frame, media_ts);
            }
        }
    }

    fn send_audio(&mut self, buf: &mut [u8], frame: &Pcm, timestamp: u32) {
        let end = (HEADER_LEN + FRAME_SAMPLES).min(buf.len());
        let len = g711::encode(self.codec, frame, &mut buf[HEADER_LEN..end]);
        self.send_packet(buf, self.payload_type, false, timestamp, len);
    }

    /// Sends `buf[..12 + payload_len]` after writing the header into it.
    fn send_packet(
        &mut self,
        buf: &mut [u8],
        pt: u8,
        marker: bool,
        timestamp: u32,
        payload_len: usize,
    ) {
        let header = RtpHeader {
            // The first packet of the stream carries the marker too.
            marker: marker || !self.sent_any,
            payload_type: pt,
            sequence: self.seq,
            timestamp,
            ssrc: self.ssrc,
        };
        let Some(hlen) = header.write(buf) else {
            return;
        };
        self.seq = self.seq.wrapping_add(1);
        self.sent_any = true;
        let n = hlen + payload_len;
        match self.socket.send_to(&buf[..n], self.remote) {
            Ok(_) => {
                self.counters.packets_out += 1;
                self.counters.bytes_out += n as u64;
            }
            Err(e) => {
                self.counters.send_errors += 1;
                tracing::trace!(leg = %self.shared.id, remote = %self.remote, "send: {e}");
            }
        }
    }

    fn next_dtmf_step(&mut self, media_ts: u32, frame: &mut Pcm) -> Option<DigitStep> {
        let inband = self.dtmf_payload_type.is_none();
        loop {
            let job = self.dtmf_tx.front_mut()?;
            if let Some(sender) = job.sending.as_mut() {
                if let Some(step) = sender.next(media_ts, frame) {
                    return Some(step);
                }
                job.sending = None;
            }
            if let Some(&event) = job.events.get(job.next) {
                job.next += 1;
                job.sending = Some(DigitSender::new(event, inband));
                continue;
            }
            if let Some(job) = self.dtmf_tx.pop_front() {
                job.done.complete(PlayOutcome::Finished);
            }
        }
    }

    fn stop_dtmf(&mut self, outcome: PlayOutcome) {
        while let Some(job) = self.dtmf_tx.pop_front() {
            job.done.complete(outcome);
        }
    }

    /// Publishes the counters; adds what changed since the last time to
    /// `totals` (the worker's running sum for the engine).
    pub(crate) fn publish_stats(&mut self, totals: &mut LegStats) {
        let j = self.jitter.stats();
        self.counters.lost = j.lost;
        self.counters.late = j.late;
        self.counters.duplicates = j.duplicates;
        self.counters.underruns = j.underruns;
        if self.counters != self.published {
            totals.add_delta(&self.counters, &self.published);
            self.shared.stats.store(&self.counters);
            self.published = self.counters;
        }
    }
}

impl Drop for Leg {
    /// However a leg ends (closed, engine shut down, lost in transit between
    /// workers), its playbacks resolve `Closed`, queued commands are refused,
    /// then the socket and the event channel close.
    fn drop(&mut self) {
        self.player.stop(PlayOutcome::Closed);
        self.stop_dtmf(PlayOutcome::Closed);
        self.shared.shut();
    }
}
