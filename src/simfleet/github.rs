//! An in-process server speaking the GitHub REST shapes the github source
//! reads, as documented at docs.github.com/rest: the workflow runs list
//! (filtered by status, paginated with a `Link` header), a run's jobs, a
//! branch with its head commit, and `/rate_limit`. Every answer carries an
//! ETag and the `x-ratelimit-*` headers; a matching `If-None-Match` gets 304
//! and costs nothing. It can be switched to answer 500, or 403/429 as GitHub
//! does when the rate limit is spent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// How the server answers everything but `/rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Normal,
    /// 500 Internal Server Error.
    Failing,
    /// 403 with `x-ratelimit-remaining: 0` and this reset time (Unix seconds).
    RateLimited {
        reset: u64,
    },
    /// 429 with `retry-after` seconds (a secondary rate limit).
    SecondaryLimited {
        retry_after: u64,
    },
}

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    pub status: u16,
    pub conditional: bool,
    pub authorization: Option<String>,
}

/// What the server serves; tests change it between runs.
pub struct Fleet {
    pub head_sha: String,
    pub head_date: String,
    pub runs: Vec<Value>,
    pub jobs: HashMap<u64, Vec<Value>>,
    pub mode: Mode,
    /// Items per page at most (GitHub's cap is 100; smaller forces pagination).
    pub page_cap: usize,
    pub rate_limit: u64,
    pub rate_remaining: u64,
    pub rate_reset: u64,
    pub hits: Vec<Hit>,
}

/// The running server. Dropping it stops it.
pub struct GithubServer {
    pub addr: SocketAddr,
    fleet: Arc<Mutex<Fleet>>,
    _serving: super::Serving,
}

type Shared = Arc<Mutex<Fleet>>;

impl GithubServer {
    pub async fn start(head_sha: &str, runs: Vec<Value>) -> std::io::Result<GithubServer> {
        let now = crate::clock::now_unix() as u64;
        let fleet = Arc::new(Mutex::new(Fleet {
            head_sha: head_sha.to_string(),
            head_date: "2025-01-01T09:00:00Z".into(),
            runs,
            jobs: HashMap::new(),
            mode: Mode::Normal,
            page_cap: 100,
            rate_limit: 5000,
            rate_remaining: 5000,
            rate_reset: now + 3600,
            hits: Vec::new(),
        }));
        let app = Router::new()
            .route("/rate_limit", get(rate_limit))
            .route("/repos/{owner}/{repo}/branches/{branch}", get(branch))
            .route("/repos/{owner}/{repo}/actions/runs", get(list_repo_runs))
            // GitHub's next-page links name the repository by id.
            .route("/repositories/{id}/actions/runs", get(runs_by_id))
            .route(
                "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
                get(jobs),
            )
            .with_state(fleet.clone());
        let serving = super::serve(app).await?;
        Ok(GithubServer {
            addr: serving.addr,
            fleet,
            _serving: serving,
        })
    }

    /// The API root to configure as `sources.github.api_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what is served.
    pub fn with<T>(&self, f: impl FnOnce(&mut Fleet) -> T) -> T {
        f(&mut super::lock(&self.fleet))
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.with(|f| f.hits.clone())
    }
}

