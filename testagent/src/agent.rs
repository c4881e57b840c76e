//! The agent: one SIP socket, the routing of what arrives on it to
//! transactions and dialogs, and the entry points of the API.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rsipstack::sip::{Method, Request, Response, SipMessage};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::call::Call;
use crate::config::{AgentConfig, AutoAnswer, CallOptions, Transport};
use crate::dialog::DialogInput;
use crate::error::{AgentError, Result};
use crate::incoming::IncomingCall;
use crate::outgoing::{self, OutgoingCall};
use crate::sip::message::{self, ResponseInfo};
use crate::sip::transaction;
use crate::sip::transport::{Inbound, SipTransport};

/// Methods we answer; advertised in Allow.
pub(crate) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY, MESSAGE";

/// A response we sent to a non-INVITE request, replayed when the request
/// is retransmitted (the server transaction's Completed state).
struct SentResponse {
    bytes: Vec<u8>,
    to: SocketAddr,
    expires: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the dispatcher, the dialogs and the calls share.
pub(crate) struct AgentCore {
    pub config: AgentConfig,
    pub transport: Arc<SipTransport>,
    transactions: Mutex<HashMap<String, mpsc::UnboundedSender<Response>>>,
    dialogs: Mutex<HashMap<String, mpsc::UnboundedSender<DialogInput>>>,
    sent_responses: Mutex<HashMap<String, SentResponse>>,
    auto_answer: Mutex<Option<AutoAnswer>>,
    incoming: mpsc::UnboundedSender<IncomingCall>,
    pub answered: mpsc::UnboundedSender<Call>,
    pub cancel: CancellationToken,
}

impl AgentCore {
    pub fn t1(&self) -> Duration {
        self.config.t1
    }

    /// T2 is 4 s, or 8·T1 when tests shorten T1.
    pub fn t2(&self) -> Duration {
        (self.config.t1 * 8).min(Duration::from_secs(4))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    pub fn via(&self, branch: &str) -> String {
        format!(
            "SIP/2.0/{} {};branch={branch};rport",
            self.config.transport.via_name(),
            self.local_addr()
        )
    }

    /// Our URI for `user` (with `;transport=tcp` over TCP).
    pub fn uri_for(&self, user: &str) -> String {
        let transport = match self.config.transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
        };
        format!("sip:{user}@{}{transport}", self.local_addr())
    }

    pub fn contact(&self) -> String {
        format!("<{}>", self.uri_for(&self.config.user))
    }

    pub async fn send(&self, to: SocketAddr, bytes: Vec<u8>) -> Result<()> {
        self.transport.send(to, bytes).await
    }

    pub fn register_transaction(&self, key: &str) -> mpsc::UnboundedReceiver<Response> {
        let (sender, receiver) = mpsc::unbounded_channel();
        lock(&self.transactions).insert(key.to_string(), sender);
        receiver
    }

    pub fn unregister_transaction(&self, key: &str) {
        lock(&self.transactions).remove(key);
    }

    pub fn register_dialog(&self, call_id: &str, inputs: mpsc::UnboundedSender<DialogInput>) {
        lock(&self.dialogs).insert(call_id.to_string(), inputs);
    }

    pub fn unregister_dialog(&self, call_id: &str) {
        lock(&self.dialogs).remove(call_id);
    }

    /// Sends a response to `request`; for non-INVITE requests it is also
    /// kept to answer retransmissions for 64·T1.
    pub async fn respond(&self, request: &Request, response: Response, to: SocketAddr) {
        let bytes = response.to_bytes();
        if request.method != Method::Invite && response.status_code.code() >= 200 {
            if let Some(branch) = message::branch(&request.headers) {
                let now = Instant::now();
                let mut sent = lock(&self.sent_responses);
                sent.retain(|_, s| s.expires > now);
                sent.insert(
                    transaction::key(&branch, &request.method.to_string()),
                    SentResponse {
                        bytes: bytes.clone(),
                        to,
                        expires: now + self.t1() * 64,
                    },
                );
            }
        }
        if let Err(error) = self.send(to, bytes).await {
            tracing::debug!(%to, %error, "could not send a response");
        }
    }

    /// Builds and sends a response to `request`.
    pub async fn reply(&self, request: &Request, code: u16, to: SocketAddr) {
        let extra = vec![
            ("Allow".to_string(), ALLOW.to_string()),
            ("Server".to_string(), self.config.user_agent.clone()),
        ];
        let response =
            message::response(request, code, Some(&message::random_token()), extra, None);
        self.respond(request, response, to).await;
    }

