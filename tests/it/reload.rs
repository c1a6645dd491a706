//! Reloading the config of a running `fleetpulse serve` (SIGHUP and
//! `POST /-/reload`): the new files in force at once, a bad one refused
//! whole, unchanged sources keeping their facts and schedule, a rotated
//! token taking effect, and no push or scrape lost while it happens.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, free_port, sample, spawn_listening, Process};
use fleetpulse::ingest::auth::hash_token;
use fleetpulse::simfleet::{Authority, Behaviour, SimService};

const BIN: &str = env!("CARGO_BIN_EXE_fleetpulse");
const OLD_TOKEN: &str = "token-before-rotation";
const NEW_TOKEN: &str = "token-after-rotation";
const BOX_A_TOKEN: &str = "box-a-only-token";

struct Served {
    process: Process,
    url: String,
    dir: tempfile::TempDir,
    _service: SimService,
    port: u16,
    ca: String,
}

/// A token for every name, and one for box-a alone.
fn tokens(dir: &Path, token: &str) {
    std::fs::write(
        dir.join("tokens.yaml"),
        format!(
            "- sha256: {}\n  names: ['*']\n  id: pusher\n- sha256: {}\n  names: [box-a]\n  id: box-a-only\n",
            hash_token(token),
            hash_token(BOX_A_TOKEN)
        ),
    )
    .unwrap();
}

/// The fleet file: prod with `boxes`, and `extra` appended to the
/// environments.
fn fleet(s_port: u16, ca: &str, dir: &Path, listen: u16, boxes: &str, extra: &str) -> String {
    let retention = std::fs::read_to_string(dir.join("retention")).unwrap_or_else(|_| "30d".into());
    format!(
        "listen: 127.0.0.1:{listen}\nstate_dir: {state}\ningest:\n  tokens_file: {tokens}\n  retention: {retention}\nsources:\n  healthz: {{ interval: 1h, timeout: 5s }}\n  tls: {{ interval: 1h, timeout: 5s, ca_file: {ca} }}\n\
         environments:\n  - name: prod\n    boxes: [{boxes}]\n    services:\n      - {{ name: broker, healthz: 'https://localhost:{s_port}/healthz', tls: 'localhost:{s_port}' }}\n{extra}",
        state = dir.join("state").display(),
        tokens = dir.join("tokens.yaml").display(),
    )
}

const SLOT: &str = "  - name: test-1\n    boxes: [slot-box]\n    hosts: [slot-host]\n    services:\n      - { name: slot-broker, healthz: 'https://localhost:1/healthz' }\n";

async fn serve() -> Served {
    serve_with("30d").await
}

