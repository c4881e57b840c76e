//! Call history: finished calls, newest first, paged by cursor, with each
//! call's log.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiPath, ApiQuery};
use super::ApiState;
use crate::storage::{CallResult, HistoryEntry, HistoryFilter, StoredLogLine};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_history))
        .routes(routes!(get_entry))
        .routes(routes!(get_log))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryQuery {
    /// Application id or name.
    pub application: Option<String>,
    /// Exact destination.
    pub destination: Option<String>,
    /// Part of the From URI.
    pub from: Option<String>,
    /// Part of the To URI.
    pub to: Option<String>,
    /// `answered`, `rejected`, `cancelled` or `failed`.
    pub result: Option<String>,
    /// Calls started at or after this time (ms since the epoch).
    pub since: Option<u64>,
    /// Calls started before this time (ms since the epoch).
    pub until: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<u32>,
}

/// A page of finished calls, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPageView {
    pub items: Vec<HistoryEntry>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryLog {
    pub call_id: String,
    pub lines: Vec<StoredLogLine>,
}

/// Finished calls of the account, newest first.
#[utoipa::path(get, path = "/history", tag = "history", params(HistoryQuery),
    responses((status = 200, body = HistoryPageView), (status = 400, body = ErrorBody)))]
async fn list_history(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPageView>> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let result = match query.result.as_deref() {
        None => None,
        Some(text) => Some(CallResult::parse(text).ok_or_else(|| {
            ApiError::bad_request("result must be answered, rejected, cancelled or failed")
        })?),
    };
    let application = match &query.application {
        Some(app) => Some(state.control.find_app(&p.account, app).await?.id),
        None => None,
    };
    let page = state
        .control
        .storage()
        .history(HistoryFilter {
            account: p.account,
            application,
            destination: query.destination,
            from: query.from,
            to: query.to,
            result,
            since: query.since,
            until: query.until,
            cursor: query.cursor,
            limit,
        })
        .await?;
    Ok(Json(HistoryPageView {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One finished call.
#[utoipa::path(get, path = "/history/{id}", tag = "history",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, body = HistoryEntry), (status = 404, body = ErrorBody)))]
async fn get_entry(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<HistoryEntry>> {
    state
        .control
        .storage()
        .history_entry(&p.account, &id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no call {id} in the history")))
}

/// A finished call's log.
#[utoipa::path(get, path = "/history/{id}/log", tag = "history",
    params(("id" = String, Path, description = "Call id")),
    responses((status = 200, body = HistoryLog), (status = 404, body = ErrorBody)))]
async fn get_log(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<HistoryLog>> {
    let lines = state
        .control
        .storage()
        .call_log(&p.account, &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call {id} in the history")))?;
    Ok(Json(HistoryLog { call_id: id, lines }))
}
