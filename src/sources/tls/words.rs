//! Connection and TLS failures in words an operator acts on ("connection
//! refused", "certificate has expired", "handshake refused by the server").
//! The libraries' own messages (for rustls often a Debug dump of a
//! variant) stay in the log, not on the board. Used by the tls and healthz
//! sources.

use std::error::Error;
use std::io;

use rustls::{CertificateError, Error as TlsError};

/// What went wrong with a connection, read from an error and its causes.
pub fn connection(e: &(dyn Error + 'static)) -> String {
    let mut io_kind = None;
    let mut text = String::new();
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = tls_error(err) {
            return tls(t);
        }
        if let Some(kind) = socket_kind(err) {
            io_kind.get_or_insert(kind);
        }
        text.push_str(&err.to_string().to_lowercase());
        text.push('\n');
        cur = err.source();
    }
    if text.contains("dns error") || text.contains("failed to lookup address") {
        return "host name does not resolve".into();
    }
    let said = match io_kind {
        Some(io::ErrorKind::ConnectionRefused) => "connection refused",
        Some(io::ErrorKind::ConnectionReset) => "connection reset by the server",
        Some(io::ErrorKind::ConnectionAborted) => "connection aborted",
        Some(io::ErrorKind::TimedOut) => "timed out connecting",
        Some(io::ErrorKind::UnexpectedEof) => "the server closed the connection mid-handshake",
        Some(io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable) => {
            "host unreachable"
        }
        _ if text.contains("connection closed") || text.contains("incomplete message") => {
            "the server closed the connection without answering"
        }
        _ => "connection failed",
    };
    said.into()
}

/// The most telling kind of the `io::Error`s nested in `err`: the
/// innermost one that is not `Other` (hyper wraps the socket's error).
fn socket_kind(err: &(dyn Error + 'static)) -> Option<io::ErrorKind> {
    let mut found = None;
    let mut cur = err;
    while let Some(io) = cur.downcast_ref::<io::Error>() {
        if io.kind() != io::ErrorKind::Other {
            found = Some(io.kind());
        }
        match io.get_ref() {
            Some(inner) => cur = inner,
            None => break,
        }
    }
    found
}

/// The rustls error in `err`, directly or inside `io::Error`s (hyper and
/// tokio-rustls nest one in another; an `io::Error`'s `source` skips the
/// error it wraps, so the chain alone does not reach it).
fn tls_error<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a TlsError> {
    let mut cur = err;
    loop {
        if let Some(t) = cur.downcast_ref::<TlsError>() {
            return Some(t);
        }
        cur = cur.downcast_ref::<io::Error>()?.get_ref()?;
    }
}

/// A TLS failure in words.
pub fn tls(e: &TlsError) -> String {
    match e {
        TlsError::InvalidCertificate(c) => certificate(c).into(),
        TlsError::AlertReceived(alert) => format!(
            "handshake refused by the server ({})",
            spaced(&format!("{alert:?}"))
        ),
        TlsError::NoCertificatesPresented => "the server sent no certificate".into(),
        TlsError::PeerIncompatible(_) => {
            "no TLS version or cipher suite in common with the server".into()
        }
        TlsError::PeerMisbehaved(_)
        | TlsError::InvalidMessage(_)
        | TlsError::InappropriateMessage { .. }
        | TlsError::InappropriateHandshakeMessage { .. } => {
            "the server broke the TLS protocol".into()
        }
        _ => "TLS handshake failed".into(),
    }
}

/// Why a certificate was not accepted.
fn certificate(c: &CertificateError) -> &'static str {
    match c {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "certificate has expired"
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "certificate is not valid yet"
        }
        CertificateError::UnknownIssuer => {
            "certificate is signed by an authority this exporter does not trust"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "certificate is not valid for this host name"
        }
        CertificateError::BadSignature => "certificate's signature does not verify",
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "certificate is signed with an algorithm that does not match its key"
        }
        CertificateError::UnsupportedSignatureAlgorithmContext { .. } => {
            "certificate is signed with an algorithm this exporter does not support"
        }
        CertificateError::Revoked => "certificate is revoked",
        CertificateError::BadEncoding => "certificate is malformed",
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "certificate is not meant for a TLS server"
        }
        CertificateError::UnhandledCriticalExtension => {
            "certificate has a critical extension this exporter does not understand"
        }
        _ => "certificate is not acceptable",
    }
}

