//! Starting and stopping the exporter: sources, scheduler and HTTP server
//! wired together. `serve` and `demo` both run through here.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::hub::Hub;
use crate::scheduler::{Planned, Scheduler};
use crate::server::{self, AppState};
use crate::sources::{self, Source, SourceError};
use crate::webconfig::{SecurityCell, WebSecurity};

mod historian;
pub mod observe;
mod reload;
pub use reload::{Loader, Reloader};

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // Transparent: `{:#}` in main prints the cause chain, and "{0}" plus
    // the source would print every message twice.
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Ingest(#[from] crate::ingest::IngestError),
    #[error("ingest.tokens_file is set but state_dir is not: pushes need a state directory to be stored in")]
    IngestWithoutStateDir,
    #[error(transparent)]
    WebConfig(#[from] crate::config::ConfigError),
    #[error("the public-mode redaction patterns do not compile in this build")]
    Redactor(#[from] regex::Error),
}

/// A running exporter.
pub struct Running {
    pub addr: SocketAddr,
    pub hub: Arc<Hub>,
    /// The TLS and basic-auth settings it started with.
    pub security: WebSecurity,
    /// Re-reads the config files (SIGHUP, `POST /-/reload`).
    pub reloader: Arc<Reloader>,
    /// Prunes the pushes of retired names past `ingest.retention`, and
    /// events past `history.retention`.
    pruner: Option<JoinHandle<()>>,
    /// Records what changed and when (with a store).
    historian: Option<JoinHandle<()>>,
    /// Puts discovered environments in force.
    discoverer: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    /// Completes when the store has closed (with a store).
    store_closed: Option<crate::store::Closed>,
}

/// How to start: where the config came from (for reloads) and whether
/// `POST /-/reload` is served.
#[derive(Clone, Default)]
pub struct Options {
    /// Reads the config again on a reload; `None`: nothing to re-read.
    pub loader: Option<Loader>,
    /// `--web.enable-lifecycle`: serve `POST /-/reload`.
    pub enable_lifecycle: bool,
}

/// Starts the sources and serves on `listener`.
pub async fn start(config: Arc<Config>, listener: TcpListener) -> Result<Running, StartError> {
    start_with(config, listener, Options::default()).await
}

/// The sources to run, each with the fingerprint of its settings.
pub(crate) fn plan(config: &Config, sources: Vec<Arc<dyn Source>>) -> Vec<Planned> {
    sources
        .into_iter()
        .map(|source| Planned {
            fingerprint: config.sources.fingerprint(source.name()),
            source,
        })
        .collect()
}

/// As `start`, with reloads.
pub async fn start_with(
    config: Arc<Config>,
    listener: TcpListener,
    options: Options,
) -> Result<Running, StartError> {
    let addr = listener.local_addr()?;
    // The web config first: a bad certificate or hash stops start-up before
    // anything else is running.
    let security = match &config.web.config_file {
        Some(path) => WebSecurity::load(path)?,
        None => WebSecurity::default(),
    };
    // Built here, not on first use: a failure stops start-up, not a request.
    let redactor = Arc::new(crate::views::json::Redactor::new()?);
    let hub = Hub::new(config.clone());
    // The store first: a store that cannot open stops start-up before any
    // source task is running.
    let ingest = match &config.state_dir {
        Some(dir) => {
            let pulse_hub = hub.clone();
            let publish = Box::new(move |p| pulse_hub.publish_pulse(p));
            Some(Arc::new(crate::ingest::Ingest::start(
                &config, dir, publish,
            )?))
        }
        None if config.ingest.tokens_file.is_some() => {
            return Err(StartError::IngestWithoutStateDir)
        }
        None => None,
    };
    let store_closed = ingest.as_ref().map(|i| i.store().closed());
    let sources = sources::from_config(config.clone())?;
    // With a store, the sources' state outlives a restart: put back what
    // the previous run kept, and keep each run's outcome.
    let (restored, keeper) = match &ingest {
        Some(ingest) => {
            let keeping = ingest.clone();
            let keeper: crate::scheduler::Keeper =
                Arc::new(move |record, facts| keeping.store().keep_source(record, facts));
            (ingest.store().restored_sources().to_vec(), Some(keeper))
        }
        None => (Vec::new(), None),
    };
    let pruner = ingest.as_ref().map(|ingest| {
        let (ingest, hub) = (ingest.clone(), hub.clone());
        tokio::spawn(async move {
            loop {
                let config = hub.config();
                if let Err(e) = ingest.prune(&config).await {
                    tracing::warn!(error = %e, "pruning retired names failed; tried again later");
                }
                let cutoff = crate::snapshot::now_unix() - config.history.retention.0.as_secs_f64();
                match ingest.store().prune_events(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(events = n, "pruned history events past history.retention")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning history failed; tried again later")
                    }
                }
                // A few times per retention period, at least once an hour.
                let every = (config.ingest.retention.0 / 4).clamp(
                    std::time::Duration::from_secs(1),
                    std::time::Duration::from_secs(3600),
                );
                tokio::time::sleep(every).await;
            }
        })
    });
    let historian = match ingest.as_ref().filter(|_| config.history.enabled) {
        Some(ingest) => Some(historian::start(hub.clone(), ingest.clone()).await),
        None => None,
    };
    let planned = plan(&config, sources);
    let scheduler = Scheduler::start(hub.clone(), planned, &restored, keeper);
    let cell = Arc::new(SecurityCell::new(security.clone()));
    let reloader = Arc::new(Reloader::new(
        hub.clone(),
        ingest.clone(),
        scheduler,
        cell.clone(),
        options.loader,
    ));
    // Acts on what discovery finds, after each good run of any source.
    let discoverer = {
        let (hub, reloader) = (hub.clone(), reloader.clone());
        let mut runs = hub.good_runs();
        tokio::spawn(async move {
            let mut last = None;
            while runs.changed().await.is_ok() {
                let found = hub.facts_of::<sources::discovery::DiscoveryFacts>();
                if found.is_some() && found != last {
                    if let Some(f) = &found {
                        let r = reloader.clone();
                        let f = f.clone();
                        // A reload reads files and builds clients: off the async threads.
                        let _ = tokio::task::spawn_blocking(move || r.rediscover(&f)).await;
                    }
                    last = found;
                }
            }
        })
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let state = AppState {
        hub: hub.clone(),
        redactor,
        ingest,
        reload: options.enable_lifecycle.then(|| {
            let r = reloader.clone();
            Arc::new(move || r.reload()) as server::ReloadHook
        }),
    };
    let server = tokio::spawn(server::serve(listener, state, cell, async {
        let _ = stopped.await;
    }));
    tracing::info!(
        %addr,
        environments = config.environments.len(),
        tls = security.tls.is_some(),
        basic_auth = security.basic_auth.is_some(),
        "fleetpulse serving"
    );
    Ok(Running {
        addr,
        hub,
        security,
        reloader,
        pruner,
        historian,
        discoverer,
        stop: Some(stop),
        server,
        store_closed,
    })
}

impl Running {
    /// `http://ADDR` or `https://ADDR`.
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.security.scheme(), self.addr)
    }

    /// Stops the sources, lets open requests finish, waits for the server,
    /// then for the store to close: when this returns, every acknowledged
    /// push is committed and the database file is let go (or 10 s passed,
    /// which is logged).
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.reloader.stop_sources();
        self.discoverer.abort();
        if let Some(p) = &self.pruner {
            p.abort();
        }
        if let Some(h) = &self.historian {
            h.abort();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Only `Drop` aborts the server task, so an error here is a panic.
        let served = match (&mut self.server).await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
        // The tasks let go of the store once they are cancelled; this
        // `Running` (its reloader) at the end of this scope.
        let _ = (&mut self.discoverer).await;
        for task in [self.pruner.as_mut(), self.historian.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
        let closed = self.store_closed.take();
        drop(self);
        if let Some(closed) = closed {
            let wait = std::time::Duration::from_secs(10);
            if tokio::time::timeout(wait, closed.wait()).await.is_err() {
                tracing::warn!("the store was still in use 10 s after shutdown began");
            }
        }
        served
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.reloader.stop_sources();
        self.discoverer.abort();
        if let Some(p) = &self.pruner {
            p.abort();
        }
        if let Some(h) = &self.historian {
            h.abort();
        }
        self.server.abort();
    }
}

/// Completes on each SIGHUP (never, where there are no signals).
pub struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangups {
    pub fn new() -> Hangups {
        #[cfg(unix)]
        {
            Hangups(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok())
        }
        #[cfg(not(unix))]
        Hangups()
    }

    /// The next SIGHUP.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.0 {
            s.recv().await;
            return;
        }
        std::future::pending::<()>().await
    }
}

impl Default for Hangups {
    fn default() -> Self {
        Hangups::new()
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
