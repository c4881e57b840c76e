//! Accounts and API keys.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::super::{Account, ApiKeyInfo, Result, Role, StorageError, StoredKey};
use super::{from_db, to_db};

pub(super) fn insert_account(conn: &Connection, account: &Account) -> Result<()> {
    let taken: Option<String> = conn
        .query_row(
            "SELECT id FROM accounts WHERE id = ?1 OR name = ?2",
            params![account.id, account.name],
            |row| row.get(0),
        )
        .optional()?;
    if taken.is_some() {
        return Err(StorageError::Conflict(format!(
            "an account named {:?} already exists",
            account.name
        )));
    }
    conn.execute(
        "INSERT INTO accounts (id, name, created_at) VALUES (?1, ?2, ?3)",
        params![account.id, account.name, to_db(account.created_at)],
    )?;
    Ok(())
}

fn account_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get(0)?,
        name: row.get(1)?,
        created_at: from_db(row.get(2)?),
    })
}

pub(super) fn accounts(conn: &Connection) -> Result<Vec<Account>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, name, created_at FROM accounts ORDER BY created_at, id")?;
    let rows = stmt.query_map([], account_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn account(conn: &Connection, id: &str) -> Result<Option<Account>> {
    Ok(conn
        .query_row(
            "SELECT id, name, created_at FROM accounts WHERE id = ?1",
            [id],
            account_row,
        )
        .optional()?)
}

pub(super) fn delete_account(conn: &Connection, id: &str) -> Result<bool> {
    let apps: i64 = conn.query_row(
        "SELECT COUNT(*) FROM applications WHERE account_id = ?1",
        [id],
        |row| row.get(0),
    )?;
    if apps > 0 {
        return Err(StorageError::Conflict(format!(
            "account {id} still has {apps} application(s); delete them first"
        )));
    }
    conn.execute("DELETE FROM api_keys WHERE account_id = ?1", [id])?;
    Ok(conn.execute("DELETE FROM accounts WHERE id = ?1", [id])? > 0)
}

pub(super) fn insert_key(conn: &Connection, key: &StoredKey) -> Result<()> {
    let info = &key.info;
    conn.execute(
        "INSERT INTO api_keys (id, account_id, role, name, hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            info.id,
            info.account,
            info.role.as_str(),
            info.name,
            key.hash,
            to_db(info.created_at)
        ],
    )?;
    Ok(())
}

fn key_info(row: &Row<'_>) -> rusqlite::Result<ApiKeyInfo> {
    let role: String = row.get(2)?;
    Ok(ApiKeyInfo {
        id: row.get(0)?,
        account: row.get(1)?,
        // The CHECK constraint allows only the three names.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        name: row.get(3)?,
        created_at: from_db(row.get(4)?),
    })
}

pub(super) fn key(conn: &Connection, id: &str) -> Result<Option<StoredKey>> {
    Ok(conn
        .query_row(
            "SELECT id, account_id, role, name, created_at, hash FROM api_keys WHERE id = ?1",
            [id],
            |row| {
                Ok(StoredKey {
                    info: key_info(row)?,
                    hash: row.get(5)?,
                })
            },
        )
        .optional()?)
}

pub(super) fn keys(conn: &Connection, account: &str) -> Result<Vec<ApiKeyInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, account_id, role, name, created_at FROM api_keys
         WHERE account_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([account], key_info)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn delete_key(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.execute("DELETE FROM api_keys WHERE id = ?1", [id])? > 0)
}

pub(super) fn key_count(conn: &Connection) -> Result<u64> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM api_keys", [], |row| row.get(0))?;
    Ok(from_db(count))
}
