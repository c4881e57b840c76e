//! The live side of the API with real SIP calls: calls, conferences (mute,
//! unmute, kick), hangup, logs, the events WebSocket, history and metrics;
//! and that changes reach the next call while calls in progress keep their
//! version.

mod api_common;

use api_common::{Api, TestServer, ADMIN_KEY, HOLD_SCENARIO, T};
use futures::StreamExt;
use serde_json::{json, Value};
use switchboard_testagent::analysis::ToneCondition;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A live events WebSocket.
struct Events {
    socket: Socket,
    seen: Vec<Value>,
}

impl Events {
    async fn open(api: &Api, key: &str, query: &str) -> Events {
        let url = format!(
            "{}/api/v1/events{query}",
            api.base.replacen("http", "ws", 1)
        );
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {key}").parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the events socket opens");
        Events {
            socket,
            seen: Vec::new(),
        }
    }

    /// The next event matching `check` (earlier ones are kept in `seen`).
    async fn wait(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        if let Some(found) = self.seen.iter().find(|e| check(e)) {
            return found.clone();
        }
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no {what} event; saw {:#?}", self.seen))
                .expect("the socket stays open")
                .expect("a message");
            if let Message::Text(text) = message {
                let event: Value = serde_json::from_str(&text).unwrap();
                self.seen.push(event.clone());
                if check(&event) {
                    return event;
                }
            }
        }
    }
}

/// Call options with a From of `sip:<user>@127.0.0.1`.
fn from(user: &str) -> CallOptions {
    CallOptions::default().from(format!("sip:{user}@127.0.0.1"))
}

fn is(event: &Value, kind: &str, call: Option<&str>) -> bool {
    event["type"] == kind && call.is_none_or(|c| event["call_id"] == c)
}

