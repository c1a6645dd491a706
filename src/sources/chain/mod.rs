//! The chain source: over JSON-RPC, each environment's deployer balance in
//! whole tokens, whether its account is registered in the registry contract
//! (an `eth_call` to a view function of one `bytes32` returning an address;
//! non-zero means registered), and the latest block number.

use super::{Source, SourceError, Watched};
use crate::catalogue::metric;
use crate::exposition::{b, family, DescriptorEncoder};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{HttpUrl, Schedule, Seconds};

pub mod view;

/// The chain source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// How often the source runs.
    #[serde(default = "ChainConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "ChainConfig::default_timeout")]
    pub timeout: Seconds,
    /// JSON-RPC URL.
    pub rpc_url: HttpUrl,
    /// Native token symbol, for display.
    #[serde(default = "ChainConfig::default_symbol")]
    pub symbol: String,
    /// Decimals of the native token.
    #[serde(default = "ChainConfig::default_decimals")]
    pub decimals: u8,
    /// Registry contract address.
    #[serde(default)]
    pub registry_address: Option<String>,
    /// View function taking the account (bytes32) and returning an address;
    /// a non-zero address means registered.
    #[serde(default = "ChainConfig::default_registry_function")]
    pub registry_function: String,
}

impl ChainConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(60))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(15))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

impl ChainConfig {
    /// What its types cannot say: addresses and the function signature
    /// well formed, decimals in range, a registry when one is asked of it.
    fn problems(&self, environments: &[crate::inventory::Environment]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(a) = &self.registry_address {
            if !crate::values::is_hex(a, 20) {
                out.push((
                    "registry_address".to_string(),
                    format!("not an address (0x + 40 hex digits): {a:?}"),
                ));
            }
        }
        let f = &self.registry_function;
        let takes_one_id = f.strip_suffix("(bytes32)").is_some_and(|n| {
            n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        });
        if !takes_one_id {
            out.push((
                "registry_function".to_string(),
                format!(
                    "not a view function of one bytes32 argument, like operatorMasterWallet(bytes32): {f:?}"
                ),
            ));
        }
        // U256 holds 77 decimal digits.
        if self.decimals > 77 {
            out.push((
                "decimals".to_string(),
                format!("at most 77 decimals: {}", self.decimals),
            ));
        }
        let wants_registry = environments.iter().any(|e| e.registry_account.is_some());
        if wants_registry && self.registry_address.is_none() {
            out.push((
                "registry_address".to_string(),
                "required when an environment lists registry_account".to_string(),
            ));
        }
        out
    }

    fn default_symbol() -> String {
        "ETH".into()
    }
    fn default_decimals() -> u8 {
        18
    }
    fn default_registry_function() -> String {
        "operatorMasterWallet(bytes32)".into()
    }
}

/// One deployer wallet's balance.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DeployerBalance {
    pub stack: String,
    /// Checksummed address.
    pub address: String,
    /// In whole tokens (the configured decimals applied).
    pub balance: f64,
}

/// One environment's registration in the registry contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Registration {
    pub stack: String,
    /// The 32-byte account id, as configured.
    pub account: String,
    /// The address the registry returns for it (zero when unregistered).
    pub registered_to: String,
    pub registered: bool,
}

/// What the chain source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChainFacts {
    pub block_number: u64,
    /// The native token's symbol, for display.
    pub symbol: String,
    /// In inventory order.
    pub balances: Vec<DeployerBalance>,
    /// In inventory order.
    pub registrations: Vec<Registration>,
}

#[cfg(feature = "chain")]
pub use client::{whole_tokens, ChainSource};

/// The source itself, in builds with the `chain` feature (alloy).
#[cfg(feature = "chain")]
mod client {
    use std::sync::Arc;

    use alloy::primitives::{keccak256, Address, Bytes, FixedBytes, U256};
    use alloy::providers::{Provider, RootProvider};
    use alloy::rpc::types::TransactionRequest;
    use alloy::sol_types::SolValue;

    use super::*;
    use crate::sources::chain::ChainConfig;
    use crate::sources::Watched;
    use crate::sources::{CollectFuture, Source, SourceError};
    use crate::values::Schedule;

