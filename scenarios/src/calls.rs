//! The calls an instance owns: taking a call, its event pump, DTMF (to the
//! listeners and to the digit buffer / running collection), hangup, and the
//! `routeTo` hand-over.

use std::sync::Arc;

use rquickjs::{Ctx, Persistent, Promise, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::collecting;
use crate::host::{
    CallControl, CallError, CallEvent, CallState, LogLevel, MediaOutcome, ScenarioHost,
};
use crate::js::call::{new_object, Gone};
use crate::js::{call_stored, errors, js, object};
use crate::ops;
use crate::state::{
    CallSlot, HandlerState, JsState, Listeners, Msg, OpKind, OpResult, Pump, SlotId,
};
use crate::CallContext;

/// Digits kept for a later collection; beyond this the oldest are dropped.
const MAX_BUFFERED_DIGITS: usize = 256;

/// How a call came to the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Routed here: `onCall` runs for it.
    Routed,
    /// Placed by `dial`: no handler of its own.
    Dialed,
}

/// Takes a call: creates its JavaScript object and starts reading its events.
/// Returns the slot and the object; no slot if the call had already ended.
pub(crate) fn adopt<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    control: Arc<dyn CallControl>,
    call_ctx: CallContext,
    arrival: Arrival,
) -> rquickjs::Result<(
    Option<SlotId>,
    rquickjs::Class<'js, crate::js::call::JsCall>,
)> {
    let slot = st.inner.borrow_mut().new_slot_id();
    let object = new_object(ctx, slot, control.clone())?;
    let deadline = st
        .env
        .limits
        .max_call_duration
        .map(|limit| Instant::now() + limit);
    let mut inner = st.inner.borrow_mut();
    inner.had_call = true;
    inner.calls_seen += 1;
    inner.last_call_id = Some(control.info().id.clone());
    inner.conf.grace = None;
    if control.state() == CallState::Ended {
        object.borrow().mark_gone(Gone::Ended);
        return Ok((None, object));
    }
    let pump = start_pump(control.clone(), slot, st.env.tx.clone());
    inner.calls.insert(
        slot,
        CallSlot {
            control,
            object: Persistent::save(ctx, object.clone()),
            ctx: call_ctx,
            handler: match arrival {
                Arrival::Routed => HandlerState::Queued,
                Arrival::Dialed => HandlerState::Settled,
            },
            routing: None,
            pump: Some(pump),
            listeners: Listeners::default(),
            buffer: Default::default(),
            collect: None,
            barge_in: Vec::new(),
            pending_ops: 0,
            in_conference: false,
            dialed: arrival == Arrival::Dialed,
            bridged: None,
            deadline,
            ending: false,
        },
    );
    Ok((Some(slot), object))
}

/// Reads the call's events into the loop until stopped (dropping the
/// `Pump` stops it too) or the call ends. `next_event` is cancel-safe.
pub(crate) fn start_pump(
    control: Arc<dyn CallControl>,
    slot: SlotId,
    tx: UnboundedSender<Msg>,
) -> Pump {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                biased;
                _ = &mut stopped => return,
                event = control.next_event() => event,
            };
            let last = matches!(event, None | Some(CallEvent::Hangup { .. }));
            if tx.send(Msg::Call { slot, event }).is_err() || last {
                return;
            }
        }
    });
    Pump { stop, task }
}

/// A DTMF digit: to the running collection (or the buffer), barge-in, then
/// the `dtmf` listeners. Each digit goes each way exactly once.
pub(crate) fn on_dtmf<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    digit: char,
    source: String,
) -> rquickjs::Result<()> {
    let now = Instant::now();
    let (listeners, call_object, collected) = {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return Ok(());
        };
        let collected = match collecting::on_digit(call, digit, now) {
            Some(done) => done,
            None => {
                if call.buffer.len() >= MAX_BUFFERED_DIGITS {
                    call.buffer.pop_front();
                }
                call.buffer.push_back(digit);
                false
            }
        };
        if !call.barge_in.is_empty() {
            call.barge_in.clear();
            call.control.stop_media();
        }
        (call.listeners.get("dtmf"), call.object.clone(), collected)
    };
    if collected {
        collecting::advance(ctx, st, slot)?;
    }
    if !listeners.is_empty() {
        let this = call_object.restore(ctx)?.into_value();
        let event = object(
            ctx,
            &[
                ("digit", js(ctx, digit.to_string())?),
                ("source", js(ctx, source)?),
            ],
        )?
        .into_value();
        for listener in listeners {
            call_stored(ctx, listener, Some(this.clone()), event.clone())?;
        }
    }
    Ok(())
}

