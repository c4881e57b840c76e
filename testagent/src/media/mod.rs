//! A call's media: one RTP socket, a paced sender and a recorder.

pub mod dtmf;
pub mod g711;
mod recorder;
pub mod rtp;
mod sender;
mod source;
mod wait;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Codec;
use crate::error::{AgentError, Result};
use recorder::Recorder;
pub use recorder::{DtmfSource, ReceivedDtmf};
pub use sender::DtmfOptions;
use sender::{DtmfJob, DtmfMode, OutputFormat, Sender};
use source::{ActiveSource, Source};
pub use source::{Playback, PlaybackEnd, FRAME_SAMPLES};

const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// Further behind than this, the sender skips instead of bursting.
const MAX_BURST: Duration = Duration::from_millis(300);

/// Where and how to send, from the negotiated SDP.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RemoteMedia {
    pub addr: SocketAddr,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

struct MediaState {
    remote: Option<RemoteMedia>,
    /// Direction allows sending (false while the remote holds us).
    sending: bool,
    stopped: bool,
    /// Payload types decoded as telephone-event.
    event_payload_types: Vec<u8>,
    /// Decodes received Opus at 8 kHz (created with the first packet).
    opus: Option<opus::Decoder>,
    sender: Sender,
    recorder: Recorder,
}

struct MediaShared {
    socket: UdpSocket,
    local: SocketAddr,
    state: Mutex<MediaState>,
    /// Bumped on every received packet and digit: wakes the waiters.
    activity: watch::Sender<u64>,
}

impl MediaShared {
    fn lock(&self) -> MutexGuard<'_, MediaState> {
        // A panic while holding the lock cannot leave the state torn in a
        // way that matters to a test agent: keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

struct MediaLife(CancellationToken);

impl Drop for MediaLife {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// The media of a call: plays, sends digits, records and analyses.
/// Cheap to clone; the socket closes when the last clone is dropped.
#[derive(Clone)]
pub struct Media {
    shared: Arc<MediaShared>,
    _life: Arc<MediaLife>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("local", &self.shared.local)
            .field("remote", &self.shared.lock().remote)
            .finish()
    }
}

impl Media {
    /// Binds an RTP socket on `ip` (any port) and starts its tasks.
    pub async fn bind(ip: IpAddr) -> Result<Media> {
        let addr = SocketAddr::new(ip, 0);
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| AgentError::Bind { addr, source })?;
        let local = socket.local_addr()?;
        let shared = Arc::new(MediaShared {
            socket,
            local,
            state: Mutex::new(MediaState {
                remote: None,
                sending: true,
                stopped: false,
                event_payload_types: Vec::new(),
                opus: None,
                sender: Sender::new(),
                recorder: Recorder::new(Instant::now()),
            }),
            activity: watch::channel(0).0,
        });
        let cancel = CancellationToken::new();
        tokio::spawn(receive_loop(shared.clone(), cancel.clone()));
        tokio::spawn(send_loop(shared.clone(), cancel.clone()));
        Ok(Media {
            shared,
            _life: Arc::new(MediaLife(cancel)),
        })
    }

    /// Starts (or redirects) sending per the negotiated SDP.
    pub(crate) fn set_remote(&self, remote: RemoteMedia) {
        let mut state = self.shared.lock();
        if let Some(pt) = remote.telephone_event {
            if !state.event_payload_types.contains(&pt) {
                state.event_payload_types.push(pt);
            }
        }
        state.remote = Some(remote);
    }

    /// Decodes `payload_type` as telephone-event (the one we offered).
    pub(crate) fn accept_events_on(&self, payload_type: u8) {
        let mut state = self.shared.lock();
        if !state.event_payload_types.contains(&payload_type) {
            state.event_payload_types.push(payload_type);
        }
    }

    pub(crate) fn set_sending(&self, sending: bool) {
        self.shared.lock().sending = sending;
    }

    pub(crate) fn push_info_digit(&self, digit: char, duration: Duration) {
        self.shared
            .lock()
            .recorder
            .push_info_digit(digit, duration, Instant::now());
        self.shared.activity.send_modify(|n| *n += 1);
    }

    /// Stops sending and freezes the recording (the call ended).
    pub(crate) fn stop(&self) {
        {
            let mut state = self.shared.lock();
            state.stopped = true;
            state.sender.clear();
            state.recorder.stop(Instant::now());
        }
        self.shared.activity.send_modify(|n| *n += 1);
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Where RTP goes, once the remote's SDP is known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.shared.lock().remote.as_ref().map(|r| r.addr)
    }

    /// The codec we send, from the negotiation.
    pub fn codec(&self) -> Option<Codec> {
        self.shared.lock().remote.as_ref().map(|r| r.codec.clone())
    }