/// `HandshakeFailure` as `handshake failure`.
fn spaced(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_failures_read_as_sentences_without_library_names() {
        let cases = [
            (
                TlsError::InvalidCertificate(CertificateError::Expired),
                "certificate has expired",
            ),
            (
                TlsError::InvalidCertificate(CertificateError::UnknownIssuer),
                "certificate is signed by an authority this exporter does not trust",
            ),
            (
                TlsError::InvalidCertificate(CertificateError::NotValidForName),
                "certificate is not valid for this host name",
            ),
            (
                TlsError::AlertReceived(rustls::AlertDescription::HandshakeFailure),
                "handshake refused by the server (handshake failure)",
            ),
            (
                TlsError::NoCertificatesPresented,
                "the server sent no certificate",
            ),
        ];
        for (e, want) in cases {
            // Wrapped as tokio-rustls and hyper wrap it: an io::Error in
            // an io::Error.
            let inner = io::Error::new(io::ErrorKind::InvalidData, e);
            let outer = io::Error::other(inner);
            assert_eq!(connection(&outer), want);
        }
    }

    #[test]
    fn socket_failures_read_by_their_kind() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(connection(&refused), "connection refused");
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(
            connection(&eof),
            "the server closed the connection mid-handshake"
        );
        let other = io::Error::other("something odd");
        assert_eq!(connection(&other), "connection failed");
        // As hyper hands it over: the socket's error inside another.
        let reset = io::Error::other(io::Error::from(io::ErrorKind::ConnectionReset));
        assert_eq!(connection(&reset), "connection reset by the server");
    }

    #[test]
    fn every_certificate_problem_has_its_words() {
        use CertificateError as C;
        let cases = [
            (C::Expired, "certificate has expired"),
            (C::NotValidYet, "certificate is not valid yet"),
            (
                C::UnknownIssuer,
                "certificate is signed by an authority this exporter does not trust",
            ),
            (
                C::NotValidForName,
                "certificate is not valid for this host name",
            ),
            (C::BadSignature, "certificate's signature does not verify"),
            (C::Revoked, "certificate is revoked"),
            (C::BadEncoding, "certificate is malformed"),
            (
                C::InvalidPurpose,
                "certificate is not meant for a TLS server",
            ),
            (
                C::UnhandledCriticalExtension,
                "certificate has a critical extension this exporter does not understand",
            ),
            (C::UnknownRevocationStatus, "certificate is not acceptable"),
        ];
        for (c, want) in cases {
            assert_eq!(tls(&TlsError::InvalidCertificate(c.clone())), want, "{c:?}");
        }
        let contexts = [
            (
                C::ExpiredContext {
                    time: rustls_pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(2),
                    ),
                    not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(1),
                    ),
                },
                "certificate has expired",
            ),
            (
                C::NotValidYetContext {
                    time: rustls_pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(1),
                    ),
                    not_before: rustls_pki_types::UnixTime::since_unix_epoch(
                        std::time::Duration::from_secs(2),
                    ),
                },
                "certificate is not valid yet",
            ),
            (
                C::NotValidForNameContext {
                    expected: rustls_pki_types::ServerName::try_from("a.example")
                        .unwrap()
                        .to_owned(),
                    presented: vec![],
                },
                "certificate is not valid for this host name",
            ),
            (
                C::UnsupportedSignatureAlgorithmForPublicKeyContext {
                    signature_algorithm_id: vec![1],
                    public_key_algorithm_id: vec![2],
                },
                "certificate is signed with an algorithm that does not match its key",
            ),
            (
                C::UnsupportedSignatureAlgorithmContext {
                    signature_algorithm_id: vec![1],
                    supported_algorithms: vec![],
                },
                "certificate is signed with an algorithm this exporter does not support",
            ),
            (
                C::InvalidPurposeContext {
                    required: rustls::ExtendedKeyPurpose::ServerAuth,
                    presented: vec![],
                },
                "certificate is not meant for a TLS server",
            ),
        ];
        for (c, want) in contexts {
            assert_eq!(tls(&TlsError::InvalidCertificate(c.clone())), want, "{c:?}");
        }
    }

    #[test]
    fn protocol_failures_read_as_what_the_server_did() {
        let cases = [
            (
                TlsError::PeerIncompatible(rustls::PeerIncompatible::NoCipherSuitesInCommon),
                "no TLS version or cipher suite in common with the server",
            ),
            (
                TlsError::PeerMisbehaved(rustls::PeerMisbehaved::TooManyEmptyFragments),
                "the server broke the TLS protocol",
            ),
            (
                TlsError::InvalidMessage(rustls::InvalidMessage::MissingData("x")),
                "the server broke the TLS protocol",
            ),
            (
                TlsError::InappropriateMessage {
                    expect_types: vec![],
                    got_type: rustls::ContentType::Alert,
                },
                "the server broke the TLS protocol",
            ),
            (
                TlsError::InappropriateHandshakeMessage {
                    expect_types: vec![],
                    got_type: rustls::HandshakeType::Finished,
                },
                "the server broke the TLS protocol",
            ),
            (TlsError::DecryptError, "TLS handshake failed"),
            (
                TlsError::AlertReceived(rustls::AlertDescription::ProtocolVersion),
                "handshake refused by the server (protocol version)",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(tls(&e), want, "{e:?}");
        }
        assert_eq!(spaced("BadCertificate"), "bad certificate");
        assert_eq!(spaced("Aa"), "aa");
    }

    /// An error with a cause, as reqwest and hyper chain them.
    #[derive(Debug)]
    struct Chained(&'static str, Option<Box<dyn Error + Send + Sync>>);

    impl std::fmt::Display for Chained {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Chained {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn every_socket_failure_and_a_cause_deep_in_the_chain_is_read() {
        use io::ErrorKind as K;
        for (kind, want) in [
            (K::ConnectionRefused, "connection refused"),
            (K::ConnectionReset, "connection reset by the server"),
            (K::ConnectionAborted, "connection aborted"),
            (K::TimedOut, "timed out connecting"),
            (
                K::UnexpectedEof,
                "the server closed the connection mid-handshake",
            ),
            (K::HostUnreachable, "host unreachable"),
            (K::NetworkUnreachable, "host unreachable"),
            (K::PermissionDenied, "connection failed"),
        ] {
            let e = Chained(
                "error sending request",
                Some(Box::new(io::Error::from(kind))),
            );
            assert_eq!(connection(&e), want, "{kind:?}");
        }
        // The innermost kind that says something wins; the outer one is the first found.
        let nested = io::Error::new(K::TimedOut, io::Error::from(K::ConnectionRefused));
        assert_eq!(connection(&nested), "connection refused");
        let first = Chained(
            "outer",
            Some(Box::new(io::Error::new(
                K::ConnectionReset,
                Chained(
                    "inner",
                    Some(Box::new(io::Error::from(K::ConnectionRefused))),
                ),
            ))),
        );
        assert_eq!(connection(&first), "connection reset by the server");
        for (text, want) in [
            ("dns error: no record", "host name does not resolve"),
            (
                "failed to lookup address information",
                "host name does not resolve",
            ),
            (
                "Connection closed before message completed",
                "the server closed the connection without answering",
            ),
            (
                "Incomplete message",
                "the server closed the connection without answering",
            ),
        ] {
            let e = Chained("error sending request", Some(Box::new(Chained(text, None))));
            assert_eq!(connection(&e), want, "{text}");
        }
        let tls_deep = Chained(
            "error sending request",
            Some(Box::new(io::Error::other(TlsError::InvalidCertificate(
                CertificateError::Revoked,
            )))),
        );
        assert_eq!(connection(&tls_deep), "certificate is revoked");
    }
}
