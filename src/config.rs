//! The fleet inventory: a YAML file of environments, their services, boxes
//! and hosts, and the settings of each source.
//!
//! Every value is checked while it is parsed, so an error carries the file,
//! line, column and field path: `fleet.yaml:14:5: environments[1].services[0].healthz: ...`.
//! Checks that span fields (duplicate names) run after parsing and point at the
//! line where the offending name appears.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Default listen address: loopback, on a port no well-known exporter uses.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8937";

/// A configuration error that names where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {field}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        field: String,
        message: String,
    },
}

/// The whole inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address `/metrics`, the page and the API listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the SQLite store lives.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Hide instance ids, addresses and run URLs from the page and the JSON.
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub sources: SourcesConfig,
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Optional HTTP server hardening and access control.
    #[serde(default)]
    pub web: WebConfig,
    pub environments: Vec<Environment>,
}

fn default_listen() -> SocketAddr {
    // A constant literal that always parses.
    DEFAULT_LISTEN
        .parse()
        .expect("DEFAULT_LISTEN is a valid address")
}

/// One environment — a stack: prod or a test slot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub name: Name,
    #[serde(default)]
    pub services: Vec<Service>,
    /// Boxes that send a heartbeat at boot.
    #[serde(default)]
    pub boxes: Vec<Name>,
    /// Hosts that push a daily doctor snapshot.
    #[serde(default)]
    pub hosts: Vec<Name>,
    /// The cloud tag that finds this environment's instance(s) and Elastic IP(s).
    #[serde(default)]
    pub aws_tag: Option<Tag>,
    /// DNS names that must all resolve to the same A record (the environment's EIP).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// The OIDC issuer the environment must advertise.
    #[serde(default)]
    pub oidc: Option<OidcExpectation>,
    /// Pattern over a CI run's display title, name or head branch that marks
    /// the run as holding this environment's test slot.
    #[serde(default)]
    pub ci_slot: Option<Pattern>,
    /// Deployer wallet address on the chain.
    #[serde(default)]
    pub deployer: Option<String>,
    /// The account (a 32-byte id, hex) that must be registered in the registry contract.
    #[serde(default)]
    pub registry_account: Option<String>,
}

/// One service of an environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Name,
    /// Its health endpoint.
    #[serde(default)]
    pub healthz: Option<HttpUrl>,
    /// The TLS endpoint to check, `host:port`.
    #[serde(default)]
    pub tls: Option<HostPort>,
}

/// A cloud tag `key: value`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Where an environment's OIDC discovery document is and what issuer it must name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcExpectation {
    /// URL of the discovery document, e.g. `https://host/.well-known/openid-configuration`.
    pub url: HttpUrl,
    /// The issuer it must advertise.
    pub issuer: String,
}

/// How often a source runs and for how long at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub interval: Seconds,
    pub timeout: Seconds,
}

/// Every source's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    #[serde(default)]
    pub healthz: HealthzConfig,
    #[serde(default)]
    pub tls: TlsConfig,
    #[serde(default)]
    pub aws: Option<AwsConfig>,
    #[serde(default)]
    pub github: Option<GithubConfig>,
    #[serde(default)]
    pub chain: Option<ChainConfig>,
    /// The OIDC discovery source (runs when an environment lists `oidc`).
    #[serde(default)]
    pub oidc: OidcConfig,
    /// How long a failing source's last good values are kept before they are dropped.
    #[serde(default = "default_staleness")]
    pub staleness: Seconds,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        SourcesConfig {
            healthz: HealthzConfig::default(),
            tls: TlsConfig::default(),
            aws: None,
            github: None,
            chain: None,
            oidc: OidcConfig::default(),
            staleness: default_staleness(),
        }
    }
}

fn default_staleness() -> Seconds {
    Seconds(Duration::from_secs(600))
}

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
    #[serde(default = "default_concurrency")]
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
            concurrency: default_concurrency(),
            degraded_after: Self::default_slow(),
            status_field: Self::default_status_field(),
            degraded_values: Self::default_degraded_values(),
            commit_field: Self::default_commit_field(),
        }
    }
}

fn default_concurrency() -> usize {
    64
}

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
    #[serde(default = "default_concurrency")]
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
            concurrency: default_concurrency(),
            ca_file: None,
        }
    }
}

