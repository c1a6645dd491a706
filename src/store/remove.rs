//! Removing stored pushes: one name's rows now (`DELETE /api/v1/…/{name}`),
//! and the rows of names the inventory no longer lists once they are older
//! than `ingest.retention`. Each removal is one transaction through the
//! writer, like a push.

use std::collections::HashSet;

use rusqlite::params;
use tokio::sync::oneshot;

use super::writer::Writer;
use super::{Msg, Store, WriteError};

/// A kind of stored push, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Heartbeats,
    TestRuns,
    Mutants,
    HostHealth,
}

impl Kind {
    fn table_and_key(self) -> (&'static str, &'static str) {
        match self {
            Kind::Heartbeats => ("heartbeats", "box"),
            Kind::TestRuns => ("test_runs", "service"),
            Kind::Mutants => ("mutants", "service"),
            Kind::HostHealth => ("host_health", "host"),
        }
    }
}

/// A stored row's identity: its kind, its stack (test runs), its name.
pub(super) type RowKey = (Kind, Option<String>, String);

/// The names the inventory lists, for pruning.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    pub stacks: HashSet<String>,
    pub boxes: HashSet<String>,
    pub hosts: HashSet<String>,
    pub services: HashSet<String>,
}

/// What to remove.
#[derive(Debug)]
pub enum Removal {
    /// Every row of one name of one kind (for test runs: on every stack).
    Name(Kind, String),
    /// The rows of names `Listed` does not hold (or, for a test run, whose
    /// stack it does not hold) once they have been unlisted for `retention`
    /// seconds, counted from the first removal pass that found them so
    /// (from start-up after a restart: a restart only ever keeps them
    /// longer).
    Unlisted { listed: Listed, retention: f64 },
}

pub(super) type RemoveReply = oneshot::Sender<Result<usize, WriteError>>;

impl Store {
    /// Removes rows; returns how many, once the removal is on disk.
    pub async fn remove(&self, removal: Removal) -> Result<usize, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .as_ref()
            .ok_or(WriteError::Stopped)?
            .send(Msg::Remove(removal, reply))
            .map_err(|_| WriteError::Stopped)?;
        answer.await.map_err(|_| WriteError::Stopped)?
    }
}

impl Writer {
    /// Applies one removal in its own transaction, and to the pulse.
    pub(super) fn remove(&mut self, removal: &Removal) -> Result<usize, WriteError> {
        let doomed = self.doomed(removal, crate::clock::now_unix());
        if doomed.is_empty() {
            return Ok(0);
        }
        let outcome = (|| -> rusqlite::Result<usize> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            let mut n = 0;
            for (kind, stack, name) in &doomed {
                let (table, key) = kind.table_and_key();
                n += match stack {
                    Some(stack) => self
                        .conn
                        .prepare_cached(&format!(
                            "DELETE FROM {table} WHERE stack = ?1 AND {key} = ?2"
                        ))?
                        .execute(params![stack, name])?,
                    None => self
                        .conn
                        .prepare_cached(&format!("DELETE FROM {table} WHERE {key} = ?1"))?
                        .execute(params![name])?,
                };
            }
            self.conn.execute_batch("COMMIT")?;
            Ok(n)
        })();
        match outcome {
            Ok(n) => {
                for d in &doomed {
                    self.unlisted_since.remove(d);
                    self.forget(d.0, d.1.as_deref(), &d.2);
                }
                Ok(n)
            }
            Err(e) => {
                tracing::error!(error = %e, "store removal failed");
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(WriteError::of(&e))
            }
        }
    }

    /// The rows a removal takes: (kind, stack for a test run, name).
    fn doomed(&mut self, removal: &Removal, now: f64) -> Vec<(Kind, Option<String>, String)> {
        let p = &self.pulse;
        match removal {
            Removal::Name(kind, name) => {
                let held = match kind {
                    Kind::Heartbeats => p.heartbeats.contains_key(name.as_str()),
                    Kind::TestRuns => p.test_runs.values().any(|r| &r.service == name),
                    Kind::Mutants => p.mutants.contains_key(name),
                    Kind::HostHealth => p.host_health.contains_key(name),
                };
                if held {
                    vec![(*kind, None, name.clone())]
                } else {
                    Vec::new()
                }
            }
            Removal::Unlisted { listed, retention } => {
                let mut unlisted = Vec::new();
                for b in p.heartbeats.keys() {
                    if !listed.boxes.contains(&**b) {
                        unlisted.push((Kind::Heartbeats, None, b.to_string()));
                    }
                }
                for r in p.test_runs.values() {
                    let gone = !listed.services.contains(&r.service)
                        || (!r.stack.is_empty() && !listed.stacks.contains(&r.stack));
                    if gone {
                        unlisted.push((Kind::TestRuns, Some(r.stack.clone()), r.service.clone()));
                    }
                }
                for m in p.mutants.keys() {
                    if !listed.services.contains(m) {
                        unlisted.push((Kind::Mutants, None, m.clone()));
                    }
                }
                for h in p.host_health.keys() {
                    if !listed.hosts.contains(h) {
                        unlisted.push((Kind::HostHealth, None, h.clone()));
                    }
                }
                // Names listed again start over; the rest keep their first sighting.
                self.unlisted_since.retain(|k, _| unlisted.contains(k));
                let mut out = Vec::new();
                for k in unlisted {
                    let since = *self.unlisted_since.entry(k.clone()).or_insert(now);
                    if now - since >= *retention {
                        out.push(k);
                    }
                }
                out
            }
        }
    }

    fn forget(&mut self, kind: Kind, stack: Option<&str>, name: &str) {
        let p = &mut self.pulse;
        match kind {
            Kind::Heartbeats => {
                p.heartbeats.remove(name);
            }
            Kind::TestRuns => p
                .test_runs
                .retain(|(s, svc), _| !(svc == name && stack.is_none_or(|st| st == s))),
            Kind::Mutants => {
                p.mutants.remove(name);
            }
            Kind::HostHealth => {
                p.host_health.remove(name);
            }
        }
        // A name outside the inventory no longer holds a place under the cap
        // once none of its rows is left.
        let still_held = p.heartbeats.contains_key(name)
            || p.test_runs.values().any(|r| r.service == name)
            || p.mutants.contains_key(name)
            || p.host_health.contains_key(name);
        if !still_held {
            self.unknown.remove(name);
        }
    }
}
