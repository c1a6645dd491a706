//! The client side of ingest: `fleetpulse push heartbeat|test-run|mutants|host-health`.
//!
//! One request per push, retried with exponential backoff (and jitter, so a
//! fleet rebooting at once does not retry in lockstep) on connection errors
//! and 5xx answers; a 4xx answer is final, but for 429. A 429 or 503 that
//! says when to come back (`Retry-After`, in seconds or as an HTTP date) is
//! retried then instead of after the backoff. The token comes from a file or an
//! environment variable and never appears in output or errors.

use std::path::Path;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use crate::api::{self, HeartbeatBody, Route, Timestamp, COMMIT_HEADER};
use crate::config::Name;

/// Environment variable holding the token itself (when no file is given).
pub const TOKEN_ENV: &str = "FLEETPULSE_TOKEN";
/// Longest single wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a push did not go through. Never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Usage(String),
    #[error("no token: pass --token-file or set {TOKEN_ENV}")]
    NoToken,
    #[error("cannot read the token file {path}: {source}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Input {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("refused with {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("gave up after {attempts} attempts; last: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// How to reach fleetpulse.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Base URL of the exporter, e.g. `https://fleetpulse.example.com`.
    pub url: String,
    pub token: String,
    /// Sent as `X-Fleet-Commit`.
    pub commit: Option<String>,
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time.
    pub first_backoff: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// TLS settings replacing the default trust (the demo pins the
    /// certificate its own exporter serves).
    pub tls: Option<rustls::ClientConfig>,
}

/// One push.
#[derive(Debug, Clone)]
pub enum Push {
    Heartbeat {
        box_name: String,
        version: Option<String>,
        /// Unix seconds.
        boot_time: Option<u64>,
    },
    TestRun {
        service: String,
        stack: Option<String>,
        body: Vec<u8>,
        format: TestRunFormat,
    },
    Mutants {
        service: String,
        body: Vec<u8>,
    },
    HostHealth {
        host: String,
        body: Vec<u8>,
    },
}

/// How a test run's file is written.
pub use crate::api::TestRunFormat;

/// One push's request, before the URL is built.
struct RequestParts<'a> {
    route: Route,
    name: &'a str,
    content_type: &'static str,
    body: Vec<u8>,
    stack: Option<&'a str>,
}

/// The server's answer to an accepted push.
#[derive(Debug, Clone)]
pub struct Acknowledged {
    pub status: u16,
    /// The JSON the server answered with.
    pub body: String,
}

/// A configured client.
#[derive(Debug, Clone)]
pub struct PushClient {
    base: url::Url,
    token: String,
    commit: Option<String>,
    attempts: u32,
    first_backoff: Duration,
    http: reqwest::Client,
}

/// What became of one push to each of several replicas, in the order the
/// clients were given.
#[derive(Debug)]
pub struct Delivery {
    pub replicas: Vec<(String, Result<Acknowledged, PushError>)>,
}

