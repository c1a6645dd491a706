//! The web configuration file, in the format of Prometheus' exporter-toolkit
//! (`--web.config.file`): TLS and HTTP basic auth for everything fleetpulse
//! serves.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: fleetpulse.crt
//!   key_file: fleetpulse.key
//!   client_auth_type: NoClientCert   # or VerifyClientCertIfGiven, RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt   # with a verifying client_auth_type
//!   min_version: TLS12               # or TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...           # bcrypt hash
//! ```
//!
//! Errors name the file, line, column and field like the fleet config's, and
//! never show a hash or a key. Relative paths are relative to the web config
//! file's directory, as in exporter-toolkit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use serde::de::{self, Deserializer};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use crate::config::yaml::locate_path;

mod tls;
use crate::config::{parse_yaml, ConfigError, Problem};
use tls::tls_acceptor;
pub use tls::{ClientAuthType, TlsServerConfig, TlsVersion};

/// The file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    #[serde(default)]
    pub tls_server_config: Option<TlsServerConfig>,
    /// User name → bcrypt hash of the password.
    #[serde(default)]
    pub basic_auth_users: Option<BTreeMap<String, BcryptHash>>,
    #[serde(default)]
    pub http_server_config: Option<HttpServerConfig>,
}

/// `http_server_config`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// Whether HTTP/2 may be negotiated. fleetpulse speaks HTTP/1.1, which
    /// every client negotiates in its place (ALPN), so either value serves.
    #[serde(default)]
    pub http2: Option<bool>,
    /// Security headers added to every response, as exporter-toolkit
    /// allows them.
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

/// The response headers exporter-toolkit lets a web config set.
const ALLOWED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

/// A bcrypt password hash. Its value is never printed: not in errors, not
/// in `Debug`.
#[derive(Clone)]
pub struct BcryptHash(String);

impl fmt::Debug for BcryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BcryptHash(..)")
    }
}

impl BcryptHash {
    fn cost(&self) -> u32 {
        self.0
            .parse::<bcrypt::HashParts>()
            .map(|p| p.get_cost())
            .unwrap_or(bcrypt::DEFAULT_COST)
    }
}

impl<'de> Deserialize<'de> for BcryptHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const WANT: &str =
            "not a bcrypt hash (expected $2y$, $2b$ or $2a$, a cost and 53 characters, \
             e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`); the value is not shown";
        impl<'de> de::Visitor<'de> for V {
            type Value = BcryptHash;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a bcrypt hash")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BcryptHash, E> {
                match s.parse::<bcrypt::HashParts>() {
                    Ok(_) => Ok(BcryptHash(s.to_string())),
                    Err(_) => Err(E::custom(WANT)),
                }
            }
            // Any other scalar or structure is refused without echoing it.
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<BcryptHash, E> {
                Err(E::custom(WANT))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<BcryptHash, E> {
                Err(E::custom(WANT))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<BcryptHash, E> {
                Err(E::custom(WANT))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<BcryptHash, E> {
                Err(E::custom(WANT))
            }
            fn visit_unit<E: de::Error>(self) -> Result<BcryptHash, E> {
                Err(E::custom(WANT))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<BcryptHash, A::Error> {
                Err(de::Error::custom(WANT))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<BcryptHash, A::Error> {
                Err(de::Error::custom(WANT))
            }
        }
        d.deserialize_any(V)
    }
}

/// What the server applies: a TLS acceptor and a basic-auth check, each
/// present only when configured.
#[derive(Clone, Default)]
pub struct WebSecurity {
    pub tls: Option<TlsAcceptor>,
    /// The leaf certificate served, so an in-process client can pin it.
    pub served_certificate: Option<CertificateDer<'static>>,
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Headers added to every response (`http_server_config.headers`).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.is_some())
            .field("basic_auth", &self.basic_auth.is_some())
            .finish()
    }
}

/// The web security in force, replaced whole on a reload; each new
/// connection and request reads it once.
#[derive(Debug, Default)]
pub struct SecurityCell(std::sync::RwLock<WebSecurity>);

impl SecurityCell {
    pub fn new(security: WebSecurity) -> SecurityCell {
        SecurityCell(std::sync::RwLock::new(security))
    }

    /// The security in force.
    pub fn get(&self) -> WebSecurity {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts reloaded security in force for new connections and requests.
    pub fn replace(&self, security: WebSecurity) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = security;
    }
}

