//! A conference room: the media mix, who is in it, its options and its
//! events, as the room's scenario instance sees it ([`ConferenceControl`]).

use std::sync::{Arc, Mutex, Weak};

use switchboard_media::ConferenceHandle;
use switchboard_scenarios::{
    CallControl, CallState, ConferenceControl, ConferenceError, ConferenceEvent, ConferenceOptions,
    MediaOutcome, ParticipantInfo, ParticipantOptions, ParticipantUpdate, PlayOptions,
    RecordOptions, RecordingInfo, SayOptions,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::call::media_outcome;
use super::events::{EngineEvent, Scope};
use super::recordings::{self, ActiveRecordings, RecordingError};
use super::{Call, EngineInner};
use crate::sources::render_tone;
use crate::tts::Voice;
use switchboard_scenarios::tone::ToneSpec;

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
    muted: bool,
    deaf: bool,
    gain_db: f64,
    talking: bool,
}

impl Participant {
    fn media_options(&self) -> switchboard_media::ParticipantOptions {
        switchboard_media::ParticipantOptions {
            muted: self.muted,
            deaf: self.deaf,
            gain_db: self.gain_db as f32,
        }
    }

    fn info(&self) -> ParticipantInfo {
        ParticipantInfo {
            call_id: self.call.id().to_string(),
            muted: self.muted,
            deaf: self.deaf,
            talking: self.talking,
            gain_db: self.gain_db,
        }
    }
}

#[derive(Default)]
struct Room {
    participants: Vec<Participant>,
    options: ConferenceOptions,
    /// The participant hearing the wait music, if any.
    waiting: Option<String>,
}

pub struct Conference {
    me: Weak<Conference>,
    name: String,
    scope: Scope,
    media: ConferenceHandle,
    engine: Weak<EngineInner>,
    room: Mutex<Room>,
    events_tx: mpsc::UnboundedSender<ConferenceEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<ConferenceEvent>>,
    /// Cancelled when the room closes: participant watchers stop.
    closed: CancellationToken,
    recordings: ActiveRecordings,
}

