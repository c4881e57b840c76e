//! The `switchboard` binary and third-party peers: Ctrl-C ends calls with
//! BYE, and SIPp (a real, independent SIP implementation) can call a room
//! and be heard there.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{TestEngine, T};
use switchboard_testagent::analysis::SpeechStats;
use switchboard_testagent::{Agent, AgentConfig, CallOptions};

/// A free port number on 127.0.0.1 for both UDP and TCP.
fn free_sip_port() -> u16 {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// The engine binary, running until killed; its log is echoed to the test's output.
struct EngineProcess {
    child: Child,
    sip: SocketAddr,
    /// Holds the engine's database.
    _dir: tempfile::TempDir,
}

impl EngineProcess {
    fn spawn() -> EngineProcess {
        let port = free_sip_port();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("switchboard.db");
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args([
                "serve",
                "--db",
                &db.display().to_string(),
                "--sip",
                &format!("127.0.0.1:{port}"),
                "--http",
                "127.0.0.1:0",
                "--rtp-ports",
                "40000-40999",
            ])
            .env("RUST_LOG", "info,rsipstack=warn")
            .env_remove("SWITCHBOARD_APP")
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_DB")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the switchboard binary starts");
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("[switchboard] {line}");
                if line.contains("switchboard ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("switchboard logs that it is ready");
        EngineProcess {
            child,
            sip: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "switchboard did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EngineProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_ends_calls_with_bye_and_exits() {
    let mut engine = EngineProcess::spawn();
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let call = ua
        .call(
            &format!("sip:conf_9@{}", engine.sip),
            CallOptions::default(),
        )
        .await
        .expect("the built-in anyroom answers");
    call.wait_for_speech(T).await.unwrap();

    engine.signal("INT");
    let reason = call.wait_ended(T).await.expect("BYE on Ctrl-C");
    assert!(reason.is_remote_bye(), "{reason:?}");
    let code = tokio::task::spawn_blocking(move || engine.wait_exit(T))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_joins_a_room_plays_a_pcap_and_hangs_up() {
    let sipp = which("sipp").expect("SIPp is needed: apt install sip-tester (scripts/test does)");
    let sb = TestEngine::anyroom().await;

    // A listener in room 1234 hears what SIPp streams.
    let ua = Agent::bind(AgentConfig::udp()).await.unwrap();
    let listener = ua
        .call(&sb.uri("conf_1234"), CallOptions::default())
        .await
        .unwrap();
    listener.wait_for_speech(T).await.unwrap();
    listener
        .wait_for_silence(-50.0, T)
        .await
        .expect("announcement over");

    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sipp/uac_conf_pcap.xml");
    let sip_port = free_sip_port();
    let media_port = free_sip_port();
    let target = sb.udp.to_string();
    let started = std::time::Instant::now();
    let mut child = tokio::process::Command::new(sipp)
        .args([
            "-sf",
            scenario,
            "-s",
            "conf_1234",
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            &sip_port.to_string(),
            "-mp",
            &media_port.to_string(),
            "-timeout",
            "60s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-error_file",
            &std::env::temp_dir()
                .join(format!("sipp-errors-{sip_port}.log"))
                .to_string_lossy(),
            &target,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp starts");

    // Only what arrives after SIPp was started counts (the listener's own
    // announcement is still in the last second of its recording).
    let heard = listener
        .wait_for("SIPp's pcap audio in the room", T, |media| {
            let since = media.recording_since(started);
            let window = since.len().saturating_sub(8000);
            let stats = SpeechStats::measure(&since[window..]);
            if since.len() >= 8000 && stats.is_speech_like() {
                Ok(stats)
            } else {
                Err(format!(
                    "{} samples since SIPp started; last second: {stats}",
                    since.len()
                ))
            }
        })
        .await
        .expect("the room hears SIPp's pcap audio");
    println!("listener heard SIPp: {heard}");

    let output = tokio::time::timeout(Duration::from_secs(90), async {
        let status = child.wait().await.unwrap();
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            use tokio::io::AsyncReadExt;
            let _ = err.read_to_string(&mut stderr).await;
        }
        (status, stderr)
    })
    .await
    .expect("sipp finishes");
    assert!(
        output.0.success(),
        "sipp failed ({}): {}",
        output.0,
        output.1
    );

    // SIPp's BYE took it out of the room.
    listener
        .wait_for_silence(-50.0, T)
        .await
        .expect("silence after SIPp left");
    listener.hangup().await.unwrap();
    sb.wait_idle().await;
    sb.engine.shutdown().await;
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}
