//! Incoming calls end to end, over UDP and TCP, with a raw SIP peer.

mod common;

use std::time::Duration;

use common::*;
use switchboard_sip::{CallEvent, CallState, EndReason, SipError, Transport};

async fn full_call(tcp: bool) {
    let (endpoint, mut calls) = start().await;
    let mut peer = if tcp {
        Peer::tcp(&endpoint).await
    } else {
        Peer::udp(&endpoint).await
    };
    let mut caller = Caller::new(&peer, "%2B33%20room");
    peer.send(&caller.invite_with("X-Room: 42\r\n", SDP_OFFER))
        .await;

    let trying = peer.recv().await;
    assert!(trying.is_response(100, "INVITE"), "{}", trying.raw);
    assert_eq!(trying.to_tag(), None);

    let mut call = next_call(&mut calls).await;
    let signaling = call.signaling.clone();
    assert_eq!(signaling.destination(), "+33 room");
    assert_eq!(signaling.from(), "sip:alice@example.com");
    assert_eq!(signaling.to(), format!("sip:+33%20room@{}", peer.server()));
    assert_eq!(signaling.sip_call_id(), caller.call_id);
    assert_eq!(signaling.remote_addr(), peer.local());
    assert_eq!(signaling.offer(), Some(SDP_OFFER.as_bytes()));
    assert_eq!(
        signaling.transport(),
        if tcp { Transport::Tcp } else { Transport::Udp }
    );
    assert!(signaling
        .headers()
        .iter()
        .any(|(name, value)| name == "X-Room" && value == "42"));
    assert!(signaling
        .headers()
        .iter()
        .any(|(name, _)| name == "Call-ID"));
    assert!(signaling.request_uri().starts_with("sip:+33%20room@"));
    assert_eq!(signaling.state(), CallState::Incoming);

    signaling.ring().await.unwrap();
    let ringing = peer.response(180, "INVITE").await;
    assert_eq!(ringing.to_tag(), Some(signaling.id()));

    signaling
        .answer(
            SDP_ANSWER.to_string(),
            vec![("X-Answered-By".into(), "test".into())],
        )
        .await
        .unwrap();
    let ok = peer.response(200, "INVITE").await;
    assert_eq!(ok.to_tag(), Some(signaling.id()));
    assert_eq!(ok.body, SDP_ANSWER);
    assert_eq!(ok.header("Content-Type"), Some("application/sdp"));
    assert_eq!(ok.header("X-Answered-By"), Some("test"));
    assert!(ok.header("Allow").is_some_and(|a| a.contains("INVITE")));
    let contact = ok.header("Contact").unwrap();
    assert!(contact.contains(&peer.server().to_string()), "{contact}");
    assert_eq!(contact.contains("transport=tcp"), tcp, "{contact}");
    assert_eq!(signaling.state(), CallState::Answered);

    caller.learn_to(&ok);
    peer.send(&caller.ack_2xx()).await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Confirmed)
    );
    assert_eq!(signaling.state(), CallState::Confirmed);
    assert_eq!(endpoint.live_dialogs(), 1);

    peer.send(&caller.in_dialog("BYE", "", "")).await;
    peer.response(200, "BYE").await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::RemoteBye))
    );
    assert_eq!(next_event(&mut call.events).await, None);
    assert_eq!(signaling.state(), CallState::Ended);
    assert_eq!(endpoint.live_dialogs(), 0);
    assert!(matches!(
        signaling.answer(SDP_ANSWER.into(), vec![]).await,
        Err(SipError::InvalidState(_))
    ));
    endpoint.shutdown().await;
}

#[tokio::test]
async fn full_call_over_udp() {
    full_call(false).await;
}

#[tokio::test]
async fn full_call_over_tcp() {
    full_call(true).await;
}

