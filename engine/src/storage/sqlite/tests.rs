use std::time::{Duration, SystemTime};

use switchboard_rules::Rule;
use switchboard_scenarios::LogLevel;

use super::*;
use crate::engine::{CallRecord, LogLine, Scope};
use crate::storage::{AppWrite, CallResult, Role};

fn account(id: &str) -> Account {
    Account {
        id: id.into(),
        name: format!("{id} inc"),
        created_at: 1,
    }
}

fn record(id: &str, account: &str, name: &str, numbers: &[&str]) -> AppRecord {
    AppRecord {
        id: id.into(),
        account: account.into(),
        name: name.into(),
        numbers: numbers.iter().map(|n| n.to_string()).collect(),
        domains: vec![],
        allowed_hosts: vec!["api.example.com".into()],
        created_at: 5,
        updated_at: 5,
    }
}

fn version(scenario: &str, version: u32, source: &str) -> AppWrite {
    AppWrite::AddVersion {
        scenario: scenario.into(),
        version,
        source: source.into(),
        sha256: format!("sha-{version}"),
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteStorage {
    SqliteStorage::open(&dir.path().join("db").join("sb.db")).unwrap()
}

#[tokio::test]
async fn applications_survive_reopening_with_versions_and_rules() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(&dir).await;
        db.create_account(account("acme")).await.unwrap();
        db.write_app(
            "app_1",
            vec![
                AppWrite::Save(record("app_1", "acme", "ivr", &["+1555"])),
                version("menu", 1, "v1"),
                version("menu", 2, "v2"),
                AppWrite::SetRules(vec![
                    Rule::new("a", "1.*", "menu"),
                    Rule::new("b", ".*", "menu").conference(true),
                ]),
            ],
        )
        .await
        .unwrap();
        db.write_app(
            "app_1",
            vec![AppWrite::SetLive {
                scenario: "menu".into(),
                version: 1,
            }],
        )
        .await
        .unwrap();
        db.set_default_app(Some("app_1".into())).await.unwrap();
    }
    let db = open(&dir).await;
    let app = db.stored_app("app_1").await.unwrap().unwrap();
    assert_eq!(app.record.numbers, vec!["+1555"]);
    assert_eq!(app.record.allowed_hosts, vec!["api.example.com"]);
    assert_eq!(app.scenarios["menu"].version, 1, "rolled back to 1");
    assert_eq!(app.scenarios["menu"].source, "v1");
    assert_eq!(app.latest["menu"], 2);
    let names: Vec<_> = app.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(app.rules[1].conference);
    let versions = db.scenario_versions("app_1", "menu").await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.live))
            .collect::<Vec<_>>(),
        [(2, false), (1, true)]
    );
    let summary = db.scenarios("app_1").await.unwrap();
    assert_eq!((summary[0].live_version, summary[0].latest_version), (1, 2));
    assert_eq!(
        db.scenario_version("app_1", "menu", Some(2))
            .await
            .unwrap()
            .unwrap()
            .source,
        "v2"
    );
    assert_eq!(db.default_app().await.unwrap().as_deref(), Some("app_1"));
    assert!(db.delete_app("app_1").await.unwrap());
    assert_eq!(db.default_app().await.unwrap(), None);
    assert!(db.stored_app("app_1").await.unwrap().is_none());
}

#[tokio::test]
async fn a_refused_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir).await;
    db.create_account(account("a")).await.unwrap();
    db.create_account(account("b")).await.unwrap();
    db.write_app(
        "app_a",
        vec![AppWrite::Save(record("app_a", "a", "x", &["100"]))],
    )
    .await
    .unwrap();
    // Number 100 belongs to app_a: the whole batch is refused.
    let err = db
        .write_app(
            "app_b",
            vec![
                AppWrite::Save(record("app_b", "b", "y", &[])),
                version("s", 1, "src"),
                AppWrite::Save(record("app_b", "b", "y", &["100"])),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)), "{err}");
    assert!(db.app("app_b").await.unwrap().is_none());
    // Same name in another account is fine; in the same account it is not.
    db.write_app(
        "app_b",
        vec![AppWrite::Save(record("app_b", "b", "x", &[]))],
    )
    .await
    .unwrap();
    let err = db
        .write_app(
            "app_c",
            vec![AppWrite::Save(record("app_c", "a", "x", &[]))],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)));
    // Version numbers are unique.
    db.write_app("app_b", vec![version("s", 1, "one")])
        .await
        .unwrap();
    assert!(db
        .write_app("app_b", vec![version("s", 1, "again")])
        .await
        .is_err());
    assert!(db
        .write_app(
            "app_b",
            vec![AppWrite::SetLive {
                scenario: "s".into(),
                version: 9
            }]
        )
        .await
        .is_err());
    assert_eq!(
        db.apps(Some("a")).await.unwrap().len(),
        1,
        "account a sees its one application"
    );
    let err = db.delete_account("a").await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict(_)));
}

