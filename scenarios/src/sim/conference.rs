//! A simulated conference: keeps a participant list, notices participants
//! whose call ended on a 20 ms tick (like a mixer would), and reports
//! join / leave / empty events.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::mpsc;
use tokio::time::{Duration, Instant};

use super::timeline::{SimEntry, SimEvent};
use crate::host::{
    CallControl, CallState, ConferenceControl, ConferenceError, ConferenceEvent, MediaOutcome,
    ParticipantOptions, SayOptions,
};

const TICK: Duration = Duration::from_millis(20);
const SPEECH_PER_CHAR: Duration = Duration::from_millis(65);

struct Participant {
    call: Arc<dyn CallControl>,
    options: ParticipantOptions,
}

struct Inner {
    participants: Vec<Participant>,
    ended: bool,
    ticking: bool,
    timeline: Vec<SimEntry>,
}

/// An in-memory [`ConferenceControl`].
pub struct SimConference {
    name: String,
    me: Weak<SimConference>,
    start: Instant,
    max_participants: Option<usize>,
    inner: Mutex<Inner>,
    events_tx: mpsc::UnboundedSender<ConferenceEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ConferenceEvent>>,
}

impl SimConference {
    pub fn new(name: &str) -> Arc<SimConference> {
        Self::build(name, None)
    }

    /// A conference that refuses more than `max` participants.
    pub fn with_max_participants(name: &str, max: usize) -> Arc<SimConference> {
        Self::build(name, Some(max))
    }

    fn build(name: &str, max_participants: Option<usize>) -> Arc<SimConference> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        Arc::new_cyclic(|me| SimConference {
            name: name.to_string(),
            me: me.clone(),
            start: Instant::now(),
            max_participants,
            inner: Mutex::new(Inner {
                participants: Vec::new(),
                ended: false,
                ticking: false,
                timeline: Vec::new(),
            }),
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, inner: &mut Inner, event: SimEvent) {
        inner.timeline.push(SimEntry {
            at: self.start.elapsed(),
            event,
        });
    }

    /// What happened so far.
    pub fn timeline(&self) -> Vec<SimEntry> {
        self.lock().timeline.clone()
    }

    /// Whether the timeline has an entry matching `predicate`.
    pub fn saw(&self, predicate: impl Fn(&SimEvent) -> bool) -> bool {
        self.lock().timeline.iter().any(|e| predicate(&e.event))
    }

    /// Whether `call_id` ever joined.
    pub fn saw_join(&self, call_id: &str) -> bool {
        self.saw(|e| matches!(e, SimEvent::Joined { call_id: id } if id == call_id))
    }

    /// The options a participant was added with.
    pub fn participant_options(&self, call_id: &str) -> Option<ParticipantOptions> {
        self.lock()
            .participants
            .iter()
            .find(|p| p.call.info().id == call_id)
            .map(|p| p.options)
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// Removes participants whose call ended; false once nobody is left to watch.
    fn tick(&self) -> bool {
        let mut inner = self.lock();
        let before = inner.participants.len();
        let mut left = Vec::new();
        inner.participants.retain(|p| {
            let gone = p.call.state() == CallState::Ended;
            if gone {
                left.push(p.call.info().id.clone());
            }
            !gone
        });
        for call_id in left {
            self.record(
                &mut inner,
                SimEvent::Left {
                    call_id: call_id.clone(),
                },
            );
            let _ = self.events_tx.send(ConferenceEvent::Leave { call_id });
        }
        if before > 0 && inner.participants.is_empty() {
            let _ = self.events_tx.send(ConferenceEvent::Empty);
        }
        inner.ticking = !inner.participants.is_empty();
        inner.ticking
    }

    fn ensure_ticking(&self, inner: &mut Inner) {
        if inner.ticking {
            return;
        }
        inner.ticking = true;
        let me = self.me.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                match me.upgrade() {
                    Some(conference) if conference.tick() => {}
                    _ => return,
                }
            }
        });
    }
}

