//! Turns a snapshot into the exposition: OpenMetrics text through
//! prometheus-client, and the Prometheus text format 0.0.4 derived from it
//! for scrapers and linters that ask for the classic format.
//!
//! Families are written straight from the snapshot on each scrape, so the
//! series of anything that disappeared disappear with it.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

use crate::catalogue::{self as cat, Kind, MetricDef};
pub(crate) use crate::exposition::{b, family};

mod history;
pub mod process;
mod pulse;
use crate::snapshot::Snapshot;

/// Content type of the classic text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every family fleetpulse exposes, in exposition order: the exporter's
/// own, each source's in registry order, then drift and pushes. The README's
/// metric reference, the dashboards and the alert rules are checked against
/// this list.
pub fn families() -> impl Iterator<Item = &'static MetricDef> {
    cat::EXPORTER
        .iter()
        .chain(crate::sources::families())
        .chain(cat::FLEET.iter())
}

/// Looks a family up by its sample name.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    families().find(|m| m.name == name)
}

/// Encodes the snapshot as OpenMetrics text.
pub fn render_openmetrics(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot)));
    let mut out = String::with_capacity(64 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Encodes the snapshot in the Prometheus text format 0.0.4.
pub fn render_text(snapshot: Snapshot) -> String {
    openmetrics_to_text(&render_openmetrics(snapshot))
}

/// The sample lines `/metrics` writes for `facts` (in text format 0.0.4)
/// whose family names start with `prefix`: what a source's `encode` test
/// compares.
#[cfg(test)]
pub(crate) fn samples_of(facts: crate::sources::Facts, prefix: &str) -> Vec<String> {
    let config = crate::config::Config::parse("environments:\n  - name: prod\n", "t.yaml")
        .map(std::sync::Arc::new)
        .unwrap_or_else(|e| panic!("{e}"));
    let snapshot = Snapshot {
        read_at: 0.0,
        config,
        sources: Vec::new(),
        reload: (true, 0.0),
        discovery_refused: 0,
        history: Default::default(),
        facts,
        pulse: Default::default(),
        drift: Vec::new(),
        handler_panics: 0,
    };
    render_text(snapshot)
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(String::from)
        .collect()
}

/// Rewrites OpenMetrics text as text format 0.0.4: counter families are named
/// with their `_total` suffix, `# UNIT` and `# EOF` lines are dropped.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        if let Some((prefix, rest)) = meta {
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let is_counter = families()
                .any(|m| m.kind == Kind::Counter && m.name.strip_suffix("_total") == Some(name));
            out.push_str(prefix);
            out.push_str(name);
            if is_counter {
                out.push_str("_total");
            }
            if !tail.is_empty() {
                out.push(' ');
                out.push_str(tail);
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[derive(Debug)]
struct SnapshotCollector(Snapshot);

impl Collector for SnapshotCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        encode_snapshot(&self.0, &mut enc)
    }
}

