//! SIP over one UDP socket or one TCP listener plus its connections.
//! Every parsed message comes out of one channel with its source address;
//! a message goes out to an address, over an existing TCP connection to it
//! when there is one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rsipstack::sip::SipMessage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Transport;
use crate::error::{AgentError, Result};

/// A received message and where it came from (for TCP, the connection's
/// peer address, which is also how replies find the connection).
#[derive(Debug)]
pub(crate) struct Inbound {
    pub message: SipMessage,
    pub from: SocketAddr,
}

/// Larger TCP messages than this are a framing error.
const MAX_MESSAGE: usize = 64 * 1024;

type Connections = Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>;

enum Socket {
    Udp(Arc<UdpSocket>),
    Tcp {
        connections: Arc<Connections>,
        /// Serialises connects so two sends do not open two connections.
        connecting: tokio::sync::Mutex<()>,
    },
}

pub(crate) struct SipTransport {
    kind: Transport,
    local: SocketAddr,
    socket: Socket,
    inbound: mpsc::UnboundedSender<Inbound>,
    cancel: CancellationToken,
}

impl SipTransport {
    /// Binds and starts receiving; messages arrive on the returned channel
    /// until `cancel` fires.
    pub async fn bind(
        kind: Transport,
        addr: SocketAddr,
        cancel: CancellationToken,
    ) -> Result<(Arc<SipTransport>, mpsc::UnboundedReceiver<Inbound>)> {
        let (inbound, receiver) = mpsc::unbounded_channel();
        let bind_error = |source| AgentError::Bind { addr, source };
        let transport = match kind {
            Transport::Udp => {
                let socket = Arc::new(UdpSocket::bind(addr).await.map_err(bind_error)?);
                let local = socket.local_addr()?;
                tokio::spawn(udp_receive(socket.clone(), inbound.clone(), cancel.clone()));
                SipTransport {
                    kind,
                    local,
                    socket: Socket::Udp(socket),
                    inbound,
                    cancel,
                }
            }
            Transport::Tcp => {
                let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
                let local = listener.local_addr()?;
                let connections = Arc::new(Connections::default());
                tokio::spawn(tcp_accept(
                    listener,
                    connections.clone(),
                    inbound.clone(),
                    cancel.clone(),
                ));
                SipTransport {
                    kind,
                    local,
                    socket: Socket::Tcp {
                        connections,
                        connecting: tokio::sync::Mutex::new(()),
                    },
                    inbound,
                    cancel,
                }
            }
        };
        Ok((Arc::new(transport), receiver))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn is_reliable(&self) -> bool {
        self.kind == Transport::Tcp
    }

    /// Sends one message to `to`.
    pub async fn send(&self, to: SocketAddr, bytes: Vec<u8>) -> Result<()> {
        tracing::trace!(%to, message = %String::from_utf8_lossy(&bytes), "SIP out");
        match &self.socket {
            Socket::Udp(socket) => {
                socket.send_to(&bytes, to).await?;
                Ok(())
            }
            Socket::Tcp {
                connections,
                connecting,
            } => {
                let existing = lock(connections).get(&to).cloned();
                let writer = match existing {
                    Some(writer) if !writer.is_closed() => writer,
                    _ => {
                        let _one_at_a_time = connecting.lock().await;
                        let again = lock(connections).get(&to).cloned();
                        match again {
                            Some(writer) if !writer.is_closed() => writer,
                            _ => self.connect(to, connections).await?,
                        }
                    }
                };
                writer.send(bytes).map_err(|_| AgentError::Transport {
                    to,
                    reason: "TCP connection closed".into(),
                })
            }
        }
    }

    async fn connect(
        &self,
        to: SocketAddr,
        connections: &Arc<Connections>,
    ) -> Result<mpsc::UnboundedSender<Vec<u8>>> {
        let stream = TcpStream::connect(to)
            .await
            .map_err(|e| AgentError::Transport {
                to,
                reason: format!("connect: {e}"),
            })?;
        Ok(start_connection(
            stream,
            to,
            connections.clone(),
            self.inbound.clone(),
            self.cancel.clone(),
        ))
    }
}

fn lock(
    connections: &Connections,
) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>> {
    connections
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn parse(bytes: &[u8], from: SocketAddr) -> Option<Inbound> {
    match SipMessage::try_from(bytes) {
        Ok(message) => {
            tracing::trace!(%from, message = %String::from_utf8_lossy(bytes), "SIP in");
            Some(Inbound { message, from })
        }
        Err(error) => {
            tracing::debug!(%from, %error, "unparsable SIP message dropped");
            None
        }
    }
}

async fn udp_receive(
    socket: Arc<UdpSocket>,
    inbound: mpsc::UnboundedSender<Inbound>,
    cancel: CancellationToken,
) {
    let mut buffer = vec![0u8; 65536];
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => return,
            received = socket.recv_from(&mut buffer) => received,
        };
        match received {
            Ok((length, from)) => {
                let datagram = &buffer[..length];
                // Keep-alives are bare CRLFs.
                if datagram.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                if let Some(message) = parse(datagram, from) {
                    if inbound.send(message).is_err() {
                        return;
                    }
                }
            }
            Err(error) => {
                // ICMP errors surface here on some systems; keep serving.
                tracing::debug!(%error, "SIP UDP receive failed");
            }
        }
    }
}

