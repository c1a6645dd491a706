//! Reading a push request: its content type, its body within a size limit,
//! JSON, timestamps and label text, each refused with the right status and
//! a message that says what was expected.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;

use super::{junit, Refusal, COMMIT_HEADER, MAX_LABEL_TEXT};
use crate::api::Timestamp;

/// 1 to `MAX_LABEL_TEXT` printable ASCII characters: a commit or version.
pub(super) fn is_label_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_LABEL_TEXT && s.bytes().all(|b| b.is_ascii_graphic())
}

pub(super) fn optional_label_text(
    field: &str,
    v: Option<String>,
) -> Result<Option<String>, Refusal> {
    match v {
        Some(s) if !is_label_text(&s) => Err(Refusal::bad_request(format!(
            "{field}: expected 1 to {MAX_LABEL_TEXT} printable ASCII characters"
        ))),
        v => Ok(v),
    }
}

/// The media type of the request, lower-cased, without parameters.
pub(super) fn media_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let t = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    (!t.is_empty()).then_some(t)
}

pub(super) fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

pub(super) fn is_xml(media: &str) -> bool {
    matches!(media, "application/xml" | "text/xml")
        || (media.starts_with("application/") && media.ends_with("+xml"))
}

pub(super) fn unsupported(media: Option<&str>, expected: &str) -> Refusal {
    Refusal::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "Content-Type {} is not accepted here; send {expected}",
            media.map_or_else(|| "(none)".to_string(), |m| format!("{m:?}"))
        ),
    )
}

/// Reads the body, refusing more than `limit` bytes (without reading them).
pub(super) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, Refusal> {
    let too_large = || {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body larger than the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(Refusal::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

pub(super) fn timestamp(field: &str, t: Option<Timestamp>) -> Result<Option<f64>, Refusal> {
    let bad = || {
        Refusal::bad_request(format!(
            "{field}: expected Unix seconds or an RFC 3339 date-time"
        ))
    };
    match t {
        None => Ok(None),
        Some(Timestamp::Seconds(s)) if s.is_finite() && s >= 0.0 => Ok(Some(s)),
        Some(Timestamp::Seconds(_)) => Err(bad()),
        Some(Timestamp::Text(s)) => junit::parse_timestamp(&s).map(Some).ok_or_else(bad),
    }
}

pub(super) fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::bad_request(format!("malformed JSON: {e}")))
}

pub(super) fn stamped(headers: &HeaderMap) -> bool {
    headers.contains_key(COMMIT_HEADER)
}
