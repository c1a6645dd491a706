//! The words the page and the terminal share, so both say a thing the same
//! way: ages, times, latencies, a source's state.

use super::State;

/// Whole days, hours, minutes or seconds, in words: "12 days", "1 hour".
pub fn duration_words(seconds: f64) -> String {
    let s = seconds.max(0.0);
    let (n, unit) = if s < 60.0 {
        (s, "second")
    } else if s < 3600.0 {
        (s / 60.0, "minute")
    } else if s < 86_400.0 {
        (s / 3600.0, "hour")
    } else {
        (s / 86_400.0, "day")
    };
    let n = n.floor() as u64;
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// How long ago `then` was, as seen at `now`: "just now", "5 minutes ago".
pub fn ago_words(now: f64, then: f64) -> String {
    let s = now - then;
    if s < 5.0 {
        "just now".to_string()
    } else {
        format!("{} ago", duration_words(s))
    }
}

/// A Unix time as `2026-11-23 11:30:05 UTC`.
pub fn utc(unix: f64) -> String {
    chrono::DateTime::from_timestamp(unix.floor() as i64, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| "an unreadable time".to_string())
}

/// A source's state as a word: up, down, or not run yet.
pub fn source_state(state: State) -> &'static str {
    match state {
        State::Green => "up",
        State::Red => "down",
        _ => "not run yet",
    }
}

/// A latency in whole milliseconds: "12 ms".
pub fn milliseconds(seconds: f64) -> String {
    format!("{:.0} ms", seconds * 1000.0)
}

/// Names as a sentence lists them: `a`, `a and b`, `a, b and c`.
pub fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_the_largest_whole_unit() {
        let cases = [
            (0.0, "0 seconds"),
            (1.5, "1 second"),
            (59.0, "59 seconds"),
            (60.0, "1 minute"),
            (7199.0, "1 hour"),
            (7200.0, "2 hours"),
            (86_400.0 * 12.4, "12 days"),
            (-3.0, "0 seconds"),
            (3599.0, "59 minutes"),
            (3600.0, "1 hour"),
            (86_399.0, "23 hours"),
            (86_400.0, "1 day"),
        ];
        for (s, want) in cases {
            assert_eq!(duration_words(s), want, "{s}");
        }
        assert_eq!(ago_words(100.0, 98.0), "just now");
        assert_eq!(ago_words(1000.0, 400.0), "10 minutes ago");
        assert_eq!(ago_words(100.0, 95.1), "just now");
        assert_eq!(ago_words(100.0, 95.0), "5 seconds ago");
        assert_eq!(utc(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_750_000_000.9), "2025-06-15 15:06:40 UTC");
        assert_eq!(utc(1e20), "an unreadable time");
    }

    #[test]
    fn sources_and_latencies_read_alike_everywhere() {
        assert_eq!(source_state(State::Green), "up");
        assert_eq!(source_state(State::Red), "down");
        assert_eq!(source_state(State::Unknown), "not run yet");
        assert_eq!(source_state(State::Degraded), "not run yet");
        assert_eq!(milliseconds(0.0126), "13 ms");
    }

    #[test]
    fn names_are_listed_as_a_sentence_lists_them() {
        assert_eq!(list(&[]), "");
        assert_eq!(list(&["aws"]), "aws");
        assert_eq!(list(&["aws", "dns"]), "aws and dns");
        assert_eq!(list(&["aws", "dns", "discovery"]), "aws, dns and discovery");
    }
}
