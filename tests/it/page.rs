//! The status page and the fleet JSON rendered from fixed snapshots: healthy,
//! degraded, empty, a source down; and public mode leaking nothing.

use crate::fixtures;

use std::sync::Arc;

use fixtures::*;
use fleetpulse::pulse::{Heartbeat, TestRun, TestRunFormat};
use fleetpulse::views::json::State;
use fleetpulse::views::page;

fn render(s: &fleetpulse::snapshot::Snapshot) -> (String, String) {
    let model = board_model(s);
    let body = serde_json::to_string(&model).unwrap();
    (page::render(&model), body)
}

#[test]
fn healthy_fleet_lists_every_environment_and_service_green() {
    let (html, body) = render(&healthy(false));
    for stack in STACKS {
        assert!(html.contains(&format!("data-stack=\"{stack}\"")), "{stack}");
    }
    assert_eq!(html.matches("data-service=\"broker\"").count(), 2);
    assert!(html.contains("data-state=\"green\""));
    assert!(!html.contains("class=\"st st-red\""), "nothing is red");
    assert!(html.contains("60 days left"), "cert days left");
    // When the data was read, as text and as the refresh marker.
    assert!(html.contains("data read at <time>2026-11-23 12:00:00 UTC</time>"));
    assert!(html.contains(&format!("data-read-at=\"{NOW}\"")));
    // The footer leads to the metrics, the JSON and the documentation,
    // relative to wherever the page is served.
    let footer = &html[html.find("<footer").expect("a footer")..];
    for link in ["href=\"metrics\"", "href=\"api/v1/fleet\"", page::DOCS_URL] {
        assert!(footer.contains(link), "footer lacks {link}: {footer}");
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["state"], "green");
    assert_eq!(v["environments"][0]["services"][0]["state"], "green");
    assert_eq!(v["environments"][0]["tls"][0]["days_left"], 60);
    assert_eq!(
        v["environments"][0]["instances"][0]["instance_id"],
        INSTANCE_ID
    );
}

#[test]
fn old_heartbeat_reads_as_uptime_not_a_fault() {
    let (html, body) = render(&healthy(false));
    assert!(html.contains("up 12 days"), "heartbeat age in words");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["boxes"][0]["state"], "green");
    assert_eq!(v["boxes"][0]["status"], "reported");
}

#[test]
fn receipts_show_counts_when_and_commit_and_mutants_caught_vs_missed() {
    let (html, _) = render(&healthy(false));
    assert!(html.contains("57 passed"));
    assert!(html.contains("0 failed"));
    assert!(html.contains("2 skipped"));
    assert!(html.contains("3 hours ago"));
    assert!(html.contains("4f2c9e1"));
    assert!(html.contains("held by integration “Fix the signer retry” on fix-signer"));
    assert!(html.contains("2 queued"));
    assert!(html.contains("deployer balance 1.25 ETH"));
    assert!(html.contains("41 caught"));
    assert!(html.contains("2 missed"));
    // The page never claims full coverage.
    assert!(html.contains("not that every behaviour is covered"));
    assert!(!html.to_lowercase().contains("all behaviours"));
}

#[test]
fn degraded_fleet_shows_states_as_words_and_colours() {
    let (html, body) = render(&degraded(false));
    assert!(html.contains("<span class=\"st st-degraded\">degraded</span>"));
    assert!(html.contains("<span class=\"st st-red\">red</span>"));
    assert!(html.contains("data-state=\"red\""));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "red");
    assert_eq!(v["environments"][0]["state"], "green", "prod untouched");
    assert_eq!(v["environments"][1]["state"], "red");
}

#[test]
fn failed_test_run_and_restart_loop_turn_the_board_red() {
    let mut s = healthy(false);
    let mut p = (*s.pulse).clone();
    p.test_runs.insert(
        ("prod".into(), "signer".into()),
        Arc::new(TestRun {
            stack: "prod".into(),
            service: "signer".into(),
            passed: 10,
            failed: 1,
            errored: 2,
            skipped: 0,
            duration_seconds: None,
            started_at: None,
            received_at: NOW - 60.0,
            commit: None,
            format: TestRunFormat::Json,
        }),
    );
    p.heartbeats.insert(
        Arc::from("test-1-box"),
        Arc::new(Heartbeat {
            stack: "test-1".into(),
            box_name: "test-1-box".into(),
            timestamp: NOW - 60.0,
            count: 30,
            recent: (0..5).map(|i| NOW - 600.0 * f64::from(i)).collect(),
            commit: None,
            version: None,
            booted_at: None,
        }),
    );
    s.pulse = Arc::new(p);
    let model = board_model(&s);
    assert_eq!(model.state, State::Red);
    let html = page::render(&model);
    assert!(html.contains("3 failed"), "failed counts errors too");
    assert!(html.contains("restart loop: 5 boots in the last hour"));
}

