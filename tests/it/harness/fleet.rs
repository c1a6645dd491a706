//! A fully fed fleet: `fleetpulse serve` as a process watching moto, anvil,
//! the GitHub test server, an OIDC server and a healthy TLS service, with
//! ingest switched on. Shared by the tests that need every family at once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::chain::{Chain, PROD_ACCOUNT, TEST1_ACCOUNT, TEST1_DEPLOYER};
use super::cloud::Seeded;
use super::github::{run_json, GithubServer};
use super::{HealthzPeer, OidcPeer, Process};
use crate::common;

/// The head commit the GitHub test server reports for `main`.
pub const HEAD: &str = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d";
/// The GitHub token, read by the exporter from a file.
pub const GITHUB_TOKEN: &str = "ghp_servetest";
/// A fleet-wide ingest token.
pub const INGEST_TOKEN: &str = "fleet-ingest-test-token";
/// Every scheduled source the fed fleet runs.
pub const SOURCES: [&str; 7] = ["aws", "dns", "github", "chain", "oidc", "healthz", "tls"];

/// The exporter process, killed when dropped however the test ends.
pub type Exporter = Process;

/// The peers, the exporter and its state directory.
pub struct FedFleet {
    pub moto: Process,
    pub seeded: Seeded,
    pub anvil: Process,
    pub chain: Chain,
    pub gh: GithubServer,
    pub oidc: OidcPeer,
    pub other: HealthzPeer,
    pub dir: tempfile::TempDir,
    pub exporter: Exporter,
    pub port: u16,
    pub config: std::path::PathBuf,
    pub http: reqwest::Client,
}

