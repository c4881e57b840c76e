//! Per-leg codec state: what decodes a leg's packets (with packet-loss
//! concealment and Opus FEC) and what encodes its outgoing audio.
//!
//! Both work at the codec's PCM rate ([`Codec::pcm_rate`]): 8 kHz for
//! G.711, 16 kHz for G.722, 48 kHz for Opus (mono). Nothing here allocates
//! after construction.

use audio_codec::g722::{G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use crate::jitter::PayloadDecoder;
use crate::plc::PitchRepeater;
use crate::{g711, Codec, MediaError};

/// Largest encoded frame we produce or accept (Opus allows up to 1275 bytes
/// per frame; 20 ms of G.711 is 160).
pub const MAX_ENCODED: usize = 1500;
/// Opus bit rate for voice: wideband speech with room for in-band FEC.
const OPUS_BITRATE: i32 = 32_000;
/// Expected loss the Opus encoder protects against with in-band FEC.
const OPUS_LOSS_PERCENT: i32 = 10;
/// Opus decodes in multiples of 2.5 ms (120 samples at 48 kHz).
const OPUS_GRANULE: usize = 120;

/// Decodes one leg's audio payloads.
pub(crate) enum LegDecoder {
    G711 { codec: Codec, plc: PitchRepeater },
    G722(Box<G722Dec>),
    Opus(Box<OpusDecoder>),
}

pub(crate) struct G722Dec {
    decoder: G722Decoder,
    plc: PitchRepeater,
}

pub(crate) struct OpusDecoder {
    decoder: opus::Decoder,
}

impl LegDecoder {
    pub(crate) fn new(codec: Codec) -> Result<LegDecoder, MediaError> {
        Ok(match codec {
            Codec::Pcmu | Codec::Pcma => LegDecoder::G711 {
                codec,
                plc: PitchRepeater::new(codec.pcm_rate()),
            },
            // 64 kbit/s, one code byte per two 16 kHz samples (RFC 3551).
            Codec::G722 => LegDecoder::G722(Box::new(G722Dec {
                decoder: G722Decoder::new(),
                plc: PitchRepeater::new(codec.pcm_rate()),
            })),
            Codec::Opus => {
                let decoder = opus::Decoder::new(48_000, opus::Channels::Mono)
                    .map_err(|e| MediaError::Codec(format!("opus decoder: {e}")))?;
                LegDecoder::Opus(Box::new(OpusDecoder { decoder }))
            }
        })
    }
}

impl PayloadDecoder for LegDecoder {
    fn samples(&self, payload: &[u8]) -> usize {
        match self {
            LegDecoder::G711 { .. } => payload.len(),
            LegDecoder::G722(_) => payload.len() * 2,
            // Samples per channel at 48 kHz; garbage counts as unusable.
            LegDecoder::Opus(_) => opus::packet::get_nb_samples(payload, 48_000).unwrap_or(0),
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        match self {
            LegDecoder::G711 { codec, plc } => {
                let n = g711::decode(*codec, payload, out);
                plc.received(&mut out[..n]);
                n
            }
            LegDecoder::G722(d) => {
                // Only whole bytes that fit: the decoder fails (after
                // writing) on a short buffer.
                let bytes = payload.len().min(out.len() / 2);
                let n = d.decoder.decode_into(&payload[..bytes], out).unwrap_or(0);
                d.plc.received(&mut out[..n]);
                n
            }
            LegDecoder::Opus(d) => match d.decoder.decode(payload, out, false) {
                Ok(n) => n,
                Err(e) => {
                    tracing::trace!("opus decode: {e}");
                    0
                }
            },
        }
    }

    fn conceal(&mut self, out: &mut [i16]) {
        match self {
            LegDecoder::G711 { plc, .. } => plc.conceal(out),
            LegDecoder::G722(d) => d.plc.conceal(out),
            LegDecoder::Opus(d) => d.conceal(out),
        }
    }

    fn recover(&mut self, next: &[u8], out: &mut [i16]) -> bool {
        match self {
            LegDecoder::G711 { .. } | LegDecoder::G722(_) => false,
            LegDecoder::Opus(d) => {
                // FEC data describes the frame right before `next`, so the
                // request must be a whole number of 2.5 ms granules.
                if out.is_empty() || !out.len().is_multiple_of(OPUS_GRANULE) {
                    return false;
                }
                matches!(d.decoder.decode(next, out, true), Ok(n) if n == out.len())
            }
        }
    }
}

impl OpusDecoder {
    /// Opus's own concealment, in whole granules; a ragged end fades out.
    fn conceal(&mut self, out: &mut [i16]) {
        let whole = out.len() / OPUS_GRANULE * OPUS_GRANULE;
        let mut done = 0;
        if whole > 0 {
            match self.decoder.decode(&[], &mut out[..whole], false) {
                Ok(n) => done = n.min(whole),
                Err(e) => tracing::trace!("opus plc: {e}"),
            }
        }
        out[done..].fill(0);
    }
}

/// Encodes one leg's (or one shared group's) outgoing audio.
pub(crate) enum LegEncoder {
    G711(Codec),
    G722(Box<G722Encoder>),
    Opus(Box<opus::Encoder>),
}

impl LegEncoder {
    pub(crate) fn new(codec: Codec) -> Result<LegEncoder, MediaError> {
        Ok(match codec {
            Codec::Pcmu | Codec::Pcma => LegEncoder::G711(codec),
            Codec::G722 => LegEncoder::G722(Box::new(G722Encoder::new())),
            Codec::Opus => {
                let err = |e: opus::Error| MediaError::Codec(format!("opus encoder: {e}"));
                let mut enc =
                    opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                        .map_err(err)?;
                enc.set_bitrate(opus::Bitrate::Bits(OPUS_BITRATE))
                    .map_err(err)?;
                enc.set_inband_fec(true).map_err(err)?;
                enc.set_packet_loss_perc(OPUS_LOSS_PERCENT).map_err(err)?;
                // Moderate complexity: a talker's private encode is per tick.
                enc.set_complexity(5).map_err(err)?;
                LegEncoder::Opus(Box::new(enc))
            }
        })
    }

    /// Encodes one 20 ms frame at the codec's rate into `out`; returns the
    /// payload length (0 on failure: nothing to send).
    pub(crate) fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        match self {
            LegEncoder::G711(codec) => g711::encode(*codec, pcm, out),
            LegEncoder::G722(enc) => {
                // Whole sample pairs that fit in `out` (one byte each).
                let n = pcm.len().min(out.len() * 2) & !1;
                enc.encode_into(&pcm[..n], out).unwrap_or(0)
            }
            LegEncoder::Opus(enc) => match enc.encode(pcm, out) {
                Ok(n) => n,
                Err(e) => {
                    tracing::trace!("opus encode: {e}");
                    0
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::goertzel_power;

    fn tone(rate: u32, freq: f64, n: usize, phase0: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (phase0 + i) as f64 / f64::from(rate);
                (8000.0 * (std::f64::consts::TAU * freq * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn opus_round_trip_keeps_a_tone() {
        let mut enc = LegEncoder::new(Codec::Opus).unwrap();
        let mut dec = LegDecoder::new(Codec::Opus).unwrap();
        let mut heard = Vec::new();
        let mut packet = [0u8; MAX_ENCODED];
        for k in 0..25 {
            let pcm = tone(48_000, 1000.0, 960, k * 960);
            let n = enc.encode(&pcm, &mut packet);
            assert!(n > 0 && n < 400, "{n} bytes");
            assert_eq!(dec.samples(&packet[..n]), 960);
            let mut out = [0i16; 960];
            assert_eq!(dec.decode(&packet[..n], &mut out), 960);
            heard.extend_from_slice(&out);
        }
        let tail = &heard[960 * 10..];
        let p = |f| goertzel_power(tail, 48_000, f);
        assert!(p(1000.0) > 1.0e7, "{}", p(1000.0));
        assert!(p(1000.0) > 1000.0 * p(1500.0));
    }

    #[test]
    fn opus_fec_recovers_a_lost_frame() {
        let mut enc = LegEncoder::new(Codec::Opus).unwrap();
        let mut dec = LegDecoder::new(Codec::Opus).unwrap();
        let mut packets = Vec::new();
        for k in 0..30 {
            let pcm = tone(48_000, 440.0, 960, k * 960);
            let mut packet = [0u8; MAX_ENCODED];
            let n = enc.encode(&pcm, &mut packet);
            packets.push(packet[..n].to_vec());
        }
        let mut out = [0i16; 960];
        for p in &packets[..20] {
            dec.decode(p, &mut out);
        }
        // Packet 20 is lost; 21 carries its FEC copy.
        assert!(dec.recover(&packets[21], &mut out));
        let p = goertzel_power(&out, 48_000, 440.0);
        assert!(p > 1.0e6, "recovered frame has the tone: {p}");
        assert!(!dec.recover(&packets[21], &mut out[..100]));
        // Garbage is unusable, not a panic.
        assert_eq!(dec.samples(&[0xff, 0xff, 0xff]), 0);
    }

    #[test]
    fn g722_round_trip_keeps_a_wideband_tone() {
        let mut enc = LegEncoder::new(Codec::G722).unwrap();
        let mut dec = LegDecoder::new(Codec::G722).unwrap();
        let mut heard = Vec::new();
        let mut packet = [0u8; MAX_ENCODED];
        for k in 0..25 {
            let pcm = tone(16_000, 5000.0, 320, k * 320);
            let n = enc.encode(&pcm, &mut packet);
            assert_eq!(n, 160, "64 kbit/s: one byte per two samples");
            assert_eq!(dec.samples(&packet[..n]), 320);
            let mut out = [0i16; 320];
            assert_eq!(dec.decode(&packet[..n], &mut out), 320);
            heard.extend_from_slice(&out);
        }
        // 5 kHz is beyond G.711's band: only a wideband codec carries it.
        let tail = &heard[320 * 5..];
        let p = |f| goertzel_power(tail, 16_000, f);
        assert!(p(5000.0) > 1.0e7, "{}", p(5000.0));
        assert!(
            p(5000.0) > 100.0 * p(3000.0),
            "{} vs {}",
            p(5000.0),
            p(3000.0)
        );
        // A short output buffer decodes what fits instead of nothing.
        let mut short = [0i16; 100];
        assert_eq!(dec.decode(&packet[..160], &mut short), 100);
        let mut concealed = [0i16; 320];
        dec.conceal(&mut concealed);
        let c = goertzel_power(&concealed, 16_000, 5000.0);
        assert!(c > 1.0e6, "concealment continues the tone: {c}");
    }

    #[test]
    fn g711_decoder_conceals_with_the_last_pitch() {
        let mut dec = LegDecoder::new(Codec::Pcmu).unwrap();
        let mut enc = LegEncoder::new(Codec::Pcmu).unwrap();
        let mut out = [0i16; 160];
        for k in 0..5 {
            let pcm = tone(8000, 500.0, 160, k * 160);
            let mut payload = [0u8; 160];
            enc.encode(&pcm, &mut payload);
            dec.decode(&payload, &mut out);
        }
        let mut concealed = [0i16; 160];
        dec.conceal(&mut concealed);
        let p = goertzel_power(&concealed, 8000, 500.0);
        assert!(p > 1.0e6, "concealment continues the tone: {p}");
    }
}
