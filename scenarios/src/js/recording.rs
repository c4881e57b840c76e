//! A recording in progress (`call.record()`, `conf.record()`): `id`,
//! `location`, and `stop()` → `{location, durationMs}`.

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::This;
use rquickjs::object::Property;
use rquickjs::{Class, Constructor, Ctx, Exception, JsLifetime, Object, Promise};

use super::call::method;
use super::state;
use crate::host::RecordingInfo;
use crate::ops;
use crate::state::{OpResult, RecordingOwner};

pub(crate) struct JsRecording {
    id: String,
    owner: RecordingOwner,
}

// SAFETY: no JavaScript values inside.
unsafe impl<'js> JsLifetime<'js> for JsRecording {
    type Changed<'to> = JsRecording;
}

impl<'js> Trace<'js> for JsRecording {
    fn trace<'a>(&self, _tracer: Tracer<'a, 'js>) {}
}

impl<'js> JsClass<'js> for JsRecording {
    const NAME: &'static str = "Recording";
    type Mutable = Readable;

    fn prototype(ctx: &Ctx<'js>) -> rquickjs::Result<Option<Object<'js>>> {
        let proto = Object::new(ctx.clone())?;
        method(
            ctx,
            &proto,
            "stop",
            |ctx: Ctx<'js>, this: This<Class<'js, JsRecording>>| stop(&ctx, &this.0.borrow()),
        )?;
        Ok(Some(proto))
    }

    fn constructor(_ctx: &Ctx<'js>) -> rquickjs::Result<Option<Constructor<'js>>> {
        Ok(None)
    }
}

pub(crate) fn new_object<'js>(
    ctx: &Ctx<'js>,
    info: &RecordingInfo,
    owner: RecordingOwner,
) -> rquickjs::Result<Class<'js, JsRecording>> {
    let object = Class::instance(
        ctx.clone(),
        JsRecording {
            id: info.id.clone(),
            owner,
        },
    )?;
    object.prop("id", Property::from(info.id.clone()).enumerable())?;
    object.prop(
        "location",
        Property::from(info.location.clone()).enumerable(),
    )?;
    Ok(object)
}

fn stop<'js>(ctx: &Ctx<'js>, recording: &JsRecording) -> rquickjs::Result<Promise<'js>> {
    let st = state(ctx)?;
    let id = recording.id.clone();
    match &recording.owner {
        RecordingOwner::Call(control) => {
            let control = control.clone();
            let operation = async move { OpResult::Recording(control.stop_recording(&id).await) };
            Ok(ops::start(ctx, &st, None, false, operation)?.0)
        }
        RecordingOwner::Conference => {
            let Some(conference) = st.env.conference.clone() else {
                return Err(Exception::throw_internal(
                    ctx,
                    "this instance has no conference",
                ));
            };
            let operation =
                async move { OpResult::ConferenceRecording(conference.stop_recording(&id).await) };
            Ok(ops::start(ctx, &st, None, false, operation)?.0)
        }
    }
}
