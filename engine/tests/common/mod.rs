//! Shared harness for the end-to-end tests: an engine on loopback with real
//! SIP and RTP, and helpers to load applications.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use switchboard::app::Application;
use switchboard::config::{Config, Overrides};
use switchboard::Engine;
use switchboard_sip::Transport;

/// Generous: CI is a busy 2-core machine.
pub const T: Duration = Duration::from_secs(20);

/// RTP ports for engines under test (media unit tests use 30000-31799).
const RTP_PORTS: &str = "32000-39999";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .try_init();
}

pub fn examples_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(name)
}

/// The built web dial page (`scripts/web` builds it).
pub fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("web")
        .join("dist")
}

/// An engine listening on 127.0.0.1 (ephemeral SIP and HTTP ports).
pub struct TestEngine {
    pub engine: Engine,
    pub udp: SocketAddr,
    pub tcp: SocketAddr,
    /// Recordings go here (removed with the engine).
    pub recordings: tempfile::TempDir,
}

impl TestEngine {
    /// The anyroom example, loaded from `examples/anyroom`.
    pub async fn anyroom() -> TestEngine {
        let app = Application::load_dir(&examples_dir("anyroom")).expect("anyroom loads");
        TestEngine::start(app).await
    }

    /// An application from an `app.toml` text and `(name, source)` scenarios.
    pub async fn with_app(manifest: &str, scenarios: &[(&str, &str)]) -> TestEngine {
        let app = Application::from_sources(
            manifest,
            scenarios
                .iter()
                .map(|(n, s)| (n.to_string(), s.to_string()))
                .collect(),
        )
        .expect("test application is valid");
        TestEngine::start(app).await
    }

    pub async fn start(app: Application) -> TestEngine {
        init_tracing();
        let recordings = tempfile::tempdir().expect("a recordings directory");
        let config = Config::load(
            None,
            Overrides {
                sip: Some("127.0.0.1:0".into()),
                http: Some("127.0.0.1:0".into()),
                rtp_ports: Some(RTP_PORTS.into()),
                recordings: Some(recordings.path().to_path_buf()),
                web: Some(web_dir()),
                ..Default::default()
            },
        )
        .expect("config");
        let engine = Engine::start(config, app).await.expect("engine starts");
        let udp = engine.sip_addr(Transport::Udp).expect("udp listener");
        let tcp = engine.sip_addr(Transport::Tcp).expect("tcp listener");
        TestEngine {
            engine,
            udp,
            tcp,
            recordings,
        }
    }

    /// `sip:<user>@<engine>` over UDP.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.udp)
    }

    /// `sip:<user>@<engine>;transport=tcp`.
    pub fn tcp_uri(&self, user: &str) -> String {
        format!("sip:{user}@{};transport=tcp", self.tcp)
    }

    /// Waits until the engine has no live calls.
    pub async fn wait_idle(&self) {
        let deadline = tokio::time::Instant::now() + T;
        while self.engine.active_calls() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} calls still live",
                self.engine.active_calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
