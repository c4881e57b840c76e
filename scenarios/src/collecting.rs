//! `collectDigits` on a call: attempts of the [`Collector`] state machine with
//! their prompts (the `invalidPrompt`, then the `prompt`), barge-in, digit
//! validation (`min`, `pattern`) and retries.
//!
//! An attempt ends like the state machine says; then:
//! - the call hung up: resolve `hangup`;
//! - a timeout with no digits: retry (the prompt plays again), else resolve
//!   `timeout` with no digits;
//! - otherwise the digits are checked (at least `min`, the whole of them
//!   matching `pattern`): valid ones resolve with the attempt's reason;
//!   invalid ones retry (the `invalidPrompt`, then the prompt), else resolve
//!   `invalid` with the digits.
//!
//! Keys typed while a prompt plays always count (with barge-in they also stop
//! it, and the rest of the attempt's prompts); keys typed before an attempt
//! starts count first (and, with barge-in, skip its prompts).

use std::collections::VecDeque;

use rquickjs::{Ctx, Function, Object, Persistent, Promise};
use tokio::time::Instant;

use crate::collect::{CollectReason, CollectSpec, Collector};
use crate::host::{CallError, LogLevel, MediaOutcome, PlayOptions, SayOptions};
use crate::js::{call_stored, errors, js, object};
use crate::ops;
use crate::state::{CallSlot, JsState, OpKind, OpResult, SlotId};

/// Something a collection plays.
#[derive(Debug, Clone)]
pub(crate) enum Prompt {
    Say(String, SayOptions),
    Play(String, PlayOptions),
}

/// Parsed `collectDigits` options.
pub(crate) struct CollectArgs {
    pub spec: CollectSpec,
    pub prompt: Option<Prompt>,
    pub invalid_prompt: Option<Prompt>,
    /// An anchored `RegExp` the digits must match.
    pub pattern: Option<Persistent<Object<'static>>>,
    /// Attempts after the first.
    pub retries: u32,
    pub barge_in: bool,
}

pub(crate) struct ActiveCollect {
    pub args: CollectArgs,
    pub collector: Collector,
    pub resolve: Persistent<Function<'static>>,
    pub reject: Persistent<Function<'static>>,
    /// 0 for the first attempt.
    pub attempt: u32,
    /// Prompts of this attempt still to play.
    pub queue: VecDeque<Prompt>,
    /// The prompt playing now.
    pub playing: Option<crate::state::OpId>,
}

/// How an attempt turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judgement {
    Resolve(CollectReason),
    /// Try again; `invalid` plays the invalid prompt first.
    Retry {
        invalid: bool,
    },
}

/// The rules of the module doc, free of JavaScript.
pub(crate) fn judge(
    reason: CollectReason,
    digits: usize,
    min: usize,
    pattern_ok: bool,
    attempt: u32,
    retries: u32,
) -> Judgement {
    let can_retry = attempt < retries;
    match reason {
        CollectReason::Hangup | CollectReason::Invalid => Judgement::Resolve(reason),
        CollectReason::Timeout if digits == 0 => {
            if can_retry {
                Judgement::Retry { invalid: false }
            } else {
                Judgement::Resolve(CollectReason::Timeout)
            }
        }
        _ if digits >= min && pattern_ok => Judgement::Resolve(reason),
        _ if can_retry => Judgement::Retry { invalid: true },
        _ => Judgement::Resolve(CollectReason::Invalid),
    }
}

/// Starts `collectDigits` on a call.
pub(crate) fn start<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    args: CollectArgs,
) -> rquickjs::Result<Promise<'js>> {
    let (promise, resolve, reject) = ctx.promise()?;
    {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return Err(rquickjs::Exception::throw_internal(ctx, "the call is gone"));
        };
        if call.collect.is_some() {
            drop(inner);
            let busy = errors::api_error(
                ctx,
                "CallError",
                errors::BUSY,
                "collectDigits is already running on this call",
            )?;
            return ops::rejected(ctx, busy);
        }
        let collector = Collector::new(args.spec.clone(), true, Instant::now());
        call.collect = Some(ActiveCollect {
            args,
            collector,
            resolve: Persistent::save(ctx, resolve),
            reject: Persistent::save(ctx, reject),
            attempt: 0,
            queue: VecDeque::new(),
            playing: None,
        });
        begin_attempt(call, false);
    }
    play_next(st, slot);
    advance(ctx, st, slot)?;
    Ok(promise)
}

