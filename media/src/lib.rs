//! Real-time media for switchboard.
//!
//! The control plane (tokio) owns [`MediaEngine`] and talks to media through
//! cheap, cloneable handles: [`LegHandle`] for one call's RTP stream and
//! [`ConferenceHandle`] for an N-1 mix. The actual work happens on media
//! worker threads that tick every 20 ms (see `docs/architecture.md`).
//!
//! Each worker owns its legs and conferences; a conference and all its members
//! live on one worker, so mixing takes no locks. Every tick a worker drains
//! its legs' sockets into jitter buffers, mixes its conferences, runs players
//! and DTMF senders, encodes and sends one packet per leg. Leg commands go
//! through a per-leg mailbox that travels with the leg when joining a
//! conference moves it to another worker, so they run in the order issued.
//! Nothing on the tick allocates in steady state; events (DTMF) and playback
//! outcomes go back over tokio channels.
//!
//! Layout: [`rtp`] (packets), [`g711`] (G.722 and Opus in `codec.rs`), [`dtmf`] (RFC 4733), [`jitter`],
//! [`mixer`] (one tick of N-1 mixing, drivable without sockets), [`analysis`]
//! (tone measurement); internally the worker (`worker.rs`), the legs and
//! conferences it owns, players, clips, ports and the handles (`engine.rs`).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

#[cfg(test)]
mod alloc_count;
pub mod analysis;
#[doc(hidden)]
pub mod bench;
mod clip;
mod codec;
mod conference;
pub mod dtmf;
mod engine;
pub mod g711;
pub mod jitter;
mod leg;
pub mod level;
pub mod mixer;
mod player;
mod plc;
mod ports;
mod recorder;
pub mod resample;
pub mod rtp;
mod stats;
mod udp;
pub mod vad;
mod webrtc;
mod worker;

pub use engine::{ConferenceEvents, ConferenceHandle, LegEvents, LegHandle, MediaEngine};
pub use player::Playback;
pub use ports::RtpSocket;
pub use recorder::Recording;
pub use stats::{LegStats, MediaStats, TickStats};
pub use webrtc::{is_webrtc_offer, WebRtcSession};

/// The narrowband rate: G.711 legs, TTS prompts, in-band DTMF analysis.
/// Conferences mix at the highest rate their members speak (8, 16 or
/// 48 kHz); G.722 legs run at 16 kHz, Opus legs at 48 kHz.
pub const CLOCK_RATE: u32 = 8000;
/// The highest rate anything runs at (Opus).
pub const MAX_RATE: u32 = 48_000;
/// One media tick.
pub const FRAME_MS: u32 = 20;
/// Samples per tick at [`CLOCK_RATE`].
pub const FRAME_SAMPLES: usize = (CLOCK_RATE / 1000 * FRAME_MS) as usize;
/// Samples per tick at [`MAX_RATE`]: the size of every frame buffer.
pub const MAX_FRAME: usize = (MAX_RATE / 1000 * FRAME_MS) as usize;

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
    #[error("conference {0} is closed")]
    ConferenceClosed(String),
    #[error("invalid DTMF digit {0}")]
    InvalidDtmf(String),
    #[error("codec error: {0}")]
    Codec(String),
    #[error("recording failed: {0}")]
    Recording(String),
    #[error("WebRTC: {0}")]
    WebRtc(String),
}

/// Audio codecs a leg can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// G.711 µ-law, static payload type 0.
    Pcmu,
    /// G.711 A-law, static payload type 8.
    Pcma,
    /// G.722 (wideband, 64 kbit/s), static payload type 9: 16 kHz audio on
    /// an 8 kHz RTP clock (RFC 3551 §4.5.2).
    G722,
    /// Opus (RFC 7587): 48 kHz RTP clock, dynamic payload type, mono here.
    Opus,
}

impl Codec {
    /// The SDP encoding name (`PCMU`, `PCMA`, `G722`, `opus`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
            Codec::Opus => "opus",
        }
    }
    /// The PCM rate the leg decodes, mixes, plays and encodes at.
    pub fn pcm_rate(self) -> u32 {
        match self {
            Codec::Pcmu | Codec::Pcma => 8000,
            Codec::G722 => 16_000,
            Codec::Opus => 48_000,
        }
    }
    /// The RTP timestamp clock (and the SDP rtpmap rate). Equal to
    /// [`Codec::pcm_rate`] except for G.722, whose clock stays at 8 kHz
    /// for historical reasons.
    pub fn rtp_clock_rate(self) -> u32 {
        match self {
            Codec::G722 => 8000,
            c => c.pcm_rate(),
        }
    }
    /// Samples of one 20 ms frame at [`Codec::pcm_rate`].
    pub fn frame_samples(self) -> usize {
        frame_samples(self.pcm_rate())
    }
    /// The static RTP payload type; `None` for dynamic ones (Opus).
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            Codec::Pcmu => Some(0),
            Codec::Pcma => Some(8),
            Codec::G722 => Some(9),
            Codec::Opus => None,
        }
    }
    /// Codec from an SDP encoding name (case-insensitive) and rtpmap clock
    /// rate ([`Codec::rtp_clock_rate`]).
    pub fn from_encoding(name: &str, clock_rate: u32) -> Option<Codec> {
        match (name.to_ascii_uppercase().as_str(), clock_rate) {
            ("PCMU", 8000) => Some(Codec::Pcmu),
            ("PCMA", 8000) => Some(Codec::Pcma),
            ("G722", 8000) => Some(Codec::G722),
            ("OPUS", 48_000) => Some(Codec::Opus),
            _ => None,
        }
    }
    /// The codecs the media engine speaks, best first: what to prefer when
    /// we choose (`sdp::negotiate_preferring`).
    pub const PREFERENCE: &'static [Codec] = &[Codec::Opus, Codec::G722, Codec::Pcmu, Codec::Pcma];
}

/// Samples in one 20 ms frame at `rate` Hz.
pub const fn frame_samples(rate: u32) -> usize {
    (rate / 1000 * FRAME_MS) as usize
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

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParticipantOptions {
    /// Not heard by the others.
    pub muted: bool,
    /// Hears nothing of the mix.
    pub deaf: bool,
    /// Extra gain on what the participant says, in dB (on top of automatic
    /// level normalisation), clamped to ±24 dB.
    pub gain_db: f32,
}

/// What a conference reports to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConferenceEvent {
    /// The participant started talking (voice activity, with attack).
    Talking(LegId),
    /// The participant stopped talking (after a hangover), or left while
    /// talking.
    Silent(LegId),
}

/// How to record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// Leg recordings: the caller on the left channel, what it hears on the
    /// right (mono mixes both). Conference recordings are always mono.
    pub stereo: bool,
    /// Conference recordings: also one mono file per participant (what it
    /// says), next to the mix, named `<stem>-<leg>.wav`.
    pub tracks: bool,
}

/// A finished recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingSummary {
    pub path: std::path::PathBuf,
    pub duration_ms: u64,
    /// Per-participant files of a conference recording with `tracks`.
    pub tracks: Vec<std::path::PathBuf>,
    /// Frames the writer could not keep up with (written as silence).
    pub dropped_frames: u64,
}
