//! Outgoing calls (UAC): the INVITE, its client transaction, CANCEL.
//!
//! rsipstack's client INVITE transaction retransmits over UDP, ACKs every
//! final response itself (the 2xx ACK too, and again for each retransmitted
//! 2xx while it absorbs them for 64*T1), and reports Timer B as a 408.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rsipstack::sip::{
    typed, Allow, CSeq, CallId, Contact, ContentLength, ContentType, From, Header, Headers, Host,
    MaxForwards, Method, Param, Request, Response, Route, Scheme, SipMessage, StatusCodeKind, To,
    Transport as WireTransport, Uri, UserAgent, Version, Via,
};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::dialog::{Dialog, Flow, Peer};
use super::{Call, CallInfo, Machine, Side, ID_LEN};
use crate::endpoint::EndpointCore;
use crate::net::tcp;
use crate::text::{check_extra_headers, normalized, random_token, uri_user};
use crate::{message, CallEvent, CallEvents, CallState, DialRequest, SipError, Transport};

/// Places the call: sends the INVITE, then its transaction runs on its own.
pub(crate) async fn dial(
    core: &Arc<EndpointCore>,
    request: DialRequest,
) -> Result<(Arc<Call>, CallEvents), SipError> {
    if core.is_shut_down() {
        return Err(SipError::InvalidState("the endpoint shut down"));
    }
    check_extra_headers(&request.headers)?;
    let target = parse_target(&request.uri)?;
    let transport = target_transport(&target)?;
    let remote = resolve(&target).await?;
    let (from_party, from_uri) = parse_from(&request.from)?;
    let (flow, local) = open_flow(core, transport, remote).await?;

    let id = random_token(ID_LEN);
    let call_id = format!("{}@{}", random_token(20), local.ip());
    let local_party = format!("{from_party};tag={id}");
    let to_party = format!("<{target}>");
    let dialog = Dialog::new(
        call_id.clone(),
        local_party.clone(),
        flow,
        local,
        Peer {
            tag: String::new(),
            party: to_party.clone(),
            target: target.clone(),
            route_set: Vec::new(),
        },
    );
    let cseq = rand::random_range(1..10_000);
    let invite = build_invite(&InviteParts {
        target: &target,
        via: &via(&dialog),
        from: &local_party,
        to: &to_party,
        call_id: &call_id,
        cseq,
        contact: &dialog.contact,
        user_agent: &core.user_agent,
        extra: &request.headers,
        sdp: &request.sdp,
    });
    let mut tx = client_transaction(core, &dialog.flow, remote, invite.clone())?;

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let mut machine = Machine::new(tx.tu_sender.clone(), events_tx);
    machine.local_cseq = cseq;
    machine.local_sdp = Some(request.sdp);
    let request_uri = target.to_string();
    let info = CallInfo {
        sip_call_id: call_id,
        from: from_uri,
        to: request_uri.clone(),
        destination: uri_user(&request_uri),
        request_uri,
        headers: invite
            .headers
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect(),
        transport,
        remote_addr: remote,
        offer: None,
    };
    let call = Arc::new(Call {
        id,
        info,
        dialog,
        core: core.clone(),
        invite_key: tx.key.clone(),
        invite,
        side: Side::Outgoing { remote },
        origin: None,
        machine: Mutex::new(machine),
        settled: watch::Sender::new(false),
        ended: CancellationToken::new(),
    });
    core.registry.insert(call.clone());
    if let Err(e) = tx.send().await {
        call.retire();
        return Err(SipError::Stack(format!("cannot send the INVITE: {e}")));
    }
    debug!(call = %call.id, target = %call.info.request_uri, "outgoing call");
    if let Flow::Tcp(connection) = &call.dialog.flow {
        if let Some(closed) = connection.cancel_token() {
            tokio::spawn(super::invite::watch_connection(call.clone(), closed));
        }
    }
    tokio::spawn(drive(call.clone(), tx));
    Ok((call, CallEvents { rx: events_rx }))
}

/// `sip:` URIs only: `sips:` needs TLS, which we do not speak.
fn parse_target(uri: &str) -> Result<Uri, SipError> {
    let target = Uri::try_from(uri.trim())
        .map_err(|e| SipError::InvalidArgument(format!("bad URI {uri:?}: {e}")))?;
    if target.scheme != Some(Scheme::Sip) {
        return Err(SipError::InvalidArgument(format!(
            "{uri:?}: only sip: URIs can be dialled"
        )));
    }
    Ok(normalized(target))
}

