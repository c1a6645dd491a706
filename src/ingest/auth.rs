//! Bearer tokens for the push API.
//!
//! The tokens file (its path is `ingest.tokens_file`) is a YAML list; each
//! entry holds the SHA-256 of a token (hex, as `fleetpulse hash-token`
//! prints it), never the token itself, and the names it may write — or
//! `"*"` for the whole fleet:
//!
//! ```yaml
//! - sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
//!   names: ["*"]
//!   id: ci          # optional; shown in logs instead of the token
//! - sha256: d4735e3a265e16eee03f59718b9b5d03019c07d8b6c51f90da3a666eec13ab35
//!   names: [prod-box, prod-host]
//! ```
//!
//! A presented token is hashed and compared with every entry in constant
//! time. Tokens never appear in logs, metrics or errors.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why the tokens file could not be used. Never contains a token.
#[derive(Debug, thiserror::Error)]
pub enum TokensFileError {
    #[error("{path}: cannot read the tokens file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: entry {index}: sha256 must be 64 hex digits (the output of `fleetpulse hash-token`), not the token itself")]
    NotAHash { path: String, index: usize },
    #[error("{path}: entry {index}: {message}")]
    BadNames {
        path: String,
        index: usize,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    sha256: String,
    names: Vec<String>,
    #[serde(default)]
    id: Option<String>,
}

/// What a token may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every name.
    Fleet,
    /// These names only.
    Names(BTreeSet<String>),
}

impl Scope {
    /// Whether a push for `name` is allowed.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Scope::Fleet => true,
            Scope::Names(n) => n.contains(name),
        }
    }
}

#[derive(Debug)]
struct Token {
    hash: [u8; 32],
    scope: Scope,
    id: String,
}

/// The tokens the API accepts.
#[derive(Debug, Default)]
pub struct Tokens {
    tokens: Vec<Token>,
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's `id`, or `#N` (its position in the file): safe to log.
    pub id: String,
    pub scope: Scope,
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unauthenticated {
    #[error("missing bearer token: send Authorization: Bearer <token>")]
    Missing,
    #[error("invalid bearer token")]
    Invalid,
}

/// The SHA-256 of a token, in hex: what the tokens file holds.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// No tokens: every request is refused.
    // cargo-mutants: its one mutant, `Default::default()`, is this body.
    #[cfg_attr(test, mutants::skip)]
    pub fn none() -> Tokens {
        Tokens::default()
    }

    /// Reads the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Tokens, TokensFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Tokens::parse(&text, &path.display().to_string())
    }

    /// Parses a tokens file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Tokens, TokensFileError> {
        let entries: Vec<Entry> = if text.trim().is_empty() {
            Vec::new()
        } else {
            serde_yaml::from_str(text).map_err(|e| {
                let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
                let message = e.to_string();
                // serde_yaml repeats the location; it is already in front.
                let message = match message.find(" at line ") {
                    Some(i) => message[..i].to_string(),
                    None => message,
                };
                TokensFileError::Invalid {
                    path: path.to_string(),
                    line,
                    column,
                    message,
                }
            })?
        };
        let mut tokens = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(e.sha256.trim(), &mut hash).is_err() {
                return Err(TokensFileError::NotAHash {
                    path: path.to_string(),
                    index,
                });
            }
            if e.names.is_empty() {
                return Err(TokensFileError::BadNames {
                    path: path.to_string(),
                    index,
                    message: "names is empty: list the names the token may write, or \"*\"".into(),
                });
            }
            let scope = if e.names.iter().any(|n| n == "*") {
                Scope::Fleet
            } else {
                if let Some(bad) = e.names.iter().find(|n| !crate::config::Name::is_valid(n)) {
                    return Err(TokensFileError::BadNames {
                        path: path.to_string(),
                        index,
                        message: format!("not a valid name: {bad:?}"),
                    });
                }
                Scope::Names(e.names.into_iter().collect())
            };
            tokens.push(Token {
                hash,
                scope,
                id: e.id.unwrap_or_else(|| format!("#{index}")),
            });
        }
        Ok(Tokens { tokens })
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Authenticates an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Caller, Unauthenticated> {
        let value = authorization.ok_or(Unauthenticated::Missing)?;
        let token = bearer(value).ok_or(Unauthenticated::Missing)?;
        let presented: [u8; 32] = Sha256::digest(token).into();
        // Every entry is compared, each in constant time, so the time taken
        // says nothing about how close a guess came.
        let mut found = None;
        for t in &self.tokens {
            if bool::from(t.hash.ct_eq(&presented)) {
                found = Some(t);
            }
        }
        found
            .map(|t| Caller {
                id: t.id.clone(),
                scope: t.scope.clone(),
            })
            .ok_or(Unauthenticated::Invalid)
    }
}

