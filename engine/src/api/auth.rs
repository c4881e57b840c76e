//! `Authorization: Bearer <key>`. Extractors check the key and the role
//! before the body is read, so a refused request changes nothing.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::ApiState;
use crate::control::{AuthError, Principal};
use crate::storage::Role;

/// Any valid key (admin, developer or viewer).
pub struct Auth(pub Principal);

/// A key that may change things (admin or developer).
pub struct Writer(pub Principal);

/// An admin key.
pub struct Admin(pub Principal);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let missing =
        || ApiError::unauthorized("missing API key: send the header Authorization: Bearer <key>");
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let (scheme, key) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(missing());
    }
    Ok(key.trim())
}

pub(super) async fn principal(parts: &Parts, state: &ApiState) -> Result<Principal, ApiError> {
    let key = bearer(parts)?;
    state.control.authenticate(key).await.map_err(|e| match e {
        AuthError::Invalid => ApiError::unauthorized("invalid API key"),
        AuthError::Storage(e) => ApiError::internal(e),
    })
}

impl FromRequestParts<ApiState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        principal(parts, state).await.map(Auth)
    }
}

impl FromRequestParts<ApiState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if !principal.role.can_write() {
            return Err(ApiError::forbidden(
                "this key is read-only (viewer); use a developer or admin key",
            ));
        }
        Ok(Writer(principal))
    }
}

impl FromRequestParts<ApiState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Self, ApiError> {
        let principal = principal(parts, state).await?;
        if principal.role != Role::Admin {
            return Err(ApiError::forbidden("this needs an admin key"));
        }
        Ok(Admin(principal))
    }
}
