//! N-1 conference mixing for one tick, without sockets, so a benchmark can
//! drive it directly.
//!
//! Everyone who contributes (has audio this tick and is not muted) is summed
//! once in 32 bits; each contributor hears the sum minus its own input, and
//! every non-contributor hears the same shared sum. That shared frame is what
//! a later optimisation encodes once for all non-talkers (and restricting the
//! sum to the loudest K talkers slots in where contributors are chosen).

use crate::FRAME_SAMPLES;

/// One 20 ms frame of 8 kHz PCM.
pub type Pcm = [i16; FRAME_SAMPLES];

/// Silence.
pub const SILENCE: Pcm = [0; FRAME_SAMPLES];

/// A participant's slot in the mix: what it said this tick, and what it hears.
#[derive(Clone)]
pub struct MixParticipant {
    /// Decoded audio received from the participant this tick.
    pub input: Pcm,
    /// `input` holds received audio (false: nothing arrived, skip it).
    pub has_input: bool,
    /// Not heard by the others.
    pub muted: bool,
    /// Hears nothing from the mix.
    pub deaf: bool,
    /// Output of [`ConferenceMixer::mix`]: what the participant hears.
    pub output: Pcm,
}

impl Default for MixParticipant {
    fn default() -> Self {
        MixParticipant {
            input: SILENCE,
            has_input: false,
            muted: false,
            deaf: false,
            output: SILENCE,
        }
    }
}

impl MixParticipant {
    /// Heard by the others this tick.
    pub fn contributes(&self) -> bool {
        self.has_input && !self.muted
    }
}

/// Mixes one conference, one tick at a time. Holds only fixed-size scratch
/// space: mixing never allocates.
pub struct ConferenceMixer {
    total: [i32; FRAME_SAMPLES],
    shared: Pcm,
}

impl Default for ConferenceMixer {
    fn default() -> Self {
        ConferenceMixer {
            total: [0; FRAME_SAMPLES],
            shared: SILENCE,
        }
    }
}

impl ConferenceMixer {
    pub fn new() -> ConferenceMixer {
        ConferenceMixer::default()
    }

    /// Computes every participant's `output` from all `input`s, plus `extra`
    /// (the conference's own player), which everyone who is not deaf hears.
    pub fn mix(&mut self, participants: &mut [MixParticipant], extra: Option<&Pcm>) {
        self.total.fill(0);
        if let Some(extra) = extra {
            accumulate(&mut self.total, extra);
        }
        for p in participants.iter().filter(|p| p.contributes()) {
            accumulate(&mut self.total, &p.input);
        }
        for (s, &t) in self.shared.iter_mut().zip(&self.total) {
            *s = saturate(t);
        }
        for p in participants.iter_mut() {
            if p.deaf {
                p.output = SILENCE;
            } else if p.contributes() {
                for ((o, &t), &i) in p.output.iter_mut().zip(&self.total).zip(&p.input) {
                    *o = saturate(t - i32::from(i));
                }
            } else {
                p.output = self.shared;
            }
        }
    }

    /// The sum everyone hears who does not contribute (valid after `mix`).
    pub fn shared_output(&self) -> &Pcm {
        &self.shared
    }
}

fn accumulate(total: &mut [i32; FRAME_SAMPLES], frame: &Pcm) {
    for (t, &s) in total.iter_mut().zip(frame) {
        *t += i32::from(s);
    }
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

    fn talker(value: i16) -> MixParticipant {
        MixParticipant {
            input: [value; FRAME_SAMPLES],
            has_input: true,
            ..MixParticipant::default()
        }
    }

    fn heard(p: &MixParticipant) -> i16 {
        assert!(p.output.iter().all(|&s| s == p.output[0]));
        p.output[0]
    }

    #[test]
    fn everyone_hears_everyone_else() {
        let mut m = ConferenceMixer::new();
        let mut ps = vec![
            talker(100),
            talker(20),
            talker(3),
            MixParticipant::default(),
        ];
        m.mix(&mut ps, None);
        let out: Vec<i16> = ps.iter().map(heard).collect();
        assert_eq!(out, vec![23, 103, 120, 123]);
        assert_eq!(m.shared_output()[0], 123);
    }

    #[test]
    fn muted_are_not_heard_and_deaf_hear_nothing() {
        let mut m = ConferenceMixer::new();
        let mut ps = vec![talker(100), talker(20), talker(3)];
        ps[0].muted = true;
        ps[1].deaf = true;
        m.mix(&mut ps, None);
        let out: Vec<i16> = ps.iter().map(heard).collect();
        // The muted one still hears the others; the deaf one is still heard.
        assert_eq!(out, vec![23, 0, 20]);
    }

    #[test]
    fn conference_player_is_heard_by_all_but_the_deaf() {
        let mut m = ConferenceMixer::new();
        let mut ps = vec![talker(10), MixParticipant::default(), talker(1)];
        ps[2].deaf = true;
        m.mix(&mut ps, Some(&[1000; FRAME_SAMPLES]));
        let out: Vec<i16> = ps.iter().map(heard).collect();
        // The deaf talker is still heard.
        assert_eq!(out, vec![1001, 1011, 0]);
    }

    #[test]
    fn sums_saturate_instead_of_wrapping() {
        let mut m = ConferenceMixer::new();
        let mut ps = vec![
            talker(30_000),
            talker(30_000),
            talker(30_000),
            talker(-32768),
        ];
        m.mix(&mut ps, None);
        // 30000 + 30000 - 32768 = 27232 (no intermediate wrap in 32 bits).
        assert_eq!(heard(&ps[0]), 27_232);
        // Everyone else: 3 × 30000 = 90000 → clamps.
        assert_eq!(heard(&ps[3]), i16::MAX);
        let mut low = vec![talker(-30_000), talker(-30_000), talker(-30_000)];
        m.mix(&mut low, None);
        assert_eq!(heard(&low[0]), i16::MIN);
    }

    #[test]
    fn nobody_alone_hears_themselves() {
        let mut m = ConferenceMixer::new();
        let mut ps = vec![talker(1234)];
        m.mix(&mut ps, None);
        assert_eq!(heard(&ps[0]), 0);
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
