//! `GET /api/v1/events`: a WebSocket of live events (call started, routed,
//! answered, ended; digits; log lines; participants joined, left, talking;
//! scenario errors), one JSON text message each, filtered to the key's
//! account (and optionally one application).
//!
//! The engine's observer callback only clones the event into a broadcast
//! channel (when someone listens); each socket filters its copy. A socket
//! that falls behind gets `{"type":"lagged","missed":N}` and carries on.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiQuery;
use super::ApiState;
use crate::engine::{EngineEvent, EngineObserver};

/// Events buffered per socket before it counts as lagging.
const BUFFER: usize = 4096;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Fans engine events out to the WebSockets.
pub struct EventHub {
    tx: broadcast::Sender<Arc<EngineEvent>>,
    closed: CancellationToken,
}

impl EventHub {
    pub fn new() -> Arc<EventHub> {
        let (tx, _) = broadcast::channel(BUFFER);
        Arc::new(EventHub {
            tx,
            closed: CancellationToken::new(),
        })
    }

    /// Closes every socket (at shutdown, so HTTP can stop).
    pub fn close(&self) {
        self.closed.cancel();
    }
}

impl EngineObserver for EventHub {
    fn on_event(&self, event: &EngineEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event.clone()));
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only this application's events (id or name).
    pub application: Option<String>,
}

/// The JSON sent for an event: as the engine describes it, without the
/// whole log of a finished call (read it from the history).
fn wire(event: &EngineEvent) -> Option<String> {
    let mut value = serde_json::to_value(event).ok()?;
    if let Some(record) = value.get_mut("record").and_then(|r| r.as_object_mut()) {
        record.remove("log");
    }
    Some(value.to_string())
}

/// Live events of the key's account (WebSocket; send the key in the
/// Authorization header of the upgrade request).
#[utoipa::path(get, path = "/events", tag = "calls", params(EventsQuery),
    responses((status = 101, description = "Switching to WebSocket: JSON text messages"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn events(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiQuery(query): ApiQuery<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let upgrade = upgrade.map_err(|e| {
        ApiError::bad_request(format!("this endpoint is a WebSocket: {}", e.body_text()))
    })?;
    let app = match &query.application {
        Some(app) => Some(state.control.find_app(&p.account, app).await?.id),
        None => None,
    };
    let rx = state.events.tx.subscribe();
    let closed = state.events.closed.clone();
    let account = p.account;
    Ok(upgrade
        .on_upgrade(move |socket| stream(socket, rx, closed, account, app))
        .into_response())
}

async fn stream(
    mut socket: WebSocket,
    mut rx: broadcast::Receiver<Arc<EngineEvent>>,
    closed: CancellationToken,
    account: String,
    app: Option<String>,
) {
    loop {
        let text = tokio::select! {
            _ = closed.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket; other messages ignored.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
            event = rx.recv() => match event {
                Ok(event) => {
                    let scope = event.scope();
                    if scope.account != account || app.as_ref().is_some_and(|a| *a != scope.app) {
                        continue;
                    }
                    match wire(&event) {
                        Some(text) => text,
                        None => continue,
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    serde_json::json!({ "type": "lagged", "missed": missed }).to_string()
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if socket.send(Message::Text(text.into())).await.is_err() {
            debug!("events socket closed");
            return;
        }
    }
}
