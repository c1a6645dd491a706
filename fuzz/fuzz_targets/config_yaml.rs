//! The config parser: any text gives a config or an error naming the file
//! and a line and column inside the text.
#![no_main]

use fleetpulse::config::{Config, ConfigError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(text, "fleet.yaml") {
        let shown = e.to_string();
        let ConfigError::Invalid { line, column, .. } = e else {
            panic!("parse gave a read error: {shown}");
        };
        let lines = text.split('\n').count();
        assert!(
            line >= 1 && line <= lines,
            "line {line} of {lines}: {shown}"
        );
        assert!(column >= 1, "{shown}");
        assert!(
            shown.starts_with(&format!("fleet.yaml:{line}:{column}: ")),
            "{shown}"
        );
    }
});
