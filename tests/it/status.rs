//! `fleetpulse status`: the board as a terminal table, its exit codes, and a
//! clear message for each kind of bad input.

use crate::fixtures;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use fixtures::*;
use fleetpulse::status_cli;

/// Serves `body` with `content_type` to every request, on an ephemeral port,
/// until the test process exits.
fn serve_fixed(content_type: &'static str, body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

fn status(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetpulse"))
        .arg("status")
        .args(args)
        .env_remove("FLEETPULSE_URL")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn serve_snapshot(s: &fleetpulse::snapshot::Snapshot) -> String {
    serve_fixed(
        "application/json",
        serde_json::to_string(&board_model(s)).unwrap(),
    )
}

#[test]
fn red_fleet_exits_1_and_prints_the_table_without_colour_off_a_terminal() {
    let url = serve_snapshot(&degraded(false));
    let out = status(&["--url", &url]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("fleet red"), "{stdout}");
    assert!(stdout.contains("test-1  nginx"), "{stdout}");
    assert!(stdout.contains("degraded"), "{stdout}");
    assert!(
        stdout.contains("57 passed, 0 failed, 2 skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("up 12 days"), "{stdout}");
    assert!(stdout.contains("41 caught"), "{stdout}");
    // Who holds each CI slot, since when, and what waits behind it.
    let slot = stdout
        .lines()
        .find(|l| l.starts_with("test-1 ") && l.contains("Fix the signer retry"))
        .unwrap_or_else(|| panic!("no CI slot row for test-1:\n{stdout}"));
    assert!(
        slot.contains("integration “Fix the signer retry” on fix-signer (in_progress)")
            && slot.contains("10 minutes ago")
            && slot.contains("2 queued"),
        "{slot}"
    );
    assert!(!stdout.contains('\x1b'), "no colour when not a terminal");
}

#[test]
fn healthy_stack_exits_0_and_only_that_stack_is_shown() {
    let url = serve_snapshot(&degraded(false));
    let out = status(&["--url", &url, "--stack", "prod"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("prod ") && l.contains("broker")),
        "{stdout}"
    );
    assert!(!stdout.contains("test-1"), "{stdout}");
}

#[test]
fn json_flag_prints_the_selected_board_as_fleet_json() {
    let url = serve_snapshot(&healthy(false));
    let out = status(&[
        "--url",
        &format!("{url}/api/v1/fleet"),
        "--json",
        "--stack",
        "test-1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["environments"].as_array().unwrap().len(), 1);
    assert_eq!(v["environments"][0]["stack"], "test-1");
}

#[test]
fn unknown_stack_exits_2_naming_the_known_ones() {
    let url = serve_snapshot(&healthy(false));
    let out = status(&["--url", &url, "--stack", "prdo"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no environment named \"prdo\"; the fleet has: prod, test-1"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unreachable_url_exits_2_with_a_clear_message() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = status(&["--url", &format!("http://127.0.0.1:{port}")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot reach http://127.0.0.1:{port}/api/v1/fleet"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("check --url"), "{stderr}");
}

#[test]
fn garbage_json_exits_2_with_a_clear_message() {
    let url = serve_fixed("text/html", "<html>hello</html>".into());
    let out = status(&["--url", &url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("did not answer fleet JSON: not JSON"),
        "{stderr}"
    );

    let url = serve_fixed(
        "application/json",
        r#"{"schema_version":1,"state":7}"#.into(),
    );
    let out = status(&["--url", &url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("unexpected shape"), "{stderr}");
}

#[test]
fn not_a_url_exits_2() {
    let out = status(&["--url", "localhost:8937"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not an http(s) URL"), "{stderr}");
}

#[test]
fn colour_marks_states_only_when_asked() {
    let model = board_model(&degraded(false));
    let coloured = status_cli::render_table(&model, true);
    assert!(coloured.contains("\x1b[1;31mred\x1b[0m"));
    assert!(coloured.contains("\x1b[33mdegraded\x1b[0m"));
    let plain = status_cli::render_table(&model, false);
    assert!(!plain.contains('\x1b'));
    assert_eq!(status_cli::exit_code(&model), 1);
    assert_eq!(status_cli::exit_code(&board_model(&healthy(false))), 0);
}

/// The tables of the degraded fleet (plain and coloured) and of a public
/// board with sources down and drift, as recorded in tests/fixtures/status/:
/// every column's width, padding and colour. `FLEETPULSE_RECORD=1` writes
/// the files afresh (then read the diff).
#[test]
fn the_tables_are_as_recorded() {
    for (snapshot, colour, file) in [
        (degraded(false), false, "degraded.txt"),
        (degraded(false), true, "degraded-colour.txt"),
        (source_down(true), false, "source-down-public.txt"),
    ] {
        let table = status_cli::render_table(&board_model(&snapshot), colour);
        crate::common::assert_as_recorded(&format!("status/{file}"), &table);
    }
}
