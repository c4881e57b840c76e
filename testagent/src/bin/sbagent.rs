//! `sbagent`: the test agent from the command line, for manual testing.
//!
//! ```text
//! sbagent call sip:1234@127.0.0.1:5060 --tone 440 --dtmf 1234# --record out.wav --duration 10s
//! sbagent --port 5070 answer --tone 1000 --record in.wav
//! ```

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use switchboard_testagent::analysis::{rms_dbfs, SpeechStats};
use switchboard_testagent::{
    Agent, AgentConfig, AgentError, AnswerOptions, Call, CallOptions, Codec, Transport,
};

#[derive(Parser)]
#[command(
    name = "sbagent",
    about = "A scriptable SIP softphone for testing switchboard"
)]
struct Cli {
    /// Use TCP instead of UDP for SIP.
    #[arg(long, global = true)]
    tcp: bool,
    /// Local address for SIP and RTP.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Local SIP port (0: any).
    #[arg(long, global = true, default_value_t = 0)]
    port: u16,
    /// Log SIP messages (trace level).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Place a call.
    Call {
        /// Target, e.g. sip:1234@127.0.0.1:5060.
        uri: String,
        /// From URI.
        #[arg(long)]
        from: Option<String>,
        /// Extra INVITE header, "Name: value" (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Offered codecs in order, e.g. pcma,pcmu.
        #[arg(long, value_delimiter = ',', default_value = "pcmu,pcma")]
        codecs: Vec<String>,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Wait for calls and answer them.
    Answer {
        /// Final response: 200 answers, other codes reject.
        #[arg(long, default_value_t = 200)]
        code: u16,
        /// Ring this long before answering.
        #[arg(long, value_parser = parse_duration, default_value = "0s")]
        delay: Duration,
        /// Number of calls to take before exiting.
        #[arg(long, default_value_t = 1)]
        count: usize,
        #[command(flatten)]
        media: MediaArgs,
    },
}

#[derive(Args)]
struct MediaArgs {
    /// Stream a sine of this frequency (Hz).
    #[arg(long)]
    tone: Option<f32>,
    /// Tone amplitude as a fraction of full scale.
    #[arg(long, default_value_t = 0.3)]
    amplitude: f32,
    /// Play an 8 kHz WAV file instead of a tone.
    #[arg(long)]
    play: Option<PathBuf>,
    /// Send these digits (RFC 4733) after --dtmf-delay.
    #[arg(long)]
    dtmf: Option<String>,
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    dtmf_delay: Duration,
    /// Send the digits as in-band tones instead.
    #[arg(long)]
    inband: bool,
    /// Save what was heard as a WAV file.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Hang up after this long (unless the remote hangs up first).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
}

/// `10s`, `500ms`, `2m`, or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit in {text:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| e.to_string())
}

fn parse_codec(name: &str) -> Result<Codec, AgentError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "pcmu" | "ulaw" => Ok(Codec::Pcmu),
        "pcma" | "alaw" => Ok(Codec::Pcma),
        "opus" => Ok(Codec::Opus),
        other => Err(AgentError::InvalidState(format!(
            "unknown codec {other:?} (pcmu, pcma, opus)"
        ))),
    }
}

fn parse_header(text: &str) -> Result<(String, String), AgentError> {
    text.split_once(':')
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| AgentError::InvalidState(format!("header {text:?} is not \"Name: value\"")))
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = if cli.verbose {
        "switchboard_testagent=trace"
    } else {
        "switchboard_testagent=info"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = run(cli).await;
    // Let the last responses (e.g. the 200 to a BYE) leave before exiting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sbagent: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), AgentError> {
    let config = AgentConfig {
        transport: if cli.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        local_ip: cli.bind,
        port: cli.port,
        ..AgentConfig::default()
    };
    let agent = Agent::bind(config).await?;
    match cli.command {
        Command::Call {
            uri,
            from,
            headers,
            codecs,
            media,
        } => {
            let mut options = CallOptions::default().codecs(
                codecs
                    .iter()
                    .map(|c| parse_codec(c))
                    .collect::<Result<Vec<_>, _>>()?,
            );
            options.from = from;
            for header in &headers {
                let (name, value) = parse_header(header)?;
                options = options.header(name, value);
            }
            println!("calling {uri} from {}", agent.uri());
            let outgoing = agent.dial(&uri, options).await?;
            let call = outgoing.answered().await?;
            for provisional in outgoing.provisionals() {
                println!("  {} {}", provisional.code, provisional.reason);
            }
            converse(&call, &media).await
        }
        Command::Answer {
            code,
            delay,
            count,
            media,
        } => {
            println!("waiting for calls at {}", agent.uri());
            for _ in 0..count {
                let incoming = agent.accept_next(Duration::from_secs(86_400)).await?;
                println!("INVITE {} from {}", incoming.request_uri(), incoming.from());
                incoming.ring().await?;
                tokio::time::sleep(delay).await;
                if code >= 300 {
                    incoming.reject(code).await?;
                    println!("rejected with {code}");
                    continue;
                }
                let call = incoming.answer_with(AnswerOptions::default()).await?;
                converse(&call, &media).await?;
            }
            Ok(())
        }
    }
}

/// Plays, sends digits and records until the duration or the remote's BYE.
async fn converse(call: &Call, media: &MediaArgs) -> Result<(), AgentError> {
    println!(
        "answered: {:?}, RTP {} -> {:?}",
        call.codec(),
        call.local_addr(),
        call.remote_addr()
    );
    if let Some(path) = &media.play {
        call.play_wav(path)?;
    } else if let Some(freq) = media.tone {
        call.play_tone(freq, media.amplitude);
    }
    let digits = async {
        if let Some(digits) = &media.dtmf {
            tokio::time::sleep(media.dtmf_delay).await;
            let sent = if media.inband {
                call.send_dtmf_inband(digits).await
            } else {
                call.send_dtmf(digits).await
            };
            match sent {
                Ok(()) => println!("sent digits {digits}"),
                Err(error) => eprintln!("digits not sent: {error}"),
            }
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        ended = call.wait_ended(media.duration) => match ended {
            Ok(reason) => println!("call ended: {reason}"),
            Err(_) => {
                call.hangup().await?;
                println!("hung up after {:?}", media.duration);
            }
        },
        _ = digits => {}
    }
    let recording = call.recording();
    println!(
        "heard {:.1} s, RMS {:.1} dBFS, {} RTP packets in, {} out, digits {:?}",
        recording.len() as f64 / 8000.0,
        rms_dbfs(&recording),
        call.packets_received(),
        call.packets_sent(),
        call.received_digits()
    );
    println!(
        "last second: {}",
        SpeechStats::measure(&call.last(Duration::from_secs(1)))
    );
    if let Some(path) = &media.record {
        call.save_recording(path)?;
        println!("recording saved to {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn codecs_and_headers() {
        assert_eq!(parse_codec("PCMA").ok(), Some(Codec::Pcma));
        assert_eq!(parse_codec("Opus").ok(), Some(Codec::Opus));
        assert!(parse_codec("g729").is_err());
        assert_eq!(
            parse_header("X-Room: 42").ok(),
            Some(("X-Room".to_string(), "42".to_string()))
        );
        assert!(parse_header("nonsense").is_err());
    }
}
