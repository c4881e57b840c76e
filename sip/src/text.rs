//! Small text helpers: ids and tags, URI user parts, header validation.

use rand::distr::{Alphanumeric, SampleString};
use rsipstack::sip::Uri;

use crate::SipError;

/// A random alphanumeric string: call ids, tags, branches. 12 characters
/// carry ~71 bits, well above RFC 3261's 32 bits for tags.
pub(crate) fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), len)
}

/// The user part of a SIP/SIPS/TEL URI, percent-decoded, without user
/// parameters (`;phone-context=...`). Empty when the URI has none.
pub(crate) fn uri_user(uri: &str) -> String {
    let uri = uri.trim().trim_start_matches('<');
    let Some((scheme, rest)) = uri.split_once(':') else {
        return String::new();
    };
    let user = if scheme.eq_ignore_ascii_case("tel") {
        // tel:+15551234;phone-context=... : the number is everything
        // before the parameters.
        rest
    } else {
        match rest.rfind('@') {
            Some(at) => &rest[..at],
            None => return String::new(),
        }
    };
    let user = user.split([';', '?', '>']).next().unwrap_or_default();
    // A password (`user:pass@`) is not part of the user.
    let user = user.split(':').next().unwrap_or_default();
    percent_decode(user)
}

/// rsipstack keeps a URI's user part as written (escapes included) but
/// escapes it again when writing the URI, so `%2B` would go out as `%252B`.
/// Decoding the user (and password) after parsing makes the written URI
/// equivalent to the received one (RFC 3261 §19.1.4).
pub(crate) fn normalized(mut uri: Uri) -> Uri {
    if let Some(auth) = uri.auth.as_mut() {
        auth.user = percent_decode(&auth.user);
        if let Some(password) = auth.password.as_mut() {
            *password = percent_decode(password);
        }
    }
    uri
}

/// The comma-separated entries of a header value like Record-Route, with
/// commas inside `<...>` or quotes left alone.
pub(crate) fn split_list(value: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut depth, mut quoted, mut start) = (0u32, false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '<' if !quoted => depth += 1,
            '>' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                entries.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(value[start..].trim());
    entries.retain(|e| !e.is_empty());
    entries
}

/// Decodes `%XX` escapes; malformed escapes are kept as written.
pub(crate) fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Headers the stack owns: callers may not set them through the extra
/// headers of `answer`, `hangup` and friends.
const RESERVED_HEADERS: &[&str] = &[
    "via",
    "v",
    "from",
    "f",
    "to",
    "t",
    "call-id",
    "i",
    "cseq",
    "contact",
    "m",
    "content-length",
    "l",
    "content-type",
    "c",
    "max-forwards",
    "record-route",
    "route",
];

/// Checks caller-supplied extra headers: a token name that the stack does
/// not own, and a value without line breaks (no header injection).
pub(crate) fn check_extra_headers(headers: &[(String, String)]) -> Result<(), SipError> {
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
        if !token {
            return Err(SipError::InvalidArgument(format!(
                "bad header name {name:?}"
            )));
        }
        if RESERVED_HEADERS
            .iter()
            .any(|reserved| name.eq_ignore_ascii_case(reserved))
        {
            return Err(SipError::InvalidArgument(format!(
                "header {name} is set by the SIP stack"
            )));
        }
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(SipError::InvalidArgument(format!(
                "header {name} has a line break in its value"
            )));
        }
    }
    Ok(())
}

/// A reason phrase must be printable text on one line (RFC 3261 §25.1).
pub(crate) fn check_reason_phrase(reason: &str) -> Result<(), SipError> {
    if reason.is_empty() || reason.chars().any(|c| c.is_control()) {
        return Err(SipError::InvalidArgument(format!(
            "bad reason phrase {reason:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_user_parts() {
        assert_eq!(uri_user("sip:conf_1234@example.com"), "conf_1234");
        assert_eq!(
            uri_user("sips:alice@example.com:5061;transport=tls"),
            "alice"
        );
        assert_eq!(uri_user("sip:%2B33%20123@10.0.0.1"), "+33 123");
        assert_eq!(uri_user("sip:+1555;phone-context=example.com@gw"), "+1555");
        assert_eq!(uri_user("sip:bob:secret@example.com"), "bob");
        assert_eq!(uri_user("tel:+15551234567;phone-context=x"), "+15551234567");
        assert_eq!(uri_user("<sip:100@pbx>"), "100");
        assert_eq!(uri_user("sip:example.com"), "");
        assert_eq!(uri_user("garbage"), "");
    }

    #[test]
    fn normalized_uris_are_written_as_received() {
        let uri = Uri::try_from("sip:%2B33%20123@example.com").unwrap();
        let written = normalized(uri).to_string();
        assert_eq!(written, "sip:+33%20123@example.com");
        assert_eq!(uri_user(&written), "+33 123");
    }

    #[test]
    fn header_lists_split_outside_brackets_and_quotes() {
        assert_eq!(
            split_list("<sip:a;lr>, \"x,y\" <sip:b,c>,<sip:d>"),
            ["<sip:a;lr>", "\"x,y\" <sip:b,c>", "<sip:d>"]
        );
        assert_eq!(split_list(" <sip:a> "), ["<sip:a>"]);
        assert!(split_list("").is_empty());
    }

    #[test]
    fn percent_decoding_keeps_bad_escapes() {
        assert_eq!(percent_decode("a%41b"), "aAb");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%e2%82%ac"), "€");
    }

    #[test]
    fn extra_headers_are_checked() {
        let ok = vec![("X-Room".to_string(), "42".to_string())];
        assert!(check_extra_headers(&ok).is_ok());
        for (name, value) in [
            ("X-Bad", "a\r\nVia: evil"),
            ("Bad Name", "1"),
            ("", "1"),
            ("Call-ID", "x"),
            ("contact", "<sip:x@y>"),
        ] {
            let headers = vec![(name.to_string(), value.to_string())];
            assert!(check_extra_headers(&headers).is_err(), "{name}: {value}");
        }
    }

    #[test]
    fn random_tokens_are_alphanumeric_and_distinct() {
        let a = random_token(12);
        let b = random_token(12);
        assert_eq!(a.len(), 12);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }
}
