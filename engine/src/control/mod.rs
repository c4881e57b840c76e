//! The control plane: every change the management API (or `serve` at start)
//! makes to accounts, keys and applications.
//!
//! Storage is the source of truth. A change to an application is applied to
//! a [`Draft`] of it (read from storage), the draft is built into an
//! [`Application`] (rules and scenarios validated and compiled; a broken
//! change stops here and nothing is written), written in one transaction,
//! and then installed in the engine's registry: the next call uses it, calls
//! in progress keep the version they started with. One lock serialises
//! changes so storage and registry see them in the same order.

mod deploy;
mod draft;
mod history;
mod keys;
mod names;

use std::sync::{Arc, OnceLock};

use switchboard_rules::Rule;
use tracing::{error, info, warn};

use crate::app::{AppError, Application};
use crate::engine::events::unix_ms;
use crate::engine::Engine;
use crate::registry::{AppRegistry, AppRoutes};
use crate::storage::{Account, AppRecord, Storage, StorageError, StoredApp};

pub use deploy::{DeployReport, DeploySpec, ScenarioChange};
pub use draft::{Draft, Upload};
pub use history::HistoryWriter;
pub use keys::{key_id, AuthError, Principal, ADMIN_KEY_ENV, MIN_KEY_LEN};
pub use names::{check_name, NameKind};

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The change would make the application invalid (bad rule pattern,
    /// scenario that does not compile, rule without its scenario, ...).
    #[error(transparent)]
    Invalid(#[from] AppError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Storage(StorageError),
}

impl From<StorageError> for ControlError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(message) => ControlError::Conflict(message),
            other => ControlError::Storage(other),
        }
    }
}

pub type Result<T> = std::result::Result<T, ControlError>;

/// A new application's fields.
#[derive(Debug, Clone, Default)]
pub struct NewApp {
    pub name: String,
    pub numbers: Vec<String>,
    pub domains: Vec<String>,
    pub allowed_hosts: Vec<String>,
}

/// Fields to change on an application; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct AppPatch {
    pub name: Option<String>,
    pub numbers: Option<Vec<String>>,
    pub domains: Option<Vec<String>>,
    pub allowed_hosts: Option<Vec<String>>,
}

/// The control plane. Cheap to clone.
#[derive(Clone)]
pub struct Control {
    inner: Arc<Inner>,
}

struct Inner {
    /// The running engine, once attached: changes are installed in it.
    engine: OnceLock<Engine>,
    storage: Arc<dyn Storage>,
    /// Serialises changes (storage write + registry install).
    writes: tokio::sync::Mutex<()>,
    keys: keys::KeyCache,
}

/// Builds the registry of every stored application (and the default one),
/// for the engine to start with. An application that no longer builds is
/// left out, loudly.
pub async fn load_registry(storage: &dyn Storage) -> Result<AppRegistry> {
    let registry = AppRegistry::default();
    for record in storage.apps(None).await? {
        let Some(stored) = storage.stored_app(&record.id).await? else {
            continue;
        };
        let routes = routes_of(&stored.record);
        match Draft::from_stored(stored).build() {
            Ok(app) => {
                if let Err(e) = registry.install(app, routes) {
                    error!(app = %record.id, error = %e, "application not installed");
                }
            }
            Err(e) => error!(app = %record.id, error = %e, "stored application does not build"),
        }
    }
    let default = storage.default_app().await?;
    registry.set_default(default.as_deref());
    Ok(registry)
}

fn routes_of(record: &AppRecord) -> AppRoutes {
    AppRoutes {
        domains: record.domains.clone(),
        numbers: record.numbers.clone(),
    }
}

fn now_ms() -> u64 {
    unix_ms(std::time::SystemTime::now())
}

/// A random id: `prefix` and 16 lower-case letters and digits.
pub(crate) fn new_id(prefix: &str) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    let tail = Alphanumeric
        .sample_string(&mut rand::rng(), 16)
        .to_ascii_lowercase();
    format!("{prefix}{tail}")
}

impl Control {
    /// A control plane over `storage`. Changes are stored only, until an
    /// engine is attached.
    pub fn new(storage: Arc<dyn Storage>) -> Control {
        Control {
            inner: Arc::new(Inner {
                engine: OnceLock::new(),
                storage,
                writes: tokio::sync::Mutex::new(()),
                keys: keys::KeyCache::default(),
            }),
        }
    }

    /// From now on, changes are installed in `engine` too (the first
    /// engine attached stays).
    pub fn attach(&self, engine: Engine) {
        let _ = self.inner.engine.set(engine);
    }

    fn registry(&self) -> Option<&AppRegistry> {
        self.inner.engine.get().map(|e| e.apps())
    }

