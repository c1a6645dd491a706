//! The GitHub source itself, in builds with the `github` feature (octocrab):
//! conditional requests, pagination, the rate limit, and slot occupancy.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use octocrab::Octocrab;
use serde::Deserialize;

use super::*;
use crate::clock::now_unix;
use crate::sources::github::GithubConfig;
use crate::sources::github::RunField;
use crate::sources::Watched;
use crate::sources::{CollectFuture, Source, SourceError};
use crate::values::Schedule;

/// Runs per page (the API's maximum).
const PER_PAGE: u32 = 100;
/// Pages followed per list; 1000 active runs is far past any real queue.
const MAX_PAGES: usize = 10;
/// Run statuses that wait for a slot: `pending` is a run held back by its
/// concurrency group, `waiting` one held by a protection rule.
const WAITING_STATUSES: [&str; 3] = ["queued", "pending", "waiting"];

/// The github source.
pub struct GithubSource {
    config: Arc<dyn Watched>,
    gh: GithubConfig,
    client: Octocrab,
    /// Conditional-request cache, by path and query.
    cache: Mutex<HashMap<String, Cached>>,
    /// No request is sent before this Unix time (a spent rate limit).
    blocked_until: Mutex<Option<f64>>,
}

#[derive(Debug, Clone)]
struct Cached {
    etag: HeaderValue,
    body: Bytes,
    next: Option<String>,
}

/// One answer, from the network or the cache.
struct Page {
    body: Bytes,
    next: Option<String>,
}

impl GithubSource {
    /// Builds the source if `sources.github` is set.
    pub fn from_config(config: Arc<dyn Watched>) -> Result<Option<Self>, SourceError> {
        let Some(gh) = &config.sources().github else {
            return Ok(None);
        };
        let base = gh
            .api_url
            .as_ref()
            .map(|u| u.0.as_str().trim_end_matches('/').to_string())
            .unwrap_or_else(|| "https://api.github.com".into());
        let client = Octocrab::builder()
            .base_uri(base.as_str())
            .map_err(|e| SourceError::new(format!("sources.github.api_url {base}: {e}")))?
            .set_connect_timeout(Some(gh.timeout.0))
            .set_read_timeout(Some(gh.timeout.0))
            .build()
            .map_err(|e| SourceError::new(format!("cannot build the GitHub client: {e}")))?;
        Ok(Some(GithubSource {
            config: config.clone(),
            gh: gh.clone(),
            client,
            cache: Mutex::new(HashMap::new()),
            blocked_until: Mutex::new(None),
        }))
    }

    async fn collect_facts(&self) -> Result<GithubFacts, SourceError> {
        let token = match &self.gh.token {
            Some(r) => Some(
                r.read()
                    .map_err(|e| SourceError::new(format!("sources.github.token: {e}")))?,
            ),
            None => None,
        };
        let auth = match &token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| {
                SourceError::new("sources.github.token: not a valid header value (stray control characters?)")
            })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let mut touched = HashSet::new();
        let repo = &self.gh.repo;

        let branch_path = format!("/repos/{repo}/branches/{}", self.gh.main_branch);
        let page = self.get(&branch_path, auth.as_ref(), &mut touched).await?;
        let branch: Branch = parse(&branch_path, &page.body)?;
        let head = HeadCommit {
            branch: self.gh.main_branch.clone(),
            sha: branch.commit.sha,
            committed_at: branch
                .commit
                .commit
                .and_then(|c| c.committer)
                .and_then(|c| c.date)
                .as_deref()
                .and_then(rfc3339),
        };

        let mut runs: BTreeMap<u64, RunJson> = BTreeMap::new();
        for status in std::iter::once("in_progress").chain(WAITING_STATUSES) {
            let path = format!("/repos/{repo}/actions/runs?status={status}&per_page={PER_PAGE}");
            for body in self.get_all(&path, auth.as_ref(), &mut touched).await? {
                let list: RunList = parse(&path, &body)?;
                for r in list.workflow_runs {
                    // A run that moved between lists during this pass is kept once.
                    runs.entry(r.id).or_insert(r);
                }
            }
        }

