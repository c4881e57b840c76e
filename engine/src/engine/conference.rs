//! A conference room: the media mix, who is in it, and its events, as the
//! room's scenario instance sees it ([`ConferenceControl`]).

use std::sync::{Arc, Mutex, Weak};

use switchboard_media::{ConferenceHandle, PlayOptions};
use switchboard_scenarios::{
    CallControl, CallState, ConferenceControl, ConferenceError, ConferenceEvent, MediaOutcome,
    ParticipantOptions, SayOptions,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::events::{EngineEvent, Scope};
use super::{Call, EngineInner};
use crate::tts::Voice;

/// A conference as the management API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConferenceSnapshot {
    pub name: String,
    #[serde(flatten)]
    pub scope: Scope,
    pub participants: Vec<ParticipantSnapshot>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ParticipantSnapshot {
    pub call_id: String,
    pub from: String,
    pub muted: bool,
    pub deaf: bool,
    pub talking: bool,
}

/// One participant's state in the room.
struct Participant {
    call: Arc<Call>,
    options: ParticipantOptions,
    talking: bool,
}

pub struct Conference {
    me: Weak<Conference>,
    name: String,
    scope: Scope,
    media: ConferenceHandle,
    engine: Weak<EngineInner>,
    participants: Mutex<Vec<Participant>>,
    events_tx: mpsc::UnboundedSender<ConferenceEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ConferenceEvent>>,
    /// Cancelled when the room closes: participant watchers stop.
    closed: CancellationToken,
}

impl Conference {
    pub(crate) fn new(engine: &Arc<EngineInner>, scope: Scope, name: &str) -> Arc<Conference> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Arc::new_cyclic(|me| Conference {
            me: me.clone(),
            name: name.to_string(),
            scope,
            media: engine.media.create_conference(name),
            engine: Arc::downgrade(engine),
            participants: Mutex::new(Vec::new()),
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
            closed: CancellationToken::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// What the management API shows of the room now.
    pub fn snapshot(&self) -> ConferenceSnapshot {
        ConferenceSnapshot {
            name: self.name.clone(),
            scope: self.scope.clone(),
            participants: lock(&self.participants)
                .iter()
                .map(|p| ParticipantSnapshot {
                    call_id: p.call.id().to_string(),
                    from: p.call.info().from.clone(),
                    muted: p.options.muted,
                    deaf: p.options.deaf,
                    talking: p.talking,
                })
                .collect(),
        }
    }

    /// Frees the mix. Participants still up are not hung up (see `end`).
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.media.close();
        info!(app = %self.scope.app, conference = %self.name, "conference closed");
    }

    fn remove(&self, call_id: &str) {
        let now_empty = {
            let mut participants = lock(&self.participants);
            let before = participants.len();
            participants.retain(|p| p.call.id() != call_id);
            if participants.len() == before {
                return;
            }
            participants.is_empty()
        };
        info!(conference = %self.name, call = call_id, "left conference");
        if let Some(engine) = self.engine.upgrade() {
            if let Some(call) = engine.calls.get(call_id) {
                call.set_conference(None);
            }
            engine.observers.emit(EngineEvent::ParticipantLeft {
                scope: self.scope.clone(),
                conference: self.name.clone(),
                call_id: call_id.to_string(),
            });
        }
        let _ = self.events_tx.send(ConferenceEvent::Leave {
            call_id: call_id.to_string(),
        });
        if now_empty {
            let _ = self.events_tx.send(ConferenceEvent::Empty);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl ConferenceControl for Conference {
    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> usize {
        lock(&self.participants).len()
    }

    fn participants(&self) -> Vec<String> {
        lock(&self.participants)
            .iter()
            .map(|p| p.call.id().to_string())
            .collect()
    }

    async fn add(
        &self,
        call: Arc<dyn CallControl>,
        opts: ParticipantOptions,
    ) -> Result<(), ConferenceError> {
        if self.closed.is_cancelled() {
            return Err(ConferenceError::Ended);
        }
        let engine = self.engine.upgrade().ok_or(ConferenceError::Ended)?;
        let id = call.info().id.clone();
        // Only calls the engine knows (and so, of this application) can join.
        let call = engine
            .calls
            .get(&id)
            .map(|c| c.clone())
            .ok_or_else(|| ConferenceError::NoSuchCall(id.clone()))?;
        if call.state() != CallState::Answered {
            call.answer()
                .await
                .map_err(|e| ConferenceError::Other(format!("cannot answer {id}: {e}")))?;
        }
        if lock(&self.participants).iter().any(|p| p.call.id() == id) {
            return Ok(());
        }
        let leg = call
            .leg()
            .ok_or_else(|| ConferenceError::NoSuchCall(id.clone()))?;
        self.media
            .add(
                leg,
                switchboard_media::ParticipantOptions {
                    muted: opts.muted,
                    deaf: opts.deaf,
                    ..Default::default()
                },
            )
            .map_err(|e| ConferenceError::Other(e.to_string()))?;
        lock(&self.participants).push(Participant {
            call: call.clone(),
            options: opts,
            talking: false,
        });
        call.set_conference(Some(self.name.clone()));
        info!(conference = %self.name, call = %id, "joined conference");
        engine.observers.emit(EngineEvent::ParticipantJoined {
            scope: self.scope.clone(),
            conference: self.name.clone(),
            call_id: id.clone(),
        });
        let _ = self.events_tx.send(ConferenceEvent::Join {
            call_id: id.clone(),
        });

        // Hanging up leaves the room.
        let room = self.me.clone();
        let closed = self.closed.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = call.ended().cancelled() => {
                    if let Some(room) = room.upgrade() {
                        room.remove(call.id());
                    }
                }
                _ = closed.cancelled() => {}
            }
        });
        Ok(())
    }

    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, ConferenceError> {
        let engine = self.engine.upgrade().ok_or(ConferenceError::Ended)?;
        let voice = Voice::from_say_options(&opts);
        let clip = engine
            .tts
            .speak(text, &voice)
            .await
            .map_err(|e| ConferenceError::Other(e.to_string()))?;
        let outcome = tokio::select! {
            outcome = self.media.play(clip, PlayOptions::default()) => outcome,
            _ = self.closed.cancelled() => return Err(ConferenceError::Ended),
        };
        Ok(super::call::media_outcome(outcome))
    }

    async fn end(&self) {
        let participants: Vec<Arc<Call>> = lock(&self.participants)
            .iter()
            .map(|p| p.call.clone())
            .collect();
        for call in participants {
            let _ = call.hangup().await;
        }
    }

    async fn next_event(&self) -> Option<ConferenceEvent> {
        let mut events = self.events_rx.lock().await;
        tokio::select! {
            event = events.recv() => event,
            _ = self.closed.cancelled() => None,
        }
    }
}
