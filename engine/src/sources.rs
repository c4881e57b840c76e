//! What `play(source)` can play: `tone:` specs, WAV files from the
//! application's `media/` directory, and http(s) URLs of WAV files (only
//! from hosts the application allows). Decoded audio is resampled to the
//! media rate once and cached.

use std::num::NonZeroUsize;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use switchboard_media::AudioClip;

use crate::app::Application;

/// Largest media file or download accepted.
pub const MAX_MEDIA_BYTES: usize = 50 * 1024 * 1024;
/// Longest a media download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest tone a spec may describe (one cadence cycle).
const MAX_TONE_MS: u32 = 60_000;
/// Full-scale sine at -10 dBFS: loud enough, never clips when two tones add.
const TONE_AMPLITUDE: f64 = 0.3 * 32767.0;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SourceError {
    #[error("invalid source {0:?}: use a file of the application's media, tone:<spec> or an http(s) URL")]
    Invalid(String),
    #[error("invalid tone spec {spec:?}: {reason}")]
    Tone { spec: String, reason: String },
    #[error("{0:?} is outside the application's media directory")]
    OutsideMedia(String),
    #[error("the application has no media directory")]
    NoMediaDir,
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("playing from {0} is not allowed for this application (allowed_hosts)")]
    HostNotAllowed(String),
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("{0} is larger than {MAX_MEDIA_BYTES} bytes")]
    TooLarge(String),
    #[error("cannot decode {source_name}: {reason}")]
    Decode { source_name: String, reason: String },
}

/// A parsed `play` source.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Tone(ToneSpec),
    /// A path relative to the application's media directory.
    File(PathBuf),
    Url(String),
}

impl Source {
    pub fn parse(source: &str) -> Result<Source, SourceError> {
        let source = source.trim();
        if let Some(spec) = source.strip_prefix("tone:") {
            return ToneSpec::parse(spec).map(Source::Tone);
        }
        if source.starts_with("http://") || source.starts_with("https://") {
            return Ok(Source::Url(source.to_string()));
        }
        if source.is_empty() || source.contains("://") {
            return Err(SourceError::Invalid(source.to_string()));
        }
        let path = PathBuf::from(source);
        let inside = path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !inside {
            return Err(SourceError::OutsideMedia(source.to_string()));
        }
        Ok(Source::File(path))
    }
}

/// Segments of tone (sum of sines) or silence, e.g. `440+480/2000,0/4000`.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneSpec {
    pub segments: Vec<ToneSegment>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToneSegment {
    /// Frequencies summed; empty for silence.
    pub freqs: Vec<f64>,
    pub ms: u32,
}

impl ToneSpec {
    /// `440` (one second), `440/500`, `440+480/2000,0/4000`, or a name:
    /// `ringback`, `busy`, `dialtone`, `beep`.
    pub fn parse(spec: &str) -> Result<ToneSpec, SourceError> {
        let expanded = match spec.trim() {
            "ringback" => "440+480/2000,0/4000",
            "busy" => "480+620/500,0/500",
            "dialtone" => "350+440/1000",
            "beep" => "1000/150",
            other => other,
        };
        let invalid = |reason: &str| SourceError::Tone {
            spec: spec.to_string(),
            reason: reason.to_string(),
        };
        let mut segments = Vec::new();
        let mut total: u32 = 0;
        for part in expanded.split(',') {
            let (freqs, ms) = match part.split_once('/') {
                Some((freqs, ms)) => (
                    freqs,
                    ms.trim()
                        .parse::<u32>()
                        .map_err(|_| invalid("duration must be milliseconds"))?,
                ),
                None => (part, 1000),
            };
            let mut list = Vec::new();
            for f in freqs.split('+') {
                let hz: f64 = f
                    .trim()
                    .parse()
                    .map_err(|_| invalid("frequencies must be numbers in Hz"))?;
                if !(0.0..=3900.0).contains(&hz) {
                    return Err(invalid("frequencies must be between 0 and 3900 Hz"));
                }
                if hz > 0.0 {
                    list.push(hz);
                }
            }
            if list.len() > 4 {
                return Err(invalid("at most 4 frequencies per segment"));
            }
            if ms == 0 {
                return Err(invalid("durations must be positive"));
            }
            total = total.saturating_add(ms);
            segments.push(ToneSegment { freqs: list, ms });
        }
        if total > MAX_TONE_MS {
            return Err(invalid("longer than 60 s"));
        }
        Ok(ToneSpec { segments })
    }

    /// The tone as audio at `rate` Hz.
    pub fn render(&self, rate: u32) -> AudioClip {
        let mut samples = Vec::new();
        let fade = (rate / 200).max(1) as usize; // 5 ms ramps: no clicks
        for segment in &self.segments {
            let n = (u64::from(rate) * u64::from(segment.ms) / 1000) as usize;
            let per_tone = if segment.freqs.is_empty() {
                0.0
            } else {
                TONE_AMPLITUDE / segment.freqs.len() as f64
            };
            for i in 0..n {
                let edge = i.min(n - 1 - i);
                let ramp = (edge as f64 / fade as f64).min(1.0);
                let t = i as f64 / f64::from(rate);
                let value: f64 = segment
                    .freqs
                    .iter()
                    .map(|f| (std::f64::consts::TAU * f * t).sin())
                    .sum::<f64>()
                    * per_tone
                    * ramp;
                samples.push(value as i16);
            }
        }
        AudioClip::new(rate, samples)
    }
}

/// Resolves sources to audio at the media rate, with a cache of decoded
/// files and downloads.
pub struct SourceResolver {
    rate: u32,
    http: reqwest::Client,
    cache: Mutex<LruCache<String, AudioClip>>,
}

