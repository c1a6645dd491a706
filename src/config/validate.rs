//! Checks that span fields: duplicate names, settings that need a companion,
//! timeouts within intervals. Each finding is recorded at the node it is
//! about (`Document::problem`), and every one is reported, not the first.

use std::collections::BTreeMap;

use super::yaml::{Document, Segment};
use super::{Config, Name};

fn key(k: &str) -> Segment {
    Segment::Key(k.to_string())
}

/// `environments[i]` followed by `rest`.
fn env_path(i: usize, rest: &[Segment]) -> Vec<Segment> {
    let mut p = vec![key("environments"), Segment::Index(i)];
    p.extend_from_slice(rest);
    p
}

pub(super) fn is_hex(s: &str, bytes: usize) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == bytes * 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
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
    schedules(config, doc);
    for (name, c) in [
        ("healthz", config.sources.healthz.concurrency),
        ("tls", config.sources.tls.concurrency),
    ] {
        if c == 0 {
            doc.problem(
                &[key("sources"), key(name), key("concurrency")],
                "concurrency must be at least 1",
            );
        }
    }
    chain(config, doc);
    if let Some(aws) = &config.sources.aws {
        let lists_names = config.environments.iter().any(|e| !e.dns_names.is_empty());
        if lists_names && aws.hosted_zone_id.is_none() {
            doc.problem(
                &[key("sources"), key("aws"), key("hosted_zone_id")],
                "required when an environment lists dns_names (the Route53 zone holding them)",
            );
        }
    }
    if let Some(gh) = &config.sources.github {
        let ok = gh
            .repo
            .split_once('/')
            .is_some_and(|(o, n)| Name::is_valid(o) && Name::is_valid(n));
        if !ok {
            doc.problem(
                &[key("sources"), key("github"), key("repo")],
                format!("not owner/name: {:?}", gh.repo),
            );
        }
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

fn schedules(config: &Config, doc: &mut Document) {
    let s = &config.sources;
    let all = [
        ("healthz", Some(s.healthz.schedule())),
        ("tls", Some(s.tls.schedule())),
        ("oidc", Some(s.oidc.schedule())),
        ("aws", s.aws.as_ref().map(|c| c.schedule())),
        ("github", s.github.as_ref().map(|c| c.schedule())),
        ("chain", s.chain.as_ref().map(|c| c.schedule())),
    ];
    for (name, schedule) in all {
        if let Some(sch) = schedule {
            if sch.timeout.0 > sch.interval.0 {
                doc.problem(
                    &[key("sources"), key(name), key("timeout")],
                    "timeout must not exceed interval",
                );
            }
        }
    }
}

fn chain(config: &Config, doc: &mut Document) {
    let Some(chain) = &config.sources.chain else {
        return;
    };
    let at = |k: &str| vec![key("sources"), key("chain"), key(k)];
    if let Some(a) = &chain.registry_address {
        if !is_hex(a, 20) {
            doc.problem(
                &at("registry_address"),
                format!("not an address (0x + 40 hex digits): {a:?}"),
            );
        }
    }
    let f = &chain.registry_function;
    let takes_one_id = f.strip_suffix("(bytes32)").is_some_and(|n| {
        n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if !takes_one_id {
        doc.problem(
            &at("registry_function"),
            format!(
                "not a view function of one bytes32 argument, like operatorMasterWallet(bytes32): {f:?}"
            ),
        );
    }
    // U256 holds 77 decimal digits.
    if chain.decimals > 77 {
        doc.problem(
            &at("decimals"),
            format!("at most 77 decimals: {}", chain.decimals),
        );
    }
    let wants_registry = config
        .environments
        .iter()
        .any(|e| e.registry_account.is_some());
    if wants_registry && chain.registry_address.is_none() {
        doc.problem(
            &at("registry_address"),
            "required when an environment lists registry_account",
        );
    }
}
