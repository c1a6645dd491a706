//! The scheduler: runs each source in its own task on its own interval, under
//! its own deadline, and keeps the books every source shares (up, last
//! success, duration, errors). A source that hangs or fails delays nobody.
//!
//! With a store, each run's outcome is kept there (the facts only when they
//! changed), and at start-up the state kept by the previous run of the
//! exporter is put back before the first run: a restart shows what was
//! shown before it, not a gap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::clock::now_unix;
use crate::hub::{FactsChange, Hub};
use crate::snapshot::SourceStatus;
use crate::sources::{Source, REGISTRY};
use crate::store::{FactsWrite, SourceRecord};

/// Where each run's outcome is kept (the store's `keep_source`).
pub type Keeper = Arc<dyn Fn(SourceRecord, FactsWrite) + Send + Sync>;

/// A source to run, and the fingerprint of the settings it was built from
/// (a reload keeps the schedule of a source whose fingerprint is the same).
pub struct Planned {
    pub source: Arc<dyn Source>,
    pub fingerprint: String,
}

/// The running sources: one task each.
pub struct Scheduler {
    hub: Arc<Hub>,
    keeper: Option<Keeper>,
    tasks: Vec<Task>,
}

struct Task {
    name: &'static str,
    fingerprint: String,
    interval: Duration,
    handle: JoinHandle<()>,
    /// When the task runs next.
    next: Arc<Mutex<tokio::time::Instant>>,
}

impl Scheduler {
    /// Starts one task per source, after putting back what `restored`
    /// holds for it.
    pub fn start(
        hub: Arc<Hub>,
        sources: Vec<Planned>,
        restored: &[SourceRecord],
        keeper: Option<Keeper>,
    ) -> Scheduler {
        let staleness = hub.config().sources.staleness.0;
        let mut s = Scheduler {
            hub,
            keeper,
            tasks: Vec::new(),
        };
        for p in sources {
            s.hub
                .register_source(p.source.name(), p.source.schedule().interval.0);
            let kept = restored.iter().find(|r| r.source == p.source.name());
            let last_kept = kept.and_then(|r| restore(&s.hub, p.source.name(), r, staleness));
            let task = s.spawn(p, tokio::time::Instant::now(), last_kept);
            s.tasks.push(task);
        }
        s
    }

