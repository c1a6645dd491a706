//! The alert rules use the thresholds the views use (`src/thresholds.rs`),
//! so the page and Alertmanager agree on what is a fault.

use fleetpulse::thresholds::{
    CERT_CRITICAL_DAYS, CERT_WARN_DAYS, RESTART_LOOP_BOOTS, RESTART_WINDOW_SECONDS,
};

/// Each alert's expression, by name.
fn rule_exprs() -> std::collections::BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/fleetpulse.rules.yml");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for group in doc["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            if let (Some(name), Some(expr)) = (rule["alert"].as_str(), rule["expr"].as_str()) {
                out.insert(
                    name.to_string(),
                    expr.split_whitespace().collect::<Vec<_>>().join(" "),
                );
            }
        }
    }
    out
}

fn expr_of<'a>(rules: &'a std::collections::BTreeMap<String, String>, alert: &str) -> &'a str {
    rules
        .get(alert)
        .unwrap_or_else(|| panic!("alerts/fleetpulse.rules.yml has no {alert}"))
}

#[test]
fn certificate_alerts_use_the_views_day_thresholds() {
    let rules = rule_exprs();
    let warn = format!("< {CERT_WARN_DAYS} * 86400");
    for alert in ["FleetTLSCertExpiringSoon", "FleetTLSChainCertExpiringSoon"] {
        let expr = expr_of(&rules, alert);
        assert!(
            expr.contains(&warn),
            "{alert}: `{expr}` does not use `{warn}`"
        );
    }
    let critical = format!("< {CERT_CRITICAL_DAYS} * 86400");
    let expr = expr_of(&rules, "FleetTLSCertExpiringCritical");
    assert!(
        expr.contains(&critical),
        "`{expr}` does not use `{critical}`"
    );
}

#[test]
fn restart_loop_alert_uses_the_views_boot_count_and_window() {
    let rules = rule_exprs();
    let window = match RESTART_WINDOW_SECONDS as u64 {
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{s}s"),
    };
    let want = format!(
        "max without (instance) (increase(fleet_heartbeats_total[{window}]) > {RESTART_LOOP_BOOTS})"
    );
    let expr = expr_of(&rules, "FleetBoxRestartLoop");
    assert_eq!(expr, want);
}