/// The AWS sources (EC2 and Route53).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// How often the source runs.
    #[serde(default = "AwsConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "AwsConfig::default_timeout")]
    pub timeout: Seconds,
    /// Region; the SDK's default chain is used when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override, e.g. a local emulator.
    #[serde(default)]
    pub endpoint_url: Option<HttpUrl>,
    /// The Route53 hosted zone holding the inventory's DNS names.
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
}

impl AwsConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(60))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(30))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

/// The GitHub Actions source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// How often the source runs.
    #[serde(default = "GithubConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "GithubConfig::default_timeout")]
    pub timeout: Seconds,
    /// `owner/name`.
    pub repo: String,
    /// The branch whose head is the commit everything should run.
    #[serde(default = "GithubConfig::default_branch")]
    pub main_branch: String,
    /// API base URL (for GitHub Enterprise or a test server).
    #[serde(default)]
    pub api_url: Option<HttpUrl>,
    /// Token source: a file path or an environment variable name. Never inline.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// How long a deployed commit may differ from main's head before it is drift.
    #[serde(default = "GithubConfig::default_grace")]
    pub stale_grace: Seconds,
    /// Which fields of a CI run the environments' `ci_slot` patterns are matched
    /// against; a run holds a slot when any of them matches.
    #[serde(default = "GithubConfig::default_ci_slot_match")]
    pub ci_slot_match: Vec<RunField>,
}

/// A field of a CI run that can name the test slot it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunField {
    /// The run's title (`run-name:` in the workflow, else the commit or PR title).
    DisplayTitle,
    /// The workflow's name.
    Name,
    /// The branch the run is for.
    HeadBranch,
    /// The names of the run's jobs (one more request per active run).
    JobName,
}

impl GithubConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(60))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(20))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

impl GithubConfig {
    fn default_branch() -> String {
        "main".into()
    }
    fn default_grace() -> Seconds {
        Seconds(Duration::from_secs(3600))
    }
    fn default_ci_slot_match() -> Vec<RunField> {
        vec![RunField::DisplayTitle, RunField::Name, RunField::HeadBranch]
    }
}

/// The OIDC discovery source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// How often the source runs.
    #[serde(default = "OidcConfig::default_interval")]
    pub interval: Seconds,
    /// How long one fetch may take.
    #[serde(default = "OidcConfig::default_timeout")]
    pub timeout: Seconds,
}

impl OidcConfig {
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

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            interval: Self::default_interval(),
            timeout: Self::default_timeout(),
        }
    }
}

/// The chain source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// How often the source runs.
    #[serde(default = "ChainConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "ChainConfig::default_timeout")]
    pub timeout: Seconds,
    /// JSON-RPC URL.
    pub rpc_url: HttpUrl,
    /// Native token symbol, for display.
    #[serde(default = "ChainConfig::default_symbol")]
    pub symbol: String,
    /// Decimals of the native token.
    #[serde(default = "ChainConfig::default_decimals")]
    pub decimals: u8,
    /// Registry contract address.
    #[serde(default)]
    pub registry_address: Option<String>,
    /// View function taking the account (bytes32) and returning an address;
    /// a non-zero address means registered.
    #[serde(default = "ChainConfig::default_registry_function")]
    pub registry_function: String,
}

impl ChainConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(60))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(15))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

impl ChainConfig {
    fn default_symbol() -> String {
        "ETH".into()
    }
    fn default_decimals() -> u8 {
        18
    }
    fn default_registry_function() -> String {
        "operatorMasterWallet(bytes32)".into()
    }
}

/// Push ingest settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// YAML file mapping token hashes to the names they may write.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Largest accepted body, in bytes.
    #[serde(default = "IngestConfig::default_max_body")]
    pub max_body_bytes: usize,
    /// Largest accepted JUnit XML body, in bytes.
    #[serde(default = "IngestConfig::default_max_junit")]
    pub max_junit_bytes: usize,
    /// Accept names not in the inventory, up to this many distinct names (0: refuse them).
    #[serde(default)]
    pub unknown_names_cap: usize,
    /// Services that push test runs and mutation results but are not probed.
    #[serde(default)]
    pub services: Vec<Name>,
}

