//! `tls_server_config`: exporter-toolkit's TLS settings, applied with
//! rustls. Every key the toolkit documents is read; one rustls cannot honour
//! (a cipher suite or curve it lacks) is an error naming the key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use tokio_rustls::TlsAcceptor;

use crate::config::ConfigError;

/// `tls_server_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// PEM certificate chain, leaf first.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of the leaf.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth_type: Option<ClientAuthType>,
    /// PEM CA certificates that client certificates must chain to.
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub min_version: Option<TlsVersion>,
    /// The newest TLS version accepted.
    #[serde(default)]
    pub max_version: Option<TlsVersion>,
    /// TLS 1.2 cipher suites, by Go's names, in preference order (TLS 1.3's
    /// are always on, as in Go).
    #[serde(default)]
    pub cipher_suites: Option<Vec<String>>,
    /// Key-exchange groups, by Go's names (`X25519`, `CurveP256`, `CurveP384`).
    #[serde(default)]
    pub curve_preferences: Option<Vec<String>>,
    /// Choose the cipher suite by the server's order, not the client's.
    #[serde(default)]
    pub prefer_server_cipher_suites: Option<bool>,
    /// A verified client certificate must also carry one of these subject
    /// alternative names (DNS name, IP address, e-mail or URI).
    #[serde(default)]
    pub client_allowed_sans: Option<Vec<String>>,
}

/// Which client certificates the server asks for (Go's `tls.ClientAuthType`
/// names). `RequestClientCert` and `RequireAnyClientCert` accept
/// certificates nobody verified, and are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthType {
    NoClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl<'de> Deserialize<'de> for ClientAuthType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const SUPPORTED: &str =
            "NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert";
        let s = String::deserialize(d)?;
        match s.as_str() {
            "NoClientCert" => Ok(ClientAuthType::NoClientCert),
            "VerifyClientCertIfGiven" => Ok(ClientAuthType::VerifyClientCertIfGiven),
            "RequireAndVerifyClientCert" => Ok(ClientAuthType::RequireAndVerifyClientCert),
            "RequestClientCert" | "RequireAnyClientCert" => Err(de::Error::custom(format!(
                "{s} is not supported: it accepts client certificates without verifying them; use {SUPPORTED}"
            ))),
            _ => Err(de::Error::custom(format!(
                "unknown client_auth_type {s:?}: use {SUPPORTED}"
            ))),
        }
    }
}

/// A TLS version, by Go's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(de::Error::custom(format!(
                "{s} is not supported: fleetpulse serves TLS 1.2 and 1.3 only; use TLS12 or TLS13"
            ))),
            _ => Err(de::Error::custom(format!(
                "unknown TLS version {s:?}: use TLS12 or TLS13"
            ))),
        }
    }
}

impl TlsServerConfig {
    /// exporter-toolkit serves plain HTTP for an empty `tls_server_config`.
    pub(super) fn is_set(&self) -> bool {
        self.cert_file.is_some()
            || self.key_file.is_some()
            || self.client_auth_type.is_some()
            || self.client_ca_file.is_some()
            || self.min_version.is_some()
            || self.max_version.is_some()
            || self.cipher_suites.is_some()
            || self.curve_preferences.is_some()
            || self.prefer_server_cipher_suites.is_some()
            || self.client_allowed_sans.is_some()
    }
}

fn resolve(dir: &Path, p: &Path) -> PathBuf {
    if p.is_relative() {
        dir.join(p)
    } else {
        p.to_path_buf()
    }
}

pub(super) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read PEM certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {}", path.display()));
    }
    Ok(certs)
}

