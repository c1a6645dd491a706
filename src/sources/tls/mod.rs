//! The TLS source: one handshake per configured `host:port`, reading the
//! presented chain's expiry whether or not it verifies, then checking it
//! against the trust roots for the name separately.

use crate::catalogue::metric;
use crate::exposition::{b, family, DescriptorEncoder};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::sources::Watched;
use crate::sources::{CollectFuture, Source, SourceError};
use crate::values::{Address, HostPort, Schedule, Seconds};

pub mod view;
pub mod words;

/// The TLS source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// How often the source runs.
    #[serde(default = "TlsConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "TlsConfig::default_timeout")]
    pub timeout: Seconds,
    #[serde(default = "super::default_concurrency")]
    pub concurrency: usize,
    /// Extra PEM trust roots besides the built-in web roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl TlsConfig {
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

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
            concurrency: super::default_concurrency(),
            ca_file: None,
        }
    }
}

/// One TLS handshake.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TlsProbe {
    pub stack: String,
    pub service: String,
    /// `host:port` as configured; `host:port@address` when dialled at a
    /// service's `address`.
    pub host: String,
    pub up: bool,
    /// Leaf certificate notAfter, Unix seconds.
    pub leaf_not_after: Option<i64>,
    /// Earliest notAfter anywhere in the presented chain, Unix seconds.
    pub chain_earliest_not_after: Option<i64>,
    /// Whether the chain verifies for the host name against the trust roots.
    pub chain_valid: bool,
    pub error: Option<String>,
}

/// Handshakes with every configured TLS endpoint.
pub struct TlsSource {
    config: Arc<dyn Watched>,
    connector: TlsConnector,
    verifier: Arc<WebPkiServerVerifier>,
}

impl TlsSource {
    pub fn new(config: Arc<dyn Watched>) -> Result<Self, SourceError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &config.sources().tls.ca_file {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    SourceError::new(format!("sources.tls.ca_file {}: {e}", path.display()))
                })?;
            for c in certs {
                roots.add(c).map_err(|e| {
                    SourceError::new(format!("sources.tls.ca_file {}: {e}", path.display()))
                })?;
            }
        }
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| SourceError::new(format!("cannot build certificate verifier: {e}")))?;
        let client = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SourceError::new(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAndRecord { provider }))
            .with_no_client_auth();
        Ok(TlsSource {
            config,
            connector: TlsConnector::from(Arc::new(client)),
            verifier,
        })
    }
}

impl Source for TlsSource {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn schedule(&self) -> Schedule {
        self.config.sources().tls.schedule()
    }

    fn run_deadline(&self) -> Duration {
        self.config.sources().tls.interval.0
    }

    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async move {
            let cfg = &self.config.sources().tls;
            type Target = (String, String, HostPort, Option<Address>);
            let targets: Vec<Target> = self
                .config
                .environments()
                .iter()
                .flat_map(|e| {
                    e.services.iter().filter_map(move |s| {
                        s.tls.as_ref().map(|hp| {
                            (
                                e.name.0.clone(),
                                s.name.0.clone(),
                                hp.clone(),
                                s.address.clone(),
                            )
                        })
                    })
                })
                .collect();
            let mut probes: Vec<(usize, TlsProbe)> = stream::iter(targets.into_iter().enumerate())
                .map(|(i, (stack, service, hp, address))| async move {
                    let mut p = match tokio::time::timeout(
                        cfg.timeout.0,
                        self.handshake(&hp, address.as_ref()),
                    )
                    .await
                    {
                        Ok(p) => p,
                        Err(_) => failed(
                            &hp,
                            format!("timed out after {}", crate::health::seconds(cfg.timeout.0)),
                        ),
                    };
                    p.stack = stack;
                    p.service = service;
                    // Backends behind one name are told apart by where they were dialled.
                    if let Some(a) = &address {
                        p.host = format!("{}@{a}", p.host);
                    }
                    (i, p)
                })
                .buffer_unordered(cfg.concurrency)
                .collect()
                .await;
            // Inventory order, so every view lists hosts the same way.
            probes.sort_by_key(|(i, _)| *i);
            Ok(super::output(
                probes.into_iter().map(|(_, p)| p).collect::<TlsFacts>(),
            ))
        })
    }
}

