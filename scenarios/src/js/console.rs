//! `console.log/info/warn/error/debug`: lines of the scenario's log, sent to
//! the host with the call id when the instance owns exactly one call.

use rquickjs::function::Rest;
use rquickjs::{Ctx, Function, Object, Value};

use super::errors::{describe_value, truncate};
use super::state;
use crate::host::LogLevel;

/// A log line longer than this is cut (a scenario must not flood the log).
const MAX_LINE: usize = 16 * 1024;

pub(super) fn install<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    let console = Object::new(ctx.clone())?;
    let levels = [
        ("log", LogLevel::Info),
        ("info", LogLevel::Info),
        ("warn", LogLevel::Warn),
        ("error", LogLevel::Error),
        ("debug", LogLevel::Debug),
    ];
    for (name, level) in levels {
        let function = Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<()> {
                log(&ctx, level, &args.0)
            },
        )?
        .with_name(name)?;
        console.set(name, function)?;
    }
    ctx.globals().set("console", console)?;
    Ok(())
}

fn log<'js>(ctx: &Ctx<'js>, level: LogLevel, args: &[Value<'js>]) -> rquickjs::Result<()> {
    // Formatting may run scenario code (toJSON): before touching the state.
    let mut line = String::new();
    for (index, arg) in args.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        line.push_str(&describe_value(ctx, arg));
        if line.len() > MAX_LINE {
            break;
        }
    }
    let line = truncate(line, MAX_LINE);
    let st = state(ctx)?;
    let call_id = st.single_call_id();
    st.env.host.log(call_id.as_deref(), level, &line);
    Ok(())
}
