//! One call's RTP stream as the media worker sees it: receive into the jitter
//! buffer, detect DTMF, play clips and DTMF, encode and send one packet per
//! tick. Plus the part shared with the control plane: the leg's mailbox.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;

use crate::codec::{LegDecoder, LegEncoder};
use crate::conference::ConfShared;
use crate::dtmf::dedup::DtmfDedup;
use crate::dtmf::inband::InbandDetector;
use crate::dtmf::{DigitSender, DigitStep, DtmfReceiver, TelephoneEvent};
use crate::jitter::{JitterBuffer, JitterConfig};
use crate::player::{Completion, Player, PlayerSlot};
use crate::recorder::RecordSink;
use crate::rtp::{RtpHeader, RtpPacket, HEADER_LEN};
use crate::stats::{AtomicLegStats, LegStats};
use crate::udp::RecvBatch;
use crate::vad::{level_dbfs, mean_square};
use crate::{
    AudioClip, Codec, DtmfDigit, LegEvent, LegId, LegParams, MediaError, ParticipantOptions,
    PlayOutcome, MAX_FRAME,
};

/// Datagrams read from one socket per tick at most (a flood cannot starve
/// the other legs).
const MAX_RX_PER_TICK: usize = 32;
/// Frames below this level (dBFS) count as silence for talking detection.
const SILENCE_DBFS: f32 = -90.0;
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
    /// Starts a recording of this leg.
    Record(RecordSink),
    /// A digit that arrived outside RTP (SIP INFO).
    InjectDtmf(DtmfDigit),
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
    pub(crate) codec: Codec,
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
    pub(crate) fn new(id: LegId, label: String, local_addr: SocketAddr, codec: Codec) -> LegShared {
        LegShared {
            id,
            label,
            local_addr,
            codec,
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
        // A plain load first: checking a thousand idle mailboxes per tick
        // must not take each cache line exclusive with a swap.
        self.pending.load(Ordering::Acquire) && self.pending.swap(false, Ordering::AcqRel)
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
                | LegCommand::Record(_)
                | LegCommand::InjectDtmf(_)
                | LegCommand::Close => {}
            }
        }
    }
}

/// Digits queued by one `send_dtmf` call.
struct DtmfJob {
    events: Vec<u8>,
    next: usize,
    sending: Option<DigitSender>,
    done: Completion,
}

/// What a leg hears this tick, as its conference decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Not in a conference, or deaf: silence (plus its own player).
    Nothing,
    /// Its private N-1 mix, in [`Leg::private_frame`].
    Private,
    /// The shared mix of this output group of its conference.
    Shared(usize),
}

/// Where a leg sits in a conference on its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConfLink {
    pub(crate) id: u64,
    pub(crate) slot: usize,
}

/// Where a leg's RTP goes.
pub(crate) enum Transport {
    /// Plain RTP on the leg's own UDP socket (SIP calls).
    Udp(UdpSocket),
    /// Through a WebRTC transport (SRTP over ICE/DTLS) on the WebRTC
    /// thread; the leg sees plain RTP (see `webrtc/mod.rs`).
    WebRtc(Arc<crate::webrtc::Pipe>),
}

/// The worker-side state of one leg.
pub(crate) struct Leg {
    pub(crate) shared: Arc<LegShared>,
    transport: Transport,
    codec: Codec,
    /// The codec's PCM rate: what the leg decodes, plays and encodes at.
    rate: u32,
    /// PCM samples per RTP timestamp unit (2 for G.722, otherwise 1):
    /// media timestamps are scaled at the edges so the jitter buffer and
    /// decoder see PCM units, while `timestamp` stays in RTP units.
    ts_scale: u32,
    frame_len: usize,
    payload_type: u8,
    dtmf_payload_type: Option<u8>,
    /// Clock of telephone-event (the codec's RTP clock, except a browser
    /// offering it at 8 kHz only next to Opus).
    dtmf_rate: u32,

    /// Where packets go: the SDP address until RTP arrives, then its source.
    remote: SocketAddr,
    latched: Option<SocketAddr>,
    latched_rx_ms: u64,
    now_ms: u64,

    ssrc: u32,
    seq: u16,
    timestamp: u32,
    sent_any: bool,

    jitter: JitterBuffer,
    decoder: LegDecoder,
    encoder: LegEncoder,
    dtmf_rx: DtmfReceiver,
    inband: InbandDetector,
    dedup: DtmfDedup,
    /// What the caller said this tick (decoded, after the jitter buffer).
    rx: Box<[i16; MAX_FRAME]>,
    rx_level: Option<f32>,
    /// A DTMF tone (in-band or RFC 4733) is being received.
    dtmf_active: bool,
    /// The peer signalled silence with comfort noise at this level (-dBov).
    comfort_noise: Option<u8>,
    noise: crate::plc::NoiseGenerator,

