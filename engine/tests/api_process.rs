//! The real `switchboard` binary: the first start prints an admin key once,
//! data survives a restart, `kill -9` during uploads loses no acknowledged
//! version, and `switchboard deploy examples/anyroom` makes anyroom callable.

mod api_common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api_common::{cli, examples_dir, Api, ServerProcess, HOLD_SCENARIO, T};
use reqwest::Method;
use serde_json::json;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};

/// The admin key a first start printed on stdout.
fn printed_key(server: &ServerProcess) -> String {
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(line) = server
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.trim().starts_with("sb_"))
        {
            return line.trim().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no admin key printed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn stop(mut server: ServerProcess) {
    server.signal("TERM");
    let code = tokio::task::spawn_blocking(move || server.wait_exit(T))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "a clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_restart_and_deploying_anyroom_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("switchboard.db");

    // First start: an admin key, printed once; anyroom is the default app.
    let server = ServerProcess::spawn(&db, None, &[]);
    let key = printed_key(&server);
    let api = server.api.clone();
    let me = api.get("/api/v1/me", &key).await.expect(200);
    assert_eq!(me.body["role"], "admin");
    let apps = api.get("/api/v1/applications", &key).await.expect(200);
    assert_eq!(apps.body[0]["name"], "anyroom");
    assert_eq!(apps.body[0]["default"], true);

    // Some state: an application with versions, a rollback, rules, a
    // number; and a finished call in the history.
    api.post(
        "/api/v1/applications",
        &key,
        json!({ "name": "keep", "numbers": ["7100"] }),
    )
    .await
    .expect(201);
    api.put_scenario("keep", "hold", &key, HOLD_SCENARIO)
        .await
        .expect(201);
    api.put_scenario("keep", "hold", &key, &format!("{HOLD_SCENARIO}// v2\n"))
        .await
        .expect(201);
    api.post(
        "/api/v1/applications/keep/scenarios/hold/rollback",
        &key,
        json!({ "version": 1 }),
    )
    .await
    .expect(200);
    api.post(
        "/api/v1/applications/keep/rules",
        &key,
        json!({ "name": "all", "pattern": "7.*", "scenario": "hold" }),
    )
    .await
    .expect(201);
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(&format!("sip:7100@{}", server.sip), CallOptions::default())
        .await
        .expect("the stored application answers");
    call.hangup().await.unwrap();
    api.wait_for("/api/v1/history", &key, "the call in the history", |page| {
        page["items"].as_array().unwrap().len() == 1
    })
    .await;
    stop(server).await;

    // Restart: no new key; everything is there.
    let server = ServerProcess::spawn(&db, None, &[]);
    let api = server.api.clone();
    api.get("/api/v1/me", &key).await.expect(200);
    let versions = api
        .get("/api/v1/applications/keep/scenarios/hold/versions", &key)
        .await
        .expect(200);
    let list: Vec<(u64, bool)> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["live"].as_bool().unwrap()))
        .collect();
    assert_eq!(list, [(2, false), (1, true)]);
    let keep = api.get("/api/v1/applications/keep", &key).await.expect(200);
    assert_eq!(keep.body["numbers"], json!(["7100"]));
    assert_eq!(keep.body["rules"][0]["pattern"], "7.*");
    assert!(
        !server.stdout_text().contains("sb_"),
        "the key is shown on the first start only"
    );
    let history = api.get("/api/v1/history", &key).await.expect(200);
    assert_eq!(history.body["items"][0]["destination"], "7100");
    assert_eq!(history.body["items"][0]["result"], "answered");
    let call = ua
        .call(&format!("sip:7100@{}", server.sip), CallOptions::default())
        .await
        .expect("the application is installed again after the restart");
    call.hangup().await.unwrap();

    // Without its default application, calls to anything else get 404...
    api.delete("/api/v1/applications/anyroom", &key)
        .await
        .expect(204);
    let refused = ua
        .call(
            &format!("sip:conf_1234@{}", server.sip),
            CallOptions::default(),
        )
        .await
        .expect_err("no application");
    assert_eq!(refused.status_code(), Some(404));

    // ...until `switchboard deploy examples/anyroom` puts it back.
    let url = api.base.clone();
    let anyroom = examples_dir("anyroom").display().to_string();
    let (ok, out, err) = cli(&url, &key, &["check", &anyroom]);
    assert!(ok, "{err}");
    assert!(out.contains("anyroom"), "{out}");
    let (ok, out, err) = cli(&url, &key, &["deploy", &anyroom, "--default"]);
    assert!(ok, "deploy failed: {err}");
    assert!(out.contains("application anyroom"), "{out}");
    assert!(out.contains("created"), "{out}");
    assert!(out.contains("scenario gateway v1: created"), "{out}");
    let (ok, out, err) = cli(&url, &key, &["deploy", &anyroom]);
    assert!(ok, "{err}");
    assert!(out.contains("unchanged"), "idempotent: {out}");

    let (ok, out, err) = cli(&url, &key, &["route", "anyroom", "conf_1234"]);
    assert!(ok, "{err}");
    assert!(out.contains("routes to rule room"), "{out}");
    let (ok, out, _) = cli(&url, &key, &["route", "anyroom", "5551234"]);
    assert!(ok);
    assert!(
        out.contains("room: pattern does not match") && out.contains("rule gateway"),
        "{out}"
    );

    let caller = ua
        .call(
            &format!("sip:conf_1234@{}", server.sip),
            CallOptions::default(),
        )
        .await
        .expect("the deployed anyroom answers");
    caller.wait_for_speech(T).await.unwrap();
    let (ok, out, err) = cli(&url, &key, &["calls"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("conf_1234") && out.contains("room → conference v1"),
        "{out}"
    );
    let id = out.split_whitespace().next().unwrap().to_string();
    let (ok, _, err) = cli(&url, &key, &["logs", &id]);
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&url, &key, &["apps"]);
    assert!(ok);
    assert!(out.contains("anyroom (default)"), "{out}");
    caller.hangup().await.unwrap();

    // CLI errors are readable and fail the command.
    let (ok, _, err) = cli(&url, "sb_wrongwrongw_key", &["calls"]);
    assert!(!ok);
    assert!(
        err.contains("invalid API key") && err.contains("401"),
        "{err}"
    );
    let broken = tempfile::tempdir().unwrap();
    std::fs::write(
        broken.path().join("app.toml"),
        "name = \"broken\"\n[[rules]]\nname = \"all\"\npattern = \".*\"\nscenario = \"main\"\n",
    )
    .unwrap();
    std::fs::write(
        broken.path().join("main.js"),
        "export default {\n  oops(\n};\n",
    )
    .unwrap();
    let (ok, _, err) = cli(
        &url,
        &key,
        &["deploy", &broken.path().display().to_string()],
    );
    assert!(!ok);
    assert!(
        err.contains("compile_error") && err.contains("line"),
        "{err}"
    );
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_uploads_loses_no_acknowledged_version() {
    const KEY: &str = "an-operator-chosen-admin-key-0123456789";
    const WRITERS: usize = 3;
    const ACKED_BEFORE_KILL: usize = 45;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("switchboard.db");
    let mut server = ServerProcess::spawn(&db, Some(KEY), &[]);
    let api = server.api.clone();
    api.post("/api/v1/applications", KEY, json!({ "name": "churn" }))
        .await
        .expect(201);
    assert!(
        !server.stdout_text().contains("sb_"),
        "no key is created when SWITCHBOARD_ADMIN_KEY is set"
    );

    // Writers upload new versions as fast as they can; every 201 is an
    // acknowledged write: (scenario, version) → source.
    let acked: Arc<Mutex<BTreeMap<(String, u64), String>>> = Default::default();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let api: Api = api.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0.. {
                let name = format!("s{w}");
                let source = format!("// writer {w}, upload {n}\n{HOLD_SCENARIO}");
                let response = http
                    .put(format!(
                        "{}/api/v1/applications/churn/scenarios/{name}",
                        api.base
                    ))
                    .bearer_auth(KEY)
                    .header("content-type", "application/javascript")
                    .body(source.clone())
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status() != 201 {
                    return;
                }
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                let version = body["version"].as_u64().unwrap();
                acked.lock().unwrap().insert((name, version), source);
            }
        }));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < ACKED_BEFORE_KILL {
        assert!(
            tokio::time::Instant::now() < deadline,
            "uploads too slow: {} acknowledged",
            acked.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-flight: the writers are still sending.
    server.signal("KILL");
    let code = tokio::task::spawn_blocking(move || server.wait_exit(T))
        .await
        .unwrap();
    assert_eq!(code, None, "killed by a signal");
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    println!("{} uploads acknowledged before kill -9", acked.len());

    // Everything acknowledged is there, byte for byte.
    let server = ServerProcess::spawn(&db, Some(KEY), &[]);
    let api = server.api.clone();
    let mut newest: BTreeMap<String, u64> = BTreeMap::new();
    for ((name, version), source) in &acked {
        let stored = api
            .get(
                &format!("/api/v1/applications/churn/scenarios/{name}/versions/{version}"),
                KEY,
            )
            .await
            .expect(200);
        assert_eq!(stored.body["source"].as_str(), Some(source.as_str()));
        let top = newest.entry(name.clone()).or_default();
        *top = (*top).max(*version);
    }
    for (name, version) in newest {
        let live = api
            .get(&format!("/api/v1/applications/churn/scenarios/{name}"), KEY)
            .await
            .expect(200);
        assert!(
            live.body["version"].as_u64().unwrap() >= version,
            "{name}: live {} < acknowledged {version}",
            live.body["version"]
        );
    }
    let health = api
        .send(Method::GET, "/health", None, None)
        .await
        .expect(200);
    assert_eq!(health.body["status"], "ok");
    stop(server).await;
}
