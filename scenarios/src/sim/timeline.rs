//! What happened on a simulated call or conference, in order, with times.

use std::fmt;
use std::time::Duration;

use crate::host::LogLevel;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HangupSide {
    /// The scenario hung up.
    Local,
    /// The caller hung up.
    Remote,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SimEvent {
    Answered,
    Rejected {
        code: u16,
        reason: Option<String>,
    },
    /// Speech started (on a call or into a conference).
    Said {
        text: String,
    },
    /// Speech was cut short (`stopMedia`, barge-in).
    Interrupted {
        text: String,
    },
    /// The caller pressed a key.
    Digit {
        digit: char,
    },
    HungUp {
        by: HangupSide,
    },
    /// The scenario routed the call.
    Routed {
        destination: String,
    },
    /// A line of the scenario's log about this call (collected digits, console).
    Log {
        level: LogLevel,
        message: String,
    },
    /// A participant joined / left a conference.
    Joined {
        call_id: String,
    },
    Left {
        call_id: String,
    },
    /// The conference was ended.
    ConferenceEnded,
}

/// One line of a timeline: when (since the call or conference was created) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEntry {
    pub at: Duration,
    pub event: SimEvent,
}

impl fmt::Display for SimEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimEvent::Answered => write!(f, "answered"),
            SimEvent::Rejected { code, reason } => match reason {
                Some(reason) => write!(f, "rejected {code} {reason}"),
                None => write!(f, "rejected {code}"),
            },
            SimEvent::Said { text } => write!(f, "said {text:?}"),
            SimEvent::Interrupted { text } => write!(f, "interrupted {text:?}"),
            SimEvent::Digit { digit } => write!(f, "caller pressed {digit}"),
            SimEvent::HungUp {
                by: HangupSide::Local,
            } => write!(f, "hung up by the scenario"),
            SimEvent::HungUp {
                by: HangupSide::Remote,
            } => write!(f, "caller hung up"),
            SimEvent::Routed { destination } => write!(f, "routed to {destination:?}"),
            SimEvent::Log { level, message } => write!(f, "log {level:?}: {message}"),
            SimEvent::Joined { call_id } => write!(f, "{call_id} joined"),
            SimEvent::Left { call_id } => write!(f, "{call_id} left"),
            SimEvent::ConferenceEnded => write!(f, "conference ended"),
        }
    }
}

impl fmt::Display for SimEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:>8.3}s] {}", self.at.as_secs_f64(), self.event)
    }
}
