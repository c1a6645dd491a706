//! The fleet as JSON: `GET /api/v1/fleet`, schema documented in
//! docs/fleet-json.md. `fleet` turns a snapshot into the model, `redact`
//! strips what must not face the internet; the page renders this same model,
//! so public mode hides the same things everywhere.

use serde::{Deserialize, Serialize};

use crate::snapshot::{
    AwsFacts, ChainFacts, DnsFacts, GithubFacts, Health, HealthzFacts, Snapshot, TlsFacts,
};

/// The version of the schema below. Bumped on any change that could break a
/// reader (a removed or renamed field, a changed meaning); new fields do not.
pub const SCHEMA_VERSION: u32 = 1;

/// What a hidden value is replaced with inside free text in public mode.
pub const HIDDEN: &str = "[hidden]";

pub use super::redact::Redactor;
pub use crate::thresholds::{CERT_WARN_DAYS, RESTART_LOOP_BOOTS};

/// A state as text, worst last. `unknown` means fleetpulse has no reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Green,
    Unknown,
    Degraded,
    Red,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Green => "green",
            State::Unknown => "unknown",
            State::Degraded => "degraded",
            State::Red => "red",
        }
    }

    fn of(h: Health) -> State {
        match h {
            Health::Green => State::Green,
            Health::Degraded => State::Degraded,
            Health::Red => State::Red,
        }
    }
}

/// The whole board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fleet {
    pub schema_version: u32,
    /// When the snapshot was read, Unix seconds.
    pub read_at: f64,
    /// Whether internal values were hidden (public mode).
    pub public: bool,
    /// The worst state anywhere on the board.
    pub state: State,
    pub environments: Vec<Environment>,
    pub boxes: Vec<BoxPulse>,
    pub tests: Vec<TestReceipt>,
    pub mutants: Vec<MutationResult>,
    pub hosts: Vec<HostDoctor>,
    pub sources: Vec<SourceFreshness>,
}

/// One environment (stack).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub stack: String,
    /// The worst of its services and TLS endpoints.
    pub state: State,
    pub services: Vec<Service>,
    pub tls: Vec<TlsEndpoint>,
    pub instances: Vec<Instance>,
    pub elastic_ips: Vec<ElasticIp>,
    pub dns: Vec<DnsName>,
    /// The CI test slot; `null` when no slot is watched for this stack.
    pub slot: Option<Slot>,
    /// Deployer balance and registry registration; `null` when not watched.
    pub chain: Option<Chain>,
    pub drift: Vec<Drift>,
}

/// Who holds an environment's CI slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The run holding the slot; `null` when it is free.
    pub holder: Option<SlotRun>,
    /// Runs waiting for it.
    pub queued: u32,
}

/// A CI run holding a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRun {
    pub workflow: String,
    pub title: String,
    pub branch: String,
    pub head_sha: String,
    pub status: String,
    pub started_at: Option<f64>,
    /// `null` in public mode.
    pub url: Option<String>,
}

/// What the chain says about an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    pub block_number: u64,
    pub symbol: String,
    /// `null` in public mode.
    pub deployer: Option<String>,
    /// In whole tokens; `null` when not read.
    pub balance: Option<f64>,
    /// `null` when no registration is checked.
    pub registered: Option<bool>,
}

/// A service's last /healthz answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub state: State,
    pub status_code: Option<u16>,
    pub latency_seconds: Option<f64>,
    pub commit: Option<String>,
    /// Why it is not green (or why it is unknown), in words.
    pub reason: Option<String>,
}

/// A TLS endpoint's last handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsEndpoint {
    pub service: String,
    /// `host:port`; `null` in public mode when the host is an IP address.
    pub host: Option<String>,
    pub state: State,
    /// `null` until the first handshake.
    pub up: Option<bool>,
    pub leaf_not_after: Option<i64>,
    pub chain_earliest_not_after: Option<i64>,
    /// Whole days until the earlier of the two not-afters (negative: expired).
    pub days_left: Option<i64>,
    pub chain_valid: Option<bool>,
    pub error: Option<String>,
}

/// An EC2 instance carrying the environment's tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `null` in public mode.
    pub instance_id: Option<String>,
    /// EC2's state name; `null` for one this build does not know.
    pub state: Option<String>,
    pub instance_type: String,
    pub availability_zone: String,
    pub launch_time: Option<f64>,
    /// Seconds since launch, at `read_at`.
    pub uptime_seconds: Option<f64>,
    /// `null` in public mode.
    pub public_ip: Option<String>,
}

