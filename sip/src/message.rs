//! Building the responses we send through rsipstack's transactions.

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{
    Accept, Allow, ContentLength, ContentType, Header, Headers, Request, Response, Server,
    StatusCode, Supported, To, Version,
};

use crate::text::random_token;

/// The methods we implement (RFC 3261 §20.5).
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
/// The body types we understand in requests.
pub(crate) const ACCEPT: &str = "application/sdp";
/// The option tags we support: none (no 100rel, no session timers).
pub(crate) const SUPPORTED: &str = "";

/// A status code with `reason` as its reason phrase when given.
pub(crate) fn status(code: u16, reason: Option<&str>) -> StatusCode {
    match reason {
        // StatusCode::Other keeps the code and writes our phrase.
        Some(reason) => StatusCode::Other(code, reason.to_string()),
        None => StatusCode::from(code),
    }
}

/// A response to `request` (RFC 3261 §8.2.6): Via, From, Call-ID and CSeq
/// copied, and the To header: `to` when given (the dialog's, with our tag),
/// else the request's, tagged if it has no tag and the response is not 100.
pub(crate) fn response(request: &Request, status: StatusCode, to: Option<&To>) -> Response {
    let mut headers = Headers::default();
    for header in request.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(header.clone())
            }
            Header::To(original) => {
                let to = match to {
                    Some(to) => to.clone(),
                    None if status != StatusCode::Trying && !has_tag(original) => {
                        To::new(format!("{};tag={}", original.value(), random_token(10)))
                    }
                    None => original.clone(),
                };
                headers.push(Header::To(to));
            }
            _ => {}
        }
    }
    Response {
        status_code: status,
        wire_reason: None,
        version: Version::V2,
        headers,
        body: Vec::new(),
    }
}

fn has_tag(to: &To) -> bool {
    matches!(to.tag(), Ok(Some(_)))
}

/// The headers that say what we can do (OPTIONS answers, 2xx to INVITE).
pub(crate) fn add_capabilities(response: &mut Response) {
    response.headers.push(Header::Allow(Allow::new(ALLOW)));
    response.headers.push(Header::Accept(Accept::new(ACCEPT)));
    response
        .headers
        .push(Header::Supported(Supported::new(SUPPORTED)));
}

/// Copies the request's Record-Route headers: a response that creates a
/// dialog carries them back (RFC 3261 §12.1.1).
pub(crate) fn add_record_route(response: &mut Response, request: &Request) {
    for rr in request.record_route_headers() {
        response.headers.push(Header::RecordRoute(rr.clone()));
    }
}

/// Extra headers, already checked by `text::check_extra_headers`.
pub(crate) fn add_extra(headers: &mut Headers, extra: &[(String, String)]) {
    for (name, value) in extra {
        headers.push(Header::Other(name.clone(), value.clone()));
    }
}

/// Server, the body and its Content-Type, Content-Length: the last headers.
pub(crate) fn finish(response: &mut Response, server: &str, body: Option<(&str, Vec<u8>)>) {
    response.headers.push(Header::Server(Server::new(server)));
    let body = match body {
        Some((content_type, body)) => {
            response
                .headers
                .push(Header::ContentType(ContentType::new(content_type)));
            body
        }
        None => Vec::new(),
    };
    response.headers.push(Header::ContentLength(
        ContentLength::from(body.len() as u32),
    ));
    response.body = body;
}