/// The token of a `Bearer <token>` header value (scheme case-insensitive).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (rest.first() == Some(&b' ') && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let text = format!(
            "- sha256: {}\n  names: ['*']\n  id: fleet\n- sha256: {}\n  names: [prod-box, prod-host]\n",
            hash_token("fleet-secret"),
            hash_token("box-secret")
        );
        Tokens::parse(&text, "tokens.yaml").unwrap()
    }

    #[test]
    fn tokens_are_loaded_from_their_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.yaml");
        std::fs::write(
            &path,
            format!("- sha256: {}\n  names: ['*']\n", hash_token("s3cret")),
        )
        .unwrap();
        let t = Tokens::load(&path).unwrap();
        assert_eq!(t.authenticate(Some(b"Bearer s3cret")).unwrap().id, "#0");
        assert_eq!((t.len(), t.is_empty()), (1, false));
        assert_eq!((tokens().len(), Tokens::none().is_empty()), (2, true));
        let missing = Tokens::load(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(missing.to_string().contains("nope.yaml"), "{missing}");
    }

    #[test]
    fn tokens_are_matched_by_hash_and_scoped_to_their_names() {
        let t = tokens();
        let fleet = t.authenticate(Some(b"Bearer fleet-secret")).unwrap();
        assert_eq!(fleet.id, "fleet");
        assert!(fleet.scope.allows("anything"));
        let b = t.authenticate(Some(b"bearer box-secret")).unwrap();
        assert_eq!(b.id, "#1");
        assert!(b.scope.allows("prod-box"));
        assert!(!b.scope.allows("test-1-box"));
    }

    #[test]
    fn missing_and_wrong_tokens_are_told_apart() {
        let t = tokens();
        assert_eq!(t.authenticate(None).unwrap_err(), Unauthenticated::Missing);
        for bad in [
            &b"Basic Zm9vOmJhcg=="[..],
            b"Bearer",
            b"Bearer   ",
            b"Bearerfleet-secret",
        ] {
            assert_eq!(
                t.authenticate(Some(bad)).unwrap_err(),
                Unauthenticated::Missing,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(
            t.authenticate(Some(b"Bearer fleet-secreT")).unwrap_err(),
            Unauthenticated::Invalid
        );
        assert_eq!(
            Tokens::none()
                .authenticate(Some(b"Bearer fleet-secret"))
                .unwrap_err(),
            Unauthenticated::Invalid
        );
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("1"),
            "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
        );
    }

    #[test]
    fn bad_files_name_the_problem_and_never_echo_a_token() {
        let cases = [
            (
                "- sha256: hunter2\n  names: ['*']\n",
                "entry 0: sha256 must be 64 hex digits",
            ),
            (
                &format!("- sha256: {}\n  names: []\n", hash_token("x")),
                "entry 0: names is empty",
            ),
            (
                &format!("- sha256: {}\n  names: ['a b']\n", hash_token("x")),
                "not a valid name",
            ),
            (
                "- sha256: abc\n  names: ['*']\n  colour: red\n",
                "unknown field `colour`",
            ),
            ("tokens: 3\n", "tokens.yaml:1:1"),
            ("- sha256: abc\n  colour: red\n", "tokens.yaml:2:3"),
        ];
        for (text, want) in cases {
            let got = Tokens::parse(text, "tokens.yaml").unwrap_err().to_string();
            assert!(got.contains(want), "got {got:?}, want {want:?}");
            assert!(!got.contains("hunter2"), "{got}");
        }
        assert!(Tokens::parse("", "t").unwrap().is_empty());
    }
}
