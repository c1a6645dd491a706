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

/// Every subject of `s` and its value.
pub fn observe(s: &Snapshot) -> BTreeMap<Key, Observed> {
    observe_since(s, None)
}

/// The subjects of `s` that may differ from `prev`, the snapshot observed
/// before (all of them without one). A source's facts and the pulse are
/// replaced, never changed in place, so facts at the same address are
/// unchanged and skipped; of a service probed before, only the state or the
/// commit that differs is observed, and a drift flag is observed only when
/// it differs from the one before it. Sources are always observed. A subject left out is no event (see `diff`), so skipping what
/// cannot have changed is safe as long as `prev` was recorded.
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
