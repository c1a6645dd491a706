//! The plain value types of the configuration: names, URLs, `host:port`,
//! durations, patterns and secret references. Each parses from a string and
//! says what it expected when it cannot.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Where a secret comes from: never the config file itself. Written
/// `{ file: PATH }` or `{ env: VAR }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// Read from this file (trailing whitespace trimmed).
    File(PathBuf),
    /// Read from this environment variable.
    Env(String),
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const HOW: &str = "a secret is never written inline: use `file: PATH` or `env: VARIABLE`";
        impl<'de> de::Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`file: PATH` or `env: VARIABLE`")
            }
            // Any scalar here may be the secret itself: say so without echoing it.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(HOW))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(E::custom(HOW))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(E::custom(HOW))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                let mut found: Option<SecretRef> = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value: String = map.next_value()?;
                    let r = match key.as_str() {
                        "file" => SecretRef::File(PathBuf::from(value)),
                        "env" => SecretRef::Env(value),
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}`: use `file: PATH` or `env: VARIABLE`"
                            )))
                        }
                    };
                    if found.replace(r).is_some() {
                        return Err(de::Error::custom("give one of `file` or `env`, not both"));
                    }
                }
                found.ok_or_else(|| de::Error::custom("give `file: PATH` or `env: VARIABLE`"))
            }
        }
        d.deserialize_any(V)
    }
}

impl SecretRef {
    /// Reads the secret. The error names where it looked, never the value.
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretRef::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("cannot read secret file {}: {e}", p.display())),
            SecretRef::Env(v) => std::env::var(v)
                .map(|s| s.trim().to_string())
                .map_err(|_| format!("environment variable {v} is not set")),
        }
    }
}

/// A name used as a label value and in URLs: `[A-Za-z0-9._-]{1,64}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(pub String);

/// Whether `s` is `0x` followed by `bytes` bytes in hex (an address, an id).
pub fn is_hex(s: &str, bytes: usize) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == bytes * 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Name {
    /// Whether `s` is a valid name.
    pub fn is_valid(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
            && s != "."
            && s != ".."
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Name {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if Name::is_valid(s) {
            Ok(Name(s.to_string()))
        } else {
            Err(format!(
                "not a valid name: {s:?} (expected 1 to 64 of A-Z a-z 0-9 . _ -)"
            ))
        }
    }
}

/// An http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub url::Url);

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let u = url::Url::parse(s).map_err(|_| format!("not a URL: {s:?}"))?;
        if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
            return Err(format!("not an http(s) URL with a host: {s:?}"));
        }
        Ok(HttpUrl(u))
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A `host:port` pair, the host sent as SNI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl FromStr for HostPort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not host:port: {s:?}");
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 || host.contains('/') {
            return Err(bad());
        }
        Ok(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Where to connect instead of the name in a URL or `host:port`: an IP
/// address or a DNS name, no port. The name is still what TLS verifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(pub String);

impl FromStr for Address {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let host = s.trim_start_matches('[').trim_end_matches(']');
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if host.parse::<std::net::IpAddr>().is_ok() || is_name {
            Ok(Address(host.to_string()))
        } else {
            Err(format!(
                "not an IP address or DNS name (no scheme or port): {s:?}"
            ))
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A duration written as `500ms`, `15s`, `5m`, `2h` or `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seconds(pub Duration);

impl FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("not a duration: {s:?} (expected e.g. 500ms, 15s, 5m, 2h, 1d)");
        let digits = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = s.split_at(digits);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            _ => return Err(bad()),
        };
        if d.is_zero() {
            return Err(format!("duration must be positive: {s:?}"));
        }
        Ok(Seconds(d))
    }
}

/// A regular expression, compiled on load.
#[derive(Debug, Clone)]
pub struct Pattern(pub regex::Regex);

impl FromStr for Pattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        regex::Regex::new(s)
            .map(Pattern)
            .map_err(|e| format!("not a regular expression: {s:?}: {e}"))
    }
}

macro_rules! deserialize_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(de::Error::custom)
            }
        }
    )*};
}
deserialize_from_str!(Name, HttpUrl, HostPort, Address, Seconds, Pattern);

/// How often a source runs and for how long at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Seconds,
    pub timeout: Seconds,
}

/// `text` with each `${var}` replaced from `vars`; `$${` is a literal `${`.
/// Used by stack templates and by discovered environments.
pub fn substitute(
    text: &str,
    vars: &std::collections::BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix("${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            let Some(close) = r.find('}') else {
                return Err(format!("unterminated ${{ in {text:?}"));
            };
            let var = &r[..close];
            match vars.get(var) {
                Some(v) => out.push_str(v),
                None => {
                    let known: Vec<&str> = vars.keys().map(String::as_str).collect();
                    return Err(format!(
                        "undefined variable ${{{var}}} (defined: {})",
                        known.join(", ")
                    ));
                }
            }
            rest = &r[close + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}
