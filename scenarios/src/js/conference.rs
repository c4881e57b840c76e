//! The `conf` object of a conference instance.

use std::sync::Arc;

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::{Opt, This};
use rquickjs::object::{Accessor, Property};
use rquickjs::{
    Array, Class, Constructor, Ctx, Exception, JsLifetime, Object, Persistent, Promise, Value,
};

use super::call::{call_arg, event_name, method, owned_slot};
use super::call_media::{play_options, record_options, say_options, source_arg, text_arg};
use super::convert::Options;
use super::{participant, state};
use crate::host::{ConferenceControl, ConferenceOptions, ParticipantOptions};
use crate::ops;
use crate::state::{JsState, OpResult, RecordingOwner, Then};

/// Events a conference emits (`conf.on(event, fn)`).
pub(crate) const CONFERENCE_EVENTS: [&str; 5] = ["join", "leave", "talking", "silent", "empty"];

/// Largest `maxParticipants`.
const MAX_PARTICIPANTS: u64 = 100_000;

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

fn conference<'js>(ctx: &Ctx<'js>, st: &JsState) -> rquickjs::Result<Arc<dyn ConferenceControl>> {
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
        Accessor::from(|ctx: Ctx<'js>, _this: This_<'js>| participants(&ctx)).configurable(),
    )?;
    proto.prop(
        "maxParticipants",
        Accessor::new(
            |ctx: Ctx<'js>, _this: This_<'js>| -> rquickjs::Result<Value<'js>> {
                let max = state(&ctx)?.inner.borrow().conf.options.max_participants;
                or_null(&ctx, max)
            },
            |ctx: Ctx<'js>, _this: This_<'js>, value: Value<'js>| -> rquickjs::Result<()> {
                let max = max_participants(&ctx, Some(value))?;
                update_options(&ctx, |o| o.max_participants = max)
            },
        )
        .configurable(),
    )?;
    proto.prop(
        "waitMusic",
        Accessor::new(
            |ctx: Ctx<'js>, _this: This_<'js>| -> rquickjs::Result<Value<'js>> {
                let music = state(&ctx)?.inner.borrow().conf.options.wait_music.clone();
                or_null(&ctx, music)
            },
            |ctx: Ctx<'js>, _this: This_<'js>, value: Value<'js>| -> rquickjs::Result<()> {
                let music = wait_music(&ctx, Some(value))?;
                update_options(&ctx, |o| o.wait_music = music)
            },
        )
        .configurable(),
    )?;
    method(
        ctx,
        &proto,
        "configure",
        |ctx: Ctx<'js>, _this: This_<'js>, opts: Opt<Value<'js>>| configure(&ctx, opts.0),
    )?;
    method(
        ctx,
        &proto,
        "participant",
        |ctx: Ctx<'js>, _this: This_<'js>, id: Opt<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            let st = state(&ctx)?;
            let id =
                id.0.and_then(|v| v.as_string().and_then(|s| s.to_string().ok()));
            match id {
                Some(id) if conference(&ctx, &st)?.participant(&id).is_some() => {
                    Ok(participant::object_for(&ctx, &st, &id)?.into_value())
                }
                _ => Ok(Value::new_undefined(ctx.clone())),
            }
        },
    )?;
    method(
        ctx,
        &proto,
        "add",
        |ctx: Ctx<'js>, _this: This_<'js>, call: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            add(&ctx, call.0, opts.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "say",
        |ctx: Ctx<'js>, _this: This_<'js>, text: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            say(&ctx, text.0, opts.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "play",
        |ctx: Ctx<'js>, _this: This_<'js>, source: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            play(&ctx, source.0, opts.0)
        },
    )?;
    method(
        ctx,
        &proto,
        "stopMedia",
        |ctx: Ctx<'js>, _this: This_<'js>| -> rquickjs::Result<()> {
            let st = state(&ctx)?;
            conference(&ctx, &st)?.stop_media();
            Ok(())
        },
    )?;
    method(
        ctx,
        &proto,
        "record",
        |ctx: Ctx<'js>, _this: This_<'js>, opts: Opt<Value<'js>>| record(&ctx, opts.0),
    )?;
    method(ctx, &proto, "end", |ctx: Ctx<'js>, _this: This_<'js>| {
        end(&ctx)
    })?;
    for (name, add) in [("on", true), ("off", false)] {
        method(
            ctx,
            &proto,
            name,
            move |ctx: Ctx<'js>,
                  this: This_<'js>,
                  event: Opt<Value<'js>>,
                  listener: Opt<Value<'js>>| {
                listen(&ctx, this.0, event.0, listener.0, add)
            },
        )?;
    }
    Ok(proto)
}

