//! A new INVITE: build the call, answer 100 at once, hand the call to the
//! engine, and drive the INVITE server transaction until it is over.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
use rsipstack::sip::{Accept, Header, Method, Request, SipMessage, StatusCode, To, Uri};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipConnection;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::dialog::{Dialog, Flow, Peer};
use super::{Call, CallHandle, CallInfo, Machine, Origin, Side, ID_LEN};
use crate::dispatch::spawn_reply;
use crate::endpoint::EndpointCore;
use crate::net::source;
use crate::text::{normalized, random_token, split_list, uri_user};
use crate::{message, CallEvents, CallSignaling, IncomingCall, Transport};

/// Takes a new INVITE (no To tag) from the dispatcher.
pub(crate) fn accept(core: &Arc<EndpointCore>, mut tx: Transaction) {
    let source = source::take(&mut tx.original);
    let local = source::take_local(&mut tx.original);
    if !is_sdp_or_empty(&tx.original) {
        // RFC 3261 §8.2.3: a body we cannot read.
        let mut response = message::response(&tx.original, StatusCode::UnsupportedMediaType, None);
        response
            .headers
            .push(Header::Accept(Accept::new(message::ACCEPT)));
        message::finish(&mut response, &core.user_agent, None);
        spawn_reply(core, tx, response);
        return;
    }
    if origin(&tx.original).is_some_and(|origin| core.registry.is_merged(&origin)) {
        // The same INVITE by another path (a forking proxy): RFC 3261
        // §8.2.2.2.
        debug!("merged INVITE: 482");
        let mut response = message::response(&tx.original, StatusCode::LoopDetected, None);
        message::finish(&mut response, &core.user_agent, None);
        spawn_reply(core, tx, response);
        return;
    }
    let (call, events) = match new_call(core, &tx, source, local) {
        Ok(call) => call,
        Err(reason) => {
            debug!(reason, "cannot take INVITE");
            let mut response =
                message::response(&tx.original, message::status(400, Some(reason)), None);
            message::finish(&mut response, &core.user_agent, None);
            spawn_reply(core, tx, response);
            return;
        }
    };
    core.registry.insert(call.clone());
    tokio::spawn(drive(call, tx, events));
}

fn origin(request: &Request) -> Option<Origin> {
    Some(Origin {
        call_id: request.call_id_header().ok()?.value().to_string(),
        from_tag: request.from_header().ok()?.tag().ok()??.value().to_string(),
        cseq: request.cseq_header().ok()?.seq().ok()?,
    })
}

fn is_sdp_or_empty(request: &Request) -> bool {
    if request.body.is_empty() {
        return true;
    }
    let content_type = request.headers.iter().find_map(|h| match h {
        Header::ContentType(content_type) => Some(content_type.value()),
        _ => None,
    });
    match content_type {
        Some(content_type) => content_type
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/sdp")),
        // No Content-Type (RFC 3261 requires one): accept what looks like SDP.
        None => request.body.starts_with(b"v=0"),
    }
}

