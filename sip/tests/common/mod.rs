//! A raw SIP peer for the integration tests: hand-written messages over
//! plain UDP and TCP sockets, independent of rsipstack's client side.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use switchboard_sip::{
    CallEvent, CallEvents, CallSignaling, IncomingCall, IncomingCalls, SipConfig, SipEndpoint,
    SipTimers, Transport,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Generous: CI machines are busy.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long to wait to be fairly sure something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(700);

pub const SDP_OFFER: &str = "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
pub const SDP_ANSWER: &str = "v=0\r\no=switchboard 1 1 IN IP4 127.0.0.1\r\ns=switchboard\r\n\
c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
a=ptime:20\r\na=sendrecv\r\n";

pub async fn start() -> (SipEndpoint, IncomingCalls) {
    start_with(SipTimers::default()).await
}

pub async fn start_with(timers: SipTimers) -> (SipEndpoint, IncomingCalls) {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    SipEndpoint::start_with_timers(
        SipConfig {
            udp: Some(any),
            tcp: Some(any),
            user_agent: "switchboard-test".into(),
        },
        timers,
    )
    .await
    .expect("endpoint starts")
}

/// Short timers so Timer G/H can be watched in a test.
pub fn fast_timers() -> SipTimers {
    SipTimers {
        t1: Duration::from_millis(50),
        t2: Duration::from_millis(200),
        t4: Duration::from_millis(500),
    }
}

pub async fn next_call(calls: &mut IncomingCalls) -> IncomingCall {
    tokio::time::timeout(WAIT, calls.recv())
        .await
        .expect("an incoming call in time")
        .expect("the endpoint is running")
}

pub async fn no_call(calls: &mut IncomingCalls) {
    if let Ok(Some(call)) = tokio::time::timeout(QUIET, calls.recv()).await {
        panic!("unexpected call from {}", call.signaling.from());
    }
}

pub async fn next_event(events: &mut CallEvents) -> Option<CallEvent> {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a call event in time")
}

