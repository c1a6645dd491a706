//! Opening the database (WAL, full sync, the schema) with errors that say
//! what to do, and loading the pulse back from it at start-up.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::{count_col, host_health_row, StoreError, DOCTOR_SELECT, SCHEMA_VERSION};
use crate::pulse::{Heartbeat, Mutants, Pulse, TestRun, TestRunFormat};

pub(super) fn open_writer(path: &Path, dir: &str) -> Result<Connection, StoreError> {
    let err = |e| classify(e, path, dir);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            .union(OpenFlags::SQLITE_OPEN_CREATE)
            .union(OpenFlags::SQLITE_OPEN_NO_MUTEX),
    )
    .map_err(err)?;
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(err)? {
        return Err(StoreError::ReadOnly {
            dir: dir.to_string(),
            message: format!("{} opened read-only", path.display()),
        });
    }
    conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Sqlite {
            path: path.display().to_string(),
            message: format!("cannot switch to WAL journaling (got {mode})"),
        });
    }
    // A page cache large enough for the history's index pages that each
    // sweep's events touch (one leaf per subject), so they are not read again.
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-16384;",
    )
    .map_err(err)?;
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(err)?;
    if check != "ok" {
        return Err(StoreError::Corrupt {
            path: path.display().to_string(),
            message: check,
        });
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.display().to_string(),
            found: version,
        });
    }
    // Creating the schema (or, when it exists, an empty write transaction)
    // proves at start-up that the store can be written.
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         CREATE TABLE IF NOT EXISTS heartbeats (
             box TEXT PRIMARY KEY, stack TEXT NOT NULL, timestamp REAL NOT NULL,
             count INTEGER NOT NULL, recent TEXT NOT NULL, commit_sha TEXT,
             version TEXT, booted_at REAL);
         CREATE TABLE IF NOT EXISTS test_runs (
             stack TEXT NOT NULL, service TEXT NOT NULL, passed INTEGER NOT NULL,
             failed INTEGER NOT NULL, errored INTEGER NOT NULL, skipped INTEGER NOT NULL,
             duration_seconds REAL, started_at REAL, received_at REAL NOT NULL,
             commit_sha TEXT, format TEXT NOT NULL, PRIMARY KEY (stack, service));
         CREATE TABLE IF NOT EXISTS mutants (
             service TEXT PRIMARY KEY, caught INTEGER NOT NULL, missed INTEGER NOT NULL,
             timeout INTEGER NOT NULL, unviable INTEGER NOT NULL,
             received_at REAL NOT NULL, commit_sha TEXT);
         CREATE TABLE IF NOT EXISTS host_health (
             host TEXT PRIMARY KEY, stack TEXT NOT NULL, ok INTEGER NOT NULL,
             warn INTEGER NOT NULL, fail INTEGER NOT NULL, received_at REAL NOT NULL,
             commit_sha TEXT, document TEXT NOT NULL);
         {}
         {}
         PRAGMA user_version = {SCHEMA_VERSION};
         COMMIT;",
        super::sources::CREATE,
        crate::history::store::CREATE
    ))
    .map_err(err)?;
    Ok(conn)
}

/// Turns an SQLite error at start-up into one that says what to do.
pub(super) fn classify(e: rusqlite::Error, path: &Path, dir: &str) -> StoreError {
    let message = e.to_string();
    match e.sqlite_error_code() {
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            StoreError::ReadOnly {
                dir: dir.to_string(),
                message,
            }
        }
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path: path.display().to_string(),
            message,
        },
        Some(ErrorCode::DiskFull) => StoreError::DiskFull {
            path: path.display().to_string(),
            message,
        },
        _ => StoreError::Sqlite {
            path: path.display().to_string(),
            message,
        },
    }
}

/// Reads the whole pulse (without counters, which live in memory only).
pub(super) fn load(conn: &Connection) -> rusqlite::Result<Pulse> {
    let mut pulse = Pulse::default();
    let mut st = conn.prepare(
        "SELECT box, stack, timestamp, count, recent, commit_sha, version, booted_at FROM heartbeats",
    )?;
    let rows = st.query_map([], |r| {
        let recent: String = r.get(4)?;
        Ok(Heartbeat {
            box_name: r.get(0)?,
            stack: r.get(1)?,
            timestamp: r.get(2)?,
            count: r.get::<_, i64>(3)?.max(0) as u64,
            // Written by this module as a JSON list of numbers; anything
            // else reads as no recent boots rather than refusing to start.
            recent: serde_json::from_str(&recent).unwrap_or_default(),
            commit: r.get(5)?,
            version: r.get(6)?,
            booted_at: r.get(7)?,
        })
    })?;
    for h in rows {
        let h = h?;
        pulse
            .heartbeats
            .insert(Arc::from(h.box_name.as_str()), Arc::new(h));
    }
    let mut st = conn.prepare(
        "SELECT stack, service, passed, failed, errored, skipped, duration_seconds,
                started_at, received_at, commit_sha, format FROM test_runs",
    )?;
    let rows = st.query_map([], |r| {
        let format: String = r.get(10)?;
        Ok(TestRun {
            stack: r.get(0)?,
            service: r.get(1)?,
            passed: count_col(r, 2)?,
            failed: count_col(r, 3)?,
            errored: count_col(r, 4)?,
            skipped: count_col(r, 5)?,
            duration_seconds: r.get(6)?,
            started_at: r.get(7)?,
            received_at: r.get(8)?,
            commit: r.get(9)?,
            format: if format == "junit" {
                TestRunFormat::Junit
            } else {
                TestRunFormat::Json
            },
        })
    })?;
    for run in rows {
        let run = run?;
        pulse
            .test_runs
            .insert((run.stack.clone(), run.service.clone()), Arc::new(run));
    }
    let mut st = conn.prepare(
        "SELECT service, caught, missed, timeout, unviable, received_at, commit_sha FROM mutants",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Mutants {
            service: r.get(0)?,
            caught: count_col(r, 1)?,
            missed: count_col(r, 2)?,
            timeout: count_col(r, 3)?,
            unviable: count_col(r, 4)?,
            received_at: r.get(5)?,
            commit: r.get(6)?,
        })
    })?;
    for m in rows {
        let m = m?;
        pulse.mutants.insert(m.service.clone(), Arc::new(m));
    }
    let mut st = conn.prepare(DOCTOR_SELECT)?;
    let rows = st.query_map([], host_health_row)?;
    for h in rows {
        let h = h?;
        pulse.host_health.insert(h.host.clone(), Arc::new(h));
    }
    Ok(pulse)
}
