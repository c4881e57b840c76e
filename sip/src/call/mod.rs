//! One call: its dialog, its state machine and the operations the engine
//! drives it with.
//!
//! The state lives behind a mutex that is never held across an await.
//! For an incoming call, responses to the INVITE go through the INVITE
//! transaction's own event queue (rsipstack's `TransactionEvent::Respond`),
//! which its driver task (`invite::drive`) processes in order with the ACK,
//! CANCEL and timers; an outgoing call's client transaction is driven by
//! `dial::drive`. Every transition that ends the call emits its last event
//! ([`CallEvent::Ended`], or [`CallEvent::Rejected`] for an outgoing call
//! never answered) exactly once and closes the event stream.

pub(crate) mod dial;
pub(crate) mod dialog;
pub(crate) mod in_dialog;
pub(crate) mod invite;
mod reinvite;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use rsipstack::sip::{Contact, Header, Method, Request, Response, RetryAfter, StatusCode, To};
use rsipstack::transaction::key::TransactionKey;
use rsipstack::transaction::transaction::{TransactionEvent, TransactionEventSender};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::endpoint::EndpointCore;
use crate::message;
use crate::text::{check_extra_headers, check_reason_phrase};
use crate::{CallEvent, CallState, EndReason, SipError, Transport};
use dialog::{Dialog, Flow};

/// Length of our call ids, which are also our dialog tags.
const ID_LEN: usize = 12;

/// What the engine reads about a call: fixed when the INVITE arrives (or
/// is sent).
pub(crate) struct CallInfo {
    pub(crate) sip_call_id: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) destination: String,
    pub(crate) request_uri: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) transport: Transport,
    pub(crate) remote_addr: SocketAddr,
    pub(crate) offer: Option<Vec<u8>>,
}

/// An incoming INVITE's identity before any dialog: Call-ID, From tag,
/// CSeq number (RFC 3261 §8.2.2.2).
pub(crate) struct Origin {
    pub(crate) call_id: String,
    pub(crate) from_tag: String,
    pub(crate) cseq: u32,
}

/// Which end of the INVITE we are.
pub(crate) enum Side {
    /// We received it. Every response carries this To: the INVITE's, with
    /// our tag.
    Incoming { to: To },
    /// We sent it, to this address.
    Outgoing { remote: SocketAddr },
}

pub(crate) struct Call {
    /// Our id, also our dialog tag.
    pub(crate) id: String,
    pub(crate) info: CallInfo,
    pub(crate) dialog: Dialog,
    pub(crate) core: Arc<EndpointCore>,
    /// The INVITE: responses are built from it (incoming), CANCEL is
    /// (outgoing).
    invite: Request,
    invite_key: TransactionKey,
    side: Side,
    /// Incoming calls: what a merged copy of the INVITE would repeat.
    pub(crate) origin: Option<Origin>,
    machine: Mutex<Machine>,
    /// Set once the INVITE transaction has its outcome: the ACK or Timer H
    /// (incoming; a BYE may not be sent before, RFC 3261 §15), the final
    /// response (outgoing).
    settled: watch::Sender<bool>,
    /// Cancelled when the call is over and out of the registry.
    pub(crate) ended: CancellationToken,
}

struct Machine {
    state: CallState,
    /// The INVITE transaction's event queue while it runs (responses,
    /// termination).
    invite_tx: Option<TransactionEventSender>,
    /// Our SDP (the answer we sent, or our offer), for re-INVITEs.
    local_sdp: Option<String>,
    local_cseq: u32,
    remote_cseq: u32,
    events: Option<mpsc::UnboundedSender<CallEvent>>,
    /// Outgoing: a provisional response came, so CANCEL may go (§9.1).
    provisional: bool,
    /// Outgoing: hung up before any provisional; CANCEL waits for one.
    cancel_pending: bool,
    /// Outgoing: a 2xx came (later ones are retransmissions).
    answered: bool,
}