pub async fn wait_state(signaling: &CallSignaling, state: switchboard_sip::CallState) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while signaling.state() != state {
        assert!(
            tokio::time::Instant::now() < deadline,
            "call stuck in {:?}, wanted {state:?}",
            signaling.state()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A received SIP message, loosely parsed.
#[derive(Debug, Clone)]
pub struct Msg {
    pub raw: String,
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Msg {
    pub fn parse(raw: &str) -> Msg {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        Msg {
            raw: raw.to_string(),
            start,
            headers,
            body: body.to_string(),
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        let rest = self.start.strip_prefix("SIP/2.0 ")?;
        rest.split(' ').next()?.parse().ok()
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.start.starts_with("SIP/2.0") {
            return None;
        }
        self.start.split(' ').next()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn cseq_method(&self) -> Option<&str> {
        self.header("CSeq")?.split_whitespace().nth(1)
    }

    pub fn to_tag(&self) -> Option<&str> {
        tag_of(self.header("To")?)
    }

    pub fn is_response(&self, code: u16, method: &str) -> bool {
        self.status() == Some(code) && self.cseq_method() == Some(method)
    }
}

pub fn tag_of(header: &str) -> Option<&str> {
    let lower = header.to_ascii_lowercase();
    let at = lower.find(";tag=")?;
    let tag = &header[at + 5..];
    Some(tag.split(';').next().unwrap_or(tag))
}

/// A SIP peer on the test side.
pub enum Peer {
    Udp {
        socket: UdpSocket,
        server: SocketAddr,
    },
    Tcp {
        stream: TcpStream,
        buf: Vec<u8>,
        local: SocketAddr,
        server: SocketAddr,
    },
}

impl Peer {
    pub async fn udp(endpoint: &SipEndpoint) -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = endpoint.local_addr(Transport::Udp).unwrap();
        Peer::Udp { socket, server }
    }

    pub async fn tcp(endpoint: &SipEndpoint) -> Peer {
        let server = endpoint.local_addr(Transport::Tcp).unwrap();
        let stream = TcpStream::connect(server).await.unwrap();
        Peer::Tcp {
            local: stream.local_addr().unwrap(),
            stream,
            buf: Vec::new(),
            server,
        }
    }

    /// A TCP peer from a connection the endpoint opened to `listener`.
    pub async fn accept(listener: &tokio::net::TcpListener) -> Peer {
        let (stream, server) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the endpoint connects in time")
            .unwrap();
        Peer::Tcp {
            local: stream.local_addr().unwrap(),
            stream,
            buf: Vec::new(),
            server,
        }
    }

    pub fn transport(&self) -> &'static str {
        match self {
            Peer::Udp { .. } => "UDP",
            Peer::Tcp { .. } => "TCP",
        }
    }

    pub fn local(&self) -> SocketAddr {
        match self {
            Peer::Udp { socket, .. } => socket.local_addr().unwrap(),
            Peer::Tcp { local, .. } => *local,
        }
    }

    pub fn server(&self) -> SocketAddr {
        match self {
            Peer::Udp { server, .. } => *server,
            Peer::Tcp { server, .. } => *server,
        }
    }

    pub async fn send(&mut self, message: &str) {
        self.send_bytes(message.as_bytes()).await
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        assert!(self.try_send_bytes(bytes).await, "send failed");
    }

    /// False when the bytes could not be sent (a TCP connection the
    /// endpoint closed).
    pub async fn try_send_bytes(&mut self, bytes: &[u8]) -> bool {
        match self {
            Peer::Udp { socket, server } => socket.send_to(bytes, *server).await.is_ok(),
            Peer::Tcp { stream, .. } => stream.write_all(bytes).await.is_ok(),
        }
    }

    /// The next message, or `None` after `wait`. Over TCP, `None` also when
    /// the connection closed.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Msg> {
        match self {
            Peer::Udp { socket, .. } => {
                let mut buf = vec![0u8; 65536];
                let (len, _) = tokio::time::timeout(wait, socket.recv_from(&mut buf))
                    .await
                    .ok()?
                    .ok()?;
                Some(Msg::parse(&String::from_utf8_lossy(&buf[..len])))
            }
            Peer::Tcp { stream, buf, .. } => {
                let deadline = tokio::time::Instant::now() + wait;
                loop {
                    if let Some(message) = take_stream_message(buf) {
                        return Some(message);
                    }
                    let mut chunk = [0u8; 16384];
                    let read = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
                        .await
                        .ok()?
                        .ok()?;
                    if read == 0 {
                        return None;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                }
            }
        }
    }

    pub async fn recv(&mut self) -> Msg {
        self.recv_within(WAIT).await.expect("a SIP message in time")
    }

    /// The next message matching `pred`, skipping others (e.g. 100 Trying,
    /// retransmissions).
    pub async fn recv_matching(&mut self, what: &str, pred: impl Fn(&Msg) -> bool) -> Msg {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv_within(left).await {
                Some(message) if pred(&message) => return message,
                Some(_) => continue,
                None => panic!("no {what} in time"),
            }
        }
    }

    pub async fn response(&mut self, code: u16, method: &str) -> Msg {
        self.recv_matching(&format!("{code} to {method}"), |m| {
            m.is_response(code, method)
        })
        .await
    }

    /// Reads and drops whatever is already on its way (retransmissions that
    /// crossed our last message), until 100 ms pass without a message.
    pub async fn drain(&mut self) {
        while self.recv_within(Duration::from_millis(100)).await.is_some() {}
    }

    /// Asserts nothing matching `pred` arrives for `wait`.
    pub async fn nothing_matching(&mut self, wait: Duration, pred: impl Fn(&Msg) -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.recv_within(left).await {
                Some(message) if pred(&message) => panic!("unexpected message:\n{}", message.raw),
                Some(_) => continue,
                None => return,
            }
        }
    }

    /// True when a TCP peer sees its connection closed within `wait`.
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let Peer::Tcp { stream, .. } = self else {
            panic!("not a TCP peer");
        };
        let mut chunk = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
            }
        }
    }
}

/// Cuts one message off a TCP buffer by Content-Length.
fn take_stream_message(buf: &mut Vec<u8>) -> Option<Msg> {
    while buf.starts_with(b"\r\n") {
        buf.drain(..2);
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = Msg::parse(&head)
        .header("Content-Length")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(0);
    let total = head_end + 4 + length;
    if buf.len() < total {
        return None;
    }
    let raw: Vec<u8> = buf.drain(..total).collect();
    Some(Msg::parse(&String::from_utf8_lossy(&raw)))
}

/// The caller's side of one call, writing the requests by hand.
pub struct Caller {
    pub call_id: String,
    pub from_tag: String,
    pub invite_branch: String,
    pub cseq: u32,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub transport: &'static str,
    pub user: String,
    /// The To header of our dialog, with the endpoint's tag, once known.
    pub to: Option<String>,
}

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{n}x{}", std::process::id())
}

impl Caller {
    pub fn new(peer: &Peer, user: &str) -> Caller {
        Caller {
            call_id: unique("call"),
            from_tag: unique("ft"),
            invite_branch: format!("z9hG4bK{}", unique("b")),
            cseq: 1,
            local: peer.local(),
            server: peer.server(),
            transport: peer.transport(),
            user: user.to_string(),
            to: None,
        }
    }

