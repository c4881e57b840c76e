//! Scenarios: upload (`PUT` the JavaScript source: compiled first, refused
//! with the compiler's message and line if broken, the old version staying
//! live), versions, rollback, delete.
//!
//! Versions: every upload whose source differs from the live version is
//! stored as the next version number and becomes live. Uploading the live
//! source again changes nothing (200, same version). Rollback makes an
//! older version live again without copying it; the next upload still gets
//! the next number after the newest.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, Writer};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{body_bytes, parse_json, ApiJson, ApiPath};
use super::ApiState;
use crate::app::MAX_SCENARIO_BYTES;
use crate::storage::{ScenarioSummary, ScenarioVersion, VersionInfo};

/// The upload route's body limit: a scenario at the size cap, as JSON.
pub(super) const UPLOAD_LIMIT: usize = MAX_SCENARIO_BYTES * 2 + 1024;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_scenarios))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(rollback))
}

/// The upload route, with its own body limit.
pub(super) fn upload_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_scenario, put_scenario, delete_scenario))
}

/// The result of an upload or rollback.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScenarioUploaded {
    pub name: String,
    /// The live version now.
    pub version: u32,
    /// Whether a new version was stored.
    pub created: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceBody {
    pub source: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    /// The version to make live.
    pub version: u32,
}

/// A scenario's source: the raw body (`application/javascript`,
/// `text/plain`, ...) or JSON `{"source": "..."}`.
pub struct Source(pub String);

impl<S: Send + Sync> FromRequest<S> for Source {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        let bytes = body_bytes(req, state).await?;
        let source = if json {
            parse_json::<SourceBody>(&bytes)?.source
        } else {
            String::from_utf8(bytes.to_vec())
                .map_err(|e| ApiError::bad_request(format!("the source is not UTF-8: {e}")))?
        };
        if source.len() > MAX_SCENARIO_BYTES {
            return Err(ApiError::too_large(format!(
                "the scenario is {} bytes; the limit is {MAX_SCENARIO_BYTES}",
                source.len()
            ))
            .with_details(serde_json::json!({
                "size": source.len(),
                "limit": MAX_SCENARIO_BYTES
            })));
        }
        Ok(Source(source))
    }
}

/// The application's scenarios with their live and newest versions.
#[utoipa::path(get, path = "/applications/{app}/scenarios", tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 200, body = Vec<ScenarioSummary>), (status = 404, body = ErrorBody)))]
async fn list_scenarios(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<Vec<ScenarioSummary>>> {
    let record = state.control.find_app(&p.account, &app).await?;
    Ok(Json(state.control.storage().scenarios(&record.id).await?))
}

/// The live version of a scenario, with its source.
#[utoipa::path(get, path = "/applications/{app}/scenarios/{name}", tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Scenario name")),
    responses((status = 200, body = ScenarioVersion), (status = 404, body = ErrorBody)))]
async fn get_scenario(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<ScenarioVersion>> {
    let record = state.control.find_app(&p.account, &app).await?;
    state
        .control
        .storage()
        .scenario_version(&record.id, &name, None)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no scenario {name}")))
}

/// Upload a scenario's source. It is compiled (and the application
/// validated with it) before it is stored; if it does not compile the
/// answer is 400 `compile_error` with the message, line and column, and the
/// live version stays. Over 512 KiB: 413. New calls use it at once; calls
/// in progress keep their version.
#[utoipa::path(put, path = "/applications/{app}/scenarios/{name}", tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Scenario name")),
    request_body(content = String, content_type = "application/javascript",
        description = "The ES module source (or JSON {\"source\": ...})"),
    responses((status = 201, body = ScenarioUploaded, description = "A new version"),
        (status = 200, body = ScenarioUploaded, description = "Same as the live version"),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn put_scenario(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name)): ApiPath<(String, String)>,
    Source(source): Source,
) -> ApiResult<(StatusCode, Json<ScenarioUploaded>)> {
    let record = state.control.find_app(&p.account, &app).await?;
    let upload = state
        .control
        .put_scenario(&record.id, &name, source)
        .await?;
    let status = if upload.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(ScenarioUploaded {
            name,
            version: upload.version,
            created: upload.created,
        }),
    ))
}

/// Delete a scenario with all its versions (409 while a rule runs it).
#[utoipa::path(delete, path = "/applications/{app}/scenarios/{name}", tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Scenario name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_scenario(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let record = state.control.find_app(&p.account, &app).await?;
    state.control.delete_scenario(&record.id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every stored version of a scenario, newest first.
#[utoipa::path(get, path = "/applications/{app}/scenarios/{name}/versions", tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Scenario name")),
    responses((status = 200, body = Vec<VersionInfo>), (status = 404, body = ErrorBody)))]
async fn list_versions(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<VersionInfo>>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let versions = state
        .control
        .storage()
        .scenario_versions(&record.id, &name)
        .await?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!("no scenario {name}")));
    }
    Ok(Json(versions))
}

/// One version of a scenario, with its source.
#[utoipa::path(get, path = "/applications/{app}/scenarios/{name}/versions/{version}",
    tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Scenario name"),
        ("version" = u32, Path, description = "Version number")),
    responses((status = 200, body = ScenarioVersion), (status = 404, body = ErrorBody)))]
async fn get_version(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath((app, name, version)): ApiPath<(String, String, u32)>,
) -> ApiResult<Json<ScenarioVersion>> {
    let record = state.control.find_app(&p.account, &app).await?;
    state
        .control
        .storage()
        .scenario_version(&record.id, &name, Some(version))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("scenario {name} has no version {version}")))
}

/// Make an earlier version live again.
#[utoipa::path(post, path = "/applications/{app}/scenarios/{name}/rollback", tag = "scenarios",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Scenario name")),
    request_body = RollbackBody,
    responses((status = 200, body = ScenarioUploaded), (status = 404, body = ErrorBody)))]
async fn rollback(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RollbackBody>,
) -> ApiResult<Json<ScenarioUploaded>> {
    let record = state.control.find_app(&p.account, &app).await?;
    state
        .control
        .rollback_scenario(&record.id, &name, body.version)
        .await?;
    Ok(Json(ScenarioUploaded {
        name,
        version: body.version,
        created: false,
    }))
}
