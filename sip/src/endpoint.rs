//! The running endpoint: sockets, rsipstack's transaction layer, our
//! receive loops and dispatcher, and the live dialogs.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rsipstack::transaction::endpoint::{EndpointInner, EndpointOption};
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipConnection, TransportLayer};
use rsipstack::EndpointBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::net::ingress::Ingress;
use crate::net::local_ip::LocalIps;
use crate::net::udp::SharedSocket;
use crate::net::{tcp, udp};
use crate::registry::Registry;
use crate::stats::{Counters, SendCounter};
use crate::{dispatch, IncomingCall, SipConfig, SipError, SipTimers, Transport};

/// New calls waiting for the engine; beyond this, INVITEs get 503.
const INCOMING_QUEUE: usize = 1024;
/// How long shutdown waits for our loops to stop.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

pub(crate) struct EndpointCore {
    /// rsipstack's endpoint: transactions and their timers.
    pub(crate) stack: Arc<EndpointInner>,
    /// `User-Agent` in our requests, `Server` in our responses.
    pub(crate) user_agent: String,
    pub(crate) timers: SipTimers,
    /// Where received bytes go: outgoing calls' TCP connections use it too.
    pub(crate) ingress: Arc<Ingress>,
    pub(crate) registry: Registry,
    pub(crate) local_ips: LocalIps,
    /// Messages in and out, for metrics.
    pub(crate) counters: Arc<Counters>,
    /// Cancelled by shutdown: every loop and connection watches it.
    pub(crate) cancel: CancellationToken,
    udp: Option<UdpSide>,
    tcp_local: Option<SocketAddr>,
    incoming: Mutex<Option<mpsc::Sender<IncomingCall>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    shut_down: AtomicBool,
}

struct UdpSide {
    local: SocketAddr,
    shared: Arc<SharedSocket>,
    /// rsipstack's view of the socket, for our client transactions.
    connection: SipConnection,
}

impl EndpointCore {
    pub(crate) async fn start(
        config: SipConfig,
        timers: SipTimers,
    ) -> Result<(Arc<EndpointCore>, mpsc::Receiver<IncomingCall>), SipError> {
        let (udp_socket, tcp_listener) = bind_listeners(&config)?;
        let cancel = CancellationToken::new();

        let transport_layer = TransportLayer::new(cancel.child_token());
        let udp_parts = match udp_socket {
            Some(socket) => Some(UdpParts::attach(socket, &transport_layer, &cancel).await?),
            None => None,
        };
        let tcp_local = match &tcp_listener {
            Some(listener) => Some(
                listener
                    .local_addr()
                    .map_err(|e| SipError::Stack(e.to_string()))?,
            ),
            None => None,
        };

        let option = EndpointOption {
            t1: timers.t1,
            t2: timers.t2,
            t4: timers.t4,
            t1x64: timers.t1 * 64,
            ..EndpointOption::default()
        };
        let counters = Arc::new(Counters::default());
        let endpoint = EndpointBuilder::new()
            .with_user_agent(&config.user_agent)
            .with_inspector(Box::new(SendCounter(counters.clone())))
            .with_transport_layer(transport_layer)
            .with_cancel_token(cancel.child_token())
            .with_option(option)
            .build();
        let transactions = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let stack = endpoint.inner.clone();

        let bound_ip = config
            .udp
            .map(|a| a.ip())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_QUEUE);
        let ingress = Arc::new(Ingress::new(
            stack.clone(),
            config.user_agent.clone(),
            counters.clone(),
        ));
        let core = Arc::new(EndpointCore {
            stack: stack.clone(),
            user_agent: config.user_agent.clone(),
            timers,
            ingress: ingress.clone(),
            registry: Registry::default(),
            local_ips: LocalIps::new(bound_ip),
            counters,
            cancel: cancel.clone(),
            udp: udp_parts.as_ref().map(|parts| UdpSide {
                local: parts.local,
                shared: parts.shared.clone(),
                connection: parts.connection.clone(),
            }),
            tcp_local,
            incoming: Mutex::new(Some(incoming_tx)),
            tasks: Mutex::new(Vec::new()),
            shut_down: AtomicBool::new(false),
        });

