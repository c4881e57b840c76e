//! Text to speech behind a provider trait, with a cache so each prompt is
//! synthesized once.

mod cache;
mod espeak;

pub use cache::CachedTts;
pub use espeak::Espeak;

use switchboard_media::AudioClip;

/// Longest text accepted by `say`.
pub const MAX_TEXT_CHARS: usize = 4000;

/// How to speak.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Voice {
    /// Provider voice name; `None` = the configured default.
    pub name: Option<String>,
    /// Language tag (e.g. `en-us`); used when no voice name is given.
    pub language: Option<String>,
    /// Speaking rate in percent of normal (100 = normal).
    pub rate_percent: u16,
}

impl Voice {
    /// The voice a scenario asked for in `say(text, {voice, language, rate})`.
    pub fn from_say_options(opts: &switchboard_scenarios::SayOptions) -> Voice {
        Voice {
            name: opts.voice.clone(),
            language: opts.language.clone(),
            rate_percent: opts
                .rate
                .map(|r| (r * 100.0).clamp(10.0, 400.0) as u16)
                .unwrap_or(100),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum TtsError {
    #[error("text is empty")]
    Empty,
    #[error("text is longer than {MAX_TEXT_CHARS} characters")]
    TooLong,
    #[error("invalid voice {0:?}")]
    InvalidVoice(String),
    #[error("speech engine failed: {0}")]
    Engine(String),
}

/// A speech synthesizer.
#[async_trait::async_trait]
pub trait TtsProvider: Send + Sync + 'static {
    /// Synthesizes `text` to mono PCM at the provider's rate.
    async fn synthesize(&self, text: &str, voice: &Voice) -> Result<AudioClip, TtsError>;
}

/// Checks what every provider must refuse.
pub(crate) fn validate_text(text: &str) -> Result<(), TtsError> {
    if text.trim().is_empty() {
        return Err(TtsError::Empty);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(TtsError::TooLong);
    }
    Ok(())
}
