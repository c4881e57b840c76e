//! SIP over WebSocket (RFC 7118) on the HTTP port's `/ws`, as JsSIP and
//! SIP.js speak it: the `sip` subprotocol, one message per WebSocket
//! message, `Via: SIP/2.0/WS x.invalid`, `;transport=ws` Contacts.
//! A raw client (tokio-tungstenite) plays the browser; RTP goes nowhere
//! (these tests are about signalling).

mod common;

use std::time::Duration;

use common::{TestEngine, T};
use futures::{SinkExt, StreamExt};
use switchboard::web::PhoneConference;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const APP: &str = r#"
name = "ws"

[[rules]]
name = "bye"
pattern = "bye"
scenario = "bye"

[[rules]]
name = "stay"
pattern = "stay"
scenario = "stay"

[[rules]]
name = "room"
pattern = "room"
scenario = "room"
conference = true
"#;

/// Everyone into one conference.
const ROOM: &str = r#"
let room;
export default {
  async onConference(conf) { room = conf; },
  async onCall(call) {
    await call.answer();
    await room.add(call);
  },
};
"#;

/// Answers with the transport it saw, then hangs up.
const BYE: &str = r#"
export default {
  async onCall(call) {
    await call.answer({ headers: { "X-Transport": call.transport } });
    await call.play("tone:440/300");
    await call.hangup();
  },
};
"#;

/// Answers and stays.
const STAY: &str = r#"
export default {
  async onCall(call) {
    await call.answer();
    await new Promise((resolve) => call.on("hangup", resolve));
  },
};
"#;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn engine() -> TestEngine {
    TestEngine::with_app(APP, &[("bye", BYE), ("stay", STAY), ("room", ROOM)]).await
}

async fn connect(engine: &TestEngine) -> Ws {
    let url = format!("ws://{}/ws", engine.engine.http_addr());
    let mut request = url.into_client_request().expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().expect("header"));
    let (ws, response) = tokio::time::timeout(T, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .expect("WebSocket upgrade");
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().ok()),
        Some(Some("sip"))
    );
    ws
}

/// The next SIP message the engine sends.
async fn next_message<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> String {
    loop {
        let message = tokio::time::timeout(T, ws.next())
            .await
            .expect("a message in time")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Binary(bytes) => return String::from_utf8_lossy(&bytes).into_owned(),
            _ => continue,
        }
    }
}

/// The next message whose start line starts with `prefix`, skipping others
/// (provisional responses).
async fn expect_start<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut WebSocketStream<S>,
    prefix: &str,
) -> String {
    loop {
        let message = next_message(ws).await;
        if message.starts_with(prefix) {
            return message;
        }
        assert!(
            message.starts_with("SIP/2.0 1"),
            "expected {prefix:?}, got:\n{message}"
        );
    }
}

fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, text: String) {
    ws.send(Message::Text(text.into())).await.expect("send");
}

struct Caller {
    call_id: String,
    from_tag: String,
}

impl Caller {
    fn new(name: &str) -> Caller {
        Caller {
            call_id: format!("{name}-{}", rand_token()),
            from_tag: rand_token(),
        }
    }

    fn invite(&self, user: &str) -> String {
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 9 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
                   a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
        format!(
            "INVITE sip:{user}@switchboard.test SIP/2.0\r\n\
             Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 69\r\n\
             To: <sip:{user}@switchboard.test>\r\n\
             From: \"Browser\" <sip:browser@switchboard.test>;tag={tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:k7s2@df7jal23ls0d.invalid;transport=ws>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            branch = rand_token(),
            tag = self.from_tag,
            call_id = self.call_id,
            len = sdp.len(),
        )
    }

    /// The ACK for a 2xx (its own transaction, RFC 3261 §13.2.2.4).
    fn ack(&self, user: &str, ok: &str) -> String {
        format!(
            "ACK sip:{user}@switchboard.test SIP/2.0\r\n\
             Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 69\r\n\
             To: {to}\r\n\
             From: \"Browser\" <sip:browser@switchboard.test>;tag={tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 ACK\r\n\
             Content-Length: 0\r\n\r\n",
            branch = rand_token(),
            to = header(ok, "To").expect("To in 200"),
            tag = self.from_tag,
            call_id = self.call_id,
        )
    }
}

/// Our answer to a request the engine sent.
fn ok_to(request: &str) -> String {
    let mut response = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        let value = header(request, name).unwrap_or_else(|| panic!("{name} in\n{request}"));
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("Content-Length: 0\r\n\r\n");
    response
}

fn rand_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

