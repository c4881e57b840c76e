//! The `call` object: a `Call` class instance whose prototype carries the
//! methods; the instance itself holds only which slot of the instance it is.

use std::cell::RefCell;
use std::sync::Arc;

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::{IntoJsFunc, Opt, This};
use rquickjs::object::{Accessor, Property};
use rquickjs::Constructor;
use rquickjs::{Class, Ctx, Exception, Function, JsLifetime, Object, Persistent, Promise, Value};
use tokio::time::Duration;

use super::convert::{js_to_json, Options};
use super::errors::{self, api_error};
use super::{js, object, state};
use crate::calls;
use crate::collect::CollectSpec;
use crate::host::{CallControl, MediaOutcome, SayOptions};
use crate::ops;
use crate::state::{JsState, OpResult, SlotId};

/// Events a call emits (`call.on(event, fn)`).
pub(crate) const CALL_EVENTS: [&str; 2] = ["dtmf", "hangup"];

const DEFAULT_MAX_DIGITS: u64 = 128;
const DEFAULT_FIRST_DIGIT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_INTER_DIGIT_TIMEOUT_MS: u64 = 3_000;
const MAX_TIMEOUT_MS: u64 = 3_600_000;

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
enum Target {
    Live(SlotId),
    /// `routeTo` is handing it over.
    Routing(String),
    Routed(String),
    Ended,
}

fn target(st: &JsState, call: &JsCall) -> Target {
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
    let headers = Object::new(ctx.clone())?;
    for (name, value) in header_map(&info.headers) {
        headers.set(name, value)?;
    }
    object.prop("headers", Property::from(headers).enumerable())?;
    Ok(object)
}

/// Headers by lower-case name; repeated headers joined with ", ".
fn header_map(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut map: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match map.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => map.push((name, value.clone())),
        }
    }
    map
}

fn method<'js, P, F>(ctx: &Ctx<'js>, proto: &Object<'js>, name: &str, f: F) -> rquickjs::Result<()>
where
    F: IntoJsFunc<'js, P> + 'js,
{
    proto.set(name, Function::new(ctx.clone(), f)?.with_name(name)?)
}

type This_<'js> = This<Class<'js, JsCall>>;

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
    method(ctx, &proto, "answer", |ctx: Ctx<'js>, this: This_<'js>| {
        answer(&ctx, &this.0.borrow())
    })?;
    method(
        ctx,
        &proto,
        "reject",
        |ctx: Ctx<'js>, this: This_<'js>, code: Opt<Value<'js>>, reason: Opt<Value<'js>>| {
            reject(&ctx, &this.0.borrow(), code.0, reason.0)
        },
    )?;
    method(ctx, &proto, "hangup", |ctx: Ctx<'js>, this: This_<'js>| {
        hangup(&ctx, &this.0.borrow())
    })?;
    method(
        ctx,
        &proto,
        "say",
        |ctx: Ctx<'js>, this: This_<'js>, text: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            say(&ctx, &this.0.borrow(), text.0, opts.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "stopMedia",
        |ctx: Ctx<'js>, this: This_<'js>| stop_media(&ctx, &this.0.borrow()),
    )?;
    method(
        ctx,
        &proto,
        "collectDigits",
        |ctx: Ctx<'js>, this: This_<'js>, opts: Opt<Value<'js>>| {
            collect_digits(&ctx, &this.0.borrow(), opts.0)
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
            header_map(&call.control.info().headers)
                .into_iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v)
        },
    )?;
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

/// The promise a method returns for a call it cannot act on.
fn not_live<'js>(
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

fn answer<'js>(ctx: &Ctx<'js>, call: &JsCall) -> rquickjs::Result<Promise<'js>> {
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let control = call.control.clone();
            let operation = async move { OpResult::Call(control.answer(Vec::new()).await) };
            Ok(ops::start(ctx, &st, Some(slot), false, operation)?.0)
        }
        other => not_live(ctx, call, other, None),
    }
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
            Some(r.get::<rquickjs::convert::Coerced<String>>()?.0)
        }
        _ => None,
    };
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let control = call.control.clone();
            let operation =
                async move { OpResult::Call(control.reject(code as u16, reason).await) };
            Ok(ops::start(ctx, &st, Some(slot), false, operation)?.0)
        }
        other => not_live(ctx, call, other, None),
    }
}

fn hangup<'js>(ctx: &Ctx<'js>, call: &JsCall) -> rquickjs::Result<Promise<'js>> {
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let control = call.control.clone();
            let operation = async move { OpResult::Call(control.hangup(Vec::new()).await) };
            Ok(ops::start(ctx, &st, Some(slot), false, operation)?.0)
        }
        other => not_live(ctx, call, other, Some(Value::new_undefined(ctx.clone()))),
    }
}

/// The text to speak: a string (numbers are spoken too).
pub(crate) fn text_arg<'js>(
    ctx: &Ctx<'js>,
    what: &str,
    text: Option<Value<'js>>,
) -> rquickjs::Result<String> {
    match text {
        Some(v) if v.is_string() || v.is_number() => {
            Ok(v.get::<rquickjs::convert::Coerced<String>>()?.0)
        }
        _ => Err(Exception::throw_type(
            ctx,
            &format!("{what}: the text must be a string"),
        )),
    }
}

