//! Real peers for the cloud, CI and chain source tests: moto server and anvil
//! as child processes on loopback ports, and an in-process server speaking
//! GitHub's REST shapes.
#![allow(dead_code)]

pub mod chain;
pub mod cloud;
pub mod fleet;
pub use fleetpulse::simfleet::github;

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::require_peer;
pub use crate::common::{spawn_listening, Process};

/// moto server on `port` (0: an ephemeral one).
pub fn moto(port: u16) -> Process {
    let bin = require_peer(
        "FLEETPULSE_MOTO_SERVER",
        &[".venv-moto/bin/moto_server"],
        "python3 -m venv .venv-moto && .venv-moto/bin/pip install -r tests/peers/requirements.txt",
    );
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    spawn_listening(cmd, "Running on http://127.0.0.1:", "moto server")
}

/// anvil on `port` (0: an ephemeral one).
pub fn anvil(port: u16) -> Process {
    let bin = require_peer(
        "FLEETPULSE_ANVIL",
        &["tests/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"],
        "cd tests/peers && npm ci --ignore-scripts",
    );
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
    spawn_listening(cmd, "Listening on 127.0.0.1:", "anvil")
}

/// Sets the fake credentials and region moto accepts, for this test process.
pub fn aws_test_credentials() {
    // Every test in a binary sets the same values, so concurrent setting is benign.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "eu-west-1");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
}

/// An unrelated healthy service, so a test can see other sources stay fresh
/// while its own peer is gone.
pub struct HealthzPeer {
    _service: fleetpulse::simfleet::SimService,
    ca_file: tempfile::NamedTempFile,
    port: u16,
}

impl HealthzPeer {
    pub async fn start() -> HealthzPeer {
        use fleetpulse::simfleet::{Authority, Behaviour, SimService};
        let ca = Authority::new(30).expect("test CA");
        let ca_file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(ca_file.path(), ca.root_pem()).expect("write CA");
        let service = SimService::start(
            ca.issue(&["localhost"], 30).expect("issue"),
            Behaviour::Healthy {
                commit: "0123456789abcdef".into(),
            },
        )
        .await
        .expect("start service");
        let port = service.port();
        HealthzPeer {
            _service: service,
            ca_file,
            port,
        }
    }

    /// Lines for `sources:` (two-space indented): healthz every second.
    pub fn sources_yaml(&self) -> String {
        format!(
            "  healthz:\n    interval: 1s\n    timeout: 1s\n  tls:\n    ca_file: {}\n",
            self.ca_file.path().display()
        )
    }

    /// Changes how the service answers from now on.
    pub fn set(&self, behaviour: fleetpulse::simfleet::Behaviour) {
        self._service.set(behaviour);
    }

    /// The peer's TLS port on 127.0.0.1 (its certificate names `localhost`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// An environment `other` whose one service is this peer.
    pub fn environment_yaml(&self) -> String {
        format!(
            "  - name: other\n    services:\n      - name: web\n        healthz: https://localhost:{}/healthz\n",
            self.port
        )
    }
}

/// An HTTP proxy in front of moto that answers EC2's throttling error
/// (503 RequestLimitExceeded) to the first `failures` requests and forwards
/// the rest: the real SDK meets a real throttle, then the real peer.
pub struct ThrottlingProxy {
    addr: std::net::SocketAddr,
    state: std::sync::Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: String,
    failures_left: std::sync::atomic::AtomicU32,
    throttled: std::sync::atomic::AtomicU32,
    requests: std::sync::atomic::AtomicU32,
    client: reqwest::Client,
}

impl Drop for ThrottlingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ThrottlingProxy {
    pub async fn start(upstream: &str, failures: u32) -> ThrottlingProxy {
        use std::sync::atomic::{AtomicU32, Ordering};
        let state = std::sync::Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            failures_left: AtomicU32::new(failures),
            throttled: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            client: reqwest::Client::new(),
        });
        let st = state.clone();
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let st = st.clone();
            async move {
                use axum::response::IntoResponse;
                st.requests.fetch_add(1, Ordering::SeqCst);
                let throttle = st
                    .failures_left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if throttle {
                    st.throttled.fetch_add(1, Ordering::SeqCst);
                    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>f1ee7pu1-5e00-4000-8000-000000000000</RequestID></Response>";
                    return (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        [("content-type", "text/xml;charset=UTF-8")],
                        body,
                    )
                        .into_response();
                }
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, 64 << 20).await.unwrap_or_default();
                let url = format!(
                    "{}{}",
                    st.upstream,
                    parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
                );
                let mut fwd = st.client.request(parts.method.clone(), url).body(body);
                for (k, v) in parts.headers.iter() {
                    if k != axum::http::header::HOST {
                        fwd = fwd.header(k, v);
                    }
                }
                match fwd.send().await {
                    Ok(r) => {
                        let status = r.status();
                        let headers = r.headers().clone();
                        let bytes = r.bytes().await.unwrap_or_default();
                        let mut resp = (status, bytes).into_response();
                        for (k, v) in headers.iter() {
                            if k != axum::http::header::CONTENT_LENGTH
                                && k != axum::http::header::TRANSFER_ENCODING
                            {
                                resp.headers_mut().insert(k, v.clone());
                            }
                        }
                        resp
                    }
                    Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ThrottlingProxy { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn throttled(&self) -> u32 {
        self.state
            .throttled
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn requests(&self) -> u32 {
        self.state
            .requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}

pub use fleetpulse::simfleet::oidc::OidcPeer;

/// Debian's prometheus on a free loopback port with `config` (YAML), its
/// TSDB in `dir`; returns once `/-/ready` answers.
pub async fn prometheus(config: &str, dir: &std::path::Path) -> Process {
    let bin = require_peer(
        "FLEETPULSE_PROMETHEUS",
        &["/usr/bin/prometheus"],
        "apt-get install prometheus",
    );
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).expect("write prometheus.yml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port();
    let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start prometheus: {e}"));
    let peer = Process::adopt(child, port);
    let ready = format!("{}/-/ready", peer.url());
    let started = std::time::Instant::now();
    loop {
        if let Ok(r) = reqwest::get(&ready).await {
            if r.status().is_success() {
                return peer;
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            let log = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
            panic!("prometheus did not become ready in 30 s:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
