//! The demo's weather, watched through the history it leaves: within two
//! minutes of start test-1's CI run finishes and the queued one takes the
//! slot, its commit is deployed through test-1 (each service red while it
//! restarts, then green), and the terminal board shows the slots and drift.

use crate::common;

use std::time::{Duration, Instant};

use fleetpulse::demo::peers::{run_commit, TEST1_FIRST};
use fleetpulse::demo::weather::{FIRST_HANDOVER, HANDOVER_EVERY};
use serde_json::Value;

/// test-1's events, oldest first.
async fn events(base: &str) -> Vec<Value> {
    let (status, body) =
        common::get(&format!("{base}/api/v1/events?stack=test-1&limit=1000")).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut events = v["events"].as_array().cloned().unwrap_or_default();
    events.reverse();
    events
}

fn changes<'a>(events: &'a [Value], kind: &str, subject: &str) -> Vec<(Option<&'a str>, &'a str)> {
    events
        .iter()
        .filter(|e| e["kind"] == kind && e["subject"] == subject)
        .map(|e| (e["from"].as_str(), e["to"].as_str().unwrap_or("")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_hands_a_slot_on_and_deploys_its_commit_within_two_minutes() {
    assert!(FIRST_HANDOVER < Duration::from_secs(120) && HANDOVER_EVERY >= Duration::from_secs(60));
    // Deadlines of seconds: not beside a machine-wide load.
    let _alone = common::machine_alone().await;
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let demo = common::start_demo(dir.path()).await;
    let base = demo.exporter.base_url();
    let services: Vec<&str> = demo
        .services
        .iter()
        .filter(|s| s.stack == "test-1")
        .map(|s| s.name)
        .collect();
    let holder = TEST1_FIRST.to_string();
    let commit = run_commit(TEST1_FIRST)[..7].to_string();

    // Every test-1 service on the new commit and green again, and the slot
    // with its new holder: the whole of one handover.
    let done = |events: &[Value]| {
        changes(events, "slot", "slot")
            .iter()
            .any(|(_, to)| *to == holder)
            && services.iter().all(|s| {
                changes(events, "deploy", s).last().map(|c| c.1) == Some(commit.as_str())
                    && changes(events, "health", s).last().map(|c| c.1) != Some("red")
            })
    };
    let events = loop {
        let events = events(&base).await;
        if done(&events) {
            break events;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no handover and deploy in two minutes; test-1's events:\n{}",
            serde_json::to_string_pretty(&events).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // The slot went from the first run straight to the one queued behind it.
    let slot = changes(&events, "slot", "slot");
    let previous = (TEST1_FIRST - 1).to_string();
    assert!(
        slot.contains(&(Some(previous.as_str()), holder.as_str())),
        "{slot:?}"
    );
    for s in &services {
        // Each service was deployed from main's head to the run's commit…
        assert!(
            changes(&events, "deploy", s)
                .contains(&(Some(fleetpulse::demo::DEMO_COMMIT), commit.as_str())),
            "{s}: {:?}",
            changes(&events, "deploy", s)
        );
        // …and was seen red while it restarted, then came back.
        let health = changes(&events, "health", s);
        let red = health.iter().position(|(_, to)| *to == "red");
        assert!(
            red.is_some_and(|i| health[i + 1..].iter().any(|(from, _)| *from == Some("red"))),
            "{s} never seen red and back: {health:?}"
        );
    }

    // The terminal board shows the slots (holder, since, queue) and drift.
    let fleet = fleetpulse::status_cli::fetch(&base, &Default::default())
        .await
        .unwrap();
    let table = fleetpulse::status_cli::render_table(&fleet, false);
    for line in [
        format!("test-1  integration “integration on test-slot-1” on feature/run-{holder} (in_progress)"),
        "5 queued".to_string(),
        "test-3  free".to_string(),
        "test-2  degraded  oidc_issuer_mismatch".to_string(),
        "test-1  degraded  dns_mismatch".to_string(),
    ] {
        assert!(table.contains(&line), "{line:?} missing from\n{table}");
    }
    demo.exporter.shutdown().await.unwrap();
}
