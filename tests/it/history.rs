//! History, end to end: a simulated service is driven through a scripted
//! schedule (three outages of known start and length, two deploys), with
//! `fleetpulse serve` SIGKILLed and restarted in the middle. The recorded
//! transitions, the `since` of the final state and the availability equal
//! the schedule within one probe interval, and nothing recorded before the
//! kill is lost or recorded twice.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fleetpulse::simfleet::{Authority, Behaviour, SimService};
use serde_json::Value;

use crate::common::{eventually, sample, Process};

const BIN: &str = env!("CARGO_BIN_EXE_fleetpulse");
/// The healthz probe interval, seconds.
const INTERVAL: f64 = 1.0;
/// How late a transition may be recorded: one probe interval, plus the
/// probe's own time and the historian's turn.
const LATE: f64 = INTERVAL + 0.75;

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn start(config: &Path, port: u16) -> Process {
    let child = Command::new(BIN)
        .args(["--log.level", "warn", "serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    Process::adopt(child, port)
}

async fn get_json(url: &str) -> Option<Value> {
    let r = reqwest::get(url).await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// The health events of `web`, oldest first.
async fn health_events(base: &str) -> Vec<Value> {
    let v = get_json(&format!(
        "{base}/api/v1/events?subject=web&kind=health&limit=1000"
    ))
    .await
    .expect("events");
    let mut e = v["events"].as_array().unwrap().clone();
    e.reverse();
    e
}

/// Waits until `web` has been recorded as `state` (its newest health event).
async fn recorded(base: &str, state: &str) {
    let base = base.to_string();
    eventually(
        Duration::from_secs(20),
        &format!("web recorded {state}"),
        || {
            let base = base.clone();
            async move {
                let v = get_json(&format!(
                    "{base}/api/v1/events?subject=web&kind=health&limit=1"
                ))
                .await?;
                (v["events"][0]["to"] == state).then_some(())
            }
        },
    )
    .await;
}

/// Waits until `web`'s newest deploy is to `commit`.
async fn deployed(base: &str, commit: &str) {
    let base = base.to_string();
    eventually(
        Duration::from_secs(20),
        &format!("web deployed {commit}"),
        || {
            let base = base.clone();
            async move {
                let v = get_json(&format!(
                    "{base}/api/v1/events?subject=web&kind=deploy&limit=1"
                ))
                .await?;
                (v["events"][0]["to"] == commit).then_some(())
            }
        },
    )
    .await;
}

async fn ready(base: &str) {
    let url = format!("{base}/healthz");
    eventually(Duration::from_secs(30), "fleetpulse serving", || {
        let url = url.clone();
        async move {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status() == 200)
                .map(|_| ())
        }
    })
    .await;
}

fn healthy(commit: &str) -> Behaviour {
    Behaviour::Healthy {
        commit: commit.into(),
    }
}

/// A simulated service `web` (healthy, commit aaaaaaa) behind a fresh CA,
/// and a config that probes it every second with history kept: the
/// service, the config's directory and path, and the exporter's port.
async fn one_service() -> (SimService, tempfile::TempDir, std::path::PathBuf, u16) {
    let ca = Authority::new(30).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.root_pem()).unwrap();
    let service = SimService::start(ca.issue(&["localhost"], 30).unwrap(), healthy("aaaaaaa"))
        .await
        .unwrap();
    let port = crate::common::free_port();
    let config = dir.path().join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}
state_dir: {state}
sources:
  healthz:
    interval: 1s
    timeout: 1s
  tls:
    ca_file: {ca}
environments:
  - name: other
    services:
      - name: web
        healthz: https://localhost:{svc}/healthz
",
            state = dir.path().join("state").display(),
            ca = ca_file.display(),
            svc = service.port(),
        ),
    )
    .unwrap();
    (service, dir, config, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_since_and_availability_follow_a_scripted_schedule_across_a_sigkill() {
    let (service, _dir, config, port) = one_service().await;
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = start(&config, port);
    ready(&base).await;
    recorded(&base, "green").await;
    let first_seen = health_events(&base).await[0]["at"].as_f64().unwrap();

    // The schedule: (when the behaviour changed, the state it brings).
    let mut schedule: Vec<(f64, &str)> = Vec::new();
    fn outage(service: &SimService, bad: Behaviour, good: Behaviour) -> (f64, Behaviour) {
        let t = now();
        service.set(bad);
        (t, good)
    }

    // Outage 1: 503s for about 4 s.
    let (t, good) = outage(&service, Behaviour::Status(503), healthy("aaaaaaa"));
    schedule.push((t, "red"));
    recorded(&base, "red").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = now();
    service.set(good);
    schedule.push((t, "green"));
    recorded(&base, "green").await;

    // Deploy 1.
    let d1 = now();
    service.set(healthy("bbbbbbb"));
    deployed(&base, "bbbbbbb").await;

    // Outage 2: connections closed.
    let (t, good) = outage(&service, Behaviour::Down, healthy("bbbbbbb"));
    schedule.push((t, "red"));
    recorded(&base, "red").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = now();
    service.set(good);
    schedule.push((t, "green"));
    recorded(&base, "green").await;

    // SIGKILL in the middle, and a restart on the same store.
    let before_kill = get_json(&format!("{base}/api/v1/events?limit=1000"))
        .await
        .unwrap();
    serve.signal("KILL");
    assert!(serve.wait_exit(Duration::from_secs(10)), "killed");
    let mut serve = start(&config, port);
    ready(&base).await;
    let after_restart = get_json(&format!("{base}/api/v1/events?limit=1000"))
        .await
        .unwrap();
    let ids = |v: &Value| -> Vec<i64> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect()
    };
    let (old, new) = (ids(&before_kill), ids(&after_restart));
    assert!(
        old.iter().all(|i| new.contains(i)),
        "every event recorded before the kill is still there"
    );

    // Outage 3, after the restart: 500s.
    let (t, good) = outage(&service, Behaviour::Status(500), healthy("bbbbbbb"));
    schedule.push((t, "red"));
    recorded(&base, "red").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = now();
    service.set(good);
    schedule.push((t, "green"));
    recorded(&base, "green").await;

    // Deploy 2.
    let d2 = now();
    service.set(healthy("ccccccc"));
    deployed(&base, "ccccccc").await;

    // The transitions: first seen green, then exactly the schedule's, each
    // recorded no earlier than it happened and at most one interval late.
    let events = health_events(&base).await;
    assert_eq!(events.len(), 1 + schedule.len(), "{events:#?}");
    assert!(
        events[0]["from"].is_null(),
        "one first sighting, not one per start"
    );
    for (e, (t, state)) in events[1..].iter().zip(&schedule) {
        let at = e["at"].as_f64().unwrap();
        assert_eq!(e["to"], *state, "{e}");
        assert!(
            at >= *t - 0.05 && at <= *t + LATE,
            "{state} at {t:.2} recorded at {at:.2} ({:+.2} s)",
            at - t
        );
    }
    let deploys = get_json(&format!("{base}/api/v1/events?subject=web&kind=deploy"))
        .await
        .unwrap();
    let deploys: Vec<&Value> = deploys["events"].as_array().unwrap().iter().rev().collect();
    assert_eq!(
        deploys.len(),
        3,
        "first seen, then two deploys: {deploys:#?}"
    );
    for (e, (t, from, to)) in deploys[1..]
        .iter()
        .zip([(d1, "aaaaaaa", "bbbbbbb"), (d2, "bbbbbbb", "ccccccc")])
    {
        let at = e["at"].as_f64().unwrap();
        assert_eq!(
            (e["from"].as_str(), e["to"].as_str()),
            (Some(from), Some(to))
        );
        assert!(
            at >= t - 0.05 && at <= t + LATE,
            "deploy at {t:.2} recorded at {at:.2}"
        );
    }

    // `since`: the last transition, in the JSON and in /metrics.
    let last = events.last().unwrap()["at"].as_f64().unwrap();
    let fleet = get_json(&format!("{base}/api/v1/fleet")).await.unwrap();
    let web = &fleet["environments"][0]["services"][0];
    assert_eq!(web["since"].as_f64(), Some(last), "{web}");
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let since = sample(
        &metrics,
        r#"fleet_service_health_since_timestamp_seconds{stack="other",component="web"}"#,
    )
    .unwrap();
    assert!((since - last).abs() < 1e-3, "{since} vs {last}");
    assert_eq!(
        sample(
            &metrics,
            r#"fleet_service_health_changes_total{stack="other",component="web"}"#
        ),
        Some(schedule.len() as f64),
        "changes counted across the restart"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"fleet_service_commit_changes_total{stack="other",component="web"}"#
        ),
        Some(2.0)
    );

    // Availability: red for the three outages as scheduled, over the time
    // known since the first sighting; each outage edge may be off by one
    // interval.
    let read_at = fleet["read_at"].as_f64().unwrap();
    let known = read_at - first_seen;
    let red: f64 = schedule.chunks(2).map(|p| p[1].0 - p[0].0).sum();
    let want = 1.0 - red / known;
    let got = web["availability"]["24h"].as_f64().unwrap();
    let slack = schedule.len() as f64 * LATE / known;
    assert!(
        (got - want).abs() <= slack,
        "availability {got:.4}, schedule says {want:.4} (± {slack:.4})"
    );
    assert_eq!(
        web["availability"]["30d"].as_f64(),
        Some(got),
        "same known window"
    );
    // The strip's last hour holds the outages: red.
    assert_eq!(web["strip"].as_array().unwrap().last().unwrap(), "red");

    // The page says since when.
    let page = reqwest::get(format!("{base}/board"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("green for "), "page shows since");
    assert!(page.contains("class=\"strip\""), "page shows the strip");
    assert!(
        page.contains("web deployed ccccccc (was bbbbbbb)"),
        "recent changes"
    );
    serve.stop();
}

