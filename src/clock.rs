//! Wall-clock time as Prometheus writes it: seconds since the Unix epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as Prometheus timestamps are written.
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Now, in Unix seconds.
pub fn now_unix() -> f64 {
    unix_seconds(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_seconds_since_the_epoch_and_none_before_it() {
        let t = UNIX_EPOCH + Duration::from_millis(1_750_000_000_250);
        assert_eq!(unix_seconds(t), 1_750_000_000.25);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0.0);
        let (before, now, after) = (
            unix_seconds(SystemTime::now()),
            now_unix(),
            unix_seconds(SystemTime::now()),
        );
        assert!(
            before <= now && now <= after && before > 1.7e9,
            "{before} {now} {after}"
        );
    }
}
