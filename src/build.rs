//! What this binary was built from, recorded by `build.rs`: shown by
//! `fleetpulse --version` (in the shape of Prometheus' own exporters) and
//! as `fleet_exporter_build_info`.

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git commit built, or "unknown" outside a checkout.
pub const REVISION: &str = env!("FLEETPULSE_REVISION");
/// The git branch built, or "unknown".
pub const BRANCH: &str = env!("FLEETPULSE_BRANCH");
/// `rustc --version` of the compiler that built it.
pub const RUSTC_VERSION: &str = env!("FLEETPULSE_RUSTC_VERSION");
/// The Cargo features of the sources with heavy clients this build has.
pub const FEATURES: &[&str] = &[
    #[cfg(feature = "aws")]
    "aws",
    #[cfg(feature = "github")]
    "github",
    #[cfg(feature = "chain")]
    "chain",
];
/// When it was built, Unix seconds (`SOURCE_DATE_EPOCH` when set).
pub const BUILD_EPOCH: &str = env!("FLEETPULSE_BUILD_EPOCH");

/// `--version`'s text after the program's name (clap prints the name):
/// version, branch and revision on the first line, then the build date,
/// compiler and platform, as `prometheus/common/version` lists them.
pub fn long_version() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(long_version_text)
}

fn long_version_text() -> String {
    let date = BUILD_EPOCH
        .parse::<i64>()
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{VERSION} (branch: {BRANCH}, revision: {REVISION})\n  \
         build date:       {date}\n  \
         rustc version:    {RUSTC_VERSION}\n  \
         platform:         {}/{}\n  \
         features:         {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        if FEATURES.is_empty() {
            "none (healthz, tls and oidc only)".to_string()
        } else {
            FEATURES.join(", ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_long_version_names_every_part() {
        let v = long_version();
        let first = v.lines().next().unwrap();
        assert_eq!(
            first,
            format!("{VERSION} (branch: {BRANCH}, revision: {REVISION})")
        );
        assert!(v.contains("rustc version:    rustc "), "{v}");
        assert!(!v.contains("build date:       unknown"), "{v}");
        assert!(RUSTC_VERSION.starts_with("rustc "), "{RUSTC_VERSION}");
    }
}
