//! `switchboard-load`: brings N RTP participants into one conference of a
//! running `switchboard serve` over loopback, some of them talking, and
//! reports the engine's CPU, packets in and out, and loss.
//!
//! Signalling goes through the test agent (one SIP socket, calls placed a
//! few at a time); every call's SDP points at one shared RTP socket that a
//! single thread drives with precomputed packets (see `rtp`), so the
//! generator stays much cheaper than the engine under test.
//!
//! ```text
//! switchboard serve --sip 127.0.0.1:5060 --rtp-ports 20000-29999 &
//! switchboard-load --target sip:conf_load@127.0.0.1:5060 -n 1000 --talkers 3 --duration 30
//! ```

mod cpu;
mod rtp;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use switchboard_testagent::{Agent, AgentConfig, Call, CallOptions, Codec};
use tokio::task::JoinSet;

use rtp::{Counters, LoadCodec, Stream};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Load a switchboard conference with N RTP participants"
)]
struct Args {
    /// The conference to join (a URI that lands every call in one room).
    #[arg(long, default_value = "sip:conf_load@127.0.0.1:5060")]
    target: String,
    /// Participants.
    #[arg(short = 'n', long, default_value_t = 100)]
    participants: usize,
    /// How many of them talk (a tone) the whole time.
    #[arg(long, default_value_t = 3)]
    talkers: usize,
    /// Seconds of measurement once everyone has joined.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// `pcmu`, `opus`, or `mixed` (every other participant on Opus).
    #[arg(long, default_value = "pcmu")]
    codec: String,
    /// Calls set up at once.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// The engine's process id, for its CPU use (default: the process
    /// named `switchboard`, if there is exactly one).
    #[arg(long)]
    pid: Option<u32>,
    /// Local IP for SIP and RTP.
    #[arg(long, default_value = "127.0.0.1")]
    ip: std::net::IpAddr,
}

fn codec_of(args: &Args, i: usize) -> Result<LoadCodec, String> {
    match args.codec.as_str() {
        "pcmu" => Ok(LoadCodec::Pcmu),
        "opus" => Ok(LoadCodec::Opus),
        "mixed" if i.is_multiple_of(2) => Ok(LoadCodec::Pcmu),
        "mixed" => Ok(LoadCodec::Opus),
        other => Err(format!("unknown codec {other:?} (pcmu, opus, mixed)")),
    }
}