impl TlsSource {
    /// Connects to `hp`, or to `address` on its port, and verifies the
    /// certificate against `hp`'s host either way.
    async fn handshake(&self, hp: &HostPort, address: Option<&Address>) -> TlsProbe {
        let name = match ServerName::try_from(hp.host.clone()) {
            Ok(n) => n,
            Err(_) => return failed(hp, format!("not a host name: {:?}", hp.host)),
        };
        let dial = address.map_or(hp.host.as_str(), |a| a.0.as_str());
        let tcp = match TcpStream::connect((dial, hp.port)).await {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(host = %hp.host, port = hp.port, error = %e, "TLS probe: connect failed");
                return failed(hp, words::connection(&e));
            }
        };
        let tls = match self.connector.connect(name.clone(), tcp).await {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(host = %hp.host, port = hp.port, error = ?e, "TLS probe: handshake failed");
                return failed(hp, words::connection(&e));
            }
        };
        let (_, conn) = tls.get_ref();
        let Some(chain) = conn.peer_certificates().filter(|c| !c.is_empty()) else {
            return failed(hp, "no certificate presented".into());
        };
        let chain_valid = self
            .verifier
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
            .is_ok();
        let expiries = chain_expiries(chain);
        TlsProbe {
            stack: String::new(),
            service: String::new(),
            host: hp.to_string(),
            up: true,
            leaf_not_after: expiries.first().copied().flatten(),
            chain_earliest_not_after: expiries.iter().flatten().min().copied(),
            chain_valid,
            error: None,
        }
    }
}