    fn auto_answer(&self) -> Option<AutoAnswer> {
        lock(&self.auto_answer).clone()
    }
}

/// Stops the agent's tasks when the last [`Agent`] clone is dropped.
struct AgentLife(CancellationToken);

impl Drop for AgentLife {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A scriptable SIP user agent: places and receives calls.
///
/// Cheap to clone. Dropping the last clone shuts the agent down, and with
/// it the signalling of its calls: keep it alive for the test.
#[derive(Clone)]
pub struct Agent {
    core: Arc<AgentCore>,
    incoming: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<IncomingCall>>>,
    answered: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Call>>>,
    _life: Arc<AgentLife>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("transport", &self.core.config.transport)
            .field("local", &self.core.local_addr())
            .finish()
    }
}

impl Agent {
    /// Binds the SIP socket and starts serving.
    pub async fn bind(config: AgentConfig) -> Result<Agent> {
        if config.local_ip.is_unspecified() {
            // It goes into Via, Contact and SDP: peers must reach it.
            return Err(AgentError::InvalidState(format!(
                "local_ip {} is a wildcard; give the address peers reach",
                config.local_ip
            )));
        }
        let cancel = CancellationToken::new();
        let addr = SocketAddr::new(config.local_ip, config.port);
        let (transport, inbound) =
            SipTransport::bind(config.transport, addr, cancel.clone()).await?;
        let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
        let (answered_tx, answered_rx) = mpsc::unbounded_channel();
        let core = Arc::new(AgentCore {
            auto_answer: Mutex::new(config.auto_answer.clone()),
            config,
            transport,
            transactions: Mutex::default(),
            dialogs: Mutex::default(),
            sent_responses: Mutex::default(),
            incoming: incoming_tx,
            answered: answered_tx,
            cancel: cancel.clone(),
        });
        tokio::spawn(dispatch(core.clone(), inbound));
        Ok(Agent {
            core,
            incoming: Arc::new(tokio::sync::Mutex::new(incoming_rx)),
            answered: Arc::new(tokio::sync::Mutex::new(answered_rx)),
            _life: Arc::new(AgentLife(cancel)),
        })
    }

    /// The SIP socket's address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.core.local_addr()
    }

    pub fn transport(&self) -> Transport {
        self.core.config.transport
    }

    /// Our SIP URI, e.g. `sip:sbagent@127.0.0.1:40000`: where to call us.
    pub fn uri(&self) -> String {
        self.core.uri_for(&self.core.config.user)
    }

    /// A URI reaching this agent with another user part.
    pub fn uri_for(&self, user: &str) -> String {
        self.core.uri_for(user)
    }

    /// Changes how incoming calls are handled from now on.
    pub fn set_auto_answer(&self, auto: Option<AutoAnswer>) {
        *lock(&self.core.auto_answer) = auto;
    }

    /// Sends an INVITE to `target` and returns at once, with a handle to
    /// watch provisional responses, cancel, or await the answer.
    pub async fn dial(&self, target: &str, options: CallOptions) -> Result<OutgoingCall> {
        outgoing::dial(&self.core, target, options).await
    }

    /// Places a call and waits for the answer: the `Call` once the 200 OK is
    /// ACKed, or the final error (see [`AgentError::status_code`]).
    pub async fn call(&self, target: &str, options: CallOptions) -> Result<Call> {
        self.dial(target, options).await?.answered().await
    }

    /// Places a call as a browser would: a WebRTC offer (DTLS-SRTP, ICE,
    /// Opus, telephone-event) in the INVITE, the answer into a
    /// [`WebRtcPeer`](crate::webrtc::WebRtcPeer) that then connects (ICE,
    /// DTLS) and carries the media. `options`' codecs and media settings
    /// are replaced; headers and the rest apply.
    pub async fn call_webrtc(
        &self,
        target: &str,
        options: CallOptions,
    ) -> Result<crate::webrtc::WebRtcCall> {
        let offer = crate::webrtc::WebRtcOffer::new(self.core.config.local_ip)?;
        let options = options
            .codecs([crate::Codec::Opus])
            .raw_sdp(offer.sdp())
            .external_media();
        let call = self.call(target, options).await?;
        let peer = match offer.accept_answer(&call.remote_sdp()) {
            Ok(peer) => peer,
            Err(e) => {
                let _ = call.hangup().await;
                return Err(e);
            }
        };
        Ok(crate::webrtc::WebRtcCall { call, peer })
    }

    /// The next incoming call, not yet answered (auto-answer off).
    pub async fn accept_next(&self, timeout: Duration) -> Result<IncomingCall> {
        let mut incoming = self.incoming.lock().await;
        match tokio::time::timeout(timeout, incoming.recv()).await {
            Ok(Some(call)) => Ok(call),
            Ok(None) => Err(AgentError::Closed),
            Err(_) => Err(AgentError::WaitTimeout {
                what: "an incoming call".into(),
                after: timeout,
                details: "no INVITE arrived".into(),
            }),
        }
    }

