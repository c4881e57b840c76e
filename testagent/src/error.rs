//! The one error type of the agent.

use std::net::SocketAddr;
use std::time::Duration;

use crate::call::EndReason;

/// Everything that can go wrong while driving a call. Tests mostly look at
/// [`AgentError::status_code`] (a rejected call) and at the `Display` text of
/// [`AgentError::WaitTimeout`], which carries the measured levels.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("network I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport to {to}: {reason}")]
    Transport { to: SocketAddr, reason: String },
    #[error("invalid SIP URI {uri:?}: {reason}")]
    InvalidUri { uri: String, reason: String },
    /// The remote answered the request with a final non-2xx response.
    #[error("rejected with {code} {reason}")]
    Rejected {
        code: u16,
        reason: String,
        headers: Vec<(String, String)>,
    },
    /// No final response arrived (RFC 3261 Timer B/F, or the call's answer
    /// timeout, after which the INVITE was cancelled).
    #[error("no final response to {method} within {after:?}")]
    NoResponse { method: String, after: Duration },
    #[error("SDP: {0}")]
    Sdp(String),
    #[error("the call has ended ({0:?})")]
    CallEnded(EndReason),
    #[error("the caller cancelled the call")]
    Cancelled,
    #[error("not possible in this state: {0}")]
    InvalidState(String),
    #[error("the remote did not negotiate telephone-event")]
    NoTelephoneEvent,
    #[error("invalid DTMF digit {0:?}")]
    InvalidDigit(char),
    #[error("media stopped before the operation finished")]
    MediaStopped,
    #[error("WAV {path}: {reason}")]
    Wav { path: String, reason: String },
    /// A `wait_for_*` helper gave up; `details` holds the last measurement.
    #[error("timed out after {after:?} waiting for {what}: {details}")]
    WaitTimeout {
        what: String,
        after: Duration,
        details: String,
    },
    #[error("the agent has shut down")]
    Closed,
}

impl AgentError {
    /// The SIP status code of a rejected request, e.g. `Some(486)`.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            AgentError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;