impl WebSecurity {
    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Reads, checks and applies the web config file at `path`: certificate,
    /// key and CA files are read now, so a bad one stops start-up.
    pub fn load(path: &Path) -> Result<WebSecurity, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new(""));
        WebSecurity::from_text(&text, &path.display().to_string(), dir)
    }

    /// As [`WebSecurity::load`], from `text`; `file` names it in errors and
    /// relative paths are resolved against `dir`.
    pub fn from_text(text: &str, file: &str, dir: &Path) -> Result<WebSecurity, ConfigError> {
        let parsed: WebConfigFile = parse_yaml(text, file)?;
        let fail = |field: &str, message: String| {
            let (line, column) = locate_path(text, field);
            ConfigError::Invalid(vec![Problem {
                file: file.to_string(),
                line,
                column,
                field: field.to_string(),
                message,
            }])
        };
        let mut security = WebSecurity::default();
        if let Some(tls) = parsed.tls_server_config.as_ref().filter(|t| t.is_set()) {
            let (acceptor, leaf) = tls_acceptor(tls, dir, &fail)?;
            security.tls = Some(acceptor);
            security.served_certificate = Some(leaf);
        }
        if let Some(headers) = parsed.http_server_config.and_then(|h| h.headers) {
            for (name, value) in headers {
                let field = format!("http_server_config.headers.{name}");
                let Some(known) = ALLOWED_HEADERS
                    .iter()
                    .find(|h| h.eq_ignore_ascii_case(&name))
                else {
                    return Err(fail(
                        &field,
                        format!(
                            "not a header a web config may set: use {}",
                            ALLOWED_HEADERS.join(", ")
                        ),
                    ));
                };
                let fixed = match *known {
                    "X-Content-Type-Options" => Some(&["nosniff"][..]),
                    "X-Frame-Options" => Some(&["deny", "sameorigin"][..]),
                    _ => None,
                };
                if let Some(allowed) = fixed {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
                        return Err(fail(
                            &field,
                            format!("must be one of: {}", allowed.join(", ")),
                        ));
                    }
                }
                let value = http::HeaderValue::from_str(&value)
                    .map_err(|_| fail(&field, "not a valid header value".into()))?;
                security
                    .headers
                    .push((http::HeaderName::from_static(known_lower(known)), value));
            }
        }
        if let Some(users) = parsed.basic_auth_users {
            if users.keys().any(|u| u.is_empty() || u.contains(':')) {
                return Err(fail(
                    "basic_auth_users",
                    "a user name must be non-empty and hold no ':'".into(),
                ));
            }
            if !users.is_empty() {
                security.basic_auth = Some(Arc::new(BasicAuth::new(users)));
            }
        }
        Ok(security)
    }
}