/// An Elastic IP carrying the environment's tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElasticIp {
    /// `null` in public mode.
    pub public_ip: Option<String>,
    /// `null` in public mode.
    pub allocation_id: Option<String>,
    pub associated: bool,
    /// `null` in public mode.
    pub instance_id: Option<String>,
}

/// The A record of a listed DNS name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsName {
    pub name: String,
    /// `null` in public mode.
    pub addresses: Option<Vec<String>>,
    pub alias: Option<String>,
}

/// One drift check of an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub kind: String,
    pub drifted: bool,
    pub detail: String,
}

/// Why a box's row reads as it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxStatus {
    /// It has sent a boot heartbeat; an old one is a long uptime.
    Reported,
    /// Listed in the inventory, never heard from.
    NeverReported,
    /// More than `RESTART_LOOP_BOOTS` boots in the last hour.
    RestartLoop,
}

/// A box's boot heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoxPulse {
    pub stack: String,
    pub name: String,
    pub state: State,
    pub status: BoxStatus,
    /// When the last boot heartbeat arrived, Unix seconds.
    pub last_heartbeat: Option<f64>,
    pub heartbeats_total: u64,
    pub boots_in_last_hour: u64,
    pub commit: Option<String>,
    pub version: Option<String>,
    pub booted_at: Option<f64>,
}

/// The newest test run of a service on a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReceipt {
    pub stack: String,
    pub service: String,
    /// green: nothing failed; red: something failed; unknown: nothing ran.
    pub state: State,
    pub passed: u64,
    /// Failed assertions plus errors.
    pub failed: u64,
    pub skipped: u64,
    pub duration_seconds: Option<f64>,
    /// When the run started (as reported), else when it was received.
    pub ran_at: f64,
    pub commit: Option<String>,
}

/// The newest mutation-testing result of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MutationResult {
    pub service: String,
    pub caught: u64,
    pub missed: u64,
    pub timeout: u64,
    pub unviable: u64,
    pub received_at: f64,
    pub commit: Option<String>,
}

/// A host's newest doctor snapshot, summarised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostDoctor {
    pub host: String,
    pub stack: String,
    pub state: State,
    pub ok: u64,
    pub warn: u64,
    pub fail: u64,
    pub received_at: f64,
    pub commit: Option<String>,
}

/// How fresh a pulled source's data is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFreshness {
    pub source: String,
    /// green: last run succeeded; red: it failed; unknown: not run yet.
    pub state: State,
    pub last_success: Option<f64>,
    pub duration_seconds: f64,
    pub errors_total: u64,
    pub last_error: Option<String>,
}

impl Fleet {
    /// The board limited to one environment, or `None` if there is no such
    /// stack. Mutation results are kept for the services it runs.
    pub fn only_stack(&self, stack: &str) -> Option<Fleet> {
        let env = self.environments.iter().find(|e| e.stack == stack)?;
        let mut f = self.clone();
        f.environments = vec![env.clone()];
        f.boxes.retain(|b| b.stack == stack);
        f.tests.retain(|t| t.stack == stack);
        f.hosts.retain(|h| h.stack == stack);
        f.mutants
            .retain(|m| env.services.iter().any(|s| s.name == m.service));
        f.state = f.worst();
        Some(f)
    }

    /// The worst state of every part of the board (sources excluded: a down
    /// source is shown, but it says nothing about the fleet itself).
    pub fn worst(&self) -> State {
        self.environments
            .iter()
            .map(|e| e.state)
            .chain(self.boxes.iter().map(|b| b.state))
            .chain(self.tests.iter().map(|t| t.state))
            .chain(self.hosts.iter().map(|h| h.state))
            .max()
            .unwrap_or(State::Unknown)
    }
}

/// The board as the snapshot says, redacted when the config is public.
pub fn view(s: &Snapshot, redactor: &Redactor) -> Fleet {
    let mut f = fleet(s);
    if s.config.public {
        redactor.redact(&mut f);
    }
    f
}

