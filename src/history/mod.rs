//! History: what changed and when, as data. After every source run and
//! every pushed change, the historian (`app::historian`, with
//! `app::observe`) compares what the fleet looks like now with what it
//! looked like before and records each difference as an event: a service's
//! health state or commit, a certificate's expiry (a rotation), a CI slot's
//! holder, a drift flag, a source going down or up, a host's doctor status,
//! a box's commit and each box boot. Events are committed to the store like
//! a push, before the in-memory view that the metrics, the page and the JSON
//! read is updated; `/api/v1/events` reads them back.
//!
//! The in-memory view keeps what the views need without a query: when each
//! subject's current value began, how many times it changed (from the
//! store's never-pruned counts, so the counters survive restarts and
//! pruning), each service's health transitions over the availability window,
//! and the newest events of each environment.

pub mod api;
pub mod store;
mod timeline;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

pub use timeline::{Availability, Timeline};

/// The longest availability window: transitions older than this (but the
/// one in force at its start) are not kept in memory.
pub const WINDOW_SECONDS: f64 = 30.0 * 86400.0;
/// Newest events kept in memory per environment, for the page.
pub const RECENT_PER_STACK: usize = 12;

/// What changed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A service's health state (green, degraded, red), with the reason.
    Health,
    /// A service's commit: a deploy.
    Deploy,
    /// A certificate's leaf expiry: a rotation.
    CertRotation,
    /// A CI slot's holder: a run id, or `free`.
    Slot,
    /// A drift flag: `drifted` or `agrees`.
    Drift,
    /// A source: `up` or `down`, with the error.
    Source,
    /// A host's doctor status: ok, warn or fail.
    Doctor,
    /// A box's commit, from its heartbeat.
    BoxDeploy,
    /// A box booted (one event per boot).
    Boot,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Health,
        Kind::Deploy,
        Kind::CertRotation,
        Kind::Slot,
        Kind::Drift,
        Kind::Source,
        Kind::Doctor,
        Kind::BoxDeploy,
        Kind::Boot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Health => "health",
            Kind::Deploy => "deploy",
            Kind::CertRotation => "cert_rotation",
            Kind::Slot => "slot",
            Kind::Drift => "drift",
            Kind::Source => "source",
            Kind::Doctor => "doctor",
            Kind::BoxDeploy => "box_deploy",
            Kind::Boot => "boot",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Its place in the store (0 until committed); newer events have larger ids.
    pub id: i64,
    /// When it was noticed (a boot: when the box booted), Unix seconds.
    pub at: f64,
    /// The environment; empty for a source.
    pub stack: String,
    pub kind: Kind,
    /// What changed: a component, endpoint, box, host, drift kind, source, or
    /// `slot`.
    pub subject: String,
    /// The value before; `None` when the subject was first seen.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Why, in words (a health reason, a run's title, a source's error).
    pub detail: Option<String>,
    /// The subject's changes so far, this one included (first sightings do
    /// not count): kept with the event, so the counters survive restarts and
    /// pruning (each subject's newest event is never pruned).
    #[serde(skip)]
    pub changes: u64,
}

impl Event {
    /// Whether it counts as a change (a first sighting does not; a boot does).
    pub fn is_change(&self) -> bool {
        self.from.is_some() || self.kind == Kind::Boot
    }
}

/// A subject: what an event is about.
pub type Key = (Kind, String, String);

/// One subject's value as observed now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub value: Option<String>,
    /// Why, in words; stored with the event when the value changes.
    pub detail: Option<String>,
    /// Boot times, for `Kind::Boot`.
    pub boots: Vec<f64>,
}

/// What the views read: kept current by the historian. Shared by
/// environment, so publishing a new view after a sweep copies only the
/// environments whose subjects changed.
#[derive(Debug, Clone, Default)]
pub struct HistoryView {
    /// Whether history is kept (it is with a store).
    pub active: bool,
    /// By environment (`""`: the sources).
    pub stacks: HashMap<Arc<str>, Arc<StackHistory>>,
}

/// One environment's history, as the views need it.
#[derive(Debug, Clone, Default)]
pub struct StackHistory {
    pub subjects: Vec<Subject>,
    /// Each service's health transitions, by component.
    pub health: Vec<(Arc<str>, Arc<Timeline>)>,
    /// The newest events, newest first.
    pub recent: VecDeque<Arc<Event>>,
}

/// One subject of an environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub kind: Kind,
    pub name: Arc<str>,
    /// When its current value began.
    pub since: f64,
    /// Its changes (not counting its first sighting).
    pub changes: u64,
}

