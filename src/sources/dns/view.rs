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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::dns::DnsRecord;

    fn record(stack: &str, name: &str, addresses: &[&str], alias: Option<&str>) -> DnsRecord {
        DnsRecord {
            stack: stack.into(),
            name: name.into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            alias: alias.map(String::from),
        }
    }

    fn env() -> Environment {
        crate::testing::environment("prod", "")
    }

    #[test]
    fn an_environment_lists_its_own_names_and_each_reads_as_its_record() {
        let facts = Facts::default().with(
            "dns",
            DnsFacts {
                records: vec![
                    record("prod", "api.example.net", &["192.0.2.1", "192.0.2.2"], None),
                    record("staging", "api.staging.example.net", &["192.0.2.9"], None),
                    record("prod", "www.example.net", &[], Some("lb.example.net")),
                    record("prod", "old.example.net", &[], None),
                ],
            },
        );
        let mut part = Part::build(&facts, &env(), 0.0);
        let listed: Vec<_> = part.dns.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            listed,
            ["api.example.net", "www.example.net", "old.example.net"]
        );
        assert_eq!(
            part.dns[0].addresses.as_deref(),
            Some(&["192.0.2.1".to_string(), "192.0.2.2".to_string()][..])
        );
        let html = part.page().unwrap().into_string();
        assert_eq!(
            html,
            "<div><b>DNS</b><ul><li>api.example.net — 192.0.2.1, 192.0.2.2</li><li>www.example.net — alias of lb.example.net</li><li>old.example.net — no A record</li></ul></div>"
        );
        part.redact(&Redactor::new().unwrap());
        assert!(part.dns.iter().all(|d| d.addresses.is_none()));
        let html = part.page().unwrap().into_string();
        assert!(
            html.contains("<li>api.example.net — has an A record</li>"),
            "{html}"
        );
        assert!(html.contains("alias of lb.example.net"), "{html}");
        assert_eq!(names(None, "prod"), []);
        assert_eq!(page(&[]).into_string(), "");
    }
}
