//! Families of the history: changes per subject and when the current state
//! began. Written for the subjects the facts and the shown pulse hold now,
//! so a retired name's series go with it; a subject that never changed has
//! its counter at 0.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::family;
use crate::catalogue as cat;
use crate::history::Kind;
use crate::snapshot::Snapshot;
use crate::sources::github::GithubFacts;
use crate::sources::healthz::HealthzFacts;
use crate::sources::tls::TlsFacts;

pub(super) fn encode(s: &Snapshot, enc: &mut DescriptorEncoder) -> fmt::Result {
    let h = &*s.history;
    if !h.active {
        return Ok(());
    }
    let changes = |kind: Kind, stack: &str, subject: &str| h.changes(kind, stack, subject) as f64;
    let probes: &[_] = s.facts.get::<HealthzFacts>().map_or(&[], |v| v.as_slice());
    family(
        enc,
        &cat::HEALTH_CHANGES,
        probes.iter().map(|p| {
            (
                [p.stack.as_str(), p.service.as_str()],
                changes(Kind::Health, &p.stack, &p.service),
            )
        }),
    )?;
    family(
        enc,
        &cat::HEALTH_SINCE,
        probes.iter().filter_map(|p| {
            h.since(Kind::Health, &p.stack, &p.service)
                .map(|t| ([p.stack.as_str(), p.service.as_str()], t))
        }),
    )?;
    family(
        enc,
        &cat::SERVICE_COMMIT_CHANGES,
        probes.iter().map(|p| {
            (
                [p.stack.as_str(), p.service.as_str()],
                changes(Kind::Deploy, &p.stack, &p.service),
            )
        }),
    )?;
    family(
        enc,
        &cat::BOX_COMMIT_CHANGES,
        s.pulse.heartbeats.values().map(|b| {
            (
                [b.stack.as_str(), b.box_name.as_str()],
                changes(Kind::BoxDeploy, &b.stack, &b.box_name),
            )
        }),
    )?;
    let slots: &[_] = s
        .facts
        .get::<GithubFacts>()
        .map_or(&[], |g| g.slots.as_slice());
    family(
        enc,
        &cat::CI_SLOT_HOLDER_CHANGES,
        slots
            .iter()
            .map(|x| ([x.stack.as_str()], changes(Kind::Slot, &x.stack, "slot"))),
    )?;
    let tls: &[_] = s.facts.get::<TlsFacts>().map_or(&[], |v| v.as_slice());
    family(
        enc,
        &cat::TLS_CERT_ROTATIONS,
        tls.iter().map(|p| {
            (
                [p.stack.as_str(), p.host.as_str()],
                changes(Kind::CertRotation, &p.stack, &p.host),
            )
        }),
    )?;
    family(
        enc,
        &cat::DRIFT_CHANGES,
        s.drift.iter().map(|d| {
            (
                [d.stack.as_str(), d.kind],
                changes(Kind::Drift, &d.stack, d.kind),
            )
        }),
    )
}
