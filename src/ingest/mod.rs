//! Ingest: the push API every box reports to, under `/api/v1`.
//!
//! | route | what |
//! |---|---|
//! | `POST heartbeats/{box}` | a box booted; optional JSON `{commit, version, boot_time}` (the same `boot_time` again is not another boot) |
//! | `PUT test-runs/{service}` | newest test run: JSON counts or JUnit XML; optional `stack` (body or `?stack=`) |
//! | `PUT mutants/{service}` | cargo-mutants `outcomes.json` or plain counts |
//! | `PUT host-health/{host}` | a doctor snapshot, stored whole |
//! | `GET host-health/{host}`, `GET host-health` | the stored snapshot(s) |
//!
//! Every push is checked in the same order — name syntax (400), bearer
//! token (401), token scope (403), inventory (404), content type (415), size
//! (413), body (400) — and only then handed to the store, which answers
//! once it is committed. A refused push changes nothing in the store.
//!
//! The receiver counts its own requests per name and status code, and those
//! without `X-Fleet-Commit`. So clients cannot blow up the series count, a
//! request for an invalid name counts as `_invalid` and one for a name that
//! is not in the inventory as `_unknown`.

pub mod auth;
pub mod doctor;
mod host_health;
pub mod junit;
pub mod mutants;
mod request;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde_json::json;

use crate::api::{self, HeartbeatBody, Route, TestRunCounts};
use crate::clock::now_unix;
use crate::config::{Config, Name};
use crate::pulse::{Mutants, TestRun, TestRunFormat, NO_STACK};
use crate::store::{
    HeartbeatPush, Listed, NameKind, Publish, Removal, Store, StoreError, StoredKind, Write,
    WriteError, WriteRequest, Written, INVALID_NAME_LABEL, UNKNOWN_NAME_LABEL,
};
use auth::{Caller, Tokens, TokensFileError, Unauthenticated};
use request::{
    is_json, is_label_text, is_xml, media_type, optional_label_text, parse_json, read_body,
    stamped, timestamp, unsupported,
};

/// The header carrying the pushing client's commit.
pub use crate::api::COMMIT_HEADER;
/// How far in the future a reported start time may lie (clock skew).
const MAX_CLOCK_SKEW_SECONDS: f64 = 300.0;
/// Longest commit or version string accepted.
const MAX_LABEL_TEXT: usize = 128;

/// Why ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Tokens(#[from] TokensFileError),
}

/// Which names may push: the inventory, indexed for lookups per request.
#[derive(Debug, Default)]
struct Inventory {
    stacks: HashSet<String>,
    /// Box → its stack.
    boxes: HashMap<String, String>,
    /// Host → its stack.
    hosts: HashMap<String, String>,
    /// Service → the stacks that list it (empty for `ingest.services`).
    services: HashMap<String, Vec<String>>,
}

impl Inventory {
    fn new(config: &Config) -> Inventory {
        let mut inv = Inventory::default();
        for env in &config.environments {
            let stack = env.name.0.clone();
            inv.stacks.insert(stack.clone());
            for b in &env.boxes {
                inv.boxes.insert(b.0.clone(), stack.clone());
            }
            for h in &env.hosts {
                inv.hosts.insert(h.0.clone(), stack.clone());
            }
            for s in &env.services {
                inv.services
                    .entry(s.name.0.clone())
                    .or_default()
                    .push(stack.clone());
            }
        }
        for s in &config.ingest.services {
            inv.services.entry(s.0.clone()).or_default();
        }
        inv
    }

    fn knows(&self, kind: NameKind, name: &str) -> bool {
        match kind {
            NameKind::Box => self.boxes.contains_key(name),
            NameKind::Host => self.hosts.contains_key(name),
            NameKind::Service => self.services.contains_key(name),
        }
    }

    /// The stack a name belongs to, when exactly one environment lists it.
    fn stack_of(&self, kind: NameKind, name: &str) -> &str {
        let stack = match kind {
            NameKind::Box => self.boxes.get(name).map(String::as_str),
            NameKind::Host => self.hosts.get(name).map(String::as_str),
            NameKind::Service => match self.services.get(name).map(Vec::as_slice) {
                Some([only]) => Some(only.as_str()),
                _ => None,
            },
        };
        stack.unwrap_or(NO_STACK)
    }
}

