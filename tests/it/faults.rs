//! The fault suite: a fully fed `fleetpulse serve` under a steady push load
//! and steady scrapes, while each peer in turn goes wrong and comes back —
//! a service hanging mid-handshake, one answering slowly, moto frozen, anvil
//! killed, GitHub answering 500s and then rate limits. Every scrape answers;
//! the affected source reports the fault and recovers; the others stay
//! fresh; no acknowledged push is lost, not even across a SIGKILL; open file
//! descriptors and memory stay bounded (read from /proc).

use crate::common;
use crate::harness;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetpulse::simfleet::Behaviour;
use harness::fleet::{FedFleet, HEAD, INGEST_TOKEN};
use harness::github::Mode;

/// What the background load saw.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    /// Heartbeats for prod-box answered 200.
    acked: AtomicU64,
    /// Heartbeats whose answer never came (may or may not be stored).
    unknown: AtomicU64,
    /// Heartbeats answered with anything but 200.
    refused: AtomicU64,
    scrapes: AtomicU64,
    failed_scrapes: AtomicU64,
    /// Slowest scrape, in milliseconds.
    slowest_ms: AtomicU64,
}

/// Heartbeats for prod-box every 20 ms, until told to stop.
async fn push_load(base: String, load: Arc<Load>) {
    let http = reqwest::Client::new();
    while !load.stop.load(Ordering::SeqCst) {
        let r = http
            .post(format!("{base}/api/v1/heartbeats/prod-box"))
            .bearer_auth(INGEST_TOKEN)
            .header("x-fleet-commit", HEAD)
            .header("content-type", "application/json")
            .body(r#"{"version":"1.8.0"}"#)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => load.acked.fetch_add(1, Ordering::SeqCst),
            Ok(_) => load.refused.fetch_add(1, Ordering::SeqCst),
            Err(_) => load.unknown.fetch_add(1, Ordering::SeqCst),
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A scrape every 250 ms; any that fails or takes over 2 s is counted.
async fn scrape_load(base: String, load: Arc<Load>) {
    let http = reqwest::Client::new();
    while !load.stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let ok = match http
            .get(format!("{base}/metrics"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => r.text().await.is_ok(),
            _ => false,
        };
        let ms = started.elapsed().as_millis() as u64;
        load.slowest_ms.fetch_max(ms, Ordering::SeqCst);
        load.scrapes.fetch_add(1, Ordering::SeqCst);
        if !ok {
            load.failed_scrapes.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The largest fd count and RSS seen by a sampler every 200 ms.
#[derive(Default)]
struct Peak {
    fds: AtomicU64,
    rss_kib: AtomicU64,
}

async fn sample_resources(pid: u32, peak: Arc<Peak>, stop: Arc<Load>) {
    while !stop.stop.load(Ordering::SeqCst) {
        let (fds, rss) = common::resources(pid);
        peak.fds.fetch_max(fds as u64, Ordering::SeqCst);
        peak.rss_kib.fetch_max(rss, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn value(body: &str, series: &str) -> Option<f64> {
    common::sample(body, series)
}

fn source_up(body: &str, source: &str) -> Option<f64> {
    value(body, &format!(r#"fleet_source_up{{source="{source}"}}"#))
}

fn last_success(body: &str, source: &str) -> f64 {
    value(
        body,
        &format!(r#"fleet_source_last_success_timestamp_seconds{{source="{source}"}}"#),
    )
    .unwrap_or(0.0)
}

/// Waits for `cond` on a scrape; returns that scrape.
async fn until(fleet: &FedFleet, what: &str, cond: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        if let Some(b) = fleet.try_metrics().await {
            if cond(&b) {
                return b;
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            panic!("timed out after 30 s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every source but `affected` runs successfully after `since` (Unix time)
/// while the fault lasts: each gets a few of its intervals to do so.
/// The last error the fleet JSON shows for `source`.
async fn source_error(fleet: &FedFleet, source: &str) -> String {
    let url = format!("{}/api/v1/fleet", fleet.base());
    let (_, body) = common::get(&url).await;
    let v: serde_json::Value = serde_json::from_str(&body).expect("fleet JSON");
    v["sources"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["source"] == source))
        .and_then(|x| x["last_error"].as_str())
        .unwrap_or("")
        .to_string()
}

async fn others_fresh(fleet: &FedFleet, affected: &[&str], since: f64) {
    let others: Vec<&str> = harness::fleet::SOURCES
        .into_iter()
        .filter(|s| !affected.contains(s))
        .collect();
    let started = Instant::now();
    loop {
        let b = fleet.try_metrics().await.expect("scrape during a fault");
        let stale: Vec<&str> = others
            .iter()
            .copied()
            .filter(|s| source_up(&b, s) != Some(1.0) || last_success(&b, s) <= since)
            .collect();
        if stale.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{stale:?} not fresh while {affected:?} is faulty"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const WEB_RED: &str = r#"fleet_service_health{stack="other",component="web",state="red"}"#;
const WEB_TLS: &str = r#"fleet_tls_up{stack="other",endpoint="localhost:PORT"}"#;
const HEARTBEATS: &str = r#"fleet_heartbeats_total{stack="prod",box="prod-box"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_peer_fails_and_recovers_under_load_without_losing_a_push() {
    // A load of its own: not beside the tests that need the machine quiet.
    let _alone = common::machine_alone().await;
    let mut fleet = FedFleet::start().await;
    fleet.push_everything().await;
    let tls_series = WEB_TLS.replace("PORT", &fleet.other.port().to_string());
    let body = until(&fleet, "the web service green and its TLS up", |b| {
        value(b, WEB_RED) == Some(0.0) && value(b, &tls_series) == Some(1.0)
    })
    .await;
    let heartbeats_before = value(&body, HEARTBEATS).expect("prod-box heartbeats");

    let load = Arc::new(Load::default());
    let peak = Arc::new(Peak::default());
    let pusher = tokio::spawn(push_load(fleet.base(), load.clone()));
    let scraper = tokio::spawn(scrape_load(fleet.base(), load.clone()));
    // Let the load settle before taking the baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (base_fds, base_rss) = common::resources(fleet.pid());
    let sampler = tokio::spawn(sample_resources(fleet.pid(), peak.clone(), load.clone()));

    // 1. The service hangs: it accepts connections and never answers, not
    //    even the TLS handshake. The probes time out; the service is red.
    let t = fleetpulse::snapshot::now_unix();
    fleet.other.set(Behaviour::Hang);
    until(&fleet, "the hanging service red and TLS down", |b| {
        value(b, WEB_RED) == Some(1.0) && value(b, &tls_series) == Some(0.0)
    })
    .await;
    others_fresh(&fleet, &["tls"], t).await;
    fleet.other.set(Behaviour::Healthy {
        commit: "0123456789abcdef".into(),
    });
    until(&fleet, "the service green again", |b| {
        value(b, WEB_RED) == Some(0.0) && value(b, &tls_series) == Some(1.0)
    })
    .await;

    // 2. The service answers, slowly: longer than the probe timeout.
    let t = fleetpulse::snapshot::now_unix();
    fleet.other.set(Behaviour::Slow(Duration::from_secs(5)));
    until(&fleet, "the slow service red", |b| {
        value(b, WEB_RED) == Some(1.0)
    })
    .await;
    others_fresh(&fleet, &[], t).await;
    fleet.other.set(Behaviour::Healthy {
        commit: "0123456789abcdef".into(),
    });
    until(&fleet, "the service green again", |b| {
        value(b, WEB_RED) == Some(0.0)
    })
    .await;

    // 3. moto frozen (SIGSTOP): connections open, nothing answers.
    let t = fleetpulse::snapshot::now_unix();
    fleet.moto.signal("STOP");
    until(&fleet, "aws and dns down", |b| {
        source_up(b, "aws") == Some(0.0) && source_up(b, "dns") == Some(0.0)
    })
    .await;
    others_fresh(&fleet, &["aws", "dns"], t).await;
    fleet.moto.signal("CONT");
    until(&fleet, "aws and dns back", |b| {
        source_up(b, "aws") == Some(1.0) && source_up(b, "dns") == Some(1.0)
    })
    .await;

    // 4. anvil killed, then a fresh one on the same port.
    let t = fleetpulse::snapshot::now_unix();
    let port = fleet.anvil.port;
    fleet.anvil.stop();
    until(&fleet, "chain down", |b| source_up(b, "chain") == Some(0.0)).await;
    others_fresh(&fleet, &["chain"], t).await;
    fleet.anvil = harness::anvil(port);
    let again = harness::chain::set_up(&fleet.anvil.url()).await;
    assert_eq!(again.registry, fleet.chain.registry);
    until(&fleet, "chain back", |b| source_up(b, "chain") == Some(1.0)).await;

    // 5. GitHub answers 500s, recovers, then spends its rate limit. The
    //    source is up again between the two, so the second fault must be
    //    seen on its own: told apart by the error it reports.
    let t = fleetpulse::snapshot::now_unix();
    fleet.gh.with(|f| f.mode = Mode::Failing);
    until(&fleet, "github down on 500s", |b| {
        source_up(b, "github") == Some(0.0)
    })
    .await;
    others_fresh(&fleet, &["github"], t).await;
    fleet.gh.with(|f| f.mode = Mode::Normal);
    until(&fleet, "github back after the 500s", |b| {
        source_up(b, "github") == Some(1.0)
    })
    .await;
    let t = fleetpulse::snapshot::now_unix();
    let reset = t as u64 + 5;
    fleet.gh.with(|f| f.mode = Mode::RateLimited { reset });
    until(&fleet, "github down on the rate limit", |b| {
        source_up(b, "github") == Some(0.0)
    })
    .await;
    let error = source_error(&fleet, "github").await;
    assert!(
        error.contains("rate limit spent"),
        "github's error names the rate limit: {error}"
    );
    others_fresh(&fleet, &["github"], t).await;
    fleet.gh.with(|f| f.mode = Mode::Normal);
    until(&fleet, "github back after the reset", |b| {
        source_up(b, "github") == Some(1.0)
    })
    .await;

    // The load never stopped; stop it now and account for every push.
    load.stop.store(true, Ordering::SeqCst);
    pusher.await.unwrap();
    scraper.await.unwrap();
    sampler.await.unwrap();
    let acked = load.acked.load(Ordering::SeqCst) as f64;
    let unknown = load.unknown.load(Ordering::SeqCst) as f64;
    let scrapes = load.scrapes.load(Ordering::SeqCst);
    assert!(acked > 500.0, "the push load ran ({acked} acknowledged)");
    assert_eq!(load.refused.load(Ordering::SeqCst), 0, "no push refused");
    assert!(scrapes > 50, "the scrape load ran ({scrapes} scrapes)");
    assert_eq!(
        load.failed_scrapes.load(Ordering::SeqCst),
        0,
        "every scrape answered within 2 s (slowest {} ms)",
        load.slowest_ms.load(Ordering::SeqCst)
    );

    // Bounded: the faults left no descriptors or memory behind.
    let (fds, rss) = common::resources(fleet.pid());
    let (peak_fds, peak_rss) = (
        peak.fds.load(Ordering::SeqCst),
        peak.rss_kib.load(Ordering::SeqCst),
    );
    assert!(
        peak_fds <= base_fds as u64 + 64,
        "open fds peaked at {peak_fds} from {base_fds}"
    );
    assert!(
        fds <= base_fds + 16,
        "{fds} fds open after, {base_fds} before"
    );
    assert!(
        peak_rss <= base_rss + 64 * 1024,
        "RSS peaked at {peak_rss} KiB from {base_rss} KiB"
    );
    assert!(
        rss <= base_rss + 32 * 1024,
        "RSS {rss} KiB after, {base_rss} KiB before"
    );

    let stored = |b: &str| value(b, HEARTBEATS).expect("prod-box heartbeats") - heartbeats_before;
    let b = fleet.try_metrics().await.expect("scrape");
    let counted = stored(&b);
    assert!(
        counted >= acked && counted <= acked + unknown,
        "{counted} heartbeats counted, {acked} acknowledged, {unknown} unanswered"
    );

    // Nothing acknowledged is lost to a SIGKILL either.
    fleet.kill_and_restart().await;
    let b = fleet.try_metrics().await.expect("scrape after restart");
    assert_eq!(stored(&b), counted, "heartbeats reloaded from the store");
}
