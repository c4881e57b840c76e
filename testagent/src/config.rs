//! Configuration of an agent, of the calls it places and of how it answers.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// SIP transport of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// As written in a Via header (`UDP`, `TCP`).
    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }
}

/// An audio codec to offer or accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, payload type 0.
    Pcmu,
    /// G.711 A-law, payload type 8.
    Pcma,
    /// Opus (RFC 7587), payload type 111, 48 kHz RTP clock; the agent
    /// encodes and decodes it at 8 kHz (its timeline's rate).
    Opus,
    /// Any other format, offered as written. The agent cannot encode or
    /// decode it: it exists to test negotiation failures (e.g. 488).
    Other {
        payload_type: u8,
        encoding: String,
        clock_rate: u32,
    },
}

impl Codec {
    pub fn payload_type(&self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::Opus => 111,
            Codec::Other { payload_type, .. } => *payload_type,
        }
    }

    pub fn encoding(&self) -> &str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::Opus => "opus",
            Codec::Other { encoding, .. } => encoding,
        }
    }

    pub fn clock_rate(&self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::Opus => 48_000,
            Codec::Other { clock_rate, .. } => *clock_rate,
        }
    }

    /// Channels in the `rtpmap` (RFC 7587 writes Opus as `opus/48000/2`).
    pub fn rtpmap_channels(&self) -> Option<u8> {
        matches!(self, Codec::Opus).then_some(2)
    }

    /// Whether this is G.711.
    pub fn is_g711(&self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma)
    }

    /// Whether the agent can send and record this codec.
    pub fn can_encode(&self) -> bool {
        matches!(self, Codec::Pcmu | Codec::Pcma | Codec::Opus)
    }
}

/// How an agent binds and behaves.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub transport: Transport,
    /// Address for SIP and RTP sockets, also written in Via, Contact and
    /// SDP: use a reachable address, not a wildcard.
    pub local_ip: IpAddr,
    /// SIP port; 0 picks a free one.
    pub port: u16,
    /// User part of our Contact and of the default From.
    pub user: String,
    pub user_agent: String,
    /// RFC 3261 T1 (retransmission base). Tests may shorten it.
    pub t1: Duration,
    /// Answer incoming calls automatically (see [`crate::Agent::next_answered`]).
    pub auto_answer: Option<AutoAnswer>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            transport: Transport::Udp,
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            user: "sbagent".to_string(),
            user_agent: "switchboard-testagent".to_string(),
            t1: Duration::from_millis(500),
            auto_answer: None,
        }
    }
}

impl AgentConfig {
    pub fn udp() -> Self {
        AgentConfig::default()
    }

    pub fn tcp() -> Self {
        AgentConfig {
            transport: Transport::Tcp,
            ..AgentConfig::default()
        }
    }

    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    pub fn t1(mut self, t1: Duration) -> Self {
        self.t1 = t1;
        self
    }

    pub fn auto_answer(mut self, auto: AutoAnswer) -> Self {
        self.auto_answer = Some(auto);
        self
    }
}

/// Options of one outgoing call.
#[derive(Debug, Clone)]
pub struct CallOptions {
    /// From URI; defaults to `sip:<user>@<local address>`.
    pub from: Option<String>,
    pub display_name: Option<String>,
    /// Extra headers of the INVITE, e.g. `("X-Room", "42")`.
    pub headers: Vec<(String, String)>,
    /// Offered codecs, in order of preference.
    pub codecs: Vec<Codec>,
    /// Payload type offered for telephone-event, `None` to not offer it.
    pub telephone_event: Option<u8>,
    /// A body sent verbatim instead of the generated offer (to test
    /// malformed or odd SDP). Media then follows the answer as usual.
    pub raw_sdp: Option<String>,
    /// How long to wait for a final response once the remote is ringing;
    /// then the INVITE is cancelled and the call fails with `NoResponse`.
    pub answer_timeout: Duration,
    /// Send no RTP: the SDP (usually `raw_sdp`) points at media the caller
    /// drives itself, e.g. a load generator's shared socket.
    pub external_media: bool,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            from: None,
            display_name: None,
            headers: Vec::new(),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: Some(101),
            raw_sdp: None,
            answer_timeout: Duration::from_secs(60),
            external_media: false,
        }
    }
}

impl CallOptions {
    pub fn from(mut self, uri: impl Into<String>) -> Self {
        self.from = Some(uri.into());
        self
    }

    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn codecs(mut self, codecs: impl IntoIterator<Item = Codec>) -> Self {
        self.codecs = codecs.into_iter().collect();
        self
    }

    pub fn telephone_event(mut self, payload_type: Option<u8>) -> Self {
        self.telephone_event = payload_type;
        self
    }

    /// See [`CallOptions::external_media`].
    pub fn external_media(mut self) -> Self {
        self.external_media = true;
        self
    }

    pub fn raw_sdp(mut self, sdp: impl Into<String>) -> Self {
        self.raw_sdp = Some(sdp.into());
        self
    }

    pub fn answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout;
        self
    }
}

/// How to answer an incoming call.
#[derive(Debug, Clone)]
pub struct AnswerOptions {
    /// Codecs we accept, in our order of preference for an offer-less
    /// INVITE; for an offer, the offerer's order wins among these.
    pub codecs: Vec<Codec>,
    /// Accept telephone-event when offered.
    pub telephone_event: bool,
    /// Extra headers of the 200 OK.
    pub headers: Vec<(String, String)>,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        AnswerOptions {
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            telephone_event: true,
            headers: Vec::new(),
        }
    }
}

impl AnswerOptions {
    pub fn codecs(mut self, codecs: impl IntoIterator<Item = Codec>) -> Self {
        self.codecs = codecs.into_iter().collect();
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Automatic handling of incoming calls.
#[derive(Debug, Clone)]
pub struct AutoAnswer {
    /// Send 180 Ringing before the delay.
    pub ring: bool,
    /// Time between the INVITE and the final response.
    pub delay: Duration,
    /// Final response: 200 answers, anything else rejects with that code.
    pub code: u16,
    pub answer: AnswerOptions,
}

impl Default for AutoAnswer {
    fn default() -> Self {
        AutoAnswer {
            ring: true,
            delay: Duration::ZERO,
            code: 200,
            answer: AnswerOptions::default(),
        }
    }
}

impl AutoAnswer {
    /// Ring, then answer after `delay`.
    pub fn after(delay: Duration) -> Self {
        AutoAnswer {
            delay,
            ..AutoAnswer::default()
        }
    }

    /// Ring, then reject with `code` after `delay`.
    pub fn reject(code: u16, delay: Duration) -> Self {
        AutoAnswer {
            delay,
            code,
            ..AutoAnswer::default()
        }
    }
}
