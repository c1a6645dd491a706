//! Counting a JUnit XML report: the format test runners already write.
//!
//! Pure. Every `<testcase>` anywhere in the tree counts once (so nested
//! `<testsuite>`s need no special case): with an `<error>` child it errored,
//! with a `<failure>` child it failed, with a `<skipped>` child it was
//! skipped, otherwise it passed. The report's own `tests=`/`failures=`
//! attributes are not trusted, with one exception: skipped tests a writer
//! left out of the cases but declared in the root's `tests` and `skipped`
//! (the cases missing being exactly the skipped ones missing) count skipped.
//!
//! Hostile input: a DOCTYPE is refused outright, so no entity is ever
//! declared, let alone expanded (no "billion laughs"); entity references in
//! text are never resolved; nesting is capped at `MAX_DEPTH`.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// What a report says, counted.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct JunitSummary {
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
    /// The root's `time`, else the sum of its child suites' `time`s.
    pub duration_seconds: Option<f64>,
    /// The earliest suite `timestamp`, Unix seconds.
    pub started_at: Option<f64>,
}

/// Why a report could not be counted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JunitError {
    #[error("malformed XML at byte {position}: {message}")]
    Malformed { position: u64, message: String },
    #[error("DOCTYPE declarations are not accepted in JUnit reports")]
    Doctype,
    #[error("elements nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("expected <testsuites> or <testsuite> as the root element, found <{0}>")]
    WrongRoot(String),
    #[error("no root element: the document is empty")]
    Empty,
    #[error("attribute {attribute}=\"{value}\" of <{element}> is not {expected}")]
    BadAttribute {
        element: String,
        attribute: &'static str,
        value: String,
        expected: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Passed,
    Skipped,
    Failed,
    Errored,
}

/// Counts the test cases of a JUnit XML report.
pub fn count(xml: &[u8]) -> Result<JunitSummary, JunitError> {
    well_formed_text(xml)?;
    let mut reader = Reader::from_reader(xml);
    let mut summary = JunitSummary::default();
    // Element names from the root down to the current element.
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut seen_root = false;
    // The verdict of the test case being read, and its depth.
    let mut case: Option<(usize, Verdict)> = None;
    let mut root_time: Option<f64> = None;
    let mut child_suites_time: Option<f64> = None;
    // The root's declared `tests` and `skipped`, read as whole numbers when
    // they are (a declaration is never a reason to refuse a report).
    let mut declared: (Option<u64>, Option<u64>) = (None, None);

    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| JunitError::Malformed {
            position,
            message: e.to_string(),
        })?;
        match event {
            Event::DocType(_) => return Err(JunitError::Doctype),
            Event::Start(e) | Event::Empty(e) if stack.is_empty() && seen_root => {
                return Err(JunitError::Malformed {
                    position,
                    message: format!(
                        "a second root element <{}>",
                        String::from_utf8_lossy(e.name().as_ref())
                    ),
                });
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.local_name().as_ref().to_vec();
                let depth = stack.len();
                if depth + 1 > MAX_DEPTH {
                    return Err(JunitError::TooDeep);
                }
                if depth == 0 {
                    seen_root = true;
                    if name != b"testsuites" && name != b"testsuite" {
                        return Err(JunitError::WrongRoot(
                            String::from_utf8_lossy(&name).into_owned(),
                        ));
                    }
                    root_time = seconds_attr(e, "time")?;
                    let whole = |a| {
                        raw_attr(e, a)
                            .ok()
                            .flatten()
                            .and_then(|v| v.parse::<u64>().ok())
                    };
                    declared = (whole("tests"), whole("skipped"));
                }
                match name.as_slice() {
                    b"testsuite" => {
                        if depth == 1 {
                            if let Some(t) = seconds_attr(e, "time")? {
                                *child_suites_time.get_or_insert(0.0) += t;
                            }
                        }
                        if let Some(ts) = timestamp_attr(e)? {
                            summary.started_at =
                                Some(summary.started_at.map_or(ts, |s: f64| s.min(ts)));
                        }
                    }
                    b"testcase" if case.is_none() => {
                        if is_empty {
                            summary.passed += 1;
                        } else {
                            case = Some((depth, Verdict::Passed));
                        }
                    }
                    outcome @ (b"failure" | b"error" | b"skipped") => {
                        if let Some((case_depth, verdict)) = &mut case {
                            if *case_depth + 1 == depth {
                                let v = match outcome {
                                    b"error" => Verdict::Errored,
                                    b"failure" => Verdict::Failed,
                                    _ => Verdict::Skipped,
                                };
                                *verdict = worse(*verdict, v);
                            }
                        }
                    }
                    _ => {}
                }
                if !is_empty {
                    stack.push(name);
                }
            }
            Event::End(_) => {
                stack.pop();
                if let Some((case_depth, verdict)) = case {
                    if stack.len() == case_depth {
                        match verdict {
                            Verdict::Passed => summary.passed += 1,
                            Verdict::Skipped => summary.skipped += 1,
                            Verdict::Failed => summary.failed += 1,
                            Verdict::Errored => summary.errored += 1,
                        }
                        case = None;
                    }
                }
            }
            Event::Eof => break,
            // Text, CDATA, comments, declarations, processing instructions
            // and entity references (never resolved) do not count.
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(JunitError::Malformed {
            position: reader.buffer_position(),
            message: format!(
                "unclosed element <{}>",
                String::from_utf8_lossy(stack.last().map(Vec::as_slice).unwrap_or_default())
            ),
        });
    }
    if !seen_root {
        return Err(JunitError::Empty);
    }
    summary.duration_seconds = root_time.or(child_suites_time);
    // Some writers leave skipped tests out of the cases but count them in
    // the root's totals (mocha-junit-reporter without `includePending`):
    // when the cases missing from the declared `tests` are exactly the
    // skipped ones missing from the declared `skipped`, they count skipped.
    if let (Some(tests), Some(skipped)) = declared {
        let cases = summary.passed + summary.failed + summary.errored + summary.skipped;
        let missing = tests.saturating_sub(cases);
        if missing > 0 && skipped.saturating_sub(summary.skipped) == missing {
            summary.skipped += missing;
        }
    }
    Ok(summary)
}

