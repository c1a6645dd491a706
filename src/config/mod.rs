//! The fleet inventory: a YAML file of environments, their services, boxes
//! and hosts, and the settings of each source.
//!
//! `yaml` reads the file with every node's position, so an error carries the
//! file, line, column and field path of the node it is about:
//! `fleet.yaml:14:5: environments[1].services[0].healthz: ...`, and every
//! error is reported in one run. `values` holds the value types (names,
//! URLs, durations, secret references); `validate` the checks that span
//! fields (duplicate names, settings that need a companion).

pub mod template;
mod validate;
pub mod yaml;

pub use crate::inventory::{Environment, OidcExpectation, Service, Tag};
pub use crate::sources::aws::AwsConfig;
pub use crate::sources::chain::ChainConfig;
pub use crate::sources::github::{GithubConfig, RunField};
pub use crate::sources::healthz::HealthzConfig;
pub use crate::sources::oidc::OidcConfig;
pub use crate::sources::tls::TlsConfig;
pub use crate::sources::SourcesConfig;
pub use crate::values::{HostPort, HttpUrl, Name, Pattern, Schedule, Seconds, SecretRef};
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
    /// What changed and when (kept with a `state_dir`).
    #[serde(default)]
    pub history: HistoryConfig,
    pub environments: Vec<Environment>,
}

/// History settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryConfig {
    /// Whether changes are recorded (with a `state_dir`).
    #[serde(default = "HistoryConfig::default_enabled")]
    pub enabled: bool,
    /// How long events are kept; each subject's newest is kept regardless.
    #[serde(default = "HistoryConfig::default_retention")]
    pub retention: Seconds,
}

impl HistoryConfig {
    fn default_enabled() -> bool {
        true
    }
    fn default_retention() -> Seconds {
        Seconds(Duration::from_secs(90 * 86400))
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            enabled: Self::default_enabled(),
            retention: Self::default_retention(),
        }
    }
}

fn default_listen() -> SocketAddr {
    // A constant literal that always parses.
    DEFAULT_LISTEN
        .parse()
        .expect("DEFAULT_LISTEN is a valid address")
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
    /// How long the stored pushes of a name the inventory no longer lists
    /// are kept (in case it comes back) before they are pruned.
    #[serde(default = "IngestConfig::default_retention")]
    pub retention: Seconds,
}

impl IngestConfig {
    fn default_retention() -> Seconds {
        Seconds(Duration::from_secs(30 * 86400))
    }
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
            retention: Self::default_retention(),
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
        Config::load_with(path, &[])
    }

    /// As `load`, with discovered environments added.
    pub fn load_with(
        path: &Path,
        discovered: &[crate::inventory::Discovered],
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse_with(&text, &path.display().to_string(), discovered)
    }

    /// Parses and validates `text`; `file` names it in errors. Every
    /// problem is reported, each at its own node, in file order.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Config::parse_with(text, file, &[])
    }

    /// As `parse`, with environments found in the cloud added to those
    /// the file lists.
    pub fn parse_with(
        text: &str,
        file: &str,
        discovered: &[crate::inventory::Discovered],
    ) -> Result<Config, ConfigError> {
        let mut doc = Document::parse(text, file).map_err(|p| ConfigError::Invalid(vec![p]))?;
        doc.add_environments(discovered);
        doc.expand_templates();
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

    /// The file at `path` with every template expanded, as YAML: the
    /// inventory as fleetpulse reads it, itself a valid config. Refused,
    /// like `load`, when the file has a problem.
    pub fn expanded(path: &Path) -> Result<String, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        Config::parse(&text, &file)?;
        let mut doc = Document::parse(&text, &file).map_err(|p| ConfigError::Invalid(vec![p]))?;
        doc.expand_templates();
        Ok(doc.to_yaml())
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

    /// The environments listing a service of this name, in config order.
    pub fn stacks_of_service<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Name> + 'a {
        self.environments
            .iter()
            .filter(move |e| e.services.iter().any(|s| s.name.0 == name))
            .map(|e| &e.name)
    }

    /// The one environment a pushed name belongs to: the box's, the host's,
    /// or the service's when exactly one environment lists it; else none.
    pub fn stack_of_name(&self, name: &str) -> Option<&Name> {
        if let Some(s) = self.stack_of_box(name).or_else(|| self.stack_of_host(name)) {
            return Some(s);
        }
        let mut listing = self
            .environments
            .iter()
            .filter(|e| e.services.iter().any(|s| s.name.0 == name));
        match (listing.next().map(|e| &e.name), listing.next()) {
            (Some(s), None) => Some(s),
            _ => None,
        }
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

/// What the sources see of the config: the environments and their settings.
impl crate::sources::Watched for Config {
    fn environments(&self) -> &[Environment] {
        &self.environments
    }
    fn sources(&self) -> &SourcesConfig {
        &self.sources
    }
}

#[cfg(test)]
mod template_tests;
#[cfg(test)]
mod tests;