fn encode_snapshot(s: &Snapshot, enc: &mut DescriptorEncoder) -> fmt::Result {
    family(
        enc,
        &cat::BUILD_INFO,
        [(
            [
                crate::build::VERSION,
                crate::build::REVISION,
                crate::build::BRANCH,
                crate::build::RUSTC_VERSION,
            ],
            1.0,
        )],
    )?;
    family(enc, &cat::HANDLER_PANICS, [([], s.handler_panics as f64)])?;
    family(enc, &cat::CONFIG_RELOAD_SUCCESSFUL, [([], b(s.reload.0))])?;
    family(enc, &cat::CONFIG_RELOAD_SUCCESS_TIME, [([], s.reload.1)])?;
    family(
        enc,
        &cat::DISCOVERY_REFUSED,
        [([], s.discovery_refused as f64)],
    )?;
    process::encode(enc)?;
    family(
        enc,
        &cat::SOURCE_UP,
        s.sources.iter().map(|x| ([x.source], b(x.up))),
    )?;
    family(
        enc,
        &cat::SOURCE_LAST_SUCCESS,
        s.sources
            .iter()
            .filter_map(|x| x.last_success.map(|t| ([x.source], t))),
    )?;
    family(
        enc,
        &cat::SOURCE_DURATION,
        s.sources
            .iter()
            .filter(|x| x.has_run)
            .map(|x| ([x.source], x.duration_seconds)),
    )?;
    family(
        enc,
        &cat::SOURCE_ERRORS,
        s.sources
            .iter()
            .map(|x| ([x.source], x.errors_total as f64)),
    )?;

    s.facts.encode(enc)?;

    family(
        enc,
        &cat::DRIFT,
        s.drift
            .iter()
            .map(|d| ([d.stack.as_str(), d.kind], b(d.drifted))),
    )?;

    pulse::encode(s, enc)?;
    history::encode(s, enc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Facts, Health, ServiceProbe, SourceStatus};
    use crate::sources::aws::{AwsFacts, Instance, InstanceState};
    use std::sync::Arc;

    /// Label names a scrape config or service discovery commonly attaches to
    /// targets (the exporter-writing guide's list, plus job, instance and
    /// type): a family using one would have it renamed `exported_…` on
    /// ingestion, and queries on it would silently stop matching.
    const TARGET_LABELS: [&str; 16] = [
        "region",
        "zone",
        "cluster",
        "availability_zone",
        "az",
        "datacenter",
        "dc",
        "owner",
        "customer",
        "stage",
        "service",
        "environment",
        "env",
        "job",
        "instance",
        "type",
    ];

    /// Families about fleetpulse itself or about something every environment
    /// shares; every other family is per environment and carries `stack`.
    const FLEET_WIDE: [&str; 10] = [
        "fleet_exporter_build_info",
        "fleet_exporter_handler_panics_total",
        "fleet_config_last_reload_successful",
        "fleet_config_last_reload_success_timestamp_seconds",
        "fleet_discovery_refused_total",
        "fleet_chain_block_number",
        "fleet_github_head_commit_info",
        "fleet_github_rate_limit_remaining",
        "fleet_github_rate_limit_reset_timestamp_seconds",
        "fleet_source_",
    ];

    #[test]
    fn every_per_environment_family_carries_stack_first() {
        for m in families().filter(|m| m.name.starts_with("fleet_")) {
            let wide = FLEET_WIDE
                .iter()
                .any(|w| m.name == *w || (w.ends_with('_') && m.name.starts_with(w)));
            if !wide {
                assert_eq!(m.labels.first(), Some(&"stack"), "{}", m.name);
            }
        }
    }

    #[test]
    fn family_names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in families() {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(
                m.name.starts_with("fleet_") || m.name.starts_with("process_"),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            for l in m.labels {
                assert!(
                    !TARGET_LABELS.contains(l),
                    "{} uses label {l}, which clashes with a target label",
                    m.name
                );
            }
            if m.name.ends_with("_info") {
                assert_eq!(m.kind, Kind::Gauge);
            }
        }
    }

    fn source(name: &'static str, up: bool) -> SourceStatus {
        SourceStatus {
            source: name,
            up,
            last_success: Some(1_700_000_000.0),
            duration_seconds: 0.25,
            errors_total: 3,
            last_error: None,
            has_run: true,
            interval: std::time::Duration::from_secs(30),
        }
    }

    fn probe(service: &str, health: Health) -> ServiceProbe {
        crate::testing::service_probe("prod", service, health)
    }

    #[test]
    fn booleans_and_state_sets_render_as_ones_and_zeros() {
        let config = Arc::new(
            crate::config::Config::parse("environments:\n  - name: prod\n", "t.yaml").unwrap(),
        );
        let snapshot = Snapshot {
            read_at: 0.0,
            config,
            sources: vec![source("healthz", true), source("tls", false)],
            reload: (true, 0.0),
            discovery_refused: 0,
            history: Default::default(),
            facts: Facts::default()
                .with(
                    "healthz",
                    vec![probe("broker", Health::Green), probe("signer", Health::Red)],
                )
                .with(
                    "aws",
                    AwsFacts {
                        instances: vec![Instance {
                            stack: "prod".into(),
                            instance_id: "i-1".into(),
                            state: Some(InstanceState::Running),
                            instance_type: "t3.small".into(),
                            availability_zone: "eu-west-1a".into(),
                            launch_time: Some(1_700_000_000.0),
                            public_ip: None,
                        }],
                        addresses: Vec::new(),
                    },
                ),
            pulse: Arc::default(),
            drift: Vec::new(),
            handler_panics: 0,
        };
        let text = render_text(snapshot);
        let value = |series: &str| -> f64 {
            text.lines()
                .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
                .parse()
                .unwrap()
        };
        assert_eq!(value(r#"fleet_source_up{source="healthz"}"#), 1.0);
        let instance = |state: &str| {
            value(&format!(
                r#"fleet_instance_state{{stack="prod",instance_id="i-1",state="{state}"}}"#
            ))
        };
        assert_eq!(instance("running"), 1.0);
        assert_eq!(instance("stopped"), 0.0);
        assert_eq!(instance("pending"), 0.0);
        assert_eq!(value(r#"fleet_source_up{source="tls"}"#), 0.0);
        assert_eq!(value(r#"fleet_source_errors_total{source="tls"}"#), 3.0);
        for (service, green, red) in [("broker", 1.0, 0.0), ("signer", 0.0, 1.0)] {
            let s = |state: &str| {
                value(&format!(
                    r#"fleet_service_health{{stack="prod",component="{service}",state="{state}"}}"#
                ))
            };
            assert_eq!(s("green"), green, "{service} green");
            assert_eq!(s("red"), red, "{service} red");
            assert_eq!(s("degraded"), 0.0, "{service} degraded");
        }
    }

    #[test]
    fn counters_get_total_in_text_format_and_openmetrics_markers_go() {
        let om = "# HELP fleet_source_errors Runs.\n# TYPE fleet_source_errors counter\nfleet_source_errors_total{source=\"tls\"} 2\n# HELP fleet_source_up Up.\n# TYPE fleet_source_up gauge\n# UNIT fleet_source_up x\nfleet_source_up{source=\"tls\"} 1\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP fleet_source_errors_total Runs.\n# TYPE fleet_source_errors_total counter\nfleet_source_errors_total{source=\"tls\"} 2\n# HELP fleet_source_up Up.\n# TYPE fleet_source_up gauge\nfleet_source_up{source=\"tls\"} 1\n"
        );
    }
}
