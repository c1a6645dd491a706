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

/// The oldest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    let auth = tls.client_auth_type.unwrap_or(ClientAuthType::NoClientCert);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        Some(TlsVersion::Tls12) | None => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| fail("tls_server_config.min_version", e.to_string()))?;
    let builder = match (auth, &tls.client_ca_file) {
        (ClientAuthType::NoClientCert, None) => builder.with_no_client_auth(),
        (ClientAuthType::NoClientCert, Some(_)) => {
            return Err(fail(
                "tls_server_config.client_ca_file",
                "client CAs are given but client_auth_type is NoClientCert: set client_auth_type \
                 to VerifyClientCertIfGiven or RequireAndVerifyClientCert"
                    .into(),
            ))
        }
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
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuthType::VerifyClientCertIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| fail(field, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let leaf = certs[0].clone();
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        fail(
            "tls_server_config.key_file",
            format!(
                "the key in {} does not fit the certificate in {}: {e}",
                key_path.display(),
                cert_file.display()
            ),
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), leaf))
}