impl IngestConfig {
    fn default_max_body() -> usize {
        1 << 20
    }
    fn default_max_junit() -> usize {
        16 << 20
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            tokens_file: None,
            max_body_bytes: Self::default_max_body(),
            max_junit_bytes: Self::default_max_junit(),
            unknown_names_cap: 0,
            services: Vec::new(),
        }
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Concurrent connections served at once.
    #[serde(default = "WebConfig::default_max_connections")]
    pub max_connections: usize,
    /// Time a client has to send its request headers and body (and to
    /// finish the TLS handshake, when serving TLS).
    #[serde(default = "WebConfig::default_request_timeout")]
    pub request_timeout: Seconds,
    /// An exporter-toolkit web configuration file: TLS and basic auth for
    /// everything served (`--web.config.file` overrides it).
    #[serde(default)]
    pub config_file: Option<PathBuf>,
}

impl WebConfig {
    fn default_max_connections() -> usize {
        1024
    }
    fn default_request_timeout() -> Seconds {
        Seconds(Duration::from_secs(30))
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            max_connections: Self::default_max_connections(),
            request_timeout: Self::default_request_timeout(),
            config_file: None,
        }
    }
}

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
deserialize_from_str!(Name, HttpUrl, HostPort, Seconds, Pattern);

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates `text`; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_yaml(text, file)?;
        config.validate(text, file)?;
        Ok(config)
    }

    fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let fail = |field: String, needle: &str, message: String| {
            let (line, column) = locate(text, needle);
            Err(ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                field,
                message,
            })
        };
        if self.environments.is_empty() {
            return fail(
                "environments".into(),
                "environments",
                "at least one environment is required".into(),
            );
        }
        let mut stacks = BTreeSet::new();
        for (i, env) in self.environments.iter().enumerate() {
            if !stacks.insert(&env.name) {
                return fail(
                    format!("environments[{i}].name"),
                    &format!("name: {}", env.name),
                    format!("duplicate environment name {:?}", env.name.0),
                );
            }
            let mut services = BTreeSet::new();
            for (j, svc) in env.services.iter().enumerate() {
                if !services.insert(&svc.name) {
                    return fail(
                        format!("environments[{i}].services[{j}].name"),
                        &format!("name: {}", svc.name),
                        format!(
                            "duplicate service {:?} in environment {:?}",
                            svc.name.0, env.name.0
                        ),
                    );
                }
            }
            if let Some(acct) = &env.registry_account {
                if !is_hex(acct, 32) {
                    return fail(
                        format!("environments[{i}].registry_account"),
                        acct,
                        format!("not a 32-byte hex id (0x + 64 hex digits): {acct:?}"),
                    );
                }
            }
            if let Some(addr) = &env.deployer {
                if !is_hex(addr, 20) {
                    return fail(
                        format!("environments[{i}].deployer"),
                        addr,
                        format!("not an address (0x + 40 hex digits): {addr:?}"),
                    );
                }
            }
        }
        let mut boxes = BTreeSet::new();
        let mut hosts = BTreeSet::new();
        for (i, env) in self.environments.iter().enumerate() {
            for (j, b) in env.boxes.iter().enumerate() {
                if !boxes.insert(b) {
                    return fail(
                        format!("environments[{i}].boxes[{j}]"),
                        b.as_str(),
                        format!("box {:?} is listed twice; box names are fleet-wide", b.0),
                    );
                }
            }
            for (j, h) in env.hosts.iter().enumerate() {
                if !hosts.insert(h) {
                    return fail(
                        format!("environments[{i}].hosts[{j}]"),
                        h.as_str(),
                        format!("host {:?} is listed twice; host names are fleet-wide", h.0),
                    );
                }
            }
        }
        let optional = [
            ("aws", self.sources.aws.as_ref().map(AwsConfig::schedule)),
            (
                "github",
                self.sources.github.as_ref().map(GithubConfig::schedule),
            ),
            (
                "chain",
                self.sources.chain.as_ref().map(ChainConfig::schedule),
            ),
        ];
        for (name, s) in [
            ("healthz", Some(self.sources.healthz.schedule())),
            ("tls", Some(self.sources.tls.schedule())),
            ("oidc", Some(self.sources.oidc.schedule())),
        ]
        .into_iter()
        .chain(optional)
        .filter_map(|(n, s)| s.map(|s| (n, s)))
        {
            if s.timeout.0 > s.interval.0 {
                return fail(
                    format!("sources.{name}.timeout"),
                    "timeout",
                    "timeout must not exceed interval".into(),
                );
            }
        }
        if self.sources.healthz.concurrency == 0 || self.sources.tls.concurrency == 0 {
            return fail(
                "sources.concurrency".into(),
                "concurrency",
                "concurrency must be at least 1".into(),
            );
        }
        if let Some(chain) = &self.sources.chain {
            if let Some(a) = &chain.registry_address {
                if !is_hex(a, 20) {
                    return fail(
                        "sources.chain.registry_address".into(),
                        a,
                        format!("not an address (0x + 40 hex digits): {a:?}"),
                    );
                }
            }
            let f = &chain.registry_function;
            let takes_one_id = f.strip_suffix("(bytes32)").is_some_and(|n| {
                n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                    && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            });
            if !takes_one_id {
                return fail(
                    "sources.chain.registry_function".into(),
                    "registry_function",
                    format!("not a view function of one bytes32 argument, like operatorMasterWallet(bytes32): {f:?}"),
                );
            }
            // U256 holds 77 decimal digits.
            if chain.decimals > 77 {
                return fail(
                    "sources.chain.decimals".into(),
                    "decimals",
                    format!("at most 77 decimals: {}", chain.decimals),
                );
            }
            let wants_registry = self
                .environments
                .iter()
                .any(|e| e.registry_account.is_some());
            if wants_registry && chain.registry_address.is_none() {
                return fail(
                    "sources.chain.registry_address".into(),
                    "chain:",
                    "required when an environment lists registry_account".into(),
                );
            }
        }
        if let Some(aws) = &self.sources.aws {
            let lists_names = self.environments.iter().any(|e| !e.dns_names.is_empty());
            if lists_names && aws.hosted_zone_id.is_none() {
                return fail(
                    "sources.aws.hosted_zone_id".into(),
                    "aws:",
                    "required when an environment lists dns_names (the Route53 zone holding them)"
                        .into(),
                );
            }
        }
        if let Some(gh) = &self.sources.github {
            let ok = gh
                .repo
                .split_once('/')
                .is_some_and(|(o, n)| Name::is_valid(o) && Name::is_valid(n));
            if !ok {
                return fail(
                    "sources.github.repo".into(),
                    &gh.repo,
                    format!("not owner/name: {:?}", gh.repo),
                );
            }
        }
        Ok(())
    }

    /// The environment named `stack`.
    pub fn environment(&self, stack: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name.0 == stack)
    }

    /// The environment a box belongs to.
    pub fn stack_of_box(&self, name: &str) -> Option<&Name> {
        self.environments
            .iter()
            .find(|e| e.boxes.iter().any(|b| b.0 == name))
            .map(|e| &e.name)
    }

    /// The environment a doctor host belongs to.
    pub fn stack_of_host(&self, name: &str) -> Option<&Name> {
        self.environments
            .iter()
            .find(|e| e.hosts.iter().any(|b| b.0 == name))
            .map(|e| &e.name)
    }

    /// Whether a service of this name is in the inventory.
    pub fn has_service(&self, name: &str) -> bool {
        self.ingest.services.iter().any(|s| s.0 == name)
            || self
                .environments
                .iter()
                .any(|e| e.services.iter().any(|s| s.name.0 == name))
    }
}

