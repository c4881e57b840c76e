//! One call: its SIP signalling, its RTP leg, its events and its log, as a
//! scenario sees it ([`CallControl`]).
//!
//! - this module: the call's identity, state, log, end and records;
//! - [`media`]: the RTP leg (started on answer or early media), prompts,
//!   digits out, bridging;
//! - [`control`]: the scenario-facing [`CallControl`] implementation;
//! - [`outbound`]: calls placed by `dial`.

mod control;
mod media;
mod outbound;
mod recording;

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::SystemTime;

use switchboard_media::{Codec, LegHandle};
use switchboard_scenarios::{CallEvent, CallInfo, CallState, LogLevel};

use super::recordings::ActiveRecordings;
use switchboard_sip::{sdp, CallSignaling, EndReason};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::events::{unix_ms, CallRecord, EngineEvent, LogLine, Scope};
use super::EngineInner;
use crate::app::Application;

pub(crate) use media::{local_ip_toward, media_outcome, PendingMedia};
pub(crate) use outbound::dial;

/// Which rule and scenario the call is on now (changes with `routeTo`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Route {
    pub rule: String,
    pub scenario: String,
    pub scenario_version: u32,
    pub destination: String,
}

/// A live call as the management API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CallSnapshot {
    pub id: String,
    #[serde(flatten)]
    pub scope: Scope,
    pub from: String,
    pub to: String,
    pub destination: String,
    pub transport: String,
    pub direction: &'static str,
    pub state: &'static str,
    pub route: Option<Route>,
    pub started_at_ms: u64,
    pub answered_at_ms: Option<u64>,
    pub duration_ms: u64,
    /// The conference the call is in, if any.
    pub conference: Option<String>,
}

/// Inbound (it called us) or outbound (placed by `dial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// Times and outcome, for the call record.
#[derive(Debug, Default)]
struct Timeline {
    answered_at: Option<SystemTime>,
    /// Final status of the INVITE transaction.
    sip_code: Option<u16>,
}

/// The negotiated stream of a plain RTP call: what its leg is started
/// with (a WebRTC call has none: its session negotiated).
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) negotiated: sdp::Negotiated,
    pub(crate) codec: Codec,
}

pub struct Call {
    me: Weak<Call>,
    info: CallInfo,
    direction: Direction,
    /// The application version this call runs (kept for its whole life).
    app: Arc<Application>,
    scope: Scope,
    started_at: SystemTime,
    timeline: Mutex<Timeline>,
    /// The conference the call is in now.
    conference: Mutex<Option<String>>,
    signaling: CallSignaling,
    engine: Weak<EngineInner>,
    /// What the leg runs with; set at creation (inbound) or on answer
    /// (outbound).
    stream: OnceLock<Stream>,
    media: media::CallMedia,
    state: Mutex<CallState>,
    /// Serialises answer / early media so one 200 (or 183) goes out.
    answering: tokio::sync::Mutex<()>,
    /// Dropped after the final `Hangup` event so `next_event` returns `None`.
    events_tx: Mutex<Option<mpsc::UnboundedSender<CallEvent>>>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<CallEvent>>,
    /// Cancelled when the call ends, whoever ends it.
    ended: CancellationToken,
    route: Mutex<Option<Route>>,
    log: Mutex<Vec<LogLine>>,
    /// Recordings in progress (their files end with the leg otherwise).
    recordings: ActiveRecordings,
}

impl Call {
    /// A call that reached us, with its offer negotiated and an RTP socket
    /// bound for the answer.
    pub(crate) fn inbound(
        signaling: CallSignaling,
        engine: &Arc<EngineInner>,
        app: Arc<Application>,
        stream: Option<Stream>,
        media: PendingMedia,
    ) -> Arc<Call> {
        let info = CallInfo {
            id: signaling.id().to_string(),
            from: signaling.from().to_string(),
            to: signaling.to().to_string(),
            destination: signaling.destination().to_string(),
            headers: signaling.headers().to_vec(),
            transport: signaling.transport().as_str().to_string(),
            direction: Direction::Inbound.as_str().to_string(),
        };
        let call = Call::build(
            info,
            Direction::Inbound,
            signaling,
            engine,
            app,
            media,
            CallState::Incoming,
        );
        if let Some(stream) = stream {
            let _ = call.stream.set(stream);
        }
        call
    }

