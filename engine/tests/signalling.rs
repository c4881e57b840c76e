//! SIP behaviour a caller sees from the engine: 404 without a rule, 488
//! without a shared codec, CANCEL, OPTIONS, 400 for malformed requests, BYE
//! from the engine, and scenario failures that end only their own calls.

mod common;

use std::time::Duration;

use common::{TestEngine, T};
use switchboard_testagent::{Agent, AgentConfig, CallOptions, Codec};
use tokio::net::UdpSocket;

const APP: &str = r#"
name = "signalling"

[[rules]]
name = "slow"
pattern = "slow"
scenario = "slow"

[[rules]]
name = "bye"
pattern = "bye"
scenario = "bye"

[[rules]]
name = "throws"
pattern = "throws"
scenario = "throws"

[[rules]]
name = "spins"
pattern = "spins"
scenario = "spins"

[[rules]]
name = "lost"
pattern = "lost"
scenario = "lost"

[[rules]]
name = "disabled"
pattern = ".*"
scenario = "bye"
enabled = false
"#;

const SLOW: &str = r#"
export default {
  async onCall(call) {
    await new Promise((resolve) => setTimeout(resolve, 60000));
    await call.answer();
  },
};
"#;

const BYE: &str = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.say("Goodbye.");
    await call.hangup();
  },
};
"#;

const THROWS: &str = r#"
export default {
  async onCall(call) {
    throw new Error("boom");
  },
};
"#;

const SPINS: &str = r#"
export default {
  async onCall(call) {
    await call.answer();
    while (true) {}
  },
};
"#;

const LOST: &str = r#"
export default {
  async onCall(call) {
    await call.answer();
    await call.routeTo("nowhere");
  },
};
"#;

async fn engine() -> TestEngine {
    TestEngine::with_app(
        APP,
        &[
            ("slow", SLOW),
            ("bye", BYE),
            ("throws", THROWS),
            ("spins", SPINS),
            ("lost", LOST),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_matching_rule_is_404_and_no_shared_codec_is_488() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let err = ua
        .call(&sb.uri("unknown"), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(404), "{err}");

    let g729_only = CallOptions::default().codecs([Codec::Other {
        payload_type: 18,
        encoding: "G729".into(),
        clock_rate: 8000,
    }]);
    let err = ua.call(&sb.uri("bye"), g729_only).await.unwrap_err();
    assert_eq!(err.status_code(), Some(488), "{err}");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_before_answer_gets_487_over_udp_and_tcp() {
    let sb = engine().await;
    for (ua, uri) in [
        (
            Agent::bind(AgentConfig::udp()).await.unwrap(),
            sb.uri("slow"),
        ),
        (
            Agent::bind(AgentConfig::tcp()).await.unwrap(),
            sb.tcp_uri("slow"),
        ),
    ] {
        let outgoing = ua.dial(&uri, CallOptions::default()).await.unwrap();
        outgoing.wait_provisional(100, T).await.expect("100 Trying");
        assert_eq!(outgoing.cancel().await.expect("CANCEL answered"), 487);
    }
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_hangs_up_with_bye() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::tcp()).await.unwrap();
    let call = ua
        .call(&sb.tcp_uri("bye"), CallOptions::default())
        .await
        .unwrap();
    call.wait_for_speech(T).await.expect("hears goodbye");
    let reason = call.wait_ended(T).await.expect("engine sends BYE");
    assert!(reason.is_remote_bye(), "{reason:?}");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_scenarios_end_only_their_own_calls() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();

    // A bystander whose call must survive everything below.
    let bystander_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let bystander = bystander_ua
        .dial(&sb.uri("slow"), CallOptions::default())
        .await
        .unwrap();
    bystander.wait_provisional(100, T).await.unwrap();

    // A throw before answering: 500.
    let err = ua
        .call(&sb.uri("throws"), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(500), "{err}");

    // An endless loop after answering: interrupted, the call gets a BYE.
    let call = ua
        .call(&sb.uri("spins"), CallOptions::default())
        .await
        .unwrap();
    let reason = call.wait_ended(T).await.expect("runaway scenario ends");
    assert!(reason.is_remote_bye(), "{reason:?}");

    // routeTo a destination no rule matches, uncaught: BYE.
    let call = ua
        .call(&sb.uri("lost"), CallOptions::default())
        .await
        .unwrap();
    let reason = call.wait_ended(T).await.expect("unroutable call ends");
    assert!(reason.is_remote_bye(), "{reason:?}");

    // The engine and the bystander carry on.
    let call = ua
        .call(&sb.uri("bye"), CallOptions::default())
        .await
        .unwrap();
    call.wait_ended(T).await.unwrap();
    assert_eq!(bystander.cancel().await.unwrap(), 487);
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_and_malformed_requests() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let response = ua.options(&sb.uri("anything")).await.unwrap();
    assert_eq!(response.code, 200);

    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let me = raw.local_addr().unwrap();
    // No Call-ID and a CSeq that is not a number.
    let bad = format!(
        "INVITE sip:bye@{engine} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {me};branch=z9hG4bKbad1\r\n\
         From: <sip:x@{me}>;tag=1\r\n\
         To: <sip:bye@{engine}>\r\n\
         CSeq: many INVITE\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n",
        engine = sb.udp
    );
    raw.send_to(bad.as_bytes(), sb.udp).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let (n, _) = tokio::time::timeout(T, raw.recv_from(&mut buf))
        .await
        .expect("a response to the malformed request")
        .unwrap();
    let response = String::from_utf8_lossy(&buf[..n]);
    assert!(response.starts_with("SIP/2.0 400"), "{response}");

    // Garbage, binary and truncated messages: no response needed, no harm.
    for junk in [
        &b"\x00\x01\x02\x03garbage"[..],
        b"INVITE",
        b"SIP/2.0 200 OK\r\n\r\n",
        &[0xffu8; 1400][..],
    ] {
        raw.send_to(junk, sb.udp).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Still serving.
    let response = ua.options(&sb.uri("anything")).await.unwrap();
    assert_eq!(response.code, 200);
    let call = ua
        .call(&sb.uri("bye"), CallOptions::default())
        .await
        .unwrap();
    call.wait_ended(T).await.unwrap();
    sb.engine.shutdown().await;
}
