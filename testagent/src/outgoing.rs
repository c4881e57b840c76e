//! A call the agent places: the INVITE client transaction (RFC 3261
//! §17.1.1) with retransmission, provisional responses, CANCEL, and the ACK.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::{Method, Request, Response};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::agent::{AgentCore, ALLOW};
use crate::call::Call;
use crate::config::{CallOptions, Codec};
use crate::dialog::{self, Dialog, DialogInput, DialogState, LocalMedia};
use crate::error::{AgentError, Result};
use crate::media::Media;
use crate::sip::message::{self, ResponseInfo};
use crate::sip::sdp::{self, Direction, LocalDescription};
use crate::sip::transaction::{self, Backoff, Responses};

/// How an INVITE ended, as kept for every waiter.
#[derive(Clone)]
enum Outcome {
    Answered(Call),
    Failed(Failure),
}

#[derive(Debug, Clone)]
enum Failure {
    Rejected {
        code: u16,
        reason: String,
        headers: Vec<(String, String)>,
    },
    NoResponse(Duration),
    Sdp(String),
    Transport {
        to: SocketAddr,
        reason: String,
    },
    Closed,
}

impl Failure {
    fn to_error(&self) -> AgentError {
        match self.clone() {
            Failure::Rejected {
                code,
                reason,
                headers,
            } => AgentError::Rejected {
                code,
                reason,
                headers,
            },
            Failure::NoResponse(after) => AgentError::NoResponse {
                method: "INVITE".into(),
                after,
            },
            Failure::Sdp(reason) => AgentError::Sdp(reason),
            Failure::Transport { to, reason } => AgentError::Transport { to, reason },
            Failure::Closed => AgentError::Closed,
        }
    }

    fn code(&self) -> Option<u16> {
        match self {
            Failure::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[derive(Clone, Default)]
struct Progress {
    provisionals: Vec<ResponseInfo>,
    outcome: Option<Outcome>,
}

/// A call being placed: watch its provisional responses, cancel it, or
/// await its answer. Derefs to its [`Media`] (early media is recorded).
pub struct OutgoingCall {
    call_id: String,
    media: Media,
    progress: watch::Receiver<Progress>,
    cancel: watch::Sender<bool>,
}

impl std::fmt::Debug for OutgoingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingCall")
            .field("call_id", &self.call_id)
            .finish()
    }
}

impl Deref for OutgoingCall {
    type Target = Media;

    fn deref(&self) -> &Media {
        &self.media
    }
}

impl OutgoingCall {
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn media(&self) -> &Media {
        &self.media
    }

    /// Provisional responses so far (100 Trying included).
    pub fn provisionals(&self) -> Vec<ResponseInfo> {
        self.progress.borrow().provisionals.clone()
    }

    /// Waits for a provisional response with `code` (e.g. 180); fails if a
    /// final response comes first.
    pub async fn wait_provisional(&self, code: u16, timeout: Duration) -> Result<ResponseInfo> {
        let mut progress = self.progress.clone();
        let waited = tokio::time::timeout(
            timeout,
            progress
                .wait_for(|p| p.outcome.is_some() || p.provisionals.iter().any(|r| r.code == code)),
        )
        .await;
        let seen = |p: &Progress| p.provisionals.iter().find(|r| r.code == code).cloned();
        match waited {
            Ok(Ok(progress)) => match (seen(&progress), &progress.outcome) {
                (Some(found), _) => Ok(found),
                (None, Some(Outcome::Failed(failure))) => Err(failure.to_error()),
                (None, _) => Err(AgentError::InvalidState(format!(
                    "the call was answered before any {code}"
                ))),
            },
            Ok(Err(_)) => Err(AgentError::Closed),
            Err(_) => Err(AgentError::WaitTimeout {
                what: format!("a {code} provisional response"),
                after: timeout,
                details: format!(
                    "received {:?}",
                    self.provisionals()
                        .iter()
                        .map(|r| r.code)
                        .collect::<Vec<_>>()
                ),
            }),
        }
    }

    async fn outcome(&self) -> Outcome {
        let mut progress = self.progress.clone();
        let outcome = progress
            .wait_for(|p| p.outcome.is_some())
            .await
            .map(|p| p.outcome.clone());
        outcome
            .ok()
            .flatten()
            .unwrap_or(Outcome::Failed(Failure::Closed))
    }

    /// Waits for the final response: the call once answered and ACKed, or
    /// the error (`Rejected` carries the status code).
    pub async fn answered(&self) -> Result<Call> {
        match self.outcome().await {
            Outcome::Answered(call) => Ok(call),
            Outcome::Failed(failure) => Err(failure.to_error()),
        }
    }