impl Conference {
    pub(crate) fn new(engine: &Arc<EngineInner>, scope: Scope, name: &str) -> Arc<Conference> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let conference = Arc::new_cyclic(|me| Conference {
            me: me.clone(),
            name: name.to_string(),
            scope,
            media: engine.media.create_conference(name),
            engine: Arc::downgrade(engine),
            room: Mutex::new(Room::default()),
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
            closed: CancellationToken::new(),
            recordings: ActiveRecordings::default(),
        });
        conference.pump_talking_events();
        conference
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
            participants: self
                .lock()
                .participants
                .iter()
                .map(|p| ParticipantSnapshot {
                    call_id: p.call.id().to_string(),
                    from: p.call.info().from.clone(),
                    muted: p.muted,
                    deaf: p.deaf,
                    talking: p.talking,
                })
                .collect(),
        }
    }

    /// Mutes or unmutes a participant (management API).
    pub async fn set_muted(&self, call_id: &str, muted: bool) -> Result<(), ConferenceError> {
        self.update_participant(
            call_id,
            ParticipantUpdate {
                muted: Some(muted),
                ..Default::default()
            },
        )
        .await
    }

    /// Frees the mix. Participants still up are not hung up (see `end`).
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.media.close();
        info!(app = %self.scope.app, conference = %self.name, "conference closed");
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Room> {
        self.room.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a participant out of the mix (its call may go on).
    fn remove(&self, call_id: &str) {
        let (removed, now_empty) = {
            let mut room = self.lock();
            let before = room.participants.len();
            let removed = room
                .participants
                .iter()
                .position(|p| p.call.id() == call_id)
                .map(|i| room.participants.remove(i));
            if room.waiting.as_deref() == Some(call_id) {
                room.waiting = None;
            }
            (
                removed.filter(|_| room.participants.len() < before),
                room.participants.is_empty(),
            )
        };
        let Some(removed) = removed else {
            return;
        };
        if let Some(leg) = removed.call.leg() {
            self.media.remove(leg);
        }
        removed.call.set_conference(None);
        info!(conference = %self.name, call = call_id, "left conference");
        if let Some(engine) = self.engine.upgrade() {
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
        self.update_wait_music();
    }

    /// Wait music plays to a participant who is alone, and stops when someone
    /// joins.
    fn update_wait_music(&self) {
        let (start, stop, source) = {
            let mut room = self.lock();
            let source = room.options.wait_music.clone();
            let alone = (room.participants.len() == 1).then(|| room.participants[0].call.clone());
            match (&room.waiting, alone, source) {
                (None, Some(call), Some(source)) => {
                    room.waiting = Some(call.id().to_string());
                    (Some(call), None, Some(source))
                }
                (Some(waiting), alone, _)
                    if alone.as_ref().map(|c| c.id()) != Some(waiting.as_str()) =>
                {
                    let stop = room
                        .participants
                        .iter()
                        .find(|p| p.call.id() == waiting)
                        .map(|p| p.call.clone());
                    room.waiting = None;
                    (None, stop, None)
                }
                _ => (None, None, None),
            }
        };
        if let Some(call) = stop {
            CallControl::stop_media(call.as_ref());
        }
        if let (Some(call), Some(source)) = (start, source) {
            let name = self.name.clone();
            tokio::spawn(async move {
                let looped = PlayOptions {
                    looped: true,
                    barge_in: false,
                };
                if let Err(e) = call.play(&source, looped).await {
                    debug!(conference = %name, call = %call.id(), error = %e, "wait music");
                }
            });
        }
    }

    async fn clip(&self, source: &str) -> Result<switchboard_media::AudioClip, ConferenceError> {
        let engine = self.engine.upgrade().ok_or(ConferenceError::Ended)?;
        let call_app = engine
            .apps
            .get(&self.scope.app)
            .ok_or(ConferenceError::Ended)?;
        engine
            .sources
            .resolve(&call_app, source)
            .await
            .map_err(|e| ConferenceError::Other(e.to_string()))
    }

    async fn play_into_mix(
        &self,
        clip: switchboard_media::AudioClip,
        looped: bool,
    ) -> Result<MediaOutcome, ConferenceError> {
        let playback = self
            .media
            .play(clip, switchboard_media::PlayOptions { looped });
        tokio::select! {
            outcome = playback => Ok(media_outcome(outcome)),
            _ = self.closed.cancelled() => Err(ConferenceError::Ended),
        }
    }
}

#[async_trait::async_trait]
impl ConferenceControl for Conference {
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
            .map(|p| p.call.id().to_string())
            .collect()
    }

    fn configure(&self, opts: ConferenceOptions) -> Result<(), ConferenceError> {
        if opts.max_participants == Some(0) {
            return Err(ConferenceError::Other(
                "maxParticipants must be at least 1".into(),
            ));
        }
        if let Some(source) = &opts.wait_music {
            switchboard_scenarios::source::PlaySource::parse(source)
                .map_err(|e| ConferenceError::Other(e.to_string()))?;
        }
        self.lock().options = opts;
        self.update_wait_music();
        Ok(())
    }

    fn participant(&self, call_id: &str) -> Option<ParticipantInfo> {
        self.lock()
            .participants
            .iter()
            .find(|p| p.call.id() == call_id)
            .map(Participant::info)
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
        // Only calls of this engine and this application can join. A caller
        // who hung up meanwhile is not a scenario bug: say so with its own error.
        let call = engine
            .calls
            .get(&id)
            .map(|c| c.clone())
            .filter(|c| c.app().id == self.scope.app)
            .ok_or_else(|| {
                if call.state() == CallState::Ended {
                    ConferenceError::CallEnded(id.clone())
                } else {
                    ConferenceError::NoSuchCall(id.clone())
                }
            })?;
        {
            let room = self.lock();
            if room.participants.iter().any(|p| p.call.id() == id) {
                return Ok(());
            }
            if let Some(max) = room.options.max_participants {
                if room.participants.len() >= max {
                    return Err(ConferenceError::Full(max));
                }
            }
        }
        if call.current_state() != CallState::Answered {
            call.answer(Vec::new()).await.map_err(|e| {
                if call.current_state() == CallState::Ended {
                    ConferenceError::CallEnded(id.clone())
                } else {
                    ConferenceError::Other(format!("cannot answer {id}: {e}"))
                }
            })?;
        }
        let leg = call
            .leg()
            .ok_or_else(|| ConferenceError::CallEnded(id.clone()))?
            .clone();
        let participant = Participant {
            call: call.clone(),
            muted: opts.muted,
            deaf: opts.deaf,
            gain_db: 0.0,
            talking: false,
        };
        {
            let mut room = self.lock();
            if let Some(max) = room.options.max_participants {
                if room.participants.len() >= max {
                    return Err(ConferenceError::Full(max));
                }
            }
            self.media
                .add(&leg, participant.media_options())
                .map_err(|e| ConferenceError::Other(e.to_string()))?;
            room.participants.push(participant);
        }
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
        if opts.beep {
            if let Ok(spec) = ToneSpec::parse("tone:beep") {
                let beep = render_tone(&spec, switchboard_media::CLOCK_RATE);
                // Not awaited: the beep plays while the call goes on.
                drop(
                    self.media
                        .play(beep, switchboard_media::PlayOptions::default()),
                );
            }
        }
        self.update_wait_music();

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

    async fn update_participant(
        &self,
        call_id: &str,
        update: ParticipantUpdate,
    ) -> Result<(), ConferenceError> {
        let mut room = self.lock();
        let participant = room
            .participants
            .iter_mut()
            .find(|p| p.call.id() == call_id)
            .ok_or_else(|| ConferenceError::NoSuchCall(call_id.to_string()))?;
        if let Some(muted) = update.muted {
            participant.muted = muted;
        }
        if let Some(deaf) = update.deaf {
            participant.deaf = deaf;
        }
        if let Some(gain) = update.gain_db {
            // The range scenarios are told (switchboard.d.ts).
            if !(-60.0..=24.0).contains(&gain) {
                return Err(ConferenceError::Other(format!(
                    "gain must be between -60 and +24 dB, not {gain}"
                )));
            }
            participant.gain_db = gain;
        }
        let options = participant.media_options();
        if let Some(leg) = participant.call.leg() {
            self.media
                .add(leg, options)
                .map_err(|e| ConferenceError::Other(e.to_string()))?;
        }
        Ok(())
    }

    async fn kick(&self, call_id: &str) -> Result<(), ConferenceError> {
        let call = self
            .lock()
            .participants
            .iter()
            .find(|p| p.call.id() == call_id)
            .map(|p| p.call.clone())
            .ok_or_else(|| ConferenceError::NoSuchCall(call_id.to_string()))?;
        self.remove(call_id);
        let _ = call.hangup(Vec::new()).await;
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
        self.play_into_mix(clip, false).await
    }

    async fn play(&self, source: &str, opts: PlayOptions) -> Result<MediaOutcome, ConferenceError> {
        let clip = self.clip(source).await?;
        self.play_into_mix(clip, opts.looped).await
    }

    fn stop_media(&self) {
        self.media.stop_media();
    }

    async fn record(&self, opts: RecordOptions) -> Result<RecordingInfo, ConferenceError> {
        self.start_recording(opts).await
    }

    async fn stop_recording(&self, id: &str) -> Result<RecordingInfo, ConferenceError> {
        self.finish_recording(id).await
    }

    async fn end(&self) {
        let participants: Vec<Arc<Call>> = self
            .lock()
            .participants
            .iter()
            .map(|p| p.call.clone())
            .collect();
        for call in participants {
            let _ = call.hangup(Vec::new()).await;
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

impl Conference {
    /// The room's recordings in progress.
    pub(crate) fn recordings(&self) -> &ActiveRecordings {
        &self.recordings
    }
    async fn start_recording(&self, opts: RecordOptions) -> Result<RecordingInfo, ConferenceError> {
        if self.closed.is_cancelled() {
            return Err(ConferenceError::Ended);
        }
        let engine = self.engine.upgrade().ok_or(ConferenceError::Ended)?;
        let other = |e: RecordingError| ConferenceError::Other(e.to_string());
        let (id, path) = recordings::new_path(
            &engine.config.recordings_dir(),
            &self.scope,
            &format!("conf-{}", self.name),
            opts.format.as_deref(),
        )
        .map_err(other)?;
        let recording = self
            .media
            .record(
                &path,
                switchboard_media::RecordOptions {
                    stereo: false,
                    tracks: opts.tracks,
                },
            )
            .map_err(|e| other(e.into()))?;
        info!(conference = %self.name, recording = %id, path = %path.display(), "recording");
        Ok(self.recordings.started(id, &path, recording))
    }

    async fn finish_recording(&self, id: &str) -> Result<RecordingInfo, ConferenceError> {
        match self.recordings.stop(id).await {
            Ok(info) => Ok(info),
            Err(_) if self.closed.is_cancelled() => Err(ConferenceError::Ended),
            Err(e) => Err(ConferenceError::Other(e.to_string())),
        }
    }

    /// Turns the mix's talking detection into conference events (for the
    /// room's scenario) and engine events (for the API), until the mix
    /// closes.
    fn pump_talking_events(&self) {
        let Some(mut events) = self.media.take_events() else {
            return;
        };
        let room = self.me.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let Some(room) = room.upgrade() else {
                    return;
                };
                let (leg, talking) = match event {
                    switchboard_media::ConferenceEvent::Talking(leg) => (leg, true),
                    switchboard_media::ConferenceEvent::Silent(leg) => (leg, false),
                };
                room.set_talking(leg, talking);
            }
        });
    }

    fn set_talking(&self, leg: switchboard_media::LegId, talking: bool) {
        let call_id = {
            let mut room = self.lock();
            let Some(p) = room
                .participants
                .iter_mut()
                .find(|p| p.call.leg().map(|l| l.id()) == Some(leg))
            else {
                return;
            };
            if p.talking == talking {
                return;
            }
            p.talking = talking;
            p.call.id().to_string()
        };
        debug!(conference = %self.name, call = %call_id, talking, "talking");
        if let Some(engine) = self.engine.upgrade() {
            engine.observers.emit(EngineEvent::ParticipantTalking {
                scope: self.scope.clone(),
                conference: self.name.clone(),
                call_id: call_id.clone(),
                talking,
            });
        }
        let event = if talking {
            ConferenceEvent::Talking { call_id }
        } else {
            ConferenceEvent::Silent { call_id }
        };
        let _ = self.events_tx.send(event);
    }
}