/// The whole board, unredacted.
pub fn fleet(s: &Snapshot) -> Fleet {
    let now = s.read_at;
    let environments: Vec<Environment> = s
        .config
        .environments
        .iter()
        .map(|e| environment(s, e))
        .collect();

    let mut boxes = Vec::new();
    for e in &s.config.environments {
        for b in &e.boxes {
            boxes.push(box_pulse(e.name.as_str(), b.as_str(), s, now));
        }
    }
    // Unknown boxes accepted under the ingest cap: shown too.
    for (name, hb) in &s.pulse.heartbeats {
        if !boxes.iter().any(|b| b.name == **name) {
            boxes.push(box_pulse(&hb.stack, name, s, now));
        }
    }

    let tests = s
        .pulse
        .test_runs
        .values()
        .map(|r| TestReceipt {
            stack: r.stack.clone(),
            service: r.service.clone(),
            state: if r.failed_total() > 0 {
                State::Red
            } else if r.passed > 0 {
                State::Green
            } else {
                State::Unknown
            },
            passed: r.passed,
            failed: r.failed_total(),
            skipped: r.skipped,
            duration_seconds: r.duration_seconds,
            ran_at: r.timestamp(),
            commit: r.commit.clone(),
        })
        .collect();

    let mutants = s
        .pulse
        .mutants
        .values()
        .map(|m| MutationResult {
            service: m.service.clone(),
            caught: m.caught,
            missed: m.missed,
            timeout: m.timeout,
            unviable: m.unviable,
            received_at: m.received_at,
            commit: m.commit.clone(),
        })
        .collect();

    let hosts = s
        .pulse
        .host_health
        .values()
        .map(|h| HostDoctor {
            host: h.host.clone(),
            stack: h.stack.clone(),
            state: if h.fail > 0 {
                State::Red
            } else if h.warn > 0 {
                State::Degraded
            } else {
                State::Green
            },
            ok: h.ok,
            warn: h.warn,
            fail: h.fail,
            received_at: h.received_at,
            commit: h.commit.clone(),
        })
        .collect();

    let sources = s
        .sources
        .iter()
        .map(|st| SourceFreshness {
            source: st.source.to_string(),
            state: if !st.has_run {
                State::Unknown
            } else if st.up {
                State::Green
            } else {
                State::Red
            },
            last_success: st.last_success,
            duration_seconds: st.duration_seconds,
            errors_total: st.errors_total,
            last_error: st.last_error.clone(),
        })
        .collect();

    let mut f = Fleet {
        schema_version: SCHEMA_VERSION,
        read_at: now,
        public: false,
        state: State::Unknown,
        environments,
        boxes,
        tests,
        mutants,
        hosts,
        sources,
    };
    f.state = f.worst();
    f
}