impl Delivery {
    /// How many replicas acknowledged.
    pub fn acks(&self) -> usize {
        self.replicas.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

/// Sends `push` to every replica at once, each retried on its own (a
/// replica that is down does not hold up the others' attempts), and waits
/// for every replica's outcome: a push is offered to each replica, whatever
/// the others answered.
pub async fn deliver(clients: &[PushClient], push: &Push) -> Delivery {
    let outcomes = futures::future::join_all(clients.iter().map(|c| c.push(push))).await;
    Delivery {
        replicas: clients
            .iter()
            .map(PushClient::base_url)
            .zip(outcomes)
            .collect(),
    }
}

/// Reads the token: from `file` when given, else from `FLEETPULSE_TOKEN`.
pub fn read_token(file: Option<&Path>) -> Result<String, PushError> {
    let token = match file {
        Some(p) => std::fs::read_to_string(p).map_err(|source| PushError::TokenFile {
            path: p.display().to_string(),
            source,
        })?,
        None => std::env::var(TOKEN_ENV).map_err(|_| PushError::NoToken)?,
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err(PushError::NoToken);
    }
    Ok(token)
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &str) -> Result<Vec<u8>, PushError> {
    let err = |source| PushError::Input {
        path: path.to_string(),
        source,
    };
    if path == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map_err(err)?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(err)
    }
}

/// This machine's boot time (Linux `/proc/stat` `btime`), Unix seconds.
pub fn boot_time() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn check_name(what: &str, name: &str) -> Result<(), PushError> {
    if Name::is_valid(name) {
        Ok(())
    } else {
        Err(PushError::Usage(format!(
            "not a valid {what} name: {name:?} (expected 1 to 64 of A-Z a-z 0-9 . _ -)"
        )))
    }
}

impl PushClient {
    pub fn new(options: ClientOptions) -> Result<PushClient, PushError> {
        let mut base = url::Url::parse(&options.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| PushError::Usage(format!("not an http(s) URL: {:?}", options.url)))?;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if let Some(c) = &options.commit {
            if c.is_empty() || !c.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(PushError::Usage(format!(
                    "commit must be printable ASCII without spaces: {c:?}"
                )));
            }
        }
        let mut http = reqwest::Client::builder()
            .timeout(options.timeout)
            .user_agent(concat!("fleetpulse-push/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = options.tls {
            http = http.use_preconfigured_tls(tls);
        }
        let http = http
            .build()
            .map_err(|e| PushError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(PushClient {
            base,
            token: options.token,
            commit: options.commit,
            attempts: options.attempts.max(1),
            first_backoff: options.first_backoff,
            http,
        })
    }

    /// The exporter's base URL as output may name it: without a user name
    /// or password it may carry.
    pub fn base_url(&self) -> String {
        let mut shown = self.base.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        shown.to_string()
    }

    /// Sends one push, retrying as described in the module docs.
    pub async fn push(&self, push: &Push) -> Result<Acknowledged, PushError> {
        let parts = self.request_parts(push)?;
        let url = self.url(&parts)?;
        let method = parts.route.method();
        let (content_type, body) = (parts.content_type, parts.body);
        let mut last = String::new();
        let mut asked: Option<Duration> = None;
        for attempt in 1..=self.attempts {
            if let Some(wait) = self.wait_before(attempt, asked.take()) {
                tokio::time::sleep(wait).await;
            }
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, format!("Bearer {}", self.token));
            if let Some(c) = &self.commit {
                req = req.header(COMMIT_HEADER, c.as_str());
            }
            req = req.header(CONTENT_TYPE, content_type).body(body.clone());
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if matches!(
                        status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) {
                        asked = retry_after(resp.headers(), std::time::SystemTime::now());
                    }
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(Acknowledged {
                            status: status.as_u16(),
                            body: text,
                        });
                    }
                    let message = error_message(&text, status);
                    if !status.is_server_error() && status != StatusCode::TOO_MANY_REQUESTS {
                        return Err(PushError::Refused {
                            status: status.as_u16(),
                            message,
                        });
                    }
                    last = format!("{}: {message}", status.as_u16());
                    if let Some(wait) = asked.filter(|w| *w > MAX_RETRY_AFTER) {
                        return Err(PushError::GaveUp {
                            attempts: attempt,
                            last: format!(
                                "{last} (the server asks to come back in {} s)",
                                wait.as_secs()
                            ),
                        });
                    }
                }
                Err(e) => last = describe(&e),
            }
            tracing::warn!(attempt, attempts = self.attempts, error = %last, "push failed; retrying");
        }
        Err(PushError::GaveUp {
            attempts: self.attempts,
            last,
        })
    }

    /// What one push sends: its route, the name in its path, its content
    /// type and body, and the stack query parameter of a test run.
    fn request_parts<'a>(&self, push: &'a Push) -> Result<RequestParts<'a>, PushError> {
        let parts = match push {
            Push::Heartbeat {
                box_name,
                version,
                boot_time,
            } => {
                let body = HeartbeatBody {
                    commit: self.commit.clone(),
                    version: version.clone(),
                    boot_time: boot_time.map(|t| Timestamp::Seconds(t as f64)),
                };
                RequestParts {
                    route: Route::Heartbeat,
                    name: box_name,
                    content_type: api::JSON,
                    // A struct of strings and numbers always serializes.
                    body: serde_json::to_vec(&body).unwrap_or_default(),
                    stack: None,
                }
            }
            Push::TestRun {
                service,
                stack,
                body,
                format,
            } => {
                if let Some(s) = stack {
                    check_name("stack", s)?;
                }
                RequestParts {
                    route: Route::TestRun,
                    name: service,
                    content_type: format.content_type(),
                    body: body.clone(),
                    stack: stack.as_deref(),
                }
            }
            Push::Mutants { service, body } => RequestParts {
                route: Route::Mutants,
                name: service,
                content_type: api::JSON,
                body: body.clone(),
                stack: None,
            },
            Push::HostHealth { host, body } => RequestParts {
                route: Route::HostHealth,
                name: host,
                content_type: api::JSON,
                body: body.clone(),
                stack: None,
            },
        };
        check_name(parts.route.name_kind(), parts.name)?;
        Ok(parts)
    }

    /// The URL of a push: its route's path relative to the base URL (which
    /// may have a path prefix of its own), with a test run's stack.
    fn url(&self, parts: &RequestParts<'_>) -> Result<url::Url, PushError> {
        let path = parts.route.path(parts.name);
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| PushError::Usage(format!("cannot build the URL: {e}")))?;
        if let Some(stack) = parts.stack {
            url.query_pairs_mut().append_pair("stack", stack);
        }
        Ok(url)
    }

    /// Wait before retry `n` (1-based): doubling from the first backoff,
    /// capped, with ±25 % jitter.
    /// How long to wait before attempt `attempt` (from 1): nothing before
    /// the first; before a retry, what the server asked for (`Retry-After`)
    /// or else the backoff of the retry's number.
    fn wait_before(&self, attempt: u32, asked: Option<Duration>) -> Option<Duration> {
        (attempt > 1).then(|| asked.unwrap_or_else(|| self.backoff(attempt - 1)))
    }

    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(MAX_BACKOFF);
        let jitter = rand::rng().random_range(0.75..1.25);
        base.mul_f64(jitter)
    }
}

