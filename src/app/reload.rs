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
use crate::inventory::Discovered;
use crate::scheduler::Scheduler;
use crate::sources::discovery::DiscoveryFacts;
use crate::sources::{self, Watched};
use crate::webconfig::{SecurityCell, WebSecurity};

/// Reads the config file again, with the command line's overrides laid
/// over it as at start-up.
#[derive(Clone)]
pub struct Loader {
    pub path: PathBuf,
    pub adjust: Arc<dyn Fn(&mut Config) + Send + Sync>,
    /// The environments discovery found, added to the file's.
    pub discovered: Arc<Mutex<Vec<Discovered>>>,
}

impl Loader {
    /// The file at `path` as is.
    pub fn file(path: PathBuf) -> Loader {
        Loader::new(path, Arc::new(|_| {}))
    }

    /// The file at `path`, with `adjust` laid over it.
    pub fn new(path: PathBuf, adjust: Arc<dyn Fn(&mut Config) + Send + Sync>) -> Loader {
        Loader {
            path,
            adjust,
            discovered: Arc::default(),
        }
    }

    /// Reads and checks the file with the discovered environments, then
    /// applies the overrides.
    pub fn load(&self) -> Result<Config, crate::config::ConfigError> {
        let found = lock(&self.discovered).clone();
        self.load_with(&found)
    }

    fn load_with(&self, found: &[Discovered]) -> Result<Config, crate::config::ConfigError> {
        let mut c = Config::load_with(&self.path, found)?;
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
    /// Discovered names already refused and logged (each is logged once).
    refused: Mutex<std::collections::BTreeSet<String>>,
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
            refused: Mutex::default(),
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

    /// Puts in force what a run of the discovery source found, when it
    /// differs from what is in force: a reload with the new set. A found
    /// environment that cannot be one (a name that is not a valid name or
    /// is taken, a template that does not expand for it) is refused alone,
    /// logged once and counted; nothing else changes for it.
    pub fn rediscover(&self, facts: &DiscoveryFacts) {
        let Some(loader) = &self.loader else {
            return;
        };
        let written: Vec<String> = match loader.load_with(&[]) {
            Ok(c) => c.environments.iter().map(|e| e.name.0.clone()).collect(),
            // The file itself is bad now: leave everything as it is.
            Err(e) => {
                tracing::warn!(error = %e, "discovery: the config file does not load; nothing changes");
                return;
            }
        };
        let mut accepted: Vec<Discovered> = Vec::new();
        let mut refusals: Vec<(String, String)> = facts
            .unusable
            .iter()
            .map(|u| (u.clone(), u.clone()))
            .collect();
        for d in &facts.environments {
            let why = if !crate::values::Name::is_valid(&d.name) {
                Some(format!("{:?} is not a valid environment name", d.name))
            } else if written.contains(&d.name) || accepted.iter().any(|a| a.name == d.name) {
                Some(format!("environment {:?} already exists", d.name))
            } else {
                loader
                    .load_with(std::slice::from_ref(d))
                    .err()
                    .map(|e| e.to_string())
            };
            match why {
                None => accepted.push(d.clone()),
                Some(why) => refusals.push((d.name.clone(), why)),
            }
        }
        {
            let mut logged = lock(&self.refused);
            for (name, why) in refusals {
                if logged.insert(name.clone()) {
                    tracing::warn!(environment = %name, origin = %why, "discovered environment refused");
                    self.hub.count_discovery_refused();
                }
            }
        }
        if *lock(&loader.discovered) == accepted {
            return;
        }
        let names: Vec<&str> = accepted.iter().map(|d| d.name.as_str()).collect();
        tracing::info!(environments = ?names, "discovery: the environments found changed");
        let before = std::mem::replace(&mut *lock(&loader.discovered), accepted);
        if self.reload().is_err() {
            // Not in force: the next run tries again.
            *lock(&loader.discovered) = before;
        }
    }

    /// Stops every source task.
    pub fn stop_sources(&self) {
        lock(&self.scheduler).stop();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
