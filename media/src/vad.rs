//! Talking detection for conference participants: frame energy against a
//! tracked noise floor, with attack and hangover so it does not flap.
//!
//! A frame is speech when its level is `SPEECH_ABOVE_FLOOR_DB` above the
//! noise floor and above an absolute minimum. The floor is the quietest
//! frame of the last few seconds (minimum statistics): steady background
//! noise is its own floor from the first frames on, and the pauses between
//! words keep it down while someone talks. A participant is talking after
//! `ATTACK_FRAMES` speech frames in a row (60 ms), and silent again after
//! `HANGOVER_FRAMES` frames without speech (500 ms), so pauses between
//! words do not end a talk spurt.

/// Frames of speech in a row before "talking" (60 ms).
pub const ATTACK_FRAMES: u32 = 3;
/// Frames without speech before "silent" (500 ms).
pub const HANGOVER_FRAMES: u32 = 25;
/// Speech is this far above the noise floor...
const SPEECH_ABOVE_FLOOR_DB: f32 = 12.0;
/// ...and above this absolute level (dBFS, full-scale sine = 0).
const MIN_SPEECH_DBFS: f32 = -50.0;
/// The floor is the minimum over `FLOOR_BLOCKS` blocks of `BLOCK_FRAMES`
/// frames (5 s)...
const FLOOR_BLOCKS: usize = 10;
const BLOCK_FRAMES: u32 = 25;
/// ...and never sits below this.
const FLOOR_MIN_DBFS: f32 = -80.0;
/// For the first second the floor is at most this, so a participant who
/// starts talking at once is heard as talking (steady noise from the first
/// frame then counts as talking for that second at most).
const START_FLOOR_DBFS: f32 = -60.0;
const START_FRAMES: u32 = 50;

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Started,
    Stopped,
}

/// Level in dBFS of a frame's mean square (a full-scale sine is 0 dBFS).
pub fn level_dbfs(mean_square: f64) -> f32 {
    let full_scale_sine = 32768.0f64 * 32768.0 / 2.0;
    (10.0 * (mean_square / full_scale_sine).max(1e-10).log10()) as f32
}

/// Mean square of a frame.
pub fn mean_square(frame: &[i16]) -> f64 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: i64 = frame.iter().map(|&s| i64::from(s) * i64::from(s)).sum();
    sum as f64 / frame.len() as f64
}

#[derive(Debug, Clone)]
pub struct TalkDetector {
    /// Minimum level of each recent block (`None`: no frame yet).
    blocks: [Option<f32>; FLOOR_BLOCKS],
    block: usize,
    block_frames: u32,
    floor_dbfs: f32,
    /// Frames measured so far (up to `START_FRAMES`).
    frames: u32,
    talking: bool,
    speech_run: u32,
    quiet_run: u32,
}

impl Default for TalkDetector {
    fn default() -> Self {
        TalkDetector {
            blocks: [None; FLOOR_BLOCKS],
            block: 0,
            block_frames: 0,
            floor_dbfs: FLOOR_MIN_DBFS,
            frames: 0,
            talking: false,
            speech_run: 0,
            quiet_run: 0,
        }
    }
}

impl TalkDetector {
    pub fn is_talking(&self) -> bool {
        self.talking
    }

    pub fn noise_floor_dbfs(&self) -> f32 {
        self.floor_dbfs
    }

    /// One frame at `level_dbfs` (or `None`: nothing received, which counts
    /// as silence). Returns a transition when the state changes.
    pub fn update(&mut self, level_dbfs: Option<f32>) -> Option<Transition> {
        let level = level_dbfs.unwrap_or(-120.0);
        if level_dbfs.is_some() {
            self.track_floor(level.max(FLOOR_MIN_DBFS));
        }
        let speech = level > self.floor_dbfs + SPEECH_ABOVE_FLOOR_DB && level > MIN_SPEECH_DBFS;
        if speech {
            self.speech_run += 1;
            self.quiet_run = 0;
        } else {
            self.speech_run = 0;
            self.quiet_run += 1;
        }
        if !self.talking && self.speech_run >= ATTACK_FRAMES {
            self.talking = true;
            return Some(Transition::Started);
        }
        if self.talking && self.quiet_run >= HANGOVER_FRAMES {
            self.talking = false;
            return Some(Transition::Stopped);
        }
        None
    }

