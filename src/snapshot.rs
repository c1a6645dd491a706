//! The snapshot: everything the sources and the store last said, as plain
//! data. Views (metrics, page, JSON, terminal) are pure functions of it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::drift::DriftFlag;
use crate::pulse::Pulse;

// The facts of each source live with the source; they are re-exported here
// because a snapshot is where every view meets them.
pub use crate::clock::{now_unix, unix_seconds};
pub use crate::health::Health;
pub use crate::sources::healthz::ServiceProbe;
pub use crate::sources::tls::TlsProbe;
pub use crate::sources::{Facts, SourceOutput};

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
    /// Whether the last config reload succeeded, and when the config last
    /// loaded successfully, Unix seconds.
    pub reload: (bool, f64),
    /// Discovered environments refused since start.
    pub discovery_refused: u64,
    /// What changed and when (empty without a store).
    pub history: Arc<crate::history::HistoryView>,
}
