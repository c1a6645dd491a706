//! `--web.config.file`: fleetpulse served over TLS with basic auth, tested
//! against the real binary on loopback, with certificates made here and a
//! real Prometheus scraping it.

use crate::common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery";
const PUSH_TOKEN: &str = "webconfig-test-push-token-0123456789";

/// A test CA and a server certificate it issued for `localhost` and `127.0.0.1`.
struct Pki {
    ca_pem: String,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "fleetpulse test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "fleetpulse");
    let leaf = leaf.signed_by(&key, &ca).unwrap();
    let pki = Pki {
        ca_pem: ca.pem(),
        ca_file: dir.join("ca.crt"),
        cert_file: dir.join("fleetpulse.crt"),
        key_file: dir.join("fleetpulse.key"),
    };
    std::fs::write(&pki.ca_file, &pki.ca_pem).unwrap();
    std::fs::write(&pki.cert_file, leaf.pem()).unwrap();
    std::fs::write(&pki.key_file, key.serialize_pem()).unwrap();
    pki
}

fn tls_section(pki: &Pki) -> String {
    format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  min_version: TLS12\n",
        pki.cert_file.display(),
        pki.key_file.display()
    )
}

fn auth_section() -> String {
    // Cost 4 keeps the test fast; the server handles any cost alike.
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    format!("basic_auth_users:\n  {USER}: {hash}\n")
}

/// The fleet config's `web:` settings when a test does not care.
const WEB_SETTINGS: &str = "  request_timeout: 30s\n";

/// Writes the fleet config (with a push token and `web_settings` under
/// `web:`) and the web config; returns both paths.
fn write_configs(dir: &Path, web_settings: &str, web_config: &str) -> (PathBuf, PathBuf) {
    let tokens = dir.join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!(
            "- sha256: {}\n  names: ['*']\n",
            fleetpulse::ingest::auth::hash_token(PUSH_TOKEN)
        ),
    )
    .unwrap();
    let fleet = dir.join("fleet.yaml");
    std::fs::write(
        &fleet,
        format!(
            "listen: 127.0.0.1:0\nstate_dir: {}\ningest:\n  tokens_file: {}\nweb:\n{web_settings}environments:\n  - name: prod\n    boxes: [prod-box]\n",
            dir.join("state").display(),
            tokens.display()
        ),
    )
    .unwrap();
    let web = dir.join("web.yml");
    std::fs::write(&web, web_config).unwrap();
    (fleet, web)
}

/// A running `fleetpulse serve`, killed on drop.
struct Served {
    child: Child,
    addr: SocketAddr,
    base: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

fn serve(dir: &Path, web_settings: &str, web_config: &str) -> Served {
    let (fleet, web) = write_configs(dir, web_settings, web_config);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetpulse"))
        .args(["serve", "--config"])
        .arg(&fleet)
        .arg("--web.config.file")
        .arg(&web)
        .env("FLEETPULSE_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("fleetpulse: serving on ") {
                let _ = tx.send(url.to_string());
            }
            let mut l = sink.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    let base = match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(b) => b,
        Err(_) => {
            let _ = child.kill();
            panic!("fleetpulse did not start:\n{}", log.lock().unwrap());
        }
    };
    let addr = base.rsplit("//").next().unwrap().parse().unwrap();
    Served {
        child,
        addr,
        base,
        log,
    }
}

