//! A service's health over time, from its transitions: availability over a
//! window, and the hourly strip the page draws.

use std::sync::Arc;

use crate::health::Health;

/// Health transitions, oldest first: from each point's time on, the state
/// it names held until the next point. Times are whole Unix seconds (u32,
/// good until 2106), so a point takes 8 bytes: 30 days of hourly flaps of a
/// service are under 6 KiB.
///
/// The older points are settled in a shared slice and the newest (at most
/// [`FRESH_MAX`] once [`Timeline::settle_when_full`] is called after each
/// change) kept apart, so copying a timeline to publish it after a change
/// copies only the fresh points; forgetting moves a start index and frees
/// the forgotten points at the next settling.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    settled: Arc<[(u32, Health)]>,
    /// Points of `settled` before this one are forgotten.
    start: usize,
    fresh: Vec<(u32, Health)>,
}

/// How many fresh points a timeline gathers before it settles them.
pub const FRESH_MAX: usize = 32;

impl PartialEq for Timeline {
    fn eq(&self, other: &Timeline) -> bool {
        self.len() == other.len() && self.points().eq(other.points())
    }
}

fn secs(t: f64) -> u32 {
    t.clamp(0.0, f64::from(u32::MAX)) as u32
}

pub use crate::board::Availability;

fn parse(state: Option<&str>) -> Option<Health> {
    Health::ALL.into_iter().find(|h| Some(h.as_str()) == state)
}

impl Timeline {
    /// The settled points not forgotten.
    fn old(&self) -> &[(u32, Health)] {
        &self.settled[self.start..]
    }