fn worse(a: Verdict, b: Verdict) -> Verdict {
    let rank = |v| match v {
        Verdict::Passed => 0,
        Verdict::Skipped => 1,
        Verdict::Failed => 2,
        Verdict::Errored => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// The raw value of an attribute. Raw on purpose: entity references in it
/// are left as written, never resolved.
fn raw_attr(e: &BytesStart<'_>, attribute: &'static str) -> Result<Option<String>, JunitError> {
    match e.try_get_attribute(attribute) {
        Ok(Some(a)) => Ok(Some(String::from_utf8_lossy(&a.value).trim().to_string())),
        Ok(None) => Ok(None),
        Err(err) => Err(JunitError::Malformed {
            position: 0,
            message: err.to_string(),
        }),
    }
}

fn bad(
    e: &BytesStart<'_>,
    attribute: &'static str,
    value: String,
    expected: &'static str,
) -> JunitError {
    JunitError::BadAttribute {
        element: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
        attribute,
        value,
        expected,
    }
}

fn seconds_attr(e: &BytesStart<'_>, attribute: &'static str) -> Result<Option<f64>, JunitError> {
    let Some(v) = raw_attr(e, attribute)? else {
        return Ok(None);
    };
    if v.is_empty() {
        return Ok(None);
    }
    // Some runners write thousands separators ("1,234.5").
    match v.replace(',', "").parse::<f64>() {
        Ok(t) if t.is_finite() && t >= 0.0 => Ok(Some(t)),
        _ => Err(bad(e, attribute, v, "a non-negative number of seconds")),
    }
}

/// A suite's `timestamp`: read in any form runners write it, and ignored
/// when it reads as none (a report is never refused for its metadata; the
/// run is then dated when it was received).
fn timestamp_attr(e: &BytesStart<'_>) -> Result<Option<f64>, JunitError> {
    let Some(v) = raw_attr(e, "timestamp")? else {
        return Ok(None);
    };
    Ok(parse_timestamp(&v))
}

/// A date and time as runners write it, as Unix seconds: ISO 8601 / RFC 3339
/// with or without an offset (without one it is UTC, as JUnit writers that
/// omit it mean the runner's clock), with `T` or a space, RFC 2822, or epoch
/// seconds (milliseconds when it is too large to be seconds).
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let secs = |ms: i64| ms as f64 / 1000.0;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(secs(t.timestamp_millis()));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(s) {
        return Some(secs(t.timestamp_millis()));
    }
    for with_offset in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
    ] {
        if let Ok(t) = chrono::DateTime::parse_from_str(s, with_offset) {
            return Some(secs(t.timestamp_millis()));
        }
    }
    for naive in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, naive) {
            return Some(secs(t.and_utc().timestamp_millis()));
        }
    }
    if let Some(utc) = s.strip_suffix('Z').or_else(|| s.strip_suffix(" UTC")) {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(utc, "%Y-%m-%d %H:%M:%S%.f") {
            return Some(secs(t.and_utc().timestamp_millis()));
        }
    }
    match s.parse::<f64>() {
        Ok(n) if (0.0..1e11).contains(&n) => Some(n),
        Ok(n) if n.is_finite() && (1e11..1e14).contains(&n) => Some(n / 1000.0),
        _ => None,
    }
}

