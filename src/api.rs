//! The push API on the wire: routes, headers, content types and request
//! bodies, defined once and used by both the server (`ingest`) and the
//! client (`push`), so the two cannot drift apart.

use serde::{Deserialize, Serialize};

/// The header that stamps a push with the pushing software's commit.
pub const COMMIT_HEADER: &str = "x-fleet-commit";

/// The content type of JSON bodies.
pub const JSON: &str = "application/json";

/// The content type the client sends JUnit XML with (the server also takes
/// `text/xml` and `+xml` types).
pub const XML: &str = "application/xml";

/// Every host's doctor summary (`GET`).
pub const HOST_HEALTH_ALL: &str = "/api/v1/host-health";

/// One kind of push: where it goes and how it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/v1/heartbeats/{box}`: a box booted.
    Heartbeat,
    /// `PUT /api/v1/test-runs/{service}[?stack=S]`: a test run.
    TestRun,
    /// `PUT /api/v1/mutants/{service}`: mutation-testing results.
    Mutants,
    /// `PUT` (and `GET`) `/api/v1/host-health/{host}`: a doctor snapshot.
    HostHealth,
}

impl Route {
    /// Every kind.
    pub const ALL: [Route; 4] = [
        Route::Heartbeat,
        Route::TestRun,
        Route::Mutants,
        Route::HostHealth,
    ];

    /// The path as the router writes it, with `{name}` for the name.
    pub const fn template(self) -> &'static str {
        match self {
            Route::Heartbeat => "/api/v1/heartbeats/{name}",
            Route::TestRun => "/api/v1/test-runs/{name}",
            Route::Mutants => "/api/v1/mutants/{name}",
            Route::HostHealth => "/api/v1/host-health/{name}",
        }
    }

    /// The path for one name (which the caller has checked with
    /// `Name::is_valid`, so it needs no escaping).
    pub fn path(self, name: &str) -> String {
        self.template().replace("{name}", name)
    }

    /// The method a push is sent with.
    pub fn method(self) -> http::Method {
        match self {
            Route::Heartbeat => http::Method::POST,
            _ => http::Method::PUT,
        }
    }

    /// What the name in the path is: box, service or host.
    pub const fn name_kind(self) -> &'static str {
        match self {
            Route::Heartbeat => "box",
            Route::TestRun | Route::Mutants => "service",
            Route::HostHealth => "host",
        }
    }
}

/// A time written as Unix seconds or as text (RFC 3339 and the forms test
/// reporters write).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    Seconds(f64),
    Text(String),
}

/// The body of a heartbeat (all optional; an empty body is a heartbeat too).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// When the box booted.
    #[serde(default, alias = "booted_at", skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<Timestamp>,
}

/// A test run as JSON counts (the other form is a JUnit XML report).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestRunCounts {
    pub passed: u64,
    pub failed: u64,
    #[serde(default)]
    pub skipped: u64,
    #[serde(default)]
    pub errored: u64,
    #[serde(default, alias = "duration", skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

/// How a test run is written.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum TestRunFormat {
    /// JSON counts.
    #[default]
    Json,
    /// JUnit XML.
    Junit,
}

impl TestRunFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            TestRunFormat::Json => "json",
            TestRunFormat::Junit => "junit",
        }
    }

    /// The content type the client sends it with.
    pub fn content_type(self) -> &'static str {
        match self {
            TestRunFormat::Json => JSON,
            TestRunFormat::Junit => XML,
        }
    }

    /// The format of a file: by extension, else by its first character.
    pub fn detect(path: &str, body: &[u8]) -> TestRunFormat {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".xml") {
            TestRunFormat::Junit
        } else if lower.ends_with(".json") {
            TestRunFormat::Json
        } else if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<') {
            TestRunFormat::Junit
        } else {
            TestRunFormat::Json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fill_the_templates_and_methods_follow_the_kind() {
        assert_eq!(Route::Heartbeat.path("b-1"), "/api/v1/heartbeats/b-1");
        assert_eq!(Route::TestRun.path("svc"), "/api/v1/test-runs/svc");
        assert_eq!(Route::Mutants.path("svc"), "/api/v1/mutants/svc");
        assert_eq!(Route::HostHealth.path("h"), "/api/v1/host-health/h");
        assert_eq!(Route::Heartbeat.method(), http::Method::POST);
        for r in [Route::TestRun, Route::Mutants, Route::HostHealth] {
            assert_eq!(r.method(), http::Method::PUT, "{r:?}");
        }
        assert_eq!(Route::Heartbeat.name_kind(), "box");
        assert_eq!(Route::Mutants.name_kind(), "service");
        assert_eq!(Route::HostHealth.name_kind(), "host");
    }

    #[test]
    fn a_heartbeat_body_round_trips_and_leaves_out_what_is_unset() {
        let body = HeartbeatBody {
            commit: Some("4f2c9e1".into()),
            version: None,
            boot_time: Some(Timestamp::Seconds(1_700_000_000.0)),
        };
        let text = serde_json::to_string(&body).unwrap();
        assert_eq!(text, r#"{"commit":"4f2c9e1","boot_time":1700000000.0}"#);
        assert_eq!(serde_json::from_str::<HeartbeatBody>(&text).unwrap(), body);
        let old: HeartbeatBody =
            serde_json::from_str(r#"{"booted_at":"2026-11-23T10:00:00Z"}"#).unwrap();
        assert_eq!(
            old.boot_time,
            Some(Timestamp::Text("2026-11-23T10:00:00Z".into()))
        );
    }

    #[test]
    fn test_run_format_by_extension_then_content() {
        assert_eq!(TestRunFormat::detect("r.XML", b"{}"), TestRunFormat::Junit);
        assert_eq!(
            TestRunFormat::detect("r.json", b"<x/>"),
            TestRunFormat::Json
        );
        assert_eq!(
            TestRunFormat::detect("-", b"  \n<testsuite/>"),
            TestRunFormat::Junit
        );
        assert_eq!(
            TestRunFormat::detect("-", b"{\"passed\":1}"),
            TestRunFormat::Json
        );
        assert_eq!(TestRunFormat::Junit.content_type(), "application/xml");
        assert_eq!(TestRunFormat::Json.as_str(), "json");
    }
}
