//! The `call` object: a `Call` class instance whose prototype carries the
//! methods; the instance itself holds only which slot of the instance it is.
//! Call control lives here; media in [`super::call_media`], `collectDigits`
//! in [`super::collect_args`], `dial`/`bridge` in [`super::dial`].

use std::cell::RefCell;
use std::sync::Arc;

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::{IntoJsFunc, Opt, This};
use rquickjs::object::{Accessor, Property};
use rquickjs::Constructor;
use rquickjs::{Class, Ctx, Exception, Function, JsLifetime, Object, Persistent, Promise, Value};

use super::convert::{js_to_json, Options};
use super::errors::{self, api_error};
use super::{headers, state};
use crate::calls;
use crate::host::CallControl;
use crate::ops;
use crate::state::{JsState, OpResult, SlotId};

/// Events a call emits (`call.on(event, fn)`).
pub(crate) const CALL_EVENTS: [&str; 3] = ["dtmf", "hangup", "mediaEnded"];

pub(crate) struct JsCall {
    pub slot: SlotId,
    pub control: Arc<dyn CallControl>,
    /// Set when the instance no longer owns the call.
    gone: RefCell<Option<Gone>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Gone {
    Ended,
    Routed(String),
}

impl JsCall {
    pub fn mark_gone(&self, gone: Gone) {
        *self.gone.borrow_mut() = Some(gone);
    }
}

// SAFETY: no JavaScript values inside.
unsafe impl<'js> JsLifetime<'js> for JsCall {
    type Changed<'to> = JsCall;
}

impl<'js> Trace<'js> for JsCall {
    fn trace<'a>(&self, _tracer: Tracer<'a, 'js>) {}
}

impl<'js> JsClass<'js> for JsCall {
    const NAME: &'static str = "Call";
    type Mutable = Readable;

    fn prototype(ctx: &Ctx<'js>) -> rquickjs::Result<Option<Object<'js>>> {
        prototype(ctx).map(Some)
    }

    fn constructor(_ctx: &Ctx<'js>) -> rquickjs::Result<Option<Constructor<'js>>> {
        Ok(None)
    }
}

/// Where a call object stands for this instance.
pub(crate) enum Target {
    Live(SlotId),
    /// `routeTo` is handing it over.
    Routing(String),
    Routed(String),
    Ended,
}

pub(crate) fn target(st: &JsState, call: &JsCall) -> Target {
    match call.gone.borrow().clone() {
        Some(Gone::Ended) => return Target::Ended,
        Some(Gone::Routed(to)) => return Target::Routed(to),
        None => {}
    }
    match st.inner.borrow().calls.get(&call.slot) {
        Some(slot) => match &slot.routing {
            Some(to) => Target::Routing(to.clone()),
            None => Target::Live(call.slot),
        },
        None => Target::Ended,
    }
}

/// Creates the JavaScript object for a call.
pub(crate) fn new_object<'js>(
    ctx: &Ctx<'js>,
    slot: SlotId,
    control: Arc<dyn CallControl>,
) -> rquickjs::Result<Class<'js, JsCall>> {
    let info = control.info().clone();
    let object = Class::instance(
        ctx.clone(),
        JsCall {
            slot,
            control,
            gone: RefCell::new(None),
        },
    )?;
    object.prop("id", Property::from(info.id).enumerable())?;
    object.prop("from", Property::from(info.from).enumerable())?;
    object.prop("to", Property::from(info.to).enumerable())?;
    object.prop("destination", Property::from(info.destination).enumerable())?;
    object.prop("transport", Property::from(info.transport).enumerable())?;
    let direction = if info.direction.is_empty() {
        "inbound".to_string()
    } else {
        info.direction
    };
    object.prop("direction", Property::from(direction).enumerable())?;
    let headers = headers::to_object(ctx, &info.headers)?;
    object.prop("headers", Property::from(headers).enumerable())?;
    Ok(object)
}

/// Adds a method to a prototype.
pub(crate) fn method<'js, P, F>(
    ctx: &Ctx<'js>,
    proto: &Object<'js>,
    name: &str,
    f: F,
) -> rquickjs::Result<()>
where
    F: IntoJsFunc<'js, P> + 'js,
{
    proto.set(name, Function::new(ctx.clone(), f)?.with_name(name)?)
}

pub(crate) type This_<'js> = This<Class<'js, JsCall>>;

