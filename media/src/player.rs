//! Clip players and the [`Playback`] future that reports how they ended.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use crate::mixer::add_saturating;
use crate::resample::RateConverter;
use crate::{frame_samples, AudioClip, PlayOutcome, MAX_FRAME};

/// The worker's end of a [`Playback`]: reports the outcome once. Dropped
/// without reporting (the worker went away), the playback resolves `Closed`.
#[derive(Debug)]
pub(crate) struct Completion(Option<oneshot::Sender<PlayOutcome>>);

impl Completion {
    /// A completion and the future it resolves.
    pub(crate) fn new() -> (Completion, Playback) {
        let (tx, rx) = oneshot::channel();
        (Completion(Some(tx)), Playback { rx })
    }

    pub(crate) fn complete(mut self, outcome: PlayOutcome) {
        if let Some(tx) = self.0.take() {
            // The caller may have dropped the Playback: nobody to tell.
            let _ = tx.send(outcome);
        }
    }
}

/// A playback in progress; await it for its outcome. Dropping it does not stop
/// the audio.
#[derive(Debug)]
pub struct Playback {
    rx: oneshot::Receiver<PlayOutcome>,
}

impl Playback {
    /// A playback that is already over.
    pub fn resolved(outcome: PlayOutcome) -> Playback {
        let (done, playback) = Completion::new();
        done.complete(outcome);
        playback
    }
}

impl Future for Playback {
    type Output = PlayOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PlayOutcome> {
        Pin::new(&mut self.rx)
            .poll(cx)
            .map(|r| r.unwrap_or(PlayOutcome::Closed))
    }
}

/// Plays one clip (already at the internal rate) frame by frame.
#[derive(Debug)]
pub(crate) struct Player {
    clip: AudioClip,
    pos: usize,
    looped: bool,
    done: Completion,
}

impl Player {
    pub(crate) fn new(clip: AudioClip, looped: bool, done: Completion) -> Player {
        Player {
            clip,
            pos: 0,
            looped,
            done,
        }
    }

    /// Adds the next `out.len()` samples to `out`. Returns false once the clip
    /// has played to its end (an empty clip ends at once, looped or not).
    pub(crate) fn add_to(&mut self, out: &mut [i16]) -> bool {
        let samples = &self.clip.samples;
        if samples.is_empty() {
            return false;
        }
        let mut filled = 0;
        while filled < out.len() {
            if self.pos >= samples.len() {
                if !self.looped {
                    return false;
                }
                self.pos = 0;
            }
            let n = (out.len() - filled).min(samples.len() - self.pos);
            add_saturating(
                &mut out[filled..filled + n],
                &samples[self.pos..self.pos + n],
            );
            filled += n;
            self.pos += n;
        }
        self.looped || self.pos < samples.len()
    }

    pub(crate) fn finish(self, outcome: PlayOutcome) {
        self.done.complete(outcome);
    }
}

/// The slot a leg or conference plays from: starting a clip interrupts the
/// previous one. Clips play at their own rate and are converted to the
/// output's rate frame by frame when the two differ (a conference whose
/// rate changes as members come and go).
#[derive(Debug, Default)]
pub(crate) struct PlayerSlot {
    current: Option<Player>,
    convert: Option<Converting>,
}

/// Scratch for playing a clip at another rate (allocated when first needed,
/// on a rate change: not per frame).
#[derive(Debug)]
struct Converting {
    conv: RateConverter,
    clip_frame: Box<[i16; MAX_FRAME]>,
    out_frame: Box<[i16; MAX_FRAME]>,
}

impl PlayerSlot {
    pub(crate) fn start(&mut self, player: Player) {
        self.stop(PlayOutcome::Interrupted);
        self.current = Some(player);
    }

    pub(crate) fn stop(&mut self, outcome: PlayOutcome) {
        if let Some(p) = self.current.take() {
            p.finish(outcome);
        }
    }

    pub(crate) fn is_playing(&self) -> bool {
        self.current.is_some()
    }

    /// Adds one frame of the current clip (at the clip's rate) to `out`;
    /// reports `Finished` when it ends.
    pub(crate) fn add_to(&mut self, out: &mut [i16]) {
        if let Some(p) = self.current.as_mut() {
            if !p.add_to(out) {
                self.stop(PlayOutcome::Finished);
            }
        }
    }

