//! Applications: ordered rules and the scenarios they run, owned by an
//! account.
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

/// The account that owns applications loaded from a directory.
pub const DEFAULT_ACCOUNT: &str = "default";

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

/// `app.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// SIP domains (Request-URI hosts) that reach this application.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Numbers (Request-URI users) that reach this application.
    #[serde(default)]
    pub numbers: Vec<String>,
    /// Hosts scenarios may `fetch` from.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// One scenario's source as stored: every upload is a new version.
#[derive(Debug, Clone)]
pub struct ScenarioSource {
    pub name: String,
    pub source: String,
    pub version: u32,
}

/// Everything needed to build an [`Application`].
#[derive(Debug, Clone)]
pub struct AppSpec {
    /// Stable id, unique across accounts.
    pub id: String,
    /// Owning account (tenant).
    pub account: String,
    pub name: String,
    pub rules: Vec<Rule>,
    pub scenarios: Vec<ScenarioSource>,
    /// Hosts scenarios may `fetch` from (empty: none).
    pub allowed_hosts: Vec<String>,
    /// Where `play("file.wav")` looks for media files, if anywhere.
    pub media_dir: Option<PathBuf>,
}

/// A compiled scenario and the version it came from.
#[derive(Clone)]
pub struct ScenarioEntry {
    pub scenario: Scenario,
    pub version: u32,
}

/// A loaded, validated application. Immutable: a change builds a new one,
/// so calls in progress keep the version they started with.
pub struct Application {
    pub id: String,
    pub account: String,
    pub name: String,
    pub rules: RuleSet,
    pub allowed_hosts: Vec<String>,
    pub media_dir: Option<PathBuf>,
    scenarios: HashMap<String, ScenarioEntry>,
}

impl Application {
    /// Validates and compiles an application.
    pub fn new(spec: AppSpec) -> Result<Application, AppError> {
        let rules = RuleSet::new(spec.rules)?;
        // Every scenario may import the others (`import ... from "./name.js"`).
        let modules: Vec<(String, String)> = spec
            .scenarios
            .iter()
            .map(|s| (s.name.clone(), s.source.clone()))
            .collect();
        let mut scenarios = HashMap::new();
        for ScenarioSource {
            name,
            source,
            version,
        } in spec.scenarios
        {
            let others = modules.iter().filter(|(other, _)| *other != name);
            let scenario = compile_scenario_with(&name, &source, others.cloned())?;
            scenarios.insert(name, ScenarioEntry { scenario, version });
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
            id: spec.id,
            account: spec.account,
            name: spec.name,
            rules,
            allowed_hosts: spec.allowed_hosts,
            media_dir: spec.media_dir,
            scenarios,
        })
    }

    /// Loads `app.toml` and every `*.js` file of `dir` (the application id
    /// is its name, in the default account; `media/` holds its audio files).
    pub fn load_dir(dir: &Path) -> Result<Application, AppError> {
        let (manifest, sources) = read_dir(dir)?;
        let media = dir.join("media");
        Application::from_manifest(manifest, sources, media.is_dir().then_some(media))
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
        Application::from_manifest(parse_manifest(manifest)?, sources, None)
    }

    fn from_manifest(
        manifest: Manifest,
        sources: Vec<(String, String)>,
        media_dir: Option<PathBuf>,
    ) -> Result<Application, AppError> {
        Application::new(AppSpec {
            id: manifest.name.clone(),
            account: DEFAULT_ACCOUNT.to_string(),
            name: manifest.name,
            rules: manifest.rules,
            scenarios: sources
                .into_iter()
                .map(|(name, source)| ScenarioSource {
                    name,
                    source,
                    version: 1,
                })
                .collect(),
            allowed_hosts: manifest.allowed_hosts,
            media_dir,
        })
    }

    /// Whether scenarios may reach `host` (`fetch`, `play` of a URL): listed
    /// exactly, or under a `*.example.com` wildcard.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            match allowed.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => host == allowed,
            }
        })
    }

    pub fn scenario(&self, name: &str) -> Option<&ScenarioEntry> {
        self.scenarios.get(name)
    }

    /// Scenario names, sorted.
    pub fn scenario_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.scenarios.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

/// Parses `app.toml` text.
pub fn parse_manifest(text: &str) -> Result<Manifest, AppError> {
    toml::from_str(text).map_err(|e| AppError::Manifest(e.to_string()))
}

/// Reads an application directory: its manifest and `(name, source)` of
/// every `*.js` file.
pub fn read_dir(dir: &Path) -> Result<(Manifest, Vec<(String, String)>), AppError> {
    let read = |path: PathBuf| {
        std::fs::read_to_string(&path).map_err(|source| AppError::Read { path, source })
    };
    let manifest = parse_manifest(&read(dir.join("app.toml"))?)?;
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
    sources.sort();
    Ok((manifest, sources))
}

/// Compiles one scenario alone, refusing oversized sources.
pub fn compile_scenario(name: &str, source: &str) -> Result<Scenario, AppError> {
    compile_scenario_with(name, source, std::iter::empty::<(String, String)>())
}

/// Compiles one scenario that may import `modules` (`(name, source)` of the
/// application's other scripts).
pub fn compile_scenario_with(
    name: &str,
    source: &str,
    modules: impl IntoIterator<Item = (String, String)>,
) -> Result<Scenario, AppError> {
    if source.len() > MAX_SCENARIO_BYTES {
        return Err(AppError::TooLarge {
            name: name.to_string(),
            size: source.len(),
        });
    }
    Scenario::compile_with_modules(&format!("{name}.js"), source, modules)
        .map_err(|e| AppError::Compile(name.to_string(), e))
}
