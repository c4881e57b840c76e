//! Recording a call to a WAV file.
//!
//! TEMPORARY on the engine3 branch: waits for the media recorder (media5).

use switchboard_scenarios::{CallError, RecordOptions, RecordingInfo};

use super::Call;

impl Call {
    pub(super) async fn start_recording(
        &self,
        _opts: RecordOptions,
    ) -> Result<RecordingInfo, CallError> {
        Err(CallError::Media(
            "recording lands with the media recorder".into(),
        ))
    }

    pub(super) async fn finish_recording(&self, _id: &str) -> Result<RecordingInfo, CallError> {
        Err(CallError::Media(
            "recording lands with the media recorder".into(),
        ))
    }
}
