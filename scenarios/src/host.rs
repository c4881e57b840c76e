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
    /// `inbound` (it called us) or `outbound` (placed by `dial`).
    pub direction: String,
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

/// Options of `play()`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlayOptions {
    /// Start over at the end, until stopped.
    pub looped: bool,
    /// Stop at the first DTMF digit (the runtime does this with
    /// `stop_media`; hosts may ignore the flag).
    pub barge_in: bool,
}

/// Options of `record()`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordOptions {
    /// `wav` (the only format so far).
    pub format: Option<String>,
    /// Caller and what it hears on separate channels (default: one mixed
    /// channel). Calls only.
    pub stereo: bool,
    /// Conferences only: also each participant (what it says) in a file of
    /// its own.
    pub tracks: bool,
}

/// A recording that was started, or that has ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    /// Handle for `stop_recording`.
    pub id: String,
    /// Where the file is (engine-specific: a path or URL).
    pub location: String,
    /// Length so far / in all.
    pub duration_ms: u64,
    /// Per-participant files of a conference recording with `tracks`
    /// (known when it stops).
    pub tracks: Vec<String>,
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
    /// Answers (200 OK, with extra headers such as `X-` ones). A no-op when
    /// already answered.
    async fn answer(&self, headers: Vec<(String, String)>) -> Result<(), CallError>;
    /// Sends 180 Ringing.
    async fn ring(&self) -> Result<(), CallError>;
    /// Sends 183 Session Progress with SDP: media (say/play) reaches the
    /// caller before the call is answered.
    async fn early_media(&self) -> Result<(), CallError>;
    /// Rejects an unanswered call with a SIP status code.
    async fn reject(&self, code: u16, reason: Option<String>) -> Result<(), CallError>;
    /// Ends the call (BYE with extra headers; a final 480 when unanswered).
    /// A no-op when already ended.
    async fn hangup(&self, headers: Vec<(String, String)>) -> Result<(), CallError>;
    /// Speaks `text` to the caller; resolves when it ends.
    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, CallError>;
    /// Plays `source` to the caller: a WAV file of the application's media,
    /// a `tone:` spec (`tone:440/1000`, `tone:ringback`) or an http(s) URL.
    async fn play(&self, source: &str, opts: PlayOptions) -> Result<MediaOutcome, CallError>;
    /// Stops what `say`/`play` is playing (it resolves `Interrupted`).
    fn stop_media(&self);
    /// Sends DTMF (RFC 4733) to the caller; resolves once sent.
    async fn send_digits(&self, digits: &str) -> Result<(), CallError>;
    /// Starts recording the call to a file.
    async fn record(&self, opts: RecordOptions) -> Result<RecordingInfo, CallError>;
    /// Stops a recording started with `record`; resolves with its final info.
    async fn stop_recording(&self, id: &str) -> Result<RecordingInfo, CallError>;
    /// Connects this call's media with `other`'s, both ways (both answered,
    /// both owned by the same instance). Replaces any earlier bridge.
    async fn bridge(&self, other: Arc<dyn CallControl>) -> Result<(), CallError>;
    /// Undoes `bridge`. A no-op when not bridged.
    async fn unbridge(&self) -> Result<(), CallError>;
    /// The next event of the call, `None` once none can follow. There is one
    /// consumer at a time: the instance that currently owns the call. Must be
    /// cancel-safe (an instance stops reading when the call is routed away).
    async fn next_event(&self) -> Option<CallEvent>;
}

/// Room-wide options (`conf.maxParticipants`, `conf.waitMusic`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConferenceOptions {
    /// `add` beyond this fails with [`ConferenceError::Full`].
    pub max_participants: Option<usize>,
    /// A play source heard by a participant who is alone in the room.
    pub wait_music: Option<String>,
}

/// A participant's state (`participant.talking`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct ParticipantInfo {
    pub call_id: String,
    pub muted: bool,
    pub deaf: bool,
    pub talking: bool,
    pub gain_db: f64,
}

/// A change to a participant; `None` leaves that setting alone.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParticipantUpdate {
    pub muted: Option<bool>,
    pub deaf: Option<bool>,
    pub gain_db: Option<f64>,
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
    /// A participant started talking (energy with hangover: no flapping).
    Talking {
        call_id: String,
    },
    /// ...and stopped.
    Silent {
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
    /// The call hung up before (or while) it was added.
    #[error("call {0} has ended")]
    CallEnded(String),
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
    /// Sets room-wide options.
    fn configure(&self, opts: ConferenceOptions) -> Result<(), ConferenceError>;
    /// A participant's state, if in the room.
    fn participant(&self, call_id: &str) -> Option<ParticipantInfo>;
    /// Mutes/unmutes, deafens/undeafens or changes the gain of a participant.
    async fn update_participant(
        &self,
        call_id: &str,
        update: ParticipantUpdate,
    ) -> Result<(), ConferenceError>;
    /// Removes a participant from the room and hangs up its call.
    async fn kick(&self, call_id: &str) -> Result<(), ConferenceError>;
    /// Speaks into the mix: every participant hears it.
    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, ConferenceError>;
    /// Plays a source (as for `CallControl::play`) into the mix.
    async fn play(&self, source: &str, opts: PlayOptions) -> Result<MediaOutcome, ConferenceError>;
    /// Stops what `say`/`play` plays into the mix.
    fn stop_media(&self);
    /// Starts recording the mix.
    async fn record(&self, opts: RecordOptions) -> Result<RecordingInfo, ConferenceError>;
    /// Stops a recording of the mix.
    async fn stop_recording(&self, id: &str) -> Result<RecordingInfo, ConferenceError>;
    /// Ends the conference: every participant is hung up.
    async fn end(&self);
    /// The next conference event; one consumer (the owning instance).
    async fn next_event(&self) -> Option<ConferenceEvent>;
}

/// Options of `dial()`.
#[derive(Debug, Clone, PartialEq)]
pub struct DialOptions {
    /// From URI (default: the engine's).
    pub from: Option<String>,
    /// Extra headers of the INVITE.
    pub headers: Vec<(String, String)>,
    /// Give up (CANCEL) when not answered within this time.
    pub timeout: std::time::Duration,
}

impl Default for DialOptions {
    fn default() -> Self {
        DialOptions {
            from: None,
            headers: Vec::new(),
            timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// Why a `dial` did not connect.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("dial failed: {code} {reason}")]
pub struct DialError {
    /// SIP status (e.g. 486 busy, 404, 408 timeout, 487 cancelled), or 0
    /// when no response came at all.
    pub code: u16,
    pub reason: String,
}

/// An outbound HTTP request from `fetch()`.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum FetchError {
    #[error("fetch to {0} is not allowed for this application")]
    NotAllowed(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("request timed out")]
    Timeout,
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("network error: {0}")]
    Network(String),
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
    /// Places an outbound call (`call.dial`); resolves when it is answered
    /// (the new call belongs to the calling instance) or fails.
    async fn dial(&self, uri: &str, opts: DialOptions) -> Result<Arc<dyn CallControl>, DialError>;
    /// Performs an outbound HTTP request, if the application allows the host.
    async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, FetchError>;
    /// A line of the scenario's log (`console.*`, errors). `call_id` names the
    /// call it belongs to when the instance can tell.
    fn log(&self, call_id: Option<&str>, level: LogLevel, message: &str);
}