/// Longest `Retry-After` waited for; a server asking for more is given up on.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The wait `Retry-After` asks for: delta-seconds or an HTTP date (a date
/// in the past asks for none). `None` when absent or unreadable.
fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: std::time::SystemTime = chrono::DateTime::parse_from_rfc2822(v).ok()?.into();
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The server's `{"error": …}` message, else its text, else the status.
fn error_message(text: &str, status: StatusCode) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .or_else(|| {
            let t = text.trim();
            (!t.is_empty()).then(|| t.chars().take(300).collect())
        })
        .unwrap_or_else(|| status.to_string())
}

/// A transport error in words, with its cause (reqwest's top line alone is
/// often just "error sending request").
fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let at = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, v.parse().unwrap());
            // 1994-11-06 08:49:30 UTC
            let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_770);
            retry_after(&h, now)
        };
        assert_eq!(at("3"), Some(Duration::from_secs(3)));
        assert_eq!(at(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(
            at("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(at("Sun, 06 Nov 1994 08:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(at("soon"), None);
        assert_eq!(at("-1"), None);
        assert_eq!(
            retry_after(&HeaderMap::new(), std::time::SystemTime::now()),
            None
        );
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let c = PushClient::new(ClientOptions {
            url: "http://127.0.0.1:1".into(),
            token: "t".into(),
            commit: None,
            attempts: 3,
            first_backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            tls: None,
        })
        .unwrap();
        let b1 = c.backoff(1).as_secs_f64();
        let b3 = c.backoff(3).as_secs_f64();
        assert!((0.75..=1.25).contains(&b1), "{b1}");
        assert!((3.0..=5.0).contains(&b3), "{b3}");
        assert!(c.backoff(20) <= MAX_BACKOFF.mul_f64(1.25));
        // Nothing before the first attempt; the n-th retry waits backoff(n)
        // unless the server said how long.
        assert_eq!(c.wait_before(1, None), None);
        assert_eq!(c.wait_before(1, Some(Duration::from_secs(9))), None);
        let w2 = c.wait_before(2, None).unwrap().as_secs_f64();
        let w3 = c.wait_before(3, None).unwrap().as_secs_f64();
        assert!((0.75..=1.25).contains(&w2), "{w2}");
        assert!((1.5..=2.5).contains(&w3), "{w3}");
        assert_eq!(
            c.wait_before(3, Some(Duration::from_secs(9))),
            Some(Duration::from_secs(9))
        );
    }

    #[test]
    fn urls_and_names_are_checked_before_sending() {
        let opts = |url: &str| ClientOptions {
            url: url.into(),
            token: "t".into(),
            commit: None,
            attempts: 1,
            first_backoff: Duration::ZERO,
            timeout: Duration::from_secs(1),
            tls: None,
        };
        assert!(PushClient::new(opts("fleetpulse:8937")).is_err());
        let c = PushClient::new(opts("http://h:1/prefix")).unwrap();
        let push = Push::Mutants {
            service: "broker".into(),
            body: vec![],
        };
        let parts = c.request_parts(&push).unwrap();
        assert_eq!(
            c.url(&parts).unwrap().as_str(),
            "http://h:1/prefix/api/v1/mutants/broker"
        );
        let run = Push::TestRun {
            service: "broker".into(),
            stack: Some("test-1".into()),
            body: vec![],
            format: TestRunFormat::Junit,
        };
        let parts = c.request_parts(&run).unwrap();
        assert_eq!(parts.content_type, "application/xml");
        assert_eq!(
            c.url(&parts).unwrap().as_str(),
            "http://h:1/prefix/api/v1/test-runs/broker?stack=test-1"
        );
        let bad = Push::HostHealth {
            host: "../etc".into(),
            body: vec![],
        };
        assert!(matches!(c.request_parts(&bad), Err(PushError::Usage(_))));
    }

    #[test]
    fn server_error_messages_are_extracted() {
        assert_eq!(
            error_message(
                r#"{"error":"token #1 may not write x"}"#,
                StatusCode::FORBIDDEN
            ),
            "token #1 may not write x"
        );
        assert_eq!(
            error_message("", StatusCode::BAD_GATEWAY),
            "502 Bad Gateway"
        );
    }

    fn client(url: &str, attempts: u32, first_backoff: Duration) -> PushClient {
        PushClient::new(ClientOptions {
            url: url.into(),
            token: "t".into(),
            commit: None,
            attempts,
            first_backoff,
            timeout: Duration::from_secs(5),
            tls: None,
        })
        .unwrap()
    }

    #[test]
    fn tokens_and_inputs_are_read_from_their_files() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "  s3cret-token\n").unwrap();
        assert_eq!(read_token(Some(&token)).unwrap(), "s3cret-token");
        std::fs::write(&token, " \n").unwrap();
        assert!(matches!(read_token(Some(&token)), Err(PushError::NoToken)));
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_token(Some(&missing)),
            Err(PushError::TokenFile { .. })
        ));

        let report = dir.path().join("report.xml");
        std::fs::write(&report, b"<testsuite tests=\"2\"/>").unwrap();
        let read = read_input(report.to_str().unwrap()).unwrap();
        assert_eq!(read, b"<testsuite tests=\"2\"/>");
        let err = read_input(missing.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, PushError::Input { .. }), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn the_boot_time_is_this_machines() {
        // /proc/uptime: seconds since boot, the other way to the same time.
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let booted = boot_time().expect("Linux has /proc/stat btime") as f64;
        assert!(
            (booted - (now - uptime)).abs() < 5.0,
            "btime {booted}, now - uptime {}",
            now - uptime
        );
    }

    #[test]
    fn replicas_are_named_without_credentials_and_acks_counted() {
        let c = client("https://pusher:pw@fleet.example:8937/fp", 1, Duration::ZERO);
        assert_eq!(c.base_url(), "https://fleet.example:8937/fp/");
        let refused = || PushError::Refused {
            status: 403,
            message: "no".into(),
        };
        let ok = || Acknowledged {
            status: 202,
            body: String::new(),
        };
        let d = Delivery {
            replicas: vec![
                ("a".into(), Ok(ok())),
                ("b".into(), Err(refused())),
                ("c".into(), Ok(ok())),
            ],
        };
        assert_eq!(d.acks(), 2);
    }

    #[tokio::test]
    async fn a_retry_waits_its_backoff_and_the_first_attempt_does_not() {
        // Nothing listens on a port just released: every attempt fails at
        // once, so the time taken is the waits between attempts.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let push = Push::Mutants {
            service: "broker".into(),
            body: b"{}".to_vec(),
        };
        let start = std::time::Instant::now();
        let once = client(&url, 1, Duration::from_secs(60)).push(&push).await;
        assert!(matches!(once, Err(PushError::GaveUp { attempts: 1, .. })));
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the first attempt waited"
        );
        let start = std::time::Instant::now();
        let twice = client(&url, 2, Duration::from_millis(400))
            .push(&push)
            .await;
        // The transport error is named down to its cause.
        match &twice {
            Err(PushError::GaveUp { attempts: 2, last }) => {
                assert!(last.contains("onnection refused"), "{last}")
            }
            other => panic!("{other:?}"),
        }
        // backoff(1): 400 ms, give or take a quarter
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "{:?}",
            start.elapsed()
        );
    }

    /// A server that answers every request with `status` and `headers`.
    async fn answering(status: &'static str, headers: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    // The request head (its small body may follow; unread).
                    let mut buf = vec![0; 65536];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = r#"{"error":"scripted"}"#;
                    let answer = format!(
                        "HTTP/1.1 {status}\r\n{headers}content-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn client_errors_are_final_and_server_errors_retried() {
        let push = Push::Mutants {
            service: "broker".into(),
            body: b"{}".to_vec(),
        };
        // A push refused for good is not tried again (were it, the second
        // attempt, seconds later, would give up with a different error).
        let wait = Duration::from_secs(2);
        for status in ["400 Bad Request", "403 Forbidden", "413 Payload Too Large"] {
            let url = answering(status, "").await;
            match client(&url, 2, wait).push(&push).await {
                Err(PushError::Refused { status: s, message }) => {
                    assert_eq!(s.to_string(), status[..3]);
                    assert_eq!(message, "scripted");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        for status in [
            "429 Too Many Requests",
            "503 Service Unavailable",
            "500 Internal Server Error",
        ] {
            let url = answering(status, "").await;
            match client(&url, 1, wait).push(&push).await {
                Err(PushError::GaveUp { attempts: 1, last }) => {
                    assert_eq!(last, format!("{}: scripted", &status[..3]))
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        let url = answering("202 Accepted", "").await;
        let got = client(&url, 1, wait).push(&push).await.unwrap();
        assert_eq!(
            (got.status, got.body.as_str()),
            (202, r#"{"error":"scripted"}"#)
        );
    }

    #[tokio::test]
    async fn a_server_asking_for_more_than_five_minutes_is_given_up_on() {
        let push = Push::Mutants {
            service: "broker".into(),
            body: b"{}".to_vec(),
        };
        let last = |got: Result<Acknowledged, PushError>| match got {
            Err(PushError::GaveUp { attempts: 1, last }) => last,
            other => panic!("{other:?}"),
        };
        // One attempt: nothing is waited for either way.
        let url = answering("503 Service Unavailable", "retry-after: 301\r\n").await;
        let said = last(client(&url, 1, Duration::ZERO).push(&push).await);
        assert!(said.contains("asks to come back in 301 s"), "{said}");
        let url = answering("503 Service Unavailable", "retry-after: 300\r\n").await;
        let said = last(client(&url, 1, Duration::ZERO).push(&push).await);
        assert_eq!(said, "503: scripted");
    }
}