impl Machine {
    fn new(invite_tx: TransactionEventSender, events: mpsc::UnboundedSender<CallEvent>) -> Machine {
        Machine {
            state: CallState::Incoming,
            invite_tx: Some(invite_tx),
            local_sdp: None,
            local_cseq: rand::random_range(1..10_000),
            remote_cseq: 0,
            events: Some(events),
            provisional: false,
            cancel_pending: false,
            answered: false,
        }
    }

    fn emit(&self, event: CallEvent) {
        if let Some(events) = &self.events {
            // The engine may have dropped its receiver: nothing to do.
            let _ = events.send(event);
        }
    }

    /// Ends the call with `last` as its last event and closes the event
    /// stream. False when it had already ended.
    fn finish(&mut self, last: CallEvent) -> bool {
        if self.state == CallState::Ended {
            return false;
        }
        self.state = CallState::Ended;
        self.emit(last);
        self.events = None;
        true
    }

    fn end(&mut self, reason: EndReason) -> bool {
        self.finish(CallEvent::Ended(reason))
    }
}

/// What `hangup` has to do once the state is updated.
enum Hangup {
    Nothing,
    Rejected,
    Bye {
        wait_for_ack: bool,
    },
    /// An outgoing call still ringing: CANCEL now, or when the first
    /// provisional response comes (`now` false).
    Cancel {
        now: bool,
    },
}

impl Call {
    fn lock(&self) -> MutexGuard<'_, Machine> {
        // Every critical section leaves the machine consistent.
        self.machine.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn state(&self) -> CallState {
        self.lock().state
    }

    fn incoming_to(&self) -> Result<&To, SipError> {
        match &self.side {
            Side::Incoming { to } => Ok(to),
            Side::Outgoing { .. } => Err(SipError::InvalidState("not an incoming call")),
        }
    }

    /// A response to the INVITE we received. Provisional (but 100) and 2xx
    /// responses create the dialog: Record-Route and our Contact (RFC 3261
    /// §12.1.1).
    fn invite_response(
        &self,
        to: &To,
        status: StatusCode,
        extra: &[(String, String)],
        sdp: Option<String>,
    ) -> Response {
        let code = status.code();
        let mut response = message::response(&self.invite, status, Some(to));
        if (101..300).contains(&code) {
            message::add_record_route(&mut response, &self.invite);
            response
                .headers
                .push(Header::Contact(Contact::new(self.dialog.contact.clone())));
        }
        if (200..300).contains(&code) {
            message::add_capabilities(&mut response);
        }
        message::add_extra(&mut response.headers, extra);
        let body = sdp.map(|sdp| ("application/sdp", sdp.into_bytes()));
        message::finish(&mut response, &self.core.user_agent, body);
        response
    }

    fn respond_to_invite(&self, machine: &Machine, response: Response) -> Result<(), SipError> {
        let tx = machine
            .invite_tx
            .as_ref()
            .ok_or(SipError::InvalidState("the INVITE transaction is over"))?;
        tx.send(TransactionEvent::Respond(response))
            .map_err(|_| SipError::InvalidState("the INVITE transaction is over"))
    }

    fn stop_invite_transaction(&self, machine: &Machine) {
        if let Some(tx) = &machine.invite_tx {
            let _ = tx.send(TransactionEvent::Terminate(self.invite_key.clone()));
        }
    }

    /// Out of the registry; watchers stop; a TCP connection we opened for
    /// an outgoing call closes.
    pub(crate) fn retire(&self) {
        self.core.registry.remove(&self.id);
        self.ended.cancel();
        if let (Side::Outgoing { .. }, Flow::Tcp(connection)) = (&self.side, &self.dialog.flow) {
            if let Some(token) = connection.cancel_token() {
                token.cancel();
            }
        }
    }

    fn require_incoming(machine: &Machine) -> Result<(), SipError> {
        match machine.state {
            CallState::Incoming => Ok(()),
            CallState::Answered | CallState::Confirmed => {
                Err(SipError::InvalidState("the call is already answered"))
            }
            CallState::Ended => Err(SipError::InvalidState("the call has ended")),
        }
    }