impl StackHistory {
    fn subject(&mut self, kind: Kind, name: &str) -> &mut Subject {
        let i = match self
            .subjects
            .iter()
            .position(|s| s.kind == kind && *s.name == *name)
        {
            Some(i) => i,
            None => {
                self.subjects.push(Subject {
                    kind,
                    name: Arc::from(name),
                    since: f64::NAN,
                    changes: 0,
                });
                self.subjects.len() - 1
            }
        };
        &mut self.subjects[i]
    }

    fn timeline(&mut self, component: &str) -> &mut Timeline {
        let i = match self.health.iter().position(|(c, _)| **c == *component) {
            Some(i) => i,
            None => {
                self.health.push((Arc::from(component), Arc::default()));
                self.health.len() - 1
            }
        };
        Arc::make_mut(&mut self.health[i].1)
    }
}

impl HistoryView {
    fn stack_mut(&mut self, stack: &str) -> &mut StackHistory {
        if !self.stacks.contains_key(stack) {
            self.stacks.insert(Arc::from(stack), Arc::default());
        }
        // Present: inserted above if it was not.
        Arc::make_mut(self.stacks.get_mut(stack).expect("inserted"))
    }

    /// Builds the view from the store's contents at start-up.
    pub fn load(loaded: store::Loaded) -> HistoryView {
        let mut v = HistoryView {
            active: true,
            ..HistoryView::default()
        };
        for ((kind, stack, subject), at, _) in &loaded.latest {
            if *kind != Kind::Boot {
                v.stack_mut(stack).subject(*kind, subject).since = *at;
            }
        }
        for ((kind, stack, subject), n) in &loaded.changes {
            v.stack_mut(stack).subject(*kind, subject).changes = *n;
        }
        for ((stack, component), mut t) in loaded.health {
            t.settle();
            *v.stack_mut(&stack).timeline(&component) = t;
        }
        for e in loaded.recent {
            let st = v.stack_mut(&e.stack);
            st.recent.push_back(Arc::new(e));
        }
        v
    }

    /// Applies committed events (oldest first), keeping them as the
    /// environments' recent changes.
    pub fn apply(&mut self, events: Vec<Event>, now: f64) {
        for e in events {
            let st = self.stack_mut(&e.stack);
            let subject = st.subject(e.kind, &e.subject);
            if e.kind != Kind::Boot {
                subject.since = e.at;
            }
            if e.is_change() {
                subject.changes += 1;
            }
            if e.kind == Kind::Health {
                let t = st.timeline(&e.subject);
                t.push(e.at, e.to.as_deref());
                t.forget_before(now - WINDOW_SECONDS);
                t.settle_when_full();
            }
            st.recent.push_front(Arc::new(e));
            st.recent.truncate(RECENT_PER_STACK);
        }
    }

    fn find(&self, kind: Kind, stack: &str, subject: &str) -> Option<&Subject> {
        self.stacks
            .get(stack)?
            .subjects
            .iter()
            .find(|s| s.kind == kind && *s.name == *subject)
    }

    /// When `subject`'s current value of `kind` on `stack` began.
    pub fn since(&self, kind: Kind, stack: &str, subject: &str) -> Option<f64> {
        self.find(kind, stack, subject)
            .map(|s| s.since)
            .filter(|t| !t.is_nan())
    }

    /// How many times `subject`'s value of `kind` on `stack` changed.
    pub fn changes(&self, kind: Kind, stack: &str, subject: &str) -> u64 {
        self.find(kind, stack, subject).map_or(0, |s| s.changes)
    }

    /// A service's health transitions.
    pub fn health_of(&self, stack: &str, component: &str) -> Option<&Timeline> {
        self.stacks
            .get(stack)?
            .health
            .iter()
            .find(|(c, _)| **c == *component)
            .map(|(_, t)| &**t)
    }

    /// The newest events of `stack`, newest first.
    pub fn recent(&self, stack: &str) -> impl Iterator<Item = &Arc<Event>> {
        self.stacks
            .get(stack)
            .into_iter()
            .flat_map(|s| s.recent.iter())
    }
}

/// The values last recorded, by subject, for comparing the next observation
/// against; `Boot` holds the newest boot time.
pub type Recorded = HashMap<Key, Option<String>>;

