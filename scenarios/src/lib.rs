//! The JavaScript scenario runtime.
//!
//! A [`Scenario`] is compiled JavaScript (an ES module whose default export
//! has `onCall`, `onConference`, `onStart`). A [`ScenarioInstance`] is one
//! QuickJS runtime + context running that module; it receives calls with
//! [`ScenarioInstance::on_call`]. The instance reaches calls, conferences and
//! the engine only through the traits in [`host`], so the same scenario runs
//! against real SIP calls in the engine and against simulated calls ([`sim`])
//! in tests.
//!
//! Inside, an instance is one tokio task running a small event loop: host
//! operations (answer, say, route, ...) run as their own tasks and report back
//! through a channel; each report, call event, conference event or timer is
//! one short JavaScript turn (the callback plus its promise jobs) under the
//! CPU limit. JavaScript values never leave that task.

mod compile;
mod driver;
mod handlers;
pub mod host;
mod instance;
mod js;
pub mod sim;
pub mod source;
mod state;
pub mod tone;

mod calls;
mod collect;
mod collecting;
mod conf_events;
mod cpu;
mod ops;
mod settle;
mod timers;
mod turn;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use host::{
    CallControl, CallError, CallEvent, CallInfo, CallState, ConferenceControl, ConferenceError,
    ConferenceEvent, ConferenceOptions, DialError, DialOptions, FetchError, FetchRequest,
    FetchResponse, LogLevel, MediaOutcome, ParticipantInfo, ParticipantOptions, ParticipantUpdate,
    PlayOptions, RecordOptions, RecordingInfo, RouteError, SayOptions, ScenarioHost,
};

/// A scenario failed to compile.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{name}:{line}:{column}: {message}")]
pub struct CompileError {
    pub name: String,
    pub message: String,
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("scenario instance has ended")]
    Closed,
    #[error("scenario error: {0}")]
    Runtime(String),
}

/// Per-instance limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// QuickJS heap limit.
    pub memory_bytes: usize,
    /// Longest a single callback (one run of JS until it awaits) may take
    /// before it is interrupted.
    pub cpu_per_callback: Duration,
    /// Most timers (`setTimeout`/`setInterval`) alive at once.
    pub max_timers: usize,
    /// Longest a call may stay with one instance (from when the instance
    /// took it); then the call is ended and the instance goes on. `None`: no
    /// limit.
    pub max_call_duration: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 * 1024 * 1024,
            cpu_per_callback: Duration::from_secs(1),
            max_timers: 1000,
            max_call_duration: None,
        }
    }
}

/// Compiled scenario source, ready to instantiate many times. Cheap to clone.
#[derive(Clone)]
pub struct Scenario {
    compiled: Arc<compile::Compiled>,
}

impl Scenario {
    /// Compiles (checks) an ES module that imports nothing. `name` (e.g.
    /// `ivr.js`) is used in errors and logs.
    pub fn compile(name: &str, source: &str) -> Result<Scenario, CompileError> {
        Self::compile_with_modules(name, source, std::iter::empty::<(&str, &str)>())
    }

    /// Compiles an ES module that may import other modules of its
    /// application: `modules` maps their names (file stems such as
    /// `helpers`, or `helpers.js`) to their sources. `import {x} from
    /// "./helpers.js"` (or `"./helpers"`) resolves among them and nothing
    /// else can be imported. An error in an imported module is reported
    /// with that module's name and line. Only the modules actually imported
    /// are kept.
    pub fn compile_with_modules<I, K, V>(
        name: &str,
        source: &str,
        modules: I,
    ) -> Result<Scenario, CompileError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let modules: HashMap<String, String> = modules
            .into_iter()
            .map(|(k, v)| (compile::module_name(k.as_ref()), v.as_ref().to_string()))
            .filter(|(k, _)| *k != compile::module_name(name))
            .collect();
        let compiled = compile::compile(name, source, modules)?;
        Ok(Scenario {
            compiled: Arc::new(compiled),
        })
    }

    /// Whether `other` is this same compiled scenario.
    pub(crate) fn same_as(&self, other: &Scenario) -> bool {
        Arc::ptr_eq(&self.compiled, &other.compiled)
    }

    /// Names of the application modules it imports (directly or not).
    pub fn imported_modules(&self) -> Vec<String> {
        let mut names: Vec<String> = self.compiled.modules.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn name(&self) -> &str {
        &self.compiled.name
    }

    /// Size of the QuickJS bytecode every instance loads.
    pub fn bytecode_len(&self) -> usize {
        self.compiled.bytecode.len()
    }
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.compiled.name)
            .field("bytecode_len", &self.compiled.bytecode.len())
            .finish()
    }
}

