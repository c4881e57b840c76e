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

#[derive(Debug, Clone)]
pub struct Received {
    pub header: RtpHeader,
    pub payload: Vec<u8>,
    pub from: SocketAddr,
    pub at: Instant,
}

#[derive(Default)]
struct CallerState {
    target: Option<SocketAddr>,
    tone_hz: Option<f64>,
    received: Vec<Received>,
}

/// A phone: sends a sine tone as PCMU every 20 ms (if it has a tone and a
/// target) and records every packet it receives.
pub struct Caller {
    pub addr: SocketAddr,
    socket: UdpSocket,
    state: Arc<Mutex<CallerState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Caller {
    pub fn new(tone_hz: Option<f64>) -> Caller {
        let socket = UdpSocket::bind((LOCALHOST, 0)).unwrap();
        let addr = socket.local_addr().unwrap();
        let state = Arc::new(Mutex::new(CallerState {
            tone_hz,
            ..CallerState::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let socket = socket.try_clone().unwrap();
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || caller_loop(socket, state, stop))
        };
        Caller {
            addr,
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

    /// The last `ms` of audio received with payload type `pt` (PCMU),
    /// decoded, in arrival order.
    pub fn recent_audio(&self, ms: usize) -> Vec<i16> {
        let state = self.state.lock().unwrap();
        let packets: Vec<&Received> = state
            .received
            .iter()
            .filter(|r| r.header.payload_type == 0)
            .collect();
        let take = ms / 20;
        let start = packets.len().saturating_sub(take);
        let mut pcm = Vec::new();
        for r in &packets[start..] {
            let mut frame = vec![0i16; r.payload.len()];
            g711::decode(Codec::Pcmu, &r.payload, &mut frame);
            pcm.extend_from_slice(&frame);
        }
        pcm
    }

    /// Power at `freq` over the last 400 ms received.
    pub fn power(&self, freq: f64) -> f64 {
        let audio = self.recent_audio(400);
        if audio.len() < 3200 {
            return 0.0;
        }
        goertzel_power(&audio, 8000, freq)
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

fn caller_loop(socket: UdpSocket, state: Arc<Mutex<CallerState>>, stop: Arc<AtomicBool>) {
    let ssrc: u32 = rand::random();
    let mut seq: u16 = rand::random();
    let mut ts: u32 = rand::random();
    let mut n: u64 = 0; // samples generated, for a continuous phase
    let mut next_send = Instant::now();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::Acquire) {
        let now = Instant::now();
        if now >= next_send {
            let (target, tone) = {
                let s = state.lock().unwrap();
                (s.target, s.tone_hz)
            };
            if let (Some(target), Some(freq)) = (target, tone) {
                let pcm: Vec<i16> = (0..160)
                    .map(|i| {
                        let t = (n + i) as f64 / 8000.0;
                        (TONE_AMPLITUDE * (std::f64::consts::TAU * freq * t).sin()) as i16
                    })
                    .collect();
                let mut pkt = [0u8; 172];
                RtpHeader {
                    marker: false,
                    payload_type: 0,
                    sequence: seq,
                    timestamp: ts,
                    ssrc,
                }
                .write(&mut pkt);
                g711::encode(Codec::Pcmu, &pcm, &mut pkt[12..]);
                let _ = socket.send_to(&pkt, target);
                seq = seq.wrapping_add(1);
            }
            n += 160;
            ts = ts.wrapping_add(160);
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
