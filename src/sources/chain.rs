//! The chain source (not yet implemented: enabled by no config).

use std::sync::Arc;

use crate::config::{Config, Schedule};
use crate::sources::{CollectFuture, Source, SourceError};

/// What the chain source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ChainFacts {}

/// The chain source.
pub struct ChainSource {
    schedule: Schedule,
}

impl ChainSource {
    /// Builds the source if the config enables it.
    pub fn from_config(_config: &Arc<Config>) -> Result<Option<Self>, SourceError> {
        Ok(None)
    }
}

impl Source for ChainSource {
    fn name(&self) -> &'static str {
        "chain"
    }
    fn schedule(&self) -> Schedule {
        self.schedule
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async { Ok(crate::snapshot::SourceOutput::Chain(ChainFacts::default())) })
    }
}
