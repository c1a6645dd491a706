//! `fleetpulse events`: a running exporter's history as a timeline, newest
//! first, or as the events JSON.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::history::{words, Kind};
use crate::status_cli::{request, Access, StatusError};

/// The events endpoint under a base URL.
pub const EVENTS_PATH: &str = "/api/v1/events";

/// What to ask for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub stack: Option<String>,
    pub subject: Option<String>,
    pub kind: Option<String>,
    /// As the API takes it: RFC 3339, Unix seconds, or a duration back (2h).
    pub since: Option<String>,
    /// Most events to show.
    pub limit: usize,
}

/// One event as the API serves it.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct Served {
    pub id: i64,
    pub at: f64,
    pub time: String,
    pub stack: String,
    pub kind: Kind,
    pub subject: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page {
    schema_version: u32,
    events: Vec<Served>,
    next: Option<String>,
}

/// The events URL for `base` with `filter`, from `cursor`.
pub fn events_url(
    base: &str,
    filter: &Filter,
    page: usize,
    cursor: Option<&str>,
) -> Result<String, StatusError> {
    let parsed = url::Url::parse(base).map_err(|_| StatusError::BadUrl(base.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(StatusError::BadUrl(base.to_string()));
    }
    let trimmed = base.trim_end_matches('/');
    let trimmed = trimmed.strip_suffix("/api/v1/fleet").unwrap_or(trimmed);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("stack", &filter.stack),
        ("subject", &filter.subject),
        ("kind", &filter.kind),
        ("since", &filter.since),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    q.append_pair("limit", &page.to_string());
    if let Some(c) = cursor {
        q.append_pair("cursor", c);
    }
    Ok(format!("{trimmed}{EVENTS_PATH}?{}", q.finish()))
}

/// Fetches up to `filter.limit` events, newest first, following the cursor.
pub async fn fetch(
    base: &str,
    access: &Access,
    filter: &Filter,
) -> Result<Vec<Served>, StatusError> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    while out.len() < filter.limit {
        let page = (filter.limit - out.len()).min(crate::history::api::MAX_LIMIT);
        let url = events_url(base, filter, page, cursor.as_deref())?;
        let (status, body) = request(&url, access).await?;
        if status == 400 {
            let why = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(StatusError::Usage(why));
        }
        if status == 404 {
            return Err(StatusError::Usage(format!(
                "{url}: {}",
                String::from_utf8_lossy(&body).trim()
            )));
        }
        if !(200..300).contains(&status) {
            return Err(StatusError::Http { url, status });
        }
        let page: Page = serde_json::from_slice(&body).map_err(|e| {
            StatusError::Usage(format!("{url} did not answer with events JSON: {e}"))
        })?;
        if page.schema_version != crate::history::api::SCHEMA_VERSION {
            return Err(StatusError::Usage(format!(
                "{url} speaks events schema {}, this client {}; use matching versions",
                page.schema_version,
                crate::history::api::SCHEMA_VERSION
            )));
        }
        out.extend(page.events);
        match page.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    Ok(out)
}

/// The events as a timeline, one line each.
pub fn render(events: &[Served]) -> String {
    let mut out = String::new();
    if events.is_empty() {
        out.push_str("(no changes in that window)\n");
        return out;
    }
    let width = events
        .iter()
        .map(|e| e.stack.len())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        out,
        "{:<20}  {:<width$}  {:<13}  CHANGE",
        "TIME (UTC)", "STACK", "KIND"
    );
    for e in events {
        let _ = writeln!(
            out,
            "{:<20}  {:<width$}  {:<13}  {}",
            e.time.replace('T', " ").trim_end_matches('Z'),
            if e.stack.is_empty() { "-" } else { &e.stack },
            e.kind.as_str(),
            words(
                e.kind,
                &e.subject,
                e.from.as_deref(),
                e.to.as_deref(),
                e.detail.as_deref()
            )
        );
    }
    out
}

/// What `fleetpulse events` prints.
pub async fn run(
    base: &str,
    access: &Access,
    filter: &Filter,
    json: bool,
) -> Result<String, StatusError> {
    let events = fetch(base, access, filter).await?;
    Ok(if json {
        let mut s = serde_json::to_string_pretty(&events).unwrap_or_default();
        s.push('\n');
        s
    } else {
        render(&events)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(stack: &str, kind: Kind, subject: &str, to: &str) -> Served {
        Served {
            id: 1,
            at: 0.0,
            time: "2026-11-26T10:42:00Z".into(),
            stack: stack.into(),
            kind,
            subject: subject.into(),
            from: None,
            to: Some(to.into()),
            detail: None,
        }
    }

    #[test]
    fn the_timeline_aligns_its_columns_and_marks_a_source_without_a_stack() {
        assert_eq!(render(&[]), "(no changes in that window)\n");
        let out = render(&[
            served("production", Kind::Health, "web", "green"),
            served("", Kind::Source, "aws", "ok"),
        ]);
        let want = "\
TIME (UTC)            STACK       KIND           CHANGE
2026-11-26 10:42:00   production  health         web: first seen green
2026-11-26 10:42:00   -           source         source aws first run: ok
";
        assert_eq!(out, want);
        // The stack column is at least as wide as its heading.
        let short = render(&[served("a", Kind::Boot, "b1", "1")]);
        assert_eq!(
            short.lines().nth(1),
            Some("2026-11-26 10:42:00   a      boot           box b1 booted")
        );
    }

    #[test]
    fn the_url_takes_a_base_or_the_fleet_json_and_carries_the_filter() {
        let filter = Filter {
            stack: Some("prod env".into()),
            kind: Some("health".into()),
            since: Some("2h".into()),
            limit: 10,
            ..Filter::default()
        };
        for base in [
            "http://127.0.0.1:8937",
            "http://127.0.0.1:8937/",
            "http://127.0.0.1:8937/api/v1/fleet",
        ] {
            assert_eq!(
                events_url(base, &filter, 10, Some("5_9")).unwrap(),
                "http://127.0.0.1:8937/api/v1/events?stack=prod+env&kind=health&since=2h&limit=10&cursor=5_9"
            );
        }
        for bad in ["ftp://127.0.0.1/", "127.0.0.1:8937", ""] {
            assert!(
                matches!(
                    events_url(bad, &filter, 10, None),
                    Err(StatusError::BadUrl(_))
                ),
                "{bad}"
            );
        }
    }
}
