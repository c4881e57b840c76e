//! Agent-to-agent calls over loopback, UDP and TCP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use switchboard_testagent::analysis::{self, min_db_over, ToneCondition};
use switchboard_testagent::{
    Agent, AgentConfig, AgentError, AutoAnswer, Call, CallOptions, Codec, DtmfSource, EndReason,
    Transport,
};
use tokio::net::UdpSocket;

/// Generous: the CI machine is a busy 2-core box.
const WAIT: Duration = Duration::from_secs(15);

async fn agent(transport: Transport) -> Agent {
    Agent::bind(AgentConfig::default().transport(transport))
        .await
        .expect("bind")
}

/// A calls B; B answers through `accept_next`. Returns both agents and legs.
async fn connected(transport: Transport) -> (Agent, Agent, Call, Call) {
    let a = agent(transport).await;
    let b = agent(transport).await;
    let target = b.uri_for("bob");
    let answering = {
        let b = b.clone();
        tokio::spawn(async move {
            let incoming = b.accept_next(WAIT).await.expect("an INVITE");
            assert!(incoming.request_uri().starts_with("sip:bob@"));
            incoming.ring().await.expect("ring");
            incoming.answer().await.expect("answer")
        })
    };
    let a_leg = a
        .call(&target, CallOptions::default().header("X-Test", "loopback"))
        .await
        .expect("call answered");
    let b_leg = answering.await.expect("answer task");
    assert_eq!(b_leg.remote_header("x-test").as_deref(), Some("loopback"));
    (a, b, a_leg, b_leg)
}

