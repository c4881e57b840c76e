//! Packet-loss concealment for codecs without their own (G.711), after the
//! idea of ITU-T G.711 Appendix I: repeat the last pitch period of what was
//! heard, fading out over 60 ms, and blend back into real audio when it
//! resumes, so a lost packet is a short sustain instead of a click and a
//! hole.

/// History kept to find the pitch: twice the longest period (30 ms).
const HISTORY_MS: f32 = 2.0 * MAX_PITCH_MS;
/// Pitch periods searched: 2.5 ms (400 Hz) to 15 ms (67 Hz).
const MIN_PITCH_MS: f32 = 2.5;
const MAX_PITCH_MS: f32 = 15.0;
/// Concealment at full level for this long, then a linear fade...
const SUSTAIN_MS: u32 = 10;
/// ...to silence this long after the loss began.
const FADE_END_MS: u32 = 60;
/// Blend from the concealment back into received audio over this long.
const BLEND_MS: u32 = 3;

/// Pitch-repeating concealment for one stream at a fixed rate.
pub(crate) struct PitchRepeater {
    rate: u32,
    /// The last samples heard, oldest first (a sliding window of 30 ms at
    /// the stream's rate: 240 samples for G.711).
    history: Box<[i16]>,
    hist_len: usize,
    /// Concealment in progress: pitch period and position inside it.
    period: usize,
    phase: usize,
    /// Samples concealed in the current loss.
    concealed: usize,
}

impl PitchRepeater {
    pub(crate) fn new(rate: u32) -> PitchRepeater {
        let rate = rate.clamp(8000, 48_000);
        PitchRepeater {
            rate,
            history: vec![0; (HISTORY_MS * rate as f32 / 1000.0) as usize].into_boxed_slice(),
            hist_len: 0,
            period: 0,
            phase: 0,
            concealed: 0,
        }
    }

    fn ms(&self, ms: f32) -> usize {
        (ms * self.rate as f32 / 1000.0) as usize
    }

    /// Real audio arrived: blend it in if a loss was being concealed, then
    /// remember it.
    pub(crate) fn received(&mut self, audio: &mut [i16]) {
        let faded_out = self.concealed >= self.ms(FADE_END_MS as f32);
        if self.concealed > 0 && self.period > 0 && !faded_out {
            let blend = self.ms(BLEND_MS as f32).min(audio.len());
            for (i, s) in audio.iter_mut().take(blend).enumerate() {
                let synthetic = f32::from(self.next_synthetic());
                let w = (i + 1) as f32 / (blend + 1) as f32;
                *s = (synthetic * (1.0 - w) + f32::from(*s) * w) as i16;
            }
        }
        self.concealed = 0;
        self.period = 0;
        self.remember(audio);
    }

    /// Fills `out` for audio that never arrived.
    pub(crate) fn conceal(&mut self, out: &mut [i16]) {
        if self.concealed == 0 {
            self.period = self.find_pitch();
            self.phase = 0;
        }
        if self.period == 0 {
            out.fill(0);
            self.concealed += out.len();
            return;
        }
        let sustain = self.ms(SUSTAIN_MS as f32);
        let end = self.ms(FADE_END_MS as f32).max(sustain + 1);
        for s in out.iter_mut() {
            let v = f32::from(self.next_synthetic());
            let gain = if self.concealed < sustain {
                1.0
            } else if self.concealed < end {
                1.0 - (self.concealed - sustain) as f32 / (end - sustain) as f32
            } else {
                0.0
            };
            *s = (v * gain) as i16;
            self.concealed += 1;
        }
        // What was concealed is not history: the next loss in a row keeps
        // repeating the real last period (already faded above).
    }

    /// The next sample of the repeated period.
    fn next_synthetic(&mut self) -> i16 {
        if self.period == 0 || self.hist_len < self.period {
            return 0;
        }
        let start = self.history.len() - self.period;
        let v = self.history[start + self.phase];
        self.phase = (self.phase + 1) % self.period;
        v
    }

    fn remember(&mut self, audio: &[i16]) {
        let cap = self.history.len();
        let n = audio.len().min(cap);
        let src = &audio[audio.len() - n..];
        self.history.copy_within(n.., 0);
        self.history[cap - n..].copy_from_slice(src);
        self.hist_len = (self.hist_len + n).min(cap);
    }

