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
//! every view. Only when the pulse is large (more than
//! `SMALL_PULSE_ENTRIES`) and publishing would take more than a tenth of the
//! writer's time (thousands of names under a flood of pushes) is it
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
mod remove;
mod sources;
mod writer;
use open::{classify, load, open_writer};
pub use remove::{Kind as StoredKind, Listed, Removal};
pub use sources::{FactsWrite, SourceRecord};
use writer::Writer;

use crate::history::Event;

/// The database file inside the state directory.
pub const DB_FILE: &str = "fleetpulse.db";
/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;
/// Most messages applied in one transaction.
const MAX_BATCH: usize = 4096;
/// Longest a committed change waits to be published.
const MAX_PUBLISH_LAG: Duration = Duration::from_millis(200);
/// Up to this many entries (heartbeats, test runs, mutation results, doctor
/// snapshots and ingest counters) the pulse is published after every commit,
/// before its answers; above, publishing is throttled.
const SMALL_PULSE_ENTRIES: usize = 1024;

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
    #[error("the state disk is full: the push was not kept; retry later")]
    DiskFull,
    #[error("not in the inventory, and the cap of {0} names outside it is reached")]
    UnknownNamesCapReached(usize),
    #[error("the store is shutting down")]
    Stopped,
}

impl WriteError {
    /// The error of a failed write: `DiskFull` when the disk (or the
    /// database's size limit) is full, else `Commit`.
    pub fn of(e: &rusqlite::Error) -> WriteError {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => WriteError::DiskFull,
            _ => WriteError::Commit(e.to_string()),
        }
    }
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
    /// Rows to remove.
    Remove(Removal, remove::RemoveReply),
    /// History events to commit; answered with them, ids given.
    Events(Vec<Event>, EventsReply),
    /// History events older than this to prune; answered with how many went.
    PruneEvents(f64, oneshot::Sender<Result<usize, WriteError>>),
}

type EventsReply = oneshot::Sender<Result<Vec<Event>, WriteError>>;

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
    /// Dropped (after the writer's last batch) when the store closes.
    closing: tokio::sync::watch::Sender<()>,
}

/// Completes once the store it came from has closed: the writer's last
/// batch committed and the database file let go.
pub struct Closed(tokio::sync::watch::Receiver<()>);

impl Closed {
    pub async fn wait(mut self) {
        while self.0.changed().await.is_ok() {}
    }
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
            OpenFlags::SQLITE_OPEN_READ_ONLY.union(OpenFlags::SQLITE_OPEN_NO_MUTEX),
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
            unlisted_since: std::collections::HashMap::new(),
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
            closing: tokio::sync::watch::Sender::new(()),
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

    /// Commits history events; returns them with their ids once on disk.
    pub async fn record_events(&self, events: Vec<Event>) -> Result<Vec<Event>, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(WriteError::Stopped)?
            .send(Msg::Events(events, reply))
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// Deletes history events older than `cutoff` (but each subject's newest).
    pub async fn prune_events(&self, cutoff: f64) -> Result<usize, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(WriteError::Stopped)?
            .send(Msg::PruneEvents(cutoff, reply))
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }

    /// What the historian starts from, as of `now`. Blocking.
    pub fn history(&self, now: f64) -> Result<crate::history::store::Loaded, String> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        crate::history::store::load(&conn, now).map_err(|e| e.to_string())
    }

    /// History events matching `q`, newest first, with the next page's
    /// cursor. Blocking.
    pub fn events(
        &self,
        q: &crate::history::store::Query,
    ) -> Result<crate::history::store::Page, String> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        crate::history::store::query(&conn, q).map_err(|e| e.to_string())
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

impl Store {
    /// What completes when this store has closed (its last handle dropped).
    pub fn closed(&self) -> Closed {
        Closed(self.closing.subscribe())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // The read-only connection closes first: the last connection to
        // close folds the write-ahead log into the database and removes it,
        // which a read-only one cannot do.
        let mut reader = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        if let Ok(nothing) = Connection::open_in_memory() {
            drop(std::mem::replace(&mut *reader, nothing));
        }
        drop(reader);
        // Closing the channel ends the writer after its last batch; the
        // `closing` sender drops after this, when the file is let go.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{store::Query, Kind};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn open(dir: &Path) -> Store {
        Store::open(dir, 0, &|_, _| true, Box::new(|_| {})).unwrap()
    }

    /// A heartbeat of a box in the inventory.
    fn heartbeat(name: &str) -> WriteRequest {
        WriteRequest {
            write: Write::Heartbeat(HeartbeatPush {
                box_name: name.to_string(),
                stack: "prod".into(),
                received_at: 1.0,
                commit: None,
                version: None,
                booted_at: None,
            }),
            known: true,
            stamped: false,
        }
    }

    /// A store that counts its publications.
    fn open_counting(dir: &Path) -> (Store, Arc<AtomicUsize>) {
        let published = Arc::new(AtomicUsize::new(0));
        let counter = published.clone();
        let store = Store::open(
            dir,
            0,
            &|_, _| true,
            Box::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        )
        .unwrap();
        (store, published)
    }

