//! Jitter buffer: turns RTP packets that arrive late, early, reordered or
//! twice into a steady stream of 20 ms frames.
//!
//! Packets are stored encoded and decoded at playout (so a codec with state,
//! packet-loss concealment or FEC plugs in through [`PayloadDecoder`]).
//! Playout follows the RTP timestamps: the buffer keeps a playout position
//! `play_ts` on the sender's timeline. The first packet anchors it
//! `target_depth` samples behind that packet.
//!
//! Adaptive mode ([`JitterConfig::adaptive`], packets given with their
//! arrival time through [`JitterBuffer::insert_at`]): an estimator measures
//! how late packets come relative to the fastest recent one, and the buffer
//! holds that much (the "lag") plus a small margin. It converges on the
//! target by shortening or lengthening single frames by up to 2.5 ms with a
//! pitch-matched cross-fade (`timescale`), which also absorbs clock drift
//! between the sender and our tick. Gaps are concealed (codec PLC, or Opus
//! FEC from the next packet when that is the only one missing).

mod estimator;
mod timescale;

use estimator::DelayEstimator;

use crate::rtp::{SeqExtender, TimestampExtender};

/// Largest payload stored: 60 ms of G.711, or Opus up to 256 kbit/s.
pub const MAX_PAYLOAD: usize = 640;
/// Largest decoded packet: 60 ms at 48 kHz.
pub const MAX_DECODED: usize = 2880;
/// Room for one frame plus the largest time-scale shift.
const FIFO: usize = 2 * crate::MAX_FRAME;
/// Packets held at once (ring indexed by extended sequence number).
const SLOTS: usize = 32;
/// A sequence jump larger than this is a restarted stream (RFC 3550 A.1).
const MAX_DROPOUT: u64 = 3000;
/// Sequence numbers remembered for duplicate detection.
const SEQ_WINDOW: u64 = 128;

/// Decodes one payload format for the jitter buffer.
pub trait PayloadDecoder {
    /// How many samples `payload` decodes to (0 if it is unusable).
    fn samples(&self, payload: &[u8]) -> usize;
    /// Decodes `payload` into `out`, returning the samples written.
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize;
    /// Fills `out` for samples that never arrived (packet-loss
    /// concealment; silence by default).
    fn conceal(&mut self, out: &mut [i16]) {
        out.fill(0);
    }
    /// Rebuilds the audio of `out.len()` samples lost right before the
    /// packet `next` from redundancy inside `next` (Opus in-band FEC).
    /// False if the codec or the packet has none.
    fn recover(&mut self, next: &[u8], out: &mut [i16]) -> bool {
        let _ = (next, out);
        false
    }
}

/// Buffer depths, in samples at the stream's clock rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// How far behind a freshly anchored packet playout starts.
    pub target_depth: u32,
    /// A packet further than this ahead of playout re-anchors playout on it
    /// (drops what is older) so latency stays bounded.
    pub max_depth: u32,
    /// Follow the measured jitter and the sender's clock (see the module
    /// docs); `None` keeps `target_depth` fixed.
    pub adaptive: Option<Adaptive>,
}

/// Bounds of an adaptive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adaptive {
    /// The stream's clock rate (samples per second).
    pub rate: u32,
    /// Extra lag kept above what the arrivals needed.
    pub margin: u32,
    /// Lag bounds.
    pub min_lag: u32,
    pub max_lag: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        // Two frames of buffering (plus up to one frame of tick phase), and
        // at most 200 ms of latency.
        JitterConfig {
            target_depth: 2 * crate::FRAME_SAMPLES as u32,
            max_depth: 1600,
            adaptive: None,
        }
    }
}

impl JitterConfig {
    /// An adaptive buffer for a stream at `rate`: starts one frame deep,
    /// keeps 5 ms above the measured need, never more than 200 ms.
    pub fn adaptive(rate: u32) -> JitterConfig {
        let ms = |ms: u32| rate / 1000 * ms;
        JitterConfig {
            target_depth: ms(20),
            max_depth: ms(300),
            adaptive: Some(Adaptive {
                rate,
                margin: ms(5),
                min_lag: 0,
                max_lag: ms(200),
            }),
        }
    }
}

