//! The scenario's handlers: the module's evaluation, `onConference`,
//! `onStart`, and `onCall` for each call, and what happens when their
//! promises settle.

use rquickjs::function::This;
use rquickjs::{Ctx, Object, Persistent, Value};

use crate::calls;
use crate::host::{CallState, LogLevel};
use crate::js::errors::{self, caught, describe};
use crate::js::{js, object, watch as watch_promise};
use crate::state::{Failure, HandlerState, JsState, Phase, Settled, SlotId, Watched};

pub(crate) fn on_settled(ctx: &Ctx<'_>, st: &JsState, settled: Settled) -> rquickjs::Result<()> {
    let error = match settled.error {
        Some(reason) => Some(reason.restore(ctx)?),
        None => None,
    };
    match (settled.what, error) {
        (Watched::Module, Some(reason)) => {
            let message = format!("the module failed to evaluate: {}", describe(ctx, &reason));
            st.fail(Failure {
                message,
                call: None,
            });
            Ok(())
        }
        (Watched::Module, None) => module_ready(ctx, st),
        (Watched::Conference, Some(reason)) => {
            let message = format!("onConference failed: {}", describe(ctx, &reason));
            st.fail(Failure {
                message,
                call: None,
            });
            Ok(())
        }
        (Watched::Conference, None) => ready(ctx, st),
        (Watched::Start, error) => {
            st.inner.borrow_mut().start = Some(HandlerState::Settled);
            if let Some(reason) = error {
                st.fail(Failure {
                    message: format!("onStart failed: {}", describe(ctx, &reason)),
                    call: st.single_call_id(),
                });
            }
            Ok(())
        }
        (Watched::Call(slot), error) => {
            let call_state = {
                let mut inner = st.inner.borrow_mut();
                inner.calls.get_mut(&slot).map(|call| {
                    call.handler = HandlerState::Settled;
                    call.control.state()
                })
            };
            if let Some(reason) = error {
                let text = describe(ctx, &reason);
                let call_ended = call_state.is_none_or(|s| s == CallState::Ended);
                if call_ended && errors::error_code(&reason).as_deref() == Some(errors::CALL_ENDED)
                {
                    // Not a scenario bug: the caller hung up under it.
                    let id = st.single_call_id();
                    st.env.host.log(
                        id.as_deref(),
                        LogLevel::Info,
                        &format!("onCall stopped because the call ended: {text}"),
                    );
                } else {
                    st.fail(Failure {
                        message: format!("onCall failed: {text}"),
                        call: st.call_id_of(slot),
                    });
                }
            }
            Ok(())
        }
    }
}

/// The module evaluated: find the handlers; a conference instance runs
/// `onConference` before any `onCall`.
fn module_ready(ctx: &Ctx<'_>, st: &JsState) -> rquickjs::Result<()> {
    let namespace = st.inner.borrow().namespace.clone();
    let Some(namespace) = namespace else {
        return Ok(());
    };
    let exports: Value = namespace.restore(ctx)?.get("default")?;
    let Some(exports) = exports.into_object() else {
        st.fail(Failure {
            message: "the module has no default export object: write \
                      `export default { async onCall(call, ctx) { ... } }`"
                .into(),
            call: None,
        });
        return Ok(());
    };
    st.inner.borrow_mut().exports = Some(Persistent::save(ctx, exports.clone()));
    let conf = st.inner.borrow().conf.object.clone();
    let Some(conf) = conf else {
        return ready(ctx, st);
    };
    let on_conference: Value = exports.get("onConference")?;
    let Some(on_conference) = on_conference.into_function() else {
        return ready(ctx, st);
    };
    st.inner.borrow_mut().phase = Phase::Conferencing;
    let conf_ctx = instance_ctx_object(ctx, st)?;
    match on_conference.call::<_, Value>((This(exports), conf.restore(ctx)?, conf_ctx)) {
        Ok(returned) => watch_promise(ctx, st, returned, Watched::Conference),
        Err(error) => {
            let message = format!("onConference threw: {}", caught(ctx, error));
            st.fail(Failure {
                message,
                call: None,
            });
            Ok(())
        }
    }
}

