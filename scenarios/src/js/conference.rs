//! The `conf` object of a conference instance.

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::{Opt, This};
use rquickjs::object::{Accessor, Property};
use rquickjs::Constructor;
use rquickjs::{Class, Ctx, Exception, Function, JsLifetime, Object, Persistent, Promise, Value};

use super::call::{event_name, owned_slot, say_options, text_arg, JsCall};
use super::convert::Options;
use super::state;
use crate::host::{ConferenceControl, ParticipantOptions};
use crate::ops;
use crate::state::{JsState, OpResult};

/// Events a conference emits (`conf.on(event, fn)`).
pub(crate) const CONFERENCE_EVENTS: [&str; 3] = ["join", "leave", "empty"];

pub(crate) struct JsConference;

// SAFETY: no JavaScript values inside.
unsafe impl<'js> JsLifetime<'js> for JsConference {
    type Changed<'to> = JsConference;
}

impl<'js> Trace<'js> for JsConference {
    fn trace<'a>(&self, _tracer: Tracer<'a, 'js>) {}
}

impl<'js> JsClass<'js> for JsConference {
    const NAME: &'static str = "Conference";
    type Mutable = Readable;

    fn prototype(ctx: &Ctx<'js>) -> rquickjs::Result<Option<Object<'js>>> {
        prototype(ctx).map(Some)
    }

    fn constructor(_ctx: &Ctx<'js>) -> rquickjs::Result<Option<Constructor<'js>>> {
        Ok(None)
    }
}

pub(crate) fn new_object<'js>(
    ctx: &Ctx<'js>,
    control: &dyn ConferenceControl,
) -> rquickjs::Result<Class<'js, JsConference>> {
    let object = Class::instance(ctx.clone(), JsConference)?;
    object.prop(
        "name",
        Property::from(control.name().to_string()).enumerable(),
    )?;
    Ok(object)
}

fn conference<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
) -> rquickjs::Result<std::sync::Arc<dyn ConferenceControl>> {
    st.env
        .conference
        .clone()
        .ok_or_else(|| Exception::throw_internal(ctx, "this instance has no conference"))
}

type This_<'js> = This<Class<'js, JsConference>>;

fn prototype<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let proto = Object::new(ctx.clone())?;
    proto.prop(
        "size",
        Accessor::from(
            |ctx: Ctx<'js>, _this: This_<'js>| -> rquickjs::Result<usize> {
                let st = state(&ctx)?;
                Ok(conference(&ctx, &st)?.size())
            },
        )
        .configurable(),
    )?;
    proto.prop(
        "participants",
        Accessor::from(
            |ctx: Ctx<'js>, _this: This_<'js>| -> rquickjs::Result<Vec<String>> {
                let st = state(&ctx)?;
                Ok(conference(&ctx, &st)?.participants())
            },
        )
        .configurable(),
    )?;
    let add = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, _this: This_<'js>, call: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            add(&ctx, call.0, opts.0)
        },
    )?;
    proto.set("add", add.with_name("add")?)?;
    let say = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, _this: This_<'js>, text: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            say(&ctx, text.0, opts.0)
        },
    )?;
    proto.set("say", say.with_name("say")?)?;
    let end = Function::new(ctx.clone(), |ctx: Ctx<'js>, _this: This_<'js>| end(&ctx))?;
    proto.set("end", end.with_name("end")?)?;
    for (name, add) in [("on", true), ("off", false)] {
        let listen = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>,
                  this: This_<'js>,
                  event: Opt<Value<'js>>,
                  listener: Opt<Value<'js>>| {
                listen(&ctx, this.0, event.0, listener.0, add)
            },
        )?;
        proto.set(name, listen.with_name(name)?)?;
    }
    Ok(proto)
}

fn add<'js>(
    ctx: &Ctx<'js>,
    call: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let Some(call) = call
        .as_ref()
        .and_then(|c| Class::<JsCall>::from_value(c).ok())
    else {
        return Err(Exception::throw_type(
            ctx,
            "conf.add: expected a call object",
        ));
    };
    let options = Options::new(ctx, opts, "conf.add")?;
    let participant = ParticipantOptions {
        muted: options.bool("muted")?.unwrap_or(false),
        deaf: options.bool("deaf")?.unwrap_or(false),
        beep: options.bool("beep")?.unwrap_or(false),
    };
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let call = call.borrow();
    let slot = match owned_slot(ctx, &st, &call)? {
        Ok(slot) => slot,
        Err(rejected) => return Ok(rejected),
    };
    let control = call.control.clone();
    let operation = async move { OpResult::Conference(conference.add(control, participant).await) };
    Ok(ops::start(ctx, &st, Some(slot), false, operation)?.0)
}

fn say<'js>(
    ctx: &Ctx<'js>,
    text: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let text = text_arg(ctx, "conf.say", text)?;
    let options = say_options(&Options::new(ctx, opts, "conf.say")?, false)?;
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let operation = async move { OpResult::ConferenceMedia(conference.say(&text, options).await) };
    Ok(ops::start(ctx, &st, None, false, operation)?.0)
}

fn end<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Promise<'js>> {
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let operation = async move {
        conference.end().await;
        OpResult::Conference(Ok(()))
    };
    Ok(ops::start(ctx, &st, None, false, operation)?.0)
}

fn listen<'js>(
    ctx: &Ctx<'js>,
    this: Class<'js, JsConference>,
    event: Option<Value<'js>>,
    listener: Option<Value<'js>>,
    add: bool,
) -> rquickjs::Result<Class<'js, JsConference>> {
    let what = if add { "conf.on" } else { "conf.off" };
    let event = event_name(ctx, what, &CONFERENCE_EVENTS, event)?;
    let Some(listener) = listener.and_then(|l| l.into_function()) else {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: the listener must be a function"),
        ));
    };
    let listener = Persistent::save(ctx, listener);
    let st = state(ctx)?;
    let mut inner = st.inner.borrow_mut();
    if add {
        inner.conf.listeners.add(event, listener);
    } else {
        inner.conf.listeners.remove(event, &listener);
    }
    Ok(this)
}
