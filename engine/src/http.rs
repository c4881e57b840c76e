//! The HTTP server. For now: `/health`. The management API (`/api/v1`) is
//! its own piece of work.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::engine::EngineInner;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<EngineInner>,
    stopped: CancellationToken,
) {
    let app = Router::new()
        .route("/health", get(health))
        .with_state(engine);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stopped.cancelled().await })
        .await;
    if let Err(e) = result {
        warn!(error = %e, "HTTP server stopped");
    }
}

async fn health(State(engine): State<Arc<EngineInner>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": if engine.shutting_down.load(Ordering::SeqCst) { "stopping" } else { "ok" },
        "default_app": engine.apps.default_app(),
        "calls": engine.calls.len(),
        "conferences": engine.rooms.len(),
        "calls_total": engine.stats.calls_total.load(Ordering::Relaxed),
        "calls_rejected": engine.stats.calls_rejected.load(Ordering::Relaxed),
    }))
}