/// Counters of what the buffer did with the packets it was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Packets stored for playout.
    pub accepted: u64,
    pub duplicates: u64,
    /// Arrived (or were still buffered) after their playout time.
    pub late: u64,
    /// Sequence numbers never received (gaps filled later are not counted).
    pub lost: u64,
    /// New SSRC or restarted sequence: the buffer started over.
    pub resets: u64,
    /// Playout moved to a packet because it was too far off (rebuffering
    /// after an underrun, or catching up when too far behind).
    pub reanchors: u64,
    /// Frames popped with nothing to play while a stream was active.
    pub underruns: u64,
    /// Lost packets rebuilt from the next packet's FEC.
    pub recovered: u64,
    /// Samples filled by concealment.
    pub concealed: u64,
    /// Frames shortened / lengthened to follow the target depth.
    pub compressed: u64,
    pub expanded: u64,
}

/// What [`JitterBuffer::insert`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    Accepted,
    Duplicate,
    Late,
    /// Empty, undecodable or bigger than [`MAX_PAYLOAD`].
    Rejected,
}

/// What one popped frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// Only received audio.
    Audio,
    /// Some received audio, some concealed.
    Partial,
    /// Nothing received for this frame (concealed / silence).
    Missing,
    /// No stream yet: silence.
    Idle,
}

impl Frame {
    /// The frame carries audio from the sender.
    pub fn has_audio(self) -> bool {
        matches!(self, Frame::Audio | Frame::Partial)
    }
}

/// What the buffer knows of one stored packet. The payloads live apart
/// (`JitterBuffer::data`) so scanning the slots touches a few cache lines,
/// not 32 payloads: with a thousand legs per tick that matters.
#[derive(Clone, Copy)]
struct Slot {
    used: bool,
    len: u16,
    samples: u32,
    ext_seq: u64,
    ext_ts: u64,
}

const EMPTY_SLOT: Slot = Slot {
    used: false,
    len: 0,
    samples: 0,
    ext_seq: 0,
    ext_ts: 0,
};

/// A fixed-depth jitter buffer for one RTP stream (allocates only when
/// created).
pub struct JitterBuffer {
    config: JitterConfig,
    slots: [Slot; SLOTS],
    data: Box<[[u8; MAX_PAYLOAD]; SLOTS]>,
    ssrc: Option<u32>,
    seq: SeqExtender,
    ts: TimestampExtender,
    /// Bit `i` set: extended sequence `highest - i` was received.
    seen: u128,
    /// Next sample to play, on the sender's extended timestamp line.
    play_ts: Option<u64>,
    /// The decoded packet being played: `carry[..carry_len]` starts at `carry_ts`.
    carry: Box<[i16; MAX_DECODED]>,
    carry_ts: u64,
    carry_len: usize,
    /// Extended timestamp of the last packet inserted.
    last_ext_ts: u64,
    /// Samples taken out at `play_ts` but not played yet (after a
    /// time-scale step): `fifo[..fifo_len]` ends at `play_ts`.
    fifo: Fifo,
    fifo_len: usize,
    estimator: DelayEstimator,
    /// Smallest lag (samples buffered beyond one frame) seen at a pop in
    /// the current window, and pops in it.
    window_min_lag: u64,
    window_pops: u32,
    /// The lag measured over the last full window.
    lag: Option<u64>,
    stats: JitterStats,
}

/// The fifo's storage; `Default` only for lending it out during a pop (a
/// zero-length box does not allocate).
struct Fifo(Box<[i16]>);

impl Default for Fifo {
    fn default() -> Fifo {
        Fifo(Box::new([]))
    }
}

impl Fifo {
    fn new() -> Fifo {
        Fifo(vec![0; FIFO].into_boxed_slice())
    }
}

impl std::ops::Deref for Fifo {
    type Target = [i16];
    fn deref(&self) -> &[i16] {
        &self.0
    }
}

impl std::ops::DerefMut for Fifo {
    fn deref_mut(&mut self) -> &mut [i16] {
        &mut self.0
    }
}

