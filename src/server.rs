//! The HTTP surface: `/metrics`, `/healthz`, and the routes of the views and
//! the ingest API. Handlers only read snapshots or hand bodies to ingest.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::hub::Hub;
use crate::metrics;
use crate::views;
use crate::webconfig::SecurityCell;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub hub: Arc<Hub>,
    /// Public mode's redaction, built at start-up.
    pub redactor: Arc<views::json::Redactor>,
    /// The push API; `None` when no state directory is configured.
    pub ingest: Option<Arc<crate::ingest::Ingest>>,
    /// `POST /-/reload`: set when `--web.enable-lifecycle` is given.
    pub reload: Option<ReloadHook>,
}

/// Re-reads the config files: `Ok` with a summary, or `Err` with why the
/// files were refused (the previous config keeps serving).
pub type ReloadHook = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// All routes. With `basic_auth`, every route but the ingest API's asks for
/// a user and password; the ingest routes keep their own bearer tokens
/// (both use the `Authorization` header, so one request cannot carry both).
pub fn router(state: AppState, security: Arc<SecurityCell>) -> Router {
    let ingest = match &state.ingest {
        Some(i) => crate::ingest::router(i.clone()),
        None => Router::new(),
    };
    let hub = state.hub.clone();
    let views = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/", get(page_handler))
        .route("/board", get(board_handler))
        .route("/api/v1/fleet", get(fleet_handler))
        .route("/api/v1/events", get(events_handler))
        .route("/-/reload", post(reload_handler).put(reload_handler))
        // Unknown paths are answered behind the same guard.
        .fallback(not_found)
        .with_state(state);
    let views = views.layer(axum::middleware::from_fn_with_state(
        security.clone(),
        require_basic_auth,
    ));
    // Outermost, so a panic anywhere below (ingest included) is a 500.
    ingest
        .merge(views)
        .layer(axum::middleware::from_fn_with_state(hub, catch_panic))
        .layer(axum::middleware::from_fn_with_state(security, add_headers))
}

/// Adds the web config's `http_server_config.headers` to every response.
async fn add_headers(
    State(security): State<Arc<SecurityCell>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = security.get().headers;
    let mut response = next.run(req).await;
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Answers a handler's panic with a 500 instead of a dropped connection,
/// logs it once with the route, and counts it in
/// `fleet_exporter_handler_panics_total`.
async fn catch_panic(
    State(hub): State<Arc<Hub>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use futures::FutureExt;
    use std::future::Future;
    let route = format!("{} {}", req.method(), req.uri().path());
    let handled = std::panic::AssertUnwindSafe(next.run(req)).catch_unwind();
    let mut handled = std::pin::pin!(handled);
    let outcome = std::future::poll_fn(|cx| {
        let _quiet = panic_hook::Handling::enter();
        handled.as_mut().poll(cx)
    })
    .await;
    match outcome {
        Ok(response) => response,
        Err(payload) => {
            let what = panic_hook::take_last().unwrap_or_else(|| panic_message(&*payload));
            hub.count_handler_panic();
            tracing::error!(route = %route, panic = %what, "request handler panicked; answered 500");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the request handler failed; the exporter log says where\n",
            )
                .into_response()
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A panic inside a request handler is logged once, by `catch_panic` with its
/// route, rather than also by the default hook: while a handler is polled the
/// hook only keeps the message and location for it. Panics elsewhere go to
/// the previous hook as before.
mod panic_hook {
    use std::cell::{Cell, RefCell};
    use std::sync::Once;

    thread_local! {
        static HANDLING: Cell<bool> = const { Cell::new(false) };
        static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    static INSTALL: Once = Once::new();

    /// Marks this thread as polling a request handler until dropped.
    pub struct Handling(bool);

    impl Handling {
        pub fn enter() -> Handling {
            install();
            Handling(HANDLING.with(|h| h.replace(true)))
        }
    }

    impl Drop for Handling {
        fn drop(&mut self) {
            HANDLING.with(|h| h.set(self.0));
        }
    }

    /// The message and location of the last panic caught on this thread.
    pub fn take_last() -> Option<String> {
        LAST.with(|l| l.borrow_mut().take())
    }

    fn install() {
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if HANDLING.with(|h| h.get()) {
                    let message = super::panic_message(info.payload());
                    let text = match info.location() {
                        Some(l) => format!("{message} (at {}:{})", l.file(), l.line()),
                        None => message,
                    };
                    LAST.with(|l| *l.borrow_mut() = Some(text));
                } else {
                    previous(info);
                }
            }));
        });
    }
}

