//! A whole simulated run of a scenario: load it (with its application's
//! modules and rules), script calls, dials and HTTP answers, run on virtual
//! time until every instance ended, and get the merged timeline.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use switchboard_scenarios::sim::{SimCall, SimDial, Simulation};
//! // Under #[tokio::test(start_paused = true)] this takes no real time.
//! let report = Simulation::from_file("examples/ivr/ivr.js".as_ref())?
//!     .call(SimCall::builder("caller").dtmf_on_prompt("1"))
//!     .any_dial(SimDial::answer_after(Duration::from_secs(2)))
//!     .run()
//!     .await;
//! print!("{}", report.timeline);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use switchboard_rules::{Rule, RuleError, RuleSet};

use super::call::{SimCall, SimCallBuilder};
use super::dial::{SimDial, SimFetch};
use super::host::SimHost;
use super::timeline::{SimEvent, Timeline};
use crate::host::{CallControl, CallState};
use crate::{CallContext, CompileError, Limits, Scenario};

/// How long a simulation may run (virtual time) unless told otherwise.
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(300);
/// After the limit, how long calls get to end once hung up.
const WIND_DOWN: Duration = Duration::from_secs(30);
/// The rule name a directly started scenario sees in `ctx.rule`.
const TEST_RULE: &str = "test-scenario";

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Compile(#[from] CompileError),
    #[error("invalid app.toml: {0}")]
    Manifest(String),
    #[error(transparent)]
    Rules(#[from] RuleError),
}

/// `app.toml` as far as the simulator cares.
#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    rules: Vec<Rule>,
}

/// A scenario run against simulated calls (see the module docs).
pub struct Simulation {
    scenario: Scenario,
    app: Option<(RuleSet, HashMap<String, Scenario>)>,
    limits: Limits,
    /// Calls and when they arrive.
    calls: Vec<(Duration, SimCallBuilder)>,
    start: bool,
    custom_data: serde_json::Value,
    destination: String,
    dials: Vec<(String, SimDial)>,
    any_dial: Option<SimDial>,
    fetch: SimFetch,
    media_lengths: HashMap<String, Duration>,
    max_duration: Duration,
}

impl Simulation {
    pub fn new(scenario: Scenario) -> Simulation {
        Simulation {
            scenario,
            app: None,
            limits: Limits::default(),
            calls: Vec::new(),
            start: false,
            custom_data: serde_json::Value::Null,
            destination: "test".to_string(),
            dials: Vec::new(),
            any_dial: None,
            fetch: SimFetch::default(),
            media_lengths: HashMap::new(),
            max_duration: DEFAULT_MAX_DURATION,
        }
    }

    /// A scenario from source (no modules, no rules).
    pub fn from_source(name: &str, source: &str) -> Result<Simulation, SimError> {
        Ok(Simulation::new(Scenario::compile(name, source)?))
    }

    /// A scenario file of an application directory: the other `*.js` files
    /// there are modules it may import, and the rules of its `app.toml` (if
    /// any) route `routeTo` targets to the application's scenarios.
    pub fn from_file(path: &Path) -> Result<Simulation, SimError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| SimError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let source = read(path)?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("scenario")
            .to_string();
        let mut modules = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|source| SimError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        for entry in entries.flatten() {
            let file = entry.path();
            if file.extension().and_then(|e| e.to_str()) != Some("js") || file == path {
                continue;
            }
            if let Some(name) = file.file_stem().and_then(|s| s.to_str()) {
                modules.insert(name.to_string(), read(&file)?);
            }
        }
        let scenario = Scenario::compile_with_modules(&format!("{stem}.js"), &source, &modules)?;
        let mut simulation = Simulation::new(scenario.clone());
        let manifest = dir.join("app.toml");
        if manifest.is_file() {
            let manifest: Manifest =
                toml::from_str(&read(&manifest)?).map_err(|e| SimError::Manifest(e.to_string()))?;
            let rules = RuleSet::new(manifest.rules)?;
            let mut scenarios = HashMap::from([(stem.clone(), scenario)]);
            for rule in rules.rules() {
                if scenarios.contains_key(&rule.scenario) {
                    continue;
                }
                let Some(source) = modules.get(&rule.scenario) else {
                    return Err(SimError::Manifest(format!(
                        "rule {} runs scenario {}, which has no {}.js",
                        rule.name, rule.scenario, rule.scenario
                    )));
                };
                let name = format!("{}.js", rule.scenario);
                let compiled = Scenario::compile_with_modules(&name, source, &modules)?;
                scenarios.insert(rule.scenario.clone(), compiled);
            }
            simulation.app = Some((rules, scenarios));
        }
        Ok(simulation)
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// An incoming call for the scenario, arriving at the start (its id
    /// must be unique).
    pub fn call(self, call: SimCallBuilder) -> Self {
        self.call_at(Duration::ZERO, call)
    }

    /// An incoming call arriving `at` (its script's times count from then).
    pub fn call_at(mut self, at: Duration, call: SimCallBuilder) -> Self {
        self.calls.push((at, call));
        self
    }

    /// Runs `onStart(ctx)` too (as the HTTP API's "start a scenario" does).
    pub fn on_start(mut self) -> Self {
        self.start = true;
        self
    }

    /// `ctx.customData` of the scenario.
    pub fn custom_data(mut self, data: serde_json::Value) -> Self {
        self.custom_data = data;
        self
    }

    /// `ctx.destination` (and, when the application's rules route it to
    /// this scenario, the rule that is used: e.g. a conference rule).
    pub fn destination(mut self, destination: &str) -> Self {
        self.destination = destination.to_string();
        self
    }

    /// What dialing URIs matching `pattern` (a glob) does.
    pub fn dial(mut self, pattern: &str, dial: SimDial) -> Self {
        self.dials.push((pattern.to_string(), dial));
        self
    }

