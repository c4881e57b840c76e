//! What browsers reach on the HTTP port without an API key:
//!
//! - `/ws`: SIP over WebSocket (RFC 7118, subprotocol `sip`; WSS when the
//!   port serves HTTPS, see `crate::tls`). The socket is
//!   handed to the SIP endpoint as channels of frames; one SIP message per
//!   WebSocket message each way.
//! - `/phone`: the web dial page, static files from the configured web
//!   directory (`web/dist`, built by `scripts/web`).
//! - `/phone/participants?call=<SIP Call-ID>`: the conference the caller's
//!   own call is in. The Call-ID is the page's secret (a browser picks it at
//!   random and it only travels over its own WebSocket); only live calls
//!   that came over WebSocket answer, anything else is a 404.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::extract::connect_info::Connected;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::serve::IncomingStream;
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use switchboard_sip::{WsConnection, WsFrame};
use tokio::sync::mpsc;
use tracing::debug;

use crate::engine::Engine;

/// The largest SIP message we take over WebSocket (the TCP framer's limit).
const MAX_SIP_MESSAGE: usize = 64 * 1024;
/// Frames queued toward the SIP endpoint and toward the browser.
const FRAME_QUEUE: usize = 64;

/// Both ends of an HTTP connection: what the WebSocket handler needs to
/// give the SIP endpoint (Via and Contact use our address).
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub remote: SocketAddr,
    pub local: SocketAddr,
    /// Over TLS (HTTPS, WSS).
    pub secure: bool,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Peer {
        let remote = *stream.remote_addr();
        Peer {
            remote,
            local: stream.io().local_addr().unwrap_or(remote),
            secure: false,
        }
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Peer {
        let remote = *stream.remote_addr();
        Peer {
            remote,
            local: stream.io().get_ref().0.local_addr().unwrap_or(remote),
            secure: true,
        }
    }
}

/// `/ws` and `/phone`, for any router the engine serves.
pub fn routes(engine: &Engine) -> Router {
    Router::new()
        .route("/ws", get(sip_websocket))
        .route("/phone", get(|| async { Redirect::permanent("/phone/") }))
        .route("/phone/", get(index))
        .route("/phone/participants", get(participants))
        .route("/phone/{file}", get(static_file))
        .with_state(engine.clone())
}

async fn sip_websocket(
    State(engine): State<Engine>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.protocols(["sip"]).max_message_size(MAX_SIP_MESSAGE);
    if ws.selected_protocol().is_none() {
        return (
            StatusCode::BAD_REQUEST,
            "SIP over WebSocket needs the subprotocol `sip` (Sec-WebSocket-Protocol: sip)\n",
        )
            .into_response();
    }
    ws.on_upgrade(move |socket| bridge(engine, socket, peer))
}

/// Moves frames between the socket and the SIP endpoint until either side
/// is done.
async fn bridge(engine: Engine, socket: WebSocket, peer: Peer) {
    let (to_sip, incoming) = mpsc::channel(FRAME_QUEUE);
    let (outgoing, mut from_sip) = mpsc::channel(FRAME_QUEUE);
    let sip = engine.sip().clone();
    let serving = tokio::spawn(async move {
        sip.serve_websocket(WsConnection {
            remote: peer.remote,
            local: peer.local,
            secure: peer.secure,
            incoming,
            outgoing,
        })
        .await
    });
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            received = stream.next() => {
                let frame = match received {
                    Some(Ok(Message::Text(text))) => WsFrame::Text(text.as_str().to_owned()),
                    Some(Ok(Message::Binary(bytes))) => WsFrame::Binary(bytes.to_vec()),
                    // axum answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        debug!(remote = %peer.remote, error = %e, "SIP WebSocket read error");
                        break;
                    }
                };
                if to_sip.send(frame).await.is_err() {
                    break;
                }
            }
            sent = from_sip.recv() => {
                let message = match sent {
                    Some(WsFrame::Text(text)) => Message::Text(text.into()),
                    Some(WsFrame::Binary(bytes)) => Message::Binary(bytes.into()),
                    // The endpoint is done with the connection.
                    None => break,
                };
                if let Err(e) = sink.send(message).await {
                    debug!(remote = %peer.remote, error = %e, "SIP WebSocket write error");
                    break;
                }
            }
        }
    }
    // The endpoint sees the frames end: the connection's calls end.
    drop(to_sip);
    let _ = sink.send(Message::Close(None)).await;
    let _ = serving.await;
}

