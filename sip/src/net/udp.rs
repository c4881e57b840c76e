//! The UDP socket: our receive loop reads it, rsipstack sends on it.
//!
//! rsipstack's own UDP loop drops datagrams it cannot parse without a word,
//! so it is given a socket whose receive side never yields
//! ([`SharedSocket`]); our loop reads the real socket, answers malformed
//! requests with a stateless 400 and hands the rest to the transaction layer.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use rsipstack::platform::net::UdpSocket as PlatformUdpSocket;
use rsipstack::transport::SipConnection;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::ingress::Ingress;

/// Kernel buffers sized for bursts of a few thousand calls per second.
const RECV_BUFFER: usize = 4 * 1024 * 1024;
const SEND_BUFFER: usize = 1024 * 1024;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;

const KEEPALIVE_PING: &[u8] = b"\r\n\r\n";
const KEEPALIVE_PONG: &[u8] = b"\r\n";

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.[rw]mem_max.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    let _ = socket.set_send_buffer_size(SEND_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// The socket as rsipstack sees it: it sends through it and never receives.
/// [`SharedSocket::close`] lets go of the socket so the port is free once
/// our loop has stopped, even while transactions still hold a connection.
pub(crate) struct SharedSocket {
    socket: RwLock<Option<Arc<UdpSocket>>>,
    local: SocketAddr,
}

impl SharedSocket {
    pub(crate) fn new(socket: Arc<UdpSocket>, local: SocketAddr) -> SharedSocket {
        SharedSocket {
            socket: RwLock::new(Some(socket)),
            local,
        }
    }

    pub(crate) fn close(&self) {
        self.socket
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }

    fn get(&self) -> Option<Arc<UdpSocket>> {
        self.socket
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait::async_trait]
impl PlatformUdpSocket for SharedSocket {
    async fn recv_from(&self, _buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        // Our loop is the only reader (see the module comment).
        std::future::pending().await
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        let socket = self.get().ok_or_else(|| {
            rsipstack::Error::Error("the UDP socket is closed (endpoint shut down)".into())
        })?;
        Ok(socket.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Reads datagrams until `cancel`.
pub(crate) async fn serve(
    socket: Arc<UdpSocket>,
    connection: SipConnection,
    ingress: Arc<Ingress>,
    cancel: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            _ = cancel.cancelled() => break,
            received = socket.recv_from(&mut buf) => received,
        };
        let (len, source) = match received {
            Ok(received) => received,
            Err(e) => {
                // ICMP errors and the like: the socket itself is fine.
                debug!(error = %e, "UDP receive error");
                continue;
            }
        };
        let packet = &buf[..len];
        if packet == KEEPALIVE_PING {
            let _ = socket.send_to(KEEPALIVE_PONG, source).await;
            continue;
        }
        if packet.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(reply) = ingress.receive(packet, true, &connection, source).await {
            if let Err(e) = socket.send_to(&reply, source).await {
                debug!(%source, error = %e, "cannot send a stateless reply");
            }
        }
    }
    debug!("UDP receive loop stopped");
}