    /// The chain source.
    pub struct ChainSource {
        config: Arc<dyn Watched>,
        chain: ChainConfig,
        provider: RootProvider,
        registry: Option<Address>,
        /// First four bytes of keccak256 of the registry function's signature.
        selector: [u8; 4],
    }

    impl ChainSource {
        /// Builds the source if `sources.chain` is set and an environment lists a deployer or registry account.
        pub fn from_config(config: Arc<dyn Watched>) -> Result<Option<Self>, SourceError> {
            let Some(chain) = &config.sources().chain else {
                return Ok(None);
            };
            let wanted = config
                .environments()
                .iter()
                .any(|e| e.deployer.is_some() || e.registry_account.is_some());
            if !wanted {
                return Ok(None);
            }
            let registry = match &chain.registry_address {
                Some(a) => Some(a.parse::<Address>().map_err(|e| {
                    SourceError::new(format!("sources.chain.registry_address {a:?}: {e}"))
                })?),
                None => None,
            };
            let hash = keccak256(chain.registry_function.as_bytes());
            let selector = [hash[0], hash[1], hash[2], hash[3]];
            Ok(Some(ChainSource {
                config: config.clone(),
                chain: chain.clone(),
                provider: RootProvider::new_http(chain.rpc_url.0.clone()),
                registry,
                selector,
            }))
        }

        async fn collect_facts(&self) -> Result<ChainFacts, SourceError> {
            let rpc = |call: &str, e: &dyn std::fmt::Display| {
                SourceError::new(format!("{call} on {}: {e}", self.chain.rpc_url))
            };
            let block_number = self
                .provider
                .get_block_number()
                .await
                .map_err(|e| rpc("eth_blockNumber", &e))?;
            let mut balances = Vec::new();
            let mut registrations = Vec::new();
            for env in self.config.environments() {
                if let Some(deployer) = &env.deployer {
                    let address: Address = deployer
                        .parse()
                        .map_err(|e| SourceError::new(format!("deployer {deployer:?}: {e}")))?;
                    let wei = self
                        .provider
                        .get_balance(address)
                        .await
                        .map_err(|e| rpc("eth_getBalance", &e))?;
                    balances.push(DeployerBalance {
                        stack: env.name.0.clone(),
                        address: address.to_checksum(None),
                        balance: whole_tokens(wei, self.chain.decimals),
                    });
                }
                if let (Some(account), Some(registry)) = (&env.registry_account, self.registry) {
                    let id: FixedBytes<32> = account.parse().map_err(|e| {
                        SourceError::new(format!("registry_account {account:?}: {e}"))
                    })?;
                    let mut input = self.selector.to_vec();
                    input.extend_from_slice(id.as_slice());
                    let tx = TransactionRequest::default()
                        .to(registry)
                        .input(Bytes::from(input).into());
                    let out = self.provider.call(tx).await.map_err(|e| {
                        let call =
                            format!("eth_call {} to {registry}", self.chain.registry_function);
                        let mut err = rpc(&call, &e);
                        if e.to_string().contains("revert") {
                            err.0.push_str(
                                "; does the registry have sources.chain.registry_function?",
                            );
                        }
                        err
                    })?;
                    let to = Address::abi_decode(&out).map_err(|e| {
                    SourceError::new(format!(
                        "{} at {registry}: the answer is not an address ({e}); is sources.chain.registry_function right?",
                        self.chain.registry_function
                    ))
                })?;
                    registrations.push(Registration {
                        stack: env.name.0.clone(),
                        account: account.clone(),
                        registered_to: to.to_checksum(None),
                        registered: !to.is_zero(),
                    });
                }
            }
            Ok(ChainFacts {
                block_number,
                symbol: self.chain.symbol.clone(),
                balances,
                registrations,
            })
        }
    }

    /// `amount / 10^decimals` as a float: exact to the precision a gauge carries.
    pub fn whole_tokens(amount: U256, decimals: u8) -> f64 {
        let scale = U256::from(10u8).pow(U256::from(decimals));
        let whole = amount / scale;
        let frac = amount % scale;
        // Each part fits a float's range; the fraction keeps ~15 significant digits.
        f64::from(whole) + f64::from(frac) / f64::from(scale)
    }