/// The ingest side: the rules pushes are admitted by, and the store.
#[derive(Debug)]
pub struct Ingest {
    store: Store,
    /// Replaced whole on a reload; a request reads the rules once.
    rules: std::sync::RwLock<Arc<Rules>>,
}

/// Who may push what, and how much: from the config and the tokens file.
#[derive(Debug)]
pub struct Rules {
    tokens: Tokens,
    inventory: Inventory,
    max_body_bytes: usize,
    max_junit_bytes: usize,
    unknown_names_cap: usize,
}

impl Rules {
    /// Reads the tokens file `config` names; the rest comes from `config`.
    pub fn from_config(config: &Config) -> Result<Rules, IngestError> {
        let tokens = match &config.ingest.tokens_file {
            Some(path) => Tokens::load(path)?,
            None => {
                tracing::warn!("ingest.tokens_file is not set: every push will be refused (401)");
                Tokens::none()
            }
        };
        Ok(Rules {
            tokens,
            inventory: Inventory::new(config),
            max_body_bytes: config.ingest.max_body_bytes,
            max_junit_bytes: config.ingest.max_junit_bytes,
            unknown_names_cap: config.ingest.unknown_names_cap,
        })
    }
}

impl Ingest {
    /// Reads the tokens file, opens the store in `state_dir` and publishes
    /// its pulse through `publish` (now and after every commit).
    pub fn start(
        config: &Config,
        state_dir: &Path,
        publish: Publish,
    ) -> Result<Ingest, IngestError> {
        let rules = Rules::from_config(config)?;
        let store = Store::open(
            state_dir,
            config.ingest.unknown_names_cap,
            &|kind, name| rules.inventory.knows(kind, name),
            publish,
        )?;
        tracing::info!(
            store = %store.path().display(),
            tokens = rules.tokens.len(),
            "ingest ready"
        );
        Ok(Ingest {
            store,
            rules: std::sync::RwLock::new(Arc::new(rules)),
        })
    }

    /// The rules in force.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts reloaded rules in force: a request already admitted finishes
    /// under the rules it was admitted by, the next one is read under these.
    pub fn replace_rules(&self, rules: Rules) {
        tracing::info!(tokens = rules.tokens.len(), "ingest rules reloaded");
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    /// The store, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// The ingest routes, ready to merge into the server's router.
pub fn router<S: Clone + Send + Sync + 'static>(ingest: Arc<Ingest>) -> Router<S> {
    Router::new()
        .route(
            Route::Heartbeat.template(),
            post(heartbeat).delete(|s, n, h| remove(s, n, h, StoredKind::Heartbeats)),
        )
        .route(
            Route::TestRun.template(),
            put(test_run).delete(|s, n, h| remove(s, n, h, StoredKind::TestRuns)),
        )
        .route(
            Route::Mutants.template(),
            put(mutants).delete(|s, n, h| remove(s, n, h, StoredKind::Mutants)),
        )
        .route(
            Route::HostHealth.template(),
            put(host_health::put)
                .get(host_health::get_one)
                .delete(|s, n, h| remove(s, n, h, StoredKind::HostHealth)),
        )
        .route(api::HOST_HEALTH_ALL, get(host_health::get_all))
        .with_state(ingest)
}

/// A refused request: its status and what to tell the client.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
    /// Whether the store's writer already counted it.
    counted: bool,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            counted: false,
        }
    }

    fn bad_request(message: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"fleetpulse\""),
            );
        }
        r
    }
}

impl From<Unauthenticated> for Refusal {
    fn from(e: Unauthenticated) -> Refusal {
        Refusal::new(StatusCode::UNAUTHORIZED, e.to_string())
    }
}

impl From<WriteError> for Refusal {
    fn from(e: WriteError) -> Refusal {
        let (status, counted) = match e {
            WriteError::UnknownNamesCapReached(_) => (StatusCode::NOT_FOUND, true),
            WriteError::Commit(_) => (StatusCode::INTERNAL_SERVER_ERROR, true),
            WriteError::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, true),
            WriteError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, false),
        };
        Refusal {
            status,
            message: e.to_string(),
            counted,
        }
    }
}

fn kind_word(kind: NameKind) -> &'static str {
    match kind {
        NameKind::Box => "box",
        NameKind::Service => "service",
        NameKind::Host => "host",
    }
}

/// A name as it may be echoed back: bounded and escaped.
fn shown(name: &str) -> String {
    let cut: String = name.chars().take(70).collect();
    format!("{cut:?}")
}

