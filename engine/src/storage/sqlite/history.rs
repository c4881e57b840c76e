//! Call history (CDRs) and call logs.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::super::{CallResult, HistoryEntry, HistoryFilter, HistoryPage, Result, StoredLogLine};
use super::{from_db, to_db};
use crate::engine::events::{level_name, unix_ms};
use crate::engine::CallRecord;

const COLUMNS: &str = "seq, id, account_id, app_id, from_uri, to_uri, destination, rule, scenario,
    scenario_version, direction, result, started_at, answered_at, ended_at, end_reason, sip_code";

pub(super) fn insert(conn: &Connection, records: &[CallRecord]) -> Result<()> {
    let mut call = conn.prepare_cached(
        "INSERT OR IGNORE INTO calls (id, account_id, app_id, from_uri, to_uri, destination,
             rule, scenario, scenario_version, direction, result, started_at, answered_at,
             ended_at, end_reason, sip_code)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    let mut line = conn.prepare_cached(
        "INSERT INTO call_log (call_seq, line, at, level, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for record in records {
        let result = CallResult::of(
            record.answered_at.is_some(),
            &record.end_reason,
            record.sip_code,
        );
        let inserted = call.execute(params![
            record.id,
            record.scope.account,
            record.scope.app,
            record.from,
            record.to,
            record.destination,
            record.rule,
            record.scenario,
            record.scenario_version,
            record.direction,
            result.as_str(),
            to_db(unix_ms(record.started_at)),
            record.answered_at.map(|t| to_db(unix_ms(t))),
            to_db(unix_ms(record.ended_at)),
            record.end_reason,
            record.sip_code,
        ])?;
        if inserted == 0 {
            continue;
        }
        let seq = conn.last_insert_rowid();
        for (n, entry) in record.log.iter().enumerate() {
            line.execute(params![
                seq,
                n as i64,
                to_db(unix_ms(entry.at)),
                level_name(entry.level),
                entry.message
            ])?;
        }
    }
    Ok(())
}

fn entry_row(row: &Row<'_>) -> rusqlite::Result<(i64, HistoryEntry)> {
    let result: String = row.get(11)?;
    let started_at = from_db(row.get(12)?);
    let ended_at = from_db(row.get(14)?);
    Ok((
        row.get(0)?,
        HistoryEntry {
            id: row.get(1)?,
            account: row.get(2)?,
            application: row.get(3)?,
            from: row.get(4)?,
            to: row.get(5)?,
            destination: row.get(6)?,
            rule: row.get(7)?,
            scenario: row.get(8)?,
            scenario_version: row.get(9)?,
            direction: row.get(10)?,
            result: CallResult::parse(&result).unwrap_or(CallResult::Failed),
            started_at,
            answered_at: row.get::<_, Option<i64>>(13)?.map(from_db),
            ended_at,
            duration_ms: ended_at.saturating_sub(started_at),
            end_reason: row.get(15)?,
            sip_code: row.get(16)?,
        },
    ))
}

pub(super) fn page(conn: &Connection, filter: &HistoryFilter) -> Result<HistoryPage> {
    let mut clauses = vec!["account_id = ?".to_string()];
    let mut values = vec![Value::Text(filter.account.clone())];
    let mut add = |clause: &str, value: Value| {
        clauses.push(clause.to_string());
        values.push(value);
    };
    if let Some(app) = &filter.application {
        add("app_id = ?", Value::Text(app.clone()));
    }
    if let Some(destination) = &filter.destination {
        add("destination = ?", Value::Text(destination.clone()));
    }
    if let Some(from) = &filter.from {
        add("instr(from_uri, ?) > 0", Value::Text(from.clone()));
    }
    if let Some(to) = &filter.to {
        add("instr(to_uri, ?) > 0", Value::Text(to.clone()));
    }
    if let Some(result) = filter.result {
        add("result = ?", Value::Text(result.as_str().to_string()));
    }
    if let Some(since) = filter.since {
        add("started_at >= ?", Value::Integer(to_db(since)));
    }
    if let Some(until) = filter.until {
        add("started_at < ?", Value::Integer(to_db(until)));
    }
    if let Some(cursor) = filter.cursor {
        add("seq < ?", Value::Integer(cursor));
    }
    let limit = filter.limit.max(1);
    values.push(Value::Integer(i64::from(limit) + 1));
    let sql = format!(
        "SELECT {COLUMNS} FROM calls WHERE {} ORDER BY seq DESC LIMIT ?",
        clauses.join(" AND ")
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(values), entry_row)?;
    let mut rows: Vec<(i64, HistoryEntry)> = rows.collect::<rusqlite::Result<_>>()?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|(seq, _)| *seq)
    } else {
        None
    };
    Ok(HistoryPage {
        items: rows.into_iter().map(|(_, entry)| entry).collect(),
        next_cursor,
    })
}

pub(super) fn entry(conn: &Connection, account: &str, id: &str) -> Result<Option<HistoryEntry>> {
    let sql = format!("SELECT {COLUMNS} FROM calls WHERE account_id = ?1 AND id = ?2");
    Ok(conn
        .query_row(&sql, params![account, id], entry_row)
        .optional()?
        .map(|(_, entry)| entry))
}

pub(super) fn log(
    conn: &Connection,
    account: &str,
    id: &str,
) -> Result<Option<Vec<StoredLogLine>>> {
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM calls WHERE account_id = ?1 AND id = ?2",
            params![account, id],
            |row| row.get(0),
        )
        .optional()?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT at, level, message FROM call_log WHERE call_seq = ?1 ORDER BY line",
    )?;
    let rows = stmt.query_map([seq], |row| {
        Ok(StoredLogLine {
            at: from_db(row.get(0)?),
            level: row.get(1)?,
            message: row.get(2)?,
        })
    })?;
    Ok(Some(rows.collect::<rusqlite::Result<_>>()?))
}