async fn index(State(engine): State<Engine>) -> Response {
    serve_file(&engine.config().web, "index.html").await
}

async fn static_file(State(engine): State<Engine>, UrlPath(file): UrlPath<String>) -> Response {
    serve_file(&engine.config().web, &file).await
}

/// A file of the web directory, by plain name: no directories, nothing
/// hidden, so no path can leave it.
async fn serve_file(dir: &Path, name: &str) -> Response {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !plain {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    }
    let path: PathBuf = dir.join(name);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(name)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "index.html" => (
            StatusCode::NOT_FOUND,
            format!(
                "the web dial page is not built in {}: run scripts/web (or point --web at it)\n",
                dir.display()
            ),
        )
            .into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("wav") => "audio/wav",
        _ => "application/octet-stream",
    }
}

#[derive(Deserialize)]
struct ParticipantsQuery {
    /// The SIP Call-ID of the asking page's own call.
    call: String,
}

/// The conference a browser's own call is in.
#[derive(Debug, Serialize, Deserialize)]
pub struct PhoneConference {
    /// The room's name; `null` while the call is in none.
    pub conference: Option<String>,
    pub participants: Vec<PhoneParticipant>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PhoneParticipant {
    /// Who: the user part of the caller's From URI.
    pub name: String,
    /// The asking call itself.
    pub you: bool,
    pub muted: bool,
    pub talking: bool,
}

async fn participants(
    State(engine): State<Engine>,
    Query(query): Query<ParticipantsQuery>,
) -> Response {
    let call = engine
        .call_by_sip_call_id(&query.call)
        .filter(|call| call.snapshot().transport == switchboard_sip::Transport::Ws.as_str());
    let Some(call) = call else {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "no such call"})),
        )
            .into_response();
    };
    let room = call
        .conference()
        .and_then(|name| engine.conference(&call.scope().app, &name));
    let body = match room {
        None => PhoneConference {
            conference: None,
            participants: Vec::new(),
        },
        Some(room) => {
            let snapshot = room.snapshot();
            PhoneConference {
                conference: Some(snapshot.name),
                participants: snapshot
                    .participants
                    .into_iter()
                    .map(|p| PhoneParticipant {
                        name: user_part(&p.from),
                        you: p.call_id == call.id(),
                        muted: p.muted,
                        talking: p.talking,
                    })
                    .collect(),
            }
        }
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// `sip:alice@example.com` → `alice`; the whole text when it is no SIP URI.
fn user_part(uri: &str) -> String {
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    match rest.split_once('@') {
        Some((user, _)) if !user.is_empty() => user.to_string(),
        _ => rest.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_parts() {
        assert_eq!(user_part("sip:alice@example.com"), "alice");
        assert_eq!(user_part("sips:bob@example.com;transport=ws"), "bob");
        assert_eq!(user_part("sip:example.com"), "example.com");
    }

    #[tokio::test]
    async fn only_plain_names_are_served() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("phone.js"), "ok").unwrap();
        let ok = serve_file(dir.path(), "phone.js").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        for bad in ["../Cargo.toml", ".hidden", "a/b", "", "%2e%2e"] {
            assert_eq!(
                serve_file(dir.path(), bad).await.status(),
                StatusCode::NOT_FOUND,
                "{bad}"
            );
        }
    }
}