/// Sets up the current attempt: typed-ahead digits first, then its prompts.
fn begin_attempt(call: &mut CallSlot, invalid: bool) {
    let now = Instant::now();
    let CallSlot {
        collect, buffer, ..
    } = call;
    let Some(active) = collect.as_mut() else {
        return;
    };
    active.collector = Collector::new(active.args.spec.clone(), true, now);
    let mut typed_ahead = false;
    while active.collector.done().is_none() {
        let Some(digit) = buffer.pop_front() else {
            break;
        };
        typed_ahead = true;
        active.collector.digit(digit, now);
    }
    active.queue.clear();
    let skip = active.collector.done().is_some() || (active.args.barge_in && typed_ahead);
    if !skip {
        if invalid {
            active.queue.extend(active.args.invalid_prompt.clone());
        }
        active.queue.extend(active.args.prompt.clone());
    }
    if active.queue.is_empty() {
        active.collector.prompt_ended(now);
    }
}

/// Starts the next queued prompt of the call's collection, if none plays.
fn play_next(st: &JsState, slot: SlotId) {
    let (prompt, control, barge_in) = {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return;
        };
        let Some(active) = call.collect.as_mut() else {
            return;
        };
        if active.playing.is_some() || active.collector.done().is_some() {
            return;
        }
        let Some(prompt) = active.queue.pop_front() else {
            return;
        };
        (prompt, call.control.clone(), active.args.barge_in)
    };
    let operation = async move {
        OpResult::Media(match prompt {
            Prompt::Say(text, options) => control.say(&text, options).await,
            Prompt::Play(source, options) => control.play(&source, options).await,
        })
    };
    let op = ops::spawn(st, Some(slot), OpKind::CollectPrompt, operation);
    let mut inner = st.inner.borrow_mut();
    if let Some(call) = inner.calls.get_mut(&slot) {
        if let Some(active) = call.collect.as_mut() {
            active.playing = Some(op);
        }
        if barge_in {
            call.barge_in.push(op);
        }
    }
}

/// A digit for the call's running collection (under the caller's borrow).
/// Returns whether the collection needs [`advance`]. With barge-in, the
/// remaining prompts of the attempt are dropped (the caller stops the one
/// playing).
pub(crate) fn on_digit(call: &mut CallSlot, digit: char, now: Instant) -> Option<bool> {
    let active = call.collect.as_mut()?;
    if active.collector.done().is_some() {
        return None;
    }
    if active.args.barge_in {
        active.queue.clear();
    }
    Some(active.collector.digit(digit, now).is_some())
}

/// Moves the call's collection on: once the attempt is done and its prompt
/// has stopped, judge it, then resolve or retry.
pub(crate) fn advance<'js>(ctx: &Ctx<'js>, st: &JsState, slot: SlotId) -> rquickjs::Result<()> {
    loop {
        let (reason, digits, pattern) = {
            let mut inner = st.inner.borrow_mut();
            let Some(call) = inner.calls.get_mut(&slot) else {
                return Ok(());
            };
            let Some(active) = call.collect.as_mut() else {
                return Ok(());
            };
            let Some(reason) = active.collector.done() else {
                return Ok(());
            };
            if active.playing.is_some() {
                // Settles once the prompt has stopped (collect_prompt_done).
                active.queue.clear();
                call.control.stop_media();
                return Ok(());
            }
            (
                reason,
                active.collector.digits().to_string(),
                active.args.pattern.clone(),
            )
        };
        // Runs JavaScript (RegExp.test): outside any borrow.
        let pattern_ok = match pattern {
            Some(pattern) if reason != CollectReason::Hangup => matches(ctx, pattern, &digits)?,
            _ => true,
        };
        let (judgement, call_id) = {
            let mut inner = st.inner.borrow_mut();
            let Some(call) = inner.calls.get_mut(&slot) else {
                return Ok(());
            };
            let call_id = call.control.info().id.clone();
            let Some(active) = call.collect.as_mut() else {
                return Ok(());
            };
            let judgement = judge(
                reason,
                digits.chars().count(),
                active.args.spec.min,
                pattern_ok,
                active.attempt,
                active.args.retries,
            );
            if let Judgement::Retry { invalid } = judgement {
                active.attempt += 1;
                let attempts = active.args.retries + 1;
                let why = if invalid {
                    format!("invalid input {digits:?}")
                } else {
                    "no input".to_string()
                };
                let attempt = active.attempt + 1;
                begin_attempt(call, invalid);
                drop(inner);
                st.env.host.log(
                    Some(&call_id),
                    LogLevel::Debug,
                    &format!("collectDigits: {why}, attempt {attempt} of {attempts}"),
                );
                play_next(st, slot);
                continue;
            }
            (judgement, call_id)
        };
        let Judgement::Resolve(reason) = judgement else {
            return Ok(());
        };
        let active = {
            let mut inner = st.inner.borrow_mut();
            inner.calls.get_mut(&slot).and_then(|c| c.collect.take())
        };
        if let Some(active) = active {
            resolve(ctx, st, &call_id, active, reason)?;
        }
        return Ok(());
    }
}

