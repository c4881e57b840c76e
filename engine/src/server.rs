//! `switchboard serve`: storage, the engine and the management API
//! together.
//!
//! Start-up, in order:
//! 1. open the database (migrating it);
//! 2. first start (no account yet): create the `default` account;
//! 3. admin key: `SWITCHBOARD_ADMIN_KEY` is stored if it is not yet; with
//!    no key at all, one is created and returned (the CLI prints it once);
//! 4. `--app DIR` is deployed as the default application; on the first
//!    start without one, the built-in anyroom example is;
//! 5. every stored application is built and installed, then SIP, media and
//!    HTTP start.
//!
//! Stop: live-event sockets close, the engine ends every call, then the call
//! history queue is flushed, so every finished call is stored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tracing::info;

use crate::api::{self, ApiState, EventHub, Metrics};
use crate::app::{read_dir, AppError, DEFAULT_ACCOUNT};
use crate::config::Config;
use crate::control::{self, Control, ControlError, DeploySpec, HistoryWriter};
use crate::engine::{Engine, EngineError};
use crate::storage::{Account, Role, SqliteStorage, Storage, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Control(#[from] ControlError),
    #[error("application {dir}: {source}")]
    App { dir: String, source: AppError },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The anyroom example, compiled into the binary.
const ANYROOM_MANIFEST: &str = include_str!("../../examples/anyroom/app.toml");
const ANYROOM_SCENARIOS: &[(&str, &str)] = &[
    ("gateway", include_str!("../../examples/anyroom/gateway.js")),
    (
        "conference",
        include_str!("../../examples/anyroom/conference.js"),
    ),
];

/// A running server.
pub struct Server {
    engine: Engine,
    control: Control,
    history: Arc<HistoryWriter>,
    events: Arc<EventHub>,
    created_admin_key: Option<String>,
}

impl Server {
    /// Starts on the SQLite database `config.db`; `admin_key` is
    /// `SWITCHBOARD_ADMIN_KEY`, if set.
    pub async fn start(config: Config, admin_key: Option<String>) -> Result<Server, ServerError> {
        let storage: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&config.db)?);
        info!(db = %config.db.display(), "database open");
        Server::start_with_storage(config, storage, admin_key).await
    }

    /// Starts on any storage.
    pub async fn start_with_storage(
        config: Config,
        storage: Arc<dyn Storage>,
        admin_key: Option<String>,
    ) -> Result<Server, ServerError> {
        let control = Control::new(storage.clone());
        let first_start = storage.accounts().await?.is_empty();
        if first_start {
            storage
                .create_account(Account {
                    id: DEFAULT_ACCOUNT.to_string(),
                    name: DEFAULT_ACCOUNT.to_string(),
                    created_at: crate::engine::events::unix_ms(std::time::SystemTime::now()),
                })
                .await?;
            info!("first start: created the default account");
        }
        let created_admin_key = bootstrap_admin_key(&control, admin_key.as_deref()).await?;
        if let Some(dir) = &config.app {
            deploy_dir(&control, dir).await?;
        } else if first_start && storage.apps(None).await?.is_empty() {
            deploy_anyroom(&control).await?;
        }

        let registry = control::load_registry(storage.as_ref()).await?;
        let history = HistoryWriter::start(storage.clone());
        let events = EventHub::new();
        let metrics = Arc::new(Metrics::default());
        let engine = Engine::start_serving(config, registry, |engine| {
            engine.observe(history.clone());
            engine.observe(events.clone());
            engine.observe(metrics.clone());
            control.attach(engine.clone());
            api::router(ApiState {
                control: control.clone(),
                engine: engine.clone(),
                events: events.clone(),
                metrics,
            })
        })
        .await?;
        Ok(Server {
            engine,
            control,
            history,
            events,
            created_admin_key,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn control(&self) -> &Control {
        &self.control
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.engine.http_addr()
    }

    /// The admin key created at this start (first start without
    /// `SWITCHBOARD_ADMIN_KEY`): the only time it can be shown.
    pub fn created_admin_key(&self) -> Option<&str> {
        self.created_admin_key.as_deref()
    }

    /// Ends every call, stops SIP, media and HTTP, and stores the history of
    /// every call that ended.
    pub async fn shutdown(&self) {
        self.events.close();
        self.engine.shutdown().await;
        self.history.flush().await;
    }
}

/// Stores `SWITCHBOARD_ADMIN_KEY` if given, or creates the first admin key
/// when there is no key at all (returned, to be shown once).
async fn bootstrap_admin_key(
    control: &Control,
    env_key: Option<&str>,
) -> Result<Option<String>, ServerError> {
    if let Some(key) = env_key {
        if control
            .import_key(DEFAULT_ACCOUNT, Role::Admin, "SWITCHBOARD_ADMIN_KEY", key)
            .await?
        {
            info!("stored the admin key from SWITCHBOARD_ADMIN_KEY");
        }
        return Ok(None);
    }
    if control.storage().key_count().await? > 0 {
        return Ok(None);
    }
    let (info, key) = control
        .create_key(DEFAULT_ACCOUNT, Role::Admin, "initial admin key")
        .await?;
    info!(key = %info.id, "created the first admin key");
    Ok(Some(key))
}

/// Deploys an application directory into the default account and makes it
/// the default application.
async fn deploy_dir(control: &Control, dir: &Path) -> Result<(), ServerError> {
    let app_error = |source| ServerError::App {
        dir: dir.display().to_string(),
        source,
    };
    let (manifest, sources) = read_dir(dir).map_err(app_error)?;
    let report = control
        .deploy(
            DEFAULT_ACCOUNT,
            DeploySpec {
                name: manifest.name,
                rules: manifest.rules,
                scenarios: sources.into_iter().collect(),
                numbers: Some(manifest.numbers),
                domains: Some(manifest.domains),
                allowed_hosts: Some(manifest.allowed_hosts),
                prune: false,
            },
        )
        .await?;
    control
        .set_default_app(Some(&report.application.id))
        .await?;
    info!(dir = %dir.display(), app = %report.application.id, changed = report.changed,
        "deployed --app as the default application");
    Ok(())
}

/// The built-in anyroom example as the default application.
async fn deploy_anyroom(control: &Control) -> Result<(), ServerError> {
    let manifest =
        crate::app::parse_manifest(ANYROOM_MANIFEST).map_err(|source| ServerError::App {
            dir: "built-in anyroom".into(),
            source,
        })?;
    let scenarios: BTreeMap<String, String> = ANYROOM_SCENARIOS
        .iter()
        .map(|(name, source)| (name.to_string(), source.to_string()))
        .collect();
    let report = control
        .deploy(
            DEFAULT_ACCOUNT,
            DeploySpec {
                name: manifest.name,
                rules: manifest.rules,
                scenarios,
                numbers: None,
                domains: None,
                allowed_hosts: None,
                prune: false,
            },
        )
        .await?;
    control
        .set_default_app(Some(&report.application.id))
        .await?;
    info!(app = %report.application.id, "first start: installed the anyroom example as the default application");
    Ok(())
}
