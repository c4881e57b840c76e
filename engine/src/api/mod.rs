//! The management HTTP API.
//!
//! - `/api/v1/...`: JSON, `Authorization: Bearer <key>`; every error is
//!   `{"error": {"code", "message", "details"}}` ([`error`]).
//! - `/openapi.json` (generated from the handlers) and `/docs` (Swagger UI,
//!   served from the binary).
//! - `/metrics` (Prometheus) and `/health`, without a key.
//!
//! Handlers live by resource: [`accounts`] (and keys), [`applications`]
//! (with numbers, domains, route explanations), [`scenarios`], [`rules`],
//! [`deploy`], [`calls`] (live calls, starting scenarios), [`conferences`],
//! [`history`], [`recordings`], [`events`] (WebSocket). They go through
//! the control plane (`crate::control`) for changes and read storage or
//! the engine directly.

mod accounts;
mod applications;
mod auth;
mod calls;
mod conferences;
mod deploy;
pub mod error;
mod events;
mod extract;
mod history;
pub mod metrics;
mod recordings;
mod rules;
mod scenarios;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::control::Control;
use crate::engine::Engine;
pub use error::{ApiError, ErrorBody};
pub use events::EventHub;
pub use metrics::Metrics;

/// Body limit of JSON requests (scenario uploads and deployments have
/// their own).
pub const JSON_LIMIT: usize = 1024 * 1024;

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub control: Control,
    pub engine: Engine,
    pub events: Arc<EventHub>,
    pub metrics: Arc<Metrics>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "switchboard management API",
        description = "Applications, scenarios, rules, numbers and domains; live calls and \
            conferences; call history; live events. Send `Authorization: Bearer <key>`. \
            Errors: `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorBody)),
    tags(
        (name = "accounts", description = "Accounts, API keys, the calling key"),
        (name = "applications", description = "Applications, numbers, domains, routing, deploys"),
        (name = "scenarios", description = "Scenario sources and versions"),
        (name = "rules", description = "Routing rules"),
        (name = "calls", description = "Live calls, starting scenarios, live events"),
        (name = "conferences", description = "Live conferences and participants"),
        (name = "history", description = "Finished calls and their logs"),
        (name = "recordings", description = "Recordings made by scenarios: list, download, delete"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The `/api/v1` routes and their OpenAPI description.
fn v1() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(accounts::routes())
        .merge(applications::routes())
        .merge(rules::routes())
        .merge(scenarios::routes())
        .merge(scenarios::upload_routes().layer(DefaultBodyLimit::max(scenarios::UPLOAD_LIMIT)))
        .merge(deploy::routes().layer(DefaultBodyLimit::max(deploy::DEPLOY_LIMIT)))
        .merge(calls::routes())
        .merge(conferences::routes())
        .merge(history::routes())
        .merge(recordings::routes())
        .merge(events::routes())
}

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    OpenApiRouter::<ApiState>::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1())
        .split_for_parts()
        .1
}

/// Everything the management server serves.
pub fn router(state: ApiState) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1())
        .split_for_parts();
    Router::new()
        .merge(api)
        .route("/metrics", get(metrics_page))
        .route("/health", get(health))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(JSON_LIMIT))
        .with_state(state.clone())
        .merge(crate::web::routes(&state.engine))
        .merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
}

async fn metrics_page(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(&state.engine, &state.metrics),
    )
}

async fn health(State(state): State<ApiState>) -> Json<serde_json::Value> {
    crate::http::health(State(state.engine.clone())).await
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
