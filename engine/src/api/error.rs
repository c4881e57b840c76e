//! Every error the API returns has one shape:
//!
//! ```json
//! {"error": {"code": "compile_error", "message": "...", "details": {"line": 3}}}
//! ```
//!
//! `code` is stable (clients branch on it), `message` is for humans,
//! `details` (optional) carries structured specifics.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_rules::RuleError;
use tracing::error;
use utoipa::ToSchema;

use crate::app::{AppError, MAX_SCENARIO_BYTES};
use crate::control::ControlError;
use crate::engine::EngineError;
use crate::storage::StorageError;

/// The error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable: `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `invalid_request`, `invalid_json`, `compile_error`, `invalid_rule`,
    /// `missing_scenario`, `payload_too_large`, `unsupported_media_type`,
    /// `method_not_allowed`, `not_implemented`, `internal`.
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        error!(error = %message, "internal error in the management API");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            AppError::Compile(scenario, compile) => {
                ApiError::new(StatusCode::BAD_REQUEST, "compile_error", message).with_details(
                    json!({
                        "scenario": scenario,
                        "message": compile.message,
                        "line": compile.line,
                        "column": compile.column,
                    }),
                )
            }
            AppError::Rules(RuleError::InvalidPattern {
                rule,
                field,
                reason,
            }) => ApiError::new(StatusCode::BAD_REQUEST, "invalid_rule", message)
                .with_details(json!({ "rule": rule, "field": field, "reason": reason })),
            AppError::Rules(RuleError::DuplicateName { name })
            | AppError::Rules(RuleError::EmptyScenario { rule: name }) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_rule", message)
                    .with_details(json!({ "rule": name }))
            }
            AppError::Rules(RuleError::EmptyName { index }) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_rule", message)
                    .with_details(json!({ "index": index }))
            }
            AppError::MissingScenario { rule, scenario } => {
                ApiError::new(StatusCode::BAD_REQUEST, "missing_scenario", message)
                    .with_details(json!({ "rule": rule, "scenario": scenario }))
            }
            AppError::TooLarge { name, size } => ApiError::too_large(message).with_details(
                json!({ "scenario": name, "size": size, "limit": MAX_SCENARIO_BYTES }),
            ),
            AppError::Read { .. } | AppError::Manifest(_) => ApiError::bad_request(message),
        }
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::NotFound(m) => ApiError::not_found(m),
            ControlError::Conflict(m) => ApiError::conflict(m),
            ControlError::BadRequest(m) => ApiError::bad_request(m),
            ControlError::Invalid(app) => app.into(),
            ControlError::Storage(e) => ApiError::internal(e),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ControlError::from(e).into()
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NoSuchCall(id) => ApiError::not_found(format!("no live call {id}")),
            EngineError::NoSuchConference(name) => {
                ApiError::not_found(format!("no live conference {name}"))
            }
            EngineError::NotAvailable(m) => {
                ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_implemented", m)
            }
            EngineError::Call(e) => ApiError::conflict(e.to_string()),
            EngineError::Conference(e) => ApiError::conflict(e.to_string()),
            other => ApiError::internal(other),
        }
    }
}