    // The responses below are built before taking the lock, to keep it
    // short; a state change in between only wastes the response.

    pub(crate) fn ring(&self) -> Result<(), SipError> {
        let to = self.incoming_to()?;
        let response = self.invite_response(to, StatusCode::Ringing, &[], None);
        let machine = self.lock();
        Self::require_incoming(&machine)?;
        self.respond_to_invite(&machine, response)
    }

    /// 183 Session Progress with our SDP: early media before the answer.
    pub(crate) fn early_media(&self, sdp: String) -> Result<(), SipError> {
        let to = self.incoming_to()?;
        let response =
            self.invite_response(to, StatusCode::SessionProgress, &[], Some(sdp.clone()));
        let mut machine = self.lock();
        Self::require_incoming(&machine)?;
        self.respond_to_invite(&machine, response)?;
        machine.local_sdp = Some(sdp);
        debug!(call = %self.id, "early media");
        Ok(())
    }

    pub(crate) fn answer(
        &self,
        sdp: String,
        headers: Vec<(String, String)>,
    ) -> Result<(), SipError> {
        let to = self.incoming_to()?;
        check_extra_headers(&headers)?;
        let response = self.invite_response(to, StatusCode::OK, &headers, Some(sdp.clone()));
        let mut machine = self.lock();
        Self::require_incoming(&machine)?;
        self.respond_to_invite(&machine, response)?;
        machine.state = CallState::Answered;
        machine.local_sdp = Some(sdp);
        debug!(call = %self.id, "answered");
        Ok(())
    }

    pub(crate) fn reject(&self, code: u16, reason: Option<&str>) -> Result<(), SipError> {
        let to = self.incoming_to()?;
        if !(300..700).contains(&code) {
            return Err(SipError::InvalidArgument(format!(
                "{code} is not a final error status"
            )));
        }
        if let Some(reason) = reason {
            check_reason_phrase(reason)?;
        }
        let response = self.invite_response(to, message::status(code, reason), &[], None);
        let mut machine = self.lock();
        Self::require_incoming(&machine)?;
        self.respond_to_invite(&machine, response)?;
        machine.end(EndReason::Local);
        drop(machine);
        debug!(call = %self.id, code, "rejected");
        self.retire();
        Ok(())
    }

    pub(crate) async fn hangup(
        self: Arc<Self>,
        headers: Vec<(String, String)>,
    ) -> Result<(), SipError> {
        check_extra_headers(&headers)?;
        let action = {
            let mut machine = self.lock();
            match (machine.state, &self.side) {
                (CallState::Ended, _) => Hangup::Nothing,
                (CallState::Incoming, Side::Incoming { to }) => {
                    let response = self.invite_response(
                        to,
                        StatusCode::TemporarilyUnavailable,
                        &headers,
                        None,
                    );
                    self.respond_to_invite(&machine, response)?;
                    machine.end(EndReason::Local);
                    Hangup::Rejected
                }
                (CallState::Incoming, Side::Outgoing { .. }) => {
                    machine.end(EndReason::Local);
                    let now = machine.provisional;
                    machine.cancel_pending = !now;
                    Hangup::Cancel { now }
                }
                (state @ (CallState::Answered | CallState::Confirmed), _) => {
                    machine.end(EndReason::Local);
                    Hangup::Bye {
                        wait_for_ack: state == CallState::Answered,
                    }
                }
            }
        };
        // The work goes on its own task: the BYE or CANCEL goes out even if
        // our caller stops waiting for it.
        let call = self.clone();
        let work = match action {
            Hangup::Nothing => return Ok(()),
            Hangup::Rejected => {
                debug!(call = %self.id, "hung up before answer (480)");
                self.retire();
                return Ok(());
            }
            Hangup::Bye { wait_for_ack } => tokio::spawn(async move {
                if wait_for_ack {
                    call.wait_until_settled().await;
                }
                let result = call.send_bye(&headers).await;
                call.retire();
                result
            }),
            Hangup::Cancel { now } => tokio::spawn(async move { call.cancel(now).await }),
        };
        work.await
            .map_err(|e| SipError::Stack(format!("hangup task failed: {e}")))?
    }

