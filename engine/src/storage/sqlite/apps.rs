//! Applications: records, numbers and domains, scenarios and their
//! versions, rules, the default application.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Row};
use switchboard_rules::Rule;

use super::super::{
    AppRecord, AppWrite, Result, ScenarioSummary, ScenarioVersion, StorageError, StoredApp,
    VersionInfo,
};
use super::{from_db, to_db};
use crate::engine::events::unix_ms;

const DEFAULT_APP: &str = "default_app";

const RECORD_COLUMNS: &str = "id, account_id, name, allowed_hosts, created_at, updated_at";

/// A record without its numbers and domains (filled by [`complete`]).
fn record_row(row: &Row<'_>) -> rusqlite::Result<AppRecord> {
    let hosts: String = row.get(3)?;
    Ok(AppRecord {
        id: row.get(0)?,
        account: row.get(1)?,
        name: row.get(2)?,
        numbers: Vec::new(),
        domains: Vec::new(),
        allowed_hosts: serde_json::from_str(&hosts).unwrap_or_default(),
        created_at: from_db(row.get(4)?),
        updated_at: from_db(row.get(5)?),
    })
}

fn strings(conn: &Connection, sql: &str, app: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([app], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn complete(conn: &Connection, mut record: AppRecord) -> Result<AppRecord> {
    record.numbers = strings(
        conn,
        "SELECT number FROM app_numbers WHERE app_id = ?1 ORDER BY number",
        &record.id,
    )?;
    record.domains = strings(
        conn,
        "SELECT domain FROM app_domains WHERE app_id = ?1 ORDER BY domain",
        &record.id,
    )?;
    Ok(record)
}

pub(super) fn records(conn: &Connection, account: Option<&str>) -> Result<Vec<AppRecord>> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM applications
         WHERE ?1 IS NULL OR account_id = ?1 ORDER BY account_id, name"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([account], record_row)?;
    let records: Vec<AppRecord> = rows.collect::<rusqlite::Result<_>>()?;
    records.into_iter().map(|r| complete(conn, r)).collect()
}

pub(super) fn record(conn: &Connection, id: &str) -> Result<Option<AppRecord>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM applications WHERE id = ?1");
    let found = conn.query_row(&sql, [id], record_row).optional()?;
    found.map(|r| complete(conn, r)).transpose()
}

pub(super) fn record_by_name(
    conn: &Connection,
    account: &str,
    name: &str,
) -> Result<Option<AppRecord>> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM applications WHERE account_id = ?1 AND name = ?2");
    let found = conn
        .query_row(&sql, params![account, name], record_row)
        .optional()?;
    found.map(|r| complete(conn, r)).transpose()
}

