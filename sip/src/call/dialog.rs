//! A dialog's identity and route (RFC 3261 §12), and the requests we send
//! in it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{
    CSeq, CallId, ContentLength, From, Header, Headers, MaxForwards, Method, Request, Response,
    Route, SipMessage, StatusCodeKind, To, Uri, UserAgent, Version, Via,
};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipConnection;

use crate::message;
use crate::text::{normalized, random_token, split_list};
use crate::SipError;

/// How the dialog's requests travel.
pub(crate) enum Flow {
    /// Over our UDP socket, to the remote target (or first route).
    Udp,
    /// Over a TCP connection: the one an incoming INVITE came on, or the
    /// one we opened for an outgoing call.
    Tcp(SipConnection),
    /// Over the WebSocket connection an incoming INVITE came on (RFC 7118);
    /// `secure`: WSS.
    Ws {
        connection: SipConnection,
        secure: bool,
    },
}

impl Flow {
    pub(crate) fn transport(&self) -> &'static str {
        match self {
            Flow::Udp => "UDP",
            Flow::Tcp(_) => "TCP",
            Flow::Ws { secure: false, .. } => "WS",
            Flow::Ws { secure: true, .. } => "WSS",
        }
    }

    /// The connection requests travel on, for connection-oriented flows.
    pub(crate) fn connection(&self) -> Option<&SipConnection> {
        match self {
            Flow::Udp => None,
            Flow::Tcp(connection) | Flow::Ws { connection, .. } => Some(connection),
        }
    }
}

pub(crate) struct Dialog {
    pub(crate) call_id: String,
    /// Our From in requests we send: the INVITE's To with our tag (we
    /// answered it), or the INVITE's From (we sent it).
    local_party: String,
    pub(crate) flow: Flow,
    /// Our address on this flow: Via sent-by.
    local: SocketAddr,
    /// Our Contact header value.
    pub(crate) contact: String,
    /// What we learn of the peer: fixed by an incoming INVITE, set by the
    /// 2xx for an outgoing one.
    peer: Mutex<Peer>,
}

/// The peer's side of the dialog.
pub(crate) struct Peer {
    pub(crate) tag: String,
    /// Their To in requests we send.
    pub(crate) party: String,
    /// Where requests go: the peer's Contact.
    pub(crate) target: Uri,
    /// Route headers for our requests, in order.
    pub(crate) route_set: Vec<String>,
}

impl Dialog {
    pub(crate) fn new(
        call_id: String,
        local_party: String,
        flow: Flow,
        local: SocketAddr,
        peer: Peer,
    ) -> Dialog {
        let contact = match flow {
            Flow::Udp => format!("<sip:{local}>"),
            Flow::Tcp(_) => format!("<sip:{local};transport=tcp>"),
            Flow::Ws { .. } => format!("<sip:{local};transport=ws>"),
        };
        Dialog {
            call_id,
            local_party,
            flow,
            local,
            contact,
            peer: Mutex::new(peer),
        }
    }

    fn peer(&self) -> MutexGuard<'_, Peer> {
        self.peer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a request with this Call-ID and From tag belongs here. Until
    /// the 2xx to our INVITE is processed the peer's tag is unknown: a BYE
    /// that overtakes the 2xx (they are handled on different tasks) must
    /// still find its dialog.
    pub(crate) fn matches(&self, call_id: &str, remote_tag: &str) -> bool {
        if self.call_id != call_id {
            return false;
        }
        let peer = self.peer();
        peer.tag.is_empty() || peer.tag == remote_tag
    }

    /// Our Via sent-by.
    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// The dialog as a 2xx to our INVITE sets it (RFC 3261 §12.1.2): the
    /// peer's tag, its Contact as target, the Record-Route reversed.
    pub(crate) fn learn_from_2xx(&self, response: &Response) {
        let Ok(to) = response.to_header() else {
            return;
        };
        let mut peer = self.peer();
        if let Ok(Some(tag)) = to.tag() {
            peer.tag = tag.value().to_string();
        }
        peer.party = to.value().to_string();
        if let Some(contact) = response
            .typed_contact_headers()
            .ok()
            .and_then(|contacts| contacts.into_iter().next())
        {
            peer.target = normalized(contact.uri);
        }
        let mut route_set: Vec<String> = response
            .record_route_headers()
            .into_iter()
            .flat_map(|rr| split_list(rr.value()))
            .map(str::to_string)
            .collect();
        route_set.reverse();
        peer.route_set = route_set;
    }

    /// A request within the dialog (RFC 3261 §12.2.1.1). Loose routing:
    /// the Request-URI is the remote target, the route set goes in Route.
    pub(crate) fn request(
        &self,
        method: Method,
        cseq: u32,
        user_agent: &str,
        extra: &[(String, String)],
    ) -> Request {
        let transport = self.flow.transport();
        let peer = self.peer();
        let mut headers = Headers::default();
        headers.push(Header::Via(Via::new(format!(
            "SIP/2.0/{transport} {};branch=z9hG4bK{};rport",
            self.local,
            random_token(16)
        ))));
        headers.push(Header::MaxForwards(MaxForwards::new("70")));
        headers.push(Header::From(From::new(self.local_party.clone())));
        headers.push(Header::To(To::new(peer.party.clone())));
        headers.push(Header::CallId(CallId::new(self.call_id.clone())));
        headers.push(Header::CSeq(CSeq::new(format!("{cseq} {method}"))));
        for route in &peer.route_set {
            headers.push(Header::Route(Route::new(route.clone())));
        }
        headers.push(Header::UserAgent(UserAgent::new(user_agent)));
        message::add_extra(&mut headers, extra);
        headers.push(Header::ContentLength(ContentLength::from(0u32)));
        Request {
            method,
            uri: peer.target.clone(),
            version: Version::V2,
            headers,
            body: Vec::new(),
        }
    }

    /// Sends `request` on a client transaction and waits for its final
    /// response (rsipstack retransmits over UDP and reports Timer F as 408).
    pub(crate) async fn send(
        &self,
        stack: &Arc<EndpointInner>,
        request: Request,
    ) -> Result<Response, SipError> {
        let key = TransactionKey::from_request(&request, TransactionRole::Client)
            .map_err(|e| SipError::Stack(e.to_string()))?;
        // Over UDP, rsipstack picks our socket for the target's address.
        let connection = self.flow.connection().cloned();
        let mut tx = Transaction::new_client(key, request, stack.clone(), connection);
        tx.send()
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
        while let Some(message) = tx.receive().await {
            if let SipMessage::Response(response) = message {
                if response.status_code.kind() != StatusCodeKind::Provisional {
                    return Ok(response);
                }
            }
        }
        Err(SipError::Stack(
            "the transaction ended without a final response".into(),
        ))
    }
}
