//! Building and reading SIP messages on top of `rsipstack::sip`.

use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Headers, Method, Request, Response, StatusCode, Version};

use crate::error::{AgentError, Result};

/// A random hex token for tags, Call-IDs and branches.
pub(crate) fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A branch with the RFC 3261 magic cookie.
pub(crate) fn new_branch() -> String {
    format!("z9hG4bK{}", random_token())
}

/// The first header called `name` (case-insensitive; compact forms are
/// already expanded by the parser).
pub(crate) fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .map(|h| h.value())
}

/// Every header, name and value, in order.
pub(crate) fn header_list(headers: &Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

/// A parameter of a name-addr or Via value (`;tag=`, `;branch=`): the
/// parameters after the `>` of a name-addr, or after the first `;`.
pub(crate) fn param(value: &str, name: &str) -> Option<String> {
    let params = match value.rfind('>') {
        Some(close) => &value[close + 1..],
        None => value.split_once(';').map_or("", |(_, rest)| rest),
    };
    params.split(';').find_map(|p| {
        let (key, val) = p.split_once('=').unwrap_or((p, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().to_string())
    })
}

/// The URI of a name-addr (`"Bob" <sip:bob@x>;tag=1` → `sip:bob@x`).
pub(crate) fn addr_uri(value: &str) -> String {
    match (value.find('<'), value.find('>')) {
        (Some(open), Some(close)) if open < close => value[open + 1..close].trim().to_string(),
        _ => value.split(';').next().unwrap_or(value).trim().to_string(),
    }
}

/// The `tag` of a From or To header.
pub(crate) fn tag(headers: &Headers, name: &str) -> Option<String> {
    header(headers, name).and_then(|v| param(v, "tag"))
}

/// The branch of the top Via.
pub(crate) fn branch(headers: &Headers) -> Option<String> {
    header(headers, "Via").and_then(|v| param(v.split(',').next().unwrap_or(v), "branch"))
}

/// CSeq number and method.
pub(crate) fn cseq(headers: &Headers) -> Option<(u32, String)> {
    let value = header(headers, "CSeq")?;
    let mut parts = value.split_whitespace();
    let number = parts.next()?.parse().ok()?;
    Some((number, parts.next()?.to_ascii_uppercase()))
}

pub(crate) fn call_id(headers: &Headers) -> Option<&str> {
    header(headers, "Call-ID")
}

/// Builds a request; Content-Length is added.
pub(crate) fn request(
    method: Method,
    uri: &str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Result<Request> {
    let uri = rsipstack::sip::Uri::try_from(uri).map_err(|e| AgentError::InvalidUri {
        uri: uri.to_string(),
        reason: e.to_string(),
    })?;
    let mut list = Headers::default();
    for (name, value) in headers {
        list.push(make_header(&name, value));
    }
    list.push(make_header("Content-Length", body.len().to_string()));
    Ok(Request {
        method,
        uri,
        version: Version::V2,
        headers: list,
        body,
    })
}

/// Builds a response to `request`: Vias, From, To (with `to_tag` added
/// when it has none), Call-ID and CSeq copied, then `extra`, then the body.
pub(crate) fn response(
    request: &Request,
    code: u16,
    to_tag: Option<&str>,
    extra: Vec<(String, String)>,
    body: Option<(&str, Vec<u8>)>,
) -> Response {
    let mut headers = Headers::default();
    for h in request.headers.iter() {
        let name = h.name();
        if name.eq_ignore_ascii_case("Via")
            || name.eq_ignore_ascii_case("From")
            || name.eq_ignore_ascii_case("Call-ID")
            || name.eq_ignore_ascii_case("CSeq")
            || (name.eq_ignore_ascii_case("Record-Route")
                && (100..300).contains(&code)
                && code > 100)
        {
            headers.push(h.clone());
        } else if name.eq_ignore_ascii_case("To") {
            let mut value = h.value().to_string();
            if let (Some(tag), None) = (to_tag, param(&value, "tag")) {
                value.push_str(";tag=");
                value.push_str(tag);
            }
            headers.push(make_header("To", value));
        }
    }
    for (name, value) in extra {
        headers.push(make_header(&name, value));
    }
    let body = match body {
        Some((content_type, bytes)) => {
            headers.push(make_header("Content-Type", content_type.to_string()));
            bytes
        }
        None => Vec::new(),
    };
    headers.push(make_header("Content-Length", body.len().to_string()));
    Response {
        status_code: StatusCode::from(code),
        wire_reason: None,
        version: Version::V2,
        headers,
        body,
    }
}

/// Splits a Route/Record-Route value into its entries (commas outside
/// `<...>` and quotes separate them).
pub(crate) fn route_entries(value: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut current = String::new();
    let (mut in_angle, mut in_quote) = (false, false);
    for c in value.chars() {
        match c {
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_angle && !in_quote => {
                entries.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        entries.push(current.trim().to_string());
    }
    entries
}

/// A From/To value without its tag parameter.
pub(crate) fn without_tag(value: &str) -> String {
    let params_start = value.rfind('>').map_or(0, |i| i + 1);
    let (head, params) = value.split_at(params_start);
    let kept: Vec<&str> = params
        .split(';')
        .filter(|p| {
            !p.trim()
                .split('=')
                .next()
                .unwrap_or("")
                .eq_ignore_ascii_case("tag")
        })
        .collect();
    format!("{head}{}", kept.join(";"))
}

/// The ACK of a non-2xx final response to `invite` (RFC 3261 §17.1.1.3):
/// part of the INVITE transaction, so same branch and Request-URI, and the
/// To of the response.
pub(crate) fn ack_for_failure(invite: &Request, response: &Response) -> Result<Request> {
    let number = cseq(&invite.headers).map_or(1, |(n, _)| n);
    let mut headers: Vec<(String, String)> = invite
        .headers
        .iter()
        .filter(|h| {
            ["Via", "From", "Call-ID", "Max-Forwards", "Route"]
                .iter()
                .any(|n| h.name().eq_ignore_ascii_case(n))
        })
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect();
    headers.push((
        "To".into(),
        header(&response.headers, "To")
            .unwrap_or_default()
            .to_string(),
    ));
    headers.push(("CSeq".into(), format!("{number} ACK")));
    request(Method::Ack, &invite.uri.to_string(), headers, Vec::new())
}

/// A response as the tests see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseInfo {
    pub code: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ResponseInfo {
    pub(crate) fn from_response(response: &Response) -> ResponseInfo {
        ResponseInfo {
            code: response.status_code.code(),
            reason: response
                .wire_reason
                .clone()
                .unwrap_or_else(|| response.status_code.text().to_string()),
            headers: header_list(&response.headers),
            body: response.body.clone(),
        }
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::sip::SipMessage;

    const INVITE: &str = concat!(
        "INVITE sip:conf@127.0.0.1:5060 SIP/2.0\r\n",
        "v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n",
        "f: \"Alice\" <sip:alice@127.0.0.1>;tag=a1\r\n",
        "t: <sip:conf@127.0.0.1>\r\n",
        "i: call-1\r\n",
        "CSeq: 7 INVITE\r\n",
        "Record-Route: <sip:proxy;lr>\r\n",
        "X-Room: 42\r\n",
        "Content-Length: 0\r\n\r\n"
    );

    fn invite() -> Request {
        match SipMessage::try_from(INVITE).expect("parses") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!("a request"),
        }
    }

    #[test]
    fn reads_headers_in_compact_form() {
        let request = invite();
        assert_eq!(branch(&request.headers).as_deref(), Some("z9hG4bKabc"));
        assert_eq!(tag(&request.headers, "From").as_deref(), Some("a1"));
        assert_eq!(tag(&request.headers, "To"), None);
        assert_eq!(cseq(&request.headers), Some((7, "INVITE".to_string())));
        assert_eq!(call_id(&request.headers), Some("call-1"));
        assert_eq!(header(&request.headers, "x-room"), Some("42"));
        assert_eq!(
            addr_uri("\"A\" <sip:a@b;transport=tcp>;tag=1"),
            "sip:a@b;transport=tcp"
        );
        assert_eq!(addr_uri("sip:a@b;tag=1"), "sip:a@b");
        assert_eq!(param("sip:a@b;tag=1", "tag").as_deref(), Some("1"));
    }

    #[test]
    fn response_mirrors_the_request() {
        let request = invite();
        let ok = response(
            &request,
            200,
            Some("b2"),
            vec![("Contact".into(), "<sip:b@127.0.0.1>".into())],
            Some(("application/sdp", b"v=0\r\n".to_vec())),
        );
        let text = String::from_utf8(ok.to_bytes()).expect("utf-8");
        assert!(text.starts_with("SIP/2.0 200 OK\r\n"), "{text}");
        assert!(
            text.contains("To: <sip:conf@127.0.0.1>;tag=b2\r\n"),
            "{text}"
        );
        assert!(text.contains("Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n"));
        assert!(text.contains("Record-Route: <sip:proxy;lr>\r\n"));
        assert!(text.contains("Content-Length: 5\r\n\r\nv=0\r\n"), "{text}");
        let parsed = SipMessage::try_from(text.as_str()).expect("re-parses");
        assert!(matches!(parsed, SipMessage::Response(_)));

        let busy = response(&request, 486, Some("b2"), vec![], None);
        let text = String::from_utf8(busy.to_bytes()).expect("utf-8");
        assert!(text.starts_with("SIP/2.0 486 "), "{text}");
        assert!(!text.contains("Record-Route"));
    }

    #[test]
    fn request_gets_a_content_length() {
        let bye = request(
            Method::Bye,
            "sip:bob@127.0.0.1:5080",
            vec![("Call-ID".into(), "x".into())],
            Vec::new(),
        )
        .expect("valid");
        let text = String::from_utf8(bye.to_bytes()).expect("utf-8");
        assert!(
            text.starts_with("BYE sip:bob@127.0.0.1:5080 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(text.ends_with("Content-Length: 0\r\n\r\n"), "{text}");
    }

    #[test]
    fn splits_route_sets() {
        assert_eq!(
            route_entries("<sip:a;lr>, \"x,y\" <sip:b;lr>,<sip:c?h=1,2>"),
            vec!["<sip:a;lr>", "\"x,y\" <sip:b;lr>", "<sip:c?h=1,2>"]
        );
        assert!(route_entries("").is_empty());
    }

    #[test]
    fn strips_tags() {
        assert_eq!(
            without_tag("\"A\" <sip:a@b>;tag=1;x=2"),
            "\"A\" <sip:a@b>;x=2"
        );
        assert_eq!(without_tag("<sip:a@b;tag=keep>"), "<sip:a@b;tag=keep>");
        assert_eq!(without_tag("<sip:a@b>"), "<sip:a@b>");
    }
}
