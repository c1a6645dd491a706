//! `fleetpulse serve` as a process, on a config naming moto, anvil, the
//! GitHub test server and an OIDC server: every cloud, CI, chain and drift
//! family is exposed with the right values, and promtool finds nothing.

mod common;
mod harness;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fleetpulse::catalogue as cat;

use harness::chain::{PROD_ACCOUNT, TEST1_ACCOUNT, TEST1_DEPLOYER};
use harness::github::{run_json, GithubServer};

const HEAD: &str = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d";

/// Kills the exporter when the test ends, however it ends.
struct Exporter(Child);

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exposes_every_cloud_ci_chain_and_drift_family() {
    let moto = harness::moto(0);
    let seeded = harness::cloud::seed(&moto.url()).await;
    let anvil = harness::anvil(0);
    let chain = harness::chain::set_up(&anvil.url()).await;
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
    .await;
    let oidc = harness::OidcPeer::start(&[
        ("prod", "https://id.example.net"),
        ("test-1", "https://id.prod.example.net"),
    ])
    .await;
    let other = harness::HealthzPeer::start().await;

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("github.token");
    std::fs::write(&token, "ghp_servetest\n").unwrap();
    let yaml = format!(
        "sources:
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
  - name: test-1
    aws_tag: {{ key: Stack, value: test-1 }}
    dns_names: [t1.example.net, t1-api.example.net]
    ci_slot: 'slot-1$'
    oidc:
      url: {oidc_t1}
      issuer: https://id.test-1.example.net
    deployer: \"{TEST1_DEPLOYER}\"
    registry_account: \"{TEST1_ACCOUNT}\"
{other_env}",
        moto = moto.url(),
        zone = seeded.zone_id,
        gh = gh.url(),
        token = token.display(),
        anvil = anvil.url(),
        registry = chain.registry,
        other_sources = other.sources_yaml(),
        oidc_prod = oidc.url("prod"),
        oidc_t1 = oidc.url("test-1"),
        prod_deployer = chain.prod_deployer,
        other_env = other.environment_yaml(),
    );
    let cfg_path = dir.path().join("fleet.yaml");
    std::fs::write(&cfg_path, yaml).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _exporter = Exporter(
        Command::new(env!("CARGO_BIN_EXE_fleetpulse"))
            .args(["serve", "--config", cfg_path.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--state-dir", dir.path().to_str().unwrap()])
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FLEETPULSE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let url = format!("http://127.0.0.1:{port}/metrics");
    let sources = ["aws", "dns", "github", "chain", "oidc", "healthz"];
    let body = common::eventually(Duration::from_secs(60), "every source up", || async {
        let b = reqwest::get(&url).await.ok()?.text().await.ok()?;
        sources
            .iter()
            .all(|s| {
                common::sample(&b, &format!(r#"fleet_source_up{{source="{s}"}}"#)) == Some(1.0)
            })
            .then_some(b)
    })
    .await;

    let families = [
        cat::INSTANCE_STATE,
        cat::INSTANCE_INFO,
        cat::INSTANCE_LAUNCH,
        cat::EIP_ASSOCIATED,
        cat::EIP_INFO,
        cat::DNS_RECORD_INFO,
        cat::CI_SLOT_OCCUPIED,
        cat::CI_SLOT_QUEUE_DEPTH,
        cat::CI_SLOT_RUN_STARTED,
        cat::CI_SLOT_RUN_INFO,
        cat::GITHUB_HEAD_INFO,
        cat::GITHUB_RATE_LIMIT_REMAINING,
        cat::GITHUB_RATE_LIMIT_RESET,
        cat::DEPLOYER_BALANCE,
        cat::REGISTRY_REGISTERED,
        cat::CHAIN_BLOCK_NUMBER,
        cat::DRIFT,
    ];
    for f in families {
        assert!(
            body.contains(&format!("# HELP {} {}\n", f.name, f.help)),
            "{} missing in\n{body}",
            f.name
        );
        assert!(
            body.lines().any(|l| l.starts_with(&format!("{}{{", f.name))
                || l.starts_with(&format!("{} ", f.name))),
            "{} has no sample",
            f.name
        );
    }
    let has = |series: &str, v: f64| assert_eq!(common::sample(&body, series), Some(v), "{series}");
    has(
        &format!(
            r#"fleet_instance_state{{stack="prod",instance_id="{}",state="running"}}"#,
            seeded.prod_instance
        ),
        1.0,
    );
    has(
        &format!(
            r#"fleet_eip_associated{{stack="test-1",public_ip="{}"}}"#,
            seeded.test1_eip
        ),
        0.0,
    );
    has(r#"fleet_ci_slot_occupied{stack="test-1"}"#, 1.0);
    has(r#"fleet_ci_slot_queue_depth{stack="test-1"}"#, 1.0);
    has(
        r#"fleet_ci_slot_run_info{stack="test-1",run_id="101",workflow="integration",branch="feature/a"}"#,
        1.0,
    );
    has(
        &format!(r#"fleet_github_head_commit_info{{branch="main",commit="{HEAD}"}}"#),
        1.0,
    );
    has(r#"fleet_registry_registered{stack="prod"}"#, 1.0);
    has(r#"fleet_registry_registered{stack="test-1"}"#, 0.0);
    has("fleet_chain_block_number", 4.0);
    has(
        r#"fleet_deployer_balance{stack="test-1",address="0x00000000000000000000000000000000000F1eE1"}"#,
        1.5,
    );
    has(r#"fleet_drift{stack="prod",kind="dns_mismatch"}"#, 0.0);
    has(r#"fleet_drift{stack="prod",kind="eip_mismatch"}"#, 0.0);
    has(r#"fleet_drift{stack="test-1",kind="dns_mismatch"}"#, 1.0);
    has(r#"fleet_drift{stack="test-1",kind="eip_mismatch"}"#, 1.0);
    has(
        r#"fleet_drift{stack="prod",kind="oidc_issuer_mismatch"}"#,
        0.0,
    );
    has(
        r#"fleet_drift{stack="test-1",kind="oidc_issuer_mismatch"}"#,
        1.0,
    );
    has(r#"fleet_drift{stack="other",kind="stale_binary"}"#, 1.0);
    assert!(!body.contains("ghp_servetest"), "the token never shows");
    harness::promtool_check_metrics(&body);

    // The token from its file reached the GitHub server.
    assert!(gh
        .hits()
        .iter()
        .any(|h| h.authorization.as_deref() == Some("Bearer ghp_servetest")));
}