fn target_transport(target: &Uri) -> Result<Transport, SipError> {
    let transport = target.params.iter().find_map(|p| match p {
        Param::Transport(t) => Some(*t),
        _ => None,
    });
    match transport {
        None | Some(WireTransport::Udp) => Ok(Transport::Udp),
        Some(WireTransport::Tcp) => Ok(Transport::Tcp),
        Some(other) => Err(SipError::InvalidArgument(format!(
            "transport {other} is not supported"
        ))),
    }
}

/// The target's address: an IP, or a name looked up in A/AAAA records
/// (no NAPTR/SRV), port 5060 unless given.
async fn resolve(target: &Uri) -> Result<SocketAddr, SipError> {
    let port = target.host_with_port.port.map_or(5060, |p| p.value());
    match &target.host_with_port.host {
        Host::IpAddr(ip) => Ok(SocketAddr::new(*ip, port)),
        Host::Domain(domain) => tokio::net::lookup_host((domain.to_string(), port))
            .await
            .map_err(|e| SipError::Stack(format!("cannot resolve {domain}: {e}")))?
            .next()
            .ok_or_else(|| SipError::Stack(format!("{domain} has no address"))),
    }
}

/// Our From: a SIP URI, with a display name or not, without a tag (ours is
/// added). Returns the header value to use and the bare URI.
fn parse_from(from: &str) -> Result<(String, String), SipError> {
    let bad = |why: &str| SipError::InvalidArgument(format!("bad From {from:?}: {why}"));
    if from.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(bad("line break"));
    }
    let parsed = typed::From::parse(from.trim()).map_err(|e| bad(&e.to_string()))?;
    if parsed.tag().is_some() {
        return Err(bad("the tag is ours to choose"));
    }
    let party = if from.contains('<') {
        from.trim().to_string()
    } else {
        format!("<{}>", from.trim())
    };
    Ok((party, normalized(parsed.uri).to_string()))
}

async fn open_flow(
    core: &Arc<EndpointCore>,
    transport: Transport,
    remote: SocketAddr,
) -> Result<(Flow, SocketAddr), SipError> {
    if transport == Transport::Udp {
        let port = core
            .udp_port()
            .ok_or(SipError::InvalidState("no UDP listener to call from"))?;
        let local = SocketAddr::new(core.local_ips.for_peer(remote.ip()), port);
        return Ok((Flow::Udp, local));
    }
    let connection = tcp::connect(remote, core.ingress.clone(), core.cancel.child_token())
        .await
        .map_err(|e| SipError::Stack(format!("cannot connect to {remote}: {e}")))?;
    let mut local = connection
        .get_addr()
        .get_socketaddr()
        .map_err(|e| SipError::Stack(e.to_string()))?;
    // Our listener, if any, is where new connections reach us.
    if let Some(port) = core.tcp_port() {
        local.set_port(port);
    }
    Ok((Flow::Tcp(connection), local))
}

fn via(dialog: &Dialog) -> String {
    format!(
        "SIP/2.0/{} {};branch=z9hG4bK{};rport",
        dialog.flow.transport(),
        dialog.local(),
        random_token(16)
    )
}

struct InviteParts<'a> {
    target: &'a Uri,
    via: &'a str,
    from: &'a str,
    to: &'a str,
    call_id: &'a str,
    cseq: u32,
    contact: &'a str,
    user_agent: &'a str,
    extra: &'a [(String, String)],
    sdp: &'a str,
}

fn build_invite(parts: &InviteParts<'_>) -> Request {
    let mut headers = Headers::default();
    headers.push(Header::Via(Via::new(parts.via)));
    headers.push(Header::MaxForwards(MaxForwards::new("70")));
    headers.push(Header::From(From::new(parts.from)));
    headers.push(Header::To(To::new(parts.to)));
    headers.push(Header::CallId(CallId::new(parts.call_id)));
    headers.push(Header::CSeq(CSeq::new(format!("{} INVITE", parts.cseq))));
    headers.push(Header::Contact(Contact::new(parts.contact)));
    headers.push(Header::Allow(Allow::new(message::ALLOW)));
    headers.push(Header::UserAgent(UserAgent::new(parts.user_agent)));
    message::add_extra(&mut headers, parts.extra);
    headers.push(Header::ContentType(ContentType::new("application/sdp")));
    headers.push(Header::ContentLength(ContentLength::from(
        parts.sdp.len() as u32
    )));
    Request {
        method: Method::Invite,
        uri: parts.target.clone(),
        version: Version::V2,
        headers,
        body: parts.sdp.as_bytes().to_vec(),
    }
}

