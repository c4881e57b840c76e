//! `switchboard test-scenario FILE --dtmf 1234# ...`: the command-line face
//! of [`Simulation`]. The engine's CLI flattens [`TestScenarioArgs`] into its
//! subcommand and prints what [`run_test_scenario`] returns.

use std::path::PathBuf;
use std::time::Duration;

use super::call::SimCall;
use super::dial::{reason_phrase, SimDial};
use super::simulation::{SimError, Simulation, DEFAULT_MAX_DURATION};

/// Runs a scenario against a simulated call (no network, virtual time) and
/// prints what happened.
#[derive(Debug, Clone, clap::Args)]
pub struct TestScenarioArgs {
    /// The scenario (an ES module). Other *.js files of its directory are
    /// modules it may import; the directory's app.toml rules route routeTo.
    pub file: PathBuf,
    /// Keys the caller types in answer to the next prompt: once a say/play
    /// has started and then nothing has played for 300 ms, 300 ms apart.
    /// Repeat for later prompts (--dtmf 1234# --dtmf 4321#).
    #[arg(long, value_name = "KEYS")]
    pub dtmf: Vec<String>,
    /// Keys typed at a given time, e.g. 5s:1234# (repeatable).
    #[arg(long = "dtmf-at", value_name = "TIME:KEYS", value_parser = parse_timed_keys)]
    pub dtmf_at: Vec<(Duration, String)>,
    /// The caller hangs up at this time (e.g. 30s).
    #[arg(long, value_name = "TIME", value_parser = parse_duration)]
    pub hangup_at: Option<Duration>,
    /// The caller talks (as a conference hears it) from TIME for LENGTH, e.g. 5s:2s.
    #[arg(long = "talk-at", value_name = "TIME:LENGTH", value_parser = parse_talk)]
    pub talk_at: Vec<(Duration, Duration)>,
    /// From URI of the call.
    #[arg(long, default_value = "sip:caller@sim")]
    pub from: String,
    /// To URI of the call.
    #[arg(long, default_value = "sip:switchboard@sim")]
    pub to: String,
    /// The destination (ctx.destination; if app.toml routes it to this
    /// scenario, through that rule, e.g. a conference rule).
    #[arg(long, default_value = "test")]
    pub destination: String,
    /// An INVITE header, "Name: value" (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// ctx.customData, as JSON.
    #[arg(long, value_name = "JSON", value_parser = parse_json)]
    pub custom_data: Option<serde_json::Value>,
    /// Dialed calls answer after this long (the default, after 1s).
    #[arg(long, value_name = "AFTER", value_parser = parse_duration,
          conflicts_with_all = ["dial_fail", "dial_no_answer"])]
    pub dial_answer: Option<Duration>,
    /// Dialed calls fail with this SIP status (e.g. 486).
    #[arg(long, value_name = "CODE", value_parser = clap::value_parser!(u16).range(300..700),
          conflicts_with = "dial_no_answer")]
    pub dial_fail: Option<u16>,
    /// Dialed calls ring until their timeout.
    #[arg(long)]
    pub dial_no_answer: bool,
    /// fetch() of URLs starting with PREFIX answers STATUS with BODY, e.g.
    /// 'https://api.example.com/=200:{"open":true}' (repeatable; other URLs
    /// are not allowed).
    #[arg(long = "fetch", value_name = "PREFIX=STATUS:BODY", value_parser = parse_fetch)]
    pub fetch: Vec<(String, u16, String)>,
    /// How long playing a file or URL takes, e.g. hold.wav=30s (others: 3s).
    #[arg(long = "media-length", value_name = "SOURCE=TIME", value_parser = parse_media_length)]
    pub media_lengths: Vec<(String, Duration)>,
    /// Run onStart(ctx) instead of sending a call.
    #[arg(long)]
    pub on_start: bool,
    /// Stop (hang up every call) after this much virtual time.
    #[arg(long, value_name = "TIME", value_parser = parse_duration, default_value = "5m")]
    pub max_duration: Duration,
}