#[tokio::test]
async fn retransmitted_invite_makes_one_call() {
    let (endpoint, mut calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let caller = Caller::new(&peer, "100");
    let invite = caller.invite();
    peer.send(&invite).await;
    peer.response(100, "INVITE").await;
    let call = next_call(&mut calls).await;
    call.signaling.ring().await.unwrap();
    peer.response(180, "INVITE").await;
    // A retransmission gets the last provisional response again.
    peer.send(&invite).await;
    peer.response(180, "INVITE").await;
    no_call(&mut calls).await;
    endpoint.shutdown().await;
}

async fn ok_retransmitted_until_ack(tcp: bool) {
    // T1 = 50 ms, T2 = 200 ms: the 200 goes out at 0, 50, 150, 350, 550 ms...
    let (endpoint, mut calls) = start_with(fast_timers()).await;
    let mut peer = if tcp {
        Peer::tcp(&endpoint).await
    } else {
        Peer::udp(&endpoint).await
    };
    let mut caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    call.signaling
        .answer(SDP_ANSWER.to_string(), Vec::new())
        .await
        .unwrap();
    let ok = peer.response(200, "INVITE").await;
    for _ in 0..3 {
        let again = peer.response(200, "INVITE").await;
        assert_eq!(again.body, ok.body);
        assert_eq!(again.to_tag(), ok.to_tag());
    }
    caller.learn_to(&ok);
    peer.send(&caller.ack_2xx()).await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Confirmed)
    );
    // Retransmissions sent before the ACK was processed may still be in our
    // socket; after that, silence (they would come every 200 ms).
    tokio::time::sleep(Duration::from_millis(300)).await;
    peer.drain().await;
    peer.nothing_matching(Duration::from_millis(1200), |m| {
        m.is_response(200, "INVITE")
    })
    .await;
    assert_eq!(call.signaling.state(), CallState::Confirmed);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn ok_is_retransmitted_until_ack_over_udp() {
    ok_retransmitted_until_ack(false).await;
}

#[tokio::test]
async fn ok_is_retransmitted_until_ack_over_tcp() {
    // RFC 3261 §13.3.1.4: the UAS core retransmits the 2xx on any transport.
    ok_retransmitted_until_ack(true).await;
}

#[tokio::test]
async fn missing_ack_ends_the_call_with_a_bye() {
    // 64 * T1 = 3.2 s.
    let (endpoint, mut calls) = start_with(fast_timers()).await;
    let mut peer = Peer::udp(&endpoint).await;
    let caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    call.signaling
        .answer(SDP_ANSWER.to_string(), Vec::new())
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::AckTimeout))
    );
    let bye = peer
        .recv_matching("BYE", |m| m.method() == Some("BYE"))
        .await;
    assert_eq!(bye.header("Call-ID"), Some(caller.call_id.as_str()));
    assert_eq!(
        tag_of(bye.header("From").unwrap()),
        Some(call.signaling.id())
    );
    assert_eq!(
        tag_of(bye.header("To").unwrap()),
        Some(caller.from_tag.as_str())
    );
    assert!(bye
        .start
        .starts_with(&format!("BYE sip:caller@{} ", peer.local())));
    peer.send(&respond_to(&bye, 200, "OK")).await;
    assert_eq!(next_event(&mut call.events).await, None);
    endpoint.shutdown().await;
}

async fn cancel_before_answer(tcp: bool) {
    let (endpoint, mut calls) = start_with(fast_timers()).await;
    let mut peer = if tcp {
        Peer::tcp(&endpoint).await
    } else {
        Peer::udp(&endpoint).await
    };
    let caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    call.signaling.ring().await.unwrap();
    peer.response(180, "INVITE").await;

    peer.send(&caller.cancel()).await;
    let mut got_cancel_ok = false;
    let mut terminated = None;
    while !got_cancel_ok || terminated.is_none() {
        let message = peer.recv().await;
        if message.is_response(200, "CANCEL") {
            got_cancel_ok = true;
        } else if message.is_response(487, "INVITE") {
            terminated = Some(message);
        }
    }
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Cancelled))
    );
    assert_eq!(next_event(&mut call.events).await, None);
    let terminated = terminated.unwrap();
    peer.send(&caller.ack_error(terminated.header("To").unwrap()))
        .await;
    assert!(matches!(
        call.signaling.answer(SDP_ANSWER.into(), vec![]).await,
        Err(SipError::InvalidState(_))
    ));
    // The ACK stopped the 487 retransmissions (every 200 ms over UDP).
    tokio::time::sleep(Duration::from_millis(300)).await;
    peer.drain().await;
    peer.nothing_matching(QUIET, |m| m.is_response(487, "INVITE"))
        .await;
    assert_eq!(endpoint.live_dialogs(), 0);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn cancel_before_answer_over_udp() {
    cancel_before_answer(false).await;
}

#[tokio::test]
async fn cancel_before_answer_over_tcp() {
    cancel_before_answer(true).await;
}