/// The call ended: it leaves the instance; its collection and media promises
/// settle (`hangup`), then the `hangup` listeners run.
pub(crate) fn end_slot<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    reason: &str,
) -> rquickjs::Result<()> {
    let (call, media_ops) = {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.remove(&slot) else {
            return Ok(());
        };
        inner.queued.retain(|s| *s != slot);
        // Its bridge is gone with it.
        if let Some(peer) = call.bridged.and_then(|p| inner.calls.get_mut(&p)) {
            peer.bridged = None;
        }
        let media: Vec<_> = inner
            .ops
            .iter()
            .filter(|(_, op)| {
                op.slot == Some(slot)
                    && matches!(
                        op.kind,
                        OpKind::Promise { media: true, .. } | OpKind::CollectPrompt
                    )
            })
            .map(|(id, _)| *id)
            .collect();
        let media_ops: Vec<_> = media.iter().filter_map(|id| inner.ops.remove(id)).collect();
        (call, media_ops)
    };
    let CallSlot {
        control,
        object: call_object,
        pump,
        collect,
        listeners,
        ..
    } = call;
    if let Some(pump) = pump {
        pump.task.abort();
    }
    for op in &media_ops {
        if let Some(abort) = &op.abort {
            abort.abort();
        }
    }
    let call_object = call_object.restore(ctx)?;
    call_object.borrow().mark_gone(Gone::Ended);
    let this = call_object.into_value();
    if let Some(active) = collect {
        collecting::hung_up(ctx, st, control.info().id.as_str(), active)?;
    }
    for op in media_ops {
        if let OpKind::Promise { resolve, .. } = op.kind {
            call_stored(
                ctx,
                resolve,
                None,
                ops::media_result(ctx, MediaOutcome::Hangup)?,
            )?;
        }
    }
    let hangup_listeners = listeners.get("hangup");
    if !hangup_listeners.is_empty() {
        let event = object(ctx, &[("reason", js(ctx, reason)?)])?.into_value();
        for listener in hangup_listeners {
            call_stored(ctx, listener, Some(this.clone()), event.clone())?;
        }
    }
    Ok(())
}

/// `routeTo`: lets go of the call (stops reading its events, waits until the
/// reader has stopped) and asks the host to route it.
pub(crate) fn start_route<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    destination: String,
    custom_data: serde_json::Value,
) -> rquickjs::Result<Promise<'js>> {
    let (promise, resolve, reject) = ctx.promise()?;
    let (control, pump, collect, was_bridged) = {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return Err(rquickjs::Exception::throw_internal(ctx, "the call is gone"));
        };
        call.routing = Some(destination.clone());
        call.barge_in.clear();
        let peer = call.bridged.take();
        let taken = (
            call.control.clone(),
            call.pump.take(),
            call.collect.take(),
            peer.is_some(),
        );
        // A routed call leaves its bridge (hand_over unbridges it first).
        if let Some(peer) = peer.and_then(|p| inner.calls.get_mut(&p)) {
            peer.bridged = None;
        }
        taken
    };
    // Whatever this instance played is not for the next one.
    control.stop_media();
    if let Some(active) = collect {
        let error = errors::api_error(
            ctx,
            "CallError",
            errors::CALL_RELEASED,
            &format!("collectDigits stopped: the call was routed to {destination:?}"),
        )?;
        call_stored(ctx, active.reject, None, error)?;
    }
    let host = st.env.host.clone();
    let tx = st.env.tx.clone();
    let mut inner = st.inner.borrow_mut();
    let op = inner.new_op_id();
    let hand_over = HandOver {
        op,
        control,
        was_bridged,
        pump,
        host,
        destination,
        custom_data,
        tx,
    };
    // Not abortable: once started, the hand-over must finish either way.
    tokio::spawn(hand_over.run());
    let kind = OpKind::Promise {
        resolve: Persistent::save(ctx, resolve),
        reject: Persistent::save(ctx, reject),
        media: false,
        then: crate::state::Then::Nothing,
    };
    ops::register(&mut inner, op, Some(slot), kind, None);
    Ok(promise)
}

/// A `routeTo` in flight.
struct HandOver {
    op: crate::state::OpId,
    control: Arc<dyn CallControl>,
    was_bridged: bool,
    pump: Option<Pump>,
    host: Arc<dyn ScenarioHost>,
    destination: String,
    custom_data: serde_json::Value,
    tx: UnboundedSender<Msg>,
}

impl HandOver {
    async fn run(self) {
        let control = self.control;
        if let Some(pump) = self.pump {
            let _ = pump.stop.send(());
            let _ = pump.task.await;
        }
        if self.was_bridged {
            let _ = control.unbridge().await;
        }
        let result = self
            .host
            .route_to(control.clone(), &self.destination, self.custom_data)
            .await;
        let failed = result.is_err();
        let report = Msg::OpDone {
            op: self.op,
            result: OpResult::Route(result),
        };
        if self.tx.send(report).is_err() && failed {
            // The instance ended meanwhile and the call came back: nobody owns it.
            let _ = end_call(control.as_ref(), 500).await;
        }
    }
}

