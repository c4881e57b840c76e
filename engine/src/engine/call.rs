//! One call: its SIP signalling, its RTP leg, its events and its log, as a
//! scenario sees it ([`CallControl`]).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use switchboard_media::{Codec, LegEvent, LegEvents, LegHandle, LegParams, PlayOptions, RtpSocket};
use switchboard_scenarios::{
    CallControl, CallError, CallEvent, CallInfo, CallState, LogLevel, MediaOutcome, SayOptions,
};
use switchboard_sip::{sdp, CallSignaling, EndReason};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::events::{unix_ms, CallRecord, EngineEvent, LogLine, Scope};
use super::EngineInner;
use crate::app::Application;
use crate::tts::Voice;

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

/// Times and outcome, for the call record.
#[derive(Debug, Default)]
struct Timeline {
    answered_at: Option<SystemTime>,
    /// Final status of the INVITE transaction.
    sip_code: Option<u16>,
}

pub struct Call {
    me: std::sync::Weak<Call>,
    info: CallInfo,
    /// The application version this call runs (kept for its whole life).
    app: Arc<Application>,
    scope: Scope,
    started_at: SystemTime,
    timeline: Mutex<Timeline>,
    /// The conference the call is in now.
    conference: Mutex<Option<String>>,
    signaling: CallSignaling,
    engine: std::sync::Weak<EngineInner>,
    negotiated: sdp::Negotiated,
    codec: Codec,
    /// The RTP socket, bound when the call arrived, until the leg takes it.
    socket: Mutex<Option<RtpSocket>>,
    leg: OnceLock<LegHandle>,
    state: Mutex<CallState>,
    /// Serialises `answer` so two concurrent answers send one 200.
    answering: tokio::sync::Mutex<()>,
    /// Dropped after the final `Hangup` event so `next_event` returns `None`.
    events_tx: Mutex<Option<mpsc::UnboundedSender<CallEvent>>>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<CallEvent>>,
    /// Cancelled when the call ends, whoever ends it.
    ended: CancellationToken,
    route: Mutex<Option<Route>>,
    log: Mutex<Vec<LogLine>>,
}

