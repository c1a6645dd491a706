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
