//! The demo's cloud, CI, chain and OIDC: in-process peers speaking the
//! protocols the production clients speak (see `simfleet`), holding a world
//! with one of every fault the board can show. The sources reach them
//! through their ordinary settings (`endpoint_url`, `api_url`, `rpc_url`,
//! an environment's `oidc.url`), exactly as they reach the real services.

use std::collections::HashMap;

use serde_json::Value;

use crate::simfleet::chain::{Chain, ChainServer};
use crate::simfleet::cloud::{Address, Cloud, CloudServer, Instance, Record};
use crate::simfleet::github::{run_json, GithubServer};
use crate::simfleet::oidc::OidcPeer;

/// main's head in the simulated repository; the demo's services run it.
pub const DEMO_HEAD: &str = "4f2c9e1d8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d";
/// The simulated repository.
pub const REPO: &str = "octo-org/broker";
/// The hosted zone of the environments' DNS names.
pub const ZONE: &str = "Z0DEMO4F2C9E1EXAMPLE";
/// The registry contract.
pub const REGISTRY: &str = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
/// The registry's view function.
pub const REGISTRY_FUNCTION: &str = "operatorMasterWallet(bytes32)";
/// GitHub's remaining requests at start: under the alert's 100.
pub const RATE_REMAINING: u64 = 90;

/// One environment of the simulated world.
pub struct World {
    pub stack: &'static str,
    /// Public IP of its Elastic IP (documentation range, RFC 5737).
    pub eip: &'static str,
    pub instance_id: &'static str,
    pub instance_state: &'static str,
    pub eip_associated: bool,
    /// What `worker.<stack>` resolves to (its `broker.<stack>` is the EIP).
    pub worker_record: &'static str,
    /// The issuer its broker advertises.
    pub advertised_issuer: &'static str,
    pub deployer: &'static str,
    /// The deployer's balance in milli-ETH.
    pub balance_milli: u128,
    pub account: &'static str,
    pub registered: bool,
    /// Matched against CI runs' titles; `None` for an environment without a test slot.
    pub ci_slot: Option<&'static str>,
}

impl World {
    /// The issuer the inventory expects of it.
    pub fn issuer(&self) -> String {
        format!("https://id.{}.demo.example", self.stack)
    }
    /// Its DNS names, which must agree with each other and with its EIP.
    pub fn dns_names(&self) -> [String; 2] {
        [
            format!("broker.{}.demo.example", self.stack),
            format!("worker.{}.demo.example", self.stack),
        ]
    }
}

/// The four environments: prod is clean; test-1's instance is stopped, its
/// EIP unattached and its worker record points elsewhere, and its deployer
/// is nearly out of funds; test-2's broker advertises test-1's issuer and
/// its account is not registered; test-3 is clean with a free slot.
pub const WORLD: [World; 4] = [
    World {
        stack: "prod",
        eip: "203.0.113.10",
        instance_id: "i-0a1b2c3d4e5f60010",
        instance_state: "running",
        eip_associated: true,
        worker_record: "203.0.113.10",
        advertised_issuer: "https://id.prod.demo.example",
        deployer: "0x4283fefc63f0cd0e873a0000c6d07ef7b77e90d3",
        balance_milli: 12_500,
        account: "0x593ad699fc1f7cd5bb2e35cbf0f19c557067cbbe80c46d1fb6dfbdb0ae075528",
        registered: true,
        ci_slot: None,
    },
    World {
        stack: "test-1",
        eip: "203.0.113.11",
        instance_id: "i-0a1b2c3d4e5f60011",
        instance_state: "stopped",
        eip_associated: false,
        worker_record: "198.51.100.7",
        advertised_issuer: "https://id.test-1.demo.example",
        deployer: "0x1220e087835b92558589eaff309cad68386d070c",
        balance_milli: 40,
        account: "0x415ed7e70cad19461922995d84016e51c6b36d6f3c9f0ac9056a4ad683cbf721",
        registered: true,
        ci_slot: Some("test-slot-1"),
    },
    World {
        stack: "test-2",
        eip: "203.0.113.12",
        instance_id: "i-0a1b2c3d4e5f60012",
        instance_state: "running",
        eip_associated: true,
        worker_record: "203.0.113.12",
        advertised_issuer: "https://id.test-1.demo.example",
        deployer: "0x245568a8baa397f43a1d2c44a3c2728b93e83190",
        balance_milli: 2_000,
        account: "0x02d3167d53e5753dc98fa36a1009aecac22ae386fb856967b282e2a7c91a5a97",
        registered: false,
        ci_slot: Some("test-slot-2"),
    },
    World {
        stack: "test-3",
        eip: "203.0.113.13",
        instance_id: "i-0a1b2c3d4e5f60013",
        instance_state: "running",
        eip_associated: true,
        worker_record: "203.0.113.13",
        advertised_issuer: "https://id.test-3.demo.example",
        deployer: "0xa327707c2822009bff43a25544a9394641a659d5",
        balance_milli: 1_000,
        account: "0x1782ed8ee0ca58f0d01b44488cc527f05ae77aff7da8712b56999b5e23c548d6",
        registered: true,
        ci_slot: Some("test-slot-3"),
    },
];

