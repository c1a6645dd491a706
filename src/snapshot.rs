//! The snapshot: everything the sources and the store last said, as plain
//! data. Views (metrics, page, JSON, terminal) are pure functions of it.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Config;
use crate::drift::DriftFlag;
use crate::pulse::Pulse;
use crate::sources::{aws, chain, dns, github, oidc};

/// Seconds since the Unix epoch, as Prometheus timestamps are written.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Now, in Unix seconds.
pub fn now_unix() -> f64 {
    unix_seconds(SystemTime::now())
}

/// Service health, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Green,
    Degraded,
    Red,
}

impl Health {
    /// Every state, in state-set order.
    pub const ALL: [Health; 3] = [Health::Green, Health::Degraded, Health::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Green => "green",
            Health::Degraded => "degraded",
            Health::Red => "red",
        }
    }
}

/// One /healthz probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceProbe {
    pub stack: String,
    pub service: String,
    pub health: Health,
    /// HTTP status, when an answer arrived.
    pub status_code: Option<u16>,
    pub duration_seconds: f64,
    /// The commit the service reported, if any.
    pub commit: Option<String>,
    /// Why it is not green, in words.
    pub reason: Option<String>,
}

/// One TLS handshake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TlsProbe {
    pub stack: String,
    pub service: String,
    /// `host:port` as configured.
    pub host: String,
    pub up: bool,
    /// Leaf certificate notAfter, Unix seconds.
    pub leaf_not_after: Option<i64>,
    /// Earliest notAfter anywhere in the presented chain, Unix seconds.
    pub chain_earliest_not_after: Option<i64>,
    /// Whether the chain verifies for the host name against the trust roots.
    pub chain_valid: bool,
    pub error: Option<String>,
}

/// What one run of a source produced.
#[derive(Debug, Clone)]
pub enum SourceOutput {
    Healthz(Vec<ServiceProbe>),
    Tls(Vec<TlsProbe>),
    Aws(aws::AwsFacts),
    Dns(dns::DnsFacts),
    Github(github::GithubFacts),
    Chain(chain::ChainFacts),
    Oidc(oidc::OidcFacts),
}

/// The last good output of each source; `None` until a source first succeeds
/// or after its values went stale.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub healthz: Option<Arc<Vec<ServiceProbe>>>,
    pub tls: Option<Arc<Vec<TlsProbe>>>,
    pub aws: Option<Arc<aws::AwsFacts>>,
    pub dns: Option<Arc<dns::DnsFacts>>,
    pub github: Option<Arc<github::GithubFacts>>,
    pub chain: Option<Arc<chain::ChainFacts>>,
    pub oidc: Option<Arc<oidc::OidcFacts>>,
}

impl Facts {
    /// Stores a source's fresh output.
    pub fn apply(&mut self, out: SourceOutput) {
        match out {
            SourceOutput::Healthz(v) => self.healthz = Some(Arc::new(v)),
            SourceOutput::Tls(v) => self.tls = Some(Arc::new(v)),
            SourceOutput::Aws(v) => self.aws = Some(Arc::new(v)),
            SourceOutput::Dns(v) => self.dns = Some(Arc::new(v)),
            SourceOutput::Github(v) => self.github = Some(Arc::new(v)),
            SourceOutput::Chain(v) => self.chain = Some(Arc::new(v)),
            SourceOutput::Oidc(v) => self.oidc = Some(Arc::new(v)),
        }
    }

    /// Forgets a source's values (they went stale).
    pub fn forget(&mut self, source: &str) {
        match source {
            "healthz" => self.healthz = None,
            "tls" => self.tls = None,
            "aws" => self.aws = None,
            "dns" => self.dns = None,
            "github" => self.github = None,
            "chain" => self.chain = None,
            "oidc" => self.oidc = None,
            _ => {}
        }
    }
}

/// The scheduler's bookkeeping for one source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceStatus {
    pub source: &'static str,
    /// Whether the last run succeeded.
    pub up: bool,
    /// Unix seconds of the last success.
    pub last_success: Option<f64>,
    /// Duration of the last run.
    pub duration_seconds: f64,
    pub errors_total: u64,
    /// The last run's error, if it failed.
    pub last_error: Option<String>,
    /// Whether the source has run at all yet.
    pub has_run: bool,
    #[serde(skip)]
    pub interval: Duration,
}

/// Everything a view needs, read at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// When the snapshot was read, Unix seconds.
    pub read_at: f64,
    pub config: Arc<Config>,
    pub sources: Vec<SourceStatus>,
    pub facts: Facts,
    pub pulse: Arc<Pulse>,
    pub drift: Vec<DriftFlag>,
    /// Request handlers that panicked since start (each answered 500).
    pub handler_panics: u64,
}