/// An option's value, `null` when unset.
fn or_null<'js, T: rquickjs::IntoJs<'js>>(
    ctx: &Ctx<'js>,
    value: Option<T>,
) -> rquickjs::Result<Value<'js>> {
    match value {
        Some(value) => value.into_js(ctx),
        None => Ok(Value::new_null(ctx.clone())),
    }
}

fn participants<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Array<'js>> {
    let st = state(ctx)?;
    let ids = conference(ctx, &st)?.participants();
    let array = Array::new(ctx.clone())?;
    for (index, id) in ids.iter().enumerate() {
        array.set(index, participant::object_for(ctx, &st, id)?)?;
    }
    Ok(array)
}

fn max_participants<'js>(
    ctx: &Ctx<'js>,
    value: Option<Value<'js>>,
) -> rquickjs::Result<Option<usize>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_undefined() || v.is_null() => Ok(None),
        Some(v) => match v.as_number() {
            Some(n) if n.fract() == 0.0 && n >= 1.0 && n <= MAX_PARTICIPANTS as f64 => {
                Ok(Some(n as usize))
            }
            _ => Err(Exception::throw_type(
                ctx,
                &format!(
                    "maxParticipants must be a whole number from 1 to {MAX_PARTICIPANTS}, or null"
                ),
            )),
        },
    }
}

fn wait_music<'js>(ctx: &Ctx<'js>, value: Option<Value<'js>>) -> rquickjs::Result<Option<String>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_undefined() || v.is_null() => Ok(None),
        Some(v) => Ok(Some(source_arg(ctx, "waitMusic", Some(v))?)),
    }
}

/// Changes the room-wide options and hands all of them to the conference.
fn update_options<'js>(
    ctx: &Ctx<'js>,
    change: impl FnOnce(&mut ConferenceOptions),
) -> rquickjs::Result<()> {
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let mut options = st.inner.borrow().conf.options.clone();
    change(&mut options);
    conference
        .configure(options.clone())
        .map_err(|e| Exception::throw_type(ctx, &format!("conference options: {e}")))?;
    st.inner.borrow_mut().conf.options = options;
    Ok(())
}

fn configure<'js>(ctx: &Ctx<'js>, opts: Option<Value<'js>>) -> rquickjs::Result<()> {
    let options = Options::new(ctx, opts, "conf.configure")?;
    let max = match options.value("maxParticipants")? {
        Some(v) => Some(max_participants(ctx, Some(v))?),
        None => None,
    };
    let music = match options.value("waitMusic")? {
        Some(v) => Some(wait_music(ctx, Some(v))?),
        None => None,
    };
    update_options(ctx, |o| {
        if let Some(max) = max {
            o.max_participants = max;
        }
        if let Some(music) = music {
            o.wait_music = music;
        }
    })
}

fn add<'js>(
    ctx: &Ctx<'js>,
    call: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let call = call_arg(ctx, call.as_ref(), "conf.add")?;
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
    let call_id = control.info().id.clone();
    let operation = async move { OpResult::Conference(conference.add(control, participant).await) };
    let then = Then::Participant { call_id };
    Ok(ops::start_then(ctx, &st, Some(slot), false, then, operation)?.0)
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

fn play<'js>(
    ctx: &Ctx<'js>,
    source: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let source = source_arg(ctx, "conf.play", source)?;
    let options = play_options(&Options::new(ctx, opts, "conf.play")?)?;
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let operation =
        async move { OpResult::ConferenceMedia(conference.play(&source, options).await) };
    Ok(ops::start(ctx, &st, None, false, operation)?.0)
}

fn record<'js>(ctx: &Ctx<'js>, opts: Option<Value<'js>>) -> rquickjs::Result<Promise<'js>> {
    let options = record_options(&Options::new(ctx, opts, "conf.record")?)?;
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let operation = async move { OpResult::ConferenceRecording(conference.record(options).await) };
    let then = Then::Recording(RecordingOwner::Conference);
    Ok(ops::start_then(ctx, &st, None, false, then, operation)?.0)
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
