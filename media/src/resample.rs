//! Frame-by-frame sample-rate conversion between the rates legs and
//! conferences run at (8, 16 and 48 kHz), with `rubato`'s synchronous FFT
//! resampler: fixed 20 ms chunks in and out, no allocation per frame, and
//! a short delay (the FFT runs on 10 ms sub-chunks: a few ms each way).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::{frame_samples, MediaError};

/// Converts one stream of 20 ms frames from one rate to another.
pub struct RateConverter {
    from: u32,
    to: u32,
    /// `None` when the rates are equal (frames are copied).
    fft: Option<Box<Fft<f32>>>,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl std::fmt::Debug for RateConverter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateConverter")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish()
    }
}

impl RateConverter {
    pub fn new(from: u32, to: u32) -> Result<RateConverter, MediaError> {
        let (n_in, n_out) = (frame_samples(from), frame_samples(to));
        if n_in == 0 || n_out == 0 || n_in > crate::MAX_FRAME || n_out > crate::MAX_FRAME {
            return Err(MediaError::InvalidAudio(format!(
                "cannot convert {from} Hz to {to} Hz"
            )));
        }
        let fft = if from == to {
            None
        } else {
            let err =
                |e: &dyn std::fmt::Display| MediaError::InvalidAudio(format!("resampler: {e}"));
            let fft = Fft::<f32>::new_custom(
                from as usize,
                to as usize,
                n_in,
                2,
                1,
                WindowFunction::BlackmanHarris2,
                FixedSync::Both,
            )
            .map_err(|e| err(&e))?;
            if fft.input_frames_next() != n_in || fft.output_frames_next() != n_out {
                return Err(err(&format!(
                    "chunks {}→{} instead of {n_in}→{n_out}",
                    fft.input_frames_next(),
                    fft.output_frames_next()
                )));
            }
            Some(Box::new(fft))
        };
        Ok(RateConverter {
            from,
            to,
            fft,
            input: vec![0.0; n_in],
            output: vec![0.0; n_out],
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// Output samples of delay the conversion adds.
    pub fn delay(&self) -> usize {
        self.fft.as_ref().map_or(0, |f| f.output_delay())
    }

    /// Converts one frame: `input` holds 20 ms at the source rate, `out`
    /// receives 20 ms at the target rate (both exact lengths).
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) {
        let (n_in, n_out) = (self.input.len(), self.output.len());
        let len = n_out.min(out.len());
        let out = &mut out[..len];
        let Some(fft) = self.fft.as_mut() else {
            let n = out.len().min(input.len());
            out[..n].copy_from_slice(&input[..n]);
            out[n..].fill(0);
            return;
        };
        for (d, &s) in self
            .input
            .iter_mut()
            .zip(input.iter().chain(std::iter::repeat(&0)))
        {
            *d = f32::from(s) / 32768.0;
        }
        let ok = match (
            InterleavedSlice::new(&self.input[..], 1, n_in),
            InterleavedSlice::new_mut(&mut self.output[..], 1, n_out),
        ) {
            (Ok(i), Ok(mut o)) => fft.process_into_buffer(&i, &mut o, None).is_ok(),
            _ => false,
        };
        if !ok {
            out.fill(0);
            return;
        }
        for (o, &v) in out.iter_mut().zip(&self.output) {
            *o = (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// Forgets the history (the stream was interrupted).
    pub fn reset(&mut self) {
        if let Some(f) = self.fft.as_mut() {
            f.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{goertzel_power, rms};

    fn tone(rate: u32, freq: f64, frames: usize) -> Vec<i16> {
        (0..frames * frame_samples(rate))
            .map(|i| {
                (10_000.0 * (std::f64::consts::TAU * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn every_pair_keeps_pitch_and_level_with_a_short_delay() {
        for (from, to) in [
            (8000, 48_000),
            (48_000, 8000),
            (8000, 16_000),
            (16_000, 48_000),
            (48_000, 16_000),
            (16_000, 8000),
        ] {
            let mut rc = RateConverter::new(from, to).unwrap();
            assert!(
                rc.delay() * 1000 / to as usize <= 10,
                "{from}→{to}: {} samples",
                rc.delay()
            );
            let input = tone(from, 1000.0, 20);
            let mut out = Vec::new();
            let mut frame = vec![0i16; frame_samples(to)];
            for chunk in input.chunks(frame_samples(from)) {
                rc.process(chunk, &mut frame);
                out.extend_from_slice(&frame);
            }
            let tail = &out[out.len() / 2..];
            let p = |f| goertzel_power(tail, to, f);
            assert!(p(1000.0) > 1000.0 * p(1300.0), "{from}→{to}");
            assert!(
                (rms(tail) - 7071.0).abs() < 400.0,
                "{from}→{to}: rms {}",
                rms(tail)
            );
        }
    }

    #[test]
    fn equal_rates_copy() {
        let mut rc = RateConverter::new(8000, 8000).unwrap();
        let mut out = [0i16; 160];
        rc.process(&[7; 160], &mut out);
        assert_eq!(out, [7; 160]);
        assert!(RateConverter::new(8000, 0).is_err());
    }
}
