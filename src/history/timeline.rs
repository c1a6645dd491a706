//! A service's health over time, from its transitions: availability over a
//! window, and the hourly strip the page draws.

use crate::health::Health;

/// Health transitions, oldest first: from each point's time on, the state
/// it names held until the next point. Times are whole Unix seconds (u32,
/// good until 2106), so a point takes 8 bytes: 30 days of hourly flaps of a
/// service are under 6 KiB.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    points: Vec<(u32, Health)>,
}

fn secs(t: f64) -> u32 {
    t.clamp(0.0, f64::from(u32::MAX)) as u32
}

pub use crate::board::Availability;

fn parse(state: Option<&str>) -> Option<Health> {
    Health::ALL.into_iter().find(|h| Some(h.as_str()) == state)
}

impl Timeline {
    /// Adds a transition at `at` to `state`. A time older than the last
    /// transition's (the wall clock was set back) is taken as the last's, so
    /// the transitions stay in order and every figure stays within bounds.
    pub fn push(&mut self, at: f64, state: Option<&str>) {
        let Some(h) = parse(state) else { return };
        let last = self.points.last().copied();
        if last.is_some_and(|(_, s)| s == h) {
            return;
        }
        let at = secs(at).max(last.map_or(0, |(t, _)| t));
        self.points.push((at, h));
    }

    /// Drops transitions before `t`, keeping the one in force at `t`.
    pub fn forget_before(&mut self, t: f64) {
        let keep_from = self.points.partition_point(|(at, _)| f64::from(*at) <= t);
        if keep_from > 1 {
            self.points.drain(..keep_from - 1);
        }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The state at `t`, if known.
    pub fn at(&self, t: f64) -> Option<Health> {
        let i = self.points.partition_point(|(at, _)| f64::from(*at) <= t);
        (i > 0).then(|| self.points[i - 1].1)
    }

    /// Seconds spent in each state (green, degraded, red) in `[from, to)`.
    pub fn durations(&self, from: f64, to: f64) -> [f64; 3] {
        let mut spent = [0.0; 3];
        // Only the points that matter: the one in force at `from`, then
        // those before `to`.
        let first = self
            .points
            .partition_point(|(at, _)| f64::from(*at) <= from)
            .saturating_sub(1);
        for (i, (at, h)) in self.points.iter().enumerate().skip(first) {
            if f64::from(*at) >= to {
                break;
            }
            let end = self
                .points
                .get(i + 1)
                .map_or(to, |(next, _)| f64::from(*next));
            let (a, b) = (f64::from(*at).max(from), end.min(to));
            if b > a {
                spent[*h as usize] += b - a;
            }
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
