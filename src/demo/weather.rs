//! The demo's weather: what changes while someone watches. Within two
//! minutes of start test-1's CI run finishes, the queued run takes the slot
//! and deploys its commit through test-1 one service at a time (each red for
//! a probe or two while it restarts); the cycle repeats every two minutes.
//! test-2's worker-1 flaps, test-2's box keeps rebooting, and a broken CI
//! reporter keeps sending a truncated JUnit report.

use std::sync::Arc;
use std::time::Duration;

use crate::push::{Push, PushClient, TestRunFormat};
use crate::simfleet::{Behaviour, BehaviourHandle};

use super::peers::{run_commit, slot_run, Peers, TEST1_FIRST};

/// When test-1's first run finishes, and how often a run finishes after that.
pub const FIRST_HANDOVER: Duration = Duration::from_secs(45);
pub const HANDOVER_EVERY: Duration = Duration::from_secs(120);
/// How long a service is down while a deploy restarts it: longer than the
/// demo's probe interval, so every restart is seen.
const RESTART: Duration = Duration::from_secs(7);

/// The name a broken CI reporter pushes for.
pub const BROKEN_REPORTER: &str = "e2e-suite";

/// Stops a background task when dropped.
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Flips `flapper` between healthy and slow every 20 s.
pub fn flap(flapper: Vec<BehaviourHandle>, commit: String) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut slow = false;
        loop {
            tokio::time::sleep(Duration::from_secs(20)).await;
            slow = !slow;
            for h in &flapper {
                h.set(if slow {
                    Behaviour::Slow(Duration::from_millis(2500))
                } else {
                    Behaviour::Healthy {
                        commit: commit.clone(),
                    }
                });
            }
        }
    }))
}

/// test-2's box reboots every 15 s (an old client, `old`: no commit, no
/// boot time), and the broken reporter's push (through `ci`) is refused
/// every 30 s.
pub fn pushes(old: PushClient, ci: PushClient) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = 0u64;
        loop {
            tokio::time::sleep(Duration::from_secs(15)).await;
            tick += 1;
            // Failures are what the board shows; the demo goes on.
            let _ = old
                .push(&Push::Heartbeat {
                    box_name: "test-2-box".into(),
                    version: Some("1.6.3".into()),
                    boot_time: None,
                })
                .await;
            if tick % 2 == 0 {
                let _ = ci
                    .push(&Push::TestRun {
                        service: BROKEN_REPORTER.into(),
                        stack: Some("test-3".into()),
                        body: b"<?xml version=\"1.0\"?><testsuites><testsuite name=\"e2e\" tests=\"3\"><testcase name=\"lo"
                            .to_vec(),
                        format: TestRunFormat::Junit,
                    })
                    .await;
            }
        }
    }))
}

/// test-1's slot changes hands, and each new holder's commit is deployed
/// through `services` (test-1's), one at a time.
pub fn ci(peers: Arc<Peers>, services: Vec<BehaviourHandle>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut next = TEST1_FIRST;
        tokio::time::sleep(FIRST_HANDOVER).await;
        loop {
            let started = tokio::time::Instant::now();
            let sha = run_commit(next);
            let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            peers.github.with(|f| {
                for run in &mut f.runs {
                    let id = run["id"].as_u64();
                    if id == Some(next - 1) {
                        run["status"] = "completed".into();
                        run["conclusion"] = "success".into();
                        run["updated_at"] = now.clone().into();
                    } else if id == Some(next) {
                        run["status"] = "in_progress".into();
                        run["run_started_at"] = now.clone().into();
                        run["updated_at"] = now.clone().into();
                    }
                }
                // The simulated GitHub's rate limit resets with each
                // handover, as GitHub's does each hour, staying under the
                // alert's threshold without running out.
                f.rate_remaining = super::peers::RATE_REMAINING;
                f.rate_reset = crate::clock::now_unix() as u64 + 3600;
                f.runs.push(slot_run(
                    next + 1,
                    "queued",
                    "test-slot-1",
                    &run_commit(next + 1),
                    0,
                ));
            });
            let short = sha[..7].to_string();
            for handle in &services {
                let before = handle.get();
                handle.set(Behaviour::Down);
                tokio::time::sleep(RESTART).await;
                // A degraded service comes back degraded, on the new commit.
                handle.set(match before {
                    Behaviour::Degraded { .. } => Behaviour::Degraded {
                        commit: short.clone(),
                    },
                    Behaviour::Healthy { .. } => Behaviour::Healthy {
                        commit: short.clone(),
                    },
                    other => other,
                });
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            next += 1;
            tokio::time::sleep_until(started + HANDOVER_EVERY).await;
        }
    }))
}