fn new_call(
    core: &Arc<EndpointCore>,
    tx: &Transaction,
    source: Option<SocketAddr>,
    local: Option<SocketAddr>,
) -> Result<(Arc<Call>, CallEvents), &'static str> {
    let request = &tx.original;
    let connection = tx.connection.clone().ok_or("no connection")?;
    let (transport, remote_addr, local, flow) = match &connection {
        SipConnection::Udp(_) => {
            let remote = match source {
                Some(source) => source,
                None => via_source(request).ok_or("no source address")?,
            };
            let port = core.udp_port().ok_or("no UDP listener")?;
            let ip = core.local_ips.for_peer(remote.ip());
            (Transport::Udp, remote, SocketAddr::new(ip, port), Flow::Udp)
        }
        SipConnection::Tcp(_) => {
            let remote = connection
                .get_remote_addr()
                .and_then(|a| a.get_socketaddr().ok())
                .ok_or("no remote address")?;
            // The connection's own local address (the interface the peer
            // reached), with the listener's port for new connections.
            let ip = connection
                .get_addr()
                .get_socketaddr()
                .map_err(|_| "no local address")?
                .ip();
            let port = core.tcp_port().ok_or("no TCP listener")?;
            let flow = Flow::Tcp(connection.clone());
            (Transport::Tcp, remote, SocketAddr::new(ip, port), flow)
        }
        // Our channels are WebSocket connections (`net::ws`).
        SipConnection::Channel(channel) => {
            let remote = channel
                .get_addr()
                .get_socketaddr()
                .map_err(|_| "no remote address")?;
            let secure = channel.get_addr().r#type == Some(rsipstack::sip::Transport::Wss);
            let local = local.ok_or("no local address")?;
            let flow = Flow::Ws {
                connection: connection.clone(),
                secure,
            };
            (Transport::Ws, remote, local, flow)
        }
        _ => return Err("unsupported transport"),
    };

    let from = request.from_header().map_err(|_| "no From")?;
    let from_typed = from.typed().map_err(|_| "bad From")?;
    let remote_tag = from_typed
        .tag()
        .map(|t| t.value().to_string())
        .ok_or("no From tag")?;
    let to = request.to_header().map_err(|_| "no To")?;
    let to_typed = to.typed().map_err(|_| "bad To")?;
    let origin = origin(request).ok_or("no Call-ID, From tag or CSeq")?;
    let call_id = origin.call_id.clone();
    let cseq = origin.cseq;

    let id = random_token(ID_LEN);
    let tagged_to = To::new(format!("{};tag={id}", to.value()));
    let remote_target = request
        .typed_contact_headers()
        .ok()
        .and_then(|contacts| contacts.into_iter().next())
        .map(|contact| normalized(contact.uri))
        .or_else(|| fallback_target(transport, remote_addr))
        .ok_or("no usable Contact")?;
    let dialog = Dialog::new(
        call_id.clone(),
        tagged_to.value().to_string(),
        flow,
        local,
        Peer {
            tag: remote_tag,
            party: from.value().to_string(),
            target: remote_target,
            // RFC 3261 §12.1.1: the Record-Route as received, in order.
            route_set: request
                .record_route_headers()
                .into_iter()
                .flat_map(|rr| split_list(rr.value()))
                .map(str::to_string)
                .collect(),
        },
    );
    let request_uri = normalized(request.uri.clone()).to_string();
    let info = CallInfo {
        sip_call_id: call_id,
        from: normalized(from_typed.uri).to_string(),
        to: normalized(to_typed.uri).to_string(),
        destination: uri_user(&request_uri),
        request_uri,
        headers: request
            .headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect(),
        transport,
        remote_addr,
        offer: (!request.body.is_empty()).then(|| request.body.clone()),
    };
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let mut machine = Machine::new(tx.tu_sender.clone(), events_tx);
    machine.remote_cseq = cseq;
    let call = Arc::new(Call {
        id,
        info,
        dialog,
        core: core.clone(),
        invite: request.clone(),
        invite_key: tx.key.clone(),
        side: Side::Incoming { to: tagged_to },
        origin: Some(origin),
        machine: Mutex::new(machine),
        settled: watch::Sender::new(false),
        ended: CancellationToken::new(),
    });
    Ok((call, CallEvents { rx: events_rx }))
}

/// Where a UDP request came from per its Via (received/rport), when the
/// receive loop's note is missing.
fn via_source(request: &Request) -> Option<SocketAddr> {
    let via = request.via_header().ok()?;
    let (_, host_with_port) = SipConnection::parse_target_from_via(via).ok()?;
    host_with_port.try_into().ok()
}

/// A remote target for an INVITE without Contact (RFC 3261 makes Contact
/// mandatory; some agents forget it): where the INVITE came from.
fn fallback_target(transport: Transport, remote: SocketAddr) -> Option<Uri> {
    let uri = match transport {
        Transport::Tcp => format!("sip:{remote};transport=tcp"),
        Transport::Ws => format!("sip:{remote};transport=ws"),
        Transport::Udp => format!("sip:{remote}"),
    };
    Uri::try_from(uri.as_str()).ok()
}

/// Answers 100, hands the call to the engine, then runs the INVITE
/// transaction (responses queued by `Call`, ACK, CANCEL, timers) to its end.
async fn drive(call: Arc<Call>, mut tx: Transaction, events: CallEvents) {
    if let Err(e) = tx.send_trying().await {
        debug!(call = %call.id, error = %e, "cannot send 100 Trying");
    }
    if let Some(connection) = call.dialog.flow.connection() {
        if let Some(closed) = connection.cancel_token() {
            tokio::spawn(watch_connection(call.clone(), closed));
        }
    }
    debug!(
        call = %call.id,
        call_id = %call.info.sip_call_id,
        from = %call.info.from,
        destination = %call.info.destination,
        transport = call.info.transport.as_str(),
        "incoming call"
    );
    let incoming = IncomingCall {
        signaling: CallSignaling {
            handle: Arc::new(CallHandle { call: call.clone() }),
        },
        events,
    };
    if let Err(incoming) = call.core.deliver_call(incoming) {
        warn!(call = %call.id, "the engine is not taking calls: 503");
        // Before the handle drops, so it finds the call ended.
        let _ = call.reject(503, Some("Service Unavailable"));
        drop(incoming);
    }
    let core = call.core.clone();
    core.until_shutdown(async {
        while let Some(message) = tx.receive().await {
            if let SipMessage::Request(request) = message {
                match request.method {
                    Method::Ack => call.on_ack(),
                    Method::Cancel => call.on_cancel(),
                    _ => {}
                }
            }
        }
    })
    .await;
    call.on_invite_done().await;
}

/// Ends the call if its TCP or WebSocket connection closes first.
pub(super) async fn watch_connection(call: Arc<Call>, closed: CancellationToken) {
    tokio::select! {
        _ = closed.cancelled() => call.on_transport_closed(),
        _ = call.ended.cancelled() => {}
    }
}
