//! A call's media: the RTP leg (started on answer or early media, never
//! before), what the caller hears (prompts, files, tones), DTMF out, and
//! bridging two calls.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use switchboard_media::{
    AudioClip, ConferenceHandle, DtmfSource, LegEvent, LegEvents, LegHandle, LegParams,
    ParticipantOptions, RtpSocket, WebRtcSession,
};
use switchboard_scenarios::{CallError, CallEvent, MediaOutcome, SayOptions};
use switchboard_sip::sdp;
use tracing::debug;

use super::{lock, Call, Direction};
use crate::engine::events::EngineEvent;
use crate::tts::Voice;

/// Two calls hearing each other: a private two-party mix.
struct Bridge {
    mix: ConferenceHandle,
    peer: Weak<Call>,
}

/// A call's media before its leg starts: bound (and for WebRTC, answered)
/// when the call is created, started on answer or early media.
pub(crate) enum PendingMedia {
    /// Plain RTP (SIP phones): the socket; the answer is written from the
    /// negotiated [`super::Stream`].
    Rtp(RtpSocket),
    /// A browser's WebRTC offer, accepted: ICE-lite, DTLS-SRTP, Opus.
    WebRtc(Box<WebRtcSession>),
}

pub(crate) struct CallMedia {
    /// Bound when the call was created, until the leg takes it.
    pending: Mutex<Option<PendingMedia>>,
    leg: OnceLock<LegHandle>,
    /// The SDP we answer with (the same in 183 and 200).
    local_sdp: OnceLock<String>,
    bridge: Mutex<Option<Bridge>>,
}

impl CallMedia {
    pub(super) fn new(pending: PendingMedia) -> CallMedia {
        CallMedia {
            pending: Mutex::new(Some(pending)),
            leg: OnceLock::new(),
            local_sdp: OnceLock::new(),
            bridge: Mutex::new(None),
        }
    }

    pub(super) fn leg(&self) -> Option<&LegHandle> {
        self.leg.get()
    }

    /// Frees everything: leg, unused socket, bridge.
    pub(super) fn close(&self, _call: &Call) {
        if let Some(leg) = self.leg.get() {
            leg.close();
        }
        lock(&self.pending).take();
        if let Some(bridge) = lock(&self.bridge).take() {
            bridge.mix.close();
            if let Some(peer) = bridge.peer.upgrade() {
                lock(&peer.media.bridge).take();
            }
        }
    }

    /// An in-dialog SIP INFO: a DTMF body (`application/dtmf-relay` or
    /// `application/dtmf`) becomes a digit through the leg, which drops it
    /// if the same key press already came as RFC 4733 or in-band tones.
    pub(super) fn on_info(&self, call: &Call, content_type: Option<&str>, body: &[u8]) {
        use switchboard_media::dtmf::info;
        let Some(content_type) = content_type.filter(|c| info::is_dtmf_content_type(c)) else {
            debug!(call = %call.id(), ?content_type, "INFO without DTMF ignored");
            return;
        };
        match info::parse_info(content_type, body) {
            Ok(d) => match self.leg.get() {
                Some(leg) => {
                    if let Err(e) = leg.inject_dtmf(d.digit, DtmfSource::SipInfo, d.duration_ms) {
                        debug!(call = %call.id(), error = %e, "INFO digit dropped");
                    }
                }
                None => debug!(call = %call.id(), "INFO digit before the call has media"),
            },
            Err(e) => debug!(call = %call.id(), error = %e, "unreadable DTMF INFO"),
        }
    }
}

/// A media playback's end as scenarios see it.
pub(crate) fn media_outcome(outcome: switchboard_media::PlayOutcome) -> MediaOutcome {
    match outcome {
        switchboard_media::PlayOutcome::Finished => MediaOutcome::Finished,
        switchboard_media::PlayOutcome::Interrupted => MediaOutcome::Interrupted,
        switchboard_media::PlayOutcome::Closed => MediaOutcome::Hangup,
    }
}

fn source_name(source: DtmfSource) -> &'static str {
    match source {
        DtmfSource::Rfc4733 => "rfc4733",
        DtmfSource::SipInfo => "info",
        DtmfSource::Inband => "inband",
    }
}

