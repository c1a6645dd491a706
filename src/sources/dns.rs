//! The dns source (not yet implemented: enabled by no config).

use std::sync::Arc;

use crate::config::{Config, Schedule};
use crate::sources::{CollectFuture, Source, SourceError};

/// What the dns source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DnsFacts {}

/// The dns source.
pub struct DnsSource {
    schedule: Schedule,
}

impl DnsSource {
    /// Builds the source if the config enables it.
    pub fn from_config(_config: &Arc<Config>) -> Result<Option<Self>, SourceError> {
        Ok(None)
    }
}

impl Source for DnsSource {
    fn name(&self) -> &'static str {
        "dns"
    }
    fn schedule(&self) -> Schedule {
        self.schedule
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async { Ok(crate::snapshot::SourceOutput::Dns(DnsFacts::default())) })
    }
}