    impl Source for ChainSource {
        fn name(&self) -> &'static str {
            "chain"
        }
        fn schedule(&self) -> Schedule {
            self.chain.schedule()
        }
        fn collect(&self) -> CollectFuture<'_> {
            Box::pin(async move { self.collect_facts().await.map(crate::sources::output) })
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn balances_are_scaled_to_whole_tokens() {
            let cases: &[(&str, u8, f64)] = &[
                ("10000000000000000000000", 18, 10_000.0),
                ("1500000000000000000", 18, 1.5),
                ("1", 18, 1e-18),
                ("0", 18, 0.0),
                ("123456", 6, 0.123456),
                ("42", 0, 42.0),
            ];
            for (wei, decimals, want) in cases {
                let got = whole_tokens(wei.parse().unwrap(), *decimals);
                assert!(
                    (got - want).abs() <= want.abs() * 1e-12,
                    "{wei} / 10^{decimals}: {got}"
                );
            }
        }
    }

    #[cfg(test)]
    mod collect_tests {
        use super::*;

        const DEPLOYER: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
        const REGISTRY: &str = "0x00000000000000000000000000000000000000aa";
        const OPERATOR: &str = "0x00000000000000000000000000000000000000bb";

        fn account(n: u8) -> String {
            format!("0x{}{n:02x}", "00".repeat(31))
        }

        /// A chain at block 0x10 where the deployer holds 1.5 ETH and
        /// account 1 is registered to OPERATOR, account 2 to no one, and
        /// asking for account 3 reverts.
        fn node(request: &str) -> String {
            let body = crate::testing::body(request);
            let call: serde_json::Value = serde_json::from_str(body).unwrap();
            let answer = |result: serde_json::Value| serde_json::json!({"jsonrpc": "2.0", "id": call["id"], "result": result});
            let word = |hex: &str| format!("0x{hex:0>64}");
            let out = match call["method"].as_str().unwrap() {
                "eth_blockNumber" => answer("0x10".into()),
                "eth_getBalance" => answer("0x14d1120d7b160000".into()),
                "eth_call" => {
                    let input = call["params"][0]["input"]
                        .as_str()
                        .or(call["params"][0]["data"].as_str())
                        .unwrap()
                        .to_string();
                    if input.ends_with("03") {
                        serde_json::json!({"jsonrpc": "2.0", "id": call["id"],
                            "error": {"code": 3, "message": "execution reverted"}})
                    } else if input.ends_with("04") {
                        answer("0x01".into())
                    } else if input.ends_with("01") {
                        answer(word(&OPERATOR[2..]).into())
                    } else {
                        answer(word("").into())
                    }
                }
                m => serde_json::json!({"jsonrpc": "2.0", "id": call["id"],
                    "error": {"code": -32601, "message": format!("no {m}")}}),
            };
            let out = out.to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
                out.len()
            )
        }

        fn source(port: u16, envs: &str) -> ChainSource {
            let yaml = format!(
                "sources:\n  chain:\n    rpc_url: http://127.0.0.1:{port}/\n    symbol: tETH\n    registry_address: '{REGISTRY}'\n    interval: 30s\n\
                 environments:\n{envs}"
            );
            let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
            ChainSource::from_config(Arc::new(config)).unwrap().unwrap()
        }

        fn env(name: &str, more: &str) -> String {
            format!("  - name: {name}\n{more}")
        }

        #[tokio::test]
        async fn balances_and_registrations_are_read_from_the_node() {
            let (port, server, calls) = crate::testing::recording_server(node).await;
            let envs = [
                env(
                    "prod",
                    &format!(
                        "    deployer: '{DEPLOYER}'\n    registry_account: '{}'\n",
                        account(1)
                    ),
                ),
                env(
                    "staging",
                    &format!("    registry_account: '{}'\n", account(2)),
                ),
                env("dev", ""),
            ]
            .concat();
            let s = source(port, &envs);
            assert_eq!(
                (s.name(), s.schedule().interval.0),
                ("chain", Duration::from_secs(30))
            );
            let out = s.collect().await.unwrap();
            server.abort();
            let facts = out.downcast_ref::<ChainFacts>().unwrap();
            assert_eq!((facts.block_number, facts.symbol.as_str()), (16, "tETH"));
            assert_eq!(
                facts.balances,
                [DeployerBalance {
                    stack: "prod".into(),
                    address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into(),
                    balance: 1.5,
                }]
            );
            let regs: Vec<_> = facts
                .registrations
                .iter()
                .map(|r| {
                    (
                        r.stack.as_str(),
                        r.account.clone(),
                        r.registered_to.as_str(),
                        r.registered,
                    )
                })
                .collect();
            assert_eq!(
                regs,
                [
                    (
                        "prod",
                        account(1),
                        "0x00000000000000000000000000000000000000bb",
                        true
                    ),
                    (
                        "staging",
                        account(2),
                        "0x0000000000000000000000000000000000000000",
                        false
                    ),
                ]
            );
            // The call is the function's selector and the account id.
            let calls = calls.lock().unwrap();
            let selector = hex::encode(&keccak256("operatorMasterWallet(bytes32)")[..4]);
            let want = format!("0x{selector}{}", &account(1)[2..]);
            assert!(
                calls.iter().any(|c| c.contains(&want)),
                "{want} in {calls:?}"
            );
            assert!(calls.iter().any(|c| c.contains(REGISTRY)));
        }

        #[tokio::test]
        async fn a_revert_or_an_answer_that_is_not_an_address_names_the_function() {
            let (port, server) = crate::testing::http_server_seeing(|r| Some(node(r))).await;
            let reverted = source(
                port,
                &env("prod", &format!("    registry_account: '{}'\n", account(3))),
            );
            let e = crate::testing::failure(&reverted).await;
            assert!(
                e.starts_with(&format!(
                    "eth_call operatorMasterWallet(bytes32) to {} on http://127.0.0.1:{port}/: ",
                    REGISTRY.parse::<Address>().unwrap()
                )),
                "{e}"
            );
            assert!(
                e.ends_with("; does the registry have sources.chain.registry_function?"),
                "{e}"
            );
            let short = source(
                port,
                &env("prod", &format!("    registry_account: '{}'\n", account(4))),
            );
            let e = crate::testing::failure(&short).await;
            server.abort();
            assert!(e.starts_with("operatorMasterWallet(bytes32) at "), "{e}");
            assert!(
                e.ends_with("is sources.chain.registry_function right?"),
                "{e}"
            );

            let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = closed.local_addr().unwrap().port();
            drop(closed);
            let s = source(port, &env("prod", &format!("    deployer: '{DEPLOYER}'\n")));
            let e = crate::testing::failure(&s).await;
            assert!(
                e.starts_with(&format!("eth_blockNumber on http://127.0.0.1:{port}/: ")),
                "{e}"
            );
        }

        #[test]
        fn no_source_without_a_deployer_or_an_account() {
            let yaml = "sources:\n  chain:\n    rpc_url: http://127.0.0.1:1/\nenvironments:\n  - name: prod\n";
            let config = crate::config::Config::parse(yaml, "fleet.yaml").unwrap();
            assert!(ChainSource::from_config(Arc::new(config))
                .unwrap()
                .is_none());
            let config =
                crate::config::Config::parse("environments:\n  - name: prod\n", "fleet.yaml")
                    .unwrap();
            assert!(ChainSource::from_config(Arc::new(config))
                .unwrap()
                .is_none());
        }
    }
}

