//! A simulated call: scripted key presses, talking and hangup, media that
//! takes time (speech in proportion to its length), and a timeline of what
//! happened.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};

use super::media::{play_out, MediaClock, Playing, Signals};
use super::timeline::{HangupSide, SimEntry, SimEvent};
use crate::host::{
    CallControl, CallError, CallEvent, CallInfo, CallState, MediaOutcome, PlayOptions,
    RecordOptions, RecordingInfo, SayOptions,
};

/// Default time a caller takes between two keys of a scripted sequence.
const DEFAULT_KEY_GAP: Duration = Duration::from_millis(250);
/// Keys typed in answer to a prompt start this long after it starts, and
/// come this far apart.
pub const PROMPT_KEY_GAP: Duration = Duration::from_millis(300);
/// Time to send one DTMF digit (tone plus pause).
const DIGIT_TIME: Duration = Duration::from_millis(150);

#[derive(Debug, Clone)]
enum Step {
    Key(char),
    Hangup,
    Talk(bool),
}

/// Builds a [`SimCall`]; see [`SimCall::builder`].
#[derive(Clone)]
pub struct SimCallBuilder {
    info: CallInfo,
    script: Vec<(Duration, Step)>,
    on_prompt: Vec<String>,
    clock: MediaClock,
    state: CallState,
}

impl SimCallBuilder {
    pub fn from(mut self, uri: &str) -> Self {
        self.info.from = uri.to_string();
        self
    }

    pub fn to(mut self, uri: &str) -> Self {
        self.info.to = uri.to_string();
        self
    }

    pub fn destination(mut self, destination: &str) -> Self {
        self.info.destination = destination.to_string();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.info
            .headers
            .push((name.to_string(), value.to_string()));
        self
    }

    /// `inbound` (default) or `outbound`.
    pub fn direction(mut self, direction: &str) -> Self {
        self.info.direction = direction.to_string();
        self
    }

    /// The caller types `keys` starting `at` (since the call was built), one
    /// key every 250 ms.
    pub fn dtmf(self, at: Duration, keys: &str) -> Self {
        self.dtmf_with_gap(at, keys, DEFAULT_KEY_GAP)
    }

    /// Like [`SimCallBuilder::dtmf`] with `gap` between keys.
    pub fn dtmf_with_gap(mut self, at: Duration, keys: &str, gap: Duration) -> Self {
        let mut when = at;
        for key in keys.chars() {
            self.script.push((when, Step::Key(key)));
            when += gap;
        }
        self
    }

    /// The caller answers the next prompt with `keys`: once a `say` or
    /// `play` has started (after the keys of earlier calls to this method
    /// were typed) and then nothing has played for 300 ms (the caller heard
    /// the prompts through), the keys come, 300 ms apart.
    pub fn dtmf_on_prompt(mut self, keys: &str) -> Self {
        self.on_prompt.push(keys.to_string());
        self
    }

    /// The caller hangs up `at` (since the call was built).
    pub fn hangup_at(mut self, at: Duration) -> Self {
        self.script.push((at, Step::Hangup));
        self
    }

    /// The caller talks from `at` for `length` (a conference sees it as
    /// `talking`, then `silent`).
    pub fn talk(mut self, at: Duration, length: Duration) -> Self {
        self.script.push((at, Step::Talk(true)));
        self.script.push((at + length, Step::Talk(false)));
        self
    }

    /// How long speech takes per character of text.
    pub fn speech_per_char(mut self, per_char: Duration) -> Self {
        self.clock.speech_per_char = per_char;
        self
    }

    /// How long playing `source` (a file or URL) takes; tones take what
    /// their spec says, other sources 3 s.
    pub fn media_length(mut self, source: &str, length: Duration) -> Self {
        Arc::make_mut(&mut self.clock.lengths).insert(source.to_string(), length);
        self
    }

    pub(crate) fn media_lengths(mut self, lengths: &HashMap<String, Duration>) -> Self {
        Arc::make_mut(&mut self.clock.lengths).extend(lengths.iter().map(|(k, v)| (k.clone(), *v)));
        self
    }

    /// Starts the call already answered (e.g. as an outbound leg would be).
    pub fn answered(mut self) -> Self {
        self.state = CallState::Answered;
        self
    }

    /// The id the call will have.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// Creates the call and starts its script (needs a tokio runtime).
    pub fn build(self) -> Arc<SimCall> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (signals, _) = watch::channel(Signals::default());
        let call = Arc::new(SimCall {
            info: self.info,
            start: Instant::now(),
            clock: self.clock,
            inner: Mutex::new(Inner {
                state: self.state,
                early_media: false,
                talking: false,
                bridged: None,
                recordings: HashMap::new(),
                next_recording: 1,
                timeline: Vec::new(),
            }),
            events_tx,
            events_rx: tokio::sync::Mutex::new(events_rx),
            signals,
        });
        if !self.script.is_empty() {
            let mut script = self.script;
            script.sort_by_key(|(at, _)| *at);
            tokio::spawn(run_script(call.clone(), script));
        }
        if !self.on_prompt.is_empty() {
            tokio::spawn(answer_prompts(call.clone(), self.on_prompt));
        }
        call
    }
}