/// Refuses text no XML 1.0 parser may accept, naming the byte where it
/// is: bytes that are not UTF-8 (the only encoding read), characters XML
/// forbids (raw control characters, U+FFFE, U+FFFF) and references to them
/// (`&#0;`).
fn well_formed_text(xml: &[u8]) -> Result<(), JunitError> {
    let text = std::str::from_utf8(xml).map_err(|e| JunitError::Malformed {
        position: e.valid_up_to() as u64,
        message: "not UTF-8 (a report is read as UTF-8)".to_string(),
    })?;
    let allowed = |c: u32| matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF);
    for (i, c) in text.char_indices() {
        if !allowed(c as u32) {
            return Err(JunitError::Malformed {
                position: i as u64,
                message: format!("character U+{:04X} is not allowed in XML", c as u32),
            });
        }
    }
    let mut rest = text;
    let mut offset = 0;
    while let Some(at) = rest.find("&#") {
        let after = &rest[at + 2..];
        let end = after.find(';').unwrap_or(after.len());
        let digits = &after[..end];
        let value = match digits
            .strip_prefix('x')
            .or_else(|| digits.strip_prefix('X'))
        {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => digits.parse::<u32>().ok(),
        };
        if let Some(v) = value.filter(|v| !allowed(*v)) {
            return Err(JunitError::Malformed {
                position: (offset + at) as u64,
                message: format!(
                    "character reference &#{digits}; names U+{v:04X}, which XML does not allow"
                ),
            });
        }
        offset += at + 2;
        rest = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SURFIRE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites time="12.5">
  <testsuite name="api" tests="4" timestamp="2024-05-01T10:00:00" time="10">
    <testcase name="a" time="1"/>
    <testcase name="b"><failure message="boom">trace &amp; more</failure></testcase>
    <testcase name="c"><skipped/></testcase>
    <testcase name="d"><error type="panic"/><system-out>x</system-out></testcase>
  </testsuite>
  <testsuite name="outer" timestamp="2024-05-01T09:59:00Z" time="2.5">
    <testsuite name="inner">
      <testcase name="e"></testcase>
      <testcase name="f"><system-err>noise</system-err></testcase>
    </testsuite>
  </testsuite>
</testsuites>"#;

    #[test]
    fn skipped_tests_left_out_of_the_cases_but_declared_count_skipped() {
        // mocha-junit-reporter's default: pending tests only in the totals.
        let s = count(
            br#"<testsuites tests="4" failures="1" skipped="2"><testsuite name="s" tests="4">
            <testcase name="a"/><testcase name="b"><failure/></testcase></testsuite></testsuites>"#,
        )
        .unwrap();
        assert_eq!((s.passed, s.failed, s.skipped), (1, 1, 2));
        // The totals disagree with the cases in some other way: the cases win.
        for xml in [
            &br#"<testsuites tests="5" skipped="2"><testcase name="a"/><testcase name="b"/></testsuites>"#[..],
            br#"<testsuites tests="4" skipped="1"><testcase name="a"/><testcase name="b"/></testsuites>"#,
            br#"<testsuites tests="1" skipped="3"><testcase name="a"/><testcase name="b"/></testsuites>"#,
            br#"<testsuites tests="x" skipped="2"><testcase name="a"/><testcase name="b"/></testsuites>"#,
            br#"<testsuites skipped="2"><testcase name="a"/><testcase name="b"/></testsuites>"#,
        ] {
            let s = count(xml).unwrap();
            assert_eq!((s.passed, s.skipped), (2, 0), "{}", String::from_utf8_lossy(xml));
        }
        // Skipped cases written out are not counted twice.
        let s = count(
            br#"<testsuite tests="2" skipped="1"><testcase name="a"/><testcase name="b"><skipped/></testcase></testsuite>"#,
        )
        .unwrap();
        assert_eq!((s.passed, s.skipped), (1, 1));
        // Every outcome among the cases, and two skipped ones left out.
        let s = count(
            br#"<testsuites tests="7" failures="1" errors="1" skipped="3"><testsuite name="s">
            <testcase name="a"/><testcase name="b"/><testcase name="c"><failure/></testcase>
            <testcase name="d"><error/></testcase><testcase name="e"><skipped/></testcase>
            </testsuite></testsuites>"#,
        )
        .unwrap();
        assert_eq!(
            (s.passed, s.failed, s.errored, s.skipped),
            (2, 1, 1, 3),
            "{s:?}"
        );
    }

    #[test]
    fn counts_every_outcome_including_nested_suites() {
        let s = count(SURFIRE.as_bytes()).unwrap();
        assert_eq!(
            (s.passed, s.failed, s.errored, s.skipped),
            (3, 1, 1, 1),
            "{s:?}"
        );
        assert_eq!(s.duration_seconds, Some(12.5));
        // The earliest suite start: 09:59:00Z.
        assert_eq!(s.started_at, Some(1_714_557_540.0));
    }

    #[test]
    fn single_testsuite_root_and_duration_from_child_suites() {
        let s =
            count(br#"<testsuite time="3"><testcase/><testcase><skipped/></testcase></testsuite>"#)
                .unwrap();
        assert_eq!((s.passed, s.skipped), (1, 1));
        assert_eq!(s.duration_seconds, Some(3.0));
        let s = count(
            br#"<testsuites><testsuite time="1.5"/><testsuite time="2"><testcase/></testsuite></testsuites>"#,
        )
        .unwrap();
        assert_eq!(s.duration_seconds, Some(3.5));
        assert_eq!(s.passed, 1);
    }

    #[test]
    fn failure_and_error_in_one_case_counts_once_as_errored() {
        let s = count(b"<testsuite><testcase><failure/><error/></testcase></testsuite>").unwrap();
        assert_eq!((s.passed, s.failed, s.errored), (0, 0, 1));
    }

    #[test]
    fn a_testcase_inside_a_testcase_is_not_another_test() {
        let s = count(
            b"<testsuite><testcase><testcase/><testcase><failure/></testcase></testcase></testsuite>",
        )
        .unwrap();
        assert_eq!((s.passed, s.failed, s.skipped, s.errored), (1, 0, 0, 0));
    }

    #[test]
    fn billion_laughs_is_refused_without_expanding_anything() {
        let mut xml =
            String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
        for i in 1..10 {
            let prev = if i == 1 {
                "lol".to_string()
            } else {
                format!("lol{}", i - 1)
            };
            xml.push_str(&format!(
                " <!ENTITY lol{i} \"{}\">\n",
                format!("&{prev};").repeat(10)
            ));
        }
        xml.push_str("]>\n<testsuite><testcase name=\"&lol9;\">&lol9;</testcase></testsuite>");
        assert_eq!(count(xml.as_bytes()), Err(JunitError::Doctype));
    }

    #[test]
    fn undeclared_entities_are_left_alone() {
        let s = count(b"<testsuite><testcase name=\"&x;\">&y;</testcase></testsuite>").unwrap();
        assert_eq!(s.passed, 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!(
            "<testsuites>{}{}</testsuites>",
            "<testsuite>".repeat(MAX_DEPTH),
            "</testsuite>".repeat(MAX_DEPTH)
        );
        assert_eq!(count(deep.as_bytes()), Err(JunitError::TooDeep));
        let ok = format!(
            "<testsuites>{}{}</testsuites>",
            "<testsuite>".repeat(MAX_DEPTH - 1),
            "</testsuite>".repeat(MAX_DEPTH - 1)
        );
        assert!(count(ok.as_bytes()).is_ok());
    }

    #[test]
    fn malformed_documents_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "no root element"),
            (b"   ", "no root element"),
            (b"<testsuite><testcase></testsuite>", "malformed XML"),
            (b"<testsuite>", "unclosed element <testsuite>"),
            (b"<html><body/></html>", "found <html>"),
            (b"{\"passed\": 1}", "no root element"),
            (b"<testsuite/><testsuite/>", "second root element"),
            (
                b"<testsuite time=\"soon\"/>",
                "time=\"soon\" of <testsuite> is not a non-negative number",
            ),
            (
                b"<testsuite>\xff</testsuite>",
                "malformed XML at byte 11: not UTF-8",
            ),
            (
                b"<testsuite>\x01</testsuite>",
                "malformed XML at byte 11: character U+0001 is not allowed",
            ),
            (
                b"<testsuite name=\"a&#0;\"/>",
                "malformed XML at byte 18: character reference &#0;",
            ),
            (
                b"<testsuite name=\"a&#x1F;\"/>",
                "malformed XML at byte 18: character reference &#x1F;",
            ),
            (
                // Past allowed references: the offset is the whole document's.
                b"<testsuite name=\"&#65;&#x42;&#12;\"/>",
                "malformed XML at byte 28: character reference &#12;",
            ),
            (
                b"<testsuite time=\"-1.5\"/>",
                "time=\"-1.5\" of <testsuite> is not a non-negative number",
            ),
            (b"<testsuite time=\"inf\"/>", "time=\"inf\""),
            (b"<testsuite time=\"NaN\"/>", "time=\"NaN\""),
        ];
        for (xml, want) in cases {
            let got = count(xml).map(|_| ()).unwrap_err().to_string();
            assert!(
                got.contains(want),
                "{:?}: got {got:?}, want {want:?}",
                String::from_utf8_lossy(xml)
            );
        }
    }

    #[test]
    fn a_timestamp_that_reads_as_no_time_is_ignored_not_refused() {
        for ts in ["yesterday", "", "13/45/2024", "NaN"] {
            let xml = format!("<testsuite timestamp=\"{ts}\"><testcase name=\"a\"/></testsuite>");
            let s = count(xml.as_bytes()).unwrap();
            assert_eq!((s.passed, s.started_at), (1, None), "{ts}");
        }
        let s = count(b"<testsuite timestamp=\"Thu, 01 Jan 1970 00:01:00 +0000\"><testcase name=\"a\"/></testsuite>").unwrap();
        assert_eq!(s.started_at, Some(60.0));
    }

    #[test]
    fn timestamps_with_and_without_offsets() {
        assert_eq!(parse_timestamp("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(parse_timestamp("1970-01-01T01:01:00+01:00"), Some(60.0));
        assert_eq!(parse_timestamp("1970-01-01T00:01:00.5"), Some(60.5));
        assert_eq!(parse_timestamp("tomorrow"), None);
        assert_eq!(parse_timestamp("1970-01-01 00:01:00"), Some(60.0));
        assert_eq!(parse_timestamp("1970-01-01 00:01:00+00:00"), Some(60.0));
        assert_eq!(parse_timestamp("1970-01-01T00:01:00+0100"), Some(-3540.0));
        assert_eq!(
            parse_timestamp("Thu, 01 Jan 1970 00:01:00 +0000"),
            Some(60.0)
        );
        assert_eq!(parse_timestamp("60"), Some(60.0));
        assert_eq!(parse_timestamp("1700000000000"), Some(1_700_000_000.0));
        assert_eq!(parse_timestamp(""), None);
        assert_eq!(parse_timestamp("-5"), None);
    }
}