    fn build(
        info: CallInfo,
        direction: Direction,
        signaling: CallSignaling,
        engine: &Arc<EngineInner>,
        app: Arc<Application>,
        media: PendingMedia,
        state: CallState,
    ) -> Arc<Call> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let scope = Scope {
            account: app.account.clone(),
            app: app.id.clone(),
        };
        Arc::new_cyclic(|me| Call {
            me: me.clone(),
            info,
            direction,
            app,
            scope,
            started_at: SystemTime::now(),
            timeline: Mutex::new(Timeline::default()),
            conference: Mutex::new(None),
            signaling,
            engine: Arc::downgrade(engine),
            stream: OnceLock::new(),
            media: media::CallMedia::new(media),
            state: Mutex::new(state),
            answering: tokio::sync::Mutex::new(()),
            events_tx: Mutex::new(Some(events_tx)),
            events_rx: tokio::sync::Mutex::new(events_rx),
            ended: CancellationToken::new(),
            route: Mutex::new(None),
            log: Mutex::new(Vec::new()),
            recordings: ActiveRecordings::default(),
        })
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The SIP Call-ID of the call's dialog.
    pub fn sip_call_id(&self) -> &str {
        self.signaling.sip_call_id()
    }

    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The media leg, once answered (or in early media).
    pub(crate) fn leg(&self) -> Option<&LegHandle> {
        self.media.leg()
    }

    /// Cancelled when the call has ended.
    pub(crate) fn ended(&self) -> &CancellationToken {
        &self.ended
    }

    /// The application (version) the call runs.
    pub fn app(&self) -> &Arc<Application> {
        &self.app
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub(crate) fn engine(&self) -> Option<Arc<EngineInner>> {
        self.engine.upgrade()
    }

    pub(crate) fn current_state(&self) -> CallState {
        *lock(&self.state)
    }

    /// The call's recordings in progress.
    pub(crate) fn recordings(&self) -> &ActiveRecordings {
        &self.recordings
    }

    /// The rule and scenario handling the call now, once routed.
    pub fn route(&self) -> Option<Route> {
        lock(&self.route).clone()
    }

    pub(crate) fn set_route(&self, route: Route) {
        self.notify(EngineEvent::CallRouted {
            scope: self.scope.clone(),
            call_id: self.info.id.clone(),
            rule: route.rule.clone(),
            scenario: route.scenario.clone(),
            destination: route.destination.clone(),
        });
        *lock(&self.route) = Some(route);
    }

    pub(crate) fn set_conference(&self, conference: Option<String>) {
        *lock(&self.conference) = conference;
    }

    /// The conference the call is in now.
    pub fn conference(&self) -> Option<String> {
        lock(&self.conference).clone()
    }

    /// What the management API shows of the call now.
    pub fn snapshot(&self) -> CallSnapshot {
        let answered_at = lock(&self.timeline).answered_at;
        CallSnapshot {
            id: self.info.id.clone(),
            scope: self.scope.clone(),
            from: self.info.from.clone(),
            to: self.info.to.clone(),
            destination: self.info.destination.clone(),
            transport: self.info.transport.clone(),
            direction: self.direction.as_str(),
            state: self.current_state().as_str(),
            route: self.route(),
            started_at_ms: unix_ms(self.started_at),
            answered_at_ms: answered_at.map(unix_ms),
            duration_ms: self
                .started_at
                .elapsed()
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            conference: lock(&self.conference).clone(),
        }
    }

    /// Tells the engine's observers.
    pub(crate) fn notify(&self, event: EngineEvent) {
        if let Some(engine) = self.engine.upgrade() {
            engine.observers.emit(event);
        }
    }

    /// Records the final status of the INVITE (the first one wins).
    pub(crate) fn set_sip_code(&self, code: u16) {
        lock(&self.timeline).sip_code.get_or_insert(code);
    }

    /// Marks the call answered (state, timeline, observers).
    fn set_answered(&self) -> bool {
        {
            let mut state = lock(&self.state);
            if *state == CallState::Ended {
                return false;
            }
            *state = CallState::Answered;
        }
        {
            let mut timeline = lock(&self.timeline);
            timeline.answered_at = Some(SystemTime::now());
            timeline.sip_code.get_or_insert(200);
        }
        self.notify(EngineEvent::CallAnswered {
            scope: self.scope.clone(),
            call_id: self.info.id.clone(),
        });
        true
    }

    /// The call's log so far.
    pub fn log_lines(&self) -> Vec<LogLine> {
        lock(&self.log).clone()
    }

    /// Appends to the call's log and to the process log.
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        let route = self.route().unwrap_or_default();
        let (id, rule, scenario) = (&self.info.id, &route.rule, &route.scenario);
        match level {
            LogLevel::Error | LogLevel::Warn => warn!(call = %id, %rule, %scenario, "{message}"),
            LogLevel::Info => info!(call = %id, %rule, %scenario, "{message}"),
            LogLevel::Debug => debug!(call = %id, %rule, %scenario, "{message}"),
        }
        let line = LogLine {
            at: SystemTime::now(),
            level,
            message: truncate(message, MAX_LOG_LINE).to_string(),
        };
        {
            let mut log = lock(&self.log);
            if log.len() < MAX_LOG_LINES {
                log.push(line.clone());
            } else if log.len() == MAX_LOG_LINES {
                log.push(LogLine {
                    at: line.at,
                    level: LogLevel::Warn,
                    message: format!("log truncated after {MAX_LOG_LINES} lines"),
                });
            }
        }
        self.notify(EngineEvent::Log {
            scope: self.scope.clone(),
            call_id: Some(self.info.id.clone()),
            line,
        });
    }

