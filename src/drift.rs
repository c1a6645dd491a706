//! Drift: a pure function of the snapshot (not yet implemented).

use serde::Serialize;

/// One drift flag of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftFlag {
    pub stack: String,
    /// `dns_mismatch`, `eip_mismatch`, `oidc_issuer_mismatch` or `stale_binary`.
    pub kind: &'static str,
    pub drifted: bool,
    /// What disagrees, in words.
    pub detail: String,
}

/// Derives every drift flag that can be known from the facts.
pub fn detect(
    _config: &crate::config::Config,
    _facts: &crate::snapshot::Facts,
    _pulse: &crate::pulse::Pulse,
    _now: f64,
) -> Vec<DriftFlag> {
    Vec::new()
}
