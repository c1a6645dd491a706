//! The pulse: the pushed half of the snapshot — what the boxes, services and
//! hosts last reported, as committed to the store, plus the receiver's own
//! request counts.
//!
//! Plain data. The store's writer owns the master copy and publishes clones
//! into the hub; entries are behind `Arc` so a clone of a pulse with
//! thousands of boxes costs reference counts, not copies of every string.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// How far back `boots_in_last_hour` looks.
pub use crate::thresholds::RESTART_WINDOW_SECONDS;
/// Most boot times kept per box: well past the "more than 3 an hour" of a
/// restart loop, and small enough that a looping box's row stays small.
pub const RECENT_BOOTS_CAP: usize = 16;

/// Stack label of a name pushed under `ingest.unknown_names_cap` that no
/// environment lists.
pub const NO_STACK: &str = "";

/// One box's boot heartbeats.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    /// The environment listing the box (empty for an accepted unknown box).
    pub stack: String,
    #[serde(rename = "box")]
    pub box_name: String,
    /// When the last heartbeat was received, Unix seconds.
    pub timestamp: f64,
    /// Heartbeats received from the box, ever.
    pub count: u64,
    /// Receive times of the heartbeats of the last hour (as of the last
    /// one), oldest first, at most `RECENT_BOOTS_CAP`.
    pub recent: Vec<f64>,
    /// Commit the box reported (body, else the `X-Fleet-Commit` header).
    pub commit: Option<String>,
    /// Version the box reported.
    pub version: Option<String>,
    /// Boot time the box reported, Unix seconds.
    pub booted_at: Option<f64>,
}

impl Heartbeat {
    /// Heartbeats received in the hour before `now`: more than a few is a
    /// restart loop.
    pub fn boots_in_last_hour(&self, now: f64) -> usize {
        self.recent
            .iter()
            .filter(|t| now - **t <= RESTART_WINDOW_SECONDS)
            .count()
    }
}

/// Where a test run's counts came from.
pub use crate::api::TestRunFormat;

/// The newest integration-test run of a service on a stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestRun {
    /// The environment the run was attributed to (empty: none).
    pub stack: String,
    pub service: String,
    pub passed: u64,
    pub failed: u64,
    /// Tests that errored rather than failed an assertion (JUnit `<error>`);
    /// exposed as failed.
    pub errored: u64,
    pub skipped: u64,
    pub duration_seconds: Option<f64>,
    /// When the run started, as the runner reported it, Unix seconds.
    pub started_at: Option<f64>,
    /// When fleetpulse received it, Unix seconds.
    pub received_at: f64,
    pub commit: Option<String>,
    pub format: TestRunFormat,
}

impl TestRun {
    /// The time that orders runs: the reported start, else the receipt.
    pub fn timestamp(&self) -> f64 {
        self.started_at.unwrap_or(self.received_at)
    }

    /// Failed plus errored: every test that did not pass or skip.
    pub fn failed_total(&self) -> u64 {
        self.failed + self.errored
    }

    /// Whether this run should replace `current` as the receipt: an older
    /// run arriving late does not.
    pub fn supersedes(&self, current: &TestRun) -> bool {
        self.timestamp() >= current.timestamp()
    }
}

/// The newest mutation-testing result of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mutants {
    pub service: String,
    pub caught: u64,
    pub missed: u64,
    pub timeout: u64,
    pub unviable: u64,
    /// When fleetpulse received it, Unix seconds.
    pub received_at: f64,
    pub commit: Option<String>,
}

/// The summary of a host's newest doctor snapshot (the whole document is in
/// the store, served by `GET /api/v1/host-health/{host}`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostHealth {
    pub host: String,
    /// The environment listing the host (empty for an accepted unknown host).
    pub stack: String,
    pub ok: u64,
    pub warn: u64,
    pub fail: u64,
    /// When fleetpulse received it, Unix seconds.
    pub received_at: f64,
    pub commit: Option<String>,
}

/// The receiver's own count of push requests for one name. Kept in memory
/// only: it counts refused requests too, which must not touch the store.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestCounters {
    /// The name pushed for, or `_invalid` / `_unknown` (see `ingest`).
    pub host: String,
    /// Requests by HTTP status code answered.
    pub codes: BTreeMap<u16, u64>,
    /// Requests without an `X-Fleet-Commit` header.
    pub unstamped: u64,
}

