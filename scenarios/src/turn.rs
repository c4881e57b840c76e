//! One turn of an instance's event loop: run the JavaScript an input
//! triggers and its promise jobs under the CPU limit, then check for
//! failures, end idle calls, and decide whether the instance is done.

use rquickjs::function::Args;
use rquickjs::{Constructor, Ctx, Function, Module, Object, Persistent, Value};
use tokio::time::{Duration, Instant};

use crate::calls::{self, Arrival};
use crate::handlers::{self, invoke_on_call, on_settled};
use crate::host::{CallEvent, LogLevel};
use crate::js::conference;
use crate::js::errors::{self, caught, describe};
use crate::js::{install_globals, watch as watch_promise};
use crate::state::{Env, Failure, HandlerState, JsState, Msg, Phase, SlotId, Watched};
use crate::{collecting, conf_events, settle};

/// How long a conference instance whose calls are gone waits for the
/// conference's last events (`leave`, `empty`) before it ends anyway.
const CONFERENCE_DRAIN_GRACE: Duration = Duration::from_secs(2);

pub(crate) enum Input {
    Msg(Msg),
    /// A timer or a collection timeout is due.
    Wake,
}

/// The outcome of a turn.
pub(crate) enum Verdict {
    /// Keep going; wake up at this time even without input.
    Continue(Option<Instant>),
    /// No calls left: the instance is done.
    End,
    Fail(Failure),
}

/// The first turn, right after the runtime is created: install the API,
/// load and evaluate the module (and start `onConference`).
pub(crate) fn first_turn(ctx: &Ctx<'_>, env: Env, bytecode: &[u8]) -> Verdict {
    let cpu = env.cpu.clone();
    if ctx.store_userdata(JsState::new(env)).is_err() {
        return Verdict::Fail(Failure {
            message: "cannot set up the instance state".into(),
            call: None,
        });
    }
    let Some(st) = ctx.userdata::<JsState>() else {
        return lost();
    };
    cpu.arm();
    if let Err(error) = load(ctx, &st, bytecode) {
        let message = format!("the module failed to load: {}", caught(ctx, error));
        st.fail(Failure {
            message,
            call: None,
        });
    }
    settle_and_drain(ctx, &st);
    let verdict = conclude(ctx, &st);
    cpu.disarm();
    verdict
}

fn lost() -> Verdict {
    Verdict::Fail(Failure {
        message: "the instance state is gone".into(),
        call: None,
    })
}

fn load(ctx: &Ctx<'_>, st: &JsState, bytecode: &[u8]) -> rquickjs::Result<()> {
    install_globals(ctx)?;
    // Handler promises are watched with the original `then`, whatever the
    // scenario does to Promise.prototype.
    let then: Function = ctx
        .globals()
        .get::<_, Object>("Promise")?
        .get::<_, Object>("prototype")?
        .get("then")?;
    st.inner.borrow_mut().promise_then = Some(Persistent::save(ctx, then));
    let regexp: Constructor = ctx.globals().get("RegExp")?;
    st.inner.borrow_mut().regexp = Some(Persistent::save(ctx, regexp));
    if let Some(conference) = &st.env.conference {
        let object = conference::new_object(ctx, conference.as_ref())?;
        st.inner.borrow_mut().conf.object = Some(Persistent::save(ctx, object.into_inner()));
    }
    // SAFETY: the bytecode was written by `compile` with this same QuickJS.
    let module = unsafe { Module::load(ctx.clone(), bytecode)? };
    let (module, promise) = module.eval()?;
    let namespace = module.namespace()?;
    st.inner.borrow_mut().namespace = Some(Persistent::save(ctx, namespace));
    watch_promise(ctx, st, promise.into_value(), Watched::Module)
}

pub(crate) fn turn(ctx: &Ctx<'_>, input: Input) -> Verdict {
    let Some(st) = ctx.userdata::<JsState>() else {
        return lost();
    };
    st.env.cpu.arm();
    match input {
        Input::Msg(msg) => dispatch(ctx, &st, msg),
        Input::Wake => wake(ctx, &st),
    }
    settle_and_drain(ctx, &st);
    let verdict = conclude(ctx, &st);
    st.env.cpu.disarm();
    verdict
}