/// Deserializes YAML `text` into `T`; an error names `file`, the line and
/// column of the offending value and its field path. Shared by the fleet
/// config and the web config file.
pub(crate) fn parse_yaml<T: de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
    let de = serde_yaml::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = display_path(&path);
        let inner = e.into_inner();
        let message = clean_message(&inner.to_string());
        let (line, column) = inner
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let (line, column) = refine_location(text, line, column, &path, &message);
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            field,
            message,
        }
    })
}

fn is_hex(s: &str, bytes: usize) -> bool {
    s.strip_prefix("0x")
        .is_some_and(|h| h.len() == bytes * 2 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Line and column (1-based) of the first occurrence of `needle`.
pub(crate) fn locate(text: &str, needle: &str) -> (usize, usize) {
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(needle) {
            return (i + 1, col + 1);
        }
    }
    (1, 1)
}

/// `environments[1].services[0].healthz`: serde_path_to_error prints `.` for the root.
fn display_path(p: &str) -> String {
    // `?` stands for a key the YAML reader could not read.
    let p = p.trim_end_matches(".?");
    if p == "." || p == "?" || p.is_empty() {
        "(top level)".into()
    } else {
        p.to_string()
    }
}

/// serde_yaml prefixes its own path and appends " at line L column C"; both
/// are already in front of the message.
fn clean_message(m: &str) -> String {
    let m = match m.find(" at line ") {
        Some(i) => &m[..i],
        None => m,
    };
    match m.split_once(": ") {
        Some((prefix, rest))
            if !prefix.is_empty()
                && prefix.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'[' | b']' | b'_' | b'-')
                }) =>
        {
            rest.to_string()
        }
        _ => m.to_string(),
    }
}

