//! The JUnit counter: any bytes give counts or an error.
#![no_main]

use fleetpulse::ingest::junit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = junit::count(data) {
        if let Some(d) = s.duration_seconds {
            assert!(d.is_finite() && d >= 0.0, "{s:?}");
        }
    }
});
