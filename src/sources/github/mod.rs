//! The github source: which CI run holds each test slot and how many wait
//! behind it, the head commit of the main branch, and the API rate limit.
//!
//! The REST API does not say which concurrency group a run holds, so each
//! environment's `ci_slot` pattern is matched against fields of the run
//! (`sources.github.ci_slot_match`). Every request is conditional: an
//! unchanged answer comes back as 304, which GitHub does not count against
//! the rate limit, and the cached body is used. A 403/429 that says the limit
//! is spent stops all requests until the reset time it names.

use super::{Source, SourceError, Watched};
use crate::catalogue::metric;
use crate::exposition::{b, family, DescriptorEncoder};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{HttpUrl, Schedule, Seconds, SecretRef};

pub mod view;

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

/// The head of the main branch.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct HeadCommit {
    pub branch: String,
    pub sha: String,
    /// Committer date of the head commit, Unix seconds: when it became head, near enough.
    pub committed_at: Option<f64>,
}

/// A CI run, as far as the board needs it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct SlotOccupancy {
    pub stack: String,
    pub holder: Option<CiRun>,
    pub queued: u32,
}

/// The core API rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
    /// When the window resets, Unix seconds.
    pub reset: f64,
}

/// What the github source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
    config: &std::sync::Arc<dyn super::Watched>,
) -> Result<Vec<std::sync::Arc<dyn super::Source>>, super::SourceError> {
    #[cfg(feature = "github")]
    {
        Ok(super::at_most_one(GithubSource::from_config(
            config.clone(),
        )?))
    }
    #[cfg(not(feature = "github"))]
    {
        let _ = config;
        Ok(Vec::new())
    }
}

impl crate::sources::SourceFacts for GithubFacts {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        super::retain_listed(&mut self.slots, |s| listed.stack(&s.stack))
    }
    fn encode(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        encode(self, enc)
    }
}

/// This source's families: slot occupancy, queue depth, the holding run,
/// main's head and the rate limit.
pub fn encode(gh: &GithubFacts, enc: &mut DescriptorEncoder) -> std::fmt::Result {
    family(
        enc,
        &CI_SLOT_OCCUPIED,
        gh.slots
            .iter()
            .map(|sl| ([sl.stack.as_str()], b(sl.holder.is_some()))),
    )?;
    family(
        enc,
        &CI_SLOT_QUEUE_DEPTH,
        gh.slots
            .iter()
            .map(|sl| ([sl.stack.as_str()], f64::from(sl.queued))),
    )?;
    family(
        enc,
        &CI_SLOT_RUN_STARTED,
        gh.slots.iter().filter_map(|sl| {
            let started = sl.holder.as_ref()?.started_at?;
            Some(([sl.stack.as_str()], started))
        }),
    )?;
    let run_ids: Vec<String> = gh
        .slots
        .iter()
        .map(|sl| {
            sl.holder
                .as_ref()
                .map(|r| r.id.to_string())
                .unwrap_or_default()
        })
        .collect();
    family(
        enc,
        &CI_SLOT_RUN_INFO,
        gh.slots.iter().zip(&run_ids).filter_map(|(sl, id)| {
            let r = sl.holder.as_ref()?;
            Some((
                [
                    sl.stack.as_str(),
                    id.as_str(),
                    r.workflow.as_str(),
                    r.branch.as_str(),
                ],
                1.0,
            ))
        }),
    )?;
    family(
        enc,
        &GITHUB_HEAD_INFO,
        [([gh.head.branch.as_str(), gh.head.sha.as_str()], 1.0)],
    )?;
    if let Some(rl) = &gh.rate_limit {
        family(
            enc,
            &GITHUB_RATE_LIMIT_REMAINING,
            [([], rl.remaining as f64)],
        )?;
        family(enc, &GITHUB_RATE_LIMIT_RESET, [([], rl.reset)])?;
    }
    Ok(())
}

/// The github source, as the registry knows it.
pub struct Github;

