//! The JavaScript scenario runtime.
//!
//! A [`Scenario`] is compiled JavaScript (an ES module whose default export
//! has `onCall`, `onConference`, `onStart`). A [`ScenarioInstance`] is one
//! QuickJS runtime + context running that module; it receives calls with
//! [`ScenarioInstance::on_call`]. The instance reaches calls, conferences and
//! the engine only through the traits in [`host`], so the same scenario runs
//! against real SIP calls in the engine and against simulated calls in tests.
//!
//! INTERFACE SKELETON: signatures are the contract; implementation in progress.

pub mod host;

use std::sync::Arc;
use std::time::Duration;

pub use host::{
    CallControl, CallError, CallEvent, CallInfo, CallState, ConferenceControl, ConferenceError,
    ConferenceEvent, LogLevel, MediaOutcome, ParticipantOptions, RouteError, SayOptions,
    ScenarioHost,
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 16 * 1024 * 1024,
            cpu_per_callback: Duration::from_secs(1),
            max_timers: 1000,
        }
    }
}

/// Compiled scenario source, ready to instantiate many times. Cheap to clone.
#[derive(Clone)]
pub struct Scenario {
    _private: Arc<()>,
}

impl Scenario {
    /// Compiles (checks) an ES module. `name` is used in errors and logs.
    pub fn compile(_name: &str, _source: &str) -> Result<Scenario, CompileError> {
        todo!()
    }
    pub fn name(&self) -> &str {
        todo!()
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

/// A running scenario instance. Cheap to clone.
#[derive(Clone)]
pub struct ScenarioInstance {
    _private: Arc<()>,
}

impl ScenarioInstance {
    /// Creates the runtime and context and evaluates the module. For a
    /// conference instance (`conference` is `Some`), `onConference` runs
    /// before this returns... or before the first `onCall`.
    pub async fn start(
        _scenario: &Scenario,
        _ctx: InstanceContext,
        _host: Arc<dyn ScenarioHost>,
        _limits: Limits,
        _conference: Option<Arc<dyn ConferenceControl>>,
    ) -> Result<ScenarioInstance, ScenarioError> {
        todo!()
    }
    /// Hands a call to the instance: `onCall(call, ctx)` runs. Fails with
    /// [`ScenarioError::Closed`] if the instance already ended (the engine
    /// then starts a fresh instance).
    pub fn on_call(
        &self,
        _call: Arc<dyn CallControl>,
        _ctx: CallContext,
    ) -> Result<(), ScenarioError> {
        todo!()
    }
    /// Resolves when the instance has ended: it has no calls left and its
    /// handlers settled, or a fatal error ended it (its calls were ended).
    pub async fn closed(&self) {
        todo!()
    }
}