async fn tones_cross(transport: Transport) {
    let (_a, _b, a_leg, b_leg) = connected(transport).await;
    assert_eq!(a_leg.codec(), Some(Codec::Pcmu));
    a_leg.play_tone(440.0, 0.3);
    b_leg.play_tone(1000.0, 0.3);
    let heard_by_b = b_leg
        .wait_for_tone(440.0, min_db_over(20.0, &[1000.0]), WAIT)
        .await
        .expect("B hears A's 440 Hz");
    let heard_by_a = a_leg
        .wait_for_tone(1000.0, min_db_over(20.0, &[440.0]), WAIT)
        .await
        .expect("A hears B's 1000 Hz");
    // 0.3 of full scale is -10.5 dBFS; G.711 keeps it within a dB.
    for measured in [&heard_by_b, &heard_by_a] {
        assert!(
            (measured.level_dbfs + 10.5).abs() < 2.0,
            "level off: {measured}"
        );
    }
    // Stopping the audio is heard as the tone going away.
    a_leg.stop_audio();
    b_leg
        .wait_for_silence_of(440.0, WAIT)
        .await
        .expect("A's tone stops");
    a_leg.hangup().await.expect("hangup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_over_udp() {
    tones_cross(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_over_tcp() {
    tones_cross(Transport::Tcp).await;
}

async fn dtmf_arrives_once_per_digit(transport: Transport) {
    let (_a, _b, a_leg, b_leg) = connected(transport).await;
    a_leg.play_tone(440.0, 0.3);
    a_leg.send_dtmf("1234#").await.expect("digits sent");
    let digits = b_leg
        .wait_for_digits("1234#", WAIT)
        .await
        .expect("digits received");
    assert_eq!(digits, "1234#");
    // Everything is sent; give duplicates a chance to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = b_leg.received_dtmf();
    assert_eq!(b_leg.received_digits(), "1234#", "{received:?}");
    assert!(received
        .iter()
        .all(|d| d.ended && d.source == DtmfSource::Rfc4733));
    assert!(received
        .iter()
        .all(|d| d.duration == Duration::from_millis(100)));
    // The tone resumes after the digits.
    b_leg
        .wait_for_tone(440.0, ToneCondition::present(), WAIT)
        .await
        .expect("audio resumes");
    b_leg.hangup().await.expect("hangup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_arrives_once_per_digit_over_udp() {
    dtmf_arrives_once_per_digit(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_arrives_once_per_digit_over_tcp() {
    dtmf_arrives_once_per_digit(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inband_and_info_digits() {
    let (_a, _b, a_leg, b_leg) = connected(Transport::Udp).await;
    let start = std::time::Instant::now();
    a_leg.send_dtmf_inband("5").await.expect("in-band digit");
    // The 100 ms pair sits in a longer window; it still stands out.
    b_leg
        .wait_for("the tone pair of 5", WAIT, |media| {
            let heard = media.recording_since(start);
            let low = analysis::tone_dbfs(&heard, 770.0);
            let high = analysis::tone_dbfs(&heard, 1336.0);
            if low > -30.0 && high > -30.0 {
                Ok(())
            } else {
                Err(format!(
                    "770 Hz at {low:.1} dBFS, 1336 Hz at {high:.1} dBFS"
                ))
            }
        })
        .await
        .expect("in-band digit heard");

    let response = a_leg.send_info_dtmf('7').await.expect("INFO");
    assert_eq!(response.code, 200);
    let received = b_leg.wait_for_digits("7", WAIT).await.expect("INFO digit");
    assert_eq!(received, "7");
    assert_eq!(b_leg.received_dtmf()[0].source, DtmfSource::SipInfo);
}

async fn bye_ends_both(transport: Transport, caller_hangs_up: bool) {
    let (_a, _b, a_leg, b_leg) = connected(transport).await;
    let (hanging, other) = if caller_hangs_up {
        (&a_leg, &b_leg)
    } else {
        (&b_leg, &a_leg)
    };
    hanging
        .hangup_with(vec![("Reason".into(), "Q.850;cause=16".into())])
        .await
        .expect("BYE answered");
    let reason = other.wait_ended(WAIT).await.expect("remote BYE seen");
    match reason {
        EndReason::RemoteBye { headers } => assert!(headers
            .iter()
            .any(|(n, v)| n == "Reason" && v.contains("cause=16"))),
        other => panic!("unexpected end {other:?}"),
    }
    assert_eq!(hanging.end_reason(), Some(EndReason::LocalHangup));
    // Media stops with the call, and hanging up again is harmless.
    assert!(other.is_stopped() && hanging.is_stopped());
    other.hangup().await.expect("idempotent hangup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_from_caller_ends_both_over_udp() {
    bye_ends_both(Transport::Udp, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_from_callee_ends_both_over_udp() {
    bye_ends_both(Transport::Udp, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_from_either_side_over_tcp() {
    bye_ends_both(Transport::Tcp, true).await;
    bye_ends_both(Transport::Tcp, false).await;
}

async fn cancel_while_ringing(transport: Transport) {
    let a = agent(transport).await;
    let b = agent(transport).await;
    let outgoing = a
        .dial(&b.uri(), CallOptions::default())
        .await
        .expect("INVITE sent");
    let incoming = b.accept_next(WAIT).await.expect("an INVITE");
    incoming.ring().await.expect("ring");
    let ringing = outgoing.wait_provisional(180, WAIT).await.expect("180");
    assert_eq!(ringing.reason, "Ringing");
    assert!(outgoing.provisionals().iter().any(|r| r.code == 100));
    assert_eq!(outgoing.cancel().await.expect("cancelled"), 487);
    incoming
        .wait_cancelled(WAIT)
        .await
        .expect("callee sees the CANCEL");
    let error = incoming.answer().await.expect_err("too late to answer");
    assert!(matches!(error, AgentError::Cancelled), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_gives_487_over_udp() {
    cancel_while_ringing(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_while_ringing_gives_487_over_tcp() {
    cancel_while_ringing(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_calls_return_their_code() {
    let a = agent(Transport::Udp).await;
    let b = agent(Transport::Udp).await;
    let calling = {
        let a = a.clone();
        let target = b.uri();
        tokio::spawn(async move { a.call(&target, CallOptions::default()).await })
    };
    let incoming = b.accept_next(WAIT).await.expect("an INVITE");
    incoming.reject(486).await.expect("reject");
    let error = calling
        .await
        .expect("task")
        .expect_err("rejected call is an error");
    assert_eq!(error.status_code(), Some(486), "{error}");

    // Auto-reject, and a codec nobody can use gives 488.
    b.set_auto_answer(Some(AutoAnswer::reject(404, Duration::ZERO)));
    let error = a
        .call(&b.uri(), CallOptions::default())
        .await
        .expect_err("404");
    assert_eq!(error.status_code(), Some(404));
    b.set_auto_answer(Some(AutoAnswer::default()));
    let g729 = Codec::Other {
        payload_type: 18,
        encoding: "G729".into(),
        clock_rate: 8000,
    };
    let error = a
        .call(&b.uri(), CallOptions::default().codecs([g729]))
        .await
        .expect_err("488");
    assert_eq!(error.status_code(), Some(488));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_answer_and_codec_preference() {
    let a = agent(Transport::Tcp).await;
    let b =
        Agent::bind(AgentConfig::tcp().auto_answer(AutoAnswer::after(Duration::from_millis(200))))
            .await
            .expect("bind");
    let a_leg = a
        .call(
            &b.uri(),
            CallOptions::default().codecs([Codec::Pcma, Codec::Pcmu]),
        )
        .await
        .expect("answered");
    let b_leg = b.next_answered(WAIT).await.expect("auto-answered");
    assert_eq!(a_leg.codec(), Some(Codec::Pcma));
    assert_eq!(b_leg.codec(), Some(Codec::Pcma));
    b_leg.play_tone(697.0, 0.5);
    a_leg
        .wait_for_tone(697.0, ToneCondition::present().min_level(-9.0), WAIT)
        .await
        .expect("A-law tone");
    let response = a.options(&b.uri()).await.expect("OPTIONS");
    assert_eq!(response.code, 200);
    assert!(response
        .header("allow")
        .is_some_and(|v| v.contains("INVITE")));
    drop(a_leg);
    // Dropping the caller's last handle hangs up.
    assert!(b_leg.wait_ended(WAIT).await.expect("ended").is_remote_bye());
}

/// Relays datagrams between a client and a server, dropping the first one
/// the client sends; counts what it forwards.
struct LossyRelay {
    addr: SocketAddr,
    client_datagrams: Arc<AtomicUsize>,
}

async fn lossy_relay(server: SocketAddr) -> LossyRelay {
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind front"));
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind back"));
    let addr = front.local_addr().expect("addr");
    let client_datagrams = Arc::new(AtomicUsize::new(0));
    let client: Arc<tokio::sync::Mutex<Option<SocketAddr>>> = Arc::default();
    {
        let (front, back, client, count) = (
            front.clone(),
            back.clone(),
            client.clone(),
            client_datagrams.clone(),
        );
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 65536];
            while let Ok((n, from)) = front.recv_from(&mut buffer).await {
                *client.lock().await = Some(from);
                if count.fetch_add(1, Ordering::SeqCst) == 0 {
                    continue;
                }
                let _ = back.send_to(&buffer[..n], server).await;
            }
        });
    }
    tokio::spawn(async move {
        let mut buffer = vec![0u8; 65536];
        while let Ok((n, _)) = back.recv_from(&mut buffer).await {
            if let Some(client) = *client.lock().await {
                let _ = front.send_to(&buffer[..n], client).await;
            }
        }
    });
    LossyRelay {
        addr,
        client_datagrams,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_is_retransmitted_when_the_first_datagram_is_lost() {
    let a = Agent::bind(AgentConfig::udp().t1(Duration::from_millis(100)))
        .await
        .expect("bind");
    let b = Agent::bind(AgentConfig::udp().auto_answer(AutoAnswer::default()))
        .await
        .expect("bind");
    let relay = lossy_relay(b.local_addr()).await;
    let target = format!("sip:bob@{}", relay.addr);
    let a_leg = a
        .call(&target, CallOptions::default())
        .await
        .expect("answered despite the loss");
    let b_leg = b.next_answered(WAIT).await.expect("answered");
    // The INVITE went twice: lost, then retransmitted.
    assert!(relay.client_datagrams.load(Ordering::SeqCst) >= 2);
    a_leg.play_tone(440.0, 0.3);
    b_leg
        .wait_for_tone(440.0, ToneCondition::present(), WAIT)
        .await
        .expect("media flows directly");
    // The BYE goes through the relay too (its first datagram is long gone).
    b_leg.hangup().await.expect("hangup");
    assert!(a_leg.wait_ended(WAIT).await.expect("ended").is_remote_bye());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_invite_times_out_with_timer_b() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let a = Agent::bind(AgentConfig::udp().t1(Duration::from_millis(50)))
        .await
        .expect("bind");
    let target = format!("sip:nobody@{}", silent.local_addr().expect("addr"));
    let error = a
        .call(&target, CallOptions::default())
        .await
        .expect_err("no answer");
    assert!(matches!(error, AgentError::NoResponse { .. }), "{error}");
    // T1 = 50 ms: sent at 0, 50, 150, 350, 750, 1550 and 3150 ms; Timer B
    // fires at 3200 ms, so a late wake-up under load may miss the last one.
    let mut buffer = [0u8; 4096];
    let mut invites = 0;
    while let Ok(Ok(_)) =
        tokio::time::timeout(Duration::from_millis(50), silent.recv_from(&mut buffer)).await
    {
        invites += 1;
    }
    assert!(
        (6..=7).contains(&invites),
        "the INVITE and its retransmissions: {invites}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_helpers_report_what_they_measured() {
    let (_a, _b, a_leg, b_leg) = connected(Transport::Udp).await;
    a_leg.play_tone(1000.0, 0.3);
    b_leg
        .wait_for_audio(-20.0, WAIT)
        .await
        .expect("audio arrives");
    let error = b_leg
        .wait_for_tone(440.0, ToneCondition::present(), Duration::from_millis(300))
        .await
        .expect_err("no 440 Hz");
    let text = error.to_string();
    assert!(text.contains("440 Hz at -"), "{text}");
    assert!(text.contains("RMS"), "{text}");
    // The recording is aligned to wall-clock time.
    let recording = b_leg.recording();
    let elapsed = b_leg.started_at().elapsed().as_secs_f64();
    let expected = elapsed * 8000.0;
    assert!(
        // Within the re-anchoring threshold (0.5 s) plus slack.
        (recording.len() as f64 - expected).abs() < 8000.0 * 0.6,
        "{} samples after {elapsed:.2} s",
        recording.len()
    );
    let path = std::env::temp_dir().join(format!("sbagent-test-{}.wav", std::process::id()));
    b_leg.save_recording(&path).expect("saved");
    let saved = switchboard_testagent::wav::read(&path).expect("readable");
    assert!(saved.len() >= recording.len());
    std::fs::remove_file(&path).expect("cleanup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_is_heard_before_the_answer() {
    let a = agent(Transport::Udp).await;
    let b = agent(Transport::Udp).await;
    let outgoing = a
        .dial(&b.uri(), CallOptions::default())
        .await
        .expect("INVITE sent");
    let incoming = b.accept_next(WAIT).await.expect("an INVITE");
    incoming.early_media().await.expect("183 with SDP");
    incoming.media().play_tone(1000.0, 0.3);
    let progress = outgoing.wait_provisional(183, WAIT).await.expect("183");
    assert!(String::from_utf8_lossy(&progress.body).contains("m=audio"));
    // The caller records early media (it derefs to its media).
    outgoing
        .wait_for_tone(1000.0, ToneCondition::present(), WAIT)
        .await
        .expect("early media heard");
    let b_leg = incoming.answer().await.expect("answer");
    let a_leg = outgoing.answered().await.expect("answered");
    a_leg.play_tone(440.0, 0.3);
    b_leg
        .wait_for_tone(440.0, ToneCondition::present(), WAIT)
        .await
        .expect("caller heard after the answer");
    a_leg
        .wait_for_tone(1000.0, min_db_over(20.0, &[440.0]), WAIT)
        .await
        .expect("callee's tone continues");
}

async fn hold_and_resume(transport: Transport) {
    let (_a, _b, a_leg, b_leg) = connected(transport).await;
    a_leg.play_tone(440.0, 0.3);
    b_leg.play_tone(1000.0, 0.3);
    a_leg
        .wait_for_tone(1000.0, ToneCondition::present(), WAIT)
        .await
        .expect("B heard before hold");

    let held = a_leg.hold().await.expect("hold accepted");
    assert!(String::from_utf8_lossy(&held.body).contains("a=recvonly"));
    a_leg
        .wait_for_silence_of(1000.0, WAIT)
        .await
        .expect("B stops sending while held");
    b_leg
        .wait_for_tone(440.0, ToneCondition::present(), WAIT)
        .await
        .expect("A still heard while holding");

    a_leg.resume().await.expect("resume accepted");
    a_leg
        .wait_for_tone(1000.0, ToneCondition::present(), WAIT)
        .await
        .expect("B heard again");
    assert!(!a_leg.is_ended() && !b_leg.is_ended());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_over_udp() {
    hold_and_resume(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_resume_over_tcp() {
    hold_and_resume(Transport::Tcp).await;
}