/// The wall clock jumps an hour back, then a day forward, under a running
/// `fleetpulse serve` (libfaketime sets the clock it reads; its timers run
/// on the monotonic clock, untouched): the transitions are recorded in
/// order, every availability figure stays a share, no age or duration is
/// negative on the page, the `since` of each state is no later than the
/// clock, and the sources stay up and fresh on the clock as it now reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_jumping_back_and_forward_leaves_every_figure_sane() {
    let faketime = crate::common::libfaketime();
    let (service, dir, config, port) = one_service().await;
    let clock = dir.path().join("clock");
    std::fs::write(&clock, "+0\n").unwrap();
    let child = Command::new(BIN)
        .args(["--log.level", "warn", "serve", "--config"])
        .arg(&config)
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME_TIMESTAMP_FILE", &clock)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _serve = Process::adopt(child, port);
    let base = format!("http://127.0.0.1:{port}");
    ready(&base).await;
    recorded(&base, "green").await;

    // Every figure the exporter shows, checked against its own clock.
    let sane = |when: &'static str, latest: f64| {
        let base = base.clone();
        async move {
            let fleet = get_json(&format!("{base}/api/v1/fleet"))
                .await
                .expect("fleet");
            let read_at = fleet["read_at"].as_f64().expect("read_at");
            let web = &fleet["environments"][0]["services"][0];
            for w in ["24h", "30d"] {
                if let Some(a) = web["availability"][w].as_f64() {
                    assert!((0.0..=1.0).contains(&a), "{when}: availability {w} {a}");
                }
            }
            // A change is never dated before the one recorded before it:
            // after the clock is set back, no later than the latest time
            // the clock read.
            let since = web["since"].as_f64().expect("since");
            let latest = read_at.max(latest);
            assert!(
                since <= latest + 1.0,
                "{when}: since {since} after the clock {latest}"
            );
            let page = reqwest::get(&base).await.unwrap().text().await.unwrap();
            if let Some(bad) = negative_duration(&page) {
                panic!("{when}: a negative duration on the page: {bad:?}");
            }
            let metrics = reqwest::get(format!("{base}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let up = sample(&metrics, r#"fleet_source_up{source="healthz"}"#);
            assert_eq!(up, Some(1.0), "{when}: healthz source up");
            let last = sample(
                &metrics,
                r#"fleet_source_last_success_timestamp_seconds{source="healthz"}"#,
            )
            .expect("last success");
            assert!(
                (read_at - last).abs() < 30.0,
                "{when}: the last success {last} is not near the clock {read_at}"
            );
            let since_metric = sample(
                &metrics,
                r#"fleet_service_health_since_timestamp_seconds{stack="other",component="web"}"#,
            )
            .expect("since metric");
            assert!(
                since_metric <= latest + 1.0,
                "{when}: since {since_metric}, clock {latest}"
            );
            read_at
        }
    };
    let outage = || {
        let (base, service) = (base.clone(), &service);
        async move {
            service.set(Behaviour::Status(503));
            recorded(&base, "red").await;
            service.set(healthy("aaaaaaa"));
            recorded(&base, "green").await;
        }
    };
    outage().await;
    let t0 = sane("before the jumps", 0.0).await;

    // An hour back.
    std::fs::write(&clock, "-3600\n").unwrap();
    outage().await;
    let t1 = sane("an hour back", t0).await;
    assert!(
        t1 < t0 - 3000.0,
        "the exporter's clock went back: {t0} then {t1}"
    );

    // A day forward.
    std::fs::write(&clock, "+1d\n").unwrap();
    outage().await;
    let t2 = sane("a day forward", t0).await;
    assert!(
        t2 > t0 + 80_000.0,
        "the exporter's clock went forward: {t0} then {t2}"
    );

    // The transitions are listed in the order they happened, whatever the
    // clock said: a first sighting, then red and green three times over.
    let states: Vec<String> = health_events(&base)
        .await
        .iter()
        .map(|e| e["to"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states,
        ["green", "red", "green", "red", "green", "red", "green"],
        "the recorded health transitions"
    );
}

/// A duration written with a minus sign ("-3 minutes"), if the page has one.
fn negative_duration(page: &str) -> Option<String> {
    for unit in [" second", " minute", " hour", " day"] {
        for (i, _) in page.match_indices(unit) {
            let digits = page[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits > 0 && page[..i - digits].ends_with('-') {
                let from = i - digits - 1;
                return Some(page[from..(i + unit.len()).min(page.len())].to_string());
            }
        }
    }
    None
}

fn events_cli(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("events")
        .args(args)
        .env_remove("FLEETPULSE_URL")
        .output()
        .unwrap()
}

/// `fleetpulse events` against a store holding 1,500 more events than one
/// page of the API (1,000) holds: it follows the server's cursor to the
/// limit asked for, prints newest first, narrows by kind, takes the fleet
/// JSON's URL as the base, and a bad filter or URL exits 2 with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_command_follows_pages_to_its_limit_and_names_what_is_wrong() {
    let (_service, dir, config, port) = one_service().await;
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = start(&config, port);
    ready(&base).await;
    recorded(&base, "green").await;
    serve.stop();
    // 1,500 reboots of a box over the last hours, written to the store the
    // server reads back at start.
    let t0 = now() - 2.0 * 3600.0;
    let mut boots: Vec<fleetpulse::history::Event> = (0..1500u32)
        .map(|i| fleetpulse::history::Event {
            id: 0,
            at: t0 + f64::from(i),
            stack: "other".into(),
            kind: fleetpulse::history::Kind::Boot,
            subject: "box-1".into(),
            from: None,
            to: Some(format!("{i}")),
            detail: None,
            changes: u64::from(i) + 1,
        })
        .collect();
    let db = rusqlite::Connection::open(dir.path().join("state").join("fleetpulse.db")).unwrap();
    fleetpulse::history::store::insert(&db, &mut boots).unwrap();
    drop(db);
    let mut serve = start(&config, port);
    ready(&base).await;

    let json = |out: &std::process::Output| -> Vec<Value> {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Past the first page, to exactly the limit, newest first, no repeats.
    let many = json(&events_cli(&[
        "--url", &base, "--since", "0", "--limit", "1200", "--json",
    ]));
    assert_eq!(many.len(), 1200);
    let keys: Vec<(f64, i64)> = many
        .iter()
        .map(|e| (e["at"].as_f64().unwrap(), e["id"].as_i64().unwrap()))
        .collect();
    assert!(
        keys.windows(2).all(|w| w[0] > w[1]),
        "newest first, once each"
    );
    // Everything there is, when the limit is above it.
    let all = json(&events_cli(&[
        "--url", &base, "--since", "0", "--limit", "5000", "--json",
    ]));
    let boots_served = all.iter().filter(|e| e["kind"] == "boot").count();
    assert_eq!(boots_served, 1500);
    assert!(all
        .iter()
        .any(|e| e["kind"] == "health" && e["subject"] == "web"));
    // One kind, through the fleet JSON's URL; as a timeline.
    let fleet_url = format!("{base}/api/v1/fleet");
    let health = events_cli(&["--url", &fleet_url, "--since", "0", "--kind", "health"]);
    let text = String::from_utf8_lossy(&health.stdout);
    assert!(health.status.success(), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TIME (UTC)"), "{text}");
    assert_eq!(lines.len(), 2, "a header and web's first sighting: {text}");
    assert!(lines[1].contains("web: first seen green"), "{text}");
    let three = events_cli(&[
        "--url", &base, "--since", "0", "--kind", "boot", "--limit", "3",
    ]);
    let text = String::from_utf8_lossy(&three.stdout);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert_eq!(text.matches("box box-1 booted").count(), 3, "{text}");

    // What is wrong, named.
    let bad = events_cli(&["--url", &base, "--kind", "bogus"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("kind: \"bogus\" is not one of"), "{err}");
    let bad = events_cli(&["--url", "ftp://127.0.0.1/", "--since", "0"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ftp://127.0.0.1/"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let gone = events_cli(&["--url", &format!("{base}/nowhere/"), "--since", "0"]);
    assert_eq!(gone.status.code(), Some(2));
    serve.stop();
}

/// Events older than `history.retention` are pruned while the exporter
/// runs (at start, then a few times per period); newer ones are kept.
#[tokio::test]
async fn events_past_the_retention_are_pruned_and_newer_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let yaml = format!(
        "state_dir: {}\nhistory:\n  retention: 1h\nenvironments:\n  - name: prod\n",
        state.display()
    );
    let config = std::sync::Arc::new(fleetpulse::config::Config::parse(&yaml, "t.yaml").unwrap());
    // The store's tables, then boots: a box's two hours and ninety
    // minutes ago (the later one is its latest, kept whatever its age), and
    // another's twenty and ten minutes ago.
    let running = crate::common::start_exporter(config.clone()).await;
    running.shutdown().await.unwrap();
    let boot = |subject: &str, at: f64| fleetpulse::history::Event {
        id: 0,
        at,
        stack: "prod".into(),
        kind: fleetpulse::history::Kind::Boot,
        subject: subject.into(),
        from: None,
        to: Some("1".into()),
        detail: None,
        changes: 1,
    };
    let db_file = state.join("fleetpulse.db");
    let db = rusqlite::Connection::open(&db_file).unwrap();
    let mut boots = vec![
        boot("old-box", now() - 7200.0),
        boot("old-box", now() - 5400.0),
        boot("new-box", now() - 1200.0),
        boot("new-box", now() - 600.0),
    ];
    fleetpulse::history::store::insert(&db, &mut boots).unwrap();
    drop(db);

    let running = crate::common::start_exporter(config).await;
    let boots = || -> Vec<(String, i64)> {
        let db = rusqlite::Connection::open(&db_file).unwrap();
        let mut st = db
            .prepare("SELECT subject, CAST(? - at AS INTEGER) / 60 FROM events WHERE kind = 'boot' ORDER BY at")
            .unwrap();
        let rows = st
            .query_map([now()], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    let left = eventually(Duration::from_secs(10), "the old boot pruned", || {
        let left = boots();
        async move { (!left.iter().any(|b| b.1 >= 120)).then_some(left) }
    })
    .await;
    assert_eq!(
        left,
        [
            ("old-box".to_string(), 90),
            ("new-box".to_string(), 20),
            ("new-box".to_string(), 10)
        ],
        "(subject, minutes ago)"
    );
    running.shutdown().await.unwrap();
}