#[tokio::test]
async fn keys_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir).await;
    db.create_account(account("a")).await.unwrap();
    let key = StoredKey {
        info: ApiKeyInfo {
            id: "k1".into(),
            account: "a".into(),
            role: Role::Developer,
            name: "ci".into(),
            created_at: 3,
        },
        hash: "$argon2id$...".into(),
    };
    db.create_key(key.clone()).await.unwrap();
    assert!(db.create_key(key).await.is_err(), "ids are unique");
    let found = db.key("k1").await.unwrap().unwrap();
    assert_eq!(found.info.role, Role::Developer);
    assert_eq!(db.keys("a").await.unwrap().len(), 1);
    assert_eq!(db.key_count().await.unwrap(), 1);
    assert!(db.delete_key("k1").await.unwrap());
    assert!(db.key("k1").await.unwrap().is_none());
}

fn call(id: &str, account: &str, answered: bool, started: u64) -> CallRecord {
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(started);
    CallRecord {
        id: id.into(),
        scope: Scope {
            account: account.into(),
            app: "app_1".into(),
        },
        from: "sip:alice@example.com".into(),
        to: "sip:conf_1@sb".into(),
        destination: "conf_1".into(),
        rule: Some("room".into()),
        scenario: Some("conference".into()),
        scenario_version: Some(3),
        direction: "inbound",
        started_at: at,
        answered_at: answered.then_some(at + Duration::from_millis(100)),
        ended_at: at + Duration::from_secs(2),
        end_reason: if answered { "remote-bye" } else { "cancelled" }.into(),
        sip_code: answered.then_some(200),
        log: vec![
            LogLine {
                at,
                level: LogLevel::Info,
                message: "hello".into(),
            },
            LogLine {
                at,
                level: LogLevel::Error,
                message: "oops".into(),
            },
        ],
    }
}

#[tokio::test]
async fn history_pages_filters_and_logs_per_account() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(&dir).await;
    let calls: Vec<CallRecord> = (0..5)
        .map(|i| call(&format!("c{i}"), "a", i % 2 == 0, 1000 + i))
        .chain([call("other", "b", true, 5000)])
        .collect();
    db.record_calls(calls.clone()).await.unwrap();
    db.record_calls(calls[..1].to_vec()).await.unwrap(); // stored once
    let mut filter = HistoryFilter {
        account: "a".into(),
        limit: 2,
        ..Default::default()
    };
    let first = db.history(filter.clone()).await.unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["c4", "c3"]
    );
    filter.cursor = first.next_cursor;
    let second = db.history(filter.clone()).await.unwrap();
    assert_eq!(second.items[0].id, "c2");
    filter.cursor = second.next_cursor;
    let last = db.history(filter.clone()).await.unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.next_cursor, None);

    let answered = db
        .history(HistoryFilter {
            account: "a".into(),
            result: Some(CallResult::Answered),
            since: Some(1001),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        answered
            .items
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["c4", "c2"]
    );
    let c0 = db.history_entry("a", "c0").await.unwrap().unwrap();
    assert_eq!(c0.duration_ms, 2000);
    assert_eq!(c0.scenario_version, Some(3));
    assert_eq!(c0.result, CallResult::Answered);
    assert!(db.history_entry("b", "c0").await.unwrap().is_none());
    let log = db.call_log("a", "c1").await.unwrap().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].level.as_str(), log[1].message.as_str()),
        ("error", "oops")
    );
    assert!(
        db.call_log("a", "other").await.unwrap().is_none(),
        "b's call"
    );
}