#[tokio::test]
async fn the_sip_subprotocol_is_required() {
    let engine = engine().await;
    let url = format!("ws://{}/ws", engine.engine.http_addr());
    let error = tokio_tungstenite::connect_async(url)
        .await
        .expect_err("no subprotocol: refused");
    match error {
        tokio_tungstenite::tungstenite::Error::Http(response) => {
            assert_eq!(response.status(), 400)
        }
        other => panic!("expected an HTTP 400, got {other}"),
    }
    engine.engine.shutdown().await;
}

#[tokio::test]
async fn options_and_malformed_requests_over_websocket() {
    let engine = engine().await;
    let mut ws = connect(&engine).await;

    let options = |branch: &str| {
        format!(
            "OPTIONS sip:switchboard.test SIP/2.0\r\n\
             Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n\
             To: <sip:switchboard.test>\r\n\
             From: <sip:browser@switchboard.test>;tag=opt{branch}\r\n\
             Call-ID: options-{branch}\r\n\
             CSeq: 1 OPTIONS\r\n\r\n"
        )
    };
    // No Content-Length: the WebSocket message frames it.
    send(&mut ws, options("one")).await;
    let ok = expect_start(&mut ws, "SIP/2.0 200").await;
    assert_eq!(header(&ok, "Call-ID"), Some("options-one"));
    assert!(
        header(&ok, "Via").is_some_and(|via| via.starts_with("SIP/2.0/WS df7jal23ls0d.invalid")),
        "{ok}"
    );

    // A request without CSeq: 400, and the connection carries on.
    send(
        &mut ws,
        "INVITE sip:bye@switchboard.test SIP/2.0\r\n\
         Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKbad\r\n\
         To: <sip:bye@switchboard.test>\r\n\
         From: <sip:browser@switchboard.test>;tag=bad\r\n\
         Call-ID: malformed\r\n\r\n"
            .to_string(),
    )
    .await;
    let bad = expect_start(&mut ws, "SIP/2.0 400").await;
    assert_eq!(header(&bad, "Call-ID"), Some("malformed"));
    // Garbage that is no request at all is dropped without a word.
    send(&mut ws, "hello\r\n\r\n".to_string()).await;
    send(&mut ws, options("two")).await;
    let ok = expect_start(&mut ws, "SIP/2.0 200").await;
    assert_eq!(header(&ok, "Call-ID"), Some("options-two"));
    assert_eq!(engine.engine.sip_stats().malformed_in, 2);

    engine.engine.shutdown().await;
}

#[tokio::test]
async fn a_websocket_call_is_answered_and_hung_up_over_the_same_socket() {
    let engine = engine().await;
    let mut ws = connect(&engine).await;
    let caller = Caller::new("bye");
    send(&mut ws, caller.invite("bye")).await;
    let ok = expect_start(&mut ws, "SIP/2.0 200").await;
    // The scenario saw a WebSocket call.
    assert_eq!(header(&ok, "X-Transport"), Some("ws"), "{ok}");
    let contact = header(&ok, "Contact").expect("Contact");
    assert!(contact.contains(";transport=ws"), "{contact}");
    assert!(header(&ok, "Content-Type").is_some_and(|t| t == "application/sdp"));
    send(&mut ws, caller.ack("bye", &ok)).await;

    // The engine hangs up: its BYE comes over this socket.
    let bye = expect_start(&mut ws, "BYE ").await;
    assert_eq!(header(&bye, "Call-ID"), Some(caller.call_id.as_str()));
    assert!(
        header(&bye, "Via").is_some_and(|via| via.starts_with("SIP/2.0/WS ")),
        "{bye}"
    );
    // To the browser's Contact (parameters are case-insensitive).
    assert!(
        bye.to_ascii_lowercase()
            .starts_with("bye sip:k7s2@df7jal23ls0d.invalid;transport=ws sip/2.0"),
        "{bye}"
    );
    send(&mut ws, ok_to(&bye)).await;
    engine.wait_idle().await;
    engine.engine.shutdown().await;
}

#[tokio::test]
async fn closing_the_socket_ends_its_calls() {
    let engine = engine().await;
    let mut ws = connect(&engine).await;
    let caller = Caller::new("stay");
    send(&mut ws, caller.invite("stay")).await;
    let ok = expect_start(&mut ws, "SIP/2.0 200").await;
    send(&mut ws, caller.ack("stay", &ok)).await;

    // Answered and up, until the socket goes.
    let deadline = tokio::time::Instant::now() + T;
    while engine.engine.calls().first().map(|c| c.state) != Some("answered") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            engine.engine.calls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let snapshot = engine.engine.calls().remove(0);
    assert_eq!(snapshot.transport, "ws");
    ws.close(None).await.expect("close");
    drop(ws);
    engine.wait_idle().await;
    engine.engine.shutdown().await;
}

