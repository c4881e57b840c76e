//! The embedded default: one SQLite file in WAL mode.
//!
//! Durability: `synchronous=FULL` makes every commit fsync the WAL before
//! it returns, so an acknowledged write survives `kill -9` and power loss
//! alike. (NORMAL would survive `kill -9` too, but not a power cut; API
//! writes are rare and call history is written in batches, so FULL costs
//! little.) One writer connection serialises writes; a few reader
//! connections serve reads beside it, as WAL allows. rusqlite is blocking,
//! so every call runs on tokio's blocking pool.

mod accounts;
mod apps;
mod history;
mod migrations;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};

use super::{
    Account, ApiKeyInfo, AppRecord, AppWrite, HistoryEntry, HistoryFilter, HistoryPage, Result,
    ScenarioSummary, ScenarioVersion, Storage, StorageError, StoredApp, StoredKey, StoredLogLine,
    VersionInfo,
};
use crate::engine::CallRecord;

/// Reader connections (the machine has few cores; reads are short).
const READERS: usize = 3;
/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// SQLite storage. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStorage {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl From<rusqlite::Error> for StorageError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(failure, message)
                if failure.code == ErrorCode::ConstraintViolation =>
            {
                StorageError::Conflict(
                    message
                        .clone()
                        .unwrap_or_else(|| "a uniqueness rule would be broken".into()),
                )
            }
            _ => StorageError::Database(e.to_string()),
        }
    }
}

impl SqliteStorage {
    /// Opens (creating it and its directory if needed) the database at
    /// `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStorage> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::Database(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut writer = connect(path)?;
        writer.pragma_update(None, "foreign_keys", true)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StorageError::Database(format!(
                "cannot switch {} to WAL (journal mode is {mode})",
                path.display()
            )));
        }
        writer.pragma_update(None, "synchronous", "FULL")?;
        migrations::run(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let reader = connect(path)?;
                reader.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(reader))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(SqliteStorage {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a reader connection.
    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let i = inner.next_reader.fetch_add(1, Ordering::Relaxed) % inner.readers.len();
            f(&lock(&inner.readers[i]))
        })
        .await
    }

    /// Runs `f` in a write transaction and commits it (durably) if it
    /// returns `Ok`.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn = lock(&inner.writer);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| StorageError::Database(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

async fn run_blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Database(format!("storage task failed: {e}")))?
}

fn lock(mutex: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Milliseconds as stored (SQLite integers are signed).
fn to_db(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

fn from_db(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}

#[async_trait::async_trait]
impl Storage for SqliteStorage {
    async fn create_account(&self, account: Account) -> Result<()> {
        self.write(move |tx| accounts::insert_account(tx, &account))
            .await
    }

    async fn accounts(&self) -> Result<Vec<Account>> {
        self.read(accounts::accounts).await
    }

    async fn account(&self, id: &str) -> Result<Option<Account>> {
        let id = id.to_string();
        self.read(move |conn| accounts::account(conn, &id)).await
    }

    async fn delete_account(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |tx| accounts::delete_account(tx, &id))
            .await
    }

    async fn create_key(&self, key: StoredKey) -> Result<()> {
        self.write(move |tx| accounts::insert_key(tx, &key)).await
    }

    async fn key(&self, id: &str) -> Result<Option<StoredKey>> {
        let id = id.to_string();
        self.read(move |conn| accounts::key(conn, &id)).await
    }

    async fn keys(&self, account: &str) -> Result<Vec<ApiKeyInfo>> {
        let account = account.to_string();
        self.read(move |conn| accounts::keys(conn, &account)).await
    }

    async fn delete_key(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |tx| accounts::delete_key(tx, &id)).await
    }

    async fn key_count(&self) -> Result<u64> {
        self.read(accounts::key_count).await
    }

    async fn apps(&self, account: Option<&str>) -> Result<Vec<AppRecord>> {
        let account = account.map(str::to_string);
        self.read(move |conn| apps::records(conn, account.as_deref()))
            .await
    }

    async fn app(&self, id: &str) -> Result<Option<AppRecord>> {
        let id = id.to_string();
        self.read(move |conn| apps::record(conn, &id)).await
    }

    async fn app_by_name(&self, account: &str, name: &str) -> Result<Option<AppRecord>> {
        let (account, name) = (account.to_string(), name.to_string());
        self.read(move |conn| apps::record_by_name(conn, &account, &name))
            .await
    }

    async fn stored_app(&self, id: &str) -> Result<Option<StoredApp>> {
        let id = id.to_string();
        self.read(move |conn| apps::stored_app(conn, &id)).await
    }

    async fn write_app(&self, app_id: &str, writes: Vec<AppWrite>) -> Result<()> {
        let app_id = app_id.to_string();
        self.write(move |tx| apps::write(tx, &app_id, writes)).await
    }

    async fn delete_app(&self, id: &str) -> Result<bool> {
        let id = id.to_string();
        self.write(move |tx| apps::delete(tx, &id)).await
    }

    async fn default_app(&self) -> Result<Option<String>> {
        self.read(apps::default_app).await
    }

    async fn set_default_app(&self, id: Option<String>) -> Result<()> {
        self.write(move |tx| apps::set_default_app(tx, id.as_deref()))
            .await
    }

    async fn scenarios(&self, app: &str) -> Result<Vec<ScenarioSummary>> {
        let app = app.to_string();
        self.read(move |conn| apps::scenarios(conn, &app)).await
    }

    async fn scenario_version(
        &self,
        app: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<ScenarioVersion>> {
        let (app, name) = (app.to_string(), name.to_string());
        self.read(move |conn| apps::scenario_version(conn, &app, &name, version))
            .await
    }

    async fn scenario_versions(&self, app: &str, name: &str) -> Result<Vec<VersionInfo>> {
        let (app, name) = (app.to_string(), name.to_string());
        self.read(move |conn| apps::scenario_versions(conn, &app, &name))
            .await
    }

    async fn record_calls(&self, records: Vec<CallRecord>) -> Result<()> {
        self.write(move |tx| history::insert(tx, &records)).await
    }

    async fn history(&self, filter: HistoryFilter) -> Result<HistoryPage> {
        self.read(move |conn| history::page(conn, &filter)).await
    }

    async fn history_entry(&self, account: &str, id: &str) -> Result<Option<HistoryEntry>> {
        let (account, id) = (account.to_string(), id.to_string());
        self.read(move |conn| history::entry(conn, &account, &id))
            .await
    }

    async fn call_log(&self, account: &str, id: &str) -> Result<Option<Vec<StoredLogLine>>> {
        let (account, id) = (account.to_string(), id.to_string());
        self.read(move |conn| history::log(conn, &account, &id))
            .await
    }
}

#[cfg(test)]
mod tests;