    /// The pitch period of the recent history by normalised
    /// autocorrelation; 0 if the history is silent or too short. Searched
    /// on a decimated copy above 8 kHz to bound the cost.
    fn find_pitch(&self) -> usize {
        let step = (self.rate / 8000).max(1) as usize;
        let (min, max) = (self.ms(MIN_PITCH_MS), self.ms(MAX_PITCH_MS));
        let window = max; // compare the last `max` samples with lagged ones
        if self.hist_len < window + max {
            return 0;
        }
        let h = &self.history;
        let end = h.len();
        if end < window + max {
            return 0;
        }
        let tail = end - window;
        let energy: f64 = (tail..end)
            .step_by(step)
            .map(|i| f64::from(h[i]).powi(2))
            .sum();
        if energy < 1.0e3 * (window / step) as f64 {
            return 0; // near silence: nothing worth repeating
        }
        let mut best = (0usize, f64::MIN);
        let mut lag = min;
        while lag <= max {
            let mut corr = 0.0f64;
            let mut lagged = 0.0f64;
            for i in (tail..end).step_by(step) {
                let a = f64::from(h[i]);
                let b = f64::from(h[i - lag]);
                corr += a * b;
                lagged += b * b;
            }
            let score = corr / (lagged.sqrt() * energy.sqrt() + 1.0);
            if score > best.1 {
                best = (lag, score);
            }
            lag += step;
        }
        best.0
    }
}

/// White noise at a level given in -dBov (RFC 3389 comfort noise).
#[derive(Debug, Clone)]
pub(crate) struct NoiseGenerator {
    state: u32,
}

impl NoiseGenerator {
    pub(crate) fn new(seed: u32) -> NoiseGenerator {
        NoiseGenerator { state: seed | 1 }
    }

    /// Fills `out` with noise whose RMS is `level` dB below full scale.
    pub(crate) fn fill(&mut self, out: &mut [i16], level: u8) {
        // Uniform noise in [-a, a] has an RMS of a / sqrt(3).
        let rms = 32767.0 * 10f32.powf(-f32::from(level) / 20.0);
        let a = (rms * 3f32.sqrt()).min(32767.0);
        for s in out.iter_mut() {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 17;
            self.state ^= self.state << 5;
            let u = self.state as f32 / u32::MAX as f32; // 0..1
            *s = ((u * 2.0 - 1.0) * a) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{goertzel_power, rms};

    fn sine(freq: f64, n: usize, from: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = (from + i) as f64 / 8000.0;
                (10_000.0 * (std::f64::consts::TAU * freq * t).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn repeats_the_pitch_then_fades_out() {
        let mut plc = PitchRepeater::new(8000);
        for k in 0..4 {
            plc.received(&mut sine(250.0, 160, k * 160));
        }
        let mut first = [0i16; 80];
        plc.conceal(&mut first);
        // 10 ms of sustain keeps the level and the frequency.
        assert!(rms(&first) > 6000.0, "{}", rms(&first));
        assert!(goertzel_power(&first, 8000, 250.0) > 1.0e7);
        let mut later = [0i16; 480];
        plc.conceal(&mut later);
        // Concealed samples 80..560: the fade ends at 480 (60 ms).
        assert!(rms(&later[200..320]) > 100.0, "still fading at 35-50 ms");
        assert!(rms(&later[400..]) < 10.0, "silent after 60 ms");
    }

    #[test]
    fn comfort_noise_has_its_level() {
        let mut n = NoiseGenerator::new(5);
        let mut out = [0i16; 1600];
        n.fill(&mut out, 40);
        let level = 20.0 * (rms(&out) / 32767.0).log10();
        assert!((level + 40.0).abs() < 1.0, "{level} dB");
    }

    #[test]
    fn silence_conceals_as_silence_and_resume_blends() {
        let mut plc = PitchRepeater::new(8000);
        plc.received(&mut [0i16; 480]);
        let mut out = [5i16; 160];
        plc.conceal(&mut out);
        assert!(out.iter().all(|&s| s == 0));
        let mut real = sine(300.0, 160, 0);
        let before = real.clone();
        plc.received(&mut real);
        // Nothing was being repeated: real audio passes untouched.
        assert_eq!(real, before);
    }
}