    /// Every point, oldest first.
    fn points(&self) -> impl Iterator<Item = (u32, Health)> + '_ {
        self.old().iter().chain(&self.fresh).copied()
    }

    /// The `i`th point.
    fn point(&self, i: usize) -> Option<(u32, Health)> {
        let old = self.old();
        match old.get(i) {
            Some(p) => Some(*p),
            None => self.fresh.get(i - old.len()).copied(),
        }
    }

    /// How many points are at or before `t`.
    fn count_until(&self, t: f64) -> usize {
        let before = |(at, _): &(u32, Health)| f64::from(*at) <= t;
        // The fresh points all lie at or after the settled ones.
        self.old().partition_point(before) + self.fresh.partition_point(before)
    }

    /// Adds a transition at `at` to `state`. A time older than the last
    /// transition's (the wall clock was set back) is taken as the last's, so
    /// the transitions stay in order and every figure stays within bounds.
    pub fn push(&mut self, at: f64, state: Option<&str>) {
        let Some(h) = parse(state) else { return };
        let last = self.len().checked_sub(1).and_then(|i| self.point(i));
        if last.is_some_and(|(_, s)| s == h) {
            return;
        }
        let at = secs(at).max(last.map_or(0, |(t, _)| t));
        self.fresh.push((at, h));
    }

    /// Moves the fresh points into the shared part, dropping the forgotten
    /// ones.
    pub fn settle(&mut self) {
        let all: Vec<(u32, Health)> = self.points().collect();
        self.settled = all.into();
        self.start = 0;
        self.fresh = Vec::new();
    }

    /// Settles the fresh points once there are [`FRESH_MAX`] of them.
    pub fn settle_when_full(&mut self) {
        if self.fresh.len() >= FRESH_MAX {
            self.settle();
        }
    }

    /// Drops transitions before `t`, keeping the one in force at `t`.
    pub fn forget_before(&mut self, t: f64) {
        let keep_from = self.count_until(t);
        if keep_from <= 1 {
            return;
        }
        let drop = keep_from - 1;
        let old = self.old().len();
        if drop <= old {
            self.start += drop;
        } else {
            self.settled = Arc::default();
            self.start = 0;
            self.fresh.drain(..drop - old);
        }
    }

    pub fn len(&self) -> usize {
        self.old().len() + self.fresh.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The state at `t`, if known.
    pub fn at(&self, t: f64) -> Option<Health> {
        let i = self.count_until(t);
        i.checked_sub(1).and_then(|i| self.point(i)).map(|(_, h)| h)
    }

    /// Seconds spent in each state (green, degraded, red) in `[from, to)`.
    pub fn durations(&self, from: f64, to: f64) -> [f64; 3] {
        let mut spent = [0.0; 3];
        // Only the points that matter: the one in force at `from`, then
        // those before `to`.
        let first = self.count_until(from).saturating_sub(1);
        let mut points = self.points().skip(first).peekable();
        while let Some((at, h)) = points.next() {
            if f64::from(at) >= to {
                break;
            }
            let end = points.peek().map_or(to, |(next, _)| f64::from(*next));
            let (a, b) = (f64::from(at).max(from), end.min(to));
            spent[h as usize] += (b - a).max(0.0);
        }
        spent
    }

    /// Available share of `[now - window, now)`.
    pub fn availability(&self, window: f64, now: f64) -> Option<f64> {
        let [green, degraded, red] = self.durations(now - window, now);
        let known = green + degraded + red;
        (known > 0.0).then(|| (green + degraded) / known)
    }

    /// The 24-hour and 30-day availability at `now`.
    pub fn availabilities(&self, now: f64) -> Availability {
        Availability {
            day: self.availability(86400.0, now),
            month: self.availability(30.0 * 86400.0, now),
        }
    }

    /// The worst state of each of `n` slots of `width` seconds ending at
    /// `now`, oldest first; `None` where the state was not known.
    pub fn strip(&self, now: f64, n: usize, width: f64) -> Vec<Option<Health>> {
        (0..n)
            .map(|i| {
                let from = now - (n - i) as f64 * width;
                let spent = self.durations(from, from + width);
                [Health::Red, Health::Degraded, Health::Green]
                    .into_iter()
                    .find(|h| spent[*h as usize] > 0.0)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 hourly flaps, forgetting past a 100-hour window at each, the
    /// way the historian applies them.
    fn flaps(settling: bool) -> Timeline {
        let h = 3600.0;
        let mut t = Timeline::default();
        for i in 0..300 {
            let state = if i % 2 == 0 { "green" } else { "red" };
            t.push(f64::from(i) * h, Some(state));
            t.forget_before(f64::from(i) * h - 100.0 * h);
            if settling {
                t.settle_when_full();
            }
        }
        t
    }

    #[test]
    fn a_point_is_found_in_the_settled_part_or_the_fresh_one() {
        let mut t = Timeline::default();
        t.push(10.0, Some("green"));
        t.push(20.0, Some("red"));
        t.settle();
        t.push(30.0, Some("degraded"));
        t.push(40.0, Some("green"));
        assert_eq!(t.at(5.0), None);
        assert_eq!(t.at(15.0), Some(Health::Green));
        assert_eq!(t.at(25.0), Some(Health::Red));
        assert_eq!(t.at(35.0), Some(Health::Degraded));
        assert_eq!(t.at(45.0), Some(Health::Green));
        // The same state again is no new point.
        t.push(50.0, Some("green"));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn the_day_and_the_month_are_their_own_windows() {
        let day = 86400.0;
        let mut t = Timeline::default();
        t.push(0.0, Some("red"));
        t.push(25.0 * day, Some("green"));
        let a = t.availabilities(35.0 * day);
        assert_eq!(a.day, Some(1.0));
        // Red from day 5 to day 25 of the 30 days before day 35.
        assert_eq!(a.month, Some(10.0 / 30.0));
    }

    #[test]
    fn settling_changes_no_figure_and_a_copy_shares_the_settled_points() {
        let (settled, plain) = (flaps(true), flaps(false));
        assert_eq!(settled, plain);
        assert_eq!(settled.len(), 101);
        assert!(settled.fresh.len() < FRESH_MAX, "{}", settled.fresh.len());
        assert!(plain.settled.is_empty(), "nothing settles unless asked");
        let h = 3600.0;
        for now in [199.5 * h, 250.0 * h, 299.0 * h, 310.0 * h] {
            assert_eq!(
                settled.durations(now - 24.0 * h, now),
                plain.durations(now - 24.0 * h, now)
            );
            assert_eq!(settled.at(now - 30.5 * h), plain.at(now - 30.5 * h));
            assert_eq!(settled.strip(now, 24, h), plain.strip(now, 24, h));
        }
        // What was forgotten before the last settling is gone from memory.
        assert!(
            settled.settled.len() <= 101 + FRESH_MAX,
            "{}",
            settled.settled.len()
        );
        let copy = settled.clone();
        assert!(Arc::ptr_eq(&copy.settled, &settled.settled));
        // Forgetting everything but the newest state drops the shared part.
        let mut t = settled.clone();
        t.forget_before(1000.0 * h);
        assert_eq!(t.len(), 1);
        assert!(t.settled.is_empty());
        assert_eq!(t.at(1000.0 * h), Some(Health::Red));
        assert!(!t.is_empty());
        assert!(Timeline::default().is_empty());
        // An empty or backward span spends nothing.
        assert_eq!(t.durations(2000.0 * h, 2000.0 * h), [0.0; 3]);
        assert_eq!(t.durations(2000.0 * h, 1000.0 * h), [0.0; 3]);
    }
}
