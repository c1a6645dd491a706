//! The exporter end to end: the demo's /metrics, promtool, scrapes during
//! hung probes, and `check-config`.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, get, sample};
use fleetpulse::config::Config;
use fleetpulse::simfleet::{Authority, Behaviour, SimService};

/// The sample names (families with at least one series) of an exposition.
fn sampled(body: &str) -> std::collections::BTreeSet<&str> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serves_every_family_of_the_catalogue_every_source_up_and_promtool_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::start_demo(dir.path()).await;
    let url = format!("http://{}/metrics", demo.exporter.addr);
    let services = demo.services.len();
    // test-2's worker-2 closes every connection: no certificate to read.
    let families: Vec<&str> = fleetpulse::metrics::families().map(|f| f.name).collect();
    // Every source this build has: the demo configures each.
    let mut sources = vec!["healthz", "tls", "oidc"];
    if cfg!(feature = "aws") {
        sources.extend(["aws", "dns"]);
    }
    if cfg!(feature = "github") {
        sources.push("github");
    }
    if cfg!(feature = "chain") {
        sources.push("chain");
    }
    let up: Vec<String> = sources
        .iter()
        .map(|s| format!("fleet_source_up{{source=\"{s}\"}} 1"))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (_, body) = get(&url).await;
        let count = |s: &str| body.matches(s).count();
        let sampled = sampled(&body);
        let missing: Vec<_> = families.iter().filter(|f| !sampled.contains(*f)).collect();
        let down: Vec<_> = up.iter().filter(|u| !body.contains(u.as_str())).collect();
        let probed = count("fleet_service_health{") == 3 * services
            && count("fleet_tls_up{") == services
            && count("fleet_tls_cert_not_after_timestamp_seconds{") == services - 1;
        if probed && missing.is_empty() && down.is_empty() && count("fleet_source_up{") == up.len()
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "after 60 s: families without a sample {missing:?}, sources not up {down:?}, \
             every service probed: {probed}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    for s in &demo.services {
        let port = s.service.port();
        let health = format!(
            "fleet_service_health{{stack=\"{}\",component=\"{}\",state=\"green\"}}",
            s.stack, s.name
        );
        assert!(sample(&body, &health).is_some(), "missing {health}");
        let tls = format!(
            "fleet_tls_up{{stack=\"{}\",endpoint=\"localhost:{port}\"}}",
            s.stack
        );
        assert!(sample(&body, &tls).is_some(), "missing {tls}");
    }
    // The demo's states: test-1 signer degraded, test-2 worker-2 red.
    assert_eq!(
        sample(
            &body,
            r#"fleet_service_health{stack="test-1",component="signer",state="degraded"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            r#"fleet_service_health{stack="test-2",component="worker-2",state="red"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&body, r#"fleet_source_up{source="healthz"}"#),
        Some(1.0)
    );
    assert_eq!(sample(&body, r#"fleet_source_up{source="tls"}"#), Some(1.0));
    assert!(body.contains("# TYPE fleet_source_errors_total counter"));
    let build = format!(
        "fleet_exporter_build_info{{version=\"{}\",revision=\"{}\",branch=\"{}\",rustc_version=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        fleetpulse::build::REVISION,
        fleetpulse::build::BRANCH,
        fleetpulse::build::RUSTC_VERSION,
    );
    assert_eq!(sample(&body, &build), Some(1.0));

    common::promtool_check_metrics(&body);

    // OpenMetrics on request.
    let r = reqwest::Client::new()
        .get(&url)
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test]
async fn hung_healthz_endpoint_does_not_delay_scrape() {
    let ca = Authority::new(30).unwrap();
    let hung = SimService::start(ca.issue(&["localhost"], 30).unwrap(), Behaviour::Hang)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    let port = hung.port();
    let yaml = format!(
        "sources:\n  healthz:\n    interval: 20s\n    timeout: 8s\n  tls:\n    interval: 20s\n    timeout: 8s\n    ca_file: {}\nenvironments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: https://localhost:{port}/healthz\n        tls: localhost:{port}\n",
        ca_file.display()
    );
    let cfg = Arc::new(Config::parse(&yaml, "t.yaml").unwrap());
    let running = crate::common::start_exporter(cfg).await;
    let url = format!("http://{}/metrics", running.addr);
    // Both probes are now stuck on the hung service for 8 s.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let t = Instant::now();
        let (status, body) = get(&url).await;
        assert_eq!(status, 200);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "scrape took {:?}",
            t.elapsed()
        );
        assert!(
            body.contains("fleet_source_up{source=\"healthz\"} 0"),
            "not yet up: {body}"
        );
    }
    // After the timeout the service is red and the source still up (one probe failing is not the source failing).
    let body = eventually(Duration::from_secs(15), "hung probe to time out", || {
        let url = url.clone();
        async move {
            let (_, b) = get(&url).await;
            b.contains(r#"fleet_service_health{stack="prod",component="broker",state="red"} 1"#)
                .then_some(b)
        }
    })
    .await;
    assert_eq!(
        sample(&body, r#"fleet_source_up{source="healthz"}"#),
        Some(1.0)
    );
    let (status, _) = get(&format!("http://{}/healthz", running.addr)).await;
    assert_eq!(status, 200);
    running.shutdown().await.unwrap();
}

#[test]
fn check_config_accepts_the_example_and_names_errors() {
    let bin = env!("CARGO_BIN_EXE_fleetpulse");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/fleet.example.yaml");
    let out = Command::new(bin)
        .args(["check-config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("fleet.yaml");
    std::fs::write(
        &bad,
        "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: broker/healthz\n",
    )
    .unwrap();
    let out = Command::new(bin)
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fleet.yaml:5:18: environments[0].services[0].healthz: not a URL"),
        "{err}"
    );
    let out = Command::new(bin)
        .args(["check-config", "/nonexistent/fleet.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/fleet.yaml: cannot read"));
}

/// `serve --public` and `demo --public` switch public mode on from the
/// command line (what it hides is tested in tests/it/page.rs and tests/it/shipped.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_flag_switches_public_mode_on_for_demo_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let free = || -> std::net::SocketAddr {
        format!("127.0.0.1:{}", common::free_port())
            .parse()
            .unwrap()
    };
    let fleet_json = |addr: std::net::SocketAddr| async move {
        common::eventually(Duration::from_secs(60), "the fleet JSON", || async move {
            let r = reqwest::get(format!("http://{addr}/api/v1/fleet"))
                .await
                .ok()?;
            let ok = r.status() == 200;
            let body = r.text().await.ok()?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            // Wait for the first probes: the board is filled in.
            (ok && body.contains("\"green\"")).then_some((v, body))
        })
        .await
    };
    let bin = env!("CARGO_BIN_EXE_fleetpulse");
    let state = dir.path().join("demo");
    for public in [false, true] {
        let addr = free();
        let mut cmd = std::process::Command::new(bin);
        cmd.args(["demo", "--listen", &addr.to_string()])
            .args(["--state-dir", state.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if public {
            cmd.arg("--public");
        }
        let _demo = common::Process::adopt(cmd.spawn().unwrap(), addr.port());
        let (v, _) = fleet_json(addr).await;
        assert_eq!(v["public"], public, "demo --public={public}");
    }
    // serve reads the demo's config; the flag overrides its `public: false`.
    let addr = free();
    let _serve = common::Process::adopt(
        std::process::Command::new(bin)
            .args(["serve", "--public", "--config"])
            .arg(state.join("fleet.yaml"))
            .args(["--listen", &addr.to_string()])
            .args(["--state-dir", dir.path().join("serve").to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
        addr.port(),
    );
    let (v, _) = fleet_json(addr).await;
    assert_eq!(v["public"], true, "serve --public");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.yaml");
    std::fs::write(&config, "environments:\n  - name: prod\n").unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fleetpulse"));
    cmd.args(["--log.format", "json", "serve", "--web.listen-address"])
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(&config);
    let p = common::spawn_listening(cmd, r#""addr":"127.0.0.1:"#, "fleetpulse serve");
    let line = p
        .log()
        .lines()
        .find(|l| l.contains("fleetpulse serving"))
        .map(str::to_string)
        .expect("the serving line");
    let v: serde_json::Value = serde_json::from_str(&line).expect(&line);
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["fields"]["message"], "fleetpulse serving", "{line}");
    assert_eq!(
        v["fields"]["addr"],
        format!("127.0.0.1:{}", p.port),
        "{line}"
    );
}

/// Pushes need somewhere to be kept: a tokens file without a state
/// directory stops start-up with a message that says so, before anything
/// listens.
#[tokio::test]
async fn a_tokens_file_without_a_state_dir_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(&tokens, "tokens: []\n").unwrap();
    let yaml = format!(
        "ingest:\n  tokens_file: {}\nenvironments:\n  - name: prod\n",
        tokens.display()
    );
    let cfg = Arc::new(Config::parse(&yaml, "t.yaml").unwrap());
    let err = match crate::common::try_start_exporter(cfg).await {
        Ok(_) => panic!("started without a state directory"),
        Err(e) => e.to_string(),
    };
    assert_eq!(
        err,
        "ingest.tokens_file is set but state_dir is not: pushes need a state directory to be stored in"
    );
}

/// A running exporter dropped without `shutdown` (a panic unwinding, a
/// test's end) stops serving, and its tasks let go of the store, which
/// closes.
#[tokio::test]
async fn a_dropped_exporter_stops_serving_and_closes_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let yaml = format!(
        "state_dir: {}\nenvironments:\n  - name: prod\n",
        state.display()
    );
    let cfg = Arc::new(Config::parse(&yaml, "t.yaml").unwrap());
    let running = crate::common::start_exporter(cfg).await;
    let addr = running.addr;
    assert_eq!(get(&format!("http://{addr}/healthz")).await.0, 200);
    let wal = state.join("fleetpulse.db-wal");
    assert!(wal.exists());
    drop(running);
    eventually(Duration::from_secs(5), "the port to close", || async {
        tokio::net::TcpStream::connect(addr).await.err().map(|_| ())
    })
    .await;
    eventually(Duration::from_secs(5), "the store to close", || async {
        (!wal.exists()).then_some(())
    })
    .await;
}
