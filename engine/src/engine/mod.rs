//! Call orchestration: SIP calls in, rules, scenario instances, media out.
//!
//! - [`call`]: one call (signalling + media leg) as scenarios see it.
//! - [`conference`]: a conference room (media mix + participants + events).
//! - [`dispatch`]: routes a call to a scenario instance by the rules.
//! - [`host`]: what scenario instances may ask of the engine.

mod call;
mod conference;
mod dispatch;
mod host;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use switchboard_media::{MediaConfig, MediaEngine};
use switchboard_scenarios::Limits;
use switchboard_sip::{SipConfig, SipEndpoint, Transport};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::app::Application;
use crate::config::Config;
use crate::tts::{CachedTts, Espeak, TtsProvider};

pub use call::Call;
pub use conference::Conference;
use dispatch::Rooms;

/// How long shutdown waits for BYEs to be answered.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("SIP: {0}")]
    Sip(#[from] switchboard_sip::SipError),
    #[error("media: {0}")]
    Media(#[from] switchboard_media::MediaError),
    #[error("HTTP: {0}")]
    Http(std::io::Error),
}

/// Counters for `/health` and, later, `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls_total: AtomicU64,
    pub calls_rejected: AtomicU64,
    pub scenario_errors: AtomicU64,
}

/// Shared state of a running engine.
pub(crate) struct EngineInner {
    pub(crate) config: Config,
    pub(crate) app: Arc<Application>,
    pub(crate) sip: SipEndpoint,
    pub(crate) media: MediaEngine,
    pub(crate) tts: CachedTts,
    pub(crate) limits: Limits,
    /// Live calls by id.
    pub(crate) calls: DashMap<String, Arc<Call>>,
    /// Conference rooms by (application, destination).
    pub(crate) rooms: Rooms,
    pub(crate) stats: Stats,
    pub(crate) shutting_down: AtomicBool,
}

/// A running engine. Dropping it does not stop it; call [`Engine::shutdown`].
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
    http_addr: SocketAddr,
    stopped: CancellationToken,
}

impl Engine {
    /// Starts SIP, media and HTTP with `app` and serves until shut down.
    pub async fn start(config: Config, app: Application) -> Result<Engine, EngineError> {
        let media = MediaEngine::start(MediaConfig {
            bind_ip: config.rtp_ip,
            rtp_ports: config.rtp_ports.clone(),
            workers: config.media_workers,
        })?;
        let (sip, mut incoming) = SipEndpoint::start(SipConfig {
            udp: Some(config.sip),
            tcp: Some(config.sip),
            user_agent: format!("switchboard/{}", env!("CARGO_PKG_VERSION")),
        })
        .await?;
        let espeak: Arc<dyn TtsProvider> = Arc::new(Espeak::new(
            config.tts.espeak.clone(),
            config.tts.voice.clone(),
        ));
        let tts = CachedTts::new(
            espeak,
            config.tts.cache_entries,
            switchboard_media::CLOCK_RATE,
        );
        let limits = Limits {
            memory_bytes: config.limits.memory_bytes,
            cpu_per_callback: config.limits.cpu_per_callback,
            max_timers: config.limits.max_timers,
        };
        let inner = Arc::new(EngineInner {
            config: config.clone(),
            app: Arc::new(app),
            sip,
            media,
            tts,
            limits,
            calls: DashMap::new(),
            rooms: Rooms::default(),
            stats: Stats::default(),
            shutting_down: AtomicBool::new(false),
        });

        let http_listener = tokio::net::TcpListener::bind(config.http)
            .await
            .map_err(EngineError::Http)?;
        let http_addr = http_listener.local_addr().map_err(EngineError::Http)?;
        let stopped = CancellationToken::new();
        tokio::spawn(crate::http::serve(
            http_listener,
            inner.clone(),
            stopped.clone(),
        ));

        let accept = inner.clone();
        tokio::spawn(async move {
            while let Some(call) = incoming.recv().await {
                let engine = accept.clone();
                tokio::spawn(async move { engine.handle_incoming(call).await });
            }
        });

        let engine = Engine {
            inner,
            http_addr,
            stopped,
        };
        info!(
            app = %engine.inner.app.name,
            sip_udp = ?engine.sip_addr(Transport::Udp),
            sip_tcp = ?engine.sip_addr(Transport::Tcp),
            http = %http_addr,
            rtp_ports = ?engine.inner.config.rtp_ports,
            "switchboard ready"
        );
        Ok(engine)
    }

    /// Where SIP really listens on `transport`.
    pub fn sip_addr(&self, transport: Transport) -> Option<SocketAddr> {
        self.inner.sip.local_addr(transport)
    }

    /// Where HTTP really listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Live calls right now.
    pub fn active_calls(&self) -> usize {
        self.inner.calls.len()
    }

    /// Ends every call with BYE (or a final response), then stops SIP, media
    /// and HTTP.
    pub async fn shutdown(&self) {
        if self.inner.shutting_down.swap(true, Ordering::SeqCst) {
            self.stopped.cancelled().await;
            return;
        }
        let calls: Vec<Arc<Call>> = self
            .inner
            .calls
            .iter()
            .map(|entry| entry.value().clone())
            .collect();
        info!(calls = calls.len(), "shutting down: ending calls");
        let hangups = calls.iter().map(|call| call.end_for_shutdown());
        if tokio::time::timeout(SHUTDOWN_GRACE, futures::future::join_all(hangups))
            .await
            .is_err()
        {
            warn!("some calls did not end within {SHUTDOWN_GRACE:?}");
        }
        self.inner.sip.shutdown().await;
        self.inner.media.shutdown();
        self.stopped.cancel();
        info!("switchboard stopped");
    }
}