pub(super) fn tls_acceptor(
    tls: &TlsServerConfig,
    dir: &Path,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(TlsAcceptor, CertificateDer<'static>), ConfigError> {
    const F: &str = "tls_server_config";
    let cert_file = tls
        .cert_file
        .as_deref()
        .ok_or_else(|| fail(F, "cert_file is required to serve TLS".into()))?;
    let key_file = tls
        .key_file
        .as_deref()
        .ok_or_else(|| fail(F, "key_file is required to serve TLS".into()))?;
    // What needs no file first, so every such problem is found without one.
    let auth = tls.client_auth_type.unwrap_or(ClientAuthType::NoClientCert);
    let provider = Arc::new(provider(tls, fail)?);
    let min = tls.min_version.unwrap_or(TlsVersion::Tls12);
    let max = tls.max_version.unwrap_or(TlsVersion::Tls13);
    if min > max {
        return Err(fail(
            "tls_server_config.max_version",
            "older than min_version: no version would be left".into(),
        ));
    }
    if tls.client_allowed_sans.is_some() && auth == ClientAuthType::NoClientCert {
        return Err(fail(
            "tls_server_config.client_allowed_sans",
            "client_allowed_sans needs client_auth_type RequireAndVerifyClientCert or VerifyClientCertIfGiven".into(),
        ));
    }
    let certs = read_certificates(&resolve(dir, cert_file))
        .map_err(|m| fail("tls_server_config.cert_file", m))?;
    let key_path = resolve(dir, key_file);
    // The key's own bytes never reach a message: only the path and the kind of problem.
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| {
        let why = match e {
            rustls_pki_types::pem::Error::Io(io) => io.to_string(),
            rustls_pki_types::pem::Error::NoItemsFound => "no PEM private key in it".into(),
            _ => "not a PEM private key".into(),
        };
        fail(
            "tls_server_config.key_file",
            format!("cannot read the private key {}: {why}", key_path.display()),
        )
    })?;
    let versions: &[&rustls::SupportedProtocolVersion] = match (min, max) {
        (TlsVersion::Tls13, _) => &[&rustls::version::TLS13],
        (TlsVersion::Tls12, TlsVersion::Tls12) => &[&rustls::version::TLS12],
        (TlsVersion::Tls12, TlsVersion::Tls13) => {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        }
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| fail("tls_server_config.cipher_suites", e.to_string()))?;
    let builder =
        match (auth, &tls.client_ca_file) {
            (ClientAuthType::NoClientCert, None) => builder.with_no_client_auth(),
            (ClientAuthType::NoClientCert, Some(_)) => return Err(fail(
                "tls_server_config.client_ca_file",
                "client CAs are given but client_auth_type is NoClientCert: set client_auth_type \
                 to VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                    .into(),
            )),
            (_, None) => {
                return Err(fail(
                    "tls_server_config.client_auth_type",
                    "verifying client certificates needs client_ca_file".into(),
                ))
            }
            (_, Some(ca_file)) => {
                let field = "tls_server_config.client_ca_file";
                let mut roots = RootCertStore::empty();
                for ca in read_certificates(&resolve(dir, ca_file)).map_err(|m| fail(field, m))? {
                    roots.add(ca).map_err(|e| {
                        fail(
                            field,
                            format!("not a usable CA certificate in {}: {e}", ca_file.display()),
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let verifier = if auth == ClientAuthType::VerifyClientCertIfGiven {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier.build().map_err(|e| fail(field, e.to_string()))?;
                match &tls.client_allowed_sans {
                    Some(sans) => builder.with_client_cert_verifier(Arc::new(AllowedSans {
                        inner: verifier,
                        allowed: sans.clone(),
                    })),
                    None => builder.with_client_cert_verifier(verifier),
                }
            }
        };
    let leaf = certs[0].clone();
    let key_error = |e: rustls::Error| {
        fail(
            "tls_server_config.key_file",
            format!(
                "the key in {} does not fit the certificate in {}: {e}",
                key_path.display(),
                cert_file.display()
            ),
        )
    };
    let certified =
        rustls::sign::CertifiedKey::from_der(certs, key, &provider).map_err(key_error)?;
    let cert_path = resolve(dir, cert_file);
    let resolver = Rereading {
        current: std::sync::RwLock::new((stamps(&cert_path, &key_path), Arc::new(certified))),
        failed: std::sync::Mutex::new(None),
        cert_path,
        key_path: key_path.clone(),
        provider: provider.clone(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(false);
    Ok((TlsAcceptor::from(Arc::new(config)), leaf))
}

/// The crypto provider with the cipher suites and curves the file asks for.
fn provider(
    tls: &TlsServerConfig,
    fail: &dyn Fn(&str, String) -> ConfigError,
) -> Result<rustls::crypto::CryptoProvider, ConfigError> {
    use rustls::crypto::aws_lc_rs::{cipher_suite as cs, kx_group};
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(names) = &tls.cipher_suites {
        const KNOWN: [(&str, rustls::SupportedCipherSuite); 8] = [
            (
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
            (
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
            (
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            ),
            (
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            ),
            (
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
            (
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
            ),
        ];
        let mut chosen: Vec<rustls::SupportedCipherSuite> = p
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        for (i, name) in names.iter().enumerate() {
            match KNOWN.iter().find(|(n, _)| n == name) {
                Some((_, suite)) => chosen.push(*suite),
                None => {
                    return Err(fail(
                        &format!("tls_server_config.cipher_suites[{i}]"),
                        format!(
                            "{name} is not available: rustls offers TLS 1.2 with {} only (TLS 1.3's suites are always on)",
                            KNOWN.iter().map(|(n, _)| *n).filter(|n| n.ends_with("SHA256") || n.ends_with("SHA384")).collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
            }
        }
        p.cipher_suites = chosen;
    }
    if let Some(names) = &tls.curve_preferences {
        let mut groups: Vec<&'static dyn rustls::crypto::SupportedKxGroup> = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let g: &'static dyn rustls::crypto::SupportedKxGroup = match name.as_str() {
                "X25519" => kx_group::X25519,
                "CurveP256" => kx_group::SECP256R1,
                "CurveP384" => kx_group::SECP384R1,
                "X25519MLKEM768" => kx_group::X25519MLKEM768,
                _ => {
                    return Err(fail(
                        &format!("tls_server_config.curve_preferences[{i}]"),
                        format!("{name} is not available: use X25519, CurveP256, CurveP384 or X25519MLKEM768"),
                    ))
                }
            };
            groups.push(g);
        }
        p.kx_groups = groups;
    }
    Ok(p)
}

/// A client verifier that also requires one of the allowed subject
/// alternative names on the client's certificate.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    allowed: Vec<String>,
}

impl rustls::server::danger::ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let sans = subject_alt_names(end_entity);
        if sans.iter().any(|s| self.allowed.contains(s)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate's subject alternative names, as text.
fn subject_alt_names(der: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(s) | GeneralName::RFC822Name(s) | GeneralName::URI(s) => {
                Some(s.to_string())
            }
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// When the certificate and key files were last changed.
type Stamps = (Option<std::time::SystemTime>, Option<std::time::SystemTime>);

fn stamps(cert: &Path, key: &Path) -> Stamps {
    let changed = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (changed(cert), changed(key))
}

/// Serves the certificate and key files as they are now, as exporter-toolkit
/// does: when either file changes, the pair is read again at the next
/// handshake, so a renewed certificate needs no restart. A pair that does
/// not load (a key not yet replaced with its certificate) leaves the last
/// good one serving, and is tried again once the files change.
#[derive(Debug)]
struct Rereading {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<rustls::crypto::CryptoProvider>,
    current: std::sync::RwLock<(Stamps, Arc<rustls::sign::CertifiedKey>)>,
    /// The stamps of the last pair that failed to load, logged once.
    failed: std::sync::Mutex<Option<Stamps>>,
}

impl Rereading {
    fn load(&self) -> Result<rustls::sign::CertifiedKey, String> {
        let certs = read_certificates(&self.cert_path)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_path)
            .map_err(|_| format!("cannot read the private key {}", self.key_path.display()))?;
        rustls::sign::CertifiedKey::from_der(certs, key, &self.provider)
            .map_err(|e| format!("the key does not fit the certificate: {e}"))
    }
}

impl rustls::server::ResolvesServerCert for Rereading {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let now = stamps(&self.cert_path, &self.key_path);
        {
            let current = self.current.read().unwrap_or_else(|e| e.into_inner());
            if current.0 == now {
                return Some(current.1.clone());
            }
        }
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if *failed != Some(now) {
            match self.load() {
                Ok(key) => {
                    let key = Arc::new(key);
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = (now, key.clone());
                    *failed = None;
                    tracing::info!(cert = %self.cert_path.display(), "serving the renewed certificate");
                    return Some(key);
                }
                Err(why) => {
                    tracing::warn!(cert = %self.cert_path.display(), error = %why, "the changed certificate does not load; the previous one keeps serving");
                    *failed = Some(now);
                }
            }
        }
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .1
                .clone(),
        )
    }
}
