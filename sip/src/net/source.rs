//! Addresses carried from our receive loops to the dispatcher inside the
//! request itself: rsipstack's transactions keep the request but not where
//! a UDP datagram came from ([`stamp`]), nor which of our addresses a
//! WebSocket peer reached ([`stamp_local`]). A header is added after any
//! copy a peer sent is removed, and taken off again before the request is
//! used.

use std::net::SocketAddr;

use rsipstack::sip::{Header, Request};

const SOURCE_HEADER: &str = "X-Switchboard-Source";
const LOCAL_HEADER: &str = "X-Switchboard-Local";

fn is(header: &Header, wanted: &str) -> bool {
    matches!(header, Header::Other(name, _) if name.eq_ignore_ascii_case(wanted))
}

fn put(request: &mut Request, header: &str, addr: SocketAddr) {
    request.headers.retain(|h| !is(h, header));
    request
        .headers
        .push(Header::Other(header.to_string(), addr.to_string()));
}

fn remove(request: &mut Request, header: &str) -> Option<SocketAddr> {
    let addr = request.headers.iter().find_map(|h| match h {
        Header::Other(name, value) if name.eq_ignore_ascii_case(header) => value.parse().ok(),
        _ => None,
    });
    request.headers.retain(|h| !is(h, header));
    addr
}

/// Records `source` in `request`.
pub(crate) fn stamp(request: &mut Request, source: SocketAddr) {
    put(request, SOURCE_HEADER, source);
}

/// Removes the recorded source from `request` and returns it.
pub(crate) fn take(request: &mut Request) -> Option<SocketAddr> {
    remove(request, SOURCE_HEADER)
}

/// Records our address on the connection `request` came on.
pub(crate) fn stamp_local(request: &mut Request, local: SocketAddr) {
    put(request, LOCAL_HEADER, local);
}

/// Removes our recorded address from `request` and returns it.
pub(crate) fn take_local(request: &mut Request) -> Option<SocketAddr> {
    remove(request, LOCAL_HEADER)
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
        stamp_local(&mut request, source);
        assert_eq!(take(&mut request), None);
        assert_eq!(take_local(&mut request), Some(source));
        assert_eq!(request.headers.iter().count(), 0);
    }
}
