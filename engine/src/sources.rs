//! What `play(source)` can play: `tone:` specs, WAV files from the
//! application's `media/` directory, and http(s) URLs of WAV files (only
//! from hosts the application allows). Decoded audio is resampled to the
//! media rate once and cached.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use switchboard_media::AudioClip;
use switchboard_scenarios::source::PlaySource;
use switchboard_scenarios::tone::ToneSpec;

use crate::app::Application;

/// Largest media file or download accepted.
pub const MAX_MEDIA_BYTES: usize = 50 * 1024 * 1024;
/// Longest a media download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// Full-scale sine at -10 dBFS: loud enough, never clips when two tones add.
const TONE_AMPLITUDE: f64 = 0.3 * 32767.0;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum SourceError {
    #[error("{0}")]
    Invalid(String),
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

/// A tone spec as audio at `rate` Hz (sines summed at -10 dBFS, 5 ms ramps
/// so segments do not click).
pub fn render_tone(spec: &ToneSpec, rate: u32) -> AudioClip {
    let mut samples = Vec::new();
    let fade = (rate / 200).max(1) as usize;
    for segment in &spec.segments {
        let freqs: Vec<f64> = segment
            .frequencies_hz
            .iter()
            .filter(|&&f| f > 0)
            .map(|&f| f64::from(f))
            .collect();
        let n = (u64::from(rate) * u64::from(segment.duration_ms) / 1000) as usize;
        let per_tone = if freqs.is_empty() {
            0.0
        } else {
            TONE_AMPLITUDE / freqs.len() as f64
        };
        for i in 0..n {
            let edge = i.min(n - 1 - i);
            let ramp = (edge as f64 / fade as f64).min(1.0);
            let t = i as f64 / f64::from(rate);
            let value: f64 = freqs
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
        let parsed = PlaySource::parse(source).map_err(|e| SourceError::Invalid(e.to_string()))?;
        match parsed {
            PlaySource::Tone(spec) => Ok(render_tone(&spec, self.rate)),
            PlaySource::File(relative) => {
                let dir = app.media_dir.as_ref().ok_or(SourceError::NoMediaDir)?;
                let path = contained(dir, Path::new(&relative), source)?;
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
            PlaySource::Url(url) => {
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
    fn rendered_tones_have_the_right_length_and_level() {
        let spec = ToneSpec::parse("tone:440+480/2000,0/4000").unwrap();
        let clip = render_tone(&spec, 8000);
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
    fn media_files_cannot_leave_the_media_directory() {
        let dir = tempfile::tempdir().unwrap();
        let media = dir.path().join("media");
        std::fs::create_dir(&media).unwrap();
        std::fs::write(dir.path().join("outside.wav"), b"x").unwrap();
        std::fs::write(media.join("inside.wav"), b"x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.wav"), media.join("link.wav")).unwrap();
        assert!(contained(&media, Path::new("inside.wav"), "inside.wav").is_ok());
        assert!(matches!(
            contained(&media, Path::new("link.wav"), "link.wav"),
            Err(SourceError::OutsideMedia(_))
        ));
        assert!(matches!(
            contained(&media, Path::new("../outside.wav"), "../outside.wav"),
            Err(SourceError::OutsideMedia(_))
        ));
    }
}
