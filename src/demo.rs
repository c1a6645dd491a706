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

const STACKS: [&str; 3] = ["prod", "test-1", "test-2"];
const SERVICES: [&str; 5] = ["broker", "signer", "worker-1", "worker-2", "nginx"];

/// Starts the fleet and the exporter on `listen`, keeping state in `state_dir`.
pub async fn start(listen: SocketAddr, state_dir: &Path) -> Result<Demo, DemoError> {
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

    let yaml = demo_config(&services, &ca_file, listen, state_dir);
    let config_path = state_dir.join("fleet.yaml");
    std::fs::write(&config_path, &yaml)?;
    let config = Arc::new(Config::parse(&yaml, &config_path.display().to_string())?);
    let listener = crate::server::bind(listen).await?;
    let exporter = app::start(config, listener).await?;

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
    let _ = writeln!(y, "environments:");
    for stack in STACKS {
        let _ = writeln!(y, "  - name: {stack}");
        let _ = writeln!(y, "    boxes: [{stack}-box]");
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
pub async fn run(listen: SocketAddr, state_dir: &Path) -> Result<(), DemoError> {
    let demo = start(listen, state_dir).await?;
    let base = format!("http://{}", demo.exporter.addr);
    println!(
        "fleetpulse demo: a simulated fleet of {} TLS services in 3 environments",
        demo.services.len()
    );
    println!("  status page   {base}/");
    println!("  metrics       {base}/metrics");
    println!("  fleet JSON    {base}/api/v1/fleet");
    println!("  state         {}", demo.state_dir.display());
    println!("Ctrl-C to stop.");
    app::shutdown_signal().await;
    println!("stopping");
    let Demo { exporter, .. } = demo;
    exporter.shutdown().await?;
    Ok(())
}
