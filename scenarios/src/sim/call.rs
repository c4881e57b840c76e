//! A simulated call: scripted key presses and hangup, speech that takes time
//! in proportion to its length, and a timeline of what happened.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};

use super::timeline::{HangupSide, SimEntry, SimEvent};
use crate::host::{
    CallControl, CallError, CallEvent, CallInfo, CallState, MediaOutcome, SayOptions,
};

/// Default time a caller takes between two keys of a scripted sequence.
const DEFAULT_KEY_GAP: Duration = Duration::from_millis(250);
/// Default speaking time per character (about 15 characters a second).
const DEFAULT_SPEECH_PER_CHAR: Duration = Duration::from_millis(65);

#[derive(Debug, Clone)]
enum Step {
    Key(char),
    Hangup,
}

/// Builds a [`SimCall`]; see [`SimCall::builder`].
pub struct SimCallBuilder {
    info: CallInfo,
    script: Vec<(Duration, Step)>,
    speech_per_char: Duration,
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

    /// The caller hangs up `at` (since the call was built).
    pub fn hangup_at(mut self, at: Duration) -> Self {
        self.script.push((at, Step::Hangup));
        self
    }

    /// How long speech takes per character of text.
    pub fn speech_per_char(mut self, per_char: Duration) -> Self {
        self.speech_per_char = per_char;
        self
    }

    /// Starts the call already answered (e.g. as an outbound leg would be).
    pub fn answered(mut self) -> Self {
        self.state = CallState::Answered;
        self
    }

    /// Creates the call and starts its script (needs a tokio runtime).
    pub fn build(self) -> Arc<SimCall> {
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (signals, _) = watch::channel(Signals::default());
        let call = Arc::new(SimCall {
            info: self.info,
            start: Instant::now(),
            speech_per_char: self.speech_per_char,
            inner: Mutex::new(Inner {
                state: self.state,
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
        }
    }
}

/// Changes media waits for.
#[derive(Debug, Clone, Copy, Default)]
struct Signals {
    stops: u64,
    keys: u64,
    ended: bool,
}

struct Inner {
    state: CallState,
    timeline: Vec<SimEntry>,
}

/// An in-memory [`CallControl`].
pub struct SimCall {
    info: CallInfo,
    start: Instant,
    speech_per_char: Duration,
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
            speech_per_char: DEFAULT_SPEECH_PER_CHAR,
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

    /// The texts spoken to the caller, in order.
    pub fn said(&self) -> Vec<String> {
        self.lock()
            .timeline
            .iter()
            .filter_map(|e| match &e.event {
                SimEvent::Said { text } => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Whether the timeline has an entry matching `predicate`.
    pub fn saw(&self, predicate: impl Fn(&SimEvent) -> bool) -> bool {
        self.lock().timeline.iter().any(|e| predicate(&e.event))
    }

    /// Time since the call was built.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
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
        // Queued before `ended` is visible: next_event relies on that order.
        let _ = self.events_tx.send(CallEvent::Hangup {
            reason: reason.to_string(),
        });
        self.signals.send_modify(|s| s.ended = true);
        true
    }

    fn speech_time(&self, text: &str) -> Duration {
        self.speech_per_char * text.chars().count() as u32
    }
}

#[async_trait::async_trait]
impl CallControl for SimCall {
    // TEMPORARY on the engine3 branch (replaced by the scenarios3 branch).
    async fn ring(&self) -> Result<(), CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn early_media(&self) -> Result<(), CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn play(
        &self,
        _s: &str,
        _o: crate::host::PlayOptions,
    ) -> Result<MediaOutcome, CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn send_digits(&self, _d: &str) -> Result<(), CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn record(
        &self,
        _o: crate::host::RecordOptions,
    ) -> Result<crate::host::RecordingInfo, CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn stop_recording(&self, _id: &str) -> Result<crate::host::RecordingInfo, CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn bridge(&self, _o: std::sync::Arc<dyn CallControl>) -> Result<(), CallError> {
        Err(CallError::Other("sim".into()))
    }
    async fn unbridge(&self) -> Result<(), CallError> {
        Err(CallError::Other("sim".into()))
    }

    fn info(&self) -> &CallInfo {
        &self.info
    }

    fn state(&self) -> CallState {
        self.lock().state
    }

    async fn answer(&self, _headers: Vec<(String, String)>) -> Result<(), CallError> {
        let mut inner = self.lock();
        match inner.state {
            CallState::Ended => Err(CallError::Ended),
            CallState::Answered => Ok(()),
            CallState::Incoming | CallState::Ringing => {
                inner.state = CallState::Answered;
                Self::record(&mut inner, self.start, SimEvent::Answered);
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

    async fn hangup(&self, _headers: Vec<(String, String)>) -> Result<(), CallError> {
        self.end(
            SimEvent::HungUp {
                by: HangupSide::Local,
            },
            "local",
        );
        Ok(())
    }

    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, CallError> {
        let mut signals = self.signals.subscribe();
        let before = *signals.borrow_and_update();
        {
            let mut inner = self.lock();
            match inner.state {
                CallState::Answered => {}
                CallState::Ended => return Err(CallError::Ended),
                other => {
                    return Err(CallError::InvalidState(format!(
                        "cannot speak on a call that is {}",
                        other.as_str()
                    )))
                }
            }
            Self::record(
                &mut inner,
                self.start,
                SimEvent::Said {
                    text: text.to_string(),
                },
            );
        }
        let done = tokio::time::sleep(self.speech_time(text));
        tokio::pin!(done);
        let outcome = loop {
            tokio::select! {
                _ = &mut done => break MediaOutcome::Finished,
                changed = signals.changed() => {
                    if changed.is_err() {
                        break MediaOutcome::Hangup;
                    }
                    let now = *signals.borrow_and_update();
                    if now.ended {
                        break MediaOutcome::Hangup;
                    }
                    if now.stops != before.stops || (opts.barge_in && now.keys != before.keys) {
                        break MediaOutcome::Interrupted;
                    }
                }
            }
        };
        if outcome == MediaOutcome::Interrupted {
            self.note(SimEvent::Interrupted {
                text: text.to_string(),
            });
        }
        Ok(outcome)
    }

    fn stop_media(&self) {
        self.signals.send_modify(|s| s.stops += 1);
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