    /// Cancels the INVITE (once it is ringing) and returns the final status
    /// code: 487 normally, 200 if the answer crossed the CANCEL (the call
    /// is then hung up).
    pub async fn cancel(&self) -> Result<u16> {
        self.cancel.send_replace(true);
        match self.outcome().await {
            Outcome::Answered(call) => {
                call.hangup().await?;
                Ok(200)
            }
            Outcome::Failed(failure) => failure.code().ok_or_else(|| failure.to_error()),
        }
    }
}

impl Drop for OutgoingCall {
    fn drop(&mut self) {
        // A call dropped while still ringing is cancelled.
        self.cancel.send_replace(true);
    }
}

/// The Request-URI and the address to send to (default port 5060).
pub(crate) async fn resolve_target(target: &str) -> Result<(String, SocketAddr)> {
    let invalid = |reason: String| AgentError::InvalidUri {
        uri: target.to_string(),
        reason,
    };
    let uri = rsipstack::sip::Uri::try_from(target).map_err(|e| invalid(e.to_string()))?;
    let host = uri.host_with_port.host.to_string();
    let port = uri.host_with_port.port.as_ref().map_or(5060, |p| p.0);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| invalid(format!("cannot resolve {host}: {e}")))?
        .next()
        .ok_or_else(|| invalid(format!("{host} has no address")))?;
    Ok((uri.to_string(), addr))
}

/// Everything the INVITE task needs.
struct Invite {
    core: Arc<AgentCore>,
    request: Request,
    to: SocketAddr,
    media: Media,
    call_id: String,
    local_tag: String,
    local_uri: String,
    remote_uri: String,
    cseq: u32,
    codecs: Vec<Codec>,
    telephone_event: Option<u8>,
    session_id: u64,
    answer_timeout: Duration,
}