/// `ctx` of `onConference` and `onStart`: the instance's context, and `dial`.
fn instance_ctx_object<'js>(ctx: &Ctx<'js>, st: &JsState) -> rquickjs::Result<Object<'js>> {
    let instance = &st.env.instance;
    let data = crate::js::convert::json_to_js(ctx, &instance.custom_data)?;
    object(
        ctx,
        &[
            ("app", js(ctx, instance.app.as_str())?),
            ("rule", js(ctx, instance.rule.as_str())?),
            ("destination", js(ctx, instance.destination.as_str())?),
            ("customData", data),
            ("dial", crate::js::dial::dial_function(ctx)?.into_value()),
        ],
    )
}

/// Handlers are in place: calls get `onCall`, queued ones first, then a
/// requested `onStart` runs.
fn ready(ctx: &Ctx<'_>, st: &JsState) -> rquickjs::Result<()> {
    let queued = {
        let mut inner = st.inner.borrow_mut();
        inner.phase = Phase::Ready;
        std::mem::take(&mut inner.queued)
    };
    for slot in queued {
        invoke_on_call(ctx, st, slot)?;
        if st.dead.get() {
            return Ok(());
        }
    }
    if st.inner.borrow().start == Some(HandlerState::Queued) {
        invoke_on_start(ctx, st)?;
    }
    Ok(())
}

/// `run_on_start`: `onStart(ctx)` runs once the module is ready (once per instance).
pub(crate) fn request_start(ctx: &Ctx<'_>, st: &JsState) -> rquickjs::Result<()> {
    let ready = {
        let mut inner = st.inner.borrow_mut();
        if inner.start.is_some() {
            drop(inner);
            st.env.host.log(
                None,
                LogLevel::Warn,
                "onStart was requested again: it runs once per instance",
            );
            return Ok(());
        }
        inner.start = Some(HandlerState::Queued);
        inner.phase == Phase::Ready
    };
    if ready {
        invoke_on_start(ctx, st)?;
    }
    Ok(())
}

fn invoke_on_start(ctx: &Ctx<'_>, st: &JsState) -> rquickjs::Result<()> {
    let exports = {
        let mut inner = st.inner.borrow_mut();
        inner.start = Some(HandlerState::Running);
        inner.exports.clone()
    };
    let Some(exports) = exports else {
        return Ok(());
    };
    let exports = exports.restore(ctx)?;
    let on_start: Value = exports.get("onStart")?;
    let Some(on_start) = on_start.into_function() else {
        st.fail(Failure {
            message: "the scenario has no onStart handler: write \
                      `export default { async onStart(ctx) { ... } }`"
                .into(),
            call: None,
        });
        return Ok(());
    };
    let start_ctx = instance_ctx_object(ctx, st)?;
    match on_start.call::<_, Value>((This(exports), start_ctx)) {
        Ok(returned) => watch_promise(ctx, st, returned, Watched::Start),
        Err(error) => {
            let message = format!("onStart threw: {}", caught(ctx, error));
            st.fail(Failure {
                message,
                call: None,
            });
            Ok(())
        }
    }
}

pub(crate) fn invoke_on_call(ctx: &Ctx<'_>, st: &JsState, slot: SlotId) -> rquickjs::Result<()> {
    let (exports, call_object, call_ctx) = {
        let mut inner = st.inner.borrow_mut();
        let exports = inner.exports.clone();
        let Some(call) = inner.calls.get_mut(&slot) else {
            return Ok(());
        };
        if call.handler != HandlerState::Queued {
            return Ok(());
        }
        call.handler = HandlerState::Running;
        (exports, call.object.clone(), call.ctx.clone())
    };
    let Some(exports) = exports else {
        return Ok(());
    };
    let exports = exports.restore(ctx)?;
    let on_call: Value = exports.get("onCall")?;
    let Some(on_call) = on_call.into_function() else {
        st.fail(Failure {
            message: "the scenario has no onCall handler: write \
                      `export default { async onCall(call, ctx) { ... } }`"
                .into(),
            call: st.call_id_of(slot),
        });
        return Ok(());
    };
    let ctx_object = calls::call_ctx_object(ctx, st, &call_ctx)?;
    let call_object = call_object.restore(ctx)?;
    match on_call.call::<_, Value>((This(exports), call_object, ctx_object)) {
        Ok(returned) => watch_promise(ctx, st, returned, Watched::Call(slot)),
        Err(error) => {
            let message = format!("onCall threw: {}", caught(ctx, error));
            st.fail(Failure {
                message,
                call: st.call_id_of(slot),
            });
            Ok(())
        }
    }
}
