//! Accounts and API keys (admin keys), and `/me` (any key).
//!
//! Admin keys are the operator's: they manage accounts and the keys of
//! every account. Tenants get developer and viewer keys of their account;
//! application data is always scoped to the key's own account, admin keys
//! included.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, Auth};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::ApiState;
use crate::storage::{Account, ApiKeyInfo, Role};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(list_accounts, create_account))
        .routes(routes!(get_account, delete_account))
        .routes(routes!(list_keys, create_key))
        .routes(routes!(delete_key))
}

/// The calling key.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub key_id: String,
    pub account: String,
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Unique: letters, digits, `_`, `-`, `.`.
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for (free text).
    pub name: String,
    pub role: Role,
    /// The account the key belongs to; the caller's when absent.
    pub account: Option<String>,
}

/// A new key: `key` is shown this once and cannot be read again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// The secret: send it as `Authorization: Bearer <key>`.
    pub key: String,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct KeysQuery {
    /// Whose keys (the caller's account when absent).
    pub account: Option<String>,
}

/// Who the calling key is.
#[utoipa::path(get, path = "/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(Auth(p): Auth) -> Json<Me> {
    Json(Me {
        key_id: p.key_id,
        account: p.account,
        role: p.role,
    })
}

/// Every account (admin).
#[utoipa::path(get, path = "/accounts", tag = "accounts",
    responses((status = 200, body = Vec<Account>), (status = 403, body = ErrorBody)))]
async fn list_accounts(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
) -> ApiResult<Json<Vec<Account>>> {
    Ok(Json(state.control.storage().accounts().await?))
}

/// Create an account (admin). Give it keys with `POST /keys`.
#[utoipa::path(post, path = "/accounts", tag = "accounts", request_body = CreateAccount,
    responses((status = 201, body = Account), (status = 409, body = ErrorBody)))]
async fn create_account(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiJson(body): ApiJson<CreateAccount>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let account = state.control.create_account(&body.name).await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// One account (admin).
#[utoipa::path(get, path = "/accounts/{account}", tag = "accounts",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 200, body = Account), (status = 404, body = ErrorBody)))]
async fn get_account(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Account>> {
    state
        .control
        .storage()
        .account(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no account {id}")))
}

/// Delete an account and its keys (admin; 409 while it has applications).
#[utoipa::path(delete, path = "/accounts/{account}", tag = "accounts",
    params(("account" = String, Path, description = "Account id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_account(
    State(state): State<ApiState>,
    Admin(p): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    if id == p.account {
        return Err(ApiError::conflict(
            "an admin key cannot delete its own account",
        ));
    }
    state.control.delete_account(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account's keys (admin); never their secrets.
#[utoipa::path(get, path = "/keys", tag = "accounts", params(KeysQuery),
    responses((status = 200, body = Vec<ApiKeyInfo>), (status = 403, body = ErrorBody)))]
async fn list_keys(
    State(state): State<ApiState>,
    Admin(p): Admin,
    ApiQuery(query): ApiQuery<KeysQuery>,
) -> ApiResult<Json<Vec<ApiKeyInfo>>> {
    let account = query.account.unwrap_or(p.account);
    Ok(Json(state.control.storage().keys(&account).await?))
}

/// Create a key (admin). The answer holds the key itself, this once.
#[utoipa::path(post, path = "/keys", tag = "accounts", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 404, body = ErrorBody)))]
async fn create_key(
    State(state): State<ApiState>,
    Admin(p): Admin,
    ApiJson(body): ApiJson<CreateKey>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let account = body.account.unwrap_or(p.account);
    let (info, key) = state
        .control
        .create_key(&account, body.role, &body.name)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedKey { info, key })))
}

/// Delete a key (admin); it stops working at once.
#[utoipa::path(delete, path = "/keys/{id}", tag = "accounts",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_key(
    State(state): State<ApiState>,
    Admin(_admin): Admin,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.control.delete_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
