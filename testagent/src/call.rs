//! An established call.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::Method;

use crate::dialog::Dialog;
use crate::error::{AgentError, Result};
use crate::media::Media;
use crate::sip::message::ResponseInfo;
use crate::sip::sdp::Direction;

/// Why a call (or an incoming INVITE) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The remote sent BYE (we answered 200); its headers, e.g. `Reason`.
    RemoteBye { headers: Vec<(String, String)> },
    /// We hung up.
    LocalHangup,
    /// We answered and no ACK came (we then sent BYE).
    NoAck,
    /// The caller cancelled before we answered (incoming calls only).
    Cancelled,
    /// The agent shut down.
    AgentClosed,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::RemoteBye { headers } => {
                write!(f, "remote BYE")?;
                match headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("Reason"))
                {
                    Some((_, reason)) => write!(f, " (Reason: {reason})"),
                    None => Ok(()),
                }
            }
            EndReason::LocalHangup => write!(f, "hung up locally"),
            EndReason::NoAck => write!(f, "no ACK for our 200 OK"),
            EndReason::Cancelled => write!(f, "cancelled by the caller"),
            EndReason::AgentClosed => write!(f, "agent shut down"),
        }
    }
}

impl EndReason {
    pub fn is_remote_bye(&self) -> bool {
        matches!(self, EndReason::RemoteBye { .. })
    }
}

struct CallInner {
    dialog: Arc<Dialog>,
}

impl Drop for CallInner {
    /// A call dropped while up is hung up, so a failing test does not
    /// leave it running in the server.
    fn drop(&mut self) {
        if self.dialog.is_ended() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let dialog = self.dialog.clone();
            runtime.spawn(async move {
                let _ = dialog.hangup(Vec::new()).await;
            });
        }
    }
}

/// An answered call, placed or received. Cheap to clone; dropping the last
/// clone of a call still up hangs it up.
///
/// A call derefs to its [`Media`]: `call.play_tone(440.0, 0.3)`,
/// `call.wait_for_tone(...)`, `call.send_dtmf("12#")`.
#[derive(Clone)]
pub struct Call {
    inner: Arc<CallInner>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call_id", &self.call_id())
            .field("ended", &self.end_reason())
            .finish()
    }
}

impl Deref for Call {
    type Target = Media;

    fn deref(&self) -> &Media {
        &self.inner.dialog.media
    }
}

impl Call {
    pub(crate) fn new(dialog: Arc<Dialog>) -> Call {
        Call {
            inner: Arc::new(CallInner { dialog }),
        }
    }

    fn dialog(&self) -> &Dialog {
        &self.inner.dialog
    }

    pub fn media(&self) -> &Media {
        &self.dialog().media
    }

    /// The SIP Call-ID.
    pub fn call_id(&self) -> &str {
        &self.dialog().call_id
    }

    /// Headers of the 200 OK (calls we placed) or of the INVITE (calls we
    /// received).
    pub fn remote_headers(&self) -> Vec<(String, String)> {
        self.dialog().remote_headers()
    }

    /// The first remote header called `name` (case-insensitive).
    pub fn remote_header(&self, name: &str) -> Option<String> {
        self.remote_headers()
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The SDP body of the 200 OK (calls we placed) or of the INVITE
    /// (calls we received).
    pub fn remote_sdp(&self) -> String {
        String::from_utf8_lossy(&self.dialog().remote_sdp()).into_owned()
    }

    pub fn is_ended(&self) -> bool {
        self.dialog().is_ended()
    }

    pub fn end_reason(&self) -> Option<EndReason> {
        self.dialog().end_reason()
    }

    /// Sends BYE and waits for its 200. Ok at once if the call already
    /// ended; a non-2xx answer to the BYE is an error (the call is over
    /// for us anyway).
    pub async fn hangup(&self) -> Result<()> {
        self.dialog().hangup(Vec::new()).await
    }

    /// Like [`Call::hangup`], with extra headers on the BYE.
    pub async fn hangup_with(&self, headers: Vec<(String, String)>) -> Result<()> {
        self.dialog().hangup(headers).await
    }

    /// Waits until the call ends (e.g. the remote's BYE, which was answered
    /// with 200) and returns why.
    pub async fn wait_ended(&self, timeout: Duration) -> Result<EndReason> {
        match tokio::time::timeout(timeout, self.dialog().wait_ended()).await {
            Ok(reason) => Ok(reason),
            Err(_) => Err(AgentError::WaitTimeout {
                what: "the call to end".into(),
                after: timeout,
                details: format!("still up; {} RTP packets received", self.packets_received()),
            }),
        }
    }

    /// Sends an in-dialog request (`INFO`, `OPTIONS`, `MESSAGE`, ...) and
    /// returns the final response.
    pub async fn send_request(
        &self,
        method: Method,
        headers: Vec<(String, String)>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<ResponseInfo> {
        if let Some(reason) = self.end_reason() {
            return Err(AgentError::CallEnded(reason));
        }
        self.dialog().request(method, headers, body).await
    }

    /// Sends a re-INVITE offering our media in `direction` and applies the
    /// answer; returns the 200 OK (a non-2xx is an error, the call stays).
    pub async fn reinvite(&self, direction: Direction) -> Result<ResponseInfo> {
        if let Some(reason) = self.end_reason() {
            return Err(AgentError::CallEnded(reason));
        }
        self.dialog().reinvite(direction).await
    }

    /// Puts the remote on hold: we keep sending, it should stop.
    pub async fn hold(&self) -> Result<ResponseInfo> {
        self.reinvite(Direction::SendOnly).await
    }

    /// Takes the remote off hold.
    pub async fn resume(&self) -> Result<ResponseInfo> {
        self.reinvite(Direction::SendRecv).await
    }

    /// Sends a digit as SIP INFO (`application/dtmf-relay`).
    pub async fn send_info_dtmf(&self, digit: char) -> Result<ResponseInfo> {
        crate::media::dtmf::event_code(digit)?;
        let body = format!("Signal={digit}\r\nDuration=100\r\n");
        self.send_request(
            Method::Info,
            Vec::new(),
            Some(("application/dtmf-relay", body.into_bytes())),
        )
        .await
    }
}
