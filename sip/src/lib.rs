//! SIP signalling for switchboard, on `rsipstack`.
//!
//! [`SipEndpoint::start`] listens on UDP and TCP and hands every new INVITE
//! to the engine as an [`IncomingCall`]. The engine decides (rules, scenario),
//! and drives the call with [`CallSignaling`]: ring, answer with an SDP
//! answer, reject, hang up. Everything RFC 3261 demands below that level
//! (100 Trying, 200 retransmission until ACK, CANCEL → 487, BYE from the
//! caller, OPTIONS, 400 for malformed requests) happens here.
//!
//! INTERFACE SKELETON: signatures are the contract the engine is written
//! against. Implementation is in progress.

pub mod sdp;

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sip stack: {0}")]
    Stack(String),
    #[error("call is no longer in a state that allows this ({0})")]
    InvalidState(&'static str),
}

/// Transport a call arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Ws,
}

impl Transport {
    /// Lower-case name as scenarios see it (`call.transport`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Ws => "ws",
        }
    }
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// UDP listen address (port 0 picks a free port).
    pub udp: Option<SocketAddr>,
    /// TCP listen address (port 0 picks a free port).
    pub tcp: Option<SocketAddr>,
    /// `User-Agent` / `Server` header value.
    pub user_agent: String,
}

/// Why a call's signalling ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent CANCEL before we answered (487 was sent).
    Cancelled,
    /// The caller sent BYE (200 was sent).
    RemoteBye,
    /// We sent BYE (or a final non-2xx response).
    Local,
    /// Our 200 OK was never acknowledged (Timer H / 64*T1).
    AckTimeout,
    /// The transport failed (e.g. TCP connection closed).
    TransportError(String),
    /// The endpoint shut down.
    Shutdown,
}

/// Signalling events for one call, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The ACK for our 2xx arrived: the call is confirmed.
    Confirmed,
    /// The dialog is over; no more events follow.
    Ended(EndReason),
}

/// Where a call is in its life, as far as signalling knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE received, no final response yet.
    Incoming,
    /// 2xx sent, waiting for ACK.
    Answered,
    /// ACK received.
    Confirmed,
    Ended,
}

/// The SIP endpoint: listeners, transaction and dialog layers. Cheap to clone.
#[derive(Clone)]
pub struct SipEndpoint {
    _private: (),
}

impl SipEndpoint {
    /// Binds the configured transports and starts serving. New INVITEs arrive
    /// on the returned [`IncomingCalls`].
    pub async fn start(_config: SipConfig) -> Result<(SipEndpoint, IncomingCalls), SipError> {
        todo!()
    }
    /// The address a transport is really bound to (port 0 resolved).
    pub fn local_addr(&self, _transport: Transport) -> Option<SocketAddr> {
        todo!()
    }
    /// Stops listening and ends the stack. Calls still up are not hung up
    /// here: the engine sends their BYEs first.
    pub async fn shutdown(&self) {
        todo!()
    }
}

/// New calls, in arrival order.
pub struct IncomingCalls {
    _private: (),
}

impl IncomingCalls {
    pub async fn recv(&mut self) -> Option<IncomingCall> {
        todo!()
    }
}

/// A new INVITE: a handle to drive it and its event stream.
pub struct IncomingCall {
    pub signaling: CallSignaling,
    pub events: CallEvents,
}

/// Drives one call's signalling. Cheap to clone.
#[derive(Clone)]
pub struct CallSignaling {
    _private: (),
}

impl CallSignaling {
    /// Our id for this call, unique in the process; used in logs and APIs.
    pub fn id(&self) -> &str {
        todo!()
    }
    /// The SIP Call-ID header.
    pub fn sip_call_id(&self) -> &str {
        todo!()
    }
    /// The From URI, e.g. `sip:alice@example.com`.
    pub fn from(&self) -> &str {
        todo!()
    }
    /// The To URI.
    pub fn to(&self) -> &str {
        todo!()
    }
    /// The Request-URI user part (percent-decoded): what rules match on.
    pub fn destination(&self) -> &str {
        todo!()
    }
    /// The whole Request-URI.
    pub fn request_uri(&self) -> &str {
        todo!()
    }
    /// Every header of the INVITE, name and value, in order.
    pub fn headers(&self) -> &[(String, String)] {
        todo!()
    }
    pub fn transport(&self) -> Transport {
        todo!()
    }
    /// Where the INVITE came from (source address of the packet/connection).
    pub fn remote_addr(&self) -> SocketAddr {
        todo!()
    }
    /// The SDP offer in the INVITE body, if any.
    pub fn offer(&self) -> Option<&[u8]> {
        todo!()
    }
    pub fn state(&self) -> CallState {
        todo!()
    }
    /// Sends 180 Ringing.
    pub async fn ring(&self) -> Result<(), SipError> {
        todo!()
    }
    /// Sends 200 OK with `sdp` as body (and extra headers, e.g. `X-` ones).
    /// Returns once sent; the stack retransmits it until the ACK comes
    /// ([`CallEvent::Confirmed`]) or gives up ([`EndReason::AckTimeout`]).
    pub async fn answer(
        &self,
        _sdp: String,
        _headers: Vec<(String, String)>,
    ) -> Result<(), SipError> {
        todo!()
    }
    /// Sends a final error response (e.g. 404, 486, 488, 500) to the INVITE.
    pub async fn reject(&self, _code: u16, _reason: Option<&str>) -> Result<(), SipError> {
        todo!()
    }
    /// Ends the call from our side: BYE when answered, otherwise a 480
    /// final response. Idempotent.
    pub async fn hangup(&self, _headers: Vec<(String, String)>) -> Result<(), SipError> {
        todo!()
    }
}

/// Signalling events of one call. Ends (`None`) after [`CallEvent::Ended`].
pub struct CallEvents {
    _private: (),
}

impl CallEvents {
    pub async fn recv(&mut self) -> Option<CallEvent> {
        todo!()
    }
}
