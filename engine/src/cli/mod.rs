//! The CLI's client commands: each talks to the management API and returns
//! the text to print.
//!
//! - `deploy <dir>`: sync an application from its directory (`app.toml` +
//!   `*.js`), one atomic `PUT /api/v1/deployments/{name}`.
//! - `apps`, `calls`, `logs <call>`, `route <app> <destination>`,
//!   `history`.

mod client;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use reqwest::Method;
use serde_json::{json, Value};

use crate::app::{read_dir, AppError};
pub use client::{segment, Client, ClientError, DEFAULT_URL};

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    App(#[from] AppError),
}

/// `switchboard deploy <dir>`.
pub async fn deploy(
    client: &Client,
    dir: &Path,
    prune: bool,
    default: bool,
) -> Result<String, CliError> {
    let (manifest, sources) = read_dir(dir)?;
    let manifest_path = dir.join("app.toml");
    let raw = std::fs::read_to_string(&manifest_path).map_err(|source| AppError::Read {
        path: manifest_path.clone(),
        source,
    })?;
    // Only what app.toml states is replaced; absent keys keep the server's.
    let stated: toml::Table =
        toml::from_str(&raw).map_err(|e| AppError::Manifest(e.to_string()))?;
    let scenarios: BTreeMap<String, String> = sources.into_iter().collect();
    let mut body = json!({
        "rules": manifest.rules,
        "scenarios": scenarios,
        "prune": prune,
        "default": default,
    });
    if stated.contains_key("numbers") {
        body["numbers"] = json!(manifest.numbers);
    }
    if stated.contains_key("domains") {
        body["domains"] = json!(manifest.domains);
    }
    if stated.contains_key("allowed_hosts") {
        body["allowed_hosts"] = json!(manifest.allowed_hosts);
    }
    let report: Value = client
        .call(
            Method::PUT,
            &format!("/deployments/{}", segment(&manifest.name)),
            &[],
            Some(&body),
        )
        .await?;
    let app = &report["application"];
    let mut out = String::new();
    let verb = if report["created"].as_bool() == Some(true) {
        "created"
    } else if report["changed"].as_bool() == Some(true) {
        "updated"
    } else {
        "unchanged"
    };
    let _ = writeln!(
        out,
        "application {} ({}): {verb}",
        text(&app["name"]),
        text(&app["id"])
    );
    for scenario in report["scenarios"].as_array().into_iter().flatten() {
        let version = match scenario["version"].as_u64() {
            Some(v) => format!(" v{v}"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "  scenario {}{version}: {}",
            text(&scenario["name"]),
            text(&scenario["status"])
        );
    }
    let rules = if report["rules_changed"].as_bool() == Some(true) {
        "updated"
    } else {
        "unchanged"
    };
    let _ = writeln!(out, "  rules: {rules}");
    Ok(out)
}

/// `switchboard apps`.
pub async fn apps(client: &Client) -> Result<String, CliError> {
    let apps: Vec<Value> = client.get("/applications", &[]).await?;
    let mut out = String::new();
    for app in &apps {
        let default = if app["default"].as_bool() == Some(true) {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{}  {}{default}  numbers: {}  domains: {}",
            text(&app["id"]),
            text(&app["name"]),
            list(&app["numbers"]),
            list(&app["domains"]),
        );
    }
    if apps.is_empty() {
        out.push_str("no applications\n");
    }
    Ok(out)
}

/// `switchboard calls [--app APP]`.
pub async fn calls(client: &Client, app: Option<&str>) -> Result<String, CliError> {
    let query: Vec<(&str, &str)> = app.map(|a| ("application", a)).into_iter().collect();
    let calls: Vec<Value> = client.get("/calls", &query).await?;
    let mut out = String::new();
    for call in &calls {
        let route = match call["scenario"].as_str() {
            Some(scenario) => format!(
                "{} → {scenario} v{}",
                text(&call["rule"]),
                call["scenario_version"].as_u64().unwrap_or(0)
            ),
            None => "not routed".to_string(),
        };
        let conference = call["conference"]
            .as_str()
            .map(|c| format!("  in {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}  {}  {} → {}  {}  {route}  {}s{conference}",
            text(&call["id"]),
            text(&call["application"]),
            text(&call["from"]),
            text(&call["destination"]),
            text(&call["state"]),
            call["duration_ms"].as_u64().unwrap_or(0) / 1000,
        );
    }
    if calls.is_empty() {
        out.push_str("no live calls\n");
    }
    Ok(out)
}

/// `switchboard logs <call>`: a live call's log so far, or a finished one's.
pub async fn logs(client: &Client, call: &str) -> Result<String, CliError> {
    let log: Value = client
        .get(&format!("/calls/{}/log", segment(call)), &[])
        .await?;
    let mut out = String::new();
    for line in log["lines"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{} {:5} {}",
            clock(line["at"].as_u64().unwrap_or(0)),
            text(&line["level"]),
            text(&line["message"])
        );
    }
    if log["live"].as_bool() == Some(true) {
        out.push_str("(call in progress)\n");
    }
    Ok(out)
}

/// `switchboard route <app> <destination>`.
pub async fn route(client: &Client, app: &str, destination: &str) -> Result<String, CliError> {
    let explanation: Value = client
        .get(
            &format!("/applications/{}/route", segment(app)),
            &[("destination", destination)],
        )
        .await?;
    let mut out = String::new();
    for step in explanation["steps"].as_array().into_iter().flatten() {
        let _ = writeln!(out, "{}: {}", text(&step["rule"]), text(&step["reason"]));
    }
    match explanation["matched"].as_str() {
        Some(rule) => {
            let _ = writeln!(
                out,
                "{destination:?} routes to rule {rule} (scenario {}{})",
                text(&explanation["scenario"]),
                if explanation["conference"].as_bool() == Some(true) {
                    ", conference"
                } else {
                    ""
                }
            );
        }
        None => {
            let _ = writeln!(out, "no rule matches {destination:?}: the call gets 404");
        }
    }
    Ok(out)
}

/// `switchboard history [--app APP] [--limit N]`.
pub async fn history(client: &Client, app: Option<&str>, limit: u32) -> Result<String, CliError> {
    let limit = limit.to_string();
    let mut query = vec![("limit", limit.as_str())];
    if let Some(app) = app {
        query.push(("application", app));
    }
    let page: Value = client.get("/history", &query).await?;
    let mut out = String::new();
    for call in page["items"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{}  {}  {} → {}  {} ({}, SIP {})  {}s",
            clock(call["started_at"].as_u64().unwrap_or(0)),
            text(&call["id"]),
            text(&call["from"]),
            text(&call["destination"]),
            text(&call["result"]),
            text(&call["end_reason"]),
            call["sip_code"]
                .as_u64()
                .map_or("-".to_string(), |c| c.to_string()),
            call["duration_ms"].as_u64().unwrap_or(0) / 1000,
        );
    }
    Ok(out)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn list(value: &Value) -> String {
    let items: Vec<String> = value.as_array().into_iter().flatten().map(text).collect();
    if items.is_empty() {
        "-".to_string()
    } else {
        items.join(",")
    }
}

/// `HH:MM:SS.mmm` (UTC) of a time in ms since the epoch.
fn clock(ms: u64) -> String {
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03}Z",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00.000Z");
        assert_eq!(clock(86_400_000 + 3_723_004), "01:02:03.004Z");
    }
}
