//! Recordings over the API: a scenario records a real call; the account's
//! keys list it (in progress, then finished), download exactly the file the
//! engine wrote, and delete it; another account, a viewer deleting, and
//! names that try to leave the directory get nowhere.

mod api_common;

use api_common::{TestServer, ADMIN_KEY, T};
use serde_json::json;
use switchboard_testagent::{Agent, AgentConfig, CallOptions, EndReason};

/// Records the call until the caller keys a digit, then hangs up telling the
/// caller where the file went.
const RECORDER: &str = r##"
export default {
  async onCall(call) {
    await call.answer();
    const rec = await call.record();
    call.play("tone:1000/30000");
    await call.collectDigits({ max: 1, firstDigitTimeoutMs: 20000 });
    const done = await rec.stop();
    await call.hangup({ headers: { "X-Location": done.location } });
  },
};
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_listed_downloaded_and_deleted_by_their_account_only() {
    let sb = TestServer::start().await;
    let api = &sb.api;
    let (alpha, developer) = api.tenant(ADMIN_KEY, "alpha", "developer").await;
    let viewer = api.key(ADMIN_KEY, &alpha, "viewer").await;
    let (_, beta) = api.tenant(ADMIN_KEY, "beta", "developer").await;
    let created = api
        .post(
            "/api/v1/applications",
            &developer,
            json!({ "name": "rec", "numbers": ["200"] }),
        )
        .await
        .expect(201);
    let app = created.body["id"].as_str().unwrap().to_string();
    api.put_scenario("rec", "recorder", &developer, RECORDER)
        .await
        .expect(201);
    api.post(
        "/api/v1/applications/rec/rules",
        &developer,
        json!({ "name": "all", "pattern": ".*", "scenario": "recorder" }),
    )
    .await
    .expect(201);
    let list = "/api/v1/applications/rec/recordings";
    assert_eq!(api.get(list, &developer).await.expect(200).body, json!([]));

    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(&sb.uri("200"), CallOptions::default())
        .await
        .unwrap();
    call.play_tone(440.0, 0.3);

    // While the call records, the file is listed as in progress and cannot
    // be downloaded half-written.
    let listed = api
        .wait_for(list, &viewer, "the recording in progress", |files| {
            files.as_array().is_some_and(|f| f.len() == 1)
        })
        .await;
    assert_eq!(listed[0]["in_progress"], true, "{listed}");
    let name = listed[0]["name"].as_str().unwrap().to_string();
    let file = format!("{list}/{name}");
    api.get(&file, &developer)
        .await
        .expect_error(409, "conflict");
    api.delete(&file, &developer)
        .await
        .expect_error(409, "conflict");

    call.wait_for_tone(1000.0, switchboard_testagent::pure_tone(1000.0, 20.0), T)
        .await
        .expect("the caller hears the scenario's tone");
    let _ = call.send_dtmf("5").await;
    let location = match call.wait_ended(T).await.expect("the scenario hangs up") {
        EndReason::RemoteBye { headers } => headers
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("X-Location"))
            .map(|(_, v)| v)
            .expect("X-Location"),
        other => panic!("expected a BYE, got {other:?}"),
    };
    assert!(location.ends_with(&name), "{location} is {name}");

    let listed = api
        .wait_for(list, &viewer, "the finished recording", |files| {
            files[0]["in_progress"] == false
        })
        .await;
    let on_disk = std::fs::read(&location).expect("the engine wrote the file");
    assert_eq!(listed[0]["size_bytes"], on_disk.len() as u64);

    // The download is the file, byte for byte, as WAV.
    let response = reqwest::Client::new()
        .get(format!("{}{file}", api.base))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let downloaded = response.bytes().await.unwrap();
    assert_eq!(downloaded.as_ref(), on_disk.as_slice());
    let wav = hound::WavReader::new(std::io::Cursor::new(downloaded.to_vec())).expect("WAV");
    assert!(wav.duration() > 0, "the recording has audio");

    // Another account reaches none of it, by id or by name.
    for path in [
        format!("/api/v1/applications/{app}/recordings"),
        format!("/api/v1/applications/{app}/recordings/{name}"),
        format!("/api/v1/applications/rec/recordings/{name}"),
    ] {
        api.get(&path, &beta).await.expect_error(404, "not_found");
    }
    api.delete(
        &format!("/api/v1/applications/{app}/recordings/{name}"),
        &beta,
    )
    .await
    .expect_error(404, "not_found");
    // Names outside the application's recordings are not files to it.
    for bad in [
        "..%2F..%2F..%2Fswitchboard.db",
        "..%2Frec%2F",
        "switchboard.db",
        ".hidden.wav",
    ] {
        api.get(&format!("{list}/{bad}"), &developer)
            .await
            .expect_error(404, "not_found");
    }
    // A viewer reads but does not delete.
    api.delete(&file, &viewer)
        .await
        .expect_error(403, "forbidden");
    assert!(std::path::Path::new(&location).exists());

    api.delete(&file, &developer).await.expect(204);
    assert!(!std::path::Path::new(&location).exists());
    assert_eq!(api.get(list, &developer).await.expect(200).body, json!([]));
    api.get(&file, &developer)
        .await
        .expect_error(404, "not_found");
    sb.stop().await;
}
