//! Host operations started from JavaScript: each runs as its own tokio task
//! and reports back to the event loop, which then settles the promise.

use std::future::Future;

use rquickjs::{Ctx, Persistent, Promise, Value};

use crate::host::{CallError, ConferenceError, MediaOutcome};
use crate::js::{errors, js, object};
use crate::state::{JsState, Msg, OpId, OpKind, OpResult, PendingOp, SlotId, Then};

/// Starts `operation` for a promise JavaScript gets back.
pub(crate) fn start<'js, F>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: Option<SlotId>,
    media: bool,
    operation: F,
) -> rquickjs::Result<(Promise<'js>, OpId)>
where
    F: Future<Output = OpResult> + Send + 'static,
{
    start_then(ctx, st, slot, media, Then::Nothing, operation)
}

/// Like [`start`], with what else happens when it settles.
pub(crate) fn start_then<'js, F>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: Option<SlotId>,
    media: bool,
    then: Then,
    operation: F,
) -> rquickjs::Result<(Promise<'js>, OpId)>
where
    F: Future<Output = OpResult> + Send + 'static,
{
    let (promise, resolve, reject) = ctx.promise()?;
    let kind = OpKind::Promise {
        resolve: Persistent::save(ctx, resolve),
        reject: Persistent::save(ctx, reject),
        media,
        then,
    };
    let op = spawn(st, slot, kind, operation);
    Ok((promise, op))
}

/// Runs `operation` as a task that reports to the loop; registers it.
pub(crate) fn spawn<F>(st: &JsState, slot: Option<SlotId>, kind: OpKind, operation: F) -> OpId
where
    F: Future<Output = OpResult> + Send + 'static,
{
    let mut inner = st.inner.borrow_mut();
    let op = inner.new_op_id();
    let tx = st.env.tx.clone();
    let task = tokio::spawn(async move {
        let result = operation.await;
        // The instance may have ended meanwhile; then nobody waits for this.
        let _ = tx.send(Msg::OpDone { op, result });
    });
    register(&mut inner, op, slot, kind, Some(task.abort_handle()));
    op
}

/// Records an operation in flight (also counted against its call).
pub(crate) fn register(
    inner: &mut crate::state::Inner,
    op: OpId,
    slot: Option<SlotId>,
    kind: OpKind,
    abort: Option<tokio::task::AbortHandle>,
) {
    if let Some(call) = slot.and_then(|s| inner.calls.get_mut(&s)) {
        call.pending_ops += 1;
    }
    inner.ops.insert(op, PendingOp { slot, kind, abort });
}

/// Removes a finished (or abandoned) operation from the books.
pub(crate) fn unregister(inner: &mut crate::state::Inner, op: OpId) -> Option<PendingOp> {
    let pending = inner.ops.remove(&op)?;
    if let Some(call) = pending.slot.and_then(|s| inner.calls.get_mut(&s)) {
        call.pending_ops = call.pending_ops.saturating_sub(1);
        call.barge_in.retain(|o| *o != op);
    }
    Some(pending)
}

pub(crate) fn resolved<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> rquickjs::Result<Promise<'js>> {
    let (promise, resolve, _) = ctx.promise()?;
    resolve.call::<_, ()>((value,))?;
    Ok(promise)
}

pub(crate) fn rejected<'js>(ctx: &Ctx<'js>, reason: Value<'js>) -> rquickjs::Result<Promise<'js>> {
    let (promise, _, reject) = ctx.promise()?;
    reject.call::<_, ()>((reason,))?;
    Ok(promise)
}

/// `{interrupted, reason}`: how `say` ended.
pub(crate) fn media_result<'js>(
    ctx: &Ctx<'js>,
    outcome: MediaOutcome,
) -> rquickjs::Result<Value<'js>> {
    let reason = match outcome {
        MediaOutcome::Finished => "finished",
        MediaOutcome::Interrupted => "interrupted",
        MediaOutcome::Hangup => "hangup",
    };
    let result = object(
        ctx,
        &[
            ("interrupted", js(ctx, outcome != MediaOutcome::Finished)?),
            ("reason", js(ctx, reason)?),
        ],
    )?;
    Ok(result.into_value())
}

/// `{location, durationMs, tracks}`: how a recording ended.
pub(crate) fn recording_result<'js>(
    ctx: &Ctx<'js>,
    info: &crate::host::RecordingInfo,
) -> rquickjs::Result<Value<'js>> {
    let result = object(
        ctx,
        &[
            ("location", js(ctx, info.location.as_str())?),
            ("durationMs", js(ctx, info.duration_ms as f64)?),
            ("tracks", js(ctx, info.tracks.clone())?),
        ],
    )?;
    Ok(result.into_value())
}

/// What a finished operation settles its promise with: `Ok` resolves, `Err`
/// rejects. Results that become objects (calls, recordings, responses) are
/// built by the caller; here they settle as `undefined` or their error.
pub(crate) fn settlement<'js>(
    ctx: &Ctx<'js>,
    result: &OpResult,
) -> rquickjs::Result<Result<Value<'js>, Value<'js>>> {
    let undefined = Value::new_undefined(ctx.clone());
    Ok(match result {
        OpResult::Call(Ok(())) | OpResult::Conference(Ok(())) | OpResult::Route(Ok(())) => {
            Ok(undefined)
        }
        OpResult::Call(Err(e)) => Err(errors::call_error(ctx, e)?),
        // A media promise settles (does not fail) when the call hangs up.
        OpResult::Media(Ok(outcome)) => Ok(media_result(ctx, *outcome)?),
        OpResult::Media(Err(CallError::Ended)) => Ok(media_result(ctx, MediaOutcome::Hangup)?),
        OpResult::Media(Err(e)) => Err(errors::call_error(ctx, e)?),
        OpResult::Route(Err(e)) => Err(errors::route_error(ctx, e)?),
        OpResult::Conference(Err(e)) => Err(errors::conference_error(ctx, e)?),
        OpResult::ConferenceMedia(Ok(outcome)) => Ok(media_result(ctx, *outcome)?),
        OpResult::ConferenceMedia(Err(ConferenceError::Ended)) => {
            Ok(media_result(ctx, MediaOutcome::Hangup)?)
        }
        OpResult::ConferenceMedia(Err(e)) => Err(errors::conference_error(ctx, e)?),
        OpResult::Recording(Ok(info)) | OpResult::ConferenceRecording(Ok(info)) => {
            Ok(recording_result(ctx, info)?)
        }
        OpResult::Dial(Ok(_)) | OpResult::Fetch(Ok(_)) => Ok(undefined),
        OpResult::Dial(Err(e)) => Err(errors::dial_error(ctx, e)?),
        OpResult::Recording(Err(e)) => Err(errors::call_error(ctx, e)?),
        OpResult::ConferenceRecording(Err(e)) => Err(errors::conference_error(ctx, e)?),
        OpResult::Fetch(Err(e)) => Err(errors::fetch_error(ctx, e)?),
    })
}
