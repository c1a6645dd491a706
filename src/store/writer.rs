//! The writer thread: takes every waiting message, applies it in one
//! transaction, commits with one fsync, publishes the pulse and answers each
//! caller (see the store's module documentation).

use super::*;

pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) pulse: Pulse,
    /// Names outside the inventory that the store holds.
    pub(super) unknown: HashSet<String>,
    pub(super) cap: usize,
    pub(super) publish: Publish,
    pub(super) dirty: bool,
    pub(super) last_publish: Instant,
    /// How long the last publication took.
    pub(super) publish_cost: Duration,
    /// When each unlisted row was first found unlisted (for retention).
    pub(super) unlisted_since: std::collections::HashMap<super::remove::RowKey, f64>,
}

impl Writer {
    pub(super) fn run(mut self, rx: mpsc::Receiver<Msg>) {
        loop {
            let first = if self.dirty {
                match rx.recv_timeout(publish_wait(
                    throttle(self.publish_cost),
                    self.last_publish.elapsed(),
                )) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        self.publish();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let (removals, batch): (Vec<Msg>, Vec<Msg>) = batch
                .into_iter()
                .partition(|m| matches!(m, Msg::Remove(..)));
            let (history, batch): (Vec<Msg>, Vec<Msg>) = batch
                .into_iter()
                .partition(|m| matches!(m, Msg::Events(..) | Msg::PruneEvents(..)));
            // Only pushes, counts and removals change the pulse; a batch of
            // sources' state or history alone has nothing to publish.
            let touches_pulse = !removals.is_empty()
                || batch
                    .iter()
                    .any(|m| matches!(m, Msg::Write(..) | Msg::Count { .. }));
            let replies = self.apply(batch);
            for m in history {
                match m {
                    Msg::Events(events, reply) => {
                        let _ = reply.send(self.record_events(events));
                    }
                    Msg::PruneEvents(cutoff, reply) => {
                        let pruned = crate::history::store::prune(&self.conn, cutoff)
                            .map_err(|e| WriteError::of(&e));
                        let _ = reply.send(pruned);
                    }
                    _ => {}
                }
            }
            let mut removed = Vec::new();
            for m in removals {
                if let Msg::Remove(r, reply) = m {
                    removed.push((reply, self.remove(&r)));
                }
            }
            self.dirty |= touches_pulse;
            // A removal is shown at once: its caller is answered after it is.
            let took = removed.iter().any(|(_, r)| matches!(r, Ok(n) if *n > 0));
            if self.dirty
                && (publish_due(
                    self.pulse.entries(),
                    self.last_publish.elapsed(),
                    throttle(self.publish_cost),
                ) || took)
            {
                self.publish();
            }
            for (reply, result) in replies {
                // A caller that went away no longer needs its answer; the
                // write is committed regardless.
                let _ = reply.send(result);
            }
            for (reply, result) in removed {
                let _ = reply.send(result);
            }
        }
        if self.dirty {
            self.publish();
        }
    }

    fn publish(&mut self) {
        let start = Instant::now();
        (self.publish)(Arc::new(self.pulse.clone()));
        self.publish_cost = start.elapsed();
        self.last_publish = Instant::now();
        self.dirty = false;
    }

    /// Applies a batch in one transaction; returns the answers to send.
    fn apply(&mut self, batch: Vec<Msg>) -> Vec<(Reply, Result<Written, WriteError>)> {
        let mut answers = Vec::new();
        let mut writes = Vec::new();
        let mut kept = Vec::new();
        for m in batch {
            match m {
                Msg::Count {
                    label,
                    code,
                    stamped,
                } => self.count(&label, code, stamped),
                Msg::Write(req, reply) => writes.push((req, reply)),
                Msg::Source(record, facts) => kept.push((record, facts)),
                // Taken out by `run` before the batch is applied.
                Msg::Remove(..) | Msg::Events(..) | Msg::PruneEvents(..) => {}
            }
        }
        if !kept.is_empty() {
            self.keep_sources(&kept);
        }
        if writes.is_empty() {
            return answers;
        }
        let mut newly_unknown = Vec::new();
        let mut results = Vec::with_capacity(writes.len());
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for (req, _) in &writes {
                let name = req.write.name();
                if !req.known && !self.unknown.contains(name) {
                    if self.unknown.len() >= self.cap {
                        results.push(Err(WriteError::UnknownNamesCapReached(self.cap)));
                        continue;
                    }
                    self.unknown.insert(name.to_string());
                    newly_unknown.push(name.to_string());
                }
                results.push(Ok(self.apply_one(&req.write)?));
            }
            self.conn.execute_batch("COMMIT")
        })();
        if let Err(e) = outcome {
            tracing::error!(error = %e, pushes = writes.len(), "store commit failed");
            let _ = self.conn.execute_batch("ROLLBACK");
            for name in &newly_unknown {
                self.unknown.remove(name);
            }
            self.reload();
            let err = WriteError::of(&e);
            results = vec![Err(err); writes.len()];
        }
        for ((req, reply), result) in writes.into_iter().zip(results) {
            let name = req.write.name();
            let (label, code) = match &result {
                Ok(_) => (name, 200),
                Err(WriteError::UnknownNamesCapReached(_)) => (UNKNOWN_NAME_LABEL, 404),
                Err(e) => {
                    let code = if *e == WriteError::DiskFull { 507 } else { 500 };
                    if req.known || self.unknown.contains(name) {
                        (name, code)
                    } else {
                        (UNKNOWN_NAME_LABEL, code)
                    }
                }
            };
            let label = label.to_string();
            self.count(&label, code, req.stamped);
            answers.push((reply, result));
        }
        answers
    }

    /// Commits history events in a transaction of their own.
    fn record_events(
        &mut self,
        mut events: Vec<crate::history::Event>,
    ) -> Result<Vec<crate::history::Event>, WriteError> {
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            crate::history::store::insert(&self.conn, &mut events)?;
            self.conn.execute_batch("COMMIT")
        })();
        match outcome {
            Ok(()) => Ok(events),
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                tracing::warn!(error = %e, events = events.len(), "cannot record history events");
                Err(WriteError::of(&e))
            }
        }
    }

    /// Commits sources' state in a transaction of its own, so a failure here
    /// never fails a push.
    fn keep_sources(&mut self, kept: &[(SourceRecord, FactsWrite)]) {
        let outcome = (|| -> rusqlite::Result<()> {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            for (record, facts) in kept {
                sources::write(&self.conn, record, facts)?;
            }
            self.conn.execute_batch("COMMIT")
        })();
        if let Err(e) = outcome {
            let _ = self.conn.execute_batch("ROLLBACK");
            tracing::warn!(error = %e, sources = kept.len(), "cannot keep the sources' state");
        }
    }

    /// After a failed commit the in-memory pulse may be ahead of the disk:
    /// read it back (keeping the in-memory counters).
    fn reload(&mut self) {
        match load(&self.conn) {
            Ok(mut p) => {
                p.ingest = std::mem::take(&mut self.pulse.ingest);
                self.pulse = p;
            }
            Err(e) => tracing::error!(error = %e, "cannot re-read the store after a failed commit"),
        }
    }

    fn count(&mut self, label: &str, code: u16, stamped: bool) {
        let entry = match self.pulse.ingest.get_mut(label) {
            Some(c) => c,
            None => self
                .pulse
                .ingest
                .entry(Arc::from(label))
                .or_insert_with(|| {
                    Arc::new(IngestCounters {
                        host: label.to_string(),
                        ..IngestCounters::default()
                    })
                }),
        };
        let c = Arc::make_mut(entry);
        *c.codes.entry(code).or_insert(0) += 1;
        if !stamped {
            c.unstamped += 1;
        }
    }

    fn apply_one(&mut self, write: &Write) -> rusqlite::Result<Written> {
        match write {
            Write::Heartbeat(push) => {
                let prev = self.pulse.heartbeats.get(push.box_name.as_str());
                // The same boot again (a retried push, or one resent until
                // every replica acknowledged): heard, not counted.
                let repeat = push.booted_at.is_some()
                    && prev.is_some_and(|p| p.booted_at == push.booted_at && p.stack == push.stack);
                let recent: Vec<f64> = match prev {
                    Some(p) if repeat => p.recent.clone(),
                    _ => {
                        let mut recent: Vec<f64> = prev
                            .map(|p| {
                                p.recent
                                    .iter()
                                    .copied()
                                    .filter(|t| push.received_at - t <= RESTART_WINDOW_SECONDS)
                                    .collect()
                            })
                            .unwrap_or_default();
                        recent.push(push.received_at);
                        if recent.len() > RECENT_BOOTS_CAP {
                            recent.drain(..recent.len() - RECENT_BOOTS_CAP);
                        }
                        recent
                    }
                };
                let hb = Heartbeat {
                    stack: push.stack.clone(),
                    box_name: push.box_name.clone(),
                    timestamp: push.received_at,
                    count: prev.map_or(0, |p| p.count) + u64::from(!repeat),
                    recent,
                    commit: push.commit.clone(),
                    version: push.version.clone(),
                    booted_at: push.booted_at,
                };
                let recent_json = serde_json::to_string(&hb.recent).unwrap_or_else(|_| "[]".into());
                self.conn
                    .prepare_cached(
                        "INSERT INTO heartbeats
                             (box, stack, timestamp, count, recent, commit_sha, version, booted_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT(box) DO UPDATE SET
                             stack = excluded.stack, timestamp = excluded.timestamp,
                             count = excluded.count, recent = excluded.recent,
                             commit_sha = excluded.commit_sha, version = excluded.version,
                             booted_at = excluded.booted_at",
                    )?
                    .execute(params![
                        hb.box_name,
                        hb.stack,
                        hb.timestamp,
                        int(hb.count),
                        recent_json,
                        hb.commit,
                        hb.version,
                        hb.booted_at,
                    ])?;
                let hb = Arc::new(hb);
                match self.pulse.heartbeats.get_mut(push.box_name.as_str()) {
                    Some(slot) => *slot = hb.clone(),
                    None => {
                        self.pulse
                            .heartbeats
                            .insert(Arc::from(push.box_name.as_str()), hb.clone());
                    }
                }
                Ok(Written::Heartbeat(hb))
            }
            Write::TestRun(run) => {
                let key = (run.stack.clone(), run.service.clone());
                if let Some(current) = self.pulse.test_runs.get(&key) {
                    if !run.supersedes(current) {
                        return Ok(Written::TestRun {
                            receipt: current.clone(),
                            newest: false,
                        });
                    }
                }
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO test_runs
                             (stack, service, passed, failed, errored, skipped, duration_seconds,
                              started_at, received_at, commit_sha, format)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?
                    .execute(params![
                        run.stack,
                        run.service,
                        int(run.passed),
                        int(run.failed),
                        int(run.errored),
                        int(run.skipped),
                        run.duration_seconds,
                        run.started_at,
                        run.received_at,
                        run.commit,
                        run.format.as_str(),
                    ])?;
                let receipt = Arc::new(run.clone());
                self.pulse.test_runs.insert(key, receipt.clone());
                Ok(Written::TestRun {
                    receipt,
                    newest: true,
                })
            }
            Write::Mutants(m) => {
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO mutants
                             (service, caught, missed, timeout, unviable, received_at, commit_sha)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )?
                    .execute(params![
                        m.service,
                        int(m.caught),
                        int(m.missed),
                        int(m.timeout),
                        int(m.unviable),
                        m.received_at,
                        m.commit,
                    ])?;
                let m = Arc::new(m.clone());
                self.pulse.mutants.insert(m.service.clone(), m.clone());
                Ok(Written::Mutants(m))
            }
            Write::HostHealth { summary, document } => {
                self.conn
                    .prepare_cached(
                        "INSERT OR REPLACE INTO host_health
                             (host, stack, ok, warn, fail, received_at, commit_sha, document)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![
                        summary.host,
                        summary.stack,
                        int(summary.ok),
                        int(summary.warn),
                        int(summary.fail),
                        summary.received_at,
                        summary.commit,
                        document,
                    ])?;
                let h = Arc::new(summary.clone());
                self.pulse.host_health.insert(h.host.clone(), h.clone());
                Ok(Written::HostHealth(h))
            }
        }
    }
}

