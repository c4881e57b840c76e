//! Errors as JavaScript sees them (`Error` objects with a `code`), and
//! describing thrown values for the log.

use rquickjs::{Ctx, Exception, Object, Value};

use crate::host::{CallError, ConferenceError, DialError, FetchError, RouteError};

/// The call has ended.
pub(crate) const CALL_ENDED: &str = "CALL_ENDED";
/// The call was handed to another instance with `routeTo`.
pub(crate) const CALL_RELEASED: &str = "CALL_RELEASED";
pub(crate) const INVALID_STATE: &str = "INVALID_STATE";
pub(crate) const MEDIA_ERROR: &str = "MEDIA_ERROR";
pub(crate) const TTS_ERROR: &str = "TTS_ERROR";
pub(crate) const CALL_ERROR: &str = "CALL_ERROR";
pub(crate) const NO_ROUTE: &str = "NO_ROUTE";
pub(crate) const ROUTE_FAILED: &str = "ROUTE_FAILED";
pub(crate) const CONFERENCE_FULL: &str = "FULL";
pub(crate) const CONFERENCE_ENDED: &str = "CONFERENCE_ENDED";
pub(crate) const NO_SUCH_CALL: &str = "NO_SUCH_CALL";
pub(crate) const CONFERENCE_ERROR: &str = "CONFERENCE_ERROR";
pub(crate) const BUSY: &str = "BUSY";
pub(crate) const FETCH_NOT_ALLOWED: &str = "NOT_ALLOWED";
pub(crate) const FETCH_INVALID: &str = "INVALID_REQUEST";
pub(crate) const FETCH_TIMEOUT: &str = "TIMEOUT";
pub(crate) const FETCH_TOO_LARGE: &str = "TOO_LARGE";
pub(crate) const FETCH_NETWORK: &str = "NETWORK_ERROR";

/// Longest description of a thrown value that goes to the log.
const MAX_DESCRIPTION: usize = 4096;

/// `new Error(message)` with `name` and `code` (and the current JS stack).
pub(crate) fn api_error<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    code: &str,
    message: &str,
) -> rquickjs::Result<Value<'js>> {
    let error = Exception::from_message(ctx.clone(), message)?;
    let object = error.as_object();
    object.set("name", name)?;
    object.set("code", code)?;
    Ok(error.into_value())
}

pub(crate) fn call_error<'js>(ctx: &Ctx<'js>, error: &CallError) -> rquickjs::Result<Value<'js>> {
    let code = match error {
        CallError::Ended => CALL_ENDED,
        CallError::InvalidState(_) => INVALID_STATE,
        CallError::Media(_) => MEDIA_ERROR,
        CallError::Tts(_) => TTS_ERROR,
        CallError::Other(_) => CALL_ERROR,
    };
    api_error(ctx, "CallError", code, &error.to_string())
}

pub(crate) fn conference_error<'js>(
    ctx: &Ctx<'js>,
    error: &ConferenceError,
) -> rquickjs::Result<Value<'js>> {
    let code = match error {
        ConferenceError::Full(_) => CONFERENCE_FULL,
        ConferenceError::Ended => CONFERENCE_ENDED,
        ConferenceError::NoSuchCall(_) => NO_SUCH_CALL,
        // The same code as any call operation on an ended call, so a hang-up
        // racing `conf.add` is not taken for a scenario bug.
        ConferenceError::CallEnded(_) => CALL_ENDED,
        ConferenceError::Other(_) => CONFERENCE_ERROR,
    };
    api_error(ctx, "ConferenceError", code, &error.to_string())
}

pub(crate) fn route_error<'js>(ctx: &Ctx<'js>, error: &RouteError) -> rquickjs::Result<Value<'js>> {
    let code = match error {
        RouteError::NoRoute(_) => NO_ROUTE,
        RouteError::Other(_) => ROUTE_FAILED,
    };
    api_error(ctx, "RouteError", code, &error.to_string())
}

