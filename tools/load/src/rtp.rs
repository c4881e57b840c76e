//! The RTP side of the load: every participant's stream from one UDP
//! socket, driven by one thread with precomputed payloads, sent and
//! received in batches (`sendmmsg` / `recvmmsg`), so the generator costs
//! far less than the engine it measures.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Messages per `sendmmsg`/`recvmmsg` call.
const BATCH: usize = 128;
const DATAGRAM: usize = 1500;

/// What each participant sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadCodec {
    Pcmu,
    Opus,
}

impl LoadCodec {
    pub fn payload_type(self) -> u8 {
        match self {
            LoadCodec::Pcmu => 0,
            LoadCodec::Opus => 111,
        }
    }

    fn clock_step(self) -> u32 {
        match self {
            LoadCodec::Pcmu => 160,
            LoadCodec::Opus => 960,
        }
    }
}

/// One participant's stream: where it goes and its RTP state.
pub struct Stream {
    pub remote: SocketAddr,
    pub codec: LoadCodec,
    pub talking: bool,
    ssrc: u32,
    seq: u16,
    ts: u32,
}

impl Stream {
    pub fn new(remote: SocketAddr, codec: LoadCodec, talking: bool, index: u32) -> Stream {
        Stream {
            remote,
            codec,
            talking,
            ssrc: 0x5b00_0000 | index,
            seq: (index as u16).wrapping_mul(7919),
            ts: index.wrapping_mul(104_729),
        }
    }
}

/// Counters the driver publishes (read by the reporter).
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub send_errors: AtomicU64,
    pub received: AtomicU64,
    /// Sequence numbers skipped in what the engine sent us.
    pub lost: AtomicU64,
    /// Packets received from a listener's leg that carried audio (not
    /// silence): the talkers are heard.
    pub audible: AtomicU64,
    pub late_ticks: AtomicU64,
}

/// Precomputed payloads: a 1 s tone loop for talkers, silence for the rest.
struct Payloads {
    tone: Vec<Vec<u8>>,
    silence: Vec<u8>,
}

fn payloads(codec: LoadCodec, hz: f64) -> Payloads {
    let rate = match codec {
        LoadCodec::Pcmu => 8000.0,
        LoadCodec::Opus => 48_000.0,
    };
    let n = (rate / 50.0) as usize;
    let frames: Vec<Vec<i16>> = (0..50)
        .map(|k| {
            (0..n)
                .map(|i| {
                    let t = (k * n + i) as f64 / rate;
                    (8000.0 * (std::f64::consts::TAU * hz * t).sin()) as i16
                })
                .collect()
        })
        .collect();
    match codec {
        LoadCodec::Pcmu => Payloads {
            tone: frames
                .iter()
                .map(|f| f.iter().map(|&s| ulaw(s)).collect())
                .collect(),
            silence: vec![0xFF; 160],
        },
        LoadCodec::Opus => {
            let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                .expect("an Opus encoder");
            let mut encode = |f: &[i16]| {
                let mut out = vec![0u8; 1000];
                let len = enc.encode(f, &mut out).expect("Opus encodes");
                out.truncate(len);
                out
            };
            let tone = frames.iter().map(|f| encode(f)).collect();
            let silence = encode(&vec![0i16; n]);
            Payloads { tone, silence }
        }
    }
}

/// G.711 µ-law of one sample (the load tool's own, kept tiny).
fn ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut pcm = i32::from(sample);
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    pcm = pcm.min(32635) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && pcm & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (pcm >> (exponent + 3)) & 0x0f;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Per-leg receive state: the last sequence number seen.
#[derive(Default, Clone, Copy)]
struct RxState {
    last_seq: Option<u16>,
}

