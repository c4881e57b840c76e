//! In-band DTMF detection after ITU-T Q.24: Goertzel filters on each 20 ms
//! frame of a leg's decoded audio (at the leg's rate).
//!
//! A frame shows a key when, for the strongest row and column tone:
//! - both are above a minimum level;
//! - twist is within limits (the column tone at most 4 dB above the row
//!   tone, at most 8 dB below it);
//! - each is at least 6 dB above the other tones of its group;
//! - each is nearer its nominal frequency than 5 % off (probes at ±5 %),
//!   so tones within ±1.5 % are accepted and those ±3.5 % off rejected;
//! - their second harmonics are weak (speech has harmonics, DTMF none);
//! - the pair carries most of the frame's energy (less in frames the tone
//!   only partly covers).
//!
//! A key is reported when its tone ends, if it was seen in at least two
//! consecutive frames (≥ 40 ms of tone in any alignment) and filled one
//! frame entirely. Frames that look like a key are flagged at once so the
//! conference can keep the tone out of the mix.

use super::event_to_digit;
use crate::{DtmfDigit, DtmfSource, FRAME_MS};

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
/// Event codes by (row, column).
const KEYS: [[u8; 4]; 4] = [[1, 2, 3, 12], [4, 5, 6, 13], [7, 8, 9, 14], [10, 0, 11, 15]];

/// Each tone at least this amplitude (fraction of full scale): -36 dBFS.
const MIN_AMPLITUDE: f64 = 0.016;
/// Reverse twist (column above row) and normal twist limits, in dB.
const MAX_REVERSE_TWIST_DB: f64 = 4.0;
const MAX_NORMAL_TWIST_DB: f64 = 8.0;
/// The chosen tone is this far above the others of its group, in dB.
const GROUP_MARGIN_DB: f64 = 6.0;
/// Frequency probes at ±5 %: the decision boundary is 2.5 % off nominal.
const PROBE_OFFSET: f32 = 0.05;
/// Second harmonic at most this fraction of the tone's power (-10 dB).
const MAX_HARMONIC: f64 = 0.1;
/// Share of the frame's power the two tones carry: a fully covered frame,
/// and any frame of a key (the first or last may be partly covered).
/// (A tone 1.5 % off nominal loses up to 60 % of its Goertzel power in a
/// 20 ms frame, hence the modest shares; talk-off resistance comes from
/// the frequency probes, the harmonics and the group margins.)
const FULL_SHARE: f64 = 0.55;
const MIN_SHARE: f64 = 0.3;
/// Frames a key must be seen in, and silent frames that end it.
const MIN_FRAMES: u32 = 2;
const END_FRAMES: u32 = 2;

/// Q.24 detector for one stream at a fixed rate.
#[derive(Debug, Clone)]
pub struct InbandDetector {
    rate: u32,
    /// The key being seen: event, frames seen, whether one frame was full.
    current: Option<(u8, u32, bool)>,
    /// Frames without the current key since it was last seen.
    quiet: u32,
}

impl InbandDetector {
    pub fn new(rate: u32) -> InbandDetector {
        InbandDetector {
            rate: rate.max(8000),
            current: None,
            quiet: 0,
        }
    }

    /// Analyses one frame; calls `emit` when a key press ends. Returns true
    /// while the frame looks like (part of) a key press, so the caller can
    /// keep it out of a conference mix.
    pub fn process(&mut self, frame: &[i16], mut emit: impl FnMut(DtmfDigit)) -> bool {
        let seen = self.classify(frame);
        match (seen, self.current) {
            (Some((key, full)), Some((cur, frames, was_full))) if key == cur => {
                self.current = Some((cur, frames + 1, was_full || full));
                self.quiet = 0;
            }
            (Some((key, full)), previous) => {
                if let Some(prev) = previous {
                    self.finish(prev, &mut emit);
                }
                self.current = Some((key, 1, full));
                self.quiet = 0;
            }
            (None, Some(cur)) => {
                self.quiet += 1;
                if self.quiet >= END_FRAMES {
                    self.current = None;
                    self.finish(cur, &mut emit);
                }
            }
            (None, None) => {}
        }
        seen.is_some() || self.current.is_some()
    }

    fn finish(&mut self, (key, frames, full): (u8, u32, bool), emit: &mut impl FnMut(DtmfDigit)) {
        if frames < MIN_FRAMES || !full {
            return;
        }
        if let Some(digit) = event_to_digit(key) {
            emit(DtmfDigit {
                digit,
                source: DtmfSource::Inband,
                duration_ms: frames * FRAME_MS,
            });
        }
    }

