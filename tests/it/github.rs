//! The github source through octocrab against an in-process server that
//! answers with GitHub's documented shapes: runs, jobs, the branch, the rate
//! limit, ETag/304, Link pagination, 403/429 rate limiting and 500s.

use crate::common;
use crate::harness;

use std::sync::Arc;
use std::time::Duration;

use fleetpulse::config::Config;
use fleetpulse::sources::github::{GithubFacts, GithubSource};
use fleetpulse::sources::Source;

use harness::github::{job_json, run_json, GithubServer, Mode};

const HEAD: &str = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d";

fn runs() -> Vec<serde_json::Value> {
    vec![
        run_json(
            101,
            "in_progress",
            "integration",
            "integration on slot-1",
            "feature/a",
            "aaaaaaa1111111111111111111111111111111aa",
            "2025-01-01T10:00:00Z",
        ),
        run_json(
            102,
            "pending",
            "integration",
            "integration on slot-1",
            "feature/b",
            "bbbbbbb2222222222222222222222222222222bb",
            "2025-01-01T10:01:00Z",
        ),
        run_json(
            103,
            "queued",
            "integration",
            "integration on slot-1",
            "feature/c",
            "ccccccc3333333333333333333333333333333cc",
            "2025-01-01T10:02:00Z",
        ),
        run_json(
            104,
            "pending",
            "integration",
            "integration on slot-1",
            "feature/d",
            "ddddddd4444444444444444444444444444444dd",
            "2025-01-01T10:03:00Z",
        ),
        run_json(
            201,
            "queued",
            "integration",
            "integration on slot-2",
            "feature/e",
            "eeeeeee5555555555555555555555555555555ee",
            "2025-01-01T10:04:00Z",
        ),
        run_json(
            301,
            "in_progress",
            "lint",
            "Fix typo",
            "slot-3-hotfix",
            "fffffff6666666666666666666666666666666ff",
            "2025-01-01T10:05:00Z",
        ),
        run_json(
            900,
            "in_progress",
            "docs",
            "Update README",
            "main",
            HEAD,
            "2025-01-01T10:06:00Z",
        ),
    ]
}

fn yaml(api: &str, extra: &str) -> String {
    format!(
        "sources:
  staleness: 4s
  github:
    interval: 1s
    timeout: 1s
    repo: octo-org/broker
    api_url: {api}
{extra}environments:
  - name: prod
  - name: test-1
    ci_slot: 'slot-1$'
  - name: test-2
    ci_slot: 'slot-2$'
  - name: test-3
    ci_slot: '^slot-3\\b'
"
    )
}

fn source(yaml: &str) -> GithubSource {
    let cfg = Arc::new(Config::parse(yaml, "github.yaml").unwrap());
    GithubSource::from_config(cfg.clone())
        .unwrap()
        .expect("github source enabled")
}

async fn facts(src: &GithubSource) -> GithubFacts {
    match src.collect().await {
        Ok(out) => out
            .downcast_ref::<GithubFacts>()
            .expect("github facts")
            .clone(),
        other => panic!("github collect: {other:?}"),
    }
}

#[tokio::test]
async fn slots_queues_head_and_rate_limit_are_read_across_pages() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    // One run a page, so the lists span pages through Link headers.
    gh.with(|f| f.page_cap = 1);
    let src = source(&yaml(&gh.url(), ""));
    let f = facts(&src).await;

    assert_eq!(f.head.branch, "main");
    assert_eq!(f.head.sha, HEAD);
    assert_eq!(f.head.committed_at, Some(1735722000.0));

    let stacks: Vec<&str> = f.slots.iter().map(|s| s.stack.as_str()).collect();
    assert_eq!(
        stacks,
        ["test-1", "test-2", "test-3"],
        "prod has no ci_slot"
    );
    let s1 = f.slot("test-1").unwrap();
    let holder = s1.holder.as_ref().expect("slot-1 held");
    assert_eq!(
        (holder.id, holder.workflow.as_str(), holder.branch.as_str()),
        (101, "integration", "feature/a")
    );
    assert_eq!(holder.started_at, Some(1735725600.0));
    assert_eq!(
        holder.url,
        "https://github.com/octo-org/broker/actions/runs/101"
    );
    assert_eq!(s1.queued, 3, "two pending (across pages) and one queued");
    let s2 = f.slot("test-2").unwrap();
    assert!(s2.holder.is_none());
    assert_eq!(s2.queued, 1);
    let s3 = f.slot("test-3").unwrap();
    assert_eq!(
        s3.holder.as_ref().map(|r| r.id),
        Some(301),
        "matched by head branch"
    );

    let rl = f.rate_limit.expect("rate limit");
    assert_eq!(rl.limit, 5000);
    assert!(rl.remaining < 5000 && rl.remaining > 4980, "{rl:?}");

    let hits = gh.hits();
    assert!(
        hits.iter().any(|h| h
            .path
            .starts_with("/repositories/1296269/actions/runs?status=pending")
            && h.path.contains("page=2")),
        "the next page was followed: {hits:?}"
    );
}

