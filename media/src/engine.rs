//! The control plane's side: [`MediaEngine`] starts the workers and hands out
//! cheap handles that talk to them through mailboxes and channels.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::conference::ConfShared;
use crate::dtmf::{digit_to_event, event_to_digit};
use crate::leg::{Leg, LegCommand, LegShared, Transport};
use crate::player::{Completion, Playback};
use crate::ports::{PortAllocator, RtpSocket};
use crate::recorder::{RecordSink, Recording};
use crate::stats::{LegStats, MediaStats};
use crate::webrtc::{Pipe, TransportThread, WebRtcSession};
use crate::worker::{Peer, Worker, WorkerCommand, WorkerShared};
use crate::{
    AudioClip, ConferenceEvent, DtmfDigit, DtmfSource, LegEvent, LegId, LegParams, MediaConfig,
    MediaError, ParticipantOptions, PlayOptions, PlayOutcome, RecordOptions,
};

/// The media engine: worker threads, the RTP port pool, legs and conferences.
/// Cheap to clone; all clones share the same workers. The workers stop when
/// [`MediaEngine::shutdown`] is called or the last clone is dropped.
#[derive(Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    ports: PortAllocator,
    peers: Arc<[Peer]>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_leg: AtomicU64,
    next_conference: AtomicU64,
    shut_down: Arc<AtomicBool>,
    /// Where WebRTC legs' transports run; started with the first one.
    webrtc: OnceLock<TransportThread>,
}