    /// The key a frame shows, and whether the tone fills the frame.
    fn classify(&self, frame: &[i16]) -> Option<(u8, bool)> {
        if frame.len() < 32 {
            return None;
        }
        let n = frame.len() as f64;
        let mean_square = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / n;
        // Power of a sine of amplitude a is a²/2; two tones at the minimum.
        let min_power = (MIN_AMPLITUDE * 32768.0).powi(2) / 2.0;
        if mean_square < 2.0 * min_power {
            return None; // energy gate: most frames stop here
        }
        let power = |f: f32| 2.0 * goertzel(frame, self.rate, f); // sine power
        let rows = ROWS.map(power);
        let cols = COLS.map(power);
        let (r, pr) = strongest(&rows);
        let (c, pc) = strongest(&cols);
        if pr < min_power || pc < min_power {
            return None;
        }
        let twist = db(pc / pr);
        if twist > MAX_REVERSE_TWIST_DB || -twist > MAX_NORMAL_TWIST_DB {
            return None;
        }
        if !dominates(&rows, r) || !dominates(&cols, c) {
            return None;
        }
        for (f, p) in [(ROWS[r], pr), (COLS[c], pc)] {
            let above = power(f * (1.0 + PROBE_OFFSET));
            let below = power(f * (1.0 - PROBE_OFFSET));
            if above >= p || below >= p {
                return None; // nearer a probe than its nominal frequency
            }
            if 2.0 * f < self.rate as f32 / 2.0 && power(2.0 * f) > MAX_HARMONIC * p {
                return None;
            }
        }
        let share = (pr + pc) / mean_square;
        if share < MIN_SHARE {
            return None;
        }
        Some((KEYS[r][c], share >= FULL_SHARE))
    }
}