/// What an instance knows about where it runs (`ctx` in JavaScript).
#[derive(Debug, Clone)]
pub struct InstanceContext {
    /// `ctx.app`
    pub app: String,
    /// `ctx.rule`: the rule that started the instance.
    pub rule: String,
    /// `ctx.destination`: what the rule matched.
    pub destination: String,
    /// `ctx.customData` for `onConference`/`onStart`.
    pub custom_data: serde_json::Value,
}

/// Per-call context passed with each call (`ctx` in `onCall`).
#[derive(Debug, Clone)]
pub struct CallContext {
    pub rule: String,
    pub destination: String,
    pub custom_data: serde_json::Value,
}

/// What an instance's JavaScript heap holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Bytes allocated by QuickJS (what the memory limit counts).
    pub allocated_bytes: u64,
    /// Live allocations.
    pub allocations: u64,
    /// JavaScript objects.
    pub objects: u64,
}

/// A running scenario instance. Cheap to clone.
#[derive(Clone)]
pub struct ScenarioInstance {
    handle: Arc<instance::Handle>,
}

impl ScenarioInstance {
    /// Creates the runtime and context and evaluates the module. For a
    /// conference instance (`conference` is `Some`), `onConference` runs
    /// before the first `onCall` (calls handed over meanwhile wait for it to
    /// settle).
    ///
    /// Fails with [`ScenarioError::Runtime`] (also written to the host log)
    /// when the module throws while evaluating, has no default export object,
    /// or `onConference` fails straight away.
    pub async fn start(
        scenario: &Scenario,
        ctx: InstanceContext,
        host: Arc<dyn ScenarioHost>,
        limits: Limits,
        conference: Option<Arc<dyn ConferenceControl>>,
    ) -> Result<ScenarioInstance, ScenarioError> {
        let handle = instance::start(scenario, ctx, host, limits, conference).await?;
        Ok(ScenarioInstance {
            handle: Arc::new(handle),
        })
    }

    /// Hands a call to the instance: `onCall(call, ctx)` runs. Fails with
    /// [`ScenarioError::Closed`] if the instance already ended (the engine
    /// then starts a fresh instance).
    pub fn on_call(
        &self,
        call: Arc<dyn CallControl>,
        ctx: CallContext,
    ) -> Result<(), ScenarioError> {
        self.handle.on_call(call, ctx)
    }

    /// Resolves when the instance has ended: it has no calls left and its
    /// handlers settled, or a fatal error ended it (its calls were ended).
    pub async fn closed(&self) {
        self.handle.closed().await
    }

    /// Runs `onStart(ctx)` (the scenario was started over the HTTP API, e.g.
    /// to place an outbound call with `ctx.dial`), with `ctx.customData` from
    /// the [`InstanceContext`]. The instance ends once `onStart` has settled
    /// and it has no calls left. Fails with [`ScenarioError::Closed`] if the
    /// instance already ended; a scenario without `onStart` fails the
    /// instance (the reason goes to the log).
    pub fn run_on_start(&self) -> Result<(), ScenarioError> {
        self.handle.run_on_start()
    }

    /// The QuickJS heap of the instance right now (`None` once it ended).
    pub async fn memory_usage(&self) -> Option<MemoryUsage> {
        self.handle.memory_usage().await
    }

    /// Whether the instance has ended (see [`ScenarioInstance::closed`]).
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// The name of the scenario it runs.
    pub fn scenario_name(&self) -> &str {
        self.handle.scenario_name()
    }
}

impl std::fmt::Debug for ScenarioInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioInstance")
            .field("scenario", &self.handle.scenario_name())
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}