/// A client trusting only the test CA.
fn client(pki: &Pki) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(pki.ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_with_the_test_ca_serves_metrics_and_page_and_plain_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let served = serve(dir.path(), WEB_SETTINGS, &tls_section(&pki));
    assert_eq!(served.base, format!("https://{}", served.addr));
    let https = client(&pki);

    let metrics = https
        .get(format!("{}/metrics", served.base))
        .send()
        .await
        .unwrap_or_else(|e| panic!("https /metrics: {e:?}\n{}", served.log()));
    assert_eq!(metrics.status(), 200);
    let body = metrics.text().await.unwrap();
    assert!(body.contains("fleet_"), "{body}");

    let page = https.get(format!("{}/", served.base)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<html"));

    // Plain HTTP to the TLS port gets no answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/metrics", served.addr))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    // A client that does not trust the test CA refuses the server.
    let untrusting = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("{}/metrics", served.base))
        .send()
        .await;
    assert!(untrusting.is_err(), "{untrusting:?}");

    // Still serving after the failed handshakes.
    let again = https
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn basic_auth_guards_every_view_and_ingest_keeps_its_bearer_token() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let served = serve(
        dir.path(),
        WEB_SETTINGS,
        &format!("{}{}", tls_section(&pki), auth_section()),
    );
    let https = client(&pki);
    let get = |path: &str, creds: Option<(&str, &str)>| {
        let mut r = https.get(format!("{}{path}", served.base));
        if let Some((u, p)) = creds {
            r = r.basic_auth(u, Some(p));
        }
        async move { r.send().await.unwrap() }
    };

    for path in [
        "/metrics",
        "/",
        "/api/v1/fleet",
        "/board",
        "/healthz",
        "/nowhere",
    ] {
        for creds in [
            None,
            Some((USER, "wrong password")),
            Some(("mallory", PASSWORD)),
            Some((USER, "")),
        ] {
            let r = get(path, creds).await;
            assert_eq!(r.status(), 401, "{path} with {creds:?}");
            assert_eq!(
                r.headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Basic realm=\"fleetpulse\""),
                "{path}"
            );
        }
    }
    for path in ["/metrics", "/", "/api/v1/fleet", "/healthz"] {
        let r = get(path, Some((USER, PASSWORD))).await;
        assert_eq!(r.status(), 200, "{path}");
    }
    // Twice more: the cached verification answers the same.
    for _ in 0..2 {
        assert_eq!(get("/metrics", Some((USER, PASSWORD))).await.status(), 200);
    }

    // A push authenticates with its bearer token, not basic auth.
    let push = https
        .post(format!("{}/api/v1/heartbeats/prod-box", served.base))
        .bearer_auth(PUSH_TOKEN)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(push.status(), 200, "{:?}", push.text().await);
    let bad_push = https
        .post(format!("{}/api/v1/heartbeats/prod-box", served.base))
        .bearer_auth("not-the-token")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert!(
        matches!(bad_push.status().as_u16(), 401 | 403),
        "{}",
        bad_push.status()
    );
    // The bearer token opens no view.
    let r = https
        .get(format!("{}/metrics", served.base))
        .bearer_auth(PUSH_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let metrics = get("/metrics", Some((USER, PASSWORD)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fleet_heartbeats_total{stack="prod",box="prod-box"} 1"#),
        "{metrics}"
    );

    // `fleetpulse status` reaches it with --ca-file and --user.
    let status = |with_user: bool, password: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fleetpulse"));
        c.args(["status", "--url", &served.base, "--ca-file"])
            .arg(&pki.ca_file)
            .env_remove("FLEETPULSE_URL")
            .env_remove("FLEETPULSE_USER")
            .env("FLEETPULSE_PASSWORD", password);
        if with_user {
            c.args(["--user", USER]);
        }
        c.output().unwrap()
    };
    let ok = status(true, PASSWORD);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert_ne!(ok.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.starts_with("fleet "), "{stdout}{stderr}");
    let anonymous = status(false, PASSWORD);
    let stderr = String::from_utf8_lossy(&anonymous.stderr);
    assert_eq!(anonymous.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("asks for a user and password"), "{stderr}");
    let wrong = status(true, "hunter2");
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refused the user and password"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // Nothing of the password or its hash reaches the log.
    let log = served.log();
    assert!(!log.contains(PASSWORD) && !log.contains("$2b$"), "{log}");
}

#[tokio::test]
async fn a_client_that_never_sends_a_client_hello_is_dropped_after_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    // One connection at a time, so a stalled handshake visibly holds the place.
    let served = serve(
        dir.path(),
        "  request_timeout: 1s\n  max_connections: 1\n",
        &tls_section(&pki),
    );
    let https = client(&pki);

    let mut stalled = TcpStream::connect(served.addr).await.unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut buf)).await;
    let waited = start.elapsed();
    assert!(closed.is_ok(), "a silent client kept its connection");
    assert!(buf.is_empty(), "{buf:?}");
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(4),
        "dropped after {waited:?}"
    );

    // A stalled handshake holding the only place gives it up to a client
    // that speaks, at once rather than at its timeout.
    let mut stalled = TcpStream::connect(served.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let r = https
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .expect("served in the stalled handshake's place");
    assert_eq!(r.status(), 200);
    let closed = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the stalled handshake kept its place");
    assert!(
        start.elapsed() < Duration::from_millis(800),
        "{:?}",
        start.elapsed()
    );
}

