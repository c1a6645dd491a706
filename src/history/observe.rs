//! What the fleet looks like now, as one value per subject: the historian
//! compares two of these to find what changed.

use std::collections::BTreeMap;

use super::{fmt_time, Key, Kind};
use crate::snapshot::Snapshot;
use crate::sources::github::GithubFacts;
use crate::sources::healthz::HealthzFacts;
use crate::sources::tls::TlsFacts;

/// One subject's value now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub value: Option<String>,
    /// Why, in words; stored with the event when the value changes.
    pub detail: Option<String>,
    /// Boot times, for `Kind::Boot`.
    pub boots: Vec<f64>,
}

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

/// Every subject of `s` and its value.
pub fn observe(s: &Snapshot) -> BTreeMap<Key, Observed> {
    let mut out = BTreeMap::new();
    if let Some(probes) = s.facts.get::<HealthzFacts>() {
        for p in probes {
            put(
                &mut out,
                Kind::Health,
                &p.stack,
                &p.service,
                Some(p.health.as_str().into()),
                p.reason.clone(),
            );
            if let Some(c) = &p.commit {
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
    if let Some(probes) = s.facts.get::<TlsFacts>() {
        for p in probes {
            if let Some(t) = p.leaf_not_after {
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
    }
    if let Some(g) = s.facts.get::<GithubFacts>() {
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
    for d in &s.drift {
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
