//! The management API over real HTTP: every endpoint, its errors, and the
//! error shape (in-process server, SQLite in a temporary directory).

mod api_common;

use api_common::{Api, TestServer, ADMIN_KEY, HOLD_SCENARIO};
use reqwest::Method;
use serde_json::{json, Value};

const SAY_HI: &str = "export default { async onCall(call) { await call.answer(); } };";

/// A developer key of a fresh account and an application in it.
async fn developer_app(api: &Api, account: &str, app: &str) -> String {
    let (_, key) = api.tenant(ADMIN_KEY, account, "developer").await;
    api.post("/api/v1/applications", &key, json!({ "name": app }))
        .await
        .expect(201);
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wrong_and_read_only_keys_change_nothing() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let dev = developer_app(api, "acme", "ivr").await;
    let (_, viewer) = {
        let account = api.get("/api/v1/me", &dev).await.expect(200).body["account"]
            .as_str()
            .unwrap()
            .to_string();
        (
            account.clone(),
            api.key(ADMIN_KEY, &account, "viewer").await,
        )
    };

    // No key, a malformed header, a wrong key: 401 with WWW-Authenticate.
    let none = api
        .send(Method::GET, "/api/v1/applications", None, None)
        .await;
    none.expect_error(401, "unauthorized");
    let basic = api
        .send_raw(
            Method::GET,
            "/api/v1/applications",
            None,
            "application/json",
            "",
        )
        .await;
    basic.expect_error(401, "unauthorized");
    api.get("/api/v1/applications", "sb_nosuchkey00_secret")
        .await
        .expect_error(401, "unauthorized");
    let forged = format!("{}x", &dev[..dev.len() - 1]);
    api.get("/api/v1/applications", &forged)
        .await
        .expect_error(401, "unauthorized");
    api.put_scenario("ivr", "menu", "garbage-key", SAY_HI)
        .await
        .expect_error(401, "unauthorized");

    // A viewer reads but never writes; a refused write changes nothing.
    api.get("/api/v1/applications/ivr", &viewer)
        .await
        .expect(200);
    api.put_scenario("ivr", "menu", &viewer, SAY_HI)
        .await
        .expect_error(403, "forbidden");
    api.post("/api/v1/applications", &viewer, json!({ "name": "sneaky" }))
        .await
        .expect_error(403, "forbidden");
    api.delete("/api/v1/applications/ivr", &viewer)
        .await
        .expect_error(403, "forbidden");
    // Even an oversized body from a viewer is refused for the role first.
    let big = "x".repeat(2 * 1024 * 1024);
    api.put_scenario("ivr", "menu", &viewer, &big)
        .await
        .expect_error(403, "forbidden");
    let detail = api.get("/api/v1/applications/ivr", &dev).await.expect(200);
    assert_eq!(detail.body["scenarios"], json!([]));
    assert_eq!(
        api.get("/api/v1/applications", &dev)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Developers are not admins.
    api.get("/api/v1/accounts", &dev)
        .await
        .expect_error(403, "forbidden");
    api.post(
        "/api/v1/keys",
        &dev,
        json!({ "name": "mine", "role": "admin" }),
    )
    .await
    .expect_error(403, "forbidden");
    api.patch("/api/v1/applications/ivr", &dev, json!({ "default": true }))
        .await
        .expect_error(403, "forbidden");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_keys() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let me = api.get("/api/v1/me", ADMIN_KEY).await.expect(200);
    assert_eq!(me.body["role"], "admin");
    assert_eq!(me.body["account"], "default");

    let created = api
        .post("/api/v1/accounts", ADMIN_KEY, json!({ "name": "globex" }))
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("acc_"));
    api.post("/api/v1/accounts", ADMIN_KEY, json!({ "name": "globex" }))
        .await
        .expect_error(409, "conflict");
    api.post(
        "/api/v1/accounts",
        ADMIN_KEY,
        json!({ "name": "bad name!" }),
    )
    .await
    .expect_error(400, "invalid_request");
    let accounts = api.get("/api/v1/accounts", ADMIN_KEY).await.expect(200);
    assert_eq!(accounts.body.as_array().unwrap().len(), 2);
    api.get(&format!("/api/v1/accounts/{id}"), ADMIN_KEY)
        .await
        .expect(200);
    api.get("/api/v1/accounts/acc_nope", ADMIN_KEY)
        .await
        .expect_error(404, "not_found");

    // A key is shown once; listings never show secrets.
    let key = api
        .post(
            "/api/v1/keys",
            ADMIN_KEY,
            json!({ "name": "ci", "role": "developer", "account": id }),
        )
        .await
        .expect(201);
    let secret = key.body["key"].as_str().unwrap().to_string();
    let key_id = key.body["id"].as_str().unwrap().to_string();
    assert!(secret.starts_with(&format!("sb_{key_id}_")));
    let me = api.get("/api/v1/me", &secret).await.expect(200);
    assert_eq!(me.body["account"], id.as_str());
    assert_eq!(me.body["role"], "developer");
    let keys = api
        .get(&format!("/api/v1/keys?account={id}"), ADMIN_KEY)
        .await
        .expect(200);
    assert_eq!(keys.body.as_array().unwrap().len(), 1);
    assert!(!keys.text.contains(&secret[10..]), "no secret in listings");
    assert!(!keys.text.contains("argon2"), "no hash in listings");
    api.post(
        "/api/v1/keys",
        ADMIN_KEY,
        json!({ "name": "x", "role": "root" }),
    )
    .await
    .expect_error(400, "invalid_json");
    api.post(
        "/api/v1/keys",
        ADMIN_KEY,
        json!({ "name": "x", "role": "viewer", "account": "acc_nope" }),
    )
    .await
    .expect_error(404, "not_found");

    // An account with applications cannot go; its keys go with it.
    api.post("/api/v1/applications", &secret, json!({ "name": "app" }))
        .await
        .expect(201);
    api.delete(&format!("/api/v1/accounts/{id}"), ADMIN_KEY)
        .await
        .expect_error(409, "conflict");
    api.delete("/api/v1/accounts/default", ADMIN_KEY)
        .await
        .expect_error(409, "conflict");
    api.delete("/api/v1/applications/app", &secret)
        .await
        .expect(204);
    api.delete(&format!("/api/v1/keys/{key_id}"), ADMIN_KEY)
        .await
        .expect(204);
    api.get("/api/v1/me", &secret)
        .await
        .expect_error(401, "unauthorized");
    api.delete(&format!("/api/v1/keys/{key_id}"), ADMIN_KEY)
        .await
        .expect_error(404, "not_found");
    api.delete(&format!("/api/v1/accounts/{id}"), ADMIN_KEY)
        .await
        .expect(204);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applications_numbers_domains_and_the_default() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let (_, dev) = api.tenant(ADMIN_KEY, "initech", "developer").await;
    let created = api
        .post(
            "/api/v1/applications",
            &dev,
            json!({ "name": "support", "numbers": ["+15550100"], "domains": ["Support.Example.com"] }),
        )
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("app_"));
    assert_eq!(created.body["domains"], json!(["support.example.com"]));
    assert_eq!(created.body["default"], false);
    api.post("/api/v1/applications", &dev, json!({ "name": "support" }))
        .await
        .expect_error(409, "conflict");
    api.post("/api/v1/applications", &dev, json!({ "name": "app_x" }))
        .await
        .expect_error(400, "invalid_request");
    api.post(
        "/api/v1/applications",
        &dev,
        json!({ "name": "other", "numbers": ["+15550100"] }),
    )
    .await
    .expect_error(409, "conflict");
    api.post(
        "/api/v1/applications",
        &dev,
        json!({ "name": "other", "domains": ["not a domain"] }),
    )
    .await
    .expect_error(400, "invalid_request");

    // By id or by name.
    let by_id = api
        .get(&format!("/api/v1/applications/{id}"), &dev)
        .await
        .expect(200);
    let by_name = api
        .get("/api/v1/applications/support", &dev)
        .await
        .expect(200);
    assert_eq!(by_id.body, by_name.body);
    api.get("/api/v1/applications/nope", &dev)
        .await
        .expect_error(404, "not_found");

    // Numbers and domains.
    let numbers = api
        .post(
            "/api/v1/applications/support/numbers",
            &dev,
            json!({ "number": "+15550101" }),
        )
        .await
        .expect(201);
    assert_eq!(numbers.body["numbers"], json!(["+15550100", "+15550101"]));
    api.delete("/api/v1/applications/support/numbers/+15550100", &dev)
        .await
        .expect(204);
    api.delete("/api/v1/applications/support/numbers/+15550100", &dev)
        .await
        .expect_error(404, "not_found");
    let numbers = api
        .get("/api/v1/applications/support/numbers", &dev)
        .await
        .expect(200);
    assert_eq!(numbers.body["numbers"], json!(["+15550101"]));
    api.post(
        "/api/v1/applications/support/domains",
        &dev,
        json!({ "domain": "help.example.com" }),
    )
    .await
    .expect(201);
    api.delete(
        "/api/v1/applications/support/domains/support.example.com",
        &dev,
    )
    .await
    .expect(204);
    let domains = api
        .get("/api/v1/applications/support/domains", &dev)
        .await
        .expect(200);
    assert_eq!(domains.body["domains"], json!(["help.example.com"]));

    // Rename, allowed hosts; then the registry routes by the new number.
    let patched = api
        .patch(
            "/api/v1/applications/support",
            &dev,
            json!({ "name": "helpdesk", "allowed_hosts": ["api.example.com"] }),
        )
        .await
        .expect(200);
    assert_eq!(patched.body["name"], "helpdesk");
    assert_eq!(patched.body["allowed_hosts"], json!(["api.example.com"]));
    let installed = sb.server.engine().apps().routes(&id).unwrap();
    assert_eq!(installed.numbers, ["+15550101"]);
    assert_eq!(installed.domains, ["help.example.com"]);

    // The default application: admin only.
    let default = api
        .patch(&format!("/api/v1/applications/{id}"), ADMIN_KEY, json!({}))
        .await;
    default.expect_error(404, "not_found"); // the admin's account is another
    let anyroom = api.get("/api/v1/applications", ADMIN_KEY).await.expect(200);
    assert_eq!(anyroom.body[0]["name"], "anyroom");
    assert_eq!(
        anyroom.body[0]["default"], true,
        "first start installs anyroom"
    );
    api.patch(
        "/api/v1/applications/anyroom",
        ADMIN_KEY,
        json!({ "default": false }),
    )
    .await
    .expect(200);
    assert_eq!(sb.server.engine().apps().default_app(), None);
    api.patch(
        "/api/v1/applications/anyroom",
        ADMIN_KEY,
        json!({ "default": true }),
    )
    .await
    .expect(200);
    assert!(sb.server.engine().apps().default_app().is_some());

    api.delete("/api/v1/applications/helpdesk", &dev)
        .await
        .expect(204);
    assert!(sb.server.engine().apps().get(&id).is_none());
    api.get("/api/v1/applications/helpdesk", &dev)
        .await
        .expect_error(404, "not_found");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_are_compiled_versioned_and_rolled_back() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let dev = developer_app(api, "acme", "ivr").await;
    let v1 = "export default { async onCall(call) { await call.answer(); } };";
    let v2 = "export default { async onCall(call) { await call.reject(486); } };";

    let up = api.put_scenario("ivr", "menu", &dev, v1).await.expect(201);
    assert_eq!(
        up.body,
        json!({ "name": "menu", "version": 1, "created": true })
    );
    let same = api.put_scenario("ivr", "menu", &dev, v1).await.expect(200);
    assert_eq!(same.body["created"], false);
    assert_eq!(same.body["version"], 1);

    // A broken upload: the compiler's message and line; v1 stays live.
    let broken = "export default {\n  async onCall(call) {\n    await call.answer(;\n  }\n};\n";
    let refused = api
        .put_scenario("ivr", "menu", &dev, broken)
        .await
        .expect_error(400, "compile_error");
    let details = &refused.body["error"]["details"];
    assert_eq!(details["scenario"], "menu");
    assert_eq!(details["line"], 3, "{}", refused.text);
    assert!(details["message"].as_str().unwrap().len() > 3);
    let live = api
        .get("/api/v1/applications/ivr/scenarios/menu", &dev)
        .await
        .expect(200);
    assert_eq!(live.body["version"], 1);
    assert_eq!(live.body["source"], v1);

    // JSON form, v2.
    let up = api
        .put(
            "/api/v1/applications/ivr/scenarios/menu",
            &dev,
            json!({ "source": v2 }),
        )
        .await
        .expect(201);
    assert_eq!(up.body["version"], 2);
    let versions = api
        .get("/api/v1/applications/ivr/scenarios/menu/versions", &dev)
        .await
        .expect(200);
    let list: Vec<(u64, bool)> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["live"].as_bool().unwrap()))
        .collect();
    assert_eq!(list, [(2, true), (1, false)]);
    let old = api
        .get("/api/v1/applications/ivr/scenarios/menu/versions/1", &dev)
        .await
        .expect(200);
    assert_eq!(old.body["source"], v1);
    api.get("/api/v1/applications/ivr/scenarios/menu/versions/9", &dev)
        .await
        .expect_error(404, "not_found");
    api.get("/api/v1/applications/ivr/scenarios/menu/versions/x", &dev)
        .await
        .expect_error(400, "invalid_request");

    // Roll back to 1; the next upload is 3.
    api.post(
        "/api/v1/applications/ivr/scenarios/menu/rollback",
        &dev,
        json!({ "version": 1 }),
    )
    .await
    .expect(200);
    let installed = sb
        .server
        .engine()
        .apps()
        .all()
        .into_iter()
        .find(|a| a.name == "ivr")
        .unwrap();
    assert_eq!(installed.scenario("menu").unwrap().version, 1);
    api.post(
        "/api/v1/applications/ivr/scenarios/menu/rollback",
        &dev,
        json!({ "version": 7 }),
    )
    .await
    .expect_error(404, "not_found");
    let up = api
        .put_scenario("ivr", "menu", &dev, HOLD_SCENARIO)
        .await
        .expect(201);
    assert_eq!(up.body["version"], 3);
    let listed = api
        .get("/api/v1/applications/ivr/scenarios", &dev)
        .await
        .expect(200);
    assert_eq!(listed.body[0]["live_version"], 3);
    assert_eq!(listed.body[0]["latest_version"], 3);

    // Size cap: 413, raw or JSON; bad names and bad UTF-8: 400.
    let huge = format!("// {}\nexport default {{}};", "x".repeat(600 * 1024));
    api.put_scenario("ivr", "menu", &dev, &huge)
        .await
        .expect_error(413, "payload_too_large");
    api.put(
        "/api/v1/applications/ivr/scenarios/menu",
        &dev,
        json!({ "source": huge }),
    )
    .await
    .expect_error(413, "payload_too_large");
    api.put_scenario("ivr", "bad%20name", &dev, SAY_HI)
        .await
        .expect_error(400, "invalid_request");
    api.send_raw(
        Method::PUT,
        "/api/v1/applications/ivr/scenarios/menu",
        Some(&dev),
        "application/javascript",
        vec![0xff, 0xfe, 0x00],
    )
    .await
    .expect_error(400, "invalid_request");

    // Delete: refused while a rule runs it.
    api.post(
        "/api/v1/applications/ivr/rules",
        &dev,
        json!({ "name": "all", "pattern": ".*", "scenario": "menu" }),
    )
    .await
    .expect(201);
    api.delete("/api/v1/applications/ivr/scenarios/menu", &dev)
        .await
        .expect_error(409, "conflict");
    api.put_scenario("ivr", "spare", &dev, SAY_HI)
        .await
        .expect(201);
    api.delete("/api/v1/applications/ivr/scenarios/spare", &dev)
        .await
        .expect(204);
    api.get("/api/v1/applications/ivr/scenarios/spare", &dev)
        .await
        .expect_error(404, "not_found");
    api.get("/api/v1/applications/ivr/scenarios/spare/versions", &dev)
        .await
        .expect_error(404, "not_found");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_are_validated_ordered_and_explained() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let dev = developer_app(api, "acme", "ivr").await;
    api.put_scenario("ivr", "menu", &dev, SAY_HI)
        .await
        .expect(201);
    api.put_scenario("ivr", "room", &dev, SAY_HI)
        .await
        .expect(201);

    let bad = api
        .post(
            "/api/v1/applications/ivr/rules",
            &dev,
            json!({ "name": "broken", "pattern": "conf_(", "scenario": "menu" }),
        )
        .await
        .expect_error(400, "invalid_rule");
    assert_eq!(bad.body["error"]["details"]["rule"], "broken");
    assert_eq!(bad.body["error"]["details"]["field"], "pattern");
    assert!(bad.body["error"]["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("unclosed"));
    api.post(
        "/api/v1/applications/ivr/rules",
        &dev,
        json!({ "name": "ghost", "pattern": ".*", "scenario": "nope" }),
    )
    .await
    .expect_error(400, "missing_scenario");
    api.post(
        "/api/v1/applications/ivr/rules",
        &dev,
        json!({ "name": "x", "pattern": ".*", "exclude": "[", "scenario": "menu" }),
    )
    .await
    .expect_error(400, "invalid_rule");

    for (name, pattern, scenario, position) in [
        ("fallback", ".*", "menu", None),
        ("rooms", "conf_.+", "room", Some(0)),
        ("vip", "9.*", "menu", Some(1)),
    ] {
        let mut body = json!({ "name": name, "pattern": pattern, "scenario": scenario });
        if let Some(position) = position {
            body["position"] = json!(position);
        }
        api.post("/api/v1/applications/ivr/rules", &dev, body)
            .await
            .expect(201);
    }
    api.post(
        "/api/v1/applications/ivr/rules",
        &dev,
        json!({ "name": "vip", "pattern": "1", "scenario": "menu" }),
    )
    .await
    .expect_error(409, "conflict");
    let names = |rules: &Value| -> Vec<String> {
        rules
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect()
    };
    let rules = api
        .get("/api/v1/applications/ivr/rules", &dev)
        .await
        .expect(200);
    assert_eq!(names(&rules.body), ["rooms", "vip", "fallback"]);

    // Update in place (disable), get one, explain.
    api.put(
        "/api/v1/applications/ivr/rules/vip",
        &dev,
        json!({ "name": "vip", "pattern": "9.*", "scenario": "menu", "enabled": false }),
    )
    .await
    .expect(200);
    let vip = api
        .get("/api/v1/applications/ivr/rules/vip", &dev)
        .await
        .expect(200);
    assert_eq!(vip.body["enabled"], false);
    api.put(
        "/api/v1/applications/ivr/rules/nope",
        &dev,
        json!({ "name": "nope", "pattern": "1", "scenario": "menu" }),
    )
    .await
    .expect_error(404, "not_found");
    let explained = api
        .get("/api/v1/applications/ivr/route?destination=9123", &dev)
        .await
        .expect(200);
    assert_eq!(explained.body["matched"], "fallback");
    assert_eq!(explained.body["scenario"], "menu");
    let steps: Vec<(String, String)> = explained.body["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["rule"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("rooms".to_string(), "pattern_did_not_match".to_string()),
            ("vip".to_string(), "disabled".to_string()),
            ("fallback".to_string(), "matched".to_string()),
        ]
    );
    let conf = api
        .get("/api/v1/applications/ivr/route?destination=conf_1234", &dev)
        .await
        .expect(200);
    assert_eq!(conf.body["matched"], "rooms");
    api.get("/api/v1/applications/ivr/route", &dev)
        .await
        .expect_error(400, "invalid_request");

    // Reorder: a permutation of every name, or 400.
    api.put(
        "/api/v1/applications/ivr/rule-order",
        &dev,
        json!({ "rules": ["fallback", "rooms"] }),
    )
    .await
    .expect_error(400, "invalid_request");
    let reordered = api
        .put(
            "/api/v1/applications/ivr/rule-order",
            &dev,
            json!({ "rules": ["fallback", "vip", "rooms"] }),
        )
        .await
        .expect(200);
    assert_eq!(names(&reordered.body), ["fallback", "vip", "rooms"]);
    let conf = api
        .get("/api/v1/applications/ivr/route?destination=conf_1234", &dev)
        .await
        .expect(200);
    assert_eq!(
        conf.body["matched"], "fallback",
        "the next call sees the new order"
    );

    // Replace all; delete one.
    let replaced = api
        .put(
            "/api/v1/applications/ivr/rules",
            &dev,
            json!([{ "name": "only", "pattern": "[0-9]+", "scenario": "menu" }]),
        )
        .await
        .expect(200);
    assert_eq!(names(&replaced.body), ["only"]);
    let none = api
        .get("/api/v1/applications/ivr/route?destination=abc", &dev)
        .await
        .expect(200);
    assert_eq!(none.body["matched"], Value::Null);
    api.delete("/api/v1/applications/ivr/rules/only", &dev)
        .await
        .expect(204);
    api.delete("/api/v1/applications/ivr/rules/only", &dev)
        .await
        .expect_error(404, "not_found");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_limits_and_unknown_routes() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let dev = developer_app(api, "acme", "ivr").await;

    // Malformed JSON: 400 with where.
    let broken = api
        .send_raw(
            Method::POST,
            "/api/v1/applications",
            Some(&dev),
            "application/json",
            "{\n  \"name\": \"x\",\n  oops\n}",
        )
        .await
        .expect_error(400, "invalid_json");
    assert_eq!(broken.body["error"]["details"]["line"], 3);
    let typed = api
        .post(
            "/api/v1/applications",
            &dev,
            json!({ "name": "x", "numbers": [1] }),
        )
        .await
        .expect_error(400, "invalid_json");
    assert_eq!(typed.body["error"]["details"]["path"], "numbers[0]");
    api.post(
        "/api/v1/applications",
        &dev,
        json!({ "name": "x", "colour": "red" }),
    )
    .await
    .expect_error(400, "invalid_json");
    api.send_raw(
        Method::POST,
        "/api/v1/applications",
        Some(&dev),
        "application/json",
        "{\"name\": \"x\"} trailing",
    )
    .await
    .expect_error(400, "invalid_json");
    api.send_raw(
        Method::POST,
        "/api/v1/applications",
        Some(&dev),
        "text/plain",
        "{\"name\": \"x\"}",
    )
    .await
    .expect_error(415, "unsupported_media_type");

    // Bodies over the limit: 413.
    let padding = "x".repeat(2 * 1024 * 1024);
    api.post(
        "/api/v1/applications",
        &dev,
        json!({ "name": "x", "allowed_hosts": [padding] }),
    )
    .await
    .expect_error(413, "payload_too_large");
    assert_eq!(
        api.get("/api/v1/applications", &dev)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing was created"
    );

    // Unknown endpoints and methods answer in the same shape.
    api.get("/api/v1/nope", &dev)
        .await
        .expect_error(404, "not_found");
    api.send(Method::DELETE, "/api/v1/calls", Some(&dev), None)
        .await
        .expect_error(405, "method_not_allowed");
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_are_atomic_and_idempotent() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let (_, dev) = api.tenant(ADMIN_KEY, "acme", "developer").await;
    let gateway =
        std::fs::read_to_string(api_common::examples_dir("anyroom").join("gateway.js")).unwrap();
    let conference =
        std::fs::read_to_string(api_common::examples_dir("anyroom").join("conference.js")).unwrap();
    let body = |gateway: &str| {
        json!({
            "rules": [
                { "name": "room", "pattern": "conf_.+", "scenario": "conference", "conference": true },
                { "name": "gateway", "pattern": ".*", "scenario": "gateway" },
            ],
            "scenarios": { "gateway": gateway, "conference": conference },
            "numbers": ["+15550199"],
        })
    };
    let first = api
        .put("/api/v1/deployments/rooms", &dev, body(&gateway))
        .await
        .expect(201);
    assert_eq!(first.body["created"], true);
    assert_eq!(first.body["changed"], true);
    assert_eq!(first.body["application"]["numbers"], json!(["+15550199"]));
    let again = api
        .put("/api/v1/deployments/rooms", &dev, body(&gateway))
        .await
        .expect(200);
    assert_eq!(again.body["changed"], false);
    assert_eq!(again.body["rules_changed"], false);
    assert!(again.body["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "unchanged" && s["version"] == 1));

    // One changed scenario: only it gets a new version.
    let changed = format!("{gateway}\n// v2\n");
    let second = api
        .put("/api/v1/deployments/rooms", &dev, body(&changed))
        .await
        .expect(200);
    let statuses: Vec<(String, String, u64)> = second.body["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
                s["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("conference".to_string(), "unchanged".to_string(), 1),
            ("gateway".to_string(), "updated".to_string(), 2),
        ]
    );

    // A broken deploy changes nothing, even the parts that were fine.
    let mut broken = body("export default {");
    broken["numbers"] = json!(["+15550111"]);
    broken["scenarios"]["extra"] = json!(SAY_HI);
    api.put("/api/v1/deployments/rooms", &dev, broken)
        .await
        .expect_error(400, "compile_error");
    let detail = api
        .get("/api/v1/applications/rooms", &dev)
        .await
        .expect(200);
    assert_eq!(detail.body["numbers"], json!(["+15550199"]));
    assert_eq!(detail.body["scenarios"].as_array().unwrap().len(), 2);

    // Prune drops scenarios no longer in the directory (rules first).
    api.put_scenario("rooms", "old", &dev, SAY_HI)
        .await
        .expect(201);
    let pruned = api
        .put(
            "/api/v1/deployments/rooms",
            &dev,
            json!({
                "rules": [{ "name": "room", "pattern": "conf_.+", "scenario": "conference", "conference": true }],
                "scenarios": { "conference": conference },
                "prune": true,
            }),
        )
        .await
        .expect(200);
    let deleted: Vec<&str> = pruned.body["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "deleted")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, ["gateway", "old"]);
    let detail = api
        .get("/api/v1/applications/rooms", &dev)
        .await
        .expect(200);
    assert_eq!(
        detail.body["numbers"],
        json!(["+15550199"]),
        "kept when absent"
    );
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_scenario_is_validated() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let dev = developer_app(api, "acme", "out").await;
    api.put_scenario("out", "caller", &dev, SAY_HI)
        .await
        .expect(201);
    api.post(
        "/api/v1/applications/out/rules",
        &dev,
        json!({ "name": "r", "pattern": ".*", "scenario": "caller" }),
    )
    .await
    .expect(201);
    let path = "/api/v1/applications/out/calls";
    api.post(
        "/api/v1/applications/nope/calls",
        &dev,
        json!({ "scenario": "caller", "destination": "x" }),
    )
    .await
    .expect_error(404, "not_found");
    api.post(
        path,
        &dev,
        json!({ "rule": "r", "scenario": "caller", "destination": "x" }),
    )
    .await
    .expect_error(400, "invalid_request");
    api.post(path, &dev, json!({ "destination": "x" }))
        .await
        .expect_error(400, "invalid_request");
    api.post(path, &dev, json!({ "rule": "nope", "destination": "x" }))
        .await
        .expect_error(404, "not_found");
    api.post(
        path,
        &dev,
        json!({ "scenario": "nope", "destination": "x" }),
    )
    .await
    .expect_error(404, "not_found");
    api.post(
        path,
        &dev,
        json!({ "scenario": "caller", "destination": "" }),
    )
    .await
    .expect_error(400, "invalid_request");
    api.post(path, &dev, json!({ "scenario": "caller" }))
        .await
        .expect_error(400, "invalid_json");
    let big = json!({ "scenario": "caller", "destination": "x", "customData": { "pad": "y".repeat(70_000) } });
    api.post(path, &dev, big)
        .await
        .expect_error(413, "payload_too_large");
    let me = api.get("/api/v1/me", &dev).await.body["account"]
        .as_str()
        .unwrap()
        .to_string();
    let viewer = api.key(ADMIN_KEY, &me, "viewer").await;
    api.post(
        path,
        &viewer,
        json!({ "scenario": "caller", "destination": "x" }),
    )
    .await
    .expect_error(403, "forbidden");
    // Valid: accepted, the instance runs onStart.
    api.post(
        path,
        &dev,
        json!({ "rule": "r", "destination": "sip:bob@127.0.0.1", "customData": { "n": 1 } }),
    )
    .await
    .expect(202);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_a_scenario_runs_on_start_and_dials_out() {
    use switchboard_testagent::{Agent, AgentConfig, AutoAnswer};
    let sb = TestServer::start().await;
    let api = &sb.api;
    let dev = developer_app(api, "acme", "out").await;
    let callee =
        Agent::bind(AgentConfig::udp().auto_answer(AutoAnswer::after(std::time::Duration::ZERO)))
            .await
            .unwrap();
    let scenario = r#"
export default {
  async onStart(ctx) {
    const call = await ctx.dial(ctx.customData.to);
    await call.say("hello from the API");
    await call.hangup();
  },
};
"#;
    api.put_scenario("out", "caller", &dev, scenario)
        .await
        .expect(201);
    let started = api
        .post(
            "/api/v1/applications/out/calls",
            &dev,
            json!({ "scenario": "caller", "destination": "bob", "customData": { "to": callee.uri() } }),
        )
        .await
        .expect(202);
    assert!(started.body["id"].as_str().is_some());
    let call = callee.next_answered(api_common::T).await.unwrap();
    call.wait_for_speech(api_common::T).await.unwrap();
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_docs_metrics_and_health() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let spec = api
        .send(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    let paths = spec.body["paths"].as_object().unwrap();
    for path in [
        "/api/v1/me",
        "/api/v1/accounts",
        "/api/v1/accounts/{account}",
        "/api/v1/keys",
        "/api/v1/keys/{id}",
        "/api/v1/applications",
        "/api/v1/applications/{app}",
        "/api/v1/applications/{app}/numbers",
        "/api/v1/applications/{app}/numbers/{number}",
        "/api/v1/applications/{app}/domains",
        "/api/v1/applications/{app}/domains/{domain}",
        "/api/v1/applications/{app}/route",
        "/api/v1/applications/{app}/scenarios",
        "/api/v1/applications/{app}/scenarios/{name}",
        "/api/v1/applications/{app}/scenarios/{name}/versions",
        "/api/v1/applications/{app}/scenarios/{name}/versions/{version}",
        "/api/v1/applications/{app}/scenarios/{name}/rollback",
        "/api/v1/applications/{app}/rules",
        "/api/v1/applications/{app}/rules/{rule}",
        "/api/v1/applications/{app}/rule-order",
        "/api/v1/applications/{app}/calls",
        "/api/v1/applications/{app}/conferences/{name}",
        "/api/v1/applications/{app}/conferences/{name}/participants/{call}",
        "/api/v1/applications/{app}/conferences/{name}/participants/{call}/mute",
        "/api/v1/applications/{app}/conferences/{name}/participants/{call}/unmute",
        "/api/v1/applications/{app}/recordings",
        "/api/v1/applications/{app}/recordings/{name}",
        "/api/v1/deployments/{name}",
        "/api/v1/calls",
        "/api/v1/calls/{id}",
        "/api/v1/calls/{id}/hangup",
        "/api/v1/calls/{id}/log",
        "/api/v1/conferences",
        "/api/v1/history",
        "/api/v1/history/{id}",
        "/api/v1/history/{id}/log",
        "/api/v1/events",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(spec.body["components"]["securitySchemes"]["bearer"].is_object());
    let docs = api
        .send(Method::GET, "/docs/", None, None)
        .await
        .expect(200);
    assert!(
        docs.text.contains("swagger"),
        "{}",
        &docs.text[..docs.text.len().min(200)]
    );

    let metrics = api
        .send(Method::GET, "/metrics", None, None)
        .await
        .expect(200);
    for name in [
        "switchboard_calls_active 0",
        "switchboard_calls_total{result=\"answered\"} 0",
        "switchboard_conferences_active 0",
        "switchboard_conference_participants 0",
        "switchboard_scenario_errors_total",
        "switchboard_sip_requests_total",
        "switchboard_sip_responses_total",
        "switchboard_rtp_packets_total{direction=\"in\"}",
        "switchboard_rtp_packets_lost_total",
    ] {
        assert!(metrics.text.contains(name), "{name} in\n{}", metrics.text);
    }
    let health = api
        .send(Method::GET, "/health", None, None)
        .await
        .expect(200);
    assert_eq!(health.body["status"], "ok");
    sb.stop().await;
}
