//! Shared harness of the API tests: a full server (engine + SQLite + API)
//! on loopback, in process or as the real binary, and a small HTTP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::config::{Config, Overrides};
use switchboard::Server;
use switchboard_sip::Transport;

/// Generous: CI is a busy 2-core machine.
pub const T: Duration = Duration::from_secs(20);

/// The admin key every test server starts with.
pub const ADMIN_KEY: &str = "sb_testadmin001_0123456789abcdefghijklmnopqrstuv";

/// RTP ports of servers under test (other suites use 30000-40999).
const RTP_PORTS: &str = "41000-44999";

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn")),
        )
        .try_init();
}

pub fn examples_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(name)
}

/// An answer: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Answer {
    /// Asserts the status and, for errors, the stable error shape and code.
    pub fn expect(self, status: u16) -> Answer {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        self
    }

    pub fn expect_error(self, status: u16, code: &str) -> Answer {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "error code in {}", self.text);
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error message in {}",
            self.text
        );
        let keys: Vec<&String> = self.body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error"], "only `error` at the top: {}", self.text);
        self
    }
}

/// A small client for one server.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(http_addr: SocketAddr) -> Api {
        Api {
            base: format!("http://{http_addr}"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.finish(request).await
    }

    /// A request with a raw body and content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        self.finish(request).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, body, text }
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.send(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn put(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send(Method::PUT, path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send(Method::PATCH, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Answer {
        self.send(Method::DELETE, path, Some(key), None).await
    }

    /// Uploads a scenario source as JavaScript.
    pub async fn put_scenario(&self, app: &str, name: &str, key: &str, source: &str) -> Answer {
        self.send_raw(
            Method::PUT,
            &format!("/api/v1/applications/{app}/scenarios/{name}"),
            Some(key),
            "application/javascript",
            source.to_string(),
        )
        .await
    }

    /// Creates an account and a key of `role` in it; returns (account id, key).
    pub async fn tenant(&self, admin: &str, name: &str, role: &str) -> (String, String) {
        let account = self
            .post("/api/v1/accounts", admin, json!({ "name": name }))
            .await
            .expect(201);
        let id = account.body["id"].as_str().unwrap().to_string();
        let key = self.key(admin, &id, role).await;
        (id, key)
    }

    /// A new key of `role` in `account`.
    pub async fn key(&self, admin: &str, account: &str, role: &str) -> String {
        let key = self
            .post(
                "/api/v1/keys",
                admin,
                json!({ "name": format!("{role} key"), "role": role, "account": account }),
            )
            .await
            .expect(201);
        key.body["key"].as_str().unwrap().to_string()
    }

    /// Waits until `check` holds for the answer to GET `path`.
    pub async fn wait_for(
        &self,
        path: &str,
        key: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let answer = self.get(path, key).await;
            if answer.status == 200 && check(&answer.body) {
                return answer.body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}; last answer: {}",
                answer.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A simple scenario that answers and waits for the caller to hang up.
pub const HOLD_SCENARIO: &str = r#"
export default {
  async onCall(call, ctx) {
    await call.answer();
    console.log(`holding ${call.id} on ${ctx.destination}`);
    await new Promise((resolve) => call.on("hangup", resolve));
  },
};
"#;

/// An in-process server with a fresh database in a temporary directory.
pub struct TestServer {
    pub server: Server,
    pub api: Api,
    pub udp: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        TestServer::start_in(dir).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> TestServer {
        init_tracing();
        let config = test_config(&dir.path().join("switchboard.db"));
        let server = Server::start(config, Some(ADMIN_KEY.to_string()))
            .await
            .expect("the server starts");
        let udp = server
            .engine()
            .sip_addr(Transport::Udp)
            .expect("udp listener");
        TestServer {
            api: Api::new(server.http_addr()),
            server,
            udp,
            dir,
        }
    }

    /// `sip:<user>@<engine>` over UDP.
    pub fn uri(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.udp)
    }

    /// `sip:<user>@<host>:<port>` with another host name (for domains).
    pub fn uri_at(&self, user: &str, host: &str) -> String {
        format!("sip:{user}@{host}:{}", self.udp.port())
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.server.shutdown().await;
        self.dir
    }
}

pub fn test_config(db: &Path) -> Config {
    Config::load(
        None,
        Overrides {
            sip: Some("127.0.0.1:0".into()),
            http: Some("127.0.0.1:0".into()),
            rtp_ports: Some(RTP_PORTS.into()),
            db: Some(db.to_path_buf()),
            ..Default::default()
        },
    )
    .expect("config")
}

/// The `switchboard` binary running `serve`, its stdout and stderr echoed
/// and watched.
pub struct ServerProcess {
    pub child: Child,
    pub api: Api,
    pub http: SocketAddr,
    pub sip: SocketAddr,
    /// Every stdout line so far.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A free port on 127.0.0.1 for UDP and TCP alike.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

impl ServerProcess {
    /// Starts `switchboard serve --db <db>` (plus `extra` flags) and waits
    /// until it is ready. `admin_key` goes in SWITCHBOARD_ADMIN_KEY.
    pub fn spawn(db: &Path, admin_key: Option<&str>, extra: &[&str]) -> ServerProcess {
        let sip_port = free_port();
        let http_port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args([
                "serve",
                "--db",
                &db.display().to_string(),
                "--sip",
                &format!("127.0.0.1:{sip_port}"),
                "--http",
                &format!("127.0.0.1:{http_port}"),
                "--rtp-ports",
                "45000-45999",
            ])
            .args(extra)
            .env("RUST_LOG", "info,rsipstack=warn")
            .env_remove("SWITCHBOARD_APP")
            .env_remove("SWITCHBOARD_CONFIG")
            .env_remove("SWITCHBOARD_DB")
            .env_remove("SWITCHBOARD_ADMIN_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = admin_key {
            command.env("SWITCHBOARD_ADMIN_KEY", key);
        }
        let mut child = command.spawn().expect("the switchboard binary starts");
        let stdout_lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let lines = stdout_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[switchboard stdout] {line}");
                lines.lock().unwrap().push(line);
            }
        });
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
        let http = SocketAddr::from(([127, 0, 0, 1], http_port));
        ServerProcess {
            child,
            api: Api::new(http),
            http,
            sip: SocketAddr::from(([127, 0, 0, 1], sip_port)),
            stdout: stdout_lines,
        }
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    /// `kill -<signal>`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its exit code (None if killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
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

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `switchboard` CLI with `args` against `url` and `key`;
/// returns (success, stdout, stderr).
pub fn cli(url: &str, key: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_URL", url)
        .env("SWITCHBOARD_KEY", key)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
