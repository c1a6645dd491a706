//! The scheduler: runs each source in its own task on its own interval, under
//! its own deadline, and keeps the books every source shares (up, last
//! success, duration, errors). A source that hangs or fails delays nobody.
//!
//! With a store, each run's outcome is kept there (the facts only when they
//! changed), and at start-up the state kept by the previous run of the
//! exporter is put back before the first run: a restart shows what was
//! shown before it, not a gap.

use std::sync::Arc;
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

/// Starts one task per source, after putting back what `restored` holds for
/// it. Dropping the handles does not stop them; abort them to.
pub fn start(
    hub: Arc<Hub>,
    sources: Vec<Arc<dyn Source>>,
    restored: &[SourceRecord],
    keeper: Option<Keeper>,
) -> Vec<JoinHandle<()>> {
    let staleness = hub.config().sources.staleness.0;
    sources
        .into_iter()
        .map(|source| {
            let hub = hub.clone();
            let keeper = keeper.clone();
            let schedule = source.schedule();
            hub.register_source(source.name(), schedule.interval.0);
            let kept = restored.iter().find(|r| r.source == source.name());
            let mut last_kept = kept.and_then(|r| restore(&hub, source.name(), r, staleness));
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(schedule.interval.0);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let (status, change) = run_once(&hub, source.as_ref(), staleness).await;
                    if let Some(keep) = &keeper {
                        let facts = facts_write(&status, change, &mut last_kept);
                        keep(record(&status), facts);
                    }
                }
            })
        })
        .collect()
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
        let tasks = start(
            hub.clone(),
            Vec::new(),
            &[kept(true, 5.0, 5.0, Some(probes_json()))],
            None,
        );
        assert!(tasks.is_empty());
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
}