impl Call {
    pub(crate) fn new(
        signaling: CallSignaling,
        engine: &Arc<EngineInner>,
        app: Arc<Application>,
        negotiated: sdp::Negotiated,
        codec: Codec,
        socket: RtpSocket,
    ) -> Arc<Call> {
        let info = CallInfo {
            id: signaling.id().to_string(),
            from: signaling.from().to_string(),
            to: signaling.to().to_string(),
            destination: signaling.destination().to_string(),
            headers: signaling.headers().to_vec(),
            transport: signaling.transport().as_str().to_string(),
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let scope = Scope {
            account: app.account.clone(),
            app: app.id.clone(),
        };
        Arc::new_cyclic(|me| Call {
            me: me.clone(),
            info,
            app,
            scope,
            started_at: SystemTime::now(),
            timeline: Mutex::new(Timeline::default()),
            conference: Mutex::new(None),
            signaling,
            engine: Arc::downgrade(engine),
            negotiated,
            codec,
            socket: Mutex::new(Some(socket)),
            leg: OnceLock::new(),
            state: Mutex::new(CallState::Incoming),
            answering: tokio::sync::Mutex::new(()),
            events_tx: Mutex::new(Some(events_tx)),
            events_rx: tokio::sync::Mutex::new(events_rx),
            ended: CancellationToken::new(),
            route: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        })
    }

    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The media leg, once answered.
    pub(crate) fn leg(&self) -> Option<&LegHandle> {
        self.leg.get()
    }

    /// Resolves when the call has ended.
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
            direction: "inbound",
            state: self.state().as_str(),
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
    fn notify(&self, event: EngineEvent) {
        if let Some(engine) = self.engine.upgrade() {
            engine.observers.emit(event);
        }
    }

    /// Records the final status sent for the INVITE (first one wins).
    pub(crate) fn set_sip_code(&self, code: u16) {
        lock(&self.timeline).sip_code.get_or_insert(code);
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

    /// Records that the call is over (idempotent): frees media, wakes every
    /// waiter and tells the owning scenario.
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
        if let Some(leg) = self.leg.get() {
            leg.close();
        }
        // Dropping an unused socket frees its port.
        lock(&self.socket).take();
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
            direction: "inbound",
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
        let result = match self.state() {
            CallState::Ended => return,
            CallState::Answered => self.signaling.hangup(Vec::new()).await,
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

    /// The address to advertise in SDP for a socket bound to `local`.
    fn advertised_addr(&self, local: SocketAddr) -> SocketAddr {
        if !local.ip().is_unspecified() {
            return local;
        }
        let public = self.engine.upgrade().and_then(|e| e.config.public_ip);
        let ip = public
            .or_else(|| route_source_ip(self.negotiated.remote.ip()))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        SocketAddr::new(ip, local.port())
    }

    /// Queues an event for the scenario that owns the call.
    fn emit(&self, event: CallEvent) {
        if let Some(tx) = lock(&self.events_tx).as_ref() {
            let _ = tx.send(event);
        }
    }

    /// An in-dialog SIP INFO: a DTMF body (`application/dtmf-relay` or
    /// `application/dtmf`) becomes a digit through the leg, which drops it
    /// if the same key press already came as RFC 4733 or in-band tones.
    pub(crate) fn on_info(&self, content_type: Option<&str>, body: &[u8]) {
        use switchboard_media::dtmf::info;
        let Some(content_type) = content_type.filter(|c| info::is_dtmf_content_type(c)) else {
            return;
        };
        match info::parse_info(content_type, body) {
            Ok(d) => match self.leg.get() {
                Some(leg) => {
                    let source = switchboard_media::DtmfSource::SipInfo;
                    if let Err(e) = leg.inject_dtmf(d.digit, source, d.duration_ms) {
                        debug!(call = %self.info.id, error = %e, "INFO digit dropped");
                    }
                }
                None => debug!(call = %self.info.id, "INFO digit before the call has media"),
            },
            Err(e) => debug!(call = %self.info.id, error = %e, "unreadable DTMF INFO"),
        }
    }

    /// Forwards the leg's DTMF to the call's events until the leg closes.
    fn pump_leg_events(&self, mut events: LegEvents) {
        let Some(call) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    LegEvent::Dtmf(d) => {
                        debug!(call = %call.info.id, digit = %d.digit, source = ?d.source, "dtmf");
                        let source = match d.source {
                            switchboard_media::DtmfSource::Rfc4733 => "rfc4733",
                            switchboard_media::DtmfSource::SipInfo => "info",
                            switchboard_media::DtmfSource::Inband => "inband",
                        };
                        call.notify(EngineEvent::Digit {
                            scope: call.scope.clone(),
                            call_id: call.info.id.clone(),
                            digit: d.digit,
                            source: source.to_string(),
                        });
                        call.emit(CallEvent::Dtmf {
                            digit: d.digit,
                            source: source.to_string(),
                        });
                    }
                }
            }
        });
    }
}