fn strongest(p: &[f64; 4]) -> (usize, f64) {
    let mut best = (0, p[0]);
    for (i, &v) in p.iter().enumerate().skip(1) {
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

fn dominates(p: &[f64; 4], chosen: usize) -> bool {
    p.iter()
        .enumerate()
        .filter(|&(i, _)| i != chosen)
        .all(|(_, &v)| db(p[chosen] / v.max(1e-9)) >= GROUP_MARGIN_DB)
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.max(1e-12).log10()
}

/// `|X(f)|² / N²` of `x` (a sine of amplitude `a` gives about `a² / 4`).
fn goertzel(x: &[i16], rate: u32, freq: f32) -> f64 {
    let w = std::f32::consts::TAU * freq / rate as f32;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &v in x {
        let s = f32::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = f64::from(s1 * s1 + s2 * s2 - coeff * s1 * s2);
    let n = x.len() as f64;
    power.max(0.0) / (n * n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::{digit_to_event, event_frequencies};

    /// A signal generator: appends `ms` of sines (freq, amplitude 0-1).
    struct Signal {
        rate: u32,
        samples: Vec<f64>,
    }

    impl Signal {
        fn new(rate: u32) -> Signal {
            Signal {
                rate,
                samples: Vec::new(),
            }
        }
        fn tones(&mut self, ms: u32, tones: &[(f32, f64)]) -> &mut Self {
            let start = self.samples.len();
            for i in 0..(self.rate / 1000 * ms) as usize {
                let t = (start + i) as f64 / f64::from(self.rate);
                let v: f64 = tones
                    .iter()
                    .map(|&(f, a)| a * (std::f64::consts::TAU * f64::from(f) * t).sin())
                    .sum();
                self.samples.push(v);
            }
            self
        }
        fn key(&mut self, digit: char, ms: u32, dev: f32, twist_db: f64) -> &mut Self {
            let (lo, hi) = event_frequencies(digit_to_event(digit).unwrap()).unwrap();
            let hi_amp = 0.2 * 10f64.powf(twist_db / 20.0);
            self.tones(ms, &[(lo * (1.0 + dev), 0.2), (hi * (1.0 + dev), hi_amp)])
        }
        fn silence(&mut self, ms: u32) -> &mut Self {
            self.tones(ms, &[])
        }
        fn pcm(&self) -> Vec<i16> {
            self.samples
                .iter()
                .map(|v| (v * 32767.0).clamp(-32768.0, 32767.0) as i16)
                .collect()
        }
    }

    /// Runs a detector over `pcm` in 20 ms frames, starting `offset`
    /// samples in (to vary the alignment).
    fn detect(rate: u32, pcm: &[i16]) -> String {
        let mut d = InbandDetector::new(rate);
        let n = crate::frame_samples(rate);
        let mut got = String::new();
        for frame in pcm.chunks_exact(n) {
            d.process(frame, |k| got.push(k.digit));
        }
        for _ in 0..3 {
            d.process(&vec![0; n], |k| got.push(k.digit));
        }
        got
    }

    #[test]
    fn every_key_at_every_rate() {
        for rate in [8000, 16_000, 48_000] {
            let mut s = Signal::new(rate);
            for digit in "0123456789*#ABCD".chars() {
                s.key(digit, 60, 0.0, 0.0).silence(60);
            }
            assert_eq!(detect(rate, &s.pcm()), "0123456789*#ABCD", "{rate} Hz");
        }
    }

    #[test]
    fn forty_ms_tones_in_any_alignment_count_once() {
        for offset_ms in [0, 3, 7, 10, 13, 17] {
            let mut s = Signal::new(8000);
            s.silence(offset_ms).key('5', 40, 0.0, 0.0).silence(100);
            s.key('5', 40, 0.0, 0.0).silence(100);
            assert_eq!(detect(8000, &s.pcm()), "55", "offset {offset_ms} ms");
        }
    }

    #[test]
    fn short_tones_are_rejected() {
        let mut s = Signal::new(8000);
        s.silence(5).key('7', 15, 0.0, 0.0).silence(100);
        assert_eq!(detect(8000, &s.pcm()), "");
    }

    #[test]
    fn frequency_tolerance_accepts_1_5_and_rejects_3_5_percent() {
        for dev in [-0.015f32, 0.015] {
            let mut s = Signal::new(8000);
            for digit in "1590D".chars() {
                s.key(digit, 80, dev, 0.0).silence(60);
            }
            assert_eq!(detect(8000, &s.pcm()), "1590D", "deviation {dev}");
        }
        for dev in [-0.035f32, 0.035] {
            let mut s = Signal::new(8000);
            for digit in "1590D".chars() {
                s.key(digit, 80, dev, 0.0).silence(60);
            }
            assert_eq!(detect(8000, &s.pcm()), "", "deviation {dev}");
        }
    }

    #[test]
    fn twist_limits() {
        let run = |twist| {
            let mut s = Signal::new(8000);
            s.key('8', 80, 0.0, twist).silence(60);
            detect(8000, &s.pcm())
        };
        assert_eq!(run(3.0), "8"); // column 3 dB above row: accepted
        assert_eq!(run(-7.0), "8"); // column 7 dB below: accepted
        assert_eq!(run(6.0), ""); // reverse twist beyond 4 dB
        assert_eq!(run(-11.0), ""); // normal twist beyond 8 dB
    }

    #[test]
    fn keys_over_noise_and_a_quiet_talker() {
        let mut s = Signal::new(8000);
        s.key('3', 80, 0.0, 0.0).silence(60).key('#', 80, 0.0, 0.0);
        let mut seed = 7u32;
        let noisy: Vec<i16> = s
            .pcm()
            .iter()
            .map(|&v| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                v.saturating_add(((seed % 600) as i16) - 300) // about -45 dBFS
            })
            .collect();
        assert_eq!(detect(8000, &noisy), "3#");
    }

    /// Talk-off: voiced speech-like sounds (glottal pulse trains through
    /// vowel formants, pitch gliding), noise, chords and sweeps never make
    /// a key.
    #[test]
    fn speech_like_signals_do_not_talk_off() {
        let rate = 8000;
        let mut pcm = Vec::new();
        let mut seed = 99u32;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            f64::from(seed % 10_000) / 10_000.0
        };
        // Vowels: harmonics of f0 weighted by two formant peaks.
        let formants = [
            (730.0, 1090.0),
            (270.0, 2290.0),
            (300.0, 870.0),
            (660.0, 1720.0),
            (530.0, 1840.0),
        ];
        for (k, &(f1, f2)) in formants.iter().cycle().take(40).enumerate() {
            let f0 = 90.0 + 160.0 * rnd();
            let glide = 1.0 + 0.3 * (rnd() - 0.5);
            let n = (rate / 1000 * (150 + (k % 4) as u32 * 60)) as usize;
            for i in 0..n {
                let t = i as f64 / f64::from(rate);
                let pitch = f0 * (1.0 + (glide - 1.0) * i as f64 / n as f64);
                let mut v = 0.0;
                let mut h = 1.0;
                while h * pitch < 3800.0 {
                    let f = h * pitch;
                    let w = 1.0 / (1.0 + ((f - f1) / 90.0f64).powi(2))
                        + 0.7 / (1.0 + ((f - f2) / 120.0f64).powi(2));
                    v += w * (std::f64::consts::TAU * f * t).sin() / h.sqrt();
                    h += 1.0;
                }
                pcm.push((v * 4000.0).clamp(-32768.0, 32767.0) as i16);
            }
            // Unvoiced noise between syllables.
            for _ in 0..(rate / 1000 * 40) {
                pcm.push(((rnd() - 0.5) * 6000.0) as i16);
            }
        }
        // Chords and a sweep across the DTMF band.
        let mut s = Signal::new(rate);
        s.tones(500, &[(700.0, 0.1), (880.0, 0.1), (1320.0, 0.1)]);
        s.tones(500, &[(697.0, 0.15), (1209.0, 0.15), (2418.0, 0.1)]);
        let sweep: Vec<i16> = (0..rate as usize * 2)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let f = 600.0 + 600.0 * t;
                (8000.0 * (std::f64::consts::TAU * f * t).sin()) as i16
            })
            .collect();
        pcm.extend(s.pcm());
        pcm.extend(sweep);
        assert_eq!(detect(rate, &pcm), "", "talk-off");
    }

    #[test]
    fn flags_frames_while_a_key_sounds() {
        let mut d = InbandDetector::new(8000);
        let mut s = Signal::new(8000);
        s.key('9', 100, 0.0, 0.0);
        let pcm = s.pcm();
        let flags: Vec<bool> = pcm.chunks(160).map(|f| d.process(f, |_| {})).collect();
        assert!(flags.iter().all(|&f| f));
        assert!(!d.process(&[1000; 160], |_| {}) || d.current.is_some());
    }
}