    fn via(&self, branch: &str) -> String {
        format!(
            "Via: SIP/2.0/{} {};branch={branch}",
            self.transport, self.local
        )
    }

    fn contact(&self) -> String {
        match self.transport {
            "TCP" => format!("<sip:caller@{};transport=tcp>", self.local),
            _ => format!("<sip:caller@{}>", self.local),
        }
    }

    fn request_uri(&self) -> String {
        format!("sip:{}@{}", self.user, self.server)
    }

    fn to_header(&self) -> String {
        self.to
            .clone()
            .unwrap_or_else(|| format!("<sip:{}@{}>", self.user, self.server))
    }

    pub fn invite_with(&self, extra_headers: &str, sdp: &str) -> String {
        format!(
            "INVITE {uri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag={ftag}\r\nTo: <sip:{user}@{server}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} INVITE\r\nContact: {contact}\r\n{extra_headers}\
             Content-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
            uri = self.request_uri(),
            via = self.via(&self.invite_branch),
            ftag = self.from_tag,
            user = self.user,
            server = self.server,
            cid = self.call_id,
            cseq = self.cseq,
            contact = self.contact(),
            len = sdp.len(),
        )
    }

    pub fn invite(&self) -> String {
        self.invite_with("", SDP_OFFER)
    }

    /// ACK for a 2xx: a new transaction (new branch), in the dialog.
    pub fn ack_2xx(&self) -> String {
        format!(
            "ACK {uri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag={ftag}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            uri = self.request_uri(),
            via = self.via(&format!("z9hG4bK{}", unique("ack"))),
            ftag = self.from_tag,
            to = self.to_header(),
            cid = self.call_id,
            cseq = self.cseq,
        )
    }

    /// ACK for a non-2xx final response: same branch as the INVITE.
    pub fn ack_error(&self, to: &str) -> String {
        format!(
            "ACK {uri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag={ftag}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
            uri = self.request_uri(),
            via = self.via(&self.invite_branch),
            ftag = self.from_tag,
            cid = self.call_id,
            cseq = self.cseq,
        )
    }

    pub fn cancel(&self) -> String {
        format!(
            "CANCEL {uri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag={ftag}\r\nTo: <sip:{user}@{server}>\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} CANCEL\r\nContent-Length: 0\r\n\r\n",
            uri = self.request_uri(),
            via = self.via(&self.invite_branch),
            ftag = self.from_tag,
            user = self.user,
            server = self.server,
            cid = self.call_id,
            cseq = self.cseq,
        )
    }

    /// A new in-dialog request (next CSeq, new branch).
    pub fn in_dialog(&mut self, method: &str, extra_headers: &str, body: &str) -> String {
        self.cseq += 1;
        format!(
            "{method} {uri} SIP/2.0\r\n{via}\r\nMax-Forwards: 70\r\n\
             From: \"Alice\" <sip:alice@example.com>;tag={ftag}\r\nTo: {to}\r\n\
             Call-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: {contact}\r\n{extra_headers}\
             Content-Length: {len}\r\n\r\n{body}",
            uri = self.request_uri(),
            via = self.via(&format!("z9hG4bK{}", unique("b"))),
            ftag = self.from_tag,
            to = self.to_header(),
            cid = self.call_id,
            cseq = self.cseq,
            contact = self.contact(),
            len = body.len(),
        )
    }

    /// Remembers the dialog's To (with the endpoint's tag) from a response.
    pub fn learn_to(&mut self, response: &Msg) {
        self.to = response.header("To").map(str::to_string);
    }
}

/// A response to a request the endpoint sent us (e.g. its BYE).
pub fn respond_to(request: &Msg, code: u16, reason: &str) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for via in request.headers_named("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(value) = request.header(name) {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// A peer and a caller that has sent an INVITE the engine answered and
/// the peer ACKed: a confirmed call.
pub async fn confirmed_call(
    endpoint: &SipEndpoint,
    calls: &mut IncomingCalls,
    tcp: bool,
) -> (Peer, Caller, IncomingCall) {
    let mut peer = if tcp {
        Peer::tcp(endpoint).await
    } else {
        Peer::udp(endpoint).await
    };
    let mut caller = Caller::new(&peer, "room1");
    peer.send(&caller.invite()).await;
    let mut call = next_call(calls).await;
    call.signaling
        .answer(SDP_ANSWER.to_string(), Vec::new())
        .await
        .unwrap();
    let ok = peer.response(200, "INVITE").await;
    caller.learn_to(&ok);
    peer.send(&caller.ack_2xx()).await;
    assert_eq!(
        next_event(&mut call.events).await,
        Some(CallEvent::Confirmed)
    );
    (peer, caller, call)
}
