//! The doctor snapshot reader: any bytes give counts or an error, and counts
//! never exceed the checks the document could hold.
#![no_main]

use fleetpulse::ingest::doctor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = doctor::summarize(data) {
        // Every counted check takes at least `{"status":"ok"}` of input.
        let counted = s.ok + s.warn + s.fail;
        assert!(counted <= data.len() as u64 / 15, "{s:?}");
    }
});
