//! Real-time media for switchboard.
//!
//! The control plane (tokio) owns [`MediaEngine`] and talks to media through
//! cheap, cloneable handles: [`LegHandle`] for one call's RTP stream and
//! [`ConferenceHandle`] for an N-1 mix. The actual work happens on media
//! worker threads that tick every 20 ms (see `docs/architecture.md`).
//!
//! INTERFACE SKELETON: the public API below is the contract the engine is
//! written against. Implementation is in progress.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// Internal sample rate of legs, players and the mixer (narrowband for now).
pub const CLOCK_RATE: u32 = 8000;
/// One media tick.
pub const FRAME_MS: u32 = 20;
/// Samples per tick at [`CLOCK_RATE`].
pub const FRAME_SAMPLES: usize = (CLOCK_RATE / 1000 * FRAME_MS) as usize;

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("no free RTP port in {0:?}")]
    NoFreePort(RangeInclusive<u16>),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid audio: {0}")]
    InvalidAudio(String),
    #[error("media engine is shut down")]
    ShutDown,
    #[error("leg {0} is closed")]
    LegClosed(LegId),
}

/// Audio codecs a leg can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
}

impl Codec {
    /// The SDP encoding name (`PCMU`, `PCMA`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }
    /// RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        8000
    }
    /// The static RTP payload type.
    pub fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
    /// Codec from an SDP encoding name (case-insensitive) and clock rate.
    pub fn from_encoding(name: &str, clock_rate: u32) -> Option<Codec> {
        match (name.to_ascii_uppercase().as_str(), clock_rate) {
            ("PCMU", 8000) => Some(Codec::Pcmu),
            ("PCMA", 8000) => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// Mono 16-bit PCM audio at some sample rate, cheap to clone.
#[derive(Debug, Clone)]
pub struct AudioClip {
    pub rate: u32,
    pub samples: Arc<[i16]>,
}

/// Where media sockets come from.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// Address RTP sockets bind to (and advertise in SDP unless overridden).
    pub bind_ip: IpAddr,
    /// Port range for RTP sockets; one even port per leg.
    pub rtp_ports: RangeInclusive<u16>,
    /// Worker threads (0 = one per core).
    pub workers: usize,
}

/// Identifies a leg inside one [`MediaEngine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u64);

impl std::fmt::Display for LegId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "leg-{}", self.0)
    }
}

/// Negotiated parameters for a leg's RTP stream.
#[derive(Debug, Clone)]
pub struct LegParams {
    /// Where to send RTP (from the SDP; replaced by the source of received
    /// RTP once packets arrive: symmetric RTP).
    pub remote: SocketAddr,
    pub codec: Codec,
    /// Payload type for `codec` as negotiated.
    pub payload_type: u8,
    /// Negotiated `telephone-event` payload type, if any.
    pub dtmf_payload_type: Option<u8>,
    /// Free text for logs (the call id).
    pub label: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PlayOptions {
    /// Start over when the clip ends, until stopped.
    pub looped: bool,
}

/// How a playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayOutcome {
    /// The clip played to its end.
    Finished,
    /// `stop_media`, a newer `play`, or removal stopped it.
    Interrupted,
    /// The leg or conference closed while playing.
    Closed,
}

/// Where a DTMF digit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    Rfc4733,
    SipInfo,
    Inband,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfDigit {
    /// One of `0-9 * # A-D`.
    pub digit: char,
    pub source: DtmfSource,
    pub duration_ms: u32,
}

/// Events a leg reports to the control plane.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    Dtmf(DtmfDigit),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ParticipantOptions {
    pub muted: bool,
    pub deaf: bool,
}

// ---------------------------------------------------------------------------
// Handles (contract). Bodies are placeholders until the workers land.
// ---------------------------------------------------------------------------

/// The media engine: worker threads, the RTP port pool, legs and conferences.
/// Cheap to clone; all clones share the same workers.
#[derive(Clone)]
pub struct MediaEngine {
    _private: (),
}

/// A bound RTP socket not yet attached to a leg (bind first, so the SDP answer
/// can carry the address the socket is really bound to).
pub struct RtpSocket {
    _private: (),
}

impl RtpSocket {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        todo!()
    }
}

impl MediaEngine {
    /// Starts the worker threads.
    pub fn start(_config: MediaConfig) -> Result<MediaEngine, MediaError> {
        todo!()
    }
    /// Binds an RTP socket on a free even port of the configured range.
    pub fn allocate_socket(&self) -> Result<RtpSocket, MediaError> {
        todo!()
    }
    /// Starts sending and receiving on `socket`. Until the leg plays
    /// something or joins a conference it sends paced silence.
    pub fn start_leg(
        &self,
        _socket: RtpSocket,
        _params: LegParams,
    ) -> Result<(LegHandle, LegEvents), MediaError> {
        todo!()
    }
    /// Creates an empty conference (N-1 mix) on one of the workers.
    pub fn create_conference(&self, _name: &str) -> ConferenceHandle {
        todo!()
    }
    /// Closes every leg and conference and stops the workers.
    pub fn shutdown(&self) {
        todo!()
    }
}

/// Control handle of one leg. Cheap to clone. Commands issued on a handle take
/// effect in the order issued, on the next tick at the latest.
#[derive(Clone)]
pub struct LegHandle {
    _private: (),
}

impl LegHandle {
    pub fn id(&self) -> LegId {
        todo!()
    }
    /// Plays `clip` to this leg's caller (resampled to [`CLOCK_RATE`] if
    /// needed). Replaces (interrupts) what the leg was playing. While the leg
    /// is in a conference the clip is mixed on top of what it hears there.
    pub fn play(&self, _clip: AudioClip, _opts: PlayOptions) -> Playback {
        todo!()
    }
    /// Stops the current playback (it resolves `Interrupted`).
    pub fn stop_media(&self) {
        todo!()
    }
    /// Stops the leg, leaves any conference and frees its port. Idempotent.
    pub fn close(&self) {
        todo!()
    }
}

/// Events from one leg, in order. Ends (`None`) after the leg closes.
pub struct LegEvents {
    _private: (),
}

impl LegEvents {
    pub async fn recv(&mut self) -> Option<LegEvent> {
        todo!()
    }
}

/// A playback in progress; await it for its outcome. Dropping it does not stop
/// the audio.
pub struct Playback {
    _private: (),
}

impl std::future::Future for Playback {
    type Output = PlayOutcome;
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<PlayOutcome> {
        todo!()
    }
}

/// Control handle of one conference. Cheap to clone.
#[derive(Clone)]
pub struct ConferenceHandle {
    _private: (),
}

impl ConferenceHandle {
    pub fn name(&self) -> &str {
        todo!()
    }
    /// Moves `leg` into the mix: from the next tick it hears everyone else
    /// (N-1) and is heard by them (unless muted/deaf).
    pub fn add(&self, _leg: &LegHandle, _opts: ParticipantOptions) -> Result<(), MediaError> {
        todo!()
    }
    /// Takes `leg` out of the mix (it goes back to hearing its own player or
    /// silence). Closing a leg removes it too.
    pub fn remove(&self, _leg: &LegHandle) {
        todo!()
    }
    /// Plays `clip` into the mix: every participant hears it.
    pub fn play(&self, _clip: AudioClip, _opts: PlayOptions) -> Playback {
        todo!()
    }
    /// Ends the conference; participants go back to standalone legs.
    pub fn close(&self) {
        todo!()
    }
}
