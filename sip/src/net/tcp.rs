//! TCP: our accept loop and per-connection read loops.
//!
//! rsipstack's stream loop closes a connection on the first message it
//! cannot parse, without answering. Here each connection is an rsipstack
//! `TcpConnection` (rsipstack writes responses and requests to it) whose
//! read half we take and read ourselves: frames are cut by Content-Length,
//! a malformed message gets a 400 and the connection carries on; only a
//! head we cannot frame by (bad Content-Length, oversized) closes it, after
//! its 400/513. Cancelling the connection's token (the endpoint shutting
//! down, or a write failing in rsipstack) closes it too, and calls that
//! arrived on it end with `EndReason::TransportError`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::transport::stream::StreamConnection;
use rsipstack::transport::tcp::TcpConnection;
use rsipstack::transport::{SipAddr, SipConnection};
use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::ingress::Ingress;
use crate::wire::{Frame, Framer};

/// Dead peers (no FIN) are found by TCP keepalive, not by an idle timeout:
/// a call can go hours without a SIP message on its connection.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// How long an outgoing call waits for its TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Accepts connections until `cancel`.
pub(crate) async fn serve(listener: TcpListener, ingress: Arc<Ingress>, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve_connection(
                    stream,
                    peer,
                    ingress.clone(),
                    cancel.child_token(),
                ));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off a little
                // instead of spinning.
                debug!(error = %e, "TCP accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    debug!("TCP accept loop stopped");
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    ingress: Arc<Ingress>,
    flow: CancellationToken,
) {
    if let Some((connection, reader)) = wrap(stream, peer, flow.clone()).await {
        run(reader, connection, peer, ingress, flow).await;
    }
}

/// Opens a connection to `remote` for an outgoing call: read by our loop
/// like an accepted one, closed when `flow` is cancelled.
pub(crate) async fn connect(
    remote: SocketAddr,
    ingress: Arc<Ingress>,
    flow: CancellationToken,
) -> std::io::Result<SipConnection> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "TCP connect timed out")
        })??;
    let (connection, reader) = wrap(stream, remote, flow.clone())
        .await
        .ok_or_else(|| std::io::Error::other("the connection closed at once"))?;
    let sip_connection = SipConnection::Tcp(connection.clone());
    tokio::spawn(run(reader, connection, remote, ingress, flow));
    Ok(sip_connection)
}

/// An rsipstack connection writing to `stream`, and the read half for us.
async fn wrap(
    stream: TcpStream,
    peer: SocketAddr,
    flow: CancellationToken,
) -> Option<(TcpConnection, tokio::io::ReadHalf<TcpStream>)> {
    let _ = stream.set_nodelay(true);
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    let local = match stream.local_addr() {
        Ok(local) => local,
        Err(e) => {
            debug!(%peer, error = %e, "TCP connection is already gone");
            return None;
        }
    };
    let local = SipAddr {
        r#type: Some(rsipstack::sip::Transport::Tcp),
        addr: local.into(),
    };
    let connection = match TcpConnection::from_stream(stream, local, Some(flow)) {
        Ok(connection) => connection,
        Err(e) => {
            debug!(%peer, error = %e, "cannot wrap TCP connection");
            return None;
        }
    };
    let reader = connection.inner.read_half.lock().await.take()?;
    Some((connection, reader))
}

async fn run(
    reader: tokio::io::ReadHalf<TcpStream>,
    connection: TcpConnection,
    peer: SocketAddr,
    ingress: Arc<Ingress>,
    flow: CancellationToken,
) {
    debug!(%peer, "TCP connection open");
    read_loop(reader, &connection, peer, &ingress, &flow).await;
    // Tell the calls on this connection, and stop rsipstack using it.
    flow.cancel();
    let _ = connection.close().await;
    debug!(%peer, "TCP connection closed");
}

async fn read_loop(
    mut reader: tokio::io::ReadHalf<TcpStream>,
    connection: &TcpConnection,
    peer: SocketAddr,
    ingress: &Ingress,
    flow: &CancellationToken,
) {
    let sip_connection = SipConnection::Tcp(connection.clone());
    let mut framer = Framer::new();
    loop {
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => {
                    if connection.send_raw(b"\r\n").await.is_err() {
                        return;
                    }
                }
                Ok(Some(Frame::Message(frame))) => {
                    if let Some(reply) = ingress.receive(&frame, false, &sip_connection, peer).await
                    {
                        if connection.send_raw(&reply).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(Some(Frame::Unframeable { head, code, reason })) => {
                    debug!(%peer, code, reason, "unframeable message, closing the connection");
                    if let Some(reply) = ingress.reject_head(&head, code, reason) {
                        let _ = connection.send_raw(&reply).await;
                    }
                    return;
                }
                Err(_) => {
                    debug!(%peer, "no SIP message head within the size limit, closing");
                    return;
                }
            }
        }
        let read = tokio::select! {
            _ = flow.cancelled() => return,
            read = reader.read_buf(framer.buffer()) => read,
        };
        match read {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                debug!(%peer, error = %e, "TCP read error");
                return;
            }
        }
    }
}
