//! A host operation finished: settle its promise, and do what follows from
//! it (a dialed call joins the instance, a bridge is noted, `mediaEnded`
//! fires, a collection's prompt moves on, a locally ended call leaves).

use rquickjs::{Ctx, Value};

use crate::calls::{self, Arrival};
use crate::collecting;
use crate::host::{CallState, MediaOutcome};
use crate::js::{call_stored, fetch, object, participant, recording};
use crate::ops;
use crate::state::{JsState, OpId, OpKind, OpResult, SlotId, Then};
use crate::CallContext;

pub(crate) fn op_done(
    ctx: &Ctx<'_>,
    st: &JsState,
    op: OpId,
    result: OpResult,
) -> rquickjs::Result<()> {
    let Some(pending) = ops::unregister(&mut st.inner.borrow_mut(), op) else {
        // Already settled (its call hung up).
        return Ok(());
    };
    let slot = pending.slot;
    match pending.kind {
        OpKind::CollectPrompt => {
            if let (Some(slot), OpResult::Media(outcome)) = (slot, &result) {
                collecting::prompt_done(ctx, st, slot, outcome)?;
            }
        }
        OpKind::Internal => {}
        OpKind::Promise {
            resolve,
            reject,
            then,
            ..
        } => {
            let media_ended = match &then {
                Then::MediaEnded { kind, what } => Some((*kind, what.clone())),
                _ => None,
            };
            match settle(ctx, st, slot, &result, then)? {
                Ok(value) => call_stored(ctx, resolve, None, value)?,
                Err(error) => call_stored(ctx, reject, None, error)?,
            }
            if let (Some(slot), Some((kind, what)), OpResult::Media(Ok(outcome))) =
                (slot, media_ended, &result)
            {
                emit_media_ended(ctx, st, slot, kind, &what, *outcome)?;
            }
        }
    }
    // A local hangup/reject ends the call now; its hangup event may lag.
    if let (Some(slot), OpResult::Call(Ok(()))) = (slot, &result) {
        let ended = st
            .inner
            .borrow()
            .calls
            .get(&slot)
            .is_some_and(|c| c.control.state() == CallState::Ended);
        if ended {
            calls::end_slot(ctx, st, slot, "local")?;
        }
    }
    Ok(())
}

/// The value the promise resolves with (`Ok`) or rejects with (`Err`).
fn settle<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: Option<SlotId>,
    result: &OpResult,
    then: Then,
) -> rquickjs::Result<Result<Value<'js>, Value<'js>>> {
    match (result, slot) {
        (OpResult::Route(routed), Some(slot)) => calls::route_done(ctx, st, slot, routed.is_ok())?,
        (OpResult::Conference(Ok(())), Some(slot)) => {
            if let Some(call) = st.inner.borrow_mut().calls.get_mut(&slot) {
                call.in_conference = true;
            }
        }
        _ => {}
    }
    Ok(match (then, result) {
        (Then::Dialed, result) => {
            let mut inner = st.inner.borrow_mut();
            inner.dialing = inner.dialing.saturating_sub(1);
            drop(inner);
            match result {
                OpResult::Dial(Ok(control)) => Ok(adopt_dialed(ctx, st, control.clone())?),
                other => ops::settlement(ctx, other)?,
            }
        }
        (Then::Participant { call_id }, OpResult::Conference(Ok(()))) => {
            Ok(participant::object_for(ctx, st, &call_id)?.into_value())
        }
        (
            Then::Recording(owner),
            OpResult::Recording(Ok(info)) | OpResult::ConferenceRecording(Ok(info)),
        ) => Ok(recording::new_object(ctx, info, owner)?.into_value()),
        (Then::Response { url }, OpResult::Fetch(Ok(response))) => {
            Ok(fetch::response_object(ctx, &url, response)?)
        }
        (Then::Bridged { other }, OpResult::Call(Ok(()))) => {
            if let Some(slot) = slot {
                link(st, slot, Some(other));
            }
            ops::settlement(ctx, result)?
        }
        (Then::Unbridged, OpResult::Call(Ok(()))) => {
            if let Some(slot) = slot {
                link(st, slot, None);
            }
            ops::settlement(ctx, result)?
        }
        (_, result) => ops::settlement(ctx, result)?,
    })
}

/// An answered outbound call joins the instance (no `onCall` runs for it).
fn adopt_dialed<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    control: std::sync::Arc<dyn crate::host::CallControl>,
) -> rquickjs::Result<Value<'js>> {
    let info = control.info();
    let call_ctx = CallContext {
        rule: st.env.instance.rule.clone(),
        destination: info.destination.clone(),
        custom_data: serde_json::Value::Null,
    };
    st.env.host.log(
        Some(&info.id),
        crate::host::LogLevel::Info,
        &format!("dialed {} answered", info.to),
    );
    let (_, object) = calls::adopt(ctx, st, control, call_ctx, Arrival::Dialed)?;
    Ok(object.into_value())
}

/// Records that `slot` is bridged with `other` (or with nothing), undoing
/// both calls' earlier bridges.
fn link(st: &JsState, slot: SlotId, other: Option<SlotId>) {
    let mut inner = st.inner.borrow_mut();
    let unlink = |s: SlotId, inner: &mut crate::state::Inner| {
        let old = inner.calls.get_mut(&s).and_then(|c| c.bridged.take());
        if let Some(call) = old.and_then(|o| inner.calls.get_mut(&o)) {
            call.bridged = None;
        }
    };
    unlink(slot, &mut inner);
    let Some(other) = other else {
        return;
    };
    unlink(other, &mut inner);
    if inner.calls.contains_key(&slot) && inner.calls.contains_key(&other) {
        if let Some(call) = inner.calls.get_mut(&slot) {
            call.bridged = Some(other);
        }
        if let Some(call) = inner.calls.get_mut(&other) {
            call.bridged = Some(slot);
        }
    }
}

/// `mediaEnded` listeners: `{kind, text | source, interrupted, reason}`.
fn emit_media_ended<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    kind: &'static str,
    what: &str,
    outcome: MediaOutcome,
) -> rquickjs::Result<()> {
    let (listeners, call_object) = {
        let inner = st.inner.borrow();
        let Some(call) = inner.calls.get(&slot) else {
            return Ok(());
        };
        (call.listeners.get("mediaEnded"), call.object.clone())
    };
    if listeners.is_empty() {
        return Ok(());
    }
    let result = ops::media_result(ctx, outcome)?;
    let event = result.as_object().cloned().unwrap_or(object(ctx, &[])?);
    event.set("kind", kind)?;
    event.set(if kind == "say" { "text" } else { "source" }, what)?;
    let this = call_object.restore(ctx)?.into_value();
    for listener in listeners {
        call_stored(
            ctx,
            listener,
            Some(this.clone()),
            event.clone().into_value(),
        )?;
    }
    Ok(())
}
