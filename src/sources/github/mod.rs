//! The github source: which CI run holds each test slot and how many wait
//! behind it, the head commit of the main branch, and the API rate limit.
//!
//! The REST API does not say which concurrency group a run holds, so each
//! environment's `ci_slot` pattern is matched against fields of the run
//! (`sources.github.ci_slot_match`). Every request is conditional: an
//! unchanged answer comes back as 304, which GitHub does not count against
//! the rate limit, and the cached body is used. A 403/429 that says the limit
//! is spent stops all requests until the reset time it names.

use serde::Serialize;

/// The head of the main branch.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct HeadCommit {
    pub branch: String,
    pub sha: String,
    /// Committer date of the head commit, Unix seconds: when it became head, near enough.
    pub committed_at: Option<f64>,
}

/// A CI run, as far as the board needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CiRun {
    pub id: u64,
    /// The workflow's name.
    pub workflow: String,
    pub title: String,
    pub branch: String,
    pub head_sha: String,
    pub status: String,
    /// When the run (this attempt) started, Unix seconds.
    pub started_at: Option<f64>,
    pub url: String,
}

/// One test slot: the run holding it and the runs queued behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotOccupancy {
    pub stack: String,
    pub holder: Option<CiRun>,
    pub queued: u32,
}

/// The core API rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets, Unix seconds.
    pub reset: f64,
}

/// What the github source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct GithubFacts {
    pub head: HeadCommit,
    /// One per environment with a `ci_slot`, in inventory order.
    pub slots: Vec<SlotOccupancy>,
    /// `None` where the server does not limit (GitHub Enterprise with limits off).
    pub rate_limit: Option<RateLimit>,
}

impl GithubFacts {
    /// The slot of one environment.
    pub fn slot(&self, stack: &str) -> Option<&SlotOccupancy> {
        self.slots.iter().find(|s| s.stack == stack)
    }
}

#[cfg(feature = "github")]
pub use client::GithubSource;

/// The source itself, in builds with the `github` feature (octocrab).
#[cfg(feature = "github")]
mod client;

/// The registry's builder: the source when `sources.github` is configured,
/// in builds with the `github` feature (without it, `sources::from_config`
/// refuses a configured section before this runs).
pub fn register(
    config: &std::sync::Arc<crate::config::Config>,
) -> Result<Vec<std::sync::Arc<dyn super::Source>>, super::SourceError> {
    #[cfg(feature = "github")]
    {
        Ok(super::at_most_one(GithubSource::from_config(config)?))
    }
    #[cfg(not(feature = "github"))]
    {
        let _ = config;
        Ok(Vec::new())
    }
}
