//! N-1 conference mixing for one tick, without sockets, so a benchmark can
//! drive it directly.
//!
//! Only the loudest `K` participants (default 3) are mixed, so the cost of
//! a listener does not grow with the room. [`ConferenceMixer::select`]
//! picks them with hysteresis: a selected participant who is talking keeps
//! its place until it stops talking, unless a newcomer is 6 dB louder and
//! it has held the floor for half a second; free places go to the loudest
//! (talkers first), so a new talker is heard from its first frame.
//!
//! [`ConferenceMixer::mix`] sums the selected inputs once in 32 bits. Each
//! selected participant hears the sum minus its own input (a private
//! output); everyone else hears the same shared sum, which the conference
//! encodes once per output format. Every output goes through a limiter, so
//! several loud talkers do not clip.

use crate::level::Limiter;
use crate::{frame_samples, MAX_FRAME};

/// Talkers mixed at once by default.
pub const DEFAULT_MAX_TALKERS: usize = 3;
/// Upper bound for `K` (selection uses fixed-size scratch).
pub const MAX_TALKERS: usize = 8;
/// A newcomer must be this much louder to displace a talking participant...
const DISPLACE_DB: f32 = 6.0;
/// ...who has held its place at least this many frames (500 ms).
const MIN_HOLD_FRAMES: u32 = 25;
/// Preference of a talking participant over a noisy one, in dB.
const TALKING_BONUS_DB: f32 = 20.0;

/// One frame of 8 kHz PCM (the narrowband frame type).
pub type Pcm = [i16; crate::FRAME_SAMPLES];

/// Narrowband silence.
pub const SILENCE: Pcm = [0; crate::FRAME_SAMPLES];

/// A participant's slot in the mix.
#[derive(Clone)]
pub struct MixParticipant {
    /// What it said this tick at the mixer's rate (read when selected).
    pub input: Box<[i16; MAX_FRAME]>,
    /// `input` holds received audio (false: nothing arrived).
    pub has_input: bool,
    /// Not heard by the others.
    pub muted: bool,
    /// Hears nothing from the mix.
    pub deaf: bool,
    /// Level of this tick's input in dBFS (for the selection).
    pub level_dbfs: f32,
    /// Voice activity (see `vad`): talking participants are preferred and
    /// keep their place.
    pub talking: bool,
    /// Output of [`ConferenceMixer::select`]: mixed this tick.
    pub selected: bool,
    /// Ticks in a row this participant has been selected.
    pub selected_frames: u32,
    /// Output of [`ConferenceMixer::mix`] for selected participants that
    /// are not deaf: the mix without their own input. Everyone else hears
    /// [`ConferenceMixer::shared_output`] (or nothing, if deaf).
    pub output: Box<[i16; MAX_FRAME]>,
    limiter: Limiter,
}

impl Default for MixParticipant {
    fn default() -> Self {
        MixParticipant {
            input: Box::new([0; MAX_FRAME]),
            has_input: false,
            muted: false,
            deaf: false,
            level_dbfs: -120.0,
            talking: false,
            selected: false,
            selected_frames: 0,
            output: Box::new([0; MAX_FRAME]),
            limiter: Limiter::default(),
        }
    }
}

impl MixParticipant {
    /// Can be heard by the others this tick.
    pub fn contributes(&self) -> bool {
        self.has_input && !self.muted
    }

    /// What it hears: its private output, or `None` for the shared one
    /// (or silence when deaf).
    pub fn hears_private(&self) -> bool {
        self.selected && !self.deaf
    }

    fn score(&self) -> f32 {
        self.level_dbfs + if self.talking { TALKING_BONUS_DB } else { 0.0 }
    }
}

/// Mixes one conference, one tick at a time, at a fixed rate. Holds only
/// fixed-size scratch space: mixing never allocates.
pub struct ConferenceMixer {
    rate: u32,
    max_talkers: usize,
    total: Box<[i32; MAX_FRAME]>,
    diff: Box<[i32; MAX_FRAME]>,
    shared: Box<[i16; MAX_FRAME]>,
    shared_limiter: Limiter,
    /// Participants mixed in the last tick.
    mixed: usize,
}

impl Default for ConferenceMixer {
    fn default() -> Self {
        ConferenceMixer::new(crate::CLOCK_RATE, DEFAULT_MAX_TALKERS)
    }
}

