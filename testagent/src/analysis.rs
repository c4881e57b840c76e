//! Measurements on 8 kHz recordings: tone levels (Goertzel), RMS, and a
//! coarse speech detector. Levels are in dBFS where 0 dBFS is a full-scale
//! sine, so a tone of amplitude `a` (fraction of full scale) measures
//! `20·log10(a)` both as a tone level and, alone, as RMS.

use std::f64::consts::PI;
use std::fmt;
use std::time::Duration;

/// Sample rate of every recording and of everything the agent plays.
pub const SAMPLE_RATE: u32 = 8000;

/// The floor reported for silence, instead of -∞.
pub const FLOOR_DBFS: f64 = -120.0;

/// Samples in `duration` at [`SAMPLE_RATE`].
pub fn samples_in(duration: Duration) -> usize {
    (duration.as_secs_f64() * f64::from(SAMPLE_RATE)).round() as usize
}

fn to_dbfs(amplitude: f64) -> f64 {
    if amplitude <= 0.0 {
        FLOOR_DBFS
    } else {
        (20.0 * amplitude.log10()).max(FLOOR_DBFS)
    }
}

/// Amplitude (fraction of full scale) of the sine component at `freq_hz`,
/// by a Hann-windowed Goertzel filter over the whole slice.
pub fn tone_amplitude(samples: &[i16], freq_hz: f32) -> f64 {
    let n = samples.len();
    if n < 2 {
        return 0.0;
    }
    let omega = 2.0 * PI * f64::from(freq_hz) / f64::from(SAMPLE_RATE);
    let coefficient = 2.0 * omega.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut window_sum = 0.0;
    for (i, &sample) in samples.iter().enumerate() {
        let window = 0.5 - 0.5 * (2.0 * PI * i as f64 / (n - 1) as f64).cos();
        window_sum += window;
        let s0 = f64::from(sample) / 32768.0 * window + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
    2.0 * power.max(0.0).sqrt() / window_sum
}

/// Goertzel power at `freq_hz` (the squared amplitude).
pub fn goertzel_power(samples: &[i16], freq_hz: f32) -> f64 {
    tone_amplitude(samples, freq_hz).powi(2)
}

/// Level of the tone at `freq_hz` in dBFS.
pub fn tone_dbfs(samples: &[i16], freq_hz: f32) -> f64 {
    to_dbfs(tone_amplitude(samples, freq_hz))
}

/// How many dB the tone at `freq_hz` is above the tone at `other_hz`.
pub fn tone_ratio_db(samples: &[i16], freq_hz: f32, other_hz: f32) -> f64 {
    tone_dbfs(samples, freq_hz) - tone_dbfs(samples, other_hz)
}

/// RMS as a fraction of full scale, scaled so a full-scale sine is 1.0.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| (f64::from(s) / 32768.0).powi(2))
        .sum();
    (2.0 * sum / samples.len() as f64).sqrt()
}

/// RMS level in dBFS (a full-scale sine is 0 dBFS).
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    to_dbfs(rms(samples))
}

/// Peak level in dBFS.
pub fn peak_dbfs(samples: &[i16]) -> f64 {
    let peak = samples
        .iter()
        .map(|&s| i32::from(s).unsigned_abs())
        .max()
        .unwrap_or(0);
    to_dbfs(f64::from(peak) / 32768.0)
}

/// Whether the RMS level is at most `max_dbfs`.
pub fn is_silent(samples: &[i16], max_dbfs: f64) -> bool {
    rms_dbfs(samples) <= max_dbfs
}

/// The measured levels of one tone against others.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneMeasurement {
    pub freq_hz: f32,
    pub level_dbfs: f64,
    /// Each other frequency and its level.
    pub others: Vec<(f32, f64)>,
    /// `level_dbfs` minus the loudest other (∞-free: uses the floor).
    pub margin_db: f64,
    pub rms_dbfs: f64,
    pub window: Duration,
}

impl ToneMeasurement {
    pub fn measure(samples: &[i16], freq_hz: f32, others: &[f32]) -> ToneMeasurement {
        let level_dbfs = tone_dbfs(samples, freq_hz);
        let others: Vec<(f32, f64)> = others.iter().map(|&f| (f, tone_dbfs(samples, f))).collect();
        let loudest_other = others.iter().map(|&(_, db)| db).fold(FLOOR_DBFS, f64::max);
        ToneMeasurement {
            freq_hz,
            level_dbfs,
            margin_db: level_dbfs - loudest_other,
            others,
            rms_dbfs: rms_dbfs(samples),
            window: Duration::from_secs_f64(samples.len() as f64 / f64::from(SAMPLE_RATE)),
        }
    }
}

