//! `fleetpulse demo`: a simulated fleet on loopback and the exporter watching
//! it, so every view can be seen with one command.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::app::{self, Running};
use crate::config::{Config, ConfigError};
use crate::simfleet::{self, Authority, Behaviour, SimError, SimService};

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("simulated fleet: {0}")]
    Sim(#[from] SimError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("demo config: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Start(#[from] app::StartError),
    #[error("demo push: {0}")]
    Push(#[from] crate::push::PushError),
}

/// One simulated service of the demo fleet.
pub struct DemoService {
    pub stack: &'static str,
    pub name: &'static str,
    pub service: SimService,
}

/// The running demo: the fleet and the exporter.
pub struct Demo {
    pub exporter: Running,
    pub services: Vec<DemoService>,
    pub state_dir: PathBuf,
    _weather: AbortOnDrop,
}

/// Stops a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The demo's commit: what "main" is in the simulated world.
pub const DEMO_COMMIT: &str = "4f2c9e1";

/// fleetpulse's own cargo-mutants counts (docs/mutants.md), which the demo
/// pushes to itself: the board shows the project's own test quality.
const OWN_MUTATION_SCORE: &str = include_str!("../docs/mutants/score.json");

const STACKS: [&str; 3] = ["prod", "test-1", "test-2"];
const SERVICES: [&str; 5] = ["broker", "signer", "worker-1", "worker-2", "nginx"];

/// The alerts of `alerts/` the demo's fleet raises, each on purpose, as
/// (alert, stack; empty for a component's mutants, which have none). Every
/// one is a fault the demo shows deliberately; an alert not listed here is a
/// disagreement between the demo's data and the thresholds, and the
/// Prometheus test of the demo fails on it.
pub const ALERTS: &[(&str, &str)] = &[
    // test-2-spare is listed and never sends a heartbeat.
    ("FleetBoxNeverReported", "test-2"),
    // test-1's signer suite has failing tests.
    ("FleetTestSuiteFailing", "test-1"),
    // fleetpulse's own mutation run and signer's leave mutants missed.
    ("FleetMutantsMissed", ""),
    // test-2's nginx presents a self-signed certificate the probe refuses,
    // worker-2 closes every connection.
    ("FleetServiceRed", "test-2"),
    // test-1's signer reports degraded.
    ("FleetServiceDegraded", "test-1"),
    // test-2's worker-2: no handshake.
    ("FleetTLSHandshakeFailing", "test-2"),
    // test-2's nginx: a chain no root vouches for, 12 days left.
    ("FleetTLSChainInvalid", "test-2"),
    ("FleetTLSCertExpiringSoon", "test-2"),
    // test-1's nginx: 5 days left.
    ("FleetTLSCertExpiringCritical", "test-1"),
    // test-1's broker: its intermediate expires (10 days) before its leaf.
    ("FleetTLSChainCertExpiringSoon", "test-1"),
    // test-2-host's doctor reports a failed check.
    ("FleetHostDoctorFailing", "test-2"),
];

/// The alerts the demo's weather raises once it has run a while: test-2's
/// worker-1 changes state every 20 s, so its fourth change in the hour (after
/// about 80 s) makes it flapping.
pub const LATER_ALERTS: &[(&str, &str)] = &[("FleetServiceFlapping", "test-2")];

/// How the demo's exporter serves, beyond its address.
#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// TLS and basic auth from this web config file (exporter-toolkit's format).
    pub web_config_file: Option<std::path::PathBuf>,
    /// Public mode: the page and the JSON hide instance ids, addresses and run URLs.
    pub public: bool,
}

/// Starts the fleet and the exporter on `listen`, keeping state in `state_dir`.
pub async fn start(listen: SocketAddr, state_dir: &Path) -> Result<Demo, DemoError> {
    start_with(listen, state_dir, &DemoOptions::default()).await
}

