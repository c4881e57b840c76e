//! Converting arguments and results between JavaScript and Rust.

use rquickjs::{Ctx, Exception, Object, Value};

/// JSON data (`customData`) into a JavaScript value.
pub(crate) fn json_to_js<'js>(
    ctx: &Ctx<'js>,
    value: &serde_json::Value,
) -> rquickjs::Result<Value<'js>> {
    let text = serde_json::to_string(value)
        .map_err(|e| Exception::throw_internal(ctx, &format!("customData: {e}")))?;
    ctx.json_parse(text)
}

/// A JavaScript value into JSON data; `undefined` is `null`.
pub(crate) fn js_to_json<'js>(
    ctx: &Ctx<'js>,
    value: Value<'js>,
    what: &str,
) -> rquickjs::Result<serde_json::Value> {
    if value.is_undefined() {
        return Ok(serde_json::Value::Null);
    }
    let Some(text) = ctx.json_stringify(value)? else {
        return Ok(serde_json::Value::Null);
    };
    let text = text.to_string()?;
    serde_json::from_str(&text)
        .map_err(|e| Exception::throw_type(ctx, &format!("{what} is not JSON data: {e}")))
}

/// Reads an options argument: `undefined`/`null` or an object.
pub(crate) struct Options<'js> {
    ctx: Ctx<'js>,
    object: Option<Object<'js>>,
    what: &'static str,
}

impl<'js> Options<'js> {
    pub fn new(
        ctx: &Ctx<'js>,
        value: Option<Value<'js>>,
        what: &'static str,
    ) -> rquickjs::Result<Self> {
        let object = match value {
            None => None,
            Some(v) if v.is_undefined() || v.is_null() => None,
            Some(v) => match v.into_object() {
                Some(object) => Some(object),
                None => {
                    return Err(Exception::throw_type(
                        ctx,
                        &format!("{what}: options must be an object"),
                    ))
                }
            },
        };
        Ok(Options {
            ctx: ctx.clone(),
            object,
            what,
        })
    }

    pub fn value(&self, key: &str) -> rquickjs::Result<Option<Value<'js>>> {
        let Some(object) = &self.object else {
            return Ok(None);
        };
        let value: Value = object.get(key)?;
        Ok((!value.is_undefined() && !value.is_null()).then_some(value))
    }

    pub fn string(&self, key: &str) -> rquickjs::Result<Option<String>> {
        match self.value(key)? {
            None => Ok(None),
            Some(v) => match v.as_string() {
                Some(s) => Ok(Some(s.to_string()?)),
                None => Err(self.type_error(key, "a string")),
            },
        }
    }

    pub fn bool(&self, key: &str) -> rquickjs::Result<Option<bool>> {
        match self.value(key)? {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.type_error(key, "a boolean")),
        }
    }

    pub fn number(&self, key: &str) -> rquickjs::Result<Option<f64>> {
        match self.value(key)? {
            None => Ok(None),
            Some(v) => match v.as_number() {
                Some(n) if n.is_finite() => Ok(Some(n)),
                _ => Err(self.type_error(key, "a finite number")),
            },
        }
    }

    /// A whole number in `min..=max`.
    pub fn integer(&self, key: &str, min: u64, max: u64) -> rquickjs::Result<Option<u64>> {
        match self.number(key)? {
            None => Ok(None),
            Some(n) if n.fract() == 0.0 && n >= min as f64 && n <= max as f64 => Ok(Some(n as u64)),
            Some(_) => Err(self.type_error(key, &format!("a whole number from {min} to {max}"))),
        }
    }

    pub fn type_error(&self, key: &str, expected: &str) -> rquickjs::Error {
        Exception::throw_type(
            &self.ctx,
            &format!("{}: option '{key}' must be {expected}", self.what),
        )
    }
}
