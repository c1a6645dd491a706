//! The historian: one task that turns changes into events (see `history`).

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::observe::observe_since;
use crate::history::{diff, number, record, HistoryView};
use crate::hub::Hub;
use crate::ingest::Ingest;
use crate::snapshot::now_unix;

/// How long the historian lets a burst of changes settle before observing.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(50);

/// Starts the historian: reads what the store holds and puts it in force
/// (so the first scrape after a restart already has the history's
/// families), then records the events of every change the hub announces.
/// An event is committed before the view shows it; one that cannot be
/// committed (a full disk) is tried again at the next change, with the
/// time it was first noticed lost.
pub async fn start(hub: Arc<Hub>, ingest: Arc<Ingest>) -> JoinHandle<()> {
    let now = now_unix();
    let reading = ingest.clone();
    let loaded = match tokio::task::spawn_blocking(move || reading.store().history(now)).await {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the history; starting it afresh");
            Default::default()
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the history; starting it afresh");
            Default::default()
        }
    };
    let mut recorded = loaded.recorded();
    // The time of the newest change recorded: a change is never dated
    // before it, so the history stays in the order things happened when the
    // wall clock is set back (until the clock passes it again, changes carry
    // that time).
    let mut last_at = loaded
        .latest
        .iter()
        .map(|(_, at, _)| *at)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut view = HistoryView::load(loaded);
    hub.publish_history(Arc::new(view.clone()));
    tokio::spawn(async move {
        let mut changes = hub.changes();
        // The snapshot last observed and recorded: what has not changed
        // since is skipped.
        let mut seen: Option<crate::snapshot::Snapshot> = None;
        loop {
            let snapshot = hub.snapshot();
            let observed = observe_since(&snapshot, seen.as_ref());
            let at = snapshot.read_at.max(last_at);
            let mut events = diff(&recorded, &observed, at);
            number(&mut events, &view);
            if !events.is_empty() {
                match ingest.store().record_events(events).await {
                    Ok(committed) => {
                        record(&mut recorded, &committed);
                        last_at = at;
                        view.apply(committed, at);
                        hub.publish_history(Arc::new(view.clone()));
                        seen = Some(snapshot);
                    }
                    Err(e) => {
                        // Observed afresh at the next change.
                        seen = None;
                        tracing::warn!(error = %e, "history events not recorded; tried again at the next change")
                    }
                }
            } else {
                seen = Some(snapshot);
            }
            if changes.changed().await.is_err() {
                break;
            }
            // A burst of changes (a source run, the pulse it makes the
            // store publish) is observed once.
            tokio::time::sleep(COALESCE).await;
            changes.mark_unchanged();
        }
    })
}
