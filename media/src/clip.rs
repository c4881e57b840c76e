//! Building [`AudioClip`]s: from WAV bytes, tones, resampling.
//!
//! All of this runs on the calling (control) thread, never on a media tick.

use std::io::Cursor;
use std::sync::Arc;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::{AudioClip, MediaError};

impl AudioClip {
    /// A clip from samples at `rate` Hz.
    pub fn new(rate: u32, samples: Vec<i16>) -> AudioClip {
        AudioClip {
            rate,
            samples: Arc::from(samples),
        }
    }

    /// `ms` milliseconds of silence.
    pub fn silence(rate: u32, ms: u32) -> AudioClip {
        AudioClip::new(rate, vec![0; samples_for(rate, ms)])
    }

    /// A sine tone of `freq` Hz lasting `ms`, peak `amplitude` (full scale
    /// 32767), with 5 ms fades so it starts and stops without clicks.
    pub fn tone(rate: u32, freq: f64, ms: u32, amplitude: i16) -> AudioClip {
        let n = samples_for(rate, ms);
        let fade = samples_for(rate, 5).min(n / 2).max(1);
        let step = std::f64::consts::TAU * freq / f64::from(rate.max(1));
        let samples = (0..n)
            .map(|i| {
                let edge = i.min(n - 1 - i);
                let gain = (edge as f64 / fade as f64).min(1.0);
                (f64::from(amplitude) * gain * (step * i as f64).sin()) as i16
            })
            .collect();
        AudioClip::new(rate, samples)
    }

    /// Decodes a WAV file: integer PCM (8 to 32 bits) or 32-bit float, any
    /// channel count (mixed down to mono by averaging). The rate is kept;
    /// [`AudioClip::resampled`] converts it.
    pub fn from_wav_bytes(bytes: &[u8]) -> Result<AudioClip, MediaError> {
        let invalid = |e: hound::Error| MediaError::InvalidAudio(format!("WAV: {e}"));
        let mut reader = hound::WavReader::new(Cursor::new(bytes)).map_err(invalid)?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels);
        if channels == 0 || spec.sample_rate == 0 {
            return Err(MediaError::InvalidAudio(
                "WAV: no channels or zero sample rate".into(),
            ));
        }
        let interleaved: Vec<i32> = match spec.sample_format {
            hound::SampleFormat::Int => {
                let bits = u32::from(spec.bits_per_sample);
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| scale_to_16_bits(v, bits)))
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?
            }
            hound::SampleFormat::Float => reader
                .samples::<f32>()
                .map(|s| s.map(|v| (v.clamp(-1.0, 1.0) * 32767.0) as i32))
                .collect::<Result<_, _>>()
                .map_err(invalid)?,
        };
        let samples = interleaved
            .chunks_exact(channels)
            .map(|frame| (frame.iter().sum::<i32>() / channels as i32) as i16)
            .collect();
        Ok(AudioClip::new(spec.sample_rate, samples))
    }

    /// The clip at `rate` Hz (a cheap clone if it already is). Uses an FFT
    /// resampler with anti-aliasing; the length scales with the rate.
    pub fn resampled(&self, rate: u32) -> Result<AudioClip, MediaError> {
        if rate == self.rate {
            return Ok(self.clone());
        }
        if rate == 0 || self.rate == 0 {
            return Err(MediaError::InvalidAudio(format!(
                "cannot resample from {} Hz to {rate} Hz",
                self.rate
            )));
        }
        if self.samples.is_empty() {
            return Ok(AudioClip::new(rate, Vec::new()));
        }
        let err = |e: &dyn std::fmt::Display| MediaError::InvalidAudio(format!("resampling: {e}"));
        let input: Vec<f32> = self
            .samples
            .iter()
            .map(|&s| f32::from(s) / 32768.0)
            .collect();
        let mut resampler =
            Fft::<f32>::new(self.rate as usize, rate as usize, 1024, 1, FixedSync::Both)
                .map_err(|e| err(&e))?;
        let adapter = InterleavedSlice::new(&input[..], 1, input.len()).map_err(|e| err(&e))?;
        let output = resampler
            .process_all(&adapter, input.len(), None)
            .map_err(|e| err(&e))?;
        let samples = output
            .take_data()
            .into_iter()
            .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
            .collect();
        Ok(AudioClip::new(rate, samples))
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> u64 {
        if self.rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1000 / u64::from(self.rate)
    }

    /// The clip at `rate` (resampled on the calling thread if needed). A
    /// clip that cannot be resampled plays as nothing.
    pub(crate) fn at_rate(self, rate: u32) -> AudioClip {
        match self.resampled(rate) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("unplayable clip: {e}");
                AudioClip::new(rate, Vec::new())
            }
        }
    }

    /// The clip at the nearest rate a conference can play frame by frame
    /// (8, 16 or 48 kHz, never below its own): the tick converts it to the
    /// room's rate, which may change while it plays.
    pub(crate) fn at_player_rate(self) -> AudioClip {
        let rate = match self.rate {
            0..=8000 => 8000,
            8001..=16_000 => 16_000,
            _ => 48_000,
        };
        self.at_rate(rate)
    }
}

fn samples_for(rate: u32, ms: u32) -> usize {
    (u64::from(rate) * u64::from(ms) / 1000) as usize
}

