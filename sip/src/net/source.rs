//! The source address of a UDP request, carried from our receive loop to
//! the dispatcher inside the request itself: rsipstack's transactions keep
//! the request but not where a datagram came from. The header is added
//! after any copy a peer sent is removed, and taken off again before the
//! request is used.

use std::net::SocketAddr;

use rsipstack::sip::{Header, Request};

const SOURCE_HEADER: &str = "X-Switchboard-Source";

fn is_source(header: &Header) -> bool {
    matches!(header, Header::Other(name, _) if name.eq_ignore_ascii_case(SOURCE_HEADER))
}

/// Records `source` in `request`.
pub(crate) fn stamp(request: &mut Request, source: SocketAddr) {
    request.headers.retain(|h| !is_source(h));
    request
        .headers
        .push(Header::Other(SOURCE_HEADER.to_string(), source.to_string()));
}

/// Removes the recorded source from `request` and returns it.
pub(crate) fn take(request: &mut Request) -> Option<SocketAddr> {
    let source = request.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name.eq_ignore_ascii_case(SOURCE_HEADER) => {
            value.parse().ok()
        }
        _ => None,
    });
    request.headers.retain(|h| !is_source(h));
    source
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_replaces_a_forged_one_and_take_removes_it() {
        let mut request = Request {
            method: rsipstack::sip::Method::Invite,
            uri: rsipstack::sip::Uri::try_from("sip:a@b").unwrap(),
            version: rsipstack::sip::Version::V2,
            headers: vec![Header::Other(SOURCE_HEADER.into(), "6.6.6.6:6".into())].into(),
            body: vec![],
        };
        let source: SocketAddr = "192.0.2.1:5062".parse().unwrap();
        stamp(&mut request, source);
        assert_eq!(request.headers.iter().count(), 1);
        assert_eq!(take(&mut request), Some(source));
        assert_eq!(request.headers.iter().count(), 0);
        assert_eq!(take(&mut request), None);
    }
}