/// The events that turn `before` into `now`, noticed at `at`. A subject
/// missing from `now` (its source has not run, or its facts went stale, or
/// it left the inventory) is not an event: its last value stands.
pub fn diff(before: &Recorded, now: &BTreeMap<Key, Observed>, at: f64) -> Vec<Event> {
    let mut out = Vec::new();
    for (key, seen) in now {
        let (kind, stack, subject) = key;
        let prev = before.get(key);
        if *kind == Kind::Boot {
            // One event per boot newer than the newest recorded.
            let last: f64 = prev
                .and_then(|p| p.as_deref())
                .and_then(|p| p.parse().ok())
                .unwrap_or(f64::NEG_INFINITY);
            for boot in seen.boots.iter().filter(|b| **b > last) {
                out.push(Event {
                    id: 0,
                    at: *boot,
                    stack: stack.clone(),
                    kind: Kind::Boot,
                    subject: subject.clone(),
                    from: None,
                    to: Some(fmt_time(*boot)),
                    detail: seen.detail.clone(),
                    changes: 0,
                });
            }
            continue;
        }
        if prev.is_some_and(|p| *p == seen.value) {
            continue;
        }
        out.push(Event {
            id: 0,
            at,
            stack: stack.clone(),
            kind: *kind,
            subject: subject.clone(),
            from: prev.cloned().flatten(),
            to: seen.value.clone(),
            detail: seen.detail.clone(),
            changes: 0,
        });
    }
    out.sort_by(|a, b| a.at.total_cmp(&b.at));
    out
}

/// Gives each event the count of its subject's changes it brings the
/// subject to, from `view`'s counts.
pub fn number(events: &mut [Event], view: &HistoryView) {
    let mut counts: HashMap<Key, u64> = HashMap::new();
    for e in events.iter_mut() {
        let key = (e.kind, e.stack.clone(), e.subject.clone());
        let n = counts
            .entry(key)
            .or_insert_with(|| view.changes(e.kind, &e.stack, &e.subject));
        if e.is_change() {
            *n += 1;
        }
        e.changes = *n;
    }
}

/// Applies `events` to the recorded values.
pub fn record(recorded: &mut Recorded, events: &[Event]) {
    for e in events {
        let key = (e.kind, e.stack.clone(), e.subject.clone());
        let value = match e.kind {
            Kind::Boot => Some(e.at.to_string()),
            _ => e.to.clone(),
        };
        recorded.insert(key, value);
    }
}

/// A change in words, as the page and the terminal show it:
/// "broker: green → red (HTTP 503)", "broker deployed 9b1d0aa (was 4f2c9e1)".
pub fn words(
    kind: Kind,
    subject: &str,
    from: Option<&str>,
    to: Option<&str>,
    detail: Option<&str>,
) -> String {
    let to_s = to.unwrap_or("unknown");
    let why = detail.map(|d| format!(" ({d})")).unwrap_or_default();
    let was = from.map(|f| format!(" (was {f})")).unwrap_or_default();
    match kind {
        Kind::Health => match from {
            Some(f) => format!("{subject}: {f} → {to_s}{why}"),
            None => format!("{subject}: first seen {to_s}{why}"),
        },
        Kind::Deploy => match from {
            Some(_) => format!("{subject} deployed {to_s}{was}"),
            None => format!("{subject} first seen on {to_s}"),
        },
        Kind::BoxDeploy => match from {
            Some(_) => format!("box {subject} deployed {to_s}{was}"),
            None => format!("box {subject} first seen on {to_s}"),
        },
        Kind::CertRotation => {
            let day = |t: &str| t.get(..10).unwrap_or(t).to_string();
            match from {
                Some(f) => format!(
                    "certificate of {subject} rotated: expires {} (was {})",
                    day(to_s),
                    day(f)
                ),
                None => format!("certificate of {subject} first seen, expires {}", day(to_s)),
            }
        }
        Kind::Slot => match (from, to_s) {
            (Some(f), "free") => format!("CI slot released by run {f}"),
            (_, run) => format!("CI slot taken by run {run}{why}"),
        },
        Kind::Drift => match to_s {
            "drifted" => format!("{} drift raised{why}", subject.replace('_', " ")),
            _ => format!("{} drift cleared", subject.replace('_', " ")),
        },
        Kind::Source => match from {
            Some(_) => format!("source {subject} {to_s}{why}"),
            None => format!("source {subject} first run: {to_s}{why}"),
        },
        Kind::Doctor => match from {
            Some(f) => format!("doctor on {subject}: {f} → {to_s}{why}"),
            None => format!("doctor on {subject}: first seen {to_s}{why}"),
        },
        Kind::Boot => format!("box {subject} booted{why}"),
    }
}

/// Unix seconds as RFC 3339 UTC, to the second.
pub fn fmt_time(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