        let mut job_names: HashMap<u64, Vec<String>> = HashMap::new();
        if self.gh.ci_slot_match.contains(&RunField::JobName) {
            for id in runs.keys() {
                let path = format!("/repos/{repo}/actions/runs/{id}/jobs?per_page={PER_PAGE}");
                for body in self.get_all(&path, auth.as_ref(), &mut touched).await? {
                    let list: JobList = parse(&path, &body)?;
                    job_names
                        .entry(*id)
                        .or_default()
                        .extend(list.jobs.into_iter().map(|j| j.name));
                }
            }
        }

        let rate_limit = self.rate_limit(auth.as_ref()).await?;
        // Forget cached answers no longer asked for (runs that finished).
        self.cache().retain(|k, _| touched.contains(k));

        let runs: Vec<RunJson> = runs.into_values().collect();
        let slots = occupancy(
            self.config.as_ref(),
            &self.gh.ci_slot_match,
            &runs,
            &job_names,
        );
        Ok(GithubFacts {
            head,
            slots,
            rate_limit,
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // Plain values, left consistent at every step: safe to use after a panic elsewhere.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn blocked(&self) -> std::sync::MutexGuard<'_, Option<f64>> {
        self.blocked_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every page of a list, following `Link: rel="next"`.
    async fn get_all(
        &self,
        first: &str,
        auth: Option<&HeaderValue>,
        touched: &mut HashSet<String>,
    ) -> Result<Vec<Bytes>, SourceError> {
        let mut bodies = Vec::new();
        let mut path = Some(first.to_string());
        while let Some(p) = path.take() {
            if bodies.len() == MAX_PAGES {
                tracing::warn!(
                    path = first,
                    "more than {MAX_PAGES} pages; reading no further"
                );
                break;
            }
            let page = self.get(&p, auth, touched).await?;
            bodies.push(page.body);
            path = page.next;
        }
        Ok(bodies)
    }

    /// One conditional GET of `path` (path and query, relative to the API root).
    async fn get(
        &self,
        path: &str,
        auth: Option<&HeaderValue>,
        touched: &mut HashSet<String>,
    ) -> Result<Page, SourceError> {
        let now = now_unix();
        if let Some(until) = *self.blocked() {
            if now < until {
                return Err(SourceError::new(format!(
                    "GitHub rate limit spent; no requests until it resets in {:.0} s",
                    until - now
                )));
            }
        }
        touched.insert(path.to_string());
        let cached = self.cache().get(path).cloned();
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        if let Some(a) = auth {
            headers.insert(http::header::AUTHORIZATION, a.clone());
        }
        if let Some(c) = &cached {
            headers.insert(http::header::IF_NONE_MATCH, c.etag.clone());
        }
        let resp = self
            .client
            ._get_with_headers(path, Some(headers))
            .await
            .map_err(|e| SourceError::new(format!("GET {path}: {}", innermost(&e))))?;
        let status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        if status == 304 {
            if let Some(c) = cached {
                return Ok(Page {
                    body: c.body,
                    next: c.next,
                });
            }
            return Err(SourceError::new(format!(
                "GET {path}: 304 Not Modified for a request that was not conditional"
            )));
        }
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| {
                SourceError::new(format!("GET {path}: reading the body: {}", innermost(&e)))
            })?
            .to_bytes();
        if (200..300).contains(&status) {
            let next = next_link(&resp_headers);
            if let Some(etag) = resp_headers.get(http::header::ETAG) {
                self.cache().insert(
                    path.to_string(),
                    Cached {
                        etag: etag.clone(),
                        body: body.clone(),
                        next: next.clone(),
                    },
                );
            }
            return Ok(Page { body, next });
        }
        Err(self.refusal(path, status, &resp_headers, &body, now))
    }

    /// The error for a non-2xx answer; a spent rate limit also blocks requests until its reset.
    fn refusal(
        &self,
        path: &str,
        status: u16,
        h: &HeaderMap,
        body: &[u8],
        now: f64,
    ) -> SourceError {
        let message = serde_json::from_slice::<ErrorJson>(body)
            .ok()
            .and_then(|e| e.message)
            .unwrap_or_default();
        let header = |name: &str| {
            h.get(HeaderName::from_bytes(name.as_bytes()).ok()?)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if status == 403 || status == 429 {
            let until = match (header("retry-after"), header("x-ratelimit-remaining")) {
                (Some(after), _) => Some(now + after),
                (None, Some(r)) if r <= 0.0 => {
                    Some(header("x-ratelimit-reset").unwrap_or(now + 60.0))
                }
                _ if status == 429 => Some(now + 60.0),
                _ => None,
            };
            if let Some(until) = until {
                *self.blocked() = Some(until);
                return SourceError::new(format!(
                "GitHub rate limit spent ({status}: {message}); no requests until it resets in {:.0} s",
                (until - now).max(0.0)
            ));
            }
            return SourceError::new(format!(
            "GET {path}: 403 Forbidden ({message}); the token needs read access to the repository's contents and Actions"
        ));
        }
        let hint = match status {
            401 => "; the token was refused: check sources.github.token",
            404 => {
                "; check sources.github.repo and main_branch (a private repository needs a token)"
            }
            _ => "",
        };
        SourceError::new(format!(
            "GET {path}: GitHub answered {status} ({message}){hint}"
        ))
    }

    /// The core rate limit; `/rate_limit` itself does not count against it.
    async fn rate_limit(
        &self,
        auth: Option<&HeaderValue>,
    ) -> Result<Option<RateLimit>, SourceError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        if let Some(a) = auth {
            headers.insert(http::header::AUTHORIZATION, a.clone());
        }
        let resp = self
            .client
            ._get_with_headers("/rate_limit", Some(headers))
            .await
            .map_err(|e| SourceError::new(format!("GET /rate_limit: {}", innermost(&e))))?;
        let status = resp.status().as_u16();
        let h = resp.headers().clone();
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(|e| SourceError::new(format!("GET /rate_limit: {}", innermost(&e))))?
            .to_bytes();
        match status {
            // GitHub Enterprise answers 404 when rate limiting is off.
            404 => Ok(None),
            200..=299 => {
                let r: RateLimitJson = parse("/rate_limit", &body)?;
                Ok(Some(RateLimit {
                    limit: r.resources.core.limit,
                    remaining: r.resources.core.remaining,
                    reset: r.resources.core.reset as f64,
                }))
            }
            _ => Err(self.refusal("/rate_limit", status, &h, &body, now_unix())),
        }
    }
}

impl Source for GithubSource {
    fn name(&self) -> &'static str {
        "github"
    }
    fn schedule(&self) -> Schedule {
        self.gh.schedule()
    }
    fn collect(&self) -> CollectFuture<'_> {
        Box::pin(async move { self.collect_facts().await.map(crate::sources::output) })
    }
}