    fn track_floor(&mut self, level: f32) {
        let b = &mut self.blocks[self.block];
        *b = Some(b.map_or(level, |m| m.min(level)));
        self.block_frames += 1;
        self.floor_dbfs = self
            .blocks
            .iter()
            .flatten()
            .fold(f32::MAX, |a, &b| a.min(b));
        if self.frames < START_FRAMES {
            self.frames += 1;
            self.floor_dbfs = self.floor_dbfs.min(START_FLOOR_DBFS);
        }
        if self.block_frames >= BLOCK_FRAMES {
            self.block_frames = 0;
            self.block = (self.block + 1) % FLOOR_BLOCKS;
            self.blocks[self.block] = None;
        }
    }

    /// Forgets the state (the participant left).
    pub fn reset(&mut self) {
        *self = TalkDetector::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u32);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            f64::from(self.0 % 10_000) / 10_000.0 - 0.5
        }
    }

    /// Frames of noise at `noise` amplitude, with a tone of `tone` amplitude
    /// on top when `on`.
    fn frame(rng: &mut Rng, k: usize, noise: f64, tone: f64, on: bool) -> Vec<i16> {
        (0..160)
            .map(|i| {
                let t = (k * 160 + i) as f64 / 8000.0;
                let s = if on {
                    tone * (std::f64::consts::TAU * 300.0 * t).sin()
                } else {
                    0.0
                };
                (s + noise * rng.next()).clamp(-32768.0, 32767.0) as i16
            })
            .collect()
    }

    fn run(frames: &[Vec<i16>]) -> (Vec<(usize, Transition)>, TalkDetector) {
        let mut d = TalkDetector::default();
        let mut out = Vec::new();
        for (k, f) in frames.iter().enumerate() {
            if let Some(t) = d.update(Some(level_dbfs(mean_square(f)))) {
                out.push((k, t));
            }
        }
        (out, d)
    }

    #[test]
    fn tone_burst_starts_after_attack_and_stops_after_hangover() {
        let mut rng = Rng(1);
        let frames: Vec<Vec<i16>> = (0..200)
            .map(|k| frame(&mut rng, k, 200.0, 8000.0, (50..100).contains(&k)))
            .collect();
        let (t, _) = run(&frames);
        assert_eq!(
            t,
            vec![(52, Transition::Started), (124, Transition::Stopped)]
        );
    }

    #[test]
    fn steady_noise_is_not_talking_even_when_loud() {
        let mut rng = Rng(2);
        // Loud background noise (-25 dBFS) from the first frame on.
        let frames: Vec<Vec<i16>> = (0..500)
            .map(|k| frame(&mut rng, k, 4000.0, 0.0, false))
            .collect();
        let (t, d) = run(&frames);
        // At most the first second counts as talking, then never again.
        assert!(t.len() <= 2, "{t:?}");
        assert!(t.iter().all(|&(k, _)| k < 100), "{t:?}");
        assert!(!d.is_talking());
        assert!(d.noise_floor_dbfs() > -35.0, "{}", d.noise_floor_dbfs());
    }

    #[test]
    fn speech_like_on_off_pattern_does_not_flap() {
        // Syllables of 80-200 ms with 60-300 ms pauses inside a phrase, then
        // a second of silence, another phrase: two talk spurts, no more.
        let mut rng = Rng(3);
        let mut on = Vec::new();
        let pattern = [(4, 3), (8, 10), (5, 6), (10, 15), (6, 3), (7, 0)];
        for _ in 0..2 {
            for &(talk, pause) in &pattern {
                on.extend(std::iter::repeat_n(true, talk));
                on.extend(std::iter::repeat_n(false, pause));
            }
            on.extend(std::iter::repeat_n(false, 50));
        }
        let frames: Vec<Vec<i16>> = on
            .iter()
            .enumerate()
            .map(|(k, &o)| frame(&mut rng, k, 100.0, 6000.0, o))
            .collect();
        let (t, _) = run(&frames);
        let kinds: Vec<Transition> = t.iter().map(|x| x.1).collect();
        assert_eq!(
            kinds,
            vec![
                Transition::Started,
                Transition::Stopped,
                Transition::Started,
                Transition::Stopped
            ],
            "{t:?}"
        );
    }

    #[test]
    fn nothing_received_is_silence() {
        let mut d = TalkDetector::default();
        for _ in 0..5 {
            d.update(Some(-10.0));
        }
        assert!(d.is_talking());
        let mut stopped = false;
        for _ in 0..HANGOVER_FRAMES {
            stopped |= d.update(None) == Some(Transition::Stopped);
        }
        assert!(stopped);
    }
}
