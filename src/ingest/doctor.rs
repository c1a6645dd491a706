//! Reading a host's doctor snapshot: any JSON object with a list of
//! `checks`, each with a `status` of ok, warn or fail.
//!
//! Pure. The document itself is stored whole; this only checks its shape and
//! counts the checks by status. Other fields, in the document and in each
//! check, are the doctor's business and are kept as they are.

use serde_json::Value;

/// Checks by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DoctorSummary {
    pub ok: u64,
    pub warn: u64,
    pub fail: u64,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DoctorError {
    #[error("malformed JSON: {0}")]
    Json(String),
    #[error("expected a JSON object with a \"checks\" list, found {0}")]
    NotAnObject(&'static str),
    #[error("\"checks\" is missing or not a list")]
    NoChecks,
    #[error("checks[{0}] is not an object")]
    CheckNotAnObject(usize),
    #[error("checks[{0}].status is missing")]
    NoStatus(usize),
    #[error("checks[{index}].status: {status:?} is not one of ok, warn, fail")]
    UnknownStatus { index: usize, status: String },
}

/// Validates a doctor snapshot and counts its checks.
pub fn summarize(body: &[u8]) -> Result<DoctorSummary, DoctorError> {
    let doc: Value = serde_json::from_slice(body).map_err(|e| DoctorError::Json(e.to_string()))?;
    let obj = match &doc {
        Value::Object(o) => o,
        Value::Array(_) => return Err(DoctorError::NotAnObject("a list")),
        Value::String(_) => return Err(DoctorError::NotAnObject("a string")),
        Value::Number(_) => return Err(DoctorError::NotAnObject("a number")),
        Value::Bool(_) => return Err(DoctorError::NotAnObject("a boolean")),
        Value::Null => return Err(DoctorError::NotAnObject("null")),
    };
    let checks = obj
        .get("checks")
        .and_then(Value::as_array)
        .ok_or(DoctorError::NoChecks)?;
    let mut s = DoctorSummary::default();
    for (index, check) in checks.iter().enumerate() {
        let check = check
            .as_object()
            .ok_or(DoctorError::CheckNotAnObject(index))?;
        let status = check
            .get("status")
            .and_then(Value::as_str)
            .ok_or(DoctorError::NoStatus(index))?;
        match status.to_ascii_lowercase().as_str() {
            "ok" | "pass" | "passed" => s.ok += 1,
            "warn" | "warning" => s.warn += 1,
            "fail" | "failed" | "error" | "critical" => s.fail += 1,
            _ => {
                return Err(DoctorError::UnknownStatus {
                    index,
                    status: status.to_string(),
                })
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_checks_by_status_and_keeps_other_fields_out_of_the_way() {
        let body = br#"{"host": "a", "version": "1.2", "checks": [
            {"name": "disk", "status": "ok", "detail": {"free": "40%"}},
            {"name": "units", "status": "WARN"},
            {"name": "certs", "status": "fail"},
            {"name": "ntp", "status": "passed"},
            {"name": "logs", "status": "error"}
        ]}"#;
        assert_eq!(
            summarize(body).unwrap(),
            DoctorSummary {
                ok: 2,
                warn: 1,
                fail: 2
            }
        );
        assert_eq!(
            summarize(br#"{"checks": []}"#).unwrap(),
            DoctorSummary::default()
        );
    }

    #[test]
    fn bad_snapshots_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"checks\": [", "malformed JSON"),
            (b"[1]", "found a list"),
            (b"null", "found null"),
            (b"{}", "\"checks\" is missing"),
            (b"{\"checks\": {}}", "not a list"),
            (b"{\"checks\": [3]}", "checks[0] is not an object"),
            (
                b"{\"checks\": [{\"status\": \"ok\"}, {}]}",
                "checks[1].status is missing",
            ),
            (
                b"{\"checks\": [{\"status\": \"maybe\"}]}",
                "checks[0].status: \"maybe\" is not one of ok, warn, fail",
            ),
        ];
        for (body, want) in cases {
            let got = summarize(body).unwrap_err().to_string();
            assert!(got.contains(want), "got {got:?}, want {want:?}");
        }
    }
}
