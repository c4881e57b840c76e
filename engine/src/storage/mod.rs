//! Persistent state: accounts, API keys, applications (scenarios with every
//! version, rules, numbers and domains) and call history.
//!
//! [`Storage`] is the seam: the control plane and the HTTP API use only the
//! trait, so another database (PostgreSQL) can be added beside
//! [`SqliteStorage`], the embedded default. Writes that belong together
//! (a deploy, a scenario upload) are one [`Storage::write_app`] call, one
//! transaction: all of it is stored, or none.

mod sqlite;
mod types;

pub use sqlite::SqliteStorage;
pub use types::*;

use crate::engine::CallRecord;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A uniqueness rule would be broken (a name, number or domain in use).
    #[error("{0}")]
    Conflict(String),
    /// The database refused or failed.
    #[error("database: {0}")]
    Database(String),
    /// The database was written by a newer switchboard.
    #[error("database schema version {found} is newer than this switchboard knows ({known})")]
    TooNew { found: i64, known: i64 },
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// The storage backend. Every method is one transaction; a method that
/// returns `Ok` has made its write durable.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    // Accounts.
    async fn create_account(&self, account: Account) -> Result<()>;
    async fn accounts(&self) -> Result<Vec<Account>>;
    async fn account(&self, id: &str) -> Result<Option<Account>>;
    /// Deletes an account and its keys. `Conflict` while it has applications.
    async fn delete_account(&self, id: &str) -> Result<bool>;

    // API keys.
    async fn create_key(&self, key: StoredKey) -> Result<()>;
    async fn key(&self, id: &str) -> Result<Option<StoredKey>>;
    async fn keys(&self, account: &str) -> Result<Vec<ApiKeyInfo>>;
    async fn delete_key(&self, id: &str) -> Result<bool>;
    async fn key_count(&self) -> Result<u64>;

    // Applications.
    /// Applications of `account`, or of every account.
    async fn apps(&self, account: Option<&str>) -> Result<Vec<AppRecord>>;
    async fn app(&self, id: &str) -> Result<Option<AppRecord>>;
    async fn app_by_name(&self, account: &str, name: &str) -> Result<Option<AppRecord>>;
    /// Everything needed to build the application: record, rules, the live
    /// version of each scenario.
    async fn stored_app(&self, id: &str) -> Result<Option<StoredApp>>;
    /// Applies `writes` to application `app_id` in one transaction.
    async fn write_app(&self, app_id: &str, writes: Vec<AppWrite>) -> Result<()>;
    /// Deletes an application with its scenarios, rules, numbers and
    /// domains (its call history stays).
    async fn delete_app(&self, id: &str) -> Result<bool>;
    async fn default_app(&self) -> Result<Option<String>>;
    async fn set_default_app(&self, id: Option<String>) -> Result<()>;

    // Scenarios.
    async fn scenarios(&self, app: &str) -> Result<Vec<ScenarioSummary>>;
    /// One version (`None`: the live one) with its source.
    async fn scenario_version(
        &self,
        app: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<ScenarioVersion>>;
    /// Every version, newest first (no sources).
    async fn scenario_versions(&self, app: &str, name: &str) -> Result<Vec<VersionInfo>>;

    // Call history.
    /// Stores finished calls and their logs (a call already stored is kept).
    async fn record_calls(&self, records: Vec<CallRecord>) -> Result<()>;
    async fn history(&self, filter: HistoryFilter) -> Result<HistoryPage>;
    async fn history_entry(&self, account: &str, id: &str) -> Result<Option<HistoryEntry>>;
    async fn call_log(&self, account: &str, id: &str) -> Result<Option<Vec<StoredLogLine>>>;
}
