//! The store: every accepted push, committed to SQLite before it is
//! acknowledged, and the pulse read back from it.
//!
//! One writer thread owns the write connection and the master copy of the
//! pulse. Pushes queue up on a channel; the writer takes everything that is
//! waiting, applies it in one transaction and commits it with one fsync
//! (group commit), then answers each caller on its own oneshot. Under load a
//! batch grows to whatever arrived during the previous commit, so the fsync
//! cost is shared and throughput follows concurrency.
//!
//! After a commit the writer publishes the pulse (a cheap clone: entries are
//! `Arc`s) before it answers, so an acknowledged push is already visible to
//! every view. Only when publishing would take more than a tenth of the
//! writer's time (tens of thousands of entries under a flood of pushes) is it
//! deferred, by at most `MAX_PUBLISH_LAG`.
//!
//! Durability: WAL journal, `synchronous=FULL` — a commit is on disk before
//! the caller hears of it, so neither a SIGKILL nor a power cut loses an
//! acknowledged push.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::oneshot;

use crate::pulse::{
    Heartbeat, HostHealth, IngestCounters, Mutants, Pulse, TestRun, RECENT_BOOTS_CAP,
    RESTART_WINDOW_SECONDS,
};

mod open;
mod sources;
use open::{classify, load, open_writer};
pub use sources::{FactsWrite, SourceRecord};

/// The database file inside the state directory.
pub const DB_FILE: &str = "fleetpulse.db";
/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;
/// Most messages applied in one transaction.
const MAX_BATCH: usize = 4096;
/// Longest a committed change waits to be published.
const MAX_PUBLISH_LAG: Duration = Duration::from_millis(200);

/// Counter label for a name that is not a valid name.
pub const INVALID_NAME_LABEL: &str = "_invalid";
/// Counter label for a valid name that is neither in the inventory nor
/// accepted under `ingest.unknown_names_cap`.
pub const UNKNOWN_NAME_LABEL: &str = "_unknown";

/// Why the store could not be opened. Each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {dir}: cannot create it: {source}")]
    CreateDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("state directory {dir} is not a directory")]
    NotADirectory { dir: String },
    #[error("state directory {dir} is not writable ({message}); give fleetpulse write access to it or set another state_dir")]
    ReadOnly { dir: String, message: String },
    #[error("{path} is corrupt or not a fleetpulse database ({message}); move it aside to start with an empty store")]
    Corrupt { path: String, message: String },
    #[error("{path}: the disk is full ({message}); free space on it or set another state_dir")]
    DiskFull { path: String, message: String },
    #[error("{path} was written by a newer fleetpulse (schema {found}, this build knows {SCHEMA_VERSION}); run the newer version")]
    NewerSchema { path: String, found: i64 },
    #[error("{path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("cannot start the store's writer thread: {0}")]
    Thread(std::io::Error),
}

/// Why a write was not acknowledged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WriteError {
    #[error("the push could not be committed ({0}); retry later")]
    Commit(String),
    #[error("not in the inventory, and the cap of {0} names outside it is reached")]
    UnknownNamesCapReached(usize),
    #[error("the store is shutting down")]
    Stopped,
}

/// What a name is pushed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Box,
    Service,
    Host,
}

/// A box's boot, as pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatPush {
    pub box_name: String,
    pub stack: String,
    pub received_at: f64,
    pub commit: Option<String>,
    pub version: Option<String>,
    pub booted_at: Option<f64>,
}

/// One accepted push.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Heartbeat(HeartbeatPush),
    TestRun(TestRun),
    Mutants(Mutants),
    /// The summary and the whole document, stored together.
    HostHealth {
        summary: HostHealth,
        document: String,
    },
}

impl Write {
    fn name(&self) -> &str {
        match self {
            Write::Heartbeat(h) => &h.box_name,
            Write::TestRun(r) => &r.service,
            Write::Mutants(m) => &m.service,
            Write::HostHealth { summary, .. } => &summary.host,
        }
    }
}