impl TestScenarioArgs {
    /// The arguments for `file` with everything else at its default.
    pub fn new(file: PathBuf) -> TestScenarioArgs {
        TestScenarioArgs {
            file,
            dtmf: Vec::new(),
            dtmf_at: Vec::new(),
            hangup_at: None,
            talk_at: Vec::new(),
            from: "sip:caller@sim".to_string(),
            to: "sip:switchboard@sim".to_string(),
            destination: "test".to_string(),
            headers: Vec::new(),
            custom_data: None,
            dial_answer: None,
            dial_fail: None,
            dial_no_answer: false,
            fetch: Vec::new(),
            media_lengths: Vec::new(),
            on_start: false,
            max_duration: DEFAULT_MAX_DURATION,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TestScenarioError {
    #[error(transparent)]
    Load(#[from] SimError),
    #[error("the simulation could not run: {0}")]
    Runtime(String),
}

/// Runs the simulation described by `args` on its own thread and virtual
/// clock (so it may be called from inside or outside a tokio runtime) and
/// returns the timeline as printed text, ending with a summary line.
pub fn run_test_scenario(args: &TestScenarioArgs) -> Result<String, TestScenarioError> {
    let simulation = simulation(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| TestScenarioError::Runtime(e.to_string()))?;
    let worker = std::thread::Builder::new()
        .name("test-scenario".into())
        .spawn(move || {
            runtime.block_on(async move {
                let started = tokio::time::Instant::now();
                let report = simulation.run().await;
                (
                    report.to_string(),
                    report.timed_out,
                    report.failed(),
                    started.elapsed(),
                )
            })
        })
        .map_err(|e| TestScenarioError::Runtime(e.to_string()))?;
    let (timeline, timed_out, failed, took) = worker
        .join()
        .map_err(|_| TestScenarioError::Runtime("the simulation panicked".into()))?;
    let outcome = match (timed_out, failed) {
        (true, _) => "stopped at the time limit",
        (false, true) => "the scenario failed",
        (false, false) => "ended",
    };
    Ok(format!(
        "{timeline}-- {outcome} after {:.3}s of simulated time\n",
        took.as_secs_f64()
    ))
}

fn simulation(args: &TestScenarioArgs) -> Result<Simulation, TestScenarioError> {
    let mut simulation = Simulation::from_file(&args.file)?
        .destination(&args.destination)
        .max_duration(args.max_duration);
    if let Some(data) = &args.custom_data {
        simulation = simulation.custom_data(data.clone());
    }
    let dial = if let Some(code) = args.dial_fail {
        Some(SimDial::fail(
            code,
            reason_phrase(code),
            Duration::from_secs(1),
        ))
    } else if args.dial_no_answer {
        Some(SimDial::no_answer())
    } else {
        args.dial_answer.map(SimDial::answer_after)
    };
    if let Some(dial) = dial {
        simulation = simulation.any_dial(dial);
    }
    for (prefix, status, body) in &args.fetch {
        simulation = simulation.respond(prefix, *status, body);
    }
    for (source, length) in &args.media_lengths {
        simulation = simulation.media_length(source, *length);
    }
    if args.on_start {
        return Ok(simulation.on_start());
    }
    let mut call = SimCall::builder("call-1").from(&args.from).to(&args.to);
    for (name, value) in &args.headers {
        call = call.header(name, value);
    }
    for keys in &args.dtmf {
        call = call.dtmf_on_prompt(keys);
    }
    for (at, keys) in &args.dtmf_at {
        call = call.dtmf(*at, keys);
    }
    for (at, length) in &args.talk_at {
        call = call.talk(*at, *length);
    }
    if let Some(at) = args.hangup_at {
        call = call.hangup_at(at);
    }
    Ok(simulation.call(call))
}

/// `1.5s`, `300ms`, `2m`, `1h`, or a plain number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 300ms, 5s, 1.5s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a duration"))
}

fn dtmf_keys(keys: &str) -> Result<String, String> {
    let keys = keys.to_ascii_uppercase();
    if keys.is_empty()
        || !keys
            .chars()
            .all(|c| matches!(c, '0'..='9' | '*' | '#' | 'A'..='D'))
    {
        return Err(format!("{keys:?} is not DTMF keys (0-9 * # A-D)"));
    }
    Ok(keys)
}

fn parse_timed_keys(text: &str) -> Result<(Duration, String), String> {
    let (at, keys) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not TIME:KEYS (e.g. 5s:1234#)"))?;
    Ok((parse_duration(at)?, dtmf_keys(keys)?))
}

fn parse_talk(text: &str) -> Result<(Duration, Duration), String> {
    let (at, length) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not TIME:LENGTH (e.g. 5s:2s)"))?;
    Ok((parse_duration(at)?, parse_duration(length)?))
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not \"Name: value\""))?;
    Ok((name.trim().to_string(), value.trim().to_string()))
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// `PREFIX=STATUS:BODY`, split at the first `=` followed by a 3-digit status
/// (so the prefix may hold `=` in its query and the body anything).
fn parse_fetch(text: &str) -> Result<(String, u16, String), String> {
    let bad =
        || format!("{text:?} is not PREFIX=STATUS:BODY (e.g. https://api.example.com/=200:{{}})");
    let split = text.match_indices('=').find_map(|(at, _)| {
        let rest = &text[at + 1..];
        let status = rest.get(..3)?;
        let after = &rest[3..];
        let body = match after.strip_prefix(':') {
            Some(body) => body,
            None if after.is_empty() => "",
            None => return None,
        };
        let status: u16 = status.parse().ok()?;
        (100..=599)
            .contains(&status)
            .then(|| (text[..at].to_string(), status, body.to_string()))
    });
    split
        .filter(|(prefix, _, _)| !prefix.is_empty())
        .ok_or_else(bad)
}

fn parse_media_length(text: &str) -> Result<(String, Duration), String> {
    let (source, length) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not SOURCE=TIME (e.g. hold.wav=30s)"))?;
    Ok((source.to_string(), parse_duration(length)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn timed_keys_and_fetch_answers() {
        assert_eq!(
            parse_timed_keys("5s:12#"),
            Ok((Duration::from_secs(5), "12#".to_string()))
        );
        assert!(parse_timed_keys("5s:12x").is_err());
        // The body may contain '=' and ':'; the prefix may contain ':' and '='.
        assert_eq!(
            parse_fetch("https://h/x?a=b=200:{\"a\":\"b=c\"}"),
            Ok((
                "https://h/x?a=b".to_string(),
                200,
                "{\"a\":\"b=c\"}".to_string()
            ))
        );
        assert!(parse_fetch("https://h/x").is_err());
        assert_eq!(
            parse_fetch("https://h/x=404:nope"),
            Ok(("https://h/x".to_string(), 404, "nope".to_string()))
        );
    }
}