/// A workflow run as `GET /repos/{owner}/{repo}/actions/runs` lists it.
pub fn run_json(
    id: u64,
    status: &str,
    workflow: &str,
    title: &str,
    branch: &str,
    sha: &str,
    started: &str,
) -> Value {
    let api = "https://api.github.com/repos/octo-org/broker";
    json!({
        "id": id,
        "name": workflow,
        "node_id": format!("WFR_kwLO{id}"),
        "head_branch": branch,
        "head_sha": sha,
        "path": ".github/workflows/integration.yml",
        "display_title": title,
        "run_number": id % 1000,
        "event": "push",
        "status": status,
        "conclusion": null,
        "workflow_id": 159038,
        "check_suite_id": 42,
        "check_suite_node_id": "MDEwOkNoZWNrU3VpdGU0Mg==",
        "url": format!("{api}/actions/runs/{id}"),
        "html_url": format!("https://github.com/octo-org/broker/actions/runs/{id}"),
        "pull_requests": [],
        "created_at": started,
        "updated_at": started,
        "actor": {"login": "octocat", "id": 1, "type": "User", "site_admin": false},
        "run_attempt": 1,
        "referenced_workflows": [],
        "run_started_at": started,
        "triggering_actor": {"login": "octocat", "id": 1, "type": "User", "site_admin": false},
        "jobs_url": format!("{api}/actions/runs/{id}/jobs"),
        "logs_url": format!("{api}/actions/runs/{id}/logs"),
        "check_suite_url": format!("{api}/check-suites/42"),
        "artifacts_url": format!("{api}/actions/runs/{id}/artifacts"),
        "cancel_url": format!("{api}/actions/runs/{id}/cancel"),
        "rerun_url": format!("{api}/actions/runs/{id}/rerun"),
        "previous_attempt_url": null,
        "workflow_url": format!("{api}/actions/workflows/159038"),
        "head_commit": {
            "id": sha,
            "tree_id": "d23f6eedb1e1b9610bbc754ddb5197bfe7271223",
            "message": "Create linter.yaml",
            "timestamp": started,
            "author": {"name": "Octo Cat", "email": "octocat@github.com"},
            "committer": {"name": "GitHub", "email": "noreply@github.com"}
        },
        "repository": {"id": 1296269, "name": "broker", "full_name": "octo-org/broker", "private": true},
        "head_repository": {"id": 1296269, "name": "broker", "full_name": "octo-org/broker", "private": true}
    })
}

/// A job as `GET …/actions/runs/{run_id}/jobs` lists it.
pub fn job_json(id: u64, run_id: u64, name: &str, status: &str) -> Value {
    json!({
        "id": id,
        "run_id": run_id,
        "run_url": format!("https://api.github.com/repos/octo-org/broker/actions/runs/{run_id}"),
        "node_id": format!("CR_kwDO{id}"),
        "head_sha": "f83a356604ae3c5d03e1b46ef4d1ca77d64a90b0",
        "url": format!("https://api.github.com/repos/octo-org/broker/actions/jobs/{id}"),
        "html_url": format!("https://github.com/octo-org/broker/runs/{id}"),
        "status": status,
        "conclusion": null,
        "started_at": "2025-01-01T10:00:00Z",
        "completed_at": null,
        "name": name,
        "steps": [],
        "check_run_url": format!("https://api.github.com/repos/octo-org/broker/check-runs/{id}"),
        "labels": ["ubuntu-latest"],
        "runner_id": 1,
        "runner_name": "runner-1",
        "workflow_name": "integration",
        "head_branch": "main"
    })
}