    /// Adds one 20 ms frame of the current clip to `out`, which runs at
    /// `rate`, converting the clip's rate if needed.
    pub(crate) fn add_at(&mut self, out: &mut [i16], rate: u32) {
        let Some(p) = self.current.as_mut() else {
            return;
        };
        let clip_rate = p.clip.rate;
        if clip_rate == rate {
            return self.add_to(out);
        }
        let fits = self
            .convert
            .as_ref()
            .is_some_and(|c| c.conv.from_rate() == clip_rate && c.conv.to_rate() == rate);
        if !fits {
            match RateConverter::new(clip_rate, rate) {
                Ok(conv) => {
                    self.convert = Some(Converting {
                        conv,
                        clip_frame: Box::new([0; MAX_FRAME]),
                        out_frame: Box::new([0; MAX_FRAME]),
                    })
                }
                Err(e) => {
                    tracing::warn!("cannot play a {clip_rate} Hz clip at {rate} Hz: {e}");
                    return self.stop(PlayOutcome::Finished);
                }
            }
        }
        let Some(c) = self.convert.as_mut() else {
            return;
        };
        let (n_in, n_out) = (frame_samples(clip_rate), frame_samples(rate));
        c.clip_frame[..n_in].fill(0);
        let more = p.add_to(&mut c.clip_frame[..n_in]);
        c.conv
            .process(&c.clip_frame[..n_in], &mut c.out_frame[..n_out]);
        add_saturating(out, &c.out_frame[..n_out]);
        if !more {
            self.stop(PlayOutcome::Finished);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn clip(samples: Vec<i16>) -> AudioClip {
        AudioClip {
            rate: 8000,
            samples: Arc::from(samples),
        }
    }

    fn outcome_now(p: &mut Playback) -> Option<PlayOutcome> {
        p.rx.try_recv().ok()
    }

    #[test]
    fn plays_to_the_end_then_finishes() {
        let (done, mut pb) = Completion::new();
        let mut slot = PlayerSlot::default();
        slot.start(Player::new(clip((1..=5).collect()), false, done));
        let mut out = [0i16; 3];
        slot.add_to(&mut out);
        assert_eq!(out, [1, 2, 3]);
        assert!(slot.is_playing());
        let mut out = [0i16; 3];
        slot.add_to(&mut out);
        assert_eq!(out, [4, 5, 0]);
        assert!(!slot.is_playing());
        assert_eq!(outcome_now(&mut pb), Some(PlayOutcome::Finished));
    }

    #[test]
    fn exact_length_finishes_on_its_last_frame() {
        let (done, mut pb) = Completion::new();
        let mut slot = PlayerSlot::default();
        slot.start(Player::new(clip(vec![7; 4]), false, done));
        slot.add_to(&mut [0i16; 4]);
        assert_eq!(outcome_now(&mut pb), Some(PlayOutcome::Finished));
    }

    #[test]
    fn loops_until_stopped() {
        let (done, mut pb) = Completion::new();
        let mut slot = PlayerSlot::default();
        slot.start(Player::new(clip(vec![1, 2]), true, done));
        let mut out = [0i16; 5];
        slot.add_to(&mut out);
        assert_eq!(out, [1, 2, 1, 2, 1]);
        assert!(slot.is_playing());
        slot.stop(PlayOutcome::Interrupted);
        assert_eq!(outcome_now(&mut pb), Some(PlayOutcome::Interrupted));
    }

    #[test]
    fn new_clip_interrupts_the_previous() {
        let (d1, mut p1) = Completion::new();
        let (d2, mut p2) = Completion::new();
        let mut slot = PlayerSlot::default();
        slot.start(Player::new(clip(vec![1; 100]), false, d1));
        slot.start(Player::new(clip(vec![2; 100]), false, d2));
        assert_eq!(outcome_now(&mut p1), Some(PlayOutcome::Interrupted));
        assert_eq!(outcome_now(&mut p2), None);
        let mut out = [0i16; 2];
        slot.add_to(&mut out);
        assert_eq!(out, [2, 2]);
    }

    #[test]
    fn empty_clip_finishes_even_looped() {
        let (done, mut pb) = Completion::new();
        let mut slot = PlayerSlot::default();
        slot.start(Player::new(clip(vec![]), true, done));
        slot.add_to(&mut [0i16; 4]);
        assert_eq!(outcome_now(&mut pb), Some(PlayOutcome::Finished));
    }

    #[tokio::test]
    async fn dropped_completion_resolves_closed() {
        let (done, pb) = Completion::new();
        drop(done);
        assert_eq!(pb.await, PlayOutcome::Closed);
        assert_eq!(
            Playback::resolved(PlayOutcome::Interrupted).await,
            PlayOutcome::Interrupted
        );
    }
}
