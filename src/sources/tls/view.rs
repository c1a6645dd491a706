//! The tls source's part of the board: each TLS endpoint's last handshake
//! and how long its certificates have left.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::TlsFacts;
use crate::board::html::{block, state};
use crate::board::{Redactor, State};
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};
use crate::thresholds::CERT_WARN_DAYS;

/// A TLS endpoint's last handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsEndpoint {
    pub service: String,
    /// `host:port`; `null` in public mode when the host is an IP address.
    pub host: Option<String>,
    pub state: State,
    /// `null` until the first handshake.
    pub up: Option<bool>,
    pub leaf_not_after: Option<i64>,
    pub chain_earliest_not_after: Option<i64>,
    /// Whole days until the earlier of the two not-afters (negative: expired).
    pub days_left: Option<i64>,
    pub chain_valid: Option<bool>,
    pub error: Option<String>,
}

/// Every TLS endpoint of `env`, in inventory order, as of `now`.
pub fn endpoints(handshakes: Option<&TlsFacts>, env: &Environment, now: f64) -> Vec<TlsEndpoint> {
    let handshakes = handshakes.map(Vec::as_slice).unwrap_or(&[]);
    let stack = env.name.as_str();
    env.services
        .iter()
        .filter_map(|svc| {
            let hp = svc.tls.as_ref()?;
            let host = format!("{}:{}", hp.host, hp.port);
            let probe = handshakes
                .iter()
                .find(|t| t.stack == stack && t.service == svc.name.as_str());
            Some(match probe {
                Some(t) => {
                    let earliest = match (t.leaf_not_after, t.chain_earliest_not_after) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let days_left =
                        earliest.map(|na| ((na as f64 - now) / 86_400.0).floor() as i64);
                    let state = match days_left {
                        _ if !t.up => State::Red,
                        Some(d) if d < 0 => State::Red,
                        Some(d) if d < CERT_WARN_DAYS => State::Degraded,
                        _ if !t.chain_valid => State::Degraded,
                        _ => State::Green,
                    };
                    TlsEndpoint {
                        service: svc.name.0.clone(),
                        host: Some(host),
                        state,
                        up: Some(t.up),
                        leaf_not_after: t.leaf_not_after,
                        chain_earliest_not_after: t.chain_earliest_not_after,
                        days_left,
                        chain_valid: Some(t.chain_valid),
                        error: t.error.clone(),
                    }
                }
                None => TlsEndpoint {
                    service: svc.name.0.clone(),
                    host: Some(host),
                    state: State::Unknown,
                    up: None,
                    leaf_not_after: None,
                    chain_earliest_not_after: None,
                    days_left: None,
                    chain_valid: None,
                    error: None,
                },
            })
        })
        .collect()
}

impl TlsEndpoint {
    /// Public mode: an address as host goes, internal values leave the error.
    pub fn redact(&mut self, r: &Redactor) {
        if self
            .host
            .as_deref()
            .is_some_and(|h| r.scrub(h) != h || h.parse::<std::net::SocketAddr>().is_ok())
        {
            self.host = None;
        }
        r.scrub_opt(&mut self.error);
    }

    /// The certificate in words: "12 days left", "handshake failed: …".
    pub fn words(&self) -> String {
        match (self.up, self.days_left) {
            (None, _) => "no handshake yet".to_string(),
            (Some(false), _) => format!(
                "handshake failed{}",
                self.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            (Some(true), Some(d)) if d < 0 => "expired".to_string(),
            (Some(true), Some(d)) => format!(
                "{d} days left{}",
                if self.chain_valid == Some(false) {
                    ", chain does not verify"
                } else {
                    ""
                }
            ),
            (Some(true), None) => "no expiry read".to_string(),
        }
    }

    /// The terminal's CERT column: the days left, or that the handshake
    /// failed, with the state to colour it by.
    pub fn cell(&self) -> (String, Option<State>) {
        match (self.up, self.days_left) {
            (Some(false), _) => ("handshake failed".to_string(), Some(self.state)),
            (Some(true), Some(d)) => (format!("{d} days"), Some(self.state)),
            _ => ("-".to_string(), None),
        }
    }
}

/// The certificates block of an environment's card.
pub fn page(endpoints: &[TlsEndpoint]) -> Markup {
    let items: Vec<Markup> = endpoints
        .iter()
        .map(|t| html! { li { (t.service) " " (state(t.state)) " — " (t.words()) } })
        .collect();
    block("Certificates", &items)
}

/// This source's part of an environment: its TLS endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub tls: Vec<TlsEndpoint>,
}

impl BoardPart for Part {
    fn build(facts: &Facts, env: &Environment, now: f64) -> Self {
        Part {
            tls: endpoints(facts.get(), env, now),
        }
    }
    fn state(&self) -> Option<State> {
        self.tls.iter().map(|t| t.state).max()
    }
    fn redact(&mut self, r: &Redactor) {
        self.tls.iter_mut().for_each(|t| t.redact(r));
    }
    fn page(&self) -> Option<Markup> {
        Some(page(&self.tls))
    }
}
