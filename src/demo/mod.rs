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

pub mod peers;
pub mod weather;

use peers::{Peers, WORLD};
use weather::AbortOnDrop;

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

/// The running demo: the fleet, its cloud, CI, chain and OIDC, and the exporter.
pub struct Demo {
    pub exporter: Running,
    pub services: Vec<DemoService>,
    pub peers: Arc<Peers>,
    pub state_dir: PathBuf,
    _weather: Vec<AbortOnDrop>,
}

/// The demo's commit: what "main" is in the simulated world.
pub const DEMO_COMMIT: &str = "4f2c9e1";

/// fleetpulse's own cargo-mutants counts (docs/mutants.md), which the demo
/// pushes to itself: the board shows the project's own test quality.
const OWN_MUTATION_SCORE: &str = include_str!("../../docs/mutants/score.json");

/// The demo's environments, in order.
pub const STACKS: [&str; 4] = ["prod", "test-1", "test-2", "test-3"];
const SERVICES: [&str; 5] = ["broker", "signer", "worker-1", "worker-2", "nginx"];

/// The services of one environment: test-3 is a smaller stack.
fn services_of(stack: &str) -> &'static [&'static str] {
    if stack == "test-3" {
        &["broker", "nginx"]
    } else {
        &SERVICES
    }
}

/// Sets, for this process, the static AWS credentials the demo's cloud
/// accepts (it checks no signature), so no credentials of the user's are
/// read or sent, and turns off the instance-metadata lookup. Call it before
/// the async runtime starts threads, as `fleetpulse demo` does.
pub fn use_demo_aws_credentials() {
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIADEMO0000000000000");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "demo-secret-not-a-real-key");
    std::env::remove_var("AWS_SESSION_TOKEN");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

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
    // test-3-host's last doctor snapshot is three days old.
    ("FleetHostDoctorStale", "test-3"),
    // test-3's broker has had no test run for nine days.
    ("FleetTestReceiptStale", "test-3"),
    // test-1's instance is stopped and its Elastic IP attached to nothing.
    ("FleetInstanceNotRunning", "test-1"),
    ("FleetEIPNotAssociated", "test-1"),
    // test-1's worker record points elsewhere: its names disagree, and one
    // is not its Elastic IP.
    ("FleetDriftDNSMismatch", "test-1"),
    ("FleetDriftEIPMismatch", "test-1"),
    // test-1's deployer holds 0.04 ETH.
    ("FleetDeployerBalanceLow", "test-1"),
    // test-2's broker advertises test-1's issuer.
    ("FleetDriftOIDCIssuerMismatch", "test-2"),
    // test-2's account is not in the registry.
    ("FleetRegistrationMissing", "test-2"),
    // test-2's broker runs 9b1d0aa, neither main's head nor its slot's run.
    ("FleetDriftStaleBinary", "test-2"),
    // test-2's slot is held by a run five hours old, with five queued behind it.
    ("FleetCISlotStuck", "test-2"),
    ("FleetCIQueueDeep", "test-2"),
    // The simulated GitHub has 90 requests left this hour.
    ("FleetGitHubRateLimitLow", ""),
];

