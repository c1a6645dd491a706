//! The metric catalogue against what refers to it: every metric and label
//! name in the dashboards, the alert rules and the docs exists in
//! the catalogue (`metrics::families()`), and the README's metrics reference
//! is the catalogue.
//!
//! After changing the catalogue, `FLEETPULSE_BLESS=1 cargo test --test
//! catalogue` rewrites the README's reference.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use fleetpulse::catalogue::{self, Kind};
use fleetpulse::metrics;

const BEGIN: &str = "<!-- BEGIN metrics reference: generated from the catalogue by `FLEETPULSE_BLESS=1 cargo test --test it catalogue::` -->";
const END: &str = "<!-- END metrics reference -->";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The reference table, one row per family in exposition order.
fn reference() -> String {
    let mut out = String::from("| Metric | Type | Labels | Meaning |\n|---|---|---|---|\n");
    for m in metrics::families() {
        let kind = match m.kind {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        };
        let labels = if m.labels.is_empty() {
            "—".to_string()
        } else {
            m.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {labels} | {} |\n",
            m.name,
            m.help.replace('|', "\\|")
        ));
    }
    out
}

#[test]
fn the_readme_metrics_reference_is_the_catalogue() {
    readme_section_is(
        BEGIN,
        END,
        &reference(),
        "metrics reference",
        "the catalogue",
    );
}

const ALERTS_BEGIN: &str = "<!-- BEGIN alerts table: generated from alerts/fleetpulse.rules.yml by `FLEETPULSE_BLESS=1 cargo test --test it catalogue::` -->";
const ALERTS_END: &str = "<!-- END alerts table -->";

/// The alerts table, one row per alerting rule in file order.
fn alerts_table() -> String {
    let text = std::fs::read_to_string(repo().join("alerts/fleetpulse.rules.yml")).unwrap();
    let rules: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let labels = regex::Regex::new(r"\{\{\s*\$labels\.(\w+)\s*\}\}").unwrap();
    let value = regex::Regex::new(r"\{\{\s*\$value[^}]*\}\}").unwrap();
    let mut out = String::from("| Alert | Severity | For | Says |\n|---|---|---|---|\n");
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            let summary = rule["annotations"]["summary"].as_str().unwrap_or_default();
            let summary = labels.replace_all(summary, "*$1*");
            let summary = value.replace_all(&summary, "…");
            out.push_str(&format!(
                "| [`{name}`](docs/runbook.md#{}) | {} | {} | {} |\n",
                name.to_lowercase(),
                rule["labels"]["severity"].as_str().unwrap_or("—"),
                rule["for"].as_str().unwrap_or("—"),
                summary.replace('|', "\\|")
            ));
        }
    }
    out
}

#[test]
fn the_readme_alerts_table_is_the_rules() {
    readme_section_is(
        ALERTS_BEGIN,
        ALERTS_END,
        &alerts_table(),
        "alerts table",
        "alerts/fleetpulse.rules.yml",
    );
}

/// The README between `begin` and `end` is `content`; with FLEETPULSE_BLESS
/// set it is rewritten to be.
fn readme_section_is(begin: &str, end: &str, content: &str, what: &str, from: &str) {
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (readme.find(begin), readme.find(end)) else {
        panic!("README.md has no {what} between\n{begin}\nand\n{end}");
    };
    let written = &readme[b + begin.len()..e];
    let expected = format!("\n{content}");
    if written == expected {
        return;
    }
    if std::env::var_os("FLEETPULSE_BLESS").is_some() {
        let updated = format!("{}{begin}{expected}{}", &readme[..b], &readme[e..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    let old: BTreeSet<&str> = written.lines().collect();
    let new: BTreeSet<&str> = expected.lines().collect();
    let gone: Vec<_> = old.difference(&new).collect();
    let missing: Vec<_> = new.difference(&old).collect();
    panic!(
        "README.md's {what} differs from {from} \
         (FLEETPULSE_BLESS=1 cargo test --test it catalogue:: rewrites it)\n\
         rows not in {from}: {gone:#?}\nrows missing: {missing:#?}"
    );
}

/// Labels every scraped series gains from Prometheus, plus those the
/// dashboards and rules make themselves.
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// Metric names (and the label names matched on them) in a PromQL
/// expression or in prose; problems go to `bad`.
fn check_names(place: &str, text: &str, bad: &mut Vec<String>) -> usize {
    // String literals hold label values, not names.
    let strings = regex::Regex::new(r#""(?:[^"\\]|\\.)*""#).unwrap();
    let code = strings.replace_all(text, "\"\"");
    let names =
        regex::Regex::new(r"\b((?:fleet|process)_[a-z0-9_]*[a-z0-9])\b(\s*\{([^}]*)\})?").unwrap();
    let matcher = regex::Regex::new(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)").unwrap();
    let mut seen = 0;
    for c in names.captures_iter(&code) {
        seen += 1;
        let name = &c[1];
        let Some(def) = metrics::find(name) else {
            bad.push(format!("{place}: {name} is not in the catalogue"));
            continue;
        };
        if let Some(m) = c.get(3) {
            for l in matcher.captures_iter(m.as_str()) {
                let l = &l[1];
                if !def.labels.contains(&l) && !TARGET_LABELS.contains(&l) {
                    bad.push(format!("{place}: {name} has no label {l}"));
                }
            }
        }
    }
    seen
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn every_metric_in_dashboards_rules_and_docs_is_in_the_catalogue() {
    let mut bad = Vec::new();
    let mut used = BTreeSet::new();
    let mut count = 0;
    let any_name = regex::Regex::new(r"\b(?:fleet|process)_[a-z0-9_]+").unwrap();

    for path in files(&repo().join("dashboards"), "json") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let d: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut exprs = Vec::new();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.push(t["expr"].as_str().unwrap_or_default().to_string());
            }
        }
        for v in d["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["query"]["query"].as_str().or(v["query"].as_str()) {
                exprs.push(q.to_string());
            }
        }
        for e in exprs {
            count += check_names(&name, &e, &mut bad);
            used.extend(any_name.find_iter(&e).map(|m| m.as_str().to_string()));
        }
    }
    for path in files(&repo().join("alerts"), "yml") {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for g in doc["groups"].as_sequence().unwrap() {
            for r in g["rules"].as_sequence().unwrap() {
                let id = r["alert"].as_str().or(r["record"].as_str()).unwrap();
                count += check_names(
                    &format!("{name} {id}"),
                    r["expr"].as_str().unwrap(),
                    &mut bad,
                );
            }
        }
    }
    // Prose: the README, the runbook and the other docs name real metrics.
    let mut docs = vec![repo().join("README.md"), repo().join("ARCHITECTURE.md")];
    docs.extend(files(&repo().join("docs"), "md"));
    for path in docs {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.strip_prefix(repo()).unwrap().display().to_string();
        count += check_names(&name, &text, &mut bad);
    }

    assert!(count > 100, "only {count} metric references found");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // And the boards show every family the exporter has, but the exporter's
    // own build info.
    let unshown: Vec<_> = metrics::families()
        .map(|m| m.name)
        .filter(|n| !used.contains(*n) && *n != catalogue::BUILD_INFO.name)
        .collect();
    assert!(unshown.is_empty(), "no dashboard shows {unshown:?}");
}
