//! Engine configuration: command-line flags, `SWITCHBOARD_*` environment
//! variables and an optional TOML file, in that order of precedence.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where the database lives unless told otherwise.
pub const DEFAULT_DB: &str = "data/switchboard.db";
/// Where the web dial page is served from unless told otherwise: what
/// `scripts/web` builds, relative to the repository root.
pub const DEFAULT_WEB: &str = "web/dist";

/// Everything `switchboard serve` needs, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// SIP listen address, UDP and TCP.
    pub sip: SocketAddr,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// RTP port range (one even port per call).
    pub rtp_ports: RangeInclusive<u16>,
    /// Address RTP sockets bind to. Defaults to the SIP listen IP.
    pub rtp_ip: IpAddr,
    /// Address written into SDP when RTP binds to a wildcard address. When
    /// unset, the local address the OS would use toward the caller is used.
    pub public_ip: Option<IpAddr>,
    /// An application directory deployed at start as the default
    /// application (stored in the database, so it persists).
    pub app: Option<PathBuf>,
    /// The SQLite database file (created on first start).
    pub db: PathBuf,
    /// Where recordings are written; `None`: `recordings/` next to the
    /// database (see [`Config::recordings_dir`]).
    pub recordings: Option<PathBuf>,
    /// The built web dial page (`/phone`).
    pub web: PathBuf,
    /// PEM certificate chain and private key: when both are set, the HTTP
    /// port serves HTTPS, and SIP over secure WebSocket (WSS) on `/ws`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Media worker threads (0 = one per core).
    pub media_workers: usize,
    pub tts: TtsConfig,
    pub limits: ScenarioLimits,
}

#[derive(Debug, Clone)]
pub struct TtsConfig {
    /// The espeak-ng executable.
    pub espeak: PathBuf,
    /// Default voice (espeak-ng `-v`).
    pub voice: String,
    /// Prompts kept in the synthesis cache.
    pub cache_entries: usize,
}

#[derive(Debug, Clone)]
pub struct ScenarioLimits {
    pub memory_bytes: usize,
    pub cpu_per_callback: Duration,
    pub max_timers: usize,
    /// Longest a call may stay with a scenario (`None`: no limit).
    pub max_call_duration: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sip: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 5060),
            http: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080),
            rtp_ports: 20000..=29999,
            rtp_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            public_ip: None,
            app: None,
            db: PathBuf::from(DEFAULT_DB),
            recordings: None,
            web: PathBuf::from(DEFAULT_WEB),
            tls_cert: None,
            tls_key: None,
            media_workers: 0,
            tts: TtsConfig {
                espeak: PathBuf::from("espeak-ng"),
                voice: "en-us".to_string(),
                cache_entries: 512,
            },
            limits: ScenarioLimits {
                memory_bytes: 16 * 1024 * 1024,
                cpu_per_callback: Duration::from_secs(1),
                max_timers: 1000,
                max_call_duration: None,
            },
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Settings given on the command line or in the environment; `None` means
/// "not given here".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub sip: Option<String>,
    pub http: Option<String>,
    pub rtp_ports: Option<String>,
    pub rtp_ip: Option<String>,
    pub public_ip: Option<String>,
    pub app: Option<PathBuf>,
    pub db: Option<PathBuf>,
    pub recordings: Option<PathBuf>,
    pub web: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    sip: Option<String>,
    http: Option<String>,
    rtp_ports: Option<String>,
    rtp_ip: Option<String>,
    public_ip: Option<String>,
    app: Option<PathBuf>,
    db: Option<PathBuf>,
    recordings: Option<PathBuf>,
    web: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    media_workers: Option<usize>,
    #[serde(default)]
    tts: FileTts,
    #[serde(default)]
    limits: FileLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTts {
    espeak: Option<PathBuf>,
    voice: Option<String>,
    cache_entries: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    memory_mb: Option<usize>,
    cpu_ms: Option<u64>,
    max_timers: Option<usize>,
    max_call_seconds: Option<u64>,
}

impl Config {
    /// The directory recordings go to: as configured, or `recordings/`
    /// beside the database.
    pub fn recordings_dir(&self) -> PathBuf {
        match &self.recordings {
            Some(dir) => dir.clone(),
            None => self
                .db
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("recordings"),
        }
    }