impl ConferenceMixer {
    /// A mixer at `rate` mixing at most `max_talkers` (1 to
    /// [`MAX_TALKERS`]) at once.
    pub fn new(rate: u32, max_talkers: usize) -> ConferenceMixer {
        ConferenceMixer {
            rate,
            max_talkers: max_talkers.clamp(1, MAX_TALKERS),
            total: Box::new([0; MAX_FRAME]),
            diff: Box::new([0; MAX_FRAME]),
            shared: Box::new([0; MAX_FRAME]),
            shared_limiter: Limiter::default(),
            mixed: 0,
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples in one frame at the mixer's rate.
    pub fn frame_len(&self) -> usize {
        frame_samples(self.rate)
    }

    /// Participants mixed in the last tick.
    pub fn mixed(&self) -> usize {
        self.mixed
    }

    /// Marks the participants to mix this tick (`selected`).
    pub fn select(&mut self, ps: &mut [MixParticipant]) {
        let k = self.max_talkers;
        // Keep the talking participants already selected.
        let mut kept = 0;
        for p in ps.iter_mut() {
            let keep = p.selected && p.contributes() && p.talking;
            p.selected = keep;
            kept += usize::from(keep);
        }
        // A kept talker may be displaced by a much louder newcomer.
        if kept == k {
            let newcomer = best(ps, |p| !p.selected && p.contributes() && p.talking);
            let weakest = worst(ps, |p| p.selected && p.selected_frames >= MIN_HOLD_FRAMES);
            if let (Some(n), Some(w)) = (newcomer, weakest) {
                if ps[n].level_dbfs > ps[w].level_dbfs + DISPLACE_DB {
                    ps[w].selected = false;
                    ps[n].selected = true;
                }
            }
        }
        // Free places go to the loudest (talkers first).
        for _ in kept..k {
            match best(ps, |p| !p.selected && p.contributes()) {
                Some(i) => ps[i].selected = true,
                None => break,
            }
        }
        let mut mixed = 0;
        for p in ps.iter_mut() {
            if p.selected {
                p.selected_frames = p.selected_frames.saturating_add(1);
                mixed += 1;
            } else {
                p.selected_frames = 0;
            }
        }
        self.mixed = mixed;
    }

    /// Mixes the selected participants' `input`s, plus `extra` (the
    /// conference's own player at the mixer's rate), which everyone who is
    /// not deaf hears. Call [`ConferenceMixer::select`] first.
    pub fn mix(&mut self, ps: &mut [MixParticipant], extra: Option<&[i16]>) {
        let n = self.frame_len();
        let total = &mut self.total[..n];
        total.fill(0);
        if let Some(extra) = extra {
            for (t, &s) in total.iter_mut().zip(extra) {
                *t += i32::from(s);
            }
        }
        for p in ps.iter().filter(|p| p.selected) {
            for (t, &s) in total.iter_mut().zip(&p.input[..n]) {
                *t += i32::from(s);
            }
        }
        self.shared_limiter.process(total, &mut self.shared[..n]);
        let diff = &mut self.diff[..n];
        for p in ps.iter_mut().filter(|p| p.hears_private()) {
            // The sum without the participant's own input.
            for ((d, &t), &i) in diff.iter_mut().zip(total.iter()).zip(&p.input[..n]) {
                *d = t - i32::from(i);
            }
            p.limiter.process(diff, &mut p.output[..n]);
        }
    }

    /// What everyone who is not selected hears (valid after `mix`).
    pub fn shared_output(&self) -> &[i16] {
        &self.shared[..self.frame_len()]
    }
}

/// Index of the highest-scoring participant matching `pred`.
fn best(ps: &[MixParticipant], pred: impl Fn(&MixParticipant) -> bool) -> Option<usize> {
    let mut best: Option<(usize, f32)> = None;
    for (i, p) in ps.iter().enumerate() {
        if pred(p) && best.is_none_or(|(_, s)| p.score() > s) {
            best = Some((i, p.score()));
        }
    }
    best.map(|(i, _)| i)
}

/// Index of the quietest participant matching `pred`.
fn worst(ps: &[MixParticipant], pred: impl Fn(&MixParticipant) -> bool) -> Option<usize> {
    let mut worst: Option<(usize, f32)> = None;
    for (i, p) in ps.iter().enumerate() {
        if pred(p) && worst.is_none_or(|(_, l)| p.level_dbfs < l) {
            worst = Some((i, p.level_dbfs));
        }
    }
    worst.map(|(i, _)| i)
}

/// Clamps a 32-bit sum to the 16-bit range.
#[inline]
pub fn saturate(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// `out += add`, saturating each sample.
pub fn add_saturating(out: &mut [i16], add: &[i16]) {
    for (o, &a) in out.iter_mut().zip(add) {
        *o = o.saturating_add(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = crate::FRAME_SAMPLES;

    fn talker(value: i16) -> MixParticipant {
        let mut p = MixParticipant::default();
        p.input[..N].fill(value);
        p.has_input = true;
        p.level_dbfs = crate::vad::level_dbfs(f64::from(value).powi(2));
        p.talking = value != 0;
        p
    }

    fn run(m: &mut ConferenceMixer, ps: &mut [MixParticipant]) {
        m.select(ps);
        m.mix(ps, None);
    }

    /// What `p` hears (constant frames): its private output or the shared.
    fn heard(m: &ConferenceMixer, p: &MixParticipant) -> i16 {
        let out: &[i16] = if p.deaf {
            &[0; N]
        } else if p.hears_private() {
            &p.output[..N]
        } else {
            m.shared_output()
        };
        assert!(out.iter().all(|&s| s == out[0]), "{:?}", &out[..4]);
        out[0]
    }

    #[test]
    fn everyone_hears_everyone_else() {
        let mut m = ConferenceMixer::new(8000, 3);
        let mut ps = vec![
            talker(100),
            talker(20),
            talker(3),
            MixParticipant::default(),
        ];
        run(&mut m, &mut ps);
        let out: Vec<i16> = ps.iter().map(|p| heard(&m, p)).collect();
        assert_eq!(out, vec![23, 103, 120, 123]);
        assert_eq!(m.mixed(), 3);
    }

    #[test]
    fn muted_are_not_heard_and_deaf_hear_nothing() {
        let mut m = ConferenceMixer::new(8000, 3);
        let mut ps = vec![talker(100), talker(20), talker(3)];
        ps[0].muted = true;
        ps[1].deaf = true;
        run(&mut m, &mut ps);
        let out: Vec<i16> = ps.iter().map(|p| heard(&m, p)).collect();
        // The muted one still hears the others; the deaf one is still heard.
        assert_eq!(out, vec![23, 0, 20]);
    }

    #[test]
    fn conference_player_is_heard_by_all_but_the_deaf() {
        let mut m = ConferenceMixer::new(8000, 3);
        let mut ps = vec![talker(10), MixParticipant::default(), talker(1)];
        ps[2].deaf = true;
        m.select(&mut ps);
        m.mix(&mut ps, Some(&[1000; N]));
        let out: Vec<i16> = ps.iter().map(|p| heard(&m, p)).collect();
        assert_eq!(out, vec![1001, 1011, 0]);
    }

    #[test]
    fn loud_sums_are_limited_not_wrapped() {
        let mut m = ConferenceMixer::new(8000, 4);
        let mut ps = vec![
            talker(30_000),
            talker(30_000),
            talker(30_000),
            talker(-32768),
        ];
        run(&mut m, &mut ps);
        for p in &ps {
            let h = heard(&m, p);
            assert!(h.unsigned_abs() <= 31_000, "{h}");
        }
        // The sign survives: 3 × 30000 - 32768 > 0 for the last one.
        assert!(heard(&m, &ps[3]) > 0);
    }

    #[test]
    fn nobody_alone_hears_themselves() {
        let mut m = ConferenceMixer::new(8000, 3);
        let mut ps = vec![talker(1234)];
        run(&mut m, &mut ps);
        assert_eq!(heard(&m, &ps[0]), 0);
    }

    #[test]
    fn only_the_loudest_k_are_mixed_and_talkers_keep_their_place() {
        let mut m = ConferenceMixer::new(8000, 3);
        let mut ps: Vec<MixParticipant> = [400, 300, 200, 100, 50].map(talker).into();
        run(&mut m, &mut ps);
        let sel: Vec<bool> = ps.iter().map(|p| p.selected).collect();
        assert_eq!(sel, vec![true, true, true, false, false]);
        // Everyone else hears the three loudest only.
        assert_eq!(heard(&m, &ps[4]), 900);
        // A slightly louder newcomer does not displace a talker...
        ps[4] = talker(250);
        for _ in 0..30 {
            run(&mut m, &mut ps);
        }
        assert!(!ps[4].selected);
        // ...a much louder one does, once the weakest has held its place.
        ps[4] = talker(2000);
        run(&mut m, &mut ps);
        let sel: Vec<bool> = ps.iter().map(|p| p.selected).collect();
        assert_eq!(sel, vec![true, true, false, false, true]);
        // A talker that goes quiet frees its place at once.
        ps[0].has_input = false;
        run(&mut m, &mut ps);
        assert!(!ps[0].selected);
        assert!(ps[2].selected);
    }

    #[test]
    fn add_saturating_clamps() {
        let mut a = [32000i16, -32000, 5];
        add_saturating(&mut a, &[1000, -1000, 5]);
        assert_eq!(a, [i16::MAX, i16::MIN, 10]);
        assert_eq!(saturate(70_000), i16::MAX);
        assert_eq!(saturate(-70_000), i16::MIN);
    }
}