#[test]
fn empty_fleet_says_so_without_claiming_health() {
    let (html, body) = render(&empty_fleet());
    assert!(html.contains("No environments are configured."));
    assert!(html.contains("No test run has been recorded yet."));
    assert!(html.contains("data-state=\"unknown\""));
    assert!(
        !html.contains("class=\"st st-green\""),
        "nothing known, nothing green"
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["state"], "unknown");
    assert_eq!(v["environments"], serde_json::json!([]));
}

#[test]
fn source_down_marks_its_data_unknown_and_the_source_down() {
    let (html, body) = render(&source_down(false));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["sources"][0]["source"], "healthz");
    assert_eq!(v["sources"][0]["state"], "red");
    assert_eq!(v["environments"][0]["services"][0]["state"], "unknown");
    assert_eq!(
        v["environments"][0]["services"][0]["reason"],
        "no /healthz reading yet"
    );
    assert!(html.contains("<span class=\"st st-red\">down</span>"));
    assert!(html.contains("10 minutes ago"), "last success age");
    assert!(html.contains("class=\"st st-unknown\""));
    assert!(html.contains("drifted"));
}

#[test]
fn public_mode_leaks_no_instance_id_ip_address_or_run_url() {
    for snapshot in [healthy, degraded, source_down] {
        // The fixture does plant every value: the private view shows them.
        let (html, body) = render(&snapshot(false));
        let private = format!("{html}{body}");
        for v in [
            INSTANCE_ID,
            INSTANCE_IP,
            EIP,
            ALLOCATION_ID,
            WALLET,
            RUN_URL,
        ] {
            assert!(private.contains(v), "fixture lacks {v}");
        }
        let (html, body) = render(&snapshot(true));
        let board = page::render_board(&board_model(&snapshot(true)));
        for out in [&html, &body, &board] {
            for v in INTERNAL_VALUES {
                assert!(!out.contains(v), "public output leaks {v}");
                assert!(!out.contains(&v.to_lowercase()), "public output leaks {v}");
            }
        }
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["public"], true);
        // What is not internal stays: names, states, commits, counts.
        assert!(html.contains("data-stack=\"prod\""));
        assert!(html.contains("4f2c9e1"));
        assert!(html.contains("57 passed"));
    }
    let (_, body) = render(&source_down(false));
    for v in [WALLET, RUN_URL, PRIVATE_IP] {
        assert!(body.contains(v), "fixture lacks {v}");
    }
}

#[test]
fn names_from_pushes_are_escaped() {
    let mut s = healthy(false);
    let mut p = (*s.pulse).clone();
    let evil = "<img src=x onerror=alert(1)>&\"'";
    p.test_runs.insert(
        ("".into(), evil.into()),
        Arc::new(TestRun {
            stack: String::new(),
            service: evil.into(),
            passed: 1,
            failed: 0,
            errored: 0,
            skipped: 0,
            duration_seconds: None,
            started_at: None,
            received_at: NOW,
            commit: Some("<script>x</script>".into()),
            format: TestRunFormat::Json,
        }),
    );
    s.pulse = Arc::new(p);
    let html = page::render(&board_model(&s));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<script>x"));
    // maud escapes what can open markup or close a (double-quoted) attribute.
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&amp;&quot;'"));
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
}

#[test]
fn page_loads_nothing_from_elsewhere_and_refreshes_by_script() {
    let html = page::render(&board_model(&healthy(false)));
    // The one absolute URL is the footer's link to the documentation: a
    // link the reader may follow, nothing the page loads.
    let rest = html.replace(&format!("href=\"{}\"", page::DOCS_URL), "");
    assert!(!rest.contains("http://") && !rest.contains("https://"));
    assert!(!html.contains("<link"), "no external stylesheet");
    assert!(!html.contains("src="), "no external script or image");
    assert!(html.contains("fetch('board'"));
    assert!(html.contains("setInterval(tick,5000)"));
    assert!(html.len() < 40_000, "small: {} bytes", html.len());
}