/// Which run holds each slot and how many wait: the earliest-started
/// in-progress run matching the slot's pattern holds it; matching runs that
/// have not started are queued.
fn occupancy(
    config: &dyn Watched,
    fields: &[RunField],
    runs: &[RunJson],
    job_names: &HashMap<u64, Vec<String>>,
) -> Vec<SlotOccupancy> {
    config
        .environments()
        .iter()
        .filter_map(|e| e.ci_slot.as_ref().map(|p| (e, &p.0)))
        .map(|(env, pattern)| {
            let matches = |r: &&RunJson| {
                fields.iter().any(|f| match f {
                    RunField::DisplayTitle => r
                        .display_title
                        .as_deref()
                        .is_some_and(|t| pattern.is_match(t)),
                    RunField::Name => r.name.as_deref().is_some_and(|t| pattern.is_match(t)),
                    RunField::HeadBranch => r
                        .head_branch
                        .as_deref()
                        .is_some_and(|t| pattern.is_match(t)),
                    RunField::JobName => job_names
                        .get(&r.id)
                        .is_some_and(|names| names.iter().any(|n| pattern.is_match(n))),
                })
            };
            let mine: Vec<&RunJson> = runs.iter().filter(matches).collect();
            let holder = mine
                .iter()
                .filter(|r| r.status == "in_progress")
                .map(|r| to_run(r))
                .min_by(|a, b| {
                    let key = |r: &CiRun| (r.started_at.unwrap_or(f64::MAX), r.id);
                    key(a)
                        .partial_cmp(&key(b))
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
            let queued = mine
                .iter()
                .filter(|r| WAITING_STATUSES.contains(&r.status.as_str()))
                .count();
            SlotOccupancy {
                stack: env.name.0.clone(),
                holder,
                queued: u32::try_from(queued).unwrap_or(u32::MAX),
            }
        })
        .collect()
}

fn to_run(r: &RunJson) -> CiRun {
    CiRun {
        id: r.id,
        workflow: r.name.clone().unwrap_or_default(),
        title: r.display_title.clone().unwrap_or_default(),
        branch: r.head_branch.clone().unwrap_or_default(),
        head_sha: r.head_sha.clone().unwrap_or_default(),
        status: r.status.clone(),
        started_at: r
            .run_started_at
            .as_deref()
            .or(r.created_at.as_deref())
            .and_then(rfc3339),
        url: r.html_url.clone().unwrap_or_default(),
    }
}

/// The path and query of the `rel="next"` target. Only the path is kept, so
/// a page link can never send the token to another host.
fn next_link(h: &HeaderMap) -> Option<String> {
    let link = h.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        if !is_next {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let uri: http::Uri = target.parse().ok()?;
        uri.path_and_query().map(|pq| pq.as_str().to_string())
    })
}

fn rfc3339(s: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.timestamp() as f64)
}