    /// The sources running, by name.
    pub fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|t| t.name).collect()
    }

    /// Runs `sources` in place of the running ones (after a reload: they
    /// are built from the new config). A source whose settings' fingerprint
    /// and interval are unchanged keeps its schedule: its next run is when
    /// it was due. A new or changed one runs now.
    pub fn replace(&mut self, sources: Vec<Planned>) {
        let old = std::mem::take(&mut self.tasks);
        for p in sources {
            let name = p.source.name();
            let interval = p.source.schedule().interval.0;
            let same = old.iter().find(|t| {
                t.name == name && t.fingerprint == p.fingerprint && t.interval == interval
            });
            let first = match same {
                Some(t) => *lock(&t.next),
                None => tokio::time::Instant::now(),
            };
            self.hub.register_source(name, interval);
            let task = self.spawn(p, first, None);
            self.tasks.push(task);
        }
        for t in old {
            t.handle.abort();
        }
    }

    fn spawn(
        &self,
        p: Planned,
        first: tokio::time::Instant,
        mut last_kept: Option<String>,
    ) -> Task {
        let source = p.source;
        let name = source.name();
        let interval = source.schedule().interval.0;
        let next = Arc::new(Mutex::new(first));
        let hub = self.hub.clone();
        let keeper = self.keeper.clone();
        let due = next.clone();
        let handle = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(first, interval);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let at = tick.tick().await;
                *lock(&due) = at + interval;
                let staleness = hub.config().sources.staleness.0;
                let (status, change) = run_once(&hub, source.as_ref(), staleness).await;
                if let Some(keep) = &keeper {
                    let facts = facts_write(&status, change, &mut last_kept);
                    keep(record(&status), facts);
                }
            }
        });
        Task {
            name,
            fingerprint: p.fingerprint,
            interval,
            handle,
            next,
        }
    }

    /// Stops every task.
    pub fn stop(&mut self) {
        for t in &self.tasks {
            t.handle.abort();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts back one source's kept state, if it is recent enough to have still
/// been shown had the exporter kept running: the books when its last run
/// is within `staleness`, the facts when its last success is. Returns the
/// facts' JSON as kept, when they were put back.
fn restore(
    hub: &Hub,
    source: &'static str,
    kept: &SourceRecord,
    staleness: Duration,
) -> Option<String> {
    let now = now_unix();
    let fresh = |t: f64| now - t <= staleness.as_secs_f64();
    if !fresh(kept.ran_at) {
        return None;
    }
    let json = kept
        .facts
        .as_deref()
        .filter(|_| kept.last_success.is_some_and(fresh));
    let facts = match json {
        Some(json) => {
            let restore = REGISTRY.iter().find(|r| r.name == source)?.restore;
            match restore(json) {
                Ok(f) => Some(f),
                Err(e) => {
                    // Kept by an older build whose facts read differently:
                    // books without their facts would say "up" with nothing
                    // to show, so the source waits for its first run.
                    tracing::warn!(source, error = %e, "kept facts do not read back; waiting for the first run");
                    return None;
                }
            }
        }
        None => None,
    };
    let restored = facts.is_some();
    hub.restore(source, kept, facts);
    tracing::info!(
        source,
        up = kept.up,
        facts = restored,
        "restored the state kept before the restart"
    );
    json.filter(|_| restored).map(str::to_string)
}

/// What to keep of a run's facts: new JSON only when it differs from what
/// is kept already.
fn facts_write(
    status: &SourceStatus,
    change: FactsChange,
    last_kept: &mut Option<String>,
) -> FactsWrite {
    match change {
        FactsChange::New(out) => match out.to_json() {
            Ok(json) if last_kept.as_deref() == Some(json.as_str()) => FactsWrite::Keep,
            Ok(json) => {
                *last_kept = Some(json.clone());
                FactsWrite::Set(json)
            }
            Err(e) => {
                tracing::warn!(source = status.source, error = %e, "cannot keep the facts");
                *last_kept = None;
                FactsWrite::Clear
            }
        },
        FactsChange::Kept => FactsWrite::Keep,
        FactsChange::Dropped | FactsChange::None => {
            *last_kept = None;
            FactsWrite::Clear
        }
    }
}

fn record(status: &SourceStatus) -> SourceRecord {
    SourceRecord {
        source: status.source.to_string(),
        up: status.up,
        last_success: status.last_success,
        last_error: status.last_error.clone(),
        ran_at: now_unix(),
        duration_seconds: status.duration_seconds,
        facts: None,
    }
}

/// One run of one source, recorded in the hub.
pub async fn run_once(
    hub: &Hub,
    source: &dyn Source,
    staleness: Duration,
) -> (SourceStatus, FactsChange) {
    let name = source.name();
    let deadline = source.run_deadline();
    let start = Instant::now();
    let result = match tokio::time::timeout(deadline, source.collect()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "did not finish within {:.1} s",
            deadline.as_secs_f64()
        )),
    };
    let elapsed = start.elapsed();
    match &result {
        Ok(_) => tracing::debug!(
            source = name,
            seconds = elapsed.as_secs_f64(),
            "source run ok"
        ),
        Err(e) => tracing::warn!(source = name, error = %e, "source run failed"),
    }
    hub.record_run(name, result, elapsed, staleness)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::sources::healthz::HealthzFacts;

    const STALENESS: Duration = Duration::from_secs(60);

    fn hub() -> Arc<Hub> {
        let yaml = "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: https://a.example/healthz\n";
        let hub = Hub::new(Arc::new(Config::parse(yaml, "t.yaml").unwrap()));
        hub.register_source("healthz", Duration::from_secs(15));
        hub
    }

    fn probes_json() -> String {
        r#"[{"stack":"prod","service":"broker","health":"red","status_code":503,
             "duration_seconds":0.1,"commit":null,"reason":"HTTP 503"}]"#
            .to_string()
    }

    fn kept(up: bool, ran_ago: f64, success_ago: f64, facts: Option<String>) -> SourceRecord {
        let now = now_unix();
        SourceRecord {
            source: "healthz".into(),
            up,
            last_success: Some(now - success_ago),
            last_error: (!up).then(|| "timed out".to_string()),
            ran_at: now - ran_ago,
            duration_seconds: 1.5,
            facts,
        }
    }

    #[test]
    fn fresh_state_is_put_back_with_its_facts() {
        let hub = hub();
        let json = restore(
            &hub,
            "healthz",
            &kept(true, 5.0, 5.0, Some(probes_json())),
            STALENESS,
        );
        assert!(json.is_some());
        let s = hub.snapshot();
        let status = &s.sources[0];
        assert!(status.up && status.has_run);
        assert_eq!(status.duration_seconds, 1.5);
        let probes = s.facts.get::<HealthzFacts>().expect("facts put back");
        assert_eq!(probes[0].service, "broker");
        assert_eq!(probes[0].status_code, Some(503));
    }

    #[test]
    fn state_older_than_staleness_is_not_put_back() {
        let hub = hub();
        let json = restore(
            &hub,
            "healthz",
            &kept(true, 61.0, 61.0, Some(probes_json())),
            STALENESS,
        );
        assert!(json.is_none());
        let s = hub.snapshot();
        assert!(!s.sources[0].has_run && !s.sources[0].up);
        assert!(s.facts.of("healthz").is_none());
    }

    #[test]
    fn a_recent_failure_is_put_back_without_facts_that_went_stale() {
        let hub = hub();
        restore(
            &hub,
            "healthz",
            &kept(false, 5.0, 90.0, Some(probes_json())),
            STALENESS,
        );
        let s = hub.snapshot();
        assert!(s.sources[0].has_run && !s.sources[0].up);
        assert_eq!(s.sources[0].last_error.as_deref(), Some("timed out"));
        assert!(s.facts.of("healthz").is_none());
    }

    #[test]
    fn facts_that_do_not_read_back_leave_the_source_waiting_for_its_first_run() {
        let hub = hub();
        let json = restore(
            &hub,
            "healthz",
            &kept(true, 5.0, 5.0, Some("{not json".into())),
            STALENESS,
        );
        assert!(json.is_none());
        let s = hub.snapshot();
        assert!(!s.sources[0].up && !s.sources[0].has_run);
        assert!(s.facts.of("healthz").is_none());
    }

    #[test]
    fn a_source_no_longer_configured_is_not_put_back() {
        let hub = hub();
        let tasks = Scheduler::start(
            hub.clone(),
            Vec::new(),
            &[kept(true, 5.0, 5.0, Some(probes_json()))],
            None,
        );
        assert!(tasks.names().is_empty());
        let s = hub.snapshot();
        assert!(!s.sources[0].has_run);
        assert!(s.facts.of("healthz").is_none());
    }

    #[test]
    fn unchanged_facts_are_not_written_again() {
        let hub = hub();
        let status = hub.snapshot().sources[0].clone();
        let out: crate::sources::SourceOutput =
            crate::sources::restore::<HealthzFacts>(&probes_json()).unwrap();
        let mut last = None;
        let first = facts_write(&status, FactsChange::New(out.clone()), &mut last);
        assert!(matches!(first, FactsWrite::Set(_)));
        assert_eq!(
            facts_write(&status, FactsChange::New(out), &mut last),
            FactsWrite::Keep
        );
        assert_eq!(
            facts_write(&status, FactsChange::Kept, &mut last),
            FactsWrite::Keep
        );
        assert_eq!(
            facts_write(&status, FactsChange::Dropped, &mut last),
            FactsWrite::Clear
        );
        assert!(last.is_none());
    }

    const INTERVAL: Duration = Duration::from_secs(1);

    /// A source that counts its runs.
    struct Counting {
        runs: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Source for Counting {
        fn name(&self) -> &'static str {
            "healthz"
        }
        fn schedule(&self) -> crate::values::Schedule {
            crate::values::Schedule {
                interval: crate::values::Seconds(INTERVAL),
                timeout: crate::values::Seconds(Duration::from_secs(5)),
            }
        }
        fn collect(&self) -> crate::sources::CollectFuture<'_> {
            self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async {
                Ok(crate::sources::output(Vec::<
                    crate::sources::healthz::ServiceProbe,
                >::new()))
            })
        }
    }

    /// Waits until the source has run `n` times (failing after 5 s).
    async fn ran(runs: &std::sync::atomic::AtomicUsize, n: usize) {
        let limit = tokio::time::Instant::now() + Duration::from_secs(5);
        while runs.load(std::sync::atomic::Ordering::SeqCst) < n {
            assert!(tokio::time::Instant::now() < limit, "run {n} never came");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_replaced_source_keeps_its_schedule_unless_its_settings_changed() {
        let hub = hub();
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let planned = |fingerprint: &str| {
            vec![Planned {
                source: Arc::new(Counting { runs: runs.clone() }),
                fingerprint: fingerprint.to_string(),
            }]
        };
        let started = tokio::time::Instant::now();
        let mut s = Scheduler::start(hub, planned("a"), &[], None);
        ran(&runs, 1).await;
        assert!(
            started.elapsed() < INTERVAL / 2,
            "a new source runs at once"
        );
        // Same settings: the next run is one interval after the first, not
        // at the replace.
        s.replace(planned("a"));
        ran(&runs, 2).await;
        assert!(started.elapsed() >= INTERVAL, "ran before it was due");
        // Changed settings: it runs at once.
        s.replace(planned("b"));
        let replaced = tokio::time::Instant::now();
        ran(&runs, 3).await;
        assert!(replaced.elapsed() < INTERVAL / 2, "did not run at once");
        assert_eq!(s.names(), ["healthz"]);
    }

    /// A source whose runs succeed with no probes, fail, or never end.
    struct Scripted {
        runs: Arc<std::sync::atomic::AtomicUsize>,
        fail: bool,
        hang: bool,
    }

    impl Source for Scripted {
        fn name(&self) -> &'static str {
            "healthz"
        }
        fn schedule(&self) -> crate::values::Schedule {
            crate::values::Schedule {
                interval: crate::values::Seconds(INTERVAL),
                timeout: crate::values::Seconds(Duration::from_millis(250)),
            }
        }
        fn collect(&self) -> crate::sources::CollectFuture<'_> {
            self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let (fail, hang) = (self.fail, self.hang);
            Box::pin(async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                if fail {
                    return Err(crate::sources::SourceError::new("refused"));
                }
                Ok(crate::sources::output(Vec::<
                    crate::sources::healthz::ServiceProbe,
                >::new()))
            })
        }
    }

    fn scripted(fail: bool, hang: bool) -> (Scripted, Arc<std::sync::atomic::AtomicUsize>) {
        let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let s = Scripted {
            runs: runs.clone(),
            fail,
            hang,
        };
        (s, runs)
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_or_overrunning_run_is_recorded_with_why() {
        let hub = hub();
        let (ok, _) = scripted(false, false);
        let (status, change) = run_once(&hub, &ok, STALENESS).await;
        assert!(status.up && status.has_run);
        assert!(matches!(change, FactsChange::New(_)));
        let (failing, _) = scripted(true, false);
        let (status, _) = run_once(&hub, &failing, STALENESS).await;
        assert!(!status.up);
        assert_eq!(status.last_error.as_deref(), Some("refused"));
        assert_eq!(status.errors_total, 1);
        let (hanging, runs) = scripted(false, true);
        let (status, _) = run_once(&hub, &hanging, STALENESS).await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            status.last_error.as_deref(),
            Some("did not finish within 0.2 s")
        );
        assert_eq!(status.errors_total, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn each_run_is_kept_and_its_facts_only_when_they_changed() {
        let hub = hub();
        let (source, _) = scripted(false, false);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let keeper: Keeper = Arc::new(move |record, facts| {
            let _ = tx.send((record, facts));
        });
        let before = now_unix();
        let _s = Scheduler::start(
            hub,
            vec![Planned {
                source: Arc::new(source),
                fingerprint: String::new(),
            }],
            &[],
            Some(keeper),
        );
        let (first, facts) = rx.recv().await.unwrap();
        assert_eq!((first.source.as_str(), first.up), ("healthz", true));
        assert!(first.last_success.is_some_and(|t| t >= before));
        assert!(first.ran_at >= before && first.last_error.is_none());
        assert_eq!(facts, FactsWrite::Set("[]".into()));
        let (second, facts) = rx.recv().await.unwrap();
        assert!(second.up);
        assert_eq!(
            facts,
            FactsWrite::Keep,
            "the same facts are not written again"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_stopped_or_dropped_scheduler_runs_nothing_more() {
        use std::sync::atomic::Ordering::SeqCst;
        for drop_it in [false, true] {
            let (source, runs) = scripted(false, false);
            let mut s = Scheduler::start(
                hub(),
                vec![Planned {
                    source: Arc::new(source),
                    fingerprint: String::new(),
                }],
                &[],
                None,
            );
            ran(&runs, 1).await;
            tokio::time::sleep(INTERVAL).await;
            ran(&runs, 2).await;
            if drop_it {
                drop(s);
            } else {
                s.stop();
            }
            tokio::time::sleep(INTERVAL * 10).await;
            assert_eq!(runs.load(SeqCst), 2, "ran after being stopped");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_source_gets_its_own_kept_state_back() {
        let hub = hub();
        hub.register_source("tls", Duration::from_secs(15));
        let mut other = kept(false, 5.0, 5.0, None);
        other.source = "tls".into();
        let (source, _) = scripted(false, true);
        let _s = Scheduler::start(
            hub.clone(),
            vec![Planned {
                source: Arc::new(source),
                fingerprint: String::new(),
            }],
            &[other, kept(true, 5.0, 5.0, Some(probes_json()))],
            None,
        );
        let s = hub.snapshot();
        let healthz = s.sources.iter().find(|x| x.source == "healthz").unwrap();
        assert!(healthz.up && healthz.last_error.is_none(), "{healthz:?}");
        let tls = s.sources.iter().find(|x| x.source == "tls").unwrap();
        assert!(
            !tls.has_run,
            "tls is not running: its state is not put back"
        );
    }
}
