//! The aws source's part of the board: an environment's EC2 instances and
//! Elastic IPs.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::AwsFacts;
use crate::board::html::block;
use crate::board::{words, Redactor};
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};

/// An EC2 instance carrying the environment's tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// `null` in public mode.
    pub instance_id: Option<String>,
    /// EC2's state name; `null` for one this build does not know.
    pub state: Option<String>,
    pub instance_type: String,
    pub availability_zone: String,
    pub launch_time: Option<f64>,
    /// Seconds since launch, at `read_at`.
    pub uptime_seconds: Option<f64>,
    /// `null` in public mode.
    pub public_ip: Option<String>,
}

/// An Elastic IP carrying the environment's tag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElasticIp {
    /// `null` in public mode.
    pub public_ip: Option<String>,
    /// `null` in public mode.
    pub allocation_id: Option<String>,
    pub associated: bool,
    /// `null` in public mode.
    pub instance_id: Option<String>,
}

/// The instances of `stack`, as of `now`.
pub fn instances(aws: Option<&AwsFacts>, stack: &str, now: f64) -> Vec<Instance> {
    let Some(aws) = aws else {
        return Vec::new();
    };
    aws.instances
        .iter()
        .filter(|i| i.stack == stack)
        .map(|i| Instance {
            instance_id: Some(i.instance_id.clone()),
            state: i.state.map(|st| st.as_str().to_string()),
            instance_type: i.instance_type.clone(),
            availability_zone: i.availability_zone.clone(),
            launch_time: i.launch_time,
            uptime_seconds: i.launch_time.map(|t| (now - t).max(0.0)),
            public_ip: i.public_ip.clone(),
        })
        .collect()
}

/// The Elastic IPs of `stack`.
pub fn elastic_ips(aws: Option<&AwsFacts>, stack: &str) -> Vec<ElasticIp> {
    let Some(aws) = aws else {
        return Vec::new();
    };
    aws.eips_of(stack)
        .map(|a| ElasticIp {
            public_ip: Some(a.public_ip.clone()),
            allocation_id: Some(a.allocation_id.clone()),
            associated: a.associated,
            instance_id: a.instance_id.clone(),
        })
        .collect()
}

impl Instance {
    /// Public mode: no instance id, no address.
    pub fn redact(&mut self, _r: &Redactor) {
        self.instance_id = None;
        self.public_ip = None;
    }
}

impl ElasticIp {
    /// Public mode: no address, no allocation or instance id.
    pub fn redact(&mut self, _r: &Redactor) {
        self.public_ip = None;
        self.allocation_id = None;
        self.instance_id = None;
    }
}

/// The instances and Elastic IPs blocks of an environment's card.
pub fn page(instances: &[Instance], elastic_ips: &[ElasticIp]) -> Markup {
    let instances: Vec<Markup> = instances
        .iter()
        .map(|i| {
            html! {
                li {
                    @if let Some(id) = &i.instance_id { code { (id) } " " }
                    (i.instance_type) " " (i.state.as_deref().unwrap_or("state unknown"))
                    @if let Some(u) = i.uptime_seconds { ", launched " (words::duration_words(u)) " ago" }
                }
            }
        })
        .collect();
    let eips: Vec<Markup> = elastic_ips
        .iter()
        .map(|a| {
            html! {
                li {
                    @if let Some(ip) = &a.public_ip { code { (ip) } " " }
                    @if a.associated { "associated" } @else { "not associated" }
                }
            }
        })
        .collect();
    html! {
        (block("Instances", &instances))
        (block("Elastic IPs", &eips))
    }
}

/// This source's part of an environment: its EC2 instances and Elastic IPs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub instances: Vec<Instance>,
    pub elastic_ips: Vec<ElasticIp>,
}

