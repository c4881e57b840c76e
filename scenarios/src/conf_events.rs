//! Conference events to the scenario's listeners: `join`, `leave`,
//! `talking`, `silent` get the participant; `empty` gets nothing.

use rquickjs::{Ctx, Value};

use crate::host::ConferenceEvent;
use crate::js::{call_stored, participant};
use crate::state::JsState;

pub(crate) fn dispatch(
    ctx: &Ctx<'_>,
    st: &JsState,
    event: Option<ConferenceEvent>,
) -> rquickjs::Result<()> {
    let (name, call_id) = match event {
        Some(ConferenceEvent::Join { call_id }) => ("join", Some(call_id)),
        Some(ConferenceEvent::Leave { call_id }) => ("leave", Some(call_id)),
        Some(ConferenceEvent::Talking { call_id }) => ("talking", Some(call_id)),
        Some(ConferenceEvent::Silent { call_id }) => ("silent", Some(call_id)),
        Some(ConferenceEvent::Empty) => ("empty", None),
        None => {
            st.inner.borrow_mut().conf.quiet = true;
            return Ok(());
        }
    };
    let (listeners, conf) = {
        let mut inner = st.inner.borrow_mut();
        match name {
            "join" => {
                inner.conf.quiet = false;
                inner.conf.grace = None;
            }
            "empty" => inner.conf.quiet = true,
            _ => {}
        }
        if name == "leave" {
            let id = call_id.as_deref().unwrap_or_default();
            if let Some(call) = inner.calls.values_mut().find(|c| c.control.info().id == id) {
                call.in_conference = false;
            }
        }
        (inner.conf.listeners.get(name), inner.conf.object.clone())
    };
    let argument = match (&call_id, listeners.is_empty()) {
        (Some(id), false) => Some(participant::object_for(ctx, st, id)?.into_value()),
        _ => None,
    };
    if name == "leave" {
        // A later join is a new participant (and a new object).
        if let Some(id) = &call_id {
            drop(participant::forget(st, id));
        }
    }
    if listeners.is_empty() {
        return Ok(());
    }
    let argument = argument.unwrap_or_else(|| Value::new_undefined(ctx.clone()));
    let this = match conf {
        Some(conf) => Some(conf.restore(ctx)?.into_value()),
        None => None,
    };
    for listener in listeners {
        call_stored(ctx, listener, this.clone(), argument.clone())?;
    }
    Ok(())
}
