//! The scenario API end to end over SIP: barge-in, digits typed during a
//! prompt, first-digit vs inter-digit timeouts, dial + bridge with a test
//! agent answering, early media, tones, DTMF out, maxParticipants, fetch,
//! and the memory limit. Scenarios report what they saw through X- headers
//! on their BYE, which the caller reads.

mod common;

use std::time::{Duration, Instant};

use common::{TestEngine, T};
use switchboard_testagent::analysis::{min_db_over, pure_tone};
use switchboard_testagent::{Agent, AgentConfig, AutoAnswer, CallOptions, EndReason};

const APP: &str = r##"
name = "api"
allowed_hosts = ["127.0.0.1"]

[[rules]]
name = "collect"
pattern = "collect"
scenario = "collect"

[[rules]]
name = "timeouts"
pattern = "timeouts"
scenario = "timeouts"

[[rules]]
name = "bridge"
pattern = "bridge"
scenario = "bridge"

[[rules]]
name = "small"
pattern = "small_.+"
scenario = "small"
conference = true

[[rules]]
name = "early"
pattern = "early"
scenario = "early"

[[rules]]
name = "digits"
pattern = "digits"
scenario = "digits"

[[rules]]
name = "hog"
pattern = "hog"
scenario = "hog"

[[rules]]
name = "fetcher"
pattern = "fetch"
scenario = "fetcher"
"##;

/// A long prompt, interruptible by the first digit; the digits typed while
/// it plays count.
const COLLECT: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const r = await call.collectDigits({
      prompt: "This is a long announcement that keeps talking for a good while, so that you can interrupt it whenever you like by pressing a key on your phone.",
      bargeIn: true,
      max: 8,
      terminators: "#",
      firstDigitTimeoutMs: 15000,
      interDigitTimeoutMs: 10000,
    });
    await call.hangup({ headers: { "X-Digits": r.digits, "X-Reason": r.reason } });
  },
};
"##;

/// First-digit timeout (1 s) much shorter than the inter-digit one (6 s).
const TIMEOUTS: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const r = await call.collectDigits({
      max: 8,
      firstDigitTimeoutMs: 1000,
      interDigitTimeoutMs: 6000,
    });
    await call.hangup({ headers: { "X-Digits": r.digits, "X-Reason": r.reason } });
  },
};
"##;

/// Dial the URI in the caller's X-Target header and bridge the two.
const BRIDGE: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const target = call.header("X-Target");
    let other;
    try {
      other = await call.dial(target, { timeoutMs: 15000 });
    } catch (e) {
      await call.hangup({ headers: { "X-Dial-Code": String(e.code) } });
      return;
    }
    call.on("hangup", () => other.hangup());
    other.on("hangup", () => call.hangup());
    await call.bridge(other);
  },
};
"##;

/// A room for two.
const SMALL: &str = r##"
let room;
export default {
  async onConference(conf) {
    room = conf;
    conf.maxParticipants = 2;
  },
  async onCall(call) {
    await call.answer();
    try {
      await room.add(call);
    } catch (e) {
      await call.hangup({ headers: { "X-Full": String(e.code) } });
    }
  },
};
"##;

/// Early media: a tone before answering, then a busy signal.
const EARLY: &str = r##"
export default {
  async onCall(call) {
    await call.earlyMedia();
    await call.play("tone:440/1500");
    await call.reject(486, "Busy Here");
  },
};
"##;

/// Digits out (RFC 4733), then a tone.
const DIGITS: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    await call.sendDigits("1234#");
    await call.play("tone:1000/10000");
    await call.hangup();
  },
};
"##;

/// Eats memory until the limit stops it.
const HOG: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const chunks = [];
    for (;;) chunks.push(new Array(100000).fill("x".repeat(16)));
  },
};
"##;

/// fetch() from the URL in X-Url, reports status and body.
const FETCHER: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const headers = {};
    try {
      const response = await fetch(call.header("X-Url"), { timeoutMs: 5000 });
      headers["X-Status"] = String(response.status);
      headers["X-Body"] = (await response.text()).trim();
    } catch (e) {
      headers["X-Error"] = String(e.code || e.message).slice(0, 60);
    }
    await call.hangup({ headers });
  },
};
"##;

