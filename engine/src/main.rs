//! The `switchboard` command line: `serve` (the default) runs the engine;
//! `check` validates an application directory offline; `deploy`, `apps`,
//! `calls`, `logs`, `route` and `history` talk to a running server's API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use switchboard::app::Application;
use switchboard::cli::{self, Client, DEFAULT_URL};
use switchboard::config::{Config, Overrides};
use switchboard::control::ADMIN_KEY_ENV;
use switchboard::Server;
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
    /// Run the engine and its management API (the default).
    Serve(ServeArgs),
    /// Check an application directory offline: rules and scenarios compile.
    Check {
        /// Application directory (app.toml + *.js).
        dir: PathBuf,
    },
    /// Run a scenario against simulated calls (virtual time, no sockets) and
    /// print its timeline.
    TestScenario(switchboard_scenarios::sim::TestScenarioArgs),
    /// Deploy an application directory (app.toml + *.js) to a server:
    /// changed scenarios get new versions, the rules become app.toml's.
    Deploy {
        #[command(flatten)]
        api: ApiArgs,
        /// Application directory.
        dir: PathBuf,
        /// Also delete scenarios that are not in the directory.
        #[arg(long)]
        prune: bool,
        /// Make it the default application (admin keys): it gets the calls
        /// no number or domain claims.
        #[arg(long)]
        default: bool,
    },
    /// List the applications of the key's account.
    Apps {
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List live calls.
    Calls {
        #[command(flatten)]
        api: ApiArgs,
        /// Only this application's (id or name).
        #[arg(long)]
        app: Option<String>,
    },
    /// Show a call's log (so far, if it is still up).
    Logs {
        #[command(flatten)]
        api: ApiArgs,
        /// Call id (see `switchboard calls`).
        call: String,
    },
    /// Explain which rule of an application a destination routes to.
    Route {
        #[command(flatten)]
        api: ApiArgs,
        /// Application id or name.
        app: String,
        destination: String,
    },
    /// Show finished calls, newest first.
    History {
        #[command(flatten)]
        api: ApiArgs,
        /// Only this application's (id or name).
        #[arg(long)]
        app: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// How to reach the management API.
#[derive(clap::Args)]
struct ApiArgs {
    /// The server's HTTP address.
    #[arg(long, env = "SWITCHBOARD_URL", default_value = DEFAULT_URL)]
    url: String,
    /// API key (`Authorization: Bearer`).
    #[arg(long, env = "SWITCHBOARD_KEY", hide_env_values = true)]
    key: Option<String>,
}

impl ApiArgs {
    fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url, self.key.as_deref().unwrap_or(""))?)
    }
}

#[derive(clap::Args, Default)]
struct ServeArgs {
    /// TOML config file (flags and environment override it).
    #[arg(long, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    /// SQLite database file [default: data/switchboard.db].
    #[arg(long, env = "SWITCHBOARD_DB")]
    db: Option<PathBuf>,
    /// Directory for recordings [default: recordings/ beside the database].
    #[arg(long, env = "SWITCHBOARD_RECORDINGS")]
    recordings: Option<PathBuf>,
    /// The built web dial page served at /phone [default: web/dist].
    #[arg(long, env = "SWITCHBOARD_WEB")]
    web: Option<PathBuf>,
    /// PEM certificate chain: with --tls-key, HTTP serves HTTPS and WSS.
    #[arg(long, env = "SWITCHBOARD_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SWITCHBOARD_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Application directory to deploy at start as the default application.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=warn")),
        )
        .init();
    let result = tokio::runtime::Runtime::new()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command; returns what to print.
async fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args).await.map(|()| String::new()),
        Command::Check { dir } => {
            let app = Application::load_dir(&dir)
                .with_context(|| format!("application {}", dir.display()))?;
            Ok(format!(
                "{}: {} rules, scenarios: {}\n",
                app.name,
                app.rules.len(),
                app.scenario_names().join(", ")
            ))
        }
        Command::TestScenario(args) => {
            // The simulator runs its own runtime on its own thread.
            Ok(tokio::task::spawn_blocking(move || {
                switchboard_scenarios::sim::run_test_scenario(&args)
            })
            .await??)
        }
        Command::Deploy {
            api,
            dir,
            prune,
            default,
        } => Ok(cli::deploy(&api.client()?, &dir, prune, default)
            .await
            .with_context(|| format!("deploying {}", dir.display()))?),
        Command::Apps { api } => Ok(cli::apps(&api.client()?).await?),
        Command::Calls { api, app } => Ok(cli::calls(&api.client()?, app.as_deref()).await?),
        Command::Logs { api, call } => Ok(cli::logs(&api.client()?, &call).await?),
        Command::Route {
            api,
            app,
            destination,
        } => Ok(cli::route(&api.client()?, &app, &destination).await?),
        Command::History { api, app, limit } => {
            Ok(cli::history(&api.client()?, app.as_deref(), limit).await?)
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
            db: args.db,
            recordings: args.recordings,
            web: args.web,
            tls_cert: args.tls_cert,
            tls_key: args.tls_key,
        },
    )?;
    let admin_key = std::env::var(ADMIN_KEY_ENV).ok().filter(|k| !k.is_empty());
    let server = Server::start(config, admin_key).await?;
    if let Some(key) = server.created_admin_key() {
        // Shown once: only its hash is stored.
        println!(
            "switchboard: created the first admin API key. It is shown only this once:\n\n    {key}\n\n\
             Send it as `Authorization: Bearer <key>`; the CLI reads SWITCHBOARD_KEY."
        );
    }
    wait_for_stop_signal().await?;
    server.shutdown().await;
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