/// The running peers.
pub struct Peers {
    pub cloud: CloudServer,
    pub github: GithubServer,
    pub chain: ChainServer,
    pub oidc: OidcPeer,
}

/// A commit id for a simulated CI run: 40 hex digits derived from its id.
pub fn run_commit(run: u64) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("demo run {run}").as_bytes()))[..40].to_string()
}

/// RFC 3339 for `minutes` ago.
fn ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A workflow run of the integration workflow on a test slot.
pub fn slot_run(id: u64, status: &str, slot: &str, sha: &str, minutes_ago: i64) -> Value {
    run_json(
        id,
        status,
        "integration",
        &format!("integration on {slot}"),
        &format!("feature/run-{id}"),
        sha,
        &ago(minutes_ago),
    )
}

/// The first run of test-1's queue: it takes the slot when the holder finishes.
pub const TEST1_FIRST: u64 = 5101;

/// The CI runs at start: test-1's slot held by a fresh run on main's head
/// with one run queued; test-2's held for five hours by a stuck run with five
/// queued behind it; test-3's free.
fn runs() -> Vec<Value> {
    let mut runs = vec![
        slot_run(TEST1_FIRST - 1, "in_progress", "test-slot-1", DEMO_HEAD, 4),
        slot_run(
            TEST1_FIRST,
            "queued",
            "test-slot-1",
            &run_commit(TEST1_FIRST),
            2,
        ),
        slot_run(4201, "in_progress", "test-slot-2", DEMO_HEAD, 5 * 60),
    ];
    for id in 4202..4207 {
        runs.push(slot_run(id, "queued", "test-slot-2", &run_commit(id), 60));
    }
    runs
}

fn tags(stack: &str) -> Vec<(String, String)> {
    vec![("Stack".to_string(), stack.to_string())]
}

fn cloud() -> Cloud {
    let launched = crate::clock::now_unix() as i64 - 9 * 86_400;
    let mut cloud = Cloud::default();
    let mut records = Vec::new();
    for w in &WORLD {
        let running = w.instance_state == "running";
        cloud.instances.push(Instance {
            id: w.instance_id.to_string(),
            tags: tags(w.stack),
            state: w.instance_state.to_string(),
            instance_type: "t3.small".to_string(),
            zone: "eu-west-1a".to_string(),
            launch_time: launched,
            public_ip: running.then(|| w.eip.to_string()),
        });
        cloud.addresses.push(Address {
            public_ip: w.eip.to_string(),
            allocation_id: format!("eipalloc-{}", &w.instance_id[2..]),
            tags: tags(w.stack),
            instance_id: w.eip_associated.then(|| w.instance_id.to_string()),
        });
        let [broker, worker] = w.dns_names();
        records.push(Record {
            name: broker,
            values: vec![w.eip.to_string()],
        });
        records.push(Record {
            name: worker,
            values: vec![w.worker_record.to_string()],
        });
    }
    cloud.zones.insert(ZONE.to_string(), records);
    cloud
}

fn chain() -> Chain {
    const MILLI_ETH: u128 = 1_000_000_000_000_000;
    let mut balances = HashMap::new();
    let mut registrations = HashMap::new();
    for (i, w) in WORLD.iter().enumerate() {
        balances.insert(w.deployer.to_string(), w.balance_milli * MILLI_ETH);
        if w.registered {
            registrations.insert(w.account.to_string(), format!("0x{:040x}", 0xc0de_0000 + i));
        }
    }
    Chain {
        chain_id: 31337,
        first_block: 19_000_000,
        balances,
        registry: REGISTRY.to_string(),
        registrations,
    }
}

impl Peers {
    /// Starts the four peers on free loopback ports.
    pub async fn start() -> std::io::Result<Peers> {
        let github = GithubServer::start(DEMO_HEAD, runs()).await?;
        github.with(|f| f.rate_remaining = RATE_REMAINING);
        let issuers: Vec<(&str, &str)> = WORLD
            .iter()
            .map(|w| (w.stack, w.advertised_issuer))
            .collect();
        Ok(Peers {
            cloud: CloudServer::start(cloud()).await?,
            github,
            chain: ChainServer::start(chain()).await?,
            oidc: OidcPeer::start(&issuers).await?,
        })
    }
}