async fn serve_with(retention: &str) -> Served {
    let authority = Authority::new(20).unwrap();
    let service = SimService::start(
        authority.issue(&["localhost"], 30).unwrap(),
        Behaviour::Healthy {
            commit: "abc1234".into(),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem").display().to_string();
    std::fs::write(&ca, authority.root_pem()).unwrap();
    tokens(dir.path(), OLD_TOKEN);
    std::fs::write(dir.path().join("retention"), retention).unwrap();
    let listen = free_port();
    let file = dir.path().join("fleet.yaml");
    std::fs::write(
        &file,
        fleet(
            service.port(),
            &ca,
            dir.path(),
            listen,
            "box-a, box-b",
            SLOT,
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--log.format",
        "logfmt",
        "serve",
        "--web.enable-lifecycle",
        "--config",
    ])
    .arg(&file);
    let process = spawn_listening(
        cmd,
        "fleetpulse: serving on http://127.0.0.1:",
        "fleetpulse serve",
    );
    let url = format!("http://127.0.0.1:{}", process.port);
    Served {
        process,
        url,
        port: service.port(),
        _service: service,
        dir,
        ca,
    }
}

impl Served {
    fn rewrite(&self, boxes: &str, extra: &str) {
        std::fs::write(
            self.dir.path().join("fleet.yaml"),
            fleet(
                self.port,
                &self.ca,
                self.dir.path(),
                listen_of(&self.url),
                boxes,
                extra,
            ),
        )
        .unwrap();
    }

    async fn metrics(&self) -> String {
        common::get(&format!("{}/metrics", self.url)).await.1
    }

    async fn heartbeat(&self, token: &str, box_name: &str) -> u16 {
        reqwest::Client::new()
            .post(format!("{}/api/v1/heartbeats/{box_name}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn delete(&self, token: &str, path: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .delete(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn post_reload(&self) -> (u16, String) {
        let r = reqwest::Client::new()
            .post(format!("{}/-/reload", self.url))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

fn listen_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

const RELOAD_OK: &str = "fleet_config_last_reload_successful";
const RELOAD_TIME: &str = "fleet_config_last_reload_success_timestamp_seconds";
const HEALTHZ_SUCCESS: &str = r#"fleet_source_last_success_timestamp_seconds{source="healthz"}"#;
const BROKER_GREEN: &str = r#"fleet_service_health{stack="prod",component="broker",state="green"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_puts_new_files_in_force_keeps_unchanged_sources_and_refuses_a_bad_file_whole() {
    let s = serve().await;
    let before = eventually(Duration::from_secs(20), "the first probes", || async {
        let m = s.metrics().await;
        (sample(&m, BROKER_GREEN) == Some(1.0) && m.contains(r#"stack="test-1""#)).then_some(m)
    })
    .await;
    let probed_at = sample(&before, HEALTHZ_SUCCESS).unwrap();
    let loaded_at = sample(&before, RELOAD_TIME).unwrap();
    assert_eq!(sample(&before, RELOAD_OK), Some(1.0));
    assert_eq!(s.heartbeat(OLD_TOKEN, "box-b").await, 200);
    assert!(s.metrics().await.contains(r#"box="box-b""#));

    // Retire box-b and the test-1 environment, rotate the token, SIGHUP.
    s.rewrite("box-a", "");
    tokens(s.dir.path(), NEW_TOKEN);
    s.process.signal("HUP");
    let after = eventually(Duration::from_secs(10), "the SIGHUP reload", || async {
        let m = s.metrics().await;
        sample(&m, RELOAD_TIME)
            .filter(|t| *t > loaded_at)
            .map(|_| m)
    })
    .await;
    assert_eq!(sample(&after, RELOAD_OK), Some(1.0));
    // What the file no longer lists is gone at once, from every view.
    assert!(!after.contains(r#"stack="test-1""#), "{after}");
    assert!(!after.contains(r#"box="box-b""#), "{after}");
    let fleet: serde_json::Value =
        serde_json::from_str(&common::get(&format!("{}/api/v1/fleet", s.url)).await.1).unwrap();
    let stacks: Vec<&str> = fleet["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["stack"].as_str().unwrap())
        .collect();
    assert_eq!(stacks, ["prod"]);
    assert!(fleet["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["name"] != "box-b"));
    // The healthz settings did not change: its facts stay, and it is not
    // run again before its hour is up.
    assert_eq!(sample(&after, BROKER_GREEN), Some(1.0));
    assert_eq!(sample(&after, HEALTHZ_SUCCESS), Some(probed_at));
    // The rotated token works at once; the old one no longer does.
    assert_eq!(s.heartbeat(OLD_TOKEN, "box-a").await, 401);
    assert_eq!(s.heartbeat(NEW_TOKEN, "box-a").await, 200);

    // A bad file is refused whole, by POST /-/reload: the running config stays.
    let reloaded_at = sample(&after, RELOAD_TIME).unwrap();
    std::fs::write(
        s.dir.path().join("fleet.yaml"),
        "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: not-a-url\n",
    )
    .unwrap();
    let (code, body) = s.post_reload().await;
    assert_eq!(code, 500, "{body}");
    assert!(
        body.contains("fleet.yaml:5:18: environments[0].services[0].healthz"),
        "{body}"
    );
    let refused = s.metrics().await;
    assert_eq!(sample(&refused, RELOAD_OK), Some(0.0));
    assert_eq!(sample(&refused, RELOAD_TIME), Some(reloaded_at));
    assert_eq!(sample(&refused, BROKER_GREEN), Some(1.0));
    assert_eq!(s.heartbeat(NEW_TOKEN, "box-a").await, 200);
    assert!(
        s.process.log().contains("config reload refused"),
        "{}",
        s.process.log()
    );

    // Fixed, and reloaded again: in force, and the slot is back.
    s.rewrite("box-a", SLOT);
    let (code, body) = s.post_reload().await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("2 environments"), "{body}");
    let m = s.metrics().await;
    assert_eq!(sample(&m, RELOAD_OK), Some(1.0));
    assert!(
        m.contains(r#"fleet_box_expected{stack="test-1",box="slot-box"} 1"#),
        "{m}"
    );

    // A new listen address or state directory is taken at the next
    // restart, and said so; the reloads before, which kept them, said
    // nothing of either. Until then pushes go to the store in use.
    const LATER: [&str; 2] = [
        "listen changes at the next restart",
        "state_dir changes at the next restart",
    ];
    for said in LATER {
        assert!(!s.process.log().contains(said), "{}", s.process.log());
    }
    let file = s.dir.path().join("fleet.yaml");
    let port = listen_of(&s.url);
    let state = s.dir.path().join("state");
    let elsewhere = s.dir.path().join("elsewhere");
    let text = std::fs::read_to_string(&file).unwrap();
    let moved = text
        .replace(
            &format!("listen: 127.0.0.1:{port}\n"),
            &format!("listen: 127.0.0.1:{}\n", free_port()),
        )
        .replace(
            &format!("state_dir: {}\n", state.display()),
            &format!("state_dir: {}\n", elsewhere.display()),
        );
    assert!(!moved.contains(&format!("127.0.0.1:{port}\n")), "{moved}");
    assert!(moved.contains("elsewhere") && !text.contains("elsewhere"));
    std::fs::write(&file, moved).unwrap();
    let (code, body) = s.post_reload().await;
    assert_eq!(code, 200, "{body}");
    for said in LATER {
        eventually(Duration::from_secs(5), said, || async {
            s.process.log().contains(said).then_some(())
        })
        .await;
    }
    assert_eq!(common::get(&format!("{}/healthz", s.url)).await.0, 200);
    let boxes = |db: &Path| -> i64 {
        rusqlite::Connection::open(db.join("fleetpulse.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM heartbeats", [], |r| r.get(0))
            .unwrap()
    };
    let before = boxes(&state);
    assert_eq!(s.heartbeat(NEW_TOKEN, "slot-box").await, 200);
    assert_eq!(boxes(&state), before + 1, "the push in the store in use");
    assert!(!elsewhere.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_pushes_and_scrapes_lose_nothing() {
    // A load of its own: not beside the tests that need the machine quiet.
    let _alone = common::machine_alone().await;
    let s = Arc::new(serve().await);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let pusher = {
        let (s, stop, acked) = (s.clone(), stop.clone(), acked.clone());
        tokio::spawn(async move {
            let mut refused = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                match s.heartbeat(OLD_TOKEN, "box-a").await {
                    200 => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    code => refused.push(code),
                }
            }
            refused
        })
    };
    let scraper = {
        let (s, stop) = (s.clone(), stop.clone());
        tokio::spawn(async move {
            let mut scrapes = 0u32;
            let mut failed = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            while !stop.load(Ordering::SeqCst) {
                tick.tick().await;
                let (code, body) = common::get(&format!("{}/metrics", s.url)).await;
                scrapes += 1;
                if code != 200 || !body.contains("fleet_config_last_reload_successful") {
                    failed.push(code);
                }
            }
            (scrapes, failed)
        })
    };
    for i in 0..20 {
        // Every other file is bad: refused, the good one keeps serving.
        if i % 2 == 0 {
            s.rewrite("box-a, box-b", if i % 4 == 0 { "" } else { SLOT });
            let (code, body) = s.post_reload().await;
            assert_eq!(code, 200, "reload {i}: {body}");
        } else {
            std::fs::write(s.dir.path().join("fleet.yaml"), "environments: []\n").unwrap();
            let (code, body) = s.post_reload().await;
            assert_eq!(code, 500, "reload {i}: {body}");
        }
        // Paced, so the reloads are spread over the pushes and scrapes.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let refused = pusher.await.unwrap();
    let (scrapes, failed) = scraper.await.unwrap();
    assert!(
        refused.is_empty(),
        "pushes refused during reloads: {refused:?}"
    );
    assert!(
        failed.is_empty(),
        "scrapes failed during reloads: {failed:?}"
    );
    assert!(scrapes >= 20, "only {scrapes} scrapes");
    let acked = acked.load(Ordering::SeqCst);
    assert!(acked > 0);
    // Every acknowledged push is counted.
    let m = s.metrics().await;
    assert_eq!(
        sample(&m, r#"fleet_heartbeats_total{stack="prod",box="box-a"}"#),
        Some(acked as f64),
        "{acked} acknowledged"
    );
    assert_eq!(
        sample(&m, RELOAD_OK),
        Some(0.0),
        "the last reload was a bad file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_name_is_kept_for_retention_then_pruned_and_delete_removes_one_now() {
    let s = serve_with("2s").await;
    for b in ["box-a", "box-b", "slot-box"] {
        assert_eq!(s.heartbeat(OLD_TOKEN, b).await, 200);
    }
    let hb = |b: &str| {
        format!(
            r#"fleet_heartbeats_total{{stack="{}",box="{b}"}}"#,
            if b == "slot-box" { "test-1" } else { "prod" }
        )
    };
    let m = s.metrics().await;
    assert_eq!(sample(&m, &hb("box-b")), Some(1.0));
    assert_eq!(sample(&m, &hb("slot-box")), Some(1.0));
    let doctor = reqwest::Client::new()
        .put(format!("{}/api/v1/host-health/slot-host", s.url))
        .bearer_auth(OLD_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"checks":[{"name":"disk","status":"fail"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(doctor.status(), 200);
    let aggregate = || async {
        reqwest::Client::new()
            .get(format!("{}/api/v1/host-health", s.url))
            .bearer_auth(OLD_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert!(aggregate().await.contains("slot-host"));
    // broker's test runs: on prod, listed throughout, and on test-1, whose
    // retirement takes its run with it though prod still lists broker.
    for stack in ["prod", "test-1"] {
        let run = reqwest::Client::new()
            .put(format!("{}/api/v1/test-runs/broker?stack={stack}", s.url))
            .bearer_auth(OLD_TOKEN)
            .header("content-type", "application/json")
            .body(r#"{"passed": 3, "failed": 0, "skipped": 0}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(run.status(), 200, "{stack}");
    }
    // Mutation results of broker (listed throughout) and of slot-broker.
    for service in ["broker", "slot-broker"] {
        let put = reqwest::Client::new()
            .put(format!("{}/api/v1/mutants/{service}", s.url))
            .bearer_auth(OLD_TOKEN)
            .header("content-type", "application/json")
            .body(r#"{"caught": 5, "missed": 1, "timeout": 0, "unviable": 0}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{service}");
    }

    // Retired: gone from the views at once, kept in the store.
    s.rewrite("box-a", "");
    assert_eq!(s.post_reload().await.0, 200);
    let m = s.metrics().await;
    assert_eq!(sample(&m, &hb("box-b")), None, "{m}");
    assert_eq!(sample(&m, &hb("slot-box")), None, "{m}");
    assert!(!m.contains(r#"host="slot-host""#), "{m}");
    assert!(
        !aggregate().await.contains("slot-host"),
        "the host-health aggregate"
    );
    // Back before its retention is up: its rows come back with it.
    s.rewrite("box-a, box-b", "");
    assert_eq!(s.post_reload().await.0, 200);
    assert_eq!(sample(&s.metrics().await, &hb("box-b")), Some(1.0));

    // slot-box stays retired: after 2 s its rows are pruned, so listing it
    // again brings back an expected box that never reported.
    eventually(
        Duration::from_secs(15),
        "the retired slot-box pruned",
        || async { s.process.log().contains("pruned the pushes").then_some(()) },
    )
    .await;
    s.rewrite("box-a, box-b", SLOT);
    assert_eq!(s.post_reload().await.0, 200);
    let m = s.metrics().await;
    assert!(
        m.contains(r#"fleet_box_expected{stack="test-1",box="slot-box"} 1"#),
        "{m}"
    );
    assert_eq!(sample(&m, &hb("slot-box")), None, "{m}");
    assert_eq!(
        sample(&m, &hb("box-b")),
        Some(1.0),
        "box-b was listed again in time"
    );
    // The retired host's snapshot and service's results went with it; what
    // prod still lists stayed.
    assert!(
        !aggregate().await.contains("slot-host"),
        "the pruned host's snapshot"
    );
    assert!(
        !m.contains(r#"component="slot-broker",outcome="caught""#),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"fleet_test_mutants{stack="prod",component="broker",outcome="caught"}"#
        ),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"fleet_test_run_tests{stack="prod",component="broker",outcome="passed"}"#
        ),
        Some(3.0),
        "{m}"
    );

    // DELETE: outside the token's names it is refused and changes nothing.
    let (code, body) = s.delete(BOX_A_TOKEN, "/api/v1/heartbeats/box-b").await;
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("box-a-only may not remove box-b"), "{body}");
    assert_eq!(sample(&s.metrics().await, &hb("box-b")), Some(1.0));
    assert_eq!(
        s.delete("wrong-token", "/api/v1/heartbeats/box-b").await.0,
        401
    );
    // By a token allowed the name, it goes now, from every view.
    let (code, body) = s.delete(OLD_TOKEN, "/api/v1/heartbeats/box-b").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""removed":1"#), "{body}");
    let m = s.metrics().await;
    assert_eq!(sample(&m, &hb("box-b")), None, "{m}");
    assert!(m.contains(r#"fleet_box_expected{stack="prod",box="box-b"} 1"#));
    assert_eq!(s.delete(OLD_TOKEN, "/api/v1/heartbeats/box-b").await.0, 404);
    // broker's run on test-1 was pruned with its stack: one run is left.
    let (code, body) = s.delete(OLD_TOKEN, "/api/v1/test-runs/broker").await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""removed":1"#), "{body}");
    assert_eq!(s.delete(OLD_TOKEN, "/api/v1/test-runs/broker").await.0, 404);
    let log = s.process.log();
    assert!(
        log.lines().any(|l| l.contains("stored pushes removed")
            && l.contains("token=pusher")
            && l.contains("name=box-b")),
        "the removal is logged with the token's id: {log}"
    );
    assert!(!s.process.log().contains(OLD_TOKEN), "a token in the log");
}
