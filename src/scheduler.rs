//! The scheduler: runs each source in its own task on its own interval, under
//! its own deadline, and keeps the books every source shares (up, last
//! success, duration, errors). A source that hangs or fails delays nobody.

use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::hub::Hub;
use crate::sources::Source;

/// Starts one task per source. Dropping the handles does not stop them; abort them to.
pub fn start(hub: Arc<Hub>, sources: Vec<Arc<dyn Source>>) -> Vec<JoinHandle<()>> {
    let staleness = hub.config().sources.staleness.0;
    sources
        .into_iter()
        .map(|source| {
            let hub = hub.clone();
            let schedule = source.schedule();
            hub.register_source(source.name(), schedule.interval.0);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(schedule.interval.0);
                tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    run_once(&hub, source.as_ref(), staleness).await;
                }
            })
        })
        .collect()
}

/// One run of one source, recorded in the hub.
pub async fn run_once(hub: &Hub, source: &dyn Source, staleness: std::time::Duration) {
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
    hub.record_run(name, result, elapsed, staleness);
}