/// The pushed half of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pulse {
    /// By box name (box names are fleet-wide).
    #[serde(serialize_with = "values")]
    pub heartbeats: BTreeMap<Arc<str>, Arc<Heartbeat>>,
    /// By (stack, service).
    #[serde(serialize_with = "values")]
    pub test_runs: BTreeMap<(String, String), Arc<TestRun>>,
    /// By service.
    #[serde(serialize_with = "values")]
    pub mutants: BTreeMap<String, Arc<Mutants>>,
    /// By host.
    #[serde(serialize_with = "values")]
    pub host_health: BTreeMap<String, Arc<HostHealth>>,
    /// By counter host label.
    #[serde(serialize_with = "values")]
    pub ingest: BTreeMap<Arc<str>, Arc<IngestCounters>>,
}

impl Pulse {
    /// The heartbeat of one box.
    pub fn heartbeat(&self, box_name: &str) -> Option<&Heartbeat> {
        self.heartbeats.get(box_name).map(|h| &**h)
    }

    /// How many entries it holds, of every kind: what a copy of it costs.
    pub fn entries(&self) -> usize {
        self.heartbeats.len()
            + self.test_runs.len()
            + self.mutants.len()
            + self.host_health.len()
            + self.ingest.len()
    }
}

/// Serializes a map as the list of its values (each value names its key).
fn values<K, V: Serialize, S: Serializer>(
    map: &BTreeMap<K, Arc<V>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(map.values().map(|v| &**v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_run_formats_are_named_as_they_serialize() {
        for f in [TestRunFormat::Json, TestRunFormat::Junit] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
        assert_eq!(TestRunFormat::Junit.as_str(), "junit");
        assert_eq!(TestRunFormat::Json.as_str(), "json");
    }

    fn run(started_at: Option<f64>, received_at: f64) -> TestRun {
        TestRun {
            started_at,
            received_at,
            ..crate::testing::test_run("prod", "api")
        }
    }

    #[test]
    fn an_older_run_arriving_late_does_not_supersede_a_newer_one() {
        let newer = run(Some(2000.0), 2100.0);
        let older_late = run(Some(1000.0), 3000.0);
        assert!(!older_late.supersedes(&newer));
        assert!(newer.supersedes(&older_late));
        // Without a reported start, the receipt orders runs.
        assert!(run(None, 2500.0).supersedes(&newer));
        assert!(!run(None, 1500.0).supersedes(&newer));
    }

    #[test]
    fn entries_of_every_kind_are_counted() {
        let mut p = Pulse::default();
        assert_eq!(p.entries(), 0);
        for s in ["a", "b"] {
            p.test_runs
                .insert(("prod".into(), s.into()), Arc::new(run(None, 1.0)));
        }
        for s in ["a", "b", "c"] {
            p.mutants
                .insert(s.into(), Arc::new(crate::testing::mutants(s)));
        }
        for h in ["a", "b", "c", "d"] {
            let health = crate::testing::host_health("prod", h);
            p.host_health.insert(h.into(), Arc::new(health));
        }
        for c in ["a", "b", "c", "d", "e"] {
            p.ingest.insert(c.into(), Arc::default());
        }
        let hb = crate::testing::heartbeat("prod", "a");
        p.heartbeats.insert("a".into(), Arc::new(hb));
        assert_eq!(p.entries(), 15);
    }

    #[test]
    fn a_box_heartbeat_is_found_by_name() {
        let mut p = Pulse::default();
        let hb = Heartbeat {
            timestamp: 10.0,
            count: 2,
            recent: vec![10.0],
            ..crate::testing::heartbeat("prod", "prod-box")
        };
        p.heartbeats
            .insert(Arc::from("prod-box"), Arc::new(hb.clone()));
        assert_eq!(p.heartbeat("prod-box"), Some(&hb));
        assert_eq!(p.heartbeat("other-box"), None);
    }

    #[test]
    fn boots_in_last_hour_counts_only_the_window() {
        let hb = Heartbeat {
            timestamp: 10_000.0,
            count: 9,
            recent: vec![5_000.0, 6_500.0, 9_000.0, 10_000.0],
            ..crate::testing::heartbeat("prod", "b")
        };
        assert_eq!(hb.boots_in_last_hour(10_000.0), 3);
        assert_eq!(hb.boots_in_last_hour(20_000.0), 0);
    }

    #[test]
    fn pulse_serializes_maps_as_lists_of_entries() {
        let mut p = Pulse::default();
        p.mutants.insert(
            "broker".into(),
            Arc::new(Mutants {
                service: "broker".into(),
                caught: 3,
                missed: 1,
                timeout: 0,
                unviable: 0,
                received_at: 1.0,
                commit: None,
            }),
        );
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["mutants"][0]["service"], "broker");
        assert_eq!(v["heartbeats"], serde_json::json!([]));
    }
}
