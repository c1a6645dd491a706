//! Sources: one module per kind of thing fleetpulse pulls, all of one shape.
//!
//! A source is built from its slice of the config, and `collect` returns typed
//! facts or an error. It knows nothing of scheduling, HTTP serving or metric
//! encoding: the scheduler runs it on its interval under its timeout and keeps
//! the books (`fleet_source_*`).
//!
//! The aws (with dns), github and chain sources pull in heavy client crates
//! and sit behind Cargo features of those names, all on by default. Their
//! facts types are always compiled, so snapshots, views and the config are
//! the same in every build; only the collecting part is left out.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::catalogue::MetricDef;
use crate::inventory::Environment;
use crate::values::{Schedule, Seconds};

pub use kind::{BoardPart, NoPart, NoSettings, SourceKind};

pub mod aws;
pub mod chain;
pub mod discovery;
pub mod dns;
pub mod github;
pub mod healthz;
mod kind;
pub mod oidc;
pub mod tls;

/// A source's facts: what one good run found, as plain data. Each source
/// implements this for its own facts type; nothing outside the source's
/// module needs to know the type to store, encode or keep it.
pub trait SourceFacts:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + Send + Sync + 'static
{
    /// Writes the source's metric families (none by default).
    // cargo-mutants: its one mutant, `Ok(Default::default())`, is this body.
    #[cfg_attr(test, mutants::skip)]
    fn encode(&self, _enc: &mut crate::exposition::DescriptorEncoder) -> std::fmt::Result {
        Ok(())
    }

    /// Drops what the inventory no longer lists (a retired environment or
    /// service), so it leaves every view at once rather than at the
    /// source's next run. Returns whether anything was dropped.
    fn retire(&mut self, _listed: &Listed<'_>) -> bool {
        false
    }
}

/// What the inventory lists, for `SourceFacts::retire`.
pub struct Listed<'a>(pub &'a [Environment]);

impl Listed<'_> {
    /// Whether an environment of this name is listed.
    pub fn stack(&self, stack: &str) -> bool {
        self.0.iter().any(|e| e.name.as_str() == stack)
    }

    /// Whether `stack` lists a service of this name.
    pub fn service(&self, stack: &str, service: &str) -> bool {
        self.0
            .iter()
            .filter(|e| e.name.as_str() == stack)
            .any(|e| e.services.iter().any(|s| s.name.as_str() == service))
    }
}

