//! Reading a mutation-testing result: cargo-mutants' `outcomes.json`, or
//! plain JSON counts.
//!
//! Pure. Both shapes share the top-level keys `caught`, `missed`, `timeout`
//! and `unviable` (cargo-mutants writes them next to its `outcomes` list),
//! so counts are taken from those keys when present and otherwise counted
//! from `outcomes` (the baseline scenario is not a mutant). Unknown keys are
//! ignored: a newer cargo-mutants must still be able to report.

use serde::Deserialize;

/// Mutants by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MutantCounts {
    pub caught: u64,
    pub missed: u64,
    pub timeout: u64,
    pub unviable: u64,
}

/// Why a result could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MutantsError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error(
        "expected cargo-mutants' outcomes.json or counts {{\"caught\", \"missed\", \"timeout\", \"unviable\"}}, found neither"
    )]
    NoCounts,
    #[error("outcomes[{index}]: unknown summary {summary:?}")]
    UnknownSummary { index: usize, summary: String },
}

#[derive(Deserialize)]
struct Document {
    caught: Option<u64>,
    missed: Option<u64>,
    timeout: Option<u64>,
    unviable: Option<u64>,
    outcomes: Option<Vec<Outcome>>,
}

#[derive(Deserialize)]
struct Outcome {
    #[serde(default)]
    scenario: serde_json::Value,
    summary: String,
}

/// Reads counts from `outcomes.json` or a counts object.
pub fn parse(body: &[u8]) -> Result<MutantCounts, MutantsError> {
    let doc: Document =
        serde_json::from_slice(body).map_err(|e| MutantsError::Json(e.to_string()))?;
    if doc.caught.is_some()
        || doc.missed.is_some()
        || doc.timeout.is_some()
        || doc.unviable.is_some()
    {
        return Ok(MutantCounts {
            caught: doc.caught.unwrap_or(0),
            missed: doc.missed.unwrap_or(0),
            timeout: doc.timeout.unwrap_or(0),
            unviable: doc.unviable.unwrap_or(0),
        });
    }
    let outcomes = doc.outcomes.ok_or(MutantsError::NoCounts)?;
    let mut counts = MutantCounts::default();
    for (index, o) in outcomes.iter().enumerate() {
        if o.scenario == "Baseline" {
            continue;
        }
        match o.summary.as_str() {
            "CaughtMutant" => counts.caught += 1,
            "MissedMutant" => counts.missed += 1,
            "Timeout" => counts.timeout += 1,
            "Unviable" => counts.unviable += 1,
            // A mutant whose tests succeeded or failed outside the test
            // phase is neither caught nor missed; cargo-mutants counts them
            // apart too.
            "Success" | "Failure" => {}
            other => {
                return Err(MutantsError::UnknownSummary {
                    index,
                    summary: other.to_string(),
                })
            }
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_counts() {
        let c = parse(br#"{"caught": 40, "missed": 2, "unviable": 5}"#).unwrap();
        assert_eq!(
            c,
            MutantCounts {
                caught: 40,
                missed: 2,
                timeout: 0,
                unviable: 5
            }
        );
    }

    #[test]
    fn any_one_count_alone_is_a_counts_object() {
        for (field, want) in [
            ("caught", [7, 0, 0, 0]),
            ("missed", [0, 7, 0, 0]),
            ("timeout", [0, 0, 7, 0]),
            ("unviable", [0, 0, 0, 7]),
        ] {
            let c = parse(format!(r#"{{"{field}": 7}}"#).as_bytes()).unwrap();
            assert_eq!([c.caught, c.missed, c.timeout, c.unviable], want, "{field}");
        }
    }

    #[test]
    fn outcomes_json_without_totals_is_counted_skipping_the_baseline() {
        let body = br#"{"outcomes": [
            {"scenario": "Baseline", "summary": "Success"},
            {"scenario": {"Mutant": {"name": "a"}}, "summary": "CaughtMutant"},
            {"scenario": {"Mutant": {"name": "b"}}, "summary": "CaughtMutant"},
            {"scenario": {"Mutant": {"name": "c"}}, "summary": "MissedMutant"},
            {"scenario": {"Mutant": {"name": "d"}}, "summary": "Timeout"},
            {"scenario": {"Mutant": {"name": "e"}}, "summary": "Unviable"}
        ]}"#;
        assert_eq!(
            parse(body).unwrap(),
            MutantCounts {
                caught: 2,
                missed: 1,
                timeout: 1,
                unviable: 1
            }
        );
    }

    #[test]
    fn outcomes_json_totals_win_and_unknown_keys_are_ignored() {
        let body = br#"{"outcomes": [], "total_mutants": 3, "caught": 2, "missed": 1,
            "timeout": 0, "unviable": 0, "success": 0, "failure": 0, "future_field": true}"#;
        assert_eq!(parse(body).unwrap().caught, 2);
    }

    #[test]
    fn bad_input_says_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{", "malformed JSON"),
            (b"[]", "malformed JSON"),
            (br#"{"caught": -1}"#, "malformed JSON"),
            (br#"{"tests": 3}"#, "found neither"),
            (
                br#"{"outcomes": [{"scenario": {}, "summary": "Vanished"}]}"#,
                "outcomes[0]: unknown summary \"Vanished\"",
            ),
        ];
        for (body, want) in cases {
            let got = parse(body).unwrap_err().to_string();
            assert!(got.contains(want), "got {got:?}, want {want:?}");
        }
    }
}
