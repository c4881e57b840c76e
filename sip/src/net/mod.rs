//! Sockets: our own UDP, TCP and WebSocket receive loops feed every message through
//! `wire` and then into rsipstack's transaction layer (`ingress`); rsipstack
//! sends through the same sockets.

pub(crate) mod ingress;
pub(crate) mod local_ip;
pub(crate) mod source;
pub(crate) mod tcp;
pub(crate) mod udp;
pub(crate) mod ws;
