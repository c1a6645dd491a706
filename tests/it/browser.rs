//! The status page in a real browser: Debian's chromium, headless, loads the
//! page `fleetpulse demo` serves, lets its script refresh the board, and
//! takes a screenshot.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, get, require_peer};

fn chromium() -> PathBuf {
    require_peer(
        "FLEETPULSE_CHROMIUM",
        &["/usr/bin/chromium"],
        "apt-get install chromium",
    )
}

/// Runs headless chromium with `args` on `url`, returning stdout; fails the
/// test if it does not finish within a minute.
fn run_chromium(bin: &Path, profile: &Path, args: &[String], url: &str) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).unwrap();
        s
    });
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// The DOM after the page's script has had `budget_ms` of virtual time.
async fn dump_dom(bin: &Path, profile: &Path, url: &str, budget_ms: u32) -> String {
    let (bin, profile, url) = (bin.to_owned(), profile.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || {
        run_chromium(
            &bin,
            &profile,
            &[
                "--dump-dom".into(),
                format!("--virtual-time-budget={budget_ms}"),
            ],
            &url,
        )
    })
    .await
    .unwrap()
}

fn attribute(dom: &str, name: &str) -> Option<String> {
    let start = dom.find(&format!("{name}=\""))? + name.len() + 2;
    let len = dom[start..].find('"')?;
    Some(dom[start..start + len].to_string())
}

/// The text of an HTML document as a reader sees it: tags dropped, entities
/// of the page's own escaping undone, white space collapsed.
fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_the_demo_fleet_and_the_page_refreshes_itself() {
    // A load of its own: not beside the tests that need the machine quiet.
    let _alone = common::machine_alone().await;
    let bin = chromium();
    let dir = tempfile::tempdir().unwrap();
    let demo = common::start_demo(&dir.path().join("demo")).await;
    let base = format!("http://{}", demo.exporter.addr);

    // Wait until every demo service has been probed and the three states show.
    let services = demo.services.len();
    let fleet_url = format!("{base}/api/v1/fleet");
    eventually(Duration::from_secs(60), "every demo service probed", || {
        let url = fleet_url.clone();
        async move {
            let (_, body) = get(&url).await;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let states: Vec<String> = v["environments"]
                .as_array()?
                .iter()
                .flat_map(|e| e["services"].as_array().cloned().unwrap_or_default())
                .map(|s| s["state"].as_str().unwrap_or("").to_string())
                .collect();
            let ready = states.len() == services
                && !states.iter().any(|s| s == "unknown")
                && ["green", "degraded", "red"]
                    .iter()
                    .all(|w| states.iter().any(|s| s == w));
            ready.then_some(())
        }
    })
    .await;

    let page = format!("{base}/");
    let profile = dir.path().join("chromium-profile");
    // Twelve seconds of virtual time: the script swaps the board in twice.
    let first = dump_dom(&bin, &profile, &page, 12_000).await;
    for stack in fleetpulse::demo::STACKS {
        assert!(
            first.contains(&format!("data-stack=\"{stack}\"")),
            "{stack} missing from the DOM"
        );
    }
    // The CI slots: test-2's held for hours with five queued, test-3's free.
    let text = visible_text(&first);
    for slot in [
        "CI slot",
        "held by integration “integration on test-slot-2”",
        "; 5 queued",
        "free; 0 queued",
    ] {
        assert!(
            text.contains(slot),
            "{slot:?} missing from the page:\n{text}"
        );
    }
    // The drift flags, raised and in line.
    for drift in [
        "dns mismatch drifted",
        "eip mismatch drifted",
        "oidc issuer mismatch drifted — ",
        "stale binary drifted — broker runs 9b1d0aa",
        "dns mismatch in line",
    ] {
        assert!(
            text.contains(drift),
            "{drift:?} missing from the page:\n{text}"
        );
    }
    for state in ["green", "degraded", "red"] {
        assert!(
            first.contains(&format!("<span class=\"st st-{state}\">{state}</span>")),
            "state {state} missing from the DOM"
        );
    }
    let refreshes: u32 = attribute(&first, "data-refreshes")
        .and_then(|r| r.parse().ok())
        .unwrap_or(0);
    assert!(refreshes >= 1, "the script never swapped the board in");
    let first_read = attribute(&first, "data-read-at").expect("data-read-at in the DOM");

    // A later load shows data read later: the board is live, not a copy.
    // Each try is a whole headless run of the page; a few are enough.
    let mut changed = false;
    for _ in 0..5 {
        let second = dump_dom(&bin, &profile, &page, 6_000).await;
        let second_read = attribute(&second, "data-read-at").expect("data-read-at in the DOM");
        if second_read != first_read {
            changed = true;
            break;
        }
    }
    assert!(
        changed,
        "the board's data did not change over five page loads"
    );

    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let shot = out_dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let (b, p, u, s) = (bin.clone(), profile.clone(), page.clone(), shot.clone());
    tokio::task::spawn_blocking(move || {
        run_chromium(
            &b,
            &p,
            &[
                format!("--screenshot={}", s.display()),
                "--window-size=1280,2000".into(),
                "--virtual-time-budget=2000".into(),
            ],
            &u,
        )
    })
    .await
    .unwrap();
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 30_000,
        "screenshot suspiciously small ({} bytes): blank page?",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
    demo.exporter.shutdown().await.unwrap();
}
