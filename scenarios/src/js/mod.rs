//! What JavaScript sees: the `call` and `conf` objects (with participants
//! and recordings), `console`, timers, `fetch`, and the helpers they share.
//! Natives parse their arguments first (which may run scenario code:
//! getters, `toString`), then touch the instance state.

pub(crate) mod call;
mod call_media;
mod collect_args;
pub(crate) mod conference;
mod console;
pub(crate) mod convert;
pub(crate) mod dial;
pub(crate) mod errors;
pub(crate) mod fetch;
mod headers;
pub(crate) mod participant;
pub(crate) mod recording;
mod timers;

use rquickjs::runtime::UserDataGuard;
use rquickjs::{Ctx, Exception, Function, IntoJs, Object, Persistent, Value};

use crate::state::{JsState, Settled, Watched};

/// Installs the globals a scenario may use (nothing else of the host is reachable).
pub(crate) fn install_globals<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    console::install(ctx)?;
    timers::install(ctx)?;
    fetch::install(ctx)?;
    Ok(())
}

/// The instance state, from inside a native function.
pub(crate) fn state<'a>(ctx: &'a Ctx<'_>) -> rquickjs::Result<UserDataGuard<'a, JsState>> {
    ctx.userdata::<JsState>()
        .ok_or_else(|| Exception::throw_internal(ctx, "the scenario instance has ended"))
}

/// Builds `{key: value, ...}`.
pub(crate) fn object<'js>(
    ctx: &Ctx<'js>,
    entries: &[(&str, Value<'js>)],
) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    for (key, value) in entries {
        object.set(*key, value.clone())?;
    }
    Ok(object)
}

pub(crate) fn js<'js, T: IntoJs<'js>>(ctx: &Ctx<'js>, value: T) -> rquickjs::Result<Value<'js>> {
    value.into_js(ctx)
}

/// Calls `function` (a stored resolve/reject or listener) with one argument.
pub(crate) fn call_stored<'js>(
    ctx: &Ctx<'js>,
    function: Persistent<Function<'static>>,
    this: Option<Value<'js>>,
    arg: Value<'js>,
) -> rquickjs::Result<()> {
    let function = function.restore(ctx)?;
    match this {
        Some(this) => function.call::<_, Value>((rquickjs::function::This(this), arg))?,
        None => function.call::<_, Value>((arg,))?,
    };
    Ok(())
}

/// Arranges for the instance to learn when `value` (a handler's return
/// value) settles; non-promises count as settled at once.
pub(crate) fn watch<'js>(
    ctx: &Ctx<'js>,
    st: &JsState,
    value: Value<'js>,
    what: Watched,
) -> rquickjs::Result<()> {
    let Some(promise) = value.as_promise().cloned() else {
        st.inner
            .borrow_mut()
            .settled
            .push(Settled { what, error: None });
        return Ok(());
    };
    let then = st.inner.borrow().promise_then.clone();
    let then: Function = match then {
        Some(then) => then.restore(ctx)?,
        None => promise.then()?,
    };
    let on_fulfilled = Function::new(ctx.clone(), move |ctx: Ctx<'js>| -> rquickjs::Result<()> {
        state(&ctx)?
            .inner
            .borrow_mut()
            .settled
            .push(Settled { what, error: None });
        Ok(())
    })?;
    let on_rejected = Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, reason: Value<'js>| -> rquickjs::Result<()> {
            let error = Some(Persistent::save(&ctx, reason));
            state(&ctx)?
                .inner
                .borrow_mut()
                .settled
                .push(Settled { what, error });
            Ok(())
        },
    )?;
    then.call::<_, Value>((
        rquickjs::function::This(promise.into_value()),
        on_fulfilled,
        on_rejected,
    ))?;
    Ok(())
}
