//! The healthz source: GET each service's /healthz and classify the answer.

use crate::catalogue::metric;
use crate::exposition::{b, family, DescriptorEncoder};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};

use crate::sources::Watched;
use crate::values::{Address, HttpUrl, Schedule, Seconds};

use crate::health::{classify, Health, ProbeOutcome, Rules};
use crate::sources::{CollectFuture, Source, SourceError};

pub mod view;

/// The healthz source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthzConfig {
    /// How often the source runs.
    #[serde(default = "HealthzConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "HealthzConfig::default_timeout")]
    pub timeout: Seconds,
    /// Probes in flight at once.
    #[serde(default = "super::default_concurrency")]
    pub concurrency: usize,
    /// A 2xx answer slower than this is degraded.
    #[serde(default = "HealthzConfig::default_slow")]
    pub degraded_after: Seconds,
    /// JSON field of the body that carries the status.
    #[serde(default = "HealthzConfig::default_status_field")]
    pub status_field: String,
    /// Values of that field that mean degraded (compared case-insensitively).
    #[serde(default = "HealthzConfig::default_degraded_values")]
    pub degraded_values: Vec<String>,
    /// JSON field of the body that carries the deployed commit.
    #[serde(default = "HealthzConfig::default_commit_field")]
    pub commit_field: String,
}

impl HealthzConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(15))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(5))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

impl HealthzConfig {
    fn default_slow() -> Seconds {
        Seconds(Duration::from_secs(2))
    }
    fn default_status_field() -> String {
        "status".into()
    }
    fn default_degraded_values() -> Vec<String> {
        vec!["degraded".into(), "warn".into(), "warning".into()]
    }
    fn default_commit_field() -> String {
        "commit".into()
    }
}

impl Default for HealthzConfig {
    fn default() -> Self {
        HealthzConfig {
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
            concurrency: super::default_concurrency(),
            degraded_after: Self::default_slow(),
            status_field: Self::default_status_field(),
            degraded_values: Self::default_degraded_values(),
            commit_field: Self::default_commit_field(),
        }
    }
}

/// One /healthz probe.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ServiceProbe {
    pub stack: String,
    pub service: String,
    pub health: Health,
    /// HTTP status, when an answer arrived.
    pub status_code: Option<u16>,
    pub duration_seconds: f64,
    /// The commit the service reported, if any.
    pub commit: Option<String>,
    /// Why it is not green, in words.
    pub reason: Option<String>,
}

/// Most of a body that is read; a health answer is small.
const MAX_BODY: usize = 64 * 1024;

/// Probes every configured /healthz URL with bounded concurrency.
pub struct HealthzSource {
    config: Arc<dyn Watched>,
    client: reqwest::Client,
    /// The extra trust roots, for the clients of services dialled at an `address`.
    roots: Vec<reqwest::Certificate>,
}

impl HealthzSource {
    pub fn new(config: Arc<dyn Watched>) -> Result<Self, SourceError> {
        let roots = extra_roots(config.as_ref())?;
        let client = client_with(config.sources().healthz.timeout.0, &roots, None)?;
        Ok(HealthzSource {
            config,
            client,
            roots,
        })
    }
}

/// An HTTP client trusting the web roots plus the configured extra CA.
pub fn http_client(
    config: &dyn Watched,
    timeout: Duration,
) -> Result<reqwest::Client, SourceError> {
    client_with(timeout, &extra_roots(config)?, None)
}

/// The certificates of `sources.tls.ca_file`, if set.
fn extra_roots(config: &dyn Watched) -> Result<Vec<reqwest::Certificate>, SourceError> {
    let Some(path) = &config.sources().tls.ca_file else {
        return Ok(Vec::new());
    };
    let pem = std::fs::read(path).map_err(|e| {
        SourceError::new(format!(
            "cannot read sources.tls.ca_file {}: {e}",
            path.display()
        ))
    })?;
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        SourceError::new(format!(
            "sources.tls.ca_file {}: not PEM certificates: {e}",
            path.display()
        ))
    })
}