    /// Queues an event for the scenario that owns the call.
    pub(crate) fn emit(&self, event: CallEvent) {
        if let Some(tx) = lock(&self.events_tx).as_ref() {
            let _ = tx.send(event);
        }
    }

    /// Records that the call is over (idempotent): frees media, wakes every
    /// waiter and tells the owning scenario and the observers.
    pub(crate) fn mark_ended(&self, reason: &EndReason) {
        {
            let mut state = lock(&self.state);
            if *state == CallState::Ended {
                return;
            }
            *state = CallState::Ended;
        }
        let reason = end_reason_name(reason);
        info!(call = %self.info.id, reason, "call ended");
        self.media.close(self);
        self.ended.cancel();
        self.emit(CallEvent::Hangup {
            reason: reason.to_string(),
        });
        lock(&self.events_tx).take();
        if let Some(engine) = self.engine.upgrade() {
            engine.calls.remove(&self.info.id);
            engine.observers.emit(EngineEvent::CallEnded {
                record: Box::new(self.record(reason)),
            });
        }
    }

    /// The call history record, at the end of the call.
    fn record(&self, end_reason: &str) -> CallRecord {
        let timeline = lock(&self.timeline);
        let route = self.route();
        let sip_code = timeline.sip_code.or(match end_reason {
            "cancelled" => Some(487),
            _ => None,
        });
        CallRecord {
            id: self.info.id.clone(),
            scope: self.scope.clone(),
            from: self.info.from.clone(),
            to: self.info.to.clone(),
            destination: self.info.destination.clone(),
            rule: route.as_ref().map(|r| r.rule.clone()),
            scenario: route.as_ref().map(|r| r.scenario.clone()),
            scenario_version: route.as_ref().map(|r| r.scenario_version),
            direction: self.direction.as_str(),
            started_at: self.started_at,
            answered_at: timeline.answered_at,
            ended_at: SystemTime::now(),
            end_reason: end_reason.to_string(),
            sip_code,
            log: self.log_lines(),
        }
    }

    /// Shutdown: BYE if answered, otherwise a 503 final response.
    pub(crate) async fn end_for_shutdown(&self) {
        let result = match self.current_state() {
            CallState::Ended => return,
            CallState::Answered => self.signaling.hangup(Vec::new()).await,
            _ if self.direction == Direction::Outbound => self.signaling.hangup(Vec::new()).await,
            _ => {
                self.set_sip_code(503);
                self.signaling
                    .reject(503, Some("Service Unavailable"))
                    .await
            }
        };
        if let Err(e) = result {
            debug!(call = %self.info.id, error = %e, "ending call at shutdown");
        }
        self.mark_ended(&EndReason::Shutdown);
    }

    /// Watches the signalling events until the call ends; INFO bodies with
    /// DTMF are handed to the leg.
    pub(crate) fn watch_signaling(&self, mut events: switchboard_sip::CallEvents) {
        let Some(call) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    switchboard_sip::CallEvent::Ended(reason) => {
                        call.mark_ended(&reason);
                        return;
                    }
                    switchboard_sip::CallEvent::Info { content_type, body } => {
                        call.media.on_info(&call, content_type.as_deref(), &body);
                    }
                    _ => {}
                }
            }
            call.mark_ended(&EndReason::Shutdown);
        });
    }
}

fn end_reason_name(reason: &EndReason) -> &'static str {
    match reason {
        EndReason::Cancelled => "cancelled",
        EndReason::RemoteBye => "remote-bye",
        EndReason::Local => "local",
        EndReason::AckTimeout => "ack-timeout",
        EndReason::TransportError(_) => "transport-error",
        EndReason::Shutdown => "shutdown",
    }
}

/// A call's log keeps at most this many lines...
const MAX_LOG_LINES: usize = 2000;
/// ...of at most this many bytes each.
const MAX_LOG_LINE: usize = 4096;

fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