/// Records a JavaScript exception that escaped a callback.
fn check(
    ctx: &Ctx<'_>,
    st: &JsState,
    call: Option<String>,
    what: &str,
    result: rquickjs::Result<()>,
) {
    if let Err(error) = result {
        let message = format!("uncaught exception {what}: {}", caught(ctx, error));
        st.fail(Failure { message, call });
    }
}

fn dispatch(ctx: &Ctx<'_>, st: &JsState, msg: Msg) {
    match msg {
        Msg::NewCall {
            call,
            ctx: call_ctx,
        } => {
            let result =
                calls::adopt(ctx, st, call, call_ctx, Arrival::Routed).and_then(|(slot, _)| {
                    match slot {
                        Some(slot) if st.inner.borrow().phase == Phase::Ready => {
                            invoke_on_call(ctx, st, slot)
                        }
                        Some(slot) => {
                            st.inner.borrow_mut().queued.push_back(slot);
                            Ok(())
                        }
                        None => Ok(()),
                    }
                });
            check(ctx, st, None, "while taking a call", result);
        }
        Msg::Start => {
            let result = handlers::request_start(ctx, st);
            check(ctx, st, None, "while starting", result);
        }
        Msg::Call { slot, event } => {
            let call_id = st.call_id_of(slot);
            let result = match event {
                Some(CallEvent::Dtmf { digit, source }) => {
                    calls::on_dtmf(ctx, st, slot, digit, source)
                }
                Some(CallEvent::Hangup { reason }) => calls::end_slot(ctx, st, slot, &reason),
                None => calls::end_slot(ctx, st, slot, "ended"),
            };
            check(ctx, st, call_id, "in a call event listener", result);
        }
        Msg::Conference(event) => {
            let result = conf_events::dispatch(ctx, st, event);
            check(ctx, st, None, "in a conference event listener", result);
        }
        Msg::OpDone { op, result } => {
            let result = settle::op_done(ctx, st, op, result);
            check(ctx, st, None, "while settling an operation", result);
        }
    }
}

fn wake(ctx: &Ctx<'_>, st: &JsState) {
    let now = Instant::now();
    calls::expire_calls(st, now);
    let result = collecting::expire(ctx, st, now);
    check(ctx, st, None, "while ending a collection", result);
    let due = st.inner.borrow_mut().timers.pop_due(now);
    if let Some(timer) = due {
        let result = (|| {
            let function = timer.function.restore(ctx)?;
            let mut args = Args::new(ctx.clone(), timer.args.len());
            for arg in timer.args {
                args.push_arg(arg.restore(ctx)?)?;
            }
            function.call_arg::<Value>(args).map(drop)
        })();
        check(ctx, st, None, "in a timer callback", result);
    }
}

/// Runs promise jobs until none are left, handling settled handler promises
/// (which may start more JavaScript) as they come.
fn settle_and_drain(ctx: &Ctx<'_>, st: &JsState) {
    loop {
        while !st.dead.get() && !st.env.cpu.tripped() {
            match run_job(ctx) {
                Ok(true) => {}
                Ok(false) => break,
                Err(error) => {
                    let message = format!("uncaught exception: {}", describe(ctx, &error));
                    st.fail(Failure {
                        message,
                        call: None,
                    });
                }
            }
        }
        if st.dead.get() || st.env.cpu.tripped() {
            return;
        }
        let settled = std::mem::take(&mut st.inner.borrow_mut().settled);
        if settled.is_empty() {
            return;
        }
        for settled in settled {
            let result = on_settled(ctx, st, settled);
            check(ctx, st, None, "in a handler", result);
            if st.dead.get() {
                return;
            }
        }
    }
}

/// Runs one promise job; `Err` carries what escaped it (an uncatchable
/// error: the CPU limit, or out of memory), which `Ctx::execute_pending_job`
/// would discard.
fn run_job<'js>(ctx: &Ctx<'js>) -> Result<bool, Value<'js>> {
    let mut job_ctx = std::ptr::null_mut();
    // SAFETY: the runtime is locked (we are inside `AsyncContext::with`), and
    // the pointer out-parameter is valid for the call.
    let status = unsafe {
        let runtime = rquickjs::qjs::JS_GetRuntime(ctx.as_raw().as_ptr());
        rquickjs::qjs::JS_ExecutePendingJob(runtime, &mut job_ctx)
    };
    if status < 0 {
        // One context per runtime: the job ran in ours.
        return Err(ctx.catch());
    }
    Ok(status > 0)
}

