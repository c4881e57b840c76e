//! What `play(source)` accepts, checked before anything is played: a WAV file
//! of the application's media (a relative path that stays inside it), a
//! `tone:` spec ([`crate::tone`]), or an http(s) URL.

use crate::tone::{ToneError, ToneSpec};

/// Longest source string accepted.
pub const MAX_SOURCE_LEN: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub enum PlaySource {
    /// A path relative to the application's media directory, e.g. `hold.wav`
    /// or `music/hold.wav`.
    File(String),
    Tone(ToneSpec),
    /// An `http://` or `https://` URL (fetched, decoded and cached by the engine).
    Url(String),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Tone(#[from] ToneError),
    #[error("play source {0:?}: {1}")]
    Invalid(String, &'static str),
}

impl PlaySource {
    pub fn parse(source: &str) -> Result<PlaySource, SourceError> {
        let invalid = |why| SourceError::Invalid(source.to_string(), why);
        if source.is_empty() {
            return Err(invalid("empty"));
        }
        if source.len() > MAX_SOURCE_LEN {
            return Err(invalid("too long"));
        }
        if source.chars().any(char::is_control) {
            return Err(invalid("contains control characters"));
        }
        if source.starts_with("tone:") {
            return Ok(PlaySource::Tone(ToneSpec::parse(source)?));
        }
        let lower = source.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let rest = &source[source.find("//").map_or(0, |i| i + 2)..];
            if rest.is_empty() || rest.starts_with('/') {
                return Err(invalid("the URL has no host"));
            }
            return Ok(PlaySource::Url(source.to_string()));
        }
        if source.contains("://") || lower.starts_with("file:") {
            return Err(invalid(
                "only http(s) URLs, tone: specs and media files can be played",
            ));
        }
        if source.starts_with('/') || source.contains('\\') {
            return Err(invalid(
                "a media file is a path relative to the application's media",
            ));
        }
        if source
            .split('/')
            .any(|part| part.is_empty() || part == "..")
        {
            return Err(invalid(
                "a media file path must stay inside the application's media",
            ));
        }
        if !lower.ends_with(".wav") {
            return Err(invalid("media files are WAV files (name.wav)"));
        }
        Ok(PlaySource::File(source.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(
            PlaySource::parse("music/hold.wav").unwrap(),
            PlaySource::File("music/hold.wav".into())
        );
        assert!(matches!(
            PlaySource::parse("tone:ringback").unwrap(),
            PlaySource::Tone(_)
        ));
        assert_eq!(
            PlaySource::parse("https://example.com/a.wav").unwrap(),
            PlaySource::Url("https://example.com/a.wav".into())
        );
    }

    #[test]
    fn refuses_escapes_and_other_schemes() {
        for bad in [
            "",
            "/etc/passwd.wav",
            "../secret.wav",
            "a/../../b.wav",
            "file:///x.wav",
            "ftp://h/x.wav",
            "https://",
            "song.mp3",
            "tone:nope",
            "a\nb.wav",
        ] {
            assert!(PlaySource::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
