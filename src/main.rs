//! The `fleetpulse` command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use fleetpulse::config::{Config, DEFAULT_LISTEN};

#[derive(Parser)]
#[command(
    name = "fleetpulse",
    version,
    about = "Fleet status as Prometheus metrics, a status page and a terminal board"
)]
struct Cli {
    /// Log level: error, warn, info, debug or trace (or a tracing filter).
    #[arg(long, global = true, default_value = "info", env = "FLEETPULSE_LOG")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch the fleet described by a config file and serve its views.
    Serve {
        /// The fleet inventory (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// Listen address; overrides the config's `listen`.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// State directory; overrides the config's `state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Watch only shard i of n (0-based): the environments whose stable
        /// name hash falls in it. n exporters given the same file cover the
        /// fleet exactly once between them.
        #[arg(long, value_name = "i/n")]
        shard: Option<fleetpulse::shard::Shard>,
    },
    /// Run a simulated fleet on loopback and the exporter watching it.
    Demo {
        /// Listen address of the exporter.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// State directory (recreated if missing).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Show a running exporter's board as a table; exits 1 when anything is
    /// red, 2 when the board cannot be read.
    Status {
        /// The exporter's base URL (or its /api/v1/fleet URL).
        #[arg(long, default_value = concat!("http://", "127.0.0.1:8937"), env = "FLEETPULSE_URL")]
        url: String,
        /// Show only this environment.
        #[arg(long)]
        stack: Option<String>,
        /// Print the (selected) board as fleet JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate a config file; exits non-zero with every error's location.
    CheckConfig {
        /// The fleet inventory (YAML).
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleetpulse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Status { url, stack, json } => runtime()?.block_on(async move {
            let colour = fleetpulse::status_cli::colour_wanted();
            match fleetpulse::status_cli::run(&url, stack.as_deref(), json, colour).await {
                Ok(report) => {
                    print!("{}", report.output);
                    Ok(ExitCode::from(report.exit_code))
                }
                Err(e) => {
                    eprintln!("fleetpulse status: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }),
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(c) => {
                let services: usize = c.environments.iter().map(|e| e.services.len()).sum();
                println!(
                    "{}: ok ({} environments, {} services)",
                    file.display(),
                    c.environments.len(),
                    services
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::Serve {
            config,
            listen,
            state_dir,
            shard,
        } => {
            let mut c = Config::load(&config)?;
            if let Some(shard) = shard {
                shard.apply(&mut c);
                tracing::info!(%shard, environments = c.environments.len(), "serving one shard");
            }
            if let Some(l) = listen {
                c.listen = l;
            }
            if let Some(d) = state_dir {
                c.state_dir = Some(d);
            }
            let config = Arc::new(c);
            runtime()?.block_on(async move {
                let listener = fleetpulse::server::bind(config.listen).await?;
                let running = fleetpulse::app::start(config, listener).await?;
                eprintln!("fleetpulse: serving on http://{}", running.addr);
                fleetpulse::app::shutdown_signal().await;
                tracing::info!("shutting down");
                running.shutdown().await?;
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Command::Demo { listen, state_dir } => {
            let state_dir =
                state_dir.unwrap_or_else(|| std::env::temp_dir().join("fleetpulse-demo"));
            runtime()?.block_on(async move {
                fleetpulse::demo::run(listen, &state_dir).await?;
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
    }
}
