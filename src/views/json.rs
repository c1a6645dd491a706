//! The fleet as JSON: `GET /api/v1/fleet`, schema documented in
//! docs/fleet-json.md. `fleet` turns a snapshot into the model, `redact`
//! strips what must not face the internet; the page renders this same model,
//! so public mode hides the same things everywhere.

use serde::{Deserialize, Serialize};

use crate::pulse::TestRunFormat;
use crate::snapshot::Snapshot;
pub use crate::sources::Parts;

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
    /// The worst state any source's part reports (services, TLS
    /// endpoints, the chain).
    pub state: State,
    /// Where it came from: `null` when the config file lists it, else
    /// what `sources.discovery` found it by (an Elastic IP or instance and
    /// its tag).
    #[serde(default)]
    pub discovered: Option<String>,
    /// Each source's part (`services`, `tls`, `instances`, …), as fields
    /// of this object.
    #[serde(flatten)]
    pub parts: Parts,
    pub drift: Vec<Drift>,
    /// The newest changes (deploys, health, rotations, slot holders, drift,
    /// doctor, boots), newest first; empty without history.
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// One change of an environment, from the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Unix seconds.
    pub at: f64,
    pub kind: crate::history::Kind,
    pub subject: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: Option<String>,
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
    /// How the run was reported: JSON counts or a JUnit XML report.
    #[serde(default)]
    pub format: TestRunFormat,
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
        f.mutants.retain(|m| {
            env.parts
                .healthz
                .services
                .iter()
                .any(|s| s.name == m.service)
        });
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
            format: r.format,
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
    let parts = Parts::build(&s.facts, e, s.read_at);
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
    let mut parts = parts;
    let h = &*s.history;
    if h.active {
        for svc in &mut parts.healthz.services {
            if svc.state == State::Unknown {
                continue;
            }
            svc.since = h.since(crate::history::Kind::Health, stack, &svc.name);
            if let Some(t) = h.health_of(stack, &svc.name) {
                svc.availability = Some(t.availabilities(s.read_at));
                svc.strip = t
                    .strip(s.read_at, 24, 3600.0)
                    .into_iter()
                    .map(|x| x.map_or(State::Unknown, crate::sources::healthz::view::state_of))
                    .collect();
            }
        }
    }
    // First sightings are not changes, but a boot is one.
    let changes = h
        .recent(stack)
        .filter(|ev| ev.from.is_some() || ev.kind == crate::history::Kind::Boot)
        .map(|ev| Change {
            at: ev.at,
            kind: ev.kind,
            subject: ev.subject.clone(),
            from: ev.from.clone(),
            to: ev.to.clone(),
            detail: ev.detail.clone(),
        })
        .collect();
    Environment {
        stack: stack.to_string(),
        state: parts.state().unwrap_or(State::Unknown),
        discovered: e.discovered.clone(),
        parts,
        drift,
        changes,
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
    use crate::pulse::Pulse;
    use std::sync::Arc;

    fn snapshot(yaml: &str, facts: crate::sources::Facts) -> Snapshot {
        Snapshot {
            read_at: 1_700_000_000.0,
            config: Arc::new(crate::config::Config::parse(yaml, "t.yaml").unwrap()),
            sources: Vec::new(),
            facts,
            pulse: Arc::new(Pulse::default()),
            drift: Vec::new(),
            handler_panics: 0,
            reload: (true, 0.0),
            discovery_refused: 0,
            history: Default::default(),
        }
    }

    #[test]
    fn each_sources_part_is_a_field_of_the_environment_in_schema_order() {
        let yaml = "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: https://a.example/healthz\n";
        let f = fleet(&snapshot(yaml, Default::default()));
        let text = serde_json::to_string(&f.environments[0]).unwrap();
        let at = |key: &str| {
            text.find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("no {key} in {text}"))
        };
        let keys = [
            "stack",
            "state",
            "services",
            "tls",
            "instances",
            "elastic_ips",
            "dns",
            "slot",
            "chain",
            "drift",
        ];
        let places: Vec<usize> = keys.iter().map(|k| at(k)).collect();
        assert!(places.windows(2).all(|w| w[0] < w[1]), "{text}");
        let json = serde_json::to_value(&f).unwrap();
        let env = &json["environments"][0];
        assert!(env["slot"].is_null() && env["chain"].is_null());
        assert_eq!(env["services"][0]["name"], "broker");
        assert_eq!(env["services"][0]["state"], "unknown");
        // What a reader (the terminal) parses back is what was written.
        let back: Fleet = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn an_environment_is_as_bad_as_its_worst_part() {
        use crate::health::Health;
        let yaml = "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: https://a.example/healthz\n      - name: signer\n        healthz: https://b.example/healthz\n";
        let probe = |service: &str, health| crate::testing::service_probe("prod", service, health);
        let facts = crate::sources::Facts::default().with(
            "healthz",
            vec![
                probe("broker", Health::Green),
                probe("signer", Health::Degraded),
            ],
        );
        let f = fleet(&snapshot(yaml, facts));
        assert_eq!(f.environments[0].state, State::Degraded);
        assert_eq!(f.state, State::Degraded);
    }

    fn status(source: &'static str, has_run: bool, up: bool) -> crate::snapshot::SourceStatus {
        crate::snapshot::SourceStatus {
            source,
            up,
            last_success: None,
            duration_seconds: 0.5,
            errors_total: 0,
            last_error: None,
            has_run,
            interval: std::time::Duration::from_secs(60),
        }
    }

    fn event(
        kind: crate::history::Kind,
        subject: &str,
        from: Option<&str>,
        at: f64,
    ) -> crate::history::Event {
        crate::history::Event {
            id: 0,
            at,
            stack: "prod".into(),
            kind,
            subject: subject.into(),
            from: from.map(Into::into),
            to: Some("green".into()),
            detail: None,
            changes: 0,
        }
    }

    /// Two environments with something of every kind pushed and pulled:
    /// each part gets its state from its own values, and a stack's board
    /// keeps only its own.
    #[test]
    fn every_part_gets_its_state_and_a_stacks_board_only_its_own() {
        use crate::health::Health;
        use crate::history::Kind;
        use crate::testing::{heartbeat, host_health, mutants, service_probe, test_run};
        let yaml = "environments:\n  - name: prod\n    boxes: [calm, looping, silent]\n    services:\n      - name: broker\n        healthz: https://a.example/healthz\n      - name: signer\n        healthz: https://b.example/healthz\n  - name: stage\n    boxes: [s1]\n    services:\n      - name: web\n        healthz: https://c.example/healthz\n";
        let now = 1_700_000_000.0;
        let boots = |n: usize| (0..n).map(|i| now - 60.0 * (i as f64 + 1.0)).collect();
        let mut pulse = Pulse::default();
        for (stack, name, n) in [
            ("prod", "calm", RESTART_LOOP_BOOTS),
            ("prod", "looping", RESTART_LOOP_BOOTS + 1),
            ("prod", "stray", 1),
            ("stage", "s1", 1),
        ] {
            let hb = crate::pulse::Heartbeat {
                recent: boots(n),
                timestamp: now - 10.0,
                ..heartbeat(stack, name)
            };
            pulse.heartbeats.insert(name.into(), Arc::new(hb));
        }
        let run = |stack: &str, service: &str, passed, failed, errored| crate::pulse::TestRun {
            passed,
            failed,
            errored,
            ..test_run(stack, service)
        };
        for r in [
            run("prod", "broker", 3, 1, 0),
            run("prod", "signer", 3, 0, 0),
            run("stage", "web", 0, 0, 0),
            run("prod", "errored", 0, 0, 1),
        ] {
            pulse
                .test_runs
                .insert((r.stack.clone(), r.service.clone()), Arc::new(r));
        }
        for service in ["broker", "web"] {
            pulse
                .mutants
                .insert(service.into(), Arc::new(mutants(service)));
        }
        let host = |stack: &str, name: &str, warn, fail| crate::pulse::HostHealth {
            warn,
            fail,
            ..host_health(stack, name)
        };
        for h in [
            host("prod", "h-fail", 1, 1),
            host("prod", "h-warn", 1, 0),
            host("stage", "h-ok", 0, 0),
        ] {
            pulse.host_health.insert(h.host.clone(), Arc::new(h));
        }
        let facts = crate::sources::Facts::default().with(
            "healthz",
            vec![
                service_probe("prod", "broker", Health::Green),
                service_probe("stage", "web", Health::Red),
            ],
        );
        let mut history = crate::history::HistoryView {
            active: true,
            ..Default::default()
        };
        history.apply(
            vec![
                event(Kind::Health, "broker", None, now - 500.0),
                event(Kind::Health, "signer", None, now - 400.0),
                event(Kind::Deploy, "broker", Some("v1"), now - 300.0),
                event(Kind::Boot, "calm", None, now - 200.0),
            ],
            now,
        );
        let flag = |stack: &str, kind| crate::drift::DriftFlag {
            stack: stack.into(),
            kind,
            drifted: true,
            detail: format!("{stack} {kind}"),
        };
        let mut snap = snapshot(yaml, facts);
        snap.read_at = now;
        snap.pulse = Arc::new(pulse);
        snap.history = Arc::new(history);
        snap.drift = vec![flag("prod", "dns_mismatch"), flag("stage", "stale_binary")];
        snap.sources = vec![
            status("healthz", true, true),
            status("tls", true, false),
            status("aws", false, false),
        ];
        let f = fleet(&snap);

        let boxes: Vec<_> = f
            .boxes
            .iter()
            .map(|b| (b.stack.as_str(), b.name.as_str(), b.state, b.status))
            .collect();
        assert_eq!(
            boxes,
            [
                ("prod", "calm", State::Green, BoxStatus::Reported),
                ("prod", "looping", State::Red, BoxStatus::RestartLoop),
                ("prod", "silent", State::Degraded, BoxStatus::NeverReported),
                ("stage", "s1", State::Green, BoxStatus::Reported),
                ("prod", "stray", State::Green, BoxStatus::Reported),
            ]
        );
        let tests: Vec<_> = f
            .tests
            .iter()
            .map(|t| (t.service.as_str(), t.state, t.failed))
            .collect();
        assert_eq!(
            tests,
            [
                ("broker", State::Red, 1),
                ("errored", State::Red, 1),
                ("signer", State::Green, 0),
                ("web", State::Unknown, 0)
            ]
        );
        let hosts: Vec<_> = f.hosts.iter().map(|h| (h.host.as_str(), h.state)).collect();
        assert_eq!(
            hosts,
            [
                ("h-fail", State::Red),
                ("h-ok", State::Green),
                ("h-warn", State::Degraded)
            ]
        );
        let sources: Vec<_> = f
            .sources
            .iter()
            .map(|s| (s.source.as_str(), s.state))
            .collect();
        assert_eq!(
            sources,
            [
                ("healthz", State::Green),
                ("tls", State::Red),
                ("aws", State::Unknown)
            ]
        );
        let drift = |e: &Environment| e.drift.iter().map(|d| d.detail.clone()).collect::<Vec<_>>();
        assert_eq!(drift(&f.environments[0]), ["prod dns_mismatch"]);
        assert_eq!(drift(&f.environments[1]), ["stage stale_binary"]);
        // History: a service probed has its "since"; one not probed yet has
        // none, whatever the history holds. A first sighting is not a change;
        // a boot is.
        let services = &f.environments[0].parts.healthz.services;
        let since: Vec<_> = services
            .iter()
            .map(|s| (s.name.as_str(), s.since))
            .collect();
        assert_eq!(since, [("broker", Some(now - 500.0)), ("signer", None)]);
        assert!(services[0].availability.is_some() && services[1].availability.is_none());
        let changes: Vec<_> = f.environments[0]
            .changes
            .iter()
            .map(|c| (c.kind, c.subject.as_str()))
            .collect();
        assert_eq!(changes, [(Kind::Boot, "calm"), (Kind::Deploy, "broker")]);
        assert_eq!(f.state, State::Red);

        // Each stack's board: its environments, boxes, test runs, doctor
        // hosts and the mutation results of its services.
        let parts = |f: &Fleet| {
            let join = |v: Vec<&str>| v.join(" ");
            [
                join(f.environments.iter().map(|e| e.stack.as_str()).collect()),
                join(f.boxes.iter().map(|b| b.name.as_str()).collect()),
                join(f.tests.iter().map(|t| t.service.as_str()).collect()),
                join(f.hosts.iter().map(|h| h.host.as_str()).collect()),
                join(f.mutants.iter().map(|m| m.service.as_str()).collect()),
            ]
        };
        assert_eq!(
            parts(&f.only_stack("prod").unwrap()),
            [
                "prod",
                "calm looping silent stray",
                "broker errored signer",
                "h-fail h-warn",
                "broker"
            ]
        );
        let stage = f.only_stack("stage").unwrap();
        assert_eq!(parts(&stage), ["stage", "s1", "web", "h-ok", "web"]);
        assert_eq!(stage.state, State::Red);
        assert!(f.only_stack("nowhere").is_none());
    }
}
