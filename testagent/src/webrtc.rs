//! A browser stand-in for WebRTC calls: a `str0m` peer in the browser's
//! role (full ICE agent, controlling; DTLS active; SRTP), offering what
//! Chrome offers for audio (`UDP/TLS/RTP/SAVPF`, BUNDLE, rtcp-mux, Opus,
//! telephone-event at 48 and 8 kHz). It streams a tone (or silence) as
//! Opus every 20 ms, sends RFC 4733 digits like `RTCDTMFSender`, and
//! records what it hears (decoded at 8 kHz, for [`crate::analysis`]).
//!
//! Over SIP: [`Agent::call_webrtc`](crate::Agent::call_webrtc) puts the
//! offer in an INVITE and the 200 OK's answer into the peer. Without SIP:
//! [`WebRtcOffer::new`], then [`WebRtcOffer::accept_answer`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Direction as RtcDirection, Frequency, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{oneshot, watch};

use crate::analysis::{self, ToneCondition, ToneMeasurement};
use crate::error::{AgentError, Result};

/// Our telephone-event payload types (Chrome's; Opus is str0m's 111).
const EVENT_PT_48K: u8 = 110;
const EVENT_PT_8K: u8 = 126;
/// 20 ms at Opus's 48 kHz RTP clock.
const TICK_TS: u32 = 960;
/// Analysed (and generated) at this rate.
const RATE: usize = analysis::SAMPLE_RATE as usize;
const FRAME: usize = RATE / 50;
/// Keep at most this much of what was heard (a minute).
const MAX_RECORDING: usize = RATE * 60;

/// An offer made, waiting for its answer.
pub struct WebRtcOffer {
    rtc: Rtc,
    socket: std::net::UdpSocket,
    pending: SdpPendingOffer,
    mid: Mid,
    sdp: String,
}

impl std::fmt::Debug for WebRtcOffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcOffer")
            .field("local", &self.socket.local_addr().ok())
            .finish()
    }
}

impl WebRtcOffer {
    /// Binds a UDP socket on `ip` (its host candidate) and makes the offer.
    pub fn new(ip: IpAddr) -> Result<WebRtcOffer> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(ip, 0))?;
        let local = socket.local_addr()?;
        let mut config = Rtc::builder()
            .set_rtp_mode(true)
            .set_stats_interval(None)
            .clear_codecs();
        {
            let codecs = config.codec_config();
            codecs.enable_opus(true, false);
            for (pt, rate) in [
                (EVENT_PT_48K, Frequency::FORTY_EIGHT_KHZ),
                (EVENT_PT_8K, Frequency::EIGHT_KHZ),
            ] {
                codecs.add_config(
                    pt.into(),
                    None,
                    RtcCodec::Tele,
                    rate,
                    None,
                    FormatParams::parse_line("0-16"),
                );
            }
        }
        let mut rtc = config.build(Instant::now());
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| AgentError::Sdp(format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, RtcDirection::SendRecv, None, None, None);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| AgentError::Sdp("str0m made no offer".into()))?;
        Ok(WebRtcOffer {
            rtc,
            socket,
            pending,
            mid,
            sdp: offer.to_sdp_string(),
        })
    }

    /// The SDP offer, to send in an INVITE.
    pub fn sdp(&self) -> &str {
        &self.sdp
    }

    /// Applies the answer and starts the peer (ICE, DTLS, then media) on
    /// the current tokio runtime.
    pub fn accept_answer(mut self, answer: &str) -> Result<WebRtcPeer> {
        let parsed = SdpAnswer::from_sdp_string(answer)
            .map_err(|e| AgentError::Sdp(format!("unreadable answer: {e}")))?;
        let mut opus = None;
        let mut events = None;
        for line in &parsed.media_lines {
            for p in line.rtp_params() {
                let spec = p.spec();
                match (spec.codec, spec.clock_rate.get()) {
                    (RtcCodec::Opus, _) => {
                        opus.get_or_insert(*p.pt());
                    }
                    (RtcCodec::Tele, rate) => {
                        events.get_or_insert((*p.pt(), rate));
                    }
                    _ => {}
                }
            }
        }
        let opus = opus.ok_or_else(|| AgentError::Sdp("no Opus in the answer".into()))?;
        self.rtc
            .sdp_api()
            .accept_answer(self.pending, parsed)
            .map_err(|e| AgentError::Sdp(format!("answer refused: {e}")))?;
        self.socket.set_nonblocking(true)?;
        let socket = UdpSocket::from_std(self.socket)?;
        let local = socket.local_addr()?;
        let shared = Arc::new(Mutex::new(State::default()));
        let (connected_tx, connected) = watch::channel(false);
        let (stop, stopped) = oneshot::channel();
        let encoder =
            opus::Encoder::new(RATE as u32, opus::Channels::Mono, opus::Application::Voip)
                .map_err(|e| AgentError::Sdp(format!("Opus encoder: {e}")))?;
        let decoder = opus::Decoder::new(RATE as u32, opus::Channels::Mono)
            .map_err(|e| AgentError::Sdp(format!("Opus decoder: {e}")))?;
        let task = Task {
            rtc: self.rtc,
            socket,
            local,
            mid: self.mid,
            opus_pt: opus,
            events,
            shared: shared.clone(),
            connected: connected_tx,
            encoder,
            decoder,
            seq: u64::from(rand::random::<u16>() % 20_000),
            ts: rand::random(),
            phase: 0.0,
        };
        tokio::spawn(task.run(stopped));
        Ok(WebRtcPeer {
            shared,
            connected,
            events,
            stop: Some(stop),
        })
    }
}