/// As [`start`], with `options`.
pub async fn start_with(
    listen: SocketAddr,
    state_dir: &Path,
    options: &DemoOptions,
) -> Result<Demo, DemoError> {
    std::fs::create_dir_all(state_dir)?;
    // Most certificates chain to an intermediate valid for a year; test-1's
    // broker chains to one that expires in 10 days while its own leaf has 80
    // days left, to show leaf and chain expiry apart.
    let ca = Authority::new(365)?;
    let short_ca = Authority::new(10)?;
    let ca_file = state_dir.join("demo-ca.pem");
    std::fs::write(
        &ca_file,
        format!("{}{}", ca.root_pem(), short_ca.root_pem()),
    )?;

    let mut services = Vec::new();
    for stack in STACKS {
        for name in SERVICES {
            let (identity, behaviour) = demo_service(&ca, &short_ca, stack, name)?;
            let service = SimService::start(identity, behaviour).await?;
            services.push(DemoService {
                stack,
                name,
                service,
            });
        }
    }

    let tokens_file = write_demo_token(state_dir)?;
    let yaml = demo_config(&services, &ca_file, &tokens_file, listen, state_dir);
    let config_path = state_dir.join("fleet.yaml");
    std::fs::write(&config_path, &yaml)?;
    let mut config = Config::parse(&yaml, &config_path.display().to_string())?;
    config.web.config_file = options.web_config_file.clone();
    config.public = options.public;
    let listener = crate::server::bind(listen).await?;
    let exporter = app::start(Arc::new(config), listener).await?;
    let token = std::fs::read_to_string(state_dir.join(DEMO_TOKEN_FILE))?;
    // The demo pushes into its own exporter: over TLS it trusts exactly the
    // certificate that exporter serves.
    let tls = exporter
        .security
        .served_certificate
        .clone()
        .map(crate::webconfig::pinned_client_config);
    push_demo_reports(&exporter.base_url(), token.trim(), tls, state_dir).await?;

    // test-2's worker-1 flaps between healthy and slow, so the board changes
    // while someone watches it.
    let flapper = services
        .iter()
        .position(|s| s.stack == "test-2" && s.name == "worker-1");
    let handles: Vec<_> = flapper
        .map(|i| services[i].service.behaviour_handle())
        .into_iter()
        .collect();
    let weather = tokio::spawn(async move {
        let mut slow = false;
        loop {
            tokio::time::sleep(Duration::from_secs(20)).await;
            slow = !slow;
            for h in &handles {
                h.set(if slow {
                    Behaviour::Slow(Duration::from_millis(2500))
                } else {
                    Behaviour::Healthy {
                        commit: DEMO_COMMIT.into(),
                    }
                });
            }
        }
    });
    Ok(Demo {
        exporter,
        services,
        state_dir: state_dir.to_path_buf(),
        _weather: AbortOnDrop(weather),
    })
}

fn demo_service(
    ca: &Authority,
    short_ca: &Authority,
    stack: &str,
    name: &str,
) -> Result<(simfleet::Identity, Behaviour), SimError> {
    let healthy = Behaviour::Healthy {
        commit: DEMO_COMMIT.into(),
    };
    Ok(match (stack, name) {
        // Expires in 5 days: the critical certificate alert's case.
        ("test-1", "nginx") => (ca.issue(&["localhost"], 5)?, healthy),
        ("test-1", "broker") => (short_ca.issue(&["localhost"], 80)?, healthy),
        ("test-1", "signer") => (
            ca.issue(&["localhost"], 60)?,
            Behaviour::Degraded {
                commit: DEMO_COMMIT.into(),
            },
        ),
        // Self-signed: never verifies, still reports its expiry.
        ("test-2", "nginx") => (simfleet::self_signed(&["localhost"], 12)?, healthy),
        ("test-2", "worker-2") => (ca.issue(&["localhost"], 90)?, Behaviour::Down),
        // Running an older build than main.
        ("test-2", "broker") => (
            ca.issue(&["localhost"], 45)?,
            Behaviour::Healthy {
                commit: "9b1d0aa".into(),
            },
        ),
        ("prod", _) => (ca.issue(&["localhost"], 75)?, healthy),
        _ => (ca.issue(&["localhost"], 30 + name.len() as i64)?, healthy),
    })
}