#[tokio::test]
async fn cancel_after_answer_leaves_the_call_up() {
    let (endpoint, mut calls) = start().await;
    let (mut peer, caller, mut call) = confirmed_call(&endpoint, &mut calls, false).await;
    peer.send(&caller.cancel()).await;
    peer.response(200, "CANCEL").await;
    peer.nothing_matching(QUIET, |m| m.status() == Some(487))
        .await;
    assert_eq!(call.signaling.state(), CallState::Confirmed);
    assert!(tokio::time::timeout(QUIET, call.events.recv())
        .await
        .is_err());
    endpoint.shutdown().await;
}

async fn hangup_sends_bye(tcp: bool) {
    let (endpoint, mut calls) = start().await;
    let (mut peer, caller, mut call) = confirmed_call(&endpoint, &mut calls, tcp).await;
    let signaling = call.signaling.clone();
    let hangup = tokio::spawn(async move {
        signaling
            .hangup(vec![("Reason".into(), "Q.850;cause=16".into())])
            .await
    });
    let bye = peer
        .recv_matching("BYE", |m| m.method() == Some("BYE"))
        .await;
    assert_eq!(bye.header("Reason"), Some("Q.850;cause=16"));
    assert_eq!(bye.header("Call-ID"), Some(caller.call_id.as_str()));
    assert_eq!(
        tag_of(bye.header("To").unwrap()),
        Some(caller.from_tag.as_str())
    );
    assert!(bye.header("Via").unwrap().starts_with(if tcp {
        "SIP/2.0/TCP"
    } else {
        "SIP/2.0/UDP"
    }));
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    peer.send(&respond_to(&bye, 200, "OK")).await;
    tokio::time::timeout(WAIT, hangup)
        .await
        .expect("hangup returns once the BYE is answered")
        .unwrap()
        .unwrap();
    assert_eq!(next_event(&mut call.events).await, None);
    assert_eq!(endpoint.live_dialogs(), 0);
    // Idempotent: no second BYE (a retransmission of the first may have
    // crossed our 200).
    call.signaling.hangup(Vec::new()).await.unwrap();
    let first = bye.header("CSeq").unwrap().to_string();
    peer.nothing_matching(QUIET, |m| {
        m.method() == Some("BYE") && m.header("CSeq") != Some(first.as_str())
    })
    .await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn hangup_sends_bye_over_udp() {
    hangup_sends_bye(false).await;
}

#[tokio::test]
async fn hangup_sends_bye_over_tcp() {
    hangup_sends_bye(true).await;
}

#[tokio::test]
async fn hangup_before_answer_sends_480() {
    let (endpoint, mut calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    call.signaling.hangup(Vec::new()).await.unwrap();
    let unavailable = peer.response(480, "INVITE").await;
    assert_eq!(unavailable.to_tag(), Some(call.signaling.id()));
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    call.signaling.hangup(Vec::new()).await.unwrap();
    peer.send(&caller.ack_error(unavailable.header("To").unwrap()))
        .await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn reject_sends_the_code_and_reason() {
    let (endpoint, mut calls) = start_with(fast_timers()).await;
    let mut peer = Peer::udp(&endpoint).await;
    let caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    assert!(matches!(
        call.signaling.reject(200, None).await,
        Err(SipError::InvalidArgument(_))
    ));
    assert!(matches!(
        call.signaling.reject(486, Some("bad\r\nreason")).await,
        Err(SipError::InvalidArgument(_))
    ));
    call.signaling.reject(486, Some("Busy Now")).await.unwrap();
    let busy = peer.response(486, "INVITE").await;
    assert_eq!(busy.start, "SIP/2.0 486 Busy Now");
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    assert!(matches!(
        call.signaling.ring().await,
        Err(SipError::InvalidState(_))
    ));
    peer.send(&caller.ack_error(busy.header("To").unwrap()))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    peer.drain().await;
    peer.nothing_matching(QUIET, |m| m.status() == Some(486))
        .await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn in_dialog_info_options_and_reinvite() {
    let (endpoint, mut calls) = start().await;
    let (mut peer, mut caller, mut call) = confirmed_call(&endpoint, &mut calls, false).await;

    let info = caller.in_dialog(
        "INFO",
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    peer.send(&info).await;
    peer.response(200, "INFO").await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Info {
            content_type: Some("application/dtmf-relay".into()),
            body: b"Signal=5\r\nDuration=160\r\n".to_vec(),
        })
    );

    peer.send(&caller.in_dialog("OPTIONS", "", "")).await;
    let options = peer.response(200, "OPTIONS").await;
    assert!(options.header("Allow").is_some());

    // Hold: answered with the current SDP for now.
    let hold = SDP_OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
    peer.send(&caller.in_dialog("INVITE", "Content-Type: application/sdp\r\n", &hold))
        .await;
    let ok = peer.response(200, "INVITE").await;
    assert_eq!(ok.body, SDP_ANSWER);
    assert!(ok.header("Contact").is_some());
    peer.send(&caller.ack_2xx()).await;

    // A request older than the last one is refused.
    caller.cseq -= 2;
    peer.send(&caller.in_dialog("INFO", "", "")).await;
    peer.response(500, "INFO").await;
    caller.cseq += 5;

    peer.send(&caller.in_dialog("BYE", "", "")).await;
    peer.response(200, "BYE").await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::RemoteBye))
    );
    endpoint.shutdown().await;
}

