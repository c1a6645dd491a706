//! Every dashboard query and alert rule, evaluated by a real Prometheus
//! scraping a fully fed fleetpulse: moto, anvil, the GitHub test server, an
//! OIDC server, a TLS service, and one push of every kind. No expression may
//! error, every dashboard panel query must return data, and every rule group
//! must evaluate cleanly.

use crate::common;
use crate::harness;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use harness::fleet::FedFleet;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One PromQL expression and where it came from.
struct Query {
    place: String,
    expr: String,
}

/// Every panel query of every dashboard, template variables substituted as
/// Grafana would: the single-stack board's `$stack` by `one`, the multi-stack
/// boards' by the regex `many`, the interval variables by fixed ranges. The
/// stack variable's own query comes first, as PromQL.
fn dashboard_queries(one: &str, many: &str) -> Vec<Query> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "dashboards/ has {} boards", files.len());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for v in d["templating"]["list"].as_array().expect("variables") {
            let Some(q) = v["query"]["query"].as_str() else {
                continue;
            };
            // label_values(SELECTOR, LABEL) asks for LABEL's values on SELECTOR.
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap_or_else(|| panic!("{name}: variable query {q}"));
            let (selector, label) = inner.rsplit_once(',').expect("label_values(s, l)");
            out.push(Query {
                place: format!("{name} variable {}", v["name"]),
                expr: format!("count by ({}) ({})", label.trim(), scope(selector)),
            });
        }
        let mut panels: Vec<&Value> = Vec::new();
        for p in d["panels"].as_array().expect("panels") {
            panels.push(p);
            if let Some(inner) = p["panels"].as_array() {
                panels.extend(inner);
            }
        }
        for p in panels {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().unwrap_or_default();
                let expr = scope(expr)
                    .replace("=~\"$stack\"", &format!("=~\"{many}\""))
                    .replace("=\"$stack\"", &format!("=\"{one}\""))
                    .replace("$__rate_interval", "1m")
                    .replace("$__interval", "15s")
                    .replace("$__range", "1h");
                assert!(
                    !expr.contains('$'),
                    "{name}: unsubstituted variable in {expr}"
                );
                out.push(Query {
                    place: format!(
                        "{name} panel {:?} query {}",
                        p["title"].as_str().unwrap_or_default(),
                        t["refId"].as_str().unwrap_or("?")
                    ),
                    expr,
                });
            }
        }
    }
    out
}

/// `expr` with the boards' job and instance pickers set as Grafana sets
/// them by default here: the job Prometheus scrapes fleetpulse as, every
/// instance.
fn scope(expr: &str) -> String {
    expr.replace("=~\"$job\"", "=~\"fleetpulse\"")
        .replace("=~\"$instance\"", "=~\".*\"")
}

/// Every rule expression in `alerts/*.yml`.
fn rule_queries() -> Vec<Query> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("alerts")).expect("alerts/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|x| x != "yml") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for group in doc["groups"].as_sequence().expect("groups") {
            for rule in group["rules"].as_sequence().expect("rules") {
                let id = rule["alert"]
                    .as_str()
                    .or(rule["record"].as_str())
                    .expect("alert or record");
                out.push(Query {
                    place: format!("{name} {id}"),
                    expr: rule["expr"].as_str().expect("expr").to_string(),
                });
            }
        }
    }
    out
}

