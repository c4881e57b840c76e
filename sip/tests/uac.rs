//! Outgoing calls end to end: the endpoint dials a raw SIP peer.

mod common;

use std::time::Duration;

use common::*;
use switchboard_sip::{
    CallEvent, CallState, DialRequest, EndReason, OutgoingCall, SipEndpoint, SipError, Transport,
};

fn request(uri: String) -> DialRequest {
    DialRequest {
        uri,
        from: "\"Reception\" <sip:reception@example.com>".into(),
        headers: vec![("X-Campaign".into(), "7".into())],
        sdp: SDP_ANSWER.to_string(),
    }
}

/// The callee's response to `request`: tagged To, Contact, optional SDP.
fn reply(request: &Msg, code: u16, reason: &str, tag: &str, contact: &str, sdp: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in request.headers_named("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for name in ["From", "Call-ID", "CSeq"] {
        out.push_str(&format!("{name}: {}\r\n", request.header(name).unwrap()));
    }
    let to = request.header("To").unwrap();
    if code == 100 || tag_of(to).is_some() {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={tag}\r\n"));
    }
    if (101..300).contains(&code) {
        out.push_str(&format!("Contact: {contact}\r\n"));
    }
    if !sdp.is_empty() {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
    out
}

async fn udp_callee(endpoint: &SipEndpoint) -> Peer {
    Peer::udp(endpoint).await
}

async fn dial_to(endpoint: &SipEndpoint, peer: &Peer, params: &str) -> OutgoingCall {
    let uri = format!("sip:bob@{}{params}", peer.local());
    endpoint.dial(request(uri)).await.expect("dial")
}

#[tokio::test]
async fn answered_call_then_our_bye_over_udp() {
    let (endpoint, _calls) = start().await;
    let mut callee = udp_callee(&endpoint).await;
    let mut call = dial_to(&endpoint, &callee, "").await;
    assert_eq!(call.signaling.transport(), Transport::Udp);
    assert_eq!(call.signaling.destination(), "bob");
    assert_eq!(call.signaling.from(), "sip:reception@example.com");
    assert_eq!(call.signaling.state(), CallState::Incoming);

    let invite = callee
        .recv_matching("INVITE", |m| m.method() == Some("INVITE"))
        .await;
    assert_eq!(
        invite.start,
        format!("INVITE sip:bob@{} SIP/2.0", callee.local())
    );
    assert_eq!(
        tag_of(invite.header("From").unwrap()),
        Some(call.signaling.id())
    );
    assert!(invite
        .header("From")
        .unwrap()
        .starts_with("\"Reception\" <sip:reception@example.com>"));
    assert!(invite
        .header("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 127.0.0.1:"));
    assert_eq!(invite.header("X-Campaign"), Some("7"));
    assert_eq!(invite.header("Content-Type"), Some("application/sdp"));
    assert_eq!(invite.body, SDP_ANSWER);
    assert!(invite.header("Contact").is_some());
    let contact = format!("<sip:bob@{}>", callee.local());

    callee
        .send(&reply(&invite, 100, "Trying", "", "", ""))
        .await;
    callee
        .send(&reply(&invite, 180, "Ringing", "callee1", &contact, ""))
        .await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Progress {
            status: 180,
            sdp: None
        })
    );
    callee
        .send(&reply(&invite, 200, "OK", "callee1", &contact, SDP_OFFER))
        .await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Answered {
            sdp: Some(SDP_OFFER.as_bytes().to_vec())
        })
    );
    assert_eq!(call.signaling.state(), CallState::Confirmed);
    let ack = callee
        .recv_matching("ACK", |m| m.method() == Some("ACK"))
        .await;
    assert_eq!(ack.start, format!("ACK sip:bob@{} SIP/2.0", callee.local()));
    assert_eq!(ack.to_tag(), Some("callee1"));
    let invite_cseq: u32 = invite
        .header("CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ack.header("CSeq"),
        Some(format!("{invite_cseq} ACK").as_str())
    );

    // Incoming-call operations make no sense here.
    assert!(matches!(
        call.signaling.answer(SDP_ANSWER.into(), vec![]).await,
        Err(SipError::InvalidState(_))
    ));

    let signaling = call.signaling.clone();
    let hangup = tokio::spawn(async move { signaling.hangup(Vec::new()).await });
    let bye = callee
        .recv_matching("BYE", |m| m.method() == Some("BYE"))
        .await;
    assert_eq!(bye.start, format!("BYE sip:bob@{} SIP/2.0", callee.local()));
    assert_eq!(bye.to_tag(), Some("callee1"));
    assert_eq!(
        tag_of(bye.header("From").unwrap()),
        Some(call.signaling.id())
    );
    let bye_cseq: u32 = bye
        .header("CSeq")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(bye_cseq > invite_cseq);
    callee.send(&respond_to(&bye, 200, "OK")).await;
    tokio::time::timeout(WAIT, hangup)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    assert_eq!(next_event(&mut call.events).await, None);
    assert_eq!(endpoint.live_dialogs(), 0);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn refused_call_is_acked_and_reported() {
    let (endpoint, _calls) = start().await;
    let mut callee = udp_callee(&endpoint).await;
    let mut call = dial_to(&endpoint, &callee, "").await;
    let invite = callee
        .recv_matching("INVITE", |m| m.method() == Some("INVITE"))
        .await;
    callee
        .send(&reply(&invite, 486, "Busy Here", "callee2", "", ""))
        .await;
    let ack = callee
        .recv_matching("ACK", |m| m.method() == Some("ACK"))
        .await;
    // The ACK of an error response is part of the INVITE transaction.
    assert_eq!(ack.header("Via"), invite.header("Via"));
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Rejected {
            status: 486,
            reason: "Busy Here".into()
        })
    );
    assert_eq!(next_event(&mut call.events).await, None);
    assert_eq!(call.signaling.state(), CallState::Ended);
    assert_eq!(endpoint.live_dialogs(), 0);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn callee_bye_over_tcp() {
    let (endpoint, _calls) = start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("sip:bob@{};transport=tcp", listener.local_addr().unwrap());
    let mut call = endpoint.dial(request(uri)).await.unwrap();
    assert_eq!(call.signaling.transport(), Transport::Tcp);
    let mut callee = Peer::accept(&listener).await;
    let invite = callee
        .recv_matching("INVITE", |m| m.method() == Some("INVITE"))
        .await;
    assert!(invite.header("Via").unwrap().starts_with("SIP/2.0/TCP "));
    assert!(invite.header("Contact").unwrap().contains("transport=tcp"));
    let contact = format!("<sip:bob@{};transport=tcp>", callee.local());
    callee
        .send(&reply(&invite, 200, "OK", "callee3", &contact, SDP_OFFER))
        .await;
    assert!(matches!(
        next_event(&mut call.events).await,
        Some(CallEvent::Answered { .. })
    ));
    let ack = callee
        .recv_matching("ACK", |m| m.method() == Some("ACK"))
        .await;
    assert_eq!(ack.to_tag(), Some("callee3"));

    // The callee hangs up, on the same connection.
    let mut caller_side = Caller::new(&callee, "reception");
    caller_side.call_id = invite.header("Call-ID").unwrap().to_string();
    let bye = format!(
        "BYE sip:reception@{server};transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP {local};branch=z9hG4bKcalleebye\r\n\
         Max-Forwards: 70\r\nFrom: {to};tag=callee3\r\nTo: {from}\r\nCall-ID: {cid}\r\nCSeq: 1 BYE\r\n\
         Content-Length: 0\r\n\r\n",
        server = callee.server(),
        local = callee.local(),
        to = invite.header("To").unwrap(),
        from = invite.header("From").unwrap(),
        cid = caller_side.call_id,
    );
    callee.send(&bye).await;
    callee.response(200, "BYE").await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::RemoteBye))
    );
    // The connection we opened for the call closes with it.
    assert!(callee.closed_within(WAIT).await);
    assert_eq!(endpoint.live_dialogs(), 0);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn hangup_while_ringing_cancels() {
    let (endpoint, _calls) = start().await;
    let mut callee = udp_callee(&endpoint).await;
    let mut call = dial_to(&endpoint, &callee, "").await;
    let invite = callee
        .recv_matching("INVITE", |m| m.method() == Some("INVITE"))
        .await;
    let contact = format!("<sip:bob@{}>", callee.local());
    callee
        .send(&reply(&invite, 180, "Ringing", "callee4", &contact, ""))
        .await;
    assert!(matches!(
        next_event(&mut call.events).await,
        Some(CallEvent::Progress { status: 180, .. })
    ));

    let signaling = call.signaling.clone();
    let hangup = tokio::spawn(async move { signaling.hangup(Vec::new()).await });
    let cancel = callee
        .recv_matching("CANCEL", |m| m.method() == Some("CANCEL"))
        .await;
    assert_eq!(cancel.header("Via"), invite.header("Via"));
    let number = invite.header("CSeq").unwrap().split(' ').next().unwrap();
    assert_eq!(
        cancel.header("CSeq"),
        Some(format!("{number} CANCEL").as_str())
    );
    assert_eq!(tag_of(cancel.header("To").unwrap()), None);
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    callee.send(&respond_to(&cancel, 200, "OK")).await;
    callee
        .send(&reply(
            &invite,
            487,
            "Request Terminated",
            "callee4",
            "",
            "",
        ))
        .await;
    callee
        .recv_matching("ACK", |m| m.method() == Some("ACK"))
        .await;
    tokio::time::timeout(WAIT, hangup)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next_event(&mut call.events).await, None);
    assert_eq!(endpoint.live_dialogs(), 0);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn answer_crossing_our_cancel_is_acked_and_ended_with_bye() {
    let (endpoint, _calls) = start().await;
    let mut callee = udp_callee(&endpoint).await;
    let mut call = dial_to(&endpoint, &callee, "").await;
    let invite = callee
        .recv_matching("INVITE", |m| m.method() == Some("INVITE"))
        .await;
    // Hung up before any provisional response: no CANCEL may go yet.
    let signaling = call.signaling.clone();
    let hangup = tokio::spawn(async move { signaling.hangup(Vec::new()).await });
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Ended(EndReason::Local))
    );
    callee
        .nothing_matching(Duration::from_millis(300), |m| m.method() == Some("CANCEL"))
        .await;
    let contact = format!("<sip:bob@{}>", callee.local());
    callee
        .send(&reply(&invite, 200, "OK", "callee5", &contact, SDP_OFFER))
        .await;
    callee
        .recv_matching("ACK", |m| m.method() == Some("ACK"))
        .await;
    let bye = callee
        .recv_matching("BYE", |m| m.method() == Some("BYE"))
        .await;
    assert_eq!(bye.to_tag(), Some("callee5"));
    callee.send(&respond_to(&bye, 200, "OK")).await;
    tokio::time::timeout(WAIT, hangup)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next_event(&mut call.events).await, None);
    endpoint.shutdown().await;
}

