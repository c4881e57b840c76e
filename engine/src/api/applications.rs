//! Applications, their numbers and SIP domains, and route explanations.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_rules::StepOutcome;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, Writer};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::rules::RuleBody;
use super::ApiState;
use crate::control::{AppPatch, Draft, NewApp};
use crate::storage::{AppRecord, Role, ScenarioSummary};

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_applications, create_application))
        .routes(routes!(
            get_application,
            update_application,
            delete_application
        ))
        .routes(routes!(list_numbers, add_number))
        .routes(routes!(remove_number))
        .routes(routes!(list_domains, add_domain))
        .routes(routes!(remove_domain))
        .routes(routes!(explain_route))
}

/// An application and whether it is the default one.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    #[serde(flatten)]
    pub record: AppRecord,
    /// Gets the calls no number or domain claims.
    pub default: bool,
}

/// An application with its rules and scenarios.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationDetail {
    #[serde(flatten)]
    pub application: ApplicationView,
    pub rules: Vec<RuleBody>,
    pub scenarios: Vec<ScenarioSummary>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApplication {
    /// Unique in the account: letters, digits, `_`, `-`, `.`.
    pub name: String,
    #[serde(default)]
    pub numbers: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// Fields to change; absent ones stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApplication {
    pub name: Option<String>,
    pub numbers: Option<Vec<String>>,
    pub domains: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    /// Make this the default application (true) or stop it being one
    /// (false). Admin keys only: the default application gets calls of no
    /// account.
    pub default: Option<bool>,
}

pub(super) async fn view(state: &ApiState, record: AppRecord) -> ApiResult<ApplicationView> {
    let default = state.control.default_app().await?.as_deref() == Some(record.id.as_str());
    Ok(ApplicationView { record, default })
}

/// List the account's applications.
#[utoipa::path(get, path = "/applications", tag = "applications",
    responses((status = 200, body = Vec<ApplicationView>), (status = 401, body = ErrorBody)))]
async fn list_applications(
    State(state): State<ApiState>,
    Auth(p): Auth,
) -> ApiResult<Json<Vec<ApplicationView>>> {
    let default = state.control.default_app().await?;
    let apps = state.control.storage().apps(Some(&p.account)).await?;
    Ok(Json(
        apps.into_iter()
            .map(|record| ApplicationView {
                default: default.as_deref() == Some(record.id.as_str()),
                record,
            })
            .collect(),
    ))
}

/// Create an application (empty: add scenarios, then rules).
#[utoipa::path(post, path = "/applications", tag = "applications", request_body = CreateApplication,
    responses((status = 201, body = ApplicationView), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_application(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiJson(body): ApiJson<CreateApplication>,
) -> ApiResult<(StatusCode, Json<ApplicationView>)> {
    let record = state
        .control
        .create_app(
            &p.account,
            NewApp {
                name: body.name,
                numbers: body.numbers,
                domains: body.domains,
                allowed_hosts: body.allowed_hosts,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, record).await?)))
}

/// An application with its rules and scenarios.
#[utoipa::path(get, path = "/applications/{app}", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 200, body = ApplicationDetail), (status = 404, body = ErrorBody)))]
async fn get_application(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<ApplicationDetail>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let stored = state.control.stored_app(&record.id).await?;
    let scenarios = state.control.storage().scenarios(&record.id).await?;
    Ok(Json(ApplicationDetail {
        application: view(&state, stored.record).await?,
        rules: stored.rules.into_iter().map(RuleBody::from).collect(),
        scenarios,
    }))
}

/// Change an application's name, numbers, domains, allowed hosts, or
/// whether it is the default.
#[utoipa::path(patch, path = "/applications/{app}", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = UpdateApplication,
    responses((status = 200, body = ApplicationView), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_application(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateApplication>,
) -> ApiResult<Json<ApplicationView>> {
    if body.default.is_some() && p.role != Role::Admin {
        return Err(ApiError::forbidden(
            "only admin keys choose the default application",
        ));
    }
    let record = state.control.find_app(&p.account, &app).await?;
    let record = state
        .control
        .update_app(
            &record.id,
            AppPatch {
                name: body.name,
                numbers: body.numbers,
                domains: body.domains,
                allowed_hosts: body.allowed_hosts,
            },
        )
        .await?;
    let is_default = state.control.default_app().await?.as_deref() == Some(record.id.as_str());
    match body.default {
        Some(true) if !is_default => state.control.set_default_app(Some(&record.id)).await?,
        Some(false) if is_default => state.control.set_default_app(None).await?,
        _ => {}
    }
    Ok(Json(view(&state, record).await?))
}

/// Delete an application with its scenarios and rules (its call history
/// stays). Calls in progress keep running.
#[utoipa::path(delete, path = "/applications/{app}", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_application(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<StatusCode> {
    let record = state.control.find_app(&p.account, &app).await?;
    state.control.delete_app(&record.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Numbers (Request-URI users) reaching an application.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Numbers {
    pub numbers: Vec<String>,
}

/// SIP domains (Request-URI hosts) reaching an application.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Domains {
    pub domains: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNumber {
    pub number: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    pub domain: String,
}

#[derive(Clone, Copy)]
enum RouteKind {
    Number,
    Domain,
}

/// Adds or removes one number or domain.
async fn edit_routes(
    state: &ApiState,
    account: &str,
    app: &str,
    kind: RouteKind,
    value: String,
    add: bool,
) -> ApiResult<AppRecord> {
    let record = state.control.find_app(account, app).await?;
    let mut list = match kind {
        RouteKind::Number => record.numbers.clone(),
        RouteKind::Domain => record.domains.clone(),
    };
    let value = match kind {
        RouteKind::Number => value,
        RouteKind::Domain => value.to_ascii_lowercase(),
    };
    if add {
        list.push(value);
    } else {
        let before = list.len();
        list.retain(|v| *v != value);
        if list.len() == before {
            return Err(ApiError::not_found(format!(
                "{value:?} does not reach this application"
            )));
        }
    }
    let patch = match kind {
        RouteKind::Number => AppPatch {
            numbers: Some(list),
            ..Default::default()
        },
        RouteKind::Domain => AppPatch {
            domains: Some(list),
            ..Default::default()
        },
    };
    Ok(state.control.update_app(&record.id, patch).await?)
}

/// Numbers that reach the application.
#[utoipa::path(get, path = "/applications/{app}/numbers", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 200, body = Numbers), (status = 404, body = ErrorBody)))]
async fn list_numbers(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<Numbers>> {
    let record = state.control.find_app(&p.account, &app).await?;
    Ok(Json(Numbers {
        numbers: record.numbers,
    }))
}

/// Route a number to the application (409 if another application has it).
#[utoipa::path(post, path = "/applications/{app}/numbers", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = AddNumber,
    responses((status = 201, body = Numbers), (status = 409, body = ErrorBody)))]
async fn add_number(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<AddNumber>,
) -> ApiResult<(StatusCode, Json<Numbers>)> {
    let record = edit_routes(
        &state,
        &p.account,
        &app,
        RouteKind::Number,
        body.number,
        true,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Numbers {
            numbers: record.numbers,
        }),
    ))
}

