//! Places outgoing calls with `switchboard-sip`, for interop tests against
//! SIPp's UAS: each call is answered, held, then hung up with a BYE.
//!
//! ```text
//! sipp -sn uas -p 5090
//! cargo run -p switchboard-sip --example dial -- sip:service@127.0.0.1:5090 [calls] [hold_ms]
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_sip::{CallEvent, DialRequest, SipConfig, SipEndpoint};
use tracing_subscriber::EnvFilter;

const OFFER: &str = "v=0\r\no=switchboard 1 1 IN IP4 127.0.0.1\r\ns=switchboard\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn")),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let target = args
        .next()
        .unwrap_or_else(|| "sip:service@127.0.0.1:5090".into());
    let calls: usize = args.next().map_or(Ok(1), |n| n.parse())?;
    let hold = Duration::from_millis(args.next().map_or(Ok(500), |n| n.parse())?);
    let any: SocketAddr = "127.0.0.1:0".parse()?;
    let (endpoint, _incoming) = SipEndpoint::start(SipConfig {
        udp: Some(any),
        tcp: Some(any),
        user_agent: "switchboard-sip-example".into(),
    })
    .await?;

    let mut tasks = Vec::new();
    for _ in 0..calls {
        let endpoint = endpoint.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            one_call(&endpoint, target, hold).await
        }));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut answered = 0;
    for task in tasks {
        if task.await.unwrap_or(false) {
            answered += 1;
        }
    }
    println!("{answered}/{calls} calls answered and hung up");
    endpoint.shutdown().await;
    Ok(())
}

async fn one_call(endpoint: &SipEndpoint, uri: String, hold: Duration) -> bool {
    let call = endpoint
        .dial(DialRequest {
            uri,
            from: "\"Switchboard\" <sip:switchboard@127.0.0.1>".into(),
            headers: Vec::new(),
            sdp: OFFER.into(),
        })
        .await;
    let mut call = match call {
        Ok(call) => call,
        Err(e) => {
            eprintln!("dial failed: {e}");
            return false;
        }
    };
    while let Some(event) = call.events.recv().await {
        match event {
            CallEvent::Answered { .. } => {
                tokio::time::sleep(hold).await;
                return call.signaling.hangup(Vec::new()).await.is_ok();
            }
            CallEvent::Rejected { status, reason } => {
                eprintln!("rejected: {status} {reason}");
                return false;
            }
            CallEvent::Ended(reason) => {
                eprintln!("ended: {reason:?}");
                return false;
            }
            _ => {}
        }
    }
    false
}
