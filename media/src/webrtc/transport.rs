//! The transport side of WebRTC legs: one task per leg on the `media-webrtc`
//! thread, driving a `str0m` [`Rtc`] with its UDP socket (STUN, DTLS, SRTP,
//! RTCP) and exchanging plain RTP with the leg through its [`Pipe`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;

use super::Pipe;
use crate::rtp::{RtpHeader, RtpPacket};
use crate::MediaError;

/// Longest wait between two looks at the `Rtc` (str0m asks for less while
/// anything is going on).
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Largest datagram read.
const DATAGRAM: usize = 2048;

/// The thread all WebRTC transports run on: a current-thread tokio runtime,
/// so none of their work (handshakes, crypto) lands on a media worker.
pub(crate) struct TransportThread {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl TransportThread {
    pub(crate) fn start() -> Result<TransportThread, MediaError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("media-webrtc".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                // Dropping the runtime ends every transport task (their
                // sockets close, their legs go quiet).
                drop(rt);
            })?;
        Ok(TransportThread {
            handle,
            stop: Mutex::new(Some(stop)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs one leg's transport until the leg closes.
    pub(crate) fn spawn(&self, transport: Transport) {
        self.handle.spawn(transport.run());
    }

    /// Ends every transport and the thread. Idempotent.
    pub(crate) fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = stop.send(());
        }
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the WebRTC transport thread panicked");
            }
        }
    }
}

/// One leg's transport: the `Rtc`, its socket, the pipe to the leg.
pub(crate) struct Transport {
    rtc: Box<Rtc>,
    socket: Option<std::net::UdpSocket>,
    candidates: Vec<SocketAddr>,
    mid: Mid,
    pipe: Arc<Pipe>,
    label: String,
    /// Extends the leg's 16-bit sequence numbers for SRTP (rollover count).
    roc: u64,
    last_seq: Option<u16>,
}

impl Transport {
    pub(crate) fn new(
        rtc: Box<Rtc>,
        socket: std::net::UdpSocket,
        candidates: Vec<SocketAddr>,
        mid: Mid,
        pipe: Arc<Pipe>,
        label: String,
    ) -> Transport {
        Transport {
            rtc,
            socket: Some(socket),
            candidates,
            mid,
            pipe,
            label,
            roc: 0,
            last_seq: None,
        }
    }

    async fn run(mut self) {
        let Some(std_socket) = self.socket.take() else {
            return;
        };
        let socket = match std_socket
            .set_nonblocking(true)
            .and_then(|()| UdpSocket::from_std(std_socket))
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(leg = %self.label, "WebRTC socket: {e}");
                return;
            }
        };
        let local = socket.local_addr().ok();
        tracing::debug!(leg = %self.label, ?local, candidates = ?self.candidates, "WebRTC transport started");
        let mut buf = vec![0u8; DATAGRAM];
        loop {
            let timeout = match self.drain(&socket) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(leg = %self.label, "WebRTC session failed: {e}");
                    break;
                }
            };
            if self.pipe.is_closed() || !self.rtc.is_alive() {
                break;
            }
            let wait = timeout
                .saturating_duration_since(Instant::now())
                .min(MAX_WAIT);
            tokio::select! {
                biased;
                _ = self.pipe.wake.notified() => {
                    if self.pipe.is_closed() {
                        break;
                    }
                    if let Err(e) = self.send_queued(&socket) {
                        tracing::warn!(leg = %self.label, "WebRTC session failed: {e}");
                        break;
                    }
                }
                received = socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.receive(&buf[..n], source),
                    // E.g. an ICMP port unreachable from an earlier send.
                    Err(e) => tracing::trace!(leg = %self.label, "WebRTC recv: {e}"),
                },
                _ = tokio::time::sleep(wait) => {
                    if let Err(e) = self.rtc.handle_input(Input::Timeout(Instant::now())) {
                        tracing::debug!(leg = %self.label, "WebRTC timeout: {e}");
                    }
                }
            }
        }
        self.pipe.set_connected(false);
        self.rtc.disconnect();
        let _ = self.drain(&socket);
        tracing::debug!(leg = %self.label, "WebRTC transport ended");
    }

    /// Feeds one datagram (STUN, DTLS or SRTP) to the `Rtc`.
    fn receive(&mut self, data: &[u8], source: SocketAddr) {
        let Ok(contents) = data.try_into() else {
            return; // not STUN, DTLS or RTP: ignored
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.destination_for(source),
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!(leg = %self.label, %source, "WebRTC input: {e}");
        }
    }

    /// The candidate a datagram from `source` reached: the socket may be
    /// bound to every address, and str0m pairs by candidate.
    fn destination_for(&self, source: SocketAddr) -> SocketAddr {
        let loopback = source.ip().is_loopback();
        self.candidates
            .iter()
            .find(|c| c.ip().is_loopback() == loopback && c.is_ipv4() == source.is_ipv4())
            .or(self.candidates.first())
            .copied()
            .unwrap_or(source)
    }

    /// Protects and sends what the leg queued (each write followed by a
    /// drain, as str0m requires).
    fn send_queued(&mut self, socket: &UdpSocket) -> Result<(), str0m::RtcError> {
        while let Some(packet) = self.pipe.next_sent() {
            self.write(&packet);
            self.pipe.recycle_sent(packet);
            self.drain(socket)?;
        }
        Ok(())
    }

    fn write(&mut self, data: &[u8]) {
        let Ok(pkt) = RtpPacket::parse(data) else {
            return;
        };
        let RtpHeader {
            marker,
            payload_type,
            sequence,
            timestamp,
            ..
        } = pkt.header;
        if let Some(last) = self.last_seq {
            if sequence < last && last - sequence > 0x8000 {
                self.roc += 1;
            }
        }
        self.last_seq = Some(sequence);
        let seq = (self.roc << 16) | u64::from(sequence);
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(self.mid, None) else {
            return;
        };
        tx.write_rtp(
            RtpWrite::new(
                payload_type.into(),
                seq.into(),
                timestamp,
                Instant::now(),
                pkt.payload,
            )
            .marker(marker),
        );
    }

    /// Polls the `Rtc` until it only has a timeout left: sends what it
    /// wants sent, hands media to the leg. Returns when to poll next.
    fn drain(&mut self, socket: &UdpSocket) -> Result<Instant, str0m::RtcError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if let Err(e) = socket.try_send_to(&t.contents, t.destination) {
                        tracing::trace!(leg = %self.label, to = %t.destination, "WebRTC send: {e}");
                    }
                }
                Output::Event(event) => self.on_event(event),
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                tracing::debug!(leg = %self.label, "WebRTC connected (ICE + DTLS)");
                self.pipe.set_connected(true);
            }
            Event::IceConnectionStateChange(state) => {
                tracing::debug!(leg = %self.label, ?state, "ICE state");
                if state == IceConnectionState::Disconnected {
                    self.pipe.set_connected(false);
                }
            }
            Event::RtpPacket(p) => {
                let h = &p.header;
                let header = RtpHeader {
                    marker: h.marker,
                    payload_type: *h.payload_type,
                    sequence: h.sequence_number,
                    timestamp: h.timestamp,
                    ssrc: *h.ssrc,
                };
                let payload = &p.payload;
                self.pipe.deliver(|buf| {
                    buf.resize(crate::rtp::HEADER_LEN, 0);
                    if header.write(buf).is_some() {
                        buf.extend_from_slice(payload);
                    } else {
                        buf.clear();
                    }
                });
            }
            _ => {}
        }
    }
}