/// Stop routing a number to the application.
#[utoipa::path(delete, path = "/applications/{app}/numbers/{number}", tag = "applications",
    params(("app" = String, Path, description = "Application id or name"),
        ("number" = String, Path, description = "The number")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_number(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, number)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    edit_routes(&state, &p.account, &app, RouteKind::Number, number, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// SIP domains that reach the application.
#[utoipa::path(get, path = "/applications/{app}/domains", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 200, body = Domains), (status = 404, body = ErrorBody)))]
async fn list_domains(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<Domains>> {
    let record = state.control.find_app(&p.account, &app).await?;
    Ok(Json(Domains {
        domains: record.domains,
    }))
}

/// Route a SIP domain to the application (409 if another application has it).
#[utoipa::path(post, path = "/applications/{app}/domains", tag = "applications",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = AddDomain,
    responses((status = 201, body = Domains), (status = 409, body = ErrorBody)))]
async fn add_domain(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<AddDomain>,
) -> ApiResult<(StatusCode, Json<Domains>)> {
    let record = edit_routes(
        &state,
        &p.account,
        &app,
        RouteKind::Domain,
        body.domain,
        true,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(Domains {
            domains: record.domains,
        }),
    ))
}

/// Stop routing a SIP domain to the application.
#[utoipa::path(delete, path = "/applications/{app}/domains/{domain}", tag = "applications",
    params(("app" = String, Path, description = "Application id or name"),
        ("domain" = String, Path, description = "The domain")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_domain(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, domain)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    edit_routes(&state, &p.account, &app, RouteKind::Domain, domain, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RouteQuery {
    /// The destination (Request-URI user) to route.
    pub destination: String,
}

/// Which rule a destination reaches, and why each earlier rule did not.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteExplanation {
    pub destination: String,
    /// The winning rule, if any (none: the call would get 404).
    pub matched: Option<String>,
    /// The scenario the winning rule runs.
    pub scenario: Option<String>,
    /// Whether the winning rule is a conference rule.
    pub conference: bool,
    /// Each rule evaluated, in order, up to the winner.
    pub steps: Vec<RouteStep>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteStep {
    pub rule: String,
    /// `disabled`, `pattern_did_not_match`, `excluded` or `matched`.
    pub outcome: String,
    pub reason: String,
}

fn outcome_name(outcome: StepOutcome) -> &'static str {
    match outcome {
        StepOutcome::Disabled => "disabled",
        StepOutcome::PatternDidNotMatch => "pattern_did_not_match",
        StepOutcome::Excluded => "excluded",
        StepOutcome::Matched => "matched",
    }
}

/// Explain how a destination routes in the application as it is now.
#[utoipa::path(get, path = "/applications/{app}/route", tag = "applications",
    params(("app" = String, Path, description = "Application id or name"), RouteQuery),
    responses((status = 200, body = RouteExplanation), (status = 404, body = ErrorBody)))]
async fn explain_route(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
    ApiQuery(query): ApiQuery<RouteQuery>,
) -> ApiResult<Json<RouteExplanation>> {
    let record = state.control.find_app(&p.account, &app).await?;
    // The installed version is what the next call gets; build from storage
    // if it is not installed.
    let application = match state.engine.apps().get(&record.id) {
        Some(app) => app,
        None => std::sync::Arc::new(
            Draft::from_stored(state.control.stored_app(&record.id).await?)
                .build()
                .map_err(ApiError::from)?,
        ),
    };
    let explanation = application.rules.explain(&query.destination);
    let winner = explanation
        .matched
        .as_ref()
        .and_then(|name| application.rules.rules().find(|r| &r.name == name));
    Ok(Json(RouteExplanation {
        destination: explanation.destination.clone(),
        matched: explanation.matched.clone(),
        scenario: winner.map(|r| r.scenario.clone()),
        conference: winner.is_some_and(|r| r.conference),
        steps: explanation
            .steps
            .iter()
            .map(|step| RouteStep {
                rule: step.rule.clone(),
                outcome: outcome_name(step.outcome).to_string(),
                reason: step.outcome.describe().to_string(),
            })
            .collect(),
    }))
}
