//! A dialog (RFC 3261 §12), caller or callee side: its identifiers and
//! sequence numbers, the requests it sends, and a task answering the
//! requests the remote sends in it (see [`inbound`]).

mod inbound;

pub(crate) use inbound::run;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rsipstack::sip::{Method, Request};
use tokio::sync::watch;

use crate::agent::{AgentCore, ALLOW};
use crate::call::EndReason;
use crate::config::Codec;
use crate::error::{AgentError, Result};
use crate::media::{Media, RemoteMedia};
use crate::sip::message::{self, ResponseInfo};
use crate::sip::sdp::{self, AudioDescription, Direction, LocalDescription};
use crate::sip::transaction::{self, Backoff};

/// A request for a dialog, and where it came from.
pub(crate) struct DialogInput {
    pub request: Request,
    pub from: SocketAddr,
}

/// Our side of the SDP, to answer re-INVITEs the same way.
pub(crate) struct LocalMedia {
    pub codecs: Vec<Codec>,
    pub telephone_event: Option<u8>,
    pub session_id: u64,
    pub version: u64,
}

pub(crate) struct DialogState {
    /// From (caller) or To (callee) as a name-addr, without tag.
    pub local_uri: String,
    pub remote_uri: String,
    pub remote_tag: Option<String>,
    /// Request-URI of our in-dialog requests (the remote Contact).
    pub remote_target: String,
    pub route_set: Vec<String>,
    pub local_cseq: u32,
    /// Where our requests go: the remote's signalling address.
    pub peer: SocketAddr,
    pub local_media: LocalMedia,
    /// Headers of the INVITE (callee) or of the 200 OK (caller).
    pub remote_headers: Vec<(String, String)>,
    /// The SDP of the 200 OK (caller) or of the INVITE (callee), as received.
    pub remote_sdp: Vec<u8>,
    /// Callee side: the INVITE, the last response to it, and whether it
    /// was final.
    pub invite: Option<Request>,
    pub invite_response: Option<Vec<u8>>,
    pub invite_final: bool,
    /// We put an offer in a 2xx; the answer comes in the ACK.
    pub offer_in_2xx: bool,
}

pub(crate) struct Dialog {
    pub core: Arc<AgentCore>,
    pub call_id: String,
    pub local_tag: String,
    pub media: Media,
    state: Mutex<DialogState>,
    ended: watch::Sender<Option<EndReason>>,
    /// Set by the first `end`, which alone publishes its reason.
    ending: AtomicBool,
    /// Highest CSeq number of an INVITE we answered whose ACK arrived.
    acked: watch::Sender<u32>,
    /// The caller cancelled the INVITE before we answered it.
    pub cancelled: watch::Sender<bool>,
}

