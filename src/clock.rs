//! Wall-clock time as Prometheus writes it: seconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

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
