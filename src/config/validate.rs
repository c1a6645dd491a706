//! Checks that span fields: duplicate names, settings that need a companion,
//! timeouts within intervals. Each finding is recorded at the node it is
//! about (`Document::problem`), and every one is reported, not the first.

use std::collections::BTreeMap;

use super::yaml::{Document, Segment};
use super::{Config, Name};
use crate::values::is_hex;

fn key(k: &str) -> Segment {
    Segment::Key(k.to_string())
}

/// `environments[i]` followed by `rest`.
fn env_path(i: usize, rest: &[Segment]) -> Vec<Segment> {
    let mut p = vec![key("environments"), Segment::Index(i)];
    p.extend_from_slice(rest);
    p
}

/// Records every cross-field problem of `config` in `doc`.
pub(super) fn validate(config: &Config, doc: &mut Document) {
    if config.environments.is_empty() && !doc.cut_under(&[key("environments")]) {
        doc.problem(
            &[key("environments")],
            "at least one environment is required",
        );
    }
    environments(config, doc);
    // Discovery reads the cloud with the aws source's settings: without
    // them it would find nothing, silently.
    if !config.sources.discovery.is_empty() && config.sources.aws.is_none() {
        doc.problem(
            &[key("sources"), key("discovery")],
            "needs sources.aws: discovery reads EC2 with its region, endpoint, credentials and interval",
        );
    }
    // Each source's own checks (its schedule, its settings), in registry order.
    for (section, field, message) in config.sources.problems(&config.environments) {
        let sep = if field.starts_with('[') { "" } else { "." };
        let path = super::yaml::parse_path(&format!("sources.{section}{sep}{field}"));
        doc.problem(&path, message);
    }
}

fn environments(config: &Config, doc: &mut Document) {
    let mut stacks: BTreeMap<&Name, usize> = BTreeMap::new();
    let mut boxes: BTreeMap<&Name, usize> = BTreeMap::new();
    let mut hosts: BTreeMap<&Name, usize> = BTreeMap::new();
    for (i, env) in config.environments.iter().enumerate() {
        if let Some(first) = stacks.insert(&env.name, i) {
            stacks.insert(&env.name, first);
            doc.problem(
                &env_path(i, &[key("name")]),
                format!(
                    "duplicate environment name {:?} (first at environments[{first}])",
                    env.name.0
                ),
            );
        }
        let mut services: BTreeMap<&Name, usize> = BTreeMap::new();
        for (j, svc) in env.services.iter().enumerate() {
            if let Some(first) = services.insert(&svc.name, j) {
                services.insert(&svc.name, first);
                doc.problem(
                    &env_path(i, &[key("services"), Segment::Index(j), key("name")]),
                    format!(
                        "duplicate service {:?} in environment {:?} (first at services[{first}])",
                        svc.name.0, env.name.0
                    ),
                );
            }
        }
        if let Some(acct) = &env.registry_account {
            if !is_hex(acct, 32) {
                doc.problem(
                    &env_path(i, &[key("registry_account")]),
                    format!("not a 32-byte hex id (0x + 64 hex digits): {acct:?}"),
                );
            }
        }
        if let Some(addr) = &env.deployer {
            if !is_hex(addr, 20) {
                doc.problem(
                    &env_path(i, &[key("deployer")]),
                    format!("not an address (0x + 40 hex digits): {addr:?}"),
                );
            }
        }
        for (list, seen, what) in [("boxes", &mut boxes, "box"), ("hosts", &mut hosts, "host")] {
            let names = if list == "boxes" {
                &env.boxes
            } else {
                &env.hosts
            };
            for (j, n) in names.iter().enumerate() {
                if seen.insert(n, i).is_some() {
                    doc.problem(
                        &env_path(i, &[key(list), Segment::Index(j)]),
                        format!(
                            "{what} {:?} is listed twice; {what} names are fleet-wide",
                            n.0
                        ),
                    );
                }
            }
        }
    }
}