/// The local IP the OS would use to reach `remote` (no packet is sent).
fn route_source_ip(remote: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(SocketAddr::new(remote, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// A media playback's end as scenarios see it.
pub(crate) fn media_outcome(outcome: switchboard_media::PlayOutcome) -> MediaOutcome {
    match outcome {
        switchboard_media::PlayOutcome::Finished => MediaOutcome::Finished,
        switchboard_media::PlayOutcome::Interrupted => MediaOutcome::Interrupted,
        switchboard_media::PlayOutcome::Closed => MediaOutcome::Hangup,
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl CallControl for Call {
    fn info(&self) -> &CallInfo {
        &self.info
    }

    fn state(&self) -> CallState {
        *lock(&self.state)
    }

    async fn answer(&self) -> Result<(), CallError> {
        let _guard = self.answering.lock().await;
        match self.state() {
            CallState::Answered => return Ok(()),
            CallState::Ended => return Err(CallError::Ended),
            CallState::Incoming | CallState::Ringing => {}
        }
        let engine = self.engine.upgrade().ok_or(CallError::Ended)?;
        let socket = lock(&self.socket).take().ok_or(CallError::Ended)?;
        let local = self.advertised_addr(socket.local_addr());
        let answer = sdp::write_answer(&self.negotiated, local, rand::random::<u32>() as u64);
        let params = LegParams {
            remote: self.negotiated.remote,
            codec: self.codec,
            payload_type: self.negotiated.codec.payload_type,
            dtmf_payload_type: self.negotiated.dtmf.as_ref().map(|f| f.payload_type),
            label: self.info.id.clone(),
        };
        let (leg, events) = engine
            .media
            .start_leg(socket, params)
            .map_err(|e| CallError::Media(e.to_string()))?;
        if let Err(e) = self.signaling.answer(answer, Vec::new()).await {
            leg.close();
            return Err(CallError::Other(format!("answer failed: {e}")));
        }
        let _ = self.leg.set(leg);
        {
            let mut state = lock(&self.state);
            if *state == CallState::Ended {
                // Hung up while we were answering.
                if let Some(leg) = self.leg.get() {
                    leg.close();
                }
                return Err(CallError::Ended);
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
        self.pump_leg_events(events);
        info!(call = %self.info.id, codec = self.codec.encoding_name(), rtp = %local, "answered");
        Ok(())
    }

    async fn reject(&self, code: u16, reason: Option<String>) -> Result<(), CallError> {
        match self.state() {
            CallState::Ended => return Err(CallError::Ended),
            CallState::Answered => {
                return Err(CallError::InvalidState(
                    "answered (use hangup to end an answered call)".into(),
                ))
            }
            _ => {}
        }
        if !(300..=699).contains(&code) {
            return Err(CallError::Other(format!(
                "reject needs a SIP status code from 300 to 699, not {code}"
            )));
        }
        self.signaling
            .reject(code, reason.as_deref())
            .await
            .map_err(|e| CallError::Other(e.to_string()))?;
        self.set_sip_code(code);
        self.mark_ended(&EndReason::Local);
        Ok(())
    }

    async fn hangup(&self) -> Result<(), CallError> {
        if self.state() == CallState::Ended {
            return Ok(());
        }
        let result = self.signaling.hangup(Vec::new()).await;
        self.mark_ended(&EndReason::Local);
        result.map_err(|e| CallError::Other(e.to_string()))
    }

    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, CallError> {
        match self.state() {
            CallState::Ended => return Err(CallError::Ended),
            CallState::Answered => {}
            _ => {
                return Err(CallError::InvalidState(
                    "answer the call before say()".into(),
                ))
            }
        }
        let engine = self.engine.upgrade().ok_or(CallError::Ended)?;
        let voice = Voice::from_say_options(&opts);
        let clip = tokio::select! {
            clip = engine.tts.speak(text, &voice) => clip.map_err(|e| CallError::Tts(e.to_string()))?,
            _ = self.ended.cancelled() => return Ok(MediaOutcome::Hangup),
        };
        let leg = self.leg.get().ok_or(CallError::Ended)?;
        let playback = leg.play(clip, PlayOptions::default());
        tokio::select! {
            outcome = playback => Ok(media_outcome(outcome)),
            _ = self.ended.cancelled() => Ok(MediaOutcome::Hangup),
        }
    }

    fn stop_media(&self) {
        if let Some(leg) = self.leg.get() {
            leg.stop_media();
        }
    }

    async fn next_event(&self) -> Option<CallEvent> {
        let mut events = self.events_rx.lock().await;
        events.recv().await
    }
}