async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

async fn require_basic_auth(
    State(security): State<Arc<SecurityCell>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(auth) = security.get().basic_auth else {
        return next.run(req).await;
    };
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    // bcrypt takes tens of milliseconds: off the async threads.
    let ok = tokio::task::spawn_blocking(move || auth.check(header.as_deref()))
        .await
        .unwrap_or(false);
    if ok {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, BASIC_CHALLENGE)],
            "unauthorized\n",
        )
            .into_response()
    }
}

/// The challenge of a 401.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"fleetpulse\"";

async fn metrics_handler(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let snapshot = st.hub.snapshot();
    let wants_openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if wants_openmetrics {
        (
            [(header::CONTENT_TYPE, metrics::OPENMETRICS_CONTENT_TYPE)],
            metrics::render_openmetrics(snapshot),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, metrics::TEXT_CONTENT_TYPE)],
            metrics::render_text(snapshot),
        )
            .into_response()
    }
}

/// The page may load nothing from elsewhere: it works on a closed network.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'unsafe-inline'; connect-src 'self'; img-src 'self'";

fn html(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, PAGE_CSP),
        ],
        body,
    )
        .into_response()
}

async fn page_handler(State(st): State<AppState>) -> Response {
    html(views::page::render(&views::json::view(
        &st.hub.snapshot(),
        &st.redactor,
    )))
}

async fn board_handler(State(st): State<AppState>) -> Response {
    html(views::page::render_board(&views::json::view(
        &st.hub.snapshot(),
        &st.redactor,
    )))
}

async fn fleet_handler(State(st): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(views::json::view(&st.hub.snapshot(), &st.redactor)),
    )
        .into_response()
}

/// `GET /api/v1/events` (see `history::api`).
async fn events_handler(
    State(st): State<AppState>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    use crate::history::api;
    let Some(ingest) = st.ingest.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "no history: it is kept only with a state_dir\n",
        )
            .into_response();
    };
    let q = match api::parse_query(query.as_deref(), crate::snapshot::now_unix()) {
        Ok(q) => q,
        Err(problems) => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(
                    serde_json::json!({ "error": problems.join("; "), "problems": problems }),
                ),
            )
                .into_response()
        }
    };
    let public = st.hub.config().public;
    let redactor = st.redactor.clone();
    let read = tokio::task::spawn_blocking(move || ingest.store().events(&q)).await;
    match read {
        Ok(Ok((events, next))) => {
            let events = events
                .into_iter()
                .map(|mut e| {
                    if public {
                        e.redact(&redactor);
                    }
                    api::Shown::of(e)
                })
                .collect();
            (
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(api::Page {
                    schema_version: api::SCHEMA_VERSION,
                    events,
                    next: next.map(|(at, id)| api::cursor(at, id)),
                }),
            )
                .into_response()
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot read the history");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the history; the exporter log says why\n",
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "history read failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot read the history\n",
            )
                .into_response()
        }
    }
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

/// `POST /-/reload` (or PUT), as Prometheus and blackbox_exporter answer it:
/// 200 when the files were read and put in force, 500 with why when they
/// were refused (the previous config keeps serving); 403 unless the
/// exporter was started with `--web.enable-lifecycle`.
async fn reload_handler(State(state): State<AppState>) -> Response {
    let Some(reload) = state.reload.clone() else {
        return (
            StatusCode::FORBIDDEN,
            "lifecycle APIs are not enabled: start with --web.enable-lifecycle, or send SIGHUP\n",
        )
            .into_response();
    };
    match reload() {
        Ok(summary) => (StatusCode::OK, format!("{summary}\n")).into_response(),
        Err(why) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {why}\n"),
        )
            .into_response(),
    }
}

