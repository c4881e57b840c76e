//! G.711 µ-law (PCMU) and A-law (PCMA) frame coding.
//!
//! The per-sample laws come from `audio-codec-algorithms` (no allocation, no
//! panics, checked against the ITU-T G.191 reference for every input); this
//! module only applies them to whole frames.

use audio_codec_algorithms::{decode_alaw, decode_ulaw, encode_alaw, encode_ulaw};

use crate::Codec;

/// Encodes `pcm` into `out` (one byte per sample). Returns the bytes written:
/// `min(pcm.len(), out.len())`, or 0 for a codec that is not G.711.
pub fn encode(codec: Codec, pcm: &[i16], out: &mut [u8]) -> usize {
    let n = pcm.len().min(out.len());
    match codec {
        Codec::G722 | Codec::Opus => return 0,
        Codec::Pcmu => {
            for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
                *o = encode_ulaw(s);
            }
        }
        Codec::Pcma => {
            for (o, &s) in out[..n].iter_mut().zip(&pcm[..n]) {
                *o = encode_alaw(s);
            }
        }
    }
    n
}

/// Decodes `data` into `out`. Returns the samples written:
/// `min(data.len(), out.len())`, or 0 for a codec that is not G.711.
pub fn decode(codec: Codec, data: &[u8], out: &mut [i16]) -> usize {
    let n = data.len().min(out.len());
    match codec {
        Codec::G722 | Codec::Opus => return 0,
        Codec::Pcmu => {
            for (o, &b) in out[..n].iter_mut().zip(&data[..n]) {
                *o = decode_ulaw(b);
            }
        }
        Codec::Pcma => {
            for (o, &b) in out[..n].iter_mut().zip(&data[..n]) {
                *o = decode_alaw(b);
            }
        }
    }
    n
}

/// The code word of digital silence (linear 0) for `codec` (µ-law's for a
/// codec that is not G.711).
pub fn silence_byte(codec: Codec) -> u8 {
    match codec {
        Codec::Pcma => encode_alaw(0),
        Codec::Pcmu | Codec::G722 | Codec::Opus => encode_ulaw(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from ITU-T G.711 tables 1a/1b and 2a/2b: the decision and
    // reconstruction levels at the ends of the segments (linear values are
    // 16-bit, i.e. the 13-/14-bit G.711 levels shifted left).
    #[test]
    fn ulaw_known_values() {
        let mut out = [0u8; 6];
        encode(Codec::Pcmu, &[0, -1, 32767, -32768, 8, -8], &mut out);
        // 0 → 0xFF (positive zero), -1 → 0x7F (negative zero), full scale → 0x80 / 0x00.
        assert_eq!(out, [0xFF, 0x7F, 0x80, 0x00, 0xFE, 0x7E]);
        let mut pcm = [0i16; 6];
        decode(Codec::Pcmu, &[0xFF, 0x7F, 0x80, 0x00, 0xEF, 0x6F], &mut pcm);
        assert_eq!(pcm, [0, 0, 32124, -32124, 132, -132]);
    }

    #[test]
    fn alaw_known_values() {
        let mut out = [0u8; 4];
        encode(Codec::Pcma, &[0, -1, 32767, -32768], &mut out);
        // Even bits inverted: positive smallest step → 0xD5, negative → 0x55.
        assert_eq!(out, [0xD5, 0x55, 0xAA, 0x2A]);
        let mut pcm = [0i16; 4];
        decode(Codec::Pcma, &[0xD5, 0x55, 0xAA, 0x2A], &mut pcm);
        assert_eq!(pcm, [8, -8, 32256, -32256]);
    }

    #[test]
    fn silence_bytes() {
        assert_eq!(silence_byte(Codec::Pcmu), 0xFF);
        assert_eq!(silence_byte(Codec::Pcma), 0xD5);
    }

    /// Every code word decodes to a level that encodes back to the same code
    /// word (µ-law's negative zero 0x7F aliases to positive zero 0xFF).
    #[test]
    fn code_words_round_trip() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for byte in 0..=255u8 {
                let mut pcm = [0i16; 1];
                decode(codec, &[byte], &mut pcm);
                let mut back = [0u8; 1];
                encode(codec, &pcm, &mut back);
                if codec == Codec::Pcmu && byte == 0x7F {
                    assert_eq!(back[0], 0xFF);
                } else {
                    assert_eq!(back[0], byte, "{codec:?} code {byte:#04x}");
                }
            }
        }
    }

    /// Linear → law → linear stays within the segment's quantisation step:
    /// the relative error of companding is bounded (about 1/16 of the value
    /// above the first segments, the absolute error small near zero).
    #[test]
    fn linear_round_trip_error_is_bounded() {
        for codec in [Codec::Pcmu, Codec::Pcma] {
            for x in (-32768i32..=32767).step_by(7) {
                let x = x as i16;
                let mut b = [0u8; 1];
                encode(codec, &[x], &mut b);
                let mut y = [0i16; 1];
                decode(codec, &b, &mut y);
                let err = (i32::from(x) - i32::from(y[0])).abs();
                let bound = (i32::from(x).abs() / 16).max(64);
                assert!(err <= bound, "{codec:?}: {x} → {} (err {err})", y[0]);
            }
        }
    }

    #[test]
    fn lengths_are_clamped() {
        let mut out = [0u8; 2];
        assert_eq!(encode(Codec::Pcmu, &[1, 2, 3], &mut out), 2);
        let mut pcm = [0i16; 3];
        assert_eq!(decode(Codec::Pcma, &[0xD5], &mut pcm), 1);
    }
}