/// After a turn: fail on an overrun, a recorded failure or an unhandled
/// rejection; end idle calls; decide whether the instance is done.
fn conclude(ctx: &Ctx<'_>, st: &JsState) -> Verdict {
    if st.env.cpu.tripped() {
        // Where it was stopped, when the interrupted code left a stack.
        let recorded = st.failure.borrow_mut().take();
        let stack: Vec<&str> = recorded
            .as_ref()
            .map(|f| {
                f.message
                    .lines()
                    .filter(|l| l.trim_start().starts_with("at "))
                    .collect()
            })
            .unwrap_or_default();
        let mut message = format!(
            "CPU limit exceeded: a callback ran longer than {:?} and was stopped",
            st.env.cpu.limit()
        );
        for frame in stack {
            message.push('\n');
            message.push_str(frame);
        }
        return Verdict::Fail(Failure {
            message,
            call: recorded.and_then(|f| f.call),
        });
    }
    if let Some(failure) = st.failure.borrow_mut().take() {
        return Verdict::Fail(failure);
    }
    let rejections = std::mem::take(&mut *st.rejections.borrow_mut());
    for rejection in rejections {
        let reason = match rejection.reason.restore(ctx) {
            Ok(reason) => reason,
            Err(_) => continue,
        };
        let text = describe(ctx, &reason);
        if errors::error_code(&reason).as_deref() == Some(errors::CALL_ENDED) {
            let id = st.single_call_id();
            st.env.host.log(
                id.as_deref(),
                LogLevel::Info,
                &format!("ignored after the call ended: {text}"),
            );
            continue;
        }
        return Verdict::Fail(Failure {
            message: format!("unhandled promise rejection: {text}"),
            call: None,
        });
    }
    end_idle_calls(st);
    lifecycle(st)
}

/// Calls whose `onCall` is over with nothing pending that could act on them
/// (no operation, collection, `dtmf` listener, timer, bridge or conference)
/// would hang forever: end them. A dialed call has no handler of its own: it
/// is kept while any handler of the instance runs.
fn end_idle_calls(st: &JsState) {
    let idle: Vec<SlotId> = {
        let inner = st.inner.borrow();
        if inner.phase != Phase::Ready || !inner.timers.is_empty() {
            return;
        }
        let handler_running = inner
            .calls
            .values()
            .any(|c| c.handler == HandlerState::Running)
            || matches!(
                inner.start,
                Some(HandlerState::Queued | HandlerState::Running)
            );
        inner
            .calls
            .iter()
            .filter(|(_, c)| {
                c.handler == HandlerState::Settled
                    && !(c.dialed && handler_running)
                    && c.routing.is_none()
                    && !c.ending
                    && c.pending_ops == 0
                    && c.collect.is_none()
                    && !c.in_conference
                    && c.bridged.is_none()
                    && !c.listeners.has("dtmf")
            })
            .map(|(slot, _)| *slot)
            .collect()
    };
    for slot in idle {
        calls::end_idle(st, slot);
    }
}

/// An instance is done once it has had work (a call, or `onStart`) and has
/// no calls left, no `onStart` running and no `dial` in flight (a
/// conference instance also waits a little for the room's last events).
fn lifecycle(st: &JsState) -> Verdict {
    let now = Instant::now();
    let collect_deadline = collecting::next_deadline(st);
    let call_deadline = calls::next_deadline(st);
    let mut inner = st.inner.borrow_mut();
    let next = [inner.timers.next_due(), collect_deadline, call_deadline]
        .into_iter()
        .flatten()
        .min();
    let had_work = inner.had_call || inner.start.is_some();
    let starting = matches!(
        inner.start,
        Some(HandlerState::Queued | HandlerState::Running)
    );
    if !had_work || !inner.calls.is_empty() || starting || inner.dialing > 0 {
        inner.conf.grace = None;
        return Verdict::Continue(next);
    }
    if st.env.conference.is_some() && !inner.conf.quiet {
        let grace = *inner.conf.grace.get_or_insert(now + CONFERENCE_DRAIN_GRACE);
        if now < grace {
            return Verdict::Continue(Some(next.map_or(grace, |n| n.min(grace))));
        }
    }
    Verdict::End
}
