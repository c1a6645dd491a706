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
    /// Told after every good run of a source (for whoever acts on facts):
    /// only the telling carries news, the value none.
    runs: tokio::sync::watch::Sender<()>,
    /// Told after every change a view could show: a source run, a pulse
    /// published, a config put in force.
    changes: tokio::sync::watch::Sender<()>,
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
            runs: tokio::sync::watch::channel(()).0,
            changes: tokio::sync::watch::channel(()).0,
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
        self.changes.send_replace(());
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
                self.runs.send_replace(());
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
        self.changes.send_replace(());
        out
    }

    /// Changes after every source run, pulse published and config put in
    /// force.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<()> {
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
    pub fn good_runs(&self) -> tokio::sync::watch::Receiver<()> {
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
        self.changes.send_replace(());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pulse::{Heartbeat, HostHealth, IngestCounters, Mutants, TestRun};
    use crate::sources::dns::{DnsFacts, DnsRecord};

    const FLEET: &str = "\
ingest:
  services: [pusher]
environments:
  - name: prod
    boxes: [prod-box]
    hosts: [prod-host]
    services:
      - name: api
  - name: staging
    boxes: [staging-box]
    hosts: [staging-host]
    services:
      - name: web
";

    fn config(text: &str) -> Arc<Config> {
        Arc::new(Config::parse(text, "fleet.yaml").unwrap())
    }

    /// The fleet with `staging` removed.
    fn prod_only() -> Arc<Config> {
        config(FLEET.split("  - name: staging").next().unwrap())
    }

    fn dns(stacks: &[&str]) -> SourceOutput {
        crate::sources::output(DnsFacts {
            records: stacks
                .iter()
                .map(|s| DnsRecord {
                    stack: s.to_string(),
                    name: format!("{s}.example.net"),
                    addresses: vec!["192.0.2.1".into()],
                    alias: None,
                })
                .collect(),
        })
    }

    fn stacks_of(hub: &Hub) -> Option<Vec<String>> {
        hub.facts_of::<DnsFacts>()
            .map(|f| f.records.into_iter().map(|r| r.stack).collect())
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_good_run_sets_facts_and_books_and_a_failed_one_keeps_fresh_facts() {
        let hub = Hub::new(config(FLEET));
        let (changes, good) = (hub.changes(), hub.good_runs());
        hub.register_source("dns", MINUTE);
        hub.register_source("dns", MINUTE);
        let books = hub.snapshot().sources;
        assert_eq!(books.len(), 1);
        assert_eq!(
            (books[0].up, books[0].has_run, books[0].interval),
            (false, false, MINUTE)
        );
        let before = now_unix();
        let (status, change) = hub.record_run(
            "dns",
            Ok(dns(&["prod"])),
            Duration::from_millis(250),
            MINUTE,
        );
        assert!(matches!(change, FactsChange::New(_)), "{change:?}");
        assert!(status.up && status.has_run && status.last_error.is_none());
        assert!(status.last_success.is_some_and(|t| t >= before));
        assert_eq!(status.duration_seconds, 0.25);
        assert_eq!(stacks_of(&hub), Some(vec!["prod".to_string()]));
        assert!(changes.has_changed().unwrap() && good.has_changed().unwrap());

        let good = hub.good_runs();
        let (status, change) = hub.record_run("dns", Err("timed out".into()), MINUTE, MINUTE);
        assert!(matches!(change, FactsChange::Kept), "{change:?}");
        assert!(!status.up && status.has_run);
        assert_eq!(
            (status.errors_total, status.last_error.as_deref()),
            (1, Some("timed out"))
        );
        assert_eq!(stacks_of(&hub), Some(vec!["prod".to_string()]));
        assert!(!good.has_changed().unwrap());
        hub.record_run("dns", Err("again".into()), MINUTE, MINUTE);
        assert_eq!(hub.snapshot().sources[0].errors_total, 2);
    }

    #[test]
    fn facts_older_than_the_staleness_are_dropped_at_a_failure() {
        let hub = Hub::new(config(FLEET));
        hub.register_source("dns", MINUTE);
        let kept = SourceRecord {
            source: "dns".into(),
            up: true,
            last_success: Some(now_unix() - 600.0),
            last_error: Some("kept error".into()),
            ran_at: now_unix() - 600.0,
            duration_seconds: 1.5,
            facts: None,
        };
        hub.restore("dns", &kept, Some(dns(&["prod"])));
        let books = hub.snapshot().sources[0].clone();
        assert_eq!(
            (
                books.up,
                books.has_run,
                books.last_success,
                books.duration_seconds
            ),
            (true, true, kept.last_success, 1.5)
        );
        assert_eq!(books.last_error.as_deref(), Some("kept error"));
        assert_eq!(stacks_of(&hub), Some(vec!["prod".to_string()]));
        // Ten minutes old: fresh for an hour's staleness, stale for five minutes'.
        let (_, change) = hub.record_run("dns", Err("down".into()), MINUTE, 60 * MINUTE);
        assert!(matches!(change, FactsChange::Kept), "{change:?}");
        let (_, change) = hub.record_run("dns", Err("down".into()), MINUTE, 5 * MINUTE);
        assert!(matches!(change, FactsChange::Dropped), "{change:?}");
        assert_eq!(stacks_of(&hub), None);
        let (_, change) = hub.record_run("dns", Err("down".into()), MINUTE, 5 * MINUTE);
        assert!(matches!(change, FactsChange::None), "{change:?}");
        // A source that never succeeded holds nothing to keep.
        let (status, change) = hub.record_run("aws", Err("no".into()), MINUTE, 60 * MINUTE);
        assert!(matches!(change, FactsChange::None), "{change:?}");
        assert_eq!((status.interval, status.errors_total), (Duration::ZERO, 1));
        assert_eq!(hub.snapshot().sources.len(), 2);
    }

    #[test]
    fn restored_facts_of_an_unregistered_source_leave_its_books_alone() {
        let hub = Hub::new(config(FLEET));
        let kept = SourceRecord {
            source: "dns".into(),
            up: true,
            last_success: Some(1.0),
            last_error: None,
            ran_at: 1.0,
            duration_seconds: 1.0,
            facts: None,
        };
        hub.restore("dns", &kept, Some(dns(&["prod"])));
        assert!(hub.snapshot().sources.is_empty());
        assert_eq!(stacks_of(&hub), Some(vec!["prod".to_string()]));
    }

    #[test]
    fn a_new_config_retires_facts_and_forgets_sources_no_longer_running() {
        let hub = Hub::new(config(FLEET));
        hub.register_source("dns", MINUTE);
        hub.register_source("aws", MINUTE);
        hub.record_run("dns", Ok(dns(&["prod", "staging"])), MINUTE, MINUTE);
        let changes = hub.changes();
        hub.replace_config(prod_only(), &["dns"]);
        assert!(changes.has_changed().unwrap());
        assert_eq!(hub.config().environments.len(), 1);
        assert_eq!(stacks_of(&hub), Some(vec!["prod".to_string()]));
        let running: Vec<_> = hub.snapshot().sources.iter().map(|s| s.source).collect();
        assert_eq!(running, ["dns"]);
        hub.replace_config(prod_only(), &[]);
        assert_eq!(stacks_of(&hub), None);
        assert!(hub.snapshot().sources.is_empty());
    }

    #[test]
    fn a_failed_reload_keeps_the_time_of_the_last_good_one() {
        let hub = Hub::new(config(FLEET));
        let (ok, at) = hub.reload_books();
        assert!(ok && at > 0.0);
        hub.record_reload(false);
        assert_eq!(hub.reload_books(), (false, at));
        let before = now_unix();
        hub.record_reload(true);
        let (ok, later) = hub.reload_books();
        assert!(ok && later >= before);
    }

    #[test]
    fn counters_and_history_reach_the_snapshot() {
        let hub = Hub::new(config(FLEET));
        hub.count_handler_panic();
        hub.count_discovery_refused();
        hub.count_discovery_refused();
        hub.publish_history(Arc::new(crate::history::HistoryView {
            active: true,
            ..Default::default()
        }));
        let s = hub.snapshot();
        assert_eq!((s.handler_panics, s.discovery_refused), (1, 2));
        assert!(s.history.active && hub.history().active);
    }

    fn heartbeat(stack: &str, name: &str) -> (Arc<str>, Arc<Heartbeat>) {
        (
            name.into(),
            Arc::new(crate::testing::heartbeat(stack, name)),
        )
    }

    fn test_run(stack: &str, service: &str) -> ((String, String), Arc<TestRun>) {
        let run = crate::testing::test_run(stack, service);
        ((stack.into(), service.into()), Arc::new(run))
    }

    fn mutants(service: &str) -> (String, Arc<Mutants>) {
        (service.into(), Arc::new(crate::testing::mutants(service)))
    }

    fn host(stack: &str, name: &str) -> (String, Arc<HostHealth>) {
        (
            name.into(),
            Arc::new(crate::testing::host_health(stack, name)),
        )
    }

    fn counters(name: &str) -> (Arc<str>, Arc<IngestCounters>) {
        let c = IngestCounters {
            host: name.into(),
            ..Default::default()
        };
        (name.into(), Arc::new(c))
    }

    /// A pulse with an entry of every kind for each environment, and the
    /// receiver's own rows.
    fn pulse() -> Pulse {
        Pulse {
            heartbeats: [
                heartbeat("prod", "prod-box"),
                heartbeat("staging", "staging-box"),
            ]
            .into(),
            test_runs: [
                test_run("prod", "api"),
                test_run("staging", "web"),
                test_run("", "pusher"),
            ]
            .into(),
            mutants: [mutants("api"), mutants("web"), mutants("pusher")].into(),
            host_health: [host("prod", "prod-host"), host("staging", "staging-host")].into(),
            ingest: [
                counters("_invalid"),
                counters("prod-box"),
                counters("prod-host"),
                counters("api"),
                counters("pusher"),
                counters("staging-box"),
                counters("staging-host"),
                counters("web"),
            ]
            .into(),
        }
    }

    fn keys<K: Clone, V>(m: &std::collections::BTreeMap<K, V>) -> Vec<K> {
        m.keys().cloned().collect()
    }

    #[test]
    fn the_pulse_shown_holds_only_what_the_inventory_lists() {
        let hub = Hub::new(config(FLEET));
        let published = Arc::new(pulse());
        hub.publish_pulse(published.clone());
        // Everything is listed: the very pulse published is shown.
        assert!(Arc::ptr_eq(&hub.pulse(), &published));
        hub.replace_config(prod_only(), &[]);
        let shown = hub.pulse();
        assert_eq!(keys(&shown.heartbeats), [Arc::from("prod-box")]);
        assert_eq!(
            keys(&shown.test_runs),
            [
                (String::new(), "pusher".to_string()),
                ("prod".into(), "api".into())
            ]
        );
        assert_eq!(keys(&shown.mutants), ["api", "pusher"]);
        assert_eq!(keys(&shown.host_health), ["prod-host"]);
        assert_eq!(
            keys(&shown.ingest),
            ["_invalid", "api", "prod-box", "prod-host", "pusher"].map(Arc::<str>::from)
        );
        // Put back, staging's rows show again.
        hub.replace_config(config(FLEET), &[]);
        assert_eq!(*hub.pulse(), *published);
    }

    #[test]
    fn each_kind_of_entry_alone_is_hidden_when_its_name_is_not_listed() {
        let hub = Hub::new(prod_only());
        let only = |f: &dyn Fn(&mut Pulse)| {
            let mut p = pulse();
            p.heartbeats.retain(|b, _| &**b == "prod-box");
            p.test_runs.retain(|k, _| k.0 == "prod");
            p.mutants.retain(|k, _| k == "api");
            p.host_health.retain(|k, _| k == "prod-host");
            p.ingest.retain(|k, _| &**k == "prod-box");
            let listed = p.clone();
            f(&mut p);
            hub.publish_pulse(Arc::new(p));
            assert_eq!(*hub.pulse(), listed);
        };
        only(&|p| p.heartbeats.extend([heartbeat("staging", "staging-box")]));
        only(&|p| p.test_runs.extend([test_run("staging", "web")]));
        // A listed service on an environment no longer listed.
        only(&|p| p.test_runs.extend([test_run("staging", "api")]));
        only(&|p| p.mutants.extend([mutants("web")]));
        only(&|p| p.host_health.extend([host("staging", "staging-host")]));
        only(&|p| p.ingest.extend([counters("staging-box")]));
        only(&|p| p.ingest.extend([counters("staging-host")]));
        only(&|p| p.ingest.extend([counters("web")]));
    }

    #[test]
    fn with_unknown_names_admitted_nothing_is_hidden() {
        let text = FLEET.split("  - name: staging").next().unwrap().replace(
            "  services: [pusher]\n",
            "  services: [pusher]\n  unknown_names_cap: 10\n",
        );
        let hub = Hub::new(config(&text));
        let published = Arc::new(pulse());
        hub.publish_pulse(published.clone());
        assert!(Arc::ptr_eq(&hub.pulse(), &published));
    }
}