/// Whether `digits` match the collection's (anchored) pattern.
fn matches<'js>(
    ctx: &Ctx<'js>,
    pattern: Persistent<Object<'static>>,
    digits: &str,
) -> rquickjs::Result<bool> {
    let pattern = pattern.restore(ctx)?;
    let test: Function = pattern.get("test")?;
    test.call((rquickjs::function::This(pattern), digits))
}

/// Settles the collection's promise with `{digits, reason}`.
pub(crate) fn resolve<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    call_id: &str,
    active: ActiveCollect,
    reason: CollectReason,
) -> rquickjs::Result<()> {
    let reason = reason.as_str();
    let digits = active.collector.digits().to_string();
    st.env.host.log(
        Some(call_id),
        LogLevel::Debug,
        &format!("collectDigits: {digits:?} ({reason})"),
    );
    let result = object(
        ctx,
        &[("digits", js(ctx, digits)?), ("reason", js(ctx, reason)?)],
    )?;
    call_stored(ctx, active.resolve, None, result.into_value())
}

/// The call ended under a collection.
pub(crate) fn hung_up<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    call_id: &str,
    mut active: ActiveCollect,
) -> rquickjs::Result<()> {
    active.collector.hangup();
    resolve(ctx, st, call_id, active, CollectReason::Hangup)
}

/// The collection's prompt stopped playing.
pub(crate) fn prompt_done<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    slot: SlotId,
    result: &Result<MediaOutcome, CallError>,
) -> rquickjs::Result<()> {
    let now = Instant::now();
    let failed = {
        let mut inner = st.inner.borrow_mut();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return Ok(());
        };
        let Some(active) = call.collect.as_mut() else {
            return Ok(());
        };
        active.playing = None;
        match result {
            Ok(MediaOutcome::Hangup) | Err(CallError::Ended) => {
                active.collector.hangup();
                None
            }
            Ok(MediaOutcome::Finished) if !active.queue.is_empty() => None,
            Ok(_) => {
                active.queue.clear();
                active.collector.prompt_ended(now);
                None
            }
            Err(error) => call.collect.take().map(|a| (a, error.clone())),
        }
    };
    match failed {
        Some((active, error)) => {
            let error = errors::call_error(ctx, &error)?;
            call_stored(ctx, active.reject, None, error)
        }
        None => {
            play_next(st, slot);
            advance(ctx, st, slot)
        }
    }
}

/// The earliest collection timer of any call.
pub(crate) fn next_deadline(st: &JsState) -> Option<Instant> {
    st.inner
        .borrow()
        .calls
        .values()
        .filter_map(|c| c.collect.as_ref().and_then(|a| a.collector.deadline()))
        .min()
}

/// Ends the attempts whose timers expired.
pub(crate) fn expire<'js>(ctx: &Ctx<'js>, st: &JsState, now: Instant) -> rquickjs::Result<()> {
    let expired: Vec<SlotId> = {
        let mut inner = st.inner.borrow_mut();
        inner
            .calls
            .iter_mut()
            .filter_map(|(slot, call)| {
                let active = call.collect.as_mut()?;
                active.collector.check_timeout(now).map(|_| *slot)
            })
            .collect()
    };
    for slot in expired {
        advance(ctx, st, slot)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use CollectReason::*;

    #[test]
    fn valid_digits_resolve_with_the_attempt_reason() {
        assert_eq!(
            judge(Terminator, 3, 1, true, 0, 2),
            Judgement::Resolve(Terminator)
        );
        assert_eq!(judge(Max, 4, 4, true, 0, 0), Judgement::Resolve(Max));
        // A timeout with enough digits is accepted as it is.
        assert_eq!(
            judge(Timeout, 2, 1, true, 0, 2),
            Judgement::Resolve(Timeout)
        );
    }

    #[test]
    fn no_input_retries_then_times_out() {
        assert_eq!(
            judge(Timeout, 0, 1, true, 0, 1),
            Judgement::Retry { invalid: false }
        );
        assert_eq!(
            judge(Timeout, 0, 1, true, 1, 1),
            Judgement::Resolve(Timeout)
        );
    }

    #[test]
    fn invalid_digits_retry_then_resolve_invalid() {
        assert_eq!(
            judge(Terminator, 2, 1, false, 0, 2),
            Judgement::Retry { invalid: true }
        );
        assert_eq!(
            judge(Timeout, 1, 3, true, 0, 1),
            Judgement::Retry { invalid: true },
            "too few digits"
        );
        assert_eq!(judge(Max, 2, 1, false, 2, 2), Judgement::Resolve(Invalid));
    }

    #[test]
    fn hangup_always_resolves() {
        assert_eq!(judge(Hangup, 0, 1, false, 0, 5), Judgement::Resolve(Hangup));
    }
}
