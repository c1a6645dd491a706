//! What a source is to the rest of fleetpulse: one `SourceKind` per source
//! module, named by one line of `sources::registry!`. From that line come
//! its `sources.NAME` settings section, its place in the scheduler, its
//! metric families in the catalogue and its part of each environment on the
//! board (JSON, page, redaction).

use std::fmt::Debug;
use std::sync::Arc;

use maud::Markup;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Facts, Source, SourceError, SourceFacts, Watched};
use crate::board::{Redactor, State};
use crate::catalogue::MetricDef;
use crate::inventory::Environment;
use crate::values::Schedule;

/// One kind of source, implemented by a unit struct in its module.
pub trait SourceKind {
    /// The `source` label it reports under, and its `sources.NAME` section.
    const NAME: &'static str;
    /// The Cargo feature its collecting half sits behind (heavy client
    /// crates), if any.
    const FEATURE: Option<&'static str> = None;
    /// Whether this build has that feature: `cfg!(feature = "…")`.
    const BUILT_WITH: bool = true;
    /// Its metric families, in the order it writes them.
    const FAMILIES: &'static [MetricDef];
    /// Other `sources.*` sections it is built from (a reload restarts it
    /// when one of them, or its own, changes).
    const READS: &'static [&'static str] = &[];

    /// Its `sources.NAME` settings; `NoSettings` for a source configured
    /// elsewhere. A missing section reads as `Default`.
    type Settings: DeserializeOwned + Default + Clone + Debug + Send + Sync;
    /// What one good run found (kept in the store between runs).
    type Facts: SourceFacts;
    /// Its part of each environment on the board.
    type Part: BoardPart;

    /// Builds the sources this kind runs (none when the config gives it
    /// nothing to watch).
    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError>;

    /// Whether the config asks for it: a build without its feature refuses
    /// such a config rather than ignore it.
    fn configured(_config: &dyn Watched) -> bool {
        false
    }

    /// Its schedule, when its section has one (its timeout is checked
    /// against its interval).
    fn schedule(_settings: &Self::Settings) -> Option<Schedule> {
        None
    }

    /// What is wrong with its settings that their types cannot say: each
    /// problem as the field path under `sources.NAME` it is about
    /// (`concurrency`, `[2].pattern`) and a message.
    // cargo-mutants: its `vec![]` mutant is this body, and its others are
    // caught only through the kinds that override it.
    #[cfg_attr(test, mutants::skip)]
    fn check(_settings: &Self::Settings, _environments: &[Environment]) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// A source's part of one environment on the board: built from its facts,
/// serialized flat into the environment's JSON object, redacted in public
/// mode and rendered as a block of the environment's page section.
pub trait BoardPart:
    Serialize + DeserializeOwned + Clone + PartialEq + Debug + Default + Send + Sync
{
    /// The part for `env` from the sources' last good facts at `now`.
    fn build(facts: &Facts, env: &Environment, now: f64) -> Self;
    /// What it adds to the environment's state (the worst of all parts').
    fn state(&self) -> Option<State> {
        None
    }
    /// Hides what public mode must not show.
    fn redact(&mut self, r: &Redactor);
    /// Its block on the page; `None` shows nothing.
    fn page(&self) -> Option<Markup>;
    /// Whether the block spans the environment's width (above the others).
    const WIDE: bool = false;
}

/// The settings of a source that has no `sources.NAME` section of its own;
/// writing one is an error that says where its settings are.
#[derive(Debug, Clone, Default)]
pub struct NoSettings;

impl<'de> Deserialize<'de> for NoSettings {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "this source has no settings of its own (it is configured by another source's section)",
        ))
    }
}

/// The board part of a source the board does not show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoPart {}

impl BoardPart for NoPart {
    // cargo-mutants: its one mutant, `Default::default()`, is this value.
    #[cfg_attr(test, mutants::skip)]
    fn build(_: &Facts, _: &Environment, _: f64) -> Self {
        NoPart {}
    }
    fn redact(&mut self, _: &Redactor) {}
    fn page(&self) -> Option<Markup> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{dns::Dns, healthz::Healthz};

    #[test]
    fn what_a_kind_does_not_say_is_nothing() {
        let config = crate::config::Config::parse(
            "sources:\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: prod\n",
            "fleet.yaml",
        )
        .unwrap();
        // healthz says nothing of being configured: it runs when a URL is listed.
        assert!(!Healthz::configured(&config));
        assert_eq!(Dns::schedule(&NoSettings), None);
        assert!(Dns::check(&NoSettings, &config.environments).is_empty());
        let part = <Dns as SourceKind>::Part::default();
        assert_eq!(part.state(), None);
        let mut none = NoPart::build(&Facts::default(), &config.environments[0], 0.0);
        none.redact(&Redactor::new().unwrap());
        assert!(none.state().is_none() && none.page().is_none());
    }

    #[test]
    fn a_section_for_a_source_without_settings_says_where_they_are() {
        let e = crate::config::Config::parse(
            "sources:\n  dns: {}\nenvironments:\n  - name: prod\n",
            "fleet.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "fleet.yaml:2:8: sources.dns: this source has no settings of its own (it is configured by another source's section)"
        );
    }
}