/// The offer of one participant: its RTP at the shared socket.
fn offer(rtp: SocketAddr, codec: LoadCodec) -> String {
    let ip = rtp.ip();
    let (pt, map) = match codec {
        LoadCodec::Pcmu => ("0 101", "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"),
        LoadCodec::Opus => (
            "111 102",
            "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\na=rtpmap:102 telephone-event/48000\r\n",
        ),
    };
    format!(
        "v=0\r\no=load 1 1 IN IP4 {ip}\r\ns=load\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt}\r\n{map}a=ptime:20\r\na=sendrecv\r\n",
        port = rtp.port()
    )
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("switchboard-load: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    cpu::raise_fd_limit();
    let pid = match args.pid {
        Some(p) => Some(p),
        None => cpu::find_process("switchboard"),
    };
    let rtp_socket = UdpSocket::bind((args.ip, 0)).map_err(|e| format!("RTP socket: {e}"))?;
    let rtp_addr = rtp_socket.local_addr().map_err(|e| e.to_string())?;
    // Big socket buffers: a thousand legs answer within the same millisecond.
    cpu::set_buffers(&rtp_socket, 8 << 20);
    let agent = Arc::new(
        Agent::bind(AgentConfig {
            local_ip: args.ip,
            ..AgentConfig::udp()
        })
        .await
        .map_err(|e| format!("SIP agent: {e}"))?,
    );

    // Place the calls, a few at a time.
    println!(
        "placing {} calls to {} ({} talking, codec {})",
        args.participants, args.target, args.talkers, args.codec
    );
    let setup = Instant::now();
    let mut calls: Vec<(usize, Call)> = Vec::with_capacity(args.participants);
    let mut pending = JoinSet::new();
    let mut next = 0;
    let mut failures = 0;
    while calls.len() + failures < args.participants {
        while pending.len() < args.concurrency && next < args.participants {
            let codec = codec_of(&args, next)?;
            let options = CallOptions::default()
                .codecs([match codec {
                    LoadCodec::Pcmu => Codec::Pcmu,
                    LoadCodec::Opus => Codec::Opus,
                }])
                .raw_sdp(offer(rtp_addr, codec))
                .external_media();
            let (agent, target, i) = (agent.clone(), args.target.clone(), next);
            pending.spawn(async move { (i, agent.call(&target, options).await) });
            next += 1;
        }
        match pending.join_next().await {
            Some(Ok((i, Ok(call)))) => calls.push((i, call)),
            Some(Ok((i, Err(e)))) => {
                failures += 1;
                eprintln!("call {i} failed: {e}");
            }
            Some(Err(e)) => return Err(format!("a call task died: {e}")),
            None => break,
        }
    }
    println!(
        "{} calls up in {:.1} s ({failures} failed)",
        calls.len(),
        setup.elapsed().as_secs_f64()
    );
    calls.sort_by_key(|(i, _)| *i);
    let mut streams = Vec::with_capacity(calls.len());
    for (n, (i, call)) in calls.iter().enumerate() {
        let remote = call
            .remote_addr()
            .ok_or_else(|| format!("call {i}: no RTP address in the answer"))?;
        streams.push(Stream::new(
            remote,
            codec_of(&args, *i)?,
            n < args.talkers,
            *i as u32,
        ));
    }
    let participants = streams.len();

    // Drive RTP on its own thread.
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let driver = {
        let (counters, stop) = (counters.clone(), stop.clone());
        std::thread::Builder::new()
            .name("rtp-driver".into())
            .spawn(move || rtp::drive(rtp_socket, streams, counters, stop))
            .map_err(|e| format!("RTP thread: {e}"))?
    };

    // Let the room settle (jitter buffers fill, greetings play), then measure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let start = Snapshot::take(&counters, pid);
    let mut last = start.clone();
    for second in 1..=args.duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = Snapshot::take(&counters, pid);
        if second % 5 == 0 || second == args.duration {
            println!("[{second:>3} s] {}", now.since(&last, participants));
            last = now;
        }
    }
    let end = Snapshot::take(&counters, pid);
    println!(
        "--- {participants} participants, {} talking, {} s",
        args.talkers.min(participants),
        args.duration
    );
    println!("{}", end.since(&start, participants));
    println!(
        "generator: {} late ticks; engine pid {}",
        end.late_ticks - start.late_ticks,
        pid.map_or("unknown".into(), |p| p.to_string())
    );

    stop.store(true, Ordering::Release);
    let _ = driver.join();
    let mut hangups = JoinSet::new();
    for (_, call) in calls {
        hangups.spawn(async move { call.hangup().await });
        while hangups.len() >= args.concurrency {
            hangups.join_next().await;
        }
    }
    while hangups.join_next().await.is_some() {}
    Ok(())
}

/// Counters and CPU times at one instant.
#[derive(Clone)]
struct Snapshot {
    at: Instant,
    sent: u64,
    received: u64,
    lost: u64,
    audible: u64,
    send_errors: u64,
    late_ticks: u64,
    engine_cpu: Option<Duration>,
    own_cpu: Option<Duration>,
}

impl Snapshot {
    fn take(c: &Counters, pid: Option<u32>) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            sent: c.sent.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            audible: c.audible.load(Ordering::Relaxed),
            send_errors: c.send_errors.load(Ordering::Relaxed),
            late_ticks: c.late_ticks.load(Ordering::Relaxed),
            engine_cpu: pid.and_then(cpu::process_cpu),
            own_cpu: cpu::process_cpu(std::process::id()),
        }
    }

    fn since(&self, before: &Snapshot, participants: usize) -> String {
        let secs = (self.at - before.at).as_secs_f64().max(1e-3);
        let pct = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.1} %", (a - b).as_secs_f64() * 100.0 / secs),
            _ => "n/a".into(),
        };
        let received = self.received - before.received;
        let lost = self.lost - before.lost;
        let expected = (participants as f64 * 50.0 * secs).round();
        format!(
            "engine CPU {} of one core, generator {} | out {:.0}/s, in {:.0}/s (expected {:.0}/s) | loss {:.3} % | listeners' packets with audio {:.0}/s | send errors {}",
            pct(self.engine_cpu, before.engine_cpu),
            pct(self.own_cpu, before.own_cpu),
            (self.sent - before.sent) as f64 / secs,
            received as f64 / secs,
            expected / secs,
            100.0 * lost as f64 / (received + lost).max(1) as f64,
            (self.audible - before.audible) as f64 / secs,
            self.send_errors - before.send_errors,
        )
    }
}
