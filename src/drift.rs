//! Drift: a pure function of the snapshot's facts. Unknown is not drift: a
//! kind whose inputs are missing yields no flag at all (the series is absent),
//! never a 0 that would read as "agrees".

use std::collections::BTreeSet;

use serde::Serialize;

use crate::config::{Config, Environment};
use crate::pulse::Pulse;
use crate::sources::aws::AwsFacts;
use crate::sources::dns::DnsFacts;
use crate::sources::github::GithubFacts;
use crate::sources::healthz::HealthzFacts;
use crate::sources::oidc::OidcFacts;
use crate::sources::Facts;

/// Names that must share an A record disagree.
pub const DNS_MISMATCH: &str = "dns_mismatch";
/// An A record is not one of the environment's Elastic IPs.
pub const EIP_MISMATCH: &str = "eip_mismatch";
/// The advertised OIDC issuer is not the configured one.
pub const OIDC_ISSUER_MISMATCH: &str = "oidc_issuer_mismatch";
/// A deployed commit is not main's head, past the grace period.
pub const STALE_BINARY: &str = "stale_binary";

/// One drift flag of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftFlag {
    pub stack: String,
    /// `dns_mismatch`, `eip_mismatch`, `oidc_issuer_mismatch` or `stale_binary`.
    pub kind: &'static str,
    pub drifted: bool,
    /// What disagrees, in words.
    pub detail: String,
}

/// Derives every drift flag that can be known from the facts.
pub fn detect(config: &Config, facts: &Facts, pulse: &Pulse, now: f64) -> Vec<DriftFlag> {
    let mut out = Vec::new();
    for env in &config.environments {
        let stack = env.name.as_str();
        let mut flag = |kind, verdict: Option<(bool, String)>| {
            if let Some((drifted, detail)) = verdict {
                out.push(DriftFlag {
                    stack: stack.to_string(),
                    kind,
                    drifted,
                    detail,
                });
            }
        };
        flag(DNS_MISMATCH, dns_mismatch(facts, stack));
        flag(EIP_MISMATCH, eip_mismatch(facts, stack));
        flag(OIDC_ISSUER_MISMATCH, oidc_mismatch(env, facts));
        flag(STALE_BINARY, stale_binary(config, facts, pulse, stack, now));
    }
    out
}

/// Whether two commit ids name the same commit: equal, or one a prefix of
/// the other of at least 7 hex digits (a short SHA).
pub fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    if a == b {
        return !a.is_empty();
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    short.len() >= 7
        && short.bytes().all(|c| c.is_ascii_hexdigit())
        && long.starts_with(short.as_str())
}

fn dns_mismatch(facts: &Facts, stack: &str) -> Option<(bool, String)> {
    let dns = facts.get::<DnsFacts>()?;
    // An alias record's addresses are not listed: it cannot be compared.
    let records: Vec<_> = dns.of(stack).filter(|r| r.alias.is_none()).collect();
    if records.len() < 2 {
        return None;
    }
    let first = &records[0];
    let odd: Vec<String> = records[1..]
        .iter()
        .filter(|r| r.addresses != first.addresses)
        .map(|r| format!("{} → {}", r.name, show(&r.addresses)))
        .collect();
    if odd.is_empty() {
        Some((
            false,
            format!(
                "{} names agree on {}",
                records.len(),
                show(&first.addresses)
            ),
        ))
    } else {
        Some((
            true,
            format!(
                "{} → {}, but {}",
                first.name,
                show(&first.addresses),
                odd.join(", ")
            ),
        ))
    }
}

fn eip_mismatch(facts: &Facts, stack: &str) -> Option<(bool, String)> {
    let aws = facts.get::<AwsFacts>()?;
    let dns = facts.get::<DnsFacts>()?;
    let eips: BTreeSet<&str> = aws.eips_of(stack).map(|a| a.public_ip.as_str()).collect();
    if eips.is_empty() {
        return None;
    }
    let records: Vec<_> = dns
        .of(stack)
        .filter(|r| r.alias.is_none() && !r.addresses.is_empty())
        .collect();
    if records.is_empty() {
        return None;
    }
    let wrong: Vec<String> = records
        .iter()
        .filter(|r| r.addresses.iter().any(|a| !eips.contains(a.as_str())))
        .map(|r| format!("{} → {}", r.name, show(&r.addresses)))
        .collect();
    let eips = eips.into_iter().collect::<Vec<_>>().join(", ");
    if wrong.is_empty() {
        Some((false, format!("A records point at the EIP {eips}")))
    } else {
        Some((true, format!("{} (the EIP is {eips})", wrong.join(", "))))
    }
}

