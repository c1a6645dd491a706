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
    let facts = json.and_then(|json| {
        let restore = REGISTRY.iter().find(|r| r.name == source)?.restore;
        match restore(json) {
            Ok(f) => Some(f),
            Err(e) => {
                // Kept by an older build whose facts read differently: the
                // first run fills them in.
                tracing::warn!(source, error = %e, "kept facts do not read back; waiting for the first run");
                None
            }
        }
    });
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