    #[test]
    fn its_debug_form_names_the_database_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        assert_eq!(
            format!("{store:?}"),
            format!("Store {{ path: {:?} }}", dir.path().join(DB_FILE))
        );
    }

    /// Closing the store (its last handle dropped) commits, folds the
    /// write-ahead log into the database and removes it, then says so.
    #[tokio::test]
    async fn a_closed_store_is_whole_in_its_one_file_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        store.write(heartbeat("box-1")).await.unwrap();
        let wal = dir.path().join(format!("{DB_FILE}-wal"));
        assert!(wal.exists());
        let closed = store.closed();
        let waiting = tokio::spawn(closed.wait());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "finished while the store was open");
        drop(store);
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("closed within 10 s")
            .unwrap();
        assert!(!wal.exists(), "{} after closing", wal.display());
        let n: i64 = Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .query_row("SELECT count(*) FROM heartbeats", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    /// Group commit: pushes that wait while a commit is under way go into
    /// the next transaction together, which publishes the pulse once.
    #[tokio::test]
    async fn pushes_waiting_together_are_committed_and_published_together() {
        let dir = tempfile::tempdir().unwrap();
        let (store, published) = open_counting(dir.path());
        let at_open = published.load(Ordering::SeqCst);
        const PUSHES: usize = 200;
        let writes = (0..PUSHES).map(|i| store.write(heartbeat(&format!("box-{i}"))));
        // Every write is queued before the first is answered.
        for w in futures::future::join_all(writes).await {
            w.unwrap();
        }
        drop(store);
        let publishes = published.load(Ordering::SeqCst) - at_open;
        assert!(
            (1..=PUSHES / 10).contains(&publishes),
            "{PUSHES} pushes queued together were published {publishes} times"
        );
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let kept: i64 = conn
            .query_row("SELECT COUNT(*) FROM heartbeats", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, PUSHES as i64);
    }

    /// The pulse is published before a push is acknowledged, so a view read
    /// right after the answer already shows the push.
    #[tokio::test]
    async fn an_acknowledged_push_is_already_published() {
        let dir = tempfile::tempdir().unwrap();
        let latest: Arc<Mutex<Arc<Pulse>>> = Arc::default();
        let slot = latest.clone();
        let store = Store::open(
            dir.path(),
            0,
            &|_, _| true,
            Box::new(move |p| *slot.lock().unwrap() = p),
        )
        .unwrap();
        for i in 0..100 {
            let name = format!("box-{i}");
            store.write(heartbeat(&name)).await.unwrap();
            let shown = latest
                .lock()
                .unwrap()
                .heartbeats
                .contains_key(name.as_str());
            assert!(shown, "{name} acknowledged but not yet published");
        }
    }

    /// Only pushes, counts and removals change the pulse: a batch of a
    /// source's state and history events is committed without publishing it.
    #[tokio::test]
    async fn sources_state_and_history_alone_publish_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (store, published) = open_counting(dir.path());
        let before = published.load(Ordering::SeqCst);
        store.keep_source(
            SourceRecord {
                source: "healthz".into(),
                up: true,
                last_success: Some(5.0),
                last_error: None,
                ran_at: 5.0,
                duration_seconds: 0.5,
                facts: None,
            },
            FactsWrite::Set("{}".into()),
        );
        let event = Event {
            id: 0,
            at: 5.0,
            stack: "prod".into(),
            kind: Kind::Health,
            subject: "broker".into(),
            from: None,
            to: Some("green".into()),
            detail: None,
            changes: 0,
        };
        // Answered after the source's state, which was sent first.
        store.record_events(vec![event]).await.unwrap();
        assert_eq!(published.load(Ordering::SeqCst), before);
        drop(store);
        let store = open(dir.path());
        let kept: Vec<&str> = store
            .restored_sources()
            .iter()
            .map(|r| r.source.as_str())
            .collect();
        assert_eq!(kept, ["healthz"]);
    }

    #[tokio::test]
    async fn recorded_events_come_back_with_their_ids_and_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let event = |at: f64, to: &str| Event {
            id: 0,
            at,
            stack: "prod".into(),
            kind: Kind::Health,
            subject: "broker".into(),
            from: None,
            to: Some(to.into()),
            detail: None,
            changes: 0,
        };
        let committed = store
            .record_events(vec![event(10.0, "green"), event(20.0, "red")])
            .await
            .unwrap();
        let ids: Vec<i64> = committed.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 2);
        assert!(ids[0] > 0 && ids[1] > ids[0], "{ids:?}");
        drop(store);
        let store = open(dir.path());
        let (kept, _) = store
            .events(&Query {
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        // Newest first.
        let read: Vec<(i64, Option<&str>)> = kept.iter().map(|e| (e.id, e.to.as_deref())).collect();
        assert_eq!(read, [(ids[1], Some("red")), (ids[0], Some("green"))]);

        // Pruning before 15 s drops the first; the subject's newest stays
        // even when it is older than the cut.
        assert_eq!(store.prune_events(15.0).await.unwrap(), 1);
        assert_eq!(store.prune_events(100.0).await.unwrap(), 0);
        let (kept, _) = store
            .events(&Query {
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(kept.iter().map(|e| e.id).collect::<Vec<_>>(), [ids[1]]);
    }
}