impl Dialog {
    pub fn new(
        core: Arc<AgentCore>,
        call_id: String,
        local_tag: String,
        media: Media,
        state: DialogState,
    ) -> Arc<Dialog> {
        Arc::new(Dialog {
            core,
            call_id,
            local_tag,
            media,
            state: Mutex::new(state),
            ended: watch::channel(None).0,
            ending: AtomicBool::new(false),
            acked: watch::channel(0).0,
            cancelled: watch::channel(false).0,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, DialogState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn end_reason(&self) -> Option<EndReason> {
        self.ended.borrow().clone()
    }

    pub fn is_ended(&self) -> bool {
        self.ended.borrow().is_some()
    }

    /// Marks the dialog over (the first reason wins) and stops the media.
    /// Returns whether this call ended it.
    pub fn end(&self, reason: EndReason) -> bool {
        if self.ending.swap(true, Ordering::SeqCst) {
            return false;
        }
        // Media first: whoever sees the call ended sees its media stopped.
        self.media.stop();
        self.ended.send_replace(Some(reason));
        true
    }

    /// Stops routing requests to this dialog (it is over).
    pub fn release(&self) {
        self.core.unregister_dialog(&self.call_id);
    }

    pub async fn wait_ended(&self) -> EndReason {
        let mut ended = self.ended.subscribe();
        let reason = ended.wait_for(Option::is_some).await.map(|r| r.clone());
        reason.ok().flatten().unwrap_or(EndReason::AgentClosed)
    }

    pub fn remote_headers(&self) -> Vec<(String, String)> {
        self.lock().remote_headers.clone()
    }

    pub fn remote_sdp(&self) -> Vec<u8> {
        self.lock().remote_sdp.clone()
    }

    /// A new in-dialog request (not ACK or CANCEL) and where to send it.
    pub fn new_request(
        &self,
        method: Method,
        extra: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<(Request, SocketAddr)> {
        let mut state = self.lock();
        state.local_cseq += 1;
        let cseq = state.local_cseq;
        let request = self.build_request(&state, method, cseq, extra, body)?;
        Ok((request, state.peer))
    }

    /// The ACK of a 2xx to our INVITE with CSeq `cseq`.
    pub fn ack(&self, cseq: u32) -> Result<(Request, SocketAddr)> {
        let state = self.lock();
        let request = self.build_request(&state, Method::Ack, cseq, Vec::new(), None)?;
        Ok((request, state.peer))
    }

    fn build_request(
        &self,
        state: &DialogState,
        method: Method,
        cseq: u32,
        extra: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Request> {
        let core = &self.core;
        let to = match &state.remote_tag {
            Some(tag) => format!("{};tag={tag}", state.remote_uri),
            None => state.remote_uri.clone(),
        };
        let mut headers = vec![
            ("Via".to_string(), core.via(&message::new_branch())),
            ("Max-Forwards".to_string(), "70".to_string()),
            (
                "From".to_string(),
                format!("{};tag={}", state.local_uri, self.local_tag),
            ),
            ("To".to_string(), to),
            ("Call-ID".to_string(), self.call_id.clone()),
            ("CSeq".to_string(), format!("{cseq} {method}")),
        ];
        for route in &state.route_set {
            headers.push(("Route".to_string(), route.clone()));
        }
        if method != Method::Ack {
            headers.push(("Contact".to_string(), core.contact()));
            headers.push(("User-Agent".to_string(), core.config.user_agent.clone()));
        }
        headers.extend(extra);
        let body = match body {
            Some((content_type, bytes)) => {
                headers.push(("Content-Type".to_string(), content_type.to_string()));
                bytes
            }
            None => Vec::new(),
        };
        message::request(method, &state.remote_target, headers, body)
    }

    /// Sends an in-dialog request and waits for its final response.
    pub async fn request(
        &self,
        method: Method,
        extra: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<ResponseInfo> {
        let (request, to) = self.new_request(method, extra, body)?;
        let response = transaction::non_invite(&self.core, request, to).await?;
        Ok(ResponseInfo::from_response(&response))
    }

    /// Ends the call with a BYE; Ok at once when it already ended.
    pub async fn hangup(&self, extra: Vec<(String, String)>) -> Result<()> {
        if !self.end(EndReason::LocalHangup) {
            return Ok(());
        }
        let result = self.request(Method::Bye, extra, None).await;
        self.release();
        let response = result?;
        if (200..300).contains(&response.code) {
            Ok(())
        } else {
            Err(AgentError::Rejected {
                code: response.code,
                reason: response.reason,
                headers: response.headers,
            })
        }
    }

    /// Our SDP, with a new version.
    pub fn local_sdp(
        &self,
        codecs: &[Codec],
        telephone_event: Option<u8>,
        direction: Direction,
    ) -> String {
        let mut state = self.lock();
        state.local_media.version += 1;
        sdp::write(&LocalDescription {
            rtp: self.media.local_addr(),
            session_id: state.local_media.session_id,
            version: state.local_media.version,
            codecs,
            telephone_event,
            direction,
        })
    }

    /// Callee side: sends a response to the initial INVITE. A final one is
    /// retransmitted until the ACK comes.
    pub async fn respond_invite(
        self: &Arc<Self>,
        code: u16,
        extra: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<()> {
        self.send_invite_response(code, extra, body, false).await
    }

    async fn send_invite_response(
        self: &Arc<Self>,
        code: u16,
        extra: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
        even_if_cancelled: bool,
    ) -> Result<()> {
        let (bytes, to, cseq) = {
            let mut state = self.lock();
            if *self.cancelled.borrow() && !even_if_cancelled {
                return Err(AgentError::Cancelled);
            }
            if state.invite_final {
                return Err(AgentError::InvalidState(
                    "the INVITE already has a final response".into(),
                ));
            }
            let Some(invite) = state.invite.as_ref() else {
                return Err(AgentError::InvalidState("not an incoming call".into()));
            };
            let mut headers = vec![("Server".to_string(), self.core.config.user_agent.clone())];
            if code > 100 && code < 300 {
                headers.push(("Contact".to_string(), self.core.contact()));
                headers.push(("Allow".to_string(), ALLOW.to_string()));
            }
            headers.extend(extra);
            let tag = (code > 100).then_some(self.local_tag.as_str());
            let response = message::response(invite, code, tag, headers, body);
            let cseq = message::cseq(&invite.headers).map_or(1, |(n, _)| n);
            let bytes = response.to_bytes();
            state.invite_response = Some(bytes.clone());
            state.invite_final = code >= 200;
            (bytes, state.peer, cseq)
        };
        self.core.send(to, bytes.clone()).await?;
        if code >= 200 {
            tokio::spawn(
                self.clone()
                    .retransmit_until_acked(cseq, bytes, to, code < 300),
            );
        }
        Ok(())
    }

    /// Retransmits a final response to an INVITE until its ACK (Timers G
    /// and H). A 2xx never ACKed ends the call with a BYE; after a non-2xx
    /// the dialog is released either way.
    async fn retransmit_until_acked(
        self: Arc<Self>,
        cseq: u32,
        bytes: Vec<u8>,
        to: SocketAddr,
        success: bool,
    ) {
        let deadline = tokio::time::Instant::now() + self.core.t1() * 64;
        let mut backoff = Backoff::new(self.core.t1(), self.core.t2());
        let mut acked = self.acked.subscribe();
        let was_acked = loop {
            let wake = (tokio::time::Instant::now() + backoff.next_interval()).min(deadline);
            tokio::select! {
                _ = self.core.cancel.cancelled() => return,
                result = acked.wait_for(|&n| n >= cseq) => break result.is_ok(),
                _ = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                break false;
            }
            if !self.core.transport.is_reliable() {
                let _ = self.core.send(to, bytes.clone()).await;
            }
        };
        if !success {
            self.release();
        } else if !was_acked && self.end(EndReason::NoAck) {
            let _ = self.request(Method::Bye, Vec::new(), None).await;
            self.release();
        }
    }

    /// Applies the remote's SDP (offer or answer) to the media. `accepted`
    /// are the codecs we may use, in the order to try them; we send when our
    /// `local` direction sends and the remote's receives.
    pub fn apply_remote_sdp(
        &self,
        remote: &AudioDescription,
        accepted: &[Codec],
        telephone_event: bool,
        local: Direction,
    ) -> Result<Codec> {
        let codec = remote
            .choose_codec(accepted)
            .ok_or_else(|| AgentError::Sdp("no codec in common".into()))?;
        self.media.set_remote(RemoteMedia {
            addr: remote.rtp_addr(),
            codec: codec.clone(),
            telephone_event: if telephone_event {
                remote.telephone_event_at(codec.clock_rate())
            } else {
                None
            },
        });
        self.media
            .set_sending(local.sends() && remote.direction.receives());
        Ok(codec)
    }

    /// Sends a re-INVITE offering our media in `direction` (hold:
    /// `SendOnly`, resume: `SendRecv`) and applies the answer.
    pub async fn reinvite(&self, direction: Direction) -> Result<ResponseInfo> {
        let (codecs, telephone_event) = {
            let state = self.lock();
            (
                state.local_media.codecs.clone(),
                state.local_media.telephone_event,
            )
        };
        let offer = self.local_sdp(&codecs, telephone_event, direction);
        let (request, to) = self.new_request(
            Method::Invite,
            Vec::new(),
            Some(("application/sdp", offer.into_bytes())),
        )?;
        let (response, responses) = transaction::invite(&self.core, &request, to).await?;
        let info = ResponseInfo::from_response(&response);
        if !(200..300).contains(&info.code) {
            let ack = message::ack_for_failure(&request, &response)?.to_bytes();
            self.core.send(to, ack.clone()).await?;
            transaction::linger(&self.core, responses, ack, to);
            return Err(AgentError::Rejected {
                code: info.code,
                reason: info.reason,
                headers: info.headers,
            });
        }
        let cseq = message::cseq(&request.headers).map_or(0, |(n, _)| n);
        let ack = self.ack(cseq)?.0.to_bytes();
        self.core.send(to, ack.clone()).await?;
        transaction::linger(&self.core, responses, ack, to);
        let answer = sdp::parse(&response.body).map_err(AgentError::Sdp)?;
        self.apply_remote_sdp(&answer, &codecs, telephone_event.is_some(), direction)?;
        Ok(info)
    }
}