/// A client trusting the web roots and `roots`; with `resolve`, one that
/// connects to those addresses for that name (and still verifies the name).
fn client_with(
    timeout: Duration,
    roots: &[reqwest::Certificate],
    resolve: Option<(&str, &[std::net::SocketAddr])>,
) -> Result<reqwest::Client, SourceError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("fleetpulse/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(1);
    for c in roots {
        b = b.add_root_certificate(c.clone());
    }
    if let Some((name, addrs)) = resolve {
        b = b.resolve_to_addrs(name, addrs);
    }
    b.build()
        .map_err(|e| SourceError::new(format!("cannot build HTTP client: {e}")))
}

/// A client that dials `address` for `url`'s host: the address resolved
/// now (it may be a DNS name), the URL's name still verified.
async fn client_at(
    url: &url::Url,
    address: &Address,
    timeout: Duration,
    roots: &[reqwest::Certificate],
) -> Result<reqwest::Client, String> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((address.0.as_str(), port))
        .await
        .map_err(|e| format!("cannot resolve address {address}: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err(format!("address {address} resolves to nothing"));
    }
    client_with(timeout, roots, Some((host, &addrs))).map_err(|e| e.0)
}

struct Target {
    stack: String,
    service: String,
    url: HttpUrl,
    address: Option<Address>,
}

impl Source for HealthzSource {
    fn name(&self) -> &'static str {
        "healthz"
    }

    fn schedule(&self) -> Schedule {
        self.config.sources().healthz.schedule()
    }

    /// Each probe has its own timeout; the run as a whole may take up to the interval.
    fn run_deadline(&self) -> Duration {
        self.config.sources().healthz.interval.0
    }

    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async move {
            let cfg = &self.config.sources().healthz;
            let targets: Vec<Target> = self
                .config
                .environments()
                .iter()
                .flat_map(|e| {
                    e.services.iter().filter_map(move |s| {
                        s.healthz.as_ref().map(|url| Target {
                            stack: e.name.0.clone(),
                            service: s.name.0.clone(),
                            url: url.clone(),
                            address: s.address.clone(),
                        })
                    })
                })
                .collect();
            let rules = Rules {
                status_field: &cfg.status_field,
                degraded_values: &cfg.degraded_values,
                commit_field: &cfg.commit_field,
                degraded_after: cfg.degraded_after.0,
            };
            let rules = &rules;
            let mut probes: Vec<(usize, ServiceProbe)> =
                stream::iter(targets.into_iter().enumerate())
                    .map(|(i, t)| async move {
                        let probe = match &t.address {
                            None => probe(&self.client, t, rules, cfg.timeout.0).await,
                            Some(a) => {
                                match client_at(&t.url.0, a, cfg.timeout.0, &self.roots).await {
                                    Ok(client) => probe(&client, t, rules, cfg.timeout.0).await,
                                    Err(words) => unreachable_at(t, &words, rules),
                                }
                            }
                        };
                        (i, probe)
                    })
                    .buffer_unordered(cfg.concurrency)
                    .collect()
                    .await;
            // Inventory order, so every view lists services the same way.
            probes.sort_by_key(|(i, _)| *i);
            let probes: HealthzFacts = probes.into_iter().map(|(_, p)| p).collect();
            Ok(super::output(probes))
        })
    }
}

/// The reading of a target whose address could not be resolved.
fn unreachable_at(t: Target, words: &str, rules: &Rules<'_>) -> ServiceProbe {
    let verdict = classify(&ProbeOutcome::Failed(words), rules);
    ServiceProbe {
        stack: t.stack,
        service: t.service,
        health: verdict.health,
        status_code: None,
        duration_seconds: 0.0,
        commit: verdict.commit,
        reason: verdict.reason,
    }
}

async fn probe(
    client: &reqwest::Client,
    t: Target,
    rules: &Rules<'_>,
    timeout: Duration,
) -> ServiceProbe {
    let start = Instant::now();
    let fetched = tokio::time::timeout(timeout, fetch(client, &t.url.0)).await;
    let elapsed = start.elapsed();
    let (status, verdict) = match &fetched {
        Err(_) => (None, classify(&ProbeOutcome::TimedOut(timeout), rules)),
        Ok(Err(e)) if e.is_timeout() => (None, classify(&ProbeOutcome::TimedOut(timeout), rules)),
        Ok(Err(e)) => {
            // The words go on the board; the library's whole chain to the log.
            let words = super::tls::words::connection(e);
            tracing::debug!(stack = %t.stack, service = %t.service, error = %chain(e), "healthz probe failed");
            (None, classify(&ProbeOutcome::Failed(&words), rules))
        }
        Ok(Ok((status, None))) => (
            Some(*status),
            classify(
                &ProbeOutcome::Failed(&format!(
                    "answered with more than {} KiB; a health answer is small",
                    MAX_BODY / 1024
                )),
                rules,
            ),
        ),
        Ok(Ok((status, Some(body)))) => (
            Some(*status),
            classify(
                &ProbeOutcome::Answered {
                    status: *status,
                    body,
                    elapsed,
                },
                rules,
            ),
        ),
    };
    ServiceProbe {
        stack: t.stack,
        service: t.service,
        health: verdict.health,
        status_code: status,
        duration_seconds: elapsed.as_secs_f64(),
        commit: verdict.commit,
        reason: verdict.reason,
    }
}