fn rules(conn: &Connection, app: &str) -> Result<Vec<Rule>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, pattern, exclude, scenario, conference, enabled FROM rules
         WHERE app_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map([app], |row| {
        Ok(Rule {
            name: row.get(0)?,
            pattern: row.get(1)?,
            exclude: row.get(2)?,
            scenario: row.get(3)?,
            conference: row.get(4)?,
            enabled: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn version_row(row: &Row<'_>) -> rusqlite::Result<ScenarioVersion> {
    Ok(ScenarioVersion {
        name: row.get(0)?,
        version: row.get(1)?,
        source: row.get(2)?,
        sha256: row.get(3)?,
        created_at: from_db(row.get(4)?),
    })
}

pub(super) fn stored_app(conn: &Connection, id: &str) -> Result<Option<StoredApp>> {
    let Some(record) = record(conn, id)? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT v.name, v.version, v.source, v.sha256, v.created_at
         FROM scenarios s JOIN scenario_versions v
           ON v.app_id = s.app_id AND v.name = s.name AND v.version = s.live_version
         WHERE s.app_id = ?1",
    )?;
    let scenarios = stmt
        .query_map([id], version_row)?
        .map(|v| v.map(|v| (v.name.clone(), v)))
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT name, MAX(version) FROM scenario_versions WHERE app_id = ?1 GROUP BY name",
    )?;
    let latest = stmt
        .query_map([id], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<BTreeMap<_, _>>>()?;
    Ok(Some(StoredApp {
        rules: rules(conn, id)?,
        record,
        scenarios,
        latest,
    }))
}

pub(super) fn write(conn: &Connection, app_id: &str, writes: Vec<AppWrite>) -> Result<()> {
    for change in writes {
        match change {
            AppWrite::Save(record) => save(conn, app_id, &record)?,
            AppWrite::AddVersion {
                scenario,
                version,
                source,
                sha256,
            } => {
                conn.execute(
                    "INSERT OR IGNORE INTO scenarios (app_id, name, live_version) VALUES (?1, ?2, ?3)",
                    params![app_id, scenario, version],
                )?;
                conn.execute(
                    "INSERT INTO scenario_versions (app_id, name, version, source, sha256, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![app_id, scenario, version, source, sha256, to_db(unix_ms(std::time::SystemTime::now()))],
                )?;
                set_live(conn, app_id, &scenario, version)?;
            }
            AppWrite::SetLive { scenario, version } => {
                set_live(conn, app_id, &scenario, version)?;
            }
            AppWrite::DeleteScenario { scenario } => {
                conn.execute(
                    "DELETE FROM scenario_versions WHERE app_id = ?1 AND name = ?2",
                    params![app_id, scenario],
                )?;
                conn.execute(
                    "DELETE FROM scenarios WHERE app_id = ?1 AND name = ?2",
                    params![app_id, scenario],
                )?;
            }
            AppWrite::SetRules(rules) => {
                conn.execute("DELETE FROM rules WHERE app_id = ?1", [app_id])?;
                let mut stmt = conn.prepare_cached(
                    "INSERT INTO rules (app_id, position, name, pattern, exclude, scenario, conference, enabled)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (position, rule) in rules.iter().enumerate() {
                    stmt.execute(params![
                        app_id,
                        position as i64,
                        rule.name,
                        rule.pattern,
                        rule.exclude,
                        rule.scenario,
                        rule.conference,
                        rule.enabled
                    ])?;
                }
            }
        }
    }
    conn.execute(
        "UPDATE applications SET updated_at = ?2 WHERE id = ?1",
        params![app_id, to_db(unix_ms(std::time::SystemTime::now()))],
    )?;
    Ok(())
}

fn set_live(conn: &Connection, app_id: &str, scenario: &str, version: u32) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM scenario_versions WHERE app_id = ?1 AND name = ?2 AND version = ?3",
            params![app_id, scenario, version],
            |row| row.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(StorageError::Conflict(format!(
            "scenario {scenario} has no version {version}"
        )));
    }
    conn.execute(
        "UPDATE scenarios SET live_version = ?3 WHERE app_id = ?1 AND name = ?2",
        params![app_id, scenario, version],
    )?;
    Ok(())
}

/// Inserts or updates the record; replaces its numbers and domains, which
/// no other application may hold.
fn save(conn: &Connection, app_id: &str, record: &AppRecord) -> Result<()> {
    let clash: Option<String> = conn
        .query_row(
            "SELECT id FROM applications WHERE account_id = ?1 AND name = ?2 AND id != ?3",
            params![record.account, record.name, app_id],
            |row| row.get(0),
        )
        .optional()?;
    if clash.is_some() {
        return Err(StorageError::Conflict(format!(
            "an application named {:?} already exists in this account",
            record.name
        )));
    }
    for (table, column, values) in [
        ("app_numbers", "number", &record.numbers),
        ("app_domains", "domain", &record.domains),
    ] {
        let sql = format!("SELECT app_id FROM {table} WHERE {column} = ?1 AND app_id != ?2");
        for value in values {
            let owner: Option<String> = conn
                .query_row(&sql, params![value, app_id], |row| row.get(0))
                .optional()?;
            if owner.is_some() {
                // Which application holds it is not ours to tell.
                return Err(StorageError::Conflict(format!(
                    "{column} {value:?} already reaches another application"
                )));
            }
        }
    }
    let hosts = serde_json::to_string(&record.allowed_hosts)
        .map_err(|e| StorageError::Database(e.to_string()))?;
    conn.execute(
        "INSERT INTO applications (id, account_id, name, allowed_hosts, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name,
             allowed_hosts = excluded.allowed_hosts, updated_at = excluded.updated_at",
        params![
            app_id,
            record.account,
            record.name,
            hosts,
            to_db(record.created_at),
            to_db(record.updated_at)
        ],
    )?;
    conn.execute("DELETE FROM app_numbers WHERE app_id = ?1", [app_id])?;
    conn.execute("DELETE FROM app_domains WHERE app_id = ?1", [app_id])?;
    for number in &record.numbers {
        conn.execute(
            "INSERT INTO app_numbers (number, app_id) VALUES (?1, ?2)",
            params![number, app_id],
        )?;
    }
    for domain in &record.domains {
        conn.execute(
            "INSERT INTO app_domains (domain, app_id) VALUES (?1, ?2)",
            params![domain, app_id],
        )?;
    }
    Ok(())
}

pub(super) fn delete(conn: &Connection, id: &str) -> Result<bool> {
    for sql in [
        "DELETE FROM app_numbers WHERE app_id = ?1",
        "DELETE FROM app_domains WHERE app_id = ?1",
        "DELETE FROM rules WHERE app_id = ?1",
        "DELETE FROM scenario_versions WHERE app_id = ?1",
        "DELETE FROM scenarios WHERE app_id = ?1",
    ] {
        conn.execute(sql, [id])?;
    }
    conn.execute(
        "DELETE FROM settings WHERE key = ?1 AND value = ?2",
        params![DEFAULT_APP, id],
    )?;
    Ok(conn.execute("DELETE FROM applications WHERE id = ?1", [id])? > 0)
}

pub(super) fn default_app(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT value FROM settings WHERE key = ?1",
            [DEFAULT_APP],
            |row| row.get(0),
        )
        .optional()?)
}

