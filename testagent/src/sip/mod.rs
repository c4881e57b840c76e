//! The SIP side of the agent: messages, SDP, transport and transactions.

pub mod message;
pub mod sdp;
pub(crate) mod transaction;
pub(crate) mod transport;