/// Cost-bounded publishing: a publication costing `cost` waits ten times
/// that after the last (at most `MAX_PUBLISH_LAG`), so publishing takes at
/// most a tenth of the writer's time.
fn throttle(cost: Duration) -> Duration {
    (cost * 10).min(MAX_PUBLISH_LAG)
}

/// Whether a commit publishes the pulse before its answers: always when it
/// holds at most `SMALL_PULSE_ENTRIES` (cheap to copy), else once the last
/// publication is `throttle` ago.
fn publish_due(entries: usize, since_last: Duration, throttle: Duration) -> bool {
    entries <= SMALL_PULSE_ENTRIES || since_last >= throttle
}

/// How long an idle writer with an unpublished change waits to publish it.
fn publish_wait(throttle: Duration, since_last: Duration) -> Duration {
    throttle.saturating_sub(since_last)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn publishing_takes_at_most_a_tenth_of_the_time_up_to_the_lag() {
        assert_eq!(throttle(MS * 3), MS * 30);
        assert_eq!(throttle(MS * 50), MAX_PUBLISH_LAG);
        assert_eq!(throttle(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn a_small_pulse_is_always_published_and_a_large_one_when_its_time_is_up() {
        let large = SMALL_PULSE_ENTRIES + 1;
        assert!(publish_due(SMALL_PULSE_ENTRIES, Duration::ZERO, MS * 30));
        assert!(!publish_due(large, MS * 29, MS * 30));
        assert!(publish_due(large, MS * 30, MS * 30));
        assert!(publish_due(large, MS * 31, MS * 30));
    }

    #[test]
    fn an_idle_writer_waits_out_the_rest_of_the_throttle() {
        assert_eq!(publish_wait(MS * 30, MS * 12), MS * 18);
        assert_eq!(publish_wait(MS * 30, MS * 40), Duration::ZERO);
    }
}