/// `GET /phone/participants?call=...`: status and body.
async fn participants(engine: &TestEngine, call_id: &str) -> (u16, Option<PhoneConference>) {
    let url = format!("http://{}/phone/participants", engine.engine.http_addr());
    let response = reqwest::Client::new()
        .get(url)
        .query(&[("call", call_id)])
        .send()
        .await
        .expect("HTTP request");
    let status = response.status().as_u16();
    let body = if status == 200 {
        Some(response.json().await.expect("JSON body"))
    } else {
        None
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_caller_sees_its_own_room_and_nothing_else() {
    let engine = engine().await;
    let phone_ua = Agent::bind(AgentConfig::udp()).await.expect("agent");
    let phone = phone_ua
        .call(&engine.uri("room"), CallOptions::default())
        .await
        .expect("the room answers the phone");

    let mut ws = connect(&engine).await;
    let caller = Caller::new("web");
    send(&mut ws, caller.invite("room")).await;
    let ok = expect_start(&mut ws, "SIP/2.0 200").await;
    send(&mut ws, caller.ack("room", &ok)).await;

    // Both in the room, as the browser's call sees it.
    let deadline = tokio::time::Instant::now() + T;
    let room = loop {
        let (status, body) = participants(&engine, &caller.call_id).await;
        assert_eq!(status, 200);
        let body = body.expect("a body");
        if body.participants.len() == 2 {
            break body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{body:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(room.conference.as_deref(), Some("room"));
    let you: Vec<_> = room.participants.iter().filter(|p| p.you).collect();
    assert_eq!(you.len(), 1, "{room:?}");
    assert_eq!(you[0].name, "browser");

    // Nobody else's: an unknown Call-ID, and the phone's own (not a
    // WebSocket call) are both unknown here.
    assert_eq!(participants(&engine, "guess").await.0, 404);
    assert_eq!(participants(&engine, phone.call_id()).await.0, 404);

    ws.close(None).await.expect("close");
    phone.hangup().await.expect("BYE answered");
    engine.wait_idle().await;
    engine.engine.shutdown().await;
}

/// A test certificate for `localhost` and 127.0.0.1 (self-signed).
fn tls_file(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("tls")
        .join(name)
}

#[tokio::test]
async fn wss_and_https_when_a_certificate_is_configured() {
    use std::sync::Arc;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use switchboard::app::Application;
    use switchboard::config::{Config, Overrides};

    common::init_tracing();
    let config = Config::load(
        None,
        Overrides {
            sip: Some("127.0.0.1:0".into()),
            http: Some("127.0.0.1:0".into()),
            rtp_ports: Some("32000-39999".into()),
            tls_cert: Some(tls_file("localhost.crt")),
            tls_key: Some(tls_file("localhost.key")),
            ..Default::default()
        },
    )
    .expect("config");
    let app = Application::from_sources(
        APP,
        [("bye", BYE), ("stay", STAY), ("room", ROOM)]
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
    )
    .expect("app");
    let engine = switchboard::Engine::start(config, app)
        .await
        .expect("engine starts with TLS");
    let port = engine.http_addr().port();
    let cert = CertificateDer::from_pem_file(tls_file("localhost.crt")).expect("cert");

    // HTTPS.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_der(&cert).expect("cert"))
        .build()
        .expect("client");
    let health = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(health.status(), 200);

    // WSS: TLS, then the WebSocket handshake with the `sip` subprotocol.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("root");
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(engine.http_addr()).await.expect("TCP");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake");
    let mut request = format!("wss://localhost:{port}/ws")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "sip".parse().expect("header"));
    let (mut ws, _) = tokio::time::timeout(T, tokio_tungstenite::client_async(request, stream))
        .await
        .expect("in time")
        .expect("WebSocket upgrade over TLS");

    let caller = Caller::new("wss");
    send(
        &mut ws,
        caller.invite("bye").replace("SIP/2.0/WS ", "SIP/2.0/WSS "),
    )
    .await;
    let ok = expect_start(&mut ws, "SIP/2.0 200").await;
    assert_eq!(header(&ok, "X-Transport"), Some("ws"), "{ok}");
    send(&mut ws, caller.ack("bye", &ok)).await;
    let bye = expect_start(&mut ws, "BYE ").await;
    assert!(
        header(&bye, "Via").is_some_and(|via| via.starts_with("SIP/2.0/WSS ")),
        "{bye}"
    );
    send(&mut ws, ok_to(&bye)).await;
    let deadline = tokio::time::Instant::now() + T;
    while engine.active_calls() > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the call ends");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown().await;
}
