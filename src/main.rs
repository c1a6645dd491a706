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
    long_version = fleetpulse::build::long_version(),
    about = "Fleet status as Prometheus metrics, a status page and a terminal board"
)]
struct Cli {
    /// Log level: error, warn, info, debug or trace (or a tracing filter).
    #[arg(
        long = "log.level",
        alias = "log-level",
        global = true,
        default_value = "info",
        env = "FLEETPULSE_LOG",
        value_name = "LEVEL"
    )]
    log_level: String,
    /// Log line format: text (for a terminal), logfmt or json.
    #[arg(
        long = "log.format",
        global = true,
        default_value = "text",
        env = "FLEETPULSE_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    log_format: LogFormat,
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
        #[arg(long = "web.listen-address", alias = "listen", value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// State directory; overrides the config's `state_dir`.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Watch only shard i of n (0-based): the environments whose stable
        /// name hash falls in it. n exporters given the same file cover the
        /// fleet exactly once between them.
        #[arg(long, value_name = "i/n")]
        shard: Option<fleetpulse::shard::Shard>,
        /// Web configuration file (exporter-toolkit's format) for TLS and
        /// basic auth; overrides the config's `web.config_file`.
        #[arg(long = "web.config.file", value_name = "PATH")]
        web_config_file: Option<PathBuf>,
        /// Public mode: the page and the JSON hide instance ids, addresses,
        /// wallets and run URLs (as the config's `public: true`).
        #[arg(long)]
        public: bool,
        /// Serve `POST /-/reload` (SIGHUP reloads either way).
        #[arg(long = "web.enable-lifecycle")]
        enable_lifecycle: bool,
    },
    /// Run a simulated fleet on loopback and the exporter watching it.
    Demo {
        /// Listen address of the exporter.
        #[arg(long = "web.listen-address", alias = "listen", value_name = "ADDR", default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// State directory (recreated if missing).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Web configuration file (exporter-toolkit's format) for TLS and
        /// basic auth.
        #[arg(long = "web.config.file", value_name = "PATH")]
        web_config_file: Option<PathBuf>,
        /// Public mode: the page and the JSON hide instance ids and addresses.
        #[arg(long)]
        public: bool,
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
        /// PEM CA certificate(s) to trust for an https URL, instead of the
        /// system's roots.
        #[arg(long, value_name = "PATH", env = "FLEETPULSE_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// Basic-auth user; the password is read from --password-file or
        /// the FLEETPULSE_PASSWORD environment variable, never the command line.
        #[arg(long, env = "FLEETPULSE_USER")]
        user: Option<String>,
        /// File holding the basic-auth password (trailing whitespace trimmed).
        #[arg(long, value_name = "PATH", requires = "user")]
        password_file: Option<PathBuf>,
    },
    /// Show a running exporter's history: what changed and when, newest
    /// first (deploys, health changes, rotations, CI slot holders, drift,
    /// doctor, boots). Exits 2 when it cannot be read.
    Events {
        /// The exporter's base URL.
        #[arg(long, default_value = concat!("http://", "127.0.0.1:8937"), env = "FLEETPULSE_URL")]
        url: String,
        /// Only this environment.
        #[arg(long)]
        stack: Option<String>,
        /// Only this subject (a component, box, host, endpoint, drift kind or source).
        #[arg(long)]
        subject: Option<String>,
        /// Only this kind: health, deploy, cert_rotation, slot, drift, source,
        /// doctor, box_deploy or boot.
        #[arg(long)]
        kind: Option<String>,
        /// From when: a duration back from now (90m, 2h, 7d), RFC 3339 or Unix seconds.
        #[arg(long, default_value = "24h")]
        since: String,
        /// Most events to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print the events as JSON instead of a timeline.
        #[arg(long)]
        json: bool,
        /// PEM CA certificate(s) to trust for an https URL.
        #[arg(long, value_name = "PATH", env = "FLEETPULSE_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// Basic-auth user; the password is read from --password-file or
        /// the FLEETPULSE_PASSWORD environment variable.
        #[arg(long, env = "FLEETPULSE_USER")]
        user: Option<String>,
        /// File holding the basic-auth password.
        #[arg(long, value_name = "PATH", requires = "user")]
        password_file: Option<PathBuf>,
    },
    /// Validate a config file; exits non-zero with every error's location.
    CheckConfig {
        /// The fleet inventory (YAML).
        file: PathBuf,
        /// Print the inventory with every template expanded (a valid config
        /// itself) instead of a summary.
        #[arg(long)]
        expanded: bool,
    },
    /// Report to a fleetpulse exporter, as a box does: retried on 5xx and
    /// connection errors, exits non-zero when the push did not go through.
    Push {
        #[command(subcommand)]
        what: PushCommand,
    },
    /// Print the SHA-256 of a token read from standard input: the line the
    /// ingest tokens file holds for it.
    HashToken,
    /// Print the bcrypt hash of a password read from standard input: the
    /// value `basic_auth_users` in the web config file holds for it.
    HashPassword {
        /// bcrypt cost (4 to 31): each step doubles the work.
        #[arg(long, default_value_t = 10)]
        cost: u32,
    },
    /// Print a completion script for a shell, e.g.
    /// `fleetpulse completions bash > /usr/share/bash-completion/completions/fleetpulse`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `fleetpulse man | man -l -`.
    Man,
}

