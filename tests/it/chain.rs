//! The chain source through alloy against a real anvil node, with the
//! registry contract from tests/peers/Registry.sol deployed in the test.

use crate::common;
use crate::harness;

use std::sync::Arc;
use std::time::Duration;

use alloy::providers::{Provider, RootProvider};

use fleetpulse::config::Config;
use fleetpulse::sources::chain::{ChainFacts, ChainSource};
use fleetpulse::sources::Source;

use harness::chain::{
    set_up, Chain, PROD_ACCOUNT, TEST1_ACCOUNT, TEST1_DEPLOYER, TEST2_ACCOUNT, TEST2_DEPLOYER,
};

fn yaml(url: &str, chain: &Chain, extra: &str) -> String {
    format!(
        "sources:
  staleness: 4s
  chain:
    interval: 1s
    timeout: 1s
    rpc_url: {url}
    symbol: ETH
    registry_address: \"{registry}\"
{extra}environments:
  - name: prod
    deployer: \"{prod:#x}\"
    registry_account: \"{PROD_ACCOUNT}\"
  - name: test-1
    deployer: \"{TEST1_DEPLOYER}\"
    registry_account: \"{TEST1_ACCOUNT}\"
  - name: test-2
    deployer: \"{TEST2_DEPLOYER}\"
    registry_account: \"{TEST2_ACCOUNT}\"
",
        registry = chain.registry,
        prod = chain.prod_deployer,
    )
}

