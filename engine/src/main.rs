//! The `switchboard` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::app::Application;
use switchboard::config::{Config, Overrides};
use switchboard::Engine;
use tracing::info;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A programmable voice and conference engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine (the default).
    Serve(ServeArgs),
    /// Check an application directory: rules and scenarios compile.
    Check {
        /// Application directory (app.toml + *.js).
        dir: PathBuf,
    },
    /// Run a scenario against simulated calls (virtual time, no sockets) and
    /// print its timeline.
    TestScenario(switchboard_scenarios::sim::TestScenarioArgs),
    /// Explain which rule of an application a destination routes to.
    Route {
        /// Application directory (app.toml + *.js).
        dir: PathBuf,
        destination: String,
    },
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML config file (flags and environment override it).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// Application directory; the built-in `anyroom` example when omitted.
    #[arg(long, env = "SWITCHBOARD_APP")]
    app: Option<PathBuf>,
    /// SIP listen address, UDP and TCP [default: 0.0.0.0:5060].
    #[arg(long, env = "SWITCHBOARD_SIP")]
    sip: Option<String>,
    /// HTTP listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "SWITCHBOARD_HTTP")]
    http: Option<String>,
    /// RTP port range [default: 20000-29999].
    #[arg(long, env = "SWITCHBOARD_RTP_PORTS")]
    rtp_ports: Option<String>,
    /// IP RTP binds to [default: the SIP listen IP].
    #[arg(long, env = "SWITCHBOARD_RTP_IP")]
    rtp_ip: Option<String>,
    /// IP advertised in SDP when RTP binds to 0.0.0.0.
    #[arg(long, env = "SWITCHBOARD_PUBLIC_IP")]
    public_ip: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn")),
        )
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Check { dir } => {
            let app = Application::load_dir(&dir)
                .with_context(|| format!("application {}", dir.display()))?;
            println!(
                "{}: {} rules, scenarios: {}",
                app.name,
                app.rules.len(),
                app.scenario_names().join(", ")
            );
            Ok(())
        }
        Command::TestScenario(args) => {
            let timeline = switchboard_scenarios::sim::run_test_scenario(&args)?;
            print!("{timeline}");
            Ok(())
        }
        Command::Route { dir, destination } => {
            let app = Application::load_dir(&dir)
                .with_context(|| format!("application {}", dir.display()))?;
            println!("{}", app.rules.explain(&destination));
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(
        args.config.as_deref(),
        Overrides {
            sip: args.sip,
            http: args.http,
            rtp_ports: args.rtp_ports,
            rtp_ip: args.rtp_ip,
            public_ip: args.public_ip,
            app: args.app,
        },
    )?;
    let app = match &config.app {
        Some(dir) => Application::load_dir(dir)
            .with_context(|| format!("loading application {}", dir.display()))?,
        None => {
            info!("no --app given: running the built-in anyroom example");
            Application::builtin_anyroom()?
        }
    };
    let engine = Engine::start(config, app).await?;
    wait_for_stop_signal().await?;
    engine.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            result.context("waiting for Ctrl-C")?;
            info!("Ctrl-C: ending calls");
        }
        _ = term.recv() => info!("SIGTERM: ending calls"),
    }
    Ok(())
}