    pub(crate) conference: Option<ConfLink>,
    heard: Heard,
    /// The private mix when `heard` is `Private`.
    private: Box<[i16; MAX_FRAME]>,
    /// Scratch: the frame being sent (a boxed slice so it can be lent out
    /// during `send`: an empty one does not allocate).
    frame: Box<[i16]>,

    player: PlayerSlot,
    dtmf_tx: VecDeque<DtmfJob>,
    events: UnboundedSender<LegEvent>,
    recordings: Vec<RecordSink>,
    /// Scratch for mono recordings (caller and what it hears, summed).
    record_mix: Box<[i16; MAX_FRAME]>,

    counters: LegStats,
    published: LegStats,
    /// Encodes done this tick.
    pub(crate) encodes: u64,
    /// Send packets (false only in benchmarks).
    pub(crate) transmit: bool,
}

impl Leg {
    pub(crate) fn new(
        shared: Arc<LegShared>,
        transport: Transport,
        params: &LegParams,
        events: UnboundedSender<LegEvent>,
    ) -> Result<Leg, MediaError> {
        let rate = params.codec.pcm_rate();
        let rtp_clock = params.codec.rtp_clock_rate();
        Ok(Leg {
            shared,
            transport,
            codec: params.codec,
            rate,
            ts_scale: (rate / rtp_clock).max(1),
            frame_len: params.codec.frame_samples(),
            payload_type: params.payload_type,
            dtmf_payload_type: params.dtmf_payload_type,
            dtmf_rate: rtp_clock,
            remote: params.remote,
            latched: None,
            latched_rx_ms: 0,
            now_ms: 0,
            ssrc: rand::random(),
            seq: rand::random(),
            timestamp: rand::random(),
            sent_any: false,
            jitter: JitterBuffer::new(JitterConfig::adaptive(rate)),
            decoder: LegDecoder::new(params.codec)?,
            encoder: LegEncoder::new(params.codec)?,
            dtmf_rx: DtmfReceiver::new(rtp_clock, DTMF_END_TIMEOUT_MS),
            inband: InbandDetector::new(rate),
            dedup: DtmfDedup::new(),
            rx: Box::new([0; MAX_FRAME]),
            rx_level: None,
            dtmf_active: false,
            comfort_noise: None,
            noise: crate::plc::NoiseGenerator::new(rand::random()),
            conference: None,
            heard: Heard::Nothing,
            private: Box::new([0; MAX_FRAME]),
            frame: vec![0; MAX_FRAME].into_boxed_slice(),
            player: PlayerSlot::default(),
            dtmf_tx: VecDeque::new(),
            events,
            recordings: Vec::new(),
            record_mix: Box::new([0; MAX_FRAME]),
            counters: LegStats::default(),
            published: LegStats::default(),
            encodes: 0,
            transmit: true,
        })
    }

    pub(crate) fn codec(&self) -> Codec {
        self.codec
    }

    /// Telephone-event runs at `rate` instead of the codec's clock.
    pub(crate) fn set_dtmf_rate(&mut self, rate: u32) {
        self.dtmf_rate = rate;
        self.dtmf_rx = DtmfReceiver::new(rate, DTMF_END_TIMEOUT_MS);
    }

    /// This tick's decoded input at the leg's rate.
    pub(crate) fn rx_frame(&self) -> &[i16] {
        &self.rx[..self.frame_len]
    }

    /// Level of this tick's input in dBFS; `None` when nothing was heard.
    pub(crate) fn rx_level(&self) -> Option<f32> {
        self.rx_level
    }

    /// A DTMF tone is being received (keep it out of any mix).
    pub(crate) fn dtmf_active(&self) -> bool {
        self.dtmf_active
    }

    pub(crate) fn set_heard(&mut self, heard: Heard) {
        self.heard = heard;
    }

    pub(crate) fn heard(&self) -> Heard {
        self.heard
    }

    /// Where the conference writes this leg's private mix (leg rate).
    pub(crate) fn private_frame(&mut self) -> &mut [i16] {
        &mut self.private[..self.frame_len]
    }

    /// Whether this tick's packet can be the conference's shared payload
    /// as is (nothing of the leg's own is added to what it hears).
    pub(crate) fn can_share_payload(&self) -> bool {
        !self.player.is_playing() && self.dtmf_tx.is_empty()
    }

