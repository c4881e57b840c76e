//! Tenant isolation: one account can never see, change or route into
//! another's applications, calls or conferences, whatever it tries.

mod api_common;

use api_common::{TestServer, ADMIN_KEY, HOLD_SCENARIO, T};
use futures::StreamExt;
use serde_json::json;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ROOM: &str = r#"
let room;
export default {
  async onConference(conf) { room = conf; },
  async onCall(call) { await call.answer(); await room.add(call); },
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_reach_each_other() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let (_, a) = api.tenant(ADMIN_KEY, "alpha", "developer").await;
    let (_, b) = api.tenant(ADMIN_KEY, "beta", "developer").await;

    // Alpha: application "shared-name" on number 100 and on the domain
    // 127.0.0.1 (the engine's address: calls to any other user there), with
    // a conference rule.
    let created = api
        .post(
            "/api/v1/applications",
            &a,
            json!({ "name": "shared-name", "numbers": ["100"], "domains": ["127.0.0.1"] }),
        )
        .await
        .expect(201);
    let a_app = created.body["id"].as_str().unwrap().to_string();
    api.put_scenario("shared-name", "room", &a, ROOM)
        .await
        .expect(201);
    api.post(
        "/api/v1/applications/shared-name/rules",
        &a,
        json!({ "name": "room", "pattern": ".*", "scenario": "room", "conference": true }),
    )
    .await
    .expect(201);

    // Beta sees none of it, by id or by name, and changes none of it.
    for path in [
        format!("/api/v1/applications/{a_app}"),
        "/api/v1/applications/shared-name".to_string(),
        format!("/api/v1/applications/{a_app}/scenarios"),
        format!("/api/v1/applications/{a_app}/scenarios/room"),
        format!("/api/v1/applications/{a_app}/scenarios/room/versions"),
        format!("/api/v1/applications/{a_app}/rules"),
        format!("/api/v1/applications/{a_app}/numbers"),
        format!("/api/v1/applications/{a_app}/route?destination=100"),
    ] {
        api.get(&path, &b).await.expect_error(404, "not_found");
    }
    assert_eq!(api.get("/api/v1/applications", &b).await.body, json!([]));
    api.put_scenario(&a_app, "room", &b, HOLD_SCENARIO)
        .await
        .expect_error(404, "not_found");
    api.patch(
        &format!("/api/v1/applications/{a_app}"),
        &b,
        json!({ "numbers": [] }),
    )
    .await
    .expect_error(404, "not_found");
    api.delete(&format!("/api/v1/applications/{a_app}/rules/room"), &b)
        .await
        .expect_error(404, "not_found");
    api.delete(&format!("/api/v1/applications/{a_app}"), &b)
        .await
        .expect_error(404, "not_found");
    api.post(
        &format!("/api/v1/applications/{a_app}/calls"),
        &b,
        json!({ "scenario": "room", "destination": "x" }),
    )
    .await
    .expect_error(404, "not_found");

    // Beta cannot take Alpha's number or domain, and is not told whose it is.
    let taken = api
        .post(
            "/api/v1/applications",
            &b,
            json!({ "name": "thief", "numbers": ["100"] }),
        )
        .await
        .expect_error(409, "conflict");
    assert!(!taken.text.contains(&a_app) && !taken.text.contains("alpha"));
    api.post(
        "/api/v1/applications",
        &b,
        json!({ "name": "thief", "domains": ["127.0.0.1"] }),
    )
    .await
    .expect_error(409, "conflict");

    // The same name in Beta's account is Beta's own application.
    let deployed = api
        .put(
            "/api/v1/deployments/shared-name",
            &b,
            json!({
                "rules": [{ "name": "hold", "pattern": ".*", "scenario": "hold" }],
                "scenarios": { "hold": HOLD_SCENARIO },
                "numbers": ["200"],
            }),
        )
        .await
        .expect(201);
    let b_app = deployed.body["application"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a_app, b_app);
    let a_scenarios = api
        .get("/api/v1/applications/shared-name/scenarios", &a)
        .await
        .expect(200);
    assert_eq!(a_scenarios.body[0]["name"], "room", "Alpha's app untouched");

    // Beta watches events; Alpha's calls must not show up there.
    let ws = |key: String| {
        let url = format!("{}/api/v1/events", api.base.replacen("http", "ws", 1));
        async move {
            let mut request = url.into_client_request().unwrap();
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {key}").parse().unwrap());
            tokio_tungstenite::connect_async(request).await.unwrap().0
        }
    };
    let mut beta_events = ws(b.clone()).await;
    let mut alpha_events = ws(a.clone()).await;

    // A call to Alpha's number (and one to its domain) reaches Alpha's app.
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let by_number = ua
        .call(&sb.uri("100"), CallOptions::default())
        .await
        .unwrap();
    let by_domain = ua
        .call(&sb.uri("room1"), CallOptions::default())
        .await
        .unwrap();
    let alpha_calls = api
        .wait_for("/api/v1/calls", &a, "Alpha's two calls", |calls| {
            calls.as_array().unwrap().len() == 2
                && calls
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["application"] == a_app.as_str())
        })
        .await;
    let a_call = alpha_calls[0]["id"].as_str().unwrap().to_string();
    let room = alpha_calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["destination"] == "100")
        .unwrap()["routed_to"]
        .as_str()
        .unwrap()
        .to_string();
    api.wait_for("/api/v1/conferences", &a, "Alpha's room", |rooms| {
        !rooms.as_array().unwrap().is_empty()
    })
    .await;

    // Beta sees no call, no conference, cannot hang up, mute or kick.
    assert_eq!(
        api.get("/api/v1/calls", &b).await.expect(200).body,
        json!([])
    );
    assert_eq!(
        api.get("/api/v1/conferences", &b).await.expect(200).body,
        json!([])
    );
    api.get(&format!("/api/v1/calls/{a_call}"), &b)
        .await
        .expect_error(404, "not_found");
    api.get(&format!("/api/v1/calls/{a_call}/log"), &b)
        .await
        .expect_error(404, "not_found");
    api.post(&format!("/api/v1/calls/{a_call}/hangup"), &b, json!({}))
        .await
        .expect_error(404, "not_found");
    for app in [a_app.as_str(), b_app.as_str(), "shared-name"] {
        api.get(
            &format!("/api/v1/applications/{app}/conferences/{room}"),
            &b,
        )
        .await
        .expect_error(404, "not_found");
        api.post(
            &format!("/api/v1/applications/{app}/conferences/{room}/participants/{a_call}/mute"),
            &b,
            json!({}),
        )
        .await
        .expect_error(404, "not_found");
        api.delete(
            &format!("/api/v1/applications/{app}/conferences/{room}/participants/{a_call}"),
            &b,
        )
        .await
        .expect_error(404, "not_found");
    }
    api.get("/api/v1/calls?application=shared-name", &b)
        .await
        .expect(200);
    // Alpha's calls are still up.
    assert_eq!(
        api.get("/api/v1/calls", &a)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );

    by_number.hangup().await.unwrap();
    by_domain.hangup().await.unwrap();
    // Alpha's history has them; Beta's does not, nor their logs.
    api.wait_for("/api/v1/history", &a, "Alpha's history", |page| {
        page["items"].as_array().unwrap().len() == 2
    })
    .await;
    assert_eq!(
        api.get("/api/v1/history", &b).await.expect(200).body["items"],
        json!([])
    );
    api.get(&format!("/api/v1/history/{a_call}"), &b)
        .await
        .expect_error(404, "not_found");
    api.get(&format!("/api/v1/history/{a_call}/log"), &b)
        .await
        .expect_error(404, "not_found");

    // Alpha's socket saw its calls; Beta's saw nothing at all.
    let mut alpha_saw = 0;
    let deadline = tokio::time::Instant::now() + T;
    while alpha_saw < 2 {
        let message = tokio::time::timeout_at(deadline, alpha_events.next())
            .await
            .expect("Alpha gets its events")
            .unwrap()
            .unwrap();
        if message.to_text().unwrap().contains("call_started") {
            alpha_saw += 1;
        }
    }
    let beta =
        tokio::time::timeout(std::time::Duration::from_millis(500), beta_events.next()).await;
    assert!(beta.is_err(), "Beta got an event: {beta:?}");

    // And a call to Beta's number reaches Beta's app, never Alpha's (a
    // number wins over Alpha's domain).
    let to_beta = ua
        .call(&sb.uri("200"), CallOptions::default())
        .await
        .unwrap();
    let beta_calls = api
        .wait_for("/api/v1/calls", &b, "Beta's call", |calls| {
            calls.as_array().unwrap().len() == 1
        })
        .await;
    assert_eq!(beta_calls[0]["application"], b_app.as_str());
    assert_eq!(api.get("/api/v1/calls", &a).await.body, json!([]));
    to_beta.hangup().await.unwrap();
    sb.stop().await;
}