/// A header's name as `http` keeps it (lower case).
fn known_lower(name: &str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

/// Most verified credentials remembered at once; past this the memory starts over.
const VERIFIED_CACHE_CAP: usize = 1024;

/// HTTP basic auth against bcrypt hashes. A verified user and password is
/// remembered (as a SHA-256 of both, never in clear) so repeated scrapes do
/// not pay bcrypt's cost each time, as in exporter-toolkit.
pub struct BasicAuth {
    users: HashMap<String, BcryptHash>,
    /// Verified against when the user is unknown, so the answer takes as
    /// long as for a known user with a wrong password.
    dummy: BcryptHash,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl BasicAuth {
    fn new(users: BTreeMap<String, BcryptHash>) -> BasicAuth {
        let cost = users
            .values()
            .map(BcryptHash::cost)
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let dummy = bcrypt::hash(rand::random::<[u8; 16]>(), cost)
            .or_else(|_| bcrypt::hash(rand::random::<[u8; 16]>(), bcrypt::DEFAULT_COST))
            .map(BcryptHash)
            // A fixed valid hash: hashing only fails for costs outside 4..=31,
            // which parsed hashes cannot have.
            .unwrap_or_else(|_| {
                BcryptHash("$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi".into())
            });
        BasicAuth {
            users: users.into_iter().collect(),
            dummy,
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// Whether the `Authorization` header value carries a known user and
    /// their password. May run bcrypt: call it off the async threads.
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        match authorization.and_then(parse_basic) {
            Some((user, password)) => self.verify(&user, &password),
            None => false,
        }
    }

    fn verify(&self, user: &str, password: &str) -> bool {
        let key = cache_key(user, password);
        if self.lock().contains(&key) {
            return true;
        }
        let (hash, known) = match self.users.get(user) {
            Some(h) => (h, true),
            None => (&self.dummy, false),
        };
        let matches = bcrypt::verify(password, &hash.0).unwrap_or(false);
        let ok = matches && known;
        if ok {
            let mut verified = self.lock();
            if verified.len() >= VERIFIED_CACHE_CAP {
                verified.clear();
            }
            verified.insert(key);
        }
        ok
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        // The set holds no invariant a panicking holder could break.
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// SHA-256 of the user (length-prefixed, so `a`+`bc` and `ab`+`c` differ)
/// and the password.
fn cache_key(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((user.len() as u64).to_le_bytes());
    h.update(user.as_bytes());
    h.update(password.as_bytes());
    h.finalize().into()
}

/// User and password of a `Basic` authorization header value.
pub fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    use base64::Engine as _;
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A client configuration that trusts exactly `certificate`, whatever name
/// it carries: for a client in the same process as the server it talks to
/// (the demo pushing into its own exporter).
pub fn pinned_client_config(certificate: CertificateDer<'static>) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(PinnedCertificate {
        certificate,
        provider: provider.clone(),
    });
    // Both versions are in the provider's defaults; this cannot fail.
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth()
        })
        .unwrap_or_else(|_| unreachable!("aws-lc-rs supports the default TLS versions"))
}

#[derive(Debug)]
struct PinnedCertificate {
    certificate: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the certificate this process serves".into(),
            ))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        WebSecurity::from_text(text, "web.yml", Path::new("/nonexistent"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn basic_credentials_are_parsed_from_the_header() {
        // "prometheus:s3cr:et" — the password may hold a colon.
        assert_eq!(
            parse_basic(b"Basic cHJvbWV0aGV1czpzM2NyOmV0"),
            Some(("prometheus".into(), "s3cr:et".into()))
        );
        assert_eq!(
            parse_basic(b"basic cHJvbWV0aGV1czpzM2NyOmV0").map(|c| c.0),
            Some("prometheus".into())
        );
        for bad in [
            &b"Bearer abc"[..],
            b"Basic",
            b"Basic !!!",
            b"Basic bm9jb2xvbg==", // "nocolon"
            b"\xff",
        ] {
            assert_eq!(parse_basic(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn right_password_passes_and_wrong_or_unknown_fail() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let auth = BasicAuth::new([("alice".to_string(), BcryptHash(hash))].into());
        assert!(auth.verify("alice", "right"));
        // Now from the cache.
        assert!(auth.verify("alice", "right"));
        assert!(!auth.verify("alice", "wrong"));
        assert!(!auth.verify("bob", "right"));
        assert!(!auth.verify("", ""));
        assert!(!auth.check(None));
        assert_eq!(auth.lock().len(), 1);
    }

    #[test]
    fn unknown_user_is_checked_against_a_hash_of_the_users_cost() {
        let auth = BasicAuth::new(
            [(
                "alice".to_string(),
                BcryptHash(bcrypt::hash("x", 5).unwrap()),
            )]
            .into(),
        );
        assert_eq!(auth.dummy.cost(), 5);
    }

    #[test]
    fn config_errors_name_line_and_field_and_never_the_hash() {
        let cases: &[(&str, &str)] = &[
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  colour: blue\n",
                "web.yml:4:3: tls_server_config.colour: unknown field `colour`",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: RequireAnyClientCert\n",
                "web.yml:4:21: tls_server_config.client_auth_type: RequireAnyClientCert is not supported",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS11\n",
                "web.yml:4:16: tls_server_config.min_version: TLS11 is not supported",
            ),
            (
                "tls_server_config:\n  key_file: a.key\n",
                "web.yml:1:1: tls_server_config: cert_file is required",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n",
                "web.yml:2:14: tls_server_config.cert_file: cannot read PEM certificates from /nonexistent/a.crt",
            ),
            (
                "basic_auth_users:\n  alice: $2y$10$tooshort\n",
                "web.yml:2:10: basic_auth_users.alice: not a bcrypt hash",
            ),
            ("http_server_config:\n  colour: blue\n", "web.yml:2:3: http_server_config.colour: unknown field `colour`"),
            (
                "http_server_config:\n  headers:\n    X-Powered-By: me\n",
                "web.yml:3:19: http_server_config.headers.X-Powered-By: not a header a web config may set",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
                "web.yml:3:22: http_server_config.headers.X-Frame-Options: must be one of: deny, sameorigin",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS13\n  max_version: TLS12\n",
                "web.yml:5:16: tls_server_config.max_version: older than min_version",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_RSA_WITH_AES_128_CBC_SHA]\n",
                "web.yml:4:58: tls_server_config.cipher_suites[1]: TLS_RSA_WITH_AES_128_CBC_SHA is not available",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  curve_preferences: [CurveP521]\n",
                "web.yml:4:23: tls_server_config.curve_preferences[0]: CurveP521 is not available",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_allowed_sans: [prometheus.example.net]\n",
                "web.yml:4:3: tls_server_config.client_allowed_sans: client_allowed_sans needs client_auth_type",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.starts_with(want),
                "for\n{text}\ngot:  {got}\nwant: {want}"
            );
            assert!(!got.contains("tooshort"), "{got}");
        }
    }

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../deploy/web-config.example.yml");
        let parsed: WebConfigFile = parse_yaml(text, "web-config.example.yml").unwrap();
        let users = parsed.basic_auth_users.unwrap();
        assert!(bcrypt::verify("change-me", &users["prometheus"].0).unwrap());
        let tls = parsed.tls_server_config.unwrap();
        assert_eq!(tls.client_auth_type, Some(ClientAuthType::NoClientCert));
        assert_eq!(tls.min_version, Some(TlsVersion::Tls12));
    }

    #[test]
    fn an_empty_file_serves_plain_http_without_auth() {
        let s = WebSecurity::from_text("{}\n", "web.yml", Path::new(".")).unwrap();
        assert!(s.tls.is_none() && s.basic_auth.is_none());
        assert_eq!(s.scheme(), "http");
    }

    #[test]
    fn neither_form_prints_a_hash() {
        let hash = bcrypt::hash("right", 4).unwrap();
        assert_eq!(format!("{:?}", BcryptHash(hash.clone())), "BcryptHash(..)");
        let s = WebSecurity {
            basic_auth: Some(Arc::new(BasicAuth::new(
                [("alice".to_string(), BcryptHash(hash.clone()))].into(),
            ))),
            ..WebSecurity::default()
        };
        let shown = format!("{s:?}");
        assert_eq!(shown, "WebSecurity { tls: false, basic_auth: true }");
    }

    #[test]
    fn a_hash_of_the_wrong_shape_is_refused_without_echoing_it() {
        for value in ["~", "12345", "true", "[a, b]", "{a: b}", "1.5"] {
            let e = err(&format!("basic_auth_users:\n  alice: {value}\n"));
            assert!(
                e.starts_with("web.yml:2:10: basic_auth_users.alice: not a bcrypt hash"),
                "{value}: {e}"
            );
        }
        // Bytes, which YAML never yields but other formats do, are refused
        // by serde's default, naming what was expected.
        let bytes = serde::de::value::BytesDeserializer::<serde::de::value::Error>::new(b"$2y$");
        let e = BcryptHash::deserialize(bytes).unwrap_err().to_string();
        assert_eq!(e, "invalid type: byte array, expected a bcrypt hash");
    }

    #[test]
    fn each_allowed_header_is_sent_by_its_name_whatever_its_case() {
        let s = WebSecurity::from_text(
            "http_server_config:\n  headers:\n    strict-transport-security: max-age=31536000\n    X-FRAME-OPTIONS: DENY\n    X-Content-Type-Options: nosniff\n    x-xss-protection: '0'\n    Content-Security-Policy: default-src 'self'\n",
            "web.yml",
            Path::new("."),
        )
        .unwrap();
        let sent: Vec<(&str, &str)> = s
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            sent,
            [
                ("content-security-policy", "default-src 'self'"),
                ("x-content-type-options", "nosniff"),
                ("x-frame-options", "DENY"),
                ("strict-transport-security", "max-age=31536000"),
                ("x-xss-protection", "0"),
            ]
        );
        assert!(err("http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n")
            .starts_with("web.yml:3:29: http_server_config.headers.X-Content-Type-Options: must be one of: nosniff"));
    }

    #[test]
    fn an_empty_user_name_or_one_with_a_colon_is_refused() {
        let hash = bcrypt::hash("x", 4).unwrap();
        for user in ["''", "'a:b'"] {
            let e = err(&format!("basic_auth_users:\n  {user}: {hash}\n"));
            assert!(
                e.starts_with(
                    "web.yml:1:1: basic_auth_users: a user name must be non-empty and hold no ':'"
                ),
                "{user}: {e}"
            );
            assert!(!e.contains(&hash), "{e}");
        }
    }

    #[test]
    fn every_verified_user_is_remembered() {
        let auth = BasicAuth::new(
            [
                (
                    "alice".to_string(),
                    BcryptHash(bcrypt::hash("a", 4).unwrap()),
                ),
                ("bob".to_string(), BcryptHash(bcrypt::hash("b", 4).unwrap())),
            ]
            .into(),
        );
        assert!(auth.verify("alice", "a") && auth.verify("bob", "b"));
        assert_eq!(auth.lock().len(), 2);
    }

    #[tokio::test]
    async fn a_pinned_client_trusts_the_served_certificate_and_no_other() {
        use tls::tests::{handshake, Pki};
        let pki = Pki::new();
        let acceptor = pki.acceptor("").unwrap();
        let agreed = handshake(&acceptor, pinned_client_config(pki.leaf.clone()))
            .await
            .unwrap();
        assert_eq!(agreed.leaf, pki.leaf);
        let other = Pki::new();
        let refused = handshake(&acceptor, pinned_client_config(other.leaf.clone())).await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("not the certificate this process serves")),
            "{refused:?}"
        );
    }
}