/// Sends every stream's packet every 20 ms and drains what comes back,
/// until `stop`.
pub fn drive(
    socket: UdpSocket,
    mut streams: Vec<Stream>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let codecs = [LoadCodec::Pcmu, LoadCodec::Opus];
    let tables: Vec<(LoadCodec, Payloads)> =
        codecs.iter().map(|&c| (c, payloads(c, 440.0))).collect();
    let table = |c: LoadCodec| &tables.iter().find(|(k, _)| *k == c).expect("codec").1;
    let index: HashMap<SocketAddr, usize> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| (s.remote, i))
        .collect();
    let mut rx_state = vec![RxState::default(); streams.len()];
    let _ = socket.set_nonblocking(true);
    let mut out = vec![[0u8; DATAGRAM]; BATCH];
    let mut out_len = vec![0usize; BATCH];
    let mut out_to = vec![SocketAddr::from(([0, 0, 0, 0], 0)); BATCH];
    let mut inbox = vec![[0u8; DATAGRAM]; BATCH];
    let mut frame = 0usize;
    let mut deadline = Instant::now();
    while !stop.load(Ordering::Acquire) {
        // Send this tick's packets in batches.
        let mut queued = 0;
        for s in streams.iter_mut() {
            let p = table(s.codec);
            let payload = if s.talking {
                &p.tone[frame % p.tone.len()]
            } else {
                &p.silence
            };
            let buf = &mut out[queued];
            buf[0] = 0x80;
            buf[1] = s.codec.payload_type();
            buf[2..4].copy_from_slice(&s.seq.to_be_bytes());
            buf[4..8].copy_from_slice(&s.ts.to_be_bytes());
            buf[8..12].copy_from_slice(&s.ssrc.to_be_bytes());
            buf[12..12 + payload.len()].copy_from_slice(payload);
            out_len[queued] = 12 + payload.len();
            out_to[queued] = s.remote;
            s.seq = s.seq.wrapping_add(1);
            s.ts = s.ts.wrapping_add(s.codec.clock_step());
            queued += 1;
            if queued == BATCH {
                send_batch(&socket, &out, &out_len, &out_to, queued, &counters);
                queued = 0;
            }
        }
        if queued > 0 {
            send_batch(&socket, &out, &out_len, &out_to, queued, &counters);
        }
        frame += 1;
        // Drain until the next tick.
        deadline += Duration::from_millis(20);
        loop {
            let got = recv_batch(&socket, &mut inbox, |data, from| {
                counters.received.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = index.get(&from) else {
                    return;
                };
                if data.len() < 12 {
                    return;
                }
                let seq = u16::from_be_bytes([data[2], data[3]]);
                let st = &mut rx_state[i];
                if let Some(last) = st.last_seq {
                    let gap = seq.wrapping_sub(last);
                    if (2..1000).contains(&gap) {
                        counters
                            .lost
                            .fetch_add(u64::from(gap - 1), Ordering::Relaxed);
                    }
                }
                st.last_seq = Some(seq);
                let payload = &data[12..];
                let silent = match streams[i].codec {
                    LoadCodec::Pcmu => payload.iter().all(|&b| b == 0xFF || b == 0x7F),
                    // Opus silence is a few bytes; speech is more.
                    LoadCodec::Opus => payload.len() < 12,
                };
                if !streams[i].talking && !silent {
                    counters.audible.fetch_add(1, Ordering::Relaxed);
                }
            });
            if got == 0 {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                std::thread::sleep((deadline - now).min(Duration::from_millis(1)));
            }
        }
        let now = Instant::now();
        if now > deadline + Duration::from_millis(5) {
            counters.late_ticks.fetch_add(1, Ordering::Relaxed);
            if now > deadline + Duration::from_millis(100) {
                deadline = now; // far behind: resynchronise, do not burst
            }
        }
    }
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all zeros is valid, and it is
    // large and aligned enough for sockaddr_in and sockaddr_in6.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: see above.
            let sin = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        SocketAddr::V6(a) => {
            // SAFETY: see above.
            let sin6 = unsafe {
                &mut *(&mut ss as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            (
                ss,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

fn send_batch(
    socket: &UdpSocket,
    bufs: &[[u8; DATAGRAM]],
    lens: &[usize],
    to: &[SocketAddr],
    n: usize,
    counters: &Counters,
) {
    let mut addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
        to[..n].iter().map(sockaddr).collect();
    // SAFETY: iovecs and headers point into `bufs` and `addrs`, which
    // outlive the call; sendmmsg only reads them.
    unsafe {
        let mut iov: Vec<libc::iovec> = (0..n)
            .map(|i| libc::iovec {
                iov_base: bufs[i].as_ptr() as *mut libc::c_void,
                iov_len: lens[i],
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| std::mem::zeroed()).collect();
        for i in 0..n {
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i].0 as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = addrs[i].1;
        }
        let mut done = 0;
        while done < n {
            let r = libc::sendmmsg(
                socket.as_raw_fd(),
                hdrs[done..].as_mut_ptr(),
                (n - done) as libc::c_uint,
                0,
            );
            if r <= 0 {
                counters
                    .send_errors
                    .fetch_add((n - done) as u64, Ordering::Relaxed);
                break;
            }
            done += r as usize;
        }
        counters.sent.fetch_add(done as u64, Ordering::Relaxed);
    }
}

fn recv_batch(
    socket: &UdpSocket,
    bufs: &mut [[u8; DATAGRAM]],
    mut each: impl FnMut(&[u8], SocketAddr),
) -> usize {
    let n = bufs.len();
    // SAFETY: as in `send_batch`; the kernel writes into `bufs` and
    // `addrs`, both alive and exclusively ours for the call.
    unsafe {
        let mut addrs: Vec<libc::sockaddr_storage> = (0..n).map(|_| std::mem::zeroed()).collect();
        let mut iov: Vec<libc::iovec> = bufs
            .iter_mut()
            .map(|b| libc::iovec {
                iov_base: b.as_mut_ptr().cast(),
                iov_len: DATAGRAM,
            })
            .collect();
        let mut hdrs: Vec<libc::mmsghdr> = (0..n).map(|_| std::mem::zeroed()).collect();
        for i in 0..n {
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        let r = libc::recvmmsg(
            socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        );
        if r <= 0 {
            return 0;
        }
        for i in 0..r as usize {
            let len = (hdrs[i].msg_len as usize).min(DATAGRAM);
            if let Some(from) = from_storage(&addrs[i]) {
                each(&bufs[i][..len], from);
            }
        }
        r as usize
    }
}

fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::from((
                u32::from_be(a.sin_addr.s_addr).to_be_bytes(),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let a = unsafe { &*(ss as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::from((
                a.sin6_addr.s6_addr,
                u16::from_be(a.sin6_port),
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_go_out_and_come_back() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let counters = Counters::default();
        let bufs = vec![[7u8; DATAGRAM]; 3];
        let to = vec![b.local_addr().unwrap(); 3];
        send_batch(&a, &bufs, &[10, 20, 30], &to, 3, &counters);
        assert_eq!(counters.sent.load(Ordering::Relaxed), 3);
        let mut inbox = vec![[0u8; DATAGRAM]; 8];
        let mut got = Vec::new();
        let n = recv_batch(&b, &mut inbox, |d, from| got.push((d.len(), from)));
        assert_eq!(n, 3);
        assert_eq!(got[2], (30, a.local_addr().unwrap()));
        assert_eq!(ulaw(0), 0xFF);
        assert_eq!(ulaw(i16::MAX), 0x80);
    }
}
