//! `GET /api/v1/events`: the history, newest first, a page at a time.
//!
//! Parameters: `stack`, `subject`, `kind` (health, deploy, cert_rotation,
//! slot, drift, source, doctor, box_deploy, boot), `since` and `until` (RFC
//! 3339, Unix seconds, or a duration back from now such as `90m`, `2h`,
//! `7d`), `limit` (1 to 1000, default 100) and `cursor` (the `next` of the
//! previous page). Anything else, or a value that does not parse, is a 400
//! that says which and why. See docs/events.md.

use serde::Serialize;

use super::store::Query;
use super::{fmt_time, Event, Kind};
use crate::board::{Redactor, HIDDEN};

/// The answer's schema version.
pub const SCHEMA_VERSION: u32 = 1;
/// Events per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// Most events per page.
pub const MAX_LIMIT: usize = 1000;

/// One page of events.
#[derive(Debug, Serialize)]
pub struct Page {
    pub schema_version: u32,
    pub events: Vec<Shown>,
    /// Pass as `cursor` for the next (older) page; null on the last.
    pub next: Option<String>,
}

/// An event as served.
#[derive(Debug, Serialize)]
pub struct Shown {
    pub id: i64,
    /// Unix seconds.
    pub at: f64,
    /// `at` as RFC 3339 UTC.
    pub time: String,
    pub stack: String,
    pub kind: Kind,
    pub subject: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub detail: Option<String>,
}

impl Shown {
    pub fn of(e: Event) -> Shown {
        Shown {
            id: e.id,
            at: e.at,
            time: fmt_time(e.at),
            stack: e.stack,
            kind: e.kind,
            subject: e.subject,
            from: e.from,
            to: e.to,
            detail: e.detail,
        }
    }
}

impl Event {
    /// Public mode: internal values (addresses, URLs, ids, wallets) in any
    /// field become `[hidden]`, and an endpoint given as an address is hidden
    /// whole, as the rest of the board does.
    pub fn redact(&mut self, r: &Redactor) {
        if self.kind == Kind::CertRotation
            && (r.scrub(&self.subject) != self.subject
                || self.subject.parse::<std::net::SocketAddr>().is_ok())
        {
            self.subject = HIDDEN.to_string();
        }
        self.subject = r.scrub(&self.subject);
        r.scrub_opt(&mut self.from);
        r.scrub_opt(&mut self.to);
        r.scrub_opt(&mut self.detail);
    }
}

/// Parses a time parameter: RFC 3339, Unix seconds, or a duration back from
/// `now` (`90s`, `15m`, `2h`, `7d`).
pub fn parse_time(v: &str, now: f64) -> Result<f64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp() as f64 + f64::from(t.timestamp_subsec_millis()) / 1000.0);
    }
    if let Ok(t) = v.parse::<f64>() {
        if t.is_finite() && t >= 0.0 {
            return Ok(t);
        }
    }
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 7.0 * 86400.0,
        _ => 0.0,
    };
    match n.parse::<u32>() {
        Ok(n) if scale > 0.0 => Ok(now - f64::from(n) * scale),
        _ => Err(format!(
            "{v:?} is not a time: give RFC 3339 (2026-11-26T10:42:00Z), Unix seconds, or a duration back from now (90m, 2h, 7d)"
        )),
    }
}

/// The cursor of the page after `(at, id)`: opaque to clients.
pub fn cursor(at: f64, id: i64) -> String {
    format!("{at}_{id}")
}

fn parse_cursor(v: &str) -> Option<(f64, i64)> {
    let (at, id) = v.split_once('_')?;
    let at: f64 = at.parse().ok().filter(|t: &f64| t.is_finite())?;
    let id: i64 = id.parse().ok().filter(|i| *i > 0)?;
    Some((at, id))
}

/// Reads the query string into a `Query`; every problem, not only the first.
pub fn parse_query(query: Option<&str>, now: f64) -> Result<Query, Vec<String>> {
    let mut q = Query {
        limit: DEFAULT_LIMIT,
        ..Query::default()
    };
    let mut bad = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !seen.insert(k.to_string()) {
            bad.push(format!("{k}: given twice"));
            continue;
        }
        let v = v.into_owned();
        match &*k {
            "stack" => q.stack = Some(v),
            "subject" => q.subject = Some(v),
            "kind" => match Kind::parse(&v) {
                Some(kind) => q.kind = Some(kind),
                None => bad.push(format!(
                    "kind: {v:?} is not one of {}",
                    Kind::ALL.map(Kind::as_str).join(", ")
                )),
            },
            "since" => match parse_time(&v, now) {
                Ok(t) => q.since = Some(t),
                Err(e) => bad.push(format!("since: {e}")),
            },
            "until" => match parse_time(&v, now) {
                Ok(t) => q.until = Some(t),
                Err(e) => bad.push(format!("until: {e}")),
            },
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = n,
                _ => bad.push(format!("limit: {v:?} is not a number from 1 to {MAX_LIMIT}")),
            },
            "cursor" => match parse_cursor(&v) {
                Some(c) => q.before = Some(c),
                None => bad.push(format!("cursor: {v:?} is not a cursor this server gave")),
            },
            other => bad.push(format!(
                "{other}: unknown parameter (known: stack, subject, kind, since, until, limit, cursor)"
            )),
        }
    }
    if let (Some(a), Some(b)) = (q.since, q.until) {
        if a > b {
            bad.push("since: lies after until".into());
        }
    }
    if bad.is_empty() {
        Ok(q)
    } else {
        Err(bad)
    }
}
