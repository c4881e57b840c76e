//! Rules: list, replace, create, update, delete, reorder. Every change is
//! validated with the whole application (patterns compile, scenarios exist)
//! before it is stored; a bad regex is a 400 `invalid_rule` with the reason.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_rules::Rule;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Auth, Writer};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{ApiJson, ApiPath};
use super::ApiState;
use crate::control::ControlError;

pub(super) fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, replace_rules, create_rule))
        .routes(routes!(get_rule, update_rule, delete_rule))
        .routes(routes!(reorder_rules))
}

fn default_true() -> bool {
    true
}

/// A routing rule. The first enabled rule whose `pattern` matches the whole
/// destination (and whose `exclude` does not) wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    pub name: String,
    /// Regular expression matched against the whole destination.
    pub pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// The scenario to run (it must exist).
    pub scenario: String,
    /// One scenario instance per distinct destination (a conference room).
    #[serde(default)]
    pub conference: bool,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

impl From<Rule> for RuleBody {
    fn from(r: Rule) -> Self {
        RuleBody {
            name: r.name,
            pattern: r.pattern,
            exclude: r.exclude,
            scenario: r.scenario,
            conference: r.conference,
            enabled: r.enabled,
        }
    }
}

impl From<RuleBody> for Rule {
    fn from(r: RuleBody) -> Self {
        Rule {
            name: r.name,
            pattern: r.pattern,
            exclude: r.exclude,
            scenario: r.scenario,
            conference: r.conference,
            enabled: r.enabled,
        }
    }
}

/// A new rule and where it goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub name: String,
    pub pattern: String,
    #[serde(default)]
    pub exclude: Option<String>,
    pub scenario: String,
    #[serde(default)]
    pub conference: bool,
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// 0-based position; the end when absent.
    pub position: Option<usize>,
}

/// The new order: every rule name, once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleOrder {
    pub rules: Vec<String>,
}

fn bodies(rules: Vec<Rule>) -> Vec<RuleBody> {
    rules.into_iter().map(RuleBody::from).collect()
}

fn no_rule(name: &str) -> ControlError {
    ControlError::NotFound(format!("no rule {name}"))
}

/// The application's rules, in order.
#[utoipa::path(get, path = "/applications/{app}/rules", tag = "rules",
    params(("app" = String, Path, description = "Application id or name")),
    responses((status = 200, body = Vec<RuleBody>), (status = 404, body = ErrorBody)))]
async fn list_rules(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath(app): ApiPath<String>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let stored = state.control.stored_app(&record.id).await?;
    Ok(Json(bodies(stored.rules)))
}

/// Replace all rules, in the given order.
#[utoipa::path(put, path = "/applications/{app}/rules", tag = "rules",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = Vec<RuleBody>,
    responses((status = 200, body = Vec<RuleBody>), (status = 400, body = ErrorBody)))]
async fn replace_rules(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<Vec<RuleBody>>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let (_, rules) = state
        .control
        .edit_rules(&record.id, |rules| {
            *rules = body.into_iter().map(Rule::from).collect();
            Ok(())
        })
        .await?;
    Ok(Json(bodies(rules)))
}

/// Add a rule (at the end, or at `position`).
#[utoipa::path(post, path = "/applications/{app}/rules", tag = "rules",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = NewRule,
    responses((status = 201, body = RuleBody), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create_rule(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<NewRule>,
) -> ApiResult<(StatusCode, Json<RuleBody>)> {
    let record = state.control.find_app(&p.account, &app).await?;
    let rule = Rule {
        name: body.name,
        pattern: body.pattern,
        exclude: body.exclude,
        scenario: body.scenario,
        conference: body.conference,
        enabled: body.enabled,
    };
    let created = rule.clone();
    state
        .control
        .edit_rules(&record.id, |rules| {
            if rules.iter().any(|r| r.name == rule.name) {
                return Err(ControlError::Conflict(format!(
                    "a rule named {:?} already exists",
                    rule.name
                )));
            }
            let at = body.position.unwrap_or(rules.len()).min(rules.len());
            rules.insert(at, rule);
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// One rule.
#[utoipa::path(get, path = "/applications/{app}/rules/{rule}", tag = "rules",
    params(("app" = String, Path, description = "Application id or name"),
        ("rule" = String, Path, description = "Rule name")),
    responses((status = 200, body = RuleBody), (status = 404, body = ErrorBody)))]
async fn get_rule(
    State(state): State<ApiState>,
    Auth(p): Auth,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<RuleBody>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let stored = state.control.stored_app(&record.id).await?;
    let rule = stored
        .rules
        .into_iter()
        .find(|r| r.name == name)
        .ok_or_else(|| no_rule(&name))?;
    Ok(Json(rule.into()))
}

/// Replace one rule in place (its name may change).
#[utoipa::path(put, path = "/applications/{app}/rules/{rule}", tag = "rules",
    params(("app" = String, Path, description = "Application id or name"),
        ("rule" = String, Path, description = "Rule name")),
    request_body = RuleBody,
    responses((status = 200, body = RuleBody), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn update_rule(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<RuleBody>,
) -> ApiResult<Json<RuleBody>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let rule = Rule::from(body.clone());
    state
        .control
        .edit_rules(&record.id, |rules| {
            let index = rules
                .iter()
                .position(|r| r.name == name)
                .ok_or_else(|| no_rule(&name))?;
            if rule.name != name && rules.iter().any(|r| r.name == rule.name) {
                return Err(ControlError::Conflict(format!(
                    "a rule named {:?} already exists",
                    rule.name
                )));
            }
            rules[index] = rule;
            Ok(())
        })
        .await?;
    Ok(Json(body))
}

/// Delete a rule.
#[utoipa::path(delete, path = "/applications/{app}/rules/{rule}", tag = "rules",
    params(("app" = String, Path, description = "Application id or name"),
        ("rule" = String, Path, description = "Rule name")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_rule(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath((app, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let record = state.control.find_app(&p.account, &app).await?;
    state
        .control
        .edit_rules(&record.id, |rules| {
            let before = rules.len();
            rules.retain(|r| r.name != name);
            if rules.len() == before {
                return Err(no_rule(&name));
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reorder the rules: `rules` lists every rule name once, in the new order.
#[utoipa::path(put, path = "/applications/{app}/rule-order", tag = "rules",
    params(("app" = String, Path, description = "Application id or name")),
    request_body = RuleOrder,
    responses((status = 200, body = Vec<RuleBody>), (status = 400, body = ErrorBody)))]
async fn reorder_rules(
    State(state): State<ApiState>,
    Writer(p): Writer,
    ApiPath(app): ApiPath<String>,
    ApiJson(body): ApiJson<RuleOrder>,
) -> ApiResult<Json<Vec<RuleBody>>> {
    let record = state.control.find_app(&p.account, &app).await?;
    let (_, rules) = state
        .control
        .edit_rules(&record.id, |rules| {
            let mut names: Vec<&String> = rules.iter().map(|r| &r.name).collect();
            let mut wanted: Vec<&String> = body.rules.iter().collect();
            names.sort();
            wanted.sort();
            if names != wanted {
                return Err(ControlError::BadRequest(
                    "the new order must list every rule name exactly once".into(),
                ));
            }
            let mut reordered = Vec::with_capacity(rules.len());
            for name in &body.rules {
                if let Some(i) = rules.iter().position(|r| &r.name == name) {
                    reordered.push(rules.remove(i));
                }
            }
            *rules = reordered;
            Ok(())
        })
        .await
        .map_err(ApiError::from)?;
    Ok(Json(bodies(rules)))
}