fn prototype<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let proto = Object::new(ctx.clone())?;
    proto.prop(
        "state",
        Accessor::from(|this: This_<'js>| -> &'static str {
            let call = this.0.borrow();
            let ended = matches!(*call.gone.borrow(), Some(Gone::Ended));
            if ended {
                "ended"
            } else {
                call.control.state().as_str()
            }
        })
        .configurable(),
    )?;
    method(
        ctx,
        &proto,
        "answer",
        |ctx: Ctx<'js>, this: This_<'js>, opts: Opt<Value<'js>>| {
            answer(&ctx, &this.0.borrow(), opts.0)
        },
    )?;
    method(ctx, &proto, "ring", |ctx: Ctx<'js>, this: This_<'js>| {
        let call = this.0.borrow();
        let control = call.control.clone();
        simple(&ctx, &call, None, async move {
            OpResult::Call(control.ring().await)
        })
    })?;
    method(
        ctx,
        &proto,
        "earlyMedia",
        |ctx: Ctx<'js>, this: This_<'js>| {
            let call = this.0.borrow();
            let control = call.control.clone();
            simple(&ctx, &call, None, async move {
                OpResult::Call(control.early_media().await)
            })
        },
    )?;
    method(
        ctx,
        &proto,
        "reject",
        |ctx: Ctx<'js>, this: This_<'js>, code: Opt<Value<'js>>, reason: Opt<Value<'js>>| {
            reject(&ctx, &this.0.borrow(), code.0, reason.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "hangup",
        |ctx: Ctx<'js>, this: This_<'js>, opts: Opt<Value<'js>>| {
            hangup(&ctx, &this.0.borrow(), opts.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "routeTo",
        |ctx: Ctx<'js>, this: This_<'js>, destination: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            route_to(&ctx, &this.0.borrow(), destination.0, opts.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "on",
        |ctx: Ctx<'js>, this: This_<'js>, event: Opt<Value<'js>>, listener: Opt<Value<'js>>| {
            listen(&ctx, &this.0, event.0, listener.0, true)
        },
    )?;
    method(
        ctx,
        &proto,
        "off",
        |ctx: Ctx<'js>, this: This_<'js>, event: Opt<Value<'js>>, listener: Opt<Value<'js>>| {
            listen(&ctx, &this.0, event.0, listener.0, false)
        },
    )?;
    method(
        ctx,
        &proto,
        "header",
        |this: This_<'js>, name: rquickjs::convert::Coerced<String>| -> Option<String> {
            let call = this.0.borrow();
            let name = name.0.to_ascii_lowercase();
            headers::by_lower_name(&call.control.info().headers)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v)
        },
    )?;
    super::call_media::install(ctx, &proto)?;
    super::collect_args::install(ctx, &proto)?;
    super::dial::install_call_methods(ctx, &proto)?;
    Ok(proto)
}

fn ended_error<'js>(ctx: &Ctx<'js>, call: &JsCall) -> rquickjs::Result<Value<'js>> {
    let id = &call.control.info().id;
    api_error(
        ctx,
        "CallError",
        errors::CALL_ENDED,
        &format!("call {id} has ended"),
    )
}

fn released_error<'js>(ctx: &Ctx<'js>, call: &JsCall, to: &str) -> rquickjs::Result<Value<'js>> {
    let id = &call.control.info().id;
    api_error(
        ctx,
        "CallError",
        errors::CALL_RELEASED,
        &format!("call {id} was routed to {to:?}: this scenario no longer controls it"),
    )
}

/// The promise a method returns for a call it cannot act on: on an ended
/// call, `when_ended` resolves it (if given), else it rejects `CALL_ENDED`.
pub(crate) fn not_live<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    target: Target,
    when_ended: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    match target {
        Target::Ended => match when_ended {
            Some(value) => ops::resolved(ctx, value),
            None => ops::rejected(ctx, ended_error(ctx, call)?),
        },
        Target::Routing(to) | Target::Routed(to) => {
            ops::rejected(ctx, released_error(ctx, call, &to)?)
        }
        Target::Live(_) => Err(Exception::throw_internal(ctx, "call is live")),
    }
}

/// The slot of a call this instance controls, or the rejected promise to
/// return instead (for methods of other objects taking a call).
pub(crate) fn owned_slot<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    call: &JsCall,
) -> rquickjs::Result<Result<SlotId, Promise<'js>>> {
    match target(st, call) {
        Target::Live(slot) => Ok(Ok(slot)),
        other => Ok(Err(not_live(ctx, call, other, None)?)),
    }
}

/// Runs `operation` for a live call; an ended one resolves with `when_ended`
/// (or rejects `CALL_ENDED`).
pub(crate) fn simple<'js, F>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    when_ended: Option<Value<'js>>,
    operation: F,
) -> rquickjs::Result<Promise<'js>>
where
    F: std::future::Future<Output = OpResult> + Send + 'static,
{
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => Ok(ops::start(ctx, &st, Some(slot), false, operation)?.0),
        other => not_live(ctx, call, other, when_ended),
    }
}