impl super::SourceKind for Github {
    const NAME: &'static str = "github";
    const FEATURE: Option<&'static str> = Some("github");
    const BUILT_WITH: bool = cfg!(feature = "github");
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[
        CI_SLOT_OCCUPIED,
        CI_SLOT_QUEUE_DEPTH,
        CI_SLOT_RUN_STARTED,
        CI_SLOT_RUN_INFO,
        GITHUB_HEAD_INFO,
        GITHUB_RATE_LIMIT_REMAINING,
        GITHUB_RATE_LIMIT_RESET,
    ];
    type Settings = Option<GithubConfig>;
    type Facts = GithubFacts;
    type Part = view::Part;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn configured(config: &dyn Watched) -> bool {
        config.sources().github.is_some()
    }
    fn schedule(settings: &Option<GithubConfig>) -> Option<Schedule> {
        settings.as_ref().map(GithubConfig::schedule)
    }
    fn check(
        settings: &Option<GithubConfig>,
        _: &[crate::inventory::Environment],
    ) -> Vec<(String, String)> {
        let Some(gh) = settings else {
            return Vec::new();
        };
        let ok = gh.repo.split_once('/').is_some_and(|(o, n)| {
            crate::values::Name::is_valid(o) && crate::values::Name::is_valid(n)
        });
        if ok {
            Vec::new()
        } else {
            vec![("repo".to_string(), format!("not owner/name: {:?}", gh.repo))]
        }
    }
}

