//! SIP headers a scenario adds (`answer({headers})`, `hangup({headers})`,
//! `dial(uri, {headers})`): `{name: value}` objects, checked so a scenario
//! cannot break the dialog (headers the SIP stack owns are refused).

use rquickjs::{Ctx, Exception, Object, Value};

/// Headers the SIP stack writes itself.
const SIP_RESERVED: [&str; 12] = [
    "via",
    "from",
    "to",
    "call-id",
    "cseq",
    "contact",
    "max-forwards",
    "content-length",
    "content-type",
    "route",
    "record-route",
    "allow",
];
/// Most headers one request may carry from a scenario.
const MAX_HEADERS: usize = 32;
const MAX_VALUE_LEN: usize = 1024;

/// Headers the HTTP client writes itself.
const HTTP_RESERVED: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
];

/// Reads SIP headers: `value` is an object of header names to values.
pub(crate) fn parse<'js>(
    ctx: &Ctx<'js>,
    value: Option<Value<'js>>,
    what: &str,
) -> rquickjs::Result<Vec<(String, String)>> {
    parse_with(ctx, value, what, &SIP_RESERVED, "SIP stack")
}

/// Reads HTTP request headers (`fetch`).
pub(crate) fn parse_http<'js>(
    ctx: &Ctx<'js>,
    value: Option<Value<'js>>,
    what: &str,
) -> rquickjs::Result<Vec<(String, String)>> {
    parse_with(ctx, value, what, &HTTP_RESERVED, "HTTP client")
}

fn parse_with<'js>(
    ctx: &Ctx<'js>,
    value: Option<Value<'js>>,
    what: &str,
    reserved: &[&str],
    owner: &str,
) -> rquickjs::Result<Vec<(String, String)>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Some(object) = value.as_object() else {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: headers must be an object of names to values"),
        ));
    };
    let mut headers = Vec::new();
    for entry in object.props::<String, Value>() {
        let (name, value) = entry?;
        if headers.len() == MAX_HEADERS {
            return Err(Exception::throw_range(
                ctx,
                &format!("{what}: more than {MAX_HEADERS} headers"),
            ));
        }
        let value = header_value(ctx, what, &name, value)?;
        check_name(ctx, what, &name, reserved, owner)?;
        headers.push((name, value));
    }
    Ok(headers)
}

fn header_value<'js>(
    ctx: &Ctx<'js>,
    what: &str,
    name: &str,
    value: Value<'js>,
) -> rquickjs::Result<String> {
    if !(value.is_string() || value.is_number() || value.is_bool()) {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: header {name:?} must be a string"),
        ));
    }
    let text = value.get::<rquickjs::convert::Coerced<String>>()?.0;
    if text.len() > MAX_VALUE_LEN || text.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: header {name:?} must be one line of at most {MAX_VALUE_LEN} bytes"),
        ));
    }
    Ok(text)
}

fn check_name(
    ctx: &Ctx<'_>,
    what: &str,
    name: &str,
    reserved: &[&str],
    owner: &str,
) -> rquickjs::Result<()> {
    let token = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c));
    if !token {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: {name:?} is not a valid header name"),
        ));
    }
    if reserved.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Exception::throw_type(
            ctx,
            &format!("{what}: the {name} header is set by the {owner}, not by scenarios"),
        ));
    }
    Ok(())
}

/// Headers by lower-case name; repeated headers joined with ", ".
pub(crate) fn by_lower_name(headers: &[(String, String)]) -> Vec<(String, String)> {
    let mut map: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        match map.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => map.push((name, value.clone())),
        }
    }
    map
}

/// `{name: value}` with lower-case names.
pub(crate) fn to_object<'js>(
    ctx: &Ctx<'js>,
    headers: &[(String, String)],
) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    for (name, value) in by_lower_name(headers) {
        object.set(name, value)?;
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_lowercased_and_joined() {
        let headers = vec![
            ("X-Room".to_string(), "42".to_string()),
            ("Via".to_string(), "a".to_string()),
            ("via".to_string(), "b".to_string()),
        ];
        assert_eq!(
            by_lower_name(&headers),
            vec![
                ("x-room".to_string(), "42".to_string()),
                ("via".to_string(), "a, b".to_string())
            ]
        );
    }
}
