//! Call orchestration: SIP calls in, rules, scenario instances, media out.
//!
//! - [`call`]: one call (signalling + media leg) as scenarios see it.
//! - [`conference`]: a conference room (media mix + participants + events).
//! - [`dispatch`]: routes a call to a scenario instance by the rules.
//! - [`host`]: what scenario instances may ask of the engine.

mod call;
mod conference;
mod dispatch;
pub mod events;
mod host;
mod recordings;
mod uri;

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
use crate::registry::{AppRegistry, AppRoutes};
use crate::sources::SourceResolver;
use crate::tts::{CachedTts, Espeak, TtsProvider};

pub use call::{Call, CallSnapshot, Route};
pub use conference::{Conference, ConferenceSnapshot, ParticipantSnapshot};
use dispatch::Rooms;
use events::Observers;
pub use events::{CallRecord, EngineEvent, EngineObserver, LogLine, Scope};
pub use recordings::RecordingFile;

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
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("no call {0}")]
    NoSuchCall(String),
    #[error("no conference {0}")]
    NoSuchConference(String),
    #[error("{0}")]
    Call(#[from] switchboard_scenarios::CallError),
    #[error("{0}")]
    Conference(#[from] switchboard_scenarios::ConferenceError),
    /// A feature this build cannot do yet.
    #[error("{0}")]
    NotAvailable(String),
}

/// What [`Engine::start_scenario`] runs: a rule (its scenario, and its
/// conference behaviour) or a scenario directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartTarget {
    Rule(String),
    Scenario(String),
}

/// Counters for `/health` and `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub calls_total: AtomicU64,
    pub calls_rejected: AtomicU64,
    pub scenario_errors: AtomicU64,
}

/// Shared state of a running engine.
pub(crate) struct EngineInner {
    pub(crate) config: Config,
    pub(crate) apps: AppRegistry,
    pub(crate) observers: Observers,
    pub(crate) sip: SipEndpoint,
    pub(crate) media: MediaEngine,
    pub(crate) tts: CachedTts,
    /// `play` sources: tones, media files, URLs.
    pub(crate) sources: SourceResolver,
    /// Outbound HTTP for scenarios (`fetch`, media URLs).
    pub(crate) http: reqwest::Client,
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
    /// Starts SIP, media and HTTP with `app` as the default application
    /// (every call reaches it unless another application claims its number
    /// or domain) and serves until shut down.
    pub async fn start(config: Config, app: Application) -> Result<Engine, EngineError> {
        let apps = AppRegistry::default();
        let default_id = app.id.clone();
        // A fresh registry has no routes to conflict with.
        let _ = apps.install(app, AppRoutes::default());
        apps.set_default(Some(&default_id));
        Engine::start_with(config, apps).await
    }

    /// Starts with the given applications, serving `/health` on HTTP.
    pub async fn start_with(config: Config, apps: AppRegistry) -> Result<Engine, EngineError> {
        Engine::start_serving(config, apps, crate::http::router).await
    }

