//! Loudness: per-participant level normalisation (automatic gain within
//! limits, so a loud and a quiet caller sound alike) and the limiter that
//! keeps a mix of several talkers from clipping.

/// Speech level the normaliser aims for (dBFS, full-scale sine = 0).
pub const TARGET_DBFS: f32 = -22.0;
/// Automatic gain limits, in dB.
pub const MAX_BOOST_DB: f32 = 15.0;
pub const MAX_CUT_DB: f32 = 12.0;
/// Gain changes at most this fast while the participant talks (5 dB/s).
const SLEW_DB_PER_FRAME: f32 = 0.1;
/// Speech level estimate: moving average over about 1 s of talk.
const LEVEL_SMOOTHING: f32 = 0.05;
/// User gain limits (`ParticipantOptions::gain_db`).
pub const MAX_USER_GAIN_DB: f32 = 24.0;

pub fn db_to_linear(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// Automatic gain for one participant.
#[derive(Debug, Clone)]
pub struct LevelNormaliser {
    speech_dbfs: Option<f32>,
    auto_db: f32,
    /// The linear gain applied at the end of the last frame (ramps from it).
    applied: f32,
}

impl Default for LevelNormaliser {
    fn default() -> Self {
        LevelNormaliser {
            speech_dbfs: None,
            auto_db: 0.0,
            applied: 1.0,
        }
    }
}

impl LevelNormaliser {
    /// The automatic part of the gain, in dB.
    pub fn auto_gain_db(&self) -> f32 {
        self.auto_db
    }

    /// Learns from one frame at `level_dbfs` while the participant talks.
    pub fn observe_speech(&mut self, level_dbfs: f32) {
        let level = match self.speech_dbfs {
            None => level_dbfs,
            Some(l) => l + LEVEL_SMOOTHING * (level_dbfs - l),
        };
        self.speech_dbfs = Some(level);
        let wanted = (TARGET_DBFS - level).clamp(-MAX_CUT_DB, MAX_BOOST_DB);
        let delta = (wanted - self.auto_db).clamp(-SLEW_DB_PER_FRAME, SLEW_DB_PER_FRAME);
        self.auto_db += delta;
    }

    /// Applies the automatic gain plus `user_db` to `frame` in place,
    /// ramping from the previous frame's gain so changes do not click.
    /// Samples saturate.
    pub fn apply(&mut self, frame: &mut [i16], user_db: f32) {
        let user = user_db.clamp(-MAX_USER_GAIN_DB, MAX_USER_GAIN_DB);
        let target = db_to_linear(self.auto_db + user);
        let from = self.applied;
        self.applied = target;
        if (target - 1.0).abs() < 1e-4 && (from - 1.0).abs() < 1e-4 {
            return;
        }
        let n = frame.len().max(1) as f32;
        for (i, s) in frame.iter_mut().enumerate() {
            let g = from + (target - from) * (i + 1) as f32 / n;
            *s = (f32::from(*s) * g).clamp(-32768.0, 32767.0) as i16;
        }
    }
}

/// Peak limiter for one output stream: sums arrive in 32 bits and leave in
/// 16 without clipping. Instant attack (the frame's gain is chosen so its
/// peak fits), release of 6 dB per 100 ms; the gain ramps within a frame.
#[derive(Debug, Clone)]
pub struct Limiter {
    gain: f32,
}

/// Peaks are held to this (about -0.5 dBFS).
const CEILING: f32 = 30_900.0;
/// Release per frame: 6 dB per 100 ms.
const RELEASE_PER_FRAME: f32 = 1.148;

impl Default for Limiter {
    fn default() -> Self {
        Limiter { gain: 1.0 }
    }
}

impl Limiter {
    /// Writes `sum` into `out`, limited. `peak` is `max |sum|`.
    pub fn process(&mut self, sum: &[i32], out: &mut [i16]) {
        let peak = sum.iter().map(|v| v.unsigned_abs()).max().unwrap_or(0) as f32;
        let released = (self.gain * RELEASE_PER_FRAME).min(1.0);
        let needed = if peak > CEILING { CEILING / peak } else { 1.0 };
        let target = released.min(needed);
        let from = self.gain.min(needed); // attack at once
        self.gain = target;
        if from >= 1.0 && target >= 1.0 {
            for (o, &v) in out.iter_mut().zip(sum) {
                *o = v.clamp(-32768, 32767) as i16;
            }
            return;
        }
        let n = sum.len().max(1) as f32;
        for (i, (o, &v)) in out.iter_mut().zip(sum).enumerate() {
            let g = from + (target - from) * (i + 1) as f32 / n;
            *o = (v as f32 * g).clamp(-32768.0, 32767.0) as i16;
        }
    }

    pub fn gain(&self) -> f32 {
        self.gain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::{level_dbfs, mean_square};

    fn sine(amp: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amp * (std::f64::consts::TAU * 300.0 * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn loud_and_quiet_talkers_converge_on_the_target() {
        for amp in [300.0, 2000.0, 25_000.0] {
            let mut n = LevelNormaliser::default();
            let mut out = Vec::new();
            for _ in 0..400 {
                let mut f = sine(amp, 160);
                n.observe_speech(level_dbfs(mean_square(&f)));
                n.apply(&mut f, 0.0);
                out = f;
            }
            let level = level_dbfs(mean_square(&out));
            let input = level_dbfs(mean_square(&sine(amp, 160)));
            let expected = TARGET_DBFS.clamp(input - MAX_CUT_DB, input + MAX_BOOST_DB);
            assert!(
                (level - expected).abs() < 1.0,
                "amp {amp}: {level} dBFS, expected {expected}"
            );
        }
    }

    #[test]
    fn user_gain_adds_on_top() {
        let mut n = LevelNormaliser::default();
        let mut f = sine(1000.0, 160);
        n.apply(&mut f, 6.0);
        let mut f = sine(1000.0, 160);
        n.apply(&mut f, 6.0); // second frame: ramp done
        let ratio = f.iter().map(|&s| s.unsigned_abs()).max().unwrap() as f32 / 1000.0;
        assert!((ratio - 1.995).abs() < 0.05, "{ratio}");
    }

    #[test]
    fn limiter_keeps_a_loud_sum_in_range_and_recovers() {
        let mut l = Limiter::default();
        let loud: Vec<i32> = sine(30_000.0, 160)
            .iter()
            .map(|&s| 3 * i32::from(s))
            .collect();
        let mut out = [0i16; 160];
        l.process(&loud, &mut out);
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(peak <= 31_000, "{peak}");
        // Quiet again: the gain climbs back to unity.
        let quiet: Vec<i32> = sine(1000.0, 160).iter().map(|&s| i32::from(s)).collect();
        for _ in 0..30 {
            l.process(&quiet, &mut out);
        }
        assert!((l.gain() - 1.0).abs() < 1e-6);
        assert_eq!(out[..], sine(1000.0, 160)[..]);
    }
}
