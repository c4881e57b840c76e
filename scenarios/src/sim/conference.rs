//! A simulated conference: keeps a participant list with their state, and
//! on a 20 ms tick (like a mixer) notices participants whose call ended and
//! who started or stopped talking; reports join / leave / talking / silent /
//! empty events; plays wait music to a lone participant.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};

use super::media::{play_out, MediaClock, Signals};
use super::timeline::{SimEntry, SimEvent};
use crate::host::{
    CallControl, CallState, ConferenceControl, ConferenceError, ConferenceEvent, ConferenceOptions,
    MediaOutcome, ParticipantInfo, ParticipantOptions, ParticipantUpdate, PlayOptions,
    RecordOptions, RecordingInfo, SayOptions,
};

const TICK: Duration = Duration::from_millis(20);

/// Tells whether a call's caller is talking (the sim host looks up its calls).
pub type TalkingProbe = Arc<dyn Fn(&str) -> bool + Send + Sync>;

struct Participant {
    call: Arc<dyn CallControl>,
    options: ParticipantOptions,
    info: ParticipantInfo,
}

struct Inner {
    participants: Vec<Participant>,
    options: ConferenceOptions,
    music_on: bool,
    ended: bool,
    ticking: bool,
    recordings: HashMap<String, (Instant, String)>,
    next_recording: u32,
    timeline: Vec<SimEntry>,
}

/// An in-memory [`ConferenceControl`].
pub struct SimConference {
    name: String,
    me: Weak<SimConference>,
    start: Instant,
    clock: MediaClock,
    talking: Option<TalkingProbe>,
    inner: Mutex<Inner>,
    signals: watch::Sender<Signals>,
    events_tx: mpsc::UnboundedSender<ConferenceEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ConferenceEvent>>,
}

impl SimConference {
    pub fn new(name: &str) -> Arc<SimConference> {
        Self::build(name, None, None, MediaClock::default())
    }

    /// A conference that refuses more than `max` participants.
    pub fn with_max_participants(name: &str, max: usize) -> Arc<SimConference> {
        Self::build(name, Some(max), None, MediaClock::default())
    }

