//! Live conferences: list, get with participants (muted, talking), mute,
//! unmute and kick a participant. Scoped to the key's account.

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
use super::extract::{ApiPath, ApiQuery};
use super::ApiState;
use crate::control::Principal;
use crate::engine::{Conference, ConferenceSnapshot};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_conferences))
        .routes(routes!(get_conference))
        .routes(routes!(mute))
        .routes(routes!(unmute))
        .routes(routes!(kick))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConferenceView {
    /// The conference's name (the destination its rule matched).
    pub name: String,
    pub account: String,
    pub application: String,
    pub participants: Vec<ParticipantView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantView {
    pub call_id: String,
    pub from: String,
    pub muted: bool,
    pub deaf: bool,
    pub talking: bool,
}

impl From<ConferenceSnapshot> for ConferenceView {
    fn from(c: ConferenceSnapshot) -> Self {
        ConferenceView {
            name: c.name,
            account: c.scope.account,
            application: c.scope.app,
            participants: c
                .participants
                .into_iter()
                .map(|p| ParticipantView {
                    call_id: p.call_id,
                    from: p.from,
                    muted: p.muted,
                    deaf: p.deaf,
                    talking: p.talking,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConferencesQuery {
    /// Only this application's conferences (id or name).
    pub application: Option<String>,
}

async fn own_conference(
    state: &ApiState,
    p: &Principal,
    app: &str,
    name: &str,
) -> ApiResult<Arc<Conference>> {
    let record = state.control.find_app(&p.account, app).await?;
    state
        .engine
        .conference(&record.id, name)
        .filter(|c| c.scope().account == p.account)
        .ok_or_else(|| ApiError::not_found(format!("no live conference {name}")))
}

/// The account's live conferences.
#[utoipa::path(get, path = "/conferences", tag = "conferences", params(ConferencesQuery),
    responses((status = 200, body = Vec<ConferenceView>)))]
async fn list_conferences(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiQuery(query): ApiQuery<ConferencesQuery>,
) -> ApiResult<Json<Vec<ConferenceView>>> {
    let app = match &query.application {
        Some(app) => Some(state.control.find_app(&p.account, app).await?.id),
        None => None,
    };
    Ok(Json(
        state
            .engine
            .conferences()
            .into_iter()
            .filter(|c| c.scope().account == p.account)
            .filter(|c| app.as_ref().is_none_or(|a| *a == c.scope().app))
            .map(|c| c.snapshot().into())
            .collect(),
    ))
}

/// A live conference with its participants.
#[utoipa::path(get, path = "/applications/{app}/conferences/{name}", tag = "conferences",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Conference name")),
    responses((status = 200, body = ConferenceView), (status = 404, body = ErrorBody)))]
async fn get_conference(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<ConferenceView>> {
    let conference = own_conference(&state, &p, &app, &name).await?;
    Ok(Json(conference.snapshot().into()))
}

async fn set_muted(
    state: &ApiState,
    p: &Principal,
    (app, name, call): (String, String, String),
    muted: bool,
) -> ApiResult<Json<ConferenceView>> {
    let conference = own_conference(state, p, &app, &name).await?;
    conference
        .set_muted(&call, muted)
        .await
        .map_err(|e| match e {
            switchboard_scenarios::ConferenceError::NoSuchCall(_) => {
                ApiError::not_found(format!("call {call} is not in conference {name}"))
            }
            other => ApiError::conflict(other.to_string()),
        })?;
    Ok(Json(conference.snapshot().into()))
}

/// Mute a participant: the others stop hearing it.
#[utoipa::path(post, path = "/applications/{app}/conferences/{name}/participants/{call}/mute",
    tag = "conferences",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Conference name"),
        ("call" = String, Path, description = "The participant's call id")),
    responses((status = 200, body = ConferenceView), (status = 404, body = ErrorBody)))]
async fn mute(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(path): ApiPath<(String, String, String)>,
) -> ApiResult<Json<ConferenceView>> {
    set_muted(&state, &p, path, true).await
}

/// Unmute a participant.
#[utoipa::path(post, path = "/applications/{app}/conferences/{name}/participants/{call}/unmute",
    tag = "conferences",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Conference name"),
        ("call" = String, Path, description = "The participant's call id")),
    responses((status = 200, body = ConferenceView), (status = 404, body = ErrorBody)))]
async fn unmute(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(path): ApiPath<(String, String, String)>,
) -> ApiResult<Json<ConferenceView>> {
    set_muted(&state, &p, path, false).await
}

/// Kick a participant: out of the room, and its call hung up.
#[utoipa::path(delete, path = "/applications/{app}/conferences/{name}/participants/{call}",
    tag = "conferences",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Conference name"),
        ("call" = String, Path, description = "The participant's call id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn kick(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name, call)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let conference = own_conference(&state, &p, &app, &name).await?;
    switchboard_scenarios::ConferenceControl::kick(conference.as_ref(), &call)
        .await
        .map_err(|e| match e {
            switchboard_scenarios::ConferenceError::NoSuchCall(_) => {
                ApiError::not_found(format!("call {call} is not in conference {name}"))
            }
            other => ApiError::conflict(other.to_string()),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
