//! A restart of the exporter is invisible to Prometheus: the pulled
//! sources' last state is kept in the store and put back at start-up, so
//! the first scrape after a start holds what the last one before the stop
//! held, and alerts that were firing stay firing (SIGTERM and SIGKILL).

use crate::common;
use crate::harness;
use crate::prometheus::query;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

/// The sample names (families with at least one series) of an exposition.
fn families(body: &str) -> BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The rules under alerts/, with every `for:` cut to 2 s so they fire
/// within the test.
fn quick_rules(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(repo.join("alerts")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let quick: String = text
                .lines()
                .map(|l| match l.trim_start().strip_prefix("for:") {
                    Some(_) => format!("{}for: 2s\n", &l[..l.len() - l.trim_start().len()]),
                    None => format!("{l}\n"),
                })
                .collect();
            std::fs::write(dir.join(path.file_name().unwrap()), quick).unwrap();
        }
    }
}

/// A range query's result: one series per entry, values as (time, text).
async fn query_range(
    http: &reqwest::Client,
    prom: &str,
    expr: &str,
    start: f64,
    end: f64,
) -> Vec<Value> {
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("query", expr)
        .append_pair("start", &format!("{start:.3}"))
        .append_pair("end", &format!("{end:.3}"))
        .append_pair("step", "1")
        .finish();
    let v: Value = http
        .get(format!("{prom}/api/v1/query_range?{form}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The time of Prometheus' last scrape of the exporter.
async fn last_scrape(http: &reqwest::Client, prom: &str) -> Option<f64> {
    let r = query(http, prom, r#"timestamp(up{job="fleetpulse"} == 1)"#)
        .await
        .ok()?;
    r.first()?["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_firing_alerts_firing_and_every_family_in_the_first_scrape() {
    // Two services that accept a connection and never answer: red after a
    // 1.5 s timeout, so the healthz source's first run after a start takes
    // that long, and a scrape in between sees only what was put back.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_port = hung.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "sources:
  healthz: {{ interval: 2s, timeout: 1500ms }}
  staleness: 1m
environments:
  - name: prod
    services:
      - name: broker
        healthz: http://127.0.0.1:{hung_port}/healthz
      - name: signer
        healthz: http://127.0.0.1:{hung_port}/healthz
"
        ),
    )
    .unwrap();
    let port = common::free_port();
    let mut exporter = harness::fleet::spawn_exporter(&config, dir.path(), port);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let red = r#"fleet_service_health{stack="prod",component="broker",state="red"}"#;
    common::eventually(Duration::from_secs(30), "broker red", || async {
        let (code, body) = reqwest_get(&url).await?;
        (code == 200 && common::sample(&body, red) == Some(1.0)).then_some(())
    })
    .await;

    let rules = tempfile::tempdir().unwrap();
    quick_rules(rules.path());
    let prom_dir = tempfile::tempdir().unwrap();
    let prom = harness::prometheus(
        &format!(
            "global:
  scrape_interval: 2s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: fleetpulse
    static_configs:
      - targets: ['127.0.0.1:{port}']
",
            rules = rules.path().join("*.yml").display()
        ),
        prom_dir.path(),
    )
    .await;
    let base = prom.url();
    let http = reqwest::Client::new();
    let firing = r#"count(ALERTS{alertname="FleetServiceRed",alertstate="firing"})"#;
    common::eventually(Duration::from_secs(60), "both services firing", || {
        let (http, base) = (&http, &base);
        async move {
            let r = query(http, base, firing).await.ok()?;
            (r.first()?["value"][1] == "2").then_some(())
        }
    })
    .await;
    let fired_at = fleetpulse::snapshot::now_unix();

    for how in ["TERM", "KILL"] {
        // Right after a scrape, so the restart falls between two of them.
        let seen = last_scrape(&http, &base).await.expect("scraped");
        common::eventually(Duration::from_secs(10), "a fresh scrape", || {
            let (http, base) = (&http, &base);
            async move { (last_scrape(http, base).await? > seen).then_some(()) }
        })
        .await;
        let (_, before) = reqwest_get(&url).await.expect("scrape before the stop");
        if how == "TERM" {
            exporter.signal("TERM");
            assert!(
                exporter.wait_exit(Duration::from_secs(10)),
                "fleetpulse did not stop on SIGTERM"
            );
        } else {
            exporter.stop();
        }
        exporter = harness::fleet::spawn_exporter(&config, dir.path(), port);
        let after = common::eventually(Duration::from_secs(10), "fleetpulse back", || async {
            let (code, body) = reqwest_get(&url).await?;
            (code == 200).then_some(body)
        })
        .await;
        // The healthz source's first run is still waiting on its 1.5 s
        // timeout: what is shown is what was put back.
        let missing: Vec<_> = families(&before)
            .difference(&families(&after))
            .cloned()
            .collect();
        assert!(
            missing.is_empty(),
            "after SIG{how}, the first scrape lacks {missing:?}:\n{after}"
        );
        assert_eq!(common::sample(&after, red), Some(1.0), "after SIG{how}");
        assert_eq!(
            common::sample(&after, r#"fleet_source_up{source="healthz"}"#),
            Some(1.0),
            "after SIG{how}, the source is up as it was"
        );
        // The kept success is the last one before the stop, or the one
        // before it when the stop came between a run and its commit.
        let success = r#"fleet_source_last_success_timestamp_seconds{source="healthz"}"#;
        let (was, is) = (
            common::sample(&before, success).expect("a success before"),
            common::sample(&after, success).expect("a success put back"),
        );
        assert!(
            (was - is).abs() <= 2.5,
            "after SIG{how}, last success {is} put back for {was}"
        );
    }

    // Two more scrapes and rule evaluations of the restarted exporter.
    let back = fleetpulse::snapshot::now_unix();
    common::eventually(
        Duration::from_secs(20),
        "scraped after the restarts",
        || {
            let (http, base) = (&http, &base);
            async move { (last_scrape(http, base).await? > back + 2.5).then_some(()) }
        },
    )
    .await;
    let end = fleetpulse::snapshot::now_unix() - 1.0;
    let series = query_range(&http, &base, firing, fired_at, end).await;
    let values = series
        .first()
        .and_then(|s| s["values"].as_array())
        .cloned()
        .unwrap_or_default();
    let steps = (end - fired_at).floor() as usize + 1;
    let gaps: Vec<&Value> = values.iter().filter(|v| v[1] != "2").collect();
    assert!(
        values.len() >= steps - 1 && gaps.is_empty(),
        "FleetServiceRed left firing across the restarts: {} of {steps} steps firing twice, \
         other values {gaps:?}",
        values.len()
    );
    let down = query_range(
        &http,
        &base,
        r#"ALERTS{alertname=~"FleetSourceDown|FleetExporterDown"}"#,
        fired_at,
        end,
    )
    .await;
    assert!(down.is_empty(), "a restart raised {down:?}");
    drop(hung);
}

/// GET, or None when nothing answers.
async fn reqwest_get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let code = r.status().as_u16();
    Some((code, r.text().await.ok()?))
}

#[test]
fn every_sources_facts_read_back_as_they_were_kept() {
    let s = crate::fixtures::healthy(false);
    let mut back = fleetpulse::sources::Facts::default();
    let mut checked = Vec::new();
    for r in fleetpulse::sources::REGISTRY {
        let Some(facts) = s.facts.of(r.name) else {
            continue;
        };
        let json = facts.to_json().unwrap();
        let again = (r.restore)(&json).unwrap_or_else(|e| panic!("{}: {e}", r.name));
        assert_eq!(again.to_json().unwrap(), json, "{}", r.name);
        back.set(r.name, again);
        checked.push(r.name);
    }
    assert_eq!(checked, ["healthz", "tls", "aws", "dns", "github", "chain"]);
    let mut restored = s.clone();
    restored.facts = back;
    // The process' own families are read afresh at each render; the rest
    // comes from the snapshot.
    let facts_only = |text: String| {
        text.lines()
            .filter(|l| !l.contains("process_"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        facts_only(fleetpulse::metrics::render_text(restored)),
        facts_only(fleetpulse::metrics::render_text(s))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_family_of_every_source_is_back_in_the_first_scrape_while_its_peer_is_frozen() {
    let mut fleet = harness::fleet::FedFleet::start().await;
    let before = fleet.until_sources_up(&harness::fleet::SOURCES).await;
    // The AWS emulator and the chain node stop answering: after the restart
    // the aws, dns and chain sources' runs hang until their timeout, so
    // their series can only come from what was kept.
    fleet.moto.signal("STOP");
    fleet.anvil.signal("STOP");
    fleet.kill_and_restart().await;
    let after = fleet.try_metrics().await.expect("first scrape");
    fleet.moto.signal("CONT");
    fleet.anvil.signal("CONT");
    let missing: Vec<_> = families(&before)
        .difference(&families(&after))
        .cloned()
        .collect();
    assert!(missing.is_empty(), "the first scrape lacks {missing:?}");
    for source in ["aws", "dns", "chain"] {
        assert_eq!(
            common::sample(&after, &format!(r#"fleet_source_up{{source="{source}"}}"#)),
            Some(1.0),
            "{source} is up as it was before the stop"
        );
    }
}
