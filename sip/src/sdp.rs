//! SDP offer/answer (RFC 3264) for audio: parse an offer, pick a codec, write
//! the answer.
//!
//! INTERFACE SKELETON: signatures are the contract; implementation in progress.

use std::net::{IpAddr, SocketAddr};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("no audio stream in the offer")]
    NoAudio,
    #[error("no codec in common")]
    NoCommonCodec,
}

/// One payload format offered on the audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    pub payload_type: u8,
    /// Encoding name as written (`PCMU`, `telephone-event`, `opus`, ...).
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u8,
    pub fmtp: Option<String>,
}

/// The audio part of an SDP offer.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioOffer {
    /// Connection address (media-level `c=` if present, else session-level).
    pub address: IpAddr,
    pub port: u16,
    /// In the offerer's order of preference.
    pub formats: Vec<Format>,
    pub ptime_ms: Option<u32>,
}

/// Parses an SDP offer and returns its first audio stream.
pub fn parse_offer(_body: &[u8]) -> Result<AudioOffer, SdpError> {
    todo!()
}

/// The result of offer/answer for one audio stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Negotiated {
    /// Where the offerer wants RTP.
    pub remote: SocketAddr,
    /// The chosen codec as offered.
    pub codec: Format,
    /// `telephone-event` at the codec's clock rate, if offered.
    pub dtmf: Option<Format>,
    pub ptime_ms: u32,
}

/// Picks the first format in the offerer's order whose (encoding, clock rate)
/// is in `supported`, plus telephone-event at that rate if offered.
pub fn negotiate(_offer: &AudioOffer, _supported: &[(&str, u32)]) -> Result<Negotiated, SdpError> {
    todo!()
}

/// Writes the SDP answer for `negotiated`, advertising `local` (the RTP
/// socket's real address). `session_id` goes into `o=`.
pub fn write_answer(_negotiated: &Negotiated, _local: SocketAddr, _session_id: u64) -> String {
    todo!()
}
