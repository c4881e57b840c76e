//! Schema migrations, run at open. `PRAGMA user_version` holds how many
//! have been applied; each runs in its own transaction with its bump, so a
//! crash mid-way leaves the schema at a known version.

use rusqlite::{Connection, TransactionBehavior};

use super::super::{Result, StorageError};

/// Every migration, in order. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, keys, applications, scenarios with versions, rules,
    //    numbers and domains, settings, call history and logs.
    r#"
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        role        TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'viewer')),
        name        TEXT NOT NULL,
        hash        TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE INDEX api_keys_account ON api_keys(account_id);
    CREATE TABLE applications (
        id            TEXT PRIMARY KEY,
        account_id    TEXT NOT NULL REFERENCES accounts(id),
        name          TEXT NOT NULL,
        allowed_hosts TEXT NOT NULL DEFAULT '[]',
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        UNIQUE (account_id, name)
    );
    CREATE TABLE app_numbers (
        number  TEXT PRIMARY KEY,
        app_id  TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE
    );
    CREATE INDEX app_numbers_app ON app_numbers(app_id);
    CREATE TABLE app_domains (
        domain  TEXT PRIMARY KEY,
        app_id  TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE
    );
    CREATE INDEX app_domains_app ON app_domains(app_id);
    CREATE TABLE scenarios (
        app_id        TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
        name          TEXT NOT NULL,
        live_version  INTEGER NOT NULL,
        PRIMARY KEY (app_id, name)
    );
    CREATE TABLE scenario_versions (
        app_id      TEXT NOT NULL,
        name        TEXT NOT NULL,
        version     INTEGER NOT NULL,
        source      TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (app_id, name, version),
        FOREIGN KEY (app_id, name) REFERENCES scenarios(app_id, name) ON DELETE CASCADE
    );
    CREATE TABLE rules (
        app_id      TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
        position    INTEGER NOT NULL,
        name        TEXT NOT NULL,
        pattern     TEXT NOT NULL,
        exclude     TEXT,
        scenario    TEXT NOT NULL,
        conference  INTEGER NOT NULL,
        enabled     INTEGER NOT NULL,
        PRIMARY KEY (app_id, name)
    );
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    CREATE TABLE calls (
        seq               INTEGER PRIMARY KEY AUTOINCREMENT,
        id                TEXT NOT NULL UNIQUE,
        account_id        TEXT NOT NULL,
        app_id            TEXT NOT NULL,
        from_uri          TEXT NOT NULL,
        to_uri            TEXT NOT NULL,
        destination       TEXT NOT NULL,
        rule              TEXT,
        scenario          TEXT,
        scenario_version  INTEGER,
        direction         TEXT NOT NULL,
        result            TEXT NOT NULL,
        started_at        INTEGER NOT NULL,
        answered_at       INTEGER,
        ended_at          INTEGER NOT NULL,
        end_reason        TEXT NOT NULL,
        sip_code          INTEGER
    );
    CREATE INDEX calls_account ON calls(account_id, seq);
    CREATE INDEX calls_app ON calls(app_id, seq);
    CREATE TABLE call_log (
        call_seq  INTEGER NOT NULL REFERENCES calls(seq) ON DELETE CASCADE,
        line      INTEGER NOT NULL,
        at        INTEGER NOT NULL,
        level     TEXT NOT NULL,
        message   TEXT NOT NULL,
        PRIMARY KEY (call_seq, line)
    );
    "#,
];

/// Applies the migrations the database lacks.
pub(super) fn run(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StorageError::TooNew { found, known });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = index + 1, "database schema migrated");
    }
    Ok(())
}