/// Brings an integer sample of `bits` bits to the 16-bit range.
fn scale_to_16_bits(v: i32, bits: u32) -> i32 {
    if bits >= 16 {
        v >> (bits - 16)
    } else {
        v << (16 - bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{goertzel_power, rms};

    fn wav(
        spec: hound::WavSpec,
        write: impl FnOnce(&mut hound::WavWriter<Cursor<&mut Vec<u8>>>),
    ) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut w = hound::WavWriter::new(Cursor::new(&mut bytes), spec).unwrap();
            write(&mut w);
            w.finalize().unwrap();
        }
        bytes
    }

    fn spec(channels: u16, rate: u32, bits: u16) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: hound::SampleFormat::Int,
        }
    }

    #[test]
    fn wav_mono_16_bit() {
        let bytes = wav(spec(1, 8000, 16), |w| {
            for s in [0i16, 1000, -1000, 32767] {
                w.write_sample(s).unwrap();
            }
        });
        let clip = AudioClip::from_wav_bytes(&bytes).unwrap();
        assert_eq!(clip.rate, 8000);
        assert_eq!(&clip.samples[..], &[0, 1000, -1000, 32767]);
    }

    #[test]
    fn wav_stereo_is_mixed_down() {
        let bytes = wav(spec(2, 16000, 16), |w| {
            for (l, r) in [(1000i16, 3000i16), (-2000, 0)] {
                w.write_sample(l).unwrap();
                w.write_sample(r).unwrap();
            }
        });
        let clip = AudioClip::from_wav_bytes(&bytes).unwrap();
        assert_eq!(clip.rate, 16000);
        assert_eq!(&clip.samples[..], &[2000, -1000]);
    }

    #[test]
    fn wav_8_bit_is_scaled() {
        let bytes = wav(spec(1, 8000, 8), |w| {
            for s in [0i8, 64, -128, 127] {
                w.write_sample(s).unwrap();
            }
        });
        let clip = AudioClip::from_wav_bytes(&bytes).unwrap();
        assert_eq!(&clip.samples[..], &[0, 16384, -32768, 32512]);
    }

    #[test]
    fn wav_float_and_24_bit() {
        let float = hound::WavSpec {
            sample_format: hound::SampleFormat::Float,
            ..spec(1, 8000, 32)
        };
        let bytes = wav(float, |w| {
            for s in [0.5f32, -1.0, 2.0] {
                w.write_sample(s).unwrap();
            }
        });
        let clip = AudioClip::from_wav_bytes(&bytes).unwrap();
        assert_eq!(&clip.samples[..], &[16383, -32767, 32767]);
        let bytes = wav(spec(1, 8000, 24), |w| w.write_sample(0x40_0000i32).unwrap());
        let clip = AudioClip::from_wav_bytes(&bytes).unwrap();
        assert_eq!(&clip.samples[..], &[16384]);
    }

    #[test]
    fn garbage_wav_is_an_error() {
        assert!(matches!(
            AudioClip::from_wav_bytes(b"RIFF????WAVEnot really"),
            Err(MediaError::InvalidAudio(_))
        ));
        assert!(AudioClip::from_wav_bytes(&[]).is_err());
        // A valid header with the data cut short.
        let mut bytes = wav(spec(1, 8000, 16), |w| {
            for _ in 0..100 {
                w.write_sample(5i16).unwrap();
            }
        });
        bytes.truncate(bytes.len() - 51);
        assert!(AudioClip::from_wav_bytes(&bytes).is_err());
    }

    #[test]
    fn tone_has_its_frequency_and_length() {
        let t = AudioClip::tone(8000, 1000.0, 250, 10_000);
        assert_eq!(t.samples.len(), 2000);
        assert_eq!(t.duration_ms(), 250);
        assert_eq!(t.samples[0], 0);
        let p = |f| goertzel_power(&t.samples, 8000, f);
        assert!(p(1000.0) > 1000.0 * p(440.0));
        assert_eq!(AudioClip::silence(8000, 20).samples.len(), 160);
    }

    #[test]
    fn resampling_keeps_pitch_and_level() {
        for rate in [16_000u32, 44_100, 48_000, 22_050] {
            let src = AudioClip::tone(rate, 440.0, 1000, 10_000);
            let out = src.resampled(8000).unwrap();
            assert_eq!(out.rate, 8000);
            let len = out.samples.len() as i64;
            assert!((len - 8000).abs() <= 2, "{rate}: {len} samples");
            let mid = &out.samples[800..7200];
            let p = |f| goertzel_power(mid, 8000, f);
            assert!(p(440.0) > 1000.0 * p(1000.0), "{rate}");
            let level = rms(mid);
            assert!(
                (level - 10_000.0 / 2f64.sqrt()).abs() < 300.0,
                "{rate}: rms {level}"
            );
        }
    }

    #[test]
    fn resampling_edge_cases() {
        let c = AudioClip::tone(8000, 440.0, 100, 1000);
        assert!(Arc::ptr_eq(&c.resampled(8000).unwrap().samples, &c.samples));
        assert!(c.resampled(0).is_err());
        assert!(AudioClip::new(0, vec![1]).resampled(8000).is_err());
        assert!(AudioClip::new(16000, vec![])
            .resampled(8000)
            .unwrap()
            .samples
            .is_empty());
        // A clip shorter than the resampler's chunk.
        let short = AudioClip::new(16000, vec![100; 10])
            .resampled(8000)
            .unwrap();
        assert_eq!(short.samples.len(), 5);
        assert!(AudioClip::new(0, vec![1])
            .at_rate(crate::CLOCK_RATE)
            .samples
            .is_empty());
    }
}
