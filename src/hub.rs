//! The hub: the one shared, in-memory state. Sources write their facts into
//! it, the ingest side publishes the pulse into it, and every view reads a
//! snapshot out of it. Reading a snapshot only clones `Arc`s under a short
//! lock: a scrape never waits on network I/O.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::config::Config;
use crate::pulse::Pulse;
use crate::snapshot::{now_unix, Facts, Snapshot, SourceOutput, SourceStatus};
use crate::store::SourceRecord;

/// Shared state between the scheduler, ingest and the views.
#[derive(Debug)]
pub struct Hub {
    config: RwLock<Arc<Config>>,
    /// Whether the last reload of the config succeeded, and when the config
    /// last loaded successfully (start-up counts).
    reload: RwLock<(bool, f64)>,
    state: RwLock<State>,
    /// The pulse as the store published it, and as shown: without what the
    /// inventory no longer lists.
    pulse: RwLock<(Arc<Pulse>, Arc<Pulse>)>,
    /// Request handlers that panicked (each answered 500).
    handler_panics: AtomicU64,
    /// Discovered environments refused (each counted once).
    discovery_refused: AtomicU64,
    /// Bumped after every good run of a source (for whoever acts on facts).
    runs: tokio::sync::watch::Sender<u64>,
    /// Bumped after every change a view could show: a source run, a pulse
    /// published, a config put in force.
    changes: tokio::sync::watch::Sender<u64>,
    /// What changed and when, as the historian last published it.
    history: RwLock<Arc<crate::history::HistoryView>>,
}

#[derive(Debug, Default)]
struct State {
    facts: Facts,
    sources: Vec<SourceStatus>,
}

impl Hub {
    pub fn new(config: Arc<Config>) -> Arc<Hub> {
        Arc::new(Hub {
            config: RwLock::new(config),
            reload: RwLock::new((true, now_unix())),
            state: RwLock::new(State::default()),
            pulse: RwLock::new((Arc::default(), Arc::default())),
            handler_panics: AtomicU64::new(0),
            discovery_refused: AtomicU64::new(0),
            runs: tokio::sync::watch::channel(0).0,
            changes: tokio::sync::watch::channel(0).0,
            history: RwLock::new(Arc::default()),
        })
    }

    /// The config in force.
    pub fn config(&self) -> Arc<Config> {
        read(&self.config).clone()
    }