/// The registry's builder: the source when its section is configured, in
/// builds with the `chain` feature (without it, `sources::from_config`
/// refuses a configured section before this runs).
pub fn register(
    config: &std::sync::Arc<dyn super::Watched>,
) -> Result<Vec<std::sync::Arc<dyn super::Source>>, super::SourceError> {
    #[cfg(feature = "chain")]
    {
        Ok(super::at_most_one(ChainSource::from_config(
            config.clone(),
        )?))
    }
    #[cfg(not(feature = "chain"))]
    {
        let _ = config;
        Ok(Vec::new())
    }
}
impl super::SourceFacts for ChainFacts {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        let b = super::retain_listed(&mut self.balances, |x| listed.stack(&x.stack));
        let r = super::retain_listed(&mut self.registrations, |x| listed.stack(&x.stack));
        b || r
    }
    fn encode(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        encode(self, enc)
    }
}

/// This source's families: deployer balances, registration, block height.
pub fn encode(chain: &ChainFacts, enc: &mut DescriptorEncoder) -> std::fmt::Result {
    family(
        enc,
        &DEPLOYER_BALANCE,
        chain
            .balances
            .iter()
            .map(|x| ([x.stack.as_str(), x.address.as_str()], x.balance)),
    )?;
    family(
        enc,
        &REGISTRY_REGISTERED,
        chain
            .registrations
            .iter()
            .map(|r| ([r.stack.as_str()], b(r.registered))),
    )?;
    family(enc, &CHAIN_BLOCK_NUMBER, [([], chain.block_number as f64)])?;
    Ok(())
}

