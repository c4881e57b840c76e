//! What a scenario instance needs from the world: calls, conferences and the
//! engine. The engine implements these traits over real SIP calls and media;
//! tests and the simulator implement them over simulated calls.

use std::sync::Arc;

/// Static facts about a call (`call.id`, `call.from`, ...).
#[derive(Debug, Clone, Default)]
pub struct CallInfo {
    pub id: String,
    /// From URI.
    pub from: String,
    /// To URI.
    pub to: String,
    /// The destination the call was routed on (Request-URI user part or the
    /// `routeTo` target).
    pub destination: String,
    /// Headers of the INVITE, in order.
    pub headers: Vec<(String, String)>,
    /// `udp`, `tcp`, `ws`, or `sim`.
    pub transport: String,
}

/// `call.state` in JavaScript.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    Incoming,
    Ringing,
    Answered,
    Ended,
}

impl CallState {
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Incoming => "incoming",
            CallState::Ringing => "ringing",
            CallState::Answered => "answered",
            CallState::Ended => "ended",
        }
    }
}

/// Options of `say()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SayOptions {
    pub voice: Option<String>,
    pub language: Option<String>,
    /// Speaking rate multiplier (1.0 = normal).
    pub rate: Option<f64>,
    /// Stop speaking at the first DTMF digit.
    pub barge_in: bool,
}

/// How a media operation (`say`, `play`) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaOutcome {
    Finished,
    Interrupted,
    /// The call ended while it played.
    Hangup,
}

/// Events of one call, delivered to the instance that owns the call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// A DTMF digit; `source` is `rfc4733`, `info` or `inband`.
    Dtmf { digit: char, source: String },
    /// The call ended (`reason` e.g. `remote-bye`, `cancelled`, `local`).
    Hangup { reason: String },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum CallError {
    #[error("the call has ended")]
    Ended,
    #[error("not allowed in state {0}")]
    InvalidState(String),
    #[error("media error: {0}")]
    Media(String),
    #[error("speech synthesis failed: {0}")]
    Tts(String),
    #[error("{0}")]
    Other(String),
}

/// One call as a scenario sees it.
#[async_trait::async_trait]
pub trait CallControl: Send + Sync + 'static {
    fn info(&self) -> &CallInfo;
    fn state(&self) -> CallState;
    /// Answers (200 OK). A no-op when already answered.
    async fn answer(&self) -> Result<(), CallError>;
    /// Rejects an unanswered call with a SIP status code.
    async fn reject(&self, code: u16, reason: Option<String>) -> Result<(), CallError>;
    /// Ends the call (BYE). A no-op when already ended.
    async fn hangup(&self) -> Result<(), CallError>;
    /// Speaks `text` to the caller; resolves when it ends.
    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, CallError>;
    /// Stops what `say`/`play` is playing (it resolves `Interrupted`).
    fn stop_media(&self);
    /// The next event of the call, `None` once none can follow. There is one
    /// consumer at a time: the instance that currently owns the call. Must be
    /// cancel-safe (an instance stops reading when the call is routed away).
    async fn next_event(&self) -> Option<CallEvent>;
}

/// Options of `conf.add()`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParticipantOptions {
    pub muted: bool,
    pub deaf: bool,
    pub beep: bool,
}

/// Events of a conference.
#[derive(Debug, Clone, PartialEq)]
pub enum ConferenceEvent {
    Join {
        call_id: String,
    },
    Leave {
        call_id: String,
    },
    /// The last participant left.
    Empty,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ConferenceError {
    #[error("the conference is full ({0} participants)")]
    Full(usize),
    #[error("the conference has ended")]
    Ended,
    #[error("call {0} is not available")]
    NoSuchCall(String),
    #[error("{0}")]
    Other(String),
}

/// A conference as its scenario instance sees it.
#[async_trait::async_trait]
pub trait ConferenceControl: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Participants now in the mix.
    fn size(&self) -> usize;
    /// Call ids of the participants.
    fn participants(&self) -> Vec<String>;
    /// Puts a call (owned by this instance) into the mix.
    async fn add(
        &self,
        call: Arc<dyn CallControl>,
        opts: ParticipantOptions,
    ) -> Result<(), ConferenceError>;
    /// Speaks into the mix: every participant hears it.
    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, ConferenceError>;
    /// Ends the conference: every participant is hung up.
    async fn end(&self);
    /// The next conference event; one consumer (the owning instance).
    async fn next_event(&self) -> Option<ConferenceEvent>;
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("no rule matches {0:?}")]
    NoRoute(String),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// The engine as a scenario sees it.
#[async_trait::async_trait]
pub trait ScenarioHost: Send + Sync + 'static {
    /// Routes `call` (which the instance has let go of) to `destination`
    /// inside the same application: the rules pick the next instance.
    async fn route_to(
        &self,
        call: Arc<dyn CallControl>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError>;
    /// A line of the scenario's log (`console.*`, errors). `call_id` names the
    /// call it belongs to when the instance can tell.
    fn log(&self, call_id: Option<&str>, level: LogLevel, message: &str);
}