    /// What dialing any other URI does (default: answered after 1 s).
    pub fn any_dial(mut self, dial: SimDial) -> Self {
        self.any_dial = Some(dial);
        self
    }

    /// `fetch`es of URLs starting with `prefix` get `status` and `body`
    /// (others are not allowed).
    pub fn respond(mut self, prefix: &str, status: u16, body: &str) -> Self {
        self.fetch.respond(prefix, status, body);
        self
    }

    /// How long playing a file or URL takes (tones take what their spec
    /// says; others 3 s).
    pub fn media_length(mut self, source: &str, length: Duration) -> Self {
        self.media_lengths.insert(source.to_string(), length);
        self
    }

    /// The longest the run may take (virtual time); then every call is hung
    /// up. Default 5 minutes.
    pub fn max_duration(mut self, limit: Duration) -> Self {
        self.max_duration = limit;
        self
    }

    /// Runs until every instance has ended (or the time limit). Needs a
    /// tokio runtime; with paused time it takes no real time.
    pub async fn run(self) -> SimReport {
        let host = SimHost::with_limits(self.limits.clone());
        self.configure(&host);
        // Which rule a call to the destination hits, if it runs this scenario.
        let routed_here = self.app.as_ref().and_then(|(rules, scenarios)| {
            let found = rules.route(&self.destination)?;
            let scenario = scenarios.get(&found.rule.scenario)?;
            scenario
                .same_as(&self.scenario)
                .then(|| found.rule.name.clone())
        });
        if self.start {
            if let Err(e) = host
                .start_scenario(&self.scenario, self.custom_data.clone())
                .await
            {
                host.note_text(&format!("the scenario did not start: {e}"));
            }
        }
        let arrivals = Arrivals {
            host: host.clone(),
            scenario: self.scenario.clone(),
            destination: self.destination.clone(),
            custom_data: self.custom_data.clone(),
            routed_here: routed_here.is_some(),
            media_lengths: self.media_lengths.clone(),
        };
        let mut calls = self.calls;
        calls.sort_by_key(|(at, _)| *at);
        let run = async {
            let started = tokio::time::Instant::now();
            for (at, builder) in calls {
                tokio::time::sleep_until(started + at).await;
                arrivals.arrive(builder).await;
            }
            all_closed(&host).await;
        };
        let finished = tokio::time::timeout(self.max_duration, run).await.is_ok();
        if !finished {
            host.note_text(&format!(
                "time limit of {:?} reached: hanging up every call",
                self.max_duration
            ));
            for call in host.calls() {
                if call.state() != CallState::Ended {
                    call.remote_hangup();
                }
            }
            let _ = tokio::time::timeout(WIND_DOWN, all_closed(&host)).await;
        }
        SimReport {
            timeline: host.timeline(),
            host,
            timed_out: !finished,
        }
    }

    fn configure(&self, host: &SimHost) {
        if let Some((rules, scenarios)) = &self.app {
            host.set_application(rules.clone(), scenarios.clone());
        }
        for (pattern, dial) in &self.dials {
            host.on_dial(pattern, dial.clone());
        }
        if let Some(dial) = &self.any_dial {
            host.on_any_dial(dial.clone());
        }
        host.set_fetch(self.fetch.clone());
        for (source, length) in &self.media_lengths {
            host.media_length(source, *length);
        }
    }
}

/// Hands arriving calls to the scenario.
struct Arrivals {
    host: Arc<SimHost>,
    scenario: Scenario,
    destination: String,
    custom_data: serde_json::Value,
    /// The application's rules send the destination to this scenario.
    routed_here: bool,
    media_lengths: HashMap<String, Duration>,
}

impl Arrivals {
    async fn arrive(&self, builder: SimCallBuilder) {
        let call = builder
            .destination(&self.destination)
            .media_lengths(&self.media_lengths)
            .build();
        let started = if self.routed_here {
            self.host
                .dispatch_with(call.clone(), &self.destination, self.custom_data.clone())
                .await
                .map_err(|e| e.to_string())
        } else {
            let ctx = CallContext {
                rule: TEST_RULE.to_string(),
                destination: self.destination.clone(),
                custom_data: self.custom_data.clone(),
            };
            self.host
                .start_call_with(&self.scenario, call.clone(), ctx)
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        };
        if let Err(e) = started {
            self.host
                .note_text(&format!("call {} did not start: {e}", call.info().id));
        }
    }
}

/// Waits until every instance the host started (also ones started meanwhile) ended.
async fn all_closed(host: &SimHost) {
    loop {
        let instances = host.instances();
        for instance in &instances {
            instance.closed().await;
        }
        if host.instances().len() == instances.len() {
            return;
        }
    }
}

/// What a [`Simulation`] produced.
pub struct SimReport {
    pub host: Arc<SimHost>,
    /// Everything that happened, in order.
    pub timeline: Timeline,
    /// The run hit its time limit.
    pub timed_out: bool,
}

impl SimReport {
    /// A call of the run by id (`dial-1`, ... for dialed calls).
    pub fn call(&self, id: &str) -> Option<Arc<SimCall>> {
        self.host.call(id)
    }

    /// Log lines containing `text`.
    pub fn logs_containing(&self, text: &str) -> Vec<String> {
        self.host
            .logs_containing(text)
            .into_iter()
            .map(|l| l.message)
            .collect()
    }

    /// Whether the scenario failed (an error ended an instance).
    pub fn failed(&self) -> bool {
        self.timeline.saw(|e| {
            matches!(&e.event, SimEvent::Log { level: crate::LogLevel::Error, message }
                if message.contains(" failed: "))
        })
    }
}

impl std::fmt::Display for SimReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.timeline)
    }
}