impl FedFleet {
    /// Starts every peer and the exporter; returns once every source is up.
    pub async fn start() -> FedFleet {
        let moto = super::moto(0);
        let seeded = super::cloud::seed(&moto.url()).await;
        let anvil = super::anvil(0);
        let chain = super::chain::set_up(&anvil.url()).await;
        let gh = GithubServer::start(
            HEAD,
            vec![
                run_json(
                    101,
                    "in_progress",
                    "integration",
                    "integration on slot-1",
                    "feature/a",
                    HEAD,
                    "2025-01-01T10:00:00Z",
                ),
                run_json(
                    102,
                    "pending",
                    "integration",
                    "integration on slot-1",
                    "feature/b",
                    HEAD,
                    "2025-01-01T10:01:00Z",
                ),
            ],
        )
        .await
        .expect("peer server");
        let oidc = OidcPeer::start(&[
            ("prod", "https://id.example.net"),
            ("test-1", "https://id.prod.example.net"),
        ])
        .await
        .expect("peer server");
        let other = HealthzPeer::start().await;

        let dir = tempfile::tempdir().expect("temp dir");
        let token = dir.path().join("github.token");
        std::fs::write(&token, format!("{GITHUB_TOKEN}\n")).expect("write token");
        let tokens = dir.path().join("tokens.yaml");
        std::fs::write(
            &tokens,
            format!(
                "- sha256: {}\n  names: ['*']\n  id: fleet\n",
                fleetpulse::ingest::auth::hash_token(INGEST_TOKEN)
            ),
        )
        .expect("write tokens");
        // The service's certificate is checked too.
        let other_env = format!(
            "{}        tls: localhost:{}\n",
            other.environment_yaml(),
            other.port()
        );
        // The tls block comes last: probe certificates every 2 s too.
        let other_sources = format!(
            "{}    interval: 2s\n    timeout: 1s\n",
            other.sources_yaml()
        );
        let yaml = format!(
            "ingest:
  tokens_file: {tokens}
  services: [indexer]
sources:
  aws:
    interval: 2s
    timeout: 2s
    region: eu-west-1
    endpoint_url: {moto}
    hosted_zone_id: {zone}
  github:
    interval: 2s
    timeout: 2s
    repo: octo-org/broker
    api_url: {gh}
    token:
      file: {token}
  chain:
    interval: 2s
    timeout: 2s
    rpc_url: {anvil}
    registry_address: \"{registry}\"
  oidc:
    interval: 2s
    timeout: 2s
{other_sources}environments:
  - name: prod
    aws_tag: {{ key: Stack, value: prod }}
    dns_names: [broker.example.net, worker.example.net]
    oidc:
      url: {oidc_prod}
      issuer: https://id.example.net
    deployer: \"{prod_deployer:#x}\"
    registry_account: \"{PROD_ACCOUNT}\"
    boxes: [prod-box, prod-spare]
    hosts: [prod-host]
    services:
      - name: broker
        healthz: https://localhost:{peer}/healthz
        tls: localhost:{peer}
  - name: test-1
    aws_tag: {{ key: Stack, value: test-1 }}
    dns_names: [t1.example.net, t1-api.example.net]
    ci_slot: 'slot-1$'
    oidc:
      url: {oidc_t1}
      issuer: https://id.test-1.example.net
    deployer: \"{TEST1_DEPLOYER}\"
    registry_account: \"{TEST1_ACCOUNT}\"
    boxes: [test-1-box]
    hosts: [test-1-host]
    services:
      - name: broker
        healthz: https://localhost:{peer}/healthz
        tls: localhost:{peer}
      - name: signer
{other_env}",
            tokens = tokens.display(),
            moto = moto.url(),
            zone = seeded.zone_id,
            gh = gh.url(),
            token = token.display(),
            anvil = anvil.url(),
            registry = chain.registry,
            other_sources = other_sources,
            oidc_prod = oidc.url("prod"),
            oidc_t1 = oidc.url("test-1"),
            prod_deployer = chain.prod_deployer,
            peer = other.port(),
        );
        let cfg_path = dir.path().join("fleet.yaml");
        std::fs::write(&cfg_path, yaml).expect("write config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        let exporter = spawn_exporter(&cfg_path, dir.path(), port);
        let fleet = FedFleet {
            moto,
            seeded,
            anvil,
            chain,
            gh,
            oidc,
            other,
            dir,
            exporter,
            port,
            config: cfg_path,
            http: reqwest::Client::new(),
        };
        fleet.until_sources_up(&SOURCES).await;
        fleet
    }

    /// Kills the exporter with SIGKILL and starts it again on the same
    /// port, config and state directory; returns once it serves /metrics.
    pub async fn kill_and_restart(&mut self) {
        self.exporter.stop();
        self.exporter = spawn_exporter(&self.config, self.dir.path(), self.port);
        common::eventually(Duration::from_secs(30), "fleetpulse back", || async {
            self.try_metrics().await
        })
        .await;
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The exporter's process id, for reading /proc.
    pub fn pid(&self) -> u32 {
        self.exporter.pid()
    }

    /// One scrape of /metrics, or None when it does not answer 200.
    pub async fn try_metrics(&self) -> Option<String> {
        let r = self
            .http
            .get(format!("{}/metrics", self.base()))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.text().await.ok()
    }

    /// Waits until `fleet_source_up` is 1 for each of `sources`; returns
    /// that scrape. On timeout, says which were not and shows the log.
    pub async fn until_sources_up(&self, sources: &[&str]) -> String {
        let started = std::time::Instant::now();
        loop {
            let body = self.try_metrics().await.unwrap_or_default();
            let down: Vec<&str> = sources
                .iter()
                .copied()
                .filter(|s| {
                    common::sample(&body, &format!(r#"fleet_source_up{{source="{s}"}}"#))
                        != Some(1.0)
                })
                .collect();
            if down.is_empty() {
                return body;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let sources: Vec<&str> = body
                    .lines()
                    .filter(|l| l.starts_with("fleet_source_"))
                    .collect();
                panic!(
                    "sources {down:?} not up after 60 s:\n{}\nfleetpulse's log:\n{}",
                    sources.join("\n"),
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What the exporter has written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fleetpulse.log")).unwrap_or_default()
    }

    /// Sends one push with the fleet-wide token; returns the status.
    pub async fn push(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        commit: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> u16 {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base()))
            .bearer_auth(INGEST_TOKEN)
            .header("content-type", content_type)
            .timeout(Duration::from_secs(10))
            .body(body);
        if let Some(c) = commit {
            req = req.header("x-fleet-commit", c);
        }
        match req.send().await {
            Ok(r) => r.status().as_u16(),
            Err(e) => panic!("push {path}: {e}"),
        }
    }

    /// Pushes one of every kind, with failures, misses and warnings in
    /// them so every pulse family and ingest counter has series.
    pub async fn push_everything(&self) {
        use reqwest::Method;
        let json = "application/json";
        for (b, commit) in [
            ("prod-box", Some(HEAD)),
            ("test-1-box", Some("0123456789ab")),
        ] {
            let s = self
                .push(
                    Method::POST,
                    &format!("/api/v1/heartbeats/{b}"),
                    json,
                    commit,
                    r#"{"version":"1.8.0"}"#,
                )
                .await;
            assert_eq!(s, 200, "heartbeat {b}");
        }
        let junit = r#"<?xml version="1.0"?>
<testsuites><testsuite name="broker" tests="4" failures="1" skipped="1" time="12.5">
<testcase name="a"/><testcase name="b"><failure message="boom"/></testcase>
<testcase name="c"><skipped/></testcase><testcase name="d"/></testsuite></testsuites>"#;
        let pushes: [(Method, &str, &str, Option<&str>, String); 5] = [
            (
                Method::PUT,
                "/api/v1/test-runs/broker?stack=test-1",
                "application/xml",
                Some(HEAD),
                junit.to_string(),
            ),
            (
                Method::PUT,
                "/api/v1/test-runs/broker?stack=prod",
                json,
                Some(HEAD),
                r#"{"passed":40,"failed":0,"skipped":1,"duration_seconds":93.5}"#.into(),
            ),
            (
                Method::PUT,
                "/api/v1/mutants/signer",
                json,
                Some(HEAD),
                r#"{"caught":57,"missed":4,"timeout":1,"unviable":6}"#.into(),
            ),
            (
                Method::PUT,
                "/api/v1/host-health/prod-host",
                json,
                Some(HEAD),
                r#"{"checks":[{"name":"disk","status":"ok"},{"name":"units","status":"warn"},{"name":"certs","status":"fail","detail":"expires in 3 days"}]}"#.into(),
            ),
            (
                Method::PUT,
                "/api/v1/host-health/test-1-host",
                json,
                // Unstamped: no commit header.
                None,
                r#"{"checks":[{"name":"disk","status":"ok"}]}"#.into(),
            ),
        ];
        for (method, path, ct, commit, body) in pushes {
            let s = self.push(method, path, ct, commit, body).await;
            assert_eq!(s, 200, "{path}");
        }
        // A refused push, so the request counter has a non-200 code.
        let s = self
            .push(
                Method::PUT,
                "/api/v1/host-health/prod-host",
                json,
                Some(HEAD),
                "{not json",
            )
            .await;
        assert_eq!(s, 400, "malformed doctor JSON is refused");
    }
}

/// `fleetpulse serve` on `port` with `config`, state and log in `dir`.
pub fn spawn_exporter(config: &Path, dir: &Path, port: u16) -> Exporter {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("fleetpulse.log"))
        .expect("log file");
    Process::adopt(
        Command::new(env!("CARGO_BIN_EXE_fleetpulse"))
            .args(["serve", "--config", config.to_str().expect("utf-8 path")])
            .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
            .args(["--state-dir", dir.to_str().expect("utf-8 path")])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FLEETPULSE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start fleetpulse serve"),
        port,
    )
}