pub(super) fn set_default_app(conn: &Connection, id: Option<&str>) -> Result<()> {
    match id {
        Some(id) => conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![DEFAULT_APP, id],
        )?,
        None => conn.execute("DELETE FROM settings WHERE key = ?1", [DEFAULT_APP])?,
    };
    Ok(())
}

pub(super) fn scenarios(conn: &Connection, app: &str) -> Result<Vec<ScenarioSummary>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.name, s.live_version,
                (SELECT MAX(version) FROM scenario_versions m WHERE m.app_id = s.app_id AND m.name = s.name),
                LENGTH(CAST(v.source AS BLOB)), v.sha256, v.created_at
         FROM scenarios s JOIN scenario_versions v
           ON v.app_id = s.app_id AND v.name = s.name AND v.version = s.live_version
         WHERE s.app_id = ?1 ORDER BY s.name",
    )?;
    let rows = stmt.query_map([app], |row| {
        Ok(ScenarioSummary {
            name: row.get(0)?,
            live_version: row.get(1)?,
            latest_version: row.get(2)?,
            size: from_db(row.get(3)?),
            sha256: row.get(4)?,
            updated_at: from_db(row.get(5)?),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn scenario_version(
    conn: &Connection,
    app: &str,
    name: &str,
    version: Option<u32>,
) -> Result<Option<ScenarioVersion>> {
    Ok(conn
        .query_row(
            "SELECT v.name, v.version, v.source, v.sha256, v.created_at
             FROM scenario_versions v JOIN scenarios s ON s.app_id = v.app_id AND s.name = v.name
             WHERE v.app_id = ?1 AND v.name = ?2 AND v.version = COALESCE(?3, s.live_version)",
            params![app, name, version],
            version_row,
        )
        .optional()?)
}

pub(super) fn scenario_versions(
    conn: &Connection,
    app: &str,
    name: &str,
) -> Result<Vec<VersionInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.version, LENGTH(CAST(v.source AS BLOB)), v.sha256, v.created_at,
                v.version = s.live_version
         FROM scenario_versions v JOIN scenarios s ON s.app_id = v.app_id AND s.name = v.name
         WHERE v.app_id = ?1 AND v.name = ?2 ORDER BY v.version DESC",
    )?;
    let rows = stmt.query_map(params![app, name], |row| {
        Ok(VersionInfo {
            version: row.get(0)?,
            size: from_db(row.get(1)?),
            sha256: row.get(2)?,
            created_at: from_db(row.get(3)?),
            live: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