#[tokio::test]
async fn dropping_every_handle_hangs_up() {
    let (endpoint, mut calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let call = next_call(&mut calls).await;
    drop(call);
    peer.response(480, "INVITE").await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn tcp_close_ends_the_call() {
    let (endpoint, mut calls) = start().await;
    let (peer, _caller, mut call) = confirmed_call(&endpoint, &mut calls, true).await;
    drop(peer);
    assert!(matches!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::TransportError(_)))
    ));
    assert_eq!(endpoint.live_dialogs(), 0);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_calls_and_stops_listening() {
    let (endpoint, mut calls) = start().await;
    let (mut peer, _caller, mut call) = confirmed_call(&endpoint, &mut calls, false).await;
    endpoint.shutdown().await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Shutdown))
    );
    assert!(tokio::time::timeout(WAIT, calls.recv())
        .await
        .unwrap()
        .is_none());
    peer.drain().await;
    let caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    assert!(peer.recv_within(QUIET).await.is_none());
    // The UDP port is free again.
    let udp = endpoint.local_addr(Transport::Udp).unwrap();
    tokio::net::UdpSocket::bind(udp)
        .await
        .expect("port released");
    endpoint.shutdown().await;
}

#[tokio::test]
async fn merged_invite_gets_482() {
    let (endpoint, mut calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let mut caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let call = next_call(&mut calls).await;
    // The same INVITE by another path: another branch, same Call-ID,
    // From tag and CSeq.
    let first_branch = caller.invite_branch.clone();
    caller.invite_branch = format!("z9hG4bK{}", unique("fork"));
    peer.send(&caller.invite()).await;
    let loop_detected = peer.response(482, "INVITE").await;
    assert!(loop_detected
        .header("Via")
        .unwrap()
        .contains(&caller.invite_branch));
    no_call(&mut calls).await;
    caller.invite_branch = first_branch;
    call.signaling.reject(486, None).await.unwrap();
    peer.response(486, "INVITE").await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn bye_before_ack_ends_the_call_and_stops_the_200() {
    let (endpoint, mut calls) = start_with(fast_timers()).await;
    let mut peer = Peer::udp(&endpoint).await;
    let mut caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    call.signaling
        .answer(SDP_ANSWER.to_string(), Vec::new())
        .await
        .unwrap();
    let ok = peer.response(200, "INVITE").await;
    caller.learn_to(&ok);
    peer.send(&caller.in_dialog("BYE", "", "")).await;
    peer.response(200, "BYE").await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::RemoteBye))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    peer.drain().await;
    peer.nothing_matching(Duration::from_millis(1200), |m| {
        m.is_response(200, "INVITE")
    })
    .await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn hangup_before_ack_waits_for_the_ack_to_send_bye() {
    let (endpoint, mut calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let mut caller = Caller::new(&peer, "100");
    peer.send(&caller.invite()).await;
    let mut call = next_call(&mut calls).await;
    call.signaling
        .answer(SDP_ANSWER.to_string(), Vec::new())
        .await
        .unwrap();
    let ok = peer.response(200, "INVITE").await;
    caller.learn_to(&ok);
    let signaling = call.signaling.clone();
    let hangup = tokio::spawn(async move { signaling.hangup(Vec::new()).await });
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    // RFC 3261 §15: no BYE before the ACK.
    peer.nothing_matching(QUIET, |m| m.method() == Some("BYE"))
        .await;
    peer.send(&caller.ack_2xx()).await;
    let bye = peer
        .recv_matching("BYE", |m| m.method() == Some("BYE"))
        .await;
    peer.send(&respond_to(&bye, 200, "OK")).await;
    tokio::time::timeout(WAIT, hangup)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    endpoint.shutdown().await;
}
