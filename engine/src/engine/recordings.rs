//! Recordings of calls and conferences: where their files go, and the ones
//! in progress. The media engine writes the WAV files (off the media
//! tick); this module names them, keeps the handles that stop them, and
//! reports them as scenarios see them ([`RecordingInfo`]).
//!
//! Files go to `<recordings dir>/<account>/<application>/`, so one tenant's
//! recordings never mix with another's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use switchboard_media::{Recording, RecordingSummary};
use switchboard_scenarios::RecordingInfo;

use super::events::Scope;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordingError {
    #[error("only WAV recordings are supported, not {0:?}")]
    Format(String),
    #[error("cannot create {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no recording {0} in progress")]
    Unknown(String),
    #[error("{0}")]
    Media(#[from] switchboard_media::MediaError),
}

/// A fresh recording file path for `owner` (a call id or conference name)
/// of `scope`, creating its directory. Names are reduced to safe
/// characters: they come from callers (conference names are destinations).
pub(crate) fn new_path(
    dir: &Path,
    scope: &Scope,
    owner: &str,
    format: Option<&str>,
) -> Result<(String, PathBuf), RecordingError> {
    if let Some(format) = format.filter(|f| !f.eq_ignore_ascii_case("wav")) {
        return Err(RecordingError::Format(format.to_string()));
    }
    let dir = dir.join(safe(&scope.account)).join(safe(&scope.app));
    std::fs::create_dir_all(&dir).map_err(|source| RecordingError::Directory {
        path: dir.clone(),
        source,
    })?;
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let id = format!("rec-{n}");
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let path = dir.join(format!("{}-{stamp}-{n}.wav", safe(owner)));
    Ok((id, path))
}

/// `[A-Za-z0-9_.-]` only, no leading dot, at most 64 characters.
fn safe(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() || out.starts_with('.') {
        out.insert(0, '_');
    }
    out
}

/// The recordings one call or conference has in progress.
#[derive(Default)]
pub(crate) struct ActiveRecordings {
    live: Mutex<HashMap<String, Active>>,
}

struct Active {
    recording: Recording,
    location: String,
    started: Instant,
}

impl ActiveRecordings {
    /// Keeps `recording` under `id`; returns what the scenario sees.
    pub(crate) fn started(&self, id: String, path: &Path, recording: Recording) -> RecordingInfo {
        let location = path.display().to_string();
        self.lock().insert(
            id.clone(),
            Active {
                recording,
                location: location.clone(),
                started: Instant::now(),
            },
        );
        RecordingInfo {
            id,
            location,
            duration_ms: 0,
            tracks: Vec::new(),
        }
    }

    /// Stops recording `id` and waits for its files to be complete.
    pub(crate) async fn stop(&self, id: &str) -> Result<RecordingInfo, RecordingError> {
        let active = self
            .lock()
            .remove(id)
            .ok_or_else(|| RecordingError::Unknown(id.to_string()))?;
        let elapsed = active.started.elapsed().as_millis() as u64;
        let summary: RecordingSummary = active.recording.stop().await?;
        Ok(RecordingInfo {
            id: id.to_string(),
            location: active.location,
            // What was written (the media clock), not wall time.
            duration_ms: if summary.duration_ms > 0 {
                summary.duration_ms
            } else {
                elapsed
            },
            tracks: summary
                .tracks
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_leave_the_tenant_directory() {
        let dir = tempfile::tempdir().unwrap();
        let scope = Scope {
            account: "../acme".into(),
            app: "a/b".into(),
        };
        let (id, path) = new_path(dir.path(), &scope, "../../etc/passwd", None).unwrap();
        assert!(id.starts_with("rec-"));
        assert!(path.starts_with(dir.path().join("_.._acme").join("a_b")));
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("_.._.._etc_passwd-"), "{name}");
        assert!(name.ends_with(".wav"));
    }

    #[test]
    fn only_wav() {
        let dir = tempfile::tempdir().unwrap();
        let scope = Scope {
            account: "acme".into(),
            app: "main".into(),
        };
        let err = new_path(dir.path(), &scope, "c1", Some("mp3")).unwrap_err();
        assert!(err.to_string().contains("WAV"), "{err}");
        assert!(new_path(dir.path(), &scope, "c1", Some("WAV")).is_ok());
    }
}
