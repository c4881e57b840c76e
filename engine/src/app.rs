//! Applications: a name, ordered rules and the scenarios they run.
//!
//! An application directory holds `app.toml` (name and rules) and one
//! `<scenario>.js` ES module per scenario:
//!
//! ```toml
//! name = "anyroom"
//!
//! [[rules]]
//! name = "room"
//! pattern = "conf_.+"
//! scenario = "conference"
//! conference = true
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchboard_rules::{Rule, RuleError, RuleSet};
use switchboard_scenarios::{CompileError, Scenario};

/// Largest scenario source accepted.
pub const MAX_SCENARIO_BYTES: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid app.toml: {0}")]
    Manifest(String),
    #[error(transparent)]
    Rules(#[from] RuleError),
    #[error("rule {rule:?} runs scenario {scenario:?}, which does not exist")]
    MissingScenario { rule: String, scenario: String },
    #[error("scenario {0} does not compile: {1}")]
    Compile(String, CompileError),
    #[error("scenario {name} is {size} bytes; the limit is {MAX_SCENARIO_BYTES}")]
    TooLarge { name: String, size: usize },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

/// A loaded, validated application.
pub struct Application {
    pub name: String,
    pub rules: RuleSet,
    scenarios: HashMap<String, Scenario>,
}

impl Application {
    /// Loads `app.toml` and every `*.js` file of `dir`.
    pub fn load_dir(dir: &Path) -> Result<Application, AppError> {
        let read = |path: PathBuf| {
            std::fs::read_to_string(&path).map_err(|source| AppError::Read { path, source })
        };
        let manifest = read(dir.join("app.toml"))?;
        let entries = std::fs::read_dir(dir).map_err(|source| AppError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut sources = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|source| AppError::Read {
                    path: dir.to_path_buf(),
                    source,
                })?
                .path();
            if path.extension().and_then(|e| e.to_str()) != Some("js") {
                continue;
            }
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            sources.push((stem.to_string(), read(path.clone())?));
        }
        Application::from_sources(&manifest, sources)
    }

    /// The `anyroom` example compiled into the binary, used when no
    /// application is given.
    pub fn builtin_anyroom() -> Result<Application, AppError> {
        Application::from_sources(
            include_str!("../../examples/anyroom/app.toml"),
            vec![
                (
                    "gateway".to_string(),
                    include_str!("../../examples/anyroom/gateway.js").to_string(),
                ),
                (
                    "conference".to_string(),
                    include_str!("../../examples/anyroom/conference.js").to_string(),
                ),
            ],
        )
    }

    /// Builds an application from `app.toml` text and `(name, source)` pairs.
    pub fn from_sources(
        manifest: &str,
        sources: Vec<(String, String)>,
    ) -> Result<Application, AppError> {
        let manifest: Manifest =
            toml::from_str(manifest).map_err(|e| AppError::Manifest(e.to_string()))?;
        let rules = RuleSet::new(manifest.rules)?;
        let mut scenarios = HashMap::new();
        for (name, source) in sources {
            if source.len() > MAX_SCENARIO_BYTES {
                return Err(AppError::TooLarge {
                    name,
                    size: source.len(),
                });
            }
            let scenario = Scenario::compile(&format!("{name}.js"), &source)
                .map_err(|e| AppError::Compile(name.clone(), e))?;
            scenarios.insert(name, scenario);
        }
        for rule in rules.rules() {
            if !scenarios.contains_key(&rule.scenario) {
                return Err(AppError::MissingScenario {
                    rule: rule.name.clone(),
                    scenario: rule.scenario.clone(),
                });
            }
        }
        Ok(Application {
            name: manifest.name,
            rules,
            scenarios,
        })
    }

    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.get(name)
    }

    /// Scenario names, sorted.
    pub fn scenario_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.scenarios.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}
