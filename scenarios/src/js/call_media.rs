//! Media on a call: `say`, `play`, `stopMedia`, `sendDigits`, `record`.

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Object, Promise, Value};

use super::call::{method, not_live, simple, target, JsCall, Target, This_};
use super::convert::Options;
use super::state;
use crate::host::{MediaOutcome, PlayOptions, RecordOptions, SayOptions};
use crate::ops;
use crate::source::PlaySource;
use crate::state::{OpResult, RecordingOwner, Then};

/// Longest text `say` takes (a prompt, not a book).
pub(crate) const MAX_SAY_LEN: usize = 16 * 1024;
/// Most digits one `sendDigits` sends.
const MAX_SEND_DIGITS: usize = 64;

pub(crate) fn install<'js>(ctx: &Ctx<'js>, proto: &Object<'js>) -> rquickjs::Result<()> {
    method(
        ctx,
        proto,
        "say",
        |ctx: Ctx<'js>, this: This_<'js>, text: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            say(&ctx, &this.0.borrow(), text.0, opts.0)
        },
    )?;
    method(
        ctx,
        proto,
        "play",
        |ctx: Ctx<'js>, this: This_<'js>, source: Opt<Value<'js>>, opts: Opt<Value<'js>>| {
            play(&ctx, &this.0.borrow(), source.0, opts.0)
        },
    )?;
    method(
        ctx,
        proto,
        "stopMedia",
        |ctx: Ctx<'js>, this: This_<'js>| stop_media(&ctx, &this.0.borrow()),
    )?;
    method(
        ctx,
        proto,
        "sendDigits",
        |ctx: Ctx<'js>, this: This_<'js>, digits: Opt<Value<'js>>| {
            send_digits(&ctx, &this.0.borrow(), digits.0)
        },
    )?;
    method(
        ctx,
        proto,
        "record",
        |ctx: Ctx<'js>, this: This_<'js>, opts: Opt<Value<'js>>| {
            record(&ctx, &this.0.borrow(), opts.0)
        },
    )?;
    Ok(())
}

/// The text to speak: a string (numbers are spoken too).
pub(crate) fn text_arg<'js>(
    ctx: &Ctx<'js>,
    what: &str,
    text: Option<Value<'js>>,
) -> rquickjs::Result<String> {
    let text = match text {
        Some(v) if v.is_string() || v.is_number() => {
            v.get::<rquickjs::convert::Coerced<String>>()?.0
        }
        _ => {
            return Err(Exception::throw_type(
                ctx,
                &format!("{what}: the text must be a string"),
            ))
        }
    };
    if text.len() > MAX_SAY_LEN {
        return Err(Exception::throw_range(
            ctx,
            &format!("{what}: the text is longer than {MAX_SAY_LEN} bytes"),
        ));
    }
    Ok(text)
}

/// `{voice, language, rate}` (+ `bargeIn`, default `barge_in_default`).
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

/// A play source, checked (a `TypeError` says what is wrong with it).
pub(crate) fn source_arg<'js>(
    ctx: &Ctx<'js>,
    what: &str,
    source: Option<Value<'js>>,
) -> rquickjs::Result<String> {
    let Some(source) = source.as_ref().and_then(|s| s.as_string()) else {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: the source must be a string (a file.wav, a tone: spec or a URL)"),
        ));
    };
    let source = source.to_string()?;
    PlaySource::parse(&source).map_err(|e| Exception::throw_type(ctx, &format!("{what}: {e}")))?;
    Ok(source)
}

/// `{loop, bargeIn}`.
pub(crate) fn play_options(options: &Options<'_>) -> rquickjs::Result<PlayOptions> {
    Ok(PlayOptions {
        looped: options.bool("loop")?.unwrap_or(false),
        barge_in: options.bool("bargeIn")?.unwrap_or(false),
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
    let barge_in = options.barge_in;
    let control = call.control.clone();
    let then = Then::MediaEnded {
        kind: "say",
        what: text.clone(),
    };
    media(ctx, call, barge_in, then, async move {
        OpResult::Media(control.say(&text, options).await)
    })
}

fn play<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    source: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let source = source_arg(ctx, "play", source)?;
    let options = play_options(&Options::new(ctx, opts, "play")?)?;
    let control = call.control.clone();
    let then = Then::MediaEnded {
        kind: "play",
        what: source.clone(),
    };
    media(ctx, call, options.barge_in, then, async move {
        OpResult::Media(control.play(&source, options).await)
    })
}

/// Starts a media operation on a live call (with barge-in, the first digit
/// stops it); on an ended call it resolves `{interrupted: true, reason: 'hangup'}`.
fn media<'js, F>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    barge_in: bool,
    then: Then,
    operation: F,
) -> rquickjs::Result<Promise<'js>>
where
    F: std::future::Future<Output = OpResult> + Send + 'static,
{
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let (promise, op) = ops::start_then(ctx, &st, Some(slot), true, then, operation)?;
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

pub(crate) fn is_dtmf(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D')
}

fn send_digits<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    digits: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let digits = match digits.as_ref().and_then(|d| d.as_string()) {
        Some(d) => d.to_string()?.to_ascii_uppercase(),
        None => {
            return Err(Exception::throw_type(
                ctx,
                "sendDigits: the digits must be a string",
            ))
        }
    };
    if digits.is_empty() || digits.len() > MAX_SEND_DIGITS || !digits.chars().all(is_dtmf) {
        return Err(Exception::throw_type(
            ctx,
            &format!("sendDigits: 1 to {MAX_SEND_DIGITS} DTMF keys (0-9 * # A-D), not {digits:?}"),
        ));
    }
    let control = call.control.clone();
    simple(ctx, call, None, async move {
        OpResult::Call(control.send_digits(&digits).await)
    })
}

/// `{format, stereo, tracks}` of `record()`.
pub(crate) fn record_options(options: &Options<'_>) -> rquickjs::Result<RecordOptions> {
    let format = options.string("format")?.map(|f| f.to_ascii_lowercase());
    if let Some(format) = &format {
        if format != "wav" {
            return Err(options.type_error("format", "'wav'"));
        }
    }
    Ok(RecordOptions {
        format,
        stereo: options.bool("stereo")?.unwrap_or(false),
        tracks: options.bool("tracks")?.unwrap_or(false),
    })
}

fn record<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let options = record_options(&Options::new(ctx, opts, "record")?)?;
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => {
            let control = call.control.clone();
            let then = Then::Recording(RecordingOwner::Call(control.clone()));
            let operation = async move { OpResult::Recording(control.record(options).await) };
            Ok(ops::start_then(ctx, &st, Some(slot), false, then, operation)?.0)
        }
        other => not_live(ctx, call, other, None),
    }
}