    /// Reports a digit unless another transport already reported the same
    /// key press.
    fn report_dtmf(&mut self, digit: DtmfDigit) {
        if let Some(d) = self.dedup.accept(digit, self.now_ms) {
            self.counters.dtmf_in += 1;
            let _ = self.events.send(LegEvent::Dtmf(d));
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
            LegCommand::Record(sink) => {
                self.recordings.push(sink);
                None
            }
            LegCommand::InjectDtmf(digit) => {
                self.report_dtmf(digit);
                None
            }
            LegCommand::Join { conf, opts } => Some(Control::Join { conf, opts }),
            LegCommand::Leave { conf } => Some(Control::Leave { conf }),
            LegCommand::Close => Some(Control::Close),
        }
    }

    /// Reads what arrived on the socket since the last tick. `now_ms` is the
    /// engine's clock (shared by all workers, so it survives moves).
    pub(crate) fn receive(&mut self, batch: &mut RecvBatch, now_ms: u64) {
        self.now_ms = now_ms;
        match &self.transport {
            Transport::Udp(_) => {}
            Transport::WebRtc(pipe) => {
                let pipe = pipe.clone();
                // The transport already checked where packets come from
                // (ICE) and that they are genuine (SRTP): one fixed source.
                let src = self.shared.local_addr;
                for _ in 0..MAX_RX_PER_TICK {
                    let Some(packet) = pipe.next_received() else {
                        break;
                    };
                    self.on_datagram(&packet, src, now_ms);
                    pipe.recycle_received(packet);
                }
                return;
            }
        }
        let mut total = 0;
        while total < MAX_RX_PER_TICK {
            let Transport::Udp(socket) = &self.transport else {
                return;
            };
            let got = batch.recv(socket);
            for i in 0..got {
                if let Some((data, src)) = batch.datagram(i) {
                    self.on_datagram(data, src, now_ms);
                }
            }
            total += got;
            if got < crate::udp::BATCH {
                break; // the socket is empty
            }
        }
    }

