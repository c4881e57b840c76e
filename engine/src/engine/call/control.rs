//! The scenario's view of a call: [`CallControl`] over signalling and media.

use std::sync::Arc;

use switchboard_scenarios::{
    CallControl, CallError, CallEvent, CallInfo, CallState, MediaOutcome, PlayOptions,
    RecordOptions, RecordingInfo, SayOptions,
};
use switchboard_sip::EndReason;
use tracing::info;

use super::{lock, Call};

fn sip_error(e: switchboard_sip::SipError) -> CallError {
    CallError::Other(e.to_string())
}

/// Only `X-` headers may be added by scenarios (the stack owns the rest).
fn check_headers(headers: &[(String, String)]) -> Result<(), CallError> {
    for (name, value) in headers {
        let valid_name = name.len() > 2
            && name[..2].eq_ignore_ascii_case("x-")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(CallError::Other(format!(
                "only X- headers can be set, not {name:?}"
            )));
        }
        if value.chars().any(|c| c == '\r' || c == '\n') {
            return Err(CallError::Other(format!(
                "header {name} has a line break in its value"
            )));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl CallControl for Call {
    fn info(&self) -> &CallInfo {
        &self.info
    }

    fn state(&self) -> CallState {
        self.current_state()
    }

    async fn answer(&self, headers: Vec<(String, String)>) -> Result<(), CallError> {
        check_headers(&headers)?;
        let _guard = self.answering.lock().await;
        match self.current_state() {
            CallState::Answered => return Ok(()),
            CallState::Ended => return Err(CallError::Ended),
            CallState::Incoming | CallState::Ringing => {}
        }
        let sdp = self.start_media()?;
        if let Err(e) = self.signaling.answer(sdp, headers).await {
            return Err(CallError::Other(format!("answer failed: {e}")));
        }
        if !self.set_answered() {
            return Err(CallError::Ended);
        }
        if let Some(stream) = self.stream.get() {
            info!(call = %self.info.id, codec = stream.codec.encoding_name(), "answered");
        }
        Ok(())
    }

    async fn ring(&self) -> Result<(), CallError> {
        match self.current_state() {
            CallState::Incoming | CallState::Ringing => {}
            CallState::Ended => return Err(CallError::Ended),
            CallState::Answered => return Ok(()),
        }
        self.signaling.ring().await.map_err(sip_error)?;
        let mut state = lock(&self.state);
        if *state == CallState::Incoming {
            *state = CallState::Ringing;
        }
        Ok(())
    }

    async fn early_media(&self) -> Result<(), CallError> {
        let _guard = self.answering.lock().await;
        match self.current_state() {
            CallState::Incoming | CallState::Ringing => {}
            CallState::Ended => return Err(CallError::Ended),
            // Media already flows.
            CallState::Answered => return Ok(()),
        }
        if self.direction_is_outbound() {
            return Err(CallError::InvalidState(
                "early media is for incoming calls".into(),
            ));
        }
        let sdp = self.start_media()?;
        self.signaling.early_media(sdp).await.map_err(sip_error)
    }

    async fn reject(&self, code: u16, reason: Option<String>) -> Result<(), CallError> {
        match self.current_state() {
            CallState::Ended => return Err(CallError::Ended),
            CallState::Answered => {
                return Err(CallError::InvalidState(
                    "answered (use hangup to end an answered call)".into(),
                ))
            }
            _ => {}
        }
        if !(300..=699).contains(&code) {
            return Err(CallError::Other(format!(
                "reject needs a SIP status code from 300 to 699, not {code}"
            )));
        }
        self.signaling
            .reject(code, reason.as_deref())
            .await
            .map_err(sip_error)?;
        self.set_sip_code(code);
        self.mark_ended(&EndReason::Local);
        Ok(())
    }

    async fn hangup(&self, headers: Vec<(String, String)>) -> Result<(), CallError> {
        check_headers(&headers)?;
        if self.current_state() == CallState::Ended {
            return Ok(());
        }
        if self.current_state() != CallState::Answered && !self.direction_is_outbound() {
            self.set_sip_code(480);
        }
        let result = self.signaling.hangup(headers).await;
        self.mark_ended(&EndReason::Local);
        result.map_err(sip_error)
    }

    async fn say(&self, text: &str, opts: SayOptions) -> Result<MediaOutcome, CallError> {
        self.say_text(text, &opts).await
    }

    async fn play(&self, source: &str, opts: PlayOptions) -> Result<MediaOutcome, CallError> {
        self.play_source(source, opts.looped).await
    }

    fn stop_media(&self) {
        if let Some(leg) = self.leg() {
            leg.stop_media();
        }
    }

    async fn send_digits(&self, digits: &str) -> Result<(), CallError> {
        self.send_dtmf(digits).await
    }

    async fn record(&self, opts: RecordOptions) -> Result<RecordingInfo, CallError> {
        self.start_recording(opts).await
    }

    async fn stop_recording(&self, id: &str) -> Result<RecordingInfo, CallError> {
        self.finish_recording(id).await
    }

    async fn bridge(&self, other: Arc<dyn CallControl>) -> Result<(), CallError> {
        let engine = self.engine().ok_or(CallError::Ended)?;
        let id = other.info().id.clone();
        // Only calls of this engine and application can be bridged.
        let peer = engine
            .calls
            .get(&id)
            .map(|c| c.clone())
            .filter(|c| c.app().id == self.app.id)
            .ok_or_else(|| CallError::Other(format!("call {id} is not available")))?;
        self.bridge_with(&peer)
    }

    async fn unbridge(&self) -> Result<(), CallError> {
        self.unbridge_media();
        Ok(())
    }

    async fn next_event(&self) -> Option<CallEvent> {
        let mut events = self.events_rx.lock().await;
        events.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::check_headers;

    #[test]
    fn only_x_headers_without_line_breaks() {
        let h = |n: &str, v: &str| vec![(n.to_string(), v.to_string())];
        assert!(check_headers(&h("X-Ticket", "42")).is_ok());
        assert!(check_headers(&h("Contact", "<sip:evil>")).is_err());
        assert!(check_headers(&h("X-A", "1\r\nVia: x")).is_err());
        assert!(check_headers(&h("X-", "1")).is_err());
        assert!(check_headers(&h("X-A B", "1")).is_err());
    }
}