    /// The next call answered by auto-answer.
    pub async fn next_answered(&self, timeout: Duration) -> Result<Call> {
        let mut answered = self.answered.lock().await;
        match tokio::time::timeout(timeout, answered.recv()).await {
            Ok(Some(call)) => Ok(call),
            Ok(None) => Err(AgentError::Closed),
            Err(_) => Err(AgentError::WaitTimeout {
                what: "an auto-answered call".into(),
                after: timeout,
                details: "no call was answered".into(),
            }),
        }
    }

    /// Sends an out-of-dialog OPTIONS and returns the final response (e.g.
    /// to wait until a server listens).
    pub async fn options(&self, target: &str) -> Result<ResponseInfo> {
        let (uri, to) = outgoing::resolve_target(target).await?;
        let core = &self.core;
        let branch = message::new_branch();
        let request = message::request(
            Method::Options,
            &uri,
            vec![
                ("Via".into(), core.via(&branch)),
                ("Max-Forwards".into(), "70".into()),
                (
                    "From".into(),
                    format!(
                        "<{}>;tag={}",
                        core.uri_for(&core.config.user),
                        message::random_token()
                    ),
                ),
                ("To".into(), format!("<{uri}>")),
                (
                    "Call-ID".into(),
                    format!("{}@{}", message::random_token(), core.config.local_ip),
                ),
                ("CSeq".into(), "1 OPTIONS".into()),
                ("Contact".into(), core.contact()),
                ("Accept".into(), "application/sdp".into()),
                ("User-Agent".into(), core.config.user_agent.clone()),
            ],
            Vec::new(),
        )?;
        let response = transaction::non_invite(core, request, to).await?;
        Ok(ResponseInfo::from_response(&response))
    }
}

/// Routes everything that arrives until the agent shuts down.
async fn dispatch(core: Arc<AgentCore>, mut inbound: mpsc::UnboundedReceiver<Inbound>) {
    loop {
        let message = tokio::select! {
            _ = core.cancel.cancelled() => return,
            message = inbound.recv() => message,
        };
        let Some(Inbound { message, from }) = message else {
            return;
        };
        match message {
            SipMessage::Response(response) => route_response(&core, response),
            SipMessage::Request(request) => route_request(&core, request, from).await,
        }
    }
}

fn route_response(core: &AgentCore, response: Response) {
    let key = message::branch(&response.headers)
        .zip(message::cseq(&response.headers))
        .map(|(branch, (_, method))| transaction::key(&branch, &method));
    let sender = key.and_then(|key| lock(&core.transactions).get(&key).cloned());
    match sender {
        Some(sender) => {
            let _ = sender.send(response);
        }
        None => tracing::debug!(code = response.status_code.code(), "stray response dropped"),
    }
}

async fn route_request(core: &Arc<AgentCore>, request: Request, from: SocketAddr) {
    let method = request.method;
    if method != Method::Invite && method != Method::Ack {
        let replay = message::branch(&request.headers).and_then(|branch| {
            let key = transaction::key(&branch, &method.to_string());
            lock(&core.sent_responses)
                .get(&key)
                .map(|s| (s.bytes.clone(), s.to))
        });
        if let Some((bytes, to)) = replay {
            let _ = core.send(to, bytes).await;
            return;
        }
    }
    let Some(call_id) = message::call_id(&request.headers).map(str::to_string) else {
        if method != Method::Ack {
            core.reply(&request, 400, from).await;
        }
        return;
    };
    let dialog = lock(&core.dialogs).get(&call_id).cloned();
    if let Some(dialog) = dialog {
        match dialog.send(DialogInput { request, from }) {
            Ok(()) => return,
            // The dialog just went away: answer as if unknown.
            Err(mpsc::error::SendError(input)) => {
                return answer_unknown(core, input.request, from).await;
            }
        }
    }
    answer_unknown(core, request, from).await
}

/// A request outside any dialog we know.
async fn answer_unknown(core: &Arc<AgentCore>, request: Request, from: SocketAddr) {
    match request.method {
        Method::Ack => {}
        Method::Invite if message::tag(&request.headers, "To").is_none() => {
            new_incoming(core, request, from).await;
        }
        Method::Options => core.reply(&request, 200, from).await,
        _ => core.reply(&request, 481, from).await,
    }
}

async fn new_incoming(core: &Arc<AgentCore>, request: Request, from: SocketAddr) {
    let incoming = match IncomingCall::start(core, request.clone(), from).await {
        Ok(incoming) => incoming,
        Err(error) => {
            tracing::warn!(%error, "cannot take an incoming call");
            core.reply(&request, 500, from).await;
            return;
        }
    };
    match core.auto_answer() {
        Some(auto) => {
            tokio::spawn(crate::incoming::auto_answer(
                incoming,
                auto,
                core.answered.clone(),
            ));
        }
        None => {
            let _ = core.incoming.send(incoming);
        }
    }
}