impl Call {
    /// Starts the RTP leg once; returns the SDP to answer with (inbound).
    pub(super) fn start_media(&self) -> Result<String, CallError> {
        if let (Some(_), Some(sdp)) = (self.media.leg.get(), self.media.local_sdp.get()) {
            return Ok(sdp.clone());
        }
        let engine = self.engine().ok_or(CallError::Ended)?;
        let pending = lock(&self.media.pending).take().ok_or(CallError::Ended)?;
        let (answer, started) = match pending {
            PendingMedia::WebRtc(session) => {
                // The same kind of leg for the rest of the engine; the
                // answer is the WebRTC one (ICE-lite, DTLS passive).
                let answer = session.answer_sdp().to_string();
                debug!(call = %self.info.id, candidates = ?session.candidates(), "WebRTC media");
                (
                    answer,
                    engine.media.start_webrtc_leg(*session, &self.info.id),
                )
            }
            PendingMedia::Rtp(socket) => {
                let stream = self
                    .stream
                    .get()
                    .ok_or_else(|| CallError::InvalidState("no media negotiated".into()))?
                    .clone();
                let local =
                    self.advertised_addr(socket.local_addr(), stream.negotiated.remote.ip());
                let answer =
                    sdp::write_answer(&stream.negotiated, local, rand::random::<u32>() as u64);
                let params = LegParams {
                    remote: stream.negotiated.remote,
                    codec: stream.codec,
                    payload_type: stream.negotiated.codec.payload_type,
                    dtmf_payload_type: stream.negotiated.dtmf.as_ref().map(|f| f.payload_type),
                    label: self.info.id.clone(),
                };
                (answer, engine.media.start_leg(socket, params))
            }
        };
        let (leg, events) = started.map_err(|e| CallError::Media(e.to_string()))?;
        if self.media.leg.set(leg).is_err() {
            return Err(CallError::InvalidState("media already started".into()));
        }
        let _ = self.media.local_sdp.set(answer.clone());
        self.pump_leg_events(events);
        if self.current_state() == switchboard_scenarios::CallState::Ended {
            // Hung up meanwhile: don't leave the leg running.
            if let Some(leg) = self.media.leg.get() {
                leg.close();
            }
            return Err(CallError::Ended);
        }
        Ok(answer)
    }

    /// The address to advertise in SDP for a socket bound to `local`.
    pub(super) fn advertised_addr(&self, local: SocketAddr, remote: IpAddr) -> SocketAddr {
        if !local.ip().is_unspecified() {
            return local;
        }
        let public = self.engine().and_then(|e| e.config.public_ip);
        let ip = public
            .or_else(|| local_ip_toward(remote))
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        SocketAddr::new(ip, local.port())
    }

