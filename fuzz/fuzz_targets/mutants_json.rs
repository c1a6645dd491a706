//! The cargo-mutants reader: any bytes give counts or an error.
#![no_main]

use fleetpulse::ingest::mutants;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mutants::parse(data);
});
