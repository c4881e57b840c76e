//! SIP over WebSocket (RFC 7118): one connection the HTTP server accepted
//! and handed over as frames ([`crate::WsConnection`]), so this crate knows
//! nothing of the HTTP stack.
//!
//! Each connection is an rsipstack `ChannelConnection`: what the
//! transaction layer sends on it (responses, our BYE and INFO, retransmitted
//! final responses) arrives on a channel and goes out as one text frame per
//! message. Received frames are one SIP message each (the WebSocket frames
//! them, so Content-Length is optional as in a datagram) and go through
//! `wire` like UDP and TCP messages: a malformed request gets a 400 and the
//! connection carries on. When the peer's side ends (the frames stop) or the
//! endpoint shuts down, the connection's token is cancelled, and the calls
//! that arrived on it end with `EndReason::TransportError`.

use std::sync::Arc;

use rsipstack::sip::Transport as WireTransport;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::ingress::Ingress;
use crate::{WsConnection, WsFrame};

const KEEPALIVE_PING: &[u8] = b"\r\n\r\n";
const KEEPALIVE_PONG: &str = "\r\n";

/// Serves `connection` until the peer's frames end or `cancel` fires.
pub(crate) async fn serve(
    connection: WsConnection,
    ingress: Arc<Ingress>,
    cancel: CancellationToken,
) {
    let WsConnection {
        remote,
        local,
        secure,
        mut incoming,
        outgoing,
    } = connection;
    let transport = if secure {
        WireTransport::Wss
    } else {
        WireTransport::Ws
    };
    let flow = cancel.child_token();
    // rsipstack reads nothing from a channel we do not serve; its receiving
    // side stays unused.
    let (_unused, unused_rx) = mpsc::unbounded_channel();
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<TransportEvent>();
    let address = SipAddr {
        r#type: Some(transport),
        addr: remote.into(),
    };
    let channel =
        match ChannelConnection::create_connection(unused_rx, sent_tx, address, Some(flow.clone()))
            .await
        {
            Ok(channel) => channel,
            Err(e) => {
                debug!(%remote, error = %e, "cannot set up a WebSocket connection");
                return;
            }
        };
    let sip_connection = SipConnection::Channel(channel);
    debug!(%remote, %local, secure, "SIP WebSocket connection open");
    loop {
        tokio::select! {
            _ = flow.cancelled() => break,
            frame = incoming.recv() => {
                let Some(frame) = frame else { break };
                let raw = match &frame {
                    WsFrame::Text(text) => text.as_bytes(),
                    WsFrame::Binary(bytes) => bytes.as_slice(),
                };
                if raw == KEEPALIVE_PING {
                    if outgoing.send(WsFrame::Text(KEEPALIVE_PONG.into())).await.is_err() {
                        break;
                    }
                    continue;
                }
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Some(reply) = ingress
                    .receive_at(raw, true, &sip_connection, remote, Some(local))
                    .await
                {
                    let reply = WsFrame::Text(String::from_utf8_lossy(&reply).into_owned());
                    if outgoing.send(reply).await.is_err() {
                        break;
                    }
                }
            }
            sent = sent_rx.recv() => {
                // The sender lives in `sip_connection`, so this never ends.
                let Some(TransportEvent::Incoming(message, _, _)) = sent else { continue };
                if outgoing.send(WsFrame::Text(message.to_string())).await.is_err() {
                    break;
                }
            }
        }
    }
    // Tell the calls on this connection; rsipstack's sends on it fail from
    // now on.
    flow.cancel();
    debug!(%remote, "SIP WebSocket connection closed");
}