async fn run_script(call: Arc<SimCall>, script: Vec<(Duration, Step)>) {
    for (at, step) in script {
        tokio::time::sleep_until(call.start + at).await;
        if call.state() == CallState::Ended {
            return;
        }
        match step {
            Step::Key(key) => call.press(&key.to_string()),
            Step::Hangup => call.remote_hangup(),
            Step::Talk(talking) => call.lock().talking = talking,
        }
    }
}

/// Types each sequence in answer to the next prompt, once it has played
/// (nothing played for 300 ms).
async fn answer_prompts(call: Arc<SimCall>, sequences: Vec<String>) {
    let mut signals = call.signals.subscribe();
    let mut seen = signals.borrow_and_update().media_starts;
    for keys in sequences {
        if signals
            .wait_for(|s| s.ended || s.media_starts > seen)
            .await
            .is_err()
        {
            return;
        }
        loop {
            match signals.wait_for(|s| s.ended || s.media_playing == 0).await {
                Ok(s) if s.ended => return,
                Ok(_) => {}
                Err(_) => return,
            }
            tokio::time::sleep(PROMPT_KEY_GAP).await;
            if signals.borrow().media_playing == 0 {
                break;
            }
        }
        for (index, key) in keys.chars().enumerate() {
            if index > 0 {
                tokio::time::sleep(PROMPT_KEY_GAP).await;
            }
            if call.state() == CallState::Ended {
                return;
            }
            call.press(&key.to_string());
        }
        seen = signals.borrow_and_update().media_starts;
    }
}

struct Recording {
    started: Instant,
    location: String,
}

struct Inner {
    state: CallState,
    early_media: bool,
    talking: bool,
    bridged: Option<String>,
    recordings: HashMap<String, Recording>,
    next_recording: u32,
    timeline: Vec<SimEntry>,
}

/// An in-memory [`CallControl`].
pub struct SimCall {
    info: CallInfo,
    start: Instant,
    clock: MediaClock,
    inner: Mutex<Inner>,
    events_tx: mpsc::UnboundedSender<CallEvent>,
    events_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<CallEvent>>,
    signals: watch::Sender<Signals>,
}

