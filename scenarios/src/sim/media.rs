//! How long simulated media takes, and waiting for it to end: speech in
//! proportion to its text, tones by their spec, files and URLs by a table
//! (or a default), looped media until stopped.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Duration;

use crate::host::MediaOutcome;
use crate::tone::ToneSpec;

/// Default speaking time per character (about 15 characters a second).
pub(crate) const DEFAULT_SPEECH_PER_CHAR: Duration = Duration::from_millis(65);
/// Default length of a media file or URL whose length the test did not give.
pub(crate) const DEFAULT_MEDIA_LENGTH: Duration = Duration::from_secs(3);

/// Lengths of simulated media.
#[derive(Debug, Clone)]
pub(crate) struct MediaClock {
    pub speech_per_char: Duration,
    /// Lengths of files and URLs by source.
    pub lengths: Arc<HashMap<String, Duration>>,
}

impl Default for MediaClock {
    fn default() -> Self {
        MediaClock {
            speech_per_char: DEFAULT_SPEECH_PER_CHAR,
            lengths: Arc::new(HashMap::new()),
        }
    }
}

impl MediaClock {
    pub fn speech(&self, text: &str) -> Duration {
        self.speech_per_char * text.chars().count() as u32
    }

    /// One pass through `source`.
    pub fn play(&self, source: &str) -> Duration {
        if let Some(length) = self.lengths.get(source) {
            return *length;
        }
        match ToneSpec::parse(source) {
            Ok(spec) => Duration::from_millis(spec.duration_ms()),
            Err(_) => DEFAULT_MEDIA_LENGTH,
        }
    }
}

/// Changes media waits for (a call's or a conference's).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Signals {
    /// `stop_media` calls.
    pub stops: u64,
    /// Keys the caller pressed.
    pub keys: u64,
    /// The call (or conference) ended.
    pub ended: bool,
    /// Say/play operations started (scripted keys wait for prompts).
    pub media_starts: u64,
    /// Say/play operations playing now.
    pub media_playing: u64,
}

/// Counts a media operation as playing until dropped (also when the
/// operation is cancelled).
pub(crate) struct Playing<'a>(pub &'a watch::Sender<Signals>);

impl<'a> Playing<'a> {
    pub fn start(signals: &'a watch::Sender<Signals>) -> Playing<'a> {
        signals.send_modify(|s| {
            s.media_starts += 1;
            s.media_playing += 1;
        });
        Playing(signals)
    }
}

impl Drop for Playing<'_> {
    fn drop(&mut self) {
        self.0
            .send_modify(|s| s.media_playing = s.media_playing.saturating_sub(1));
    }
}

/// Waits until media of `length` (`None`: looped, until stopped) ends, is
/// stopped (or barged in on), or the call ends. `before` is the signals as
/// they were when the media started.
pub(crate) async fn play_out(
    signals: &mut watch::Receiver<Signals>,
    before: Signals,
    length: Option<Duration>,
    barge_in: bool,
) -> MediaOutcome {
    let done = async {
        match length {
            Some(length) => tokio::time::sleep(length).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(done);
    loop {
        tokio::select! {
            _ = &mut done => return MediaOutcome::Finished,
            changed = signals.changed() => {
                if changed.is_err() {
                    return MediaOutcome::Hangup;
                }
                let now = *signals.borrow_and_update();
                if now.ended {
                    return MediaOutcome::Hangup;
                }
                if now.stops != before.stops || (barge_in && now.keys != before.keys) {
                    return MediaOutcome::Interrupted;
                }
            }
        }
    }
}
