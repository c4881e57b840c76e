//! Test callers: plain UDP sockets that act as phones (send paced G.711 RTP,
//! record what they receive), and helpers to wait for conditions.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchboard_media::analysis::goertzel_power;
use switchboard_media::rtp::{RtpHeader, RtpPacket};
use switchboard_media::{g711, Codec, LegParams, MediaConfig, MediaEngine};

pub const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// Generous: CI machines are small and busy.
pub const TIMEOUT: Duration = Duration::from_secs(20);
pub const TONE_AMPLITUDE: f64 = 8000.0;
/// Power of a tone that is clearly heard (the tone itself is ~1.6e7).
pub const HEARD: f64 = 1.0e6;

pub fn engine(ports: std::ops::RangeInclusive<u16>, workers: usize) -> MediaEngine {
    MediaEngine::start(MediaConfig {
        bind_ip: LOCALHOST,
        rtp_ports: ports,
        workers,
    })
    .expect("engine starts")
}

pub fn params(remote: SocketAddr, label: &str) -> LegParams {
    LegParams {
        remote,
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
        label: label.to_owned(),
    }
}

/// Leg parameters for a phone of `codec`.
pub fn params_for(remote: SocketAddr, codec: Codec, label: &str) -> LegParams {
    LegParams {
        remote,
        codec,
        payload_type: payload_type(codec),
        dtmf_payload_type: Some(101),
        label: label.to_owned(),
    }
}