    async fn wait_until_settled(&self) {
        let mut settled = self.settled.subscribe();
        let _ = self
            .core
            .until_shutdown(settled.wait_for(|settled| *settled))
            .await;
    }

    /// Sends BYE and waits for its final response. Any final response (even
    /// 481, or the 408 of Timer F) ends the dialog (RFC 3261 §15.1.1).
    async fn send_bye(&self, headers: &[(String, String)]) -> Result<(), SipError> {
        let cseq = {
            let mut machine = self.lock();
            machine.local_cseq += 1;
            machine.local_cseq
        };
        let request = self
            .dialog
            .request(Method::Bye, cseq, &self.core.user_agent, headers);
        match self
            .core
            .until_shutdown(self.dialog.send(&self.core.stack, request))
            .await
        {
            Some(Ok(response)) => {
                debug!(call = %self.id, status = %response.status_code, "BYE answered");
                Ok(())
            }
            Some(Err(e)) => {
                warn!(call = %self.id, error = %e, "BYE failed");
                Err(e)
            }
            None => Err(SipError::InvalidState("the endpoint shut down")),
        }
    }

    /// Our 2xx (to the INVITE or a re-INVITE) was never acknowledged: end
    /// the call with a BYE (RFC 3261 §13.3.1.4).
    pub(crate) async fn end_unacknowledged(&self) {
        let ended = self.lock().end(EndReason::AckTimeout);
        if ended {
            warn!(call = %self.id, "no ACK for our 200 OK: sending BYE");
            let _ = self.send_bye(&[]).await;
            self.retire();
        }
    }

    pub(crate) fn on_ack(&self) {
        self.settled.send_replace(true);
        let mut machine = self.lock();
        if machine.state == CallState::Answered {
            machine.state = CallState::Confirmed;
            machine.emit(CallEvent::Confirmed);
            debug!(call = %self.id, "confirmed");
        }
    }

    /// CANCEL of an incoming call (the transaction has already answered it
    /// 200).
    pub(crate) fn on_cancel(&self) {
        let Ok(to) = self.incoming_to() else {
            return;
        };
        let mut machine = self.lock();
        if machine.state != CallState::Incoming {
            // Crossed our final response: no effect (RFC 3261 §9.2).
            return;
        }
        let response = self.invite_response(to, StatusCode::RequestTerminated, &[], None);
        let _ = self.respond_to_invite(&machine, response);
        machine.end(EndReason::Cancelled);
        drop(machine);
        debug!(call = %self.id, "cancelled");
        self.retire();
    }

    /// The incoming INVITE's transaction is over: ACKed, Timer H, or stopped.
    pub(crate) async fn on_invite_done(&self) {
        self.settled.send_replace(true);
        let state = {
            let mut machine = self.lock();
            machine.invite_tx = None;
            machine.state
        };
        match state {
            CallState::Answered => self.end_unacknowledged().await,
            CallState::Incoming => {
                let ended = self.lock().end(EndReason::TransportError(
                    "the INVITE transaction ended without a final response".into(),
                ));
                if ended {
                    self.retire();
                }
            }
            CallState::Confirmed | CallState::Ended => {}
        }
    }

