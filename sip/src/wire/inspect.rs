//! Parse and validate one message (a datagram or a stream frame) before it
//! reaches rsipstack. rsipstack's parser is lenient (a missing header, a
//! bad CSeq or a short body all parse) and its UDP loop silently drops what
//! it cannot parse; RFC 3261 §8.2 wants a 400 for those, and §21.5.2/§21.5.6
//! a 501/505 for an unknown method or version.

use memchr::memmem;
use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Header, Method, Request, Response, SipMessage, Version};

use super::stateless::{self, RawHead};
use crate::message::ALLOW;

/// What to do with a received message.
pub(crate) enum Inspection {
    /// Well formed: hand it to the transaction layer.
    Message(SipMessage),
    /// Answered statelessly: send these bytes back to the sender.
    Reply(Vec<u8>),
    /// Not answerable (a response, an ACK, no Via): drop it.
    Ignore(&'static str),
}

/// Inspects `raw`, one whole message. `datagram` is true for UDP, where the
/// body runs to the end of the datagram and Content-Length may not exceed it
/// (RFC 3261 §18.3); stream frames are already cut to their Content-Length.
pub(crate) fn inspect(raw: &[u8], datagram: bool, server: &str) -> Inspection {
    let Some(head_end) = memmem::find(raw, b"\r\n\r\n") else {
        return reject(raw, 400, "Missing empty line after the headers", server);
    };
    let body_len = raw.len() - head_end - 4;
    let start_line = &raw[..memchr::memchr(b'\r', raw).unwrap_or(head_end)];
    if start_line.starts_with(b"SIP/") {
        return inspect_response(raw);
    }
    if let Err(rejection) = check_request_line(start_line) {
        return rejection.into_inspection(raw, server);
    }
    let message = match SipMessage::try_from(raw) {
        Ok(message) => message,
        Err(_) => return reject(raw, 400, "Malformed request", server),
    };
    let SipMessage::Request(mut request) = message else {
        return reject(raw, 400, "Malformed request", server);
    };
    match check_request(&request, datagram, body_len) {
        Ok(Body::AsParsed) => {}
        Ok(Body::RestOfDatagram) => request.body = raw[head_end + 4..].to_vec(),
        Err(rejection) => return rejection.into_inspection(raw, server),
    }
    Inspection::Message(SipMessage::Request(request))
}

/// A stateless reply to a message head we cannot frame by (stream
/// transports), if it is an answerable request.
pub(crate) fn reject_head(
    raw: &[u8],
    code: u16,
    reason: &'static str,
    server: &str,
) -> Option<Vec<u8>> {
    match reject(raw, code, reason, server) {
        Inspection::Reply(reply) => Some(reply),
        _ => None,
    }
}

/// Why a request is refused before the transaction layer.
enum Rejection {
    Status(u16, &'static str),
    /// Not answerable at all.
    Drop(&'static str),
}

impl Rejection {
    fn into_inspection(self, raw: &[u8], server: &str) -> Inspection {
        match self {
            Rejection::Status(code, reason) => reject(raw, code, reason, server),
            Rejection::Drop(why) => Inspection::Ignore(why),
        }
    }
}

/// A stateless response to `raw`, unless it is an ACK (never answered,
/// RFC 3261 §17.2.3) or has no Via to route the response by.
fn reject(raw: &[u8], code: u16, reason: &'static str, server: &str) -> Inspection {
    let head = RawHead::parse(raw);
    match head.method() {
        None => return Inspection::Ignore("malformed response"),
        Some(method) if method.eq_ignore_ascii_case(b"ACK") => {
            return Inspection::Ignore("malformed ACK")
        }
        Some(_) => {}
    }
    let extra: &[(&str, &str)] = if code == 405 || code == 501 {
        &[("Allow", ALLOW)]
    } else {
        &[]
    };
    match stateless::response(&head, code, reason, server, extra) {
        Some(bytes) => Inspection::Reply(bytes),
        None => Inspection::Ignore("malformed request without Via"),
    }
}

/// `Method SP Request-URI SP SIP-Version` (RFC 3261 §7.1).
fn check_request_line(line: &[u8]) -> Result<(), Rejection> {
    let bad = Rejection::Status(400, "Bad Request-Line");
    let line = std::str::from_utf8(line).map_err(|_| Rejection::Status(400, "Bad Request-Line"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    if method.is_empty() || uri.is_empty() {
        return Err(bad);
    }
    if version != "SIP/2.0" {
        return Err(if version.starts_with("SIP/") {
            Rejection::Status(505, "Version Not Supported")
        } else {
            bad
        });
    }
    if method.parse::<Method>().is_err() {
        let token = method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
        return Err(if token {
            Rejection::Status(501, "Not Implemented")
        } else {
            bad
        });
    }
    Ok(())
}

/// Where the body of a valid request is.
enum Body {
    AsParsed,
    /// A datagram without Content-Length: the body is the rest of it.
    RestOfDatagram,
}

/// The checks of RFC 3261 §8.1.1 / §8.2 the parser does not make.
fn check_request(request: &Request, datagram: bool, body_len: usize) -> Result<Body, Rejection> {
    let ack = request.method == Method::Ack;
    let status = |reason| {
        if ack {
            Rejection::Drop("malformed ACK")
        } else {
            Rejection::Status(400, reason)
        }
    };
    if request.version != Version::V2 {
        return Err(Rejection::Status(505, "Version Not Supported"));
    }
    let via = request
        .via_header()
        .map_err(|_| Rejection::Drop("request without Via"))?;
    via.first_value()
        .and_then(|v| v.typed())
        .map_err(|_| status("Bad Via"))?;

    let from = request.from_header().map_err(|_| status("Missing From"))?;
    let from = from.typed().map_err(|_| status("Bad From"))?;
    if from.tag().is_none() {
        return Err(status("Missing From tag"));
    }
    let to = request.to_header().map_err(|_| status("Missing To"))?;
    to.typed().map_err(|_| status("Bad To"))?;

    let call_id = request
        .call_id_header()
        .map_err(|_| status("Missing Call-ID"))?;
    if call_id.value().trim().is_empty() || call_id.value().contains(char::is_whitespace) {
        return Err(status("Bad Call-ID"));
    }

    let cseq = request.cseq_header().map_err(|_| status("Missing CSeq"))?;
    let cseq = cseq.typed().map_err(|_| status("Bad CSeq"))?;
    // RFC 3261 §8.1.1.5: the sequence number is below 2**31.
    if cseq.seq >= 1 << 31 {
        return Err(status("Bad CSeq"));
    }
    if cseq.method != request.method {
        return Err(status("CSeq method does not match the request"));
    }

    if let Some(max_forwards) = header(request, |h| match h {
        Header::MaxForwards(m) => Some(m.value()),
        _ => None,
    }) {
        max_forwards
            .trim()
            .parse::<u32>()
            .map_err(|_| status("Bad Max-Forwards"))?;
    }

    let content_length = header(request, |h| match h {
        Header::ContentLength(l) => Some(l.value()),
        _ => None,
    });
    match content_length {
        Some(length) => {
            let length: usize = length
                .trim()
                .parse()
                .map_err(|_| status("Bad Content-Length"))?;
            if length > body_len {
                return Err(status("Content-Length exceeds the body"));
            }
            Ok(Body::AsParsed)
        }
        None if datagram && body_len > 0 => Ok(Body::RestOfDatagram),
        None => Ok(Body::AsParsed),
    }
}

fn header<'a>(
    request: &'a Request,
    pick: impl Fn(&'a Header) -> Option<&'a str>,
) -> Option<&'a str> {
    request.headers.iter().find_map(pick)
}

/// A response can only be dropped if broken; it needs what the transaction
/// layer matches it by.
fn inspect_response(raw: &[u8]) -> Inspection {
    let Ok(SipMessage::Response(response)) = SipMessage::try_from(raw) else {
        return Inspection::Ignore("malformed response");
    };
    if response_is_matchable(&response) {
        Inspection::Message(SipMessage::Response(response))
    } else {
        Inspection::Ignore("response without Via, CSeq, Call-ID or From tag")
    }
}

fn response_is_matchable(response: &Response) -> bool {
    response.version == Version::V2
        && response
            .top_via_header()
            .and_then(|via| via.typed())
            .is_ok()
        && response.cseq_header().and_then(|c| c.typed()).is_ok()
        && response.call_id_header().is_ok()
        && matches!(response.from_header().and_then(|f| f.tag()), Ok(Some(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start: &str, headers: &[&str], body: &str) -> Vec<u8> {
        let mut raw = format!("{start}\r\n");
        for h in headers {
            raw.push_str(h);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        raw.push_str(body);
        raw.into_bytes()
    }

    const GOOD: &[&str] = &[
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-1",
        "From: <sip:alice@a>;tag=1",
        "To: <sip:bob@b>",
        "Call-ID: c1@a",
        "CSeq: 1 OPTIONS",
        "Max-Forwards: 70",
        "Content-Length: 0",
    ];

    fn without(name: &str) -> Vec<&'static str> {
        GOOD.iter()
            .copied()
            .filter(|h| !h.starts_with(name))
            .collect()
    }

    fn status_of(inspection: Inspection) -> Option<String> {
        match inspection {
            Inspection::Reply(bytes) => {
                let text = String::from_utf8(bytes).unwrap();
                Some(text.lines().next().unwrap().to_string())
            }
            Inspection::Message(_) => None,
            Inspection::Ignore(why) => Some(format!("ignored: {why}")),
        }
    }

    #[test]
    fn accepts_a_good_request() {
        let raw = request("OPTIONS sip:bob@b SIP/2.0", GOOD, "");
        assert!(matches!(inspect(&raw, true, "t"), Inspection::Message(_)));
    }

    #[test]
    fn missing_headers_get_400() {
        for (name, reason) in [
            ("Call-ID", "Missing Call-ID"),
            ("CSeq", "Missing CSeq"),
            ("From", "Missing From"),
            ("To", "Missing To"),
        ] {
            let raw = request("OPTIONS sip:bob@b SIP/2.0", &without(name), "");
            assert_eq!(
                status_of(inspect(&raw, true, "t")).as_deref(),
                Some(format!("SIP/2.0 400 {reason}").as_str()),
                "without {name}"
            );
        }
    }

    #[test]
    fn bad_values_get_400() {
        for (header, reason) in [
            ("CSeq: x OPTIONS", "Bad CSeq"),
            ("CSeq: 1", "Bad CSeq"),
            ("CSeq: 4294967295 OPTIONS", "Bad CSeq"),
            ("CSeq: 1 INVITE", "CSeq method does not match the request"),
            ("Content-Length: 10", "Content-Length exceeds the body"),
            ("Content-Length: ten", "Bad Content-Length"),
            ("Max-Forwards: many", "Bad Max-Forwards"),
        ] {
            let name = header.split(':').next().unwrap();
            let mut headers = without(name);
            headers.push(header);
            let raw = request("OPTIONS sip:bob@b SIP/2.0", &headers, "");
            assert_eq!(
                status_of(inspect(&raw, true, "t")).as_deref(),
                Some(format!("SIP/2.0 400 {reason}").as_str()),
                "{header}"
            );
        }
        let mut untagged = without("From");
        untagged.push("From: <sip:alice@a>");
        let raw = request("OPTIONS sip:bob@b SIP/2.0", &untagged, "");
        assert_eq!(
            status_of(inspect(&raw, true, "t")).as_deref(),
            Some("SIP/2.0 400 Missing From tag")
        );
    }

    #[test]
    fn request_line_problems() {
        for (line, status) in [
            ("FOO sip:bob@b SIP/2.0", "SIP/2.0 501 Not Implemented"),
            (
                "OPTIONS sip:bob@b SIP/3.0",
                "SIP/2.0 505 Version Not Supported",
            ),
            ("OPTIONS sip:bob@b HTTP/1.1", "SIP/2.0 400 Bad Request-Line"),
            ("OPTIONS  SIP/2.0", "SIP/2.0 400 Bad Request-Line"),
            ("OPTIONS sip:bob@b", "SIP/2.0 400 Bad Request-Line"),
            ("OPT{}NS sip:bob@b SIP/2.0", "SIP/2.0 400 Bad Request-Line"),
            ("OPTIONS sip: SIP/2.0", "SIP/2.0 400 Malformed request"),
        ] {
            let raw = request(line, GOOD, "");
            assert_eq!(
                status_of(inspect(&raw, true, "t")).as_deref(),
                Some(status),
                "{line}"
            );
        }
        let raw = request("FOO sip:bob@b SIP/2.0", GOOD, "");
        let Inspection::Reply(reply) = inspect(&raw, true, "t") else {
            panic!("no reply");
        };
        assert!(String::from_utf8(reply).unwrap().contains("\r\nAllow: "));
    }

    #[test]
    fn unanswerable_messages_are_ignored() {
        let no_via = request("OPTIONS sip:bob@b SIP/2.0", &without("Via"), "");
        assert!(matches!(inspect(&no_via, true, "t"), Inspection::Ignore(_)));
        let mut bad_ack = without("CSeq");
        bad_ack.push("CSeq: 1 INVITE");
        let raw = request("ACK sip:bob@b SIP/2.0", &bad_ack, "");
        assert!(matches!(inspect(&raw, true, "t"), Inspection::Ignore(_)));
        assert!(matches!(
            inspect(b"SIP/2.0 200 OK\r\n\r\n", true, "t"),
            Inspection::Ignore(_)
        ));
        assert!(matches!(
            inspect(b"\x00\x01garbage", true, "t"),
            Inspection::Ignore(_)
        ));
    }

    #[test]
    fn datagram_body_without_content_length_runs_to_the_end() {
        let mut headers = without("Content-Length");
        headers.push("Content-Type: application/sdp");
        let raw = request("OPTIONS sip:bob@b SIP/2.0", &headers, "v=0\r\n");
        let Inspection::Message(SipMessage::Request(req)) = inspect(&raw, true, "t") else {
            panic!("rejected");
        };
        assert_eq!(req.body, b"v=0\r\n");
    }
}