fn oidc_mismatch(env: &Environment, facts: &Facts) -> Option<(bool, String)> {
    let want = &env.oidc.as_ref()?.issuer;
    let doc = facts.get::<OidcFacts>()?.of(env.name.as_str())?;
    let got = doc.issuer.as_ref()?;
    if got == want {
        Some((false, format!("{} advertises {got}", doc.url)))
    } else {
        Some((
            true,
            format!("{} advertises {got}, expected {want}", doc.url),
        ))
    }
}

fn stale_binary(
    config: &Config,
    facts: &Facts,
    pulse: &Pulse,
    stack: &str,
    now: f64,
) -> Option<(bool, String)> {
    let grace = config.sources.github.as_ref()?.stale_grace.0.as_secs_f64();
    let github = facts.get::<GithubFacts>()?;
    let head = &github.head;
    if head.sha.is_empty() {
        return None;
    }
    let deployed = deployed_commits(facts, pulse, stack);
    if deployed.is_empty() {
        return None;
    }
    // A test slot runs the commit of the CI run holding it, not main's head.
    let slot_sha = github
        .slot(stack)
        .and_then(|s| s.holder.as_ref())
        .map(|r| r.head_sha.as_str())
        .filter(|s| !s.is_empty());
    let behind: Vec<String> = deployed
        .iter()
        .filter(|(_, c)| !same_commit(c, &head.sha) && !slot_sha.is_some_and(|s| same_commit(c, s)))
        .map(|(who, c)| format!("{who} runs {c}"))
        .collect();
    let short = &head.sha[..head.sha.len().min(12)];
    if behind.is_empty() {
        return Some((
            false,
            format!("everything runs {} head {short}", head.branch),
        ));
    }
    let head_age = head.committed_at.map(|t| now - t);
    if head_age.is_some_and(|age| age < grace) {
        return Some((
            false,
            format!(
                "{}; {} head {short} is within the {:.0} s grace",
                behind.join(", "),
                head.branch,
                grace
            ),
        ));
    }
    Some((
        true,
        format!("{}; {} head is {short}", behind.join(", "), head.branch),
    ))
}

/// Every commit the environment is known to run: from its /healthz answers
/// and its boxes' heartbeats, each with who reported it.
fn deployed_commits(facts: &Facts, pulse: &Pulse, stack: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let reported = |c: Option<&str>| {
        c.map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    };
    if let Some(probes) = facts.get::<HealthzFacts>() {
        for p in probes.iter().filter(|p| p.stack == stack) {
            if let Some(c) = reported(p.commit.as_deref()) {
                out.push((p.service.clone(), c));
            }
        }
    }
    for hb in pulse.heartbeats.values().filter(|h| h.stack == stack) {
        if let Some(c) = reported(hb.commit.as_deref()) {
            out.push((format!("box {}", hb.box_name), c));
        }
    }
    out
}

