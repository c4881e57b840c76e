//! Routing: a call (new, or rerouted by `routeTo`) goes through the
//! application's rules to a scenario instance. Conference rules share one
//! instance (and one conference) per destination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::sync::atomic::Ordering;

use switchboard_media::{Codec, MediaError};
use switchboard_scenarios::{
    CallContext, CallControl, CallState, InstanceContext, LogLevel, RouteError, ScenarioError,
    ScenarioInstance,
};
use switchboard_sip::{sdp, IncomingCall};
use tracing::{info, warn, Instrument};

use super::call::PendingMedia;
use super::events::{CallRecord, EngineEvent, LogLine, Scope};
use super::host::InstanceHost;
use super::{Call, Conference, EngineInner, Route};
use crate::app::Application;

/// Codecs we accept, best first: we choose by this order.
/// G.722 is named at its 8 kHz RTP clock (RFC 3551), though it carries 16 kHz.
pub(crate) const SUPPORTED_CODECS: &[(&str, u32)] = &[
    ("opus", 48_000),
    ("G722", 8000),
    ("PCMU", 8000),
    ("PCMA", 8000),
];

/// One conference room: its scenario instance and its mix.
#[derive(Clone)]
struct Room {
    instance: ScenarioInstance,
    conference: Arc<Conference>,
}

/// Live rooms by (application, destination).
#[derive(Default)]
pub(crate) struct Rooms {
    rooms: Mutex<HashMap<(String, String), Room>>,
    /// Serialises room creation so two first callers make one room.
    creating: tokio::sync::Mutex<()>,
}

impl Rooms {
    /// The conference of a live room.
    pub(crate) fn conference(&self, app: &str, destination: &str) -> Option<Arc<Conference>> {
        self.get(app, destination).map(|r| r.conference)
    }

    /// Every live room's conference.
    pub(crate) fn conferences(&self) -> Vec<Arc<Conference>> {
        let mut rooms: Vec<Arc<Conference>> =
            self.lock().values().map(|r| r.conference.clone()).collect();
        rooms.sort_by(|a, b| (&a.scope().app, a.name()).cmp(&(&b.scope().app, b.name())));
        rooms
    }

    fn get(&self, app: &str, destination: &str) -> Option<Room> {
        self.lock()
            .get(&(app.to_string(), destination.to_string()))
            .cloned()
    }

