//! The fleet inventory: a YAML file of environments, their services, boxes
//! and hosts, and the settings of each source.
//!
//! `yaml` reads the file with every node's position, so an error carries the
//! file, line, column and field path of the node it is about:
//! `fleet.yaml:14:5: environments[1].services[0].healthz: ...`, and every
//! error is reported in one run. `values` holds the value types (names,
//! URLs, durations, secret references); `validate` the checks that span
//! fields (duplicate names, settings that need a companion).

mod validate;
mod values;
pub mod yaml;

pub use values::{HostPort, HttpUrl, Name, Pattern, Seconds, SecretRef};
use yaml::Document;
pub use yaml::Problem;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Every problem in the file, in file order, one per line.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The problems, or one saying the file could not be read at all.
    fn invalid(mut problems: Vec<Problem>, file: &str) -> ConfigError {
        if problems.is_empty() {
            problems.push(Problem {
                file: file.to_string(),
                line: 1,
                column: 1,
                field: "(top level)".to_string(),
                message: "cannot be read".to_string(),
            });
        }
        ConfigError::Invalid(problems)
    }

    /// The problems found (none for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(p) => p,
            ConfigError::Read { .. } => &[],
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
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

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates `text`; `file` names it in errors. Every
    /// problem is reported, each at its own node, in file order.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let mut doc = Document::parse(text, file).map_err(|p| ConfigError::Invalid(vec![p]))?;
        let config = doc.read::<Config>();
        if let Some(c) = &config {
            validate::validate(c, &mut doc);
        }
        let problems = doc.into_problems();
        match config {
            Some(c) if problems.is_empty() => Ok(c),
            _ => Err(ConfigError::invalid(problems, file)),
        }
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

/// Deserializes YAML `text` into `T`, reporting every problem with `file`,
/// line, column and field path. Shared by the fleet config, the web config
/// file and the tokens file.
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
    yaml::read_all(text, file).map_err(|p| ConfigError::invalid(p, file))
}

#[cfg(test)]
mod tests;
