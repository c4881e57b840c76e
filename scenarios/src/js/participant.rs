//! A conference participant (`conf.add()`, `conf.participants`, events):
//! live `muted`/`deaf`/`talking`/`gainDb`, and `mute()`, `unmute()`,
//! `deafen()`, `undeafen()`, `setGain(db)`, `kick()`. There is one object per
//! participant, so the same participant is always the same object.

use std::cell::RefCell;
use std::sync::Arc;

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::{Opt, This};
use rquickjs::object::{Accessor, Property};
use rquickjs::{
    Class, Constructor, Ctx, Exception, JsLifetime, Object, Persistent, Promise, Value,
};

use super::call::method;
use super::state;
use crate::host::{ConferenceControl, ParticipantInfo, ParticipantUpdate};
use crate::ops;
use crate::state::{JsState, OpResult};

/// Gain a participant may be given, in dB.
const GAIN_RANGE_DB: std::ops::RangeInclusive<f64> = -60.0..=24.0;

pub(crate) struct JsParticipant {
    call_id: String,
    /// The last state seen (what the getters show once the participant left).
    last: RefCell<ParticipantInfo>,
}

// SAFETY: no JavaScript values inside.
unsafe impl<'js> JsLifetime<'js> for JsParticipant {
    type Changed<'to> = JsParticipant;
}

impl<'js> Trace<'js> for JsParticipant {
    fn trace<'a>(&self, _tracer: Tracer<'a, 'js>) {}
}

type This_<'js> = This<Class<'js, JsParticipant>>;

impl<'js> JsClass<'js> for JsParticipant {
    const NAME: &'static str = "Participant";
    type Mutable = Readable;

    fn prototype(ctx: &Ctx<'js>) -> rquickjs::Result<Option<Object<'js>>> {
        prototype(ctx).map(Some)
    }

    fn constructor(_ctx: &Ctx<'js>) -> rquickjs::Result<Option<Constructor<'js>>> {
        Ok(None)
    }
}

impl JsParticipant {
    /// The live state (or the last one seen, once gone).
    fn info(&self, conference: Option<&Arc<dyn ConferenceControl>>) -> ParticipantInfo {
        if let Some(info) = conference.and_then(|c| c.participant(&self.call_id)) {
            *self.last.borrow_mut() = info.clone();
            return info;
        }
        let mut last = self.last.borrow().clone();
        last.talking = false;
        last
    }
}

/// The participant object for `call_id` (created on first use).
pub(crate) fn object_for<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    call_id: &str,
) -> rquickjs::Result<Class<'js, JsParticipant>> {
    let existing = st.inner.borrow().conf.participants.get(call_id).cloned();
    if let Some(existing) = existing {
        return existing.restore(ctx);
    }
    let info = st
        .env
        .conference
        .as_ref()
        .and_then(|c| c.participant(call_id))
        .unwrap_or(ParticipantInfo {
            call_id: call_id.to_string(),
            muted: false,
            deaf: false,
            talking: false,
            gain_db: 0.0,
        });
    let object = Class::instance(
        ctx.clone(),
        JsParticipant {
            call_id: call_id.to_string(),
            last: RefCell::new(info),
        },
    )?;
    object.prop("callId", Property::from(call_id.to_string()).enumerable())?;
    st.inner
        .borrow_mut()
        .conf
        .participants
        .insert(call_id.to_string(), Persistent::save(ctx, object.clone()));
    Ok(object)
}

/// Forgets the object of a participant that left (a later join makes a new one).
pub(crate) fn forget(
    st: &JsState,
    call_id: &str,
) -> Option<Persistent<Class<'static, JsParticipant>>> {
    st.inner.borrow_mut().conf.participants.remove(call_id)
}

