//! The state of one instance, kept inside its QuickJS runtime (as runtime
//! user data) so that both the event loop and the JavaScript-facing native
//! functions reach it. Everything holding JavaScript values lives here and
//! is dropped with the runtime.
//!
//! Borrowing rule: nothing may call into JavaScript while holding a borrow
//! of [`JsState::inner`] (a callback would re-enter a native and borrow again).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use rquickjs::{Class, Function, JsLifetime, Object, Persistent, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::Instant;

use crate::collecting::ActiveCollect;
use crate::cpu::CpuGuard;
use crate::host::{
    CallControl, CallError, CallEvent, ConferenceControl, ConferenceError, ConferenceEvent,
    ConferenceOptions, DialError, FetchError, FetchResponse, MediaOutcome, RecordingInfo,
    RouteError, ScenarioHost,
};
use crate::js::call::JsCall;
use crate::js::participant::JsParticipant;
use crate::timers::TimerQueue;
use crate::{CallContext, InstanceContext, Limits};

pub(crate) type SlotId = u64;
pub(crate) type OpId = u64;

/// What reaches an instance's event loop.
pub(crate) enum Msg {
    NewCall {
        call: Arc<dyn CallControl>,
        ctx: CallContext,
    },
    /// Run `onStart(ctx)` (the scenario was started over the HTTP API).
    Start,
    /// An event of an owned call; `None` when no more can follow.
    Call {
        slot: SlotId,
        event: Option<CallEvent>,
    },
    /// An event of the conference; `None` when no more can follow.
    Conference(Option<ConferenceEvent>),
    /// A host operation finished.
    OpDone { op: OpId, result: OpResult },
}

/// The result of a host operation, by kind.
pub(crate) enum OpResult {
    Call(Result<(), CallError>),
    Media(Result<MediaOutcome, CallError>),
    Route(Result<(), RouteError>),
    Conference(Result<(), ConferenceError>),
    ConferenceMedia(Result<MediaOutcome, ConferenceError>),
    /// `dial`: the new call, answered.
    Dial(Result<Arc<dyn CallControl>, DialError>),
    /// A recording of a call started or stopped.
    Recording(Result<RecordingInfo, CallError>),
    /// A recording of the conference mix started or stopped.
    ConferenceRecording(Result<RecordingInfo, ConferenceError>),
    Fetch(Result<FetchResponse, FetchError>),
}

/// Fixed for the life of an instance.
pub(crate) struct Env {
    pub host: Arc<dyn ScenarioHost>,
    pub limits: Limits,
    pub instance: InstanceContext,
    pub tx: UnboundedSender<Msg>,
    pub conference: Option<Arc<dyn ConferenceControl>>,
    pub cpu: Arc<CpuGuard>,
}

pub(crate) struct JsState {
    pub env: Env,
    pub inner: RefCell<Inner>,
    /// Promises rejected with no handler during the current turn.
    pub rejections: RefCell<Vec<Rejection>>,
    /// The first fatal failure; the instance ends after the current turn.
    pub failure: RefCell<Option<Failure>>,
    /// Set once a failure is recorded: stop running JavaScript.
    pub dead: Cell<bool>,
}

impl JsState {
    pub fn new(env: Env) -> JsState {
        JsState {
            env,
            inner: RefCell::new(Inner::new()),
            rejections: RefCell::new(Vec::new()),
            failure: RefCell::new(None),
            dead: Cell::new(false),
        }
    }

    /// Records a fatal failure (the first one wins).
    pub fn fail(&self, failure: Failure) {
        self.dead.set(true);
        let mut slot = self.failure.borrow_mut();
        if slot.is_none() {
            *slot = Some(failure);
        }
    }

    /// The id of the instance's only call: the one it owns, or, once it has
    /// none, the only one it ever had (so a `hangup` listener's logs still
    /// belong to the call).
    pub fn single_call_id(&self) -> Option<String> {
        let inner = self.inner.try_borrow().ok()?;
        match inner.calls.len() {
            1 => inner
                .calls
                .values()
                .next()
                .map(|c| c.control.info().id.clone()),
            0 if inner.calls_seen == 1 => inner.last_call_id.clone(),
            _ => None,
        }
    }

