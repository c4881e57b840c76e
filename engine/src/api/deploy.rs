//! `PUT /deployments/{name}`: create or sync an application from a
//! directory's contents in one atomic, idempotent step (what
//! `switchboard deploy <dir>` sends).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchboard_rules::Rule;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Writer;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::rules::RuleBody;
use super::ApiState;
use crate::control::{DeployReport, DeploySpec};
use crate::storage::Role;

/// A deployment's body limit: many scenarios at the size cap.
pub(super) const DEPLOY_LIMIT: usize = 16 * 1024 * 1024;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(deploy))
}

/// An application as a directory holds it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// The rules, in order (they replace the current ones).
    #[serde(default)]
    pub rules: Vec<RuleBody>,
    /// Scenario sources by name.
    #[serde(default)]
    pub scenarios: BTreeMap<String, String>,
    /// Replace the numbers (kept when absent).
    pub numbers: Option<Vec<String>>,
    /// Replace the domains (kept when absent).
    pub domains: Option<Vec<String>>,
    /// Replace the allowed hosts (kept when absent).
    pub allowed_hosts: Option<Vec<String>>,
    /// Delete scenarios not listed here.
    #[serde(default)]
    pub prune: bool,
    /// Also make it the default application (admin keys only).
    #[serde(default)]
    pub default: bool,
}

/// Create or sync application `name`: changed scenarios get new versions,
/// unchanged ones are left alone, the rules become the given list. All of
/// it or none of it is applied; deploying the same content again changes
/// nothing.
#[utoipa::path(put, path = "/deployments/{name}", tag = "applications",
    params(("name" = String, Path, description = "Application name")),
    request_body = Deployment,
    responses((status = 201, body = DeployReport, description = "Created"),
        (status = 200, body = DeployReport, description = "Synced"),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
async fn deploy(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Deployment>,
) -> ApiResult<(StatusCode, Json<DeployReport>)> {
    if body.default && p.role != Role::Admin {
        return Err(ApiError::forbidden(
            "only admin keys choose the default application",
        ));
    }
    let report = state
        .control
        .deploy(
            &p.account,
            DeploySpec {
                name,
                rules: body.rules.into_iter().map(Rule::from).collect(),
                scenarios: body.scenarios,
                numbers: body.numbers,
                domains: body.domains,
                allowed_hosts: body.allowed_hosts,
                prune: body.prune,
            },
        )
        .await?;
    if body.default {
        state
            .control
            .set_default_app(Some(&report.application.id))
            .await?;
    }
    let status = if report.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(report)))
}