/// What every push has been checked for before its body is read.
struct Admitted {
    name: String,
    known: bool,
    stamped: bool,
    /// `X-Fleet-Commit`, when sent.
    commit: Option<String>,
}

impl Ingest {
    /// The counter label of a name: itself when it may have series of its own.
    fn label(&self, kind: NameKind, name: &str) -> String {
        if !Name::is_valid(name) {
            INVALID_NAME_LABEL.into()
        } else if self.rules().inventory.knows(kind, name) {
            name.into()
        } else {
            UNKNOWN_NAME_LABEL.into()
        }
    }

    /// Checks name, token, scope and inventory, in that order.
    fn admit(
        &self,
        kind: NameKind,
        name: String,
        headers: &HeaderMap,
    ) -> Result<Admitted, Refusal> {
        if !Name::is_valid(&name) {
            return Err(Refusal::bad_request(format!(
                "not a valid {} name: {} (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
                kind_word(kind),
                shown(&name)
            )));
        }
        let caller = self.caller(headers)?;
        if !caller.scope.allows(&name) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("token {} may not write {name}", caller.id),
            ));
        }
        let rules = self.rules();
        let known = rules.inventory.knows(kind, &name);
        if !known && rules.unknown_names_cap == 0 {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("{} {name} is not in the inventory", kind_word(kind)),
            ));
        }
        let commit = match headers.get(COMMIT_HEADER) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .filter(|c| is_label_text(c))
                    .ok_or_else(|| {
                        Refusal::bad_request(format!(
                            "X-Fleet-Commit: expected 1 to {MAX_LABEL_TEXT} printable ASCII characters"
                        ))
                    })?
                    .to_string(),
            ),
        };
        Ok(Admitted {
            name,
            known,
            stamped: commit.is_some(),
            commit,
        })
    }

    fn caller(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        Ok(self.rules().tokens.authenticate(
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        )?)
    }

    async fn commit(&self, admitted: &Admitted, write: Write) -> Result<Written, Refusal> {
        Ok(self
            .store
            .write(WriteRequest {
                write,
                known: admitted.known,
                stamped: admitted.stamped,
            })
            .await?)
    }

    /// Answers a push and counts it (unless the writer already did).
    fn finish(
        &self,
        kind: NameKind,
        name: &str,
        stamped: bool,
        result: Result<serde_json::Value, Refusal>,
    ) -> Response {
        match result {
            Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
            Err(refusal) => {
                if !refusal.counted {
                    self.store
                        .count(self.label(kind, name), refusal.status.as_u16(), stamped);
                }
                if refusal.status.is_server_error() {
                    tracing::warn!(kind = kind_word(kind), status = %refusal.status, error = %refusal.message, "push failed");
                } else {
                    tracing::debug!(kind = kind_word(kind), status = %refusal.status, error = %refusal.message, "push refused");
                }
                refusal.into_response()
            }
        }
    }
}

// ---- removal ----