    /// The id of the call in `slot` (also after it left, for a single-call instance).
    pub fn call_id_of(&self, slot: SlotId) -> Option<String> {
        let inner = self.inner.try_borrow().ok()?;
        match inner.calls.get(&slot) {
            Some(call) => Some(call.control.info().id.clone()),
            None if inner.calls_seen == 1 => inner.last_call_id.clone(),
            None => None,
        }
    }
}

// SAFETY: JsState holds only 'static data (Persistent values are 'static).
unsafe impl<'js> JsLifetime<'js> for JsState {
    type Changed<'to> = JsState;
}

pub(crate) struct Rejection {
    pub promise: Persistent<Value<'static>>,
    pub reason: Persistent<Value<'static>>,
}

/// Why an instance must end now.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub message: String,
    /// The id of the call the failure is about, when there is one.
    pub call: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The module's evaluation promise is pending (top-level await).
    Loading,
    /// `onConference` has not settled yet.
    Conferencing,
    /// Calls get `onCall` as they come.
    Ready,
}

/// A promise whose settling the instance waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watched {
    Module,
    Conference,
    Start,
    Call(SlotId),
}

pub(crate) struct Settled {
    pub what: Watched,
    /// The rejection reason, when it rejected.
    pub error: Option<Persistent<Value<'static>>>,
}

pub(crate) struct Inner {
    pub phase: Phase,
    /// The module namespace; `default` is read once evaluation settles.
    pub namespace: Option<Persistent<Object<'static>>>,
    /// The default export (`onCall`, `onConference`, ...).
    pub exports: Option<Persistent<Object<'static>>>,
    /// `Promise.prototype.then` as it was before the scenario ran.
    pub promise_then: Option<Persistent<Function<'static>>>,
    /// The `RegExp` constructor as it was before the scenario ran.
    pub regexp: Option<Persistent<rquickjs::Constructor<'static>>>,
    /// `onStart`, once requested.
    pub start: Option<HandlerState>,
    /// `dial`s in flight: the instance waits for them (their calls become its own).
    pub dialing: usize,
    pub calls: BTreeMap<SlotId, CallSlot>,
    /// Calls waiting for the module / `onConference` before their `onCall`.
    pub queued: VecDeque<SlotId>,
    pub ops: HashMap<OpId, PendingOp>,
    pub timers: TimerQueue<TimerCallback>,
    pub conf: ConfState,
    pub settled: Vec<Settled>,
    /// The instance received at least one call (it ends when none are left).
    pub had_call: bool,
    /// How many calls the instance has taken, and the last one's id.
    pub calls_seen: usize,
    pub last_call_id: Option<String>,
    next_slot: SlotId,
    next_op: OpId,
}

impl Inner {
    pub fn new() -> Inner {
        Inner {
            phase: Phase::Loading,
            namespace: None,
            exports: None,
            promise_then: None,
            regexp: None,
            start: None,
            dialing: 0,
            calls: BTreeMap::new(),
            queued: VecDeque::new(),
            ops: HashMap::new(),
            timers: TimerQueue::new(),
            conf: ConfState::default(),
            settled: Vec::new(),
            had_call: false,
            calls_seen: 0,
            last_call_id: None,
            next_slot: 1,
            next_op: 1,
        }
    }

    pub fn new_slot_id(&mut self) -> SlotId {
        let id = self.next_slot;
        self.next_slot += 1;
        id
    }

    pub fn new_op_id(&mut self) -> OpId {
        let id = self.next_op;
        self.next_op += 1;
        id
    }
}

/// The conference side of a conference instance.
pub(crate) struct ConfState {
    pub object: Option<Persistent<Object<'static>>>,
    pub listeners: Listeners,
    /// Room-wide options as last configured (`maxParticipants`, `waitMusic`).
    pub options: ConferenceOptions,
    /// One object per participant, so the same participant is the same object.
    pub participants: HashMap<String, Persistent<Class<'static, JsParticipant>>>,
    /// No participant is known to be in the mix (initially, and after `empty`).
    pub quiet: bool,
    /// When an instance without calls stops waiting for the conference to drain.
    pub grace: Option<Instant>,
}

impl Default for ConfState {
    fn default() -> Self {
        ConfState {
            object: None,
            listeners: Listeners::default(),
            options: ConferenceOptions::default(),
            participants: HashMap::new(),
            quiet: true,
            grace: None,
        }
    }
}

