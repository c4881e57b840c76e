//! A tiny UAS on `switchboard-sip` for interop and load tests with SIPp:
//! answers every call (negotiating G.711 from the offer) and counts how
//! calls end.
//!
//! ```text
//! cargo run -p switchboard-sip --release --example uas -- 127.0.0.1:5070 [--ring]
//! sipp -sn uac 127.0.0.1:5070 -r 500 -m 10000
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_sip::{sdp, CallEvent, IncomingCall, SipConfig, SipEndpoint};
use tracing_subscriber::EnvFilter;

const CODECS: &[(&str, u32)] = &[("PCMU", 8000), ("PCMA", 8000)];

#[derive(Default)]
struct Counters {
    calls: AtomicU64,
    confirmed: AtomicU64,
    ended: AtomicU64,
    not_confirmed: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn")),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5060".into())
        .parse()?;
    let ring = args.any(|a| a == "--ring");
    let (endpoint, mut calls) = SipEndpoint::start(SipConfig {
        udp: Some(addr),
        tcp: Some(addr),
        user_agent: "switchboard-sip-example".into(),
    })
    .await?;
    println!("listening on {addr} (udp+tcp)");

    let counters = Arc::new(Counters::default());
    let report = counters.clone();
    let reporter_endpoint = endpoint.clone();
    tokio::spawn(async move {
        let mut last = 0;
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let calls = report.calls.load(Ordering::Relaxed);
            println!(
                "calls {calls} (+{}/s) confirmed {} ended {} not-confirmed {} live {}",
                (calls - last) / 5,
                report.confirmed.load(Ordering::Relaxed),
                report.ended.load(Ordering::Relaxed),
                report.not_confirmed.load(Ordering::Relaxed),
                reporter_endpoint.live_dialogs(),
            );
            last = calls;
        }
    });

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            call = calls.recv() => match call {
                Some(call) => {
                    tokio::spawn(handle(call, ring, counters.clone()));
                }
                None => break,
            },
        }
    }
    endpoint.shutdown().await;
    Ok(())
}

async fn handle(call: IncomingCall, ring: bool, counters: Arc<Counters>) {
    counters.calls.fetch_add(1, Ordering::Relaxed);
    let IncomingCall {
        signaling,
        mut events,
    } = call;
    let negotiated = signaling
        .offer()
        .ok_or(sdp::SdpError::NoAudio)
        .and_then(sdp::parse_offer)
        .and_then(|offer| sdp::negotiate(&offer, CODECS));
    let negotiated = match negotiated {
        Ok(negotiated) => negotiated,
        Err(e) => {
            tracing::warn!(call = signaling.id(), error = %e, "488");
            let _ = signaling.reject(488, None).await;
            return;
        }
    };
    if ring {
        let _ = signaling.ring().await;
    }
    let local: SocketAddr = ([127, 0, 0, 1], 30000).into();
    let answer = sdp::write_answer(&negotiated, local, rand_session());
    if let Err(e) = signaling.answer(answer, Vec::new()).await {
        tracing::warn!(call = signaling.id(), error = %e, "cannot answer");
        return;
    }
    let mut confirmed = false;
    while let Some(event) = events.recv().await {
        match event {
            CallEvent::Confirmed => {
                confirmed = true;
                counters.confirmed.fetch_add(1, Ordering::Relaxed);
            }
            CallEvent::Ended(reason) => {
                counters.ended.fetch_add(1, Ordering::Relaxed);
                if !confirmed {
                    // With SIPp's default pause of 0, the BYE can overtake
                    // the ACK.
                    counters.not_confirmed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(call = signaling.id(), ?reason, "ended before ACK");
                }
            }
            _ => {}
        }
    }
}

fn rand_session() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}