impl SimCall {
    /// A call with id `id` from `sip:caller@sim` to `sip:switchboard@sim`,
    /// transport `sim`.
    pub fn builder(id: &str) -> SimCallBuilder {
        SimCallBuilder {
            info: CallInfo {
                id: id.to_string(),
                from: "sip:caller@sim".to_string(),
                to: "sip:switchboard@sim".to_string(),
                destination: String::new(),
                headers: Vec::new(),
                transport: "sim".to_string(),
                direction: "inbound".to_string(),
            },
            script: Vec::new(),
            on_prompt: Vec::new(),
            clock: MediaClock::default(),
            state: CallState::Incoming,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(inner: &mut Inner, start: Instant, event: SimEvent) {
        inner.timeline.push(SimEntry {
            at: start.elapsed(),
            event,
        });
    }

    /// Adds a line to the timeline (the sim host notes routes and logs here).
    pub fn note(&self, event: SimEvent) {
        Self::record(&mut self.lock(), self.start, event);
    }

    /// What happened so far.
    pub fn timeline(&self) -> Vec<SimEntry> {
        self.lock().timeline.clone()
    }

    /// When the call was built.
    pub fn started_at(&self) -> Instant {
        self.start
    }

    /// The texts spoken to the caller, in order.
    pub fn said(&self) -> Vec<String> {
        self.events(|e| match e {
            SimEvent::Said { text } => Some(text.clone()),
            _ => None,
        })
    }

    /// The sources played to the caller, in order.
    pub fn played(&self) -> Vec<String> {
        self.events(|e| match e {
            SimEvent::Played { source, .. } => Some(source.clone()),
            _ => None,
        })
    }

    fn events<T>(&self, pick: impl Fn(&SimEvent) -> Option<T>) -> Vec<T> {
        self.lock()
            .timeline
            .iter()
            .filter_map(|e| pick(&e.event))
            .collect()
    }

    /// Whether the timeline has an entry matching `predicate`.
    pub fn saw(&self, predicate: impl Fn(&SimEvent) -> bool) -> bool {
        self.lock().timeline.iter().any(|e| predicate(&e.event))
    }

    /// The To URI (for a dialed call: what was dialed).
    pub fn to_uri(&self) -> &str {
        &self.info.to
    }

    /// Time since the call was built.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Whether the caller is talking now (scripted with `talk`).
    pub fn is_talking(&self) -> bool {
        let inner = self.lock();
        inner.talking && inner.state != CallState::Ended
    }

    /// The caller presses keys now.
    pub fn press(&self, keys: &str) {
        for key in keys.chars() {
            let mut inner = self.lock();
            if inner.state == CallState::Ended {
                return;
            }
            Self::record(&mut inner, self.start, SimEvent::Digit { digit: key });
            let _ = self.events_tx.send(CallEvent::Dtmf {
                digit: key,
                source: "rfc4733".to_string(),
            });
            self.signals.send_modify(|s| s.keys += 1);
        }
    }

    /// The caller hangs up now.
    pub fn remote_hangup(&self) {
        self.end(
            SimEvent::HungUp {
                by: HangupSide::Remote,
            },
            "remote-bye",
        );
    }

    /// Waits until the call has ended.
    pub async fn ended(&self) {
        let mut signals = self.signals.subscribe();
        let _ = signals.wait_for(|s| s.ended).await;
    }

    fn end(&self, event: SimEvent, reason: &str) -> bool {
        let mut inner = self.lock();
        if inner.state == CallState::Ended {
            return false;
        }
        inner.state = CallState::Ended;
        Self::record(&mut inner, self.start, event);
        // Recordings end with the call.
        let recordings: Vec<(String, Recording)> = inner.recordings.drain().collect();
        for (id, recording) in recordings {
            let duration_ms = recording.started.elapsed().as_millis() as u64;
            Self::record(
                &mut inner,
                self.start,
                SimEvent::RecordingStopped {
                    id,
                    location: recording.location,
                    duration_ms,
                },
            );
        }
        inner.bridged = None;
        // Queued before `ended` is visible: next_event relies on that order.
        let _ = self.events_tx.send(CallEvent::Hangup {
            reason: reason.to_string(),
        });
        self.signals.send_modify(|s| s.ended = true);
        true
    }

    /// Checks that media may flow (answered, or early media) and notes `event`.
    fn start_media(&self, event: SimEvent) -> Result<(), CallError> {
        let mut inner = self.lock();
        match inner.state {
            CallState::Answered => {}
            CallState::Ended => return Err(CallError::Ended),
            _ if inner.early_media => {}
            other => {
                return Err(CallError::InvalidState(format!(
                    "cannot play media on a call that is {} (answer it, or use earlyMedia)",
                    other.as_str()
                )))
            }
        }
        Self::record(&mut inner, self.start, event);
        Ok(())
    }

    async fn media(
        &self,
        event: SimEvent,
        what: &str,
        length: Option<Duration>,
        barge_in: bool,
    ) -> Result<MediaOutcome, CallError> {
        let mut signals = self.signals.subscribe();
        let before = *signals.borrow_and_update();
        self.start_media(event)?;
        let playing = Playing::start(&self.signals);
        let outcome = play_out(&mut signals, before, length, barge_in).await;
        drop(playing);
        if outcome == MediaOutcome::Interrupted {
            self.note(SimEvent::Interrupted {
                text: what.to_string(),
            });
        }
        Ok(outcome)
    }

    fn answered_or(&self, what: &str) -> Result<(), CallError> {
        match self.state() {
            CallState::Answered => Ok(()),
            CallState::Ended => Err(CallError::Ended),
            other => Err(CallError::InvalidState(format!(
                "cannot {what} a call that is {}",
                other.as_str()
            ))),
        }
    }
}

#[async_trait::async_trait]
impl CallControl for SimCall {
    fn info(&self) -> &CallInfo {
        &self.info
    }

    fn state(&self) -> CallState {
        self.lock().state
    }

    async fn answer(&self, headers: Vec<(String, String)>) -> Result<(), CallError> {
        let mut inner = self.lock();
        match inner.state {
            CallState::Ended => Err(CallError::Ended),
            CallState::Answered => Ok(()),
            CallState::Incoming | CallState::Ringing => {
                inner.state = CallState::Answered;
                Self::record(&mut inner, self.start, SimEvent::Answered);
                if !headers.is_empty() {
                    Self::record(&mut inner, self.start, SimEvent::SentHeaders { headers });
                }
                Ok(())
            }
        }
    }

    async fn ring(&self) -> Result<(), CallError> {
        let mut inner = self.lock();
        match inner.state {
            CallState::Ended => Err(CallError::Ended),
            CallState::Answered => Err(CallError::InvalidState(
                "cannot ring an answered call".into(),
            )),
            CallState::Incoming | CallState::Ringing => {
                inner.state = CallState::Ringing;
                Self::record(&mut inner, self.start, SimEvent::Ringing);
                Ok(())
            }
        }
    }

    async fn early_media(&self) -> Result<(), CallError> {
        let mut inner = self.lock();
        match inner.state {
            CallState::Ended => Err(CallError::Ended),
            CallState::Answered => Err(CallError::InvalidState(
                "the call is already answered".into(),
            )),
            CallState::Incoming | CallState::Ringing => {
                if !inner.early_media {
                    inner.early_media = true;
                    inner.state = CallState::Ringing;
                    Self::record(&mut inner, self.start, SimEvent::EarlyMedia);
                }
                Ok(())
            }
        }
    }

    async fn reject(&self, code: u16, reason: Option<String>) -> Result<(), CallError> {
        match self.state() {
            CallState::Ended => Err(CallError::Ended),
            CallState::Answered => Err(CallError::InvalidState(
                "cannot reject an answered call".into(),
            )),
            CallState::Incoming | CallState::Ringing => {
                self.end(SimEvent::Rejected { code, reason }, "local");
                Ok(())
            }
        }
    }

    async fn hangup(&self, headers: Vec<(String, String)>) -> Result<(), CallError> {
        if !headers.is_empty() && self.state() != CallState::Ended {
            self.note(SimEvent::SentHeaders { headers });
        }
        self.end(
            SimEvent::HungUp {
                by: HangupSide::Local,
            },
            "local",
        );
        Ok(())
    }

    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, CallError> {
        let event = SimEvent::Said {
            text: text.to_string(),
        };
        let length = self.clock.speech(text);
        self.media(event, text, Some(length), opts.barge_in).await
    }

    async fn play(&self, source: &str, opts: PlayOptions) -> Result<MediaOutcome, CallError> {
        let event = SimEvent::Played {
            source: source.to_string(),
            looped: opts.looped,
        };
        let length = (!opts.looped).then(|| self.clock.play(source));
        self.media(event, source, length, opts.barge_in).await
    }

    fn stop_media(&self) {
        self.signals.send_modify(|s| s.stops += 1);
    }

    async fn send_digits(&self, digits: &str) -> Result<(), CallError> {
        self.answered_or("send digits on")?;
        self.note(SimEvent::SentDigits {
            digits: digits.to_string(),
        });
        tokio::time::sleep(DIGIT_TIME * digits.chars().count() as u32).await;
        Ok(())
    }

    async fn record(&self, opts: RecordOptions) -> Result<RecordingInfo, CallError> {
        self.answered_or("record")?;
        let mut inner = self.lock();
        let id = format!("rec-{}", inner.next_recording);
        inner.next_recording += 1;
        let format = opts.format.unwrap_or_else(|| "wav".to_string());
        let location = format!("sim://recordings/{}-{id}.{format}", self.info.id);
        inner.recordings.insert(
            id.clone(),
            Recording {
                started: Instant::now(),
                location: location.clone(),
            },
        );
        Self::record(
            &mut inner,
            self.start,
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

    async fn stop_recording(&self, id: &str) -> Result<RecordingInfo, CallError> {
        let mut inner = self.lock();
        let Some(recording) = inner.recordings.remove(id) else {
            if inner.state == CallState::Ended {
                return Err(CallError::Ended);
            }
            return Err(CallError::Other(format!("no recording {id} in progress")));
        };
        let duration_ms = recording.started.elapsed().as_millis() as u64;
        Self::record(
            &mut inner,
            self.start,
            SimEvent::RecordingStopped {
                id: id.to_string(),
                location: recording.location.clone(),
                duration_ms,
            },
        );
        Ok(RecordingInfo {
            id: id.to_string(),
            location: recording.location,
            duration_ms,
            tracks: Vec::new(),
        })
    }

    async fn bridge(&self, other: Arc<dyn CallControl>) -> Result<(), CallError> {
        self.answered_or("bridge")?;
        if other.state() != CallState::Answered {
            return Err(CallError::InvalidState(format!(
                "cannot bridge with call {}, which is {}",
                other.info().id,
                other.state().as_str()
            )));
        }
        let with = other.info().id.clone();
        let mut inner = self.lock();
        inner.bridged = Some(with.clone());
        Self::record(&mut inner, self.start, SimEvent::Bridged { with });
        Ok(())
    }

    async fn unbridge(&self) -> Result<(), CallError> {
        let mut inner = self.lock();
        if let Some(with) = inner.bridged.take() {
            Self::record(&mut inner, self.start, SimEvent::Unbridged { with });
        }
        Ok(())
    }

    async fn next_event(&self) -> Option<CallEvent> {
        let mut events = self.events_rx.lock().await;
        // Read `ended` first: the hangup event is queued before it is set.
        let ended = self.state() == CallState::Ended;
        match events.try_recv() {
            Ok(event) => Some(event),
            Err(_) if ended => None,
            Err(_) => events.recv().await,
        }
    }
}