/// notAfter of each certificate, leaf first; `None` for one that does not parse.
pub fn chain_expiries(chain: &[CertificateDer<'_>]) -> Vec<Option<i64>> {
    chain
        .iter()
        .map(|der| {
            x509_parser::parse_x509_certificate(der)
                .ok()
                .map(|(_, c)| c.validity().not_after.timestamp())
        })
        .collect()
}

fn failed(hp: &HostPort, error: String) -> TlsProbe {
    TlsProbe {
        stack: String::new(),
        service: String::new(),
        host: hp.to_string(),
        up: false,
        leaf_not_after: None,
        chain_earliest_not_after: None,
        chain_valid: false,
        error: Some(error),
    }
}

/// Completes every handshake (checking the handshake signatures) so the chain
/// can be read even when it would not verify; verification against the roots
/// happens afterwards and is reported on its own.
#[derive(Debug)]
struct AcceptAndRecord {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAndRecord {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The registry's builder: a TLS source when any service has a `tls`
/// endpoint.
pub fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
    let wanted = config
        .environments()
        .iter()
        .any(|e| e.services.iter().any(|s| s.tls.is_some()));
    Ok(if wanted {
        vec![Arc::new(TlsSource::new(config.clone())?)]
    } else {
        Vec::new()
    })
}
/// What one run found: one reading per target.
pub type TlsFacts = Vec<TlsProbe>;

impl super::SourceFacts for Vec<TlsProbe> {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        super::retain_listed(self, |p| listed.service(&p.stack, &p.service))
    }
    fn encode(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        encode(self, enc)
    }
}

/// This source's families: handshake up, leaf and chain expiry, chain validity.
pub fn encode(probes: &[TlsProbe], enc: &mut DescriptorEncoder) -> std::fmt::Result {
    family(
        enc,
        &TLS_UP,
        probes
            .iter()
            .map(|p| ([p.stack.as_str(), p.host.as_str()], b(p.up))),
    )?;
    family(
        enc,
        &TLS_CERT_NOT_AFTER,
        probes.iter().filter_map(|p| {
            p.leaf_not_after
                .map(|t| ([p.stack.as_str(), p.host.as_str()], t as f64))
        }),
    )?;
    family(
        enc,
        &TLS_CHAIN_NOT_AFTER,
        probes.iter().filter_map(|p| {
            p.chain_earliest_not_after
                .map(|t| ([p.stack.as_str(), p.host.as_str()], t as f64))
        }),
    )?;
    family(
        enc,
        &TLS_CHAIN_VALID,
        probes
            .iter()
            .filter(|p| p.up)
            .map(|p| ([p.stack.as_str(), p.host.as_str()], b(p.chain_valid))),
    )?;
    Ok(())
}

/// The tls source, as the registry knows it.
pub struct Tls;

impl super::SourceKind for Tls {
    const NAME: &'static str = "tls";
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[
        TLS_UP,
        TLS_CERT_NOT_AFTER,
        TLS_CHAIN_NOT_AFTER,
        TLS_CHAIN_VALID,
    ];
    type Settings = TlsConfig;
    type Facts = TlsFacts;
    type Part = view::Part;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn schedule(settings: &TlsConfig) -> Option<Schedule> {
        Some(settings.schedule())
    }
    fn check(settings: &TlsConfig, _: &[crate::inventory::Environment]) -> Vec<(String, String)> {
        super::at_least_one_in_flight(settings.concurrency)
    }
}

// Its families.
metric!(
    TLS_UP,
    "fleet_tls_up",
    Gauge,
    ["stack", "endpoint"],
    "1 if the TLS handshake completed and a certificate was presented."
);
metric!(
    TLS_CERT_NOT_AFTER,
    "fleet_tls_cert_not_after_timestamp_seconds",
    Gauge,
    ["stack", "endpoint"],
    "Expiry (notAfter) of the leaf certificate."
);
metric!(
    TLS_CHAIN_NOT_AFTER,
    "fleet_tls_chain_earliest_not_after_timestamp_seconds",
    Gauge,
    ["stack", "endpoint"],
    "Earliest expiry (notAfter) of any certificate in the presented chain."
);
metric!(
    TLS_CHAIN_VALID,
    "fleet_tls_chain_valid",
    Gauge,
    ["stack", "endpoint"],
    "1 if the presented chain verifies against the trust roots for the host name."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::Facts;
    use rcgen::{
        date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair,
    };
    use tokio::net::TcpListener;

    /// A TLS server on loopback presenting a leaf for `localhost` and
    /// `api.example.net` (expiring 2032) and its CA (expiring 2031).
    struct Server {
        port: u16,
        ca_pem: String,
        leaf_not_after: i64,
        ca_not_after: i64,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn serve() -> Server {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "probe test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.not_after = date_time_ymd(2031, 1, 1);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".into(), "api.example.net".into()]).unwrap();
        leaf.not_after = date_time_ymd(2032, 1, 1);
        let leaf = leaf.signed_by(&key, &ca).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });
        Server {
            port,
            ca_pem: ca.pem(),
            leaf_not_after: date_time_ymd(2032, 1, 1).unix_timestamp(),
            ca_not_after: date_time_ymd(2031, 1, 1).unix_timestamp(),
            task,
        }
    }

    fn source(text: &str) -> TlsSource {
        let config = crate::config::Config::parse(text, "fleet.yaml").unwrap();
        TlsSource::new(Arc::new(config)).unwrap()
    }

    async fn collect(source: &TlsSource) -> TlsFacts {
        let out = source.collect().await.unwrap();
        out.downcast_ref::<TlsFacts>().unwrap().clone()
    }

    #[tokio::test]
    async fn each_endpoint_is_probed_in_inventory_order_and_read_whole() {
        let server = serve().await;
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &server.ca_pem).unwrap();
        // A port nothing listens on.
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let p = server.port;
        let fleet = format!(
            "sources:\n  tls:\n    ca_file: {ca}\n    timeout: 1500ms\n    concurrency: 2\n\
             environments:\n  - name: prod\n    services:\n\
             \x20     - name: api\n        tls: localhost:{p}\n\
             \x20     - name: cron\n\
             \x20     - name: lb\n        tls: api.example.net:{p}\n        address: 127.0.0.1\n\
             \x20     - name: by-ip\n        tls: 127.0.0.1:{p}\n\
             \x20     - name: down\n        tls: localhost:{closed_port}\n\
             \x20 - name: staging\n    services:\n      - name: api\n        tls: localhost:{p}\n",
            ca = ca_file.display()
        );
        let trusting = source(&fleet);
        assert_eq!(trusting.name(), "tls");
        assert_eq!(trusting.schedule().timeout.0, Duration::from_millis(1500));
        assert_eq!(trusting.run_deadline(), Duration::from_secs(300));
        let probes = collect(&trusting).await;
        let seen: Vec<_> = probes
            .iter()
            .map(|t| {
                (
                    t.stack.as_str(),
                    t.service.as_str(),
                    t.host.clone(),
                    t.up,
                    t.chain_valid,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("prod", "api", format!("localhost:{p}"), true, true),
                (
                    "prod",
                    "lb",
                    format!("api.example.net:{p}@127.0.0.1"),
                    true,
                    true
                ),
                // The certificate names no address.
                ("prod", "by-ip", format!("127.0.0.1:{p}"), true, false),
                (
                    "prod",
                    "down",
                    format!("localhost:{closed_port}"),
                    false,
                    false
                ),
                ("staging", "api", format!("localhost:{p}"), true, true),
            ]
        );
        assert_eq!(probes[0].leaf_not_after, Some(server.leaf_not_after));
        assert_eq!(
            probes[0].chain_earliest_not_after,
            Some(server.ca_not_after)
        );
        assert_eq!(probes[0].error, None);
        assert_eq!(probes[3].error.as_deref(), Some("connection refused"));
        assert_eq!(probes[3].leaf_not_after, None);

        // Without the CA, every chain is read but none verifies.
        let untrusting =
            source(&fleet.replace(&format!("    ca_file: {}\n", ca_file.display()), ""));
        let probes = collect(&untrusting).await;
        assert!(probes[0].up && !probes[0].chain_valid, "{probes:?}");
        assert_eq!(probes[0].leaf_not_after, Some(server.leaf_not_after));
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_fails_at_the_timeout() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let s = source(&format!(
            "sources:\n  tls:\n    timeout: 200ms\nenvironments:\n  - name: prod\n    services:\n      - name: silent\n        tls: localhost:{port}\n"
        ));
        let probes = collect(&s).await;
        let p = &probes[0];
        assert_eq!(
            (p.up, p.error.as_deref(), p.leaf_not_after),
            (false, Some("timed out after 200 ms"), None)
        );
        drop(silent);
    }

    #[tokio::test]
    async fn a_host_that_is_no_name_fails_without_dialling() {
        let s = source("environments:\n  - name: prod\n");
        let hp = HostPort {
            host: "not a name".into(),
            port: 443,
        };
        let p = s.handshake(&hp, None).await;
        assert_eq!(
            (p.up, p.error.as_deref(), p.host.as_str()),
            (
                false,
                Some("not a host name: \"not a name\""),
                "not a name:443"
            )
        );
    }

    #[test]
    fn a_bad_ca_file_stops_the_source_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let config = crate::config::Config::parse(
            &format!(
                "sources:\n  tls:\n    ca_file: {}\nenvironments:\n  - name: prod\n",
                ca.display()
            ),
            "fleet.yaml",
        )
        .unwrap();
        let e = TlsSource::new(Arc::new(config)).err().unwrap().to_string();
        assert!(
            e.starts_with(&format!("sources.tls.ca_file {}: ", ca.display())),
            "{e}"
        );
    }

    #[test]
    fn expiries_are_read_per_certificate_and_none_for_garbage() {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(vec!["a.example".into()]).unwrap();
        p.not_after = date_time_ymd(2030, 6, 1);
        let cert = p.self_signed(&key).unwrap();
        assert_eq!(
            chain_expiries(&[cert.der().clone(), CertificateDer::from(vec![0u8; 4])]),
            [Some(date_time_ymd(2030, 6, 1).unix_timestamp()), None]
        );
    }

    #[test]
    fn the_families_write_every_probe_and_validity_only_when_up() {
        let up = TlsProbe {
            stack: "prod".into(),
            service: "api".into(),
            host: "api.example.net:443".into(),
            up: true,
            leaf_not_after: Some(1_900_000_000),
            chain_earliest_not_after: Some(1_800_000_000),
            chain_valid: true,
            error: None,
        };
        let down = TlsProbe {
            host: "db.example.net:5432".into(),
            up: false,
            leaf_not_after: None,
            chain_earliest_not_after: None,
            chain_valid: false,
            error: Some("connection refused".into()),
            ..up.clone()
        };
        let facts = Facts::default().with("tls", vec![up, down]);
        assert_eq!(
            crate::metrics::samples_of(facts, "fleet_tls_"),
            [
                r#"fleet_tls_up{stack="prod",endpoint="api.example.net:443"} 1.0"#,
                r#"fleet_tls_up{stack="prod",endpoint="db.example.net:5432"} 0.0"#,
                r#"fleet_tls_cert_not_after_timestamp_seconds{stack="prod",endpoint="api.example.net:443"} 1900000000.0"#,
                r#"fleet_tls_chain_earliest_not_after_timestamp_seconds{stack="prod",endpoint="api.example.net:443"} 1800000000.0"#,
                r#"fleet_tls_chain_valid{stack="prod",endpoint="api.example.net:443"} 1.0"#,
            ]
        );
    }

    #[test]
    fn at_least_one_handshake_must_be_allowed_in_flight() {
        let settings = TlsConfig {
            concurrency: 0,
            ..TlsConfig::default()
        };
        assert_eq!(
            <Tls as crate::sources::SourceKind>::check(&settings, &[]),
            [(
                "concurrency".to_string(),
                "concurrency must be at least 1".to_string()
            )]
        );
        assert!(<Tls as crate::sources::SourceKind>::check(&TlsConfig::default(), &[]).is_empty());
        let schedule =
            <Tls as crate::sources::SourceKind>::schedule(&TlsConfig::default()).unwrap();
        assert_eq!(
            (schedule.interval.0, schedule.timeout.0),
            (Duration::from_secs(300), Duration::from_secs(10))
        );
    }

    #[test]
    fn a_removed_environment_takes_its_certificates_along() {
        let probe = |stack: &str| TlsProbe {
            stack: stack.into(),
            service: "api".into(),
            host: "api.example.net:443".into(),
            up: true,
            leaf_not_after: Some(1),
            chain_earliest_not_after: Some(1),
            chain_valid: true,
            error: None,
        };
        let mut facts = Facts::default().with("tls", vec![probe("prod"), probe("staging")]);
        facts.retire(&crate::testing::environments(
            "  - name: prod\n    services:\n      - name: api\n        tls: api.example.net:443\n",
        ));
        assert_eq!(facts.get::<TlsFacts>().unwrap(), &vec![probe("prod")]);
    }
}