/// Runs `fleetpulse serve` with `web_config`; it must exit on its own.
fn serve_must_fail(dir: &Path, web_config: &str) -> (Option<i32>, String) {
    let (fleet, web) = write_configs(dir, WEB_SETTINGS, web_config);
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetpulse"))
        .args(["serve", "--config"])
        .arg(&fleet)
        .arg("--web.config.file")
        .arg(&web)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fleetpulse kept running with a bad web config:\n{web_config}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn malformed_web_configs_exit_1_naming_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let cert = pki.cert_file.display().to_string();
    let key = pki.key_file.display().to_string();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let cases: Vec<(String, &str)> = vec![
        // Unclosed: the reader finds out at the end of the input.
        ("tls_server_config: [\n".into(), "web.yml:2:1: (syntax): "),
        (
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  cipher: fast\n"),
            "web.yml:4:3: tls_server_config.cipher: unknown field `cipher`",
        ),
        (
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}.missing\n"),
            "web.yml:3:13: tls_server_config.key_file: cannot read the private key",
        ),
        (
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: Sometimes\n"),
            "web.yml:4:21: tls_server_config.client_auth_type: unknown client_auth_type \"Sometimes\"",
        ),
        (
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  client_auth_type: RequireAndVerifyClientCert\n"),
            "web.yml:4:21: tls_server_config.client_auth_type: verifying client certificates needs client_ca_file",
        ),
        (
            // The key file holds a certificate, not a key.
            format!("tls_server_config:\n  cert_file: {cert}\n  key_file: {cert}\n"),
            "web.yml:3:13: tls_server_config.key_file: cannot read the private key",
        ),
        (
            format!("basic_auth_users:\n  {USER}: {}\n", &hash[..40]),
            "web.yml:2:15: basic_auth_users.prometheus: not a bcrypt hash",
        ),
        ("basic_auth_users:\n  alice: 12345\n".into(), "basic_auth_users.alice: not a bcrypt hash"),
    ];
    for (web_config, want) in &cases {
        let (code, stderr) = serve_must_fail(dir.path(), web_config);
        assert_eq!(code, Some(1), "{web_config}\n{stderr}");
        assert!(
            stderr.contains(want),
            "for\n{web_config}\ngot:  {stderr}\nwant: {want}"
        );
        assert!(
            stderr.contains(&dir.path().join("web.yml").display().to_string()),
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            !stderr.contains(&hash[..40]) && !stderr.contains("12345"),
            "{stderr}"
        );
        assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    }
}

