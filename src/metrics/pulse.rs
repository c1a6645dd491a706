//! Families of the pulse: heartbeats, test receipts, mutation results,
//! doctor snapshots and the receiver's own request counts.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::family;
use crate::catalogue as cat;
use crate::snapshot::Snapshot;

pub(super) fn encode(s: &Snapshot, enc: &mut DescriptorEncoder) -> fmt::Result {
    let p = &*s.pulse;
    let hb = || p.heartbeats.values();
    family(
        enc,
        &cat::HEARTBEAT_TIMESTAMP,
        hb().map(|h| ([h.stack.as_str(), h.box_name.as_str()], h.timestamp)),
    )?;
    family(
        enc,
        &cat::HEARTBEATS,
        hb().map(|h| ([h.stack.as_str(), h.box_name.as_str()], h.count as f64)),
    )?;
    family(
        enc,
        &cat::BOX_EXPECTED,
        s.config.environments.iter().flat_map(|e| {
            e.boxes
                .iter()
                .map(move |b| ([e.name.as_str(), b.as_str()], 1.0))
        }),
    )?;
    family(
        enc,
        &cat::BOX_COMMIT_INFO,
        hb().filter(|h| h.commit.is_some() || h.version.is_some())
            .map(|h| {
                (
                    [
                        h.stack.as_str(),
                        h.box_name.as_str(),
                        h.commit.as_deref().unwrap_or(""),
                        h.version.as_deref().unwrap_or(""),
                    ],
                    1.0,
                )
            }),
    )?;

    let runs = || p.test_runs.values();
    family(
        enc,
        &cat::TEST_RUN_TESTS,
        runs().flat_map(|r| {
            [
                ("passed", r.passed),
                ("failed", r.failed_total()),
                ("skipped", r.skipped),
            ]
            .map(|(outcome, n)| ([r.stack.as_str(), r.service.as_str(), outcome], n as f64))
        }),
    )?;
    family(
        enc,
        &cat::TEST_RUN_TIMESTAMP,
        runs().map(|r| ([r.stack.as_str(), r.service.as_str()], r.timestamp())),
    )?;
    family(
        enc,
        &cat::TEST_RUN_DURATION,
        runs().filter_map(|r| {
            r.duration_seconds
                .map(|d| ([r.stack.as_str(), r.service.as_str()], d))
        }),
    )?;
    family(
        enc,
        &cat::TEST_RUN_INFO,
        runs().filter_map(|r| {
            r.commit
                .as_deref()
                .map(|c| ([r.stack.as_str(), r.service.as_str(), c], 1.0))
        }),
    )?;

    // A mutation result is of a component's code: it is shown in every
    // environment listing the component (`stack=""` when none does).
    let mutants: Vec<(&str, &crate::pulse::Mutants)> = p
        .mutants
        .values()
        .flat_map(|m| {
            let mut stacks: Vec<&str> = s
                .config
                .stacks_of_service(&m.service)
                .map(|n| n.as_str())
                .collect();
            if stacks.is_empty() {
                stacks.push("");
            }
            stacks.into_iter().map(move |st| (st, &**m))
        })
        .collect();
    family(
        enc,
        &cat::TEST_MUTANTS,
        mutants.iter().flat_map(|(stack, m)| {
            [
                ("caught", m.caught),
                ("missed", m.missed),
                ("timeout", m.timeout),
                ("unviable", m.unviable),
            ]
            .map(|(outcome, n)| ([*stack, m.service.as_str(), outcome], n as f64))
        }),
    )?;
    family(
        enc,
        &cat::TEST_MUTANTS_TIMESTAMP,
        mutants
            .iter()
            .map(|(stack, m)| ([*stack, m.service.as_str()], m.received_at)),
    )?;

    family(
        enc,
        &cat::HOST_HEALTH_CHECKS,
        p.host_health.values().flat_map(|h| {
            [("ok", h.ok), ("warn", h.warn), ("fail", h.fail)]
                .map(|(status, n)| ([h.stack.as_str(), h.host.as_str(), status], n as f64))
        }),
    )?;
    family(
        enc,
        &cat::HOST_HEALTH_TIMESTAMP,
        p.host_health
            .values()
            .map(|h| ([h.stack.as_str(), h.host.as_str()], h.received_at)),
    )?;

    // Status codes as label text, written once per scrape.
    let stack_of = |name: &str| s.config.stack_of_name(name).map_or("", |n| n.as_str());
    let codes: Vec<(&str, &str, String, u64)> = p
        .ingest
        .values()
        .flat_map(|c| {
            let stack = stack_of(&c.host);
            c.codes
                .iter()
                .map(move |(code, n)| (stack, c.host.as_str(), code.to_string(), *n))
        })
        .collect();
    family(
        enc,
        &cat::INGEST_REQUESTS,
        codes
            .iter()
            .map(|(stack, pusher, code, n)| ([*stack, *pusher, code.as_str()], *n as f64)),
    )?;
    family(
        enc,
        &cat::INGEST_UNSTAMPED,
        p.ingest
            .values()
            .map(|c| ([stack_of(&c.host), c.host.as_str()], c.unstamped as f64)),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::config::Config;
    use crate::hub::Hub;
    use crate::pulse::{Heartbeat, IngestCounters, Mutants, Pulse, TestRun, TestRunFormat};

    fn render(pulse: Pulse) -> String {
        let config = Config::parse(
            "ingest:\n  services: [tool]\nenvironments:\n  - name: prod\n    boxes: [prod-a, prod-b]\n    services: [{ name: broker }]\n",
            "fleet.yaml",
        )
        .unwrap();
        let hub = Hub::new(Arc::new(config));
        hub.publish_pulse(Arc::new(pulse));
        crate::metrics::render_text(hub.snapshot())
    }

    #[test]
    fn pulse_families_follow_the_catalogue() {
        let mut p = Pulse::default();
        p.heartbeats.insert(
            "prod-a".into(),
            Arc::new(Heartbeat {
                stack: "prod".into(),
                box_name: "prod-a".into(),
                timestamp: 1000.0,
                count: 3,
                recent: vec![1000.0],
                commit: Some("abc".into()),
                version: None,
                booted_at: None,
            }),
        );
        p.test_runs.insert(
            ("prod".into(), "broker".into()),
            Arc::new(TestRun {
                stack: "prod".into(),
                service: "broker".into(),
                passed: 5,
                failed: 1,
                errored: 2,
                skipped: 0,
                duration_seconds: None,
                started_at: Some(900.0),
                received_at: 950.0,
                commit: None,
                format: TestRunFormat::Junit,
            }),
        );
        for service in ["broker", "tool"] {
            p.mutants.insert(
                service.into(),
                Arc::new(Mutants {
                    service: service.into(),
                    caught: 7,
                    missed: 1,
                    timeout: 0,
                    unviable: 0,
                    received_at: 960.0,
                    commit: None,
                }),
            );
        }
        let mut counters = IngestCounters {
            host: "prod-a".into(),
            unstamped: 2,
            ..IngestCounters::default()
        };
        counters.codes.insert(200, 3);
        counters.codes.insert(401, 1);
        p.ingest.insert("prod-a".into(), Arc::new(counters));
        let text = render(p);
        for line in [
            r#"fleet_heartbeat_timestamp_seconds{stack="prod",box="prod-a"} 1000.0"#,
            r#"fleet_heartbeats_total{stack="prod",box="prod-a"} 3"#,
            r#"fleet_box_expected{stack="prod",box="prod-a"} 1.0"#,
            r#"fleet_box_expected{stack="prod",box="prod-b"} 1.0"#,
            r#"fleet_box_commit_info{stack="prod",box="prod-a",commit="abc",version=""} 1.0"#,
            r#"fleet_test_run_tests{stack="prod",component="broker",outcome="failed"} 3.0"#,
            r#"fleet_test_run_tests{stack="prod",component="broker",outcome="passed"} 5.0"#,
            r#"fleet_test_run_timestamp_seconds{stack="prod",component="broker"} 900.0"#,
            r#"fleet_ingest_requests_total{stack="prod",pusher="prod-a",code="200"} 3"#,
            r#"fleet_ingest_requests_total{stack="prod",pusher="prod-a",code="401"} 1"#,
            r#"fleet_ingest_unstamped_requests_total{stack="prod",pusher="prod-a"} 2"#,
            // A component's mutants show in the environment listing it;
            // one no environment lists has no stack.
            r#"fleet_test_mutants{stack="prod",component="broker",outcome="missed"} 1.0"#,
            r#"fleet_test_mutants{stack="",component="tool",outcome="caught"} 7.0"#,
            r#"fleet_test_mutants_timestamp_seconds{stack="prod",component="broker"} 960.0"#,
            "# TYPE fleet_heartbeats_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // Unknown durations and commits are left out, not written as 0.
        assert!(!text.contains("fleet_test_run_duration_seconds{"));
        assert!(!text.contains("fleet_test_run_info{"));
        assert!(!text.contains(r#"box="prod-b",commit"#));
    }

    #[test]
    fn an_empty_pulse_still_lists_the_expected_boxes() {
        let text = render(Pulse::default());
        assert!(text.contains(r#"fleet_box_expected{stack="prod",box="prod-b"} 1.0"#));
        assert!(!text.contains("fleet_heartbeats_total{"));
    }
}
