//! Answering a request we could not (or would not) parse, from its raw
//! header lines: the response echoes Via, From, To, Call-ID and CSeq as
//! written (RFC 3261 §8.2.6.2), so the client can match it even when the
//! headers are not valid enough for the SIP parser.

use std::borrow::Cow;

use crate::text::random_token;

/// The start line and header fields of a raw message. Tolerates LF-only line
/// ends and folded lines; stops at the first empty line.
pub(crate) struct RawHead<'a> {
    pub start_line: &'a [u8],
    fields: Vec<(&'a [u8], Cow<'a, [u8]>)>,
}

impl<'a> RawHead<'a> {
    pub(crate) fn parse(raw: &'a [u8]) -> RawHead<'a> {
        let mut lines = raw.split(|&b| b == b'\n').map(|line| match line {
            [rest @ .., b'\r'] => rest,
            line => line,
        });
        let start_line = lines.next().unwrap_or_default();
        let mut fields: Vec<(&[u8], Cow<'a, [u8]>)> = Vec::new();
        for line in lines {
            if line.is_empty() {
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                // Folded continuation of the previous field (RFC 3261 §7.3.1).
                if let Some((_, value)) = fields.last_mut() {
                    let value = value.to_mut();
                    value.push(b' ');
                    value.extend_from_slice(trim(line));
                }
                continue;
            }
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                fields.push((
                    trim(&line[..colon]),
                    Cow::Borrowed(trim(&line[colon + 1..])),
                ));
            }
        }
        RawHead { start_line, fields }
    }

    /// The method of a request's start line (`None` for a response).
    pub(crate) fn method(&self) -> Option<&'a [u8]> {
        if self.start_line.starts_with(b"SIP/") {
            return None;
        }
        self.start_line.split(|&b| b == b' ').next()
    }

    /// Every value of a header, by full or compact name.
    fn values<'s>(&'s self, name: &'s str, compact: &'s str) -> impl Iterator<Item = &'s [u8]> {
        self.fields
            .iter()
            .filter(move |(n, _)| {
                n.eq_ignore_ascii_case(name.as_bytes())
                    || n.eq_ignore_ascii_case(compact.as_bytes())
            })
            .map(|(_, v)| v.as_ref())
    }

    fn has(&self, name: &str, compact: &str) -> bool {
        self.values(name, compact).next().is_some()
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}

/// Builds a response to the raw request `head`, or `None` when it has no Via
/// (there is no way to route a response). `extra` headers are appended.
pub(crate) fn response(
    head: &RawHead<'_>,
    code: u16,
    reason: &str,
    server: &str,
    extra: &[(&str, &str)],
) -> Option<Vec<u8>> {
    if !head.has("Via", "v") {
        return None;
    }
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(format!("SIP/2.0 {code} {reason}\r\n").as_bytes());
    for via in head.values("Via", "v") {
        push_field(&mut out, "Via", via);
    }
    for from in head.values("From", "f").take(1) {
        push_field(&mut out, "From", from);
    }
    for to in head.values("To", "t").take(1) {
        out.extend_from_slice(b"To: ");
        out.extend_from_slice(to);
        // RFC 3261 §8.2.6.2: a final response carries a To tag.
        if !contains_ignore_case(to, b"tag=") {
            out.extend_from_slice(b";tag=");
            out.extend_from_slice(random_token(10).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    for call_id in head.values("Call-ID", "i").take(1) {
        push_field(&mut out, "Call-ID", call_id);
    }
    for cseq in head.values("CSeq", "CSeq").take(1) {
        push_field(&mut out, "CSeq", cseq);
    }
    for (name, value) in extra {
        push_field(&mut out, name, value.as_bytes());
    }
    push_field(&mut out, "Server", server.as_bytes());
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_the_matching_headers_and_adds_a_tag() {
        let raw = b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n\
                    Via: SIP/2.0/UDP 10.0.0.2\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>\r\n\
                    i: abc\r\nCSeq: garbage\r\nSubject: folded\r\n  line\r\n\r\nbody";
        let head = RawHead::parse(raw);
        assert_eq!(head.method(), Some(&b"BYE"[..]));
        let out = response(&head, 400, "Bad CSeq", "test", &[("Allow", "INVITE")]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("SIP/2.0 400 Bad CSeq\r\n"));
        assert!(text.contains(
            "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP 10.0.0.2\r\n"
        ));
        assert!(text.contains("From: <sip:x@y>;tag=1\r\n"));
        assert!(text.contains("To: <sip:a@b>;tag="));
        assert!(text.contains("Call-ID: abc\r\n"));
        assert!(text.contains("CSeq: garbage\r\n"));
        assert!(text.contains("Allow: INVITE\r\n"));
        assert!(text.ends_with("Server: test\r\nContent-Length: 0\r\n\r\n"));
    }

    #[test]
    fn keeps_an_existing_to_tag_and_needs_a_via() {
        let raw = b"INFO sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h\nTo: <sip:a@b>;TAG=9\n\n";
        let head = RawHead::parse(raw);
        let text = String::from_utf8(response(&head, 400, "Bad", "s", &[]).unwrap()).unwrap();
        assert!(text.contains("To: <sip:a@b>;TAG=9\r\n"));

        let no_via = RawHead::parse(b"INFO sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n");
        assert!(response(&no_via, 400, "Bad", "s", &[]).is_none());
        assert!(RawHead::parse(b"SIP/2.0 200 OK\r\n\r\n").method().is_none());
    }
}
