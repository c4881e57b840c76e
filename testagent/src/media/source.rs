//! What the agent plays: tones and sample buffers, 20 ms at a time.

use std::f64::consts::TAU;
use std::sync::Arc;

use tokio::sync::watch;

use crate::analysis::SAMPLE_RATE;

/// Samples in one 20 ms frame at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;

pub(crate) type Frame = [i16; FRAME_SAMPLES];

/// A generator of 8 kHz audio.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A sum of sines `(freq_hz, amplitude)`, forever; phases in cycles.
    Tones {
        components: Vec<(f32, f32)>,
        phases: Vec<f64>,
    },
    /// A buffer, once or looped.
    Samples {
        data: Arc<[i16]>,
        position: usize,
        looped: bool,
    },
}

impl Source {
    pub fn tones(components: &[(f32, f32)]) -> Source {
        Source::Tones {
            components: components.to_vec(),
            phases: vec![0.0; components.len()],
        }
    }

    pub fn samples(data: Arc<[i16]>, looped: bool) -> Source {
        Source::Samples {
            data,
            position: 0,
            looped,
        }
    }

    /// Fills `frame`; returns `false` once a finite source is exhausted
    /// (the rest of the frame is then silence).
    pub fn fill(&mut self, frame: &mut Frame) -> bool {
        match self {
            Source::Tones { components, phases } => {
                for sample in frame.iter_mut() {
                    let mut value = 0.0;
                    for ((freq, amplitude), phase) in components.iter().zip(phases.iter_mut()) {
                        value += f64::from(*amplitude) * (TAU * *phase).sin();
                        *phase = (*phase + f64::from(*freq) / f64::from(SAMPLE_RATE)).fract();
                    }
                    *sample = (value * 32767.0).clamp(-32768.0, 32767.0) as i16;
                }
                true
            }
            Source::Samples {
                data,
                position,
                looped,
            } => {
                for sample in frame.iter_mut() {
                    if *position >= data.len() {
                        if *looped && !data.is_empty() {
                            *position = 0;
                        } else {
                            *sample = 0;
                            continue;
                        }
                    }
                    *sample = data[*position];
                    *position += 1;
                }
                *looped || *position < data.len()
            }
        }
    }
}

/// How a playback ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackEnd {
    /// A finite source played to its end.
    Finished,
    /// Replaced by another playback, stopped, or the media ended.
    Stopped,
}

/// A running playback: await [`Playback::finished`] to know when it ends.
/// Dropping it does not stop the audio.
#[derive(Debug)]
pub struct Playback {
    done: watch::Receiver<Option<PlaybackEnd>>,
}

impl Playback {
    pub(crate) fn new() -> (Playback, watch::Sender<Option<PlaybackEnd>>) {
        let (tx, done) = watch::channel(None);
        (Playback { done }, tx)
    }

    /// Resolves when the playback ends.
    pub async fn finished(mut self) -> PlaybackEnd {
        match self.done.wait_for(Option::is_some).await {
            Ok(end) => end.unwrap_or(PlaybackEnd::Stopped),
            // The sender went away without a word: the media is gone.
            Err(_) => PlaybackEnd::Stopped,
        }
    }

    pub fn is_done(&self) -> bool {
        self.done.borrow().is_some() || self.done.has_changed().is_err()
    }
}

/// The source being played and the way to report its end.
pub(crate) struct ActiveSource {
    pub source: Source,
    pub done: watch::Sender<Option<PlaybackEnd>>,
}

impl ActiveSource {
    pub fn end(&self, how: PlaybackEnd) {
        self.done.send_replace(Some(how));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tone_dbfs;

    #[test]
    fn tone_is_continuous_across_frames() {
        let mut source = Source::tones(&[(440.0, 0.5)]);
        let mut samples = Vec::new();
        for _ in 0..25 {
            let mut frame = [0; FRAME_SAMPLES];
            assert!(source.fill(&mut frame));
            samples.extend_from_slice(&frame);
        }
        assert!((tone_dbfs(&samples, 440.0) + 6.0).abs() < 0.3);
    }

    #[test]
    fn samples_end_or_loop() {
        let data: Arc<[i16]> = (1..=200).collect::<Vec<i16>>().into();
        let mut once = Source::samples(data.clone(), false);
        let mut frame = [0; FRAME_SAMPLES];
        assert!(once.fill(&mut frame));
        assert!(!once.fill(&mut frame));
        assert_eq!(frame[39], 200);
        assert_eq!(frame[40], 0);

        let mut looped = Source::samples(data, true);
        looped.fill(&mut frame);
        assert!(looped.fill(&mut frame));
        assert_eq!(frame[40], 1);
    }
}