/// The engine's id of the live call from `from_user`.
async fn call_id_from(api: &Api, key: &str, from_user: &str) -> String {
    let calls = api
        .wait_for("/api/v1/calls", key, "the call to be listed", |calls| {
            calls.as_array().unwrap().iter().any(|c| {
                c["from"].as_str().unwrap().contains(from_user) && c["state"] == "answered"
            })
        })
        .await;
    calls
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["from"].as_str().unwrap().contains(from_user))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_calls_conferences_events_history_and_metrics() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let key = ADMIN_KEY; // the default account runs the built-in anyroom
    let mut events = Events::open(api, key, "").await;

    let alice_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let alice = alice_ua
        .call(&sb.uri("conf_77"), from("alice"))
        .await
        .expect("anyroom answers");
    alice.wait_for_speech(T).await.unwrap();
    let alice_id = call_id_from(api, key, "alice").await;
    events
        .wait("call_started", |e| is(e, "call_started", Some(&alice_id)))
        .await;
    let routed = events
        .wait("call_routed", |e| is(e, "call_routed", Some(&alice_id)))
        .await;
    assert_eq!(routed["rule"], "room");
    assert_eq!(routed["scenario"], "conference");
    events
        .wait("call_answered", |e| is(e, "call_answered", Some(&alice_id)))
        .await;
    events
        .wait("alice joined", |e| {
            is(e, "participant_joined", Some(&alice_id))
        })
        .await;

    let call = api
        .get(&format!("/api/v1/calls/{alice_id}"), key)
        .await
        .expect(200);
    assert_eq!(call.body["rule"], "room");
    assert_eq!(call.body["scenario"], "conference");
    assert_eq!(call.body["scenario_version"], 1);
    assert_eq!(call.body["conference"], "conf_77");
    assert_eq!(call.body["destination"], "conf_77");
    let log = api
        .get(&format!("/api/v1/calls/{alice_id}/log"), key)
        .await
        .expect(200);
    assert_eq!(log.body["live"], true);

    let bob_ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let bob = bob_ua.call(&sb.uri("conf_77"), from("bob")).await.unwrap();
    let bob_id = call_id_from(api, key, "bob").await;
    events
        .wait("bob joined", |e| is(e, "participant_joined", Some(&bob_id)))
        .await;
    let rooms = api.get("/api/v1/conferences", key).await.expect(200);
    let room = &rooms.body[0];
    assert_eq!(room["name"], "conf_77");
    assert_eq!(room["participants"].as_array().unwrap().len(), 2);
    assert!(room["participants"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["muted"] == false));

    // Bob hears Alice's tone; muted, he does not; unmuted, he does again.
    alice.play_tone(440.0, 0.3);
    let heard = ToneCondition::present().min_level(-30.0);
    bob.wait_for_tone(440.0, heard.clone(), T).await.unwrap();
    let participant =
        format!("/api/v1/applications/anyroom/conferences/conf_77/participants/{alice_id}");
    let muted = api
        .post(&format!("{participant}/mute"), key, json!({}))
        .await
        .expect(200);
    let alice_state = muted.body["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["call_id"] == alice_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(alice_state["muted"], true);
    bob.wait_for_silence_of(440.0, T).await.unwrap();
    api.post(&format!("{participant}/unmute"), key, json!({}))
        .await
        .expect(200);
    bob.wait_for_tone(440.0, heard, T).await.unwrap();
    alice.stop_audio();
    api.post(
        "/api/v1/applications/anyroom/conferences/conf_77/participants/nope/mute",
        key,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    api.post(
        &format!("/api/v1/applications/anyroom/conferences/conf_99/participants/{alice_id}/mute"),
        key,
        json!({}),
    )
    .await
    .expect_error(404, "not_found");

    // Kick Bob: out of the room and hung up.
    api.delete(
        &format!("/api/v1/applications/anyroom/conferences/conf_77/participants/{bob_id}"),
        key,
    )
    .await
    .expect(204);
    let reason = bob.wait_ended(T).await.unwrap();
    assert!(reason.is_remote_bye(), "{reason:?}");
    events
        .wait("bob left", |e| is(e, "participant_left", Some(&bob_id)))
        .await;

    // Hang Alice up over the API.
    api.post(&format!("/api/v1/calls/{alice_id}/hangup"), key, json!({}))
        .await
        .expect(204);
    assert!(alice.wait_ended(T).await.unwrap().is_remote_bye());
    let ended = events
        .wait("alice ended", |e| {
            e["type"] == "call_ended" && e["record"]["id"] == alice_id.as_str()
        })
        .await;
    assert!(
        ended["record"].get("log").is_none(),
        "no whole log in events"
    );
    assert_eq!(ended["record"]["sip_code"], 200);
    api.post(&format!("/api/v1/calls/{alice_id}/hangup"), key, json!({}))
        .await
        .expect_error(404, "not_found");
    api.get("/api/v1/calls/nope", key)
        .await
        .expect_error(404, "not_found");

    // History: both calls, answered, with logs; filters and paging.
    let history = api
        .wait_for("/api/v1/history", key, "two calls in the history", |page| {
            page["items"].as_array().unwrap().len() == 2
        })
        .await;
    for item in history["items"].as_array().unwrap() {
        assert_eq!(item["result"], "answered");
        assert_eq!(item["rule"], "room");
        assert_eq!(item["scenario_version"], 1);
        assert_eq!(item["destination"], "conf_77");
        assert!(item["answered_at"].as_u64().is_some());
    }
    let entry = api
        .get(&format!("/api/v1/history/{alice_id}"), key)
        .await
        .expect(200);
    assert_eq!(entry.body["end_reason"], "local");
    let log = api
        .get(&format!("/api/v1/history/{bob_id}/log"), key)
        .await
        .expect(200);
    assert!(log.body["lines"].is_array());
    let after = api
        .get(&format!("/api/v1/calls/{alice_id}/log"), key)
        .await
        .expect(200);
    assert_eq!(after.body["live"], false);
    let first = api.get("/api/v1/history?limit=1", key).await.expect(200);
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let cursor = first.body["next_cursor"].as_i64().expect("a next page");
    let second = api
        .get(&format!("/api/v1/history?limit=1&cursor={cursor}"), key)
        .await
        .expect(200);
    assert_ne!(second.body["items"][0]["id"], first.body["items"][0]["id"]);
    for (query, count) in [
        ("result=answered", 2),
        ("result=rejected", 0),
        ("destination=conf_77", 2),
        ("destination=conf_1", 0),
        ("application=anyroom", 2),
        ("from=alice", 1),
    ] {
        let page = api
            .get(&format!("/api/v1/history?{query}"), key)
            .await
            .expect(200);
        assert_eq!(
            page.body["items"].as_array().unwrap().len(),
            count,
            "{query}"
        );
    }
    api.get("/api/v1/history?result=maybe", key)
        .await
        .expect_error(400, "invalid_request");
    api.get("/api/v1/history?limit=0", key)
        .await
        .expect_error(400, "invalid_request");
    api.get("/api/v1/history/nope", key)
        .await
        .expect_error(404, "not_found");

    // Metrics counted all of it.
    let metrics = api
        .send(reqwest::Method::GET, "/metrics", None, None)
        .await
        .expect(200)
        .text;
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{metrics}"))
    };
    assert_eq!(value("switchboard_calls_total{result=\"answered\"}"), 2);
    assert_eq!(value("switchboard_calls_active"), 0);
    assert!(value("switchboard_sip_requests_total{direction=\"in\",method=\"INVITE\"}") >= 2);
    assert!(value("switchboard_sip_requests_total{direction=\"out\",method=\"BYE\"}") >= 2);
    assert!(value("switchboard_sip_responses_total{direction=\"out\",code=\"200\"}") >= 2);
    assert!(value("switchboard_rtp_packets_total{direction=\"in\"}") > 50);
    sb.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_the_next_call_and_calls_keep_their_version() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let key = ADMIN_KEY;
    api.post(
        "/api/v1/applications",
        key,
        json!({ "name": "hold", "numbers": ["7000"] }),
    )
    .await
    .expect(201);
    api.put_scenario("hold", "hold", key, HOLD_SCENARIO)
        .await
        .expect(201);
    api.post(
        "/api/v1/applications/hold/rules",
        key,
        json!({ "name": "all", "pattern": ".*", "scenario": "hold" }),
    )
    .await
    .expect(201);

    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let first = ua
        .call(&sb.uri("7000"), from("first"))
        .await
        .expect("the number reaches the new application");
    let v2 = HOLD_SCENARIO.replace("holding", "still holding");
    api.put_scenario("hold", "hold", key, &v2).await.expect(201);
    let second = ua.call(&sb.uri("7000"), from("second")).await.unwrap();
    let calls = api
        .wait_for(
            "/api/v1/calls?application=hold",
            key,
            "both calls",
            |calls| calls.as_array().unwrap().len() == 2,
        )
        .await;
    let version_of = |user: &str| {
        calls
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["from"].as_str().unwrap().contains(user))
            .unwrap()["scenario_version"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(version_of("first"), 1, "the call in progress keeps v1");
    assert_eq!(version_of("second"), 2, "the next call runs v2");

    // A rule change too: with no rule left, the next call gets 404.
    api.delete("/api/v1/applications/hold/rules/all", key)
        .await
        .expect(204);
    let refused = ua
        .call(&sb.uri("7000"), CallOptions::default())
        .await
        .expect_err("no rule, no call");
    assert_eq!(refused.status_code(), Some(404));
    first.hangup().await.unwrap();
    second.hangup().await.unwrap();
    // The refused call is in the history as rejected.
    let rejected = api
        .wait_for(
            "/api/v1/history?result=rejected",
            key,
            "the refused call",
            |page| page["items"].as_array().unwrap().len() == 1,
        )
        .await;
    assert_eq!(rejected["items"][0]["sip_code"], 404);
    sb.stop().await;
}