/// What the peer plays and has heard.
#[derive(Default)]
struct State {
    tone: Option<(f32, f32)>,
    heard: Vec<i16>,
    packets_received: u64,
    packets_sent: u64,
    digits_received: Vec<char>,
    /// Timestamps of received events that ended.
    events_ended: Vec<u32>,
    digits: VecDeque<(u8, Option<oneshot::Sender<()>>)>,
    sending: Option<Digit>,
}

/// A digit being sent: 5 ticks of event updates, 3 end packets, a gap.
struct Digit {
    event: u8,
    tick: u32,
    start_ts: u32,
    done: Option<oneshot::Sender<()>>,
}

/// A running peer. Dropping it stops it.
pub struct WebRtcPeer {
    shared: Arc<Mutex<State>>,
    connected: watch::Receiver<bool>,
    events: Option<(u8, u32)>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for WebRtcPeer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl WebRtcPeer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until ICE and DTLS are up (media flows from then on).
    pub async fn wait_connected(&self, timeout: Duration) -> Result<()> {
        let mut connected = self.connected.clone();
        let up = tokio::time::timeout(timeout, connected.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok());
        match up {
            true => Ok(()),
            false => Err(AgentError::WaitTimeout {
                what: "ICE and DTLS to connect".into(),
                after: timeout,
                details: "not connected".into(),
            }),
        }
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Sends a tone at `freq_hz`, `amplitude` of full scale (0..1), until
    /// changed; replaces the current one.
    pub fn play_tone(&self, freq_hz: f32, amplitude: f32) {
        self.lock().tone = Some((freq_hz, amplitude));
    }

    /// Sends silence (still one Opus packet per 20 ms).
    pub fn play_silence(&self) {
        self.lock().tone = None;
    }

    /// Sends `digits` as RFC 4733 events (100 ms each, 100 ms apart),
    /// like a browser's `RTCDTMFSender`; returns once they are all out.
    pub async fn send_dtmf(&self, digits: &str) -> Result<()> {
        if self.events.is_none() {
            return Err(AgentError::NoTelephoneEvent);
        }
        let mut codes = Vec::new();
        for d in digits.chars() {
            codes.push(crate::media::dtmf::event_code(d)?);
        }
        let mut last = None;
        {
            let mut state = self.lock();
            let n = codes.len();
            for (i, code) in codes.into_iter().enumerate() {
                let done = if i + 1 == n {
                    let (tx, rx) = oneshot::channel();
                    last = Some(rx);
                    Some(tx)
                } else {
                    None
                };
                state.digits.push_back((code, done));
            }
        }
        if let Some(rx) = last {
            rx.await.map_err(|_| AgentError::MediaStopped)?;
        }
        Ok(())
    }

    /// The negotiated telephone-event payload type and clock rate.
    pub fn telephone_event(&self) -> Option<(u8, u32)> {
        self.events
    }

    pub fn packets_received(&self) -> u64 {
        self.lock().packets_received
    }

    pub fn packets_sent(&self) -> u64 {
        self.lock().packets_sent
    }

    /// RFC 4733 digits received, in order.
    pub fn digits_received(&self) -> Vec<char> {
        self.lock().digits_received.clone()
    }

    /// The last `window` of what was heard (8 kHz; decoded packets in
    /// arrival order, no jitter buffer: loopback tests need none).
    pub fn last(&self, window: Duration) -> Vec<i16> {
        let state = self.lock();
        let n = analysis::samples_in(window).min(state.heard.len());
        state.heard[state.heard.len() - n..].to_vec()
    }

    /// Waits until something is heard: the last 500 ms at `min_dbfs` RMS
    /// or louder (a prompt, a voice, a tone).
    pub async fn wait_for_sound(&self, min_dbfs: f64, timeout: Duration) -> Result<f64> {
        let window = Duration::from_millis(500);
        let what = format!("sound at {min_dbfs} dBFS (WebRTC)");
        poll_until(&what, timeout, || {
            let samples = self.last(window);
            let level = analysis::rms_dbfs(&samples);
            if samples.len() >= analysis::samples_in(window) && level >= min_dbfs {
                Ok(level)
            } else {
                Err(format!(
                    "RMS {level:.1} dBFS, {} packets received",
                    self.packets_received()
                ))
            }
        })
        .await
    }

    /// Waits until the tone at `freq_hz` meets `condition` over the last
    /// window of what was heard; fails with the last measurement.
    pub async fn wait_for_tone(
        &self,
        freq_hz: f32,
        condition: ToneCondition,
        timeout: Duration,
    ) -> Result<ToneMeasurement> {
        let needed = analysis::samples_in(condition.window);
        let what = format!("a {freq_hz} Hz tone (WebRTC)");
        poll_until(&what, timeout, || {
            let samples = self.last(condition.window);
            if samples.len() < needed {
                return Err(format!(
                    "only {} ms heard ({} packets)",
                    samples.len() * 1000 / RATE,
                    self.packets_received()
                ));
            }
            let m = ToneMeasurement::measure(&samples, freq_hz, &condition.others);
            if condition.is_met_by(&m) {
                Ok(m)
            } else {
                Err(m.to_string())
            }
        })
        .await
    }
}

/// Re-checks `check` every 40 ms (a period, not a synchronisation: the
/// condition is what the caller waits for) until it holds or `timeout`
/// passes; the error carries the last thing `check` reported.
async fn poll_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> std::result::Result<T, String>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let details = match check() {
            Ok(value) => return Ok(value),
            Err(details) => details,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(AgentError::WaitTimeout {
                what: what.to_string(),
                after: timeout,
                details,
            });
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// A SIP call whose media is WebRTC: the signalling ([`Call`]) and the
/// peer carrying the media; derefs to the peer.
pub struct WebRtcCall {
    pub call: crate::Call,
    pub peer: WebRtcPeer,
}

impl Deref for WebRtcCall {
    type Target = WebRtcPeer;

    fn deref(&self) -> &WebRtcPeer {
        &self.peer
    }
}

/// The peer's loop: str0m, its socket, the 20 ms sender.
struct Task {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    opus_pt: u8,
    events: Option<(u8, u32)>,
    shared: Arc<Mutex<State>>,
    connected: watch::Sender<bool>,
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    seq: u64,
    ts: u32,
    phase: f32,
}

impl Task {
    async fn run(mut self, mut stopped: oneshot::Receiver<()>) {
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timeout = match self.drain() {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!("WebRTC peer failed: {e}");
                    break;
                }
            };
            let wait = timeout
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(500));
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {
                    if *self.connected.borrow() {
                        self.send_tick();
                    }
                }
                received = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = received {
                        if let Ok(contents) = buf[..n].try_into() {
                            let input = Input::Receive(Instant::now(), Receive {
                                proto: Protocol::Udp,
                                source,
                                destination: self.local,
                                contents,
                            });
                            if let Err(e) = self.rtc.handle_input(input) {
                                tracing::debug!("WebRTC peer input: {e}");
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(wait) => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        tracing::debug!("WebRTC peer timeout: {e}");
                    }
                }
            }
        }
        let _ = self.connected.send(false);
        self.rtc.disconnect();
        let _ = self.drain();
    }

    fn drain(&mut self) -> std::result::Result<Instant, str0m::RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => {
                    let _ = self.connected.send(true);
                }
                Output::Event(Event::RtpPacket(p)) => {
                    self.on_rtp(*p.header.payload_type, p.header.timestamp, &p.payload)
                }
                Output::Event(_) => {}
            }
        }
    }

    fn on_rtp(&mut self, pt: u8, timestamp: u32, payload: &[u8]) {
        let mut state = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        state.packets_received += 1;
        if pt == self.opus_pt {
            let mut pcm = [0i16; FRAME * 6];
            if let Ok(n) = self.decoder.decode(payload, &mut pcm, false) {
                state.heard.extend_from_slice(&pcm[..n]);
                let len = state.heard.len();
                if len > MAX_RECORDING {
                    state.heard.drain(..len - MAX_RECORDING / 2);
                }
            }
        } else if self.events.is_some_and(|(e, _)| e == pt) && payload.len() >= 4 {
            let end = payload[1] & 0x80 != 0;
            // Each event ends with repeated end packets: count it once.
            if end && state.sending_ts_seen(timestamp) {
                if let Some(d) = crate::media::dtmf::digit_of(payload[0]) {
                    state.digits_received.push(d);
                }
            }
        }
    }

    /// One 20 ms packet: a DTMF event if one is being sent, else audio.
    fn send_tick(&mut self) {
        let ts = self.ts;
        self.ts = self.ts.wrapping_add(TICK_TS);
        let (pt, payload, marker, packet_ts) = match self.dtmf_step(ts) {
            Some((payload, marker, start_ts)) => (
                self.events.map_or(0, |(pt, _)| pt),
                payload.to_vec(),
                marker,
                start_ts,
            ),
            None => {
                let tone = self.shared.lock().unwrap_or_else(|e| e.into_inner()).tone;
                let mut pcm = [0i16; FRAME];
                if let Some((freq, amplitude)) = tone {
                    let step = std::f32::consts::TAU * freq / RATE as f32;
                    for s in pcm.iter_mut() {
                        *s = (self.phase.sin() * amplitude * 32_767.0) as i16;
                        self.phase = (self.phase + step) % std::f32::consts::TAU;
                    }
                }
                let mut out = [0u8; 400];
                let Ok(n) = self.encoder.encode(&pcm, &mut out) else {
                    return;
                };
                (self.opus_pt, out[..n].to_vec(), false, ts)
            }
        };
        let seq = self.seq;
        self.seq += 1;
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(self.mid, None) else {
            return;
        };
        tx.write_rtp(
            RtpWrite::new(pt.into(), seq.into(), packet_ts, Instant::now(), payload).marker(marker),
        );
        self.shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .packets_sent += 1;
    }

    /// The telephone-event payload for this tick, if a digit is being sent:
    /// `(payload, marker, event timestamp)`. `None` sends audio (also in
    /// the gap after a digit).
    fn dtmf_step(&mut self, ts: u32) -> Option<([u8; 4], bool, u32)> {
        let (_, rate) = self.events?;
        let mut state = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if state.sending.is_none() {
            let (event, done) = state.digits.pop_front()?;
            state.sending = Some(Digit {
                event,
                tick: 0,
                start_ts: ts,
                done,
            });
        }
        let digit = state.sending.as_mut()?;
        let tick = digit.tick;
        digit.tick += 1;
        const TONE: u32 = 5;
        const END_PACKETS: u32 = 3;
        const TOTAL: u32 = 10;
        if tick + 1 >= TOTAL {
            if let Some(done) = state.sending.take().and_then(|d| d.done) {
                let _ = done.send(());
            }
            return None;
        }
        if tick >= TONE + END_PACKETS - 1 {
            return None;
        }
        let units = (rate / 50) * (tick + 1).min(TONE);
        let end = tick + 1 >= TONE;
        let duration = units.min(u32::from(u16::MAX)) as u16;
        let [d0, d1] = duration.to_be_bytes();
        let payload = [digit.event, (u8::from(end) << 7) | 10, d0, d1];
        Some((payload, tick == 0, digit.start_ts))
    }
}

impl State {
    /// Whether this is the first end packet of the event at `timestamp`
    /// (each event ends with repeated end packets).
    fn sending_ts_seen(&mut self, timestamp: u32) -> bool {
        if self.events_ended.contains(&timestamp) {
            return false;
        }
        self.events_ended.push(timestamp);
        true
    }
}