/// The longest run (in ms) of 5 ms windows whose RMS is below `floor`.
pub fn longest_gap_ms(audio: &[i16], rate: u32, floor: f64) -> usize {
    let w = (rate / 200) as usize;
    let mut longest = 0;
    let mut run = 0;
    for chunk in audio.chunks_exact(w) {
        if switchboard_media::analysis::rms(chunk) < floor {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest * 5
}

#[derive(Debug, Clone)]
pub struct Received {
    pub header: RtpHeader,
    pub payload: Vec<u8>,
    pub from: SocketAddr,
    pub at: Instant,
}

/// How a test phone sends.
#[derive(Debug, Clone)]
pub struct CallerOptions {
    /// `Pcmu` (payload type 0), `G722` (9) or `Opus` (payload type [`OPUS_PT`]).
    pub codec: Codec,
    pub tone_hz: Option<f64>,
    /// Fraction of packets dropped (seeded, so runs repeat).
    pub loss: f64,
    /// Fraction of packets held back and sent after the next one.
    pub reorder: f64,
}

impl Default for CallerOptions {
    fn default() -> Self {
        CallerOptions {
            codec: Codec::Pcmu,
            tone_hz: None,
            loss: 0.0,
            reorder: 0.0,
        }
    }
}

/// The dynamic payload type test phones use for Opus.
pub const OPUS_PT: u8 = 111;

pub fn payload_type(codec: Codec) -> u8 {
    codec.static_payload_type().unwrap_or(OPUS_PT)
}

#[derive(Default)]
struct CallerState {
    target: Option<SocketAddr>,
    tone_hz: Option<f64>,
    /// In-band DTMF to send: (digit frequencies, frames left).
    inband: std::collections::VecDeque<(Option<(f64, f64)>, u32)>,
    received: Vec<Received>,
}

/// A phone: sends a sine tone as PCMU every 20 ms (if it has a tone and a
/// target) and records every packet it receives.
pub struct Caller {
    pub addr: SocketAddr,
    pub codec: Codec,
    socket: UdpSocket,
    state: Arc<Mutex<CallerState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Caller {
    pub fn new(tone_hz: Option<f64>) -> Caller {
        Caller::with(CallerOptions {
            tone_hz,
            ..CallerOptions::default()
        })
    }

    pub fn with(opts: CallerOptions) -> Caller {
        let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(CallerState {
            tone_hz: opts.tone_hz,
            ..CallerState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let codec = opts.codec;
        let thread = {
            let socket = socket.try_clone().unwrap();
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || caller_loop(socket, state, stop, opts))
        };
        Caller {
            addr,
            codec,
            socket,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// Where the tone goes (the leg's RTP address).
    pub fn send_to(&self, target: SocketAddr) {
        self.state.lock().unwrap().target = Some(target);
    }

    pub fn set_tone(&self, tone_hz: Option<f64>) {
        self.state.lock().unwrap().tone_hz = tone_hz;
    }

    /// Sends `digits` as in-band tone pairs (`on_ms` each, `off_ms` apart),
    /// replacing the tone meanwhile.
    pub fn send_inband(&self, digits: &str, on_ms: u32, off_ms: u32) {
        let mut state = self.state.lock().unwrap();
        for d in digits.chars() {
            let ev = switchboard_media::dtmf::digit_to_event(d).expect("a DTMF key");
            let (lo, hi) = switchboard_media::dtmf::event_frequencies(ev).unwrap();
            state
                .inband
                .push_back((Some((f64::from(lo), f64::from(hi))), on_ms / 20));
            state.inband.push_back((None, off_ms / 20));
        }
    }

    /// Whether queued in-band digits are still being sent.
    pub fn inband_pending(&self) -> bool {
        !self.state.lock().unwrap().inband.is_empty()
    }

    /// The rate of the audio this phone decodes.
    pub fn rate(&self) -> u32 {
        self.codec.pcm_rate()
    }

    /// Sends one datagram now.
    pub fn send_raw(&self, to: SocketAddr, bytes: &[u8]) {
        self.socket.send_to(bytes, to).unwrap();
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn received_count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// The last `ms` of audio received in this phone's codec, decoded, in
    /// arrival order (Opus decoded afresh each time: the decoder warms up
    /// on the packets before the window).
    pub fn recent_audio(&self, ms: usize) -> Vec<i16> {
        let state = self.state.lock().unwrap();
        let pt = payload_type(self.codec);
        let packets: Vec<&Received> = state
            .received
            .iter()
            .filter(|r| r.header.payload_type == pt)
            .collect();
        let take = ms / 20;
        let start = packets.len().saturating_sub(take);
        match self.codec {
            Codec::Opus => {
                let warm = start.saturating_sub(10);
                let mut dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
                let mut pcm = Vec::new();
                for (i, r) in packets[warm..].iter().enumerate() {
                    let mut frame = vec![0i16; 5760];
                    let n = dec.decode(&r.payload, &mut frame, false).unwrap_or(0);
                    if warm + i >= start {
                        pcm.extend_from_slice(&frame[..n]);
                    }
                }
                pcm
            }
            Codec::G722 => {
                // ADPCM adapts: decode from a few packets earlier too.
                use audio_codec::Decoder as _;
                let warm = start.saturating_sub(10);
                let mut dec = audio_codec::g722::G722Decoder::new();
                let mut pcm = Vec::new();
                for (i, r) in packets[warm..].iter().enumerate() {
                    let mut frame = vec![0i16; r.payload.len() * 2];
                    let n = dec.decode_into(&r.payload, &mut frame).unwrap_or(0);
                    if warm + i >= start {
                        pcm.extend_from_slice(&frame[..n]);
                    }
                }
                pcm
            }
            codec => {
                let mut pcm = Vec::new();
                for r in &packets[start..] {
                    let mut frame = vec![0i16; r.payload.len()];
                    g711::decode(codec, &r.payload, &mut frame);
                    pcm.extend_from_slice(&frame);
                }
                pcm
            }
        }
    }

    /// Power at `freq` over the last 400 ms received.
    pub fn power(&self, freq: f64) -> f64 {
        let audio = self.recent_audio(400);
        let rate = self.rate();
        if audio.len() < (rate as usize) * 2 / 5 {
            return 0.0;
        }
        goertzel_power(&audio, rate, freq)
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn caller_loop(
    socket: UdpSocket,
    state: Arc<Mutex<CallerState>>,
    stop: Arc<AtomicBool>,
    opts: CallerOptions,
) {
    let ssrc: u32 = rand::random();
    let mut seq: u16 = rand::random();
    let mut ts: u32 = rand::random();
    let rate = opts.codec.pcm_rate();
    let frame = (rate / 50) as u64;
    // RTP timestamp units per frame (G.722: 8 kHz clock, 16 kHz audio).
    let ts_step = (frame as u32) * opts.codec.rtp_clock_rate() / rate;
    let mut g722 = (opts.codec == Codec::G722).then(audio_codec::g722::G722Encoder::new);
    let pt = payload_type(opts.codec);
    let mut encoder = (opts.codec == Codec::Opus).then(|| {
        let mut e =
            opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
        e.set_inband_fec(true).unwrap();
        e.set_packet_loss_perc(10).unwrap();
        e
    });
    let mut n: u64 = 0; // samples generated, for a continuous phase
    let mut next_send = Instant::now();
    let mut buf = [0u8; 2048];
    let mut seed = 0x2545_f491_u32;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        f64::from(seed) / f64::from(u32::MAX)
    };
    let mut held: Option<Vec<u8>> = None;
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= next_send {
            let (target, tone, dtmf) = {
                let mut s = state.lock().unwrap();
                let dtmf = match s.inband.front_mut() {
                    Some((pair, left)) if *left > 0 => {
                        *left -= 1;
                        Some(*pair)
                    }
                    _ => None,
                };
                if s.inband.front().is_some_and(|(_, left)| *left == 0) {
                    s.inband.pop_front();
                }
                (s.target, s.tone_hz, dtmf)
            };
            let tones: Vec<(f64, f64)> = match dtmf {
                Some(Some((lo, hi))) => vec![(lo, 5000.0), (hi, 5000.0)],
                Some(None) => vec![],
                None => tone.map(|f| vec![(f, TONE_AMPLITUDE)]).unwrap_or_default(),
            };
            if let (Some(target), false) = (target, tones.is_empty() && dtmf.is_none()) {
                let pcm: Vec<i16> = (0..frame)
                    .map(|i| {
                        let t = (n + i) as f64 / f64::from(rate);
                        tones
                            .iter()
                            .map(|&(f, a)| a * (std::f64::consts::TAU * f * t).sin())
                            .sum::<f64>() as i16
                    })
                    .collect();
                let mut pkt = vec![0u8; 12 + 1500];
                RtpHeader {
                    marker: false,
                    payload_type: pt,
                    sequence: seq,
                    timestamp: ts,
                    ssrc,
                }
                .write(&mut pkt);
                let len = match (encoder.as_mut(), g722.as_mut()) {
                    (Some(e), _) => e.encode(&pcm, &mut pkt[12..]).unwrap(),
                    (None, Some(e)) => {
                        use audio_codec::Encoder as _;
                        e.encode_into(&pcm, &mut pkt[12..]).unwrap()
                    }
                    (None, None) => g711::encode(opts.codec, &pcm, &mut pkt[12..]),
                };
                pkt.truncate(12 + len);
                seq = seq.wrapping_add(1);
                if random() < opts.loss {
                    // lost on the way
                } else if held.is_none() && random() < opts.reorder {
                    held = Some(pkt);
                } else {
                    let _ = socket.send_to(&pkt, target);
                    if let Some(late) = held.take() {
                        let _ = socket.send_to(&late, target);
                    }
                }
            }
            n += frame;
            ts = ts.wrapping_add(ts_step);
            next_send += Duration::from_millis(20);
            if now > next_send + Duration::from_millis(200) {
                next_send = now + Duration::from_millis(20);
            }
        }
        let wait = next_send
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        socket.set_read_timeout(Some(wait)).unwrap();
        if let Ok((len, from)) = socket.recv_from(&mut buf) {
            if let Ok(p) = RtpPacket::parse(&buf[..len]) {
                state.lock().unwrap().received.push(Received {
                    header: p.header,
                    payload: p.payload.to_vec(),
                    from,
                    at: Instant::now(),
                });
            }
        }
    }
}

/// Polls `check` until it returns `Ok`, failing with its last error after
/// `timeout`.
pub async fn eventually(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("timed out waiting for {what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Awaits `fut` or fails after [`TIMEOUT`].
pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

pub fn db(a: f64, b: f64) -> f64 {
    switchboard_media::analysis::db_ratio(a, b)
}