/// `Vec::retain` that says whether it dropped anything.
pub fn retain_listed<T>(items: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> bool {
    let before = items.len();
    items.retain(keep);
    items.len() != before
}

/// Facts of any source, type-erased: what the scheduler, the store and the
/// encoder hold. `Facts::get` gives a reader its typed facts back.
pub trait AnyFacts: std::fmt::Debug + Send + Sync {
    fn encode(&self, enc: &mut crate::exposition::DescriptorEncoder) -> std::fmt::Result;
    /// The facts as JSON, as the store keeps them between runs.
    fn to_json(&self) -> serde_json::Result<String>;
    fn as_any(&self) -> &dyn Any;
    /// These facts without what the inventory no longer lists; `None` when
    /// nothing is gone.
    fn without_retired(&self, listed: &Listed<'_>) -> Option<SourceOutput>;
}

impl<T: SourceFacts> AnyFacts for T {
    fn encode(&self, enc: &mut crate::exposition::DescriptorEncoder) -> std::fmt::Result {
        SourceFacts::encode(self, enc)
    }
    fn to_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn without_retired(&self, listed: &Listed<'_>) -> Option<SourceOutput> {
        let mut kept = self.clone();
        kept.retire(listed).then(|| Arc::new(kept) as SourceOutput)
    }
}

impl dyn AnyFacts {
    /// The typed facts, if they are of type `T`.
    pub fn downcast_ref<T: SourceFacts>(&self) -> Option<&T> {
        self.as_any().downcast_ref::<T>()
    }
}

/// What one good run of a source produced.
pub type SourceOutput = Arc<dyn AnyFacts>;

/// Wraps a source's facts as its run's output.
pub fn output<T: SourceFacts>(facts: T) -> SourceOutput {
    Arc::new(facts)
}

/// Reads facts back from the JSON `AnyFacts::to_json` wrote.
pub type Restore = fn(&str) -> serde_json::Result<SourceOutput>;

/// `Restore` for one facts type.
pub fn restore<T: SourceFacts>(json: &str) -> serde_json::Result<SourceOutput> {
    Ok(Arc::new(serde_json::from_str::<T>(json)?))
}

/// The last good output of each source, by source name; a source has none
/// until it first succeeds, or after its values went stale.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    by_source: BTreeMap<&'static str, SourceOutput>,
}

impl Facts {
    /// The facts of the source whose facts type is `T`, if it has any.
    pub fn get<T: SourceFacts>(&self) -> Option<&T> {
        self.by_source
            .values()
            .find_map(|f| f.as_any().downcast_ref::<T>())
    }

    /// One source's facts, type-erased.
    pub fn of(&self, source: &str) -> Option<&SourceOutput> {
        self.by_source.get(source)
    }

    /// Every source's families, from its last good facts, in registry
    /// order; a source with none (never succeeded, or stale) writes no
    /// series.
    pub fn encode(&self, enc: &mut crate::exposition::DescriptorEncoder) -> std::fmt::Result {
        for r in REGISTRY {
            if let Some(f) = self.by_source.get(r.name) {
                f.encode(enc)?;
            }
        }
        Ok(())
    }

    /// These facts with `source`'s set to `facts`.
    pub fn with<T: SourceFacts>(mut self, source: &'static str, facts: T) -> Facts {
        self.set(source, output(facts));
        self
    }

    /// These facts with `source`'s set to `facts`, or left unset for `None`.
    pub fn maybe<T: SourceFacts>(self, source: &'static str, facts: Option<T>) -> Facts {
        match facts {
            Some(f) => self.with(source, f),
            None => self,
        }
    }

    /// Stores a source's fresh output.
    pub fn set(&mut self, source: &'static str, out: SourceOutput) {
        self.by_source.insert(source, out);
    }

    /// Drops from every source's facts what `environments` no longer lists.
    pub fn retire(&mut self, environments: &[Environment]) {
        let listed = Listed(environments);
        for f in self.by_source.values_mut() {
            if let Some(kept) = f.without_retired(&listed) {
                *f = kept;
            }
        }
    }

    /// Forgets a source's values (they went stale).
    pub fn forget(&mut self, source: &str) {
        self.by_source.remove(source);
    }
}

fn default_staleness() -> Seconds {
    Seconds(Duration::from_secs(600))
}

/// The `check` of a `concurrency` setting.
fn at_least_one_in_flight(concurrency: usize) -> Vec<(String, String)> {
    if concurrency == 0 {
        vec![(
            "concurrency".to_string(),
            "concurrency must be at least 1".to_string(),
        )]
    } else {
        Vec::new()
    }
}

/// Probes in flight at once, by default.
fn default_concurrency() -> usize {
    64
}

/// What sources are built from and read: the inventory's environments and
/// every source's settings. The fleet config provides it; a source sees
/// nothing else of the config.
pub trait Watched: Send + Sync + std::fmt::Debug {
    /// The environments, in file order.
    fn environments(&self) -> &[Environment];
    /// Every source's settings.
    fn sources(&self) -> &SourcesConfig;
}

/// Why a source run failed, in words that say what to fix. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

impl SourceError {
    pub fn new(msg: impl Into<String>) -> Self {
        SourceError(msg.into())
    }
}

/// A boxed collect future.
pub type CollectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SourceOutput, SourceError>> + Send + 'a>>;

/// One kind of pulled data.
pub trait Source: Send + Sync {
    /// The `source` label value.
    fn name(&self) -> &'static str;
    /// How often and for how long it runs.
    fn schedule(&self) -> Schedule;
    /// The longest one run may take before the scheduler abandons it.
    /// Per-target probes have their own timeout and may use the whole interval.
    fn run_deadline(&self) -> std::time::Duration {
        self.schedule().timeout.0
    }
    /// One run.
    fn collect(&self) -> CollectFuture<'_>;
}

/// Builds the sources one registered kind watches (none when the config
/// gives it nothing to watch).
pub type Register = fn(&Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError>;

/// One kind of source in the registry.
pub struct Registration {
    /// The `source` label it reports under (and its `sources.NAME` section).
    pub name: &'static str,
    /// For a source whose collecting half sits behind a Cargo feature.
    pub feature: Option<Gate>,
    pub register: Register,
    /// Reads its facts back from the store at start-up.
    pub restore: Restore,
    /// Its metric families.
    pub families: &'static [MetricDef],
}

impl Registration {
    /// The registry entry of one kind.
    pub const fn of<K: SourceKind>() -> Registration {
        Registration {
            name: K::NAME,
            feature: match K::FEATURE {
                Some(feature) => Some(Gate {
                    feature,
                    built_with: K::BUILT_WITH,
                    configured: K::configured,
                }),
                None => None,
            },
            register: K::register,
            restore: restore::<K::Facts>,
            families: K::FAMILIES,
        }
    }
}

/// A source's Cargo feature: whether this build has it, and whether the
/// config asks for the source (so a build without it refuses the config
/// rather than ignore the section).
pub struct Gate {
    pub feature: &'static str,
    pub built_with: bool,
    pub configured: fn(&dyn Watched) -> bool,
}

/// Declares the registry: for each line, the source module's field in
/// `SourcesConfig` (its `sources.NAME` section), its entry in `REGISTRY`
/// and its part of each environment in `Parts`.
macro_rules! registry {
    ($($name:ident: $kind:ty),* $(,)?) => {
        /// Every source's settings: one `sources.NAME` section per
        /// registered source, and the staleness they share.
        #[derive(Debug, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct SourcesConfig {
            $(
                #[serde(default)]
                pub $name: <$kind as SourceKind>::Settings,
            )*
            /// How long a failing source's last good values are kept before they are dropped.
            #[serde(default = "default_staleness")]
            pub staleness: Seconds,
        }

        impl Default for SourcesConfig {
            fn default() -> Self {
                SourcesConfig {
                    $($name: Default::default(),)*
                    staleness: default_staleness(),
                }
            }
        }

        impl SourcesConfig {
            /// The settings a source is built from, as text: its own section
            /// and those it also reads. Equal text, same settings.
            pub fn fingerprint(&self, source: &str) -> String {
                let section = |name: &str| -> String {
                    match name {
                        $(stringify!($name) => format!("{:?}", self.$name),)*
                        _ => String::new(),
                    }
                };
                match source {
                    $(
                        stringify!($name) => std::iter::once(stringify!($name))
                            .chain(<$kind as SourceKind>::READS.iter().copied())
                            .map(section)
                            .collect::<Vec<_>>()
                            .join("\n"),
                    )*
                    _ => String::new(),
                }
            }

            /// Every section's problems its types cannot say, in registry
            /// order: (section, field path under it, message).
            pub fn problems(&self, environments: &[Environment]) -> Vec<(&'static str, String, String)> {
                let mut out = Vec::new();
                $(
                    if let Some(s) = <$kind as SourceKind>::schedule(&self.$name) {
                        if s.timeout.0 > s.interval.0 {
                            out.push((<$kind as SourceKind>::NAME, "timeout".to_string(), "timeout must not exceed interval".to_string()));
                        }
                    }
                    for (field, msg) in <$kind as SourceKind>::check(&self.$name, environments) {
                        out.push((<$kind as SourceKind>::NAME, field, msg));
                    }
                )*
                out
            }
        }

        /// Every source, in the order they start.
        pub const REGISTRY: &[Registration] = &[$(Registration::of::<$kind>(),)*];

        /// Each source's part of one environment on the board, flattened
        /// into the environment's JSON object in registry order.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct Parts {
            $(
                #[serde(flatten)]
                pub $name: <$kind as SourceKind>::Part,
            )*
        }

        impl Parts {
            /// Every part of `env` from the last good facts at `now`.
            pub fn build(facts: &Facts, env: &Environment, now: f64) -> Parts {
                Parts { $($name: BoardPart::build(facts, env, now),)* }
            }
            /// The worst state any part reports.
            pub fn state(&self) -> Option<crate::board::State> {
                [$(self.$name.state(),)*].into_iter().flatten().max()
            }
            /// Public mode: each part hides its own.
            pub fn redact(&mut self, r: &crate::board::Redactor) {
                $(self.$name.redact(r);)*
            }
            /// The page blocks, the wide ones first, each group in registry order.
            pub fn blocks(&self) -> (Vec<maud::Markup>, Vec<maud::Markup>) {
                let (mut wide, mut rest) = (Vec::new(), Vec::new());
                $(
                    if let Some(m) = self.$name.page() {
                        if <<$kind as SourceKind>::Part as BoardPart>::WIDE { wide.push(m) } else { rest.push(m) }
                    }
                )*
                (wide, rest)
            }
        }
    };
}

