//! Ingest end to end: every endpoint through HTTP and the CLI client, every
//! bad-input class refused without touching the store, counters, restarts,
//! start-up errors, and a SIGKILL in the middle of a stream of pushes.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, free_port, sample, Process};
use fleetpulse::app::Running;
use fleetpulse::config::Config;
use fleetpulse::ingest::auth::hash_token;
use fleetpulse::store::DB_FILE;
use reqwest::Method;
use serde_json::{json, Value};

const FLEET_TOKEN: &str = "fleet-wide-test-token";
const BOX_TOKEN: &str = "prod-box-only-token";
const BIN: &str = env!("CARGO_BIN_EXE_fleetpulse");

/// Writes the tokens file and the config into `dir`; returns the config path.
fn write_config(dir: &Path, listen: &str, ingest_extra: &str, boxes: &[String]) -> PathBuf {
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "- sha256: {}\n  names: ['*']\n  id: fleet\n- sha256: {}\n  names: [prod-box]\n  id: prod-box\n",
            hash_token(FLEET_TOKEN),
            hash_token(BOX_TOKEN)
        ),
    )
    .unwrap();
    let extra_boxes: String = boxes.iter().map(|b| format!(", {b}")).collect();
    let yaml = format!(
        "listen: {listen}
state_dir: {state}
ingest:
  tokens_file: {tokens}
  max_body_bytes: 4096
  max_junit_bytes: 65536
  services: [indexer]
{ingest_extra}
environments:
  - name: prod
    boxes: [prod-box{extra_boxes}]
    hosts: [prod-host]
    services:
      - name: broker
  - name: test-1
    boxes: [test-1-box]
    hosts: [test-1-host]
    services:
      - name: broker
      - name: signer
",
        state = dir.join("state").display(),
        tokens = tokens.display(),
    );
    let path = dir.join("fleet.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// An in-process exporter with ingest, on an ephemeral port.
struct Fleet {
    dir: tempfile::TempDir,
    config: Arc<Config>,
    running: Option<Running>,
    base: String,
    http: reqwest::Client,
}

impl Fleet {
    async fn start(ingest_extra: &str) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), "127.0.0.1:0", ingest_extra, &[]);
        let config = Arc::new(Config::load(&path).unwrap());
        let mut fleet = Fleet {
            dir,
            config,
            running: None,
            base: String::new(),
            http: reqwest::Client::new(),
        };
        fleet.up().await;
        fleet
    }

    async fn up(&mut self) {
        let running = crate::common::start_exporter(self.config.clone()).await;
        self.base = format!("http://{}", running.addr);
        self.running = Some(running);
    }

    async fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.unwrap();
        }
        self.up().await;
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("state").join(DB_FILE)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn put_json(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            Method::PUT,
            path,
            Some(FLEET_TOKEN),
            &[("x-fleet-commit", "c0ffee1")],
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    async fn heartbeat(&self, box_name: &str, body: Value) -> (u16, Value) {
        self.send(
            Method::POST,
            &format!("/api/v1/heartbeats/{box_name}"),
            Some(FLEET_TOKEN),
            &[("x-fleet-commit", "c0ffee1")],
            Some("application/json"),
            body.to_string(),
        )
        .await
    }

    async fn metrics(&self) -> String {
        common::get(&format!("{}/metrics", self.base)).await.1
    }

    /// /metrics once every `(series, value)` shows: the pulse is published
    /// a moment after the writes it holds. After 5 s, the last scrape.
    async fn metrics_showing(&self, want: &[(&str, f64)]) -> String {
        let started = std::time::Instant::now();
        loop {
            let body = self.metrics().await;
            let shown = want.iter().all(|(s, v)| sample(&body, s) == Some(*v));
            if shown || started.elapsed() > Duration::from_secs(5) {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Every row of every table, as text: equal dumps mean an unchanged store.
fn dump(db: &Path) -> String {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut out = String::new();
    for table in ["heartbeats", "test_runs", "mutants", "host_health"] {
        let mut st = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY 1, 2"))
            .unwrap();
        let cols = st.column_count();
        let rows = st
            .query_map([], |r| {
                (0..cols)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push_str(&format!("{table}: {:?}\n", row.unwrap()));
        }
    }
    out
}

const JUNIT: &str = r#"<?xml version="1.0"?>
<testsuites time="4.5">
  <testsuite name="e2e" timestamp="2024-05-01T10:00:00Z">
    <testcase name="a"/><testcase name="b"/><testcase name="c"><failure/></testcase>
    <testcase name="d"><skipped/></testcase>
  </testsuite>
</testsuites>"#;

const DOCTOR: &str = r#"{"host":"prod-host","checks":[{"name":"disk","status":"ok"},{"name":"units","status":"warn"},{"name":"certs","status":"fail","detail":"expires in 3 days"}]}"#;

#[tokio::test]
async fn every_push_kind_is_stored_read_back_and_exposed() {
    let fleet = Fleet::start("").await;

    let (s, v) = fleet
        .heartbeat(
            "prod-box",
            json!({"version": "1.4.2", "boot_time": 1_700_000_000}),
        )
        .await;
    assert_eq!((s, &v["heartbeats"]), (200, &json!(1)), "{v}");
    assert_eq!(v["stack"], "prod");

    let (s, v) = fleet
        .put_json(
            "/api/v1/test-runs/broker?stack=test-1",
            json!({"passed": 40, "failed": 2, "skipped": 1, "duration_seconds": 93.5,
                   "started_at": "2024-05-01T09:00:00Z", "commit": "abc1234", "future_field": 1}),
        )
        .await;
    assert_eq!((s, &v["newest"]), (200, &json!(true)), "{v}");

    let (s, v) = fleet
        .send(
            Method::PUT,
            "/api/v1/test-runs/signer",
            Some(FLEET_TOKEN),
            &[],
            Some("application/xml; charset=utf-8"),
            JUNIT,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    // signer is only in test-1: the run is attributed there.
    assert_eq!(
        (&v["stack"], &v["passed"], &v["failed"], &v["skipped"]),
        (&json!("test-1"), &json!(2), &json!(1), &json!(1))
    );

    let (s, v) = fleet
        .put_json(
            "/api/v1/mutants/indexer",
            json!({"outcomes": [
                {"scenario": "Baseline", "summary": "Success"},
                {"scenario": {"Mutant": {}}, "summary": "CaughtMutant"},
                {"scenario": {"Mutant": {}}, "summary": "MissedMutant"}]}),
        )
        .await;
    assert_eq!(
        (s, &v["caught"], &v["missed"]),
        (200, &json!(1), &json!(1)),
        "{v}"
    );

    let (s, v) = fleet
        .send(
            Method::PUT,
            "/api/v1/host-health/prod-host",
            Some(FLEET_TOKEN),
            &[],
            Some("application/json"),
            DOCTOR,
        )
        .await;
    assert_eq!((s, &v["fail"]), (200, &json!(1)), "{v}");

    // The doctor document comes back exactly as pushed.
    let resp = fleet
        .http
        .get(format!("{}/api/v1/host-health/prod-host", fleet.base))
        .bearer_auth(FLEET_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), DOCTOR);
    let (s, v) = fleet
        .send(
            Method::GET,
            "/api/v1/host-health",
            Some(FLEET_TOKEN),
            &[],
            None,
            "",
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["hosts"][0]["host"], "prod-host");
    assert_eq!(
        v["hosts"][0]["snapshot"]["checks"][2]["detail"],
        "expires in 3 days"
    );
    // A token scoped elsewhere sees nothing of it.
    let (s, v) = fleet
        .send(
            Method::GET,
            "/api/v1/host-health",
            Some(BOX_TOKEN),
            &[],
            None,
            "",
        )
        .await;
    assert_eq!((s, v["hosts"].as_array().unwrap().len()), (200, 0));
    let (s, _) = fleet
        .send(
            Method::GET,
            "/api/v1/host-health/prod-host",
            Some(BOX_TOKEN),
            &[],
            None,
            "",
        )
        .await;
    assert_eq!(s, 403);
    let (s, _) = fleet
        .send(
            Method::GET,
            "/api/v1/host-health/test-1-host",
            Some(FLEET_TOKEN),
            &[],
            None,
            "",
        )
        .await;
    assert_eq!(s, 404);

    // The pulse is published a moment after the writes it holds.
    let expected = [
        (
            r#"fleet_heartbeats_total{stack="prod",box="prod-box"}"#,
            1.0,
        ),
        (
            r#"fleet_box_expected{stack="test-1",box="test-1-box"}"#,
            1.0,
        ),
        (
            r#"fleet_box_commit_info{stack="prod",box="prod-box",commit="c0ffee1",version="1.4.2"}"#,
            1.0,
        ),
        (
            r#"fleet_test_run_tests{stack="test-1",component="broker",outcome="failed"}"#,
            2.0,
        ),
        (
            r#"fleet_test_run_tests{stack="test-1",component="signer",outcome="passed"}"#,
            2.0,
        ),
        (
            r#"fleet_test_run_timestamp_seconds{stack="test-1",component="broker"}"#,
            1_714_554_000.0,
        ),
        (
            r#"fleet_test_run_duration_seconds{stack="test-1",component="signer"}"#,
            4.5,
        ),
        (
            r#"fleet_test_run_info{stack="test-1",component="broker",commit="abc1234"}"#,
            1.0,
        ),
        (
            r#"fleet_test_mutants{stack="",component="indexer",outcome="missed"}"#,
            1.0,
        ),
        (
            r#"fleet_host_health_checks{stack="prod",host="prod-host",status="warn"}"#,
            1.0,
        ),
    ];
    let body = eventually(Duration::from_secs(5), "every push exposed", || async {
        let body = fleet.metrics().await;
        expected
            .iter()
            .all(|(series, want)| sample(&body, series) == Some(*want))
            .then_some(body)
    })
    .await;
    for (series, want) in expected {
        assert_eq!(sample(&body, series), Some(want), "{series}\n{body}");
    }
    assert!(sample(
        &body,
        r#"fleet_heartbeat_timestamp_seconds{stack="prod",box="prod-box"}"#
    )
    .is_some());
    assert!(sample(
        &body,
        r#"fleet_host_health_timestamp_seconds{stack="prod",host="prod-host"}"#
    )
    .is_some());
    assert!(sample(
        &body,
        r#"fleet_test_mutants_timestamp_seconds{stack="",component="indexer"}"#
    )
    .is_some());
    assert_eq!(
        sample(
            &body,
            r#"fleet_ingest_requests_total{stack="prod",pusher="prod-box",code="200"}"#
        ),
        Some(1.0)
    );

    common::promtool_check_metrics(&body);
}

#[tokio::test]
async fn refusals_name_the_bad_input_and_only_401_asks_for_a_bearer_token() {
    let fleet = Fleet::start("").await;
    let bearer = |r: &reqwest::Response| {
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
    };
    // No token: 401 with the challenge.
    let r = fleet
        .http
        .post(format!("{}/api/v1/heartbeats/prod-box", fleet.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(bearer(&r).as_deref(), Some("Bearer realm=\"fleetpulse\""));
    // A bad name: 400, no challenge, the name echoed quoted and cut short.
    let long = format!("bad name {}", "x".repeat(100));
    let r = fleet
        .http
        .post(format!("{}/api/v1/heartbeats/{long}", fleet.base))
        .bearer_auth(FLEET_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(bearer(&r), None, "only a 401 carries the challenge");
    let v: Value = r.json().await.unwrap();
    let cut: String = long.chars().take(70).collect();
    assert_eq!(
        v["error"],
        format!("not a valid box name: {cut:?} (expected 1 to 64 of A-Z a-z 0-9 . _ -)")
    );
    // The same for a host read.
    let r = fleet
        .http
        .get(format!("{}/api/v1/host-health/a%20b", fleet.base))
        .bearer_auth(FLEET_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "not a valid host name: \"a b\"");
}

#[tokio::test]
async fn the_body_limit_is_inclusive_and_only_xml_and_json_types_are_read() {
    let fleet = Fleet::start("").await;
    // Exactly max_body_bytes (4096) is accepted, with Content-Length...
    let doc = r#"{"checks":[{"name":"disk","status":"ok"}]}"#;
    let body = format!("{doc}{}", " ".repeat(4096 - doc.len()));
    assert_eq!(body.len(), 4096);
    let (status, v) = fleet
        .send(
            Method::PUT,
            "/api/v1/host-health/prod-host",
            Some(FLEET_TOKEN),
            &[("x-fleet-commit", "c0ffee1")],
            Some("application/json"),
            body.clone(),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // ...and one byte more is not.
    let (status, _) = fleet
        .send(
            Method::PUT,
            "/api/v1/host-health/prod-host",
            Some(FLEET_TOKEN),
            &[],
            Some("application/json"),
            format!("{body} "),
        )
        .await;
    assert_eq!(status, 413);
    // A test run is read as JSON or XML by its type; other types are refused.
    for media in ["application/octet-stream", "text/plain+xml", "text/junit"] {
        let (status, v) = fleet
            .send(
                Method::PUT,
                "/api/v1/test-runs/broker?stack=prod",
                Some(FLEET_TOKEN),
                &[],
                Some(media),
                "<testsuite/>",
            )
            .await;
        assert_eq!(status, 415, "{media}: {v}");
    }
    let (status, v) = fleet
        .send(
            Method::PUT,
            "/api/v1/test-runs/broker?stack=prod",
            Some(FLEET_TOKEN),
            &[],
            Some("application/vnd.junit+xml"),
            "<testsuite><testcase/></testsuite>",
        )
        .await;
    assert_eq!(status, 200, "+xml types are XML: {v}");
}

/// A body that cannot be read (malformed chunked encoding) is a 400 saying
/// so, not a 413.
#[tokio::test]
async fn an_unreadable_body_is_a_bad_request_not_too_large() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fleet = Fleet::start("").await;
    let addr = fleet.base.trim_start_matches("http://").to_string();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let req = format!(
        "PUT /api/v1/host-health/prod-host HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {FLEET_TOKEN}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"che\r\nzz\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(out.contains("cannot read the request body"), "{out}");
}

#[tokio::test]
async fn test_run_times_are_checked_and_only_unstamped_pushes_are_counted_so() {
    let fleet = Fleet::start("").await;
    let run = |body: Value| fleet.put_json("/api/v1/test-runs/broker?stack=prod", body);
    let ok = json!({"passed": 1, "failed": 0, "skipped": 0});
    for (field, value, want) in [
        ("duration_seconds", json!(0.0), 200),
        ("duration_seconds", json!(12.5), 200),
        ("duration_seconds", json!(-0.5), 400),
        ("started_at", json!(0), 200),
        ("started_at", json!(1_700_000_000.5), 200),
        ("started_at", json!(-1), 400),
        ("started_at", json!("2026-11-23T10:00:00Z"), 200),
        ("started_at", json!("yesterday"), 400),
    ] {
        let mut body = ok.clone();
        body[field] = value.clone();
        let (status, v) = run(body).await;
        assert_eq!(status, want, "{field}: {value} → {v}");
        if want == 400 {
            assert!(v["error"].as_str().unwrap().starts_with(field), "{v}");
        }
    }

    // A runner clock a minute ahead is within the allowed skew; an hour is not.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut body = ok.clone();
    body["started_at"] = json!(now + 60.0);
    let (status, v) = run(body).await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v.get("message").is_none(),
        "the newest run has no note: {v}"
    );
    let mut body = ok.clone();
    body["started_at"] = json!(now + 3600.0);
    let (status, v) = run(body).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("future"), "{v}");
    // The stack may be given in the body and the query when they agree.
    let mut body = ok.clone();
    body["stack"] = json!("prod");
    body["started_at"] = json!(now + 61.0);
    let (status, v) = run(body.clone()).await;
    assert_eq!((status, v["stack"].as_str()), (200, Some("prod")), "{v}");
    body["stack"] = json!("test-1");
    let (status, v) = run(body).await;
    assert_eq!(status, 400, "{v}");

    // put_json stamps every push with X-Fleet-Commit: none is unstamped.
    let unstamped = r#"fleet_ingest_unstamped_requests_total{stack="",pusher="broker"}"#;
    let body = fleet.metrics().await;
    assert_eq!(sample(&body, unstamped).unwrap_or(0.0), 0.0, "{body}");
    let (status, _) = fleet
        .send(
            Method::PUT,
            "/api/v1/test-runs/broker?stack=prod",
            Some(FLEET_TOKEN),
            &[],
            Some("application/json"),
            ok.to_string(),
        )
        .await;
    assert_eq!(status, 200);
    let body = eventually(
        Duration::from_secs(5),
        "the unstamped push counted",
        || async {
            let body = fleet.metrics().await;
            (sample(&body, unstamped) == Some(1.0)).then_some(body)
        },
    )
    .await;
    assert_eq!(
        sample(
            &body,
            r#"fleet_ingest_requests_total{stack="",pusher="broker",code="200"}"#
        ),
        Some(8.0)
    );
}

/// A transaction that fails mid-way (a trigger planted in the database
/// aborts every write for one box) is rolled back whole: no push in it is
/// acknowledged, none of it shows, and what was acknowledged before and after
/// is counted exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_acknowledges_nothing_and_leaves_no_trace() {
    let fleet = Fleet::start("").await;
    assert_eq!(fleet.heartbeat("prod-box", json!({})).await.0, 200);
    let conn = rusqlite::Connection::open(fleet.db()).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER fail_insert BEFORE INSERT ON heartbeats WHEN NEW.box = 'test-1-box'
           BEGIN SELECT RAISE(ABORT, 'injected failure'); END;
         CREATE TRIGGER fail_update BEFORE UPDATE ON heartbeats WHEN NEW.box = 'test-1-box'
           BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();

    let (status, v) = fleet.heartbeat("test-1-box", json!({})).await;
    assert_eq!(status, 500, "{v}");
    assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");

    // Pushes for both boxes at once: some share a transaction with a
    // failing one and fail with it; each box's count is exactly its 200s.
    let fleet_ref = &fleet;
    let pushes = (0..20).map(|i| {
        let b = if i % 2 == 0 { "prod-box" } else { "test-1-box" };
        async move { (b, fleet_ref.heartbeat(b, json!({})).await.0) }
    });
    let answers = futures::future::join_all(pushes).await;
    let acked = |b: &str| answers.iter().filter(|(x, s)| *x == b && *s == 200).count();
    assert_eq!(acked("test-1-box"), 0, "{answers:?}");
    assert!(
        answers.iter().all(|(_, s)| *s == 200 || *s == 500),
        "{answers:?}"
    );
    let prod = 1 + acked("prod-box");

    conn.execute_batch("DROP TRIGGER fail_insert; DROP TRIGGER fail_update;")
        .unwrap();
    assert_eq!(fleet.heartbeat("test-1-box", json!({})).await.0, 200);

    let body = eventually(Duration::from_secs(5), "the pulse published", || async {
        let body = fleet.metrics().await;
        (sample(
            &body,
            r#"fleet_heartbeats_total{stack="test-1",box="test-1-box"}"#,
        ) == Some(1.0))
        .then_some(body)
    })
    .await;
    assert_eq!(
        sample(
            &body,
            r#"fleet_heartbeats_total{stack="prod",box="prod-box"}"#
        ),
        Some(prod as f64),
        "{answers:?}"
    );
    let on_disk: i64 = conn
        .query_row(
            "SELECT count FROM heartbeats WHERE box = 'prod-box'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(on_disk as usize, prod);
    assert!(
        sample(
            &body,
            r#"fleet_ingest_requests_total{stack="test-1",pusher="test-1-box",code="500"}"#
        )
        .is_some_and(|n| n >= 11.0),
        "{body}"
    );
}

#[tokio::test]
async fn an_older_test_run_arriving_late_keeps_the_newer_receipt() {
    let fleet = Fleet::start("").await;
    let run = |passed: u64, started: &str| json!({"passed": passed, "failed": 0, "started_at": started, "stack": "prod"});
    let (s, _) = fleet
        .put_json("/api/v1/test-runs/broker", run(10, "2024-05-02T00:00:00Z"))
        .await;
    assert_eq!(s, 200);
    let before = dump(&fleet.db());
    let (s, v) = fleet
        .put_json("/api/v1/test-runs/broker", run(3, "2024-05-01T00:00:00Z"))
        .await;
    assert_eq!(
        (s, &v["newest"], &v["passed"]),
        (200, &json!(false), &json!(10)),
        "{v}"
    );
    assert_eq!(dump(&fleet.db()), before);
    let (s, v) = fleet
        .put_json("/api/v1/test-runs/broker", run(11, "2024-05-03T00:00:00Z"))
        .await;
    assert_eq!((s, &v["newest"]), (200, &json!(true)));
    let passed = r#"fleet_test_run_tests{stack="prod",component="broker",outcome="passed"}"#;
    let body = fleet.metrics_showing(&[(passed, 11.0)]).await;
    assert_eq!(sample(&body, passed), Some(11.0));
}

/// One refused request: what is sent and what must come back.
struct Bad {
    what: &'static str,
    method: Method,
    path: String,
    token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn bad(
    what: &'static str,
    method: Method,
    path: &str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    message: &'static str,
) -> Bad {
    Bad {
        what,
        method,
        path: path.to_string(),
        token: Some(FLEET_TOKEN),
        headers: Vec::new(),
        content_type,
        body: body.into(),
        status,
        message,
    }
}

fn billion_laughs() -> String {
    let mut xml = String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\">");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_string()
        } else {
            format!("lol{}", i - 1)
        };
        xml.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">",
            format!("&{prev};").repeat(10)
        ));
    }
    xml + "]>\n<testsuite><testcase name=\"&lol9;\"/></testsuite>"
}

#[tokio::test]
async fn bad_input_is_refused_with_its_status_and_changes_nothing() {
    let fleet = Fleet::start("").await;
    // Something of every kind in the store first, so "unchanged" means more
    // than "still empty".
    assert_eq!(fleet.heartbeat("prod-box", json!({})).await.0, 200);
    assert_eq!(
        fleet
            .put_json(
                "/api/v1/test-runs/broker",
                json!({"passed": 1, "failed": 0, "stack": "prod"})
            )
            .await
            .0,
        200
    );
    assert_eq!(
        fleet
            .put_json("/api/v1/mutants/broker", json!({"caught": 1}))
            .await
            .0,
        200
    );
    assert_eq!(
        fleet
            .put_json("/api/v1/host-health/prod-host", json!({"checks": []}))
            .await
            .0,
        200
    );
    let before = dump(&fleet.db());
    assert_eq!(before.lines().count(), 4, "{before}");

    use Method as M;
    let json_ct = Some("application/json");
    let xml_ct = Some("application/xml");
    let deep = format!(
        "<testsuites>{}{}</testsuites>",
        "<testsuite>".repeat(100),
        "</testsuite>".repeat(100)
    );
    let mut cases = vec![
        // 400: malformed bodies
        bad(
            "heartbeat JSON",
            M::POST,
            "/api/v1/heartbeats/prod-box",
            json_ct,
            "{\"version\":",
            400,
            "malformed JSON",
        ),
        bad(
            "heartbeat boot_time",
            M::POST,
            "/api/v1/heartbeats/prod-box",
            json_ct,
            r#"{"boot_time":"yesterday"}"#,
            400,
            "boot_time",
        ),
        bad(
            "heartbeat version with a newline",
            M::POST,
            "/api/v1/heartbeats/prod-box",
            json_ct,
            r#"{"version":"1\n2"}"#,
            400,
            "version",
        ),
        bad(
            "test-run JSON",
            M::PUT,
            "/api/v1/test-runs/broker",
            json_ct,
            "[1,2",
            400,
            "malformed JSON",
        ),
        bad(
            "test-run without counts",
            M::PUT,
            "/api/v1/test-runs/broker",
            json_ct,
            r#"{"skipped":1}"#,
            400,
            "missing field `passed`",
        ),
        bad(
            "test-run negative count",
            M::PUT,
            "/api/v1/test-runs/broker",
            json_ct,
            r#"{"passed":-1,"failed":0}"#,
            400,
            "malformed JSON",
        ),
        bad(
            "test-run from the future",
            M::PUT,
            "/api/v1/test-runs/broker",
            json_ct,
            r#"{"passed":1,"failed":0,"started_at":"2999-01-01T00:00:00Z"}"#,
            400,
            "future",
        ),
        bad(
            "test-run stack twice",
            M::PUT,
            "/api/v1/test-runs/broker?stack=prod",
            json_ct,
            r#"{"passed":1,"failed":0,"stack":"test-1"}"#,
            400,
            "stack given twice",
        ),
        bad(
            "test-run invalid stack",
            M::PUT,
            "/api/v1/test-runs/broker?stack=a%20b",
            json_ct,
            r#"{"passed":1,"failed":0}"#,
            400,
            "not a valid stack name",
        ),
        bad(
            "JUnit not XML",
            M::PUT,
            "/api/v1/test-runs/broker",
            xml_ct,
            "<testsuite><testcase></testsuite>",
            400,
            "malformed XML",
        ),
        bad(
            "JUnit wrong root",
            M::PUT,
            "/api/v1/test-runs/broker",
            xml_ct,
            "<html/>",
            400,
            "expected <testsuites> or <testsuite>",
        ),
        bad(
            "JUnit billion laughs",
            M::PUT,
            "/api/v1/test-runs/broker",
            xml_ct,
            billion_laughs(),
            400,
            "DOCTYPE",
        ),
        bad(
            "JUnit too deep",
            M::PUT,
            "/api/v1/test-runs/broker",
            xml_ct,
            deep,
            400,
            "nested deeper",
        ),
        bad(
            "mutants JSON",
            M::PUT,
            "/api/v1/mutants/broker",
            json_ct,
            "{",
            400,
            "malformed JSON",
        ),
        bad(
            "mutants without counts",
            M::PUT,
            "/api/v1/mutants/broker",
            json_ct,
            r#"{"score":0.9}"#,
            400,
            "found neither",
        ),
        bad(
            "doctor not an object",
            M::PUT,
            "/api/v1/host-health/prod-host",
            json_ct,
            "[]",
            400,
            "expected a JSON object",
        ),
        bad(
            "doctor bad status",
            M::PUT,
            "/api/v1/host-health/prod-host",
            json_ct,
            r#"{"checks":[{"status":"meh"}]}"#,
            400,
            "not one of ok, warn, fail",
        ),
        // 400: names
        bad(
            "name too long",
            M::POST,
            &format!("/api/v1/heartbeats/{}", "x".repeat(65)),
            json_ct,
            "{}",
            400,
            "not a valid box name",
        ),
        bad(
            "name with a space",
            M::PUT,
            "/api/v1/mutants/bro%20ker",
            json_ct,
            r#"{"caught":1}"#,
            400,
            "not a valid service name",
        ),
        bad(
            "name with a slash",
            M::PUT,
            "/api/v1/host-health/..%2Fetc",
            json_ct,
            r#"{"checks":[]}"#,
            400,
            "not a valid host name",
        ),
        // 404: not in the inventory
        bad(
            "unknown box",
            M::POST,
            "/api/v1/heartbeats/stranger",
            json_ct,
            "{}",
            404,
            "box stranger is not in the inventory",
        ),
        bad(
            "unknown service",
            M::PUT,
            "/api/v1/test-runs/nobody",
            json_ct,
            r#"{"passed":1,"failed":0}"#,
            404,
            "service nobody is not in the inventory",
        ),
        bad(
            "unknown host",
            M::PUT,
            "/api/v1/host-health/elsewhere",
            json_ct,
            r#"{"checks":[]}"#,
            404,
            "host elsewhere is not in the inventory",
        ),
        bad(
            "unknown stack",
            M::PUT,
            "/api/v1/test-runs/broker?stack=test-9",
            json_ct,
            r#"{"passed":1,"failed":0}"#,
            404,
            "stack test-9 is not in the inventory",
        ),
        // 413: too large (limits 4096 JSON, 65536 JUnit in this config)
        bad(
            "JSON over the limit",
            M::PUT,
            "/api/v1/host-health/prod-host",
            json_ct,
            format!(r#"{{"checks":[],"pad":"{}"}}"#, "x".repeat(5000)),
            413,
            "limit of 4096 bytes",
        ),
        bad(
            "JUnit over its limit",
            M::PUT,
            "/api/v1/test-runs/broker",
            xml_ct,
            format!("<testsuite>{}</testsuite>", "<testcase/>".repeat(7000)),
            413,
            "limit of 65536 bytes",
        ),
        // 415: wrong content type
        bad(
            "test-run as text",
            M::PUT,
            "/api/v1/test-runs/broker",
            Some("text/plain"),
            r#"{"passed":1,"failed":0}"#,
            415,
            "Content-Type \"text/plain\"",
        ),
        bad(
            "mutants without a type",
            M::PUT,
            "/api/v1/mutants/broker",
            None,
            r#"{"caught":1}"#,
            415,
            "(none)",
        ),
        bad(
            "doctor as form",
            M::PUT,
            "/api/v1/host-health/prod-host",
            Some("application/x-www-form-urlencoded"),
            "checks=1",
            415,
            "send application/json",
        ),
        bad(
            "heartbeat body as text",
            M::POST,
            "/api/v1/heartbeats/prod-box",
            Some("text/plain"),
            "hello",
            415,
            "or no body",
        ),
    ];
    // 401 and 403: the token
    let mut no_token = bad(
        "no token",
        M::POST,
        "/api/v1/heartbeats/prod-box",
        json_ct,
        "{}",
        401,
        "missing bearer token",
    );
    no_token.token = None;
    let mut wrong_token = bad(
        "wrong token",
        M::PUT,
        "/api/v1/test-runs/broker",
        json_ct,
        r#"{"passed":1,"failed":0}"#,
        401,
        "invalid bearer token",
    );
    wrong_token.token = Some("not-a-token");
    let mut out_of_scope = bad(
        "out of scope",
        M::POST,
        "/api/v1/heartbeats/test-1-box",
        json_ct,
        "{}",
        403,
        "token prod-box may not write test-1-box",
    );
    out_of_scope.token = Some(BOX_TOKEN);
    let mut basic = bad(
        "basic auth",
        M::PUT,
        "/api/v1/mutants/broker",
        json_ct,
        r#"{"caught":1}"#,
        401,
        "missing bearer token",
    );
    basic.token = None;
    basic
        .headers
        .push(("authorization", "Basic ZmxlZXQ6cHVsc2U=".into()));
    let mut bad_commit = bad(
        "commit header too long",
        M::POST,
        "/api/v1/heartbeats/prod-box",
        json_ct,
        "{}",
        400,
        "X-Fleet-Commit",
    );
    bad_commit.headers.push(("x-fleet-commit", "a".repeat(200)));
    cases.extend([no_token, wrong_token, out_of_scope, basic, bad_commit]);

    for case in &cases {
        let headers: Vec<(&str, &str)> =
            case.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = fleet
            .send(
                case.method.clone(),
                &case.path,
                case.token,
                &headers,
                case.content_type,
                case.body.clone(),
            )
            .await;
        assert_eq!(status, case.status, "{}: {body}", case.what);
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.message),
            "{}: message {message:?} does not say {:?}",
            case.what,
            case.message
        );
        for secret in [FLEET_TOKEN, BOX_TOKEN, "not-a-token"] {
            assert!(
                !message.contains(secret),
                "{}: token in the answer",
                case.what
            );
        }
        assert_eq!(dump(&fleet.db()), before, "{} changed the store", case.what);
    }

    // A body sent without a length is cut off at the limit all the same.
    let chunks: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>> = (0..10)
        .map(|_| {
            Ok(hyper::body::Frame::data(bytes::Bytes::from(vec![
                b' ';
                1000
            ])))
        })
        .collect();
    let (status, _) = fleet
        .send(
            M::PUT,
            "/api/v1/host-health/prod-host",
            Some(FLEET_TOKEN),
            &[],
            json_ct,
            reqwest::Body::wrap(http_body_util::StreamBody::new(futures::stream::iter(
                chunks,
            ))),
        )
        .await;
    assert_eq!(status, 413);
    assert_eq!(dump(&fleet.db()), before);
}

#[tokio::test]
async fn requests_are_counted_per_name_and_status_without_letting_clients_add_series() {
    let fleet = Fleet::start("").await;
    assert_eq!(fleet.heartbeat("prod-box", json!({})).await.0, 200);
    // Unstamped, and refused.
    let (s, _) = fleet
        .send(
            Method::POST,
            "/api/v1/heartbeats/prod-box",
            Some("wrong"),
            &[],
            None,
            "",
        )
        .await;
    assert_eq!(s, 401);
    for i in 0..5 {
        let (s, _) = fleet
            .send(
                Method::POST,
                &format!("/api/v1/heartbeats/random-{i}"),
                Some(FLEET_TOKEN),
                &[],
                None,
                "",
            )
            .await;
        assert_eq!(s, 404);
        let (s, _) = fleet
            .send(
                Method::POST,
                &format!("/api/v1/heartbeats/bad%20name-{i}"),
                Some(FLEET_TOKEN),
                &[],
                None,
                "",
            )
            .await;
        assert_eq!(s, 400);
    }
    let body = eventually(Duration::from_secs(5), "refusals counted", || async {
        let body = fleet.metrics().await;
        (sample(
            &body,
            r#"fleet_ingest_requests_total{stack="",pusher="_invalid",code="400"}"#,
        ) == Some(5.0))
        .then_some(body)
    })
    .await;
    for (series, want) in [
        (
            r#"fleet_ingest_requests_total{stack="prod",pusher="prod-box",code="200"}"#,
            1.0,
        ),
        (
            r#"fleet_ingest_requests_total{stack="prod",pusher="prod-box",code="401"}"#,
            1.0,
        ),
        (
            r#"fleet_ingest_requests_total{stack="",pusher="_unknown",code="404"}"#,
            5.0,
        ),
        (
            r#"fleet_ingest_unstamped_requests_total{stack="prod",pusher="prod-box"}"#,
            1.0,
        ),
        (
            r#"fleet_ingest_unstamped_requests_total{stack="",pusher="_unknown"}"#,
            5.0,
        ),
    ] {
        assert_eq!(sample(&body, series), Some(want), "{series}\n{body}");
    }
    assert!(
        !body.contains("random-"),
        "an unknown name got series of its own"
    );
    assert!(
        !body.contains("bad name"),
        "an invalid name got series of its own"
    );
}

#[tokio::test]
async fn unknown_names_are_accepted_up_to_the_cap_across_restarts() {
    let mut fleet = Fleet::start("  unknown_names_cap: 2").await;
    assert_eq!(fleet.heartbeat("guest-a", json!({})).await.0, 200);
    assert_eq!(
        fleet
            .put_json("/api/v1/host-health/guest-b", json!({"checks": []}))
            .await
            .0,
        200
    );
    // Admitted outside the inventory, the host is in the aggregate, as on
    // the board.
    let (s, v) = fleet
        .send(
            Method::GET,
            "/api/v1/host-health",
            Some(FLEET_TOKEN),
            &[],
            None,
            "",
        )
        .await;
    assert_eq!((s, &v["hosts"][0]["host"]), (200, &json!("guest-b")), "{v}");
    let before = dump(&fleet.db());
    let (s, v) = fleet.heartbeat("guest-c", json!({})).await;
    assert_eq!(s, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("cap of 2"), "{v}");
    assert_eq!(dump(&fleet.db()), before);
    // Names already accepted, and inventory names, still go through.
    assert_eq!(fleet.heartbeat("guest-a", json!({})).await.0, 200);
    assert_eq!(fleet.heartbeat("prod-box", json!({})).await.0, 200);

    fleet.restart().await;
    assert_eq!(fleet.heartbeat("guest-c", json!({})).await.0, 404);
    let (s, v) = fleet.heartbeat("guest-a", json!({})).await;
    assert_eq!(
        (s, &v["heartbeats"], &v["stack"]),
        (200, &json!(3), &json!(""))
    );
    let guest = r#"fleet_heartbeats_total{stack="",box="guest-a"}"#;
    let body = fleet.metrics_showing(&[(guest, 3.0)]).await;
    assert_eq!(sample(&body, guest), Some(3.0));
    assert_eq!(
        sample(
            &body,
            r#"fleet_ingest_requests_total{stack="",pusher="guest-a",code="200"}"#
        ),
        Some(1.0),
        "counters restart with the process"
    );
    assert!(sample(
        &body,
        r#"fleet_ingest_requests_total{stack="",pusher="_unknown",code="404"}"#
    )
    .is_some());
}

/// Shutting down waits for the store to close: the last connection's
/// checkpoint folds the write-ahead log into the database file and removes
/// it, so the file can be copied or opened by another program at once.
#[tokio::test]
async fn shutdown_returns_once_the_store_has_closed() {
    let mut fleet = Fleet::start("").await;
    let (s, v) = fleet
        .heartbeat("prod-box", json!({"boot_time": 1_700_000_000}))
        .await;
    assert_eq!(s, 200, "{v}");
    let wal = fleet.db().with_extension("db-wal");
    assert!(wal.exists(), "{} while serving", wal.display());
    fleet.running.take().unwrap().shutdown().await.unwrap();
    assert!(!wal.exists(), "{} after shutdown", wal.display());
    let conn = rusqlite::Connection::open(fleet.db()).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM heartbeats", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

/// A heartbeat is a boot: the same boot sent again (a retry, or a push
/// resent to every replica) is heard but neither counted nor taken for a new
/// boot; the boots kept per box are the last hour's, at most 16.
#[tokio::test]
async fn a_boot_sent_again_is_not_counted_and_the_boots_kept_are_the_last_hours() {
    let mut fleet = Fleet::start("").await;
    let boot = |t: u64| json!({"boot_time": t});
    let (s, v) = fleet.heartbeat("prod-box", boot(1_700_000_000)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (&v["heartbeats"], &v["boots_in_last_hour"]),
        (&json!(1), &json!(1))
    );
    let (_, v) = fleet.heartbeat("prod-box", boot(1_700_000_000)).await;
    assert_eq!(
        (&v["heartbeats"], &v["boots_in_last_hour"]),
        (&json!(1), &json!(1)),
        "the same boot again: {v}"
    );
    let mut last = Value::Null;
    for i in 1..=20 {
        last = fleet.heartbeat("prod-box", boot(1_700_000_000 + i)).await.1;
    }
    assert_eq!(
        (&last["heartbeats"], &last["boots_in_last_hour"]),
        (&json!(21), &json!(16)),
        "{last}"
    );

    // Boots older than an hour are forgotten at the next one, and a longer
    // list (kept by a build with a larger cap) is cut to the newest 16.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // Stops the exporter, stores `list` as the box's boots, starts it again
    // and sends a new boot; returns the answer and the boots then stored.
    async fn after_storing(fleet: &mut Fleet, list: &[f64], boot: Value) -> (Value, Vec<f64>) {
        if let Some(r) = fleet.running.take() {
            r.shutdown().await.unwrap();
        }
        rusqlite::Connection::open(fleet.db())
            .unwrap()
            .execute(
                "UPDATE heartbeats SET recent = ?1 WHERE box = 'prod-box'",
                [serde_json::to_string(list).unwrap()],
            )
            .unwrap();
        fleet.up().await;
        let (_, v) = fleet.heartbeat("prod-box", boot).await;
        let conn = rusqlite::Connection::open(fleet.db()).unwrap();
        let json: String = conn
            .query_row(
                "SELECT recent FROM heartbeats WHERE box = 'prod-box'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (v, serde_json::from_str(&json).unwrap())
    }
    let old_and_new = [now - 7200.0, now - 60.0];
    let (v, kept) = after_storing(&mut fleet, &old_and_new, boot(1_700_000_100)).await;
    assert_eq!(v["boots_in_last_hour"], json!(2), "{v}");
    assert_eq!((kept.len(), kept[0]), (2, now - 60.0), "{kept:?}");
    let within: Vec<f64> = (0..30).map(|i| now - 600.0 + f64::from(i)).collect();
    let (v, kept) = after_storing(&mut fleet, &within, boot(1_700_000_200)).await;
    assert_eq!(v["boots_in_last_hour"], json!(16), "{v}");
    assert_eq!(kept.len(), 16, "{kept:?}");
    assert_eq!(
        kept[..15],
        within[15..],
        "the newest 15 stored, then this boot"
    );
}

/// A name outside the inventory holds its place under the cap while any of
/// its rows (heartbeats, test runs, mutation results, a doctor snapshot)
/// is left, and gives it up when DELETE removes the last.
#[tokio::test]
async fn an_unknown_name_holds_its_place_until_its_last_row_is_removed() {
    let fleet = Fleet::start("  unknown_names_cap: 1").await;
    let put = |kind: &'static str, name: &'static str| {
        let body = match kind {
            "test-runs" => json!({"passed": 2, "failed": 0, "skipped": 0}),
            "mutants" => json!({"caught": 3}),
            _ => json!({"checks": [{"name": "disk", "status": "ok"}]}),
        };
        let fleet = &fleet;
        async move {
            let (s, v) = fleet
                .put_json(&format!("/api/v1/{kind}/{name}"), body)
                .await;
            assert_eq!(s, 200, "{kind}/{name}: {v}");
        }
    };
    let delete = |kind: &'static str, name: &'static str| {
        let fleet = &fleet;
        async move {
            let (s, v) = fleet
                .send(
                    Method::DELETE,
                    &format!("/api/v1/{kind}/{name}"),
                    Some(FLEET_TOKEN),
                    &[],
                    None,
                    "",
                )
                .await;
            assert_eq!((s, &v["removed"]), (200, &json!(1)), "{kind}/{name}: {v}");
        }
    };
    // Whether the one place is taken: a new unknown name is refused.
    let place_taken = || async {
        let (s, v) = fleet.heartbeat("other", json!({})).await;
        match s {
            404 => true,
            200 => false,
            _ => panic!("{s} {v}"),
        }
    };
    // A run of an inventory service, which removing ghost's leaves alone.
    put("test-runs", "broker?stack=prod").await;
    assert_eq!(fleet.heartbeat("ghost", json!({})).await.0, 200);
    for kind in ["test-runs", "mutants", "host-health"] {
        put(kind, "ghost").await;
    }
    assert!(place_taken().await);
    for kind in ["heartbeats", "host-health", "mutants"] {
        delete(kind, "ghost").await;
        assert!(place_taken().await, "ghost still has rows after {kind}");
    }
    delete("test-runs", "ghost").await;
    assert!(!place_taken().await, "ghost's last row is gone");
    let broker = r#"fleet_test_run_tests{stack="prod",component="broker",outcome="passed"}"#;
    assert_eq!(sample(&fleet.metrics().await, broker), Some(2.0));

    // Again with a mutation result and a snapshot, the snapshot removed first.
    delete("heartbeats", "other").await;
    put("mutants", "ghost").await;
    put("host-health", "ghost").await;
    delete("host-health", "ghost").await;
    assert!(place_taken().await, "ghost's mutation result is left");
    delete("mutants", "ghost").await;
    assert!(!place_taken().await);
}

#[tokio::test]
async fn an_unknown_services_stored_results_count_against_the_cap_after_a_restart() {
    let mut fleet = Fleet::start("  unknown_names_cap: 1").await;
    let outcomes = json!({"outcomes": [
        {"scenario": "Baseline", "summary": "Success"},
        {"scenario": {"Mutant": {}}, "summary": "CaughtMutant"}]});
    let (s, v) = fleet.put_json("/api/v1/mutants/guest-svc", outcomes).await;
    assert_eq!(s, 200, "{v}");

    fleet.restart().await;
    let (s, v) = fleet.heartbeat("guest-x", json!({})).await;
    assert_eq!(
        s, 404,
        "the service read back from the store holds the one place: {v}"
    );
    assert!(v["error"].as_str().unwrap().contains("cap of 1"), "{v}");
}

#[tokio::test]
async fn the_pulse_is_reloaded_from_the_store_on_start() {
    let mut fleet = Fleet::start("").await;
    for _ in 0..3 {
        assert_eq!(
            fleet
                .heartbeat("test-1-box", json!({"version": "2.0"}))
                .await
                .0,
            200
        );
    }
    assert_eq!(
        fleet
            .send(
                Method::PUT,
                "/api/v1/test-runs/signer",
                Some(FLEET_TOKEN),
                &[],
                Some("text/xml"),
                JUNIT
            )
            .await
            .0,
        200
    );
    assert_eq!(
        fleet
            .send(
                Method::PUT,
                "/api/v1/test-runs/broker?stack=test-1",
                Some(FLEET_TOKEN),
                &[],
                Some("application/json"),
                r#"{"passed": 4, "failed": 0, "skipped": 0}"#
            )
            .await
            .0,
        200
    );
    assert_eq!(
        fleet
            .send(
                Method::PUT,
                "/api/v1/host-health/test-1-host",
                Some(FLEET_TOKEN),
                &[],
                Some("application/json"),
                DOCTOR
            )
            .await
            .0,
        200
    );
    let before = fleet.running.as_ref().unwrap().hub.pulse();
    fleet.restart().await;
    // Every count and time read back as it was stored.
    let after = fleet.running.as_ref().unwrap().hub.pulse();
    assert_eq!(after.test_runs, before.test_runs);
    assert_eq!(after.host_health, before.host_health);
    let broker = &after.test_runs[&("test-1".to_string(), "broker".to_string())];
    assert_eq!((broker.passed, broker.failed, broker.skipped), (4, 0, 0));
    // Each run read back says how it was reported.
    let (s, v) = fleet
        .send(Method::GET, "/api/v1/fleet", None, &[], None, "")
        .await;
    assert_eq!(s, 200, "{v}");
    let formats: Vec<(&str, &str)> = v["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["service"].as_str().unwrap(),
                t["format"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        formats.contains(&("signer", "junit")) && formats.contains(&("broker", "json")),
        "{formats:?}"
    );
    let body = fleet.metrics().await;
    assert_eq!(
        sample(
            &body,
            r#"fleet_heartbeats_total{stack="test-1",box="test-1-box"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &body,
            r#"fleet_test_run_tests{stack="test-1",component="signer",outcome="skipped"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &body,
            r#"fleet_host_health_checks{stack="test-1",host="test-1-host",status="fail"}"#
        ),
        Some(1.0)
    );
    let pulse = fleet.running.as_ref().unwrap().hub.pulse();
    let hb = pulse.heartbeat("test-1-box").unwrap();
    assert_eq!((hb.count, hb.recent.len()), (3, 3));
    assert_eq!(hb.version.as_deref(), Some("2.0"));
    assert_eq!(hb.commit.as_deref(), Some("c0ffee1"));
}

#[tokio::test]
async fn a_store_that_cannot_be_used_stops_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "127.0.0.1:0", "", &[]);
    let base = Config::load(&path).unwrap();
    let start = |state_dir: PathBuf| {
        let mut c = base.clone();
        c.state_dir = Some(state_dir);
        async move {
            match crate::common::try_start_exporter(Arc::new(c)).await {
                Ok(_) => panic!("started"),
                Err(e) => e.to_string(),
            }
        }
    };

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let e = start(corrupt).await;
    assert!(
        e.contains("corrupt or not a fleetpulse database") && e.contains("move it aside"),
        "{e}"
    );

    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = start(file).await;
    assert!(
        e.contains("cannot create it") || e.contains("not a directory"),
        "{e}"
    );

    // Read-only even for root: procfs.
    let e = start(PathBuf::from("/proc/self")).await;
    assert!(e.contains("is not writable"), "{e}");

    // A full disk: every write to the database file fails with ENOSPC.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::os::unix::fs::symlink("/dev/full", full.join(DB_FILE)).unwrap();
    let e = start(full).await;
    assert!(
        e.contains("the disk is full") && e.contains("free space"),
        "a full disk is named: {e}"
    );

    let missing_tokens = dir.path().join("no-tokens.yaml");
    let mut c = base.clone();
    c.ingest.tokens_file = Some(missing_tokens);
    let e = crate::common::try_start_exporter(Arc::new(c))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cannot read the tokens file"), "{e}");

    // Through the binary: a message and exit status 1, not a panic.
    let corrupt_path = write_config(dir.path(), "127.0.0.1:0", "", &[]);
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state").join(DB_FILE), vec![0x5a; 8192]).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&corrupt_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("move it aside") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

/// A `fleetpulse serve` child process, killed when dropped.
async fn serve(config: &Path) -> Process {
    let child = Command::new(BIN)
        .args(["--log-level", "warn", "serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    child_ready(config).await;
    Process::adopt(child, 0)
}

async fn child_ready(config: &Path) {
    let c = Config::load(config).unwrap();
    let url = format!("http://{}/healthz", c.listen);
    eventually(Duration::from_secs(20), "fleetpulse serving", || {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_push_survives_sigkill() {
    // A load of its own: not beside the tests that need the machine quiet.
    let _alone = common::machine_alone().await;
    const WRITERS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let boxes: Vec<String> = (0..WRITERS).map(|i| format!("kill-box-{i}")).collect();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = write_config(dir.path(), &listen, "", &boxes);
    let mut child = serve(&config).await;

    let http = reqwest::Client::new();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Per writer: the highest heartbeat count acknowledged.
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let doctor_acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        let (http, stop, acked) = (http.clone(), stop.clone(), acked.clone());
        let url = format!("http://{listen}/api/v1/heartbeats/{b}");
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(r) = http.post(&url).bearer_auth(FLEET_TOKEN).send().await else {
                    break;
                };
                if r.status() != 200 {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else {
                    break;
                };
                acked[i].store(v["heartbeats"].as_u64().unwrap(), Ordering::SeqCst);
            }
        }));
    }
    {
        let (http, stop, doctor_acked) = (http.clone(), stop.clone(), doctor_acked.clone());
        let url = format!("http://{listen}/api/v1/host-health/prod-host");
        tasks.push(tokio::spawn(async move {
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let doc = json!({"seq": seq, "checks": [{"status": "ok"}]}).to_string();
                let Ok(r) = http
                    .put(&url)
                    .bearer_auth(FLEET_TOKEN)
                    .header("content-type", "application/json")
                    .body(doc)
                    .send()
                    .await
                else {
                    break;
                };
                if r.status() != 200 {
                    break;
                }
                doctor_acked.store(seq, Ordering::SeqCst);
            }
        }));
    }
    // Kill the server in the middle of the pushes: once every writer has
    // had a few acknowledged, while all of them are still sending.
    eventually(Duration::from_secs(30), "every writer acknowledged", || {
        let (acked, doctor_acked) = (acked.clone(), doctor_acked.clone());
        async move {
            (acked.iter().all(|a| a.load(Ordering::SeqCst) >= 5)
                && doctor_acked.load(Ordering::SeqCst) >= 5)
                .then_some(())
        }
    })
    .await;
    child.stop(); // SIGKILL, and wait for it
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let total: u64 = acked.iter().map(|a| a.load(Ordering::SeqCst)).sum();
    assert!(
        total > 100,
        "only {total} pushes were acknowledged before the kill"
    );

    let db = dir.path().join("state").join(DB_FILE);
    let _restarted = serve(&config).await;
    let body = common::get(&format!("http://{listen}/metrics")).await.1;
    for (i, b) in boxes.iter().enumerate() {
        let acked = acked[i].load(Ordering::SeqCst) as f64;
        let stored = sample(
            &body,
            &format!(r#"fleet_heartbeats_total{{stack="prod",box="{b}"}}"#),
        )
        .unwrap_or(0.0);
        // Every acknowledged push is there; at most the one in flight at
        // the kill may have been committed without its answer arriving.
        assert!(
            stored >= acked && stored <= acked + 1.0,
            "{b}: {acked} acknowledged, {stored} stored"
        );
    }
    let doc = http
        .get(format!("http://{listen}/api/v1/host-health/prod-host"))
        .bearer_auth(FLEET_TOKEN)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let seq = doc["seq"].as_u64().unwrap();
    let doctor_acked = doctor_acked.load(Ordering::SeqCst);
    assert!(
        seq == doctor_acked || seq == doctor_acked + 1,
        "doctor seq {seq}, acknowledged {doctor_acked}"
    );

    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

fn run_cli(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("FLEETPULSE_TOKEN")
        .env_remove("FLEETPULSE_URL")
        .env_remove("FLEETPULSE_COMMIT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let input = stdin.unwrap_or("").to_string();
    let mut pipe = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_cli_delivers_every_kind_and_fails_loudly() {
    let fleet = Fleet::start("").await;
    let dir = fleet.dir.path();
    let token_file = dir.join("push.token");
    std::fs::write(&token_file, format!("{FLEET_TOKEN}\n")).unwrap();
    let token_file = token_file.to_str().unwrap().to_string();
    let junit = dir.join("report.xml");
    std::fs::write(&junit, JUNIT).unwrap();
    let doctor = dir.join("doctor.json");
    std::fs::write(&doctor, DOCTOR).unwrap();
    let url = fleet.base.clone();
    let common = ["--url", url.as_str(), "--token-file", token_file.as_str()];

    let ok = |args: Vec<&str>, stdin: Option<&str>, env: &[(&str, &str)]| {
        let (code, out, err) = run_cli(&args, stdin, env);
        assert_eq!(code, 0, "{args:?}: {out}{err}");
        out
    };
    let mut a = vec!["push", "heartbeat"];
    a.extend(common);
    a.extend([
        "--box",
        "prod-box",
        "--commit",
        "feedbee",
        "--version",
        "3.1",
    ]);
    let out = ok(a, None, &[]);
    assert!(out.contains("\"heartbeats\":1"), "{out}");

    let mut a = vec!["push", "test-run"];
    a.extend(common);
    a.extend([
        "--service",
        "broker",
        "--stack",
        "prod",
        "--file",
        junit.to_str().unwrap(),
    ]);
    ok(a, None, &[]);

    // JSON from stdin, the token from the environment.
    let a = vec![
        "push",
        "mutants",
        "--url",
        url.as_str(),
        "--service",
        "broker",
        "--file",
        "-",
    ];
    ok(
        a,
        Some(r#"{"caught": 7, "missed": 2}"#),
        &[
            ("FLEETPULSE_TOKEN", FLEET_TOKEN),
            ("FLEETPULSE_COMMIT", "0ddba11"),
        ],
    );

    let mut a = vec!["push", "host-health"];
    a.extend(common);
    a.extend(["--host", "prod-host", "--file", doctor.to_str().unwrap()]);
    ok(a, None, &[]);

    let expected = [
        (
            r#"fleet_box_commit_info{stack="prod",box="prod-box",commit="feedbee",version="3.1"}"#,
            1.0,
        ),
        (
            r#"fleet_test_run_tests{stack="prod",component="broker",outcome="failed"}"#,
            1.0,
        ),
        (
            r#"fleet_test_mutants{stack="prod",component="broker",outcome="caught"}"#,
            7.0,
        ),
        (
            r#"fleet_host_health_checks{stack="prod",host="prod-host",status="ok"}"#,
            1.0,
        ),
        (
            r#"fleet_ingest_unstamped_requests_total{stack="prod",pusher="prod-box"}"#,
            0.0,
        ),
    ];
    let body = fleet.metrics_showing(&expected).await;
    for (series, want) in expected {
        assert_eq!(sample(&body, series), Some(want), "{series}\n{body}");
    }

    // A refusal is final: exit 1 at once, the server's reason, no token.
    let box_token = dir.join("box.token");
    std::fs::write(&box_token, BOX_TOKEN).unwrap();
    let (code, _, err) = run_cli(
        &[
            "push",
            "heartbeat",
            "--url",
            &url,
            "--token-file",
            box_token.to_str().unwrap(),
            "--box",
            "test-1-box",
        ],
        None,
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("403") && err.contains("may not write test-1-box"),
        "{err}"
    );
    assert!(!err.contains(BOX_TOKEN));
    let (code, _, err) = run_cli(
        &["push", "heartbeat", "--url", &url, "--box", "prod-box"],
        None,
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("no token"), "{err}");

    // Nothing listening: retried, then given up with a non-zero exit.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (code, _, err) = run_cli(
        &[
            "push",
            "heartbeat",
            "--url",
            &dead,
            "--token-file",
            &token_file,
            "--box",
            "prod-box",
            "--attempts",
            "3",
            "--backoff",
            "50ms",
        ],
        None,
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("gave up after 3 attempts"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_cli_retries_until_fleetpulse_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = write_config(dir.path(), &listen, "", &[]);
    let token_file = dir.path().join("t");
    std::fs::write(&token_file, FLEET_TOKEN).unwrap();
    let url = format!("http://{listen}");
    let args: Vec<String> = [
        "push",
        "heartbeat",
        "--url",
        &url,
        "--token-file",
        token_file.to_str().unwrap(),
        "--box",
        "prod-box",
        "--attempts",
        "30",
        "--backoff",
        "200ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let client = std::thread::spawn(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&a, None, &[])
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _server = serve(&config).await;
    let (code, out, err) = tokio::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("retrying"), "no retry was logged: {err}");
}

#[test]
fn hash_token_prints_what_the_tokens_file_holds() {
    let (code, out, _) = run_cli(&["hash-token"], Some("s3cret\n"), &[]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), hash_token("s3cret"));
}

#[tokio::test]
async fn the_demo_pushes_every_kind_and_its_token_works_with_curl_style_requests() {
    let dir = tempfile::tempdir().unwrap();
    let demo = common::start_demo(dir.path()).await;
    let base = format!("http://{}", demo.exporter.addr);
    let body = common::get(&format!("{base}/metrics")).await.1;
    for (series, want) in [
        (
            r#"fleet_heartbeats_total{stack="test-2",box="test-2-box"}"#,
            5.0,
        ),
        (
            r#"fleet_box_expected{stack="test-2",box="test-2-spare"}"#,
            1.0,
        ),
        (
            r#"fleet_test_run_tests{stack="test-1",component="signer",outcome="failed"}"#,
            3.0,
        ),
        (
            r#"fleet_test_run_tests{stack="test-1",component="broker",outcome="skipped"}"#,
            1.0,
        ),
        (
            r#"fleet_test_mutants{stack="prod",component="signer",outcome="missed"}"#,
            4.0,
        ),
        (
            r#"fleet_host_health_checks{stack="test-2",host="test-2-host",status="fail"}"#,
            1.0,
        ),
        (
            r#"fleet_ingest_unstamped_requests_total{stack="test-2",pusher="test-2-box"}"#,
            5.0,
        ),
    ] {
        assert_eq!(sample(&body, series), Some(want), "{series}\n{body}");
    }
    assert!(sample(
        &body,
        r#"fleet_heartbeats_total{stack="test-2",box="test-2-spare"}"#
    )
    .is_none());
    // The project's own recorded mutation score is on the board.
    let score: Value = serde_json::from_str(include_str!("../../docs/mutants/score.json")).unwrap();
    for outcome in ["caught", "missed", "timeout", "unviable"] {
        let series =
            format!(r#"fleet_test_mutants{{stack="",component="fleetpulse",outcome="{outcome}"}}"#);
        assert_eq!(
            sample(&body, &series),
            score[outcome].as_f64(),
            "{series}\n{body}"
        );
    }
    assert!(dir.path().join("demo-junit.xml").exists());
    let token = std::fs::read_to_string(dir.path().join("ingest.token")).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/heartbeats/prod-box"))
        .bearer_auth(token.trim())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A server that answers each request with the next of `answers` (status,
/// Retry-After) and then 200, noting when each request came.
async fn answering(
    answers: Vec<(u16, Option<&'static str>)>,
) -> (String, Arc<std::sync::Mutex<Vec<std::time::Instant>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let queue = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        answers,
    )));
    let (s, q) = (seen.clone(), queue.clone());
    let app = axum::Router::new().fallback(move || {
        let (s, q) = (s.clone(), q.clone());
        async move {
            s.lock().unwrap().push(std::time::Instant::now());
            let mut resp = axum::response::Response::new(axum::body::Body::from(
                r#"{"error":"busy, come back later"}"#,
            ));
            if let Some((code, after)) = q.lock().unwrap().pop_front() {
                *resp.status_mut() = axum::http::StatusCode::from_u16(code).unwrap();
                if let Some(a) = after {
                    resp.headers_mut()
                        .insert("retry-after", axum::http::HeaderValue::from_static(a));
                }
            }
            resp
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_comes_back_when_retry_after_says_not_after_its_backoff() {
    // A 429 asking for 1 s: the client waits that, not its 20 s backoff.
    let (url, seen) = answering(vec![(429, Some("1"))]).await;
    let args = [
        "push",
        "heartbeat",
        "--url",
        &url,
        "--box",
        "prod-box",
        "--backoff",
        "20s",
        "--attempts",
        "3",
    ]
    .map(str::to_string);
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args, None, &[("FLEETPULSE_TOKEN", "t")])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let times = seen.lock().unwrap().clone();
    assert_eq!(times.len(), 2, "one refusal, one success");
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_millis(950) && gap < Duration::from_secs(10),
        "came back after {gap:?}"
    );

    // A 503 asking for 10 minutes: given up at once, saying so.
    let (url, seen) = answering(vec![(503, Some("600"))]).await;
    let args = [
        "push",
        "heartbeat",
        "--url",
        &url,
        "--box",
        "prod-box",
        "--attempts",
        "3",
    ]
    .map(str::to_string);
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&args, None, &[("FLEETPULSE_TOKEN", "t")])
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("busy, come back later") && err.contains("come back in 600 s"),
        "{err}"
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no retry into a wait that long"
    );
}

/// An HA pair: every box pushes to two replicas, each a whole fleetpulse
/// with a store of its own. One replica is SIGKILLed under the push load and
/// started again. The other has every push it acknowledged, the restarted
/// one has every push it acknowledged before and after (and misses those
/// made while it was down), and `fleetpulse push` exits as `--min-acks`
/// says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ha_pair_keeps_every_acknowledged_push_while_one_replica_is_killed() {
    // A load of its own: not beside the tests that need the machine quiet.
    let _alone = common::machine_alone().await;
    use fleetpulse::push::{self, ClientOptions, Push, PushClient};
    const BOXES: usize = 8;
    let boxes: Vec<String> = (0..BOXES).map(|i| format!("ha-box-{i}")).collect();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let listen_a = format!("127.0.0.1:{}", free_port());
    let listen_b = format!("127.0.0.1:{}", free_port());
    let config_a = write_config(dir_a.path(), &listen_a, "", &boxes);
    let config_b = write_config(dir_b.path(), &listen_b, "", &boxes);
    let mut a = serve(&config_a).await;
    let _b = serve(&config_b).await;
    let (url_a, url_b) = (format!("http://{listen_a}"), format!("http://{listen_b}"));

    let clients: Arc<Vec<PushClient>> = Arc::new(
        [&url_a, &url_b]
            .iter()
            .map(|url| {
                PushClient::new(ClientOptions {
                    url: url.to_string(),
                    token: FLEET_TOKEN.into(),
                    commit: None,
                    attempts: 2,
                    first_backoff: Duration::from_millis(20),
                    timeout: Duration::from_secs(5),
                    tls: None,
                })
                .unwrap()
            })
            .collect(),
    );
    // Per box and replica: the highest heartbeat count acknowledged.
    let acked: Arc<Vec<[AtomicU64; 2]>> = Arc::new(
        (0..BOXES)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
            .collect(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        let (clients, acked, stop) = (clients.clone(), acked.clone(), stop.clone());
        let heartbeat = Push::Heartbeat {
            box_name: b.clone(),
            version: None,
            boot_time: None,
        };
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let delivery = push::deliver(&clients, &heartbeat).await;
                for (r, (_, outcome)) in delivery.replicas.iter().enumerate() {
                    if let Ok(ack) = outcome {
                        let n = serde_json::from_str::<Value>(&ack.body).unwrap()["heartbeats"]
                            .as_u64()
                            .unwrap();
                        acked[i][r].fetch_max(n, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    let counts =
        |r: usize| -> Vec<u64> { acked.iter().map(|a| a[r].load(Ordering::SeqCst)).collect() };
    let all_past = |r: usize, floor: Vec<u64>| {
        let acked = acked.clone();
        move || {
            let done = acked
                .iter()
                .zip(&floor)
                .all(|(a, f)| a[r].load(Ordering::SeqCst) >= f + 5);
            async move { done.then_some(()) }
        }
    };
    eventually(
        Duration::from_secs(30),
        "both replicas acknowledging",
        all_past(0, vec![0; BOXES]),
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "both replicas acknowledging",
        all_past(1, vec![0; BOXES]),
    )
    .await;

    a.stop(); // SIGKILL, and wait for it
    let b_at_kill = counts(1);
    let cli = |extra: &'static [&'static str], env: Vec<(&'static str, String)>| {
        let (url_a, url_b) = (url_a.clone(), url_b.clone());
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["push", "heartbeat", "--box", "prod-box", "--attempts", "2"];
            args.extend(["--backoff", "50ms"]);
            let urls = ["--url", url_a.as_str(), "--url", url_b.as_str()];
            if env.iter().all(|(k, _)| *k != "FLEETPULSE_URL") {
                args.extend(urls);
            }
            args.extend(extra);
            let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.push(("FLEETPULSE_TOKEN", FLEET_TOKEN));
            run_cli(&args, None, &env)
        })
    };
    // One replica down: every replica is needed by default, so the push
    // fails, naming the one that did not acknowledge; one is enough with
    // --min-acks 1. The list in FLEETPULSE_URL works as --url does.
    let (code, out, err) = cli(&[], vec![]).await.unwrap();
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&url_a) && err.contains("1 of 2 replicas acknowledged; 2 needed"),
        "{err}"
    );
    assert!(
        out.contains(&url_b) && out.contains("\"heartbeats\""),
        "{out}"
    );
    let (code, out, err) = cli(&["--min-acks", "1"], vec![]).await.unwrap();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(
        err.contains(&url_a),
        "the replica that did not answer is named: {err}"
    );
    let list = format!("{url_a},{url_b}");
    let (code, _, err) = cli(&[], vec![("FLEETPULSE_URL", list)]).await.unwrap();
    assert_eq!(code, 1, "{err}");
    let (code, _, err) = cli(&["--min-acks", "3"], vec![]).await.unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--min-acks must be between 1 and the number of URLs (2)"),
        "{err}"
    );

    // The other replica goes on acknowledging while this one is down. Once
    // every box has had 5 more acknowledged by B, no delivery begun before
    // the kill is still in flight: from then on, A acknowledges nothing.
    eventually(
        Duration::from_secs(30),
        "replica B acknowledging alone",
        all_past(1, b_at_kill.clone()),
    )
    .await;
    let a_dead = counts(0);
    eventually(
        Duration::from_secs(30),
        "replica B acknowledging alone",
        all_past(1, counts(1)),
    )
    .await;
    assert_eq!(
        counts(0),
        a_dead,
        "nothing is acknowledged by a dead replica"
    );
    a = serve(&config_a).await;
    eventually(
        Duration::from_secs(30),
        "replica A back",
        all_past(0, a_dead.clone()),
    )
    .await;
    let (code, out, err) = cli(&[], vec![]).await.unwrap();
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert_eq!(out.lines().count(), 2, "one answer per replica: {out}");

    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let stored = |url: String| async move {
        let body = common::get(&format!("{url}/metrics")).await.1;
        move |b: &str| {
            sample(
                &body,
                &format!(r#"fleet_heartbeats_total{{stack="prod",box="{b}"}}"#),
            )
            .unwrap_or(0.0) as u64
        }
    };
    let (on_a, on_b) = (stored(url_a.clone()).await, stored(url_b.clone()).await);
    let (acked_a, acked_b) = (counts(0), counts(1));
    for (i, b) in boxes.iter().enumerate() {
        // Every acknowledged push is there; at most the one in flight at
        // the kill may have been committed without its answer arriving.
        assert!(
            on_b(b) == acked_b[i],
            "{b}: replica B acknowledged {} and holds {}",
            acked_b[i],
            on_b(b)
        );
        assert!(
            on_a(b) >= acked_a[i] && on_a(b) <= acked_a[i] + 1,
            "{b}: replica A acknowledged {} and holds {}",
            acked_a[i],
            on_a(b)
        );
        // What A missed while it was down, B has.
        assert!(
            on_b(b) >= on_a(b) + 4,
            "{b}: A holds {}, B {}",
            on_a(b),
            on_b(b)
        );
    }
    // The command line's heartbeats all report this machine's one boot: B
    // acknowledged the three made while A was down (two of them failed for
    // want of A's acknowledgement; the one asking for three replicas was
    // refused before it was sent) and the last, and counts the boot once,
    // as A does from the last.
    assert_eq!((on_a("prod-box"), on_b("prod-box")), (1, 1));
    drop(a);
}

/// A heartbeat that repeats the boot time the box last reported (a retried
/// push, or one resent until every replica acknowledged) is heard but not
/// counted as a boot; a new boot time is; a heartbeat without one always is.
#[tokio::test]
async fn a_heartbeat_repeating_its_boot_is_heard_not_counted_again() {
    let fleet = Fleet::start("").await;
    let boot = |t: u64| json!({"boot_time": t});
    for (body, want) in [
        (boot(1_700_000_000), 1),
        (boot(1_700_000_000), 1),
        (boot(1_700_000_000), 1),
        (boot(1_700_000_600), 2),
        (boot(1_700_000_600), 2),
        (json!({}), 3),
        (json!({}), 4),
    ] {
        let (s, v) = fleet.heartbeat("prod-box", body.clone()).await;
        assert_eq!((s, &v["heartbeats"]), (200, &json!(want)), "{body}: {v}");
    }
    let (_, v) = fleet.heartbeat("prod-box", boot(1_700_000_600)).await;
    assert_eq!(
        v["heartbeats"],
        json!(5),
        "after a heartbeat without a boot time, any boot time is new: {v}"
    );
    let (_, v) = fleet.heartbeat("prod-box", boot(1_700_000_600)).await;
    assert_eq!(v["heartbeats"], json!(5), "{v}");
    fleet
        .metrics_showing(&[(
            r#"fleet_heartbeats_total{stack="prod",box="prod-box"}"#,
            5.0,
        )])
        .await;
}

/// What a runner's console summary says: (passed, failed, errored, skipped),
/// with the runner's own words mapped onto fleetpulse's four outcomes as
/// the runner's JUnit writer maps them (an expected failure, a pending, a
/// todo test is written as `<skipped>`).
fn console_counts(runner: &str, console: &str) -> (u64, u64, u64, u64) {
    // "N word" pairs of a line, as (word, N).
    fn pairs(line: &str) -> Vec<(String, u64)> {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        words
            .windows(2)
            .filter_map(|w| Some((w[1].to_string(), w[0].parse().ok()?)))
            .collect()
    }
    fn get(p: &[(String, u64)], words: &[&str]) -> u64 {
        p.iter()
            .filter(|(w, _)| words.contains(&w.as_str()))
            .map(|(_, n)| n)
            .sum()
    }
    let last = |prefix: &str| -> &str {
        console
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("{runner}: no line starting {prefix:?} in the console"))
    };
    match runner {
        "pytest" => {
            // "== 2 failed, 3 passed, 1 skipped, 1 xfailed, 1 error in 0.12s =="
            let p = pairs(last("=").trim_matches('='));
            (
                get(&p, &["passed", "xpassed"]),
                get(&p, &["failed"]),
                get(&p, &["error", "errors"]),
                get(&p, &["skipped", "xfailed"]),
            )
        }
        "node" => {
            // "ℹ pass 3" … one line each, the word first.
            let n = |w: &str| -> u64 {
                last(&format!("ℹ {w} "))
                    .trim()
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            };
            (
                n("pass"),
                n("fail") + n("cancelled"),
                0,
                n("skipped") + n("todo"),
            )
        }
        "mocha-junit" | "mocha-xunit" => {
            let n = |w: &str| -> u64 {
                console
                    .lines()
                    .find_map(|l| {
                        let p = pairs(l);
                        p.iter().find(|(x, _)| x == w).map(|(_, n)| *n)
                    })
                    .unwrap_or(0)
            };
            (n("passing"), n("failing"), 0, n("pending"))
        }
        "jest" => {
            // "Tests:       2 failed, 1 skipped, 1 todo, 3 passed, 7 total"
            // jest-junit writes a todo test as a bare <testcase>: passed.
            let p = pairs(last("Tests:"));
            (
                get(&p, &["passed", "todo"]),
                get(&p, &["failed"]),
                0,
                get(&p, &["skipped"]),
            )
        }
        "go" => {
            // gotestsum: "DONE 8 tests, 1 skipped, 3 failures in 2.718s"
            let p = pairs(last("DONE"));
            let (tests, skipped) = (get(&p, &["tests"]), get(&p, &["skipped"]));
            let (failed, errors) = (
                get(&p, &["failure", "failures"]),
                get(&p, &["error", "errors"]),
            );
            (tests - skipped - failed - errors, failed, errors, skipped)
        }
        "nextest" => {
            // "Summary [   0.005s] 5 tests run: 3 passed, 2 failed, 1 skipped".
            // nextest's report holds only the tests it ran: the skipped
            // ones are in neither its cases nor its totals.
            let line = last("Summary");
            let p = pairs(line.split(']').nth(1).unwrap_or(line));
            (get(&p, &["passed"]), get(&p, &["failed", "timed"]), 0, 0)
        }
        other => panic!("no reading of {other}'s console"),
    }
}

/// Every report in tests/fixtures/junit/ was written by a real runner
/// (scripts/junit-fixtures); pushed as the runner wrote it, fleetpulse
/// counts what the runner's own console summary says.
#[tokio::test]
async fn junit_reports_of_real_runners_count_as_their_consoles_say() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/junit");
    let mut runners: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| dir.join(n).is_dir())
        .collect();
    runners.sort();
    for want in [
        "go",
        "jest",
        "mocha-junit",
        "mocha-xunit",
        "nextest",
        "node",
        "pytest",
    ] {
        assert!(
            runners.iter().any(|r| r == want),
            "no fixture of {want}: {runners:?}"
        );
    }
    for runner in &runners {
        let report = std::fs::read(dir.join(runner).join("report.xml")).unwrap();
        let console = std::fs::read_to_string(dir.join(runner).join("console.txt")).unwrap();
        let want = console_counts(runner, &console);
        assert!(
            want.0 > 0 && want.1 > 0 && (want.3 > 0 || runner == "nextest"),
            "{runner}: the suite passes, fails and skips: {want:?}"
        );
        // A fleet of its own per report: each is the newest run there.
        let fleet = Fleet::start("").await;
        let (s, v) = fleet
            .send(
                Method::PUT,
                "/api/v1/test-runs/broker?stack=test-1",
                Some(FLEET_TOKEN),
                &[],
                Some("application/xml"),
                report,
            )
            .await;
        assert_eq!((s, &v["newest"]), (200, &json!(true)), "{runner}: {v}");
        let got = (
            v["passed"].as_u64().unwrap(),
            v["failed"].as_u64().unwrap(),
            v["errored"].as_u64().unwrap(),
            v["skipped"].as_u64().unwrap(),
        );
        assert_eq!(
            got, want,
            "{runner}: fleetpulse counted (passed, failed, errored, skipped) = {got:?}, its console says {want:?}"
        );
    }
}

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped: a disk that
/// can fill up. Needs root (CI runs as root); fails loudly otherwise.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> SmallDisk {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount: the disk-full test mounts a small tmpfs (it needs root)");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs at {} (the disk-full test needs root): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(dir.to_path_buf())
    }

    /// Writes a file until the disk is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The state disk fills up under push load: pushes are refused with 507 and
/// a message that says so (scrapes are still served), nothing acknowledged
/// is lost, and pushes are kept again as soon as there is room — and across
/// a SIGKILL and restart afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_disk_refuses_pushes_clearly_loses_nothing_and_recovers() {
    // A load of its own: not beside the tests that need the machine quiet.
    let _alone = common::machine_alone().await;
    const WRITERS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("state"), "24m");
    let boxes: Vec<String> = (0..WRITERS).map(|i| format!("full-box-{i}")).collect();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = write_config(dir.path(), &listen, "", &boxes);
    let mut child = serve(&config).await;

    let http = reqwest::Client::new();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let full = Arc::new(AtomicU64::new(0));
    let other = Arc::new(std::sync::Mutex::new(Vec::<(u16, String)>::new()));
    let mut tasks = Vec::new();
    for (i, b) in boxes.iter().enumerate() {
        let (http, stop, acked, full, other) = (
            http.clone(),
            stop.clone(),
            acked.clone(),
            full.clone(),
            other.clone(),
        );
        let url = format!("http://{listen}/api/v1/heartbeats/{b}");
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(r) = http.post(&url).bearer_auth(FLEET_TOKEN).send().await else {
                    break;
                };
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                match status {
                    200 => {
                        acked[i].fetch_max(v["heartbeats"].as_u64().unwrap(), Ordering::SeqCst);
                    }
                    507 => {
                        let msg = v["error"].as_str().unwrap_or_default().to_string();
                        assert!(
                            msg.contains("disk is full") && msg.contains("retry later"),
                            "{msg}"
                        );
                        full.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    s => other.lock().unwrap().push((s, v.to_string())),
                }
            }
        }));
    }
    let counts = || -> Vec<u64> { acked.iter().map(|a| a.load(Ordering::SeqCst)).collect() };
    let all_past = |floor: Vec<u64>| {
        let acked = acked.clone();
        move || {
            let done = acked
                .iter()
                .zip(&floor)
                .all(|(a, f)| a.load(Ordering::SeqCst) >= f + 5);
            async move { done.then_some(()) }
        }
    };
    eventually(
        Duration::from_secs(30),
        "pushes kept",
        all_past(vec![0; WRITERS]),
    )
    .await;

    let filler = disk.fill();
    eventually(
        Duration::from_secs(60),
        "pushes refused for a full disk",
        || {
            let full = full.clone();
            async move { (full.load(Ordering::SeqCst) >= 50).then_some(()) }
        },
    )
    .await;
    // Full: scrapes are served; what was acknowledged stays acknowledged.
    let (status, body) = common::get(&format!("http://{listen}/metrics")).await;
    assert_eq!(status, 200);
    let at_full = counts();
    // A refused push left no trace in what is shown: each box's count is
    // what it was acknowledged (or one ahead, committed and not yet answered).
    for (i, b) in boxes.iter().enumerate() {
        let shown = sample(
            &body,
            &format!(r#"fleet_heartbeats_total{{stack="prod",box="{b}"}}"#),
        )
        .unwrap();
        assert!(
            shown <= (at_full[i] + 1) as f64,
            "{b}: {shown} shown, {} acknowledged",
            at_full[i]
        );
    }

    std::fs::remove_file(&filler).unwrap();
    eventually(
        Duration::from_secs(60),
        "pushes kept again",
        all_past(at_full),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        other.lock().unwrap().is_empty(),
        "answers other than 200 and 507: {:?}",
        other.lock().unwrap()
    );

    let body = common::get(&format!("http://{listen}/metrics")).await.1;
    let refused = sample(
        &body,
        r#"fleet_ingest_requests_total{stack="prod",pusher="full-box-0",code="507"}"#,
    )
    .unwrap_or(0.0);
    assert!(refused > 0.0, "the refusals are counted with their code");

    // Nothing acknowledged is lost, not even to a SIGKILL after the fact.
    child.stop();
    let _restarted = serve(&config).await;
    let body = common::get(&format!("http://{listen}/metrics")).await.1;
    for (i, b) in boxes.iter().enumerate() {
        let acked = acked[i].load(Ordering::SeqCst) as f64;
        let stored = sample(
            &body,
            &format!(r#"fleet_heartbeats_total{{stack="prod",box="{b}"}}"#),
        )
        .unwrap_or(0.0);
        assert_eq!(stored, acked, "{b}: {acked} acknowledged, {stored} stored");
    }
    let db = dir.path().join("state").join(DB_FILE);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// 10,000 idle connections and a few hundred slowloris clients on the
/// listening port: the exporter's descriptors and memory stay bounded (its
/// connections by `web.max_connections`, 1,024 by default), and scrapes and
/// pushes are still served, taking the places of the oldest idle
/// connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_and_slowloris_leave_scrapes_and_pushes_served() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    const IDLE: usize = 10_000;
    const SLOW: usize = 200;
    let _alone = common::machine_alone().await;
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let config = write_config(dir.path(), &listen, "", &[]);
    let child = serve(&config).await;
    let pid = child.pid();
    let (fds_before, rss_before) = common::resources(pid);

    // Slowloris: request headers one byte at a time, never finished.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let (listen, stop) = (listen.clone(), stop.clone());
        slow.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(&listen).await else {
                return;
            };
            let head = b"POST /api/v1/heartbeats/prod-box HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            if s.write_all(head).await.is_err() {
                return;
            }
            while !stop.load(Ordering::Relaxed) {
                if s.write_all(b"a").await.is_err() {
                    return; // closed by the server
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }));
    }
    // 10,000 idle connections, held open on this side.
    let mut idle = Vec::with_capacity(IDLE);
    for batch in 0..IDLE / 500 {
        let connects = (0..500).map(|_| {
            let listen = listen.clone();
            async move {
                tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(listen))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        });
        let opened: Vec<TcpStream> = futures::future::join_all(connects)
            .await
            .into_iter()
            .flatten()
            .collect();
        assert!(
            opened.len() >= 450,
            "batch {batch}: only {} connected",
            opened.len()
        );
        idle.extend(opened);
    }
    assert!(idle.len() >= IDLE * 9 / 10, "{} connected", idle.len());

    // Under the flood: every scrape and push is answered.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut peak = (0usize, 0u64);
    for i in 0..20u64 {
        let r = http
            .get(format!("http://{listen}/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("scrape {i} under the flood: {e}"));
        assert_eq!(r.status(), 200);
        let r = http
            .post(format!("http://{listen}/api/v1/heartbeats/prod-box"))
            .bearer_auth(FLEET_TOKEN)
            .send()
            .await
            .unwrap_or_else(|e| panic!("push {i} under the flood: {e}"));
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["heartbeats"], json!(i + 1));
        let (fds, rss) = common::resources(pid);
        peak = (peak.0.max(fds), peak.1.max(rss));
    }
    // Bounded: the connections' descriptors by max_connections, memory by
    // what 1,024 idle connections cost.
    assert!(
        peak.0 <= fds_before + 1024 + 16,
        "{} descriptors open under the flood ({fds_before} before)",
        peak.0
    );
    assert!(
        peak.1 <= rss_before + 128 * 1024,
        "RSS {} KiB under the flood ({rss_before} KiB before)",
        peak.1
    );
    stop.store(true, Ordering::Relaxed);
    for s in slow {
        s.await.unwrap();
    }
    drop(idle);
    drop(child);
}
