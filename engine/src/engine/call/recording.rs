//! Recording a call to a WAV file: the caller and what it hears, mixed to
//! one channel or on two (`stereo`).

use switchboard_scenarios::{CallError, RecordOptions, RecordingInfo};

use super::Call;
use crate::engine::recordings::{self, RecordingError};

impl Call {
    pub(super) async fn start_recording(
        &self,
        opts: RecordOptions,
    ) -> Result<RecordingInfo, CallError> {
        if self.ended.is_cancelled() {
            return Err(CallError::Ended);
        }
        let engine = self.engine().ok_or(CallError::Ended)?;
        let leg = self
            .leg()
            .ok_or_else(|| CallError::InvalidState("record needs an answered call".into()))?;
        let (id, path) = recordings::new_path(
            &engine.config.recordings_dir(),
            &self.scope,
            self.id(),
            opts.format.as_deref(),
        )
        .map_err(media_error)?;
        let recording = leg
            .record(
                &path,
                switchboard_media::RecordOptions {
                    stereo: opts.stereo,
                    tracks: false,
                },
            )
            .map_err(|e| media_error(e.into()))?;
        tracing::info!(call = %self.id(), recording = %id, path = %path.display(), "recording");
        Ok(self.recordings.started(id, &path, recording))
    }

    pub(super) async fn finish_recording(&self, id: &str) -> Result<RecordingInfo, CallError> {
        match self.recordings.stop(id).await {
            Ok(info) => Ok(info),
            // The file was finished when the call ended.
            Err(_) if self.ended.is_cancelled() => Err(CallError::Ended),
            Err(e) => Err(media_error(e)),
        }
    }
}

fn media_error(e: RecordingError) -> CallError {
    match e {
        RecordingError::Unknown(_) => CallError::Other(e.to_string()),
        e => CallError::Media(e.to_string()),
    }
}