// Every source, in the order they start: one line each.
registry! {
    healthz: healthz::Healthz,
    tls: tls::Tls,
    oidc: oidc::Oidc,
    aws: aws::Aws,
    dns: dns::Dns,
    discovery: discovery::Discovery,
    github: github::Github,
    chain: chain::Chain,
}

/// The metric families of every registered source, in registry order.
pub fn families() -> impl Iterator<Item = &'static MetricDef> {
    REGISTRY.iter().flat_map(|r| r.families.iter())
}

/// A `register` answer for a kind that runs as at most one source.
pub fn at_most_one<S: Source + 'static>(source: Option<S>) -> Vec<Arc<dyn Source>> {
    source
        .map(|s| Arc::new(s) as Arc<dyn Source>)
        .into_iter()
        .collect()
}

/// The Cargo features this build left out, with the sources each would
/// have brought (`("aws", ["aws", "dns"])`), in registry order.
pub fn left_out() -> Vec<(&'static str, Vec<&'static str>)> {
    left_out_of(REGISTRY)
}

fn left_out_of(registry: &[Registration]) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in registry {
        if let Some(g) = r.feature.as_ref().filter(|g| !g.built_with) {
            match out.iter_mut().find(|(f, _)| *f == g.feature) {
                Some((_, names)) => names.push(r.name),
                None => out.push((g.feature, vec![r.name])),
            }
        }
    }
    out
}

