//! Events in the store: one row each, carrying its subject's count of
//! changes so far. Pruning keeps each subject's newest event, so the count
//! behind the `_changes_total` counters survives restarts and pruning.
//!
//! Events are appended in time order, and the only index is on time: an
//! event costs one appended row and one appended index entry, whatever the
//! store holds. Queries by subject filter a time range (the terminal always
//! gives one); what only a whole scan can answer (each subject's newest
//! event) is read at start-up, off the serving path, and by the hourly prune.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Event, Key, Kind, Recorded, WINDOW_SECONDS};

/// Tables and indexes, created with the rest of the schema.
pub const CREATE: &str = "
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, stack TEXT NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, from_value TEXT, to_value TEXT, detail TEXT,
    changes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS events_at ON events (at);
DROP INDEX IF EXISTS events_subject;
";

const COLUMNS: &str = "id, at, stack, kind, subject, from_value, to_value, detail, changes";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Event>> {
    let kind: String = r.get(3)?;
    let Some(kind) = Kind::parse(&kind) else {
        // A kind a newer build wrote: skipped, not an error.
        return Ok(None);
    };
    Ok(Some(Event {
        id: r.get(0)?,
        at: r.get(1)?,
        stack: r.get(2)?,
        kind,
        subject: r.get(4)?,
        from: r.get(5)?,
        to: r.get(6)?,
        detail: r.get(7)?,
        changes: r.get::<_, i64>(8)?.max(0) as u64,
    }))
}

/// Inserts `events` (inside the caller's transaction), giving each its id.
pub fn insert(conn: &Connection, events: &mut [Event]) -> rusqlite::Result<()> {
    let mut ins = conn.prepare_cached(
        "INSERT INTO events (at, stack, kind, subject, from_value, to_value, detail, changes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for e in events.iter_mut() {
        ins.execute(params![
            e.at,
            e.stack,
            e.kind.as_str(),
            e.subject,
            e.from,
            e.to,
            e.detail,
            i64::try_from(e.changes).unwrap_or(i64::MAX)
        ])?;
        e.id = conn.last_insert_rowid();
    }
    Ok(())
}

/// What the historian starts from.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The newest event of each subject: its key, time and value.
    pub latest: Vec<(Key, f64, Option<String>)>,
    pub changes: BTreeMap<Key, u64>,
    /// Each service's health transitions over the availability window (and
    /// the one in force at its start), by (stack, component).
    pub health: Vec<((String, String), super::Timeline)>,
    /// The newest events of each environment, newest first.
    pub recent: Vec<Event>,
}

impl Loaded {
    /// The values to compare the first observation against.
    pub fn recorded(&self) -> Recorded {
        self.latest
            .iter()
            .map(|(key, at, value)| {
                let v = match key.0 {
                    Kind::Boot => Some(at.to_string()),
                    _ => value.clone(),
                };
                (key.clone(), v)
            })
            .collect()
    }
}