    pub(crate) fn on_datagram(&mut self, data: &[u8], src: SocketAddr, now_ms: u64) {
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
            self.comfort_noise = None;
            let r = self.jitter.insert_at(
                h.ssrc,
                h.sequence,
                // Wrapping multiply: differences stay right across wraps.
                h.timestamp.wrapping_mul(self.ts_scale),
                pkt.payload,
                &self.decoder,
                now_ms,
            );
            if r == crate::jitter::Insert::Rejected {
                self.counters.discarded += 1;
            }
        } else if Some(h.payload_type) == self.dtmf_payload_type {
            self.jitter.note_non_audio(h.ssrc, h.sequence);
            let Some(ev) = TelephoneEvent::parse(pkt.payload) else {
                self.counters.discarded += 1;
                return;
            };
            let mut got = None;
            self.dtmf_rx
                .on_packet(h.timestamp, ev, now_ms, |d| got = Some(d));
            if let Some(d) = got {
                self.report_dtmf(d);
            }
        } else if h.payload_type == COMFORT_NOISE_PT {
            self.jitter.note_non_audio(h.ssrc, h.sequence);
            // RFC 3389: the peer stops sending audio; its first byte is the
            // background level in -dBov. Until audio resumes we play that
            // noise instead of digital silence.
            self.comfort_noise = pkt.payload.first().map(|&l| l & 0x7f);
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

    /// Takes this tick's frame out of the jitter buffer, measures it, looks
    /// for in-band DTMF; reports DTMF keys whose end never came.
    pub(crate) fn pull_audio(&mut self, now_ms: u64) {
        let n = self.frame_len;
        let frame = self.jitter.pop(&mut self.decoder, &mut self.rx[..n]);
        // The peer's comfort noise stands in for its silence (it is heard
        // like its background would be, at the level it signalled).
        let comfort = match (frame.has_audio(), self.comfort_noise) {
            (false, Some(level)) => {
                self.noise.fill(&mut self.rx[..n], level);
                true
            }
            _ => false,
        };
        let mut inband_tone = false;
        self.rx_level = None;
        if frame.has_audio() || comfort {
            let level = level_dbfs(mean_square(&self.rx[..n]));
            if level > SILENCE_DBFS {
                self.rx_level = Some(level);
            }
        }
        if frame.has_audio() {
            let mut got = None;
            inband_tone = self.inband.process(&self.rx[..n], |d| got = Some(d));
            if let Some(d) = got {
                self.report_dtmf(d);
            }
        }
        let mut got = None;
        self.dtmf_rx.poll(now_ms, |d| got = Some(d));
        if let Some(d) = got {
            self.report_dtmf(d);
        }
        self.dtmf_active = inband_tone || self.dtmf_rx.in_progress(now_ms);
    }

    /// Builds and sends this tick's packet: DTMF if any is being sent,
    /// otherwise what the leg hears (its private mix, the conference's
    /// shared one, or silence) with its own player on top. `shared` is the
    /// shared mix of its group at the leg's rate and, if the leg can send it
    /// as is, its payload encoded once for the whole group. `skipped` ticks
    /// were lost to a stall: the RTP clock jumps over them (timestamps
    /// follow real time; the audio itself just resumes).
    pub(crate) fn send(
        &mut self,
        buf: &mut [u8],
        skipped: u32,
        shared: Option<(&[i16], Option<&[u8]>)>,
    ) {
        self.encodes = 0;
        let n = self.frame_len;
        // In RTP units (half the PCM samples for G.722).
        let step = n as u32 / self.ts_scale;
        self.timestamp = self.timestamp.wrapping_add(skipped.wrapping_mul(step));
        let media_ts = self.timestamp;
        self.timestamp = self.timestamp.wrapping_add(step);
        let mut frame = std::mem::take(&mut self.frame);
        let mut shared_payload = None;
        match (self.heard, shared) {
            (Heard::Private, _) => frame[..n].copy_from_slice(&self.private[..n]),
            (Heard::Shared(_), Some((pcm, payload))) if pcm.len() == n => {
                frame[..n].copy_from_slice(pcm);
                shared_payload = payload;
            }
            _ => frame[..n].fill(0),
        }
        match self.next_dtmf_step(media_ts, &mut frame[..n]) {
            Some(DigitStep::Event {
                payload,
                marker,
                timestamp,
            }) => {
                let pt = self.dtmf_payload_type.unwrap_or(self.payload_type);
                let len = payload.write(&mut buf[HEADER_LEN..]).unwrap_or(0);
                self.send_packet(buf, pt, marker, timestamp, len);
            }
            Some(DigitStep::Audio) => self.send_audio(buf, &frame[..n], media_ts),
            None if self.player.is_playing() => {
                self.player.add_at(&mut frame[..n], self.rate);
                self.send_audio(buf, &frame[..n], media_ts);
            }
            None => match shared_payload {
                Some(payload) => {
                    let len = payload.len().min(buf.len() - HEADER_LEN);
                    buf[HEADER_LEN..HEADER_LEN + len].copy_from_slice(&payload[..len]);
                    self.send_packet(buf, self.payload_type, false, media_ts, len);
                }
                None => self.send_audio(buf, &frame[..n], media_ts),
            },
        }
        self.record(&frame[..n]);
        self.frame = frame;
    }

    /// Feeds the leg's recordings: the caller, and what it heard.
    fn record(&mut self, heard: &[i16]) {
        if self.recordings.is_empty() {
            return;
        }
        self.recordings.retain(|r| !r.is_stopped());
        let n = self.frame_len;
        let said = &self.rx[..n];
        for sink in &mut self.recordings {
            if sink.is_stereo() {
                sink.push(said, Some(heard));
            } else {
                let mix = &mut self.record_mix[..n];
                mix.copy_from_slice(said);
                crate::mixer::add_saturating(mix, heard);
                sink.push(mix, None);
            }
        }
    }

    fn send_audio(&mut self, buf: &mut [u8], frame: &[i16], timestamp: u32) {
        let len = self.encoder.encode(frame, &mut buf[HEADER_LEN..]);
        self.encodes += 1;
        if len > 0 {
            self.send_packet(buf, self.payload_type, false, timestamp, len);
        }
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
        if !self.transmit {
            // Benchmarks measure everything but the system call.
            self.counters.packets_out += 1;
            self.counters.bytes_out += n as u64;
            return;
        }
        let sent = match &self.transport {
            Transport::Udp(socket) => socket.send_to(&buf[..n], self.remote).map(|_| ()),
            // Before ICE and DTLS are up there is nowhere to send yet.
            Transport::WebRtc(pipe) => match pipe.send(&buf[..n]) {
                true => Ok(()),
                false => return,
            },
        };
        match sent {
            Ok(()) => {
                self.counters.packets_out += 1;
                self.counters.bytes_out += n as u64;
            }
            Err(e) => {
                self.counters.send_errors += 1;
                tracing::trace!(leg = %self.shared.id, remote = %self.remote, "send: {e}");
            }
        }
    }

    fn next_dtmf_step(&mut self, media_ts: u32, frame: &mut [i16]) -> Option<DigitStep> {
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
                let rate = if inband { self.rate } else { self.dtmf_rate };
                job.sending = Some(DigitSender::with_rate(event, inband, rate));
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
        self.counters.concealed = j.concealed;
        self.counters.recovered = j.recovered;
        self.counters.jitter_lag_samples = self.jitter.measured_lag().unwrap_or(0);
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
        if let Transport::WebRtc(pipe) = &self.transport {
            pipe.close();
        }
        self.player.stop(PlayOutcome::Closed);
        self.stop_dtmf(PlayOutcome::Closed);
        self.shared.shut();
    }
}