fn environment(s: &Snapshot, e: &crate::config::Environment) -> Environment {
    let stack = e.name.as_str();
    let now = s.read_at;
    let probes = s
        .facts
        .get::<HealthzFacts>()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let handshakes = s.facts.get::<TlsFacts>().map(Vec::as_slice).unwrap_or(&[]);

    let services: Vec<Service> = e
        .services
        .iter()
        .map(|svc| {
            let probe = probes
                .iter()
                .find(|p| p.stack == stack && p.service == svc.name.as_str());
            match probe {
                Some(p) => Service {
                    name: svc.name.0.clone(),
                    state: State::of(p.health),
                    status_code: p.status_code,
                    latency_seconds: Some(p.duration_seconds),
                    commit: p.commit.clone(),
                    reason: p.reason.clone(),
                },
                None => Service {
                    name: svc.name.0.clone(),
                    state: State::Unknown,
                    status_code: None,
                    latency_seconds: None,
                    commit: None,
                    reason: Some(
                        if svc.healthz.is_some() {
                            "no /healthz reading yet"
                        } else {
                            "no /healthz URL configured"
                        }
                        .to_string(),
                    ),
                },
            }
        })
        .collect();

    let tls: Vec<TlsEndpoint> = e
        .services
        .iter()
        .filter_map(|svc| {
            let hp = svc.tls.as_ref()?;
            let host = format!("{}:{}", hp.host, hp.port);
            let probe = handshakes
                .iter()
                .find(|t| t.stack == stack && t.service == svc.name.as_str());
            Some(match probe {
                Some(t) => {
                    let earliest = match (t.leaf_not_after, t.chain_earliest_not_after) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let days_left =
                        earliest.map(|na| ((na as f64 - now) / 86_400.0).floor() as i64);
                    let state = match days_left {
                        _ if !t.up => State::Red,
                        Some(d) if d < 0 => State::Red,
                        Some(d) if d < CERT_WARN_DAYS => State::Degraded,
                        _ if !t.chain_valid => State::Degraded,
                        _ => State::Green,
                    };
                    TlsEndpoint {
                        service: svc.name.0.clone(),
                        host: Some(host),
                        state,
                        up: Some(t.up),
                        leaf_not_after: t.leaf_not_after,
                        chain_earliest_not_after: t.chain_earliest_not_after,
                        days_left,
                        chain_valid: Some(t.chain_valid),
                        error: t.error.clone(),
                    }
                }
                None => TlsEndpoint {
                    service: svc.name.0.clone(),
                    host: Some(host),
                    state: State::Unknown,
                    up: None,
                    leaf_not_after: None,
                    chain_earliest_not_after: None,
                    days_left: None,
                    chain_valid: None,
                    error: None,
                },
            })
        })
        .collect();

    let (instances, elastic_ips) = match s.facts.get::<AwsFacts>() {
        Some(aws) => (
            aws.instances
                .iter()
                .filter(|i| i.stack == stack)
                .map(|i| Instance {
                    instance_id: Some(i.instance_id.clone()),
                    state: i.state.map(|st| st.as_str().to_string()),
                    instance_type: i.instance_type.clone(),
                    availability_zone: i.availability_zone.clone(),
                    launch_time: i.launch_time,
                    uptime_seconds: i.launch_time.map(|t| (now - t).max(0.0)),
                    public_ip: i.public_ip.clone(),
                })
                .collect(),
            aws.eips_of(stack)
                .map(|a| ElasticIp {
                    public_ip: Some(a.public_ip.clone()),
                    allocation_id: Some(a.allocation_id.clone()),
                    associated: a.associated,
                    instance_id: a.instance_id.clone(),
                })
                .collect(),
        ),
        None => (Vec::new(), Vec::new()),
    };

    let dns = s
        .facts
        .get::<DnsFacts>()
        .map(|d| {
            d.of(stack)
                .map(|r| DnsName {
                    name: r.name.clone(),
                    addresses: Some(r.addresses.clone()),
                    alias: r.alias.clone(),
                })
                .collect()
        })
        .unwrap_or_default();

    let slot = s
        .facts
        .get::<GithubFacts>()
        .and_then(|g| g.slot(stack))
        .map(|o| Slot {
            holder: o.holder.as_ref().map(|r| SlotRun {
                workflow: r.workflow.clone(),
                title: r.title.clone(),
                branch: r.branch.clone(),
                head_sha: r.head_sha.clone(),
                status: r.status.clone(),
                started_at: r.started_at,
                url: Some(r.url.clone()),
            }),
            queued: o.queued,
        });

    let chain = s.facts.get::<ChainFacts>().and_then(|c| {
        let balance = c.balances.iter().find(|b| b.stack == stack);
        let registration = c.registrations.iter().find(|r| r.stack == stack);
        if balance.is_none() && registration.is_none() {
            return None;
        }
        Some(Chain {
            block_number: c.block_number,
            symbol: c.symbol.clone(),
            deployer: balance.map(|b| b.address.clone()),
            balance: balance.map(|b| b.balance),
            registered: registration.map(|r| r.registered),
        })
    });

    let drift = s
        .drift
        .iter()
        .filter(|d| d.stack == stack)
        .map(|d| Drift {
            kind: d.kind.to_string(),
            drifted: d.drifted,
            detail: d.detail.clone(),
        })
        .collect();

    let state = services
        .iter()
        .map(|s| s.state)
        .chain(tls.iter().map(|t| t.state))
        // A missing registration breaks the environment.
        .chain(
            chain
                .as_ref()
                .filter(|c| c.registered == Some(false))
                .map(|_| State::Red),
        )
        .max()
        .unwrap_or(State::Unknown);
    Environment {
        stack: stack.to_string(),
        state,
        services,
        tls,
        instances,
        elastic_ips,
        dns,
        slot,
        chain,
        drift,
    }
}

fn box_pulse(stack: &str, name: &str, s: &Snapshot, now: f64) -> BoxPulse {
    match s.pulse.heartbeat(name) {
        Some(hb) => {
            let boots = hb.boots_in_last_hour(now);
            let looping = boots > RESTART_LOOP_BOOTS;
            BoxPulse {
                stack: stack.to_string(),
                name: name.to_string(),
                state: if looping { State::Red } else { State::Green },
                status: if looping {
                    BoxStatus::RestartLoop
                } else {
                    BoxStatus::Reported
                },
                last_heartbeat: Some(hb.timestamp),
                heartbeats_total: hb.count,
                boots_in_last_hour: boots as u64,
                commit: hb.commit.clone(),
                version: hb.version.clone(),
                booted_at: hb.booted_at,
            }
        }
        None => BoxPulse {
            stack: stack.to_string(),
            name: name.to_string(),
            state: State::Degraded,
            status: BoxStatus::NeverReported,
            last_heartbeat: None,
            heartbeats_total: 0,
            boots_in_last_hour: 0,
            commit: None,
            version: None,
            booted_at: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_state_orders_unknown_between_green_and_degraded() {
        assert!(State::Green < State::Unknown);
        assert!(State::Unknown < State::Degraded);
        assert!(State::Degraded < State::Red);
    }
}
