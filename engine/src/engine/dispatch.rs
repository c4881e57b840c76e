//! Routing: a call (new, or rerouted by `routeTo`) goes through the
//! application's rules to a scenario instance. Conference rules share one
//! instance (and one conference) per destination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_media::Codec;
use switchboard_scenarios::{
    CallContext, CallControl, InstanceContext, RouteError, ScenarioError, ScenarioInstance,
};
use switchboard_sip::{sdp, IncomingCall};
use tracing::{info, warn, Instrument};

use super::host::InstanceHost;
use super::{Call, Conference, EngineInner};
use crate::app::Application;

/// Codecs we accept, best first when we get to choose.
const SUPPORTED_CODECS: &[(&str, u32)] = &[("PCMU", 8000), ("PCMA", 8000)];

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

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Room>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EngineInner {
    /// A new INVITE: check it can be served, then route it.
    pub(crate) async fn handle_incoming(self: Arc<Self>, incoming: IncomingCall) {
        let signaling = incoming.signaling;
        let span = tracing::info_span!("call", id = %signaling.id());
        async move {
            self.stats
                .calls_total
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let destination = signaling.destination().to_string();
            info!(
                from = %signaling.from(),
                to = %signaling.to(),
                %destination,
                transport = signaling.transport().as_str(),
                remote = %signaling.remote_addr(),
                "incoming call"
            );
            let refuse = |code: u16, reason: &'static str, why: String| {
                let signaling = signaling.clone();
                let engine = self.clone();
                async move {
                    warn!(code, "rejecting call: {why}");
                    engine
                        .stats
                        .calls_rejected
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Err(e) = signaling.reject(code, Some(reason)).await {
                        warn!(error = %e, "could not send {code}");
                    }
                }
            };
            if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                return refuse(503, "Service Unavailable", "shutting down".into()).await;
            }
            if self.app.rules.route(&destination).is_none() {
                let why = self.app.rules.explain(&destination).to_string();
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
            let negotiated = match sdp::parse_offer(offer)
                .and_then(|offer| sdp::negotiate(&offer, SUPPORTED_CODECS))
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
            let call = Call::new(signaling.clone(), &self, negotiated, codec, socket);
            self.calls.insert(call.id().to_string(), call.clone());

            // Signalling events: the call ends however it ends.
            let mut events = incoming.events;
            let watched = call.clone();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if let switchboard_sip::CallEvent::Ended(reason) = event {
                        watched.mark_ended(&reason);
                        return;
                    }
                }
                watched.mark_ended(&switchboard_sip::EndReason::Shutdown);
            });

            if let Err(e) = self
                .dispatch(call.clone(), &destination, serde_json::Value::Null)
                .await
            {
                call.log(
                    switchboard_scenarios::LogLevel::Error,
                    &format!("cannot route: {e}"),
                );
                let _ = match call.state() {
                    switchboard_scenarios::CallState::Incoming
                    | switchboard_scenarios::CallState::Ringing => {
                        call.reject(500, Some("Server Internal Error".into())).await
                    }
                    _ => call.hangup().await,
                };
            }
        }
        .instrument(span)
        .await
    }

    /// Routes `call` to `destination` within its application.
    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        call: Arc<Call>,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<(), RouteError> {
        let app = self.app.clone();
        let rule = app
            .rules
            .route(destination)
            .map(|m| m.rule.clone())
            .ok_or_else(|| RouteError::NoRoute(destination.to_string()))?;
        let scenario = app
            .scenario(&rule.scenario)
            .ok_or_else(|| RouteError::Other(format!("scenario {:?} is missing", rule.scenario)))?;
        call.set_route(super::call::Route {
            rule: rule.name.clone(),
            scenario: rule.scenario.clone(),
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
        let host = Arc::new(InstanceHost::new(self, &rule.scenario));
        if !rule.conference {
            let instance =
                ScenarioInstance::start(scenario, instance_ctx, host, self.limits.clone(), None)
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
                    scenario,
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
                    self.rooms
                        .remove_if(&app.name, destination, &room.conference);
                }
                Err(e) => return Err(RouteError::Other(e.to_string())),
            }
        }
        Err(RouteError::Other(format!(
            "conference {destination} kept closing"
        )))
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
        if let Some(room) = self.rooms.get(&app.name, destination) {
            return Ok(room);
        }
        let _creating = self.rooms.creating.lock().await;
        if let Some(room) = self.rooms.get(&app.name, destination) {
            return Ok(room);
        }
        let conference = Conference::new(self, &app.name, destination);
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
            .insert((app.name.clone(), destination.to_string()), room.clone());
        info!(app = %app.name, conference = %destination, "conference opened");
        // The last one out ends the room: when the instance ends, free it.
        let engine = Arc::downgrade(self);
        let app_name = app.name.clone();
        let destination = destination.to_string();
        tokio::spawn(async move {
            instance.closed().await;
            if let Some(engine) = engine.upgrade() {
                engine.rooms.remove_if(&app_name, &destination, &conference);
            }
            conference.close();
        });
        Ok(room)
    }
}