fn parse<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, SourceError> {
    serde_json::from_slice(body)
        .map_err(|e| SourceError::new(format!("GET {path}: unexpected answer: {e}")))
}

/// The innermost cause, which says the most (refused, timed out, ...).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

// The parts of GitHub's documented answers that are read.

#[derive(Debug, Deserialize)]
struct Branch {
    commit: BranchCommit,
}

#[derive(Debug, Deserialize)]
struct BranchCommit {
    sha: String,
    #[serde(default)]
    commit: Option<GitCommit>,
}

#[derive(Debug, Deserialize)]
struct GitCommit {
    #[serde(default)]
    committer: Option<GitActor>,
}

#[derive(Debug, Deserialize)]
struct GitActor {
    #[serde(default)]
    date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RunList {
    #[serde(default)]
    workflow_runs: Vec<RunJson>,
}

#[derive(Debug, Clone, Deserialize)]
struct RunJson {
    id: u64,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_title: Option<String>,
    #[serde(default)]
    head_branch: Option<String>,
    #[serde(default)]
    head_sha: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    run_started_at: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    html_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JobList {
    #[serde(default)]
    jobs: Vec<JobJson>,
}

#[derive(Debug, Deserialize)]
struct JobJson {
    name: String,
}

#[derive(Debug, Deserialize)]
struct RateLimitJson {
    resources: RateResources,
}

#[derive(Debug, Deserialize)]
struct RateResources {
    core: RateCore,
}

#[derive(Debug, Deserialize)]
struct RateCore {
    limit: u64,
    remaining: u64,
    reset: i64,
}

#[derive(Debug, Deserialize)]
struct ErrorJson {
    #[serde(default)]
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn run(id: u64, status: &str, title: &str, branch: &str, started: &str) -> RunJson {
        RunJson {
            id,
            name: Some("integration".into()),
            display_title: Some(title.into()),
            head_branch: Some(branch.into()),
            head_sha: Some(format!("{id:040x}")),
            status: status.into(),
            run_started_at: Some(started.into()),
            created_at: None,
            html_url: None,
        }
    }

    fn config() -> Config {
        Config::parse(
        "environments:\n  - name: test-1\n    ci_slot: 'slot[- ]1\\b'\n  - name: test-2\n    ci_slot: 'slot[- ]2\\b'\n  - name: prod\n",
        "t.yaml",
    )
    .unwrap()
    }

