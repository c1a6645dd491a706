//! The dns source's part of the board: the A records of an environment's
//! listed names.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::DnsFacts;
use crate::board::html::block;
use crate::board::Redactor;
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};

/// The A record of a listed DNS name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsName {
    pub name: String,
    /// `null` in public mode.
    pub addresses: Option<Vec<String>>,
    pub alias: Option<String>,
}

/// The records of `stack`'s names.
pub fn names(dns: Option<&DnsFacts>, stack: &str) -> Vec<DnsName> {
    let Some(dns) = dns else {
        return Vec::new();
    };
    dns.of(stack)
        .map(|r| DnsName {
            name: r.name.clone(),
            addresses: Some(r.addresses.clone()),
            alias: r.alias.clone(),
        })
        .collect()
}

impl DnsName {
    /// Public mode: no addresses.
    pub fn redact(&mut self, _r: &Redactor) {
        self.addresses = None;
    }
}

/// The DNS block of an environment's card.
pub fn page(names: &[DnsName]) -> Markup {
    let items: Vec<Markup> = names
        .iter()
        .map(|d| {
            html! {
                li {
                    (d.name) " — "
                    @match (&d.addresses, &d.alias) {
                        (_, Some(alias)) => { "alias of " (alias) }
                        (Some(a), None) if a.is_empty() => "no A record",
                        (Some(a), None) => (a.join(", ")),
                        (None, None) => "has an A record",
                    }
                }
            }
        })
        .collect();
    block("DNS", &items)
}

/// This source's part of an environment: its DNS names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub dns: Vec<DnsName>,
}

impl BoardPart for Part {
    fn build(facts: &Facts, env: &Environment, _now: f64) -> Self {
        Part {
            dns: names(facts.get(), env.name.as_str()),
        }
    }
    fn redact(&mut self, r: &Redactor) {
        self.dns.iter_mut().for_each(|d| d.redact(r));
    }
    fn page(&self) -> Option<Markup> {
        Some(page(&self.dns))
    }
}
