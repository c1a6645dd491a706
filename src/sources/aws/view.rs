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