#[tokio::test]
async fn unchanged_answers_are_revalidated_with_etags_and_spend_no_rate_limit() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    let src = source(&yaml(&gh.url(), ""));
    let first = facts(&src).await;
    let spent_first = 5000 - first.rate_limit.unwrap().remaining;
    assert!(spent_first >= 5, "branch and four run lists: {spent_first}");
    let before = gh.hits().len();

    let second = facts(&src).await;
    let again: Vec<_> = gh.hits()[before..].to_vec();
    let counted: Vec<_> = again.iter().filter(|h| h.path != "/rate_limit").collect();
    assert!(!counted.is_empty());
    assert!(
        counted.iter().all(|h| h.conditional && h.status == 304),
        "every repeat is conditional and unchanged: {counted:?}"
    );
    assert_eq!(
        second.rate_limit.unwrap().remaining,
        first.rate_limit.unwrap().remaining,
        "304s are free"
    );
    assert_eq!(
        second.slots, first.slots,
        "the cached bodies give the same answer"
    );

    // A new queued run changes one list: that one is fetched again, and seen.
    gh.with(|f| {
        f.runs.push(run_json(
            202,
            "queued",
            "integration",
            "integration on slot-2",
            "feature/f",
            HEAD,
            "2025-01-01T11:00:00Z",
        ))
    });
    let third = facts(&src).await;
    assert_eq!(third.slot("test-2").unwrap().queued, 2);
    assert_eq!(
        third.rate_limit.unwrap().remaining,
        first.rate_limit.unwrap().remaining - 1,
        "only the changed list cost a request"
    );
}

#[tokio::test]
async fn spent_rate_limit_stops_requests_until_its_reset() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    let src = source(&yaml(&gh.url(), ""));
    facts(&src).await;
    let reset = fleetpulse::snapshot::now_unix() as u64 + 3;
    gh.with(|f| f.mode = Mode::RateLimited { reset });
    let err = src.collect().await.unwrap_err().to_string();
    assert!(err.contains("rate limit"), "{err}");
    assert!(err.contains("403"), "{err}");
    let after_refusal = gh.hits().len();

    // Before the reset: nothing is sent at all.
    gh.with(|f| f.mode = Mode::Normal);
    let err = src.collect().await.unwrap_err().to_string();
    assert!(err.contains("no requests until it resets"), "{err}");
    assert_eq!(
        gh.hits().len(),
        after_refusal,
        "no request before the reset time"
    );

    // After it: asking again works.
    common::eventually(
        Duration::from_secs(10),
        "requests after the reset",
        || async { src.collect().await.ok() },
    )
    .await;
    assert!(
        fleetpulse::snapshot::now_unix() >= reset as f64,
        "asked only after the reset"
    );

    // A secondary limit (429 with retry-after) holds requests back the same way.
    gh.with(|f| f.mode = Mode::SecondaryLimited { retry_after: 60 });
    let err = src.collect().await.unwrap_err().to_string();
    assert!(err.contains("429"), "{err}");
    gh.with(|f| f.mode = Mode::Normal);
    let n = gh.hits().len();
    assert!(src.collect().await.is_err());
    assert_eq!(gh.hits().len(), n, "retry-after is honoured");
}

#[tokio::test]
async fn server_errors_fail_the_run_naming_the_status() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    gh.with(|f| f.mode = Mode::Failing);
    let src = source(&yaml(&gh.url(), ""));
    let err = src.collect().await.unwrap_err().to_string();
    assert!(err.contains("GitHub answered 500"), "{err}");
    assert!(
        err.contains("/repos/octo-org/broker/branches/main"),
        "{err}"
    );
}

#[tokio::test]
async fn token_from_its_file_is_sent_on_every_page_and_never_shown() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    gh.with(|f| f.page_cap = 1);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("github.token");
    std::fs::write(&token_file, "ghp_s3cr3tTOKENvalue\n").unwrap();
    let extra = format!("    token:\n      file: {}\n", token_file.display());
    let src = source(&yaml(&gh.url(), &extra));
    facts(&src).await;
    let hits = gh.hits();
    let api_hits: Vec<_> = hits.iter().filter(|h| h.path != "/rate_limit").collect();
    assert!(api_hits.len() > 5);
    for h in &api_hits {
        assert_eq!(
            h.authorization.as_deref(),
            Some("Bearer ghp_s3cr3tTOKENvalue"),
            "{}",
            h.path
        );
    }
    gh.with(|f| f.mode = Mode::Failing);
    let err = src.collect().await.unwrap_err().to_string();
    assert!(!err.contains("s3cr3t"), "{err}");

    std::fs::remove_file(&token_file).unwrap();
    let err = src.collect().await.unwrap_err().to_string();
    assert!(
        err.contains("sources.github.token") && err.contains("github.token"),
        "{err}"
    );
}