pub(crate) async fn dial(
    core: &Arc<AgentCore>,
    target: &str,
    options: CallOptions,
) -> Result<OutgoingCall> {
    let (uri, to) = resolve_target(target).await?;
    let media = Media::bind(core.config.local_ip).await?;
    if options.external_media {
        // Someone else sends and receives this call's RTP.
        media.stop();
    }
    if let Some(pt) = options.telephone_event {
        for (pt, _) in sdp::event_formats(&options.codecs, pt) {
            media.accept_events_on(pt);
        }
    }
    let call_id = format!("{}@{}", message::random_token(), core.config.local_ip);
    let local_tag = message::random_token();
    let from_uri = options
        .from
        .clone()
        .unwrap_or_else(|| format!("sip:{}@{}", core.config.user, core.config.local_ip));
    let local_uri = match &options.display_name {
        Some(name) => format!("\"{name}\" <{from_uri}>"),
        None => format!("<{from_uri}>"),
    };
    let remote_uri = format!("<{uri}>");
    let session_id = u64::from(rand::random::<u32>());
    let body = options.raw_sdp.clone().unwrap_or_else(|| {
        sdp::write(&LocalDescription {
            rtp: media.local_addr(),
            session_id,
            version: 1,
            codecs: &options.codecs,
            telephone_event: options.telephone_event,
            direction: Direction::SendRecv,
        })
    });
    let cseq = 1;
    let mut headers = vec![
        ("Via".to_string(), core.via(&message::new_branch())),
        ("Max-Forwards".to_string(), "70".to_string()),
        ("From".to_string(), format!("{local_uri};tag={local_tag}")),
        ("To".to_string(), remote_uri.clone()),
        ("Call-ID".to_string(), call_id.clone()),
        ("CSeq".to_string(), format!("{cseq} INVITE")),
        ("Contact".to_string(), core.contact()),
        ("Allow".to_string(), ALLOW.to_string()),
        ("User-Agent".to_string(), core.config.user_agent.clone()),
    ];
    headers.extend(options.headers.iter().cloned());
    headers.push(("Content-Type".to_string(), "application/sdp".to_string()));
    let request = message::request(Method::Invite, &uri, headers, body.into_bytes())?;

    let (dialog_inputs, dialog_receiver) = mpsc::unbounded_channel();
    // Registered now: a BYE may follow the 200 OK before the task sees it.
    core.register_dialog(&call_id, dialog_inputs);
    let (progress_tx, progress) = watch::channel(Progress::default());
    let (cancel, cancel_rx) = watch::channel(false);
    let invite = Invite {
        core: core.clone(),
        request,
        to,
        media: media.clone(),
        call_id: call_id.clone(),
        local_tag,
        local_uri,
        remote_uri,
        cseq,
        codecs: options.codecs.clone(),
        telephone_event: options.telephone_event,
        session_id,
        answer_timeout: options.answer_timeout,
    };
    tokio::spawn(invite.run(progress_tx, cancel_rx, dialog_receiver));
    Ok(OutgoingCall {
        call_id,
        media,
        progress,
        cancel,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelCause {
    User,
    AnswerTimeout,
}

impl Invite {
    fn transport_failure(&self, reason: impl ToString) -> Failure {
        Failure::Transport {
            to: self.to,
            reason: reason.to_string(),
        }
    }

    async fn run(
        self,
        progress: watch::Sender<Progress>,
        mut cancel: watch::Receiver<bool>,
        dialog_inputs: mpsc::UnboundedReceiver<DialogInput>,
    ) {
        let outcome = self.transact(&progress, &mut cancel, dialog_inputs).await;
        if let Outcome::Failed(failure) = &outcome {
            tracing::debug!(call_id = %self.call_id, ?failure, "INVITE failed");
            self.core.unregister_dialog(&self.call_id);
            self.media.stop();
        }
        progress.send_modify(|p| p.outcome = Some(outcome));
    }

    async fn transact(
        &self,
        progress: &watch::Sender<Progress>,
        cancel: &mut watch::Receiver<bool>,
        dialog_inputs: mpsc::UnboundedReceiver<DialogInput>,
    ) -> Outcome {
        let core = &self.core;
        let Some(branch) = message::branch(&self.request.headers) else {
            return Outcome::Failed(self.transport_failure("INVITE without branch"));
        };
        let mut responses = Responses::register(core, transaction::key(&branch, "INVITE"));
        let bytes = self.request.to_bytes();
        if let Err(error) = core.send(self.to, bytes.clone()).await {
            return Outcome::Failed(self.transport_failure(error));
        }
        let reliable = core.transport.is_reliable();
        let timer_b = core.t1() * 64;
        // Timer A doubles without a cap until Timer B.
        let mut backoff = Backoff::new(core.t1(), timer_b);
        let mut retransmit_at = (!reliable).then(|| Instant::now() + backoff.next_interval());
        // Without any response by then, give up (Timer B); after a CANCEL,
        // the same time for the final response.
        let mut give_up_at = Instant::now() + timer_b;
        let mut answer_deadline: Option<Instant> = None;
        let mut cancel_cause: Option<CancelCause> = None;
        let mut cancel_sent = false;
        let mut proceeding = false;
        let far = Instant::now() + Duration::from_secs(86_400 * 365);

        loop {
            tokio::select! {
                response = responses.recv() => {
                    let Some(response) = response else {
                        return Outcome::Failed(Failure::Closed);
                    };
                    let code = response.status_code.code();
                    retransmit_at = None;
                    if code < 200 {
                        progress.send_modify(|p| p.provisionals.push(ResponseInfo::from_response(&response)));
                        if !proceeding {
                            proceeding = true;
                            give_up_at = far;
                            answer_deadline = Some(Instant::now() + self.answer_timeout);
                        }
                        if cancel_cause.is_some() && !cancel_sent {
                            cancel_sent = true;
                            give_up_at = self.send_cancel();
                        }
                        continue;
                    }
                    if code < 300 {
                        return self.answered(response, responses, dialog_inputs, cancel_cause.is_some()).await;
                    }
                    self.acknowledge_failure(&response, responses).await;
                    let failure = match cancel_cause {
                        Some(CancelCause::AnswerTimeout) if code == 487 => Failure::NoResponse(self.answer_timeout),
                        _ => Failure::Rejected {
                            code,
                            reason: ResponseInfo::from_response(&response).reason,
                            headers: message::header_list(&response.headers),
                        },
                    };
                    return Outcome::Failed(failure);
                }
                _ = tokio::time::sleep_until(retransmit_at.unwrap_or(far)), if retransmit_at.is_some() => {
                    if let Err(error) = core.send(self.to, bytes.clone()).await {
                        return Outcome::Failed(self.transport_failure(error));
                    }
                    retransmit_at = Some(Instant::now() + backoff.next_interval());
                }
                _ = tokio::time::sleep_until(give_up_at) => {
                    let after = if cancel_sent { core.t1() * 64 } else { timer_b };
                    return Outcome::Failed(Failure::NoResponse(after));
                }
                _ = tokio::time::sleep_until(answer_deadline.unwrap_or(far)), if answer_deadline.is_some() && cancel_cause.is_none() => {
                    cancel_cause = Some(CancelCause::AnswerTimeout);
                    cancel_sent = true;
                    give_up_at = self.send_cancel();
                }
                _ = cancel.changed(), if cancel_cause.is_none() => {
                    // A change or a dropped handle: both mean cancel.
                    cancel_cause = Some(CancelCause::User);
                    if proceeding {
                        cancel_sent = true;
                        give_up_at = self.send_cancel();
                    }
                }
            }
        }
    }

    /// Sends CANCEL in its own transaction; returns when to stop waiting
    /// for the INVITE's final response.
    fn send_cancel(&self) -> Instant {
        let headers: Vec<(String, String)> = self
            .request
            .headers
            .iter()
            .filter(|h| {
                ["Via", "From", "To", "Call-ID", "Max-Forwards", "Route"]
                    .iter()
                    .any(|n| h.name().eq_ignore_ascii_case(n))
            })
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .chain([("CSeq".to_string(), format!("{} CANCEL", self.cseq))])
            .collect();
        let uri = self.request.uri.to_string();
        let core = self.core.clone();
        let to = self.to;
        tokio::spawn(async move {
            let result = match message::request(Method::Cancel, &uri, headers, Vec::new()) {
                Ok(cancel) => transaction::non_invite(&core, cancel, to).await.map(|_| ()),
                Err(error) => Err(error),
            };
            if let Err(error) = result {
                tracing::debug!(%error, "CANCEL failed");
            }
        });
        Instant::now() + self.core.t1() * 64
    }

    /// ACK for a non-2xx final response: part of the INVITE transaction
    /// (same branch), resent for each retransmission of the response.
    async fn acknowledge_failure(&self, response: &Response, responses: Responses) {
        let Ok(ack) = message::ack_for_failure(&self.request, response) else {
            return;
        };
        let bytes = ack.to_bytes();
        let _ = self.core.send(self.to, bytes.clone()).await;
        transaction::linger(&self.core, responses, bytes, self.to);
    }

    /// A 2xx: the dialog starts, the ACK goes out, media follows the answer.
    async fn answered(
        &self,
        response: Response,
        responses: Responses,
        dialog_inputs: mpsc::UnboundedReceiver<DialogInput>,
        cancelled: bool,
    ) -> Outcome {
        let headers = &response.headers;
        let mut route_set: Vec<String> = headers
            .iter()
            .filter(|h| h.name().eq_ignore_ascii_case("Record-Route"))
            .flat_map(|h| message::route_entries(h.value()))
            .collect();
        route_set.reverse();
        let state = DialogState {
            local_uri: self.local_uri.clone(),
            remote_uri: self.remote_uri.clone(),
            remote_tag: message::tag(headers, "To"),
            remote_target: message::header(headers, "Contact")
                .map(message::addr_uri)
                .unwrap_or_else(|| self.request.uri.to_string()),
            route_set,
            local_cseq: self.cseq,
            peer: self.to,
            local_media: LocalMedia {
                codecs: self.codecs.clone(),
                telephone_event: self.telephone_event,
                session_id: self.session_id,
                version: 1,
            },
            remote_headers: message::header_list(headers),
            remote_sdp: response.body.clone(),
            invite: None,
            invite_response: None,
            invite_final: true,
            offer_in_2xx: false,
        };
        let dialog = Dialog::new(
            self.core.clone(),
            self.call_id.clone(),
            self.local_tag.clone(),
            self.media.clone(),
            state,
        );
        let ack = match dialog.ack(self.cseq) {
            Ok((ack, _)) => ack.to_bytes(),
            Err(error) => return Outcome::Failed(self.transport_failure(error)),
        };
        if let Err(error) = self.core.send(self.to, ack.clone()).await {
            return Outcome::Failed(self.transport_failure(error));
        }
        transaction::linger(&self.core, responses, ack, self.to);
        tokio::spawn(dialog::run(dialog.clone(), dialog_inputs));
        let call = Call::new(dialog.clone());

        let negotiated = sdp::parse(&response.body).and_then(|answer| {
            dialog
                .apply_remote_sdp(
                    &answer,
                    &self.codecs,
                    self.telephone_event.is_some(),
                    Direction::SendRecv,
                )
                .map_err(|e| e.to_string())
        });
        if let Err(reason) = negotiated {
            let _ = call.hangup().await;
            return Outcome::Failed(Failure::Sdp(format!("unusable answer: {reason}")));
        }
        if cancelled {
            let _ = call.hangup().await;
        }
        Outcome::Answered(call)
    }
}