    #[test]
    fn earliest_in_progress_run_holds_the_slot_and_waiting_runs_queue() {
        let runs = vec![
            run(
                3,
                "in_progress",
                "tests on slot-1",
                "feature/a",
                "2025-01-01T10:05:00Z",
            ),
            run(
                2,
                "in_progress",
                "tests on slot-1",
                "feature/b",
                "2025-01-01T10:00:00Z",
            ),
            run(
                4,
                "pending",
                "tests on slot-1",
                "feature/c",
                "2025-01-01T10:06:00Z",
            ),
            run(
                5,
                "queued",
                "tests on slot 1",
                "feature/d",
                "2025-01-01T10:07:00Z",
            ),
            run(
                6,
                "waiting",
                "tests on slot-12",
                "feature/e",
                "2025-01-01T10:07:00Z",
            ),
            run(7, "queued", "unrelated", "slot-2", "2025-01-01T10:07:00Z"),
        ];
        let fields = [RunField::DisplayTitle, RunField::HeadBranch];
        let slots = occupancy(&config(), &fields, &runs, &HashMap::new());
        assert_eq!(slots.len(), 2, "prod has no ci_slot");
        let s1 = &slots[0];
        assert_eq!(s1.stack, "test-1");
        let holder = s1.holder.as_ref().unwrap();
        assert_eq!(holder.id, 2);
        assert_eq!(holder.branch, "feature/b");
        assert_eq!(holder.started_at, Some(1735725600.0));
        assert_eq!(
            s1.queued, 2,
            "pending and queued count; slot-12 is not slot 1"
        );
        let s2 = &slots[1];
        assert!(s2.holder.is_none());
        assert_eq!(s2.queued, 1, "matched by head branch");
    }

    #[test]
    fn only_configured_fields_are_matched() {
        let runs = vec![run(
            1,
            "in_progress",
            "nothing here",
            "slot-1",
            "2025-01-01T10:00:00Z",
        )];
        let by_title = occupancy(&config(), &[RunField::DisplayTitle], &runs, &HashMap::new());
        assert!(by_title[0].holder.is_none());
        let mut jobs = HashMap::new();
        jobs.insert(1, vec!["deploy to slot-2".to_string()]);
        let by_job = occupancy(&config(), &[RunField::JobName], &runs, &jobs);
        assert!(by_job[0].holder.is_none());
        assert_eq!(by_job[1].holder.as_ref().map(|r| r.id), Some(1));
    }

    #[test]
    fn next_link_keeps_only_the_path_and_query() {
        let mut h = HeaderMap::new();
        h.insert(
        http::header::LINK,
        HeaderValue::from_static(
            "<https://api.github.com/repositories/1/actions/runs?status=queued&page=1>; rel=\"prev\", \
             <https://evil.example/repositories/1/actions/runs?status=queued&page=3>; rel=\"next\", \
             <https://api.github.com/repositories/1/actions/runs?status=queued&page=9>; rel=\"last\"",
        ),
    );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("/repositories/1/actions/runs?status=queued&page=3")
        );
        let mut last_page = HeaderMap::new();
        last_page.insert(
        http::header::LINK,
        HeaderValue::from_static("<https://api.github.com/x?page=1>; rel=\"first\", <https://api.github.com/x?page=1>; rel=\"prev\""),
    );
        assert_eq!(next_link(&last_page), None);
        assert_eq!(next_link(&HeaderMap::new()), None);
    }
}

#[cfg(test)]
mod api_tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A whole response with `status`, extra header lines and a JSON body.
    fn answer(status: u16, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn source(port: u16, more: &str) -> (GithubSource, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "sekrit\n").unwrap();
        let yaml = format!(
            "sources:\n  github:\n    repo: o/r\n    api_url: http://127.0.0.1:{port}/\n    token: {{ file: {} }}\n{more}\
             environments:\n  - name: test-1\n    ci_slot: 'slot-1'\n  - name: test-2\n    ci_slot: 'slot-2'\n  - name: prod\n",
            token.display()
        );
        let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
        let s = GithubSource::from_config(Arc::new(config))
            .unwrap()
            .unwrap();
        (s, dir)
    }

    const RUNS: &str = "/repos/o/r/actions/runs?status=";