/// Binds `addr`, with a clear error when it is taken.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// The connections holding a place in `max_connections`, oldest first. A
/// connection not in a request (through its TLS handshake or headers not
/// yet, or idle between requests) is idle: when every place is taken, the
/// oldest idle connection is closed to make room for a new one, so idle or
/// slow clients, however many, cannot lock scrapes and pushes out.
#[derive(Default)]
struct Places {
    held: std::sync::Mutex<std::collections::VecDeque<std::sync::Weak<Place>>>,
}

/// One connection's place.
#[derive(Default)]
struct Place {
    /// Requests in progress on the connection.
    busy: std::sync::atomic::AtomicUsize,
    /// Told when the connection is to be closed for a newer one.
    close: tokio::sync::Notify,
}

impl Places {
    fn held(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::VecDeque<std::sync::Weak<Place>>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new connection, held while the returned `Arc` lives.
    fn admit(&self) -> Arc<Place> {
        let place = Arc::new(Place::default());
        let mut held = self.held();
        held.retain(|p| p.strong_count() > 0);
        held.push_back(Arc::downgrade(&place));
        place
    }

    /// Asks the oldest idle connection to close; false when every
    /// connection is in a request.
    fn close_oldest_idle(&self) -> bool {
        let mut held = self.held();
        let idle = held.iter().position(|p| {
            p.upgrade()
                .is_some_and(|p| p.busy.load(std::sync::atomic::Ordering::SeqCst) == 0)
        });
        match idle.and_then(|i| held.remove(i)).and_then(|p| p.upgrade()) {
            Some(place) => {
                place.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A connection's service, marking its place busy while a request is in
/// progress.
#[derive(Clone)]
struct Marked<S> {
    inner: S,
    place: Arc<Place>,
}

/// Marks a place not busy when the request's future ends or is dropped.
struct InRequest(Arc<Place>);

impl Drop for InRequest {
    fn drop(&mut self) {
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<S, R> hyper::service::Service<R> for Marked<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, req: R) -> Self::Future {
        self.place
            .busy
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let in_request = InRequest(self.place.clone());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let _in_request = in_request;
            answer.await
        })
    }
}

/// Serves until `shutdown` completes, within the limits of `config.web`:
/// at most `max_connections` connections at once, the TLS handshake (when
/// serving TLS) within `request_timeout` of connecting, request headers
/// within `request_timeout` after that, and every request — its body
/// included — answered within `request_timeout` or answered 408. A
/// connection holds its place from accept, handshake included; with every
/// place taken, a new connection takes the place of the oldest idle one
/// (see `Places`), and is closed only when every connection is in a request.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    security: Arc<SecurityCell>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let web = state.hub.config().web.clone();
    let deadline = web.request_timeout.0;
    let app = router(state, security.clone()).layer(axum::middleware::from_fn_with_state(
        deadline,
        request_deadline,
    ));
    let permits = Arc::new(tokio::sync::Semaphore::new(web.max_connections.max(1)));
    let places = Places::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if places.close_oldest_idle() => {
                // The closed connection's task gives its place back at once.
                match tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    permits.clone().acquire_owned(),
                )
                .await
                {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        drop(tcp);
                        continue;
                    }
                }
            }
            Err(_) => {
                tracing::debug!("every connection is in a request; closing a new connection");
                drop(tcp);
                continue;
            }
        };
        let place = places.admit();
        let _ = tcp.set_nodelay(true);
        let service = Marked {
            inner: hyper_util::service::TowerToHyperService::new(app.clone()),
            place: place.clone(),
        };
        let http = {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(deadline);
            b
        };
        match &security.get().tls {
            None => {
                let conn = graceful
                    .watch(http.serve_connection(hyper_util::rt::TokioIo::new(tcp), service));
                tokio::spawn(async move {
                    tokio::select! {
                        _ = conn => {}
                        _ = place.close.notified() => {}
                    }
                    drop(permit);
                });
            }
            Some(acceptor) => {
                let handshake = acceptor.accept(tcp);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    // The permit is held from accept: a stalled handshake
                    // counts against the cap until the deadline drops it.
                    let handshake = tokio::select! {
                        done = tokio::time::timeout(deadline, handshake) => done,
                        _ = place.close.notified() => return,
                    };
                    let tls = match handshake {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake not completed in time; closing");
                            return;
                        }
                    };
                    let conn = watcher
                        .watch(http.serve_connection(hyper_util::rt::TokioIo::new(tls), service));
                    tokio::select! {
                        _ = conn => {}
                        _ = place.close.notified() => {}
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    // Let requests in flight finish, but not forever.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

async fn request_deadline(
    State(deadline): State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(deadline, next.run(req)).await {
        Ok(r) => r,
        Err(_) => (
            StatusCode::REQUEST_TIMEOUT,
            "request not completed within the server's request timeout\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn the_oldest_idle_connection_makes_room_and_a_busy_one_never_does() {
        use std::sync::atomic::Ordering::SeqCst;
        let places = Places::default();
        let (a, b, c) = (places.admit(), places.admit(), places.admit());
        b.busy.fetch_add(1, SeqCst);
        // a is the oldest idle one.
        assert!(places.close_oldest_idle());
        tokio::time::timeout(std::time::Duration::from_secs(1), a.close.notified())
            .await
            .expect("the oldest idle connection is told to close");
        // Next, c: b is in a request.
        assert!(places.close_oldest_idle());
        tokio::time::timeout(std::time::Duration::from_secs(1), c.close.notified())
            .await
            .expect("the next idle connection is told to close");
        // Only b is left, in a request; and a closed connection's place is
        // not asked again.
        assert!(!places.close_oldest_idle());
        drop(a);
        let d = places.admit();
        assert!(places.close_oldest_idle());
        tokio::time::timeout(std::time::Duration::from_secs(1), d.close.notified())
            .await
            .expect("a new idle connection can make room too");
        // A request that ends makes its connection idle again.
        b.busy.fetch_sub(1, SeqCst);
        assert!(places.close_oldest_idle());
    }

    #[test]
    fn closed_connections_leave_their_places() {
        let places = Places::default();
        let kept = places.admit();
        for _ in 0..1000 {
            drop(places.admit());
        }
        // The dead places are let go at the next admission: the list is as
        // long as the connections open, not every connection ever made.
        let last = places.admit();
        assert_eq!(places.held().len(), 2);
        drop((kept, last));
    }

    #[tokio::test]
    async fn a_place_is_busy_while_its_request_lasts_and_after_it_is_not() {
        use std::sync::atomic::Ordering::SeqCst;
        let places = Places::default();
        let place = places.admit();
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        // The first request waits to be released; the next ones do not.
        struct Waiting(std::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>);
        impl hyper::service::Service<()> for Waiting {
            type Response = ();
            type Error = std::convert::Infallible;
            type Future = std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), Self::Error>> + Send>,
            >;
            fn call(&self, (): ()) -> Self::Future {
                let wait = self.0.lock().unwrap().take();
                Box::pin(async move {
                    if let Some(wait) = wait {
                        let _ = wait.await;
                    }
                    Ok(())
                })
            }
        }
        let marked = Marked {
            inner: Waiting(std::sync::Mutex::new(Some(wait))),
            place: place.clone(),
        };
        use hyper::service::Service as _;
        // A request answered: busy while it runs, idle after.
        let answer = marked.call(());
        assert_eq!(place.busy.load(SeqCst), 1);
        assert!(!places.close_oldest_idle());
        release.send(()).unwrap();
        answer.await.unwrap();
        assert_eq!(place.busy.load(SeqCst), 0);
        // A request given up (its future dropped) leaves it idle too.
        let given_up = marked.call(());
        assert_eq!(place.busy.load(SeqCst), 1);
        drop(given_up);
        assert_eq!(place.busy.load(SeqCst), 0);
        assert!(places.close_oldest_idle());
    }

    async fn status_of(app: &Router, path: &str) -> (StatusCode, String) {
        let req = axum::http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_counted_and_the_server_goes_on() {
        let config = Arc::new(
            crate::config::Config::parse("environments:\n  - name: prod\n", "t.yaml").unwrap(),
        );
        let hub = Hub::new(config);
        let app = Router::new()
            .route("/boom", get(|| async { panic!("boom") as &'static str }))
            .route("/fine", get(|| async { "fine" }))
            .layer(axum::middleware::from_fn_with_state(
                hub.clone(),
                catch_panic,
            ));
        for n in 1..=2 {
            let (status, body) = status_of(&app, "/boom").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
            assert!(body.starts_with("internal error"), "{body}");
            assert_eq!(hub.snapshot().handler_panics, n);
        }
        assert_eq!(status_of(&app, "/fine").await.0, StatusCode::OK);
        assert_eq!(hub.snapshot().handler_panics, 2);
    }

    #[test]
    fn the_hook_keeps_a_handled_panic_for_the_guard_and_passes_others_on() {
        let kept = std::panic::catch_unwind(|| {
            let _handling = panic_hook::Handling::enter();
            panic!("inside a handler");
        });
        assert!(kept.is_err());
        let last = panic_hook::take_last().expect("the hook kept the panic");
        assert!(
            last.starts_with("inside a handler (at src/server.rs:"),
            "{last}"
        );
        let outside = std::panic::catch_unwind(|| panic!("outside"));
        assert!(outside.is_err());
        assert_eq!(panic_hook::take_last(), None);
    }

    fn state(yaml: &str, reload: Option<ReloadHook>) -> AppState {
        let config = Arc::new(crate::config::Config::parse(yaml, "fleet.yaml").unwrap());
        AppState {
            hub: Hub::new(config),
            redactor: Arc::new(views::json::Redactor::new().unwrap()),
            ingest: None,
            reload,
        }
    }

    async fn ask(
        app: &Router,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, String) {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let res = app
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    const FLEET: &str = "environments:\n  - name: prod\n";

    #[tokio::test]
    async fn each_view_is_served_with_its_type_and_caching() {
        let app = router(state(FLEET, None), Arc::new(SecurityCell::default()));
        let (status, _, body) = ask(&app, "GET", "/healthz", &[]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));

        let (status, h, body) = ask(&app, "GET", "/metrics", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h[header::CONTENT_TYPE], metrics::TEXT_CONTENT_TYPE);
        assert!(
            body.contains("# TYPE fleet_exporter_build_info gauge"),
            "{body}"
        );
        assert!(!body.contains("# EOF"));
        let accept = [(
            "accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )];
        let (_, h, body) = ask(&app, "GET", "/metrics", &accept).await;
        assert_eq!(h[header::CONTENT_TYPE], metrics::OPENMETRICS_CONTENT_TYPE);
        assert!(body.ends_with("# EOF\n"));

        for page in ["/", "/board"] {
            let (status, h, body) = ask(&app, "GET", page, &[]).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(h[header::CACHE_CONTROL], "no-store");
            assert_eq!(h[header::CONTENT_SECURITY_POLICY], PAGE_CSP);
            assert!(body.contains("prod"), "{page}");
        }
        let (_, _, page) = ask(&app, "GET", "/", &[]).await;
        let (_, _, board) = ask(&app, "GET", "/board", &[]).await;
        assert_ne!(page, board, "the board is the page's table alone");

        let (status, h, body) = ask(&app, "GET", "/api/v1/fleet", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::CONTENT_TYPE], "application/json");
        let fleet: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(fleet["environments"][0]["stack"], "prod");

        let (status, _, body) = ask(&app, "GET", "/api/v1/events", &[]).await;
        assert_eq!(
            (status, body.as_str()),
            (
                StatusCode::NOT_FOUND,
                "no history: it is kept only with a state_dir\n"
            )
        );
        assert_eq!(
            ask(&app, "GET", "/nowhere", &[]).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            ask(&app, "GET", "/-/reload", &[]).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[tokio::test]
    async fn a_reload_is_refused_without_the_lifecycle_flag_and_says_how_it_went() {
        let off = router(state(FLEET, None), Arc::new(SecurityCell::default()));
        let (status, _, body) = ask(&off, "POST", "/-/reload", &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.starts_with("lifecycle APIs are not enabled"), "{body}");

        let answers = Arc::new(std::sync::Mutex::new(vec![
            Err("fleet.yaml:3:5: bad".to_string()),
            Ok("2 environments".to_string()),
        ]));
        let next = answers.clone();
        let hook: ReloadHook = Arc::new(move || next.lock().unwrap().pop().unwrap());
        let on = router(state(FLEET, Some(hook)), Arc::new(SecurityCell::default()));
        let (status, _, body) = ask(&on, "POST", "/-/reload", &[]).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "2 environments\n")
        );
        let (status, _, body) = ask(&on, "PUT", "/-/reload", &[]).await;
        assert_eq!(
            (status, body.as_str()),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed to reload config: fleet.yaml:3:5: bad\n"
            )
        );
        assert!(answers.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn basic_auth_guards_every_view_and_headers_are_added_to_every_answer() {
        let hash = bcrypt::hash("right", 4).unwrap();
        let web = crate::webconfig::WebSecurity::from_text(
            &format!(
                "basic_auth_users:\n  prometheus: '{hash}'\nhttp_server_config:\n  headers:\n    X-Frame-Options: DENY\n"
            ),
            "web.yml",
            std::path::Path::new("."),
        )
        .unwrap();
        let app = router(state(FLEET, None), Arc::new(SecurityCell::new(web)));
        use base64::Engine;
        let basic = |user: &str, password: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        };
        for path in ["/metrics", "/", "/api/v1/fleet", "/nowhere"] {
            let (status, h, body) = ask(&app, "GET", path, &[]).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::UNAUTHORIZED, "unauthorized\n"),
                "{path}"
            );
            assert_eq!(h[header::WWW_AUTHENTICATE], BASIC_CHALLENGE);
            assert_eq!(h["x-frame-options"], "DENY");
            let wrong = basic("prometheus", "wrong");
            let (status, _, _) = ask(&app, "GET", path, &[("authorization", &wrong)]).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        }
        let right = basic("prometheus", "right");
        let (status, h, body) = ask(&app, "GET", "/healthz", &[("authorization", &right)]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
        assert_eq!(h["x-frame-options"], "DENY");
    }

    #[tokio::test]
    async fn a_request_not_answered_within_the_deadline_is_answered_408() {
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    std::future::pending::<()>().await;
                    "never"
                }),
            )
            .route("/fast", get(|| async { "fast" }))
            .layer(axum::middleware::from_fn_with_state(
                std::time::Duration::from_millis(100),
                request_deadline,
            ));
        let (status, _, body) = ask(&app, "GET", "/slow", &[]).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert!(body.starts_with("request not completed within"), "{body}");
        assert_eq!(ask(&app, "GET", "/fast", &[]).await.2, "fast");
    }

    #[tokio::test]
    async fn serve_answers_on_the_listener_until_shut_down_and_a_taken_port_is_named() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let taken = bind(addr).await.unwrap_err().to_string();
        assert!(
            taken.starts_with(&format!("cannot listen on {addr}: ")),
            "{taken}"
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            state(FLEET, None),
            Arc::new(SecurityCell::default()),
            async {
                let _ = stopped.await;
            },
        ));
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\nok\n"), "{answer}");
        stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .expect("serve returns once shut down")
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn with_every_place_taken_a_new_connection_takes_the_oldest_idle_ones() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(
            listener,
            state(&format!("web:\n  max_connections: 2\n{FLEET}"), None),
            Arc::new(SecurityCell::default()),
            std::future::pending(),
        ));
        let mut idle = Vec::new();
        for _ in 0..2 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            tcp.read_to_string(&mut answer),
        )
        .await
        .expect("answered")
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        // The oldest idle connection was closed for it.
        let mut buf = [0u8; 1];
        let oldest =
            tokio::time::timeout(std::time::Duration::from_secs(5), idle[0].read(&mut buf))
                .await
                .expect("the oldest idle connection is closed");
        assert!(matches!(oldest, Ok(0) | Err(_)));
        server.abort();
    }

    #[test]
    fn a_panic_without_a_text_message_is_named_so() {
        assert_eq!(panic_message(&String::from("owned")), "owned");
        assert_eq!(panic_message(&"static"), "static");
        assert_eq!(panic_message(&42u8), "a panic without a message");
    }
}