// Its families.
metric!(
    CI_SLOT_OCCUPIED,
    "fleet_ci_slot_occupied",
    Gauge,
    ["stack"],
    "1 if a CI run currently holds the test slot."
);
metric!(
    CI_SLOT_QUEUE_DEPTH,
    "fleet_ci_slot_queue_depth",
    Gauge,
    ["stack"],
    "CI runs queued behind the one holding the test slot."
);
metric!(
    CI_SLOT_RUN_STARTED,
    "fleet_ci_slot_run_started_timestamp_seconds",
    Gauge,
    ["stack"],
    "Start time of the CI run holding the test slot."
);
metric!(
    CI_SLOT_RUN_INFO,
    "fleet_ci_slot_run_info",
    Gauge,
    ["stack", "run_id", "workflow", "branch"],
    "The CI run holding the test slot; always 1."
);
metric!(
    GITHUB_HEAD_INFO,
    "fleet_github_head_commit_info",
    Gauge,
    ["branch", "commit"],
    "Head commit of the main branch; always 1."
);
metric!(
    GITHUB_RATE_LIMIT_REMAINING,
    "fleet_github_rate_limit_remaining",
    Gauge,
    [],
    "GitHub API requests left in the current rate-limit window."
);
metric!(
    GITHUB_RATE_LIMIT_RESET,
    "fleet_github_rate_limit_reset_timestamp_seconds",
    Gauge,
    [],
    "When the GitHub API rate-limit window resets."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Facts, SourceKind};

    fn facts() -> GithubFacts {
        let run = CiRun {
            id: 42,
            workflow: "integration".into(),
            title: "Fix the retry".into(),
            branch: "fix-retry".into(),
            head_sha: "4f2c9e1".into(),
            status: "in_progress".into(),
            started_at: Some(1_750_000_000.0),
            url: "https://github.com/o/r/actions/runs/42".into(),
        };
        GithubFacts {
            head: HeadCommit {
                branch: "main".into(),
                sha: "4f2c9e1".into(),
                committed_at: Some(1_749_990_000.0),
            },
            slots: vec![
                SlotOccupancy {
                    stack: "test-1".into(),
                    holder: Some(run.clone()),
                    queued: 2,
                },
                SlotOccupancy {
                    stack: "test-2".into(),
                    holder: None,
                    queued: 0,
                },
                SlotOccupancy {
                    stack: "test-3".into(),
                    holder: Some(CiRun {
                        id: 43,
                        started_at: None,
                        ..run
                    }),
                    queued: 1,
                },
            ],
            rate_limit: Some(RateLimit {
                limit: 5000,
                remaining: 4321,
                reset: 1_750_003_600.0,
            }),
        }
    }

    #[test]
    fn slots_runs_head_and_rate_limit_are_written() {
        let samples = |f: GithubFacts| {
            let mut s =
                crate::metrics::samples_of(Facts::default().with("github", f.clone()), "fleet_ci_");
            s.extend(crate::metrics::samples_of(
                Facts::default().with("github", f),
                "fleet_github_",
            ));
            s
        };
        assert_eq!(
            samples(facts()),
            [
                r#"fleet_ci_slot_occupied{stack="test-1"} 1.0"#,
                r#"fleet_ci_slot_occupied{stack="test-2"} 0.0"#,
                r#"fleet_ci_slot_occupied{stack="test-3"} 1.0"#,
                r#"fleet_ci_slot_queue_depth{stack="test-1"} 2.0"#,
                r#"fleet_ci_slot_queue_depth{stack="test-2"} 0.0"#,
                r#"fleet_ci_slot_queue_depth{stack="test-3"} 1.0"#,
                r#"fleet_ci_slot_run_started_timestamp_seconds{stack="test-1"} 1750000000.0"#,
                r#"fleet_ci_slot_run_info{stack="test-1",run_id="42",workflow="integration",branch="fix-retry"} 1.0"#,
                r#"fleet_ci_slot_run_info{stack="test-3",run_id="43",workflow="integration",branch="fix-retry"} 1.0"#,
                r#"fleet_github_head_commit_info{branch="main",commit="4f2c9e1"} 1.0"#,
                r#"fleet_github_rate_limit_remaining 4321.0"#,
                r#"fleet_github_rate_limit_reset_timestamp_seconds 1750003600.0"#,
            ]
        );
        let unlimited = GithubFacts {
            rate_limit: None,
            ..facts()
        };
        let written =
            crate::metrics::samples_of(Facts::default().with("github", unlimited), "fleet_github_");
        assert_eq!(
            written,
            [r#"fleet_github_head_commit_info{branch="main",commit="4f2c9e1"} 1.0"#]
        );
        assert_eq!(facts().slot("test-3").map(|s| s.queued), Some(1));
        assert!(facts().slot("prod").is_none());
    }

    fn config(text: &str) -> crate::config::Config {
        crate::config::Config::parse(text, "fleet.yaml").unwrap()
    }

    #[test]
    fn the_repo_is_owner_slash_name_and_the_settings_have_defaults() {
        let gh = config("sources:\n  github:\n    repo: o/r\nenvironments:\n  - name: test-1\n")
            .sources
            .github
            .unwrap();
        assert_eq!(
            (
                gh.interval.0,
                gh.timeout.0,
                gh.stale_grace.0,
                gh.main_branch.as_str()
            ),
            (
                Duration::from_secs(60),
                Duration::from_secs(20),
                Duration::from_secs(3600),
                "main"
            )
        );
        assert_eq!(
            gh.ci_slot_match,
            [RunField::DisplayTitle, RunField::Name, RunField::HeadBranch]
        );
        let s = Github::schedule(&Some(gh.clone())).unwrap();
        assert_eq!((s.interval, s.timeout), (gh.interval, gh.timeout));
        assert_eq!(Github::schedule(&None), None);
        assert!(Github::check(&Some(gh.clone()), &[]).is_empty());
        assert!(Github::check(&None, &[]).is_empty());
        for bad in ["o", "o/", "/r", "o/r/x", "o o/r"] {
            let g = GithubConfig {
                repo: bad.into(),
                ..gh.clone()
            };
            assert_eq!(
                Github::check(&Some(g), &[]),
                [("repo".to_string(), format!("not owner/name: {bad:?}"))],
                "{bad}"
            );
        }
        let with = config("sources:\n  github:\n    repo: o/r\nenvironments:\n  - name: prod\n");
        let without = config("environments:\n  - name: prod\n");
        assert!(Github::configured(&with) && !Github::configured(&without));
    }

    #[test]
    fn a_removed_environment_takes_its_slot_along() {
        let mut f = Facts::default().with("github", facts());
        f.retire(&config("environments:\n  - name: test-2\n").environments);
        let kept: Vec<_> = f
            .get::<GithubFacts>()
            .unwrap()
            .slots
            .iter()
            .map(|s| s.stack.clone())
            .collect();
        assert_eq!(kept, ["test-2"]);
    }
}