/// The alerts the demo's weather raises once it has run a while, or for a
/// while: they may be present or not at any moment.
pub const LATER_ALERTS: &[(&str, &str)] = &[
    // test-2's worker-1 changes state every 20 s: its fourth change in the
    // hour (after about 80 s) makes it flapping.
    ("FleetServiceFlapping", "test-2"),
    // A deploy restarts test-1's services one by one: each is down for a
    // probe or two, and until the last is done some run the old commit.
    ("FleetServiceRed", "test-1"),
    ("FleetTLSHandshakeFailing", "test-1"),
    ("FleetDriftStaleBinary", "test-1"),
    // test-2's box reboots every 15 s, on an old client that stamps no commit.
    ("FleetBoxRestartLoop", "test-2"),
    ("FleetIngestHostUnstamped", "test-2"),
    // A broken CI reporter's truncated JUnit report is refused every 30 s.
    ("FleetIngestHostFatalOnly", ""),
];

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
        for &name in services_of(stack) {
            let (identity, behaviour) = demo_service(&ca, &short_ca, stack, name)?;
            let service = SimService::start(identity, behaviour).await?;
            services.push(DemoService {
                stack,
                name,
                service,
            });
        }
    }
    let peers = Arc::new(Peers::start().await?);

    let tokens_file = write_demo_token(state_dir)?;
    let yaml = demo_config(&services, &peers, &ca_file, &tokens_file, listen, state_dir);
    let config_path = state_dir.join("fleet.yaml");
    std::fs::write(&config_path, &yaml)?;
    let mut config = Config::parse(&yaml, &config_path.display().to_string())?;
    config.web.config_file = options.web_config_file.clone();
    config.public = options.public;
    leave_stale_doctor_snapshot(state_dir).await?;
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
    let client = |commit: Option<&str>| {
        crate::push::PushClient::new(crate::push::ClientOptions {
            url: exporter.base_url(),
            token: token.trim().to_string(),
            commit: commit.map(str::to_string),
            attempts: 3,
            first_backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(5),
            tls: tls.clone(),
        })
    };
    let current = client(Some(DEMO_COMMIT))?;
    let stale = client(None)?;
    push_demo_reports(&current, &stale, state_dir).await?;

    let handles = |stack: &str, names: &[&str]| -> Vec<simfleet::BehaviourHandle> {
        services
            .iter()
            .filter(|s| s.stack == stack && names.contains(&s.name))
            .map(|s| s.service.behaviour_handle())
            .collect()
    };
    let weather = vec![
        // test-2's worker-1 flaps between healthy and slow.
        weather::flap(handles("test-2", &["worker-1"]), DEMO_COMMIT.into()),
        weather::pushes(stale, current),
        weather::ci(peers.clone(), handles("test-1", &SERVICES)),
    ];
    Ok(Demo {
        exporter,
        services,
        peers,
        state_dir: state_dir.to_path_buf(),
        _weather: weather,
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
    peers: &Peers,
    ca_file: &Path,
    tokens_file: &Path,
    listen: SocketAddr,
    state_dir: &Path,
) -> String {
    let (aws, github, chain) = (
        cfg!(feature = "aws"),
        cfg!(feature = "github"),
        cfg!(feature = "chain"),
    );
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
    let _ = writeln!(y, "  oidc: {{ interval: 10s, timeout: 3s }}");
    if aws {
        let _ = writeln!(
            y,
            "  aws: {{ interval: 10s, timeout: 5s, region: eu-west-1, endpoint_url: '{}', hosted_zone_id: {} }}",
            peers.cloud.url(),
            peers::ZONE
        );
    }
    if github {
        let _ = writeln!(
            y,
            "  github: {{ interval: 5s, timeout: 5s, repo: {}, api_url: '{}', stale_grace: 1h }}",
            peers::REPO,
            peers.github.url()
        );
    }
    if chain {
        let _ = writeln!(
            y,
            "  chain:\n    interval: 10s\n    timeout: 5s\n    rpc_url: '{}'\n    symbol: ETH\n    \
             registry_address: '{}'\n    registry_function: '{}'",
            peers.chain.url(),
            peers::REGISTRY,
            peers::REGISTRY_FUNCTION
        );
    }
    let _ = writeln!(
        y,
        "ingest:\n  tokens_file: {}\n  services: [indexer, fleetpulse, {}]",
        tokens_file.display(),
        weather::BROKEN_REPORTER
    );
    let _ = writeln!(y, "environments:");
    for w in &WORLD {
        let stack = w.stack;
        let _ = writeln!(y, "  - name: {stack}");
        // test-2's spare box is listed but never reports.
        let spare = if stack == "test-2" {
            ", test-2-spare"
        } else {
            ""
        };
        let _ = writeln!(y, "    boxes: [{stack}-box{spare}]");
        let _ = writeln!(y, "    hosts: [{stack}-host]");
        let _ = writeln!(
            y,
            "    oidc: {{ url: '{}', issuer: '{}' }}",
            peers.oidc.url(stack),
            w.issuer()
        );
        if aws {
            let _ = writeln!(y, "    aws_tag: {{ key: Stack, value: {stack} }}");
            let _ = writeln!(y, "    dns_names: [{}]", w.dns_names().join(", "));
        }
        if let (true, Some(slot)) = (github, w.ci_slot) {
            let _ = writeln!(y, "    ci_slot: '{slot}\\b'");
        }
        if chain {
            let _ = writeln!(y, "    deployer: '{}'", w.deployer);
            let _ = writeln!(y, "    registry_account: '{}'", w.account);
        }
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

/// The host whose doctor timer stopped: its newest snapshot was received
/// three days ago.
pub const STALE_DOCTOR_HOST: &str = "test-3-host";

/// Leaves in the store what an earlier run would have: test-3-host's last
/// doctor snapshot, received three days ago. Nothing can be pushed in the
/// past, so it is written to the store before the exporter opens it; a
/// state directory that already holds a snapshot of that host keeps it.
async fn leave_stale_doctor_snapshot(state_dir: &Path) -> Result<(), DemoError> {
    use crate::store::{Store, Write, WriteRequest};
    let store = Store::open(state_dir, 0, &|_, _| true, Box::new(|_| {}))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if store
        .host_health_document(STALE_DOCTOR_HOST)
        .map_err(std::io::Error::other)?
        .is_some()
    {
        return Ok(());
    }
    let received_at = crate::clock::now_unix() - 3.0 * 86_400.0;
    let generated = chrono::DateTime::from_timestamp(received_at as i64, 0).unwrap_or_default();
    let document = serde_json::json!({
        "host": STALE_DOCTOR_HOST,
        "generated_at": generated.to_rfc3339(),
        "checks": [
            {"name": "disk", "status": "ok", "detail": "22% used"},
            {"name": "units", "status": "ok", "detail": "0 failed"},
        ],
    });
    let summary = crate::pulse::HostHealth {
        host: STALE_DOCTOR_HOST.into(),
        stack: "test-3".into(),
        ok: 2,
        warn: 0,
        fail: 0,
        received_at,
        commit: Some(DEMO_COMMIT.into()),
    };
    store
        .write(WriteRequest {
            write: Write::HostHealth {
                summary,
                document: document.to_string(),
            },
            known: true,
            stamped: true,
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
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
        "fleetpulse demo: a simulated fleet of {} TLS services in {} environments",
        demo.services.len(),
        STACKS.len()
    );
    println!("  status page   {base}/");
    println!("  metrics       {base}/metrics");
    println!("  fleet JSON    {base}/api/v1/fleet");
    println!("  state         {}", demo.state_dir.display());
    let peers = &demo.peers;
    println!(
        "  simulated     EC2 and Route53 {} · GitHub {} · JSON-RPC {} · OIDC {}",
        peers.cloud.url(),
        peers.github.url(),
        peers.chain.url(),
        peers.oidc.url("<stack>")
    );
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
    current: &crate::push::PushClient,
    stale: &crate::push::PushClient,
    state_dir: &Path,
) -> Result<(), DemoError> {
    use crate::push::{Push, TestRunFormat};
    use serde_json::json;
    let now = chrono::Utc::now();
    let ago = |minutes: i64| (now - chrono::Duration::minutes(minutes)).to_rfc3339();

    for b in ["prod-box", "test-1-box", "test-3-box"] {
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
        // Nine days ago: test-3's broker suite has not run since.
        ("test-3", "broker", 64, 0, 0, 40.2, 9 * 24 * 60),
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
