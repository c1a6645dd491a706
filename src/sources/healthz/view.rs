//! The healthz source's part of the board: each service's last /healthz
//! answer, as the fleet JSON, the page and the terminal show it.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::HealthzFacts;
use crate::board::html::state;
use crate::board::{words, Redactor, State};
use crate::health::Health;
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};

/// A service's last /healthz answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub state: State,
    pub status_code: Option<u16>,
    pub latency_seconds: Option<f64>,
    pub commit: Option<String>,
    /// Why it is not green (or why it is unknown), in words.
    pub reason: Option<String>,
}

/// The board state of a health.
pub fn state_of(h: Health) -> State {
    match h {
        Health::Green => State::Green,
        Health::Degraded => State::Degraded,
        Health::Red => State::Red,
    }
}

/// Every service of `env`, in inventory order, with its last reading.
pub fn services(probes: Option<&HealthzFacts>, env: &Environment) -> Vec<Service> {
    let probes = probes.map(Vec::as_slice).unwrap_or(&[]);
    let stack = env.name.as_str();
    env.services
        .iter()
        .map(|svc| {
            let probe = probes
                .iter()
                .find(|p| p.stack == stack && p.service == svc.name.as_str());
            match probe {
                Some(p) => Service {
                    name: svc.name.0.clone(),
                    state: state_of(p.health),
                    status_code: p.status_code,
                    latency_seconds: Some(p.duration_seconds),
                    commit: p.commit.clone(),
                    reason: p.reason.clone(),
                },
                None => Service {
                    name: svc.name.0.clone(),
                    state: State::Unknown,
                    status_code: None,
                    latency_seconds: None,
                    commit: None,
                    reason: Some(
                        if svc.healthz.is_some() {
                            "no /healthz reading yet"
                        } else {
                            "no /healthz URL configured"
                        }
                        .to_string(),
                    ),
                },
            }
        })
        .collect()
}

impl Service {
    /// Public mode: internal values leave the reason.
    pub fn redact(&mut self, r: &Redactor) {
        r.scrub_opt(&mut self.reason);
    }

    /// The answer in words: "HTTP 503 in 12 ms · reason", or, when no
    /// HTTP answer came, what happened instead: "connection refused (after
    /// 2 ms)", "certificate has expired (after 15 ms)".
    pub fn detail(&self) -> String {
        match (self.status_code, self.latency_seconds, &self.reason) {
            (Some(c), Some(l), None) => format!("HTTP {c} in {}", words::milliseconds(l)),
            (Some(c), Some(l), Some(r)) => {
                format!("HTTP {c} in {} · {r}", words::milliseconds(l))
            }
            // A timeout says its own length.
            (None, Some(_), Some(r)) if r.starts_with("timed out") => r.clone(),
            (None, Some(l), Some(r)) => format!("{r} (after {})", words::milliseconds(l)),
            (_, _, Some(r)) => r.clone(),
            _ => String::new(),
        }
    }
}

/// The services as the page's tiles.
pub fn page(services: &[Service]) -> Markup {
    html! {
        div class="svcs" {
            @if services.is_empty() {
                span class="meta" { "No services listed." }
            }
            @for s in services {
                div class="svc" data-service=(s.name) {
                    b { (s.name) }
                    (state(s.state))
                    div class="meta" {
                        (s.detail())
                        @if let Some(c) = &s.commit { " · " code { (c) } }
                    }
                }
            }
        }
    }
}

/// This source's part of an environment: each service's last /healthz answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub services: Vec<Service>,
}

impl BoardPart for Part {
    const WIDE: bool = true;
    fn build(facts: &Facts, env: &Environment, _now: f64) -> Self {
        Part {
            services: services(facts.get(), env),
        }
    }
    fn state(&self) -> Option<State> {
        self.services.iter().map(|s| s.state).max()
    }
    fn redact(&mut self, r: &Redactor) {
        self.services.iter_mut().for_each(|s| s.redact(r));
    }
    fn page(&self) -> Option<Markup> {
        Some(page(&self.services))
    }
}
