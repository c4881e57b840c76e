//! What happens in the engine, for whoever watches: storage (call history),
//! the live events WebSocket, metrics. Observers are called synchronously on
//! the engine's tasks, so they must be quick (queue, don't write).

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde::Serialize;
use switchboard_scenarios::LogLevel;

/// Which tenant and application an event belongs to.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Scope {
    pub account: String,
    pub app: String,
}

/// A line of a call's log (scenario `console.*` output and engine notes).
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    #[serde(serialize_with = "serialize_time")]
    pub at: SystemTime,
    #[serde(serialize_with = "serialize_level")]
    pub level: LogLevel,
    pub message: String,
}

/// The call history record of a finished call.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub id: String,
    #[serde(flatten)]
    pub scope: Scope,
    pub from: String,
    pub to: String,
    /// The destination the call first arrived on.
    pub destination: String,
    /// The last rule and scenario that handled the call.
    pub rule: Option<String>,
    pub scenario: Option<String>,
    pub scenario_version: Option<u32>,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    #[serde(serialize_with = "serialize_time")]
    pub started_at: SystemTime,
    #[serde(serialize_with = "serialize_opt_time")]
    pub answered_at: Option<SystemTime>,
    #[serde(serialize_with = "serialize_time")]
    pub ended_at: SystemTime,
    /// Why it ended: `remote-bye`, `local`, `cancelled`, `rejected`, ...
    pub end_reason: String,
    /// Final SIP status of the INVITE (200 when answered).
    pub sip_code: Option<u16>,
    pub log: Vec<LogLine>,
}

/// Something that happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EngineEvent {
    CallStarted {
        #[serde(flatten)]
        scope: Scope,
        call_id: String,
        from: String,
        to: String,
        destination: String,
        direction: &'static str,
    },
    CallRouted {
        #[serde(flatten)]
        scope: Scope,
        call_id: String,
        rule: String,
        scenario: String,
        destination: String,
    },
    CallAnswered {
        #[serde(flatten)]
        scope: Scope,
        call_id: String,
    },
    CallEnded {
        record: Box<CallRecord>,
    },
    Digit {
        #[serde(flatten)]
        scope: Scope,
        call_id: String,
        digit: char,
        source: String,
    },
    Log {
        #[serde(flatten)]
        scope: Scope,
        call_id: Option<String>,
        line: LogLine,
    },
    ParticipantJoined {
        #[serde(flatten)]
        scope: Scope,
        conference: String,
        call_id: String,
    },
    ParticipantLeft {
        #[serde(flatten)]
        scope: Scope,
        conference: String,
        call_id: String,
    },
    ParticipantTalking {
        #[serde(flatten)]
        scope: Scope,
        conference: String,
        call_id: String,
        talking: bool,
    },
    ScenarioError {
        #[serde(flatten)]
        scope: Scope,
        scenario: String,
        call_id: Option<String>,
        message: String,
    },
}

impl EngineEvent {
    /// The tenant and application, for filtering.
    pub fn scope(&self) -> &Scope {
        match self {
            EngineEvent::CallEnded { record } => &record.scope,
            EngineEvent::CallStarted { scope, .. }
            | EngineEvent::CallRouted { scope, .. }
            | EngineEvent::CallAnswered { scope, .. }
            | EngineEvent::Digit { scope, .. }
            | EngineEvent::Log { scope, .. }
            | EngineEvent::ParticipantJoined { scope, .. }
            | EngineEvent::ParticipantLeft { scope, .. }
            | EngineEvent::ParticipantTalking { scope, .. }
            | EngineEvent::ScenarioError { scope, .. } => scope,
        }
    }
}

/// Receives every [`EngineEvent`]. Must not block.
pub trait EngineObserver: Send + Sync + 'static {
    fn on_event(&self, event: &EngineEvent);
}

/// The registered observers.
#[derive(Default)]
pub(crate) struct Observers {
    observers: RwLock<Vec<Arc<dyn EngineObserver>>>,
}

impl Observers {
    pub(crate) fn add(&self, observer: Arc<dyn EngineObserver>) {
        self.observers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(observer);
    }

    pub(crate) fn emit(&self, event: EngineEvent) {
        let observers = self.observers.read().unwrap_or_else(|e| e.into_inner());
        for observer in observers.iter() {
            observer.on_event(&event);
        }
    }
}

pub(crate) fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    }
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn serialize_time<S: serde::Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(unix_ms(*at))
}

fn serialize_opt_time<S: serde::Serializer>(
    at: &Option<SystemTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_some(&unix_ms(*at)),
        None => s.serialize_none(),
    }
}

fn serialize_level<S: serde::Serializer>(level: &LogLevel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level_name(*level))
}