impl MediaEngine {
    /// Starts the worker threads.
    pub fn start(config: MediaConfig) -> Result<MediaEngine, MediaError> {
        let workers = match config.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let mut inboxes = Vec::with_capacity(workers);
        let mut peers = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::channel();
            inboxes.push(rx);
            peers.push(Peer {
                tx,
                shared: Arc::new(WorkerShared::default()),
            });
        }
        let peers: Arc<[Peer]> = peers.into();
        let inner = EngineInner {
            ports: PortAllocator::new(config.bind_ip, config.rtp_ports.clone()),
            peers: peers.clone(),
            threads: Mutex::new(Vec::with_capacity(workers)),
            next_leg: AtomicU64::new(1),
            next_conference: AtomicU64::new(1),
            shut_down: Arc::new(AtomicBool::new(false)),
            webrtc: OnceLock::new(),
        };
        let epoch = std::time::Instant::now();
        for (index, inbox) in inboxes.into_iter().enumerate() {
            let worker = Worker::new(
                index,
                inbox,
                peers.clone(),
                peers[index].shared.clone(),
                epoch,
            );
            let spawned = std::thread::Builder::new()
                .name(format!("media-worker-{index}"))
                .spawn(move || worker.run());
            match spawned {
                Ok(handle) => inner.lock_threads().push(handle),
                Err(e) => {
                    inner.shutdown();
                    return Err(MediaError::Io(e));
                }
            }
        }
        tracing::info!(workers, ports = ?config.rtp_ports, "media engine started");
        Ok(MediaEngine {
            inner: Arc::new(inner),
        })
    }

    /// Binds an RTP socket on a free even port of the configured range.
    pub fn allocate_socket(&self) -> Result<RtpSocket, MediaError> {
        if self.inner.is_shut_down() {
            return Err(MediaError::ShutDown);
        }
        self.inner.ports.allocate()
    }

    /// Starts sending and receiving on `socket`. Until the leg plays
    /// something or joins a conference it sends paced silence.
    pub fn start_leg(
        &self,
        socket: RtpSocket,
        params: LegParams,
    ) -> Result<(LegHandle, LegEvents), MediaError> {
        if self.inner.is_shut_down() {
            return Err(MediaError::ShutDown);
        }
        let local = socket.local_addr();
        socket.socket.set_nonblocking(true)?;
        let (leg, handle, events) = self.new_leg(Transport::Udp(socket.socket), local, &params)?;
        let worker = self.run_leg(leg)?;
        tracing::debug!(id = %handle.id(), label = %params.label, %local, remote = %params.remote, worker, "leg started");
        Ok((handle, events))
    }

    fn new_leg(
        &self,
        transport: Transport,
        local: SocketAddr,
        params: &LegParams,
    ) -> Result<(Box<Leg>, LegHandle, LegEvents), MediaError> {
        let id = LegId(self.inner.next_leg.fetch_add(1, Ordering::Relaxed));
        let shared = Arc::new(LegShared::new(
            id,
            params.label.clone(),
            local,
            params.codec,
        ));
        let (events_tx, events_rx) = unbounded_channel();
        let leg = Box::new(Leg::new(shared.clone(), transport, params, events_tx)?);
        Ok((leg, LegHandle { shared }, LegEvents { rx: events_rx }))
    }

    /// Hands a new leg to the least loaded worker; returns which.
    fn run_leg(&self, leg: Box<Leg>) -> Result<usize, MediaError> {
        let worker = self.inner.least_loaded();
        let peer = &self.inner.peers[worker];
        peer.shared.legs.fetch_add(1, Ordering::Relaxed);
        if peer.tx.send(WorkerCommand::StartLeg(leg)).is_err() {
            peer.shared.legs.fetch_sub(1, Ordering::Relaxed);
            return Err(MediaError::ShutDown);
        }
        Ok(worker)
    }

    /// Accepts a browser's SDP offer (`UDP/TLS/RTP/SAVPF` audio with ICE
    /// credentials and a DTLS fingerprint, see [`crate::is_webrtc_offer`]):
    /// binds a socket from the RTP port range and prepares an ICE-lite,
    /// DTLS-passive session answering with Opus and telephone-event.
    /// `advertise` are the addresses to offer as host candidates (the
    /// engine's public address); empty means the socket's own address.
    /// `127.0.0.1` is added when the socket listens on loopback or on
    /// every address. Nothing runs until [`MediaEngine::start_webrtc_leg`].
    pub fn accept_webrtc_offer(
        &self,
        offer: &str,
        advertise: &[IpAddr],
    ) -> Result<WebRtcSession, MediaError> {
        let socket = self.allocate_socket()?;
        crate::webrtc::accept_offer(socket, offer, advertise)
    }

    /// Starts the leg of an accepted WebRTC offer: from now on it answers
    /// ICE checks and the DTLS handshake, and once connected it is a leg
    /// like any other (play, conferences, DTMF, recording), with Opus at
    /// 48 kHz. Start it when the answer is sent.
    pub fn start_webrtc_leg(
        &self,
        session: WebRtcSession,
        label: &str,
    ) -> Result<(LegHandle, LegEvents), MediaError> {
        if self.inner.is_shut_down() {
            return Err(MediaError::ShutDown);
        }
        let thread = match self.inner.webrtc.get() {
            Some(t) => t,
            None => {
                let started = TransportThread::start()?;
                // Two first legs at once: the loser's thread just stops.
                if let Err(spare) = self.inner.webrtc.set(started) {
                    spare.shutdown();
                }
                self.inner.webrtc.get().ok_or(MediaError::ShutDown)?
            }
        };
        let local = session.local_addr();
        let WebRtcSession {
            rtc,
            socket,
            candidates,
            mid,
            payload_type,
            dtmf,
            ..
        } = session;
        let params = LegParams {
            // Unused: the transport knows where the browser is (ICE).
            remote: local,
            codec: crate::Codec::Opus,
            payload_type,
            dtmf_payload_type: dtmf.map(|(pt, _)| pt),
            label: label.to_string(),
        };
        let pipe = Arc::new(Pipe::new());
        let (mut leg, handle, events) =
            self.new_leg(Transport::WebRtc(pipe.clone()), local, &params)?;
        if let Some((_, rate)) = dtmf {
            leg.set_dtmf_rate(rate);
        }
        thread.spawn(crate::webrtc::Transport::new(
            rtc,
            socket.socket,
            candidates,
            mid,
            pipe,
            label.to_string(),
        ));
        let worker = self.run_leg(leg)?;
        tracing::debug!(id = %handle.id(), %label, %local, worker, "WebRTC leg started");
        Ok((handle, events))
    }

    /// Creates an empty conference (N-1 mix) on one of the workers.
    pub fn create_conference(&self, name: &str) -> ConferenceHandle {
        let id = self.inner.next_conference.fetch_add(1, Ordering::Relaxed);
        let worker = self.inner.least_loaded();
        let shared = Arc::new(ConfShared::new(id, name.to_owned(), worker));
        let peer = &self.inner.peers[worker];
        if self.inner.is_shut_down()
            || peer
                .tx
                .send(WorkerCommand::CreateConference(shared.clone()))
                .is_err()
        {
            shared.mark_closed();
        }
        ConferenceHandle {
            shared,
            tx: peer.tx.clone(),
            engine_down: self.inner.shut_down.clone(),
        }
    }

    /// Closes every leg and conference and stops the workers. Idempotent.
    pub fn shutdown(&self) {
        self.inner.shutdown();
    }

    /// Counters of the whole engine, for metrics.
    pub fn stats(&self) -> MediaStats {
        let mut s = MediaStats {
            workers: self.inner.peers.len() as u64,
            ..MediaStats::default()
        };
        for p in self.inner.peers.iter() {
            s.traffic.add(&p.shared.traffic.load());
            s.ticks.add(&p.shared.ticks.load());
            s.legs += p.shared.legs.load(Ordering::Relaxed) as u64;
            s.conferences += p.shared.conferences.load(Ordering::Relaxed) as u64;
        }
        s
    }
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("workers", &self.inner.peers.len())
            .field("shut_down", &self.inner.is_shut_down())
            .finish()
    }
}