    /// Puts a reloaded config in force. What it no longer lists leaves the
    /// facts at once; the books and facts of sources that no longer run
    /// (`running` names those that do) are forgotten.
    pub fn replace_config(&self, config: Arc<Config>, running: &[&'static str]) {
        let mut st = write(&self.state);
        st.facts.retire(&config.environments);
        for gone in st
            .sources
            .iter()
            .map(|s| s.source)
            .filter(|s| !running.contains(s))
            .collect::<Vec<_>>()
        {
            st.facts.forget(gone);
        }
        st.sources.retain(|s| running.contains(&s.source));
        let mut pulse = write(&self.pulse);
        pulse.1 = listed(&pulse.0, &config);
        *write(&self.config) = config;
        drop((st, pulse));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Records a reload attempt.
    pub fn record_reload(&self, ok: bool) {
        let mut r = write(&self.reload);
        r.0 = ok;
        if ok {
            r.1 = now_unix();
        }
    }

    /// Whether the last reload succeeded, and when the config last loaded.
    pub fn reload_books(&self) -> (bool, f64) {
        *read(&self.reload)
    }

    /// Registers a source before its first run, so it is reported as not yet up.
    pub fn register_source(&self, source: &'static str, interval: Duration) {
        let mut st = write(&self.state);
        if !st.sources.iter().any(|s| s.source == source) {
            st.sources.push(SourceStatus {
                source,
                up: false,
                last_success: None,
                duration_seconds: 0.0,
                errors_total: 0,
                last_error: None,
                has_run: false,
                interval,
            });
        }
    }

    /// Puts back a source's state as it was kept at the end of the previous
    /// run of the exporter: its books, and its last good facts when they are
    /// still fresh. The source's first run replaces them.
    pub fn restore(&self, source: &'static str, kept: &SourceRecord, facts: Option<SourceOutput>) {
        let mut st = write(&self.state);
        let State {
            facts: all,
            sources,
        } = &mut *st;
        if let Some(status) = sources.iter_mut().find(|s| s.source == source) {
            status.up = kept.up;
            status.last_success = kept.last_success;
            status.last_error = kept.last_error.clone();
            status.duration_seconds = kept.duration_seconds;
            status.has_run = true;
        }
        if let Some(f) = facts {
            all.set(source, f);
        }
    }

    /// Records one run of a source: its output on success, its error otherwise.
    /// A failing source keeps its last good values until `staleness` has
    /// passed since its last success, then they are dropped. Returns the
    /// source's books after the run and what became of its facts.
    pub fn record_run(
        &self,
        source: &'static str,
        result: Result<SourceOutput, String>,
        duration: Duration,
        staleness: Duration,
    ) -> (SourceStatus, FactsChange) {
        let now = now_unix();
        let mut st = write(&self.state);
        let State { facts, sources } = &mut *st;
        let idx = match sources.iter().position(|s| s.source == source) {
            Some(i) => i,
            None => {
                sources.push(SourceStatus {
                    source,
                    up: false,
                    last_success: None,
                    duration_seconds: 0.0,
                    errors_total: 0,
                    last_error: None,
                    has_run: false,
                    interval: Duration::ZERO,
                });
                sources.len() - 1
            }
        };
        let status = &mut sources[idx];
        status.has_run = true;
        status.duration_seconds = duration.as_secs_f64();
        let change = match result {
            Ok(out) => {
                self.runs.send_modify(|n| *n += 1);
                facts.set(source, out.clone());
                status.up = true;
                status.last_success = Some(now);
                status.last_error = None;
                FactsChange::New(out)
            }
            Err(e) => {
                status.up = false;
                status.errors_total += 1;
                status.last_error = Some(e);
                let stale = status
                    .last_success
                    .is_none_or(|t| now - t > staleness.as_secs_f64());
                if stale && facts.of(source).is_some() {
                    facts.forget(source);
                    FactsChange::Dropped
                } else if stale {
                    FactsChange::None
                } else {
                    FactsChange::Kept
                }
            }
        };
        let out = (status.clone(), change);
        drop(st);
        self.changes.send_modify(|n| *n += 1);
        out
    }

    /// Changes after every source run, pulse published and config put in
    /// force.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Puts the historian's newest view in force.
    pub fn publish_history(&self, history: Arc<crate::history::HistoryView>) {
        *write(&self.history) = history;
    }

    /// What changed and when.
    pub fn history(&self) -> Arc<crate::history::HistoryView> {
        read(&self.history).clone()
    }

    /// Counts a discovered environment refused.
    pub fn count_discovery_refused(&self) {
        self.discovery_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes after every good run of a source.
    pub fn good_runs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.runs.subscribe()
    }

    /// The facts of the source whose facts type is `T`.
    pub fn facts_of<T: crate::sources::SourceFacts>(&self) -> Option<T> {
        read(&self.state).facts.get::<T>().cloned()
    }

    /// Counts a request handler that panicked.
    pub fn count_handler_panic(&self) {
        self.handler_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Replaces the pushed half of the snapshot.
    pub fn publish_pulse(&self, pulse: Arc<Pulse>) {
        let config = self.config();
        let shown = listed(&pulse, &config);
        *write(&self.pulse) = (pulse, shown);
        self.changes.send_modify(|n| *n += 1);
    }

    /// The current pulse, as shown: what the store holds for names the
    /// inventory lists (all of it when `ingest.unknown_names_cap` admits
    /// names outside the inventory).
    pub fn pulse(&self) -> Arc<Pulse> {
        read(&self.pulse).1.clone()
    }

    /// Everything, as of now.
    pub fn snapshot(&self) -> Snapshot {
        let read_at = now_unix();
        let (facts, sources) = {
            let st = read(&self.state);
            (st.facts.clone(), st.sources.clone())
        };
        let pulse = self.pulse();
        let config = self.config();
        let drift = crate::drift::detect(&config, &facts, &pulse, read_at);
        Snapshot {
            read_at,
            config,
            reload: self.reload_books(),
            sources,
            facts,
            pulse,
            drift,
            handler_panics: self.handler_panics.load(Ordering::Relaxed),
            discovery_refused: self.discovery_refused.load(Ordering::Relaxed),
            history: self.history(),
        }
    }
}

/// `pulse` without the entries of names `config` no longer lists (a retired
/// box, host or service, a removed environment). Their rows stay in the
/// store; they show again if the name comes back. With names outside the
/// inventory admitted (`unknown_names_cap` > 0), nothing is hidden.
fn listed(pulse: &Arc<Pulse>, config: &Config) -> Arc<Pulse> {
    if config.ingest.unknown_names_cap > 0 {
        return pulse.clone();
    }
    let stacks: HashSet<&str> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let boxes: HashSet<&str> = config
        .environments
        .iter()
        .flat_map(|e| e.boxes.iter().map(|b| b.as_str()))
        .collect();
    let hosts: HashSet<&str> = config
        .environments
        .iter()
        .flat_map(|e| e.hosts.iter().map(|h| h.as_str()))
        .collect();
    let services: HashSet<&str> = config
        .environments
        .iter()
        .flat_map(|e| e.services.iter().map(|s| s.name.as_str()))
        .chain(config.ingest.services.iter().map(|s| s.as_str()))
        .collect();
    let stack_ok = |s: &str| s.is_empty() || stacks.contains(s);
    // The receiver's counts by pushing name; `_unknown` / `_invalid` stay.
    let pusher_ok = |k: &str| {
        k.starts_with('_') || boxes.contains(k) || hosts.contains(k) || services.contains(k)
    };
    let keeps = pulse.heartbeats.keys().all(|b| boxes.contains(&**b))
        && pulse
            .test_runs
            .values()
            .all(|r| services.contains(r.service.as_str()) && stack_ok(&r.stack))
        && pulse.mutants.keys().all(|m| services.contains(m.as_str()))
        && pulse.host_health.keys().all(|h| hosts.contains(h.as_str()))
        && pulse.ingest.keys().all(|k| pusher_ok(k));
    if keeps {
        return pulse.clone();
    }
    let mut p = (**pulse).clone();
    p.heartbeats.retain(|b, _| boxes.contains(&**b));
    p.test_runs
        .retain(|_, r| services.contains(r.service.as_str()) && stack_ok(&r.stack));
    p.mutants.retain(|m, _| services.contains(m.as_str()));
    p.host_health.retain(|h, _| hosts.contains(h.as_str()));
    p.ingest.retain(|k, _| pusher_ok(k));
    Arc::new(p)
}

/// What one run did to a source's facts.
#[derive(Debug)]
pub enum FactsChange {
    /// A good run: these are its facts now.
    New(SourceOutput),
    /// A failed run; the last good facts are still fresh and kept.
    Kept,
    /// A failed run, and the last good facts went stale: dropped.
    Dropped,
    /// A failed run of a source that holds no facts.
    None,
}

// A poisoned lock means a panic while holding it; the data is plain values
// that are always left consistent, so reading on is safe.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