#[tokio::test]
async fn unanswered_invite_times_out_as_408() {
    // Timer B = 64 * T1 = 3.2 s; the INVITE is retransmitted meanwhile.
    let (endpoint, _calls) = start_with(fast_timers()).await;
    let mut callee = udp_callee(&endpoint).await;
    let mut call = dial_to(&endpoint, &callee, "").await;
    let first = callee
        .recv_matching("INVITE", |m| m.method() == Some("INVITE"))
        .await;
    let again = callee
        .recv_matching("INVITE retransmission", |m| m.method() == Some("INVITE"))
        .await;
    assert_eq!(again.header("Via"), first.header("Via"));
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Rejected {
            status: 408,
            reason: "Request Timeout".into()
        })
    );
    endpoint.shutdown().await;
}

#[tokio::test]
async fn bad_dial_requests_are_refused() {
    let (endpoint, _calls) = start().await;
    for uri in [
        "sips:bob@127.0.0.1",
        "tel:+15551234",
        "sip:bob@127.0.0.1;transport=tls",
        "nonsense",
    ] {
        assert!(
            matches!(
                endpoint.dial(request(uri.into())).await,
                Err(SipError::InvalidArgument(_))
            ),
            "{uri}"
        );
    }
    let mut bad_from = request("sip:bob@127.0.0.1:9".into());
    bad_from.from = "<sip:me@example.com>;tag=mine".into();
    assert!(matches!(
        endpoint.dial(bad_from).await,
        Err(SipError::InvalidArgument(_))
    ));
    let mut bad_header = request("sip:bob@127.0.0.1:9".into());
    bad_header.headers = vec![("Call-ID".into(), "x".into())];
    assert!(matches!(
        endpoint.dial(bad_header).await,
        Err(SipError::InvalidArgument(_))
    ));
    // Nobody listens on TCP port 9.
    assert!(matches!(
        endpoint
            .dial(request("sip:bob@127.0.0.1:9;transport=tcp".into()))
            .await,
        Err(SipError::Stack(_))
    ));
    endpoint.shutdown().await;
    assert!(matches!(
        endpoint.dial(request("sip:bob@127.0.0.1:9".into())).await,
        Err(SipError::InvalidState(_))
    ));
}
