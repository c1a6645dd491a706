//! The pulled sources' last state, kept between runs of the exporter: for
//! each source, whether its last run succeeded, when it last succeeded, its
//! last error and the facts of its last good run (as JSON the source itself
//! wrote). Read back at start-up so that a restart does not show a gap.
//!
//! The store treats the facts as an opaque text; only the source that wrote
//! them reads them back.

use rusqlite::{params, Connection};

/// One source's state, as kept.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub source: String,
    /// Whether its last run succeeded.
    pub up: bool,
    /// Unix seconds of its last success.
    pub last_success: Option<f64>,
    pub last_error: Option<String>,
    /// Unix seconds of its last run.
    pub ran_at: f64,
    /// How long its last run took.
    pub duration_seconds: f64,
    /// The facts of its last good run, as read back; `None` when it holds
    /// none. Ignored by a write, which says what to do in `FactsWrite`.
    pub facts: Option<String>,
}

/// What a write does with the kept facts.
#[derive(Debug, Clone, PartialEq)]
pub enum FactsWrite {
    /// New facts from a good run.
    Set(String),
    /// The same facts as already kept (a good run that found nothing new,
    /// or a failed run whose last good values are still fresh).
    Keep,
    /// The last good values went stale: drop them.
    Clear,
}

pub(super) const CREATE: &str = "CREATE TABLE IF NOT EXISTS source_state (
    source TEXT PRIMARY KEY, up INTEGER NOT NULL, last_success REAL,
    last_error TEXT, ran_at REAL NOT NULL, duration_seconds REAL NOT NULL,
    facts TEXT);";

pub(super) fn load(conn: &Connection) -> rusqlite::Result<Vec<SourceRecord>> {
    let mut st = conn.prepare(
        "SELECT source, up, last_success, last_error, ran_at, duration_seconds, facts
         FROM source_state ORDER BY source",
    )?;
    let rows = st.query_map([], |r| {
        Ok(SourceRecord {
            source: r.get(0)?,
            up: r.get::<_, i64>(1)? != 0,
            last_success: r.get(2)?,
            last_error: r.get(3)?,
            ran_at: r.get(4)?,
            duration_seconds: r.get(5)?,
            facts: r.get(6)?,
        })
    })?;
    rows.collect()
}

pub(super) fn write(
    conn: &Connection,
    record: &SourceRecord,
    facts: &FactsWrite,
) -> rusqlite::Result<()> {
    let (set, clear, text) = match facts {
        FactsWrite::Set(t) => (true, false, Some(t.as_str())),
        FactsWrite::Keep => (false, false, None),
        FactsWrite::Clear => (false, true, None),
    };
    conn.prepare_cached(
        "INSERT INTO source_state
             (source, up, last_success, last_error, ran_at, duration_seconds, facts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(source) DO UPDATE SET
             up = excluded.up, last_success = excluded.last_success,
             last_error = excluded.last_error, ran_at = excluded.ran_at,
             duration_seconds = excluded.duration_seconds,
             facts = CASE WHEN ?8 THEN excluded.facts WHEN ?9 THEN NULL ELSE facts END",
    )?
    .execute(params![
        record.source,
        record.up as i64,
        record.last_success,
        record.last_error,
        record.ran_at,
        record.duration_seconds,
        text,
        set,
        clear
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn open(dir: &std::path::Path) -> Store {
        Store::open(dir, 10, &|_, _| true, Box::new(|_| {})).unwrap()
    }

    fn record(source: &str, up: bool, ran_at: f64) -> SourceRecord {
        SourceRecord {
            source: source.to_string(),
            up,
            last_success: Some(100.0),
            last_error: (!up).then(|| "connection refused".to_string()),
            ran_at,
            duration_seconds: 0.25,
            facts: None,
        }
    }

    #[test]
    fn kept_state_reads_back_after_a_reopen_and_facts_follow_their_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        assert!(store.restored_sources().is_empty());
        store.keep_source(
            record("healthz", true, 100.0),
            FactsWrite::Set("[1]".into()),
        );
        store.keep_source(record("tls", true, 100.0), FactsWrite::Set("[2]".into()));
        // A failed run whose facts are still fresh keeps them; one whose
        // facts went stale drops them.
        store.keep_source(record("healthz", false, 110.0), FactsWrite::Keep);
        store.keep_source(record("tls", false, 110.0), FactsWrite::Clear);
        store.keep_source(record("chain", true, 120.0), FactsWrite::Keep);
        drop(store);

        let store = open(dir.path());
        let kept = store.restored_sources();
        let mut want_healthz = record("healthz", false, 110.0);
        want_healthz.facts = Some("[1]".into());
        assert_eq!(
            kept,
            [
                record("chain", true, 120.0),
                want_healthz,
                record("tls", false, 110.0)
            ]
        );
    }
}