impl fmt::Display for ToneMeasurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz at {:.1} dBFS", self.freq_hz, self.level_dbfs)?;
        for (freq, db) in &self.others {
            write!(f, ", {freq} Hz at {db:.1} dBFS")?;
        }
        if !self.others.is_empty() {
            write!(f, " (margin {:.1} dB)", self.margin_db)?;
        }
        write!(
            f,
            ", RMS {:.1} dBFS over {} ms",
            self.rms_dbfs,
            self.window.as_millis()
        )
    }
}

/// When a tone counts as present: level and margin over other tones,
/// measured over the last `window` of the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneCondition {
    pub min_level_dbfs: f64,
    pub min_db_over: f64,
    pub others: Vec<f32>,
    pub window: Duration,
}

impl ToneCondition {
    /// The tone is at least -40 dBFS over a 500 ms window.
    pub fn present() -> ToneCondition {
        ToneCondition {
            min_level_dbfs: -40.0,
            min_db_over: 0.0,
            others: Vec::new(),
            window: Duration::from_millis(500),
        }
    }

    pub fn min_level(mut self, dbfs: f64) -> Self {
        self.min_level_dbfs = dbfs;
        self
    }

    /// Also at least `db` above each of `others`.
    pub fn over(mut self, db: f64, others: &[f32]) -> Self {
        self.min_db_over = db;
        self.others = others.to_vec();
        self
    }

    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    pub fn is_met_by(&self, measurement: &ToneMeasurement) -> bool {
        measurement.level_dbfs >= self.min_level_dbfs
            && (self.others.is_empty() || measurement.margin_db >= self.min_db_over)
    }
}

/// A tone present and at least `db` above each of `others`:
/// `call.wait_for_tone(440.0, min_db_over(20.0, &[1000.0]), timeout)`.
pub fn min_db_over(db: f64, others: &[f32]) -> ToneCondition {
    ToneCondition::present().over(db, others)
}

/// A pure tone: present and at least `db` above the spectrum at 0.7× and
/// 1.4× its frequency. Speech is broadband, so a prompt that happens to carry
/// energy at `freq_hz` does not pass for the tone.
pub fn pure_tone(freq_hz: f32, db: f64) -> ToneCondition {
    ToneCondition::present().over(db, &[freq_hz * 0.7, freq_hz * 1.4])
}

/// Frame-level statistics that tell speech from tones and silence.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechStats {
    pub rms_dbfs: f64,
    /// Share of 20 ms frames above the activity threshold (-45 dBFS).
    pub active_fraction: f64,
    /// Interquartile range of the active frames' levels, in dB: near 0 for
    /// steady tones and hum, several dB for syllables.
    pub level_spread_db: f64,
}

const ACTIVE_FRAME_DBFS: f64 = -45.0;

impl SpeechStats {
    pub fn measure(samples: &[i16]) -> SpeechStats {
        let frame_levels: Vec<f64> = samples.chunks_exact(160).map(rms_dbfs).collect();
        let active: Vec<f64> = frame_levels
            .iter()
            .copied()
            .filter(|&db| db > ACTIVE_FRAME_DBFS)
            .collect();
        let active_fraction = if frame_levels.is_empty() {
            0.0
        } else {
            active.len() as f64 / frame_levels.len() as f64
        };
        // The interquartile range of the active frames' levels: syllables
        // spread it widely, while a steady tone keeps it near zero even when
        // a few frames are odd (its onset, a late packet on a busy machine),
        // which a standard deviation would count.
        let level_spread_db = if active.len() < 4 {
            0.0
        } else {
            let mut sorted = active.clone();
            sorted.sort_by(f64::total_cmp);
            let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
            at(0.75) - at(0.25)
        };
        SpeechStats {
            rms_dbfs: rms_dbfs(samples),
            active_fraction,
            level_spread_db,
        }
    }

    /// Loud enough, active a good part of the time, and fluctuating like
    /// syllables do (a steady or on/off tone has no spread).
    pub fn is_speech_like(&self) -> bool {
        self.rms_dbfs > -40.0 && self.active_fraction >= 0.3 && self.level_spread_db >= 4.0
    }
}

impl fmt::Display for SpeechStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RMS {:.1} dBFS, {:.0}% of frames active, level spread {:.1} dB",
            self.rms_dbfs,
            self.active_fraction * 100.0,
            self.level_spread_db
        )
    }
}

/// Whether `samples` sound like speech (see [`SpeechStats::is_speech_like`]).
pub fn is_speech_like(samples: &[i16]) -> bool {
    SpeechStats::measure(samples).is_speech_like()
}

/// Whether anything but near-silence is there (RMS above -50 dBFS).
pub fn is_non_silent(samples: &[i16]) -> bool {
    rms_dbfs(samples) > -50.0
}

/// Synthetic signals for tests and for the agent's players.
pub mod synth {
    use super::SAMPLE_RATE;
    use std::f64::consts::PI;

