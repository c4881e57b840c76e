//! `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval`. Timers fire
//! from the instance's event loop, each as its own turn.

use rquickjs::function::{Opt, Rest};
use rquickjs::{Ctx, Exception, Function, Persistent, Value};
use tokio::time::{Duration, Instant};

use super::state;
use crate::state::TimerCallback;

/// Browsers cap delays at 2^31-1 ms; so do we.
const MAX_DELAY_MS: f64 = 2_147_483_647.0;
/// An interval fires at most this often.
const MIN_INTERVAL: Duration = Duration::from_millis(1);

pub(super) fn install<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    let globals = ctx.globals();
    globals.set(
        "setTimeout",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, f: Value<'js>, delay: Opt<Value<'js>>, args: Rest<Value<'js>>| {
                schedule(&ctx, "setTimeout", f, delay.0, args.0, false)
            },
        )?
        .with_name("setTimeout")?,
    )?;
    globals.set(
        "setInterval",
        Function::new(
            ctx.clone(),
            |ctx: Ctx<'js>, f: Value<'js>, delay: Opt<Value<'js>>, args: Rest<Value<'js>>| {
                schedule(&ctx, "setInterval", f, delay.0, args.0, true)
            },
        )?
        .with_name("setInterval")?,
    )?;
    for name in ["clearTimeout", "clearInterval"] {
        globals.set(
            name,
            Function::new(ctx.clone(), |ctx: Ctx<'js>, id: Opt<Value<'js>>| {
                clear(&ctx, id.0)
            })?
            .with_name(name)?,
        )?;
    }
    Ok(())
}

fn schedule<'js>(
    ctx: &Ctx<'js>,
    name: &str,
    function: Value<'js>,
    delay: Option<Value<'js>>,
    args: Vec<Value<'js>>,
    repeat: bool,
) -> rquickjs::Result<u32> {
    let Some(function) = function.into_function() else {
        return Err(Exception::throw_type(
            ctx,
            &format!("{name}: the callback must be a function (strings are not evaluated)"),
        ));
    };
    let delay_ms = match delay {
        None => 0.0,
        Some(v) => v
            .get::<rquickjs::convert::Coerced<f64>>()
            .map(|c| c.0)
            .unwrap_or(0.0),
    };
    let delay_ms = if delay_ms.is_finite() && delay_ms > 0.0 {
        delay_ms.min(MAX_DELAY_MS)
    } else {
        0.0
    };
    let mut delay = Duration::from_secs_f64(delay_ms / 1000.0);
    if repeat {
        delay = delay.max(MIN_INTERVAL);
    }
    let callback = TimerCallback {
        function: Persistent::save(ctx, function),
        args: args.into_iter().map(|a| Persistent::save(ctx, a)).collect(),
    };
    let st = state(ctx)?;
    let max = st.env.limits.max_timers;
    let mut inner = st.inner.borrow_mut();
    if inner.timers.len() >= max {
        drop(inner);
        drop(callback);
        return Err(Exception::throw_range(
            ctx,
            &format!("{name}: too many timers (the limit is {max})"),
        ));
    }
    let due = Instant::now() + delay;
    Ok(inner.timers.insert(due, repeat.then_some(delay), callback))
}

fn clear<'js>(ctx: &Ctx<'js>, id: Option<Value<'js>>) -> rquickjs::Result<()> {
    let Some(id) = id.and_then(|v| v.as_number()) else {
        return Ok(());
    };
    if id.fract() != 0.0 || id < 1.0 || id > u32::MAX as f64 {
        return Ok(());
    }
    let st = state(ctx)?;
    let removed = st.inner.borrow_mut().timers.take(id as u32);
    // The callback's values are released here, outside the borrow.
    drop(removed);
    Ok(())
}
