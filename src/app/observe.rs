//! What the fleet looks like now, as one value per subject of the history:
//! the historian compares two of these to find what changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::history::{fmt_time, Key, Kind, Observed};
use crate::snapshot::Snapshot;
use crate::sources::github::GithubFacts;
use crate::sources::healthz::HealthzFacts;
use crate::sources::tls::TlsFacts;

fn put(
    out: &mut BTreeMap<Key, Observed>,
    kind: Kind,
    stack: &str,
    subject: &str,
    value: Option<String>,
    detail: Option<String>,
) {
    out.insert(
        (kind, stack.to_string(), subject.to_string()),
        Observed {
            value,
            detail,
            boots: Vec::new(),
        },
    );
}

/// Whether two readings are the same facts (not equal ones: the same).
fn same<T>(a: Option<&T>, b: Option<&T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if std::ptr::eq(a, b))
}

/// The subjects of `s` that may differ from `prev`, the snapshot observed
/// before (all of them without one). A source's facts and the pulse are
/// replaced, never changed in place, so facts at the same address are
/// unchanged and skipped; of a service probed before, only the state or the
/// commit that differs is observed, and a drift flag is observed only when
/// it differs from the one before it. Sources are always observed. A
/// subject left out is no event (see `diff`), so skipping what cannot have
/// changed is safe as long as `prev` was recorded.
pub fn observe_since(s: &Snapshot, prev: Option<&Snapshot>) -> BTreeMap<Key, Observed> {
    let mut out = BTreeMap::new();

    let probes = s.facts.get::<HealthzFacts>();
    let old = prev.and_then(|p| p.facts.get::<HealthzFacts>());
    if let Some(probes) = probes.filter(|_| !same(probes, old)) {
        for (i, p) in probes.iter().enumerate() {
            // The same service probed before: only what differs is observed.
            let was = old
                .and_then(|o| o.get(i))
                .filter(|q| q.stack == p.stack && q.service == p.service);
            if was.is_none_or(|q| q.health != p.health || q.reason != p.reason) {
                put(
                    &mut out,
                    Kind::Health,
                    &p.stack,
                    &p.service,
                    Some(p.health.as_str().into()),
                    p.reason.clone(),
                );
            }
            if let Some(c) = p
                .commit
                .as_ref()
                .filter(|_| was.is_none_or(|q| q.commit != p.commit))
            {
                put(
                    &mut out,
                    Kind::Deploy,
                    &p.stack,
                    &p.service,
                    Some(c.clone()),
                    None,
                );
            }
        }
    }

    let tls = s.facts.get::<TlsFacts>();
    let old = prev.and_then(|p| p.facts.get::<TlsFacts>());
    if let Some(probes) = tls.filter(|_| !same(tls, old)) {
        for (i, p) in probes.iter().enumerate() {
            let Some(t) = p.leaf_not_after else { continue };
            let unchanged = old.and_then(|o| o.get(i)).is_some_and(|q| {
                q.host == p.host && q.stack == p.stack && q.leaf_not_after == p.leaf_not_after
            });
            if unchanged {
                continue;
            }
            put(
                &mut out,
                Kind::CertRotation,
                &p.stack,
                &p.host,
                Some(fmt_time(t as f64)),
                Some(format!(
                    "leaf certificate of {} expires {}",
                    p.service,
                    fmt_time(t as f64)
                )),
            );
        }
    }

    let github = s.facts.get::<GithubFacts>();
    let old = prev.and_then(|p| p.facts.get::<GithubFacts>());
    if let Some(g) = github.filter(|_| !same(github, old)) {
        for slot in &g.slots {
            let (value, detail) = match &slot.holder {
                Some(run) => (
                    run.id.to_string(),
                    Some(format!("{}: {} ({})", run.workflow, run.title, run.branch)),
                ),
                None => ("free".to_string(), None),
            };
            put(
                &mut out,
                Kind::Slot,
                &slot.stack,
                "slot",
                Some(value),
                detail,
            );
        }
    }

    for (i, d) in s.drift.iter().enumerate() {
        if prev.and_then(|p| p.drift.get(i)).is_some_and(|q| q == d) {
            continue;
        }
        let value = if d.drifted { "drifted" } else { "agrees" };
        let detail = (d.drifted && !d.detail.is_empty()).then(|| d.detail.clone());
        put(
            &mut out,
            Kind::Drift,
            &d.stack,
            d.kind,
            Some(value.into()),
            detail,
        );
    }
    for src in s.sources.iter().filter(|x| x.has_run) {
        let value = if src.up { "up" } else { "down" };
        let detail = if src.up { None } else { src.last_error.clone() };
        put(
            &mut out,
            Kind::Source,
            "",
            src.source,
            Some(value.into()),
            detail,
        );
    }

    if prev.is_some_and(|p| Arc::ptr_eq(&p.pulse, &s.pulse)) {
        return out;
    }
    for h in s.pulse.host_health.values() {
        let status = if h.fail > 0 {
            "fail"
        } else if h.warn > 0 {
            "warn"
        } else {
            "ok"
        };
        let detail = Some(format!("{} ok, {} warn, {} fail", h.ok, h.warn, h.fail));
        put(
            &mut out,
            Kind::Doctor,
            &h.stack,
            &h.host,
            Some(status.into()),
            detail,
        );
    }
    for hb in s.pulse.heartbeats.values() {
        if let Some(c) = &hb.commit {
            put(
                &mut out,
                Kind::BoxDeploy,
                &hb.stack,
                &hb.box_name,
                Some(c.clone()),
                hb.version.clone(),
            );
        }
        out.insert(
            (Kind::Boot, hb.stack.clone(), hb.box_name.clone()),
            Observed {
                value: None,
                detail: hb.version.as_ref().map(|v| format!("version {v}")),
                boots: if hb.recent.is_empty() {
                    vec![hb.timestamp]
                } else {
                    hb.recent.clone()
                },
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::DriftFlag;
    use crate::health::Health;
    use crate::pulse::{Heartbeat, HostHealth, Pulse};
    use crate::snapshot::SourceStatus;
    use crate::sources::github::{CiRun, GithubFacts, HeadCommit, SlotOccupancy};
    use crate::sources::healthz::ServiceProbe;
    use crate::sources::tls::TlsProbe;
    use crate::sources::Facts;

    fn probe(health: Health, commit: &str, reason: Option<&str>) -> ServiceProbe {
        ServiceProbe {
            stack: "prod".into(),
            service: "web".into(),
            health,
            status_code: Some(200),
            duration_seconds: 0.1,
            commit: Some(commit.into()),
            reason: reason.map(Into::into),
        }
    }

    fn tls(not_after: i64) -> TlsProbe {
        TlsProbe {
            stack: "prod".into(),
            service: "web".into(),
            host: "web.example:443".into(),
            up: true,
            leaf_not_after: Some(not_after),
            chain_earliest_not_after: Some(not_after),
            chain_valid: true,
            error: None,
        }
    }

    fn pulse() -> Arc<Pulse> {
        let mut p = Pulse::default();
        p.heartbeats.insert(
            "box-1".into(),
            Arc::new(Heartbeat {
                stack: "prod".into(),
                box_name: "box-1".into(),
                timestamp: 100.0,
                count: 1,
                recent: Vec::new(),
                commit: Some("abc".into()),
                version: Some("1.2".into()),
                booted_at: None,
            }),
        );
        for (host, warn, fail) in [("host-1", 1, 0), ("host-2", 1, 2), ("host-3", 0, 0)] {
            p.host_health.insert(
                host.into(),
                Arc::new(HostHealth {
                    host: host.into(),
                    stack: "prod".into(),
                    ok: 3,
                    warn,
                    fail,
                    received_at: 100.0,
                    commit: None,
                }),
            );
        }
        Arc::new(p)
    }

    fn snapshot(probes: Vec<ServiceProbe>, certs: Vec<TlsProbe>, drifted: bool) -> Snapshot {
        Snapshot {
            read_at: 100.0,
            config: Arc::new(
                crate::config::Config::parse("environments:\n  - name: prod\n", "t.yaml").unwrap(),
            ),
            sources: vec![SourceStatus {
                source: "healthz",
                up: false,
                last_success: None,
                duration_seconds: 0.0,
                errors_total: 1,
                last_error: Some("timed out".into()),
                has_run: true,
                interval: std::time::Duration::from_secs(1),
            }],
            facts: Facts::default()
                .with("healthz", probes)
                .with("tls", certs)
                .with("github", github(Some(42))),
            pulse: pulse(),
            drift: vec![DriftFlag {
                stack: "prod".into(),
                kind: "dns_mismatch",
                drifted,
                // A cleared flag's detail is not news.
                detail: if drifted {
                    "a.example".into()
                } else {
                    "was a.example".into()
                },
            }],
            handler_panics: 0,
            reload: (true, 0.0),
            discovery_refused: 0,
            history: Arc::default(),
        }
    }

    fn github(holder: Option<u64>) -> GithubFacts {
        GithubFacts {
            head: HeadCommit {
                branch: "main".into(),
                sha: "abc".into(),
                committed_at: None,
            },
            slots: vec![SlotOccupancy {
                stack: "prod".into(),
                holder: holder.map(|id| CiRun {
                    id,
                    workflow: "e2e".into(),
                    title: "Fix it".into(),
                    branch: "fix".into(),
                    head_sha: "abc".into(),
                    status: "in_progress".into(),
                    started_at: None,
                    url: "https://ci.example/42".into(),
                }),
                queued: 0,
            }],
            rate_limit: None,
        }
    }

    fn key(kind: Kind, stack: &str, subject: &str) -> Key {
        (kind, stack.into(), subject.into())
    }

    fn value(o: &BTreeMap<Key, Observed>, k: &Key) -> Option<String> {
        o.get(k).and_then(|v| v.value.clone())
    }

    #[test]
    fn the_first_observation_holds_every_subject_and_its_value() {
        let s = snapshot(
            vec![probe(Health::Green, "abc", None)],
            vec![tls(86_400)],
            true,
        );
        let o = observe_since(&s, None);
        assert_eq!(
            value(&o, &key(Kind::Health, "prod", "web")).as_deref(),
            Some("green")
        );
        assert_eq!(
            value(&o, &key(Kind::Deploy, "prod", "web")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            value(&o, &key(Kind::CertRotation, "prod", "web.example:443")).as_deref(),
            Some("1970-01-02T00:00:00Z")
        );
        let drift = &o[&key(Kind::Drift, "prod", "dns_mismatch")];
        assert_eq!(
            (drift.value.as_deref(), drift.detail.as_deref()),
            (Some("drifted"), Some("a.example"))
        );
        let source = &o[&key(Kind::Source, "", "healthz")];
        assert_eq!(
            (source.value.as_deref(), source.detail.as_deref()),
            (Some("down"), Some("timed out"))
        );
        let doctor = &o[&key(Kind::Doctor, "prod", "host-1")];
        assert_eq!(
            (doctor.value.as_deref(), doctor.detail.as_deref()),
            (Some("warn"), Some("3 ok, 1 warn, 0 fail"))
        );
        assert_eq!(
            value(&o, &key(Kind::Doctor, "prod", "host-2")).as_deref(),
            Some("fail")
        );
        assert_eq!(
            value(&o, &key(Kind::Doctor, "prod", "host-3")).as_deref(),
            Some("ok")
        );
        let slot = &o[&key(Kind::Slot, "prod", "slot")];
        assert_eq!(
            (slot.value.as_deref(), slot.detail.as_deref()),
            (Some("42"), Some("e2e: Fix it (fix)"))
        );
        assert_eq!(
            value(&o, &key(Kind::BoxDeploy, "prod", "box-1")).as_deref(),
            Some("abc")
        );
        let boot = &o[&key(Kind::Boot, "prod", "box-1")];
        assert_eq!(boot.boots, [100.0]);
        assert_eq!(boot.detail.as_deref(), Some("version 1.2"));
        assert_eq!(o.len(), 11, "{o:?}");
    }

    #[test]
    fn the_same_facts_again_are_skipped_but_the_sources() {
        let s = snapshot(
            vec![probe(Health::Green, "abc", None)],
            vec![tls(86_400)],
            true,
        );
        let again = s.clone();
        let o = observe_since(&again, Some(&s));
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            [&key(Kind::Source, "", "healthz")],
            "only the sources, always observed"
        );
    }

    #[test]
    fn of_new_facts_only_what_differs_is_observed() {
        let before = snapshot(
            vec![probe(Health::Green, "abc", None)],
            vec![tls(86_400)],
            true,
        );
        // A new reading of each source, with equal values: nothing of them.
        let mut equal = snapshot(
            vec![probe(Health::Green, "abc", None)],
            vec![tls(86_400)],
            true,
        );
        equal.pulse = before.pulse.clone();
        // (A new reading of the CI has its slots observed whole: `diff`
        // finds them unchanged.)
        let o = observe_since(&equal, Some(&before));
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            [
                &key(Kind::Slot, "prod", "slot"),
                &key(Kind::Source, "", "healthz")
            ]
        );

        // The health changes, its reason (none) does not; the commit stays.
        let mut health = snapshot(
            vec![probe(Health::Degraded, "abc", None)],
            vec![tls(86_400)],
            true,
        );
        health.pulse = before.pulse.clone();
        let o = observe_since(&health, Some(&before));
        assert_eq!(
            value(&o, &key(Kind::Health, "prod", "web")).as_deref(),
            Some("degraded")
        );
        assert!(!o.contains_key(&key(Kind::Deploy, "prod", "web")));
        // The reason alone changes.
        let reasoned = snapshot(
            vec![probe(Health::Green, "abc", Some("slow"))],
            vec![],
            true,
        );
        let o = observe_since(&reasoned, Some(&before));
        assert_eq!(
            o[&key(Kind::Health, "prod", "web")].detail.as_deref(),
            Some("slow")
        );
        // The commit alone changes.
        let deployed = snapshot(vec![probe(Health::Green, "def", None)], vec![], true);
        let o = observe_since(&deployed, Some(&before));
        assert!(!o.contains_key(&key(Kind::Health, "prod", "web")));
        assert_eq!(
            value(&o, &key(Kind::Deploy, "prod", "web")).as_deref(),
            Some("def")
        );
        // Another service in the same place is observed whole.
        let mut other = probe(Health::Green, "abc", None);
        other.service = "api".into();
        let moved = snapshot(vec![other.clone()], vec![], true);
        let o = observe_since(&moved, Some(&before));
        assert!(o.contains_key(&key(Kind::Health, "prod", "api")));
        assert!(o.contains_key(&key(Kind::Deploy, "prod", "api")));
        other.service = "web".into();
        other.stack = "test".into();
        let o = observe_since(&snapshot(vec![other], vec![], true), Some(&before));
        assert!(o.contains_key(&key(Kind::Health, "test", "web")));

        // A rotated certificate; a drift flag cleared.
        let rotated = snapshot(vec![], vec![tls(2 * 86_400)], false);
        let o = observe_since(&rotated, Some(&before));
        assert_eq!(
            value(&o, &key(Kind::CertRotation, "prod", "web.example:443")).as_deref(),
            Some("1970-01-03T00:00:00Z")
        );
        let drift = &o[&key(Kind::Drift, "prod", "dns_mismatch")];
        assert_eq!(
            (drift.value.as_deref(), drift.detail.as_deref()),
            (Some("agrees"), None)
        );
        // The slot released, in a new reading of the CI.
        let mut released = snapshot(vec![], vec![], true);
        released
            .facts
            .set("github", crate::sources::output(github(None)));
        let o = observe_since(&released, Some(&before));
        assert_eq!(
            value(&o, &key(Kind::Slot, "prod", "slot")).as_deref(),
            Some("free")
        );
        assert_eq!(o[&key(Kind::Slot, "prod", "slot")].detail, None);
        // A new pulse is observed whole.
        assert!(o.contains_key(&key(Kind::Doctor, "prod", "host-1")));
        assert!(o.contains_key(&key(Kind::Boot, "prod", "box-1")));
    }
}
