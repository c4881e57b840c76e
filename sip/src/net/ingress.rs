//! From received bytes to rsipstack: inspection, then the transaction layer.

use std::net::SocketAddr;
use std::sync::Arc;

use rsipstack::sip::{Method, SipMessage, Transport as WireTransport};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transport::{SipAddr, SipConnection};
use tracing::debug;

use super::source;
use crate::stats::Counters;
use crate::wire::{inspect, reject_head, Inspection};

pub(crate) struct Ingress {
    stack: Arc<EndpointInner>,
    server: String,
    counters: Arc<Counters>,
}

impl Ingress {
    pub(crate) fn new(
        stack: Arc<EndpointInner>,
        server: String,
        counters: Arc<Counters>,
    ) -> Ingress {
        Ingress {
            stack,
            server,
            counters,
        }
    }

    /// Handles one datagram (`datagram`) or stream frame from `source`,
    /// received on `connection`. Returns a stateless reply to send back.
    pub(crate) async fn receive(
        &self,
        raw: &[u8],
        datagram: bool,
        connection: &SipConnection,
        source: SocketAddr,
    ) -> Option<Vec<u8>> {
        self.receive_at(raw, datagram, connection, source, None)
            .await
    }

    /// [`Ingress::receive`] on a connection whose own local address says
    /// nothing useful (a WebSocket handed over by the HTTP server): `local`
    /// is our address there, recorded in INVITEs for Via and Contact.
    pub(crate) async fn receive_at(
        &self,
        raw: &[u8],
        datagram: bool,
        connection: &SipConnection,
        source: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Option<Vec<u8>> {
        match inspect(raw, datagram, &self.server) {
            Inspection::Message(message) => {
                self.counters.received(&message);
                self.deliver(message, connection, source, local).await;
                None
            }
            Inspection::Reply(reply) => {
                debug!(%source, "answering a malformed request statelessly");
                self.counters.malformed();
                self.counters.sent_raw_response(&reply);
                Some(reply)
            }
            Inspection::Ignore(why) => {
                debug!(%source, why, len = raw.len(), "dropping an unanswerable message");
                self.counters.malformed();
                None
            }
        }
    }

    /// A stateless reply to a stream message head that cannot be framed.
    pub(crate) fn reject_head(
        &self,
        head: &[u8],
        code: u16,
        reason: &'static str,
    ) -> Option<Vec<u8>> {
        self.counters.malformed();
        let reply = reject_head(head, code, reason, &self.server)?;
        self.counters.sent_raw_response(&reply);
        Some(reply)
    }

    async fn deliver(
        &self,
        message: SipMessage,
        connection: &SipConnection,
        source: SocketAddr,
        local: Option<SocketAddr>,
    ) {
        let transport = match connection {
            // rsipstack calls every channel UDP; ours carry WS or WSS in
            // their address.
            SipConnection::Channel(channel) => {
                channel.get_addr().r#type.unwrap_or(WireTransport::Ws)
            }
            _ => connection.transport(),
        };
        // Via received/rport (RFC 3261 §18.2.1, RFC 3581), as rsipstack's own
        // receive loops do.
        let mut message = match SipConnection::update_msg_received(message, source, transport) {
            Ok(message) => message,
            Err(e) => {
                debug!(%source, error = %e, "cannot update Via");
                return;
            }
        };
        if let SipMessage::Request(request) = &mut message {
            if request.method == Method::Invite {
                if transport == WireTransport::Udp {
                    source::stamp(request, source);
                }
                if let Some(local) = local {
                    source::stamp_local(request, local);
                }
            }
        }
        let from = SipAddr {
            r#type: Some(transport),
            addr: source.into(),
        };
        if let Err(e) = self
            .stack
            .on_received_message(message, connection.clone(), &from)
            .await
        {
            debug!(%source, error = %e, "transaction layer refused a message");
        }
    }
}