    /// Removes the room if it is still `conference`'s.
    fn remove_if(&self, app: &str, destination: &str, conference: &Arc<Conference>) {
        let mut rooms = self.lock();
        let key = (app.to_string(), destination.to_string());
        if rooms
            .get(&key)
            .is_some_and(|r| Arc::ptr_eq(&r.conference, conference))
        {
            rooms.remove(&key);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EngineInner {
    /// A new INVITE: find its application, check it can be served, route it.
    pub(crate) async fn handle_incoming(self: Arc<Self>, incoming: IncomingCall) {
        let signaling = incoming.signaling;
        let span = tracing::info_span!("call", id = %signaling.id());
        async move {
            self.stats.calls_total.fetch_add(1, Ordering::Relaxed);
            let destination = signaling.destination().to_string();
            info!(
                from = %signaling.from(),
                to = %signaling.to(),
                %destination,
                transport = signaling.transport().as_str(),
                remote = %signaling.remote_addr(),
                "incoming call"
            );
            let host = super::uri::host(signaling.request_uri());
            let app = self.apps.resolve(host, &destination);
            let refuse = |code: u16, reason: &'static str, why: String| {
                let signaling = signaling.clone();
                let engine = self.clone();
                let app = app.clone();
                async move {
                    warn!(code, "rejecting call: {why}");
                    engine.stats.calls_rejected.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = signaling.reject(code, Some(reason)).await {
                        warn!(error = %e, "could not send {code}");
                    }
                    if let Some(app) = app {
                        engine.record_refused(&signaling, &app, code, &why);
                    }
                }
            };
            if self.shutting_down.load(Ordering::SeqCst) {
                return refuse(503, "Service Unavailable", "shutting down".into()).await;
            }
            let Some(app) = app.clone() else {
                return refuse(
                    404,
                    "Not Found",
                    format!("no application for {destination}@{host}"),
                )
                .await;
            };
            if app.rules.route(&destination).is_none() {
                let why = app.rules.explain(&destination).to_string();
                return refuse(404, "Not Found", why.replace('\n', "; ")).await;
            }
            let Some(offer) = signaling.offer() else {
                return refuse(
                    488,
                    "Not Acceptable Here",
                    "INVITE without SDP offer (late offer is not supported)".into(),
                )
                .await;
            };
            // A browser's offer (DTLS-SRTP, ICE) gets a WebRTC leg, whatever
            // the SIP transport; anything else plain RTP.
            let webrtc_offer = std::str::from_utf8(offer)
                .ok()
                .filter(|o| switchboard_media::is_webrtc_offer(o));
            let (stream, media) = if let Some(offer) = webrtc_offer {
                let advertise = self.webrtc_candidate_ips(signaling.remote_addr().ip());
                match self.media.accept_webrtc_offer(offer, &advertise) {
                    Ok(session) => (None, PendingMedia::WebRtc(Box::new(session))),
                    Err(e @ (MediaError::NoFreePort(_) | MediaError::ShutDown)) => {
                        return refuse(503, "Service Unavailable", e.to_string()).await
                    }
                    Err(e) => return refuse(488, "Not Acceptable Here", e.to_string()).await,
                }
            } else {
                let negotiated = match sdp::parse_offer(offer)
                    .and_then(|offer| sdp::negotiate_preferring(&offer, SUPPORTED_CODECS))
                {
                    Ok(n) => n,
                    Err(e) => return refuse(488, "Not Acceptable Here", e.to_string()).await,
                };
                let Some(codec) =
                    Codec::from_encoding(&negotiated.codec.encoding, negotiated.codec.clock_rate)
                else {
                    return refuse(
                        488,
                        "Not Acceptable Here",
                        "negotiated an unknown codec".into(),
                    )
                    .await;
                };
                let socket = match self.media.allocate_socket() {
                    Ok(s) => s,
                    Err(e) => return refuse(503, "Service Unavailable", e.to_string()).await,
                };
                let stream = super::call::Stream { negotiated, codec };
                (Some(stream), PendingMedia::Rtp(socket))
            };
            let call = Call::inbound(signaling.clone(), &self, app, stream, media);
            self.calls.insert(call.id().to_string(), call.clone());
            self.observers.emit(EngineEvent::CallStarted {
                scope: call.scope().clone(),
                call_id: call.id().to_string(),
                from: signaling.from().to_string(),
                to: signaling.to().to_string(),
                destination: destination.clone(),
                direction: "inbound",
            });

            // Signalling events: the call ends however it ends.
            call.watch_signaling(incoming.events);

            if let Err(e) = self
                .dispatch(call.clone(), &destination, serde_json::Value::Null)
                .await
            {
                call.log(LogLevel::Error, &format!("cannot route: {e}"));
                let _ = match call.state() {
                    CallState::Incoming | CallState::Ringing => {
                        call.reject(500, Some("Server Internal Error".into())).await
                    }
                    _ => call.hangup(Vec::new()).await,
                };
            }
        }
        .instrument(span)
        .await
    }

    /// The addresses a WebRTC answer offers as host candidates: the
    /// configured public address, else the RTP bind address, else the one
    /// the OS would use toward the caller (the media crate adds loopback
    /// when the socket listens on every address).
    fn webrtc_candidate_ips(&self, remote: std::net::IpAddr) -> Vec<std::net::IpAddr> {
        if let Some(public) = self.config.public_ip {
            return vec![public];
        }
        if !self.config.rtp_ip.is_unspecified() {
            return vec![self.config.rtp_ip];
        }
        super::call::local_ip_toward(remote).into_iter().collect()
    }

    /// Call history for a call refused before it got a [`Call`].
    fn record_refused(
        &self,
        signaling: &switchboard_sip::CallSignaling,
        app: &Application,
        code: u16,
        why: &str,
    ) {
        let now = std::time::SystemTime::now();
        self.observers.emit(EngineEvent::CallEnded {
            record: Box::new(CallRecord {
                id: signaling.id().to_string(),
                scope: Scope {
                    account: app.account.clone(),
                    app: app.id.clone(),
                },
                from: signaling.from().to_string(),
                to: signaling.to().to_string(),
                destination: signaling.destination().to_string(),
                rule: None,
                scenario: None,
                scenario_version: None,
                direction: "inbound",
                started_at: now,
                answered_at: None,
                ended_at: now,
                end_reason: "rejected".to_string(),
                sip_code: Some(code),
                log: vec![LogLine {
                    at: now,
                    level: LogLevel::Warn,
                    message: format!("rejected with {code}: {why}"),
                }],
            }),
        });
    }

    /// Routes `call` to `destination` within its application.
    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        call: Arc<Call>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        let app = call.app().clone();
        let rule = app
            .rules
            .route(destination)
            .map(|m| m.rule.clone())
            .ok_or_else(|| RouteError::NoRoute(destination.to_string()))?;
        let entry = app
            .scenario(&rule.scenario)
            .ok_or_else(|| RouteError::Other(format!("scenario {:?} is missing", rule.scenario)))?;
        call.set_route(Route {
            rule: rule.name.clone(),
            scenario: rule.scenario.clone(),
            scenario_version: entry.version,
            destination: destination.to_string(),
        });
        info!(call = %call.id(), rule = %rule.name, scenario = %rule.scenario, %destination, "routed");
        let call_ctx = CallContext {
            rule: rule.name.clone(),
            destination: destination.to_string(),
            custom_data: custom_data.clone(),
        };
        let instance_ctx = InstanceContext {
            app: app.name.clone(),
            rule: rule.name.clone(),
            destination: destination.to_string(),
            custom_data,
        };
        let host = Arc::new(InstanceHost::new(self, &app, &rule.scenario));
        if !rule.conference {
            let instance = ScenarioInstance::start(
                &entry.scenario,
                instance_ctx,
                host,
                self.limits.clone(),
                None,
            )
            .await
            .map_err(|e| RouteError::Other(e.to_string()))?;
            return instance
                .on_call(call, call_ctx)
                .map_err(|e| RouteError::Other(e.to_string()));
        }
        // A room may close between lookup and hand-over; then make a new one.
        for _ in 0..3 {
            let room = self
                .room(
                    &app,
                    destination,
                    &entry.scenario,
                    instance_ctx.clone(),
                    host.clone(),
                )
                .await?;
            match room
                .instance
                .on_call(call.clone() as Arc<dyn CallControl>, call_ctx.clone())
            {
                Ok(()) => return Ok(()),
                Err(ScenarioError::Closed) => {
                    self.rooms.remove_if(&app.id, destination, &room.conference);
                }
                Err(e) => return Err(RouteError::Other(e.to_string())),
            }
        }
        Err(RouteError::Other(format!(
            "conference {destination} kept closing"
        )))
    }

    /// Starts a scenario over the API: a new instance (or the room's, for a
    /// conference rule) runs `onStart(ctx)` with `custom_data`.
    pub(crate) async fn start_outbound(
        self: &Arc<Self>,
        app: &Arc<Application>,
        target: &super::StartTarget,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<String, super::EngineError> {
        let unavailable = |what: String| super::EngineError::NotAvailable(what);
        let (rule_name, scenario_name, conference) = match target {
            super::StartTarget::Rule(name) => {
                let rule = app
                    .rules
                    .rules()
                    .find(|r| &r.name == name)
                    .ok_or_else(|| unavailable(format!("no rule {name}")))?;
                (rule.name.clone(), rule.scenario.clone(), rule.conference)
            }
            super::StartTarget::Scenario(name) => (String::new(), name.clone(), false),
        };
        let entry = app
            .scenario(&scenario_name)
            .ok_or_else(|| unavailable(format!("no scenario {scenario_name}")))?;
        let ctx = InstanceContext {
            app: app.name.clone(),
            rule: rule_name,
            destination: destination.to_string(),
            custom_data,
        };
        let host = Arc::new(InstanceHost::new(self, app, &scenario_name));
        let instance = if conference {
            self.room(app, destination, &entry.scenario, ctx, host)
                .await
                .map_err(|e| unavailable(e.to_string()))?
                .instance
        } else {
            ScenarioInstance::start(&entry.scenario, ctx, host, self.limits.clone(), None)
                .await
                .map_err(|e| unavailable(e.to_string()))?
        };
        instance
            .run_on_start()
            .map_err(|e| unavailable(e.to_string()))?;
        let id = format!("start-{:016x}", rand::random::<u64>());
        info!(app = %app.id, scenario = %scenario_name, %destination, %id, "scenario started over the API");
        Ok(id)
    }

    /// The live room for `destination`, created (with its instance) if needed.
    async fn room(
        self: &Arc<Self>,
        app: &Arc<Application>,
        destination: &str,
        scenario: &switchboard_scenarios::Scenario,
        ctx: InstanceContext,
        host: Arc<InstanceHost>,
    ) -> Result<Room, RouteError> {
        if let Some(room) = self.rooms.get(&app.id, destination) {
            return Ok(room);
        }
        let _creating = self.rooms.creating.lock().await;
        if let Some(room) = self.rooms.get(&app.id, destination) {
            return Ok(room);
        }
        let scope = Scope {
            account: app.account.clone(),
            app: app.id.clone(),
        };
        let conference = Conference::new(self, scope, destination);
        let instance = match ScenarioInstance::start(
            scenario,
            ctx,
            host,
            self.limits.clone(),
            Some(conference.clone()),
        )
        .await
        {
            Ok(instance) => instance,
            Err(e) => {
                conference.close();
                return Err(RouteError::Other(e.to_string()));
            }
        };
        let room = Room {
            instance: instance.clone(),
            conference: conference.clone(),
        };
        self.rooms
            .lock()
            .insert((app.id.clone(), destination.to_string()), room.clone());
        info!(app = %app.id, conference = %destination, "conference opened");
        // The last one out ends the room: when the instance ends, free it.
        let engine = Arc::downgrade(self);
        let app_id = app.id.clone();
        let destination = destination.to_string();
        tokio::spawn(async move {
            instance.closed().await;
            if let Some(engine) = engine.upgrade() {
                engine.rooms.remove_if(&app_id, &destination, &conference);
            }
            conference.close();
        });
        Ok(room)
    }
}
