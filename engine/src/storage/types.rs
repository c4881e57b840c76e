//! What storage keeps. Times are milliseconds since the Unix epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_rules::Rule;
use utoipa::ToSchema;

/// What an API key may do. Every key belongs to one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Operator: everything a developer may, plus accounts and keys.
    Admin,
    /// Reads and changes its account's applications, calls and conferences.
    Developer,
    /// Reads its account's applications, calls, conferences and history.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "developer" => Some(Role::Developer),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }

    /// May change applications, hang up calls, mute participants.
    pub fn can_write(self) -> bool {
        matches!(self, Role::Admin | Role::Developer)
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub created_at: u64,
}

/// An API key as listed (never its secret or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    /// Non-secret id, also the key's `sb_<id>_` prefix.
    pub id: String,
    pub account: String,
    pub role: Role,
    pub name: String,
    pub created_at: u64,
}

/// An API key with its argon2 hash (PHC string).
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub info: ApiKeyInfo,
    pub hash: String,
}

/// An application's own fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AppRecord {
    /// Stable id, unique across accounts (`app_...`).
    pub id: String,
    pub account: String,
    /// Unique within the account.
    pub name: String,
    /// Request-URI users (numbers) that reach this application.
    pub numbers: Vec<String>,
    /// Request-URI hosts (SIP domains, lower-case) that reach it.
    pub domains: Vec<String>,
    /// Hosts its scenarios may `fetch` from.
    pub allowed_hosts: Vec<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// One stored version of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ScenarioVersion {
    pub name: String,
    pub version: u32,
    pub source: String,
    /// Hex SHA-256 of the source.
    pub sha256: String,
    pub created_at: u64,
}

/// A version without its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct VersionInfo {
    pub version: u32,
    pub size: u64,
    pub sha256: String,
    pub created_at: u64,
    /// The version new calls run.
    pub live: bool,
}

/// A scenario: its live and newest versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ScenarioSummary {
    pub name: String,
    pub live_version: u32,
    pub latest_version: u32,
    /// Size of the live version's source, in bytes.
    pub size: u64,
    pub sha256: String,
    /// When the live version was uploaded.
    pub updated_at: u64,
}

/// Everything an application is built from.
#[derive(Debug, Clone)]
pub struct StoredApp {
    pub record: AppRecord,
    pub rules: Vec<Rule>,
    /// The live version of each scenario, by name.
    pub scenarios: BTreeMap<String, ScenarioVersion>,
    /// The newest version number of each scenario, by name.
    pub latest: BTreeMap<String, u32>,
}

/// One change to an application; [`super::Storage::write_app`] applies a
/// list of them in one transaction.
#[derive(Debug, Clone)]
pub enum AppWrite {
    /// Creates or updates the record, replacing its numbers and domains.
    Save(AppRecord),
    /// Stores a new version (numbered by the caller) and makes it live.
    AddVersion {
        scenario: String,
        version: u32,
        source: String,
        sha256: String,
    },
    /// Makes an existing version live.
    SetLive { scenario: String, version: u32 },
    /// Deletes a scenario and all its versions.
    DeleteScenario { scenario: String },
    /// Replaces the rules, in order.
    SetRules(Vec<Rule>),
}

/// How a finished call ended, for history filters and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CallResult {
    /// Answered (whatever ended it afterwards).
    Answered,
    /// Refused with a final error response (no route, scenario reject, ...).
    Rejected,
    /// The caller gave up before an answer.
    Cancelled,
    /// Ended unanswered otherwise (timeouts, shutdown, transport errors).
    Failed,
}

impl CallResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Answered => "answered",
            CallResult::Rejected => "rejected",
            CallResult::Cancelled => "cancelled",
            CallResult::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<CallResult> {
        match text {
            "answered" => Some(CallResult::Answered),
            "rejected" => Some(CallResult::Rejected),
            "cancelled" => Some(CallResult::Cancelled),
            "failed" => Some(CallResult::Failed),
            _ => None,
        }
    }

    /// Classifies a call record.
    pub fn of(answered: bool, end_reason: &str, sip_code: Option<u16>) -> CallResult {
        if answered {
            CallResult::Answered
        } else if end_reason == "cancelled" {
            CallResult::Cancelled
        } else if sip_code.is_some_and(|c| c >= 300) {
            CallResult::Rejected
        } else {
            CallResult::Failed
        }
    }
}

/// A finished call (CDR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub account: String,
    pub application: String,
    pub from: String,
    pub to: String,
    pub destination: String,
    pub rule: Option<String>,
    pub scenario: Option<String>,
    pub scenario_version: Option<u32>,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub result: CallResult,
    pub started_at: u64,
    pub answered_at: Option<u64>,
    pub ended_at: u64,
    pub duration_ms: u64,
    /// `remote-bye`, `local`, `cancelled`, `rejected`, `shutdown`, ...
    pub end_reason: String,
    /// Final SIP status of the INVITE (200 when answered).
    pub sip_code: Option<u16>,
}

/// A line of a stored call log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoredLogLine {
    pub at: u64,
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
}

/// Which finished calls to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub account: String,
    pub application: Option<String>,
    /// Exact destination.
    pub destination: Option<String>,
    /// Substring of the From URI.
    pub from: Option<String>,
    /// Substring of the To URI.
    pub to: Option<String>,
    pub result: Option<CallResult>,
    /// Started at or after (ms).
    pub since: Option<u64>,
    /// Started before (ms).
    pub until: Option<u64>,
    /// Continue after this cursor (from the previous page).
    pub cursor: Option<i64>,
    pub limit: u32,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryPage {
    pub items: Vec<HistoryEntry>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}
