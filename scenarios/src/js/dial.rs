//! Outbound calls and bridges: `dial(uri, options)` (on `call` and on `ctx`)
//! places a SIP call that belongs to this instance once answered;
//! `call.bridge(other)` / `call.unbridge()` connect two owned calls' media.

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Function, Object, Promise, Value};
use tokio::time::Duration;

use super::call::{call_arg, method, not_live, owned_slot, target, JsCall, Target, This_};
use super::convert::Options;
use super::{headers, state};
use crate::host::DialOptions;
use crate::ops;
use crate::state::{OpResult, Then};

const DEFAULT_DIAL_TIMEOUT_MS: u64 = 60_000;
const MAX_DIAL_TIMEOUT_MS: u64 = 300_000;
const MAX_URI_LEN: usize = 1024;

pub(crate) fn install_call_methods<'js>(
    ctx: &Ctx<'js>,
    proto: &Object<'js>,
) -> rquickjs::Result<()> {
    method(
        ctx,
        proto,
        "dial",
        |ctx: Ctx<'js>, uri: Opt<Value<'js>>, opts: Opt<Value<'js>>| dial(&ctx, uri.0, opts.0),
    )?;
    method(
        ctx,
        proto,
        "bridge",
        |ctx: Ctx<'js>, this: This_<'js>, other: Opt<Value<'js>>| {
            bridge(&ctx, &this.0.borrow(), other.0)
        },
    )?;
    method(ctx, proto, "unbridge", |ctx: Ctx<'js>, this: This_<'js>| {
        unbridge(&ctx, &this.0.borrow())
    })?;
    Ok(())
}

/// `ctx.dial` (for `onStart`, which has no call).
pub(crate) fn dial_function<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, uri: Opt<Value<'js>>, opts: Opt<Value<'js>>| dial(&ctx, uri.0, opts.0),
    )?
    .with_name("dial")
}

fn dial<'js>(
    ctx: &Ctx<'js>,
    uri: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let uri = match uri.as_ref().and_then(|u| u.as_string()) {
        Some(uri) => uri.to_string()?,
        None => return Err(Exception::throw_type(ctx, "dial: the URI must be a string")),
    };
    let lower = uri.to_ascii_lowercase();
    let scheme_ok = ["sip:", "sips:", "tel:"]
        .iter()
        .any(|s| lower.starts_with(s) && lower.len() > s.len());
    if !scheme_ok || uri.len() > MAX_URI_LEN || uri.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Exception::throw_type(
            ctx,
            &format!("dial: {uri:?} is not a sip:, sips: or tel: URI"),
        ));
    }
    let options = Options::new(ctx, opts, "dial")?;
    let from = options.string("from")?;
    if let Some(from) = &from {
        if from.chars().any(char::is_control) || from.len() > MAX_URI_LEN {
            return Err(options.type_error("from", "a URI on one line"));
        }
    }
    let timeout = options
        .integer("timeoutMs", 1, MAX_DIAL_TIMEOUT_MS)?
        .unwrap_or(DEFAULT_DIAL_TIMEOUT_MS);
    let dial_options = DialOptions {
        from,
        headers: headers::parse(ctx, options.value("headers")?, "dial")?,
        timeout: Duration::from_millis(timeout),
    };
    let st = state(ctx)?;
    let host = st.env.host.clone();
    st.inner.borrow_mut().dialing += 1;
    let operation = async move { OpResult::Dial(host.dial(&uri, dial_options).await) };
    Ok(ops::start_then(ctx, &st, None, false, Then::Dialed, operation)?.0)
}

fn bridge<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    other: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let other = call_arg(ctx, other.as_ref(), "bridge")?;
    let other = other.borrow();
    if other.slot == call.slot {
        return Err(Exception::throw_type(
            ctx,
            "bridge: a call cannot be bridged with itself",
        ));
    }
    let st = state(ctx)?;
    let slot = match owned_slot(ctx, &st, call)? {
        Ok(slot) => slot,
        Err(rejected) => return Ok(rejected),
    };
    let other_slot = match owned_slot(ctx, &st, &other)? {
        Ok(slot) => slot,
        Err(rejected) => return Ok(rejected),
    };
    let control = call.control.clone();
    let other_control = other.control.clone();
    let operation = async move { OpResult::Call(control.bridge(other_control).await) };
    let then = Then::Bridged { other: other_slot };
    Ok(ops::start_then(ctx, &st, Some(slot), false, then, operation)?.0)
}

fn unbridge<'js>(ctx: &Ctx<'js>, call: &JsCall) -> rquickjs::Result<Promise<'js>> {
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let control = call.control.clone();
            let operation = async move { OpResult::Call(control.unbridge().await) };
            Ok(ops::start_then(ctx, &st, Some(slot), false, Then::Unbridged, operation)?.0)
        }
        other => {
            let undefined = Value::new_undefined(ctx.clone());
            not_live(ctx, call, other, Some(undefined))
        }
    }
}
