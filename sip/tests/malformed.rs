//! Broken, unsupported and hostile input: the endpoint answers what it can
//! (400, 405, 420, 481, 501, 505) and carries on.

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn options(peer: &Peer, extra: &str) -> String {
    let caller = Caller::new(peer, "ping");
    format!(
        "OPTIONS sip:ping@{server} SIP/2.0\r\nVia: SIP/2.0/{t} {local};branch=z9hG4bK{b}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@example.com>;tag={tag}\r\nTo: <sip:ping@{server}>\r\n\
         Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\n{extra}Content-Length: 0\r\n\r\n",
        server = peer.server(),
        t = peer.transport(),
        local = peer.local(),
        b = unique("opt"),
        tag = caller.from_tag,
        cid = caller.call_id,
    )
}

/// The endpoint still answers: an OPTIONS gets its 200.
async fn still_alive(peer: &mut Peer) {
    let ping = options(peer, "");
    peer.send(&ping).await;
    let call_id = Msg::parse(&ping).header("Call-ID").unwrap().to_string();
    peer.recv_matching("200 to OPTIONS", |m| {
        m.is_response(200, "OPTIONS") && m.header("Call-ID") == Some(call_id.as_str())
    })
    .await;
}

#[tokio::test]
async fn options_out_of_dialog() {
    let (endpoint, _calls) = start().await;
    for tcp in [false, true] {
        let mut peer = if tcp {
            Peer::tcp(&endpoint).await
        } else {
            Peer::udp(&endpoint).await
        };
        peer.send(&options(&peer, "")).await;
        let ok = peer.response(200, "OPTIONS").await;
        let allow = ok.header("Allow").unwrap();
        for method in ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO"] {
            assert!(allow.contains(method), "{allow}");
        }
        assert_eq!(ok.header("Accept"), Some("application/sdp"));
        assert!(ok.header("Supported").is_some());
        assert!(ok.to_tag().is_some());
        assert_eq!(ok.header("Server"), Some("switchboard-test"));
    }
    endpoint.shutdown().await;
}

fn without(message: &str, header: &str) -> String {
    message
        .split("\r\n")
        .filter(|line| !line.starts_with(&format!("{header}:")))
        .collect::<Vec<_>>()
        .join("\r\n")
}