fn show(addresses: &[String]) -> String {
    if addresses.is_empty() {
        "no A record".into()
    } else {
        addresses.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::pulse::Heartbeat;
    use crate::snapshot::{Health, ServiceProbe};
    use crate::sources::aws::{AwsFacts, ElasticIp};
    use crate::sources::dns::{DnsFacts, DnsRecord};
    use crate::sources::github::{CiRun, GithubFacts, HeadCommit, SlotOccupancy};
    use crate::sources::oidc::{OidcDocument, OidcFacts};

    const HEAD: &str = "4f2c9e1d0a7b3c5e8f9a1b2c3d4e5f60718293a4";
    const NOW: f64 = 1_750_000_000.0;

    fn config() -> Config {
        Config::parse(
            "sources:\n  github:\n    repo: o/r\n    stale_grace: 1h\nenvironments:\n  - name: prod\n    oidc:\n      url: https://id.example.net/.well-known/openid-configuration\n      issuer: https://id.example.net\n",
            "t.yaml",
        )
        .unwrap()
    }

    fn dns(records: &[(&str, &[&str])]) -> DnsFacts {
        DnsFacts {
            records: records
                .iter()
                .map(|(n, a)| DnsRecord {
                    stack: "prod".into(),
                    name: n.to_string(),
                    addresses: a.iter().map(|s| s.to_string()).collect(),
                    alias: None,
                })
                .collect(),
        }
    }

    fn aws(eips: &[&str]) -> AwsFacts {
        AwsFacts {
            instances: vec![],
            addresses: eips
                .iter()
                .map(|ip| ElasticIp {
                    stack: "prod".into(),
                    public_ip: ip.to_string(),
                    allocation_id: "eipalloc-1".into(),
                    associated: true,
                    instance_id: Some("i-1".into()),
                })
                .collect(),
        }
    }

    fn probe(service: &str, commit: Option<&str>) -> ServiceProbe {
        ServiceProbe {
            stack: "prod".into(),
            service: service.into(),
            health: Health::Green,
            status_code: Some(200),
            duration_seconds: 0.01,
            commit: commit.map(str::to_string),
            reason: None,
        }
    }

    fn github(head_age: f64, slot_sha: Option<&str>) -> GithubFacts {
        GithubFacts {
            head: HeadCommit {
                branch: "main".into(),
                sha: HEAD.into(),
                committed_at: Some(NOW - head_age),
            },
            slots: slot_sha
                .map(|sha| SlotOccupancy {
                    stack: "prod".into(),
                    holder: Some(CiRun {
                        id: 1,
                        workflow: "integration".into(),
                        title: "slot prod".into(),
                        branch: "feature".into(),
                        head_sha: sha.into(),
                        status: "in_progress".into(),
                        started_at: Some(NOW - 60.0),
                        url: String::new(),
                    }),
                    queued: 0,
                })
                .into_iter()
                .collect(),
            rate_limit: None,
        }
    }

    fn oidc(issuer: Option<&str>) -> OidcFacts {
        OidcFacts {
            documents: vec![OidcDocument {
                stack: "prod".into(),
                url: "https://id.example.net/.well-known/openid-configuration".into(),
                issuer: issuer.map(str::to_string),
                error: issuer.is_none().then(|| "connection refused".to_string()),
            }],
        }
    }

    /// The verdict for `kind` from these facts: None when no flag was raised.
    fn verdict(facts: Facts, kind: &str) -> Option<bool> {
        let flags = detect(&config(), &facts, &Pulse::default(), NOW);
        let mine: Vec<_> = flags.iter().filter(|f| f.kind == kind).collect();
        assert!(mine.len() <= 1, "{mine:?}");
        mine.first().map(|f| {
            assert_eq!(f.stack, "prod");
            assert!(!f.detail.is_empty());
            f.drifted
        })
    }

    #[test]
    fn dns_mismatch_cases() {
        let cases: Vec<(&str, Option<DnsFacts>, Option<bool>)> = vec![
            (
                "names agree",
                Some(dns(&[("a", &["192.0.2.1"]), ("b", &["192.0.2.1"])])),
                Some(false),
            ),
            (
                "names disagree",
                Some(dns(&[("a", &["192.0.2.1"]), ("b", &["192.0.2.2"])])),
                Some(true),
            ),
            (
                "one name has no A record",
                Some(dns(&[("a", &["192.0.2.1"]), ("b", &[])])),
                Some(true),
            ),
            (
                "one name only: nothing to compare",
                Some(dns(&[("a", &["192.0.2.1"])])),
                None,
            ),
            ("dns unknown", None, None),
        ];
        for (what, d, want) in cases {
            let facts = Facts::default().maybe("dns", d);
            assert_eq!(verdict(facts, DNS_MISMATCH), want, "{what}");
        }
    }

    #[test]
    fn dns_details_name_the_records() {
        let detail = |d: DnsFacts| {
            let facts = Facts::default().with("dns", d);
            let flags = detect(&config(), &facts, &Pulse::default(), NOW);
            flags
                .into_iter()
                .find(|f| f.kind == DNS_MISMATCH)
                .expect("a dns flag")
                .detail
        };
        assert_eq!(
            detail(dns(&[("a", &["192.0.2.1"]), ("b", &[])])),
            "a → 192.0.2.1, but b → no A record"
        );
        assert_eq!(
            detail(dns(&[
                ("a", &["192.0.2.1", "192.0.2.3"]),
                ("b", &["192.0.2.1", "192.0.2.3"])
            ])),
            "2 names agree on 192.0.2.1, 192.0.2.3"
        );
    }

    #[test]
    fn alias_records_are_not_compared() {
        let mut d = dns(&[("a", &["192.0.2.1"]), ("b", &[])]);
        d.records[1].alias = Some("lb.example.net".into());
        let facts = Facts::default().with("dns", d);
        assert_eq!(verdict(facts, DNS_MISMATCH), None);
    }

    #[test]
    fn eip_mismatch_cases() {
        type Case<'a> = (&'a str, Option<AwsFacts>, Option<DnsFacts>, Option<bool>);
        let cases: Vec<Case> = vec![
            (
                "A record is the EIP",
                Some(aws(&["192.0.2.1"])),
                Some(dns(&[("a", &["192.0.2.1"])])),
                Some(false),
            ),
            (
                "A record is not the EIP",
                Some(aws(&["192.0.2.1"])),
                Some(dns(&[("a", &["192.0.2.9"])])),
                Some(true),
            ),
            (
                "one of two names is off",
                Some(aws(&["192.0.2.1"])),
                Some(dns(&[("a", &["192.0.2.1"]), ("b", &["192.0.2.9"])])),
                Some(true),
            ),
            (
                "no EIP found by the tag",
                Some(aws(&[])),
                Some(dns(&[("a", &["192.0.2.9"])])),
                None,
            ),
            (
                "no A records",
                Some(aws(&["192.0.2.1"])),
                Some(dns(&[("a", &[])])),
                None,
            ),
            (
                "aws unknown",
                None,
                Some(dns(&[("a", &["192.0.2.9"])])),
                None,
            ),
            ("dns unknown", Some(aws(&["192.0.2.1"])), None, None),
        ];
        for (what, a, d, want) in cases {
            let facts = Facts::default().maybe("aws", a).maybe("dns", d);
            assert_eq!(verdict(facts, EIP_MISMATCH), want, "{what}");
        }
    }

    #[test]
    fn oidc_issuer_mismatch_cases() {
        let cases: Vec<(&str, Option<OidcFacts>, Option<bool>)> = vec![
            (
                "issuer as configured",
                Some(oidc(Some("https://id.example.net"))),
                Some(false),
            ),
            (
                "another issuer",
                Some(oidc(Some("https://id.test-1.example.net"))),
                Some(true),
            ),
            (
                "a trailing slash is another issuer",
                Some(oidc(Some("https://id.example.net/"))),
                Some(true),
            ),
            ("document unreadable", Some(oidc(None)), None),
            ("oidc unknown", None, None),
        ];
        for (what, o, want) in cases {
            let facts = Facts::default().maybe("oidc", o);
            assert_eq!(verdict(facts, OIDC_ISSUER_MISMATCH), want, "{what}");
        }
    }

    #[test]
    fn stale_binary_cases() {
        type Case<'a> = (
            &'a str,
            Option<GithubFacts>,
            Vec<ServiceProbe>,
            Option<bool>,
        );
        let old = 7200.0;
        let cases: Vec<Case> = vec![
            (
                "runs head (full sha)",
                Some(github(old, None)),
                vec![probe("broker", Some(HEAD))],
                Some(false),
            ),
            (
                "runs head (short sha)",
                Some(github(old, None)),
                vec![probe("broker", Some("4f2c9e1"))],
                Some(false),
            ),
            (
                "short sha in upper case",
                Some(github(old, None)),
                vec![probe("broker", Some("4F2C9E1D"))],
                Some(false),
            ),
            (
                "6 hex digits are too short to tell",
                Some(github(old, None)),
                vec![probe("broker", Some("4f2c9e"))],
                Some(true),
            ),
            (
                "runs another commit past the grace",
                Some(github(old, None)),
                vec![probe("broker", Some("0badc0de"))],
                Some(true),
            ),
            (
                "one of two services is behind",
                Some(github(old, None)),
                vec![
                    probe("broker", Some(HEAD)),
                    probe("signer", Some("0badc0de")),
                ],
                Some(true),
            ),
            (
                "behind but head is new",
                Some(github(600.0, None)),
                vec![probe("broker", Some("0badc0de"))],
                Some(false),
            ),
            (
                "behind, head exactly as old as the grace",
                Some(github(3600.0, None)),
                vec![probe("broker", Some("0badc0de"))],
                Some(true),
            ),
            (
                "runs the commit of the CI run holding the slot",
                Some(github(old, Some("0badc0de99"))),
                vec![probe("broker", Some("0badc0de"))],
                Some(false),
            ),
            (
                "services report no commit",
                Some(github(old, None)),
                vec![probe("broker", None)],
                None,
            ),
            ("no healthz facts", Some(github(old, None)), vec![], None),
            (
                "github unknown",
                None,
                vec![probe("broker", Some("0badc0de"))],
                None,
            ),
        ];
        for (what, g, probes, want) in cases {
            let facts = Facts::default()
                .maybe("github", g)
                .maybe("healthz", (!probes.is_empty()).then_some(probes));
            assert_eq!(verdict(facts, STALE_BINARY), want, "{what}");
        }
    }

    fn pulse(boxes: &[(&str, &str, Option<&str>)]) -> Pulse {
        let mut p = Pulse::default();
        for (stack, name, commit) in boxes {
            p.heartbeats.insert(
                Arc::from(*name),
                Arc::new(Heartbeat {
                    stack: stack.to_string(),
                    box_name: name.to_string(),
                    timestamp: NOW - 86_400.0,
                    count: 1,
                    recent: vec![],
                    commit: commit.map(str::to_string),
                    version: None,
                    booted_at: None,
                }),
            );
        }
        p
    }

    #[test]
    fn stale_binary_reads_heartbeat_commits_too() {
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, &'a str, Option<&'a str>)>,
            Vec<ServiceProbe>,
            Option<bool>,
        );
        let cases: Vec<Case> = vec![
            (
                "box runs head",
                vec![("prod", "prod-a", Some("4f2c9e1d"))],
                vec![],
                Some(false),
            ),
            (
                "box runs an old commit",
                vec![("prod", "prod-a", Some("0badc0de"))],
                vec![],
                Some(true),
            ),
            (
                "box behind while healthz is current",
                vec![("prod", "prod-a", Some("0badc0de"))],
                vec![probe("broker", Some(HEAD))],
                Some(true),
            ),
            (
                "another stack's box is not ours",
                vec![("test-1", "t1-a", Some("0badc0de"))],
                vec![],
                None,
            ),
            (
                "box reported no commit",
                vec![("prod", "prod-a", None)],
                vec![],
                None,
            ),
        ];
        for (what, boxes, probes, want) in cases {
            let facts = Facts::default()
                .with("github", github(7200.0, None))
                .maybe("healthz", (!probes.is_empty()).then_some(probes));
            let flags = detect(&config(), &facts, &pulse(&boxes), NOW);
            let got = flags
                .iter()
                .find(|f| f.kind == STALE_BINARY)
                .map(|f| f.drifted);
            assert_eq!(got, want, "{what}: {flags:?}");
        }
    }

    #[test]
    fn same_commit_needs_seven_hex_digits_of_prefix() {
        let cases = [
            (HEAD, HEAD, true),
            ("4f2c9e1", HEAD, true),
            (HEAD, "4f2c9e1", true),
            ("4f2c9e", HEAD, false),
            ("4f2c9e2", HEAD, false),
            ("v1.2.3", "v1.2.3", true),
            ("v1.2.3x", "v1.2.3", false),
            ("", "", false),
            ("zzzzzzz", "zzzzzzzz", false),
        ];
        for (a, b, want) in cases {
            assert_eq!(same_commit(a, b), want, "{a} vs {b}");
        }
    }

    #[test]
    fn environments_without_inputs_get_no_flags() {
        let flags = detect(&config(), &Facts::default(), &Pulse::default(), NOW);
        assert!(flags.is_empty(), "{flags:?}");
    }
}
