// Included by the integration tests' common module and by the unit tests'
// `testing` module: one comparison of an output with its recorded file.

/// Asserts that `text` is what `tests/fixtures/<file>` holds;
/// `FLEETPULSE_RECORD=1` writes the file afresh instead (then read the diff).
pub fn assert_as_recorded(file: &str, text: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    if std::env::var_os("FLEETPULSE_RECORD").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let recorded = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (FLEETPULSE_RECORD=1 writes it)", path.display()));
    assert_eq!(text, recorded, "{} differs", path.display());
}