/// `DELETE /api/v1/{heartbeats,test-runs,mutants,host-health}/{name}`:
/// removes what is stored for one name now (a retired box, say), by a
/// token allowed that name. Logged with the token's id.
async fn remove(
    State(ing): State<Arc<Ingest>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    kind: StoredKind,
) -> Response {
    let what = match kind {
        StoredKind::Heartbeats => "heartbeats",
        StoredKind::TestRuns => "test runs",
        StoredKind::Mutants => "mutation results",
        StoredKind::HostHealth => "doctor snapshots",
    };
    let result = async {
        if !Name::is_valid(&name) {
            return Err(Refusal::bad_request(format!(
                "not a valid name: {} (expected 1 to 64 of A-Z a-z 0-9 . _ -)",
                shown(&name)
            )));
        }
        let caller = ing.caller(&headers)?;
        if !caller.scope.allows(&name) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("token {} may not remove {name}", caller.id),
            ));
        }
        let removed = ing.store.remove(Removal::Name(kind, name.clone())).await?;
        if removed == 0 {
            return Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no {what} are stored for {name}"),
            ));
        }
        tracing::info!(token = %caller.id, name = %name, kind = what, rows = removed, "stored pushes removed");
        Ok(json!({ "name": name, "removed": removed }))
    }
    .await;
    match result {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

impl Ingest {
    /// Prunes the stored pushes of names `config` has not listed for
    /// `ingest.retention`; returns how many rows went.
    pub async fn prune(&self, config: &Config) -> Result<usize, WriteError> {
        let listed = Listed {
            stacks: config
                .environments
                .iter()
                .map(|e| e.name.0.clone())
                .collect(),
            boxes: config
                .environments
                .iter()
                .flat_map(|e| e.boxes.iter().map(|b| b.0.clone()))
                .collect(),
            hosts: config
                .environments
                .iter()
                .flat_map(|e| e.hosts.iter().map(|h| h.0.clone()))
                .collect(),
            services: config
                .environments
                .iter()
                .flat_map(|e| e.services.iter().map(|s| s.name.0.clone()))
                .chain(config.ingest.services.iter().map(|s| s.0.clone()))
                .collect(),
        };
        let retention = config.ingest.retention.0.as_secs_f64();
        let n = self
            .store
            .remove(Removal::Unlisted { listed, retention })
            .await?;
        if n > 0 {
            tracing::info!(
                rows = n,
                "pruned the pushes of names retired longer than ingest.retention"
            );
        }
        Ok(n)
    }
}

// ---- heartbeats ----

async fn heartbeat(
    State(ing): State<Arc<Ingest>>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let stamped = stamped(&parts.headers);
    let result: Result<serde_json::Value, Refusal> = async {
        let admitted = ing.admit(NameKind::Box, name.clone(), &parts.headers)?;
        let media = media_type(&parts.headers);
        let bytes = read_body(body, &parts.headers, ing.rules().max_body_bytes).await?;
        let body: HeartbeatBody = if bytes.iter().all(u8::is_ascii_whitespace) {
            HeartbeatBody::default()
        } else if media.as_deref().is_some_and(is_json) {
            parse_json(&bytes)?
        } else {
            return Err(unsupported(
                media.as_deref(),
                "application/json, or no body",
            ));
        };
        let push = HeartbeatPush {
            stack: ing
                .rules()
                .inventory
                .stack_of(NameKind::Box, &admitted.name)
                .to_string(),
            box_name: admitted.name.clone(),
            received_at: now_unix(),
            commit: optional_label_text("commit", body.commit)?.or(admitted.commit.clone()),
            version: optional_label_text("version", body.version)?,
            booted_at: timestamp("boot_time", body.boot_time)?,
        };
        let now = push.received_at;
        match ing.commit(&admitted, Write::Heartbeat(push)).await? {
            Written::Heartbeat(hb) => Ok(json!({
                "box": hb.box_name,
                "stack": hb.stack,
                "heartbeats": hb.count,
                "boots_in_last_hour": hb.boots_in_last_hour(now),
            })),
            other => Err(unexpected(other)),
        }
    }
    .await;
    ing.finish(NameKind::Box, &name, stamped, result)
}

/// The store answered a write with another kind of record: a bug.
fn unexpected(w: Written) -> Refusal {
    tracing::error!(answer = ?w, "store answered with the wrong kind of record");
    Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

// ---- test runs ----

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn test_run(
    State(ing): State<Arc<Ingest>>,
    UrlPath(name): UrlPath<String>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let stamped = stamped(&parts.headers);
    let result: Result<serde_json::Value, Refusal> = async {
        let admitted = ing.admit(NameKind::Service, name.clone(), &parts.headers)?;
        let media = media_type(&parts.headers);
        let expected = "application/json (counts) or application/xml (JUnit)";
        let format = match media.as_deref() {
            Some(m) if is_json(m) => TestRunFormat::Json,
            Some(m) if is_xml(m) => TestRunFormat::Junit,
            other => return Err(unsupported(other, expected)),
        };
        let limit = match format {
            TestRunFormat::Json => ing.rules().max_body_bytes,
            TestRunFormat::Junit => ing.rules().max_junit_bytes,
        };
        let bytes = read_body(body, &parts.headers, limit).await?;
        let received_at = now_unix();
        let query_stack = query_param(query.as_deref(), "stack");
        let mut run = TestRun {
            stack: String::new(),
            service: admitted.name.clone(),
            passed: 0,
            failed: 0,
            errored: 0,
            skipped: 0,
            duration_seconds: None,
            started_at: None,
            received_at,
            commit: admitted.commit.clone(),
            format,
        };
        let body_stack = match format {
            TestRunFormat::Json => {
                let b: TestRunCounts = parse_json(&bytes)?;
                if b.duration_seconds.is_some_and(|d| !d.is_finite() || d < 0.0) {
                    return Err(Refusal::bad_request(
                        "duration_seconds: expected a non-negative number",
                    ));
                }
                run.passed = b.passed;
                run.failed = b.failed;
                run.skipped = b.skipped;
                run.errored = b.errored;
                run.duration_seconds = b.duration_seconds;
                run.started_at = timestamp("started_at", b.started_at)?;
                if let Some(c) = optional_label_text("commit", b.commit)? {
                    run.commit = Some(c);
                }
                b.stack
            }
            TestRunFormat::Junit => {
                let s = junit::count(&bytes)
                    .map_err(|e| Refusal::bad_request(format!("JUnit report: {e}")))?;
                run.passed = s.passed;
                run.failed = s.failed;
                run.errored = s.errored;
                run.skipped = s.skipped;
                run.duration_seconds = s.duration_seconds;
                run.started_at = s.started_at;
                None
            }
        };
        if run
            .started_at
            .is_some_and(|t| t > received_at + MAX_CLOCK_SKEW_SECONDS)
        {
            return Err(Refusal::bad_request(
                "started_at lies in the future; check the runner's clock",
            ));
        }
        run.stack = ing.test_run_stack(&admitted.name, body_stack, query_stack)?;
        match ing.commit(&admitted, Write::TestRun(run)).await? {
            Written::TestRun { receipt, newest } => {
                let mut answer = json!({
                    "stack": receipt.stack,
                    "service": receipt.service,
                    "newest": newest,
                    "passed": receipt.passed,
                    "failed": receipt.failed,
                    "errored": receipt.errored,
                    "skipped": receipt.skipped,
                });
                if !newest {
                    answer["message"] = json!(
                        "a newer run is already the receipt of this service; this older one was not kept"
                    );
                }
                Ok(answer)
            }
            other => Err(unexpected(other)),
        }
    }
    .await;
    ing.finish(NameKind::Service, &name, stamped, result)
}

impl Ingest {
    /// The stack a run is attributed to: as given (body or query, which must
    /// agree), else the one environment listing the service, else none.
    fn test_run_stack(
        &self,
        service: &str,
        body: Option<String>,
        query: Option<String>,
    ) -> Result<String, Refusal> {
        let given = match (body, query) {
            (Some(b), Some(q)) if b != q => {
                return Err(Refusal::bad_request(format!(
                    "stack given twice and differently: {} in the body, {} in the query",
                    shown(&b),
                    shown(&q)
                )))
            }
            (b, q) => b.or(q),
        };
        match given {
            None => Ok(self
                .rules()
                .inventory
                .stack_of(NameKind::Service, service)
                .to_string()),
            Some(s) if !Name::is_valid(&s) => Err(Refusal::bad_request(format!(
                "not a valid stack name: {}",
                shown(&s)
            ))),
            Some(s) if !self.rules().inventory.stacks.contains(&s) => Err(Refusal::new(
                StatusCode::NOT_FOUND,
                format!("stack {s} is not in the inventory"),
            )),
            Some(s) => Ok(s),
        }
    }
}

// ---- mutants ----

async fn mutants(
    State(ing): State<Arc<Ingest>>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let stamped = stamped(&parts.headers);
    let result: Result<serde_json::Value, Refusal> = async {
        let admitted = ing.admit(NameKind::Service, name.clone(), &parts.headers)?;
        let media = media_type(&parts.headers);
        if !media.as_deref().is_some_and(is_json) {
            return Err(unsupported(media.as_deref(), "application/json"));
        }
        let bytes = read_body(body, &parts.headers, ing.rules().max_body_bytes).await?;
        let counts = mutants::parse(&bytes).map_err(|e| Refusal::bad_request(e.to_string()))?;
        let m = Mutants {
            service: admitted.name.clone(),
            caught: counts.caught,
            missed: counts.missed,
            timeout: counts.timeout,
            unviable: counts.unviable,
            received_at: now_unix(),
            commit: admitted.commit.clone(),
        };
        match ing.commit(&admitted, Write::Mutants(m)).await? {
            Written::Mutants(m) => Ok(json!({
                "service": m.service,
                "caught": m.caught,
                "missed": m.missed,
                "timeout": m.timeout,
                "unviable": m.unviable,
            })),
            other => Err(unexpected(other)),
        }
    }
    .await;
    ing.finish(NameKind::Service, &name, stamped, result)
}