async fn tcp_accept(
    listener: TcpListener,
    connections: Arc<Connections>,
    inbound: mpsc::UnboundedSender<Inbound>,
    cancel: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                start_connection(
                    stream,
                    peer,
                    connections.clone(),
                    inbound.clone(),
                    cancel.clone(),
                );
            }
            Err(error) => {
                tracing::debug!(%error, "SIP TCP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Registers a connection and starts its reader and writer.
fn start_connection(
    stream: TcpStream,
    peer: SocketAddr,
    connections: Arc<Connections>,
    inbound: mpsc::UnboundedSender<Inbound>,
    cancel: CancellationToken,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let (sender, mut outgoing) = mpsc::unbounded_channel::<Vec<u8>>();
    lock(&connections).insert(peer, sender.clone());

    let write_cancel = cancel.clone();
    tokio::spawn(async move {
        loop {
            let bytes = tokio::select! {
                _ = write_cancel.cancelled() => {
                    // Flush what is queued (e.g. the 200 to a last BYE).
                    while let Ok(bytes) = outgoing.try_recv() {
                        if writer.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    return;
                }
                bytes = outgoing.recv() => bytes,
            };
            let Some(bytes) = bytes else { return };
            if let Err(error) = writer.write_all(&bytes).await {
                tracing::debug!(%peer, %error, "SIP TCP write failed");
                return;
            }
        }
    });

    let registered = sender.clone();
    tokio::spawn(async move {
        let mut buffer: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; 16384];
        loop {
            let read = tokio::select! {
                _ = cancel.cancelled() => break,
                read = reader.read(&mut chunk) => read,
            };
            match read {
                Ok(0) | Err(_) => break,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            loop {
                match next_frame(&mut buffer) {
                    Ok(Some(frame)) => {
                        if let Some(message) = parse(&frame, peer) {
                            if inbound.send(message).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(reason) => {
                        tracing::debug!(%peer, reason, "SIP TCP framing error; closing");
                        lock(&connections).remove(&peer);
                        return;
                    }
                }
            }
        }
        let mut map = lock(&connections);
        if map.get(&peer).is_some_and(|s| s.same_channel(&registered)) {
            map.remove(&peer);
        }
    });
    sender
}

/// Takes one complete message off the front of a TCP stream buffer.
fn next_frame(buffer: &mut Vec<u8>) -> Result<Option<Vec<u8>>, &'static str> {
    // Keep-alive CRLFs between messages.
    let leading = buffer
        .iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count();
    buffer.drain(..leading);
    let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buffer.len() > MAX_MESSAGE {
            Err("header section too large")
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]);
    let mut content_length = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
                content_length = value.trim().parse().map_err(|_| "bad Content-Length")?;
            }
        }
    }
    let total = head_end + 4 + content_length;
    if total > MAX_MESSAGE {
        return Err("message too large");
    }
    if buffer.len() < total {
        return Ok(None);
    }
    Ok(Some(buffer.drain(..total).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_messages_on_a_stream() {
        let mut buffer = b"\r\n\r\nOPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nabcBYE sip:b SIP/2.0\r\nContent-Length: 0\r\n\r\nINV".to_vec();
        let first = next_frame(&mut buffer).expect("ok").expect("a frame");
        assert!(first.starts_with(b"OPTIONS") && first.ends_with(b"abc"));
        let second = next_frame(&mut buffer).expect("ok").expect("a frame");
        assert!(second.starts_with(b"BYE"));
        assert_eq!(next_frame(&mut buffer), Ok(None));
        assert_eq!(buffer, b"INV");
        let mut bad = b"X sip:a SIP/2.0\r\nContent-Length: x\r\n\r\n".to_vec();
        assert!(next_frame(&mut bad).is_err());
    }
}