/// `{voice, language, rate}` (+ `bargeIn` when `barge_in_default` is given).
pub(crate) fn say_options(
    options: &Options<'_>,
    barge_in_default: bool,
) -> rquickjs::Result<SayOptions> {
    let rate = options.number("rate")?;
    if let Some(rate) = rate {
        if !(0.1..=10.0).contains(&rate) {
            return Err(options.type_error("rate", "a number from 0.1 to 10"));
        }
    }
    Ok(SayOptions {
        voice: options.string("voice")?,
        language: options.string("language")?,
        rate,
        barge_in: options.bool("bargeIn")?.unwrap_or(barge_in_default),
    })
}

fn say<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    text: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let text = text_arg(ctx, "say", text)?;
    let options = say_options(&Options::new(ctx, opts, "say")?, false)?;
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let barge_in = options.barge_in;
            let control = call.control.clone();
            let operation = async move { OpResult::Media(control.say(&text, options).await) };
            let (promise, op) = ops::start(ctx, &st, Some(slot), true, operation)?;
            if barge_in {
                if let Some(slot) = st.inner.borrow_mut().calls.get_mut(&slot) {
                    slot.barge_in.push(op);
                }
            }
            Ok(promise)
        }
        other => {
            let hangup = ops::media_result(ctx, MediaOutcome::Hangup)?;
            not_live(ctx, call, other, Some(hangup))
        }
    }
}

fn stop_media(ctx: &Ctx<'_>, call: &JsCall) -> rquickjs::Result<()> {
    let st = state(ctx)?;
    if let Target::Live(_) = target(&st, call) {
        call.control.stop_media();
    }
    Ok(())
}

/// Parsed `collectDigits` options.
pub(crate) struct CollectArgs {
    pub spec: CollectSpec,
    pub prompt: Option<(String, SayOptions)>,
    pub barge_in: bool,
}

fn is_dtmf(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}

fn collect_args<'js>(ctx: &Ctx<'js>, opts: Option<Value<'js>>) -> rquickjs::Result<CollectArgs> {
    let options = Options::new(ctx, opts, "collectDigits")?;
    let max = options
        .integer("max", 1, DEFAULT_MAX_DIGITS)?
        .unwrap_or(DEFAULT_MAX_DIGITS);
    let min = options.integer("min", 0, DEFAULT_MAX_DIGITS)?.unwrap_or(1);
    if min > max {
        return Err(Exception::throw_range(
            ctx,
            &format!("collectDigits: min ({min}) is more than max ({max})"),
        ));
    }
    let terminators: Vec<char> = match options.string("terminators")? {
        None => vec!['#'],
        Some(t) => t.chars().map(|c| c.to_ascii_uppercase()).collect(),
    };
    if let Some(bad) = terminators.iter().find(|c| !is_dtmf(**c)) {
        return Err(options.type_error(
            "terminators",
            &format!("DTMF keys (0-9 * # A-D), not {bad:?}"),
        ));
    }
    let first = options
        .integer("firstDigitTimeoutMs", 0, MAX_TIMEOUT_MS)?
        .unwrap_or(DEFAULT_FIRST_DIGIT_TIMEOUT_MS);
    let inter = options
        .integer("interDigitTimeoutMs", 0, MAX_TIMEOUT_MS)?
        .unwrap_or(DEFAULT_INTER_DIGIT_TIMEOUT_MS);
    let barge_in = options.bool("bargeIn")?.unwrap_or(true);
    let prompt = match options.value("prompt")? {
        None => None,
        Some(v) if v.is_string() => {
            let text = text_arg(ctx, "collectDigits: prompt", Some(v))?;
            Some((
                text,
                SayOptions {
                    barge_in,
                    ..SayOptions::default()
                },
            ))
        }
        Some(v) if v.is_object() => {
            let prompt = Options::new(ctx, Some(v), "collectDigits: prompt")?;
            let text = text_arg(ctx, "collectDigits: prompt", prompt.value("text")?)?;
            let mut say = say_options(&prompt, barge_in)?;
            say.barge_in = barge_in;
            Some((text, say))
        }
        Some(_) => {
            return Err(options.type_error("prompt", "a string or {text, voice, language, rate}"))
        }
    };
    Ok(CollectArgs {
        spec: CollectSpec {
            min: min as usize,
            max: max as usize,
            terminators,
            first_digit_timeout: Duration::from_millis(first),
            inter_digit_timeout: Duration::from_millis(inter),
        },
        prompt: prompt.filter(|(text, _)| !text.is_empty()),
        barge_in,
    })
}

fn collect_digits<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let args = collect_args(ctx, opts)?;
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => calls::start_collect(ctx, &st, slot, args),
        other => {
            let hangup = object(
                ctx,
                &[("digits", js(ctx, "")?), ("reason", js(ctx, "hangup")?)],
            )?;
            not_live(ctx, call, other, Some(hangup.into_value()))
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_lowercased_and_joined() {
        let headers = vec![
            ("X-Room".to_string(), "42".to_string()),
            ("Via".to_string(), "a".to_string()),
            ("via".to_string(), "b".to_string()),
        ];
        assert_eq!(
            header_map(&headers),
            vec![
                ("x-room".to_string(), "42".to_string()),
                ("via".to_string(), "a, b".to_string())
            ]
        );
    }
}