#[tokio::test]
async fn job_names_can_name_the_slot() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    gh.with(|f| {
        f.jobs.insert(
            900,
            vec![
                job_json(1, 900, "build", "completed"),
                job_json(2, 900, "deploy to slot-2", "in_progress"),
            ],
        );
    });
    let src = source(&yaml(&gh.url(), "    ci_slot_match: [job_name]\n"));
    let f = facts(&src).await;
    assert_eq!(
        f.slot("test-2").unwrap().holder.as_ref().map(|r| r.id),
        Some(900)
    );
    assert!(
        f.slot("test-1").unwrap().holder.is_none(),
        "titles are not matched now"
    );
    assert!(gh.hits().iter().any(|h| h
        .path
        .starts_with("/repos/octo-org/broker/actions/runs/900/jobs")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_answering_500_keeps_last_values_for_staleness_then_drops_them_and_recovers() {
    let gh = GithubServer::start(HEAD, runs())
        .await
        .expect("peer server");
    let other = harness::HealthzPeer::start().await;
    let yaml = yaml(&gh.url(), "").replace(
        "environments:\n",
        &format!(
            "{}environments:\n{}",
            other.sources_yaml(),
            other.environment_yaml()
        ),
    );
    let cfg = Arc::new(Config::parse(&yaml, "github.yaml").unwrap());
    let running = crate::common::start_exporter(cfg).await;
    let addr = running.addr;
    let scrape = || async move { common::get(&format!("http://{addr}/metrics")).await.1 };
    let up = r#"fleet_source_up{source="github"}"#;
    let occupied = r#"fleet_ci_slot_occupied{stack="test-1"}"#;

    let stale = r#"fleet_drift{stack="other",kind="stale_binary"}"#;
    let body = common::eventually(Duration::from_secs(20), "github and healthz up", || async {
        let b = scrape().await;
        (common::sample(&b, up) == Some(1.0) && common::sample(&b, stale).is_some()).then_some(b)
    })
    .await;
    let has = |series: &str, v: f64| {
        assert_eq!(
            common::sample(&body, series),
            Some(v),
            "{series} in\n{body}"
        )
    };
    has(occupied, 1.0);
    has(r#"fleet_ci_slot_occupied{stack="test-2"}"#, 0.0);
    has(r#"fleet_ci_slot_queue_depth{stack="test-1"}"#, 3.0);
    has(r#"fleet_ci_slot_queue_depth{stack="test-2"}"#, 1.0);
    has(
        r#"fleet_ci_slot_run_started_timestamp_seconds{stack="test-1"}"#,
        1735725600.0,
    );
    has(
        r#"fleet_ci_slot_run_info{stack="test-1",run_id="101",workflow="integration",branch="feature/a"}"#,
        1.0,
    );
    assert!(
        !body.contains(r#"fleet_ci_slot_run_info{stack="test-2""#),
        "a free slot names no run"
    );
    has(
        &format!(r#"fleet_github_head_commit_info{{branch="main",commit="{HEAD}"}}"#),
        1.0,
    );
    assert!(
        common::sample(&body, "fleet_github_rate_limit_remaining")
            .unwrap_or_else(|| panic!("{body}"))
            > 4900.0
    );
    assert!(common::sample(&body, "fleet_github_rate_limit_reset_timestamp_seconds").is_some());
    // The other environment's healthz reports a commit that is not main's head, and head is old.
    has(stale, 1.0);
    common::promtool_check_metrics(&body);

    gh.with(|f| f.mode = Mode::Failing);
    let failed_at = fleetpulse::snapshot::now_unix();
    let b = common::eventually(Duration::from_secs(20), "github down", || async {
        let b = scrape().await;
        (common::sample(&b, up) == Some(0.0)).then_some(b)
    })
    .await;
    assert_eq!(common::sample(&b, occupied), Some(1.0), "kept while fresh");
    let last_success = common::sample(
        &b,
        r#"fleet_source_last_success_timestamp_seconds{source="github"}"#,
    )
    .unwrap();
    let gone = common::eventually(
        Duration::from_secs(20),
        "stale github values dropped",
        || async {
            let b = scrape().await;
            common::sample(&b, occupied).is_none().then_some(b)
        },
    )
    .await;
    assert!(fleetpulse::snapshot::now_unix() - last_success >= 4.0);
    assert!(!gone.contains("fleet_github_head_commit_info{"));
    assert!(
        !gone.contains(r#"kind="stale_binary""#),
        "unknown head: no stale_binary series"
    );
    assert_eq!(
        common::sample(&gone, r#"fleet_source_up{source="healthz"}"#),
        Some(1.0)
    );
    assert!(
        common::sample(
            &gone,
            r#"fleet_source_last_success_timestamp_seconds{source="healthz"}"#
        )
        .unwrap()
            > failed_at
    );

    gh.with(|f| f.mode = Mode::Normal);
    common::eventually(Duration::from_secs(20), "github recovered", || async {
        let b = scrape().await;
        (common::sample(&b, up) == Some(1.0) && common::sample(&b, occupied) == Some(1.0))
            .then_some(())
    })
    .await;
    running.shutdown().await.unwrap();
}
