//! Requests the remote sends in a dialog: BYE, CANCEL, ACK, re-INVITE
//! (answered, following hold/resume), OPTIONS, INFO (digits), ...

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Method, Request, Response};
use tokio::sync::mpsc;

use super::{Dialog, DialogInput};
use crate::agent::ALLOW;
use crate::call::EndReason;
use crate::sip::message;
use crate::sip::sdp::{self, Direction};

impl Dialog {
    /// A plain response (no body) to an in-dialog request.
    async fn reply(&self, request: &Request, code: u16, from: SocketAddr) {
        let extra = vec![
            ("Server".to_string(), self.core.config.user_agent.clone()),
            ("Allow".to_string(), ALLOW.to_string()),
        ];
        let response = message::response(request, code, Some(&self.local_tag), extra, None);
        self.core.respond(request, response, from).await;
    }

    /// Dispatches one request by method.
    async fn handle(self: &Arc<Self>, DialogInput { request, from }: DialogInput) {
        match request.method {
            Method::Invite => self.on_invite(request, from).await,
            Method::Ack => self.on_ack(&request),
            Method::Cancel => self.on_cancel(request, from).await,
            Method::Bye => {
                self.reply(&request, 200, from).await;
                self.end(EndReason::RemoteBye {
                    headers: message::header_list(&request.headers),
                });
                self.release();
            }
            _ if self.is_ended() => self.reply(&request, 481, from).await,
            Method::Info => {
                self.on_info(&request);
                self.reply(&request, 200, from).await;
            }
            Method::Options | Method::Update | Method::Notify | Method::Message | Method::PRack => {
                self.reply(&request, 200, from).await;
            }
            _ => self.reply(&request, 501, from).await,
        }
    }

    async fn on_invite(self: &Arc<Self>, request: Request, from: SocketAddr) {
        let retransmitted = {
            let state = self.lock();
            let initial = state
                .invite
                .as_ref()
                .and_then(|i| message::branch(&i.headers));
            (initial.is_some() && initial == message::branch(&request.headers))
                .then(|| state.invite_response.clone())
        };
        match retransmitted {
            Some(Some(last_response)) => {
                let _ = self.core.send(from, last_response).await;
            }
            Some(None) => {}
            None if self.is_ended() => self.reply(&request, 481, from).await,
            None => self.on_reinvite(request, from).await,
        }
    }

    /// A re-INVITE: answer its offer (or make one when it has none) with
    /// the codecs of the call, following hold/resume directions.
    async fn on_reinvite(self: &Arc<Self>, request: Request, from: SocketAddr) {
        let (codecs, telephone_event) = {
            let state = self.lock();
            (
                state.local_media.codecs.clone(),
                state.local_media.telephone_event,
            )
        };
        let body = if request.body.is_empty() {
            self.lock().offer_in_2xx = true;
            self.local_sdp(&codecs, telephone_event, Direction::SendRecv)
        } else {
            let offer = match sdp::parse(&request.body) {
                Ok(offer) => offer,
                Err(error) => {
                    tracing::debug!(error, "unusable re-INVITE offer");
                    return self.reply(&request, 488, from).await;
                }
            };
            let codec = match self.apply_remote_sdp(
                &offer,
                &codecs,
                telephone_event.is_some(),
                offer.direction.answer(),
            ) {
                Ok(codec) => codec,
                Err(_) => return self.reply(&request, 488, from).await,
            };
            let event = offer
                .telephone_event_at(codec.clock_rate())
                .filter(|_| telephone_event.is_some());
            self.local_sdp(&[codec], event, offer.direction.answer())
        };
        if let Some(contact) = message::header(&request.headers, "Contact") {
            self.lock().remote_target = message::addr_uri(contact);
        }
        let extra = vec![
            ("Contact".to_string(), self.core.contact()),
            ("Server".to_string(), self.core.config.user_agent.clone()),
        ];
        let response: Response = message::response(
            &request,
            200,
            Some(&self.local_tag),
            extra,
            Some(("application/sdp", body.into_bytes())),
        );
        let bytes = response.to_bytes();
        let cseq = message::cseq(&request.headers).map_or(0, |(n, _)| n);
        let _ = self.core.send(from, bytes.clone()).await;
        tokio::spawn(self.clone().retransmit_until_acked(cseq, bytes, from, true));
    }