impl EngineInner {
    fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    fn lock_threads(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The worker with the fewest legs (new conferences and legs go there).
    fn least_loaded(&self) -> usize {
        self.peers
            .iter()
            .enumerate()
            .min_by_key(|(_, p)| {
                (
                    p.shared.legs.load(Ordering::Relaxed),
                    p.shared.conferences.load(Ordering::Relaxed),
                )
            })
            .map_or(0, |(i, _)| i)
    }

    fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        let threads = std::mem::take(&mut *self.lock_threads());
        if threads.is_empty() {
            return;
        }
        for p in self.peers.iter() {
            let _ = p.tx.send(WorkerCommand::Shutdown);
            p.shared.stop.store(true, Ordering::Release);
        }
        for t in &threads {
            t.thread().unpark();
        }
        for t in threads {
            if t.join().is_err() {
                tracing::error!("a media worker panicked");
            }
        }
        if let Some(webrtc) = self.webrtc.get() {
            webrtc.shutdown();
        }
        tracing::info!("media engine stopped");
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Control handle of one leg. Cheap to clone. Commands issued on a handle take
/// effect in the order issued, on the next tick at the latest. Dropping the
/// handles does not stop the leg: call [`LegHandle::close`].
#[derive(Clone)]
pub struct LegHandle {
    shared: Arc<LegShared>,
}

impl std::fmt::Debug for LegHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegHandle")
            .field("id", &self.shared.id)
            .field("label", &self.shared.label)
            .finish()
    }
}

impl LegHandle {
    pub fn id(&self) -> LegId {
        self.shared.id
    }

    /// The label given in [`LegParams`].
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The local RTP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Closed (by [`LegHandle::close`] or engine shutdown).
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// This leg's counters (updated every tick).
    pub fn stats(&self) -> LegStats {
        self.shared.stats.load()
    }

    /// The leg's codec.
    pub fn codec(&self) -> crate::Codec {
        self.shared.codec
    }

    /// Plays `clip` to this leg's caller (resampled to the leg's rate if
    /// needed, on the calling thread). Replaces (interrupts) what the leg
    /// was playing. While the leg is in a conference the clip is mixed on top
    /// of what it hears there.
    pub fn play(&self, clip: AudioClip, opts: PlayOptions) -> Playback {
        if self.shared.is_closed() {
            return Playback::resolved(PlayOutcome::Closed);
        }
        let clip = clip.at_rate(self.shared.codec.pcm_rate());
        let (done, playback) = Completion::new();
        // Refused (closed meanwhile): the dropped completion resolves Closed.
        let _ = self.shared.push(LegCommand::Play {
            clip,
            looped: opts.looped,
            done,
        });
        playback
    }