    /// BYE from the peer, before it is answered 200. True when the call
    /// ended here: the caller retires it once the 200 is out (closing an
    /// outgoing call's TCP connection any sooner would lose the 200).
    pub(crate) fn on_bye(&self) -> bool {
        let mut machine = self.lock();
        match (machine.state, &self.side) {
            // Our own BYE may be crossing this one: 200 and nothing else.
            (CallState::Ended, _) => return false,
            // A BYE in an early dialog: the INVITE gets 487 (RFC 3261 §15.1.2).
            (CallState::Incoming, Side::Incoming { to }) => {
                let response = self.invite_response(to, StatusCode::RequestTerminated, &[], None);
                let _ = self.respond_to_invite(&machine, response);
            }
            // No ACK yet, but the peer is done: stop retransmitting the 200.
            (CallState::Answered, _) => self.stop_invite_transaction(&machine),
            // The callee's BYE overtook its 2xx (or it gave up early): the
            // transaction still ACKs a 2xx, we send no BYE of our own.
            (CallState::Incoming, Side::Outgoing { .. }) => machine.answered = true,
            (CallState::Confirmed, _) => {}
        }
        machine.end(EndReason::RemoteBye);
        debug!(call = %self.id, "remote BYE");
        true
    }

    /// INFO from the peer. False when the dialog is over (481).
    pub(crate) fn on_info(&self, content_type: Option<String>, body: Vec<u8>) -> bool {
        let machine = self.lock();
        if machine.state == CallState::Ended {
            return false;
        }
        machine.emit(CallEvent::Info { content_type, body });
        true
    }

    /// In-dialog requests must not go backwards in CSeq (RFC 3261 §12.2.2).
    pub(crate) fn accept_remote_cseq(&self, cseq: u32) -> bool {
        let mut machine = self.lock();
        if cseq < machine.remote_cseq {
            return false;
        }
        machine.remote_cseq = cseq;
        true
    }

    /// The response to a re-INVITE, from the call's state and
    /// [`reinvite::answer`].
    pub(crate) fn reinvite_response(&self, request: &Request) -> Response {
        let machine = self.lock();
        let (status, sdp) = match machine.state {
            // RFC 3261 §14.2: the first INVITE is not answered yet.
            CallState::Incoming => {
                let mut response =
                    message::response(request, StatusCode::ServerInternalError, None);
                response
                    .headers
                    .push(Header::RetryAfter(RetryAfter::new("1")));
                message::finish(&mut response, &self.core.user_agent, None);
                return response;
            }
            CallState::Ended => (StatusCode::CallTransactionDoesNotExist, None),
            CallState::Answered | CallState::Confirmed => {
                match reinvite::answer(&request.body, machine.local_sdp.as_deref()) {
                    reinvite::Answer::Sdp(sdp) => (StatusCode::OK, Some(sdp)),
                    reinvite::Answer::Refuse(code) => (StatusCode::from(code), None),
                }
            }
        };
        drop(machine);
        let mut response = message::response(request, status, None);
        if sdp.is_some() {
            response
                .headers
                .push(Header::Contact(Contact::new(self.dialog.contact.clone())));
            message::add_capabilities(&mut response);
        }
        let body = sdp.map(|sdp| ("application/sdp", sdp.into_bytes()));
        message::finish(&mut response, &self.core.user_agent, body);
        response
    }

    /// The call's TCP or WebSocket connection closed.
    pub(crate) fn on_transport_closed(&self) {
        let why = format!("{} connection closed", self.dialog.flow.transport());
        let mut machine = self.lock();
        let ended = machine.end(EndReason::TransportError(why.clone()));
        if ended {
            self.stop_invite_transaction(&machine);
        }
        drop(machine);
        if ended {
            info!(call = %self.id, "{why}: call ended");
        }
        self.retire();
    }

    /// The endpoint is shutting down (the registry is already emptied).
    pub(crate) fn end_for_shutdown(&self) {
        let mut machine = self.lock();
        self.stop_invite_transaction(&machine);
        machine.end(EndReason::Shutdown);
        drop(machine);
        self.ended.cancel();
    }
}

/// The engine's handle on a call (`CallSignaling` holds it in an `Arc`).
/// When the last one goes, a call still up is hung up.
pub(crate) struct CallHandle {
    pub(crate) call: Arc<Call>,
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        if self.call.state() == CallState::Ended || self.call.core.is_shut_down() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        info!(call = %self.call.id, "every handle on the call was dropped: hanging up");
        let call = self.call.clone();
        runtime.spawn(async move {
            let _ = call.hangup(Vec::new()).await;
        });
    }
}