    fn on_ack(&self, request: &Request) {
        let cseq = message::cseq(&request.headers).map_or(0, |(n, _)| n);
        let answer_expected = std::mem::take(&mut self.lock().offer_in_2xx);
        if answer_expected && !request.body.is_empty() {
            let (codecs, telephone_event) = {
                let state = self.lock();
                (
                    state.local_media.codecs.clone(),
                    state.local_media.telephone_event,
                )
            };
            match sdp::parse(&request.body) {
                Ok(answer) => {
                    if let Err(error) = self.apply_remote_sdp(
                        &answer,
                        &codecs,
                        telephone_event.is_some(),
                        Direction::SendRecv,
                    ) {
                        tracing::debug!(%error, "unusable answer in ACK");
                    }
                }
                Err(error) => tracing::debug!(error, "unparsable answer in ACK"),
            }
        }
        self.acked.send_modify(|n| *n = (*n).max(cseq));
    }

    /// CANCEL of the initial INVITE: 200 for the CANCEL, and 487 for the
    /// INVITE when it had no final response yet.
    async fn on_cancel(self: &Arc<Self>, request: Request, from: SocketAddr) {
        let matches_invite = {
            let state = self.lock();
            let initial = state
                .invite
                .as_ref()
                .and_then(|i| message::branch(&i.headers));
            initial.is_some() && initial == message::branch(&request.headers)
        };
        if !matches_invite {
            return self.reply(&request, 481, from).await;
        }
        self.reply(&request, 200, from).await;
        let pending = {
            let state = self.lock();
            // Set under the lock so a concurrent answer sees it.
            !state.invite_final && !self.cancelled.send_replace(true)
        };
        if pending {
            self.end(EndReason::Cancelled);
            let _ = self.send_invite_response(487, Vec::new(), None, true).await;
        }
    }

    /// SIP INFO digits (`application/dtmf-relay` `Signal=5`, or
    /// `application/dtmf` with the digit as body).
    fn on_info(&self, request: &Request) {
        let content_type = message::header(&request.headers, "Content-Type").unwrap_or("");
        let body = String::from_utf8_lossy(&request.body);
        let (digit, duration) = if content_type.eq_ignore_ascii_case("application/dtmf-relay") {
            let field = |name: &str| {
                body.lines().find_map(|line| {
                    let (key, value) = line.split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| value.trim().to_string())
                })
            };
            (
                field("Signal").and_then(|s| s.chars().next()),
                field("Duration").and_then(|d| d.parse::<u64>().ok()),
            )
        } else if content_type.eq_ignore_ascii_case("application/dtmf") {
            (body.trim().chars().next(), None)
        } else {
            return;
        };
        if let Some(digit) = digit.filter(|d| crate::media::dtmf::event_code(*d).is_ok()) {
            self.media.push_info_digit(
                digit.to_ascii_uppercase(),
                Duration::from_millis(duration.unwrap_or(100)),
            );
        }
    }
}

/// Serves a dialog's requests until it is released or the agent stops.
pub(crate) async fn run(dialog: Arc<Dialog>, mut inputs: mpsc::UnboundedReceiver<DialogInput>) {
    loop {
        let input = tokio::select! {
            _ = dialog.core.cancel.cancelled() => {
                dialog.end(EndReason::AgentClosed);
                return;
            }
            input = inputs.recv() => input,
        };
        match input {
            Some(input) => dialog.handle(input).await,
            None => return,
        }
    }
}