#[tokio::test]
async fn prometheus_scrapes_the_tls_and_basic_auth_exporter() {
    let prometheus = common::require_peer(
        "FLEETPULSE_PROMETHEUS",
        &["/usr/bin/prometheus"],
        "apt-get install prometheus",
    );
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let served = serve(
        dir.path(),
        WEB_SETTINGS,
        &format!("{}{}", tls_section(&pki), auth_section()),
    );
    let password_file = dir.path().join("scrape-password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    // The same target twice: with the right password it is up, with a wrong
    // one it is down, so `up == 1` is the credentials' doing.
    let prom_config = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            "global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fleetpulse
    scheme: https
    tls_config:
      ca_file: {ca}
    basic_auth:
      username: {USER}
      password_file: {pw}
    static_configs:
      - targets: ['{addr}']
  - job_name: wrong-password
    scheme: https
    tls_config:
      ca_file: {ca}
    basic_auth:
      username: {USER}
      password: not-the-password
    static_configs:
      - targets: ['{addr}']
",
            ca = pki.ca_file.display(),
            pw = password_file.display(),
            addr = served.addr,
        ),
    )
    .unwrap();
    let port = common::free_port();
    let prom_log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prom = common::Process::adopt(
        Command::new(prometheus)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(prom_log)
            .spawn()
            .unwrap(),
        port,
    );
    let api = format!("http://127.0.0.1:{port}/api/v1/query");
    let up = |job: &'static str| {
        let api = api.clone();
        async move {
            let url =
                url::Url::parse_with_params(&api, &[("query", format!("up{{job=\"{job}\"}}"))])
                    .ok()?;
            let v: serde_json::Value = reqwest::Client::new()
                .get(url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            v["data"]["result"][0]["value"][1]
                .as_str()
                .map(str::to_string)
        }
    };
    let limit = Duration::from_secs(40);
    let start = Instant::now();
    let (good, bad) = loop {
        let (good, bad) = (up("fleetpulse").await, up("wrong-password").await);
        if good.as_deref() == Some("1") && bad.is_some() {
            break (good, bad);
        }
        if start.elapsed() > limit {
            let log =
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            let targets = reqwest::get(format!("http://127.0.0.1:{port}/api/v1/targets"))
                .await
                .ok();
            let targets = match targets {
                Some(t) => t.text().await.unwrap_or_default(),
                None => String::new(),
            };
            panic!(
                "prometheus did not report up == 1 within {limit:?} (fleetpulse {good:?}, wrong password {bad:?})\ntargets: {targets}\nprometheus log:\n{}\nfleetpulse log:\n{}",
                &log[log.len().saturating_sub(3000)..],
                served.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(good.as_deref(), Some("1"));
    assert_eq!(bad.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_reload_puts_new_basic_auth_users_in_force_and_refuses_to_switch_tls_off() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let served = serve(
        dir.path(),
        WEB_SETTINGS,
        &format!("{}{}", tls_section(&pki), auth_section()),
    );
    let https = client(&pki);
    let status = |user: &'static str, password: &'static str| {
        let r = https
            .get(format!("{}/metrics", served.base))
            .basic_auth(user, Some(password));
        async move { r.send().await.unwrap().status().as_u16() }
    };
    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &served.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    let reloads = || served.log().matches("config reloaded").count();
    let refusals = || served.log().matches("config reload refused").count();
    assert_eq!(status(USER, PASSWORD).await, 200);

    // A rotated password: the new one in force at the next request, the old refused.
    let rotated = bcrypt::hash("rotated password", 4).unwrap();
    std::fs::write(
        dir.path().join("web.yml"),
        format!(
            "{}basic_auth_users:\n  {USER}: {rotated}\n",
            tls_section(&pki)
        ),
    )
    .unwrap();
    hup();
    common::eventually(Duration::from_secs(10), "the reload", || async {
        (reloads() == 1).then_some(())
    })
    .await;
    assert_eq!(status(USER, "rotated password").await, 200);
    assert_eq!(status(USER, PASSWORD).await, 401);

    // Switching TLS off is refused whole: still HTTPS, still the rotated password.
    std::fs::write(dir.path().join("web.yml"), auth_section()).unwrap();
    hup();
    common::eventually(Duration::from_secs(10), "the refusal", || async {
        (refusals() == 1).then_some(())
    })
    .await;
    assert!(served.log().contains("switch TLS off"), "{}", served.log());
    assert_eq!(status(USER, "rotated password").await, 200);
    assert_eq!(status(USER, PASSWORD).await, 401);
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_configured_headers_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let served = serve(
        dir.path(),
        WEB_SETTINGS,
        &format!(
            "{}http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
            tls_section(&pki)
        ),
    );
    let before = client(&pki);
    let r = before
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "deny");
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");

    // A certificate from another CA replaces the pair on disk.
    let renewed_dir = tempfile::tempdir().unwrap();
    let renewed = make_pki(renewed_dir.path());
    std::fs::copy(&renewed.key_file, &pki.key_file).unwrap();
    std::fs::copy(&renewed.cert_file, &pki.cert_file).unwrap();
    let after = client(&renewed);
    common::eventually(
        Duration::from_secs(10),
        "the renewed certificate served",
        || {
            let (after, url) = (after.clone(), format!("{}/healthz", served.base));
            async move {
                after
                    .get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
                    .map(|_| ())
            }
        },
    )
    .await;
    // A new connection trusting only the old CA no longer verifies: the new
    // certificate is the one served.
    let fresh = client(&pki);
    assert!(fresh
        .get(format!("{}/healthz", served.base))
        .send()
        .await
        .is_err());
    assert!(
        served.log().contains("serving the renewed certificate"),
        "{}",
        served.log()
    );
}

#[tokio::test]
async fn a_client_certificate_must_carry_an_allowed_san() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    // The CA client certificates chain to, and two clients of it.
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "clients CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let clients_ca = dir.path().join("clients-ca.crt");
    std::fs::write(&clients_ca, ca.pem()).unwrap();
    let identity = |san: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![san.to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        reqwest::Identity::from_pem(format!("{}{}", cert.pem(), key.serialize_pem()).as_bytes())
            .unwrap()
    };
    let served = serve(
        dir.path(),
        WEB_SETTINGS,
        &format!(
            "{}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n  client_allowed_sans: [prometheus.example.net]\n",
            tls_section(&pki),
            clients_ca.display()
        ),
    );
    let with = |id: Option<reqwest::Identity>| {
        let mut b = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(pki.ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(10));
        if let Some(id) = id {
            b = b.identity(id);
        }
        b.build().unwrap()
    };
    let url = format!("{}/healthz", served.base);
    let allowed = with(Some(identity("prometheus.example.net")))
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    // Verified by the CA, but not a name on the list: the handshake fails.
    assert!(with(Some(identity("mallory.example.net")))
        .get(&url)
        .send()
        .await
        .is_err());
    assert!(with(None).get(&url).send().await.is_err());
}
