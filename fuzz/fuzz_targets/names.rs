//! The name rule of box, host, service and stack names (they appear in push
//! URLs and label values): the validator, `FromStr` and the config parser
//! accept exactly `[A-Za-z0-9._-]{1,64}` other than `.` and `..`.
#![no_main]

use fleetpulse::config::{Config, Name};
use libfuzzer_sys::fuzz_target;

fn rule(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && s != "."
        && s != ".."
}

/// `s` as a double-quoted YAML scalar: every character escaped by code point,
/// so the reader hands over exactly `s`.
fn quoted(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        q.push_str(&format!("\\U{:08x}", u32::from(c)));
    }
    q.push('"');
    q
}

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let ok = rule(name);
    assert_eq!(Name::is_valid(name), ok, "{name:?}");
    assert_eq!(name.parse::<Name>().is_ok(), ok, "{name:?}");
    let yaml = format!(
        "environments:\n  - name: prod\n    boxes: [{}]\n",
        quoted(name)
    );
    match Config::parse(&yaml, "fleet.yaml") {
        Ok(c) => {
            assert!(ok, "{name:?} accepted");
            assert_eq!(c.environments[0].boxes[0].as_str(), name);
        }
        Err(e) => assert!(!ok, "{name:?} refused: {e}"),
    }
});