    /// Resolves the configuration: defaults, then the file (if any), then
    /// `overrides` (flags and environment).
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Config, ConfigError> {
        let file_config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let mut config = Config::default();
        let pick = |flag: Option<String>, file: Option<String>| flag.or(file);

        if let Some(sip) = pick(overrides.sip, file_config.sip) {
            config.sip = parse_socket_addr("sip", &sip, 5060)?;
        }
        if let Some(http) = pick(overrides.http, file_config.http) {
            config.http = parse_socket_addr("http", &http, 8080)?;
        }
        if let Some(ports) = pick(overrides.rtp_ports, file_config.rtp_ports) {
            config.rtp_ports = parse_port_range(&ports)?;
        }
        config.rtp_ip = match pick(overrides.rtp_ip, file_config.rtp_ip) {
            Some(ip) => parse_ip("rtp-ip", &ip)?,
            None => config.sip.ip(),
        };
        if let Some(ip) = pick(overrides.public_ip, file_config.public_ip) {
            config.public_ip = Some(parse_ip("public-ip", &ip)?);
        }
        config.app = overrides.app.or(file_config.app);
        if let Some(db) = overrides.db.or(file_config.db) {
            config.db = db;
        }
        config.recordings = overrides.recordings.or(file_config.recordings);
        if let Some(web) = overrides.web.or(file_config.web) {
            config.web = web;
        }
        config.tls_cert = overrides.tls_cert.or(file_config.tls_cert);
        config.tls_key = overrides.tls_key.or(file_config.tls_key);
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            return Err(ConfigError::Invalid {
                field: "tls-cert/tls-key",
                message: "give both the certificate and its key, or neither".into(),
            });
        }
        if let Some(workers) = file_config.media_workers {
            config.media_workers = workers;
        }
        if let Some(espeak) = file_config.tts.espeak {
            config.tts.espeak = espeak;
        }
        if let Some(voice) = file_config.tts.voice {
            config.tts.voice = voice;
        }
        if let Some(entries) = file_config.tts.cache_entries {
            config.tts.cache_entries = entries.max(1);
        }
        if let Some(mb) = file_config.limits.memory_mb {
            config.limits.memory_bytes = mb * 1024 * 1024;
        }
        if let Some(ms) = file_config.limits.cpu_ms {
            config.limits.cpu_per_callback = Duration::from_millis(ms);
        }
        if let Some(timers) = file_config.limits.max_timers {
            config.limits.max_timers = timers;
        }
        if let Some(seconds) = file_config.limits.max_call_seconds {
            config.limits.max_call_duration = Some(Duration::from_secs(seconds));
        }
        Ok(config)
    }
}

/// Accepts `ip:port`, `[v6]:port`, a bare IP (default port) or `:port`.
fn parse_socket_addr(
    field: &'static str,
    text: &str,
    default_port: u16,
) -> Result<SocketAddr, ConfigError> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if let Some(port) = text.strip_prefix(':') {
        if let Ok(port) = port.parse::<u16>() {
            return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
        }
    }
    Err(ConfigError::Invalid {
        field,
        message: format!("{text:?} is not an address like 127.0.0.1:5060"),
    })
}

fn parse_ip(field: &'static str, text: &str) -> Result<IpAddr, ConfigError> {
    text.trim().parse().map_err(|_| ConfigError::Invalid {
        field,
        message: format!("{text:?} is not an IP address"),
    })
}

/// `20000-20999`: at least two ports, since each call takes an even one.
fn parse_port_range(text: &str) -> Result<RangeInclusive<u16>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        field: "rtp-ports",
        message,
    };
    let (low, high) = text
        .trim()
        .split_once('-')
        .ok_or_else(|| invalid(format!("{text:?} is not a range like 20000-20999")))?;
    let low: u16 = low
        .trim()
        .parse()
        .map_err(|_| invalid(format!("{low:?} is not a port")))?;
    let high: u16 = high
        .trim()
        .parse()
        .map_err(|_| invalid(format!("{high:?} is not a port")))?;
    if low == 0 || high <= low {
        return Err(invalid(format!(
            "{text:?}: need 0 < low < high (each call takes an even port)"
        )));
    }
    Ok(low..=high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_everywhere_on_standard_ports() {
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.sip, "0.0.0.0:5060".parse().unwrap());
        assert_eq!(c.http, "0.0.0.0:8080".parse().unwrap());
        assert!(c.app.is_none());
        assert_eq!(c.db, PathBuf::from("data/switchboard.db"));
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("switchboard.toml");
        std::fs::write(
            &path,
            "db = \"/var/lib/sb.db\"\nsip = \"127.0.0.1:5070\"\nhttp = \"127.0.0.1:9090\"\nrtp_ports = \"30000-30100\"\n[tts]\nvoice = \"en-gb\"\n[limits]\ncpu_ms = 250\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&path),
            Overrides {
                sip: Some("127.0.0.2:5080".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.sip, "127.0.0.2:5080".parse().unwrap());
        assert_eq!(c.http, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.rtp_ports, 30000..=30100);
        assert_eq!(c.rtp_ip, "127.0.0.2".parse::<IpAddr>().unwrap());
        assert_eq!(c.tts.voice, "en-gb");
        assert_eq!(c.limits.cpu_per_callback, Duration::from_millis(250));
        assert_eq!(c.db, PathBuf::from("/var/lib/sb.db"));
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Config::load(
            None,
            Overrides {
                rtp_ports: Some("20000".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("rtp-ports"), "{err}");
        let err = Config::load(
            None,
            Overrides {
                sip: Some("nonsense".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("sip"), "{err}");
        let err = Config::load(
            None,
            Overrides {
                tls_cert: Some("cert.pem".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("tls-key"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "sipp = \"x\"\n").unwrap();
        let err = Config::load(Some(&path), Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("sipp"), "{err}");
    }

    #[test]
    fn address_shorthands() {
        assert_eq!(
            parse_socket_addr("sip", ":5070", 5060).unwrap(),
            "0.0.0.0:5070".parse().unwrap()
        );
        assert_eq!(
            parse_socket_addr("sip", "127.0.0.1", 5060).unwrap(),
            "127.0.0.1:5060".parse().unwrap()
        );
    }
}