    /// The telephone-event payload type we send digits with.
    pub fn telephone_event(&self) -> Option<u8> {
        self.shared
            .lock()
            .remote
            .as_ref()
            .and_then(|r| r.telephone_event)
    }

    /// Time zero of the recording.
    pub fn started_at(&self) -> Instant {
        self.shared.lock().recorder.started()
    }

    pub fn is_stopped(&self) -> bool {
        self.shared.lock().stopped
    }

    pub fn packets_sent(&self) -> u64 {
        self.shared.lock().sender.packets_sent
    }

    pub fn packets_received(&self) -> u64 {
        self.shared.lock().recorder.packets
    }

    fn play(&self, source: Source) -> Playback {
        let (playback, done) = Playback::new();
        let mut state = self.shared.lock();
        if state.stopped {
            done.send_replace(Some(PlaybackEnd::Stopped));
        } else {
            state.sender.set_source(Some(ActiveSource { source, done }));
        }
        playback
    }

    /// Streams a continuous sine (amplitude as a fraction of full scale)
    /// until [`Media::stop_audio`] or another playback replaces it.
    pub fn play_tone(&self, freq_hz: f32, amplitude: f32) -> Playback {
        self.play(Source::tones(&[(freq_hz, amplitude)]))
    }

    /// Streams a continuous sum of sines, each `(freq_hz, amplitude)`.
    pub fn play_tones(&self, components: &[(f32, f32)]) -> Playback {
        self.play(Source::tones(components))
    }

    /// Plays 8 kHz samples once, or looped until stopped.
    pub fn play_samples(&self, samples: impl Into<Arc<[i16]>>, looped: bool) -> Playback {
        self.play(Source::samples(samples.into(), looped))
    }

    /// Plays an 8 kHz WAV file once (see [`crate::wav::read`]).
    pub fn play_wav(&self, path: impl AsRef<Path>) -> Result<Playback> {
        let samples = crate::wav::read(path)?;
        Ok(self.play_samples(samples, false))
    }

    /// Stops the current playback; silence is sent instead.
    pub fn stop_audio(&self) {
        self.shared.lock().sender.set_source(None);
    }

    /// Sends digits as RFC 4733 events (100 ms each, 100 ms apart); the
    /// audio pauses meanwhile. Resolves once the last packet is sent.
    pub async fn send_dtmf(&self, digits: &str) -> Result<()> {
        self.send_dtmf_with(digits, DtmfOptions::default()).await
    }

    pub async fn send_dtmf_with(&self, digits: &str, options: DtmfOptions) -> Result<()> {
        self.queue_digits(digits, DtmfMode::Rfc4733, &options)?
            .await
            .map_err(|_| AgentError::MediaStopped)
    }

    /// Sends digits as in-band tone pairs in the audio.
    pub async fn send_dtmf_inband(&self, digits: &str) -> Result<()> {
        self.send_dtmf_inband_with(digits, DtmfOptions::default())
            .await
    }

    pub async fn send_dtmf_inband_with(&self, digits: &str, options: DtmfOptions) -> Result<()> {
        self.queue_digits(digits, DtmfMode::Inband, &options)?
            .await
            .map_err(|_| AgentError::MediaStopped)
    }

    fn queue_digits(
        &self,
        digits: &str,
        mode: DtmfMode,
        options: &DtmfOptions,
    ) -> Result<oneshot::Receiver<()>> {
        let events = dtmf::event_codes(digits)?;
        let mut state = self.shared.lock();
        if state.stopped {
            return Err(AgentError::MediaStopped);
        }
        let Some(remote) = state.remote.as_ref() else {
            return Err(AgentError::InvalidState(
                "no remote media yet (the call is not answered)".into(),
            ));
        };
        if mode == DtmfMode::Rfc4733 && remote.telephone_event.is_none() {
            return Err(AgentError::NoTelephoneEvent);
        }
        let (done, finished) = oneshot::channel();
        state
            .sender
            .dtmf
            .push_back(DtmfJob::new(events, mode, options, done));
        Ok(finished)
    }

    /// The whole recording, up to now (or to when the call ended).
    pub fn recording(&self) -> Vec<i16> {
        let state = self.shared.lock();
        state
            .recorder
            .range(0, state.recorder.len_at(Instant::now()))
    }

    /// The recording from `since` up to now.
    pub fn recording_since(&self, since: Instant) -> Vec<i16> {
        self.recording_between(since, Instant::now())
    }

    /// The recording between two instants.
    pub fn recording_between(&self, from: Instant, to: Instant) -> Vec<i16> {
        let state = self.shared.lock();
        let end = state
            .recorder
            .len_at(Instant::now())
            .min(state.recorder.position(to).max(0) as usize);
        let start = (state.recorder.position(from).max(0) as usize).min(end);
        state.recorder.range(start, end)
    }