/// The hand-over finished: on success the call is gone from this instance;
/// on failure it is back (reading events again).
pub(crate) fn route_done<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    ok: bool,
) -> rquickjs::Result<()> {
    if ok {
        let call = st.inner.borrow_mut().calls.remove(&slot);
        if let Some(call) = call {
            let destination = call.routing.clone().unwrap_or_default();
            st.env.host.log(
                Some(&call.control.info().id),
                LogLevel::Info,
                &format!("call routed to {destination:?}"),
            );
            call.object
                .restore(ctx)?
                .borrow()
                .mark_gone(Gone::Routed(destination));
        }
        return Ok(());
    }
    let ended = {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return Ok(());
        };
        call.routing = None;
        let ended = call.control.state() == CallState::Ended;
        if !ended {
            call.pump = Some(start_pump(call.control.clone(), slot, st.env.tx.clone()));
        }
        ended
    };
    if ended {
        end_slot(ctx, st, slot, "ended")?;
    }
    Ok(())
}

/// Ends a call the scenario left with nothing more to do.
pub(crate) fn end_idle(st: &JsState, slot: SlotId) {
    let Some(control) = mark_ending(st, slot) else {
        return;
    };
    let id = control.info().id.clone();
    if control.state() == CallState::Answered {
        st.env.host.log(
            Some(&id),
            LogLevel::Info,
            "the scenario has nothing more to do with the call: hanging up",
        );
    } else {
        st.env.host.log(
            Some(&id),
            LogLevel::Warn,
            "onCall finished without answering and nothing else is pending: rejecting with 480",
        );
    }
    let operation = async move { OpResult::Call(end_call(control.as_ref(), 480).await) };
    ops::spawn(st, Some(slot), OpKind::Internal, operation);
}

fn mark_ending(st: &JsState, slot: SlotId) -> Option<Arc<dyn CallControl>> {
    let mut inner = st.inner.borrow_mut();
    let call = inner.calls.get_mut(&slot)?;
    if call.ending {
        return None;
    }
    call.ending = true;
    Some(call.control.clone())
}

/// The earliest per-call wall-time deadline.
pub(crate) fn next_deadline(st: &JsState) -> Option<Instant> {
    st.inner
        .borrow()
        .calls
        .values()
        .filter(|c| !c.ending && c.routing.is_none())
        .filter_map(|c| c.deadline)
        .min()
}

/// Ends the calls that ran out of wall time (the instance goes on).
pub(crate) fn expire_calls(st: &JsState, now: Instant) {
    let expired: Vec<SlotId> = st
        .inner
        .borrow()
        .calls
        .iter()
        .filter(|(_, c)| !c.ending && c.routing.is_none() && c.deadline.is_some_and(|d| d <= now))
        .map(|(slot, _)| *slot)
        .collect();
    let Some(limit) = st.env.limits.max_call_duration else {
        return;
    };
    for slot in expired {
        let Some(control) = mark_ending(st, slot) else {
            continue;
        };
        st.env.host.log(
            Some(&control.info().id),
            LogLevel::Error,
            &format!(
                "wall-time limit exceeded: the call has been with this scenario for {limit:?}; ending it"
            ),
        );
        let operation = async move { OpResult::Call(end_call(control.as_ref(), 500).await) };
        ops::spawn(st, Some(slot), OpKind::Internal, operation);
    }
}

/// Ends a call cleanly: `hangup()` when answered, else `reject(code)`.
pub(crate) async fn end_call(control: &dyn CallControl, code: u16) -> Result<(), CallError> {
    match control.state() {
        CallState::Ended => Ok(()),
        CallState::Answered => control.hangup(Vec::new()).await,
        CallState::Incoming | CallState::Ringing => match control.reject(code, None).await {
            // Answered in the meantime.
            Err(CallError::InvalidState(_)) => control.hangup(Vec::new()).await,
            other => other,
        },
    }
}

/// The value a call's `onCall` gets as `ctx`.
pub(crate) fn call_ctx_object<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    call_ctx: &CallContext,
) -> rquickjs::Result<Value<'js>> {
    let data = crate::js::convert::json_to_js(ctx, &call_ctx.custom_data)?;
    let ctx_object = object(
        ctx,
        &[
            ("app", js(ctx, st.env.instance.app.as_str())?),
            ("rule", js(ctx, call_ctx.rule.as_str())?),
            ("destination", js(ctx, call_ctx.destination.as_str())?),
            ("customData", data),
            ("dial", crate::js::dial::dial_function(ctx)?.into_value()),
        ],
    )?;
    // In a conference instance, the conference is at hand in every onCall.
    let conference = st.inner.borrow().conf.object.clone();
    if let Some(conference) = conference {
        ctx_object.set("conference", conference.restore(ctx)?)?;
    }
    Ok(ctx_object.into_value())
}