#[async_trait::async_trait]
impl ConferenceControl for SimConference {
    // TEMPORARY on the engine3 branch (replaced by the scenarios3 branch).
    fn configure(&self, _o: crate::host::ConferenceOptions) -> Result<(), ConferenceError> {
        Ok(())
    }
    fn participant(&self, _id: &str) -> Option<crate::host::ParticipantInfo> {
        None
    }
    async fn update_participant(
        &self,
        _id: &str,
        _u: crate::host::ParticipantUpdate,
    ) -> Result<(), ConferenceError> {
        Ok(())
    }
    async fn kick(&self, _id: &str) -> Result<(), ConferenceError> {
        Ok(())
    }
    async fn play(
        &self,
        _s: &str,
        _o: crate::host::PlayOptions,
    ) -> Result<MediaOutcome, ConferenceError> {
        Ok(MediaOutcome::Finished)
    }
    fn stop_media(&self) {}
    async fn record(
        &self,
        _o: crate::host::RecordOptions,
    ) -> Result<crate::host::RecordingInfo, ConferenceError> {
        Err(ConferenceError::Ended)
    }
    async fn stop_recording(
        &self,
        _id: &str,
    ) -> Result<crate::host::RecordingInfo, ConferenceError> {
        Err(ConferenceError::Ended)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn size(&self) -> usize {
        self.lock().participants.len()
    }

    fn participants(&self) -> Vec<String> {
        self.lock()
            .participants
            .iter()
            .map(|p| p.call.info().id.clone())
            .collect()
    }

    async fn add(
        &self,
        call: Arc<dyn CallControl>,
        opts: ParticipantOptions,
    ) -> Result<(), ConferenceError> {
        let mut inner = self.lock();
        let call_id = call.info().id.clone();
        if inner.ended {
            return Err(ConferenceError::Ended);
        }
        if call.state() != CallState::Answered {
            return Err(ConferenceError::NoSuchCall(call_id));
        }
        if inner
            .participants
            .iter()
            .any(|p| p.call.info().id == call_id)
        {
            return Ok(());
        }
        if let Some(max) = self.max_participants {
            if inner.participants.len() >= max {
                return Err(ConferenceError::Full(max));
            }
        }
        inner.participants.push(Participant {
            call,
            options: opts,
        });
        self.record(
            &mut inner,
            SimEvent::Joined {
                call_id: call_id.clone(),
            },
        );
        let _ = self.events_tx.send(ConferenceEvent::Join { call_id });
        self.ensure_ticking(&mut inner);
        Ok(())
    }

    async fn say(&self, text: &str, _opts: SayOptions) -> Result<MediaOutcome, ConferenceError> {
        {
            let mut inner = self.lock();
            if inner.ended {
                return Err(ConferenceError::Ended);
            }
            self.record(
                &mut inner,
                SimEvent::Said {
                    text: text.to_string(),
                },
            );
        }
        tokio::time::sleep(SPEECH_PER_CHAR * text.chars().count() as u32).await;
        if self.is_ended() {
            return Ok(MediaOutcome::Hangup);
        }
        Ok(MediaOutcome::Finished)
    }

    async fn end(&self) {
        let participants = {
            let mut inner = self.lock();
            if inner.ended {
                return;
            }
            inner.ended = true;
            self.record(&mut inner, SimEvent::ConferenceEnded);
            std::mem::take(&mut inner.participants)
        };
        let had_participants = !participants.is_empty();
        for participant in participants {
            let call_id = participant.call.info().id.clone();
            let _ = participant.call.hangup(Vec::new()).await;
            let mut inner = self.lock();
            self.record(
                &mut inner,
                SimEvent::Left {
                    call_id: call_id.clone(),
                },
            );
            let _ = self.events_tx.send(ConferenceEvent::Leave { call_id });
        }
        if had_participants {
            let _ = self.events_tx.send(ConferenceEvent::Empty);
        }
    }

    async fn next_event(&self) -> Option<ConferenceEvent> {
        let mut events = self.events_rx.lock().await;
        events.recv().await
    }
}
