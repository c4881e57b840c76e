//! An application being changed: its stored state plus pending writes.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use switchboard_rules::Rule;

use super::names::{check_name, normalize_routes, NameKind};
use super::{ControlError, Result};
use crate::app::{AppSpec, Application, ScenarioSource};
use crate::storage::{AppRecord, AppWrite, ScenarioVersion, StoredApp};

/// The outcome of uploading a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Upload {
    /// The live version now.
    pub version: u32,
    /// False when the source equalled the live version: nothing was stored.
    pub created: bool,
}

pub struct Draft {
    pub record: AppRecord,
    pub rules: Vec<Rule>,
    /// Live version of each scenario.
    scenarios: BTreeMap<String, ScenarioVersion>,
    /// Newest version number of each scenario (live or not).
    latest: BTreeMap<String, u32>,
    writes: Vec<AppWrite>,
    /// Not stored yet.
    is_new: bool,
}

pub(crate) fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Draft {
    pub fn from_stored(stored: StoredApp) -> Draft {
        Draft {
            record: stored.record,
            rules: stored.rules,
            scenarios: stored.scenarios,
            latest: stored.latest,
            writes: Vec::new(),
            is_new: false,
        }
    }

    /// A new, empty application.
    pub fn new_app(record: AppRecord) -> Result<Draft> {
        let mut draft = Draft {
            record: record.clone(),
            rules: Vec::new(),
            scenarios: BTreeMap::new(),
            latest: BTreeMap::new(),
            writes: Vec::new(),
            is_new: true,
        };
        draft.set_record(record)?;
        Ok(draft)
    }

    pub fn has_changes(&self) -> bool {
        !self.writes.is_empty()
    }

    pub(super) fn take_writes(&mut self) -> Vec<AppWrite> {
        std::mem::take(&mut self.writes)
    }

    /// Replaces the record (name, numbers, domains, allowed hosts), checked
    /// and normalised. The record is saved first so a new application
    /// exists before its scenarios.
    pub fn set_record(&mut self, mut record: AppRecord) -> Result<()> {
        check_name(NameKind::Application, &record.name)?;
        normalize_routes(&mut record)?;
        if !self.is_new && record == self.record {
            return Ok(());
        }
        self.record = record;
        self.writes.retain(|w| !matches!(w, AppWrite::Save(_)));
        self.writes.insert(0, AppWrite::Save(self.record.clone()));
        Ok(())
    }

    /// A new live version of scenario `name`, unless `source` is the live one.
    pub fn upload(&mut self, name: &str, source: String) -> Upload {
        let sha256 = sha256_hex(&source);
        if let Some(live) = self.scenarios.get(name) {
            if live.sha256 == sha256 && live.source == source {
                return Upload {
                    version: live.version,
                    created: false,
                };
            }
        }
        let version = self.latest.get(name).copied().unwrap_or(0) + 1;
        self.latest.insert(name.to_string(), version);
        self.scenarios.insert(
            name.to_string(),
            ScenarioVersion {
                name: name.to_string(),
                version,
                source: source.clone(),
                sha256: sha256.clone(),
                created_at: 0,
            },
        );
        self.writes.push(AppWrite::AddVersion {
            scenario: name.to_string(),
            version,
            source,
            sha256,
        });
        Upload {
            version,
            created: true,
        }
    }

    /// Makes a stored version live.
    pub fn make_live(&mut self, version: ScenarioVersion) -> Result<()> {
        if !self.scenarios.contains_key(&version.name) {
            return Err(ControlError::NotFound(format!(
                "no scenario {}",
                version.name
            )));
        }
        self.writes.push(AppWrite::SetLive {
            scenario: version.name.clone(),
            version: version.version,
        });
        self.scenarios.insert(version.name.clone(), version);
        Ok(())
    }

    /// Deletes a scenario no rule runs.
    pub fn delete_scenario(&mut self, name: &str) -> Result<()> {
        if !self.scenarios.contains_key(name) {
            return Err(ControlError::NotFound(format!("no scenario {name}")));
        }
        if let Some(rule) = self.rules.iter().find(|r| r.scenario == name) {
            return Err(ControlError::Conflict(format!(
                "rule {:?} runs scenario {name}; change or delete the rule first",
                rule.name
            )));
        }
        self.scenarios.remove(name);
        self.latest.remove(name);
        self.writes.push(AppWrite::DeleteScenario {
            scenario: name.to_string(),
        });
        Ok(())
    }

    /// Scenario names, sorted.
    pub fn scenario_names(&self) -> Vec<String> {
        self.scenarios.keys().cloned().collect()
    }

    /// Replaces the rules (validated when the draft is built).
    pub fn set_rules(&mut self, rules: Vec<Rule>) -> Result<()> {
        for rule in &rules {
            check_name(NameKind::Rule, &rule.name)?;
        }
        if rules == self.rules {
            return Ok(());
        }
        self.rules = rules.clone();
        self.writes.retain(|w| !matches!(w, AppWrite::SetRules(_)));
        self.writes.push(AppWrite::SetRules(rules));
        Ok(())
    }

    /// Validates and compiles the application as the draft has it.
    pub fn build(&self) -> Result<Application> {
        Ok(Application::new(AppSpec {
            id: self.record.id.clone(),
            account: self.record.account.clone(),
            name: self.record.name.clone(),
            rules: self.rules.clone(),
            scenarios: self
                .scenarios
                .values()
                .map(|v| ScenarioSource {
                    name: v.name.clone(),
                    source: v.source.clone(),
                    version: v.version,
                })
                .collect(),
            allowed_hosts: self.record.allowed_hosts.clone(),
            media_dir: None,
        })?)
    }
}
