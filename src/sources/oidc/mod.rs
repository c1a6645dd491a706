//! The oidc source: fetch each environment's OIDC discovery document and read
//! the `issuer` it advertises. Drift compares it with the configured one.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::sources::healthz::http_client;
use crate::sources::Watched;
use crate::sources::{CollectFuture, Source, SourceError};
use crate::values::{Schedule, Seconds};

/// The OIDC discovery source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// How often the source runs.
    #[serde(default = "OidcConfig::default_interval")]
    pub interval: Seconds,
    /// How long one fetch may take.
    #[serde(default = "OidcConfig::default_timeout")]
    pub timeout: Seconds,
}

impl OidcConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(300))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(10))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
        }
    }
}

/// Discovery documents are small; more than this is not one.
const MAX_BODY: usize = 256 * 1024;
/// Documents fetched at once.
const CONCURRENCY: usize = 16;

/// One environment's discovery document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OidcDocument {
    pub stack: String,
    pub url: String,
    /// The advertised issuer; `None` when the document could not be read.
    pub issuer: Option<String>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// What the oidc source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OidcFacts {
    /// In inventory order.
    pub documents: Vec<OidcDocument>,
}

impl OidcFacts {
    /// The document of one environment.
    pub fn of(&self, stack: &str) -> Option<&OidcDocument> {
        self.documents.iter().find(|d| d.stack == stack)
    }
}

/// The oidc source.
pub struct OidcSource {
    config: Arc<dyn Watched>,
    client: reqwest::Client,
}

impl OidcSource {
    /// Builds the source if an environment lists `oidc`.
    pub fn from_config(config: Arc<dyn Watched>) -> Result<Option<Self>, SourceError> {
        if config.environments().iter().all(|e| e.oidc.is_none()) {
            return Ok(None);
        }
        let client = http_client(config.as_ref(), config.sources().oidc.timeout.0)?;
        Ok(Some(OidcSource {
            config: config.clone(),
            client,
        }))
    }

    async fn fetch(&self, url: &url::Url) -> Result<String, String> {
        let mut resp = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| innermost(&e))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| innermost(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_BODY {
                return Err(format!("document larger than {MAX_BODY} bytes"));
            }
        }
        issuer_of(&body)
    }
}

/// The `issuer` of a discovery document.
fn issuer_of(body: &[u8]) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Discovery {
        issuer: Option<String>,
    }
    let doc: Discovery =
        serde_json::from_slice(body).map_err(|e| format!("not a JSON discovery document: {e}"))?;
    doc.issuer
        .ok_or_else(|| "the document names no issuer".to_string())
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl Source for OidcSource {
    fn name(&self) -> &'static str {
        "oidc"
    }
    fn schedule(&self) -> Schedule {
        self.config.sources().oidc.schedule()
    }
    /// Each fetch has its own timeout; the run as a whole may take up to the interval.
    fn run_deadline(&self) -> std::time::Duration {
        self.config.sources().oidc.interval.0
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async move {
            let targets: Vec<(String, url::Url)> = self
                .config
                .environments()
                .iter()
                .filter_map(|e| e.oidc.as_ref().map(|o| (e.name.0.clone(), o.url.0.clone())))
                .collect();
            let documents: Vec<OidcDocument> = stream::iter(targets)
                .map(|(stack, url)| async move {
                    let got = self.fetch(&url).await;
                    OidcDocument {
                        stack,
                        url: url.to_string(),
                        issuer: got.as_ref().ok().cloned(),
                        error: got.err(),
                    }
                })
                .buffered(CONCURRENCY)
                .collect()
                .await;
            Ok(super::output(OidcFacts { documents }))
        })
    }
}

/// The registry's builder: an OIDC source when any environment lists `oidc`.
pub fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
    Ok(super::at_most_one(OidcSource::from_config(config.clone())?))
}

impl super::SourceFacts for OidcFacts {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        super::retain_listed(&mut self.documents, |d| listed.stack(&d.stack))
    }
}

/// The oidc source, as the registry knows it.
pub struct Oidc;