/// A failed `dial`: a `DialError` whose `code` is the SIP status (a number;
/// 0 when no response came) and `reason` the phrase.
pub(crate) fn dial_error<'js>(ctx: &Ctx<'js>, error: &DialError) -> rquickjs::Result<Value<'js>> {
    let exception = Exception::from_message(ctx.clone(), &error.to_string())?;
    let object = exception.as_object();
    object.set("name", "DialError")?;
    object.set("code", error.code)?;
    object.set("reason", error.reason.as_str())?;
    Ok(exception.into_value())
}

pub(crate) fn fetch_error<'js>(ctx: &Ctx<'js>, error: &FetchError) -> rquickjs::Result<Value<'js>> {
    let code = match error {
        FetchError::NotAllowed(_) => FETCH_NOT_ALLOWED,
        FetchError::Invalid(_) => FETCH_INVALID,
        FetchError::Timeout => FETCH_TIMEOUT,
        FetchError::TooLarge(_) => FETCH_TOO_LARGE,
        FetchError::Network(_) => FETCH_NETWORK,
    };
    api_error(ctx, "FetchError", code, &error.to_string())
}

/// The `code` of an error object, if it has a string one.
pub(crate) fn error_code(value: &Value<'_>) -> Option<String> {
    value
        .as_object()
        .and_then(|o| o.get::<_, Option<String>>("code").ok().flatten())
}

/// A thrown or rejected value in words, with the JS stack when there is one.
pub(crate) fn describe<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    let text = match value.as_object() {
        Some(object) if object.is_error() => describe_error(object),
        _ => describe_value(ctx, value),
    };
    truncate(text, MAX_DESCRIPTION)
}

/// An `rquickjs` error from a call into JavaScript, in words.
pub(crate) fn caught(ctx: &Ctx<'_>, error: rquickjs::Error) -> String {
    if error.is_exception() {
        let value = ctx.catch();
        describe(ctx, &value)
    } else {
        error.to_string()
    }
}

fn describe_error(object: &Object<'_>) -> String {
    let name = object
        .get::<_, Option<rquickjs::convert::Coerced<String>>>("name")
        .ok()
        .flatten()
        .map(|c| c.0)
        .unwrap_or_else(|| "Error".to_string());
    let message = object
        .get::<_, Option<rquickjs::convert::Coerced<String>>>("message")
        .ok()
        .flatten()
        .map(|c| c.0)
        .unwrap_or_default();
    let stack = object
        .get::<_, Option<rquickjs::convert::Coerced<String>>>("stack")
        .ok()
        .flatten()
        .map(|c| c.0)
        .unwrap_or_default();
    let head = if message.is_empty() {
        name
    } else {
        format!("{name}: {message}")
    };
    let stack = stack.trim_end();
    if stack.is_empty() {
        head
    } else {
        format!("{head}\n{stack}")
    }
}

/// Any value as text, the way `console.log` shows it.
pub(crate) fn describe_value<'js>(ctx: &Ctx<'js>, value: &Value<'js>) -> String {
    if let Some(text) = value.as_string() {
        return text.to_string().unwrap_or_default();
    }
    if value.is_undefined() {
        return "undefined".into();
    }
    if let Some(object) = value.as_object() {
        if object.is_error() {
            return describe_error(object);
        }
        if let Some(function) = value.as_function() {
            let name: String = function.get("name").unwrap_or_default();
            return format!(
                "[Function {}]",
                if name.is_empty() {
                    "(anonymous)"
                } else {
                    &name
                }
            );
        }
        if let Ok(Some(json)) = ctx.json_stringify(value.clone()) {
            if let Ok(json) = json.to_string() {
                return json;
            }
        }
        // Drop what the failed stringify threw (e.g. a cycle).
        let _ = ctx.catch();
        return format!("[object {}]", value.type_name());
    }
    match value.get::<rquickjs::convert::Coerced<String>>() {
        Ok(text) => text.0,
        Err(_) => {
            let _ = ctx.catch();
            format!("[{}]", value.type_name())
        }
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary), marking the cut.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
