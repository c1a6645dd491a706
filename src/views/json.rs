//! The fleet as JSON: `GET /api/v1/fleet`, schema documented in
//! docs/fleet-json.md. `fleet` turns a snapshot into the model, `redact`
//! strips what must not face the internet; the page renders this same model,
//! so public mode hides the same things everywhere.

use serde::{Deserialize, Serialize};

use crate::snapshot::Snapshot;
use crate::sources::{aws, chain, dns, github, healthz, tls};

/// The version of the schema below. Bumped on any change that could break a
/// reader (a removed or renamed field, a changed meaning); new fields do not.
pub const SCHEMA_VERSION: u32 = 1;

pub use super::redact::Redactor;
pub use crate::board::{State, HIDDEN};
pub use crate::sources::aws::view::{ElasticIp, Instance};
pub use crate::sources::chain::view::Chain;
pub use crate::sources::dns::view::DnsName;
pub use crate::sources::github::view::{Slot, SlotRun};
pub use crate::sources::healthz::view::Service;
pub use crate::sources::tls::view::TlsEndpoint;
pub use crate::thresholds::{CERT_WARN_DAYS, RESTART_LOOP_BOOTS};

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
    let services = healthz::view::services(s.facts.get(), e);
    let tls = tls::view::endpoints(s.facts.get(), e, now);
    let instances = aws::view::instances(s.facts.get(), stack, now);
    let elastic_ips = aws::view::elastic_ips(s.facts.get(), stack);
    let dns = dns::view::names(s.facts.get(), stack);
    let slot = github::view::slot(s.facts.get(), stack);
    let chain = chain::view::chain(s.facts.get(), stack);
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
        .chain(chain.as_ref().and_then(Chain::state))
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
