//! Requests a peer sends inside a call (re-INVITE for hold/resume,
//! OPTIONS, retransmissions), written by hand on a raw socket so the
//! agent's answers are checked against the wire.

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_testagent::{Agent, AgentConfig, AutoAnswer, Call, CallOptions};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(15);

struct Peer {
    socket: UdpSocket,
    agent: SocketAddr,
    from: String,
    to: String,
    call_id: String,
    cseq: u32,
}

impl Peer {
    /// Plays the caller's side of `call` (answered by `agent`) from a raw
    /// socket, using the dialog identifiers of the 200 OK.
    async fn for_call(call: &Call, agent: SocketAddr) -> Peer {
        let header = |name: &str| call.remote_header(name).expect(name);
        Peer {
            socket: UdpSocket::bind("127.0.0.1:0").await.expect("bind"),
            agent,
            from: header("From"),
            to: header("To"),
            call_id: header("Call-ID"),
            cseq: 10,
        }
    }

    async fn send(&mut self, method: &str, cseq: u32, branch: &str, body: &str) {
        let local = self.socket.local_addr().expect("addr");
        let content_type = if body.is_empty() {
            String::new()
        } else {
            "Content-Type: application/sdp\r\n".to_string()
        };
        let message = format!(
            "{method} sip:sbagent@{agent} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\nContact: <sip:peer@{local}>\r\n{content_type}\
             Content-Length: {length}\r\n\r\n{body}",
            agent = self.agent,
            from = self.from,
            to = self.to,
            call_id = self.call_id,
            length = body.len(),
        );
        self.socket
            .send_to(message.as_bytes(), self.agent)
            .await
            .expect("send");
    }

    async fn response(&self) -> String {
        let mut buffer = vec![0u8; 8192];
        let (n, _) = tokio::time::timeout(WAIT, self.socket.recv_from(&mut buffer))
            .await
            .expect("a response in time")
            .expect("recv");
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }

    /// A re-INVITE with an offer, its 200 (returned), and the ACK.
    async fn reinvite(&mut self, rtp: SocketAddr, direction: &str) -> String {
        self.cseq += 1;
        let cseq = self.cseq;
        let branch = format!("z9hG4bKreinvite{cseq}");
        let sdp = format!(
            "v=0\r\no=peer 1 {cseq} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n",
            ip = rtp.ip(),
            port = rtp.port(),
        );
        self.send("INVITE", cseq, &branch, &sdp).await;
        // Skip provisionals and late retransmissions of earlier answers.
        let ok = loop {
            let response = self.response().await;
            if !response.starts_with("SIP/2.0 1")
                && response.contains(&format!("CSeq: {cseq} INVITE"))
            {
                break response;
            }
        };
        self.send("ACK", cseq, &format!("z9hG4bKack{cseq}"), "")
            .await;
        ok
    }
}

async fn answered_call() -> (Agent, Agent, Call, Call) {
    let caller = Agent::bind(AgentConfig::udp()).await.expect("bind");
    let callee = Agent::bind(AgentConfig::udp().auto_answer(AutoAnswer::default()))
        .await
        .expect("bind");
    let a_leg = caller
        .call(&callee.uri(), CallOptions::default())
        .await
        .expect("answered");
    let b_leg = callee.next_answered(WAIT).await.expect("answered");
    (caller, callee, a_leg, b_leg)
}

async fn packets_arrive(socket: &UdpSocket, within: Duration) -> usize {
    let mut buffer = [0u8; 2048];
    let mut count = 0;
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(_)) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buffer)).await {
        count += 1;
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reinvite_moves_media_and_follows_hold() {
    let (_caller, callee, a_leg, b_leg) = answered_call().await;
    // The peer speaks for the caller (same Call-ID, From and To tags), so
    // the callee takes its requests as the caller's.
    let mut peer = Peer::for_call(&a_leg, callee.local_addr()).await;
    let rtp = UdpSocket::bind("127.0.0.1:0").await.expect("rtp");
    let rtp_addr = rtp.local_addr().expect("addr");
    b_leg.play_tone(440.0, 0.3);

    let ok = peer.reinvite(rtp_addr, "sendrecv").await;
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(
        ok.contains("m=audio ") && ok.contains(" RTP/AVP 8 101"),
        "{ok}"
    );
    assert!(ok.contains("a=sendrecv"), "{ok}");
    assert_eq!(b_leg.remote_addr(), Some(rtp_addr));
    assert!(
        packets_arrive(&rtp, Duration::from_millis(500)).await > 5,
        "media moved to the new address"
    );

    let held = peer.reinvite(rtp_addr, "sendonly").await;
    assert!(held.contains("a=recvonly"), "{held}");
    // Drain what was in flight, then nothing more comes.
    packets_arrive(&rtp, Duration::from_millis(200)).await;
    assert_eq!(packets_arrive(&rtp, Duration::from_millis(400)).await, 0);

    let resumed = peer.reinvite(rtp_addr, "sendrecv").await;
    assert!(resumed.contains("a=sendrecv"), "{resumed}");
    assert!(packets_arrive(&rtp, Duration::from_millis(500)).await > 5);
    assert!(!b_leg.is_ended());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dialog_options_and_retransmitted_bye() {
    let (_caller, callee, a_leg, b_leg) = answered_call().await;
    let mut peer = Peer::for_call(&a_leg, callee.local_addr()).await;

    peer.send("OPTIONS", 20, "z9hG4bKopt", "").await;
    let ok = peer.response().await;
    assert!(ok.starts_with("SIP/2.0 200 OK"), "{ok}");
    assert!(ok.contains("CSeq: 20 OPTIONS"), "{ok}");

    peer.send("BYE", 21, "z9hG4bKbye", "").await;
    assert!(peer.response().await.starts_with("SIP/2.0 200 OK"));
    assert!(b_leg.wait_ended(WAIT).await.expect("ended").is_remote_bye());
    // A retransmitted BYE gets the same 200 again, not a 481.
    peer.send("BYE", 21, "z9hG4bKbye", "").await;
    let again = peer.response().await;
    assert!(again.starts_with("SIP/2.0 200 OK"), "{again}");
    // A new request in the ended dialog is refused.
    peer.send("INFO", 22, "z9hG4bKinfo", "").await;
    let refused = peer.response().await;
    assert!(refused.starts_with("SIP/2.0 481"), "{refused}");
}