    /// Forwards the leg's DTMF to the call's events until the leg closes.
    fn pump_leg_events(&self, mut events: LegEvents) {
        let Some(call) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                match event {
                    LegEvent::Dtmf(d) => call.deliver_digit(d.digit, d.source),
                }
            }
        });
    }

    /// One digit for the scenario and the observers.
    pub(super) fn deliver_digit(&self, digit: char, source: DtmfSource) {
        let source = source_name(source);
        debug!(call = %self.info.id, %digit, source, "dtmf");
        self.notify(EngineEvent::Digit {
            scope: self.scope.clone(),
            call_id: self.info.id.clone(),
            digit,
            source: source.to_string(),
        });
        self.emit(CallEvent::Dtmf {
            digit,
            source: source.to_string(),
        });
    }

    /// The leg, if media flows (answered or early media).
    fn media_leg(&self) -> Result<&LegHandle, CallError> {
        if self.current_state() == switchboard_scenarios::CallState::Ended {
            return Err(CallError::Ended);
        }
        self.media.leg.get().ok_or_else(|| {
            CallError::InvalidState("no media yet: answer() or earlyMedia() first".into())
        })
    }

    /// Plays a clip to the caller until it ends, is stopped, or the call ends.
    pub(super) async fn play_clip(
        &self,
        clip: AudioClip,
        looped: bool,
    ) -> Result<MediaOutcome, CallError> {
        let leg = self.media_leg()?;
        let playback = leg.play(clip, switchboard_media::PlayOptions { looped });
        tokio::select! {
            outcome = playback => Ok(media_outcome(outcome)),
            _ = self.ended.cancelled() => Ok(MediaOutcome::Hangup),
        }
    }

    pub(super) async fn say_text(
        &self,
        text: &str,
        opts: &SayOptions,
    ) -> Result<MediaOutcome, CallError> {
        self.media_leg()?;
        let engine = self.engine().ok_or(CallError::Ended)?;
        let voice = Voice::from_say_options(opts);
        let clip = tokio::select! {
            clip = engine.tts.speak(text, &voice) => clip.map_err(|e| CallError::Tts(e.to_string()))?,
            _ = self.ended.cancelled() => return Ok(MediaOutcome::Hangup),
        };
        self.play_clip(clip, false).await
    }

    pub(super) async fn play_source(
        &self,
        source: &str,
        looped: bool,
    ) -> Result<MediaOutcome, CallError> {
        self.media_leg()?;
        let engine = self.engine().ok_or(CallError::Ended)?;
        let clip = tokio::select! {
            clip = engine.sources.resolve(&self.app, source) => clip.map_err(|e| CallError::Media(e.to_string()))?,
            _ = self.ended.cancelled() => return Ok(MediaOutcome::Hangup),
        };
        self.play_clip(clip, looped).await
    }

    pub(super) async fn send_dtmf(&self, digits: &str) -> Result<(), CallError> {
        let leg = self.media_leg()?;
        let sending = leg
            .send_dtmf(digits)
            .map_err(|e| CallError::Other(e.to_string()))?;
        tokio::select! {
            _ = sending => Ok(()),
            _ = self.ended.cancelled() => Err(CallError::Ended),
        }
    }

    /// Connects this call and `peer` both ways through a private mix.
    pub(super) fn bridge_with(&self, peer: &Arc<Call>) -> Result<(), CallError> {
        if std::ptr::eq(self, Arc::as_ptr(peer)) {
            return Err(CallError::Other(
                "a call cannot be bridged to itself".into(),
            ));
        }
        for call in [self, peer.as_ref()] {
            if call.current_state() != switchboard_scenarios::CallState::Answered {
                return Err(CallError::InvalidState(format!(
                    "call {} must be answered to be bridged",
                    call.id()
                )));
            }
            if let Some(room) = call.conference() {
                return Err(CallError::InvalidState(format!(
                    "call {} is in conference {room}",
                    call.id()
                )));
            }
        }
        self.unbridge_media();
        peer.unbridge_media();
        let engine = self.engine().ok_or(CallError::Ended)?;
        let (mine, theirs) = (self.media_leg()?, peer.media_leg()?);
        let mix = engine
            .media
            .create_conference(&format!("bridge:{}:{}", self.id(), peer.id()));
        // Nobody listens to a bridge's talking events: dropping the stream
        // keeps them from piling up for the length of the call.
        drop(mix.take_events());
        let options = ParticipantOptions::default();
        mix.add(mine, options)
            .and_then(|()| mix.add(theirs, options))
            .map_err(|e| {
                mix.close();
                CallError::Media(e.to_string())
            })?;
        *lock(&self.media.bridge) = Some(Bridge {
            mix: mix.clone(),
            peer: Arc::downgrade(peer),
        });
        *lock(&peer.media.bridge) = Some(Bridge {
            mix,
            peer: self.me.clone(),
        });
        debug!(call = %self.id(), peer = %peer.id(), "bridged");
        Ok(())
    }

    /// Undoes a bridge (both sides go back to their own media).
    pub(super) fn unbridge_media(&self) {
        let bridge = lock(&self.media.bridge).take();
        if let Some(bridge) = bridge {
            bridge.mix.close();
            if let Some(peer) = bridge.peer.upgrade() {
                lock(&peer.media.bridge).take();
            }
        }
    }

    pub(super) fn direction_is_outbound(&self) -> bool {
        self.direction == Direction::Outbound
    }
}

/// The local IP the OS would use to reach `remote` (no packet is sent).
pub(crate) fn local_ip_toward(remote: IpAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(SocketAddr::new(remote, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}
