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

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::webconfig::WebSecurity;
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
    use rustls::{NamedGroup, ProtocolVersion};
    use rustls_pki_types::ServerName;

    /// A CA, a `localhost` certificate it issued, and a second CA for
    /// client certificates, written to a directory.
    pub(in crate::webconfig) struct Pki {
        pub dir: tempfile::TempDir,
        pub ca: CertificateDer<'static>,
        pub leaf: CertificateDer<'static>,
        clients: CertifiedIssuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap()
    }

    impl Pki {
        pub fn new() -> Pki {
            let dir = tempfile::tempdir().unwrap();
            let servers = ca("servers CA");
            let clients = ca("clients CA");
            let key = KeyPair::generate().unwrap();
            let leaf = CertificateParams::new(vec!["localhost".into()])
                .unwrap()
                .signed_by(&key, &servers)
                .unwrap();
            std::fs::write(dir.path().join("server.crt"), leaf.pem()).unwrap();
            std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
            std::fs::write(dir.path().join("clients-ca.crt"), clients.pem()).unwrap();
            Pki {
                dir,
                ca: servers.der().clone(),
                leaf: leaf.der().clone(),
                clients,
            }
        }

        /// The acceptor of a web config whose `tls_server_config` is
        /// `server.crt`, `server.key` and then `more`.
        pub fn acceptor(&self, more: &str) -> Result<TlsAcceptor, String> {
            let text = format!(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n{more}"
            );
            WebSecurity::from_text(&text, "web.yml", self.dir.path())
                .map(|s| s.tls.expect("TLS is configured"))
                .map_err(|e| e.to_string())
        }

        /// A client certificate for `sans`, issued by the clients' CA.
        fn client_identity(
            &self,
            sans: Vec<SanType>,
        ) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.subject_alt_names = sans;
            let cert = p.signed_by(&key, &self.clients).unwrap();
            (
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
        }

        /// A client trusting the servers' CA, with `versions` and the
        /// provider's defaults changed by `tune`.
        fn client(
            &self,
            versions: &[&'static rustls::SupportedProtocolVersion],
            tune: impl FnOnce(&mut rustls::crypto::CryptoProvider),
            identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
        ) -> rustls::ClientConfig {
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            tune(&mut provider);
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            let b = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots);
            match identity {
                Some((chain, key)) => b.with_client_auth_cert(chain, key).unwrap(),
                None => b.with_no_client_auth(),
            }
        }
    }

    /// What a handshake agreed on, as the client saw it.
    #[derive(Debug)]
    pub(in crate::webconfig) struct Agreed {
        pub version: ProtocolVersion,
        pub suite: rustls::CipherSuite,
        pub group: NamedGroup,
        pub leaf: CertificateDer<'static>,
    }

    /// One handshake between `client` and `acceptor` over an in-memory pipe;
    /// an error when either side fails it.
    pub(in crate::webconfig) async fn handshake(
        acceptor: &TlsAcceptor,
        client: rustls::ClientConfig,
    ) -> Result<Agreed, String> {
        let (c, s) = tokio::io::duplex(64 * 1024);
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = ServerName::try_from("localhost").unwrap();
        let both = async { tokio::join!(connector.connect(name, c), acceptor.accept(s)) };
        let (client, server) = tokio::time::timeout(std::time::Duration::from_secs(10), both)
            .await
            .expect("a handshake over a pipe ends at once");
        let (client, server) = match (client, server) {
            (Ok(c), Ok(s)) => (c, s),
            (c, s) => {
                return Err(format!(
                    "client: {:?}; server: {:?}",
                    c.err(),
                    s.err().map(|e| e.to_string())
                ))
            }
        };
        drop(server);
        let conn = client.get_ref().1;
        Ok(Agreed {
            version: conn.protocol_version().unwrap(),
            suite: conn.negotiated_cipher_suite().unwrap().suite(),
            group: conn.negotiated_key_exchange_group().unwrap().name(),
            leaf: conn.peer_certificates().unwrap()[0].clone().into_owned(),
        })
    }

    const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    const BOTH: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];

    #[test]
    fn any_one_key_makes_the_section_set_and_none_leaves_it_unset() {
        assert!(!TlsServerConfig::default().is_set());
        let one: [fn(&mut TlsServerConfig); 10] = [
            |t| t.cert_file = Some("a".into()),
            |t| t.key_file = Some("a".into()),
            |t| t.client_auth_type = Some(ClientAuthType::NoClientCert),
            |t| t.client_ca_file = Some("a".into()),
            |t| t.min_version = Some(TlsVersion::Tls12),
            |t| t.max_version = Some(TlsVersion::Tls13),
            |t| t.cipher_suites = Some(vec![]),
            |t| t.curve_preferences = Some(vec![]),
            |t| t.prefer_server_cipher_suites = Some(false),
            |t| t.client_allowed_sans = Some(vec![]),
        ];
        for (i, set) in one.iter().enumerate() {
            let mut t = TlsServerConfig::default();
            set(&mut t);
            assert!(t.is_set(), "key {i} alone");
        }
    }

    #[tokio::test]
    async fn the_versions_served_are_those_between_min_and_max() {
        let pki = Pki::new();
        let default = pki.acceptor("").unwrap();
        let only12 = pki
            .acceptor("  min_version: TLS12\n  max_version: TLS12\n")
            .unwrap();
        let only13 = pki
            .acceptor("  min_version: TLS13\n  max_version: TLS13\n")
            .unwrap();
        let agreed = |a, v| {
            let c = pki.client(v, |_| {}, None);
            async move { handshake(a, c).await.map(|x| x.version) }
        };
        assert_eq!(agreed(&default, BOTH).await, Ok(ProtocolVersion::TLSv1_3));
        assert_eq!(agreed(&default, TLS12).await, Ok(ProtocolVersion::TLSv1_2));
        assert_eq!(agreed(&only12, BOTH).await, Ok(ProtocolVersion::TLSv1_2));
        assert!(agreed(&only12, TLS13).await.is_err());
        assert_eq!(agreed(&only13, BOTH).await, Ok(ProtocolVersion::TLSv1_3));
        assert!(agreed(&only13, TLS12).await.is_err());
    }

    #[tokio::test]
    async fn named_tls12_suites_are_the_only_ones_and_tls13_keeps_its_own() {
        let pki = Pki::new();
        // rcgen's keys are ECDSA P-256.
        let a = pki
            .acceptor("  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n")
            .unwrap();
        let offering = |suite: rustls::CipherSuite| {
            pki.client(
                TLS12,
                move |p| p.cipher_suites.retain(|s| s.suite() == suite),
                None,
            )
        };
        assert_eq!(
            handshake(
                &a,
                offering(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
            )
            .await
            .map(|x| x.suite),
            Ok(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
        );
        assert!(handshake(
            &a,
            offering(rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
        )
        .await
        .is_err());
        let tls13 = handshake(&a, pki.client(TLS13, |_| {}, None)).await;
        assert_eq!(tls13.map(|x| x.version), Ok(ProtocolVersion::TLSv1_3));
    }

    #[tokio::test]
    async fn each_curve_named_is_the_one_agreed() {
        let pki = Pki::new();
        for (name, group) in [
            ("X25519", NamedGroup::X25519),
            ("CurveP256", NamedGroup::secp256r1),
            ("CurveP384", NamedGroup::secp384r1),
            ("X25519MLKEM768", NamedGroup::X25519MLKEM768),
        ] {
            let a = pki
                .acceptor(&format!("  curve_preferences: [{name}]\n"))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let agreed = handshake(&a, pki.client(TLS13, |_| {}, None)).await;
            assert_eq!(agreed.map(|x| x.group), Ok(group), "{name}");
        }
    }

    #[test]
    fn a_key_file_without_a_key_says_so() {
        let pki = Pki::new();
        let text = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.crt\n";
        let e = WebSecurity::from_text(text, "web.yml", pki.dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("web.yml:3:13: tls_server_config.key_file: cannot read the private key")
                && e.ends_with("server.crt: no PEM private key in it"),
            "{e}"
        );
    }

    /// A client resolver that offers no certificate and remembers the CA
    /// names the server hinted at.
    #[derive(Debug, Default)]
    struct Hints(std::sync::Mutex<Vec<Vec<u8>>>);

    impl rustls::client::ResolvesClientCert for Hints {
        fn resolve(
            &self,
            hints: &[&[u8]],
            _: &[rustls::SignatureScheme],
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            *self.0.lock().unwrap() = hints.iter().map(|h| h.to_vec()).collect();
            None
        }
        fn has_certs(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn an_optional_client_certificate_is_checked_for_its_sans_when_given() {
        let pki = Pki::new();
        let a = pki
            .acceptor(
                "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: clients-ca.crt\n  client_allowed_sans: [prometheus.example.net, 10.0.0.9]\n",
            )
            .unwrap();
        let dns = |s: &str| SanType::DnsName(s.try_into().unwrap());
        let with = |sans| pki.client(BOTH, |_| {}, Some(pki.client_identity(sans)));
        // No certificate is fine; one that is given must carry a listed name.
        handshake(&a, pki.client(BOTH, |_| {}, None)).await.unwrap();
        handshake(&a, with(vec![dns("prometheus.example.net")]))
            .await
            .unwrap();
        handshake(&a, with(vec![SanType::IpAddress([10, 0, 0, 9].into())]))
            .await
            .unwrap();
        let refused = handshake(&a, with(vec![dns("mallory.example.net")])).await;
        assert!(
            refused.as_ref().is_err_and(|e| e.contains(
                "server: Some(\"invalid peer certificate: ApplicationVerificationFailure"
            )),
            "{refused:?}"
        );
        // The server names the clients' CA as the one to chain to, over
        // TLS 1.2 and 1.3 alike.
        for versions in [TLS12, TLS13] {
            let hints = Arc::new(Hints::default());
            let mut roots = RootCertStore::empty();
            roots.add(pki.ca.clone()).unwrap();
            let c = rustls::ClientConfig::builder_with_protocol_versions(versions)
                .with_root_certificates(roots)
                .with_client_cert_resolver(hints.clone());
            handshake(&a, c).await.unwrap();
            let hinted = hints.0.lock().unwrap().clone();
            let (_, ca) = x509_parser::parse_x509_certificate(&pki.clients.der()[..]).unwrap();
            assert_eq!(hinted, vec![ca.subject().as_raw().to_vec()], "{versions:?}");
        }
    }

    #[test]
    fn client_auth_types_are_read_by_go_names() {
        let read = |s: &str| serde_json::from_value::<ClientAuthType>(serde_json::json!(s));
        assert_eq!(read("NoClientCert").unwrap(), ClientAuthType::NoClientCert);
        assert_eq!(
            read("VerifyClientCertIfGiven").unwrap(),
            ClientAuthType::VerifyClientCertIfGiven
        );
        assert_eq!(
            read("RequireAndVerifyClientCert").unwrap(),
            ClientAuthType::RequireAndVerifyClientCert
        );
        let e = read("RequestClientCert").unwrap_err().to_string();
        assert!(e.contains("without verifying"), "{e}");
        let e = read("Sometimes").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown client_auth_type \"Sometimes\""),
            "{e}"
        );
    }

    #[test]
    fn subject_alt_names_are_read_in_every_form_allowed_sans_name() {
        let pki = Pki::new();
        let (chain, _) = pki.client_identity(vec![
            SanType::DnsName("prometheus.example.net".try_into().unwrap()),
            SanType::Rfc822Name("ops@example.net".try_into().unwrap()),
            SanType::URI("spiffe://example.net/prometheus".try_into().unwrap()),
            SanType::IpAddress([192, 0, 2, 7].into()),
            SanType::IpAddress("2001:db8::7".parse().unwrap()),
        ]);
        assert_eq!(
            subject_alt_names(&chain[0]),
            [
                "prometheus.example.net",
                "ops@example.net",
                "spiffe://example.net/prometheus",
                "192.0.2.7",
                "2001:db8::7"
            ]
        );
        // The CA's certificate has none; bytes that are no certificate, none.
        assert!(subject_alt_names(&pki.ca).is_empty());
        assert!(subject_alt_names(&CertificateDer::from(vec![1, 2, 3])).is_empty());
    }

    #[tokio::test]
    async fn a_renewed_pair_is_served_at_the_next_handshake_and_a_broken_one_is_not() {
        let pki = Pki::new();
        let a = &pki.acceptor("").unwrap();
        let leaf = |pki: &Pki| {
            let c = pki.client(BOTH, |_| {}, None);
            async move { handshake(a, c).await.map(|x| x.leaf) }
        };
        assert_eq!(leaf(&pki).await.as_ref(), Ok(&pki.leaf));
        assert_eq!(leaf(&pki).await.as_ref(), Ok(&pki.leaf));
        // A new key, written before its certificate: the old pair serves on.
        // Each write is given its own modification time: two writes within
        // one tick of the file system's clock would otherwise share one.
        let write = |path: PathBuf, text: String, at: u64| {
            std::fs::write(&path, text).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at))
                .unwrap();
        };
        let key = KeyPair::generate().unwrap();
        write(
            pki.dir.path().join("server.key"),
            key.serialize_pem(),
            1_000,
        );
        assert_eq!(leaf(&pki).await.as_ref(), Ok(&pki.leaf));
        assert_eq!(leaf(&pki).await.as_ref(), Ok(&pki.leaf));
        // Then its certificate, from the same CA: served from now on.
        let servers = ca("servers CA");
        let mut renewed = pki;
        renewed.ca = servers.der().clone();
        let cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&key, &servers)
            .unwrap();
        write(renewed.dir.path().join("server.crt"), cert.pem(), 2_000);
        assert_eq!(leaf(&renewed).await.as_ref(), Ok(cert.der()));
        assert_eq!(leaf(&renewed).await.as_ref(), Ok(cert.der()));
    }
}
