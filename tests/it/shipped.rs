//! Smoke tests of the binaries users get: `cargo build --release --locked`
//! (default features) and the lean `--no-default-features` build, never a
//! binary built by `cargo test` (whose dependencies' features are unified
//! with the dev-dependencies' and so can differ from what ships).
//!
//! `scripts/test` builds both and names them in `FLEETPULSE_SHIPPED_BIN` and
//! `FLEETPULSE_SHIPPED_LEAN_BIN`. Each drives `demo` and `serve`, private and
//! public: every route answers as documented with no panic in the log,
//! `status` and `push` work against it, and public mode shows no internal
//! value (IP address, URL, instance id, wallet address).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{eventually, promtool_check_metrics, require_peer, spawn_listening, Process};
use serde_json::Value;

/// The two shipped builds: (what, binary).
fn shipped() -> [(&'static str, PathBuf); 2] {
    let hint = "bash scripts/test builds it: cargo build --release --locked";
    [
        ("default", require_peer("FLEETPULSE_SHIPPED_BIN", &[], hint)),
        (
            "lean",
            require_peer(
                "FLEETPULSE_SHIPPED_LEAN_BIN",
                &[],
                "bash scripts/test builds it: cargo build --release --locked --no-default-features",
            ),
        ),
    ]
}

fn run(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", bin.display()))
}

fn said(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Internal values public mode must hide: IPv4 addresses, URLs, AWS ids,
/// wallet addresses. (The page footer's link to the project's own
/// documentation is public by nature.)
fn internal_values(text: &str) -> Vec<String> {
    let text = text.replace(fleetpulse::views::page::DOCS_URL, "");
    let text = text.as_str();
    let re = regex::Regex::new(
        r"(?i)\b\d{1,3}(?:\.\d{1,3}){3}\b|[a-z][a-z0-9+.-]*://[^\s<>\x22]+|\bi-[0-9a-f]{8,17}\b|\beipalloc-[0-9a-f]{8,17}\b|\b0x[0-9a-f]{40}\b",
    )
    .expect("test pattern compiles");
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// A started exporter (demo or serve) and what a client needs to reach it.
struct Exporter {
    process: Process,
    token_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Exporter {
    fn base(&self) -> String {
        self.process.url()
    }

    fn assert_no_panic(&self, what: &str) {
        let log = self.process.log();
        assert!(
            !log.contains("panicked"),
            "{what}: the log shows a panic:\n{log}"
        );
    }
}

fn start_demo(bin: &Path, public: bool) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--log.level",
        "info",
        "demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--state-dir",
    ])
    .arg(&state);
    if public {
        cmd.arg("--public");
    }
    // The demo prints its URLs once its own pushes are in.
    let process = spawn_listening(cmd, "status page   http://127.0.0.1:", "fleetpulse demo");
    Exporter {
        process,
        token_file: state.join("ingest.token"),
        _dir: dir,
    }
}

const SERVE_TOKEN: &str = "shipped-smoke-token-0123456789";

fn start_serve(bin: &Path, public: bool) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{SERVE_TOKEN}\n")).unwrap();
    // The token's hash, as the README has users make it.
    let mut hash = Command::new(bin)
        .arg("hash-token")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = hash.stdin.take().unwrap();
        stdin.write_all(SERVE_TOKEN.as_bytes()).unwrap();
    }
    let hash = hash.wait_with_output().unwrap();
    assert!(hash.status.success(), "hash-token: {}", said(&hash));
    let sha = String::from_utf8(hash.stdout).unwrap().trim().to_string();
    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!("- sha256: {sha}\n  names: [\"*\"]\n  id: smoke\n"),
    )
    .unwrap();
    // A service nobody listens on, dialled by address: the private JSON
    // shows the address, which public mode must hide.
    let config = format!(
        "state_dir: {state}\n\
         public: {public}\n\
         sources:\n  healthz:\n    interval: 1s\n    timeout: 1s\n\
         \x20 tls:\n    interval: 1s\n    timeout: 1s\n\
         ingest:\n  tokens_file: {tokens}\n  services: [indexer]\n\
         environments:\n\
         \x20 - name: prod\n\
         \x20   boxes: [prod-box]\n\
         \x20   hosts: [prod-host]\n\
         \x20   services:\n\
         \x20     - name: broker\n\
         \x20       healthz: http://127.0.0.1:9/healthz\n\
         \x20       tls: 127.0.0.1:9\n",
        state = dir.path().join("state").display(),
        tokens = dir.path().join("tokens.yaml").display(),
    );
    let config_path = dir.path().join("fleet.yaml");
    std::fs::write(&config_path, config).unwrap();
    let check = run(bin, &["check-config", config_path.to_str().unwrap()]);
    assert!(check.status.success(), "check-config: {}", said(&check));
    let mut cmd = Command::new(bin);
    // Logging as Prometheus' exporters do: logfmt lines.
    cmd.args(["--log.format", "logfmt", "serve", "--listen", "127.0.0.1:0"])
        .arg("--config")
        .arg(&config_path);
    let process = spawn_listening(
        cmd,
        "level=info target=fleetpulse::app message=\"fleetpulse serving\" addr=127.0.0.1:",
        "fleetpulse serve",
    );
    Exporter {
        process,
        token_file,
        _dir: dir,
    }
}