/// Reads what the historian needs at start-up, as of `now`.
pub fn load(conn: &Connection, now: f64) -> rusqlite::Result<Loaded> {
    let mut out = Loaded::default();
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM events WHERE id IN (SELECT MAX(id) FROM events GROUP BY kind, stack, subject)"
    ))?;
    for e in st.query_map([], row)? {
        if let Some(e) = e? {
            let key = (e.kind, e.stack, e.subject);
            if e.changes > 0 {
                out.changes.insert(key.clone(), e.changes);
            }
            out.latest.push((key, e.at, e.to));
        }
    }
    // Per service: its transitions in the window, read row by row in time
    // order into its timeline; the state in force at the window's start is
    // the first one's `from`, or, without one in the window, its newest.
    let start = now - WINDOW_SECONDS;
    let mut st = conn.prepare(
        "SELECT stack, subject, at, from_value, to_value FROM events
         WHERE at >= ?1 AND +kind = 'health' ORDER BY at, id",
    )?;
    let mut rows = st.query([start])?;
    let mut index: std::collections::HashMap<String, std::collections::HashMap<String, usize>> =
        Default::default();
    while let Some(r) = rows.next()? {
        let stack = r.get_ref(0)?.as_str().unwrap_or_default();
        let subject = r.get_ref(1)?.as_str().unwrap_or_default();
        let at: f64 = r.get(2)?;
        let i = match index.get(stack).and_then(|m| m.get(subject)) {
            Some(i) => *i,
            None => {
                let mut t = super::Timeline::default();
                let from: Option<String> = r.get(3)?;
                if from.is_some() {
                    t.push(start, from.as_deref());
                }
                out.health
                    .push(((stack.to_string(), subject.to_string()), t));
                let i = out.health.len() - 1;
                index
                    .entry(stack.to_string())
                    .or_default()
                    .insert(subject.to_string(), i);
                i
            }
        };
        let to: Option<String> = r.get(4)?;
        out.health[i].1.push(at, to.as_deref());
    }
    for ((kind, stack, subject), at, value) in &out.latest {
        let seen = index
            .get(stack.as_str())
            .is_some_and(|m| m.contains_key(subject.as_str()));
        if *kind == Kind::Health && !seen {
            let mut t = super::Timeline::default();
            t.push(*at, value.as_deref());
            out.health.push(((stack.clone(), subject.clone()), t));
        }
    }
    // The newest events of each environment: read newest first until every
    // environment with events has its share (or a bound is reached, so an
    // environment with no recent events costs no full scan).
    let stacks: std::collections::HashSet<&str> = out
        .latest
        .iter()
        .map(|((_, s, _), _, _)| s.as_str())
        .collect();
    let mut have: std::collections::HashMap<String, usize> = Default::default();
    let mut full = 0;
    let bound = (stacks.len() * super::RECENT_PER_STACK * 20).max(10_000);
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM events ORDER BY id DESC LIMIT ?1"
    ))?;
    let mut rows = st.query([bound as i64])?;
    while let Some(r) = rows.next()? {
        let Some(e) = row(r)? else { continue };
        let n = have.entry(e.stack.clone()).or_insert(0);
        if *n >= super::RECENT_PER_STACK {
            continue;
        }
        *n += 1;
        if *n == super::RECENT_PER_STACK {
            full += 1;
        }
        out.recent.push(e);
        if full >= stacks.len() {
            break;
        }
    }
    Ok(out)
}

/// A page of events, newest first, and the cursor of the next: the (time,
/// id) of its last event, or `None` on the last page.
pub type Page = (Vec<Event>, Option<(f64, i64)>);

/// Which events a query asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub stack: Option<String>,
    pub subject: Option<String>,
    pub kind: Option<Kind>,
    /// At or after, Unix seconds.
    pub since: Option<f64>,
    /// Before, Unix seconds.
    pub until: Option<f64>,
    /// Only events before this (time, id): the cursor of the previous page.
    pub before: Option<(f64, i64)>,
    pub limit: usize,
}

/// Events matching `q`, newest first (by time, then by id), and the cursor
/// of the next page.
pub fn query(conn: &Connection, q: &Query) -> rusqlite::Result<Page> {
    let mut sql = format!("SELECT {COLUMNS} FROM events WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut arg = |sql: &mut String, clause: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if let Some(s) = &q.stack {
        arg(&mut sql, "stack =", s.clone().into());
    }
    if let Some(s) = &q.subject {
        arg(&mut sql, "subject =", s.clone().into());
    }
    if let Some(k) = q.kind {
        // Without a stack or subject, the time index serves the order; `+`
        // keeps SQLite from choosing the subject index for the kind alone
        // and sorting everything of that kind.
        let clause = if q.stack.is_none() && q.subject.is_none() {
            "+kind ="
        } else {
            "kind ="
        };
        arg(&mut sql, clause, k.as_str().to_string().into());
    }
    if let Some(t) = q.since {
        arg(&mut sql, "at >=", t.into());
    }
    if let Some(t) = q.until {
        arg(&mut sql, "at <", t.into());
    }
    if let Some((at, id)) = q.before {
        args.push(at.into());
        args.push(id.into());
        sql.push_str(&format!(
            " AND (at, id) < (?{}, ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    sql.push_str(&format!(" ORDER BY at DESC, id DESC LIMIT {}", q.limit + 1));
    let mut st = conn.prepare_cached(&sql)?;
    let mut events = Vec::with_capacity(q.limit + 1);
    for e in st.query_map(rusqlite::params_from_iter(args), row)? {
        if let Some(e) = e? {
            events.push(e);
        }
    }
    let next = if events.len() > q.limit {
        events.truncate(q.limit);
        events.last().map(|e| (e.at, e.id))
    } else {
        None
    };
    Ok((events, next))
}

/// Deletes events older than `cutoff`, but the newest of each subject (what
/// its current value and `since` rest on). Returns how many went.
pub fn prune(conn: &Connection, cutoff: f64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM events WHERE at < ?1 AND id NOT IN
           (SELECT MAX(id) FROM events GROUP BY kind, stack, subject)",
        [cutoff],
    )
}

/// The number of events stored.
pub fn count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .optional()
        .map(|n| n.unwrap_or(0))
}