/// A write and the bookkeeping around it.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    pub write: Write,
    /// Whether the name is in the inventory (else it counts against the cap).
    pub known: bool,
    /// Whether the request carried `X-Fleet-Commit`.
    pub stamped: bool,
}

/// What the store holds after a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    Heartbeat(Arc<Heartbeat>),
    /// The receipt now held, and whether it is the run just pushed (an older
    /// run arriving late is not kept).
    TestRun {
        receipt: Arc<TestRun>,
        newest: bool,
    },
    Mutants(Arc<Mutants>),
    HostHealth(Arc<HostHealth>),
}

type Reply = oneshot::Sender<Result<Written, WriteError>>;

enum Msg {
    Write(WriteRequest, Reply),
    /// A request answered without a write (refused); only counted.
    Count {
        label: String,
        code: u16,
        stamped: bool,
    },
    /// A pulled source's state after a run.
    Source(SourceRecord, FactsWrite),
}

/// Where the writer publishes the pulse.
pub type Publish = Box<dyn Fn(Arc<Pulse>) + Send>;

/// The store. Writes go through the writer thread; reads of whole doctor
/// documents use a read-only connection of their own.
pub struct Store {
    tx: Option<mpsc::Sender<Msg>>,
    reader: Mutex<Connection>,
    writer: Option<JoinHandle<()>>,
    path: PathBuf,
    /// The sources' state as kept when the store was opened.
    restored: Vec<SourceRecord>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `state_dir`, loads the pulse,
    /// publishes it, and starts the writer. `is_known` says which stored
    /// names are in the inventory, so the rest count against `unknown_names_cap`.
    pub fn open(
        state_dir: &Path,
        unknown_names_cap: usize,
        is_known: &dyn Fn(NameKind, &str) -> bool,
        publish: Publish,
    ) -> Result<Store, StoreError> {
        let dir = state_dir.display().to_string();
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            dir: dir.clone(),
            source,
        })?;
        if !state_dir.is_dir() {
            return Err(StoreError::NotADirectory { dir });
        }
        let path = state_dir.join(DB_FILE);
        let conn = open_writer(&path, &dir)?;
        let pulse = load(&conn).map_err(|e| classify(e, &path, &dir))?;
        let restored = sources::load(&conn).map_err(|e| classify(e, &path, &dir))?;
        let mut unknown = HashSet::new();
        for name in pulse.heartbeats.keys() {
            if !is_known(NameKind::Box, name) {
                unknown.insert(name.to_string());
            }
        }
        for name in pulse
            .mutants
            .keys()
            .chain(pulse.test_runs.keys().map(|(_, s)| s))
        {
            if !is_known(NameKind::Service, name) {
                unknown.insert(name.clone());
            }
        }
        for name in pulse.host_health.keys() {
            if !is_known(NameKind::Host, name) {
                unknown.insert(name.clone());
            }
        }
        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(e, &path, &dir))?;
        reader
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| classify(e, &path, &dir))?;

        publish(Arc::new(pulse.clone()));
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            conn,
            pulse,
            unknown,
            cap: unknown_names_cap,
            publish,
            dirty: false,
            last_publish: Instant::now(),
            publish_cost: Duration::ZERO,
        };
        let handle = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(StoreError::Thread)?;
        Ok(Store {
            tx: Some(tx),
            reader: Mutex::new(reader),
            writer: Some(handle),
            path,
            restored,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits a write; returns once it is on disk.
    pub async fn write(&self, request: WriteRequest) -> Result<Written, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(WriteError::Stopped)?
            .send(Msg::Write(request, reply))
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// The pulled sources' state as it was kept when the store was opened
    /// (the end of the exporter's previous run).
    pub fn restored_sources(&self) -> &[SourceRecord] {
        &self.restored
    }

    /// Keeps a pulled source's state after a run. Committed with the next
    /// batch; a failure is logged, never fails the source.
    pub fn keep_source(&self, record: SourceRecord, facts: FactsWrite) {
        if let Some(tx) = &self.tx {
            // A stopped writer keeps nothing more.
            let _ = tx.send(Msg::Source(record, facts));
        }
    }

    /// Counts a request that was answered without a write.
    pub fn count(&self, label: String, code: u16, stamped: bool) {
        if let Some(tx) = &self.tx {
            // A stopped writer has nothing left to count into.
            let _ = tx.send(Msg::Count {
                label,
                code,
                stamped,
            });
        }
    }

    /// A host's newest doctor document, as pushed, with its summary.
    /// Blocking: call it off the async runtime.
    pub fn host_health_document(&self, host: &str) -> Result<Option<StoredDoctor>, String> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare_cached(&format!("{DOCTOR_SELECT} WHERE host = ?1"))
            .map_err(|e| e.to_string())?;
        st.query_row([host], stored_doctor)
            .optional()
            .map_err(|e| e.to_string())
    }

    /// Every host's newest doctor document, by host. Blocking.
    pub fn host_health_documents(&self) -> Result<Vec<StoredDoctor>, String> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = conn
            .prepare_cached(&format!("{DOCTOR_SELECT} ORDER BY host"))
            .map_err(|e| e.to_string())?;
        let rows = st.query_map([], stored_doctor).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }
}