/// The status and body of a health answer; `None` for a body longer than
/// `MAX_BODY`, of which no more than that is read.
async fn fetch(
    client: &reqwest::Client,
    url: &url::Url,
) -> Result<(u16, Option<Vec<u8>>), reqwest::Error> {
    let mut resp = client.get(url.clone()).send().await?;
    let status = resp.status().as_u16();
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Ok((status, None));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok((status, None));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, Some(body)))
}

/// The innermost cause, which says the most (refused, certificate, ...).
/// An error and its causes, for the log. Without the URL: it can carry
/// credentials in userinfo, and the service name already says which target.
fn chain(e: &reqwest::Error) -> String {
    let mut msg = String::new();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&c.to_string());
        cur = c.source();
    }
    msg
}

/// The registry's builder: a healthz source when any service has a
/// `healthz` URL.
pub fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
    let wanted = config
        .environments()
        .iter()
        .any(|e| e.services.iter().any(|s| s.healthz.is_some()));
    Ok(if wanted {
        vec![Arc::new(HealthzSource::new(config.clone())?)]
    } else {
        Vec::new()
    })
}
/// What one run found: one reading per target.
pub type HealthzFacts = Vec<ServiceProbe>;

impl super::SourceFacts for Vec<ServiceProbe> {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        super::retain_listed(self, |p| listed.service(&p.stack, &p.service))
    }
    fn encode(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        encode(self, enc)
    }
}

/// This source's families: health as a state set, status code, probe
/// duration and the commit each service reports.
pub fn encode(probes: &[ServiceProbe], enc: &mut DescriptorEncoder) -> std::fmt::Result {
    family(
        enc,
        &SERVICE_HEALTH,
        probes.iter().flat_map(|p| {
            Health::ALL.into_iter().map(move |h| {
                (
                    [p.stack.as_str(), p.service.as_str(), h.as_str()],
                    b(p.health == h),
                )
            })
        }),
    )?;
    family(
        enc,
        &SERVICE_STATUS_CODE,
        probes.iter().map(|p| {
            (
                [p.stack.as_str(), p.service.as_str()],
                f64::from(p.status_code.unwrap_or(0)),
            )
        }),
    )?;
    family(
        enc,
        &SERVICE_PROBE_DURATION,
        probes
            .iter()
            .map(|p| ([p.stack.as_str(), p.service.as_str()], p.duration_seconds)),
    )?;
    family(
        enc,
        &SERVICE_COMMIT_INFO,
        probes.iter().filter_map(|p| {
            p.commit
                .as_deref()
                .map(|c| ([p.stack.as_str(), p.service.as_str(), c], 1.0))
        }),
    )?;
    Ok(())
}

/// The healthz source, as the registry knows it.
pub struct Healthz;

impl super::SourceKind for Healthz {
    const NAME: &'static str = "healthz";
    const READS: &'static [&'static str] = &["tls"];
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[
        SERVICE_HEALTH,
        SERVICE_STATUS_CODE,
        SERVICE_PROBE_DURATION,
        SERVICE_COMMIT_INFO,
    ];
    type Settings = HealthzConfig;
    type Facts = HealthzFacts;
    type Part = view::Part;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn schedule(settings: &HealthzConfig) -> Option<Schedule> {
        Some(settings.schedule())
    }
    fn check(
        settings: &HealthzConfig,
        _: &[crate::inventory::Environment],
    ) -> Vec<(String, String)> {
        super::at_least_one_in_flight(settings.concurrency)
    }
}

