//! `fleetpulse serve` as a process, on a config naming moto, anvil, the
//! GitHub test server and an OIDC server: every cloud, CI, chain and drift
//! family is exposed with the right values, and promtool finds nothing.

use crate::common;
use crate::harness;

use fleetpulse::catalogue as cat;

use harness::fleet::{FedFleet, GITHUB_TOKEN, HEAD};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exposes_every_cloud_ci_chain_and_drift_family() {
    let fleet = FedFleet::start().await;
    let body = fleet.until_sources_up(&harness::fleet::SOURCES).await;
    let seeded = &fleet.seeded;

    let families = fleetpulse::sources::REGISTRY
        .iter()
        .filter(|r| ["aws", "dns", "github", "chain"].contains(&r.name))
        .flat_map(|r| r.families.iter().copied())
        .chain([cat::DRIFT]);
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
        r#"fleet_deployer_balance{stack="test-1",wallet="0x00000000000000000000000000000000000F1eE1"}"#,
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
    assert!(!body.contains(GITHUB_TOKEN), "the token never shows");
    common::promtool_check_metrics(&body);

    // The token from its file reached the GitHub server.
    assert!(fleet
        .gh
        .hits()
        .iter()
        .any(|h| h.authorization.as_deref() == Some(format!("Bearer {GITHUB_TOKEN}").as_str())));
}
