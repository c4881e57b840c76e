//! SIP signalling for switchboard, on `rsipstack`.
//!
//! [`SipEndpoint::start`] listens on UDP and TCP and hands every new INVITE
//! to the engine as an [`IncomingCall`]. The engine decides (rules, scenario),
//! and drives the call with [`CallSignaling`]: ring, answer with an SDP
//! answer, reject, hang up. Everything RFC 3261 demands below that level
//! (100 Trying, 200 retransmission until ACK, CANCEL → 487, BYE from the
//! caller, OPTIONS, 400 for malformed requests) happens here.
//! [`SipEndpoint::dial`] places outgoing calls on the same machinery.
//!
//! Layout:
//! - [`sdp`]: offer parsing, codec negotiation, answers.
//! - `net`: UDP and TCP sockets, and WebSocket connections the HTTP server
//!   hands over ([`SipEndpoint::serve_websocket`]); every message we receive goes through
//!   `wire` (framing, validation, stateless 400/501/505) before it reaches
//!   rsipstack's transaction layer (`net::ingress`).
//! - `dispatch`: what to do with each new server transaction (new call,
//!   in-dialog request, OPTIONS, 405/420/481/482).
//! - `registry`: live dialogs by our tag.
//! - `call`: one call's state machine (`call`), its dialog and the requests
//!   we send in it (`dialog`), incoming INVITEs (`invite`), outgoing ones
//!   (`dial`), in-dialog requests (`in_dialog`) and the re-INVITE policy
//!   (`reinvite`).
//! - `message`, `text`: response building, tags, URI and header helpers.

pub mod sdp;

mod call;
mod dispatch;
mod endpoint;
mod message;
mod net;
mod registry;
mod stats;
mod text;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use stats::{Direction, MessageCount, MessageKind, SipStats};

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
    /// A header, status code or reason phrase the caller passed is unusable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
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

/// One WebSocket message of a SIP-over-WebSocket connection (RFC 7118):
/// one SIP message each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    Text(String),
    Binary(Vec<u8>),
}

/// A WebSocket connection (subprotocol `sip`) the HTTP server accepted,
/// handed to [`SipEndpoint::serve_websocket`] as channels of frames.
pub struct WsConnection {
    /// The peer's address.
    pub remote: SocketAddr,
    /// Our address on the connection: Via and Contact of what we send on it.
    pub local: SocketAddr,
    /// Over TLS (WSS).
    pub secure: bool,
    /// The frames the peer sends. The connection is over when this ends.
    pub incoming: mpsc::Receiver<WsFrame>,
    /// Where the endpoint writes frames for the peer. Dropped when the
    /// endpoint is done with the connection: close the socket then.
    pub outgoing: mpsc::Sender<WsFrame>,
}

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct SipConfig {
    /// UDP listen address (port 0 picks a free port).
    pub udp: Option<SocketAddr>,
    /// TCP listen address (port 0 picks a free port). When both are port 0
    /// on the same IP, TCP takes the port UDP got if it is free.
    pub tcp: Option<SocketAddr>,
    /// `User-Agent` / `Server` header value.
    pub user_agent: String,
}