/// A CANCEL for `invite` (RFC 3261 §9.1): same Request-URI, top Via,
/// Call-ID, From, To and Route, CSeq number with method CANCEL.
fn build_cancel(invite: &Request, user_agent: &str) -> Request {
    let mut headers = Headers::default();
    let mut cseq_seen = false;
    for header in invite.headers.iter() {
        match header {
            Header::Via(_) | Header::From(_) | Header::To(_) | Header::CallId(_) => {
                headers.push(header.clone())
            }
            Header::Route(route) => headers.push(Header::Route(Route::new(route.value()))),
            Header::CSeq(cseq) if !cseq_seen => {
                cseq_seen = true;
                let number = cseq.value().split_whitespace().next().unwrap_or("1");
                headers.push(Header::CSeq(CSeq::new(format!("{number} CANCEL"))));
            }
            _ => {}
        }
    }
    headers.push(Header::MaxForwards(MaxForwards::new("70")));
    headers.push(Header::UserAgent(UserAgent::new(user_agent)));
    headers.push(Header::ContentLength(ContentLength::from(0u32)));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        version: Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// A client transaction for the outgoing call's INVITE or CANCEL: on the
/// call's TCP connection, or our UDP socket to `remote`.
fn client_transaction(
    core: &EndpointCore,
    flow: &Flow,
    remote: SocketAddr,
    request: Request,
) -> Result<Transaction, SipError> {
    let key = TransactionKey::from_request(&request, TransactionRole::Client)
        .map_err(|e| SipError::Stack(e.to_string()))?;
    let (connection, destination) = match flow {
        Flow::Udp => (
            core.udp_connection(),
            Some(SipAddr {
                r#type: Some(WireTransport::Udp),
                addr: remote.into(),
            }),
        ),
        Flow::Tcp(connection) | Flow::Ws { connection, .. } => (Some(connection.clone()), None),
    };
    let mut tx = Transaction::new_client(key, request, core.stack.clone(), connection);
    tx.destination = destination;
    Ok(tx)
}

/// Runs the INVITE client transaction to its end (Timer M after a 2xx).
async fn drive(call: Arc<Call>, mut tx: Transaction) {
    let core = call.core.clone();
    core.until_shutdown(async {
        while let Some(message) = tx.receive().await {
            if let SipMessage::Response(response) = message {
                call.on_response(&response);
            }
        }
    })
    .await;
    call.on_dial_done();
}

impl Call {
    fn remote(&self) -> Option<SocketAddr> {
        match self.side {
            Side::Outgoing { remote } => Some(remote),
            Side::Incoming { .. } => None,
        }
    }

    /// A response to our INVITE (the transaction has ACKed a final one).
    fn on_response(self: &Arc<Self>, response: &Response) {
        let status = response.status_code.code();
        let sdp = (!response.body.is_empty()).then(|| response.body.clone());
        match response.status_code.kind() {
            StatusCodeKind::Provisional => {
                let cancel_now = {
                    let mut machine = self.lock();
                    machine.provisional = true;
                    if status > 100 && machine.state == CallState::Incoming {
                        machine.emit(CallEvent::Progress { status, sdp });
                    }
                    std::mem::take(&mut machine.cancel_pending)
                };
                if cancel_now {
                    let call = self.clone();
                    tokio::spawn(async move {
                        let _ = call.send_cancel().await;
                    });
                }
            }
            StatusCodeKind::Successful => {
                self.settled.send_replace(true);
                let mut machine = self.lock();
                if machine.answered {
                    // A retransmission (rsipstack has ACKed it again).
                    return;
                }
                machine.answered = true;
                self.dialog.learn_from_2xx(response);
                if machine.state == CallState::Incoming {
                    machine.state = CallState::Confirmed;
                    machine.emit(CallEvent::Answered { sdp });
                    debug!(call = %self.id, status, "answered");
                    return;
                }
                // We hung up while it rang and the 2xx crossed our CANCEL:
                // the dialog exists, end it (RFC 3261 §15).
                drop(machine);
                let call = self.clone();
                tokio::spawn(async move {
                    let _ = call.send_bye(&[]).await;
                    call.retire();
                });
            }
            _ => {
                self.settled.send_replace(true);
                let reason = response
                    .wire_reason
                    .clone()
                    .unwrap_or_else(|| response.status_code.text().to_string());
                let rejected = self.lock().finish(CallEvent::Rejected { status, reason });
                if rejected {
                    debug!(call = %self.id, status, "rejected");
                }
                self.retire();
            }
        }
    }

    /// The INVITE client transaction is over.
    fn on_dial_done(&self) {
        self.settled.send_replace(true);
        let ended = {
            let mut machine = self.lock();
            machine.invite_tx = None;
            // Without any final response (shutdown or a stopped transaction).
            machine.state == CallState::Incoming
                && machine.finish(CallEvent::Rejected {
                    status: 408,
                    reason: "Request Timeout".into(),
                })
        };
        if ended {
            self.retire();
        }
    }

    /// Hangs up an outgoing call that is still ringing: CANCEL (now, or
    /// from `on_response` once a provisional response allows it), then wait
    /// for the INVITE's final response: 487, or a 2xx that crossed the
    /// CANCEL (ended with a BYE by `on_response`).
    pub(super) async fn cancel(self: &Arc<Self>, now: bool) -> Result<(), SipError> {
        let result = if now {
            self.send_cancel().await
        } else {
            Ok(())
        };
        // RFC 3261 §9.1: no final response within 64*T1 of the CANCEL: the
        // INVITE is over anyway.
        let wait = self.core.timers.t1 * 64 + self.core.timers.t4;
        if tokio::time::timeout(wait, self.wait_until_settled())
            .await
            .is_err()
        {
            self.stop_invite_transaction(&self.lock());
            self.retire();
        }
        result
    }

    async fn send_cancel(&self) -> Result<(), SipError> {
        let remote = self
            .remote()
            .ok_or(SipError::InvalidState("not an outgoing call"))?;
        let cancel = build_cancel(&self.invite, &self.core.user_agent);
        let mut tx = client_transaction(&self.core, &self.dialog.flow, remote, cancel)?;
        let work = async {
            tx.send()
                .await
                .map_err(|e| SipError::Stack(e.to_string()))?;
            while let Some(message) = tx.receive().await {
                if let SipMessage::Response(response) = message {
                    if response.status_code.kind() != StatusCodeKind::Provisional {
                        debug!(call = %self.id, status = %response.status_code, "CANCEL answered");
                        return Ok(());
                    }
                }
            }
            Ok(())
        };
        self.core
            .until_shutdown(work)
            .await
            .unwrap_or(Err(SipError::InvalidState("the endpoint shut down")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(parse_target("sip:bob@192.0.2.1").is_ok());
        assert!(parse_target("sips:bob@192.0.2.1").is_err());
        assert!(parse_target("tel:+15551234").is_err());
        assert!(parse_target("garbage").is_err());
        let tcp = parse_target("sip:bob@192.0.2.1:5070;transport=tcp").unwrap();
        assert_eq!(target_transport(&tcp).unwrap(), Transport::Tcp);
        let tls = parse_target("sip:bob@192.0.2.1;transport=tls").unwrap();
        assert!(target_transport(&tls).is_err());
    }

    #[test]
    fn from_values() {
        let (party, uri) = parse_from("sip:ivr@example.com").unwrap();
        assert_eq!(party, "<sip:ivr@example.com>");
        assert_eq!(uri, "sip:ivr@example.com");
        let (party, _) = parse_from("\"IVR\" <sip:ivr@example.com>").unwrap();
        assert_eq!(party, "\"IVR\" <sip:ivr@example.com>");
        assert!(parse_from("<sip:ivr@example.com>;tag=1").is_err());
        assert!(parse_from("sip:a@b\r\nVia: x").is_err());
    }

    #[test]
    fn cancel_matches_the_invite() {
        let invite = build_invite(&InviteParts {
            target: &Uri::try_from("sip:bob@192.0.2.1").unwrap(),
            via: "SIP/2.0/UDP 192.0.2.2:5060;branch=z9hG4bKabc;rport",
            from: "<sip:a@b>;tag=x",
            to: "<sip:bob@192.0.2.1>",
            call_id: "c@d",
            cseq: 7,
            contact: "<sip:192.0.2.2:5060>",
            user_agent: "t",
            extra: &[],
            sdp: "v=0\r\n",
        });
        let cancel = build_cancel(&invite, "t");
        let text = cancel.to_string();
        assert!(text.starts_with("CANCEL sip:bob@192.0.2.1 SIP/2.0\r\n"));
        assert!(text.contains("branch=z9hG4bKabc"));
        assert!(text.contains("CSeq: 7 CANCEL\r\n"));
        assert!(text.contains("Content-Length: 0\r\n"));
        assert_eq!(
            TransactionKey::from_request(&cancel, TransactionRole::Client)
                .unwrap()
                .to_string()
                .replace("CANCEL", "INVITE"),
            TransactionKey::from_request(&invite, TransactionRole::Client)
                .unwrap()
                .to_string()
        );
    }
}
