//! Deploying an application from a directory's contents (the GitOps path):
//! one atomic, idempotent sync. Scenarios whose source changed get a new
//! version, unchanged ones are left alone; the rules become exactly the
//! given list, in order; numbers, domains and allowed hosts are replaced
//! when given. Scenarios missing from the directory are kept (with their
//! history) unless `prune` is set. Deploying the same directory twice
//! changes nothing the second time.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_rules::Rule;
use tracing::info;
use utoipa::ToSchema;

use super::names::{check_name, NameKind};
use super::{new_id, now_ms, Control, Draft, Result};
use crate::storage::AppRecord;

/// What to deploy.
#[derive(Debug, Clone, Default)]
pub struct DeploySpec {
    pub name: String,
    pub rules: Vec<Rule>,
    /// Scenario sources by name.
    pub scenarios: BTreeMap<String, String>,
    pub numbers: Option<Vec<String>>,
    pub domains: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
    /// Delete scenarios that are not in `scenarios`.
    pub prune: bool,
}

/// What happened to one scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ScenarioChange {
    pub name: String,
    /// The live version after the deploy (absent when deleted).
    pub version: Option<u32>,
    /// `created`, `updated`, `unchanged` or `deleted`.
    pub status: &'static str,
}

/// The outcome of a deploy.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeployReport {
    pub application: AppRecord,
    /// The application did not exist before.
    pub created: bool,
    /// Anything was written at all.
    pub changed: bool,
    pub rules_changed: bool,
    pub scenarios: Vec<ScenarioChange>,
}

impl Control {
    /// Creates or syncs application `spec.name` of `account`.
    pub async fn deploy(&self, account: &str, spec: DeploySpec) -> Result<DeployReport> {
        check_name(NameKind::Application, &spec.name)?;
        for name in spec.scenarios.keys() {
            check_name(NameKind::Scenario, name)?;
        }
        let _guard = self.inner.writes.lock().await;
        let existing = self.storage().app_by_name(account, &spec.name).await?;
        let (mut draft, created) = match existing {
            Some(record) => (
                Draft::from_stored(self.stored_app(&record.id).await?),
                false,
            ),
            None => {
                let now = now_ms();
                let record = AppRecord {
                    id: new_id("app_"),
                    account: account.to_string(),
                    name: spec.name.clone(),
                    numbers: Vec::new(),
                    domains: Vec::new(),
                    allowed_hosts: Vec::new(),
                    created_at: now,
                    updated_at: now,
                };
                (Draft::new_app(record)?, true)
            }
        };
        let mut record = draft.record.clone();
        if let Some(numbers) = spec.numbers {
            record.numbers = numbers;
        }
        if let Some(domains) = spec.domains {
            record.domains = domains;
        }
        if let Some(hosts) = spec.allowed_hosts {
            record.allowed_hosts = hosts;
        }
        draft.set_record(record)?;

        let had: Vec<String> = draft.scenario_names();
        let mut scenarios = Vec::new();
        for (name, source) in &spec.scenarios {
            let upload = draft.upload(name, source.clone());
            let status = match (upload.created, had.contains(name)) {
                (false, _) => "unchanged",
                (true, true) => "updated",
                (true, false) => "created",
            };
            scenarios.push(ScenarioChange {
                name: name.clone(),
                version: Some(upload.version),
                status,
            });
        }
        let rules_before = draft.rules.clone();
        draft.set_rules(spec.rules)?;
        let rules_changed = draft.rules != rules_before;
        if spec.prune {
            for name in had.iter().filter(|n| !spec.scenarios.contains_key(*n)) {
                draft.delete_scenario(name)?;
                scenarios.push(ScenarioChange {
                    name: name.clone(),
                    version: None,
                    status: "deleted",
                });
            }
        }
        let changed = draft.has_changes();
        self.commit(&mut draft).await?;
        let application = self.stored_app(&draft.record.id).await?.record;
        if changed {
            info!(app = %application.id, name = %application.name, created, "application deployed");
        }
        Ok(DeployReport {
            application,
            created,
            changed,
            rules_changed,
            scenarios,
        })
    }
}