/// A header value; the values written here are ASCII, so none is lost.
fn header(v: &str) -> HeaderValue {
    HeaderValue::from_str(v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn rate_headers(f: &Fleet, h: &mut HeaderMap) {
    let mut set = |k: &'static str, v: String| {
        h.insert(k, header(&v));
    };
    set("x-ratelimit-limit", f.rate_limit.to_string());
    set("x-ratelimit-remaining", f.rate_remaining.to_string());
    set("x-ratelimit-reset", f.rate_reset.to_string());
    set(
        "x-ratelimit-used",
        (f.rate_limit - f.rate_remaining).to_string(),
    );
    set("x-ratelimit-resource", "core".into());
}

/// Answers `body` as GitHub would: refused per the mode, 304 on a matching
/// ETag, otherwise 200 at the cost of one request of the rate limit.
fn answer(
    fleet: &Shared,
    path: String,
    req: &HeaderMap,
    body: impl FnOnce(&Fleet) -> (Value, Option<String>),
) -> Response {
    let mut f = super::lock(fleet);
    let if_none_match = req
        .get("if-none-match")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authorization = req
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    let (status, out) = match f.mode {
        Mode::Failing => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "Server Error"}).to_string(),
        ),
        Mode::RateLimited { reset } => {
            f.rate_remaining = 0;
            f.rate_reset = reset;
            rate_headers(&f, &mut headers);
            (
                StatusCode::FORBIDDEN,
                json!({
                    "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub Support for help, please include the request ID.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                })
                .to_string(),
            )
        }
        Mode::SecondaryLimited { retry_after } => {
            headers.insert("retry-after", header(&retry_after.to_string()));
            (
                StatusCode::TOO_MANY_REQUESTS,
                json!({
                    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
                    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
                })
                .to_string(),
            )
        }
        Mode::Normal => {
            let (value, link) = body(&f);
            let text = value.to_string();
            let etag = format!("W/\"{}\"", hex::encode(Sha256::digest(text.as_bytes())));
            headers.insert("etag", header(&etag));
            if let Some(link) = link {
                headers.insert("link", header(&link));
            }
            if if_none_match.as_deref() == Some(etag.as_str()) {
                rate_headers(&f, &mut headers);
                (StatusCode::NOT_MODIFIED, String::new())
            } else {
                f.rate_remaining = f.rate_remaining.saturating_sub(1);
                rate_headers(&f, &mut headers);
                (StatusCode::OK, text)
            }
        }
    };
    f.hits.push(Hit {
        path,
        status: status.as_u16(),
        conditional: if_none_match.is_some(),
        authorization,
    });
    if status == StatusCode::NOT_MODIFIED {
        headers.remove("content-type");
        return (status, headers).into_response();
    }
    (status, headers, out).into_response()
}

fn path_of(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

async fn rate_limit(State(fleet): State<Shared>, uri: axum::http::Uri) -> Response {
    let mut f = super::lock(&fleet);
    if f.mode == Mode::Failing {
        f.hits.push(Hit {
            path: path_of(&uri),
            status: 500,
            conditional: false,
            authorization: None,
        });
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "{\"message\":\"Server Error\"}",
        )
            .into_response();
    }
    // Asking for the rate limit does not spend it.
    let core = json!({
        "limit": f.rate_limit,
        "remaining": f.rate_remaining,
        "reset": f.rate_reset,
        "used": f.rate_limit - f.rate_remaining,
        "resource": "core"
    });
    f.hits.push(Hit {
        path: path_of(&uri),
        status: 200,
        conditional: false,
        authorization: None,
    });
    let body = json!({
        "resources": {
            "core": core,
            "search": {"limit": 30, "remaining": 30, "reset": f.rate_reset, "used": 0, "resource": "search"},
            "graphql": {"limit": 5000, "remaining": 5000, "reset": f.rate_reset, "used": 0, "resource": "graphql"}
        },
        "rate": core
    });
    let mut headers = HeaderMap::new();
    rate_headers(&f, &mut headers);
    (StatusCode::OK, headers, axum::Json(body)).into_response()
}

async fn branch(
    State(fleet): State<Shared>,
    Path((owner, repo, name)): Path<(String, String, String)>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    answer(&fleet, path_of(&uri), &headers, |f| {
        let sha = &f.head_sha;
        let api = format!("https://api.github.com/repos/{owner}/{repo}");
        (
            json!({
                "name": name,
                "commit": {
                    "sha": sha,
                    "node_id": "MDY6Q29tbWl0MTI5NjI2OTo3ZmQxYTYwYjAxZjkxYjMxNGY1OTk1NWE0ZTRkNGU4MGQ4ZWRmMTFk",
                    "commit": {
                        "author": {"name": "The Octocat", "email": "octocat@nowhere.com", "date": f.head_date},
                        "committer": {"name": "GitHub", "email": "noreply@github.com", "date": f.head_date},
                        "message": "Merge pull request #6 from Spaceghost/patch-1",
                        "tree": {"sha": "b4eecafa9be2f2006ce1b709d6857b07069b4608", "url": format!("{api}/git/trees/b4eecafa9be2f2006ce1b709d6857b07069b4608")},
                        "url": format!("{api}/git/commits/{sha}"),
                        "comment_count": 77,
                        "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null}
                    },
                    "url": format!("{api}/commits/{sha}"),
                    "html_url": format!("https://github.com/{owner}/{repo}/commit/{sha}"),
                    "comments_url": format!("{api}/commits/{sha}/comments"),
                    "author": {"login": "octocat", "id": 1},
                    "committer": {"login": "web-flow", "id": 19864447},
                    "parents": [{"sha": "553c2077f0edc3d5dc5d17262f6aa498e69d6f8e", "url": format!("{api}/commits/553c2077f0edc3d5dc5d17262f6aa498e69d6f8e")}]
                },
                "_links": {"self": format!("{api}/branches/{name}"), "html": format!("https://github.com/{owner}/{repo}/tree/{name}")},
                "protected": true,
                "protection": {"required_status_checks": {"enforcement_level": "non_admins", "contexts": []}},
                "protection_url": format!("{api}/branches/{name}/protection")
            }),
            None,
        )
    })
}

