//! Reloading the config without a restart (SIGHUP, `POST /-/reload`), as
//! Prometheus and its exporters do.
//!
//! Every file is read and checked before anything changes: the fleet
//! config, the tokens file, the web config file, and every source built
//! from them. Any problem refuses the reload whole: the previous config
//! keeps serving, the log says why, `fleet_config_last_reload_successful`
//! is 0. Otherwise the new config is put in force at once: what it no
//! longer lists leaves every view at the next snapshot, the ingest rules
//! (tokens, inventory, limits) and the web security are replaced for the
//! next request, and the sources are rebuilt — a source whose settings did
//! not change keeps its facts and its schedule. Pushes are served
//! throughout; none waits on a reload.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::hub::Hub;
use crate::ingest::{Ingest, Rules};
use crate::scheduler::Scheduler;
use crate::sources::{self, Watched};
use crate::webconfig::{SecurityCell, WebSecurity};

/// Reads the config file again, with the command line's overrides laid
/// over it as at start-up.
#[derive(Clone)]
pub struct Loader {
    pub path: PathBuf,
    pub adjust: Arc<dyn Fn(&mut Config) + Send + Sync>,
}

impl Loader {
    /// The file at `path` as is.
    pub fn file(path: PathBuf) -> Loader {
        Loader {
            path,
            adjust: Arc::new(|_| {}),
        }
    }

    /// Reads and checks the file, then applies the overrides.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let mut c = Config::load(&self.path)?;
        (self.adjust)(&mut c);
        Ok(c)
    }
}

/// Puts a re-read config in force.
pub struct Reloader {
    hub: Arc<Hub>,
    ingest: Option<Arc<Ingest>>,
    scheduler: Mutex<Scheduler>,
    security: Arc<SecurityCell>,
    loader: Option<Loader>,
    /// One reload at a time.
    reloading: Mutex<()>,
}

impl Reloader {
    pub(super) fn new(
        hub: Arc<Hub>,
        ingest: Option<Arc<Ingest>>,
        scheduler: Scheduler,
        security: Arc<SecurityCell>,
        loader: Option<Loader>,
    ) -> Reloader {
        Reloader {
            hub,
            ingest,
            scheduler: Mutex::new(scheduler),
            security,
            loader,
            reloading: Mutex::new(()),
        }
    }

    /// Re-reads every file and puts them in force, or refuses them all.
    /// `Ok` says what is now in force; `Err` why nothing changed.
    pub fn reload(&self) -> Result<String, String> {
        let _one = lock(&self.reloading);
        let result = self.try_reload();
        self.hub.record_reload(result.is_ok());
        match &result {
            Ok(summary) => tracing::info!(%summary, "config reloaded"),
            Err(why) => tracing::error!(
                error = %why,
                "config reload refused; the previous config keeps serving"
            ),
        }
        result
    }

    fn try_reload(&self) -> Result<String, String> {
        let Some(loader) = &self.loader else {
            return Err("this exporter was not started from a config file".to_string());
        };
        let mut new = loader.load().map_err(|e| e.to_string())?;
        let old = self.hub.config();
        // What only a restart changes: the listener and the store stay.
        if new.listen != old.listen {
            tracing::warn!(running = %old.listen, file = %new.listen, "listen changes at the next restart");
            new.listen = old.listen;
        }
        if new.state_dir != old.state_dir {
            tracing::warn!("state_dir changes at the next restart");
            new.state_dir.clone_from(&old.state_dir);
        }
        let rules = match &self.ingest {
            Some(_) => Some(Rules::from_config(&new).map_err(|e| e.to_string())?),
            None => None,
        };
        let running = self.security.get();
        let security = match &new.web.config_file {
            Some(path) => WebSecurity::load(path).map_err(|e| e.to_string())?,
            None => WebSecurity::default(),
        };
        if security.tls.is_some() != running.tls.is_some() {
            return Err(format!(
                "the web config would switch TLS {}: that needs a restart",
                if security.tls.is_some() { "on" } else { "off" }
            ));
        }
        let new = Arc::new(new);
        let built =
            sources::from_config(new.clone() as Arc<dyn Watched>).map_err(|e| e.to_string())?;
        // Every file read and every source built: put them in force.
        let planned = super::plan(&new, built);
        let names: Vec<&'static str> = planned.iter().map(|p| p.source.name()).collect();
        self.hub.replace_config(new.clone(), &names);
        if let (Some(ingest), Some(rules)) = (&self.ingest, rules) {
            ingest.replace_rules(rules);
        }
        self.security.replace(security);
        lock(&self.scheduler).replace(planned);
        let services: usize = new.environments.iter().map(|e| e.services.len()).sum();
        Ok(format!(
            "{} environments, {} services, sources: {}",
            new.environments.len(),
            services,
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        ))
    }

    /// Stops every source task.
    pub fn stop_sources(&self) {
        lock(&self.scheduler).stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
