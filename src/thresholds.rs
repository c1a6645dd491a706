//! The thresholds behind the states the views show, in one place. The alert
//! rules in `alerts/` use the same numbers (a test compares them), so the
//! page, the terminal and Alertmanager agree on what is a fault.

/// A certificate with fewer days left than this reads as degraded
/// (`FleetTLSCertExpiringSoon`, `FleetTLSChainCertExpiringSoon`).
pub const CERT_WARN_DAYS: i64 = 14;

/// A certificate with fewer days left than this is critical
/// (`FleetTLSCertExpiringCritical`).
pub const CERT_CRITICAL_DAYS: i64 = 7;

/// The window in which boots are counted for a restart loop.
pub const RESTART_WINDOW_SECONDS: f64 = 3600.0;

/// More boot heartbeats than this within `RESTART_WINDOW_SECONDS` is a
/// restart loop (`FleetBoxRestartLoop`).
pub const RESTART_LOOP_BOOTS: usize = 3;