/// The chain source, as the registry knows it.
pub struct Chain;

impl super::SourceKind for Chain {
    const NAME: &'static str = "chain";
    const FEATURE: Option<&'static str> = Some("chain");
    const BUILT_WITH: bool = cfg!(feature = "chain");
    const FAMILIES: &'static [crate::catalogue::MetricDef] =
        &[DEPLOYER_BALANCE, REGISTRY_REGISTERED, CHAIN_BLOCK_NUMBER];
    type Settings = Option<ChainConfig>;
    type Facts = ChainFacts;
    type Part = view::Part;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn configured(config: &dyn Watched) -> bool {
        config.sources().chain.is_some()
    }
    fn schedule(settings: &Option<ChainConfig>) -> Option<Schedule> {
        settings.as_ref().map(ChainConfig::schedule)
    }
    fn check(
        settings: &Option<ChainConfig>,
        environments: &[crate::inventory::Environment],
    ) -> Vec<(String, String)> {
        match settings {
            Some(chain) => chain.problems(environments),
            None => Vec::new(),
        }
    }
}

// Its families.
metric!(
    DEPLOYER_BALANCE,
    "fleet_deployer_balance",
    Gauge,
    ["stack", "wallet"],
    "Deployer wallet balance in whole tokens."
);
metric!(
    REGISTRY_REGISTERED,
    "fleet_registry_registered",
    Gauge,
    ["stack"],
    "1 if the environment's account is registered in the registry contract."
);
metric!(
    CHAIN_BLOCK_NUMBER,
    "fleet_chain_block_number",
    Gauge,
    [],
    "Latest block number seen on the chain RPC."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Facts, SourceKind};

    const WALLET: &str = "0x00000000000000000000000000000000000000a1";

    fn settings(yaml: &str) -> ChainConfig {
        let config = crate::config::Config::parse(
            &format!("sources:\n  chain:\n    rpc_url: http://127.0.0.1:8545\n{yaml}environments:\n  - name: prod\n"),
            "fleet.yaml",
        )
        .unwrap();
        config.sources.chain.unwrap()
    }

    #[test]
    fn settings_have_defaults_and_each_problem_is_named_by_its_field() {
        let d = settings("");
        assert_eq!(
            (d.interval.0, d.timeout.0, d.symbol.as_str(), d.decimals),
            (Duration::from_secs(60), Duration::from_secs(15), "ETH", 18)
        );
        assert_eq!(d.registry_function, "operatorMasterWallet(bytes32)");
        let s = Chain::schedule(&Some(d.clone())).unwrap();
        assert_eq!((s.interval, s.timeout), (d.interval, d.timeout));
        assert_eq!(Chain::schedule(&None), None);
        assert!(Chain::check(&None, &[]).is_empty());
        assert!(Chain::check(&Some(d.clone()), &[]).is_empty());
        let with = |f: fn(&mut ChainConfig)| {
            let mut c = d.clone();
            f(&mut c);
            Chain::check(&Some(c), &[])
        };
        assert!(with(|c| c.decimals = 77).is_empty());
        assert_eq!(
            with(|c| c.decimals = 78),
            [(
                "decimals".to_string(),
                "at most 77 decimals: 78".to_string()
            )]
        );
        assert!(with(|c| c.registry_address = Some(WALLET.into())).is_empty());
        assert_eq!(
            with(|c| c.registry_address = Some("0x12".into())),
            [(
                "registry_address".to_string(),
                "not an address (0x + 40 hex digits): \"0x12\"".to_string()
            )]
        );
        for ok in ["_owner(bytes32)", "walletOf2(bytes32)"] {
            let mut c = d.clone();
            c.registry_function = ok.into();
            assert!(Chain::check(&Some(c), &[]).is_empty(), "{ok}");
        }
        for bad in [
            "2wallet(bytes32)",
            "wallet(address)",
            "wal-let(bytes32)",
            "(bytes32)",
            "wallet(bytes32,uint256)",
        ] {
            let mut c = d.clone();
            c.registry_function = bad.into();
            assert_eq!(
                Chain::check(&Some(c), &[]),
                [(
                    "registry_function".to_string(),
                    format!("not a view function of one bytes32 argument, like operatorMasterWallet(bytes32): {bad:?}")
                )],
                "{bad}"
            );
        }
        let registered = crate::testing::environments(&format!(
            "  - name: prod\n    registry_account: \"0x{}\"\n  - name: dev\n",
            "ab".repeat(32)
        ));
        assert_eq!(
            Chain::check(&Some(d.clone()), &registered),
            [(
                "registry_address".to_string(),
                "required when an environment lists registry_account".to_string()
            )]
        );
        let mut c = d;
        c.registry_address = Some(WALLET.into());
        assert!(Chain::check(&Some(c), &registered).is_empty());
    }

    pub(super) fn facts() -> ChainFacts {
        let registration = |stack: &str, registered| Registration {
            stack: stack.into(),
            account: format!("0x{}", "ab".repeat(32)),
            registered_to: WALLET.into(),
            registered,
        };
        ChainFacts {
            block_number: 1234,
            symbol: "ETH".into(),
            balances: vec![DeployerBalance {
                stack: "prod".into(),
                address: WALLET.into(),
                balance: 1.5,
            }],
            registrations: vec![registration("prod", true), registration("staging", false)],
        }
    }

    #[test]
    fn balances_registrations_and_the_block_are_written() {
        let written: Vec<String> = ["fleet_deployer_", "fleet_registry_", "fleet_chain_"]
            .iter()
            .flat_map(|p| crate::metrics::samples_of(Facts::default().with("chain", facts()), p))
            .collect();
        assert_eq!(
            written,
            [
                format!(r#"fleet_deployer_balance{{stack="prod",wallet="{WALLET}"}} 1.5"#),
                r#"fleet_registry_registered{stack="prod"} 1.0"#.to_string(),
                r#"fleet_registry_registered{stack="staging"} 0.0"#.to_string(),
                "fleet_chain_block_number 1234.0".to_string(),
            ]
        );
    }

    #[test]
    fn a_removed_environment_takes_its_balance_and_registration_along() {
        let retire = |f: ChainFacts, envs: &str| {
            let mut facts = Facts::default().with("chain", f);
            facts.retire(&crate::testing::environments(envs));
            facts.get::<ChainFacts>().unwrap().clone()
        };
        let staging = retire(facts(), "  - name: staging\n");
        assert!(staging.balances.is_empty());
        assert_eq!(staging.registrations.len(), 1);
        // Only a registration gone: the facts still change.
        let only = retire(
            ChainFacts {
                balances: vec![],
                ..facts()
            },
            "  - name: prod\n",
        );
        assert_eq!(only.registrations.len(), 1);
        let with = crate::config::Config::parse(
            "sources:\n  chain:\n    rpc_url: http://127.0.0.1:8545\nenvironments:\n  - name: prod\n",
            "fleet.yaml",
        )
        .unwrap();
        assert!(Chain::configured(&with));
        assert!(!Chain::configured(
            &crate::config::Config::parse("environments:\n  - name: prod\n", "fleet.yaml").unwrap()
        ));
    }
}