/// An instant query; returns the result vector, or the error Prometheus gave.
pub async fn query(http: &reqwest::Client, prom: &str, expr: &str) -> Result<Vec<Value>, String> {
    let r = http
        .post(format!("{prom}/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("query", expr)
                .finish(),
        )
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    match &v["data"]["result"] {
        Value::Array(a) => Ok(a.clone()),
        // Scalars and strings are data too.
        other => Ok(vec![other.clone()]),
    }
}

fn prometheus_config(target: &str, rules: &Path) -> String {
    format!(
        "global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
scrape_configs:
  - job_name: fleetpulse
    static_configs:
      - targets: ['{target}']
",
        rules = rules.join("*.yml").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_and_rule_expression_evaluates_against_a_fed_fleet() {
    let fleet = FedFleet::start().await;
    fleet.push_everything().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("127.0.0.1:{}", fleet.port);
    let prom = harness::prometheus(
        &prometheus_config(&target, &repo().join("alerts")),
        dir.path(),
    )
    .await;
    let base = prom.url();
    let http = reqwest::Client::new();

    // Enough scrapes that rate() and increase() have two samples, and the
    // rules have been evaluated a few times.
    common::eventually(
        Duration::from_secs(60),
        "five scrapes of fleetpulse",
        || {
            let (http, base) = (&http, &base);
            async move {
                let r = query(http, base, r#"count_over_time(up{job="fleetpulse"}[1m])"#)
                    .await
                    .ok()?;
                let n: f64 = r.first()?["value"][1].as_str()?.parse().ok()?;
                let up = query(http, base, r#"up{job="fleetpulse"}"#).await.ok()?;
                (n >= 5.0 && up.first()?["value"][1] == "1").then_some(())
            }
        },
    )
    .await;

    // A restart loop while Prometheus watches: more boots in the hour than
    // the rule allows.
    for _ in 0..4 {
        let s = fleet
            .push(
                reqwest::Method::POST,
                "/api/v1/heartbeats/prod-box",
                "application/json",
                Some(harness::fleet::HEAD),
                r#"{"version":"1.8.0"}"#,
            )
            .await;
        assert_eq!(s, 200);
    }
    common::eventually(Duration::from_secs(30), "the boots scraped", || {
        let (http, base) = (&http, &base);
        async move {
            let r = query(
                http,
                base,
                r#"increase(fleet_heartbeats_total{box="prod-box"}[1m]) > 3"#,
            )
            .await
            .ok()?;
            (!r.is_empty()).then_some(())
        }
    })
    .await;
    // Two more rule evaluations (1 s apart): every group's last evaluation
    // is at least 2 s after the boots were seen.
    evaluated_after(
        &http,
        &base,
        chrono::Utc::now() + chrono::Duration::seconds(2),
    )
    .await;

    let mut problems = Vec::new();
    let mut evaluated = 0;
    // Every board with one stack picked, and the overview boards with All.
    let mut seen = std::collections::HashSet::new();
    for (one, many) in [("test-1", "test-1"), ("test-1", ".*")] {
        for q in dashboard_queries(one, many) {
            if !seen.insert((q.place.clone(), q.expr.clone())) {
                continue;
            }
            evaluated += 1;
            match query(&http, &base, &q.expr).await {
                Err(e) => problems.push(format!("{}: error {e}\n    {}", q.place, q.expr)),
                Ok(r) if r.is_empty() => {
                    problems.push(format!("{} ({many}): no data\n    {}", q.place, q.expr))
                }
                Ok(r) if q.place.ends_with(" variable \"stack\"") => {
                    // The stack picker lists every environment.
                    for stack in ["prod", "test-1", "other"] {
                        if !r.iter().any(|s| s["metric"]["stack"] == stack) {
                            problems.push(format!("{}: {stack} not offered", q.place));
                        }
                    }
                }
                Ok(r) if q.place.ends_with(" variable \"job\"") => {
                    // The job picker offers the job fleetpulse is scraped as.
                    if !r.iter().any(|s| s["metric"]["job"] == "fleetpulse") {
                        problems.push(format!("{}: job fleetpulse not offered", q.place));
                    }
                }
                Ok(_) => {}
            }
        }
    }
    let rules = rule_queries();
    assert!(rules.len() >= 30, "only {} rules found", rules.len());
    for q in &rules {
        evaluated += 1;
        if let Err(e) = query(&http, &base, &q.expr).await {
            problems.push(format!("{}: error {e}\n    {}", q.place, q.expr));
        }
    }

    // Prometheus itself evaluated every group with no error.
    let v: Value = http
        .get(format!("{base}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut loaded = 0;
    for g in v["data"]["groups"].as_array().expect("rule groups") {
        for r in g["rules"].as_array().expect("rules") {
            loaded += 1;
            if r["health"] != "ok" {
                problems.push(format!(
                    "rule {} health {} {}",
                    r["name"], r["health"], r["lastError"]
                ));
            }
        }
    }
    assert_eq!(loaded, rules.len(), "Prometheus loaded every rule");

    // The fed fleet is in a known state: some alerts must be firing.
    let alerts: Value = http
        .get(format!("{base}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let active: Vec<&str> = alerts["data"]["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    let source_down: Vec<&Value> = alerts["data"]["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["labels"]["alertname"] == "FleetSourceDown")
        .collect();
    for expected in [
        "FleetDriftDNSMismatch",
        "FleetRegistrationMissing",
        "FleetBoxNeverReported",
        "FleetBoxRestartLoop",
        "FleetTestSuiteFailing",
        "FleetMutantsMissed",
        "FleetHostDoctorFailing",
    ] {
        assert!(
            active.contains(&expected),
            "{expected} is not pending or firing; active: {active:?}"
        );
    }
    // A source run that overran its 2 s timeout on a loaded machine makes
    // FleetSourceDown pending for one evaluation; a broken source stays down.
    // So each one reported must be up again at its next runs.
    let down: Vec<&str> = source_down
        .iter()
        .filter_map(|a| a["labels"]["source"].as_str())
        .collect();
    if !down.is_empty() {
        eprintln!("FleetSourceDown pending for {down:?}: checking they recover");
        fleet.until_sources_up(&down).await;
    }
    for healthy in ["FleetExporterDown", "FleetExporterAbsent"] {
        assert!(
            !active.contains(&healthy),
            "{healthy} is active on a healthy exporter: {active:?}"
        );
    }

    assert!(
        problems.is_empty(),
        "{} of {evaluated} expressions failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Waits until Prometheus has evaluated every rule group after `after`.
async fn evaluated_after(http: &reqwest::Client, base: &str, after: chrono::DateTime<chrono::Utc>) {
    common::eventually(Duration::from_secs(30), "rule evaluations", || async move {
        let v: Value = http
            .get(format!("{base}/api/v1/rules"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let groups = v["data"]["groups"].as_array()?;
        let all_after = !groups.is_empty()
            && groups.iter().all(|g| {
                g["lastEvaluation"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t > after)
            });
        all_after.then_some(())
    })
    .await;
}

/// The alerts pending or firing on the Prometheus at `base`, as (alert,
/// stack) pairs.
async fn active_alerts(http: &reqwest::Client, base: &str) -> Option<BTreeSet<(String, String)>> {
    let v: Value = http
        .get(format!("{base}/api/v1/alerts"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some(
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .map(|a| {
                let l = &a["labels"];
                (
                    l["alertname"].as_str().unwrap_or_default().to_string(),
                    l["stack"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    )
}

/// The demo's data and the alert thresholds agree: Prometheus, scraping the
/// demo with the rules loaded, raises exactly the alerts the demo lists as
/// its deliberate faults (`demo::ALERTS`), no more and no fewer — but for
/// those its weather raises after a while (`demo::LATER_ALERTS`), which may
/// be there or not yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_raises_exactly_the_alerts_it_shows_on_purpose() {
    // Every source must stay up throughout: not beside a machine-wide load.
    let _alone = common::machine_alone().await;
    let state = tempfile::tempdir().unwrap();
    let demo = common::start_demo(state.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let target = demo.exporter.addr.to_string();
    let prom = harness::prometheus(
        &prometheus_config(&target, &repo().join("alerts")),
        dir.path(),
    )
    .await;
    let base = prom.url();
    let http = reqwest::Client::new();
    let set = |l: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        l.iter()
            .map(|(a, s)| (a.to_string(), s.to_string()))
            .collect()
    };
    let want = set(fleetpulse::demo::ALERTS);
    let later = set(fleetpulse::demo::LATER_ALERTS);
    // The demo's probes settle within seconds; scraped and evaluated every
    // second, every alert they warrant is pending soon after.
    // Each poll prints what it saw, so a timeout shows the difference.
    let got = common::eventually(
        Duration::from_secs(60),
        "the demo's alerts pending or firing (see the last line printed)",
        || {
            let (http, base, want, later) = (&http, &base, &want, &later);
            async move {
                let mut got = active_alerts(http, base).await?;
                got.retain(|a| !later.contains(a));
                if &got != want {
                    eprintln!(
                        "not yet: missing {:?}, not listed {:?}",
                        want.difference(&got).collect::<Vec<_>>(),
                        got.difference(want).collect::<Vec<_>>()
                    );
                }
                (&got == want).then_some(got)
            }
        },
    )
    .await;
    assert_eq!(got, want);
    // And it stays so: five more evaluations add nothing.
    evaluated_after(
        &http,
        &base,
        chrono::Utc::now() + chrono::Duration::seconds(5),
    )
    .await;
    let again = active_alerts(&http, &base).await.expect("alerts");
    let extra: Vec<_> = again
        .difference(&want)
        .filter(|a| !later.contains(a))
        .collect();
    assert!(extra.is_empty(), "alerts the demo does not list: {extra:?}");
}
