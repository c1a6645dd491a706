//! The oidc source (not yet implemented: enabled by no config).

use std::sync::Arc;

use crate::config::{Config, Schedule};
use crate::sources::{CollectFuture, Source, SourceError};

/// What the oidc source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OidcFacts {}

/// The oidc source.
pub struct OidcSource {
    schedule: Schedule,
}

impl OidcSource {
    /// Builds the source if the config enables it.
    pub fn from_config(_config: &Arc<Config>) -> Result<Option<Self>, SourceError> {
        Ok(None)
    }
}

impl Source for OidcSource {
    fn name(&self) -> &'static str {
        "oidc"
    }
    fn schedule(&self) -> Schedule {
        self.schedule
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async { Ok(crate::snapshot::SourceOutput::Oidc(OidcFacts::default())) })
    }
}