    /// The last `duration` of the recording (shorter at the very start).
    pub fn last(&self, duration: Duration) -> Vec<i16> {
        let state = self.shared.lock();
        let end = state.recorder.len_at(Instant::now());
        let start = end.saturating_sub(crate::analysis::samples_in(duration));
        state.recorder.range(start, end)
    }

    /// Writes the recording as an 8 kHz mono WAV, for debugging.
    pub fn save_recording(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::wav::write(path, &self.recording())
    }

    /// Digits received so far, each once.
    pub fn received_dtmf(&self) -> Vec<ReceivedDtmf> {
        self.shared.lock().recorder.dtmf().to_vec()
    }

    /// The received digits as a string, e.g. `"1234#"`.
    pub fn received_digits(&self) -> String {
        self.shared
            .lock()
            .recorder
            .dtmf()
            .iter()
            .map(|d| d.digit)
            .collect()
    }
}

async fn receive_loop(shared: Arc<MediaShared>, cancel: CancellationToken) {
    let mut buffer = vec![0u8; 2048];
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            received = shared.socket.recv_from(&mut buffer) => received,
        };
        let length = match received {
            Ok((length, _from)) => length,
            Err(error) => {
                tracing::debug!(%error, "RTP receive failed");
                tokio::time::sleep(PACKET_INTERVAL).await;
                continue;
            }
        };
        let arrival = Instant::now();
        let Some(packet) = rtp::parse(&buffer[..length]) else {
            continue;
        };
        {
            let mut state = shared.lock();
            state.recorder.packets += 1;
            if state.event_payload_types.contains(&packet.payload_type) {
                if let Some(event) = dtmf::EventPayload::parse(packet.payload) {
                    state
                        .recorder
                        .write_event(packet.ssrc, packet.timestamp, arrival, event);
                }
            } else if packet.payload_type == Codec::Opus.payload_type() {
                let decoder = match state.opus.as_mut() {
                    Some(d) => d,
                    None => match opus::Decoder::new(8000, opus::Channels::Mono) {
                        Ok(d) => state.opus.insert(d),
                        Err(error) => {
                            tracing::debug!(%error, "no Opus decoder");
                            continue;
                        }
                    },
                };
                let mut pcm = vec![0i16; 960];
                let n = match decoder.decode(packet.payload, &mut pcm, false) {
                    Ok(n) => n,
                    Err(error) => {
                        tracing::debug!(%error, "bad Opus packet");
                        continue;
                    }
                };
                state.recorder.write_audio_clocked(
                    packet.ssrc,
                    packet.timestamp,
                    Codec::Opus.clock_rate(),
                    arrival,
                    &pcm[..n],
                );
            } else {
                let decode: fn(u8) -> i16 = match packet.payload_type {
                    0 => g711::ulaw_to_linear,
                    8 => g711::alaw_to_linear,
                    // Comfort noise and anything unknown: heard as silence.
                    _ => continue,
                };
                let pcm: Vec<i16> = packet.payload.iter().map(|&b| decode(b)).collect();
                state
                    .recorder
                    .write_audio(packet.ssrc, packet.timestamp, arrival, &pcm);
            }
        }
        shared.activity.send_modify(|n| *n += 1);
    }
}

/// Paces the outgoing stream at 20 ms on an absolute schedule: a late
/// wake-up sends the missed packets at once, unless it is so late that
/// skipping (a gap in the stream) is the lesser evil.
async fn send_loop(shared: Arc<MediaShared>, cancel: CancellationToken) {
    let mut next = tokio::time::Instant::now() + PACKET_INTERVAL;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep_until(next) => {}
        }
        if shared.lock().stopped {
            return; // nothing more to send, ever
        }
        let now = tokio::time::Instant::now();
        let behind = now.saturating_duration_since(next);
        if behind > MAX_BURST {
            let frames = (behind.as_millis() / PACKET_INTERVAL.as_millis()) as u32;
            shared.lock().sender.skip(frames);
            next += PACKET_INTERVAL * frames;
        }
        while next <= now {
            next += PACKET_INTERVAL;
            let outgoing = {
                let mut state = shared.lock();
                match (&state.remote, state.sending && !state.stopped) {
                    (Some(remote), true) => {
                        let addr = remote.addr;
                        let format = OutputFormat {
                            codec: remote.codec.clone(),
                            telephone_event: remote.telephone_event,
                        };
                        state.sender.next_packet(&format).map(|p| (p, addr))
                    }
                    _ => None,
                }
            };
            if let Some((packet, addr)) = outgoing {
                if let Err(error) = shared.socket.send_to(&packet, addr).await {
                    tracing::debug!(%error, %addr, "RTP send failed");
                }
            }
        }
    }
}