async fn engine() -> TestEngine {
    TestEngine::with_app(
        APP,
        &[
            ("collect", COLLECT),
            ("timeouts", TIMEOUTS),
            ("bridge", BRIDGE),
            ("small", SMALL),
            ("early", EARLY),
            ("digits", DIGITS),
            ("hog", HOG),
            ("fetcher", FETCHER),
        ],
    )
    .await
}

/// The X- headers of the engine's BYE.
async fn bye_headers(call: &switchboard_testagent::Call) -> Vec<(String, String)> {
    match call.wait_ended(T).await.expect("the scenario hangs up") {
        EndReason::RemoteBye { headers } => headers,
        other => panic!("expected a BYE from the engine, got {other:?}"),
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_the_prompt_and_keeps_the_digits_typed_during_it() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(&sb.uri("collect"), CallOptions::default())
        .await
        .unwrap();
    call.wait_for_speech(T).await.expect("the prompt plays");
    call.send_dtmf("1").await.unwrap();
    // The prompt stops at the digit (long before its natural end).
    call.wait_for_silence(-50.0, Duration::from_secs(4))
        .await
        .expect("barge-in silences the prompt");
    // The scenario hangs up at '#', possibly while the agent still sends
    // that digit's end packets: the send may report the call ended.
    let _ = call.send_dtmf("2#").await;
    let headers = bye_headers(&call).await;
    assert_eq!(header(&headers, "X-Digits"), Some("12"), "{headers:?}");
    assert_eq!(header(&headers, "X-Reason"), Some("terminator"));
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_digit_and_inter_digit_timeouts_are_separate() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();

    // No digit: the 1 s first-digit timeout ends it, long before 6 s.
    let started = Instant::now();
    let call = ua
        .call(&sb.uri("timeouts"), CallOptions::default())
        .await
        .unwrap();
    let headers = bye_headers(&call).await;
    assert_eq!(header(&headers, "X-Reason"), Some("timeout"), "{headers:?}");
    assert_eq!(header(&headers, "X-Digits"), Some(""));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "ended by the first-digit timeout, not the inter-digit one ({:?})",
        started.elapsed()
    );

    // One digit, then nothing: the 6 s inter-digit timeout applies, not 1 s.
    let call = ua
        .call(&sb.uri("timeouts"), CallOptions::default())
        .await
        .unwrap();
    call.send_dtmf("7").await.unwrap();
    let after_digit = Instant::now();
    let headers = bye_headers(&call).await;
    assert_eq!(header(&headers, "X-Digits"), Some("7"), "{headers:?}");
    assert_eq!(header(&headers, "X-Reason"), Some("timeout"));
    assert!(
        after_digit.elapsed() > Duration::from_secs(4),
        "the inter-digit timeout (6 s) applies after a digit ({:?})",
        after_digit.elapsed()
    );
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_and_bridge_connect_two_calls_both_ways() {
    let sb = engine().await;
    let callee_ua =
        Agent::bind(AgentConfig::udp().auto_answer(AutoAnswer::after(Duration::from_millis(300))))
            .await
            .unwrap();
    let caller_ua = Agent::bind(AgentConfig::tcp()).await.unwrap();
    let caller = caller_ua
        .call(
            &sb.tcp_uri("bridge"),
            CallOptions::default().header("X-Target", callee_ua.uri_for("sales")),
        )
        .await
        .unwrap();
    let callee = callee_ua
        .next_answered(T)
        .await
        .expect("the engine dials the agent");
    caller.play_tone(440.0, 0.3);
    callee.play_tone(1000.0, 0.3);
    caller
        .wait_for_tone(1000.0, min_db_over(20.0, &[440.0]), T)
        .await
        .expect("the caller hears the callee, not itself");
    callee
        .wait_for_tone(440.0, min_db_over(20.0, &[1000.0]), T)
        .await
        .expect("the callee hears the caller, not itself");
    caller.hangup().await.unwrap();
    let ended = callee
        .wait_ended(T)
        .await
        .expect("the scenario hangs up the other leg");
    assert!(ended.is_remote_bye(), "{ended:?}");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dial_reports_the_sip_code() {
    let sb = engine().await;
    let busy_ua = Agent::bind(
        AgentConfig::udp().auto_answer(AutoAnswer::reject(486, Duration::from_millis(100))),
    )
    .await
    .unwrap();
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(
            &sb.uri("bridge"),
            CallOptions::default().header("X-Target", busy_ua.uri_for("busy")),
        )
        .await
        .unwrap();
    let headers = bye_headers(&call).await;
    assert_eq!(header(&headers, "X-Dial-Code"), Some("486"), "{headers:?}");
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_participants_refuses_the_next_caller_clearly() {
    let sb = engine().await;
    let mut agents = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..2 {
        let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
        calls.push(
            ua.call(&sb.uri("small_1"), CallOptions::default())
                .await
                .unwrap(),
        );
        agents.push(ua);
    }
    calls[0].play_tone(440.0, 0.3);
    calls[1]
        .wait_for_tone(440.0, pure_tone(440.0, 20.0), T)
        .await
        .expect("the first two are in the room");
    let third_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let third = third_ua
        .call(&sb.uri("small_1"), CallOptions::default())
        .await
        .unwrap();
    let headers = bye_headers(&third).await;
    assert_eq!(header(&headers, "X-Full"), Some("FULL"), "{headers:?}");
    for call in &calls {
        assert!(!call.is_ended(), "the room's members stay");
    }
    for call in calls {
        call.hangup().await.unwrap();
    }
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_is_heard_before_the_call_is_refused() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let outgoing = ua
        .dial(&sb.uri("early"), CallOptions::default())
        .await
        .unwrap();
    outgoing
        .wait_provisional(183, T)
        .await
        .expect("183 with SDP");
    outgoing
        .media()
        .wait_for_tone(440.0, pure_tone(440.0, 20.0), T)
        .await
        .expect("the tone plays before any answer");
    let err = outgoing.answered().await.unwrap_err();
    assert_eq!(err.status_code(), Some(486), "{err}");
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digits_out_and_tones() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(&sb.uri("digits"), CallOptions::default())
        .await
        .unwrap();
    call.wait_for_digits("1234#", T)
        .await
        .expect("RFC 4733 digits");
    call.wait_for_tone(1000.0, pure_tone(1000.0, 20.0), T)
        .await
        .expect("tone:1000");
    call.hangup().await.unwrap();
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_ends_only_that_call() {
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let hog = ua
        .call(&sb.uri("hog"), CallOptions::default())
        .await
        .unwrap();
    let ended = hog.wait_ended(T).await.expect("the hog is stopped");
    assert!(ended.is_remote_bye(), "{ended:?}");
    // The engine carries on.
    let call = ua
        .call(&sb.uri("digits"), CallOptions::default())
        .await
        .unwrap();
    call.wait_for_digits("1234#", T).await.unwrap();
    call.hangup().await.unwrap();
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reaches_allowed_hosts_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A tiny HTTP server on 127.0.0.1.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                    )
                    .await;
            });
        }
    });
    let sb = engine().await;
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(
            &sb.uri("fetch"),
            CallOptions::default().header("X-Url", format!("http://127.0.0.1:{port}/hi")),
        )
        .await
        .unwrap();
    let headers = bye_headers(&call).await;
    assert_eq!(header(&headers, "X-Status"), Some("200"), "{headers:?}");
    assert_eq!(header(&headers, "X-Body"), Some("hello"));

    // localhost is not in allowed_hosts (127.0.0.1 is).
    let call = ua
        .call(
            &sb.uri("fetch"),
            CallOptions::default().header("X-Url", format!("http://localhost:{port}/hi")),
        )
        .await
        .unwrap();
    let headers = bye_headers(&call).await;
    assert!(header(&headers, "X-Status").is_none(), "{headers:?}");
    assert!(header(&headers, "X-Error").is_some(), "{headers:?}");
    sb.engine.shutdown().await;
}
