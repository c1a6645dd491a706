//! Records what the binary was built from, for `--version` and
//! `fleet_exporter_build_info`: the git revision and branch (when built from
//! a checkout), the build date (`SOURCE_DATE_EPOCH` when set, for
//! reproducible builds) and the compiler's version. Anything unknown reads
//! "unknown"; nothing here can fail the build.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    let git = |args: &[&str]| output("git", args);
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let branch = git(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=FLEETPULSE_REVISION={revision}");
    println!("cargo:rustc-env=FLEETPULSE_BRANCH={branch}");
    println!("cargo:rustc-env=FLEETPULSE_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=FLEETPULSE_BUILD_EPOCH={epoch}");
    // A new commit or checkout changes the revision; nothing else here
    // needs a rebuild.
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=build.rs");
}
