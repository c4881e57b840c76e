//! The web dial page (`/phone`) in a real headless Chromium, driven by
//! `web/tests/phone.mjs` (playwright-core): JsSIP over `/ws`, WebRTC
//! media, the keypad, the participants list; a SIP test agent in the same
//! room on the other side.
//!
//! Needs node, `web/node_modules` and `web/dist` (`scripts/web`) and
//! Debian's `chromium` (`scripts/deps`); `scripts/test` sets all that up.
//! The script reports one JSON event per line on stdout; every wait on
//! either side is for an event, bounded by generous timeouts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{TestEngine, T};
use serde_json::Value;
use switchboard_sip::{Direction, MessageKind};
use switchboard_testagent::analysis::min_db_over;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The browser's fake microphone.
const BROWSER_HZ: f32 = 440.0;
/// The SIP agent in the room.
const AGENT_HZ: f32 = 1000.0;
/// Each wait inside the script (milliseconds).
const SCRIPT_WAIT_MS: &str = "30000";
/// The longest gap between two events of the script (a browser start on a
/// busy machine included).
const EVENT_WAIT: Duration = Duration::from_secs(90);

fn web() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("web")
}

/// A tone WAV for Chromium's fake capture device (it loops the file).
fn tone_wav(dir: &Path, hz: f32) -> PathBuf {
    let path = dir.join(format!("tone-{hz}.wav"));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).expect("create the WAV");
    // Two seconds: a whole number of periods, so the loop is seamless.
    for n in 0..96_000u32 {
        let t = n as f32 / 48_000.0;
        let sample = 0.3 * (2.0 * std::f32::consts::PI * hz * t).sin();
        writer
            .write_sample((sample * i16::MAX as f32) as i16)
            .expect("write the WAV");
    }
    writer.finalize().expect("finish the WAV");
    path
}

/// The page in Chromium, running `phone.mjs`.
struct Browser {
    child: Child,
    events: Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

impl Browser {
    async fn start(sb: &TestEngine, args: &[&str]) -> Browser {
        let web = web();
        for (path, fix) in [
            (
                web.join("node_modules").join("playwright-core"),
                "run scripts/web",
            ),
            (web.join("dist").join("index.html"), "run scripts/web"),
            (PathBuf::from(chromium()), "run scripts/deps (apt chromium)"),
        ] {
            assert!(path.exists(), "{} is missing: {fix}", path.display());
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let wav = tone_wav(dir.path(), BROWSER_HZ);
        let mut child = Command::new("node")
            .arg(web.join("tests").join("phone.mjs"))
            .arg("--url")
            .arg(format!("http://{}", sb.engine.http_addr()))
            .arg("--wav")
            .arg(&wav)
            .arg("--timeout")
            .arg(SCRIPT_WAIT_MS)
            .arg("--chromium")
            .arg(chromium())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (scripts/deps installs it)");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take();
        Browser {
            child,
            events: BufReader::new(stdout).lines(),
            stdin,
            _dir: dir,
        }
    }

    /// The next event; the script's errors fail the test.
    async fn next(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(EVENT_WAIT, self.events.next_line())
                .await
                .expect("the browser script reports in time")
                .expect("reading the browser script")
                .expect("the browser script ended early");
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                println!("browser: {line}");
                continue;
            };
            println!("browser event: {event}");
            assert_ne!(
                event["event"], "error",
                "the browser script failed: {event}"
            );
            return event;
        }
    }

    async fn expect(&mut self, name: &str) -> Value {
        let event = self.next().await;
        assert_eq!(event["event"], name, "expected {name}, got {event}");
        event
    }

    /// Hangs up from the page and waits for the browser to close.
    async fn hang_up(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"hangup\n").await;
        }
        self.expect("done").await;
        let status = tokio::time::timeout(EVENT_WAIT, self.child.wait())
            .await
            .expect("the browser script exits")
            .expect("wait for the browser script");
        assert!(status.success(), "browser script: {status}");
    }
}

fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A SIP phone in `conf_1234` playing its tone once it has heard the
/// room's announcement.
async fn phone_in_room(sb: &TestEngine) -> (Agent, switchboard_testagent::Call) {
    let agent = Agent::bind(AgentConfig::udp()).await.expect("agent binds");
    let call = agent
        .call(&sb.uri("conf_1234"), CallOptions::default())
        .await
        .expect("the room answers");
    call.wait_for_speech(T)
        .await
        .expect("the agent hears the room's announcement");
    call.play_tone(AGENT_HZ, 0.3);
    (agent, call)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_loads_connects_over_websocket_and_its_invite_reaches_the_engine() {
    let sb = TestEngine::anyroom().await;
    let mut browser = Browser::start(&sb, &["--dial", "conf_1234", "--until", "answer"]).await;
    browser.expect("ready").await;
    // Without the WebRTC leg the engine refuses the offer (488); with it,
    // the call is answered and the page hangs up.
    let outcome = browser.next().await;
    match outcome["event"].as_str() {
        Some("answered") => browser.expect("done").await,
        Some("failed") => outcome,
        _ => panic!("unexpected {outcome}"),
    };
    let invites = sb
        .engine
        .sip_stats()
        .count(Direction::In, MessageKind::Request("INVITE"));
    assert!(invites >= 1, "the INVITE reached the engine");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_in_conf_1234_hears_the_phone_and_is_heard() {
    let sb = TestEngine::anyroom().await;
    let (_agent, phone) = phone_in_room(&sb).await;

    let screenshot = std::env::var("SWITCHBOARD_SCREENSHOT").ok();
    let mut args = vec![
        "--dial",
        "conf_1234",
        "--room",
        "conf_1234",
        "--hear",
        "1000",
        "--not-hear",
        "440",
        "--margin",
        "20",
    ];
    if let Some(path) = &screenshot {
        args.extend(["--screenshot", path.as_str()]);
    }
    let mut browser = Browser::start(&sb, &args).await;
    browser.expect("ready").await;
    browser.expect("answered").await;
    browser.expect("media").await;
    let room = browser.expect("in-room").await;
    let participants = room["participants"].as_array().expect("participants");
    assert_eq!(participants.len(), 2, "{room}");
    assert_eq!(
        participants.iter().filter(|p| p["you"] == true).count(),
        1,
        "{room}"
    );

    // The phone hears the browser's microphone, not itself.
    let heard = phone
        .wait_for_tone(BROWSER_HZ, min_db_over(20.0, &[AGENT_HZ]), T)
        .await
        .expect("the phone hears the browser (440 Hz), not itself");
    println!("phone: {heard}");
    // The page hears the phone, not itself.
    let measured = browser.expect("measured").await;
    assert_eq!(
        measured["ok"], true,
        "the page hears 1000 Hz at least 20 dB over 440 Hz: {measured}"
    );

    browser.hang_up().await;
    phone.hangup().await.expect("BYE answered");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_keys_its_room_code_on_the_keypad() {
    let sb = TestEngine::anyroom().await;
    let (_agent, phone) = phone_in_room(&sb).await;

    let mut browser = Browser::start(
        &sb,
        &[
            "--dial",
            "5550100",
            "--keys",
            "1234#",
            "--room",
            "conf_1234",
        ],
    )
    .await;
    browser.expect("ready").await;
    browser.expect("answered").await;
    browser.expect("media").await;
    browser.expect("in-room").await;
    phone
        .wait_for_tone(BROWSER_HZ, min_db_over(20.0, &[AGENT_HZ]), T)
        .await
        .expect("the phone hears the browser that keyed 1234#");

    browser.hang_up().await;
    phone.hangup().await.expect("BYE answered");
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}
