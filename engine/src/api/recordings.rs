//! Recordings an application's scenarios made (`call.record`, `conf.record`):
//! list, download, delete. Files live on the engine's disk under the
//! application's own directory, so a key only ever reaches its account's.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, Writer};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::ApiPath;
use super::ApiState;
use crate::control::Principal;
use crate::engine::{RecordingFile, Scope};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_recordings))
        .routes(routes!(download, delete_recording))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingView {
    /// The file name; download it at `.../recordings/{name}`.
    pub name: String,
    pub size_bytes: u64,
    /// Last written, ms since the epoch.
    pub modified_ms: u64,
    /// Still being written by a live call or conference.
    pub in_progress: bool,
}

fn view((file, in_progress): (RecordingFile, bool)) -> RecordingView {
    RecordingView {
        name: file.name,
        size_bytes: file.size_bytes,
        modified_ms: file.modified_ms,
        in_progress,
    }
}

/// The scope of one of the key's applications.
async fn own_scope(state: &ApiState, p: &Principal, app: &str) -> ApiResult<Scope> {
    let record = state.control.find_app(&p.account, app).await?;
    Ok(Scope {
        account: record.account,
        app: record.id,
    })
}

/// A finished recording of the application by name.
async fn finished(
    state: &ApiState,
    p: &Principal,
    app: &str,
    name: &str,
) -> ApiResult<RecordingFile> {
    let scope = own_scope(state, p, app).await?;
    match state.engine.recording(&scope, name) {
        None => Err(ApiError::not_found(format!("no recording {name}"))),
        Some((_, true)) => Err(ApiError::conflict(format!(
            "recording {name} is still in progress"
        ))),
        Some((file, false)) => Ok(file),
    }
}

/// The application's recordings, newest first.
#[utoipa::path(get, path = "/applications/{app}/recordings", tag = "recordings",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 200, body = Vec<RecordingView>), (status = 404, body = ErrorBody)))]
async fn list_recordings(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<Vec<RecordingView>>> {
    let scope = own_scope(&state, &p, &app).await?;
    let files = state
        .engine
        .recordings(&scope)
        .map_err(|e| ApiError::internal(format!("cannot list recordings: {e}")))?;
    Ok(Json(files.into_iter().map(view).collect()))
}

/// A finished recording as `audio/wav` (streamed).
#[utoipa::path(get, path = "/applications/{app}/recordings/{name}", tag = "recordings",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Recording file name")),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Still being recorded", body = ErrorBody)))]
async fn download(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let file = finished(&state, &p, &app, &name).await?;
    let opened = tokio::fs::File::open(&file.path)
        .await
        .map_err(|_| ApiError::not_found(format!("no recording {name}")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(opened));
    Ok((
        [
            (header::CONTENT_TYPE, "audio/wav".to_string()),
            (header::CONTENT_LENGTH, file.size_bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file.name),
            ),
        ],
        body,
    )
        .into_response())
}

/// Deletes a finished recording.
#[utoipa::path(delete, path = "/applications/{app}/recordings/{name}", tag = "recordings",
    params(("app" = String, Path, description = "Application id or name"),
        ("name" = String, Path, description = "Recording file name")),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "Still being recorded", body = ErrorBody)))]
async fn delete_recording(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let file = finished(&state, &p, &app, &name).await?;
    match tokio::fs::remove_file(&file.path).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ApiError::not_found(format!("no recording {name}")))
        }
        Err(e) => Err(ApiError::internal(format!("cannot delete {name}: {e}"))),
    }
}