/// serde_yaml reports a value's error at the start of the mapping holding it;
/// point at the offending key's value (or at the key, for an unknown field)
/// by finding the path's last key at or after that position.
fn refine_location(
    text: &str,
    line: usize,
    column: usize,
    path: &str,
    message: &str,
) -> (usize, usize) {
    let (line, column) = within_text(text, line, column);
    let last = path.rsplit('.').next().unwrap_or("");
    let key = last.split('[').next().unwrap_or("");
    if key.is_empty() {
        return (line, column);
    }
    let needle = format!("{key}:");
    for (i, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let Some(at) = l.find(&needle) else {
            continue;
        };
        // The key must start a mapping entry, not sit inside another value.
        let before = l[..at].trim_start_matches([' ', '-', '{', ',']);
        if !before.is_empty() && !before.ends_with([' ', '{', ',']) {
            continue;
        }
        if message.starts_with("unknown field") {
            return (i + 1, at + 1);
        }
        let after = &l[at + needle.len()..];
        let pad = after.len() - after.trim_start().len();
        return (i + 1, at + needle.len() + pad + 1);
    }
    (line, column)
}

/// The reader reports an error at the end of the input one line past the
/// last: point at the end of the last line instead.
fn within_text(text: &str, line: usize, column: usize) -> (usize, usize) {
    let lines = text.split('\n').count();
    if line <= lines {
        return (line.max(1), column.max(1));
    }
    let last = text.rsplit('\n').next().unwrap_or("");
    (lines, last.chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
listen: 127.0.0.1:9999
environments:
  - name: prod
    boxes: [prod-box]
    services:
      - name: broker
        healthz: https://broker.example.com/healthz
        tls: broker.example.com:443
";

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::parse(GOOD, "fleet.yaml").unwrap();
        assert_eq!(c.environments[0].services[0].name.0, "broker");
        assert_eq!(c.sources.healthz.interval.0, Duration::from_secs(15));
        assert_eq!(c.stack_of_box("prod-box").unwrap().0, "prod");
        assert!(c.has_service("broker"));
        assert!(!c.has_service("nope"));
    }

    fn err(text: &str) -> String {
        Config::parse(text, "fleet.yaml").unwrap_err().to_string()
    }

    #[test]
    fn each_error_class_names_file_line_column_and_field() {
        let cases: &[(&str, &str)] = &[
            (
                "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: broker/healthz\n",
                "fleet.yaml:5:18: environments[0].services[0].healthz: not a URL: \"broker/healthz\"",
            ),
            (
                "environments:\n  - name: prod\n    services:\n      - name: broker\n        tls: broker.example.com\n",
                "fleet.yaml:5:14: environments[0].services[0].tls: not host:port",
            ),
            (
                "environments:\n  - name: pr od\n",
                "fleet.yaml:2:11: environments[0].name: not a valid name",
            ),
            (
                "environments:\n  - name: prod\n    colour: blue\n",
                "fleet.yaml:3:5: environments[0].colour: unknown field `colour`, expected one of `name`",
            ),
            (
                "sources:\n  healthz:\n    interval: soon\nenvironments: []\n",
                "fleet.yaml:3:15: sources.healthz.interval: not a duration",
            ),
            (
                "listen: nowhere\nenvironments: []\n",
                "fleet.yaml:1:9: listen: invalid socket address",
            ),
            ("environments: []\n", "fleet.yaml:1:1: environments: at least one"),
            (
                "environments:\n  - name: prod\n  - name: prod\n",
                "fleet.yaml:2:5: environments[1].name: duplicate environment name",
            ),
            (
                "environments:\n  - name: prod\n    deployer: 0x12\n",
                "fleet.yaml:3:15: environments[0].deployer: not an address",
            ),
            (
                "environments:\n  - name: prod\n    ci_slot: '('\n",
                "fleet.yaml:3:14: environments[0].ci_slot: not a regular expression",
            ),
            (
                "sources:\n  github:\n    repo: nope\nenvironments:\n  - name: a\n",
                "fleet.yaml:3:11: sources.github.repo: not owner/name",
            ),
            (
                "sources:\n  github:\n    repo: a/b\n    token: hunter2\nenvironments:\n  - name: a\n",
                "fleet.yaml:4:12: sources.github.token: a secret is never written inline",
            ),
            (
                "sources:\n  github:\n    repo: a/b\n    token: { file: /a, env: B }\nenvironments:\n  - name: a\n",
                "fleet.yaml:4:12: sources.github.token: give one of `file` or `env`, not both",
            ),
            (
                "sources:\n  chain:\n    rpc_url: http://127.0.0.1:8545\n    registry_function: operatorMasterWallet(address)\nenvironments:\n  - name: a\n",
                "fleet.yaml:4:5: sources.chain.registry_function: not a view function of one bytes32 argument",
            ),
            (
                "sources:\n  chain:\n    rpc_url: http://127.0.0.1:8545\nenvironments:\n  - name: a\n    registry_account: \"0x593ad699fc1f7cd5bb2e35cbf0f19c557067cbbe80c46d1fb6dfbdb0ae075528\"\n",
                "fleet.yaml:2:3: sources.chain.registry_address: required when an environment lists registry_account",
            ),
            (
                "sources:\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: a\n    dns_names: [a.example.net]\n",
                "fleet.yaml:2:3: sources.aws.hosted_zone_id: required when an environment lists dns_names",
            ),
            (
                "sources:\n  github:\n    repo: a/b\n    interval: 10s\n    timeout: 20s\nenvironments:\n  - name: a\n",
                "fleet.yaml:5:5: sources.github.timeout: timeout must not exceed interval",
            ),
            (
                "sources:\n  github:\n    repo: a/b\n    ci_slot_match: [title]\nenvironments:\n  - name: a\n",
                "fleet.yaml:4:20: sources.github.ci_slot_match[0]: unknown variant `title`, expected one of `display_title`, `name`, `head_branch`, `job_name`",
            ),
            (
                "environments:\n  - name: prod\n    services: 3\n",
                "fleet.yaml:3:15: environments[0].services: invalid type: integer `3`, expected a sequence",
            ),
            (
                "environments:\n  - name: [\n",
                "fleet.yaml:2:11: environments[0].name: invalid type: sequence, expected a string",
            ),
            ("environments:\n  - name: a\n  name: b\n", "fleet.yaml:3:"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.starts_with(want),
                "for\n{text}\ngot:  {got}\nwant: {want}"
            );
        }
    }

    #[test]
    fn inline_secrets_are_refused_without_being_echoed() {
        let e = err("sources:\n  github:\n    repo: a/b\n    token: ghp_s3cr3t\nenvironments:\n  - name: a\n");
        assert!(!e.contains("ghp_s3cr3t"), "{e}");
        let ok = Config::parse(
            "sources:\n  github:\n    repo: a/b\n    token: { env: GH_TOKEN }\nenvironments:\n  - name: a\n",
            "f",
        )
        .unwrap();
        assert_eq!(
            ok.sources.github.unwrap().token,
            Some(SecretRef::Env("GH_TOKEN".into()))
        );
    }

    #[test]
    fn secret_refs_never_echo_the_value() {
        let e = SecretRef::Env("FLEETPULSE_TEST_UNSET_VAR".into())
            .read()
            .unwrap_err();
        assert!(e.contains("FLEETPULSE_TEST_UNSET_VAR"));
    }

    #[test]
    fn names_reject_traversal_and_control_characters() {
        for bad in ["", "..", ".", "a/b", "a b", "a\nb", "é", &"x".repeat(65)] {
            assert!(!Name::is_valid(bad), "{bad:?}");
        }
        for good in ["prod", "test-1", "worker_3.eu", &"x".repeat(64)] {
            assert!(Name::is_valid(good), "{good:?}");
        }
    }

    #[test]
    fn durations_parse_units() {
        assert_eq!(
            "500ms".parse::<Seconds>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!(
            "2h".parse::<Seconds>().unwrap().0,
            Duration::from_secs(7200)
        );
        assert!("0s".parse::<Seconds>().is_err());
        assert!("5".parse::<Seconds>().is_err());
    }
}