/// What one pop does to the playout rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Keep,
    /// Play `k` more samples of input in this frame (shrink the lag).
    Compress(usize),
    /// Play up to `k` fewer (grow the lag).
    Expand(usize),
}

/// Pops per adaptation window (200 ms).
const ADAPT_WINDOW: u32 = 10;

impl JitterBuffer {
    pub fn new(config: JitterConfig) -> JitterBuffer {
        JitterBuffer {
            config,
            slots: [EMPTY_SLOT; SLOTS],
            data: Box::new([[0; MAX_PAYLOAD]; SLOTS]),
            ssrc: None,
            seq: SeqExtender::default(),
            ts: TimestampExtender::default(),
            seen: 0,
            play_ts: None,
            carry: Box::new([0; MAX_DECODED]),
            carry_ts: 0,
            carry_len: 0,
            last_ext_ts: 0,
            fifo: Fifo::new(),
            fifo_len: 0,
            estimator: DelayEstimator::default(),
            window_min_lag: u64::MAX,
            window_pops: 0,
            lag: None,
            stats: JitterStats::default(),
        }
    }

    /// The lag the buffer aims for now (samples beyond the frame being
    /// played): the configured depth, or in adaptive mode the measured need
    /// plus the margin.
    pub fn target_lag(&self) -> u32 {
        match self.config.adaptive {
            None => self.config.target_depth,
            Some(a) => (self.estimator.needed() + a.margin).clamp(a.min_lag, a.max_lag),
        }
    }

    /// The lag measured over the last adaptation window, if any: how much
    /// audio waited in the buffer beyond the frame being played, at its
    /// smallest (the delay the buffer adds in steady state).
    pub fn measured_lag(&self) -> Option<u64> {
        self.lag
    }