/// A doctor snapshot as stored: its summary and the whole document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoctor {
    pub summary: HostHealth,
    /// The JSON document exactly as pushed.
    pub document: String,
}

const DOCTOR_SELECT: &str =
    "SELECT host, stack, ok, warn, fail, received_at, commit_sha, document FROM host_health";

fn host_health_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HostHealth> {
    Ok(HostHealth {
        host: r.get(0)?,
        stack: r.get(1)?,
        ok: count_col(r, 2)?,
        warn: count_col(r, 3)?,
        fail: count_col(r, 4)?,
        received_at: r.get(5)?,
        commit: r.get(6)?,
    })
}

fn stored_doctor(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredDoctor> {
    Ok(StoredDoctor {
        summary: host_health_row(r)?,
        document: r.get(7)?,
    })
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the channel ends the writer after its last batch.
        self.tx.take();
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

fn count_col(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(i)?.max(0) as u64)
}

/// SQLite integers are signed; counts beyond i64 saturate.
fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

struct Writer {
    conn: Connection,
    pulse: Pulse,
    /// Names outside the inventory that the store holds.
    unknown: HashSet<String>,
    cap: usize,
    publish: Publish,
    dirty: bool,
    last_publish: Instant,
    /// How long the last publication took.
    publish_cost: Duration,
}

impl Writer {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let first = if self.dirty {
                match rx.recv_timeout(self.publish_wait()) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.publish();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let drained = batch.len() < MAX_BATCH;
            let replies = self.apply(batch);
            self.dirty = true;
            if self.publish_due(drained) {
                self.publish();
            }
            for (reply, result) in replies {
                // A caller that went away no longer needs its answer; the
                // write is committed regardless.
                let _ = reply.send(result);
            }
        }
        if self.dirty {
            self.publish();
        }
    }

    /// Cost-bounded publishing: at most a tenth of the writer's time.
    fn throttle(&self) -> Duration {
        (self.publish_cost * 10).min(MAX_PUBLISH_LAG)
    }

    fn publish_due(&self, drained: bool) -> bool {
        let since = self.last_publish.elapsed();
        since >= MAX_PUBLISH_LAG || (drained && since >= self.throttle())
    }

    fn publish_wait(&self) -> Duration {
        self.throttle().saturating_sub(self.last_publish.elapsed())
    }

    fn publish(&mut self) {
        let start = Instant::now();
        (self.publish)(Arc::new(self.pulse.clone()));
        self.publish_cost = start.elapsed();
        self.last_publish = Instant::now();
        self.dirty = false;
    }

    /// Applies a batch in one transaction; returns the answers to send.
    fn apply(&mut self, batch: Vec<Msg>) -> Vec<(Reply, Result<Written, WriteError>)> {
        let mut answers = Vec::new();
        let mut writes = Vec::new();
        let mut kept = Vec::new();
        for m in batch {
            match m {
                Msg::Count {
                    label,
                    code,
                    stamped,
                } => self.count(&label, code, stamped),
                Msg::Write(req, reply) => writes.push((req, reply)),
                Msg::Source(record, facts) => kept.push((record, facts)),
            }
        }
        if !kept.is_empty() {
            self.keep_sources(&kept);
        }
        if writes.is_empty() {
            return answers;
        }
        let mut newly_unknown = Vec::new();
        let mut results = Vec::with_capacity(writes.len());
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for (req, _) in &writes {
                let name = req.write.name();
                if !req.known && !self.unknown.contains(name) {
                    if self.unknown.len() >= self.cap {
                        results.push(Err(WriteError::UnknownNamesCapReached(self.cap)));
                        continue;
                    }
                    self.unknown.insert(name.to_string());
                    newly_unknown.push(name.to_string());
                }
                results.push(Ok(self.apply_one(&req.write)?));
            }
            self.conn.execute_batch("COMMIT")
        })();
        if let Err(e) = outcome {
            tracing::error!(error = %e, pushes = writes.len(), "store commit failed");
            let _ = self.conn.execute_batch("ROLLBACK");
            for name in &newly_unknown {
                self.unknown.remove(name);
            }
            self.reload();
            let err = WriteError::Commit(e.to_string());
            results = vec![Err(err); writes.len()];
        }
        for ((req, reply), result) in writes.into_iter().zip(results) {
            let name = req.write.name();
            let (label, code) = match &result {
                Ok(_) => (name, 200),
                Err(WriteError::UnknownNamesCapReached(_)) => (UNKNOWN_NAME_LABEL, 404),
                Err(_) if req.known || self.unknown.contains(name) => (name, 500),
                Err(_) => (UNKNOWN_NAME_LABEL, 500),
            };
            let label = label.to_string();
            self.count(&label, code, req.stamped);
            answers.push((reply, result));
        }
        answers
    }

    /// Commits sources' state in a transaction of its own, so a failure here
    /// never fails a push.
    fn keep_sources(&mut self, kept: &[(SourceRecord, FactsWrite)]) {
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for (record, facts) in kept {
                sources::write(&self.conn, record, facts)?;
            }
            self.conn.execute_batch("COMMIT")
        })();
        if let Err(e) = outcome {
            let _ = self.conn.execute_batch("ROLLBACK");
            tracing::warn!(error = %e, sources = kept.len(), "cannot keep the sources' state");
        }
    }

    /// After a failed commit the in-memory pulse may be ahead of the disk:
    /// read it back (keeping the in-memory counters).
    fn reload(&mut self) {
        match load(&self.conn) {
            Ok(mut p) => {
                p.ingest = std::mem::take(&mut self.pulse.ingest);
                self.pulse = p;
            }
            Err(e) => tracing::error!(error = %e, "cannot re-read the store after a failed commit"),
        }
    }

    fn count(&mut self, label: &str, code: u16, stamped: bool) {
        let entry = match self.pulse.ingest.get_mut(label) {
            Some(c) => c,
            None => self
                .pulse
                .ingest
                .entry(Arc::from(label))
                .or_insert_with(|| {
                    Arc::new(IngestCounters {
                        host: label.to_string(),
                        ..IngestCounters::default()
                    })
                }),
        };
        let c = Arc::make_mut(entry);
        *c.codes.entry(code).or_insert(0) += 1;
        if !stamped {
            c.unstamped += 1;
        }
    }

    fn apply_one(&mut self, write: &Write) -> rusqlite::Result<Written> {
        match write {
            Write::Heartbeat(push) => {
                let prev = self.pulse.heartbeats.get(push.box_name.as_str());
                let mut recent: Vec<f64> = prev
                    .map(|p| {
                        p.recent
                            .iter()
                            .copied()
                            .filter(|t| push.received_at - t <= RESTART_WINDOW_SECONDS)
                            .collect()
                    })
                    .unwrap_or_default();
                recent.push(push.received_at);
                if recent.len() > RECENT_BOOTS_CAP {
                    recent.drain(..recent.len() - RECENT_BOOTS_CAP);
                }
                let hb = Heartbeat {
                    stack: push.stack.clone(),
                    box_name: push.box_name.clone(),
                    timestamp: push.received_at,
                    count: prev.map_or(0, |p| p.count) + 1,
                    recent,
                    commit: push.commit.clone(),
                    version: push.version.clone(),
                    booted_at: push.booted_at,
                };
                let recent_json = serde_json::to_string(&hb.recent).unwrap_or_else(|_| "[]".into());
                self.conn
                    .prepare_cached(
                        "INSERT INTO heartbeats
                             (box, stack, timestamp, count, recent, commit_sha, version, booted_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT(box) DO UPDATE SET
                             stack = excluded.stack, timestamp = excluded.timestamp,
                             count = excluded.count, recent = excluded.recent,
                             commit_sha = excluded.commit_sha, version = excluded.version,
                             booted_at = excluded.booted_at",
                    )?
                    .execute(params![
                        hb.box_name,
                        hb.stack,
                        hb.timestamp,
                        int(hb.count),
                        recent_json,
                        hb.commit,
                        hb.version,
                        hb.booted_at,
                    ])?;
                let hb = Arc::new(hb);
                match self.pulse.heartbeats.get_mut(push.box_name.as_str()) {
                    Some(slot) => *slot = hb.clone(),
                    None => {
                        self.pulse
                            .heartbeats
                            .insert(Arc::from(push.box_name.as_str()), hb.clone());
                    }
                }
                Ok(Written::Heartbeat(hb))
            }
            Write::TestRun(run) => {
                let key = (run.stack.clone(), run.service.clone());
                if let Some(current) = self.pulse.test_runs.get(&key) {
                    if !run.supersedes(current) {
                        return Ok(Written::TestRun {
                            receipt: current.clone(),
                            newest: false,
                        });
                    }
                }
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO test_runs
                             (stack, service, passed, failed, errored, skipped, duration_seconds,
                              started_at, received_at, commit_sha, format)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?
                    .execute(params![
                        run.stack,
                        run.service,
                        int(run.passed),
                        int(run.failed),
                        int(run.errored),
                        int(run.skipped),
                        run.duration_seconds,
                        run.started_at,
                        run.received_at,
                        run.commit,
                        run.format.as_str(),
                    ])?;
                let receipt = Arc::new(run.clone());
                self.pulse.test_runs.insert(key, receipt.clone());
                Ok(Written::TestRun {
                    receipt,
                    newest: true,
                })
            }
            Write::Mutants(m) => {
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO mutants
                             (service, caught, missed, timeout, unviable, received_at, commit_sha)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        m.service,
                        int(m.caught),
                        int(m.missed),
                        int(m.timeout),
                        int(m.unviable),
                        m.received_at,
                        m.commit,
                    ])?;
                let m = Arc::new(m.clone());
                self.pulse.mutants.insert(m.service.clone(), m.clone());
                Ok(Written::Mutants(m))
            }
            Write::HostHealth { summary, document } => {
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO host_health
                             (host, stack, ok, warn, fail, received_at, commit_sha, document)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        summary.host,
                        summary.stack,
                        int(summary.ok),
                        int(summary.warn),
                        int(summary.fail),
                        summary.received_at,
                        summary.commit,
                        document,
                    ])?;
                let h = Arc::new(summary.clone());
                self.pulse.host_health.insert(h.host.clone(), h.clone());
                Ok(Written::HostHealth(h))
            }
        }
    }
}
