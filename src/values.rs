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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(v: serde_json::Value) -> Result<SecretRef, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn a_secret_is_a_file_or_a_variable_and_never_inline() {
        assert_eq!(
            secret(json!({"file": "/run/token"})),
            Ok(SecretRef::File("/run/token".into()))
        );
        assert_eq!(
            secret(json!({"env": "TOKEN"})),
            Ok(SecretRef::Env("TOKEN".into()))
        );
        const HOW: &str = "a secret is never written inline: use `file: PATH` or `env: VARIABLE`";
        for inline in [json!("hunter2-secret"), json!(12345), json!(-12345)] {
            assert_eq!(secret(inline.clone()), Err(HOW.into()), "{inline}");
        }
        assert_eq!(
            secret(json!({"file": "a", "env": "B"})),
            Err("give one of `file` or `env`, not both".into())
        );
        assert_eq!(
            secret(json!({})),
            Err("give `file: PATH` or `env: VARIABLE`".into())
        );
        assert_eq!(
            secret(json!({"value": "x"})),
            Err("unknown key `value`: use `file: PATH` or `env: VARIABLE`".into())
        );
        assert_eq!(
            secret(json!(true)),
            Err("invalid type: boolean `true`, expected `file: PATH` or `env: VARIABLE`".into())
        );
    }

    #[test]
    fn a_secret_is_read_trimmed_and_its_errors_name_only_where_it_looked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret \n").unwrap();
        assert_eq!(SecretRef::File(path.clone()).read(), Ok("s3cret".into()));
        let missing = dir.path().join("missing");
        let e = SecretRef::File(missing.clone()).read().unwrap_err();
        assert!(
            e.starts_with(&format!("cannot read secret file {}: ", missing.display())),
            "{e}"
        );
        let path_var = std::env::var("PATH").unwrap();
        assert_eq!(
            SecretRef::Env("PATH".into()).read(),
            Ok(path_var.trim().to_string())
        );
        assert_eq!(
            SecretRef::Env("FLEETPULSE_NEVER_SET_0F9A".into()).read(),
            Err("environment variable FLEETPULSE_NEVER_SET_0F9A is not set".into())
        );
    }

    #[test]
    fn hex_is_0x_and_exactly_twice_the_bytes_in_hex_digits() {
        assert!(is_hex("0x00aAfF", 3));
        assert!(!is_hex("00aAfF", 3));
        assert!(!is_hex("0x00aAf", 3));
        assert!(!is_hex("0x00aAfF00", 3));
        assert!(!is_hex("0x00aAfg", 3));
    }

    #[test]
    fn names_are_1_to_64_safe_characters_but_not_dot_or_dot_dot() {
        let long = "a".repeat(64);
        for ok in ["a", "prod-1", "x_y.z", "...", long.as_str()] {
            assert!(Name::is_valid(ok), "{ok}");
            assert_eq!(ok.parse::<Name>().unwrap().to_string(), ok);
            assert_eq!(ok.parse::<Name>().unwrap().as_str(), ok);
        }
        let too_long = "a".repeat(65);
        for bad in ["", ".", "..", "a/b", "a b", "ü", too_long.as_str()] {
            assert!(!Name::is_valid(bad), "{bad}");
        }
        assert_eq!(
            "a/b".parse::<Name>(),
            Err("not a valid name: \"a/b\" (expected 1 to 64 of A-Z a-z 0-9 . _ -)".into())
        );
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        let u: HttpUrl = "https://example.net:8443/healthz".parse().unwrap();
        assert_eq!(u.to_string(), "https://example.net:8443/healthz");
        assert!("http://10.0.0.1/".parse::<HttpUrl>().is_ok());
        assert_eq!(
            "ftp://example.net/".parse::<HttpUrl>(),
            Err("not an http(s) URL with a host: \"ftp://example.net/\"".into())
        );
        assert!("unix:/run/sock".parse::<HttpUrl>().is_err());
        assert_eq!(
            "example.net".parse::<HttpUrl>(),
            Err("not a URL: \"example.net\"".into())
        );
    }

    #[test]
    fn host_port_takes_names_and_bracketed_ipv6_and_prints_them_back() {
        let hp: HostPort = "example.net:443".parse().unwrap();
        assert_eq!((hp.host.as_str(), hp.port), ("example.net", 443));
        assert_eq!(hp.to_string(), "example.net:443");
        let v6: HostPort = "[2001:db8::1]:8443".parse().unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("2001:db8::1", 8443));
        assert_eq!(v6.to_string(), "[2001:db8::1]:8443");
        for bad in [
            "example.net",
            "example.net:0",
            ":443",
            "a/b:443",
            "a:https",
            "a:70000",
        ] {
            assert_eq!(
                bad.parse::<HostPort>(),
                Err(format!("not host:port: {bad:?}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_address_is_an_ip_or_a_dns_name_within_its_limits() {
        let label63 = "a".repeat(63);
        let name253 = format!("{0}.{0}.{0}.{1}", label63, "b".repeat(61));
        let name254 = format!("{0}.{0}.{0}.{1}", label63, "b".repeat(62));
        assert_eq!(name253.len(), 253);
        for (ok, kept) in [
            ("10.0.0.1", "10.0.0.1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("node-1.example.net", "node-1.example.net"),
            (label63.as_str(), label63.as_str()),
            (name253.as_str(), name253.as_str()),
        ] {
            let a: Address = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(a.to_string(), kept);
        }
        let label64 = "a".repeat(64);
        for bad in [
            "",
            "a..b",
            "-a.net",
            "a-.net",
            "a_b.net",
            "a.net:80",
            "http://a.net",
            label64.as_str(),
            name254.as_str(),
        ] {
            assert_eq!(
                bad.parse::<Address>(),
                Err(format!(
                    "not an IP address or DNS name (no scheme or port): {bad:?}"
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_have_a_unit_and_are_positive() {
        for (text, secs) in [
            ("500ms", 0.5),
            ("15s", 15.0),
            ("5m", 300.0),
            ("2h", 7200.0),
            ("1d", 86400.0),
        ] {
            assert_eq!(
                text.parse::<Seconds>().unwrap().0.as_secs_f64(),
                secs,
                "{text}"
            );
        }
        for bad in ["15", "s", "5w", "1.5s", "-5s", ""] {
            assert_eq!(
                bad.parse::<Seconds>(),
                Err(format!(
                    "not a duration: {bad:?} (expected e.g. 500ms, 15s, 5m, 2h, 1d)"
                )),
                "{bad}"
            );
        }
        assert_eq!(
            "0s".parse::<Seconds>(),
            Err("duration must be positive: \"0s\"".into())
        );
    }

    #[test]
    fn patterns_compile_or_say_why_not() {
        assert!("^prod-[0-9]+$"
            .parse::<Pattern>()
            .unwrap()
            .0
            .is_match("prod-12"));
        let e = "(".parse::<Pattern>().unwrap_err();
        assert!(e.starts_with("not a regular expression: \"(\": "), "{e}");
    }

    #[test]
    fn values_deserialize_from_their_text() {
        let s: Seconds = serde_json::from_value(json!("2h")).unwrap();
        assert_eq!(s.0.as_secs(), 7200);
        let e = serde_json::from_value::<Name>(json!("a b"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("not a valid name"), "{e}");
        assert!(serde_json::from_value::<HostPort>(json!(443)).is_err());
    }

    #[test]
    fn variables_are_substituted_and_dollar_brace_twice_is_literal() {
        let vars: std::collections::BTreeMap<String, String> = [
            ("env".to_string(), "prod".to_string()),
            ("n".to_string(), "3".to_string()),
        ]
        .into();
        assert_eq!(
            substitute("${env}-node-${n}.example.net", &vars),
            Ok("prod-node-3.example.net".into())
        );
        assert_eq!(
            substitute("cost $5, $${env}", &vars),
            Ok("cost $5, ${env}".into())
        );
        assert_eq!(substitute("trailing $", &vars), Ok("trailing $".into()));
        assert_eq!(
            substitute("a ${env", &vars),
            Err("unterminated ${ in \"a ${env\"".into())
        );
        assert_eq!(
            substitute("${region}", &vars),
            Err("undefined variable ${region} (defined: env, n)".into())
        );
    }
}