    /// `count` samples of a sum of sines, each `(freq_hz, amplitude)` with
    /// amplitude as a fraction of full scale.
    pub fn tones(components: &[(f32, f32)], count: usize) -> Vec<i16> {
        (0..count)
            .map(|i| {
                let t = i as f64 / f64::from(SAMPLE_RATE);
                let value: f64 = components
                    .iter()
                    .map(|&(f, a)| f64::from(a) * (2.0 * PI * f64::from(f) * t).sin())
                    .sum();
                (value * 32767.0).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    /// One sine.
    pub fn tone(freq_hz: f32, amplitude: f32, count: usize) -> Vec<i16> {
        tones(&[(freq_hz, amplitude)], count)
    }

    /// Deterministic white noise of the given RMS fraction.
    pub fn noise(amplitude: f32, count: usize, seed: u64) -> Vec<i16> {
        let mut state = seed | 1;
        (0..count)
            .map(|_| {
                // xorshift64*: good enough for a test signal.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let r =
                    (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
                ((r * 2.0 - 1.0) * f64::from(amplitude) * 1.732 * 32767.0) as i16
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::synth::*;
    use super::*;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn goertzel_measures_a_tone_at_its_level() {
        let samples = tone(440.0, 0.5, 4000);
        assert_close(tone_dbfs(&samples, 440.0), -6.02, 0.2);
        assert_close(rms_dbfs(&samples), -6.02, 0.1);
        assert!(tone_dbfs(&samples, 1000.0) < -60.0);
        assert_close(goertzel_power(&samples, 440.0), 0.25, 0.01);
    }

    #[test]
    fn off_bin_frequencies_are_measured_too() {
        // 1233.3 Hz is no integer bin of a 1234-sample window.
        let samples = tone(1233.3, 0.1, 1234);
        assert_close(tone_dbfs(&samples, 1233.3), -20.0, 0.3);
    }

    #[test]
    fn a_pure_tone_stands_out_and_noise_does_not() {
        let window = 4000;
        let tone_only = tone(440.0, 0.3, window);
        let measured = ToneMeasurement::measure(&tone_only, 440.0, &pure_tone(440.0, 20.0).others);
        assert!(pure_tone(440.0, 20.0).is_met_by(&measured), "{measured}");
        // Broadband sound loud enough to pass the bare level check.
        let broadband = noise(0.5, window, 7);
        let measured = ToneMeasurement::measure(&broadband, 440.0, &pure_tone(440.0, 20.0).others);
        assert!(ToneCondition::present().is_met_by(&measured), "{measured}");
        assert!(!pure_tone(440.0, 20.0).is_met_by(&measured), "{measured}");
    }

    #[test]
    fn ratio_separates_two_tones() {
        let samples = tones(&[(440.0, 0.5), (1000.0, 0.05)], 4000);
        assert_close(tone_ratio_db(&samples, 440.0, 1000.0), 20.0, 0.5);
        let measured = ToneMeasurement::measure(&samples, 440.0, &[1000.0]);
        assert!(min_db_over(19.0, &[1000.0]).is_met_by(&measured));
        assert!(!min_db_over(21.0, &[1000.0]).is_met_by(&measured));
        let text = measured.to_string();
        assert!(text.contains("440 Hz at -6.0 dBFS"), "{text}");
        assert!(text.contains("margin 20"), "{text}");
    }

    #[test]
    fn silence_is_the_floor() {
        let samples = vec![0i16; 800];
        assert_eq!(rms_dbfs(&samples), FLOOR_DBFS);
        assert_eq!(tone_dbfs(&samples, 440.0), FLOOR_DBFS);
        assert_eq!(peak_dbfs(&[]), FLOOR_DBFS);
        assert!(is_silent(&samples, -60.0));
        assert!(!is_non_silent(&samples));
        let measured = ToneMeasurement::measure(&samples, 440.0, &[]);
        assert!(!ToneCondition::present().is_met_by(&measured));
    }

    #[test]
    fn noise_has_no_tone() {
        let samples = noise(0.3, 8000, 7);
        assert_close(rms_dbfs(&samples), -7.45, 1.0);
        assert!(tone_dbfs(&samples, 440.0) < -30.0);
        assert!(is_non_silent(&samples));
    }

    #[test]
    fn tones_are_not_speech_but_modulated_noise_is() {
        let steady = tone(440.0, 0.3, 8000);
        let stats = SpeechStats::measure(&steady);
        assert!(stats.level_spread_db < 0.5, "{stats}");
        assert!(!stats.is_speech_like(), "{stats}");

        // Syllable-like bursts: noise whose level changes every 100 ms,
        // with short pauses.
        let mut speechy = Vec::new();
        for (i, level) in [0.3f32, 0.1, 0.0, 0.25, 0.05, 0.2, 0.0, 0.3, 0.15, 0.1]
            .iter()
            .enumerate()
        {
            speechy.extend(noise(*level, 800, i as u64 + 1));
        }
        let stats = SpeechStats::measure(&speechy);
        assert!(stats.is_speech_like(), "{stats}");
        assert!(!SpeechStats::measure(&vec![0; 8000]).is_speech_like());
    }
}