    /// Stops the current playback (it resolves `Interrupted`) and any DTMF
    /// being sent.
    pub fn stop_media(&self) {
        let _ = self.shared.push(LegCommand::StopMedia);
    }

    /// Sends `digits` (`0-9 * # A-D`, case-insensitive) as RFC 4733
    /// telephone-events, or as in-band tones if no telephone-event payload
    /// type was negotiated: about 100 ms per digit plus a 100 ms gap; the
    /// leg's audio is paused meanwhile. Calls queue behind each other. The
    /// playback resolves `Finished` once all digits are out.
    pub fn send_dtmf(&self, digits: &str) -> Result<Playback, MediaError> {
        let events = digits
            .chars()
            .map(|c| digit_to_event(c).ok_or(c))
            .collect::<Result<Vec<u8>, char>>()
            .map_err(|c| MediaError::InvalidDtmf(format!("{c:?} in {digits:?}")))?;
        if self.shared.is_closed() {
            return Err(MediaError::LegClosed(self.shared.id));
        }
        let (done, playback) = Completion::new();
        self.shared
            .push(LegCommand::SendDtmf { events, done })
            .map_err(|_| MediaError::LegClosed(self.shared.id))?;
        Ok(playback)
    }

    /// Records this leg into a WAV file at `path` (created now) at the
    /// leg's rate: mono mixes the caller with what it hears, stereo puts
    /// the caller left and what it hears right. Ends with
    /// [`Recording::stop`] or when the leg closes.
    pub fn record(
        &self,
        path: impl AsRef<std::path::Path>,
        opts: RecordOptions,
    ) -> Result<Recording, MediaError> {
        if self.shared.is_closed() {
            return Err(MediaError::LegClosed(self.shared.id));
        }
        let (sink, recording) =
            RecordSink::create(path.as_ref(), self.shared.codec.pcm_rate(), opts.stereo)?;
        self.shared
            .push(LegCommand::Record(sink))
            .map_err(|_| MediaError::LegClosed(self.shared.id))?;
        Ok(recording)
    }

    /// Reports a digit that arrived outside RTP (from a SIP INFO, see
    /// [`crate::dtmf::info::parse_info`]) through the leg's events, unless
    /// the same key press already arrived over another transport (RFC 4733
    /// or in-band), in which case it is dropped.
    pub fn inject_dtmf(
        &self,
        digit: char,
        source: DtmfSource,
        duration_ms: u32,
    ) -> Result<(), MediaError> {
        let digit = digit_to_event(digit)
            .and_then(event_to_digit)
            .ok_or_else(|| MediaError::InvalidDtmf(format!("{digit:?}")))?;
        self.shared
            .push(LegCommand::InjectDtmf(DtmfDigit {
                digit,
                source,
                duration_ms,
            }))
            .map_err(|_| MediaError::LegClosed(self.shared.id))
    }

    /// Stops the leg, leaves any conference and frees its port. Idempotent.
    pub fn close(&self) {
        let _ = self.shared.push(LegCommand::Close);
    }
}

/// Events from one leg, in order. Ends (`None`) after the leg closes.
#[derive(Debug)]
pub struct LegEvents {
    rx: UnboundedReceiver<LegEvent>,
}

impl LegEvents {
    pub async fn recv(&mut self) -> Option<LegEvent> {
        self.rx.recv().await
    }

    /// An event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<LegEvent> {
        self.rx.try_recv().ok()
    }
}

/// Control handle of one conference. Cheap to clone.
#[derive(Clone)]
pub struct ConferenceHandle {
    shared: Arc<ConfShared>,
    tx: mpsc::Sender<WorkerCommand>,
    engine_down: Arc<AtomicBool>,
}

impl std::fmt::Debug for ConferenceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConferenceHandle")
            .field("name", &self.shared.name)
            .field("id", &self.shared.id)
            .finish()
    }
}