/// Where to push and how hard to try.
#[derive(clap::Args)]
struct PushArgs {
    /// Base URL of the exporter, e.g. https://fleetpulse.example.com.
    /// Repeat it (or list several, comma-separated, in FLEETPULSE_URL) to
    /// push to every replica of an HA pair: each is tried on its own.
    #[arg(long, env = "FLEETPULSE_URL", value_delimiter = ',', required = true)]
    url: Vec<String>,
    /// Succeed once this many replicas acknowledged (default: every one).
    /// Every replica is still offered the push.
    #[arg(long, value_name = "N")]
    min_acks: Option<usize>,
    /// File holding the ingest token; without it the token is read from
    /// the FLEETPULSE_TOKEN environment variable.
    #[arg(long, env = "FLEETPULSE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Commit of the software on this box, sent as X-Fleet-Commit.
    #[arg(long, env = "FLEETPULSE_COMMIT")]
    commit: Option<String>,
    /// Attempts in all before giving up.
    #[arg(long, default_value_t = 5)]
    attempts: u32,
    /// Wait before the first retry; doubles with each retry (max 30s).
    #[arg(long, default_value = "1s")]
    backoff: fleetpulse::config::Seconds,
    /// Timeout of each attempt.
    #[arg(long, default_value = "10s")]
    timeout: fleetpulse::config::Seconds,
}

#[derive(Subcommand)]
enum PushCommand {
    /// This box booted (send once per boot).
    Heartbeat {
        #[command(flatten)]
        args: PushArgs,
        /// The box's name in the inventory.
        #[arg(long = "box")]
        box_name: String,
        /// Version of the software on the box.
        #[arg(long)]
        version: Option<String>,
        /// Boot time, Unix seconds (default: this machine's, from /proc/stat).
        #[arg(long)]
        boot_time: Option<u64>,
    },
    /// The newest integration-test run of a service: JSON counts or JUnit XML.
    TestRun {
        #[command(flatten)]
        args: PushArgs,
        #[arg(long)]
        service: String,
        /// The environment the run tested.
        #[arg(long)]
        stack: Option<String>,
        /// The report; - for standard input.
        #[arg(long)]
        file: String,
        /// Report format (default: by extension, else by content).
        #[arg(long, value_enum)]
        format: Option<fleetpulse::push::TestRunFormat>,
    },
    /// Mutation-testing results: cargo-mutants' outcomes.json or counts.
    Mutants {
        #[command(flatten)]
        args: PushArgs,
        #[arg(long)]
        service: String,
        /// The results; - for standard input.
        #[arg(long)]
        file: String,
    },
    /// A host's doctor snapshot (JSON with a list of checks).
    HostHealth {
        #[command(flatten)]
        args: PushArgs,
        #[arg(long)]
        host: String,
        /// The snapshot; - for standard input.
        #[arg(long)]
        file: String,
    },
}

