//! Health classification: a pure function from what a /healthz probe saw to
//! green, degraded or red.

use std::time::Duration;

use serde::Serialize;

/// Service health, worst last.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Green,
    Degraded,
    Red,
}

impl Health {
    /// Every state, in state-set order.
    pub const ALL: [Health; 3] = [Health::Green, Health::Degraded, Health::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Health::Green => "green",
            Health::Degraded => "degraded",
            Health::Red => "red",
        }
    }
}

/// What the probe saw.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeOutcome<'a> {
    /// An HTTP answer arrived.
    Answered {
        status: u16,
        body: &'a [u8],
        elapsed: Duration,
    },
    /// No answer within the timeout.
    TimedOut(Duration),
    /// The connection failed (refused, reset, TLS error, DNS).
    Failed(&'a str),
}

/// How to read a body.
#[derive(Debug, Clone)]
pub struct Rules<'a> {
    pub status_field: &'a str,
    pub degraded_values: &'a [String],
    pub commit_field: &'a str,
    pub degraded_after: Duration,
}

/// The verdict, the reason when not green, and the commit the body reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub health: Health,
    pub reason: Option<String>,
    pub commit: Option<String>,
}

/// Non-2xx, timeout and connection failure are red; a 2xx whose body's status
/// field says degraded (or that answered slower than the threshold) is
/// degraded; anything else is green.
pub fn classify(outcome: &ProbeOutcome<'_>, rules: &Rules<'_>) -> Verdict {
    let (status, body, elapsed) = match outcome {
        ProbeOutcome::TimedOut(after) => {
            return red(format!("timed out after {}", seconds(*after)), None)
        }
        ProbeOutcome::Failed(e) => return red(e.to_string(), None),
        ProbeOutcome::Answered {
            status,
            body,
            elapsed,
        } => (*status, *body, *elapsed),
    };
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| -> Option<String> {
        let v = json.as_ref()?.get(name)?;
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Bool(b) => Some(b.to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let commit = field(rules.commit_field).filter(|c| !c.is_empty() && c.len() <= 64);
    if !(200..300).contains(&status) {
        return red(format!("HTTP {status}"), commit);
    }
    if let Some(s) = field(rules.status_field) {
        if rules
            .degraded_values
            .iter()
            .any(|d| d.eq_ignore_ascii_case(&s))
        {
            return Verdict {
                health: Health::Degraded,
                reason: Some(format!("reports {}: {s}", rules.status_field)),
                commit,
            };
        }
    }
    if elapsed > rules.degraded_after {
        return Verdict {
            health: Health::Degraded,
            reason: Some(format!(
                "slow: answered in {:.1} s (threshold {:.1} s)",
                elapsed.as_secs_f64(),
                rules.degraded_after.as_secs_f64()
            )),
            commit,
        };
    }
    Verdict {
        health: Health::Green,
        reason: None,
        commit,
    }
}

/// A duration as an operator reads it: "5 s", "1.5 s", "250 ms".
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn red(reason: String, commit: Option<String>) -> Verdict {
    Verdict {
        health: Health::Red,
        reason: Some(reason),
        commit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(values: &[String]) -> Rules<'_> {
        Rules {
            status_field: "status",
            degraded_values: values,
            commit_field: "commit",
            degraded_after: Duration::from_secs(2),
        }
    }

    #[test]
    fn classification_table() {
        let values = vec!["degraded".to_string()];
        let r = rules(&values);
        let fast = Duration::from_millis(10);
        let cases: Vec<(ProbeOutcome, Health, Option<&str>)> = vec![
            (
                ProbeOutcome::Answered {
                    status: 200,
                    body: b"ok",
                    elapsed: fast,
                },
                Health::Green,
                None,
            ),
            (
                ProbeOutcome::Answered {
                    status: 204,
                    body: b"",
                    elapsed: fast,
                },
                Health::Green,
                None,
            ),
            (
                ProbeOutcome::Answered {
                    status: 200,
                    body: br#"{"status":"ok","commit":"abc123"}"#,
                    elapsed: fast,
                },
                Health::Green,
                Some("abc123"),
            ),
            (
                ProbeOutcome::Answered {
                    status: 200,
                    body: br#"{"status":"DEGRADED"}"#,
                    elapsed: fast,
                },
                Health::Degraded,
                None,
            ),
            (
                ProbeOutcome::Answered {
                    status: 200,
                    body: br#"{"status":"ok"}"#,
                    elapsed: Duration::from_secs(3),
                },
                Health::Degraded,
                None,
            ),
            (
                ProbeOutcome::Answered {
                    status: 500,
                    body: br#"{"status":"ok","commit":"def"}"#,
                    elapsed: fast,
                },
                Health::Red,
                Some("def"),
            ),
            (
                ProbeOutcome::Answered {
                    status: 301,
                    body: b"",
                    elapsed: fast,
                },
                Health::Red,
                None,
            ),
            (
                ProbeOutcome::Answered {
                    status: 404,
                    body: br#"{"status":"degraded"}"#,
                    elapsed: fast,
                },
                Health::Red,
                None,
            ),
            (
                ProbeOutcome::TimedOut(Duration::from_secs(5)),
                Health::Red,
                None,
            ),
            (
                ProbeOutcome::Failed("connection refused"),
                Health::Red,
                None,
            ),
        ];
        for (outcome, want, commit) in cases {
            let v = classify(&outcome, &r);
            assert_eq!(v.health, want, "{outcome:?}");
            assert_eq!(v.commit.as_deref(), commit, "{outcome:?}");
            assert_eq!(v.reason.is_none(), want == Health::Green, "{outcome:?}");
        }
    }

    #[test]
    fn status_field_and_values_are_configurable() {
        let values = vec!["yellow".to_string()];
        let mut r = rules(&values);
        r.status_field = "state";
        let body = br#"{"state":"yellow","status":"degraded"}"#;
        let out = ProbeOutcome::Answered {
            status: 200,
            body,
            elapsed: Duration::ZERO,
        };
        assert_eq!(classify(&out, &r).health, Health::Degraded);
        let body = br#"{"state":"green","status":"degraded"}"#;
        let out = ProbeOutcome::Answered {
            status: 200,
            body,
            elapsed: Duration::ZERO,
        };
        assert_eq!(classify(&out, &r).health, Health::Green);
    }

    #[test]
    fn boolean_and_numeric_status_fields_compare_as_text() {
        let values = vec!["false".to_string(), "0".to_string()];
        let mut r = rules(&values);
        r.status_field = "healthy";
        let answer = |body: &'static [u8]| ProbeOutcome::Answered {
            status: 200,
            body,
            elapsed: Duration::ZERO,
        };
        for (body, want) in [
            (&br#"{"healthy":false}"#[..], Health::Degraded),
            (br#"{"healthy":true}"#, Health::Green),
            (br#"{"healthy":0}"#, Health::Degraded),
            (br#"{"healthy":1}"#, Health::Green),
            (br#"{"healthy":null}"#, Health::Green),
        ] {
            let v = classify(&answer(body), &r);
            assert_eq!(v.health, want, "{}", String::from_utf8_lossy(body));
        }
        let v = classify(&answer(br#"{"healthy":false}"#), &r);
        assert_eq!(v.reason.as_deref(), Some("reports healthy: false"));
    }

    #[test]
    fn commits_are_kept_only_when_plausible() {
        let values = vec![];
        let r = rules(&values);
        let commit = |c: &str| {
            let body = serde_json::json!({ "commit": c }).to_string();
            let out = ProbeOutcome::Answered {
                status: 200,
                body: body.as_bytes(),
                elapsed: Duration::ZERO,
            };
            classify(&out, &r).commit
        };
        assert_eq!(commit(""), None, "empty");
        let sha256 = "a".repeat(64);
        assert_eq!(commit(&sha256), Some(sha256.clone()), "64 characters");
        assert_eq!(commit(&"a".repeat(65)), None, "over 64 characters");
    }

    #[test]
    fn slowness_threshold_is_exclusive() {
        let values = vec![];
        let r = rules(&values);
        let at = ProbeOutcome::Answered {
            status: 200,
            body: b"",
            elapsed: Duration::from_secs(2),
        };
        assert_eq!(classify(&at, &r).health, Health::Green);
    }

    #[test]
    fn durations_read_in_milliseconds_below_a_second_and_whole_seconds_when_whole() {
        let read = |ms: u64| seconds(Duration::from_millis(ms));
        assert_eq!(read(999), "999 ms");
        assert_eq!(read(1000), "1 s");
        assert_eq!(read(1500), "1.5 s");
        assert_eq!(read(2000), "2 s");
    }
}
