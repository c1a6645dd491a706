//! The client side of ingest: `fleetpulse push heartbeat|test-run|mutants|host-health`.
//!
//! One request per push, retried with exponential backoff (and jitter, so a
//! fleet rebooting at once does not retry in lockstep) on connection errors
//! and 5xx answers; a 4xx answer is final. The token comes from a file or an
//! environment variable and never appears in output or errors.

use std::path::Path;
use std::time::Duration;

use rand::Rng;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::config::Name;
use crate::ingest::COMMIT_HEADER;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestRunFormat {
    /// JSON counts.
    Json,
    /// JUnit XML.
    Junit,
}

impl TestRunFormat {
    /// The format of a file: by extension, else by its first character.
    pub fn detect(path: &str, body: &[u8]) -> TestRunFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".xml") {
            TestRunFormat::Junit
        } else if lower.ends_with(".json") {
            TestRunFormat::Json
        } else if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            TestRunFormat::Junit
        } else {
            TestRunFormat::Json
        }
    }
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

    /// Sends one push, retrying as described in the module docs.
    pub async fn push(&self, push: &Push) -> Result<Acknowledged, PushError> {
        let (method, path, content_type, body, query) = self.request_parts(push)?;
        let mut url = self
            .base
            .join(&path)
            .map_err(|e| PushError::Usage(format!("cannot build the URL: {e}")))?;
        if let Some(stack) = query {
            url.query_pairs_mut().append_pair("stack", &stack);
        }
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            if attempt > 1 {
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(AUTHORIZATION, format!("Bearer {}", self.token));
            if let Some(c) = &self.commit {
                req = req.header(COMMIT_HEADER, c.as_str());
            }
            if let Some(ct) = content_type {
                req = req.header(CONTENT_TYPE, ct).body(body.clone());
            }
            match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
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

    #[allow(clippy::type_complexity)]
    fn request_parts(
        &self,
        push: &Push,
    ) -> Result<
        (
            Method,
            String,
            Option<&'static str>,
            Vec<u8>,
            Option<String>,
        ),
        PushError,
    > {
        Ok(match push {
            Push::Heartbeat {
                box_name,
                version,
                boot_time,
            } => {
                check_name("box", box_name)?;
                let mut body = serde_json::Map::new();
                if let Some(c) = &self.commit {
                    body.insert("commit".into(), json!(c));
                }
                if let Some(v) = version {
                    body.insert("version".into(), json!(v));
                }
                if let Some(t) = boot_time {
                    body.insert("boot_time".into(), json!(t));
                }
                (
                    Method::POST,
                    format!("api/v1/heartbeats/{box_name}"),
                    Some("application/json"),
                    serde_json::Value::Object(body).to_string().into_bytes(),
                    None,
                )
            }
            Push::TestRun {
                service,
                stack,
                body,
                format,
            } => {
                check_name("service", service)?;
                if let Some(s) = stack {
                    check_name("stack", s)?;
                }
                let ct = match format {
                    TestRunFormat::Json => "application/json",
                    TestRunFormat::Junit => "application/xml",
                };
                (
                    Method::PUT,
                    format!("api/v1/test-runs/{service}"),
                    Some(ct),
                    body.clone(),
                    stack.clone(),
                )
            }
            Push::Mutants { service, body } => {
                check_name("service", service)?;
                (
                    Method::PUT,
                    format!("api/v1/mutants/{service}"),
                    Some("application/json"),
                    body.clone(),
                    None,
                )
            }
            Push::HostHealth { host, body } => {
                check_name("host", host)?;
                (
                    Method::PUT,
                    format!("api/v1/host-health/{host}"),
                    Some("application/json"),
                    body.clone(),
                    None,
                )
            }
        })
    }

    /// Wait before retry `n` (1-based): doubling from the first backoff,
    /// capped, with ±25 % jitter.
    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .first_backoff
            .saturating_mul(1u32 << (n - 1).min(16))
            .min(MAX_BACKOFF);
        let jitter = rand::rng().random_range(0.75..1.25);
        base.mul_f64(jitter)
    }
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
    fn test_run_format_by_extension_then_content() {
        assert_eq!(TestRunFormat::detect("r.XML", b"{}"), TestRunFormat::Junit);
        assert_eq!(
            TestRunFormat::detect("r.json", b"<x/>"),
            TestRunFormat::Json
        );
        assert_eq!(
            TestRunFormat::detect("-", b"  \n<testsuite/>"),
            TestRunFormat::Junit
        );
        assert_eq!(
            TestRunFormat::detect("-", b"{\"passed\":1}"),
            TestRunFormat::Json
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
        let (_, path, ..) = c
            .request_parts(&Push::Mutants {
                service: "broker".into(),
                body: vec![],
            })
            .unwrap();
        assert_eq!(
            c.base.join(&path).unwrap().as_str(),
            "http://h:1/prefix/api/v1/mutants/broker"
        );
        let bad = c.request_parts(&Push::HostHealth {
            host: "../etc".into(),
            body: vec![],
        });
        assert!(matches!(bad, Err(PushError::Usage(_))));
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
}
