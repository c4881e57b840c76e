//! Bytes to SIP messages: stream framing, validation, and the stateless
//! responses (400, 501, 505) for requests too broken to reach the
//! transaction layer.

mod framing;
mod inspect;
mod stateless;

pub(crate) use framing::{Frame, Framer};
pub(crate) use inspect::{inspect, reject_head, Inspection};