#[derive(serde::Deserialize)]
struct ListQuery {
    status: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
}

/// One page of `items` and GitHub's `Link` header for the others.
fn paginate(
    items: Vec<Value>,
    q: &ListQuery,
    cap: usize,
    link_base: &str,
) -> (Vec<Value>, Option<String>) {
    let per_page = q.per_page.unwrap_or(30).clamp(1, cap);
    let page = q.page.unwrap_or(1).max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    let status = q
        .status
        .as_deref()
        .map(|s| format!("status={s}&"))
        .unwrap_or_default();
    let url = |n: usize| format!("<{link_base}?{status}per_page={per_page}&page={n}>");
    let mut rels = Vec::new();
    if page > 1 {
        rels.push(format!("{}; rel=\"prev\"", url(page - 1)));
    }
    if page < last {
        rels.push(format!("{}; rel=\"next\"", url(page + 1)));
        rels.push(format!("{}; rel=\"last\"", url(last)));
    }
    if page > 1 {
        rels.push(format!("{}; rel=\"first\"", url(1)));
    }
    (slice, (!rels.is_empty()).then(|| rels.join(", ")))
}

async fn list_runs(
    fleet: Shared,
    q: ListQuery,
    uri: axum::http::Uri,
    headers: HeaderMap,
    host: String,
) -> Response {
    answer(&fleet, path_of(&uri), &headers, |f| {
        let matching: Vec<Value> = f
            .runs
            .iter()
            .filter(|r| q.status.as_deref().is_none_or(|s| r["status"] == s))
            .cloned()
            .collect();
        let total = matching.len();
        let link_base = format!("http://{host}/repositories/1296269/actions/runs");
        let (page, link) = paginate(matching, &q, f.page_cap, &link_base);
        (json!({"total_count": total, "workflow_runs": page}), link)
    })
}

fn host_of(headers: &HeaderMap) -> String {
    headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string()
}

async fn list_repo_runs(
    State(fleet): State<Shared>,
    Query(q): Query<ListQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let host = host_of(&headers);
    list_runs(fleet, q, uri, headers, host).await
}

async fn runs_by_id(
    State(fleet): State<Shared>,
    Query(q): Query<ListQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let host = host_of(&headers);
    list_runs(fleet, q, uri, headers, host).await
}

async fn jobs(
    State(fleet): State<Shared>,
    Path((_owner, _repo, run_id)): Path<(String, String, u64)>,
    Query(q): Query<ListQuery>,
    uri: axum::http::Uri,
    headers: HeaderMap,
) -> Response {
    let host = host_of(&headers);
    answer(&fleet, path_of(&uri), &headers, |f| {
        let all = f.jobs.get(&run_id).cloned().unwrap_or_default();
        let total = all.len();
        let link_base = format!("http://{host}/repos/octo-org/broker/actions/runs/{run_id}/jobs");
        let (page, link) = paginate(all, &q, f.page_cap, &link_base);
        (json!({"total_count": total, "jobs": page}), link)
    })
}