/// Builds every source the config enables, from the registry.
pub fn from_config(config: Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
    for r in REGISTRY {
        if let Some(g) = &r.feature {
            compiled_in((g.configured)(config.as_ref()), g.feature, g.built_with)?;
        }
    }
    let mut out = Vec::new();
    for r in REGISTRY {
        out.extend((r.register)(&config)?);
    }
    Ok(out)
}

/// Refuses a configured `sources.<feature>` section when this build left its
/// source out (the Cargo feature of the same name), rather than silently not
/// watching it. The config itself parses alike in every build.
fn compiled_in(configured: bool, feature: &str, built_with: bool) -> Result<(), SourceError> {
    if configured && !built_with {
        return Err(SourceError::new(format!(
            "sources.{feature} is configured, but this fleetpulse was built without the \"{feature}\" \
             feature: rebuild with `--features {feature}` (it is in the default features) or remove sources.{feature}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_registry_builds_what_the_config_asks_for_in_order() {
        let yaml = "environments:\n  - name: prod\n    oidc: { url: https://a.example/.well-known/openid-configuration, issuer: x }\n    services:\n      - name: broker\n        healthz: https://a.example/healthz\n        tls: a.example:443\n";
        let config = Arc::new(Config::parse(yaml, "t.yaml").unwrap());
        let names: Vec<&str> = from_config(config.clone() as Arc<dyn Watched>)
            .unwrap()
            .iter()
            .map(|s| s.name())
            .collect();
        assert_eq!(names, ["healthz", "tls", "oidc"]);
        let bare = Arc::new(Config::parse("environments:\n  - name: prod\n", "t.yaml").unwrap());
        assert!(from_config(bare.clone() as Arc<dyn Watched>)
            .unwrap()
            .is_empty());
        let mut seen = std::collections::HashSet::new();
        for r in REGISTRY {
            assert!(seen.insert(r.name), "{} registered twice", r.name);
        }
    }

    #[test]
    fn the_features_left_out_are_those_of_this_build() {
        let out = left_out();
        let named = |f: &str| out.iter().any(|(g, _)| *g == f);
        assert_eq!(named("aws"), !cfg!(feature = "aws"));
        assert_eq!(named("github"), !cfg!(feature = "github"));
        assert_eq!(named("chain"), !cfg!(feature = "chain"));
        // Exactly those, each with its sources, in registry order.
        let mut want: Vec<(&str, Vec<&str>)> = Vec::new();
        if !cfg!(feature = "aws") {
            want.push(("aws", vec!["aws", "dns", "discovery"]));
        }
        if !cfg!(feature = "github") {
            want.push(("github", vec!["github"]));
        }
        if !cfg!(feature = "chain") {
            want.push(("chain", vec!["chain"]));
        }
        assert_eq!(out, want);
    }

    #[test]
    fn sources_left_out_are_grouped_by_their_feature_in_registry_order() {
        let entry = |name, gate: Option<(&'static str, bool)>| Registration {
            name,
            feature: gate.map(|(feature, built_with)| Gate {
                feature,
                built_with,
                configured: |_| false,
            }),
            ..Registration::of::<healthz::Healthz>()
        };
        let registry = [
            entry("a", Some(("one", false))),
            entry("b", None),
            entry("c", Some(("two", false))),
            entry("d", Some(("one", false))),
            entry("e", Some(("three", true))),
            entry("f", Some(("two", false))),
        ];
        assert_eq!(
            left_out_of(&registry),
            [("one", vec!["a", "d"]), ("two", vec!["c", "f"])]
        );
        assert!(left_out_of(&registry[1..2]).is_empty());
    }

    /// Every source of this build is built for a config that asks for all
    /// of them, by the registry, in its order.
    #[tokio::test]
    async fn a_config_asking_for_every_source_gets_each_of_this_build() {
        let yaml = "sources:\n  aws:\n    region: eu-west-1\n    hosted_zone_id: Z1\n\
                    \x20 github:\n    repo: o/r\n  chain:\n    rpc_url: http://127.0.0.1:1/\n\
                    \x20 discovery:\n    - { template: slot, tag: Name, pattern: '^(.+)$' }\n\
                    templates:\n  slot:\n    services: []\n\
                    environments:\n  - name: prod\n    aws_tag: { key: Stack, value: prod }\n    dns_names: [prod.example.net]\n\
                    \x20   deployer: '0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'\n    ci_slot: 'slot-1'\n\
                    \x20   oidc: { url: https://a.example/.well-known/openid-configuration, issuer: x }\n\
                    \x20   services:\n      - name: broker\n        healthz: https://a.example/healthz\n        tls: a.example:443\n";
        let config = Arc::new(Config::parse(yaml, "t.yaml").unwrap());
        let built = from_config(config as Arc<dyn Watched>);
        if cfg!(all(feature = "aws", feature = "github", feature = "chain")) {
            let names: Vec<&str> = built.unwrap().iter().map(|s| s.name()).collect();
            let all: Vec<&str> = REGISTRY.iter().map(|r| r.name).collect();
            assert_eq!(names, all);
        } else {
            // A build without some sources refuses their sections.
            let e = built.err().unwrap().to_string();
            assert!(e.contains("this fleetpulse was built without the"), "{e}");
        }
    }

    #[test]
    fn each_gated_source_is_configured_by_its_section_and_only_then() {
        let config = |sources: &str| {
            Config::parse(
                &format!("sources:\n{sources}templates:\n  slot:\n    services: []\nenvironments:\n  - name: prod\n"),
                "t.yaml",
            )
            .unwrap()
        };
        let aws = "  aws:\n    region: eu-west-1\n";
        let sections = [
            ("aws", aws),
            ("dns", aws),
            (
                "discovery",
                "  aws:\n    region: eu-west-1\n  discovery:\n    - { template: slot, tag: Name, pattern: '^(.+)$' }\n",
            ),
            ("github", "  github:\n    repo: o/r\n"),
            ("chain", "  chain:\n    rpc_url: http://127.0.0.1:1/\n"),
        ];
        let gated: Vec<_> = REGISTRY
            .iter()
            .filter(|r| r.feature.is_some())
            .map(|r| r.name)
            .collect();
        let mut named: Vec<_> = sections.iter().map(|(n, _)| *n).collect();
        named.sort_unstable();
        let mut sorted = gated.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, named, "a section for every gated source");
        let none = config("  staleness: 5m\n");
        for r in REGISTRY {
            let Some(g) = &r.feature else { continue };
            let (_, own) = sections.iter().find(|(n, _)| *n == r.name).unwrap();
            assert!((g.configured)(&config(own)), "{} with its section", r.name);
            assert!(!(g.configured)(&none), "{} without it", r.name);
        }
    }

    #[test]
    fn a_configured_source_left_out_of_the_build_is_refused_by_section_and_feature() {
        let err = compiled_in(true, "github", false).unwrap_err().to_string();
        assert!(err.starts_with("sources.github is configured"), "{err}");
        assert!(err.contains("without the \"github\" feature"), "{err}");
        assert!(err.contains("--features github"), "{err}");
        assert_eq!(compiled_in(true, "github", true), Ok(()));
        assert_eq!(compiled_in(false, "github", false), Ok(()));
    }

    fn config(text: &str) -> Config {
        Config::parse(text, "t.yaml").unwrap()
    }

    const TWO: &str = "environments:\n  - name: prod\n    services:\n      - name: api\n  - name: staging\n    services:\n      - name: web\n";

    #[test]
    fn listed_names_environments_and_each_ones_services() {
        let c = config(TWO);
        let listed = Listed(&c.environments);
        assert!(listed.stack("prod") && listed.stack("staging") && !listed.stack("dev"));
        assert!(listed.service("prod", "api") && listed.service("staging", "web"));
        assert!(!listed.service("prod", "web") && !listed.service("dev", "api"));
        let mut v = vec![1, 2, 3];
        assert!(!retain_listed(&mut v, |_| true));
        assert!(retain_listed(&mut v, |x| *x != 2));
        assert_eq!(v, [1, 3]);
    }

    #[test]
    fn a_sources_fingerprint_covers_its_section_and_those_it_reads_only() {
        let base = config(TWO);
        let tls = config(&format!("sources:\n  tls:\n    timeout: 3s\n{TWO}"));
        let oidc = config(&format!("sources:\n  oidc:\n    timeout: 3s\n{TWO}"));
        let f = |c: &Config, s: &str| c.sources.fingerprint(s);
        // healthz reads the tls section (its trust roots).
        assert_ne!(f(&base, "healthz"), f(&tls, "healthz"));
        assert_ne!(f(&base, "tls"), f(&tls, "tls"));
        assert_eq!(f(&base, "healthz"), f(&oidc, "healthz"));
        assert!(!f(&base, "oidc").is_empty());
        assert_eq!(f(&base, "nonesuch"), "");
    }

    #[test]
    fn problems_are_named_by_source_and_field() {
        let bad = SourcesConfig {
            healthz: healthz::HealthzConfig {
                interval: Seconds(Duration::from_secs(5)),
                timeout: Seconds(Duration::from_secs(10)),
                ..Default::default()
            },
            tls: tls::TlsConfig {
                concurrency: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(
            bad.problems(&[]),
            [
                (
                    "healthz",
                    "timeout".to_string(),
                    "timeout must not exceed interval".to_string()
                ),
                (
                    "tls",
                    "concurrency".to_string(),
                    "concurrency must be at least 1".to_string()
                ),
            ]
        );
        let equal = SourcesConfig {
            healthz: healthz::HealthzConfig {
                interval: Seconds(Duration::from_secs(5)),
                timeout: Seconds(Duration::from_secs(5)),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(equal.problems(&[]).is_empty());
        assert_eq!(
            SourcesConfig::default().staleness.0,
            Duration::from_secs(600)
        );
    }

    fn probe(health: crate::health::Health) -> healthz::ServiceProbe {
        crate::testing::service_probe("prod", "api", health)
    }

    #[test]
    fn facts_are_kept_by_source_read_by_type_and_written_in_registry_order() {
        let dns = dns::DnsFacts {
            records: vec![dns::DnsRecord {
                stack: "prod".into(),
                name: "api.example.net".into(),
                addresses: vec!["192.0.2.1".into()],
                alias: None,
            }],
        };
        let facts = Facts::default()
            .with("dns", dns.clone())
            .maybe("healthz", Some(vec![probe(crate::health::Health::Green)]))
            .maybe::<tls::TlsFacts>("tls", None);
        assert_eq!(facts.get::<dns::DnsFacts>(), Some(&dns));
        assert!(facts.get::<tls::TlsFacts>().is_none() && facts.of("tls").is_none());
        let json = facts.of("dns").unwrap().to_json().unwrap();
        let back = restore::<dns::DnsFacts>(&json).unwrap();
        assert_eq!(back.downcast_ref::<dns::DnsFacts>(), Some(&dns));
        // healthz is registered before dns: its families come first.
        let samples = crate::metrics::samples_of(facts.clone(), "fleet_");
        let first = |p: &str| samples.iter().position(|l| l.starts_with(p)).unwrap();
        assert!(
            first("fleet_service_health") < first("fleet_dns_record_info"),
            "{samples:?}"
        );
        let mut forgot = facts;
        forgot.forget("dns");
        assert!(forgot.get::<dns::DnsFacts>().is_none());
        assert!(forgot.of("healthz").is_some());
    }

    #[test]
    fn retiring_replaces_only_the_facts_that_lost_something() {
        let c = config(TWO);
        let gone = healthz::ServiceProbe {
            stack: "dev".into(),
            ..probe(crate::health::Health::Red)
        };
        let mut facts = Facts::default()
            .with("healthz", vec![probe(crate::health::Health::Green), gone])
            .with("tls", Vec::<tls::TlsProbe>::new());
        let tls_before = facts.of("tls").unwrap().clone();
        facts.retire(&c.environments);
        assert_eq!(facts.get::<healthz::HealthzFacts>().unwrap().len(), 1);
        assert!(Arc::ptr_eq(facts.of("tls").unwrap(), &tls_before));
    }

    #[test]
    fn the_board_parts_are_as_bad_as_the_worst_and_wide_blocks_come_first() {
        let c = config("environments:\n  - name: prod\n    services:\n      - name: api\n        healthz: https://api.example.net/healthz\n        tls: api.example.net:443\n");
        let facts = Facts::default().with("healthz", vec![probe(crate::health::Health::Degraded)]);
        let parts = Parts::build(&facts, &c.environments[0], 0.0);
        // healthz is degraded; tls has no handshake yet (unknown, better).
        assert_eq!(parts.state(), Some(crate::board::State::Degraded));
        assert_eq!(Parts::default().state(), None);
        let (wide, rest) = parts.blocks();
        assert_eq!(wide.len(), 1);
        assert!(wide[0]
            .clone()
            .into_string()
            .contains("data-service=\"api\""));
        let rest: Vec<String> = rest.into_iter().map(|m| m.into_string()).collect();
        assert!(
            rest.iter().any(|m| m.contains("<b>Certificates</b>")),
            "{rest:?}"
        );
        assert!(families().any(|m| m.name == "fleet_service_health"));
        assert!(families().any(|m| m.name == "fleet_dns_record_info"));
        assert_eq!(at_most_one::<healthz::HealthzSource>(None).len(), 0);
    }
}
