//! A call the agent receives, before it is answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::Request;
use tokio::sync::mpsc;

use crate::agent::AgentCore;
use crate::call::Call;
use crate::config::{AnswerOptions, AutoAnswer};
use crate::dialog::{self, Dialog, DialogState, LocalMedia};
use crate::error::{AgentError, Result};
use crate::media::Media;
use crate::sip::message;
use crate::sip::sdp::{self, Direction};

/// Telephone-event payload type we offer when the INVITE has no offer.
const OFFERED_EVENT_PT: u8 = 101;

/// An incoming INVITE (already answered with 100 Trying). Answer or reject
/// it; dropping it unanswered rejects it with 480.
pub struct IncomingCall {
    dialog: Arc<Dialog>,
    request: Request,
    /// Our SDP once negotiated (by early media or the answer).
    sdp: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Debug for IncomingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingCall")
            .field("call_id", &self.dialog.call_id)
            .field("from", &self.from())
            .field("request_uri", &self.request_uri())
            .finish()
    }
}

impl IncomingCall {
    /// Sets up the dialog of a new INVITE and sends 100 Trying.
    pub(crate) async fn start(
        core: &Arc<AgentCore>,
        request: Request,
        from: SocketAddr,
    ) -> Result<IncomingCall> {
        let headers = &request.headers;
        let call_id = message::call_id(headers)
            .ok_or_else(|| AgentError::InvalidState("INVITE without Call-ID".into()))?
            .to_string();
        let media = Media::bind(core.config.local_ip).await?;
        // An offer we make carries events at up to two clock rates.
        media.accept_events_on(OFFERED_EVENT_PT);
        media.accept_events_on(OFFERED_EVENT_PT + 1);
        let state = DialogState {
            local_uri: message::without_tag(message::header(headers, "To").unwrap_or_default()),
            remote_uri: message::without_tag(message::header(headers, "From").unwrap_or_default()),
            remote_tag: message::tag(headers, "From"),
            remote_target: message::header(headers, "Contact")
                .map(message::addr_uri)
                .unwrap_or_else(|| {
                    message::addr_uri(message::header(headers, "From").unwrap_or_default())
                }),
            route_set: headers
                .iter()
                .filter(|h| h.name().eq_ignore_ascii_case("Record-Route"))
                .flat_map(|h| message::route_entries(h.value()))
                .collect(),
            local_cseq: 0,
            peer: from,
            local_media: LocalMedia {
                codecs: Vec::new(),
                telephone_event: None,
                session_id: rand::random::<u32>().into(),
                version: 0,
            },
            remote_headers: message::header_list(headers),
            remote_sdp: request.body.clone(),
            invite: Some(request.clone()),
            invite_response: None,
            invite_final: false,
            offer_in_2xx: false,
        };
        let dialog = Dialog::new(
            core.clone(),
            call_id.clone(),
            message::random_token(),
            media,
            state,
        );
        let (inputs, receiver) = mpsc::unbounded_channel();
        core.register_dialog(&call_id, inputs);
        tokio::spawn(dialog::run(dialog.clone(), receiver));
        if let Err(error) = dialog.respond_invite(100, Vec::new(), None).await {
            dialog.end(crate::call::EndReason::AgentClosed);
            dialog.release();
            return Err(error);
        }
        Ok(IncomingCall {
            dialog,
            request,
            sdp: std::sync::Mutex::new(None),
        })
    }

    pub fn call_id(&self) -> &str {
        &self.dialog.call_id
    }

    /// The From header value.
    pub fn from(&self) -> &str {
        message::header(&self.request.headers, "From").unwrap_or_default()
    }

    /// The To header value.
    pub fn to(&self) -> &str {
        message::header(&self.request.headers, "To").unwrap_or_default()
    }

    pub fn request_uri(&self) -> String {
        self.request.uri.to_string()
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        message::header(&self.request.headers, name)
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        message::header_list(&self.request.headers)
    }

    /// The SDP offer, if the INVITE has one.
    pub fn offer(&self) -> Option<&[u8]> {
        (!self.request.body.is_empty()).then_some(self.request.body.as_slice())
    }

    /// The media, e.g. to inspect early audio.
    pub fn media(&self) -> &Media {
        &self.dialog.media
    }

    /// Sends 180 Ringing.
    pub async fn ring(&self) -> Result<()> {
        self.dialog.respond_invite(180, Vec::new(), None).await
    }

    /// Sends another provisional response (e.g. 183 without SDP).
    pub async fn send_provisional(&self, code: u16) -> Result<()> {
        if !(101..200).contains(&code) {
            return Err(AgentError::InvalidState(format!(
                "{code} is not provisional"
            )));
        }
        self.dialog.respond_invite(code, Vec::new(), None).await
    }

    pub fn is_cancelled(&self) -> bool {
        *self.dialog.cancelled.borrow()
    }