fn push(command: PushCommand) -> anyhow::Result<ExitCode> {
    use fleetpulse::push::{self, Push, TestRunFormat};
    let (args, what) = match command {
        PushCommand::Heartbeat {
            args,
            box_name,
            version,
            boot_time,
        } => (
            args,
            Push::Heartbeat {
                box_name,
                version,
                boot_time: boot_time.or_else(push::boot_time),
            },
        ),
        PushCommand::TestRun {
            args,
            service,
            stack,
            file,
            format,
        } => {
            let body = push::read_input(&file)?;
            let format = format.unwrap_or_else(|| TestRunFormat::detect(&file, &body));
            (
                args,
                Push::TestRun {
                    service,
                    stack,
                    body,
                    format,
                },
            )
        }
        PushCommand::Mutants {
            args,
            service,
            file,
        } => (
            args,
            Push::Mutants {
                service,
                body: push::read_input(&file)?,
            },
        ),
        PushCommand::HostHealth { args, host, file } => (
            args,
            Push::HostHealth {
                host,
                body: push::read_input(&file)?,
            },
        ),
    };
    let urls: Vec<String> = args
        .url
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    let needed = args.min_acks.unwrap_or(urls.len());
    if urls.is_empty() {
        anyhow::bail!("no --url given");
    }

    if needed == 0 || needed > urls.len() {
        anyhow::bail!(
            "--min-acks must be between 1 and the number of URLs ({}), not {needed}",
            urls.len()
        );
    }
    let token = push::read_token(args.token_file.as_deref())?;
    let clients = urls
        .into_iter()
        .map(|url| {
            push::PushClient::new(push::ClientOptions {
                token: token.clone(),
                url,
                commit: args.commit.clone(),
                attempts: args.attempts,
                first_backoff: args.backoff.0,
                timeout: args.timeout.0,
                tls: None,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let shown: Vec<String> = clients.iter().map(push::PushClient::base_url).collect();
    if let Some(twice) = shown
        .iter()
        .enumerate()
        .find_map(|(i, u)| shown[..i].contains(u).then_some(u))
    {
        // A replica pushed to twice would count a heartbeat twice.
        anyhow::bail!("the URL {twice} is given twice");
    }
    let delivery = runtime()?.block_on(push::deliver(&clients, &what));
    let acks = delivery.acks();
    let mut replicas = delivery.replicas;
    if replicas.len() == 1 {
        // One exporter: its answer as it is, or its error.
        if let Some((_, outcome)) = replicas.pop() {
            println!("{}", outcome?.body.trim());
        }
        return Ok(ExitCode::SUCCESS);
    }
    for (url, outcome) in &replicas {
        match outcome {
            Ok(ack) => println!("{url}: {}", ack.body.trim()),
            Err(e) => eprintln!("fleetpulse: {url}: {e}"),
        }
    }
    if acks < needed {
        anyhow::bail!(
            "{acks} of {} replicas acknowledged; {needed} needed",
            replicas.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn hash_token() -> anyhow::Result<ExitCode> {
    let mut token = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut token)
        .context("cannot read the token from standard input")?;
    let token = token.trim();
    if token.is_empty() {
        anyhow::bail!("no token on standard input");
    }
    println!("{}", fleetpulse::ingest::auth::hash_token(token));
    Ok(ExitCode::SUCCESS)
}

fn hash_password(cost: u32) -> anyhow::Result<ExitCode> {
    let mut password = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut password)
        .context("cannot read the password from standard input")?;
    // One trailing newline is the terminal's, not the password's.
    let password = password
        .strip_suffix('\n')
        .map(|p| p.strip_suffix('\r').unwrap_or(p))
        .unwrap_or(&password);
    if password.is_empty() {
        anyhow::bail!("no password on standard input");
    }
    let hash = bcrypt::hash(password, cost).context("cannot hash the password")?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}

/// How log lines are written (to standard error).
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable, coloured on a terminal.
    Text,
    /// `key=value` pairs, as Prometheus' exporters write them.
    Logfmt,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fleetpulse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => logs
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(
                        std::io::IsTerminal::is_terminal(&std::io::stderr())
                            && std::env::var_os("NO_COLOR").is_none(),
                    ),
            )
            .init(),
        LogFormat::Logfmt => logs
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => logs
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Push { what } => push(what),
        Command::HashToken => hash_token(),
        Command::HashPassword { cost } => hash_password(cost),
        Command::Completions { shell } => {
            let mut cli = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cli, "fleetpulse", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            let cli = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cli)
                .render(&mut std::io::stdout())
                .context("cannot write the man page")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Events {
            url,
            stack,
            subject,
            kind,
            since,
            limit,
            json,
            ca_file,
            user,
            password_file,
        } => runtime()?.block_on(async move {
            let access = match fleetpulse::status_cli::Access::new(
                ca_file,
                user,
                password_file.as_deref(),
            ) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("fleetpulse events: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let filter = fleetpulse::events_cli::Filter {
                stack,
                subject,
                kind,
                since: Some(since),
                limit: limit.max(1),
            };
            match fleetpulse::events_cli::run(&url, &access, &filter, json).await {
                Ok(out) => {
                    print!("{out}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("fleetpulse events: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }),
        Command::Status {
            url,
            stack,
            json,
            ca_file,
            user,
            password_file,
        } => runtime()?.block_on(async move {
            let colour = fleetpulse::status_cli::colour_wanted();
            let access = match fleetpulse::status_cli::Access::new(
                ca_file,
                user,
                password_file.as_deref(),
            ) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("fleetpulse status: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            match fleetpulse::status_cli::run(&url, &access, stack.as_deref(), json, colour).await {
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
        Command::CheckConfig {
            file,
            expanded: true,
        } => match Config::expanded(&file) {
            Ok(text) => {
                print!("{text}");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::FAILURE)
            }
        },
        Command::CheckConfig {
            file,
            expanded: false,
        } => match Config::load(&file) {
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
            web_config_file,
            public,
            enable_lifecycle,
        } => {
            // The command line overrides the file, at start-up and on every reload.
            let adjust = move |c: &mut Config| {
                if let Some(shard) = &shard {
                    shard.apply(c);
                }
                if let Some(l) = listen {
                    c.listen = l;
                }
                if let Some(d) = &state_dir {
                    c.state_dir = Some(d.clone());
                }
                if let Some(w) = &web_config_file {
                    c.web.config_file = Some(w.clone());
                }
                c.public |= public;
            };
            let loader = fleetpulse::app::Loader::new(config, Arc::new(adjust));
            let c = loader.load()?;
            if let Some(shard) = shard {
                tracing::info!(%shard, environments = c.environments.len(), "serving one shard");
            }
            let config = Arc::new(c);
            runtime()?.block_on(async move {
                let listener = fleetpulse::server::bind(config.listen).await?;
                let options = fleetpulse::app::Options {
                    loader: Some(loader),
                    enable_lifecycle,
                };
                let running = fleetpulse::app::start_with(config, listener, options).await?;
                eprintln!("fleetpulse: serving on {}", running.base_url());
                let mut hangups = fleetpulse::app::Hangups::new();
                let stop = fleetpulse::app::shutdown_signal();
                tokio::pin!(stop);
                loop {
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = hangups.next() => {
                            tracing::info!("SIGHUP: reloading the config");
                            let _ = running.reloader.reload();
                        }
                    }
                }
                tracing::info!("shutting down");
                running.shutdown().await?;
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
        Command::Demo {
            listen,
            state_dir,
            web_config_file,
            public,
        } => {
            let state_dir =
                state_dir.unwrap_or_else(|| std::env::temp_dir().join("fleetpulse-demo"));
            // Before the runtime's threads exist: the environment is the process's.
            fleetpulse::demo::use_demo_aws_credentials();
            runtime()?.block_on(async move {
                let options = fleetpulse::demo::DemoOptions {
                    web_config_file,
                    public,
                };
                fleetpulse::demo::run(listen, &state_dir, &options).await?;
                anyhow::Ok(ExitCode::SUCCESS)
            })
        }
    }
}
