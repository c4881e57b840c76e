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
    let dir = app_dir(dir, scope);
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

/// The directory of one application's recordings.
fn app_dir(root: &Path, scope: &Scope) -> PathBuf {
    root.join(safe(&scope.account)).join(safe(&scope.app))
}

/// A recording file of an application, as the API lists it.
#[derive(Debug, Clone)]
pub struct RecordingFile {
    /// The file name: what the API addresses it by.
    pub name: String,
    pub path: PathBuf,
    pub size_bytes: u64,
    /// Last written, ms since the epoch.
    pub modified_ms: u64,
}

/// The application's recording files (WAV only), newest first. An
/// application that never recorded has none.
pub(crate) fn list(root: &Path, scope: &Scope) -> std::io::Result<Vec<RecordingFile>> {
    let dir = app_dir(root, scope);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !is_recording_name(&name) {
            continue;
        }
        if let Some(file) = describe(&name, entry.path()) {
            files.push(file);
        }
    }
    files.sort_by(|a, b| {
        b.modified_ms
            .cmp(&a.modified_ms)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(files)
}

/// One recording file of the application by name; `None` for a name that is
/// not a recording's (so `../` and the like never reach the filesystem).
pub(crate) fn find(root: &Path, scope: &Scope, name: &str) -> Option<RecordingFile> {
    if !is_recording_name(name) {
        return None;
    }
    describe(name, app_dir(root, scope).join(name))
}

fn describe(name: &str, path: PathBuf) -> Option<RecordingFile> {
    let meta = std::fs::metadata(&path).ok().filter(|m| m.is_file())?;
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Some(RecordingFile {
        name: name.to_string(),
        path,
        size_bytes: meta.len(),
        modified_ms,
    })
}

/// A name [`new_path`] (or a track of it) could have produced.
fn is_recording_name(name: &str) -> bool {
    name.len() <= 255
        && name.ends_with(".wav")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
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

/// Whether `path` is still being written: one of the recordings in progress
/// at `writing`, or one of their tracks.
pub(crate) fn in_progress(writing: &[PathBuf], path: &Path) -> bool {
    writing.iter().any(|location| covers(location, path))
}

/// Whether `path` is the recording at `location` or one of its tracks
/// (`<stem>-<track>.wav` beside it).
fn covers(location: &Path, path: &Path) -> bool {
    let (Some(name), Some(own)) = (
        path.file_name().and_then(|n| n.to_str()),
        location.file_name().and_then(|n| n.to_str()),
    ) else {
        return false;
    };
    if location.parent() != path.parent() {
        return false;
    }
    let stem = own.strip_suffix(".wav").unwrap_or(own);
    name == own
        || name
            .strip_prefix(stem)
            .is_some_and(|rest| rest.starts_with('-') && rest.ends_with(".wav"))
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

    /// Adds where the recordings in progress write to `out`.
    pub(crate) fn locations_into(&self, out: &mut Vec<PathBuf>) {
        out.extend(self.lock().values().map(|a| PathBuf::from(&a.location)));
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
    fn the_api_finds_recordings_by_name_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let scope = Scope {
            account: "acme".into(),
            app: "main".into(),
        };
        let (_, path) = new_path(root.path(), &scope, "conf_1", None).unwrap();
        std::fs::write(&path, b"RIFF").unwrap();
        std::fs::write(path.with_file_name("notes.txt"), b"x").unwrap();
        std::fs::write(root.path().join("secret.wav"), b"x").unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();

        let listed = list(root.path(), &scope).unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0].name, name);
        assert_eq!(listed[0].size_bytes, 4);
        assert!(find(root.path(), &scope, name).is_some());
        for bad in [
            "../secret.wav",
            "../../secret.wav",
            "notes.txt",
            ".wav",
            "a/b.wav",
        ] {
            assert!(find(root.path(), &scope, bad).is_none(), "{bad}");
        }
        let other = Scope {
            account: "other".into(),
            app: "main".into(),
        };
        assert!(list(root.path(), &other).unwrap().is_empty());
        assert!(find(root.path(), &other, name).is_none());
    }

    #[test]
    fn a_recording_in_progress_covers_its_tracks() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("acme").join("main");
        let location = dir.join("conf_1-100-1.wav");
        assert!(covers(&location, &dir.join("conf_1-100-1.wav")));
        assert!(covers(&location, &dir.join("conf_1-100-1-abc.wav")));
        assert!(!covers(&location, &dir.join("conf_1-100-11.wav")));
        assert!(!covers(&location, &root.path().join("conf_1-100-1.wav")));
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