/// Event listeners registered with `on(event, fn)`.
#[derive(Default)]
pub(crate) struct Listeners {
    entries: Vec<(&'static str, Persistent<Function<'static>>)>,
}

impl Listeners {
    pub fn add(&mut self, event: &'static str, listener: Persistent<Function<'static>>) {
        self.entries.push((event, listener));
    }

    /// Removes one registration of `listener` for `event`.
    pub fn remove(&mut self, event: &str, listener: &Persistent<Function<'static>>) {
        if let Some(index) = self
            .entries
            .iter()
            .position(|(e, l)| *e == event && l == listener)
        {
            self.entries.remove(index);
        }
    }

    pub fn get(&self, event: &str) -> Vec<Persistent<Function<'static>>> {
        self.entries
            .iter()
            .filter(|(e, _)| *e == event)
            .map(|(_, l)| l.clone())
            .collect()
    }

    pub fn has(&self, event: &str) -> bool {
        self.entries.iter().any(|(e, _)| *e == event)
    }
}

/// Where `onCall` of a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerState {
    Queued,
    Running,
    Settled,
}

/// One call this instance owns.
pub(crate) struct CallSlot {
    pub control: Arc<dyn CallControl>,
    pub object: Persistent<Class<'static, JsCall>>,
    pub ctx: CallContext,
    pub handler: HandlerState,
    /// `Some(destination)` while `routeTo` hands the call over.
    pub routing: Option<String>,
    /// Reads the call's events into the loop; stopped to hand the call over.
    pub pump: Option<Pump>,
    pub listeners: Listeners,
    /// Digits typed since the last collection took them.
    pub buffer: VecDeque<char>,
    pub collect: Option<ActiveCollect>,
    /// `say`/`play` operations playing with barge-in (a digit stops them).
    pub barge_in: Vec<OpId>,
    pub pending_ops: usize,
    pub in_conference: bool,
    /// Placed by `dial` (it has no `onCall`).
    pub dialed: bool,
    /// The call this one is bridged with (both owned by this instance).
    pub bridged: Option<SlotId>,
    /// When the call hits the per-call wall-time limit.
    pub deadline: Option<Instant>,
    /// The runtime is ending the call on its own (idle, or out of time).
    pub ending: bool,
}

pub(crate) struct Pump {
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub task: JoinHandle<()>,
}

#[derive(Clone)]
pub(crate) struct TimerCallback {
    pub function: Persistent<Function<'static>>,
    pub args: Vec<Persistent<Value<'static>>>,
}

/// A host operation in flight.
pub(crate) struct PendingOp {
    pub slot: Option<SlotId>,
    pub kind: OpKind,
    /// Aborts the task on teardown; `None` for hand-overs, which must finish.
    pub abort: Option<AbortHandle>,
}

pub(crate) enum OpKind {
    /// Settles a promise JavaScript holds. `media` ones settle at hangup.
    Promise {
        resolve: Persistent<Function<'static>>,
        reject: Persistent<Function<'static>>,
        media: bool,
        then: Then,
    },
    /// The prompt of the call's active collection.
    CollectPrompt,
    /// The runtime's own (ending an idle call): nothing waits for it.
    Internal,
}

/// What else happens when an operation's promise settles.
#[derive(Debug, Clone)]
pub(crate) enum Then {
    /// Settle with the plain result.
    Nothing,
    /// `say`/`play` on a call: also emit `mediaEnded`.
    MediaEnded { kind: &'static str, what: String },
    /// `dial`: the new call joins the instance; resolve with its object.
    Dialed,
    /// `conf.add`: resolve with the participant.
    Participant { call_id: String },
    /// `record`: resolve with a recording object.
    Recording(RecordingOwner),
    /// `bridge` succeeded: remember the pair.
    Bridged { other: SlotId },
    /// `unbridge` succeeded.
    Unbridged,
    /// `fetch`: resolve with a response object.
    Response { url: String },
}

/// What a recording records (where `stop()` goes).
#[derive(Clone)]
pub(crate) enum RecordingOwner {
    Call(Arc<dyn CallControl>),
    Conference,
}

impl std::fmt::Debug for RecordingOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordingOwner::Call(call) => write!(f, "Call({})", call.info().id),
            RecordingOwner::Conference => write!(f, "Conference"),
        }
    }
}