// Its families.
metric!(
    SERVICE_HEALTH,
    "fleet_service_health",
    Gauge,
    ["stack", "component", "state"],
    "Service health as a state set over green, degraded and red; exactly one is 1."
);
metric!(
    SERVICE_STATUS_CODE,
    "fleet_service_http_status_code",
    Gauge,
    ["stack", "component"],
    "HTTP status code of the last /healthz probe; 0 when no response arrived."
);
metric!(
    SERVICE_PROBE_DURATION,
    "fleet_service_probe_duration_seconds",
    Gauge,
    ["stack", "component"],
    "Duration of the last /healthz probe."
);
metric!(
    SERVICE_COMMIT_INFO,
    "fleet_service_commit_info",
    Gauge,
    ["stack", "component", "commit"],
    "The commit a service reports on /healthz; always 1."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Facts;
    use tokio::net::TcpListener;

    /// A server answering by path; `/hang` never answers.
    async fn serve() -> (u16, tokio::task::JoinHandle<()>) {
        crate::testing::http_server(|path| {
            let big = "x".repeat(MAX_BODY + 1);
            Some(match path {
                "/ok" => json(200, r#"{"status":"ok","commit":"4f2c9e1"}"#),
                "/warn" => json(200, r#"{"status":"Warning","version":"2"}"#),
                "/down" => json(503, r#"{"status":"down"}"#),
                "/big" => json(200, &big),
                "/big-chunked" => format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
                    big.len()
                ),
                "/exact" => json(200, &format!("{{\"status\":\"ok\",\"pad\":\"{}\"}}", "x".repeat(MAX_BODY - 24))),
                // The largest body read, in two chunks.
                "/exact-chunked" => {
                    let half = "x".repeat(MAX_BODY / 2);
                    format!(
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{half}\r\n{:x}\r\n{half}\r\n0\r\n\r\n",
                        half.len(),
                        half.len()
                    )
                }
                "/hang" => return None,
                _ => json(404, "{}"),
            })
        })
        .await
    }

    use crate::testing::json_response as json;

    fn source(text: &str) -> HealthzSource {
        let config = crate::config::Config::parse(text, "fleet.yaml").unwrap();
        HealthzSource::new(Arc::new(config)).unwrap()
    }

    #[tokio::test]
    async fn each_service_is_probed_in_inventory_order_and_read_by_the_rules() {
        let (port, server) = serve().await;
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let svc =
            |name: &str, url: String| format!("      - name: {name}\n        healthz: {url}\n");
        let at = |path: &str| format!("http://127.0.0.1:{port}{path}");
        let fleet = format!(
            "sources:\n  healthz:\n    timeout: 4s\n    concurrency: 3\n    degraded_values: [warning]\n\
             environments:\n  - name: prod\n    services:\n{}{}{}      - name: cron\n{}{}{}{}\
             \x20       address: 127.0.0.1\n",
            svc("api", at("/ok")),
            svc("web", at("/warn")),
            svc("db", at("/down")),
            svc("big", at("/big")),
            svc("chunked", at("/big-chunked")),
            svc("refused", format!("http://127.0.0.1:{closed_port}/ok")),
            svc("named", format!("http://api.example.net:{port}/ok")),
        );
        let s = source(&fleet);
        assert_eq!(s.name(), "healthz");
        assert_eq!(s.schedule().timeout.0, Duration::from_secs(4));
        assert_eq!(s.run_deadline(), Duration::from_secs(15));
        let out = s.collect().await.unwrap();
        let probes = out.downcast_ref::<HealthzFacts>().unwrap().clone();
        server.abort();
        let seen: Vec<_> = probes
            .iter()
            .map(|p| {
                (
                    p.service.as_str(),
                    p.health,
                    p.status_code,
                    p.commit.as_deref(),
                    p.reason.as_deref(),
                )
            })
            .collect();
        let kib = MAX_BODY / 1024;
        let too_big = format!("answered with more than {kib} KiB; a health answer is small");
        assert_eq!(
            seen,
            [
                ("api", Health::Green, Some(200), Some("4f2c9e1"), None),
                (
                    "web",
                    Health::Degraded,
                    Some(200),
                    None,
                    Some("reports status: Warning")
                ),
                ("db", Health::Red, Some(503), None, Some("HTTP 503")),
                ("big", Health::Red, Some(200), None, Some(too_big.as_str())),
                (
                    "chunked",
                    Health::Red,
                    Some(200),
                    None,
                    Some(too_big.as_str())
                ),
                (
                    "refused",
                    Health::Red,
                    None,
                    None,
                    Some("connection refused")
                ),
                ("named", Health::Green, Some(200), Some("4f2c9e1"), None),
            ]
        );
        assert!(probes.iter().all(|p| p.stack == "prod"));
    }

    #[tokio::test]
    async fn a_service_that_never_answers_is_red_at_the_timeout() {
        let (port, server) = serve().await;
        let s = source(&format!(
            "sources:\n  healthz:\n    timeout: 200ms\nenvironments:\n  - name: prod\n    services:\n      - name: hang\n        healthz: http://127.0.0.1:{port}/hang\n"
        ));
        let out = s.collect().await.unwrap();
        let p = out.downcast_ref::<HealthzFacts>().unwrap()[0].clone();
        server.abort();
        assert_eq!(
            (p.health, p.status_code, p.reason.as_deref()),
            (Health::Red, None, Some("timed out after 200 ms"))
        );
        assert!(p.duration_seconds >= 0.2, "{p:?}");
    }

    #[test]
    fn a_service_whose_address_does_not_resolve_is_red_with_why() {
        let t = Target {
            stack: "prod".into(),
            service: "api".into(),
            url: "https://api.example.net/healthz".parse().unwrap(),
            address: Some("nowhere.example.net".parse().unwrap()),
        };
        let d = HealthzConfig::default();
        let rules = Rules {
            status_field: &d.status_field,
            degraded_values: &d.degraded_values,
            commit_field: &d.commit_field,
            degraded_after: d.degraded_after.0,
        };
        let p = unreachable_at(t, "cannot resolve address nowhere.example.net", &rules);
        assert_eq!(
            p,
            ServiceProbe {
                stack: "prod".into(),
                service: "api".into(),
                health: Health::Red,
                status_code: None,
                duration_seconds: 0.0,
                commit: None,
                reason: Some("cannot resolve address nowhere.example.net".into()),
            }
        );
    }

    #[test]
    fn a_source_is_registered_only_when_a_service_has_a_url() {
        let config = |text: &str| -> Arc<dyn Watched> {
            Arc::new(crate::config::Config::parse(text, "fleet.yaml").unwrap())
        };
        let none = config("environments:\n  - name: prod\n    services:\n      - name: cron\n");
        assert!(register(&none).unwrap().is_empty());
        let one = config("environments:\n  - name: prod\n    services:\n      - name: cron\n      - name: api\n        healthz: https://api.example.net/healthz\n");
        assert_eq!(register(&one).unwrap().len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let bad = config(&format!(
            "sources:\n  tls:\n    ca_file: {}\nenvironments:\n  - name: prod\n    services:\n      - name: api\n        healthz: https://api.example.net/healthz\n",
            missing.display()
        ));
        let e = register(&bad).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!(
                "cannot read sources.tls.ca_file {}: ",
                missing.display()
            )),
            "{e}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let bad = config(&format!(
            "sources:\n  tls:\n    ca_file: {}\nenvironments:\n  - name: prod\n    services:\n      - name: api\n        healthz: https://api.example.net/healthz\n",
            garbage.display()
        ));
        let e = register(&bad).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!(
                "sources.tls.ca_file {}: not PEM certificates",
                garbage.display()
            )),
            "{e}"
        );
    }

    #[test]
    fn the_families_write_health_as_a_state_set_code_duration_and_commit() {
        let probe = |service: &str, health, code, commit: Option<&str>| ServiceProbe {
            stack: "prod".into(),
            service: service.into(),
            health,
            status_code: code,
            duration_seconds: 0.25,
            commit: commit.map(String::from),
            reason: None,
        };
        let facts = Facts::default().with(
            "healthz",
            vec![
                probe("api", Health::Degraded, Some(200), Some("4f2c9e1")),
                probe("db", Health::Red, None, None),
            ],
        );
        assert_eq!(
            crate::metrics::samples_of(facts, "fleet_service_"),
            [
                r#"fleet_service_health{stack="prod",component="api",state="green"} 0.0"#,
                r#"fleet_service_health{stack="prod",component="api",state="degraded"} 1.0"#,
                r#"fleet_service_health{stack="prod",component="api",state="red"} 0.0"#,
                r#"fleet_service_health{stack="prod",component="db",state="green"} 0.0"#,
                r#"fleet_service_health{stack="prod",component="db",state="degraded"} 0.0"#,
                r#"fleet_service_health{stack="prod",component="db",state="red"} 1.0"#,
                r#"fleet_service_http_status_code{stack="prod",component="api"} 200.0"#,
                r#"fleet_service_http_status_code{stack="prod",component="db"} 0.0"#,
                r#"fleet_service_probe_duration_seconds{stack="prod",component="api"} 0.25"#,
                r#"fleet_service_probe_duration_seconds{stack="prod",component="db"} 0.25"#,
                r#"fleet_service_commit_info{stack="prod",component="api",commit="4f2c9e1"} 1.0"#,
            ]
        );
    }

    #[test]
    fn the_defaults_and_the_check_of_concurrency() {
        let d = HealthzConfig::default();
        assert_eq!(
            (d.interval.0, d.timeout.0, d.degraded_after.0, d.concurrency),
            (
                Duration::from_secs(15),
                Duration::from_secs(5),
                Duration::from_secs(2),
                64
            )
        );
        assert_eq!(
            (d.status_field.as_str(), d.commit_field.as_str()),
            ("status", "commit")
        );
        assert_eq!(d.degraded_values, ["degraded", "warn", "warning"]);
        let s = <Healthz as crate::sources::SourceKind>::schedule(&d).unwrap();
        assert_eq!((s.interval, s.timeout), (d.interval, d.timeout));
        assert!(<Healthz as crate::sources::SourceKind>::check(&d, &[]).is_empty());
        let none = HealthzConfig {
            concurrency: 0,
            ..d
        };
        assert_eq!(
            <Healthz as crate::sources::SourceKind>::check(&none, &[]).len(),
            1
        );
    }

    #[tokio::test]
    async fn a_body_of_the_largest_size_read_is_read_whole() {
        let (port, server) = serve().await;
        let client = client_with(Duration::from_secs(5), &[], None).unwrap();
        let at = |path: &str| url::Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap();
        let (status, body) = fetch(&client, &at("/exact")).await.unwrap();
        assert_eq!((status, body.map(|b| b.len())), (200, Some(MAX_BODY)));
        let (_, body) = fetch(&client, &at("/exact-chunked")).await.unwrap();
        assert_eq!(body.map(|b| b.len()), Some(MAX_BODY));
        let (_, body) = fetch(&client, &at("/big")).await.unwrap();
        assert!(body.is_none());
        server.abort();
        assert_eq!(MAX_BODY, 65_536, "a health answer of 64 KiB is read");
    }

    #[tokio::test]
    async fn the_logged_causes_leave_out_the_url_and_its_credentials() {
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let client = client_with(Duration::from_secs(5), &[], None).unwrap();
        let url =
            url::Url::parse(&format!("http://probe:sekrit@127.0.0.1:{port}/healthz")).unwrap();
        let e = fetch(&client, &url).await.unwrap_err();
        let logged = chain(&e);
        assert!(logged.contains("Connection refused"), "{logged}");
        assert!(
            logged.contains(": "),
            "each cause after the one before: {logged}"
        );
        assert!(
            !logged.starts_with(": ") && !logged.ends_with(": "),
            "{logged}"
        );
        assert!(
            !logged.contains("sekrit") && !logged.contains("/healthz"),
            "{logged}"
        );
    }

    #[test]
    fn a_ca_file_that_cannot_be_used_stops_the_client_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("ca.pem");
        let config = |path: &std::path::Path| {
            crate::config::Config::parse(
                &format!(
                    "sources:\n  tls:\n    ca_file: {}\nenvironments:\n  - name: prod\n",
                    path.display()
                ),
                "fleet.yaml",
            )
            .unwrap()
        };
        let e = http_client(&config(&missing), Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "cannot read sources.tls.ca_file {}: ",
                missing.display()
            )),
            "{e}"
        );
        std::fs::write(
            &missing,
            "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = http_client(&config(&missing), Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        // A certificate that does not parse: refused when the client is built.
        assert!(
            e.starts_with("cannot build HTTP client") || e.contains("not PEM certificates"),
            "{e}"
        );
        assert!(http_client(
            &crate::config::Config::parse("environments:\n  - name: prod\n", "fleet.yaml").unwrap(),
            Duration::from_secs(1)
        )
        .is_ok());
    }
}