/// A history in which prod's broker went red an hour ago and came back ten
/// minutes later, was deployed, and its certificate (served at an address)
/// rotated.
fn with_history(public: bool) -> fleetpulse::snapshot::Snapshot {
    use fleetpulse::history::{number, Event, HistoryView, Kind};
    let mut s = healthy(public);
    let ev =
        |at: f64, kind: Kind, subject: &str, from: Option<&str>, to: &str, detail: Option<&str>| {
            Event {
                id: 0,
                at,
                stack: "prod".into(),
                kind,
                subject: subject.into(),
                from: from.map(Into::into),
                to: Some(to.into()),
                detail: detail.map(Into::into),
                changes: 0,
            }
        };
    let mut events = vec![
        ev(NOW - 7200.0, Kind::Health, "broker", None, "green", None),
        ev(
            NOW - 3600.0,
            Kind::Health,
            "broker",
            Some("green"),
            "red",
            Some("connection refused by 10.0.0.7:443"),
        ),
        ev(
            NOW - 3000.0,
            Kind::Health,
            "broker",
            Some("red"),
            "green",
            None,
        ),
        ev(
            NOW - 1200.0,
            Kind::Deploy,
            "broker",
            Some("4f2c9e1"),
            "9b1d0aa",
            None,
        ),
        ev(
            NOW - 600.0,
            Kind::CertRotation,
            "10.0.0.7:443",
            Some("2026-12-01T00:00:00Z"),
            "2027-03-01T00:00:00Z",
            None,
        ),
    ];
    let mut view = HistoryView {
        active: true,
        ..HistoryView::default()
    };
    number(&mut events, &view);
    view.apply(events.clone(), NOW);
    s.history = Arc::new(view);
    s
}

#[test]
fn the_page_says_since_when_draws_the_strip_and_lists_changes() {
    let (html, body) = render(&with_history(false));
    assert!(
        html.contains("green for 50 minutes, since 11:10 UTC"),
        "since"
    );
    assert!(html.contains("class=\"strip\""));
    // 24 hourly cells, the newest holding the red ten minutes.
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let broker = &v["environments"][0]["services"][0];
    assert_eq!(broker["name"], "broker");
    let strip: Vec<&str> = broker["strip"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert_eq!(strip.len(), 24);
    assert_eq!(strip[23], "red", "{strip:?}");
    assert_eq!(strip[22], "green");
    assert_eq!(strip[21], "unknown", "before it was first seen");
    // Red for 600 s of the 7200 s known.
    let day = broker["availability"]["24h"].as_f64().unwrap();
    assert!((day - (1.0 - 600.0 / 7200.0)).abs() < 1e-9, "{day}");
    assert!(
        html.contains("91.67% over 30 days · 91.67% over 24 hours"),
        "availability words"
    );
    assert!(html.contains("broker deployed 9b1d0aa (was 4f2c9e1)"));
    assert!(html.contains("broker: green → red (connection refused by 10.0.0.7:443)"));
    // A first sighting is not a change.
    assert!(!html.contains("first seen"));
}

#[test]
fn public_mode_hides_addresses_in_the_changes() {
    let (html, body) = render(&with_history(true));
    assert!(!html.contains("10.0.0.7"), "the page leaks an address");
    assert!(!body.contains("10.0.0.7"), "the JSON leaks an address");
    assert!(html.contains("broker: green → red (connection refused by [hidden]:443)"));
    assert!(html.contains("certificate of [hidden] rotated"));
}

/// The fleet JSON of a degraded fleet, of a public board with sources down
/// and drift, and of one with history, as recorded in tests/fixtures/fleet/:
/// every field the API promises. `FLEETPULSE_RECORD=1` writes the files
/// afresh (then read the diff).
#[test]
fn the_fleet_json_is_as_recorded() {
    for (snapshot, file) in [
        (degraded(false), "degraded.json"),
        (source_down(true), "source-down-public.json"),
        (with_history(false), "with-history.json"),
    ] {
        let json = serde_json::to_string_pretty(&board_model(&snapshot)).unwrap() + "\n";
        crate::common::assert_as_recorded(&format!("fleet/{file}"), &json);
    }
}