async fn get(url: &str, token: Option<&str>, accept: Option<&str>) -> (u16, String, String) {
    let client = reqwest::Client::new();
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: no answer ({e})"));
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, r.text().await.unwrap_or_default())
}

/// Pushes one of each kind with `fleetpulse push` and checks the views and
/// the host-health reads; returns the page and the JSON, for the caller's
/// public-mode checks.
async fn exercise(bin: &Path, ex: &Exporter, names: &Names) -> (String, String) {
    let base = ex.base();
    let token = std::fs::read_to_string(&ex.token_file).unwrap();
    let token = token.trim();
    let files = tempfile::tempdir().unwrap();
    let junit = files.path().join("junit.xml");
    std::fs::write(
        &junit,
        r#"<testsuite name="s" tests="3" failures="1" skipped="1"><testcase name="a"/><testcase name="b"><failure/></testcase><testcase name="c"><skipped/></testcase></testsuite>"#,
    )
    .unwrap();
    let mutants = files.path().join("mutants.json");
    std::fs::write(
        &mutants,
        r#"{"caught":7,"missed":1,"timeout":0,"unviable":2}"#,
    )
    .unwrap();
    let doctor = files.path().join("doctor.json");
    std::fs::write(
        &doctor,
        r#"{"checks":[{"name":"disk","status":"ok"},{"name":"ntp","status":"warn"}]}"#,
    )
    .unwrap();
    let token_file = ex.token_file.to_str().unwrap();
    let common = [
        "--url",
        &base,
        "--token-file",
        token_file,
        "--commit",
        "4f2c9e1",
    ];
    let pushes: [Vec<&str>; 4] = [
        vec![
            "push",
            "heartbeat",
            "--box",
            names.box_name,
            "--version",
            "1.2.3",
        ],
        vec![
            "push",
            "test-run",
            "--service",
            names.service,
            "--stack",
            names.stack,
            "--file",
            junit.to_str().unwrap(),
        ],
        vec![
            "push",
            "mutants",
            "--service",
            names.service,
            "--file",
            mutants.to_str().unwrap(),
        ],
        vec![
            "push",
            "host-health",
            "--host",
            names.host,
            "--file",
            doctor.to_str().unwrap(),
        ],
    ];
    for p in pushes {
        let args: Vec<&str> = p.iter().copied().chain(common).collect();
        let out = run(bin, &args);
        assert!(out.status.success(), "{args:?}: {}", said(&out));
    }

    let (code, ct, one) = get(
        &format!("{base}/api/v1/host-health/{}", names.host),
        Some(token),
        None,
    )
    .await;
    assert_eq!(code, 200, "GET host-health/{}: {one}", names.host);
    assert!(ct.starts_with("application/json"), "{ct}");
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["checks"][1]["status"], "warn", "{one}");
    let (code, _, all) = get(&format!("{base}/api/v1/host-health"), Some(token), None).await;
    assert_eq!(code, 200, "GET host-health: {all}");
    let all: Value = serde_json::from_str(&all).unwrap();
    assert!(
        all["hosts"]
            .as_array()
            .is_some_and(|h| h.iter().any(|h| h["host"] == names.host)),
        "{all}"
    );

    // The pushes are published to the views (a scraper may see them a moment
    // after the acknowledgement).
    let metrics = eventually(
        Duration::from_secs(10),
        "the pushes on /metrics",
        || async {
            let (code, ct, body) = get(&format!("{base}/metrics"), None, None).await;
            assert_eq!(code, 200, "{body}");
            assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
            let wanted = format!(
                "fleet_host_health_checks{{stack=\"{}\",host=\"{}\",status=\"warn\"}} 1",
                names.host.strip_suffix("-host").unwrap_or_default(),
                names.host
            );
            body.contains(&wanted).then_some(body)
        },
    )
    .await;
    promtool_check_metrics(&metrics);
    assert!(metrics.contains("fleet_exporter_build_info{"), "{metrics}");
    let (code, ct, om) = get(
        &format!("{base}/metrics"),
        None,
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(om.trim_end().ends_with("# EOF"), "{om}");

    let (code, _, health) = get(&format!("{base}/healthz"), None, None).await;
    assert_eq!((code, health.as_str()), (200, "ok\n"));
    let (code, ct, page) = get(&format!("{base}/"), None, None).await;
    assert_eq!(code, 200, "GET /: {page}");
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(page.contains(names.stack), "the page names {}", names.stack);
    let (code, _, board) = get(&format!("{base}/board"), None, None).await;
    assert_eq!(code, 200, "GET /board: {board}");
    assert!(board.contains(names.service), "{board}");
    let (code, ct, fleet) = get(&format!("{base}/api/v1/fleet"), None, None).await;
    assert_eq!(code, 200, "GET /api/v1/fleet: {fleet}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let model: Value = serde_json::from_str(&fleet).unwrap();
    assert_eq!(model["schema_version"], 1, "{model}");
    let (code, _, _) = get(&format!("{base}/no/such/route"), None, None).await;
    assert_eq!(code, 404);

    // The terminal board: exit 0 (nothing red) or 1 (something red), and
    // the table names the environment.
    let status = run(bin, &["status", "--url", &base]);
    assert!(
        matches!(status.status.code(), Some(0 | 1)),
        "status: {}",
        said(&status)
    );
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(names.stack),
        "status: {}",
        said(&status)
    );
    let status_json = run(bin, &["status", "--url", &base, "--json"]);
    let from_cli: Value = serde_json::from_slice(&status_json.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", said(&status_json)));
    assert_eq!(from_cli["schema_version"], 1);
    let status_out = String::from_utf8_lossy(&status.stdout).to_string();
    (format!("{page}\n{board}\n{status_out}"), fleet)
}

/// Names a push may use on each kind of exporter.
struct Names {
    stack: &'static str,
    service: &'static str,
    box_name: &'static str,
    host: &'static str,
}

const DEMO_NAMES: Names = Names {
    stack: "test-1",
    service: "broker",
    box_name: "test-1-box",
    host: "test-1-host",
};

const SERVE_NAMES: Names = Names {
    stack: "prod",
    service: "broker",
    box_name: "prod-box",
    host: "prod-host",
};

/// Runs `start` private then public with each shipped build. With
/// `private_shows_internals`, the private views must show some internal
/// value, so the public check can fail.
async fn private_and_public(
    start: fn(&Path, bool) -> Exporter,
    names: &Names,
    what: &str,
    private_shows_internals: bool,
) {
    for (build, bin) in shipped() {
        let private = start(&bin, false);
        let (page, fleet) = exercise(&bin, &private, names).await;
        private.assert_no_panic(&format!("{build} {what}"));
        let shown = internal_values(&format!("{page}\n{fleet}"));
        assert!(
            !private_shows_internals || !shown.is_empty(),
            "{build} {what}: the private views show no internal value to hide"
        );
        drop(private);

        let public = start(&bin, true);
        let (page, fleet) = exercise(&bin, &public, names).await;
        public.assert_no_panic(&format!("{build} {what} --public"));
        let model: Value = serde_json::from_str(&fleet).unwrap();
        assert_eq!(model["public"], true, "{build} {what}: {model}");
        let leaked = internal_values(&format!("{page}\n{fleet}"));
        assert!(
            leaked.is_empty(),
            "{build} {what} --public shows internal values: {leaked:?}"
        );
    }
}

#[tokio::test]
async fn shipped_demo_serves_every_route_private_and_public() {
    private_and_public(start_demo, &DEMO_NAMES, "demo", false).await;
}

#[tokio::test]
async fn shipped_serve_serves_every_route_private_and_public() {
    private_and_public(start_serve, &SERVE_NAMES, "serve", true).await;
}

#[test]
fn shipped_check_config_accepts_every_example_under_deploy() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut examples = Vec::new();
    let mut dirs = vec![root.join("deploy")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("fleet.") && (n.ends_with(".yaml") || n.ends_with(".yml"))
            }) {
                examples.push(p);
            }
        }
    }
    assert!(!examples.is_empty(), "no fleet example under deploy/");
    for (build, bin) in shipped() {
        for ex in &examples {
            let out = run(&bin, &["check-config", ex.to_str().unwrap()]);
            assert!(
                out.status.success(),
                "{build}: check-config {}: {}",
                ex.display(),
                said(&out)
            );
        }
    }
}