    /// Starts with the given applications and serves on HTTP the router
    /// `http` builds for this engine. `http` runs before the first call is
    /// accepted, so observers it registers see every call.
    pub async fn start_serving(
        config: Config,
        apps: AppRegistry,
        http: impl FnOnce(&Engine) -> axum::Router,
    ) -> Result<Engine, EngineError> {
        // Before anything binds: a bad certificate stops the start here.
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
            _ => None,
        };
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
        // One TLS crypto provider for the process (rsipstack and reqwest).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http_client = crate::fetch::client();
        let sources = SourceResolver::new(http_client.clone(), switchboard_media::CLOCK_RATE, 256);
        let limits = Limits {
            memory_bytes: config.limits.memory_bytes,
            cpu_per_callback: config.limits.cpu_per_callback,
            max_timers: config.limits.max_timers,
            max_call_duration: config.limits.max_call_duration,
        };
        let inner = Arc::new(EngineInner {
            config: config.clone(),
            apps,
            observers: Observers::default(),
            sip,
            media,
            tts,
            sources,
            http: http_client,
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
        let engine = Engine {
            inner: inner.clone(),
            http_addr,
            stopped: stopped.clone(),
        };
        let https = tls.is_some();
        tokio::spawn(crate::http::serve(
            http_listener,
            tls,
            http(&engine),
            stopped,
        ));

        let accept = inner.clone();
        tokio::spawn(async move {
            while let Some(call) = incoming.recv().await {
                let engine = accept.clone();
                tokio::spawn(async move { engine.handle_incoming(call).await });
            }
        });

        info!(
            default_app = ?engine.inner.apps.default_app(),
            sip_udp = ?engine.sip_addr(Transport::Udp),
            sip_tcp = ?engine.sip_addr(Transport::Tcp),
            http = %http_addr,
            https,
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

    /// The live applications: install, replace or remove them here; the next
    /// call uses the change.
    pub fn apps(&self) -> &AppRegistry {
        &self.inner.apps
    }

    /// Calls `observer` for every [`EngineEvent`] from now on.
    pub fn observe(&self, observer: Arc<dyn EngineObserver>) {
        self.inner.observers.add(observer);
    }

    /// Every live call.
    pub fn calls(&self) -> Vec<CallSnapshot> {
        let mut calls: Vec<CallSnapshot> = self.inner.calls.iter().map(|c| c.snapshot()).collect();
        calls.sort_by_key(|c| c.started_at_ms);
        calls
    }

    /// A live call.
    pub fn call(&self, id: &str) -> Option<Arc<Call>> {
        self.inner.calls.get(id).map(|c| c.clone())
    }

    /// Hangs up a live call (BYE, or 480 when not answered yet).
    pub async fn hangup(&self, id: &str) -> Result<(), EngineError> {
        let call = self
            .call(id)
            .ok_or_else(|| EngineError::NoSuchCall(id.to_string()))?;
        use switchboard_scenarios::CallControl;
        call.hangup(Vec::new()).await?;
        Ok(())
    }

    /// The live call whose INVITE carried this SIP Call-ID.
    pub fn call_by_sip_call_id(&self, sip_call_id: &str) -> Option<Arc<Call>> {
        self.inner
            .calls
            .iter()
            .find(|entry| entry.value().sip_call_id() == sip_call_id)
            .map(|entry| entry.value().clone())
    }

    /// The SIP endpoint (WebSocket connections are handed to it).
    pub(crate) fn sip(&self) -> &SipEndpoint {
        &self.inner.sip
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Every live conference.
    pub fn conferences(&self) -> Vec<Arc<Conference>> {
        self.inner.rooms.conferences()
    }

    /// A live conference of an application.
    pub fn conference(&self, app: &str, name: &str) -> Option<Arc<Conference>> {
        self.inner.rooms.conference(app, name)
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }

    /// SIP messages in and out by method and status code.
    pub fn sip_stats(&self) -> switchboard_sip::SipStats {
        self.inner.sip.stats()
    }

    /// True once [`Engine::shutdown`] has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.shutting_down.load(Ordering::SeqCst)
    }

    /// Starts a scenario of application `app_id` from the management API:
    /// `target` is a rule or scenario name, the instance gets `destination`
    /// and `custom_data`, its `onStart` runs and may dial out. Returns the
    /// new instance's id.
    ///
    /// Outbound calls (`onStart`, `dial`) come with the scenario API work;
    /// until then this says so.
    pub async fn start_scenario(
        &self,
        app_id: &str,
        target: &StartTarget,
        destination: &str,
        custom_data: serde_json::Value,
    ) -> Result<String, EngineError> {
        if self.inner.shutting_down.load(Ordering::SeqCst) {
            return Err(EngineError::NotAvailable("shutting down".into()));
        }
        let app = self
            .inner
            .apps
            .get(app_id)
            .ok_or_else(|| EngineError::NotAvailable(format!("no application {app_id}")))?;
        self.inner
            .start_outbound(&app, target, destination, custom_data)
            .await
    }

    /// An application's recording files, newest first, each with whether it
    /// is still being written.
    pub fn recordings(&self, scope: &Scope) -> std::io::Result<Vec<(RecordingFile, bool)>> {
        let files = recordings::list(&self.inner.config.recordings_dir(), scope)?;
        let writing = self.recordings_in_progress();
        Ok(files
            .into_iter()
            .map(|f| {
                let busy = recordings::in_progress(&writing, &f.path);
                (f, busy)
            })
            .collect())
    }

    /// One of an application's recording files by name, with whether it is
    /// still being written.
    pub fn recording(&self, scope: &Scope, name: &str) -> Option<(RecordingFile, bool)> {
        let file = recordings::find(&self.inner.config.recordings_dir(), scope, name)?;
        let busy = recordings::in_progress(&self.recordings_in_progress(), &file.path);
        Some((file, busy))
    }

    /// Where live calls and conferences are recording to now.
    fn recordings_in_progress(&self) -> Vec<std::path::PathBuf> {
        let mut writing = Vec::new();
        for call in self.inner.calls.iter() {
            call.recordings().locations_into(&mut writing);
        }
        for conference in self.conferences() {
            conference.recordings().locations_into(&mut writing);
        }
        writing
    }

    /// Media counters (RTP packets, loss).
    pub fn media_stats(&self) -> switchboard_media::MediaStats {
        self.inner.media.stats()
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