fn demo_config(
    services: &[DemoService],
    ca_file: &Path,
    tokens_file: &Path,
    listen: SocketAddr,
    state_dir: &Path,
) -> String {
    let mut y = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(y, "# Generated by `fleetpulse demo`.");
    let _ = writeln!(y, "listen: {listen}");
    let _ = writeln!(y, "state_dir: {}", state_dir.display());
    let _ = writeln!(y, "sources:");
    let _ = writeln!(
        y,
        "  healthz:\n    interval: 5s\n    timeout: 3s\n    degraded_after: 2s"
    );
    let _ = writeln!(
        y,
        "  tls:\n    interval: 10s\n    timeout: 3s\n    ca_file: {}",
        ca_file.display()
    );
    let _ = writeln!(
        y,
        "ingest:\n  tokens_file: {}\n  services: [indexer, fleetpulse]",
        tokens_file.display()
    );
    let _ = writeln!(y, "environments:");
    for stack in STACKS {
        let _ = writeln!(y, "  - name: {stack}");
        // test-2's spare box is listed but never reports.
        let spare = if stack == "test-2" {
            ", test-2-spare"
        } else {
            ""
        };
        let _ = writeln!(y, "    boxes: [{stack}-box{spare}]");
        let _ = writeln!(y, "    hosts: [{stack}-host]");
        let _ = writeln!(y, "    services:");
        for s in services.iter().filter(|s| s.stack == stack) {
            let port = s.service.port();
            let _ = writeln!(y, "      - name: {}", s.name);
            let _ = writeln!(y, "        healthz: https://localhost:{port}/healthz");
            let _ = writeln!(y, "        tls: localhost:{port}");
        }
    }
    y
}

/// Runs the demo until Ctrl-C or SIGTERM.
pub async fn run(
    listen: SocketAddr,
    state_dir: &Path,
    options: &DemoOptions,
) -> Result<(), DemoError> {
    let demo = start_with(listen, state_dir, options).await?;
    let base = demo.exporter.base_url();
    println!(
        "fleetpulse demo: a simulated fleet of {} TLS services in 3 environments",
        demo.services.len()
    );
    println!("  status page   {base}/");
    println!("  metrics       {base}/metrics");
    println!("  fleet JSON    {base}/api/v1/fleet");
    println!("  state         {}", demo.state_dir.display());
    println!(
        "  push token    {} (may write every name; see README \"Ingest\")",
        demo.state_dir.join(DEMO_TOKEN_FILE).display()
    );
    for (feature, sources) in crate::sources::left_out() {
        println!(
            "  left out      the {} source{} (this build has no \"{feature}\" feature; \
             `cargo build --release` builds every source)",
            crate::board::words::list(&sources),
            if sources.len() > 1 { "s" } else { "" },
        );
    }
    println!("Ctrl-C to stop.");
    app::shutdown_signal().await;
    println!("stopping");
    let Demo { exporter, .. } = demo;
    exporter.shutdown().await?;
    Ok(())
}

/// The token that may write every name, for trying the push API by hand.
pub const DEMO_TOKEN_FILE: &str = "ingest.token";

/// Writes (or keeps) `ingest.token` and the tokens file naming its hash;
/// returns the tokens file. A token from an earlier run is kept, so commands
/// copied from before still work.
fn write_demo_token(state_dir: &Path) -> std::io::Result<PathBuf> {
    use rand::Rng;
    let token_path = state_dir.join(DEMO_TOKEN_FILE);
    let token = match std::fs::read_to_string(&token_path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            let token = hex::encode(rand::rng().random::<[u8; 24]>());
            write_private(&token_path, &format!("{token}\n"))?;
            token
        }
    };
    let tokens_file = state_dir.join("ingest-tokens.yaml");
    write_private(
        &tokens_file,
        &format!(
            "# Generated by `fleetpulse demo`: the token in {DEMO_TOKEN_FILE} may write every name.\n\
             - sha256: {}\n  names: [\"*\"]\n  id: demo\n",
            crate::ingest::auth::hash_token(&token)
        ),
    )?;
    Ok(tokens_file)
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// A JUnit report as a CI runner writes it: the demo's one XML receipt.
fn demo_junit(started: &str) -> String {
    let mut cases = String::new();
    for name in [
        "routes_jobs",
        "retries_on_503",
        "rejects_unsigned",
        "drains_on_sigterm",
    ] {
        let _ = writeln!(
            cases,
            "    <testcase classname=\"broker.e2e\" name=\"{name}\" time=\"2.1\"/>"
        );
    }
    cases.push_str("    <testcase classname=\"broker.e2e\" name=\"survives_az_loss\"><skipped message=\"needs two zones\"/></testcase>\n");
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites time=\"8.4\">\n  \
         <testsuite name=\"broker-e2e\" tests=\"5\" timestamp=\"{started}\">\n{cases}  </testsuite>\n</testsuites>\n"
    )
}

