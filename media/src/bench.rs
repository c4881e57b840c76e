//! A conference driven without sockets, for benchmarks: real legs (jitter
//! buffers, decoders, talking and DTMF detection, encoders), the real
//! conference (selection, mix, shared encodes), fed with RTP packets as if
//! they had just been read, and sending nothing. What it leaves out is the
//! system calls, which `switchboard-load` measures end to end.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;

use crate::codec::{LegEncoder, MAX_ENCODED};
use crate::conference::{ConfShared, Conference};
use crate::leg::{ConfLink, Leg, LegShared};
use crate::rtp::RtpHeader;
use crate::{Codec, LegId, LegParams, MediaError, ParticipantOptions};

/// One participant's input: a loop of encoded frames.
struct Feed {
    frames: Vec<Vec<u8>>,
    payload_type: u8,
    step: u32,
    seq: u16,
    ts: u32,
}

/// A room of `n` participants, `talkers` of them talking (a tone), the
/// rest sending low background noise.
pub struct RoomBench {
    legs: Vec<Option<Box<Leg>>>,
    conf: Conference,
    feeds: Vec<Feed>,
    source: SocketAddr,
    packet: Vec<u8>,
    out: Box<[u8; 2048]>,
    now_ms: u64,
    tick: usize,
    // Keeps the legs' sockets' peer alive (nothing is sent to it).
    _sink: UdpSocket,
}

impl RoomBench {
    /// `codec(i)` is participant `i`'s codec.
    pub fn new(
        n: usize,
        talkers: usize,
        codec: impl Fn(usize) -> Codec,
    ) -> Result<RoomBench, MediaError> {
        let sink = UdpSocket::bind("127.0.0.1:0")?;
        let source = sink.local_addr()?;
        let shared = Arc::new(ConfShared::new(1, "bench".into(), 0));
        let mut conf = Conference::new(shared);
        let mut legs = Vec::with_capacity(n);
        let mut feeds = Vec::with_capacity(n);
        for i in 0..n {
            let c = codec(i);
            let socket = UdpSocket::bind("127.0.0.1:0")?;
            let pt = c.static_payload_type().unwrap_or(111);
            let params = LegParams {
                remote: source,
                codec: c,
                payload_type: pt,
                dtmf_payload_type: Some(101),
                label: format!("bench-{i}"),
            };
            let id = LegId(i as u64);
            let shared = Arc::new(LegShared::new(
                id,
                params.label.clone(),
                socket.local_addr()?,
                c,
            ));
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            let mut leg = Leg::new(shared, crate::leg::Transport::Udp(socket), &params, tx)?;
            leg.transmit = false;
            leg.conference = Some(ConfLink { id: 1, slot: 0 });
            conf.add(i, id, c, ParticipantOptions::default());
            legs.push(Some(Box::new(leg)));
            feeds.push(feed(c, pt, i < talkers, i)?);
        }
        Ok(RoomBench {
            legs,
            conf,
            feeds,
            source,
            packet: vec![0; 12 + MAX_ENCODED],
            out: Box::new([0; 2048]),
            now_ms: 0,
            tick: 0,
            _sink: sink,
        })
    }

    /// One 20 ms tick: every participant's packet arrives, then the legs
    /// pull audio, the room mixes, every leg builds its packet.
    pub fn tick(&mut self) {
        self.now_ms += 20;
        for (leg, feed) in self.legs.iter_mut().zip(self.feeds.iter_mut()) {
            let Some(leg) = leg.as_deref_mut() else {
                continue;
            };
            let frame = &feed.frames[self.tick % feed.frames.len()];
            RtpHeader {
                marker: false,
                payload_type: feed.payload_type,
                sequence: feed.seq,
                timestamp: feed.ts,
                ssrc: 0x1234,
            }
            .write(&mut self.packet);
            self.packet[12..12 + frame.len()].copy_from_slice(frame);
            feed.seq = feed.seq.wrapping_add(1);
            feed.ts = feed.ts.wrapping_add(feed.step);
            leg.on_datagram(&self.packet[..12 + frame.len()], self.source, self.now_ms);
            leg.pull_audio(self.now_ms);
        }
        self.conf.mix(&mut self.legs);
        for leg in self.legs.iter_mut().flatten() {
            let shared = match leg.heard() {
                crate::leg::Heard::Shared(g) => self.conf.shared_for(g, leg.can_share_payload()),
                _ => None,
            };
            leg.send(&mut self.out[..], 0, shared);
        }
        self.tick += 1;
    }

    /// Encodes in the last tick (private and shared).
    pub fn encodes(&self) -> u64 {
        let private: u64 = self.legs.iter().flatten().map(|l| l.encodes).sum();
        private + self.conf.encodes
    }

    /// The participants mixed in the last tick.
    pub fn mixed(&self) -> usize {
        self.conf.mixed()
    }
}

fn feed(codec: Codec, pt: u8, talking: bool, seed: usize) -> Result<Feed, MediaError> {
    let rate = codec.pcm_rate();
    let n = codec.frame_samples();
    let mut enc = LegEncoder::new(codec)?;
    let mut state = (seed as u32).wrapping_mul(2_654_435_761) | 1;
    let frames = (0..50)
        .map(|k| {
            let pcm: Vec<i16> = (0..n)
                .map(|i| {
                    if talking {
                        let t = (k * n + i) as f64 / f64::from(rate);
                        (6000.0 * (std::f64::consts::TAU * (300.0 + 100.0 * seed as f64) * t).sin())
                            as i16
                    } else {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        (state % 61) as i16 - 30 // about -60 dBFS of noise
                    }
                })
                .collect();
            let mut out = vec![0u8; MAX_ENCODED];
            let len = enc.encode(&pcm, &mut out);
            out.truncate(len);
            out
        })
        .collect();
    Ok(Feed {
        frames,
        payload_type: pt,
        step: n as u32,
        seq: 1,
        ts: 1000,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_mixes_three_and_encodes_talkers_plus_one_per_codec() {
        let mut room = RoomBench::new(
            30,
            3,
            |i| if i % 2 == 0 { Codec::Opus } else { Codec::Pcmu },
        )
        .unwrap();
        for _ in 0..60 {
            room.tick();
        }
        assert_eq!(room.mixed(), 3);
        // 3 private encodes + one shared per codec.
        assert_eq!(room.encodes(), 5);
    }
}
