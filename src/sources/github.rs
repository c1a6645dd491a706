//! The github source (not yet implemented: enabled by no config).

use std::sync::Arc;

use crate::config::{Config, Schedule};
use crate::sources::{CollectFuture, Source, SourceError};

/// What the github source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GithubFacts {}

/// The github source.
pub struct GithubSource {
    schedule: Schedule,
}

impl GithubSource {
    /// Builds the source if the config enables it.
    pub fn from_config(_config: &Arc<Config>) -> Result<Option<Self>, SourceError> {
        Ok(None)
    }
}

impl Source for GithubSource {
    fn name(&self) -> &'static str {
        "github"
    }
    fn schedule(&self) -> Schedule {
        self.schedule
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async { Ok(crate::snapshot::SourceOutput::Github(GithubFacts::default())) })
    }
}