impl super::SourceKind for Oidc {
    const NAME: &'static str = "oidc";
    const READS: &'static [&'static str] = &["tls"];
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[];
    type Settings = OidcConfig;
    type Facts = OidcFacts;
    type Part = super::NoPart;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn schedule(settings: &OidcConfig) -> Option<Schedule> {
        Some(settings.schedule())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_is_read_from_the_discovery_document() {
        assert_eq!(
            issuer_of(
                br#"{"issuer":"https://id.example.net","jwks_uri":"https://id.example.net/jwks"}"#
            ),
            Ok("https://id.example.net".to_string())
        );
        assert!(issuer_of(br#"{"jwks_uri":"x"}"#)
            .unwrap_err()
            .contains("no issuer"));
        assert!(issuer_of(b"<html>").unwrap_err().contains("not a JSON"));
    }
}

#[cfg(test)]
mod collect_tests {
    use super::*;
    use crate::sources::{Facts, SourceKind};
    use crate::testing::json_response as json;

    fn source(yaml: &str) -> Option<OidcSource> {
        let config = crate::config::Config::parse(yaml, "fleet.yaml").unwrap();
        OidcSource::from_config(Arc::new(config)).unwrap()
    }

    #[tokio::test]
    async fn each_environments_document_is_read_for_its_issuer_or_why_not() {
        let (port, server) = crate::testing::http_server(|path| {
            Some(match path {
                "/ok" => json(200, r#"{"issuer":"https://id.example.net"}"#),
                "/none" => json(200, r#"{"jwks_uri":"x"}"#),
                "/big" => json(200, &format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_BODY))),
                // Exactly as large as a document may be.
                "/edge" => {
                    let head = r#"{"issuer":"https://edge.example.net","pad":""#;
                    let pad = "x".repeat(MAX_BODY - head.len() - 2);
                    json(200, &format!("{head}{pad}\"}}"))
                }
                _ => json(404, "{}"),
            })
        })
        .await;
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let env = |name: &str, url: String| {
            format!("  - name: {name}\n    oidc: {{ url: \"{url}\", issuer: x }}\n")
        };
        let at = |path: &str| format!("http://127.0.0.1:{port}{path}");
        let yaml = format!(
            "sources:\n  oidc:\n    interval: 2m\n    timeout: 5s\nenvironments:\n{}  - name: plain\n{}{}{}{}{}",
            env("prod", at("/ok")),
            env("none", at("/none")),
            env("big", at("/big")),
            env("gone", at("/gone")),
            env("refused", format!("http://127.0.0.1:{closed_port}/ok")),
            env("edge", at("/edge")),
        );
        let s = source(&yaml).unwrap();
        assert_eq!(s.name(), "oidc");
        assert_eq!(
            (
                s.schedule().interval.0,
                s.schedule().timeout.0,
                s.run_deadline()
            ),
            (
                Duration::from_secs(120),
                Duration::from_secs(5),
                Duration::from_secs(120)
            )
        );
        let out = s.collect().await.unwrap();
        server.abort();
        let facts = out.downcast_ref::<OidcFacts>().unwrap();
        let read: Vec<_> = facts
            .documents
            .iter()
            .map(|d| (d.stack.as_str(), d.issuer.as_deref(), d.error.as_deref()))
            .collect();
        assert_eq!(
            read[..4],
            [
                ("prod", Some("https://id.example.net"), None),
                ("none", None, Some("the document names no issuer")),
                ("big", None, Some("document larger than 262144 bytes")),
                ("gone", None, Some("answered 404 Not Found")),
            ]
        );
        assert_eq!(facts.documents[0].url, at("/ok"));
        // The innermost cause: the socket's own words.
        let refused = &facts.documents[4];
        assert_eq!(
            (refused.stack.as_str(), refused.issuer.as_deref()),
            ("refused", None)
        );
        assert!(
            refused
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("Connection refused")),
            "{refused:?}"
        );
        let edge = &facts.documents[5];
        assert_eq!(
            (
                edge.stack.as_str(),
                edge.issuer.as_deref(),
                edge.error.as_deref()
            ),
            ("edge", Some("https://edge.example.net"), None)
        );
        assert_eq!(facts.documents.len(), 6);
        assert_eq!(
            facts.of("none").map(|d| d.url.as_str()),
            Some(at("/none").as_str())
        );
        assert!(facts.of("plain").is_none());
    }

    #[test]
    fn no_source_without_an_oidc_expectation_and_removed_ones_leave() {
        assert!(source("environments:\n  - name: prod\n").is_none());
        let doc = |stack: &str| OidcDocument {
            stack: stack.into(),
            url: "https://id.example.net/.well-known/openid-configuration".into(),
            issuer: None,
            error: None,
        };
        let mut facts = Facts::default().with(
            "oidc",
            OidcFacts {
                documents: vec![doc("prod"), doc("staging")],
            },
        );
        facts.retire(&crate::testing::environments("  - name: prod\n"));
        assert_eq!(facts.get::<OidcFacts>().unwrap().documents, [doc("prod")]);
        let d = OidcConfig::default();
        assert_eq!(
            Oidc::schedule(&d).map(|s| (s.interval.0, s.timeout.0)),
            Some((Duration::from_secs(300), Duration::from_secs(10)))
        );
        assert_eq!(innermost(&std::io::Error::other("outer")), "outer");
    }
}