impl Default for SipConfig {
    /// UDP and TCP on 0.0.0.0:5060.
    fn default() -> Self {
        let any = SocketAddr::from(([0, 0, 0, 0], 5060));
        SipConfig {
            udp: Some(any),
            tcp: Some(any),
            user_agent: format!("switchboard/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// RFC 3261 timer values (§17.1.1.1). The defaults are the RFC's; tests
/// shorten them to see Timer H fire in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipTimers {
    /// Round-trip estimate; 200 OK retransmissions start at T1 and the ACK
    /// wait (Timer H/L) is 64*T1.
    pub t1: Duration,
    /// Cap of the retransmission interval.
    pub t2: Duration,
    /// How long a message may stay in the network.
    pub t4: Duration,
}

impl Default for SipTimers {
    fn default() -> Self {
        SipTimers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
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
    /// Outgoing calls: a provisional response (180, 183 with early media
    /// SDP, ...); 100 Trying is not reported.
    Progress { status: u16, sdp: Option<Vec<u8>> },
    /// Outgoing calls: the callee answered (2xx, already ACKed); the call
    /// is confirmed. `sdp` is the answer to our offer.
    Answered { sdp: Option<Vec<u8>> },
    /// Outgoing calls: the callee refused (its final response, or 408 when
    /// nothing answered). The last event of a call never answered.
    Rejected { status: u16, reason: String },
    /// An in-dialog INFO arrived (already answered 200), e.g. DTMF as
    /// `application/dtmf-relay`.
    Info {
        content_type: Option<String>,
        body: Vec<u8>,
    },
    /// The dialog is over; no more events follow.
    Ended(EndReason),
}

/// Where a call is in its life, as far as signalling knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// INVITE received (or, for an outgoing call, sent), no final response
    /// yet.
    Incoming,
    /// 2xx sent, waiting for ACK.
    Answered,
    /// ACK received (outgoing calls: 2xx received and ACKed).
    Confirmed,
    Ended,
}

/// An outgoing call to place with [`SipEndpoint::dial`].
#[derive(Debug, Clone)]
pub struct DialRequest {
    /// Whom to call, a `sip:` URI; its host is where the INVITE goes (an IP,
    /// or a name resolved by A/AAAA, port 5060 by default). `;transport=tcp`
    /// calls over TCP, otherwise UDP.
    pub uri: String,
    /// Our identity (From): a SIP URI, with or without a display name,
    /// e.g. `"Reception" <sip:reception@example.com>`. The tag is ours.
    pub from: String,
    /// Extra INVITE headers (`X-`, `P-Asserted-Identity`, ...).
    pub headers: Vec<(String, String)>,
    /// Our SDP offer.
    pub sdp: String,
}

/// A call we placed: a handle to drive it and its event stream.
pub struct OutgoingCall {
    pub signaling: CallSignaling,
    pub events: CallEvents,
}

/// The SIP endpoint: listeners, transaction and dialog layers. Cheap to clone.
#[derive(Clone)]
pub struct SipEndpoint {
    core: Arc<endpoint::EndpointCore>,
}

impl SipEndpoint {
    /// Binds the configured transports and starts serving. New INVITEs arrive
    /// on the returned [`IncomingCalls`].
    pub async fn start(config: SipConfig) -> Result<(SipEndpoint, IncomingCalls), SipError> {
        Self::start_with_timers(config, SipTimers::default()).await
    }

    /// [`SipEndpoint::start`] with other RFC 3261 timer values.
    pub async fn start_with_timers(
        config: SipConfig,
        timers: SipTimers,
    ) -> Result<(SipEndpoint, IncomingCalls), SipError> {
        let (core, rx) = endpoint::EndpointCore::start(config, timers).await?;
        Ok((SipEndpoint { core }, IncomingCalls { rx }))
    }

    /// Places an outgoing call: sends the INVITE and returns. Provisional
    /// responses come as [`CallEvent::Progress`], the answer as
    /// [`CallEvent::Answered`] (we ACK it), a refusal as
    /// [`CallEvent::Rejected`]. [`CallSignaling::hangup`] cancels a call
    /// still ringing (CANCEL) or ends an answered one (BYE); BYE from the
    /// callee ends it with [`EndReason::RemoteBye`]. `ring`, `answer` and
    /// `reject` are for incoming calls only.
    pub async fn dial(&self, request: DialRequest) -> Result<OutgoingCall, SipError> {
        let (call, events) = call::dial::dial(&self.core, request).await?;
        Ok(OutgoingCall {
            signaling: CallSignaling {
                handle: Arc::new(call::CallHandle { call }),
            },
            events,
        })
    }

    /// Serves one SIP-over-WebSocket connection until its incoming frames
    /// end or the endpoint shuts down. INVITEs on it become calls with
    /// [`Transport::Ws`]; responses and our in-dialog requests go back over
    /// it; when it ends, its calls end
    /// ([`EndReason::TransportError`]).
    pub async fn serve_websocket(&self, connection: WsConnection) {
        if self.core.is_shut_down() {
            return;
        }
        net::ws::serve(
            connection,
            self.core.ingress.clone(),
            self.core.cancel.clone(),
        )
        .await
    }

    /// The address a transport is really bound to (port 0 resolved).
    pub fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.core.local_addr(transport)
    }

    /// SIP messages received and sent since start, by method and status code.
    pub fn stats(&self) -> SipStats {
        self.core.counters.snapshot()
    }

    /// Calls the endpoint is tracking right now: from the INVITE until the
    /// dialog is over (BYE exchanged, final error response sent).
    pub fn live_dialogs(&self) -> usize {
        self.core.live_dialogs()
    }

    /// Stops listening and ends the stack. Calls still up are not hung up
    /// here: the engine sends their BYEs first. Their event streams end with
    /// [`EndReason::Shutdown`], and [`IncomingCalls::recv`] returns `None`.
    pub async fn shutdown(&self) {
        self.core.shutdown().await
    }
}

/// New calls, in arrival order.
pub struct IncomingCalls {
    rx: mpsc::Receiver<IncomingCall>,
}

impl IncomingCalls {
    pub async fn recv(&mut self) -> Option<IncomingCall> {
        self.rx.recv().await
    }
}

/// A new INVITE: a handle to drive it and its event stream.
pub struct IncomingCall {
    pub signaling: CallSignaling,
    pub events: CallEvents,
}

/// Drives one call's signalling. Cheap to clone.
///
/// When the last clone is dropped while the call is still up, the call is
/// hung up (480 or BYE) so it cannot leak.
#[derive(Clone)]
pub struct CallSignaling {
    handle: Arc<call::CallHandle>,
}

impl CallSignaling {
    fn call(&self) -> &call::Call {
        &self.handle.call
    }

    /// Our id for this call, unique in the process; used in logs and APIs.
    /// It is also our dialog tag (To tag), so it can be found in SIP traces.
    pub fn id(&self) -> &str {
        &self.call().id
    }
    /// The SIP Call-ID header.
    pub fn sip_call_id(&self) -> &str {
        &self.call().info.sip_call_id
    }
    /// The From URI, e.g. `sip:alice@example.com`.
    pub fn from(&self) -> &str {
        &self.call().info.from
    }
    /// The To URI.
    pub fn to(&self) -> &str {
        &self.call().info.to
    }
    /// The Request-URI user part (percent-decoded, user parameters such as
    /// `;phone-context` left out): what rules match on.
    pub fn destination(&self) -> &str {
        &self.call().info.destination
    }
    /// The whole Request-URI.
    pub fn request_uri(&self) -> &str {
        &self.call().info.request_uri
    }
    /// Every header of the INVITE, name and value, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.call().info.headers
    }
    pub fn transport(&self) -> Transport {
        self.call().info.transport
    }
    /// Where the INVITE came from (source address of the packet/connection).
    pub fn remote_addr(&self) -> SocketAddr {
        self.call().info.remote_addr
    }
    /// The SDP offer in the INVITE body, if any.
    pub fn offer(&self) -> Option<&[u8]> {
        self.call().info.offer.as_deref()
    }
    pub fn state(&self) -> CallState {
        self.call().state()
    }
    /// Sends 180 Ringing.
    pub async fn ring(&self) -> Result<(), SipError> {
        self.call().ring()
    }
    /// Sends 183 Session Progress with `sdp`: the caller hears our media
    /// before the call is answered (no PRACK: the 183 is not reliable).
    pub async fn early_media(&self, sdp: String) -> Result<(), SipError> {
        self.call().early_media(sdp)
    }
    /// Sends 200 OK with `sdp` as body (and extra headers, e.g. `X-` ones).
    /// Returns once handed to the INVITE transaction; the stack retransmits
    /// it until the ACK comes ([`CallEvent::Confirmed`]) or gives up
    /// ([`EndReason::AckTimeout`]).
    pub async fn answer(
        &self,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), SipError> {
        self.call().answer(sdp, headers)
    }
    /// Sends a final error response (e.g. 404, 486, 488, 500) to the INVITE.
    /// `reason` replaces the standard reason phrase.
    pub async fn reject(&self, code: u16, reason: Option<&str>) -> Result<(), SipError> {
        self.call().reject(code, reason)
    }
    /// Ends the call from our side: BYE when answered (returns when the BYE
    /// got its response or timed out), otherwise a 480 final response (an
    /// outgoing call still ringing is cancelled). Idempotent.
    pub async fn hangup(&self, headers: Vec<(String, String)>) -> Result<(), SipError> {
        self.handle.call.clone().hangup(headers).await
    }
}

/// Signalling events of one call. Ends (`None`) after [`CallEvent::Ended`]
/// (or [`CallEvent::Rejected`], for an outgoing call never answered).
pub struct CallEvents {
    rx: mpsc::UnboundedReceiver<CallEvent>,
}

impl CallEvents {
    pub async fn recv(&mut self) -> Option<CallEvent> {
        self.rx.recv().await
    }
}
