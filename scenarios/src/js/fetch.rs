//! `fetch(url, {method, headers, body, timeoutMs})`: outbound HTTP through
//! the host (which allows only the application's hosts), resolving with a
//! small `Response` (`status`, `ok`, `url`, `headers.get()`, `text()`,
//! `json()`). HTTP error statuses resolve; only a failed request rejects
//! (a `FetchError` with a `code`).

use rquickjs::class::{JsClass, Readable, Trace, Tracer};
use rquickjs::function::{Opt, This};
use rquickjs::object::Property;
use rquickjs::{
    Array, Class, Constructor, Ctx, Exception, Function, JsLifetime, Object, Promise, Value,
};
use tokio::time::Duration;

use super::call::method;
use super::convert::Options;
use super::{headers, state};
use crate::host::{FetchRequest, FetchResponse};
use crate::ops;
use crate::state::{OpResult, Then};

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const MAX_TIMEOUT_MS: u64 = 60_000;
const MAX_URL_LEN: usize = 4096;
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(crate) fn install<'js>(ctx: &Ctx<'js>) -> rquickjs::Result<()> {
    let fetch = Function::new(
        ctx.clone(),
        |ctx: Ctx<'js>, url: Opt<Value<'js>>, opts: Opt<Value<'js>>| fetch(&ctx, url.0, opts.0),
    )?
    .with_name("fetch")?;
    ctx.globals().set("fetch", fetch)
}

fn fetch<'js>(
    ctx: &Ctx<'js>,
    url: Option<Value<'js>>,
    opts: Option<Value<'js>>,
) -> rquickjs::Result<Promise<'js>> {
    let url = match url.as_ref().and_then(|u| u.as_string()) {
        Some(url) => url.to_string()?,
        None => {
            return Err(Exception::throw_type(
                ctx,
                "fetch: the URL must be a string",
            ))
        }
    };
    let lower = url.to_ascii_lowercase();
    let http = lower.starts_with("http://") || lower.starts_with("https://");
    if !http || url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(Exception::throw_type(
            ctx,
            &format!("fetch: {url:?} is not an http(s) URL"),
        ));
    }
    let options = Options::new(ctx, opts, "fetch")?;
    let method = options
        .string("method")?
        .map(|m| m.to_ascii_uppercase())
        .unwrap_or_else(|| "GET".to_string());
    if !METHODS.contains(&method.as_str()) {
        return Err(options.type_error("method", &METHODS.join(", ")));
    }
    let body = match options.value("body")? {
        None => None,
        Some(body) => match body.as_string() {
            Some(text) => Some(text.to_string()?.into_bytes()),
            None => {
                return Err(options.type_error("body", "a string (use JSON.stringify for objects)"))
            }
        },
    };
    if body.is_some() && (method == "GET" || method == "HEAD") {
        return Err(Exception::throw_type(
            ctx,
            &format!("fetch: a {method} request cannot have a body"),
        ));
    }
    let timeout = options
        .integer("timeoutMs", 1, MAX_TIMEOUT_MS)?
        .unwrap_or(DEFAULT_TIMEOUT_MS);
    let request = FetchRequest {
        method,
        url: url.clone(),
        headers: headers::parse_http(ctx, options.value("headers")?, "fetch")?,
        body,
        timeout: Duration::from_millis(timeout),
    };
    let st = state(ctx)?;
    let host = st.env.host.clone();
    let operation = async move { OpResult::Fetch(host.fetch(request).await) };
    Ok(ops::start_then(ctx, &st, None, false, Then::Response { url }, operation)?.0)
}

pub(crate) struct JsResponse {
    body: Vec<u8>,
}

// SAFETY: no JavaScript values inside.
unsafe impl<'js> JsLifetime<'js> for JsResponse {
    type Changed<'to> = JsResponse;
}

impl<'js> Trace<'js> for JsResponse {
    fn trace<'a>(&self, _tracer: Tracer<'a, 'js>) {}
}

impl<'js> JsClass<'js> for JsResponse {
    const NAME: &'static str = "Response";
    type Mutable = Readable;

    fn prototype(ctx: &Ctx<'js>) -> rquickjs::Result<Option<Object<'js>>> {
        let proto = Object::new(ctx.clone())?;
        method(
            ctx,
            &proto,
            "text",
            |ctx: Ctx<'js>, this: This<Class<'js, JsResponse>>| {
                let text = String::from_utf8_lossy(&this.0.borrow().body).into_owned();
                ops::resolved(&ctx, rquickjs::IntoJs::into_js(text, &ctx)?)
            },
        )?;
        method(
            ctx,
            &proto,
            "json",
            |ctx: Ctx<'js>, this: This<Class<'js, JsResponse>>| {
                let text = String::from_utf8_lossy(&this.0.borrow().body).into_owned();
                match ctx.json_parse(text) {
                    Ok(value) => ops::resolved(&ctx, value),
                    Err(rquickjs::Error::Exception) => ops::rejected(&ctx, ctx.catch()),
                    Err(other) => Err(other),
                }
            },
        )?;
        Ok(Some(proto))
    }

    fn constructor(_ctx: &Ctx<'js>) -> rquickjs::Result<Option<Constructor<'js>>> {
        Ok(None)
    }
}

/// Builds the `Response` for a finished request.
pub(crate) fn response_object<'js>(
    ctx: &Ctx<'js>,
    url: &str,
    response: &FetchResponse,
) -> rquickjs::Result<Value<'js>> {
    let object = Class::instance(
        ctx.clone(),
        JsResponse {
            body: response.body.clone(),
        },
    )?;
    object.prop("status", Property::from(response.status).enumerable())?;
    let ok = (200..300).contains(&response.status);
    object.prop("ok", Property::from(ok).enumerable())?;
    object.prop("url", Property::from(url.to_string()).enumerable())?;
    object.prop(
        "headers",
        Property::from(headers_object(ctx, &response.headers)?).enumerable(),
    )?;
    Ok(object.into_value())
}

/// `headers`: `get(name)` (any case; repeated headers joined with ", "),
/// `has(name)`, `entries()` (lower-case names).
fn headers_object<'js>(ctx: &Ctx<'js>, list: &[(String, String)]) -> rquickjs::Result<Object<'js>> {
    let map = headers::by_lower_name(list);
    let object = Object::new(ctx.clone())?;
    let lookup = map.clone();
    object.set(
        "get",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, name: rquickjs::convert::Coerced<String>| {
                let name = name.0.to_ascii_lowercase();
                match lookup.iter().find(|(n, _)| *n == name) {
                    Some((_, value)) => rquickjs::IntoJs::into_js(value.as_str(), &ctx),
                    None => Ok(Value::new_null(ctx.clone())),
                }
            },
        )?
        .with_name("get")?,
    )?;
    let lookup = map.clone();
    object.set(
        "has",
        Function::new(
            ctx.clone(),
            move |name: rquickjs::convert::Coerced<String>| {
                let name = name.0.to_ascii_lowercase();
                lookup.iter().any(|(n, _)| *n == name)
            },
        )?
        .with_name("has")?,
    )?;
    object.set(
        "entries",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>| -> rquickjs::Result<Array<'js>> {
                let entries = Array::new(ctx.clone())?;
                for (index, (name, value)) in map.iter().enumerate() {
                    let pair = Array::new(ctx.clone())?;
                    pair.set(0, name.as_str())?;
                    pair.set(1, value.as_str())?;
                    entries.set(index, pair)?;
                }
                Ok(entries)
            },
        )?
        .with_name("entries")?,
    )?;
    Ok(object)
}
