//! SIP message counters for metrics: relaxed atomics bumped as messages
//! cross the wire, so counting costs one uncontended add per message.
//!
//! Received messages are counted once framed, before the transaction layer
//! (including the malformed ones we answer statelessly). Sent messages are
//! counted as the transaction layer hands them to a transport (first sends
//! and timer retransmissions), plus our stateless replies.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use rsipstack::sip::{Method, SipMessage};
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::SipAddr;

/// Request methods we count by name; anything else is `OTHER`.
const METHODS: [&str; 15] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
    "OTHER",
];
const OTHER: usize = METHODS.len() - 1;
/// Response codes 100..=699, one slot each.
const FIRST_CODE: u16 = 100;
const CODES: usize = 600;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// A request by method, or a response by status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Request(&'static str),
    Response(u16),
}

/// One non-zero counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCount {
    pub direction: Direction,
    pub kind: MessageKind,
    pub count: u64,
}

/// Counters since the endpoint started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SipStats {
    /// Every non-zero counter, requests first, in a stable order.
    pub messages: Vec<MessageCount>,
    /// Received messages refused before the transaction layer (answered
    /// with a stateless 400/501/505, or dropped as unanswerable).
    pub malformed_in: u64,
}

impl SipStats {
    /// The count for one direction and kind (0 when never seen).
    pub fn count(&self, direction: Direction, kind: MessageKind) -> u64 {
        self.messages
            .iter()
            .find(|m| m.direction == direction && m.kind == kind)
            .map_or(0, |m| m.count)
    }
}

struct DirectionCounters {
    requests: [AtomicU64; METHODS.len()],
    responses: Box<[AtomicU64]>,
}

impl Default for DirectionCounters {
    fn default() -> Self {
        DirectionCounters {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            responses: (0..CODES).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl DirectionCounters {
    fn request(&self, method: Method) {
        self.requests[method_index(method)].fetch_add(1, Relaxed);
    }

    fn response(&self, code: u16) {
        if let Some(slot) = code
            .checked_sub(FIRST_CODE)
            .and_then(|i| self.responses.get(i as usize))
        {
            slot.fetch_add(1, Relaxed);
        }
    }

    fn message(&self, message: &SipMessage) {
        match message {
            SipMessage::Request(request) => self.request(request.method),
            SipMessage::Response(response) => self.response(response.status_code.code()),
        }
    }

    fn collect(&self, direction: Direction, into: &mut Vec<MessageCount>) {
        for (i, counter) in self.requests.iter().enumerate() {
            let count = counter.load(Relaxed);
            if count > 0 {
                into.push(MessageCount {
                    direction,
                    kind: MessageKind::Request(METHODS[i]),
                    count,
                });
            }
        }
        for (i, counter) in self.responses.iter().enumerate() {
            let count = counter.load(Relaxed);
            if count > 0 {
                into.push(MessageCount {
                    direction,
                    kind: MessageKind::Response(FIRST_CODE + i as u16),
                    count,
                });
            }
        }
    }
}

fn method_index(method: Method) -> usize {
    let name = match method {
        Method::Ack => "ACK",
        Method::Bye => "BYE",
        Method::Cancel => "CANCEL",
        Method::Info => "INFO",
        Method::Invite => "INVITE",
        Method::Message => "MESSAGE",
        Method::Notify => "NOTIFY",
        Method::Options => "OPTIONS",
        Method::PRack => "PRACK",
        Method::Publish => "PUBLISH",
        Method::Refer => "REFER",
        Method::Register => "REGISTER",
        Method::Subscribe => "SUBSCRIBE",
        Method::Update => "UPDATE",
    };
    METHODS.iter().position(|m| *m == name).unwrap_or(OTHER)
}

/// The endpoint's counters. Shared by the receive path and the transaction
/// layer's inspector.
#[derive(Default)]
pub(crate) struct Counters {
    received: DirectionCounters,
    sent: DirectionCounters,
    malformed_in: AtomicU64,
}

impl Counters {
    pub(crate) fn received(&self, message: &SipMessage) {
        self.received.message(message);
    }

    pub(crate) fn malformed(&self) {
        self.malformed_in.fetch_add(1, Relaxed);
    }

    /// A stateless reply we wrote ourselves (`SIP/2.0 400 ...`).
    pub(crate) fn sent_raw_response(&self, raw: &[u8]) {
        if let Some(code) = raw_status_code(raw) {
            self.sent.response(code);
        }
    }

    pub(crate) fn snapshot(&self) -> SipStats {
        let mut messages = Vec::new();
        self.received.collect(Direction::In, &mut messages);
        self.sent.collect(Direction::Out, &mut messages);
        SipStats {
            messages,
            malformed_in: self.malformed_in.load(Relaxed),
        }
    }
}

/// The status code of a serialized response.
fn raw_status_code(raw: &[u8]) -> Option<u16> {
    let rest = raw.strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Counts what rsipstack's transaction layer sends.
pub(crate) struct SendCounter(pub(crate) Arc<Counters>);

impl MessageInspector for SendCounter {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        self.0.sent.message(&msg);
        msg
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        // Counted in our receive path, which also sees malformed messages.
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_and_code() {
        let counters = Counters::default();
        let invite = SipMessage::try_from(
            "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        counters.received(&invite);
        counters.received(&invite);
        counters.sent_raw_response(b"SIP/2.0 400 Bad Request\r\n\r\n");
        counters.sent_raw_response(b"garbage");
        counters.malformed();
        let stats = counters.snapshot();
        assert_eq!(
            stats.count(Direction::In, MessageKind::Request("INVITE")),
            2
        );
        assert_eq!(stats.count(Direction::Out, MessageKind::Response(400)), 1);
        assert_eq!(stats.count(Direction::Out, MessageKind::Request("BYE")), 0);
        assert_eq!(stats.malformed_in, 1);
        assert_eq!(stats.messages.len(), 2);
    }

    #[test]
    fn every_method_has_its_own_slot() {
        for method in Method::all() {
            assert_ne!(method_index(method), OTHER, "{method}");
            assert_eq!(METHODS[method_index(method)], method.to_string());
        }
    }
}