async fn malformed_requests_get_400(tcp: bool) {
    let (endpoint, mut calls) = start().await;
    let mut peer = if tcp {
        Peer::tcp(&endpoint).await
    } else {
        Peer::udp(&endpoint).await
    };
    let caller = Caller::new(&peer, "100");
    let invite = caller.invite();
    let cases = [
        (without(&invite, "Call-ID"), "Missing Call-ID"),
        (without(&invite, "CSeq"), "Missing CSeq"),
        (without(&invite, "From"), "Missing From"),
        (without(&invite, "To"), "Missing To"),
        (
            invite.replace("CSeq: 1 INVITE", "CSeq: one INVITE"),
            "Bad CSeq",
        ),
        (
            invite.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"),
            "CSeq method does not match the request",
        ),
        (invite.replace(";tag=", ";nottag="), "Missing From tag"),
    ];
    for (message, reason) in &cases {
        peer.send(message).await;
        let response = peer
            .recv_matching(reason, |m| m.status() == Some(400))
            .await;
        assert_eq!(response.start, format!("SIP/2.0 400 {reason}"));
        if !reason.starts_with("Missing Call-ID") {
            assert_eq!(response.header("Call-ID"), Some(caller.call_id.as_str()));
        }
        assert!(response
            .header("Via")
            .unwrap()
            .contains(&caller.invite_branch));
        still_alive(&mut peer).await;
    }
    if !tcp {
        // Over UDP the datagram is the message: a Content-Length beyond it
        // is an error (over TCP it would wait for the rest of the body).
        let short = invite.replace(
            &format!("Content-Length: {}", SDP_OFFER.len()),
            &format!("Content-Length: {}", SDP_OFFER.len() + 50),
        );
        peer.send(&short).await;
        let response = peer.response(400, "INVITE").await;
        assert_eq!(
            response.start,
            "SIP/2.0 400 Content-Length exceeds the body"
        );
        still_alive(&mut peer).await;
    }
    no_call(&mut calls).await;
    // The valid INVITE still works after all that.
    peer.send(&invite).await;
    let call = next_call(&mut calls).await;
    call.signaling.reject(404, None).await.unwrap();
    peer.response(404, "INVITE").await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_400_over_udp() {
    malformed_requests_get_400(false).await;
}

#[tokio::test]
async fn malformed_requests_get_400_over_tcp() {
    malformed_requests_get_400(true).await;
}

#[tokio::test]
async fn unsupported_methods_versions_and_extensions() {
    let (endpoint, _calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let ping = options(&peer, "");
    for method in ["REGISTER", "SUBSCRIBE", "MESSAGE", "PUBLISH", "REFER"] {
        let request = ping
            .replace("OPTIONS sip:", &format!("{method} sip:"))
            .replace("1 OPTIONS", &format!("1 {method}"))
            .replace("z9hG4bK", &format!("z9hG4bK{method}"));
        peer.send(&request).await;
        let response = peer.response(405, method).await;
        assert!(response.header("Allow").unwrap().contains("INVITE"));
    }
    let unknown = ping
        .replace("OPTIONS sip:", "FROBNICATE sip:")
        .replace("1 OPTIONS", "1 FROBNICATE");
    peer.send(&unknown).await;
    let response = peer.response(501, "FROBNICATE").await;
    assert!(response.header("Allow").is_some());

    peer.send(&ping.replace("SIP/2.0\r\nVia", "SIP/3.0\r\nVia"))
        .await;
    peer.recv_matching("505", |m| m.status() == Some(505)).await;

    let requiring = options(&peer, "Require: 100rel, timer\r\n");
    peer.send(&requiring).await;
    let response = peer.response(420, "OPTIONS").await;
    assert_eq!(response.header("Unsupported"), Some("100rel, timer"));
    still_alive(&mut peer).await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn requests_for_unknown_dialogs_get_481() {
    let (endpoint, _calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let mut caller = Caller::new(&peer, "100");
    caller.to = Some(format!("<sip:100@{}>;tag=nosuchdialog", peer.server()));
    for method in ["BYE", "INFO", "OPTIONS", "INVITE"] {
        peer.send(&caller.in_dialog(method, "", "")).await;
        peer.response(481, method).await;
    }
    // BYE and INFO outside any dialog (no To tag) as well.
    caller.to = None;
    for method in ["BYE", "INFO"] {
        peer.send(&caller.in_dialog(method, "", "")).await;
        peer.response(481, method).await;
    }
    // A CANCEL for no INVITE.
    peer.send(&caller.cancel()).await;
    peer.response(481, "CANCEL").await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn garbage_datagrams_are_dropped() {
    let (endpoint, _calls) = start().await;
    let mut peer = Peer::udp(&endpoint).await;
    let no_via = without(&options(&peer, ""), "Via");
    let garbage: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"\r\n\r\n".to_vec(),
        b"hello".to_vec(),
        vec![0u8; 1500],
        (0..=255u8).cycle().take(9000).collect(),
        b"INVITE sip:a@b SIP/2.0\r\n".to_vec(),
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n\r\n".to_vec(),
        no_via.into_bytes(),
        vec![b'A'; 60_000],
    ];
    for datagram in &garbage {
        peer.send_bytes(datagram).await;
    }
    // Only the keepalive ping gets an answer (the pong).
    let mut got = Vec::new();
    while let Some(message) = peer.recv_within(QUIET).await {
        got.push(message.raw);
    }
    assert!(got.iter().all(|m| m.trim().is_empty()), "{got:?}");
    still_alive(&mut peer).await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn unframeable_tcp_message_gets_400_then_close() {
    let (endpoint, _calls) = start().await;
    let mut peer = Peer::tcp(&endpoint).await;
    let bad = options(&peer, "").replace("Content-Length: 0", "Content-Length: lots");
    peer.send(&bad).await;
    let response = peer.recv().await;
    assert_eq!(response.start, "SIP/2.0 400 Bad Content-Length");
    assert!(peer.closed_within(WAIT).await);
    // The endpoint is fine: a new connection works.
    let mut peer = Peer::tcp(&endpoint).await;
    still_alive(&mut peer).await;
    endpoint.shutdown().await;
}

#[tokio::test]
async fn tcp_keepalive_ping_gets_a_pong() {
    let (endpoint, _calls) = start().await;
    let mut peer = Peer::tcp(&endpoint).await;
    peer.send("\r\n\r\n").await;
    still_alive(&mut peer).await;
    endpoint.shutdown().await;
}

/// Mutations of valid messages: bytes flipped, lines dropped, duplicated or
/// cut, numbers made huge. Whatever the endpoint makes of them, it must
/// keep answering; calls that do come through are rejected.
#[tokio::test]
async fn fuzzed_messages_do_not_break_the_endpoint() {
    let (endpoint, mut calls) = start().await;
    let mut rng = StdRng::seed_from_u64(0x005b_0a4d);
    for tcp in [false, true] {
        let mut peer = if tcp {
            Peer::tcp(&endpoint).await
        } else {
            Peer::udp(&endpoint).await
        };
        for round in 0..150 {
            let mut caller = Caller::new(&peer, "fuzz");
            caller.to = Some(format!("<sip:fuzz@{}>;tag=t{round}", peer.server()));
            let seed = match round % 4 {
                0 => caller.invite(),
                1 => options(&peer, ""),
                2 => caller.in_dialog("BYE", "", ""),
                _ => caller.in_dialog("INFO", "Content-Type: text/plain\r\n", "hello"),
            };
            let mutated = mutate(&mut rng, seed.as_bytes(), tcp);
            if !peer.try_send_bytes(&mutated).await {
                peer = Peer::tcp(&endpoint).await;
            }
            while let Ok(Some(call)) =
                tokio::time::timeout(std::time::Duration::from_millis(1), calls.recv()).await
            {
                let _ = call.signaling.reject(400, None).await;
            }
            if round % 25 == 24 {
                if tcp {
                    // A mutation may have closed or desynchronised the stream.
                    peer = Peer::tcp(&endpoint).await;
                }
                still_alive(&mut peer).await;
            }
        }
        if tcp {
            peer = Peer::tcp(&endpoint).await;
        }
        still_alive(&mut peer).await;
    }
    endpoint.shutdown().await;
}

fn mutate(rng: &mut StdRng, message: &[u8], tcp: bool) -> Vec<u8> {
    let mut out = message.to_vec();
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..7) {
            0 if !out.is_empty() => {
                let at = rng.random_range(0..out.len());
                out[at] = rng.random();
            }
            1 => {
                let at = rng.random_range(0..=out.len());
                out.truncate(at);
            }
            2 => {
                let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
                let skip = rng.random_range(0..lines.len());
                out = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, l)| l.to_vec())
                    .collect::<Vec<_>>()
                    .join(&b'\n');
            }
            3 => {
                let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
                let copy = rng.random_range(0..lines.len());
                let mut new = Vec::new();
                for (i, line) in lines.iter().enumerate() {
                    new.push(line.to_vec());
                    if i == copy {
                        new.push(line.to_vec());
                    }
                }
                out = new.join(&b'\n');
            }
            4 => {
                let text = String::from_utf8_lossy(&out).replace('1', "99999999999999999999");
                out = text.into_bytes();
            }
            5 => {
                let at = rng.random_range(0..=out.len());
                let junk: Vec<u8> = (0..rng.random_range(1..40)).map(|_| rng.random()).collect();
                out.splice(at..at, junk);
            }
            _ => {
                let text = String::from_utf8_lossy(&out).replace(": ", ":");
                out = text.into_bytes();
            }
        }
    }
    if tcp {
        // Keep each message framed on its own for the next one.
        out.extend_from_slice(b"\r\n\r\n");
    }
    out
}