impl SourceResolver {
    pub fn new(http: reqwest::Client, rate: u32, capacity: usize) -> SourceResolver {
        SourceResolver {
            rate,
            http,
            cache: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    /// The audio `source` names, for `app`.
    pub async fn resolve(&self, app: &Application, source: &str) -> Result<AudioClip, SourceError> {
        match Source::parse(source)? {
            Source::Tone(spec) => Ok(spec.render(self.rate)),
            Source::File(relative) => {
                let dir = app.media_dir.as_ref().ok_or(SourceError::NoMediaDir)?;
                let path = contained(dir, &relative, source)?;
                let key = format!("file:{}", path.display());
                if let Some(clip) = self.cached(&key) {
                    return Ok(clip);
                }
                let bytes = tokio::fs::read(&path)
                    .await
                    .map_err(|e| SourceError::Read {
                        path: source.to_string(),
                        reason: e.to_string(),
                    })?;
                if bytes.len() > MAX_MEDIA_BYTES {
                    return Err(SourceError::TooLarge(source.to_string()));
                }
                self.decode_and_cache(key, source, bytes).await
            }
            Source::Url(url) => {
                let parsed = reqwest::Url::parse(&url)
                    .map_err(|_| SourceError::Invalid(source.to_string()))?;
                let host = parsed.host_str().unwrap_or_default().to_string();
                if !app.allows_host(&host) {
                    return Err(SourceError::HostNotAllowed(host));
                }
                let key = format!("url:{url}");
                if let Some(clip) = self.cached(&key) {
                    return Ok(clip);
                }
                let bytes = self.download(&url).await?;
                self.decode_and_cache(key, source, bytes).await
            }
        }
    }

    fn cached(&self, key: &str) -> Option<AudioClip> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    async fn download(&self, url: &str) -> Result<Vec<u8>, SourceError> {
        let failed = |reason: String| SourceError::Download {
            url: url.to_string(),
            reason,
        };
        let mut response = self
            .http
            .get(url)
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
            if body.len() + chunk.len() > MAX_MEDIA_BYTES {
                return Err(SourceError::TooLarge(url.to_string()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn decode_and_cache(
        &self,
        key: String,
        source: &str,
        bytes: Vec<u8>,
    ) -> Result<AudioClip, SourceError> {
        let rate = self.rate;
        let name = source.to_string();
        let clip = tokio::task::spawn_blocking(move || {
            AudioClip::from_wav_bytes(&bytes).and_then(|clip| clip.resampled(rate))
        })
        .await
        .map_err(|e| SourceError::Decode {
            source_name: name.clone(),
            reason: e.to_string(),
        })?
        .map_err(|e| SourceError::Decode {
            source_name: name,
            reason: e.to_string(),
        })?;
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(key, clip.clone());
        Ok(clip)
    }
}

/// `dir/relative`, refusing anything (e.g. a symlink) that leads outside `dir`.
fn contained(dir: &Path, relative: &Path, source: &str) -> Result<PathBuf, SourceError> {
    let read_error = |e: std::io::Error| SourceError::Read {
        path: source.to_string(),
        reason: e.to_string(),
    };
    let root = dir.canonicalize().map_err(read_error)?;
    let path = root.join(relative).canonicalize().map_err(read_error)?;
    if !path.starts_with(&root) {
        return Err(SourceError::OutsideMedia(source.to_string()));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_specs() {
        let spec = ToneSpec::parse("440/1000").unwrap();
        assert_eq!(
            spec.segments,
            vec![ToneSegment {
                freqs: vec![440.0],
                ms: 1000
            }]
        );
        let ringback = ToneSpec::parse("ringback").unwrap();
        assert_eq!(ringback.segments.len(), 2);
        assert_eq!(ringback.segments[0].freqs, vec![440.0, 480.0]);
        assert!(ringback.segments[1].freqs.is_empty());
        assert_eq!(ToneSpec::parse("350").unwrap().segments[0].ms, 1000);
        for bad in [
            "",
            "abc",
            "440/x",
            "440/0",
            "9000/100",
            "1+2+3+4+5/100",
            "440/70000",
        ] {
            assert!(ToneSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn rendered_tones_have_the_right_length_and_level() {
        let clip = ToneSpec::parse("440+480/2000,0/4000").unwrap().render(8000);
        assert_eq!(clip.samples.len(), 6 * 8000);
        let peak = clip.samples[..16000]
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap();
        assert!((9000..=9900).contains(&peak), "{peak}");
        assert!(clip.samples[16000..].iter().all(|&s| s == 0));
    }

    #[test]
    fn sources_cannot_leave_the_media_directory() {
        assert!(matches!(Source::parse("hello.wav"), Ok(Source::File(_))));
        assert!(matches!(
            Source::parse("sub/hello.wav"),
            Ok(Source::File(_))
        ));
        assert!(matches!(
            Source::parse("../secret.wav"),
            Err(SourceError::OutsideMedia(_))
        ));
        assert!(matches!(
            Source::parse("/etc/passwd"),
            Err(SourceError::OutsideMedia(_))
        ));
        assert!(matches!(
            Source::parse("file:///etc/passwd"),
            Err(SourceError::Invalid(_))
        ));
        assert!(matches!(
            Source::parse("https://x/y.wav"),
            Ok(Source::Url(_))
        ));

        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir(&media).unwrap();
        std::fs::write(dir.path().join("outside.wav"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.wav"), media.join("link.wav")).unwrap();
        assert!(matches!(
            contained(&media, Path::new("link.wav"), "link.wav"),
            Err(SourceError::OutsideMedia(_))
        ));
    }
}