    pub(crate) fn build(
        name: &str,
        max_participants: Option<usize>,
        talking: Option<TalkingProbe>,
        clock: MediaClock,
    ) -> Arc<SimConference> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (signals, _) = watch::channel(Signals::default());
        Arc::new_cyclic(|me| SimConference {
            name: name.to_string(),
            me: me.clone(),
            start: Instant::now(),
            clock,
            talking,
            inner: Mutex::new(Inner {
                participants: Vec::new(),
                options: ConferenceOptions {
                    max_participants,
                    wait_music: None,
                },
                music_on: false,
                ended: false,
                ticking: false,
                recordings: HashMap::new(),
                next_recording: 1,
                timeline: Vec::new(),
            }),
            signals,
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

    /// When the conference was created.
    pub fn started_at(&self) -> Instant {
        self.start
    }

    pub fn name(&self) -> &str {
        &self.name
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

    /// The room-wide options as configured.
    pub fn options(&self) -> ConferenceOptions {
        self.lock().options.clone()
    }

    pub fn is_ended(&self) -> bool {
        self.lock().ended
    }

    /// Starts or stops wait music to match who is in the room.
    fn update_music(&self, inner: &mut Inner) {
        let want = inner.participants.len() == 1 && inner.options.wait_music.is_some();
        if want == inner.music_on {
            return;
        }
        inner.music_on = want;
        let source = if want {
            inner.options.wait_music.clone()
        } else {
            None
        };
        self.record(inner, SimEvent::WaitMusic { source });
    }

    /// Removes participants whose call ended and reports who started or
    /// stopped talking; false once nobody is left to watch.
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
        if let Some(probe) = self.talking.clone() {
            let mut changes = Vec::new();
            for participant in inner.participants.iter_mut() {
                let talking = probe(&participant.info.call_id) && !participant.info.muted;
                if talking != participant.info.talking {
                    participant.info.talking = talking;
                    changes.push((participant.info.call_id.clone(), talking));
                }
            }
            for (call_id, talking) in changes {
                let (event, note) = if talking {
                    (
                        ConferenceEvent::Talking {
                            call_id: call_id.clone(),
                        },
                        SimEvent::Talking { call_id },
                    )
                } else {
                    (
                        ConferenceEvent::Silent {
                            call_id: call_id.clone(),
                        },
                        SimEvent::Silent { call_id },
                    )
                };
                self.record(&mut inner, note);
                let _ = self.events_tx.send(event);
            }
        }
        if before > 0 && inner.participants.is_empty() {
            let _ = self.events_tx.send(ConferenceEvent::Empty);
        }
        self.update_music(&mut inner);
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

    async fn media(
        &self,
        event: SimEvent,
        what: &str,
        length: Option<Duration>,
    ) -> Result<MediaOutcome, ConferenceError> {
        let mut signals = self.signals.subscribe();
        let before = *signals.borrow_and_update();
        {
            let mut inner = self.lock();
            if inner.ended {
                return Err(ConferenceError::Ended);
            }
            self.record(&mut inner, event);
        }
        let outcome = play_out(&mut signals, before, length, false).await;
        if outcome == MediaOutcome::Interrupted {
            let mut inner = self.lock();
            self.record(
                &mut inner,
                SimEvent::Interrupted {
                    text: what.to_string(),
                },
            );
        }
        Ok(outcome)
    }
}

#[async_trait::async_trait]
impl ConferenceControl for SimConference {
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
        if call.state() == CallState::Ended {
            return Err(ConferenceError::CallEnded(call_id));
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
        if let Some(max) = inner.options.max_participants {
            if inner.participants.len() >= max {
                return Err(ConferenceError::Full(max));
            }
        }
        inner.participants.push(Participant {
            call,
            options: opts,
            info: ParticipantInfo {
                call_id: call_id.clone(),
                muted: opts.muted,
                deaf: opts.deaf,
                talking: false,
                gain_db: 0.0,
            },
        });
        self.record(
            &mut inner,
            SimEvent::Joined {
                call_id: call_id.clone(),
            },
        );
        let _ = self.events_tx.send(ConferenceEvent::Join { call_id });
        self.update_music(&mut inner);
        self.ensure_ticking(&mut inner);
        Ok(())
    }

    fn configure(&self, opts: ConferenceOptions) -> Result<(), ConferenceError> {
        let mut inner = self.lock();
        if inner.ended {
            return Err(ConferenceError::Ended);
        }
        if inner.options == opts {
            return Ok(());
        }
        inner.options = opts.clone();
        self.record(
            &mut inner,
            SimEvent::Configured {
                max_participants: opts.max_participants,
                wait_music: opts.wait_music,
            },
        );
        // New music replaces the old one.
        if inner.music_on {
            inner.music_on = false;
            self.record(&mut inner, SimEvent::WaitMusic { source: None });
        }
        self.update_music(&mut inner);
        Ok(())
    }

    fn participant(&self, call_id: &str) -> Option<ParticipantInfo> {
        self.lock()
            .participants
            .iter()
            .find(|p| p.info.call_id == call_id)
            .map(|p| p.info.clone())
    }

    async fn update_participant(
        &self,
        call_id: &str,
        update: ParticipantUpdate,
    ) -> Result<(), ConferenceError> {
        let mut inner = self.lock();
        if inner.ended {
            return Err(ConferenceError::Ended);
        }
        let Some(participant) = inner
            .participants
            .iter_mut()
            .find(|p| p.info.call_id == call_id)
        else {
            return Err(ConferenceError::NoSuchCall(call_id.to_string()));
        };
        let mut changes = Vec::new();
        if let Some(muted) = update.muted.filter(|m| *m != participant.info.muted) {
            participant.info.muted = muted;
            changes.push(if muted { "muted" } else { "unmuted" }.to_string());
        }
        if let Some(deaf) = update.deaf.filter(|d| *d != participant.info.deaf) {
            participant.info.deaf = deaf;
            changes.push(if deaf { "deafened" } else { "undeafened" }.to_string());
        }
        if let Some(gain) = update.gain_db.filter(|g| *g != participant.info.gain_db) {
            participant.info.gain_db = gain;
            changes.push(format!("gain {gain:+} dB"));
        }
        for change in changes {
            self.record(
                &mut inner,
                SimEvent::Participant {
                    call_id: call_id.to_string(),
                    change,
                },
            );
        }
        Ok(())
    }

    async fn kick(&self, call_id: &str) -> Result<(), ConferenceError> {
        let call = {
            let mut inner = self.lock();
            let Some(index) = inner
                .participants
                .iter()
                .position(|p| p.info.call_id == call_id)
            else {
                return Err(ConferenceError::NoSuchCall(call_id.to_string()));
            };
            let participant = inner.participants.remove(index);
            self.record(
                &mut inner,
                SimEvent::Kicked {
                    call_id: call_id.to_string(),
                },
            );
            self.record(
                &mut inner,
                SimEvent::Left {
                    call_id: call_id.to_string(),
                },
            );
            let _ = self.events_tx.send(ConferenceEvent::Leave {
                call_id: call_id.to_string(),
            });
            if inner.participants.is_empty() {
                let _ = self.events_tx.send(ConferenceEvent::Empty);
            }
            self.update_music(&mut inner);
            participant.call
        };
        let _ = call.hangup(Vec::new()).await;
        Ok(())
    }

    async fn say(&self, text: &str, _opts: SayOptions) -> Result<MediaOutcome, ConferenceError> {
        let event = SimEvent::Said {
            text: text.to_string(),
        };
        self.media(event, text, Some(self.clock.speech(text))).await
    }

    async fn play(&self, source: &str, opts: PlayOptions) -> Result<MediaOutcome, ConferenceError> {
        let event = SimEvent::Played {
            source: source.to_string(),
            looped: opts.looped,
        };
        let length = (!opts.looped).then(|| self.clock.play(source));
        self.media(event, source, length).await
    }

    fn stop_media(&self) {
        self.signals.send_modify(|s| s.stops += 1);
    }

    async fn record(&self, opts: RecordOptions) -> Result<RecordingInfo, ConferenceError> {
        let mut inner = self.lock();
        if inner.ended {
            return Err(ConferenceError::Ended);
        }
        let id = format!("rec-{}", inner.next_recording);
        inner.next_recording += 1;
        let format = opts.format.unwrap_or_else(|| "wav".to_string());
        let location = format!("sim://recordings/{}-{id}.{format}", self.name);
        inner
            .recordings
            .insert(id.clone(), (Instant::now(), location.clone()));
        self.record(
            &mut inner,
            SimEvent::RecordingStarted {
                id: id.clone(),
                location: location.clone(),
            },
        );
        Ok(RecordingInfo {
            id,
            location,
            duration_ms: 0,
            tracks: Vec::new(),
        })
    }

    async fn stop_recording(&self, id: &str) -> Result<RecordingInfo, ConferenceError> {
        let mut inner = self.lock();
        let Some((started, location)) = inner.recordings.remove(id) else {
            return Err(ConferenceError::Other(format!(
                "no recording {id} in progress"
            )));
        };
        let duration_ms = started.elapsed().as_millis() as u64;
        self.record(
            &mut inner,
            SimEvent::RecordingStopped {
                id: id.to_string(),
                location: location.clone(),
                duration_ms,
            },
        );
        Ok(RecordingInfo {
            id: id.to_string(),
            location,
            duration_ms,
            tracks: Vec::new(),
        })
    }

    async fn end(&self) {
        let participants = {
            let mut inner = self.lock();
            if inner.ended {
                return;
            }
            inner.ended = true;
            self.record(&mut inner, SimEvent::ConferenceEnded);
            let recordings: Vec<_> = inner.recordings.drain().collect();
            for (id, (started, location)) in recordings {
                let duration_ms = started.elapsed().as_millis() as u64;
                self.record(
                    &mut inner,
                    SimEvent::RecordingStopped {
                        id,
                        location,
                        duration_ms,
                    },
                );
            }
            std::mem::take(&mut inner.participants)
        };
        self.signals.send_modify(|s| s.ended = true);
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