fn prototype<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<Object<'js>> {
    let proto = Object::new(ctx.clone())?;
    proto.prop(
        "muted",
        Accessor::from(|ctx: Ctx<'js>, this: This_<'js>| live(&ctx, &this, |i| i.muted))
            .enumerable()
            .configurable(),
    )?;
    proto.prop(
        "deaf",
        Accessor::from(|ctx: Ctx<'js>, this: This_<'js>| live(&ctx, &this, |i| i.deaf))
            .enumerable()
            .configurable(),
    )?;
    proto.prop(
        "talking",
        Accessor::from(|ctx: Ctx<'js>, this: This_<'js>| live(&ctx, &this, |i| i.talking))
            .enumerable()
            .configurable(),
    )?;
    proto.prop(
        "gainDb",
        Accessor::from(|ctx: Ctx<'js>, this: This_<'js>| live(&ctx, &this, |i| i.gain_db))
            .enumerable()
            .configurable(),
    )?;
    proto.prop(
        "call",
        Accessor::from(
            |ctx: Ctx<'js>, this: This_<'js>| -> rquickjs::Result<Value<'js>> {
                let st = state(&ctx)?;
                let call_id = this.0.borrow().call_id.clone();
                let object = st
                    .inner
                    .borrow()
                    .calls
                    .values()
                    .find(|c| c.control.info().id == call_id && c.routing.is_none())
                    .map(|c| c.object.clone());
                match object {
                    Some(object) => Ok(object.restore(&ctx)?.into_value()),
                    None => Ok(Value::new_undefined(ctx.clone())),
                }
            },
        )
        .configurable(),
    )?;
    let updates: [(&str, ParticipantUpdate); 4] = [
        (
            "mute",
            ParticipantUpdate {
                muted: Some(true),
                ..Default::default()
            },
        ),
        (
            "unmute",
            ParticipantUpdate {
                muted: Some(false),
                ..Default::default()
            },
        ),
        (
            "deafen",
            ParticipantUpdate {
                deaf: Some(true),
                ..Default::default()
            },
        ),
        (
            "undeafen",
            ParticipantUpdate {
                deaf: Some(false),
                ..Default::default()
            },
        ),
    ];
    for (name, update) in updates {
        method(ctx, &proto, name, move |ctx: Ctx<'js>, this: This_<'js>| {
            apply(&ctx, &this.0.borrow(), update)
        })?;
    }
    method(
        ctx,
        &proto,
        "setGain",
        |ctx: Ctx<'js>, this: This_<'js>, db: Opt<Value<'js>>| {
            let db = db.0.and_then(|d| d.as_number()).unwrap_or(f64::NAN);
            if !GAIN_RANGE_DB.contains(&db) {
                return Err(Exception::throw_range(
                    &ctx,
                    &format!(
                        "setGain: the gain is a number of dB from {} to {}",
                        GAIN_RANGE_DB.start(),
                        GAIN_RANGE_DB.end()
                    ),
                ));
            }
            let update = ParticipantUpdate {
                gain_db: Some(db),
                ..Default::default()
            };
            apply(&ctx, &this.0.borrow(), update)
        },
    )?;
    method(ctx, &proto, "kick", |ctx: Ctx<'js>, this: This_<'js>| {
        let st = state(&ctx)?;
        let conference = conference(&ctx, &st)?;
        let call_id = this.0.borrow().call_id.clone();
        let operation = async move { OpResult::Conference(conference.kick(&call_id).await) };
        Ok::<_, rquickjs::Error>(ops::start(&ctx, &st, None, false, operation)?.0)
    })?;
    method(ctx, &proto, "toString", |this: This_<'js>| {
        this.0.borrow().call_id.clone()
    })?;
    Ok(proto)
}

fn live<'js, T>(
    ctx: &Ctx<'js>,
    this: &This_<'js>,
    read: impl Fn(&ParticipantInfo) -> T,
) -> rquickjs::Result<T> {
    let st = state(ctx)?;
    let info = this.0.borrow().info(st.env.conference.as_ref());
    Ok(read(&info))
}

fn conference<'js>(ctx: &Ctx<'js>, st: &JsState) -> rquickjs::Result<Arc<dyn ConferenceControl>> {
    st.env
        .conference
        .clone()
        .ok_or_else(|| Exception::throw_internal(ctx, "this instance has no conference"))
}

fn apply<'js>(
    ctx: &Ctx<'js>,
    participant: &JsParticipant,
    update: ParticipantUpdate,
) -> rquickjs::Result<Promise<'js>> {
    let st = state(ctx)?;
    let conference = conference(ctx, &st)?;
    let call_id = participant.call_id.clone();
    let operation =
        async move { OpResult::Conference(conference.update_participant(&call_id, update).await) };
    Ok(ops::start(ctx, &st, None, false, operation)?.0)
}