    /// Waits until the caller cancels.
    pub async fn wait_cancelled(&self, timeout: Duration) -> Result<()> {
        let mut cancelled = self.dialog.cancelled.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            cancelled.wait_for(|&c| c).await.map(|_| ())
        })
        .await;
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(AgentError::Closed),
            Err(_) => Err(AgentError::WaitTimeout {
                what: "the caller to cancel".into(),
                after: timeout,
                details: "no CANCEL arrived".into(),
            }),
        }
    }

    /// Our SDP: the answer to the INVITE's offer (or our offer when it had
    /// none). Made once, then repeated (183 and 200 carry the same one).
    /// An offer without a codec in common is rejected with 488.
    async fn session_description(&self, options: &AnswerOptions) -> Result<String> {
        if let Some(made) = self.sdp.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(made);
        }
        let dialog = &self.dialog;
        let (event, body) = match self.offer() {
            Some(body) => {
                let negotiated = sdp::parse(body).map_err(AgentError::Sdp).and_then(|offer| {
                    let codec = dialog.apply_remote_sdp(
                        &offer,
                        &options.codecs,
                        options.telephone_event,
                        offer.direction.answer(),
                    )?;
                    Ok((offer, codec))
                });
                let (offer, codec) = match negotiated {
                    Ok(negotiated) => negotiated,
                    Err(error) => {
                        let _ = dialog.respond_invite(488, Vec::new(), None).await;
                        return Err(error);
                    }
                };
                let event = offer
                    .telephone_event_at(codec.clock_rate())
                    .filter(|_| options.telephone_event);
                let answer = dialog.local_sdp(
                    std::slice::from_ref(&codec),
                    event,
                    offer.direction.answer(),
                );
                (event, answer)
            }
            None => {
                let event = options.telephone_event.then_some(OFFERED_EVENT_PT);
                dialog.lock().offer_in_2xx = true;
                let offer = dialog.local_sdp(&options.codecs, event, Direction::SendRecv);
                (event, offer)
            }
        };
        {
            let mut state = dialog.lock();
            // Later offers (re-INVITEs) may pick any codec we accept.
            state.local_media.codecs = options.codecs.clone();
            state.local_media.telephone_event = event;
        }
        *self.sdp.lock().unwrap_or_else(|p| p.into_inner()) = Some(body.clone());
        Ok(body)
    }

    /// Sends 183 Session Progress with our SDP answer: media flows both
    /// ways before the answer (play into [`IncomingCall::media`]).
    pub async fn early_media(&self) -> Result<()> {
        self.early_media_with(&AnswerOptions::default()).await
    }

    /// Like [`IncomingCall::early_media`]; a later answer keeps this SDP.
    pub async fn early_media_with(&self, options: &AnswerOptions) -> Result<()> {
        if self.offer().is_none() {
            return Err(AgentError::InvalidState(
                "early media needs an offer in the INVITE".into(),
            ));
        }
        let body = self.session_description(options).await?;
        self.dialog
            .respond_invite(
                183,
                Vec::new(),
                Some(("application/sdp", body.into_bytes())),
            )
            .await
    }

    /// Answers with 200 OK (PCMU or PCMA, telephone-event when offered).
    pub async fn answer(self) -> Result<Call> {
        self.answer_with(AnswerOptions::default()).await
    }

    /// Answers with 200 OK; an offer without a codec in common is rejected
    /// with 488 and an error.
    pub async fn answer_with(self, options: AnswerOptions) -> Result<Call> {
        let body = self.session_description(&options).await?;
        self.dialog
            .respond_invite(
                200,
                options.headers,
                Some(("application/sdp", body.into_bytes())),
            )
            .await?;
        Ok(Call::new(self.dialog.clone()))
    }

    /// Rejects with a final error code (e.g. 486).
    pub async fn reject(self, code: u16) -> Result<()> {
        if code < 300 {
            return Err(AgentError::InvalidState(format!(
                "{code} is not an error code"
            )));
        }
        self.dialog.respond_invite(code, Vec::new(), None).await
    }
}

impl Drop for IncomingCall {
    fn drop(&mut self) {
        let unanswered = !self.dialog.lock().invite_final && !self.is_cancelled();
        if !unanswered {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let dialog = self.dialog.clone();
            runtime.spawn(async move {
                let _ = dialog.respond_invite(480, Vec::new(), None).await;
            });
        }
    }
}

/// Handles one incoming call per [`AutoAnswer`]; answered calls go to
/// `answered`.
pub(crate) async fn auto_answer(
    incoming: IncomingCall,
    auto: AutoAnswer,
    answered: mpsc::UnboundedSender<Call>,
) {
    if auto.ring {
        let _ = incoming.ring().await;
    }
    tokio::select! {
        _ = tokio::time::sleep(auto.delay) => {}
        _ = incoming.wait_cancelled(auto.delay + Duration::from_secs(1)) => {
            if incoming.is_cancelled() {
                return;
            }
        }
    }
    if (200..300).contains(&auto.code) {
        match incoming.answer_with(auto.answer).await {
            Ok(call) => {
                let _ = answered.send(call);
            }
            Err(error) => tracing::debug!(%error, "auto-answer failed"),
        }
    } else if let Err(error) = incoming.reject(auto.code).await {
        tracing::debug!(%error, "auto-reject failed");
    }
}