        let mut tasks = vec![
            tokio::spawn(async move { endpoint.serve().await }),
            tokio::spawn(dispatch::run(core.clone(), transactions)),
        ];
        if let Some(parts) = udp_parts {
            tasks.push(tokio::spawn(udp::serve(
                parts.socket,
                parts.connection,
                ingress.clone(),
                cancel.child_token(),
            )));
        }
        if let Some(listener) = tcp_listener {
            tasks.push(tokio::spawn(tcp::serve(
                listener,
                ingress,
                cancel.child_token(),
            )));
        }
        *core.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        info!(udp = ?core.local_addr(Transport::Udp), tcp = ?tcp_local, "SIP endpoint listening");
        Ok((core, incoming_rx))
    }

    pub(crate) fn live_dialogs(&self) -> usize {
        self.registry.len()
    }

    pub(crate) fn local_addr(&self, transport: Transport) -> Option<SocketAddr> {
        match transport {
            Transport::Udp => self.udp.as_ref().map(|u| u.local),
            Transport::Tcp => self.tcp_local,
            Transport::Ws => None,
        }
    }

    /// Hands a new call to the engine; gives it back when the engine cannot
    /// take it (queue full, or gone).
    pub(crate) fn deliver_call(&self, call: IncomingCall) -> Result<(), IncomingCall> {
        let incoming = self.incoming.lock().unwrap_or_else(|e| e.into_inner());
        match incoming.as_ref() {
            Some(sender) => sender.try_send(call).map_err(|e| match e {
                mpsc::error::TrySendError::Full(call) | mpsc::error::TrySendError::Closed(call) => {
                    call
                }
            }),
            None => Err(call),
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        self.shut_down.load(Ordering::Acquire)
    }

    /// Runs `work` unless the endpoint shuts down first: rsipstack's timers
    /// stop with it, so a transaction would otherwise wait forever.
    pub(crate) async fn until_shutdown<T>(
        &self,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        tokio::select! {
            _ = self.cancel.cancelled() => None,
            result = work => Some(result),
        }
    }

    pub(crate) async fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        let calls = self.registry.drain();
        if !calls.is_empty() {
            warn!(
                calls = calls.len(),
                "SIP endpoint shutting down with calls up"
            );
        }
        for call in calls {
            call.end_for_shutdown();
        }
        self.incoming
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.cancel.cancel();
        if let Some(udp) = &self.udp {
            udp.shared.close();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        for task in tasks {
            if tokio::time::timeout(SHUTDOWN_WAIT, task).await.is_err() {
                warn!("a SIP task did not stop in time");
            }
        }
        debug!("SIP endpoint stopped");
    }
}

/// The UDP socket and rsipstack's view of it.
struct UdpParts {
    socket: Arc<UdpSocket>,
    shared: Arc<SharedSocket>,
    connection: SipConnection,
    local: SocketAddr,
}

impl UdpParts {
    /// Registers the socket with rsipstack as a listener, so its client
    /// transactions (BYE, CANCEL, the ACK of a 2xx) can send over it.
    async fn attach(
        socket: UdpSocket,
        transport_layer: &TransportLayer,
        cancel: &CancellationToken,
    ) -> Result<UdpParts, SipError> {
        let local = socket
            .local_addr()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let socket = Arc::new(socket);
        let shared = Arc::new(SharedSocket::new(socket.clone(), local));
        let connection =
            UdpConnection::from_socket(shared.clone(), None, Some(cancel.child_token()))
                .await
                .map_err(|e| SipError::Stack(e.to_string()))?;
        transport_layer.add_transport(connection.clone().into());
        Ok(UdpParts {
            socket,
            shared,
            connection: SipConnection::Udp(connection),
            local,
        })
    }
}

/// Binds the configured sockets. When UDP and TCP both ask for port 0 on the
/// same IP, TCP gets UDP's port if it is free (one port number for both,
/// like 5060).
fn bind_listeners(
    config: &SipConfig,
) -> Result<(Option<UdpSocket>, Option<TcpListener>), SipError> {
    if let (Some(udp_addr), Some(tcp_addr)) = (config.udp, config.tcp) {
        if udp_addr.port() == 0 && tcp_addr.port() == 0 && udp_addr.ip() == tcp_addr.ip() {
            for _ in 0..8 {
                let udp = bind_udp(udp_addr)?;
                let port = udp
                    .local_addr()
                    .map_err(|e| SipError::Stack(e.to_string()))?
                    .port();
                if let Ok(tcp) = tcp::bind(SocketAddr::new(tcp_addr.ip(), port)) {
                    return Ok((Some(udp), Some(tcp)));
                }
            }
        }
    }
    let udp = config.udp.map(bind_udp).transpose()?;
    let tcp = config
        .tcp
        .map(|addr| tcp::bind(addr).map_err(|source| SipError::Bind { addr, source }))
        .transpose()?;
    Ok((udp, tcp))
}

fn bind_udp(addr: SocketAddr) -> Result<UdpSocket, SipError> {
    udp::bind(addr).map_err(|source| SipError::Bind { addr, source })
}

impl EndpointCore {
    /// The TCP listener's port, for Contact headers on TCP calls.
    pub(crate) fn tcp_port(&self) -> Option<u16> {
        self.tcp_local.map(|a| a.port())
    }

    /// The UDP socket's port, for Contact and Via on UDP calls.
    pub(crate) fn udp_port(&self) -> Option<u16> {
        self.udp.as_ref().map(|u| u.local.port())
    }

    /// The UDP socket as an rsipstack connection, for client transactions.
    pub(crate) fn udp_connection(&self) -> Option<SipConnection> {
        self.udp.as_ref().map(|u| u.connection.clone())
    }
}
