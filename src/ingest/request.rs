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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn refusal<T: std::fmt::Debug>(r: Result<T, Refusal>) -> (u16, String) {
        let e = r.unwrap_err();
        (e.status.as_u16(), e.message)
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn label_text_is_1_to_128_printable_ascii_characters() {
        let longest = "a".repeat(MAX_LABEL_TEXT);
        let too_long = "a".repeat(MAX_LABEL_TEXT + 1);
        for ok in ["v", "4f2c9e1", "1.2.3-rc.1+build", longest.as_str()] {
            assert!(is_label_text(ok), "{ok}");
        }
        for bad in ["", "a b", "tab\t", "ünï", too_long.as_str()] {
            assert!(!is_label_text(bad), "{bad}");
        }
        assert_eq!(optional_label_text("commit", None).unwrap(), None);
        assert_eq!(
            optional_label_text("commit", Some("4f2c9e1".into())).unwrap(),
            Some("4f2c9e1".into())
        );
        assert_eq!(
            refusal(optional_label_text("commit", Some("a b".into()))),
            (
                400,
                "commit: expected 1 to 128 printable ASCII characters".into()
            )
        );
    }

    #[test]
    fn the_media_type_is_read_lower_case_without_parameters() {
        let of = |v: &[u8]| media_type(&headers(&[("content-type", v)]));
        assert_eq!(
            of(b"Application/JSON; charset=utf-8"),
            Some("application/json".into())
        );
        assert_eq!(of(b" text/xml "), Some("text/xml".into()));
        assert_eq!(of(b""), None);
        assert_eq!(of(b"; charset=utf-8"), None);
        assert_eq!(of(b"application/\xffjson"), None);
        assert_eq!(media_type(&HeaderMap::new()), None);
        for json in ["application/json", "application/vnd.fleet+json"] {
            assert!(is_json(json), "{json}");
        }
        for not in [
            "text/json",
            "application/jsonl",
            "text/x+json",
            "application/xml",
        ] {
            assert!(!is_json(not), "{not}");
        }
        for xml in ["application/xml", "text/xml", "application/junit+xml"] {
            assert!(is_xml(xml), "{xml}");
        }
        for not in [
            "text/html",
            "application/xmlx",
            "text/x+xml",
            "application/json",
        ] {
            assert!(!is_xml(not), "{not}");
        }
    }

    #[test]
    fn an_unsupported_type_is_415_naming_what_to_send() {
        let r = unsupported(Some("text/plain"), "application/json");
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            r.message,
            "Content-Type \"text/plain\" is not accepted here; send application/json"
        );
        assert_eq!(
            unsupported(None, "JSON").message,
            "Content-Type (none) is not accepted here; send JSON"
        );
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit_and_refused_past_it() {
        let none = HeaderMap::new();
        let read = |body: &'static [u8], h: HeaderMap, limit| async move {
            read_body(Body::from(body), &h, limit).await
        };
        assert_eq!(
            &read(b"12345", none.clone(), 5).await.unwrap()[..],
            b"12345"
        );
        let too_large = (413, "body larger than the limit of 4 bytes".to_string());
        assert_eq!(refusal(read(b"12345", none.clone(), 4).await), too_large);
        // A declared length past the limit is refused before reading; one
        // within it is not trusted either.
        let declared = |n: &str| headers(&[("content-length", n.as_bytes())]);
        assert_eq!(refusal(read(b"1", declared("5"), 4).await), too_large);
        assert_eq!(&read(b"1234", declared("4"), 4).await.unwrap()[..], b"1234");
        assert_eq!(refusal(read(b"12345", declared("1"), 4).await), too_large);
        assert_eq!(&read(b"12", declared("junk"), 4).await.unwrap()[..], b"12");
        // A body that fails while being read.
        let failing = Body::from_stream(futures::stream::iter([
            Ok::<_, std::io::Error>(Bytes::from_static(b"12")),
            Err(std::io::Error::other("connection reset")),
        ]));
        let (code, message) = refusal(read_body(failing, &none, 10).await);
        assert_eq!(code, 400);
        assert!(
            message.starts_with("cannot read the request body: "),
            "{message}"
        );
    }

    #[test]
    fn timestamps_are_unix_seconds_or_rfc_3339() {
        assert_eq!(timestamp("at", None).unwrap(), None);
        assert_eq!(
            timestamp("at", Some(Timestamp::Seconds(0.0))).unwrap(),
            Some(0.0)
        );
        assert_eq!(
            timestamp("at", Some(Timestamp::Seconds(1_750_000_000.5))).unwrap(),
            Some(1_750_000_000.5)
        );
        assert_eq!(
            timestamp("at", Some(Timestamp::Text("2025-06-15T15:06:40Z".into()))).unwrap(),
            Some(1_750_000_000.0)
        );
        let bad = (
            400,
            "at: expected Unix seconds or an RFC 3339 date-time".to_string(),
        );
        for s in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                refusal(timestamp("at", Some(Timestamp::Seconds(s)))),
                bad,
                "{s}"
            );
        }
        assert_eq!(
            refusal(timestamp("at", Some(Timestamp::Text("soon".into())))),
            bad
        );
    }

    #[test]
    fn json_is_parsed_or_refused_saying_where() {
        let v: serde_json::Value = parse_json(br#"{"a":1}"#).unwrap();
        assert_eq!(v["a"], 1);
        let (code, message) = refusal(parse_json::<serde_json::Value>(b"{\"a\":"));
        assert_eq!(code, 400);
        assert_eq!(
            message,
            "malformed JSON: EOF while parsing a value at line 1 column 5"
        );
        assert!(stamped(&headers(&[(COMMIT_HEADER, b"4f2c9e1")])));
        assert!(!stamped(&HeaderMap::new()));
    }
}
