//! Shared test helpers: finding real peers and waiting for conditions.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The path of a peer binary, or a loud failure saying how to install it.
/// A test that needs a peer never passes without it.
pub fn require_peer(env_var: &str, fallbacks: &[&str], install_hint: &str) -> PathBuf {
    if let Ok(p) = std::env::var(env_var) {
        let p = PathBuf::from(p);
        if p.exists() {
            return p;
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for f in fallbacks {
        let p = if f.starts_with('/') {
            PathBuf::from(f)
        } else {
            root.join(f)
        };
        if p.exists() {
            return p;
        }
    }
    panic!(
        "required peer not found (set {env_var} or install it: {install_hint}); \
         `bash scripts/install-test-deps` installs every peer"
    );
}

/// promtool from Debian's prometheus package.
pub fn promtool() -> PathBuf {
    require_peer(
        "FLEETPULSE_PROMTOOL",
        &["/usr/bin/promtool"],
        "apt-get install prometheus",
    )
}

/// Runs `promtool check metrics` on `body`: whether it succeeded, and what
/// it said on stdout and stderr.
pub fn promtool_says(body: &str) -> (bool, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// Fails unless `promtool check metrics` finds nothing to say about `body`.
pub fn promtool_check_metrics(body: &str) {
    let (ok, said) = promtool_says(body);
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics: {said}"
    );
}

/// Polls `f` every 100 ms until it returns Some, or panics after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET a URL and return status and body.
pub async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// The value of the first sample of `series` (exact name and labels as written).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
