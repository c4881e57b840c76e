//! espeak-ng run as a child process (keeps its GPL out of our binary).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use switchboard_media::AudioClip;
use tokio::io::AsyncWriteExt;

use super::{validate_text, TtsError, TtsProvider, Voice};

/// espeak-ng's normal speed in words per minute.
const NORMAL_WPM: u32 = 175;
/// A synthesis that takes longer than this is abandoned.
const TIMEOUT: Duration = Duration::from_secs(20);

pub struct Espeak {
    binary: PathBuf,
    default_voice: String,
}

impl Espeak {
    pub fn new(binary: PathBuf, default_voice: String) -> Espeak {
        Espeak {
            binary,
            default_voice,
        }
    }

    /// Fails with a clear message when espeak-ng is missing or broken.
    pub async fn check(&self) -> Result<(), TtsError> {
        self.synthesize("ok", &Voice::default()).await.map(|_| ())
    }
}

/// Voice names reach a command line: allow only what espeak-ng voice names
/// use (`en-us`, `mb-en1`, `en+f3`).
fn valid_voice(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/'))
}

#[async_trait::async_trait]
impl TtsProvider for Espeak {
    async fn synthesize(&self, text: &str, voice: &Voice) -> Result<AudioClip, TtsError> {
        validate_text(text)?;
        let voice_name = voice
            .name
            .as_deref()
            .or(voice.language.as_deref())
            .unwrap_or(&self.default_voice);
        if !valid_voice(voice_name) {
            return Err(TtsError::InvalidVoice(voice_name.to_string()));
        }
        let rate = if voice.rate_percent == 0 {
            100
        } else {
            voice.rate_percent
        };
        let wpm = (NORMAL_WPM * u32::from(rate) / 100).clamp(80, 450);
        // Text goes through stdin, never the command line.
        let mut child = tokio::process::Command::new(&self.binary)
            .args(["--stdout", "--stdin", "-b", "1", "-v", voice_name])
            .arg("-s")
            .arg(wpm.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TtsError::Engine(format!("cannot run {}: {e}", self.binary.display())))?;
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| TtsError::Engine("no stdin".into()))?;
        let input = text.replace(['\r', '\n'], " ");
        let output = tokio::time::timeout(TIMEOUT, async move {
            stdin
                .write_all(input.as_bytes())
                .await
                .map_err(|e| TtsError::Engine(format!("writing text: {e}")))?;
            drop(stdin);
            child
                .wait_with_output()
                .await
                .map_err(|e| TtsError::Engine(e.to_string()))
        })
        .await
        .map_err(|_| TtsError::Engine(format!("timed out after {TIMEOUT:?}")))??;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(TtsError::Engine(format!(
                "espeak-ng exited with {}: {}",
                output.status,
                stderr.trim()
            )));
        }
        let mut wav = output.stdout;
        fix_streamed_wav_sizes(&mut wav);
        AudioClip::from_wav_bytes(&wav)
            .map_err(|e| TtsError::Engine(format!("unreadable audio from espeak-ng: {e}")))
    }
}

/// espeak-ng writing to a pipe cannot seek back to fill in the RIFF and
/// `data` sizes, so it writes placeholders (0x7ffff000). Set them to what was
/// actually received so a strict WAV reader accepts the file.
fn fix_streamed_wav_sizes(wav: &mut [u8]) {
    if wav.len() < 12 || &wav[0..4] != b"RIFF" || &wav[8..12] != b"WAVE" {
        return;
    }
    let riff_size = (wav.len() - 8) as u32;
    wav[4..8].copy_from_slice(&riff_size.to_le_bytes());
    let mut pos = 12;
    while pos + 8 <= wav.len() {
        let id = [wav[pos], wav[pos + 1], wav[pos + 2], wav[pos + 3]];
        let size = u32::from_le_bytes([wav[pos + 4], wav[pos + 5], wav[pos + 6], wav[pos + 7]]);
        let body = pos + 8;
        if &id == b"data" {
            let actual = (wav.len() - body) as u32 & !1;
            wav[pos + 4..body].copy_from_slice(&actual.to_le_bytes());
            return;
        }
        // Chunks are padded to even sizes.
        pos = body.saturating_add(size as usize + (size as usize & 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_wav_sizes_are_fixed() {
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&0x7fff_f000u32.to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
        wav.extend_from_slice(&8000u32.to_le_bytes());
        wav.extend_from_slice(&16000u32.to_le_bytes());
        wav.extend_from_slice(&[2, 0, 16, 0]);
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&0x7fff_f000u32.to_le_bytes());
        wav.extend_from_slice(&[1, 0, 2, 0, 3, 0]);
        fix_streamed_wav_sizes(&mut wav);
        let clip = AudioClip::from_wav_bytes(&wav).unwrap();
        assert_eq!(&clip.samples[..], &[1, 2, 3]);
        // Not a WAV: untouched, no panic.
        let mut junk = b"RIFFxx".to_vec();
        fix_streamed_wav_sizes(&mut junk);
        assert_eq!(junk, b"RIFFxx");
    }

    #[test]
    fn voice_names_cannot_smuggle_arguments() {
        assert!(valid_voice("en-us"));
        assert!(valid_voice("en+f3"));
        assert!(!valid_voice("--stdout"));
        assert!(!valid_voice("en us"));
        assert!(!valid_voice(""));
    }

    #[tokio::test]
    async fn speaks_real_audio() {
        let tts = Espeak::new("espeak-ng".into(), "en-us".into());
        let clip = tts
            .synthesize("Welcome. Enter your conference code.", &Voice::default())
            .await
            .expect("espeak-ng must be installed for the tests (apt install espeak-ng)");
        let seconds = clip.samples.len() as f64 / f64::from(clip.rate);
        assert!(seconds > 1.0 && seconds < 10.0, "{seconds} s");
        let peak = clip
            .samples
            .iter()
            .map(|s| s.unsigned_abs())
            .max()
            .unwrap_or(0);
        assert!(peak > 3000, "speech should not be silent (peak {peak})");
    }

    #[tokio::test]
    async fn bad_input_is_refused() {
        let tts = Espeak::new("espeak-ng".into(), "en-us".into());
        assert_eq!(
            tts.synthesize("  ", &Voice::default()).await.unwrap_err(),
            TtsError::Empty
        );
        let voice = Voice {
            name: Some("-w/etc/passwd".into()),
            ..Voice::default()
        };
        assert!(matches!(
            tts.synthesize("hi", &voice).await.unwrap_err(),
            TtsError::InvalidVoice(_)
        ));
        let missing = Espeak::new("/nonexistent/espeak".into(), "en-us".into());
        assert!(matches!(
            missing
                .synthesize("hi", &Voice::default())
                .await
                .unwrap_err(),
            TtsError::Engine(_)
        ));
    }
}