async fn collect(yaml: &str) -> Result<ChainFacts, String> {
    let cfg = Arc::new(Config::parse(yaml, "chain.yaml").unwrap());
    let src = ChainSource::from_config(cfg.clone())
        .unwrap()
        .expect("chain source enabled");
    match src.collect().await {
        Ok(out) => Ok(out
            .downcast_ref::<ChainFacts>()
            .expect("chain facts")
            .clone()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn balances_registrations_and_block_height_are_read_from_anvil() {
    let anvil = harness::anvil(0);
    let chain = set_up(&anvil.url()).await;
    let f = collect(&yaml(&anvil.url(), &chain, "")).await.unwrap();

    let p: RootProvider = RootProvider::new_http(anvil.url().parse().unwrap());
    assert_eq!(f.block_number, p.get_block_number().await.unwrap());
    assert_eq!(f.block_number, 4, "deploy, two registrations, one transfer");
    assert_eq!(f.symbol, "ETH");

    let balances: Vec<(&str, &str, f64)> = f
        .balances
        .iter()
        .map(|b| (b.stack.as_str(), b.address.as_str(), b.balance))
        .collect();
    let prod = chain.prod_deployer.to_checksum(None);
    assert_eq!(balances[0].0, "prod");
    assert_eq!(balances[0].1, prod);
    // Anvil's dev accounts start with 10,000 ETH; registering cost account 0 gas, not account 1.
    assert_eq!(balances[0].2, 10_000.0);
    assert_eq!(
        balances[1],
        ("test-1", "0x00000000000000000000000000000000000F1eE1", 1.5)
    );
    assert_eq!(balances[2].2, 0.0);

    let reg: Vec<(&str, bool)> = f
        .registrations
        .iter()
        .map(|r| (r.stack.as_str(), r.registered))
        .collect();
    assert_eq!(reg, [("prod", true), ("test-1", false), ("test-2", true)]);
    assert_eq!(f.registrations[0].registered_to, prod);
}

#[tokio::test]
async fn decimals_scale_the_balance() {
    let anvil = harness::anvil(0);
    let chain = set_up(&anvil.url()).await;
    let f = collect(&yaml(&anvil.url(), &chain, "    decimals: 15\n"))
        .await
        .unwrap();
    assert_eq!(
        f.balances[1].balance, 1500.0,
        "1.5e18 base units at 15 decimals"
    );
}

#[tokio::test]
async fn a_registry_without_the_configured_function_fails_the_run_saying_which_call() {
    let anvil = harness::anvil(0);
    let chain = set_up(&anvil.url()).await;
    let err = collect(&yaml(
        &anvil.url(),
        &chain,
        "    registry_function: operatorWallet(bytes32)\n",
    ))
    .await
    .unwrap_err();
    assert!(
        err.starts_with(&format!(
            "eth_call operatorWallet(bytes32) to {} on http://127.0.0.1:",
            chain.registry
        )),
        "{err}"
    );
    assert!(
        err.contains("does the registry have sources.chain.registry_function?"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anvil_going_away_keeps_last_values_for_staleness_then_drops_them_and_recovers() {
    let anvil = harness::anvil(0);
    let chain = set_up(&anvil.url()).await;
    let other = harness::HealthzPeer::start().await;
    let yaml = yaml(&anvil.url(), &chain, &other.sources_yaml()).replace(
        "environments:\n",
        &format!("environments:\n{}", other.environment_yaml()),
    );
    let cfg = Arc::new(Config::parse(&yaml, "chain.yaml").unwrap());
    let running = crate::common::start_exporter(cfg).await;
    let addr = running.addr;
    let scrape = || async move { common::get(&format!("http://{addr}/metrics")).await.1 };
    let up = r#"fleet_source_up{source="chain"}"#;
    let registered = r#"fleet_registry_registered{stack="prod"}"#;

    let body = common::eventually(Duration::from_secs(20), "chain up", || async {
        let b = scrape().await;
        (common::sample(&b, up) == Some(1.0)).then_some(b)
    })
    .await;
    let has = |series: &str, v: f64| {
        assert_eq!(
            common::sample(&body, series),
            Some(v),
            "{series} in\n{body}"
        );
    };
    let prod = chain.prod_deployer.to_checksum(None);
    has(
        &format!(r#"fleet_deployer_balance{{stack="prod",wallet="{prod}"}}"#),
        10_000.0,
    );
    has(
        r#"fleet_deployer_balance{stack="test-1",wallet="0x00000000000000000000000000000000000F1eE1"}"#,
        1.5,
    );
    has(registered, 1.0);
    has(r#"fleet_registry_registered{stack="test-1"}"#, 0.0);
    has("fleet_chain_block_number", 4.0);
    common::promtool_check_metrics(&body);

    let port = anvil.kill();
    let killed_at = fleetpulse::snapshot::now_unix();
    let b = common::eventually(Duration::from_secs(20), "chain down", || async {
        let b = scrape().await;
        (common::sample(&b, up) == Some(0.0)).then_some(b)
    })
    .await;
    assert_eq!(
        common::sample(&b, registered),
        Some(1.0),
        "kept while fresh"
    );
    let last_success = common::sample(
        &b,
        r#"fleet_source_last_success_timestamp_seconds{source="chain"}"#,
    )
    .unwrap();
    let gone = common::eventually(
        Duration::from_secs(20),
        "stale chain values dropped",
        || async {
            let b = scrape().await;
            common::sample(&b, registered).is_none().then_some(b)
        },
    )
    .await;
    assert!(fleetpulse::snapshot::now_unix() - last_success >= 4.0);
    assert!(!gone.contains("fleet_chain_block_number"));
    assert!(!gone.contains("fleet_deployer_balance{"));
    assert_eq!(
        common::sample(&gone, r#"fleet_source_up{source="healthz"}"#),
        Some(1.0)
    );
    assert!(
        common::sample(
            &gone,
            r#"fleet_source_last_success_timestamp_seconds{source="healthz"}"#
        )
        .unwrap()
            > killed_at
    );

    // A fresh anvil on the same port: the same deployment lands at the same address.
    let anvil = harness::anvil(port);
    let again = set_up(&anvil.url()).await;
    assert_eq!(again.registry, chain.registry);
    common::eventually(Duration::from_secs(20), "chain recovered", || async {
        let b = scrape().await;
        (common::sample(&b, up) == Some(1.0) && common::sample(&b, registered) == Some(1.0))
            .then_some(())
    })
    .await;
    running.shutdown().await.unwrap();
}
