//! The aws source (not yet implemented: enabled by no config).

use std::sync::Arc;

use crate::config::{Config, Schedule};
use crate::sources::{CollectFuture, Source, SourceError};

/// What the aws source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AwsFacts {}

/// The aws source.
pub struct AwsSource {
    schedule: Schedule,
}

impl AwsSource {
    /// Builds the source if the config enables it.
    pub fn from_config(_config: &Arc<Config>) -> Result<Option<Self>, SourceError> {
        Ok(None)
    }
}

impl Source for AwsSource {
    fn name(&self) -> &'static str {
        "aws"
    }
    fn schedule(&self) -> Schedule {
        self.schedule
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async { Ok(crate::snapshot::SourceOutput::Aws(AwsFacts::default())) })
    }
}