    pub fn config(&self) -> JitterConfig {
        self.config
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// Samples buffered ahead of playout (received, not yet played).
    pub fn buffered_samples(&self) -> u64 {
        let Some(play) = self.play_ts else { return 0 };
        let carry_end = self.carry_ts + self.carry_len as u64;
        let mut end = if carry_end > play { carry_end } else { play };
        for s in self.slots.iter().filter(|s| s.used) {
            end = end.max(s.ext_ts + u64::from(s.samples));
        }
        end - play + self.fifo_len as u64
    }

    /// Stores an audio packet that arrived at `arrival_ms` (on the caller's
    /// clock): in adaptive mode its delay feeds the depth estimate.
    pub fn insert_at(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload: &[u8],
        decoder: &impl PayloadDecoder,
        arrival_ms: u64,
    ) -> Insert {
        let r = self.insert(ssrc, seq, ts, payload, decoder);
        if let (Insert::Accepted, Some(a)) = (r, self.config.adaptive) {
            // This packet's own timestamp: a reordered one was simply late.
            let arrival = (arrival_ms as i64) * i64::from(a.rate) / 1000;
            self.estimator.on_packet(arrival, self.last_ext_ts as i64);
        }
        r
    }

    /// Stores an audio packet.
    pub fn insert(
        &mut self,
        ssrc: u32,
        seq: u16,
        ts: u32,
        payload: &[u8],
        decoder: &impl PayloadDecoder,
    ) -> Insert {
        let samples = decoder.samples(payload);
        if payload.is_empty() || payload.len() > MAX_PAYLOAD || samples == 0 {
            return Insert::Rejected;
        }
        let Some((ext_seq, newest)) = self.track_sequence(ssrc, seq) else {
            self.stats.duplicates += 1;
            return Insert::Duplicate;
        };
        let ext_ts = self.ts.extend(ts);
        self.last_ext_ts = ext_ts;
        let samples = samples as u64;
        if samples as usize > MAX_DECODED {
            return Insert::Rejected;
        }

        let play = match self.play_ts {
            None => self.reanchor(ext_ts, false),
            Some(play) if ext_ts + samples <= play => {
                // Late. If it is the newest packet and nothing is left to play,
                // the stream fell behind playout (delay spike, slower clock):
                // rebuffer on it. Otherwise drop it.
                if newest && self.is_drained() {
                    self.reanchor(ext_ts, true)
                } else {
                    self.stats.late += 1;
                    return Insert::Late;
                }
            }
            Some(play) if ext_ts > play + u64::from(self.config.max_depth) => {
                self.reanchor(ext_ts, true)
            }
            Some(play) => play,
        };
        debug_assert!(ext_ts + samples > play);

        let index = (ext_seq % SLOTS as u64) as usize;
        let slot = &mut self.slots[index];
        if slot.used {
            if slot.ext_seq > ext_seq {
                // A newer packet owns the slot: this one is hopelessly old.
                self.stats.late += 1;
                return Insert::Late;
            }
            // An old packet never played: it would be late by now.
            self.stats.late += 1;
        }
        slot.used = true;
        slot.ext_seq = ext_seq;
        slot.ext_ts = ext_ts;
        slot.samples = samples as u32;
        slot.len = payload.len() as u16;
        self.data[index][..payload.len()].copy_from_slice(payload);
        self.stats.accepted += 1;
        Insert::Accepted
    }

    /// Records the sequence number of a packet of this stream that carries no
    /// audio (telephone-event, comfort noise), so it is not counted as lost.
    pub fn note_non_audio(&mut self, ssrc: u32, seq: u16) {
        if self.ssrc == Some(ssrc) {
            let _ = self.track_sequence(ssrc, seq);
        }
    }

    /// Plays out the next `out.len()` samples (at most a frame at 48 kHz).
    pub fn pop(&mut self, decoder: &mut impl PayloadDecoder, out: &mut [i16]) -> Frame {
        let n = out.len().min(crate::MAX_FRAME);
        let out = &mut out[..n];
        let Some(play) = self.play_ts else {
            out.fill(0);
            return Frame::Idle;
        };
        let lag = self.buffered_samples().saturating_sub(n as u64);
        let step = self.adjustment(lag, n);
        // Take what this frame needs (more or fewer samples to shift the
        // depth) into the fifo, behind what is left there.
        let want = match step {
            Step::Compress(k) => n + k,
            Step::Keep | Step::Expand(_) => n,
        };
        if step == Step::Keep && self.fifo_len == 0 {
            // The common case: straight into `out`, no fifo.
            let received = self.take(decoder, play, out);
            return self.classify(received, n);
        }
        let received = if self.fifo_len < want {
            let (from, to) = (self.fifo_len, want);
            // Lend the fifo out so `take` can borrow the rest of `self`.
            let mut fifo = std::mem::take(&mut self.fifo);
            let taken = self.take(decoder, play, &mut fifo[from..to]);
            self.fifo = fifo;
            self.fifo_len = to;
            from + taken
        } else {
            n
        };
        let input = &self.fifo[..self.fifo_len];
        let step_hint = (self.config.adaptive.map_or(8000, |a| a.rate) / 8000).max(1) as usize;
        let consumed = match step {
            Step::Keep => {
                out.copy_from_slice(&input[..n]);
                n
            }
            Step::Compress(k) => {
                self.stats.compressed += 1;
                timescale::compress(input, out, k, step_hint)
            }
            Step::Expand(k) => {
                self.stats.expanded += 1;
                timescale::expand(input, out, k, step_hint)
            }
        };
        let consumed = consumed.min(self.fifo_len);
        self.fifo.copy_within(consumed..self.fifo_len, 0);
        self.fifo_len -= consumed;
        self.classify(received.min(n), n)
    }

    fn classify(&mut self, received: usize, n: usize) -> Frame {
        if received >= n {
            Frame::Audio
        } else if received > 0 {
            Frame::Partial
        } else {
            self.stats.underruns += 1;
            Frame::Missing
        }
    }

    /// Decides whether this frame shortens or lengthens playout, from the
    /// lag (samples buffered beyond this frame) at its smallest over the
    /// last window.
    fn adjustment(&mut self, lag: u64, n: usize) -> Step {
        let Some(a) = self.config.adaptive else {
            return Step::Keep;
        };
        self.window_min_lag = self.window_min_lag.min(lag);
        self.window_pops += 1;
        if self.window_pops < ADAPT_WINDOW {
            return Step::Keep;
        }
        let measured = self.window_min_lag;
        self.window_pops = 0;
        self.window_min_lag = u64::MAX;
        self.lag = Some(measured);
        let target = u64::from(self.target_lag());
        let tolerance = (a.rate / 1000 * 2) as u64; // 2 ms
        let max_shift = (n / timescale::MAX_SHIFT_DIVISOR) as u64;
        if measured > target + tolerance {
            Step::Compress((measured - target).min(max_shift) as usize)
        } else if measured + tolerance < target && self.fifo_len == 0 {
            Step::Expand((target - measured).min(max_shift) as usize)
        } else {
            Step::Keep
        }
    }

    /// Fills `out` with the samples at the playout position (decoding,
    /// concealing or recovering gaps) and advances it. Returns how many
    /// samples were received audio.
    fn take(&mut self, decoder: &mut impl PayloadDecoder, mut play: u64, out: &mut [i16]) -> usize {
        let mut pos = 0;
        let mut received = 0;
        while pos < out.len() {
            let rest = out.len() - pos;
            // The decoded packet covers the playout position.
            let carry_end = self.carry_ts + self.carry_len as u64;
            if self.carry_ts <= play && play < carry_end {
                let off = (play - self.carry_ts) as usize;
                let n = (self.carry_len - off).min(rest);
                out[pos..pos + n].copy_from_slice(&self.carry[off..off + n]);
                pos += n;
                play += n as u64;
                received += n;
                continue;
            }
            let Some(i) = self.earliest_slot() else {
                decoder.conceal(&mut out[pos..]);
                self.stats.concealed += rest as u64;
                play += rest as u64;
                break;
            };
            let slot = &mut self.slots[i];
            if slot.ext_ts + u64::from(slot.samples) <= play {
                slot.used = false;
                self.stats.late += 1;
            } else if slot.ext_ts > play {
                // A gap before the next packet. If exactly the packet before
                // it is missing, its FEC may rebuild the whole gap.
                let gap = (slot.ext_ts - play) as usize;
                let follows_carry = carry_end == play && self.carry_len > 0;
                if follows_carry && gap <= MAX_DECODED && gap <= slot.samples as usize {
                    let payload = &self.data[i][..usize::from(slot.len)];
                    if decoder.recover(payload, &mut self.carry[..gap]) {
                        self.stats.recovered += 1;
                        self.carry_ts = play;
                        self.carry_len = gap;
                        continue;
                    }
                }
                let n = gap.min(rest);
                decoder.conceal(&mut out[pos..pos + n]);
                self.stats.concealed += n as u64;
                pos += n;
                play += n as u64;
            } else if slot.ext_ts == play && slot.samples as usize == rest {
                // Exactly the rest of the request: decode in place.
                slot.used = false;
                let n = decoder.decode(&self.data[i][..usize::from(slot.len)], &mut out[pos..]);
                if n == rest {
                    self.carry_len = 0;
                    pos += n;
                    play += n as u64;
                    received += n;
                } else {
                    // Undecodable: conceal it like a gap.
                    decoder.conceal(&mut out[pos..]);
                    self.stats.concealed += rest as u64;
                    pos += rest;
                    play += rest as u64;
                }
            } else {
                slot.used = false;
                let n = decoder.decode(&self.data[i][..usize::from(slot.len)], &mut self.carry[..]);
                self.carry_len = n;
                self.carry_ts = slot.ext_ts;
                if n == 0 {
                    // Undecodable after all: skip it as a gap.
                    self.carry_len = 0;
                }
            }
        }
        self.play_ts = Some(play);
        received
    }

    /// Forgets the stream (a new one anchors afresh). Counters are kept.
    pub fn reset(&mut self) {
        for s in self.slots.iter_mut() {
            s.used = false;
        }
        self.ssrc = None;
        self.seq.reset();
        self.ts.reset();
        self.seen = 0;
        self.play_ts = None;
        self.carry_len = 0;
        self.fifo_len = 0;
        self.estimator.reset();
        self.window_pops = 0;
        self.window_min_lag = u64::MAX;
    }

    /// Sequence bookkeeping: SSRC changes, restarts, duplicates and gaps.
    /// Returns the extended sequence number and whether it is the newest
    /// yet, or `None` for a duplicate.
    fn track_sequence(&mut self, ssrc: u32, seq: u16) -> Option<(u64, bool)> {
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.stats.resets += 1;
            }
            self.reset();
            self.ssrc = Some(ssrc);
        }
        let Some(highest) = self.seq.highest() else {
            let ext = self.seq.extend(seq);
            self.seen = 1;
            return Some((ext, true));
        };
        let ext = self.seq.extend(seq);
        if ext.abs_diff(highest) > MAX_DROPOUT {
            // The sender restarted its sequence: start over with this packet.
            self.stats.resets += 1;
            self.reset();
            self.ssrc = Some(ssrc);
            let ext = self.seq.extend(seq);
            self.seen = 1;
            return Some((ext, true));
        }
        if ext > highest {
            let gap = ext - highest;
            self.seen = if gap >= SEQ_WINDOW {
                0
            } else {
                self.seen << gap
            };
            self.seen |= 1;
            self.stats.lost += gap - 1;
            Some((ext, true))
        } else {
            let age = highest - ext;
            if age >= SEQ_WINDOW {
                // Too old to tell; it is late in any case.
                return Some((ext, false));
            }
            let bit = 1u128 << age;
            if self.seen & bit != 0 {
                return None;
            }
            self.seen |= bit;
            // It fills a gap counted as lost.
            self.stats.lost = self.stats.lost.saturating_sub(1);
            Some((ext, false))
        }
    }

    /// Moves playout so that the packet at `ext_ts` plays after the target
    /// depth; drops what would then be late. Returns the new position.
    fn reanchor(&mut self, ext_ts: u64, count: bool) -> u64 {
        let depth = match self.config.adaptive {
            // Anchor with the packet's own frame in hand plus the target lag.
            Some(_) => self.target_lag().max(self.config.target_depth),
            None => self.config.target_depth,
        };
        let play = ext_ts.saturating_sub(u64::from(depth));
        if count {
            self.stats.reanchors += 1;
        }
        for s in self.slots.iter_mut().filter(|s| s.used) {
            if s.ext_ts + u64::from(s.samples) <= play {
                s.used = false;
                self.stats.late += 1;
            }
        }
        // What was decoded belongs to the old timeline (moving back it would
        // replay, moving ahead it is past).
        self.carry_len = 0;
        self.fifo_len = 0;
        self.play_ts = Some(play);
        play
    }

    fn is_drained(&self) -> bool {
        let carry_left = self
            .play_ts
            .is_some_and(|p| self.carry_ts + (self.carry_len as u64) > p);
        !carry_left && self.slots.iter().all(|s| !s.used)
    }

    fn earliest_slot(&self) -> Option<usize> {
        // 32 slots: a scan is cheaper than keeping an order.
        let mut best: Option<usize> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.used && best.is_none_or(|b| s.ext_ts < self.slots[b].ext_ts) {
                best = Some(i);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test payload: every byte decodes to its value as a sample, so the
    /// output shows which packet each sample came from.
    struct Bytes;
    impl PayloadDecoder for Bytes {
        fn samples(&self, payload: &[u8]) -> usize {
            payload.len()
        }
        fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
            for (o, &b) in out.iter_mut().zip(payload) {
                *o = i16::from(b);
            }
            payload.len().min(out.len())
        }
    }

    const N: usize = 160;

    /// Packet `k` of a stream: seq `s0 + k`, ts `t0 + 160 k`, all bytes `value`.
    fn put(jb: &mut JitterBuffer, ssrc: u32, seq: u16, ts: u32, value: u8) -> Insert {
        jb.insert(ssrc, seq, ts, &[value; N], &Bytes)
    }

    /// Pops one frame; returns its kind and the value of its first and last sample.
    fn pop(jb: &mut JitterBuffer) -> (Frame, i16, i16) {
        let mut out = [0i16; N];
        let kind = jb.pop(&mut Bytes, &mut out);
        (kind, out[0], out[N - 1])
    }

    fn values(jb: &mut JitterBuffer, frames: usize) -> Vec<i16> {
        (0..frames).map(|_| pop(jb).1).collect()
    }

    #[test]
    fn idle_until_first_packet_then_target_delay() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        assert_eq!(pop(&mut jb).0, Frame::Idle);
        assert_eq!(put(&mut jb, 1, 10, 1000, 7), Insert::Accepted);
        // Two frames of buffering, then the packet.
        assert_eq!(pop(&mut jb).0, Frame::Missing);
        assert_eq!(pop(&mut jb).0, Frame::Missing);
        assert_eq!(pop(&mut jb), (Frame::Audio, 7, 7));
    }

    #[test]
    fn in_order_stream_plays_every_packet_once() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut heard = Vec::new();
        for k in 0..50u16 {
            put(&mut jb, 1, k, u32::from(k) * 160, (k % 250) as u8 + 1);
            heard.push(pop(&mut jb).1);
        }
        heard.extend(values(&mut jb, 2));
        let expected: Vec<i16> = (0..50).map(|k| k as i16 + 1).collect();
        assert_eq!(&heard[2..], &expected[..]);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().late, 0);
    }

    #[test]
    fn reorders_within_depth() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        put(&mut jb, 1, 0, 0, 1);
        assert_eq!(pop(&mut jb).0, Frame::Missing);
        // Packets 2 and 1 arrive swapped in the same interval.
        put(&mut jb, 1, 2, 320, 3);
        put(&mut jb, 1, 1, 160, 2);
        assert_eq!(pop(&mut jb).0, Frame::Missing);
        put(&mut jb, 1, 3, 480, 4);
        assert_eq!(values(&mut jb, 4), vec![1, 2, 3, 4]);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().accepted, 4);
    }

    #[test]
    fn drops_duplicates() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        assert_eq!(put(&mut jb, 1, 0, 0, 1), Insert::Accepted);
        assert_eq!(put(&mut jb, 1, 0, 0, 1), Insert::Duplicate);
        assert_eq!(put(&mut jb, 1, 1, 160, 2), Insert::Accepted);
        assert_eq!(values(&mut jb, 4), vec![0, 0, 1, 2]);
        // A duplicate of an already played packet is still a duplicate.
        assert_eq!(put(&mut jb, 1, 0, 0, 1), Insert::Duplicate);
        assert_eq!(jb.stats().duplicates, 2);
    }

    #[test]
    fn drops_late_packets_and_conceals_them() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        put(&mut jb, 1, 0, 0, 1);
        put(&mut jb, 1, 2, 320, 3);
        put(&mut jb, 1, 3, 480, 4);
        // Packet 1 is missing when its time comes: silence.
        assert_eq!(values(&mut jb, 4), vec![0, 0, 1, 0]);
        assert_eq!(jb.stats().lost, 1);
        // It shows up afterwards: late, dropped, no longer lost.
        assert_eq!(put(&mut jb, 1, 1, 160, 2), Insert::Late);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(values(&mut jb, 2), vec![3, 4]);
    }

    #[test]
    fn handles_sequence_and_timestamp_wrap() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut heard = Vec::new();
        for k in 0..10u16 {
            let seq = 65530u16.wrapping_add(k);
            let ts = (u32::MAX - 800).wrapping_add(u32::from(k) * 160);
            assert_eq!(put(&mut jb, 9, seq, ts, k as u8 + 1), Insert::Accepted);
            heard.push(pop(&mut jb).1);
        }
        heard.extend(values(&mut jb, 2));
        assert_eq!(&heard[2..], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(jb.stats().lost, 0);
        assert_eq!(jb.stats().resets, 0);
    }

    #[test]
    fn new_ssrc_starts_over() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for k in 0..5u16 {
            put(&mut jb, 1, 100 + k, 8000 + u32::from(k) * 160, 1);
            pop(&mut jb);
        }
        // Another source with unrelated numbering.
        assert_eq!(put(&mut jb, 2, 7, 123_456, 9), Insert::Accepted);
        assert_eq!(jb.stats().resets, 1);
        assert_eq!(values(&mut jb, 3), vec![0, 0, 9]);
        // Its second packet is in order, not a duplicate of the old stream.
        assert_eq!(put(&mut jb, 2, 8, 123_616, 10), Insert::Accepted);
        assert_eq!(values(&mut jb, 1), vec![10]);
    }

    #[test]
    fn sequence_restart_starts_over() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        put(&mut jb, 1, 100, 0, 1);
        assert_eq!(put(&mut jb, 1, 30_000, 160, 2), Insert::Accepted);
        assert_eq!(jb.stats().resets, 1);
    }

    #[test]
    fn gap_in_sequence_counts_lost() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        put(&mut jb, 1, 0, 0, 1);
        put(&mut jb, 1, 4, 640, 5);
        assert_eq!(jb.stats().lost, 3);
        // A telephone-event packet between audio packets is not a loss.
        jb.note_non_audio(1, 5);
        put(&mut jb, 1, 6, 800, 6);
        assert_eq!(jb.stats().lost, 3);
    }

    #[test]
    fn rebuffers_after_underrun_when_stream_falls_behind() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        put(&mut jb, 1, 0, 0, 1);
        values(&mut jb, 10); // plays packet 0, then runs dry
                             // Packet 1 arrives 160 ms late: playout is past it, nothing buffered.
        assert_eq!(put(&mut jb, 1, 1, 160, 2), Insert::Accepted);
        assert_eq!(jb.stats().reanchors, 1);
        assert_eq!(values(&mut jb, 3), vec![0, 0, 2]);
    }

    #[test]
    fn catches_up_when_too_far_behind() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        put(&mut jb, 1, 0, 0, 1);
        // The sender's timestamps jump one second ahead.
        assert_eq!(put(&mut jb, 1, 1, 8000, 2), Insert::Accepted);
        assert_eq!(jb.stats().reanchors, 1);
        assert_eq!(values(&mut jb, 3), vec![0, 0, 2]);
    }

    #[test]
    fn any_packet_duration_fills_frames() {
        // 10 ms packets: two per frame.
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for k in 0..8u16 {
            jb.insert(1, k, u32::from(k) * 80, &[k as u8 + 1; 80], &Bytes);
        }
        let frames: Vec<(Frame, i16, i16)> = (0..6).map(|_| pop(&mut jb)).collect();
        assert_eq!(frames[2], (Frame::Audio, 1, 2));
        assert_eq!(frames[3], (Frame::Audio, 3, 4));
        assert_eq!(frames[5], (Frame::Audio, 7, 8));
        // 30 ms packets span frame boundaries.
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for k in 0..4u16 {
            jb.insert(1, k, u32::from(k) * 240, &[k as u8 + 1; 240], &Bytes);
        }
        let frames: Vec<(Frame, i16, i16)> = (0..8).map(|_| pop(&mut jb)).collect();
        assert_eq!(frames[2], (Frame::Audio, 1, 1));
        assert_eq!(frames[3], (Frame::Audio, 1, 2));
        assert_eq!(frames[4], (Frame::Audio, 2, 2));
        assert_eq!(frames[5], (Frame::Audio, 3, 3));
    }

    #[test]
    fn rejects_oversized_and_empty_payloads() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        assert_eq!(jb.insert(1, 0, 0, &[], &Bytes), Insert::Rejected);
        assert_eq!(
            jb.insert(1, 0, 0, &[0; MAX_PAYLOAD + 1], &Bytes),
            Insert::Rejected
        );
        assert_eq!(pop(&mut jb).0, Frame::Idle);
    }

    #[test]
    fn random_arrival_order_never_panics_and_stays_bounded() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut state = 0x9e37_79b9_u32;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state
        };
        for k in 0..5000u32 {
            let jitter = next() % 8;
            let seq = k.saturating_sub(jitter) as u16;
            let ssrc = if next() % 997 == 0 { next() } else { 1 };
            let len = (next() % 400 + 1) as usize;
            jb.insert(
                ssrc,
                seq,
                u32::from(seq).wrapping_mul(160),
                &vec![3; len],
                &Bytes,
            );
            if k % 2 == 0 {
                pop(&mut jb);
            }
            assert!(jb.buffered_samples() <= 3 * 1600);
        }
    }
}
