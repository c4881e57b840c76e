//! Live calls (list, get, hang up, log so far) and starting a scenario.
//! A key sees only its account's calls; another account's call is "not
//! found".

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, Writer};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::control::Principal;
use crate::engine::events::level_name;
use crate::engine::{Call, CallSnapshot, StartTarget};
use crate::storage::StoredLogLine;

/// Largest `customData`, serialised.
const MAX_CUSTOM_DATA: usize = 64 * 1024;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(start_scenario))
        .routes(routes!(list_calls))
        .routes(routes!(get_call))
        .routes(routes!(hangup_call))
        .routes(routes!(call_log))
}

/// A live call.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallView {
    pub id: String,
    pub account: String,
    pub application: String,
    pub from: String,
    pub to: String,
    /// The destination the call arrived on.
    pub destination: String,
    pub transport: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// `incoming`, `ringing`, `answered` or `ended`.
    pub state: String,
    /// The rule and scenario handling it now (after any `routeTo`).
    pub rule: Option<String>,
    pub scenario: Option<String>,
    pub scenario_version: Option<u32>,
    pub routed_to: Option<String>,
    pub conference: Option<String>,
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub duration_ms: u64,
}

impl From<CallSnapshot> for CallView {
    fn from(c: CallSnapshot) -> Self {
        CallView {
            id: c.id,
            account: c.scope.account,
            application: c.scope.app,
            from: c.from,
            to: c.to,
            destination: c.destination,
            transport: c.transport,
            direction: c.direction.to_string(),
            state: c.state.to_string(),
            rule: c.route.as_ref().map(|r| r.rule.clone()),
            scenario: c.route.as_ref().map(|r| r.scenario.clone()),
            scenario_version: c.route.as_ref().map(|r| r.scenario_version),
            routed_to: c.route.map(|r| r.destination),
            conference: c.conference,
            started_at: c.started_at_ms,
            answered_at: c.answered_at_ms,
            duration_ms: c.duration_ms,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CallsQuery {
    /// Only this application's calls (id or name).
    pub application: Option<String>,
}

/// A call's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallLog {
    pub call_id: String,
    /// True while the call is up (more lines may come).
    pub live: bool,
    pub lines: Vec<StoredLogLine>,
}

/// What to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StartScenario {
    /// Run this rule's scenario (and its conference behaviour)...
    pub rule: Option<String>,
    /// ...or this scenario directly. Exactly one of the two.
    pub scenario: Option<String>,
    /// The destination the instance sees (`ctx.destination`).
    pub destination: String,
    /// Anything; the scenario reads it as `ctx.customData`.
    #[serde(default)]
    pub custom_data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Started {
    /// The scenario instance (or call) id.
    pub id: String,
}

/// A live call of the caller's account.
pub(super) fn own_call(state: &ApiState, p: &Principal, id: &str) -> ApiResult<Arc<Call>> {
    state
        .engine
        .call(id)
        .filter(|call| call.scope().account == p.account)
        .ok_or_else(|| ApiError::not_found(format!("no live call {id}")))
}

/// Start a scenario over the API: its `onStart` runs with `customData` and
/// may `dial` out.
#[utoipa::path(post, path = "/applications/{app}/calls", tag = "calls",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = StartScenario,
    responses((status = 202, body = Started), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 501, body = ErrorBody)))]
async fn start_scenario(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<StartScenario>,
) -> ApiResult<(StatusCode, Json<Started>)> {
    let record = state.control.find_app(&p.account, &app).await?;
    if body.destination.is_empty() || body.destination.len() > 256 {
        return Err(ApiError::bad_request(
            "destination must be 1 to 256 characters",
        ));
    }
    let custom_size = serde_json::to_vec(&body.custom_data)
        .map(|v| v.len())
        .unwrap_or(0);
    if custom_size > MAX_CUSTOM_DATA {
        return Err(ApiError::too_large(format!(
            "customData is {custom_size} bytes; the limit is {MAX_CUSTOM_DATA}"
        )));
    }
    let stored = state.control.stored_app(&record.id).await?;
    let target = match (body.rule, body.scenario) {
        (Some(rule), None) => {
            if !stored.rules.iter().any(|r| r.name == rule) {
                return Err(ApiError::not_found(format!("no rule {rule}")));
            }
            StartTarget::Rule(rule)
        }
        (None, Some(scenario)) => {
            if !stored.scenarios.contains_key(&scenario) {
                return Err(ApiError::not_found(format!("no scenario {scenario}")));
            }
            StartTarget::Scenario(scenario)
        }
        _ => {
            return Err(ApiError::bad_request(
                "give exactly one of \"rule\" and \"scenario\"",
            ))
        }
    };
    let id = state
        .engine
        .start_scenario(&record.id, &target, &body.destination, body.custom_data)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(Started { id })))
}

/// The account's live calls, oldest first.
#[utoipa::path(get, path = "/calls", tag = "calls", params(CallsQuery),
    responses((status = 200, body = Vec<CallView>), (status = 401, body = ErrorBody)))]
async fn list_calls(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiQuery(query): ApiQuery<CallsQuery>,
) -> ApiResult<Json<Vec<CallView>>> {
    let app = match &query.application {
        Some(app) => Some(state.control.find_app(&p.account, app).await?.id),
        None => None,
    };
    let calls = state
        .engine
        .calls()
        .into_iter()
        .filter(|c| c.scope.account == p.account)
        .filter(|c| app.as_ref().is_none_or(|a| *a == c.scope.app))
        .map(CallView::from)
        .collect();
    Ok(Json(calls))
}

/// A live call.
#[utoipa::path(get, path = "/calls/{id}", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, body = CallView), (status = 404, body = ErrorBody)))]
async fn get_call(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CallView>> {
    Ok(Json(own_call(&state, &p, &id)?.snapshot().into()))
}

/// Hang up a live call (BYE, or 480 if not answered yet).
#[utoipa::path(post, path = "/calls/{id}/hangup", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn hangup_call(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let call = own_call(&state, &p, &id)?;
    state.engine.hangup(call.id()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A call's log: so far for a live call, the stored one for a finished call.
#[utoipa::path(get, path = "/calls/{id}/log", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, body = CallLog), (status = 404, body = ErrorBody)))]
async fn call_log(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<CallLog>> {
    if let Ok(call) = own_call(&state, &p, &id) {
        let lines = call
            .log_lines()
            .into_iter()
            .map(|line| StoredLogLine {
                at: crate::engine::events::unix_ms(line.at),
                level: level_name(line.level).to_string(),
                message: line.message,
            })
            .collect();
        return Ok(Json(CallLog {
            call_id: id,
            live: true,
            lines,
        }));
    }
    let lines = state
        .control
        .storage()
        .call_log(&p.account, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call {id}")))?;
    Ok(Json(CallLog {
        call_id: id,
        live: false,
        lines,
    }))
}
