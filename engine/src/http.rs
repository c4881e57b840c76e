//! Serving HTTP for an engine: `/health` here, and what browsers use
//! (`crate::web`: SIP over WebSocket on `/ws`, the dial page on `/phone`);
//! the management API (`crate::api`) adds `/api/v1`, `/metrics` and the
//! docs on top.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::engine::Engine;

/// `/health`, `/ws` and `/phone`: what an engine without storage serves.
pub fn router(engine: &Engine) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(engine.clone())
        .merge(crate::web::routes(engine))
}

/// Serves `router` on `listener` until `stopped`: HTTPS with `tls`,
/// plain HTTP without.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    stopped: CancellationToken,
) {
    let service = router.into_make_service_with_connect_info::<crate::web::Peer>();
    let stop = async move { stopped.cancelled().await };
    let result = match tls {
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(stop)
                .await
        }
        Some(acceptor) => match crate::tls::TlsListener::new(listener, acceptor) {
            Ok(listener) => {
                axum::serve(listener, service)
                    .with_graceful_shutdown(stop)
                    .await
            }
            Err(e) => Err(e),
        },
    };
    if let Err(e) = result {
        warn!(error = %e, "HTTP server stopped");
    }
}

/// Liveness and a few counters; no authentication.
pub async fn health(State(engine): State<Engine>) -> Json<serde_json::Value> {
    let stats = engine.stats();
    Json(json!({
        "status": if engine.is_stopping() { "stopping" } else { "ok" },
        "default_app": engine.apps().default_app(),
        "calls": engine.active_calls(),
        "conferences": engine.conferences().len(),
        "calls_total": stats.calls_total.load(Ordering::Relaxed),
        "calls_rejected": stats.calls_rejected.load(Ordering::Relaxed),
    }))
}