    pub fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }

    // --- accounts ---------------------------------------------------------

    pub async fn create_account(&self, name: &str) -> Result<Account> {
        check_name(NameKind::Account, name)?;
        let account = Account {
            id: new_id("acc_"),
            name: name.to_string(),
            created_at: now_ms(),
        };
        self.storage().create_account(account.clone()).await?;
        info!(account = %account.id, name, "account created");
        Ok(account)
    }

    /// Deletes an account without applications, and its keys.
    pub async fn delete_account(&self, id: &str) -> Result<()> {
        if !self.storage().delete_account(id).await? {
            return Err(ControlError::NotFound(format!("no account {id}")));
        }
        self.inner.keys.clear();
        info!(account = id, "account deleted");
        Ok(())
    }

    // --- applications -----------------------------------------------------

    /// An application of `account` by id or by name; other accounts'
    /// applications are "not found" (their existence is not ours to tell).
    pub async fn find_app(&self, account: &str, app: &str) -> Result<AppRecord> {
        if let Some(record) = self.storage().app(app).await? {
            if record.account == account {
                return Ok(record);
            }
        }
        self.storage()
            .app_by_name(account, app)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no application {app}")))
    }

    pub async fn create_app(&self, account: &str, new: NewApp) -> Result<AppRecord> {
        let now = now_ms();
        let record = AppRecord {
            id: new_id("app_"),
            account: account.to_string(),
            name: new.name,
            numbers: new.numbers,
            domains: new.domains,
            allowed_hosts: new.allowed_hosts,
            created_at: now,
            updated_at: now,
        };
        let _guard = self.inner.writes.lock().await;
        let mut draft = Draft::new_app(record)?;
        let record = draft.record.clone();
        self.commit(&mut draft).await?;
        info!(app = %record.id, account, name = %record.name, "application created");
        Ok(record)
    }

    pub async fn update_app(&self, app_id: &str, patch: AppPatch) -> Result<AppRecord> {
        self.change(app_id, |draft| {
            let mut record = draft.record.clone();
            if let Some(name) = patch.name {
                record.name = name;
            }
            if let Some(numbers) = patch.numbers {
                record.numbers = numbers;
            }
            if let Some(domains) = patch.domains {
                record.domains = domains;
            }
            if let Some(hosts) = patch.allowed_hosts {
                record.allowed_hosts = hosts;
            }
            draft.set_record(record)?;
            Ok(draft.record.clone())
        })
        .await
    }

    /// Deletes an application; calls in progress keep running.
    pub async fn delete_app(&self, app_id: &str) -> Result<()> {
        let _guard = self.inner.writes.lock().await;
        if !self.storage().delete_app(app_id).await? {
            return Err(ControlError::NotFound(format!("no application {app_id}")));
        }
        if let Some(registry) = self.registry() {
            registry.remove(app_id);
        }
        info!(app = app_id, "application deleted");
        Ok(())
    }

    /// Makes `app_id` the application that gets calls no number or domain
    /// claims (`None`: such calls get 404).
    pub async fn set_default_app(&self, app_id: Option<&str>) -> Result<()> {
        let _guard = self.inner.writes.lock().await;
        self.storage()
            .set_default_app(app_id.map(str::to_string))
            .await?;
        if let Some(registry) = self.registry() {
            registry.set_default(app_id);
        }
        info!(app = ?app_id, "default application set");
        Ok(())
    }

    pub async fn default_app(&self) -> Result<Option<String>> {
        Ok(self.storage().default_app().await?)
    }

    // --- scenarios --------------------------------------------------------

    /// Stores `source` as the new live version of scenario `name` once it
    /// compiles (and the application still builds with it).
    pub async fn put_scenario(&self, app_id: &str, name: &str, source: String) -> Result<Upload> {
        check_name(NameKind::Scenario, name)?;
        let upload = self
            .change(app_id, |draft| Ok(draft.upload(name, source)))
            .await?;
        if upload.created {
            info!(
                app = app_id,
                scenario = name,
                version = upload.version,
                "scenario uploaded"
            );
        }
        Ok(upload)
    }

    /// Makes an earlier version of a scenario live again.
    pub async fn rollback_scenario(&self, app_id: &str, name: &str, version: u32) -> Result<()> {
        let stored = self
            .storage()
            .scenario_version(app_id, name, Some(version))
            .await?
            .ok_or_else(|| {
                ControlError::NotFound(format!("scenario {name} has no version {version}"))
            })?;
        self.change(app_id, |draft| draft.make_live(stored)).await?;
        info!(
            app = app_id,
            scenario = name,
            version,
            "scenario rolled back"
        );
        Ok(())
    }

    /// Deletes a scenario and its versions; refused while a rule runs it.
    pub async fn delete_scenario(&self, app_id: &str, name: &str) -> Result<()> {
        self.change(app_id, |draft| draft.delete_scenario(name))
            .await
    }

    // --- rules ------------------------------------------------------------

    /// Changes the rules with `edit` (create, update, delete, reorder...);
    /// the result is validated as a whole. Returns the new rules.
    pub async fn edit_rules<T>(
        &self,
        app_id: &str,
        edit: impl FnOnce(&mut Vec<Rule>) -> Result<T>,
    ) -> Result<(T, Vec<Rule>)> {
        self.change(app_id, |draft| {
            let mut rules = draft.rules.clone();
            let out = edit(&mut rules)?;
            draft.set_rules(rules)?;
            Ok((out, draft.rules.clone()))
        })
        .await
    }

    /// The application as stored.
    pub async fn stored_app(&self, app_id: &str) -> Result<StoredApp> {
        self.storage()
            .stored_app(app_id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("no application {app_id}")))
    }

    /// Applies `edit` to a draft of the application and commits it.
    async fn change<T>(
        &self,
        app_id: &str,
        edit: impl FnOnce(&mut Draft) -> Result<T>,
    ) -> Result<T> {
        let _guard = self.inner.writes.lock().await;
        let stored = self.stored_app(app_id).await?;
        let mut draft = Draft::from_stored(stored);
        let out = edit(&mut draft)?;
        self.commit(&mut draft).await?;
        Ok(out)
    }

    /// Builds, stores and installs a draft. The caller holds the write lock.
    async fn commit(&self, draft: &mut Draft) -> Result<()> {
        if !draft.has_changes() {
            return Ok(());
        }
        let app: Application = draft.build()?;
        let routes = routes_of(&draft.record);
        let id = draft.record.id.clone();
        self.storage().write_app(&id, draft.take_writes()).await?;
        if let Some(registry) = self.registry() {
            if let Err(e) = registry.install(app, routes) {
                // Storage refused the same conflict, so this means the
                // registry drifted from storage; storage wins at the next
                // start.
                warn!(app = %id, error = %e, "registry refused a stored application");
            }
        }
        Ok(())
    }
}