    /// A repository with two runs in progress (the second on a second
    /// page), one queued, and a branch whose answers carry an ETag.
    fn api(head: &str) -> String {
        let path = head.split(' ').nth(1).unwrap_or("");
        if header(head, "authorization") != Some("Bearer sekrit") {
            return answer(401, "", r#"{"message":"Bad credentials"}"#);
        }
        let run = |id: u64, status: &str, title: &str, started: &str| {
            format!(
                r#"{{"id":{id},"name":"ci","display_title":"{title}","head_branch":"b{id}","head_sha":"{id:040x}","status":"{status}","run_started_at":"{started}","html_url":"https://github.com/o/r/actions/runs/{id}"}}"#
            )
        };
        match path {
            "/repos/o/r/branches/main" => {
                if header(head, "if-none-match") == Some("\"b1\"") {
                    return answer(304, "ETag: \"b1\"\r\n", "");
                }
                answer(
                    200,
                    "ETag: \"b1\"\r\n",
                    r#"{"commit":{"sha":"4f2c9e1","commit":{"committer":{"date":"2025-01-01T10:00:00Z"}}}}"#,
                )
            }
            p if p == format!("{RUNS}in_progress&per_page=100") => answer(
                200,
                &format!("Link: <http://elsewhere.example{RUNS}in_progress&per_page=100&page=2>; rel=\"next\"\r\n"),
                &format!(r#"{{"workflow_runs":[{}]}}"#, run(2, "in_progress", "tests on slot-1", "2025-01-01T10:05:00Z")),
            ),
            p if p == format!("{RUNS}in_progress&per_page=100&page=2") => answer(
                200,
                "",
                &format!(
                    r#"{{"workflow_runs":[{},{}]}}"#,
                    run(3, "in_progress", "tests", "2025-01-01T10:01:00Z"),
                    run(1, "in_progress", "tests on slot-1", "2025-01-01T10:02:00Z")
                ),
            ),
            // Run 1 started meanwhile: it is counted once, as first seen.
            p if p == format!("{RUNS}queued&per_page=100") => answer(
                200,
                "",
                &format!(
                    r#"{{"workflow_runs":[{},{}]}}"#,
                    run(4, "queued", "tests on slot-1", ""),
                    run(1, "queued", "tests on slot-1", "")
                ),
            ),
            p if p.starts_with(RUNS) => answer(200, "", "{}"),
            "/repos/o/r/actions/runs/3/jobs?per_page=100" => {
                answer(200, "", r#"{"jobs":[{"name":"unit"},{"name":"deploy slot-2"}]}"#)
            }
            p if p.ends_with("/jobs?per_page=100") => answer(200, "", r#"{"jobs":[]}"#),
            "/rate_limit" => answer(
                200,
                "",
                r#"{"resources":{"core":{"limit":5000,"remaining":4321,"reset":1750003600}}}"#,
            ),
            _ => answer(404, "", r#"{"message":"Not Found"}"#),
        }
    }

    #[tokio::test]
    async fn runs_pages_jobs_and_the_rate_limit_are_read_with_the_token() {
        let (port, server, seen) = crate::testing::recording_server(api).await;
        let (s, _dir) = source(
            port,
            "    ci_slot_match: [display_title, job_name]\n    interval: 2m\n",
        );
        assert_eq!(
            (s.name(), s.schedule().interval.0),
            ("github", Duration::from_secs(120))
        );
        let out = s.collect().await.unwrap();
        let facts = out.downcast_ref::<GithubFacts>().unwrap().clone();
        assert_eq!(
            (
                facts.head.branch.as_str(),
                facts.head.sha.as_str(),
                facts.head.committed_at
            ),
            ("main", "4f2c9e1", Some(1_735_725_600.0))
        );
        let slots: Vec<_> = facts
            .slots
            .iter()
            .map(|s| (s.stack.as_str(), s.holder.as_ref().map(|r| r.id), s.queued))
            .collect();
        // Run 1 started before run 2; run 3 holds slot 2 by a job's name.
        assert_eq!(slots, [("test-1", Some(1), 1), ("test-2", Some(3), 0)]);
        let holder = facts.slots[0].holder.clone().unwrap();
        assert_eq!(
            (
                holder.workflow.as_str(),
                holder.title.as_str(),
                holder.branch.as_str(),
                holder.status.as_str()
            ),
            ("ci", "tests on slot-1", "b1", "in_progress")
        );
        assert_eq!(holder.head_sha, format!("{:040x}", 1));
        assert_eq!(holder.url, "https://github.com/o/r/actions/runs/1");
        assert_eq!(holder.started_at, Some(1_735_725_720.0));
        assert_eq!(
            facts.rate_limit.map(|r| (r.limit, r.remaining, r.reset)),
            Some((5000, 4321, 1_750_003_600.0))
        );
        let first: Vec<String> = std::mem::take(&mut *seen.lock().unwrap());
        let paths: Vec<&str> = first.iter().map(|h| h.split(' ').nth(1).unwrap()).collect();
        assert!(paths.contains(&"/repos/o/r/actions/runs?status=in_progress&per_page=100&page=2"));
        for status in ["pending", "waiting"] {
            assert!(paths.contains(&format!("{RUNS}{status}&per_page=100").as_str()));
        }
        for id in 1..=4 {
            let jobs = format!("/repos/o/r/actions/runs/{id}/jobs?per_page=100");
            assert!(paths.contains(&jobs.as_str()), "{jobs}");
        }
        assert!(first
            .iter()
            .all(|h| header(h, "accept") == Some("application/vnd.github+json")));
        assert!(first.iter().all(|h| header(h, "if-none-match").is_none()));

        // The second pass asks conditionally and reads the unchanged branch from the cache.
        let again = s.collect().await.unwrap();
        server.abort();
        assert_eq!(
            again.downcast_ref::<GithubFacts>().unwrap().head,
            facts.head
        );
        let second = seen.lock().unwrap().clone();
        assert!(second
            .iter()
            .any(|h| h.starts_with("GET /repos/o/r/branches/main ")
                && header(h, "if-none-match") == Some("\"b1\"")));
        assert_eq!(s.cache().len(), 1, "only the branch answered with an ETag");
    }

    #[tokio::test]
    async fn without_job_names_no_jobs_are_asked_for_and_finished_runs_leave_the_cache() {
        let seen = Arc::new(AtomicUsize::new(0));
        let jobs = seen.clone();
        let (port, server) = crate::testing::http_server_seeing(move |head| {
            let path = head.split(' ').nth(1).unwrap_or("");
            if path.contains("/jobs") {
                jobs.fetch_add(1, Ordering::SeqCst);
            }
            Some(api(head))
        })
        .await;
        let (s, _dir) = source(port, "");
        let out = s.collect().await.unwrap();
        let facts = out.downcast_ref::<GithubFacts>().unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        assert_eq!(facts.slot("test-2").map(|s| s.holder.is_none()), Some(true));
        // An answer no longer asked for is forgotten.
        s.cache().insert(
            "/repos/o/r/actions/runs/9/jobs".into(),
            Cached {
                etag: HeaderValue::from_static("x"),
                body: Bytes::new(),
                next: None,
            },
        );
        s.collect().await.unwrap();
        server.abort();
        assert_eq!(
            s.cache().keys().collect::<Vec<_>>(),
            ["/repos/o/r/branches/main"]
        );
    }

    #[tokio::test]
    async fn pages_are_followed_up_to_the_limit() {
        let (port, server) = crate::testing::http_server_seeing(|head| {
            let path = head.split(' ').nth(1).unwrap_or("");
            let n: usize = path
                .rsplit('=')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            Some(answer(
                200,
                &format!("Link: </list?page={}>; rel=next\r\n", n + 1),
                &format!("{{\"page\":{n}}}"),
            ))
        })
        .await;
        let (s, _dir) = source(port, "");
        let bodies = s
            .get_all("/list?page=0", None, &mut HashSet::new())
            .await
            .unwrap();
        server.abort();
        assert_eq!(bodies.len(), MAX_PAGES);
        assert_eq!(&bodies[9][..], br#"{"page":9}"#);
    }

    #[tokio::test]
    async fn answers_that_cannot_be_used_are_errors_that_say_why() {
        let (port, server) = crate::testing::http_server_seeing(|head| {
            let path = head.split(' ').nth(1).unwrap_or("");
            Some(match path {
                "/unasked" => answer(304, "", ""),
                "/html" => answer(200, "", "<html>"),
                "/rate_limit" => answer(404, "", "{}"),
                _ => answer(500, "", r#"{"message":"boom"}"#),
            })
        })
        .await;
        let (s, _dir) = source(port, "");
        let err = |r: Result<Page, SourceError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            err(s.get("/unasked", None, &mut HashSet::new()).await),
            "GET /unasked: 304 Not Modified for a request that was not conditional"
        );
        let page = s
            .get("/html", None, &mut HashSet::new())
            .await
            .ok()
            .unwrap();
        assert!(parse::<RunList>("/html", &page.body)
            .unwrap_err()
            .to_string()
            .starts_with("GET /html: unexpected answer: "));
        assert_eq!(
            err(s.get("/x", None, &mut HashSet::new()).await),
            "GET /x: GitHub answered 500 (boom)"
        );
        // GitHub Enterprise without rate limiting.
        assert!(s.rate_limit(None).await.unwrap().is_none());
        server.abort();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (s, _dir) = source(closed.local_addr().unwrap().port(), "");
        drop(closed);
        // The innermost cause: the socket's own words.
        let refused = err(s.get("/x", None, &mut HashSet::new()).await);
        assert!(
            refused.starts_with("GET /x: Connection refused"),
            "{refused}"
        );
        let e = s.rate_limit(None).await.unwrap_err().to_string();
        assert!(e.starts_with("GET /rate_limit: Connection refused"), "{e}");
    }

    #[tokio::test]
    async fn a_token_that_cannot_be_read_or_sent_stops_the_run() {
        let (s, dir) = source(1, "");
        std::fs::write(dir.path().join("token"), "se\u{1}krit").unwrap();
        let e = crate::testing::failure(&s).await;
        assert!(
            e.starts_with("sources.github.token: not a valid header value"),
            "{e}"
        );
        assert!(!e.contains("krit"));
        std::fs::remove_file(dir.path().join("token")).unwrap();
        let e = crate::testing::failure(&s).await;
        assert!(
            e.starts_with("sources.github.token: cannot read secret file"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_spent_rate_limit_blocks_requests_until_it_resets() {
        let (s, _dir) = source(1, "");
        let now = now_unix();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-remaining", HeaderValue::from_static(" 0 "));
        h.insert(
            "x-ratelimit-reset",
            HeaderValue::from_str(&format!("{}", now + 100.0)).unwrap(),
        );
        let spent = br#"{"message":"API rate limit exceeded"}"#;
        assert_eq!(
            s.refusal("/x", 403, &h, spent, now).to_string(),
            "GitHub rate limit spent (403: API rate limit exceeded); no requests until it resets in 100 s"
        );
        assert_eq!(*s.blocked(), Some(now + 100.0));
        let e = s
            .get("/x", None, &mut HashSet::new())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.starts_with("GitHub rate limit spent; no requests until it resets in "),
            "{e}"
        );
        assert!(!e.contains("Connection refused"));

        let blocked = |status: u16, headers: &[(&'static str, &str)]| {
            *s.blocked() = None;
            let mut h = HeaderMap::new();
            for (n, v) in headers {
                h.insert(*n, HeaderValue::from_str(v).unwrap());
            }
            let e = s.refusal("/x", status, &h, b"{}", now).to_string();
            (*s.blocked(), e)
        };
        assert_eq!(blocked(403, &[("retry-after", "30")]).0, Some(now + 30.0));
        assert_eq!(blocked(429, &[]).0, Some(now + 60.0));
        assert_eq!(
            blocked(403, &[("x-ratelimit-remaining", "0")]).0,
            Some(now + 60.0)
        );
        let (until, e) = blocked(403, &[("x-ratelimit-remaining", "12")]);
        assert_eq!(until, None);
        assert_eq!(
            e,
            "GET /x: 403 Forbidden (); the token needs read access to the repository's contents and Actions"
        );
        assert_eq!(
            blocked(403, &[("retry-after", "-5")]).1,
            "GitHub rate limit spent (403: ); no requests until it resets in 0 s"
        );
        assert!(blocked(401, &[])
            .1
            .ends_with("(); the token was refused: check sources.github.token"));
        assert!(blocked(404, &[]).1.ends_with(
            "; check sources.github.repo and main_branch (a private repository needs a token)"
        ));
        assert_eq!(
            blocked(502, &[("retry-after", "30")]),
            (None, "GET /x: GitHub answered 502 ()".into())
        );

        // Once the reset has passed, requests go out again.
        *s.blocked() = Some(now - 1.0);
        let e = s
            .get("/x", None, &mut HashSet::new())
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.starts_with("GET /x: "), "{e}");
    }
}
