//! `call.collectDigits(options)`: reading the options (see
//! [`crate::collecting`] for what they do).

use rquickjs::function::Opt;
use rquickjs::{Ctx, Exception, Object, Persistent, Promise, Value};
use tokio::time::Duration;

use super::call::{method, not_live, target, JsCall, Target, This_};
use super::call_media::{is_dtmf, play_options, say_options, source_arg, text_arg};
use super::convert::Options;
use super::{js, object, state};
use crate::collect::CollectSpec;
use crate::collecting::{self, CollectArgs, Prompt};
use crate::state::JsState;

const DEFAULT_MAX_DIGITS: u64 = 128;
const DEFAULT_FIRST_DIGIT_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_INTER_DIGIT_TIMEOUT_MS: u64 = 3_000;
const MAX_TIMEOUT_MS: u64 = 3_600_000;
const MAX_RETRIES: u64 = 20;
const MAX_PATTERN_LEN: usize = 1024;

pub(crate) fn install<'js>(ctx: &Ctx<'js>, proto: &Object<'js>) -> rquickjs::Result<()> {
    method(
        ctx,
        proto,
        "collectDigits",
        |ctx: Ctx<'js>, this: This_<'js>, opts: Opt<Value<'js>>| {
            collect_digits(&ctx, &this.0.borrow(), opts.0)
        },
    )
}

fn collect_digits<'js>(
    ctx: &Ctx<'js>,
    call: &JsCall,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let args = collect_args(ctx, opts)?;
    let st = state(ctx)?;
    match target(&st, call) {
        Target::Live(slot) => collecting::start(ctx, &st, slot, args),
        other => {
            let hangup = object(
                ctx,
                &[("digits", js(ctx, "")?), ("reason", js(ctx, "hangup")?)],
            )?;
            not_live(ctx, call, other, Some(hangup.into_value()))
        }
    }
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
    let retries = options.integer("retries", 0, MAX_RETRIES)?.unwrap_or(0) as u32;
    let barge_in = options.bool("bargeIn")?.unwrap_or(true);
    let prompt = prompt_arg(ctx, options.value("prompt")?, "prompt", barge_in)?;
    let invalid_prompt = prompt_arg(
        ctx,
        options.value("invalidPrompt")?,
        "invalidPrompt",
        barge_in,
    )?;
    let pattern = match options.value("pattern")? {
        None => None,
        Some(pattern) => Some(anchored_pattern(ctx, pattern)?),
    };
    Ok(CollectArgs {
        spec: CollectSpec {
            min: min as usize,
            max: max as usize,
            terminators,
            first_digit_timeout: Duration::from_millis(first),
            inter_digit_timeout: Duration::from_millis(inter),
        },
        prompt,
        invalid_prompt,
        pattern,
        retries,
        barge_in,
    })
}

/// A prompt: `'text'` (spoken), `{say: 'text', voice, language, rate}` (also
/// `{text: ...}`), or `{play: source, loop}`. Empty text plays nothing.
fn prompt_arg<'js>(
    ctx: &Ctx<'js>,
    value: Option<Value<'js>>,
    key: &'static str,
    barge_in: bool,
) -> rquickjs::Result<Option<Prompt>> {
    let what = match key {
        "prompt" => "collectDigits: prompt",
        _ => "collectDigits: invalidPrompt",
    };
    let prompt = match value {
        None => return Ok(None),
        Some(v) if v.is_string() => {
            let text = text_arg(ctx, what, Some(v))?;
            let options = crate::host::SayOptions {
                barge_in,
                ..Default::default()
            };
            Prompt::Say(text, options)
        }
        Some(v) if v.is_object() => {
            let prompt = Options::new(ctx, Some(v), what)?;
            if let Some(source) = prompt.value("play")? {
                let source = source_arg(ctx, what, Some(source))?;
                let mut options = play_options(&prompt)?;
                options.barge_in = barge_in;
                Prompt::Play(source, options)
            } else {
                let text = match prompt.value("say")? {
                    Some(text) => Some(text),
                    None => prompt.value("text")?,
                };
                let text = text_arg(ctx, what, text)?;
                let mut options = say_options(&prompt, barge_in)?;
                options.barge_in = barge_in;
                Prompt::Say(text, options)
            }
        }
        Some(_) => {
            return Err(Exception::throw_type(
                ctx,
                &format!("{what}: a string, {{say: text, voice, ...}} or {{play: source}}"),
            ))
        }
    };
    Ok(match &prompt {
        Prompt::Say(text, _) if text.is_empty() => None,
        _ => Some(prompt),
    })
}

/// `pattern` (a string or a `RegExp`) as a `RegExp` that must match all the
/// digits. The `g` and `y` flags are dropped: they make `test` stateful.
fn anchored_pattern<'js>(
    ctx: &Ctx<'js>,
    pattern: Value<'js>,
) -> rquickjs::Result<Persistent<Object<'static>>> {
    let st = state(ctx)?;
    let (source, flags) = if let Some(text) = pattern.as_string() {
        (text.to_string()?, String::new())
    } else if let Some(object) = pattern.as_object().filter(|o| is_regexp(&st, o)) {
        let source: String = object.get("source")?;
        let flags: String = object.get("flags")?;
        (source, flags.replace(['g', 'y'], ""))
    } else {
        return Err(Exception::throw_type(
            ctx,
            "collectDigits: option 'pattern' must be a string or a RegExp",
        ));
    };
    if source.len() > MAX_PATTERN_LEN {
        return Err(Exception::throw_range(
            ctx,
            &format!("collectDigits: the pattern is longer than {MAX_PATTERN_LEN} characters"),
        ));
    }
    let regexp = st.inner.borrow().regexp.clone();
    let Some(regexp) = regexp else {
        return Err(Exception::throw_internal(ctx, "RegExp is not available"));
    };
    let regexp = regexp.restore(ctx)?;
    drop(st);
    let anchored: Object = regexp.construct((format!("^(?:{source})$"), flags))?;
    Ok(Persistent::save(ctx, anchored))
}

fn is_regexp(st: &JsState, object: &Object<'_>) -> bool {
    let Some(regexp) = st.inner.borrow().regexp.clone() else {
        return false;
    };
    let Ok(regexp) = regexp.restore(object.ctx()) else {
        return false;
    };
    object.is_instance_of(&regexp)
}