impl ConferenceHandle {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Members right now (as of the last command the worker ran).
    pub fn participant_count(&self) -> usize {
        self.shared.participants()
    }

    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// Moves `leg` into the mix: from the next tick it hears everyone else
    /// (N-1) and is heard by them (unless muted/deaf). Adding a member again
    /// updates its options; adding a member of another conference moves it.
    pub fn add(&self, leg: &LegHandle, opts: ParticipantOptions) -> Result<(), MediaError> {
        if self.engine_down.load(Ordering::Acquire) {
            return Err(MediaError::ShutDown);
        }
        if self.shared.is_closed() {
            return Err(MediaError::ConferenceClosed(self.shared.name.clone()));
        }
        leg.shared
            .push(LegCommand::Join {
                conf: self.shared.clone(),
                opts,
            })
            .map_err(|_| MediaError::LegClosed(leg.id()))
    }

    /// Takes `leg` out of the mix (it goes back to hearing its own player or
    /// silence). Closing a leg removes it too.
    pub fn remove(&self, leg: &LegHandle) {
        let _ = leg.shared.push(LegCommand::Leave {
            conf: self.shared.id,
        });
    }

    /// The rate the room mixes at now (the highest of its members').
    pub fn rate(&self) -> u32 {
        self.shared.rate()
    }

    /// Whether participant `leg` is talking now (cheap: no round trip).
    pub fn talking(&self, leg: LegId) -> bool {
        self.shared.is_talking(leg)
    }

    /// The conference's events (talking, silent). There is one stream per
    /// conference: the first call takes it, later ones get `None`.
    pub fn take_events(&self) -> Option<ConferenceEvents> {
        self.shared.take_events().map(|rx| ConferenceEvents { rx })
    }

    /// Records the mix (what a listener who is not talking hears) into a
    /// mono WAV file at `path` (created now), at the room's rate when
    /// recording starts; with `opts.tracks`, also each participant (what it
    /// says, at its leg's rate) into `<stem>-leg-N.wav`. Ends with
    /// [`Recording::stop`] or when the conference closes.
    pub fn record(
        &self,
        path: impl AsRef<std::path::Path>,
        opts: RecordOptions,
    ) -> Result<Recording, MediaError> {
        if self.shared.is_closed() {
            return Err(MediaError::ConferenceClosed(self.shared.name.clone()));
        }
        let path = path.as_ref().to_path_buf();
        let (sink, recording) = RecordSink::create(&path, self.shared.rate(), false)?;
        self.tx
            .send(WorkerCommand::RecordConference {
                id: self.shared.id,
                sink,
                tracks: opts.tracks,
                path,
            })
            .map_err(|_| MediaError::ShutDown)?;
        Ok(recording)
    }

    /// Plays `clip` into the mix: every participant hears it (except deaf
    /// ones). Replaces what the conference was playing.
    pub fn play(&self, clip: AudioClip, opts: PlayOptions) -> Playback {
        if self.shared.is_closed() {
            return Playback::resolved(PlayOutcome::Closed);
        }
        let clip = clip.at_player_rate();
        let (done, playback) = Completion::new();
        // If the worker is gone the dropped completion resolves Closed.
        let _ = self.tx.send(WorkerCommand::PlayConference {
            id: self.shared.id,
            clip,
            looped: opts.looped,
            done,
        });
        playback
    }

    /// Stops the conference's playback (it resolves `Interrupted`).
    pub fn stop_media(&self) {
        let _ = self
            .tx
            .send(WorkerCommand::StopConferenceMedia(self.shared.id));
    }

    /// Ends the conference; participants go back to standalone legs.
    pub fn close(&self) {
        self.shared.mark_closed();
        let _ = self.tx.send(WorkerCommand::CloseConference(self.shared.id));
    }
}

/// Talking and silent events of one conference, in order. Ends (`None`)
/// after the conference closes.
#[derive(Debug)]
pub struct ConferenceEvents {
    rx: UnboundedReceiver<ConferenceEvent>,
}

impl ConferenceEvents {
    pub async fn recv(&mut self) -> Option<ConferenceEvent> {
        self.rx.recv().await
    }

    /// An event if one is waiting, without blocking.
    pub fn try_recv(&mut self) -> Option<ConferenceEvent> {
        self.rx.try_recv().ok()
    }
}