#[test]
fn shipped_completions_parse_in_their_shell_and_the_man_page_renders() {
    for (what, bin) in shipped() {
        for shell in ["bash", "zsh", "fish"] {
            let o = run(&bin, &["completions", shell]);
            assert!(
                o.status.success(),
                "{what} completions {shell}: {}",
                said(&o)
            );
            let script = String::from_utf8(o.stdout).unwrap();
            for sub in ["serve", "demo", "status", "check-config", "push"] {
                assert!(
                    script.contains(sub),
                    "{what} {shell} completion lacks {sub}"
                );
            }
            // The shell itself checks the script's syntax, where it is installed.
            if shell == "bash" || Command::new(shell).arg("-c").arg("true").output().is_ok() {
                let dir = tempfile::tempdir().unwrap();
                let file = dir.path().join(format!("fleetpulse.{shell}"));
                std::fs::write(&file, &script).unwrap();
                let flag = if shell == "fish" {
                    "--no-execute"
                } else {
                    "-n"
                };
                let check = Command::new(shell).arg(flag).arg(&file).output().unwrap();
                assert!(
                    check.status.success(),
                    "{what} {shell} completion does not parse: {}",
                    String::from_utf8_lossy(&check.stderr)
                );
            }
        }
        let o = run(&bin, &["man"]);
        assert!(o.status.success(), "{what} man: {}", said(&o));
        let page = String::from_utf8(o.stdout).unwrap();
        assert!(page.contains(".TH fleetpulse 1"), "{what} man page header");
        for sub in ["serve", "check\\-config", "completions"] {
            assert!(page.contains(sub), "{what} man page lacks {sub}");
        }
    }
}

#[tokio::test]
async fn shipped_builds_say_which_sources_they_were_built_without() {
    for (what, bin) in shipped() {
        let demo = start_demo(&bin, false);
        let said = eventually(Duration::from_secs(30), "the demo's banner", || async {
            let log = demo.process.log();
            log.contains("Ctrl-C to stop.").then_some(log)
        })
        .await;
        let version = String::from_utf8(run(&bin, &["--version"]).stdout).unwrap();
        if what == "lean" {
            for line in [
                "left out      the aws, dns and discovery sources (this build has no \"aws\" feature",
                "left out      the github source (this build has no \"github\" feature",
                "left out      the chain source (this build has no \"chain\" feature",
            ] {
                assert!(said.contains(line), "{what} demo lacks {line:?}:\n{said}");
            }
            assert!(version.contains("features:         none"), "{version}");
        } else {
            assert!(!said.contains("left out"), "{what} demo:\n{said}");
            assert!(
                version.contains("features:         aws, github, chain"),
                "{version}"
            );
        }
        demo.assert_no_panic(what);
    }
}