fn answer<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let options = Options::new(ctx, opts, "answer")?;
    let headers = headers::parse(ctx, options.value("headers")?, "answer")?;
    let control = call.control.clone();
    simple(ctx, call, None, async move {
        OpResult::Call(control.answer(headers).await)
    })
}

fn reject<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    code: Option<Value<'js>>,
    reason: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let code = code.and_then(|c| c.as_number()).unwrap_or(f64::NAN);
    if !(300.0..=699.0).contains(&code) || code.fract() != 0.0 {
        return Err(Exception::throw_type(
            ctx,
            "reject: the code must be a SIP status from 300 to 699",
        ));
    }
    let reason = match reason {
        Some(r) if !r.is_undefined() && !r.is_null() => {
            let reason = r.get::<rquickjs::convert::Coerced<String>>()?.0;
            if reason.chars().any(char::is_control) || reason.len() > 128 {
                return Err(Exception::throw_type(
                    ctx,
                    "reject: the reason phrase must be one short line",
                ));
            }
            Some(reason)
        }
        _ => None,
    };
    let control = call.control.clone();
    simple(ctx, call, None, async move {
        OpResult::Call(control.reject(code as u16, reason).await)
    })
}

fn hangup<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let options = Options::new(ctx, opts, "hangup")?;
    let headers = headers::parse(ctx, options.value("headers")?, "hangup")?;
    let control = call.control.clone();
    let undefined = Value::new_undefined(ctx.clone());
    simple(ctx, call, Some(undefined), async move {
        OpResult::Call(control.hangup(headers).await)
    })
}

fn route_to<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    destination: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let destination = match destination.as_ref().and_then(|d| d.as_string()) {
        Some(d) => d.to_string()?,
        None => {
            return Err(Exception::throw_type(
                ctx,
                "routeTo: the destination must be a string",
            ))
        }
    };
    if destination.is_empty() {
        return Err(Exception::throw_type(
            ctx,
            "routeTo: the destination is empty",
        ));
    }
    let options = Options::new(ctx, opts, "routeTo")?;
    let custom_data = match options.value("customData")? {
        Some(data) => js_to_json(ctx, data, "routeTo: customData")?,
        None => serde_json::Value::Null,
    };
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => calls::start_route(ctx, &st, slot, destination, custom_data),
        other => not_live(ctx, call, other, None),
    }
}

fn listen<'js>(
    ctx: &Ctx<'js>,
    this: &Class<'js, JsCall>,
    event: Option<Value<'js>>,
    listener: Option<Value<'js>>,
    add: bool,
) -> rquickjs::Result<Class<'js, JsCall>> {
    let what = if add { "on" } else { "off" };
    let event = event_name(ctx, what, &CALL_EVENTS, event)?;
    let Some(listener) = listener.and_then(|l| l.into_function()) else {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: the listener must be a function"),
        ));
    };
    let listener = Persistent::save(ctx, listener);
    let st = state(ctx)?;
    let slot = this.borrow().slot;
    if let Some(slot) = st.inner.borrow_mut().calls.get_mut(&slot) {
        if add {
            slot.listeners.add(event, listener);
        } else {
            slot.listeners.remove(event, &listener);
        }
    }
    Ok(this.clone())
}

/// Checks an event name against the known ones.
pub(crate) fn event_name<'js>(
    ctx: &Ctx<'js>,
    what: &str,
    known: &[&'static str],
    event: Option<Value<'js>>,
) -> rquickjs::Result<&'static str> {
    let name = event
        .as_ref()
        .and_then(|e| e.as_string())
        .map(|s| s.to_string())
        .transpose()?
        .unwrap_or_default();
    known.iter().copied().find(|k| *k == name).ok_or_else(|| {
        Exception::throw_type(
            ctx,
            &format!(
                "{what}: unknown event {name:?} (events: {})",
                known.join(", ")
            ),
        )
    })
}

/// A call object argument (`bridge(other)`, `conf.add(call)`).
pub(crate) fn call_arg<'js>(
    ctx: &Ctx<'js>,
    value: Option<&Value<'js>>,
    what: &str,
) -> rquickjs::Result<Class<'js, JsCall>> {
    value
        .and_then(|c| Class::<JsCall>::from_value(c).ok())
        .ok_or_else(|| Exception::throw_type(ctx, &format!("{what}: expected a call object")))
}