impl BoardPart for Part {
    fn build(facts: &Facts, env: &Environment, now: f64) -> Self {
        let stack = env.name.as_str();
        Part {
            instances: instances(facts.get(), stack, now),
            elastic_ips: elastic_ips(facts.get(), stack),
        }
    }
    fn redact(&mut self, r: &Redactor) {
        self.instances.iter_mut().for_each(|i| i.redact(r));
        self.elastic_ips.iter_mut().for_each(|a| a.redact(r));
    }
    fn page(&self) -> Option<Markup> {
        Some(page(&self.instances, &self.elastic_ips))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::aws::{self, InstanceState};

    const NOW: f64 = 1_750_000_000.0;

    fn env() -> Environment {
        crate::testing::environment("prod", "")
    }

    fn instance(
        stack: &str,
        id: &str,
        state: Option<InstanceState>,
        launch: Option<f64>,
    ) -> aws::Instance {
        aws::Instance {
            stack: stack.into(),
            instance_id: id.into(),
            state,
            instance_type: "t3.small".into(),
            availability_zone: "eu-west-1a".into(),
            launch_time: launch,
            public_ip: Some("198.51.100.7".into()),
        }
    }

    fn eip(stack: &str, ip: &str, instance: Option<&str>) -> aws::ElasticIp {
        aws::ElasticIp {
            stack: stack.into(),
            public_ip: ip.into(),
            allocation_id: "eipalloc-0123456789abcdef0".into(),
            associated: instance.is_some(),
            instance_id: instance.map(String::from),
        }
    }

    fn facts() -> Facts {
        Facts::default().with(
            "aws",
            AwsFacts {
                instances: vec![
                    instance(
                        "prod",
                        "i-0aaa",
                        Some(InstanceState::Running),
                        Some(NOW - 7200.0),
                    ),
                    instance("staging", "i-0bbb", Some(InstanceState::Running), None),
                    instance("prod", "i-0ccc", None, Some(NOW + 30.0)),
                    instance("prod", "i-0ddd", Some(InstanceState::Stopped), None),
                ],
                addresses: vec![
                    eip("prod", "198.51.100.7", Some("i-0aaa")),
                    eip("staging", "198.51.100.8", None),
                    eip("prod", "198.51.100.9", None),
                ],
            },
        )
    }

    #[test]
    fn an_environment_shows_its_own_instances_and_addresses() {
        let part = Part::build(&facts(), &env(), NOW);
        let ids: Vec<_> = part
            .instances
            .iter()
            .map(|i| i.instance_id.as_deref())
            .collect();
        assert_eq!(ids, [Some("i-0aaa"), Some("i-0ccc"), Some("i-0ddd")]);
        let i = &part.instances[0];
        assert_eq!(
            (i.state.as_deref(), i.launch_time, i.uptime_seconds),
            (Some("running"), Some(NOW - 7200.0), Some(7200.0))
        );
        assert_eq!(
            (i.instance_type.as_str(), i.availability_zone.as_str()),
            ("t3.small", "eu-west-1a")
        );
        assert_eq!(i.public_ip.as_deref(), Some("198.51.100.7"));
        // Launched "after" now by a clock's skew: zero, not negative.
        assert_eq!(part.instances[1].uptime_seconds, Some(0.0));
        assert_eq!(part.instances[2].uptime_seconds, None);
        let ips: Vec<_> = part
            .elastic_ips
            .iter()
            .map(|a| {
                (
                    a.public_ip.as_deref(),
                    a.associated,
                    a.instance_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            ips,
            [
                (Some("198.51.100.7"), true, Some("i-0aaa")),
                (Some("198.51.100.9"), false, None)
            ]
        );
        assert_eq!(
            part.elastic_ips[0].allocation_id.as_deref(),
            Some("eipalloc-0123456789abcdef0")
        );
        assert_eq!(
            part.page().unwrap().into_string(),
            "<div><b>Instances</b><ul>\
             <li><code>i-0aaa</code> t3.small running, launched 2 hours ago</li>\
             <li><code>i-0ccc</code> t3.small state unknown, launched 0 seconds ago</li>\
             <li><code>i-0ddd</code> t3.small stopped</li></ul></div>\
             <div><b>Elastic IPs</b><ul>\
             <li><code>198.51.100.7</code> associated</li>\
             <li><code>198.51.100.9</code> not associated</li></ul></div>"
        );
        assert_eq!(instances(None, "prod", NOW), []);
        assert_eq!(elastic_ips(None, "prod"), []);
    }

    #[test]
    fn public_mode_shows_no_id_or_address() {
        let mut part = Part::build(&facts(), &env(), NOW);
        part.redact(&Redactor::new().unwrap());
        assert!(part
            .instances
            .iter()
            .all(|i| i.instance_id.is_none() && i.public_ip.is_none()));
        assert!(part.elastic_ips.iter().all(|a| a.public_ip.is_none()
            && a.allocation_id.is_none()
            && a.instance_id.is_none()));
        let html = part.page().unwrap().into_string();
        assert!(!html.contains("<code>"), "{html}");
        assert!(
            html.contains("<li>t3.small running, launched 2 hours ago</li>"),
            "{html}"
        );
        assert!(html.contains("<li>associated</li>"), "{html}");
    }
}