/// What the simulated boxes report: heartbeats (test-2's box in a restart
/// loop, on an old client that sends no commit), test runs (one suite
/// failing, one JUnit report), mutation results and doctor snapshots.
async fn push_demo_reports(
    base: &str,
    token: &str,
    tls: Option<rustls::ClientConfig>,
    state_dir: &Path,
) -> Result<(), DemoError> {
    use crate::push::{ClientOptions, Push, PushClient, TestRunFormat};
    use serde_json::json;
    let client = |commit: Option<&str>| {
        PushClient::new(ClientOptions {
            url: base.to_string(),
            token: token.to_string(),
            commit: commit.map(str::to_string),
            attempts: 3,
            first_backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
            tls: tls.clone(),
        })
    };
    let current = client(Some(DEMO_COMMIT))?;
    let stale = client(None)?;
    let now = chrono::Utc::now();
    let ago = |minutes: i64| (now - chrono::Duration::minutes(minutes)).to_rfc3339();

    for b in ["prod-box", "test-1-box"] {
        current
            .push(&Push::Heartbeat {
                box_name: b.into(),
                version: Some("1.8.0".into()),
                boot_time: crate::push::boot_time(),
            })
            .await?;
    }
    for _ in 0..5 {
        stale
            .push(&Push::Heartbeat {
                box_name: "test-2-box".into(),
                version: Some("1.6.3".into()),
                boot_time: None,
            })
            .await?;
    }

    let runs = [
        ("prod", "broker", 212, 0, 3, 184.2, 95),
        ("prod", "signer", 88, 0, 0, 61.0, 90),
        ("test-1", "signer", 41, 3, 1, 47.5, 30),
        ("test-2", "worker-1", 30, 0, 2, 22.8, 200),
    ];
    for (stack, service, passed, failed, skipped, duration, minutes) in runs {
        let body = json!({
            "passed": passed, "failed": failed, "skipped": skipped,
            "duration_seconds": duration, "started_at": ago(minutes), "commit": DEMO_COMMIT,
        });
        current
            .push(&Push::TestRun {
                service: service.into(),
                stack: Some(stack.into()),
                body: body.to_string().into_bytes(),
                format: TestRunFormat::Json,
            })
            .await?;
    }
    let junit = demo_junit(&ago(20));
    std::fs::write(state_dir.join("demo-junit.xml"), &junit)?;
    current
        .push(&Push::TestRun {
            service: "broker".into(),
            stack: Some("test-1".into()),
            body: junit.into_bytes(),
            format: TestRunFormat::Junit,
        })
        .await?;

    for (service, caught, missed, timeout, unviable) in
        [("broker", 120, 0, 2, 14), ("signer", 57, 4, 0, 6)]
    {
        let body =
            json!({"caught": caught, "missed": missed, "timeout": timeout, "unviable": unviable});
        current
            .push(&Push::Mutants {
                service: service.into(),
                body: body.to_string().into_bytes(),
            })
            .await?;
    }

    // fleetpulse's own mutation score, as recorded by scripts/mutants.
    current
        .push(&Push::Mutants {
            service: "fleetpulse".into(),
            body: OWN_MUTATION_SCORE.as_bytes().to_vec(),
        })
        .await?;

    let check = |name: &str, status: &str, detail: &str| json!({"name": name, "status": status, "detail": detail});
    let doctors = [
        (
            "prod-host",
            vec![
                check("disk", "ok", "31% used"),
                check("units", "ok", "0 failed"),
                check("ntp", "ok", "offset 2ms"),
                check("certs", "ok", "75 days left"),
            ],
        ),
        (
            "test-1-host",
            vec![
                check("disk", "warn", "86% used"),
                check("units", "ok", "0 failed"),
                check("ntp", "ok", "offset 9ms"),
            ],
        ),
        (
            "test-2-host",
            vec![
                check("disk", "ok", "40% used"),
                check("units", "fail", "worker-2.service failed"),
                check("ntp", "ok", "offset 4ms"),
            ],
        ),
    ];
    for (host, checks) in doctors {
        let body = json!({"host": host, "generated_at": now.to_rfc3339(), "checks": checks});
        current
            .push(&Push::HostHealth {
                host: host.into(),
                body: body.to_string().into_bytes(),
            })
            .await?;
    }
    Ok(())
}
