//! The github source's part of the board: who holds an environment's CI
//! slot and how many runs wait for it.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::GithubFacts;
use crate::board::html::block;
use crate::board::{words, Redactor};
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};

/// Who holds an environment's CI slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    /// The run holding the slot; `null` when it is free.
    pub holder: Option<SlotRun>,
    /// Runs waiting for it.
    pub queued: u32,
}

/// A CI run holding a slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRun {
    pub workflow: String,
    pub title: String,
    pub branch: String,
    pub head_sha: String,
    pub status: String,
    pub started_at: Option<f64>,
    /// `null` in public mode.
    pub url: Option<String>,
}

/// `stack`'s slot; `None` when no slot is watched for it.
pub fn slot(github: Option<&GithubFacts>, stack: &str) -> Option<Slot> {
    github.and_then(|g| g.slot(stack)).map(|o| Slot {
        holder: o.holder.as_ref().map(|r| SlotRun {
            workflow: r.workflow.clone(),
            title: r.title.clone(),
            branch: r.branch.clone(),
            head_sha: r.head_sha.clone(),
            status: r.status.clone(),
            started_at: r.started_at,
            url: Some(r.url.clone()),
        }),
        queued: o.queued,
    })
}

impl Slot {
    /// Public mode: no run URL; internal values leave the run's title.
    pub fn redact(&mut self, r: &Redactor) {
        if let Some(run) = self.holder.as_mut() {
            run.url = None;
            run.title = r.scrub(&run.title);
        }
    }
}

impl SlotRun {
    /// The run in words: `integration “Fix the retry” on fix-retry (in_progress)`.
    pub fn words(&self) -> String {
        format!(
            "{} “{}” on {} ({})",
            self.workflow, self.title, self.branch, self.status
        )
    }
}

impl Slot {
    /// The terminal's row: holder, since when (as of `now`), queue.
    pub fn cells(&self, now: f64) -> [String; 3] {
        match &self.holder {
            Some(r) => [
                r.words(),
                r.started_at
                    .map(|t| words::ago_words(now, t))
                    .unwrap_or_else(|| "-".into()),
                format!("{} queued", self.queued),
            ],
            None => ["free".into(), "-".into(), format!("{} queued", self.queued)],
        }
    }
}

/// The CI slot block of an environment's card.
pub fn page(slot: Option<&Slot>) -> Markup {
    let items: Vec<Markup> = slot
        .map(|slot| {
            html! {
                li {
                    @match &slot.holder {
                        Some(r) => {
                            "held by " (r.words())
                            @if let Some(t) = r.started_at { " since " (words::utc(t)) }
                        }
                        None => "free",
                    }
                    "; " (slot.queued) " queued"
                }
            }
        })
        .into_iter()
        .collect();
    block("CI slot", &items)
}

/// This source's part of an environment: its CI test slot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// The CI test slot; `null` when no slot is watched for this stack.
    pub slot: Option<Slot>,
}

impl BoardPart for Part {
    fn build(facts: &Facts, env: &Environment, _now: f64) -> Self {
        Part {
            slot: slot(facts.get(), env.name.as_str()),
        }
    }
    fn redact(&mut self, r: &Redactor) {
        if let Some(s) = &mut self.slot {
            s.redact(r);
        }
    }
    fn page(&self) -> Option<Markup> {
        Some(page(self.slot.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::github::{CiRun, HeadCommit, SlotOccupancy};

    const NOW: f64 = 1_750_000_000.0;

    fn env(name: &str) -> Environment {
        crate::testing::environment(name, "")
    }

    fn facts() -> Facts {
        let run = CiRun {
            id: 7,
            workflow: "integration".into(),
            title: "Fix the retry for 10.0.0.7".into(),
            branch: "fix-retry".into(),
            head_sha: "4f2c9e1".into(),
            status: "in_progress".into(),
            started_at: Some(NOW - 720.0),
            url: "https://github.com/o/r/actions/runs/7".into(),
        };
        Facts::default().with(
            "github",
            crate::sources::github::GithubFacts {
                head: HeadCommit {
                    branch: "main".into(),
                    sha: "4f2c9e1".into(),
                    committed_at: None,
                },
                slots: vec![
                    SlotOccupancy {
                        stack: "test-1".into(),
                        holder: Some(run),
                        queued: 2,
                    },
                    SlotOccupancy {
                        stack: "test-2".into(),
                        holder: None,
                        queued: 0,
                    },
                ],
                rate_limit: None,
            },
        )
    }

    #[test]
    fn a_held_slot_names_its_run_since_when_and_the_queue() {
        let mut part = Part::build(&facts(), &env("test-1"), NOW);
        let slot = part.slot.clone().unwrap();
        let run = slot.holder.clone().unwrap();
        assert_eq!((run.head_sha.as_str(), slot.queued), ("4f2c9e1", 2));
        assert_eq!(
            run.url.as_deref(),
            Some("https://github.com/o/r/actions/runs/7")
        );
        assert_eq!(
            slot.cells(NOW),
            [
                "integration “Fix the retry for 10.0.0.7” on fix-retry (in_progress)".to_string(),
                "12 minutes ago".into(),
                "2 queued".into()
            ]
        );
        let no_start = Slot {
            holder: Some(SlotRun {
                started_at: None,
                ..run
            }),
            queued: 2,
        };
        assert_eq!(no_start.cells(NOW)[1], "-");
        assert_eq!(
            part.page().unwrap().into_string(),
            "<div><b>CI slot</b><ul><li>held by integration “Fix the retry for 10.0.0.7” on fix-retry (in_progress) since 2025-06-15 14:54:40 UTC; 2 queued</li></ul></div>"
        );
        part.redact(&Redactor::new().unwrap());
        let run = part.slot.unwrap().holder.unwrap();
        assert_eq!(run.url, None);
        assert_eq!(run.title, "Fix the retry for [hidden]");
    }

    #[test]
    fn a_free_slot_and_an_unwatched_one() {
        let mut free = Part::build(&facts(), &env("test-2"), NOW);
        assert_eq!(
            free.slot.as_ref().unwrap().cells(NOW),
            ["free".to_string(), "-".into(), "0 queued".into()]
        );
        assert_eq!(
            free.page().unwrap().into_string(),
            "<div><b>CI slot</b><ul><li>free; 0 queued</li></ul></div>"
        );
        free.redact(&Redactor::new().unwrap());
        assert_eq!(free.slot.as_ref().unwrap().holder, None);
        let unwatched = Part::build(&facts(), &env("prod"), NOW);
        assert_eq!(unwatched.slot, None);
        assert_eq!(unwatched.page().unwrap().into_string(), "");
        assert_eq!(slot(None, "test-1"), None);
    }
}
