//! The discovery source: environments found in the cloud. Each rule of
//! `sources.discovery` matches a pattern with capture groups against the
//! values of one tag on Elastic IPs (or instances); every match is one
//! environment, named and given variables from the captures, instantiated
//! from a stack template. It shares the aws source's settings, credentials
//! and interval; the exporter puts what it finds in force like a reload.
//!
//! ```yaml
//! sources:
//!   discovery:
//!     - template: broker-stack
//!       from: eip                        # or instance
//!       tag: Name
//!       pattern: '^broker-eip-test-(\d+)$'
//!       name: test-${1}                  # the default is ${1}
//!       vars: { domain: "test-${1}.example.net" }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Source, SourceError, Watched};
use crate::inventory::Discovered;
use crate::values::{substitute, Name, Pattern};

/// The EC2 calls this source makes, as IAM names them.
pub const CALLS: [&str; 2] = ["ec2:DescribeAddresses", "ec2:DescribeInstances"];

/// What a rule looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum From {
    /// Elastic IPs.
    #[default]
    Eip,
    /// Instances that are not terminated.
    Instance,
}

/// One rule: a tag, a pattern over its values, a template to instantiate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The stack template each match instantiates.
    pub template: Name,
    #[serde(default)]
    pub from: From,
    /// The tag key whose values are matched.
    pub tag: String,
    /// A regular expression with at least one capture group.
    pub pattern: Pattern,
    /// The environment's name, from the captures (`${1}`, `${2}`, or a
    /// named group's name).
    #[serde(default = "Rule::default_name")]
    pub name: String,
    /// Variables for the template, from the captures.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
}

impl Rule {
    fn default_name() -> String {
        "${1}".to_string()
    }

    /// The environment one tag value yields, if the pattern matches it.
    /// Its name is not checked here (a bad one is refused where it is put
    /// in force, and counted).
    pub fn environment(&self, value: &str, origin: String) -> Option<Result<Discovered, String>> {
        let caps = self.pattern.0.captures(value)?;
        let mut vars = BTreeMap::new();
        for (i, name) in self.pattern.0.capture_names().enumerate().skip(1) {
            if let Some(m) = caps.get(i) {
                vars.insert(i.to_string(), m.as_str().to_string());
                if let Some(n) = name {
                    vars.insert(n.to_string(), m.as_str().to_string());
                }
            }
        }
        let built = (|| {
            let name = substitute(&self.name, &vars)?;
            let mut all = vars.clone();
            for (k, v) in &self.vars {
                all.insert(k.clone(), substitute(v, &vars)?);
            }
            Ok(Discovered {
                name,
                template: self.template.0.clone(),
                vars: all,
                origin,
            })
        })();
        Some(built.map_err(|e: String| format!("{value:?}: {e}")))
    }
}

/// What one run found: the environments, in rule order (the first of two
/// of the same name wins), and the tag values that matched but could not
/// make one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscoveryFacts {
    pub environments: Vec<Discovered>,
    pub unusable: Vec<String>,
}

impl super::SourceFacts for DiscoveryFacts {}

#[cfg(feature = "aws")]
pub use client::DiscoverySource;

#[cfg(feature = "aws")]
mod client {
    use aws_sdk_ec2::types::Filter;
    use tokio::sync::OnceCell;

    use super::*;
    use crate::sources::aws::{sdk_config, sdk_error, AwsConfig};
    use crate::sources::CollectFuture;
    use crate::values::Schedule;

    /// The discovery source.
    pub struct DiscoverySource {
        rules: Vec<Rule>,
        aws: AwsConfig,
        client: OnceCell<aws_sdk_ec2::Client>,
    }

    impl DiscoverySource {
        /// Builds the source when `sources.discovery` has rules and
        /// `sources.aws` is set.
        pub fn from_config(config: Arc<dyn Watched>) -> Option<Self> {
            let s = config.sources();
            let aws = s.aws.as_ref()?;
            if s.discovery.is_empty() {
                return None;
            }
            Some(DiscoverySource {
                rules: s.discovery.clone(),
                aws: aws.clone(),
                client: OnceCell::new(),
            })
        }

        async fn collect_facts(&self) -> Result<DiscoveryFacts, SourceError> {
            let ec2 = self
                .client
                .get_or_init(|| async { aws_sdk_ec2::Client::new(&sdk_config(&self.aws).await) })
                .await;
            let mut facts = DiscoveryFacts::default();
            for rule in &self.rules {
                let filter = Filter::builder()
                    .name("tag-key")
                    .values(rule.tag.clone())
                    .build();
                // (tag value, what carries it)
                let mut tagged: Vec<(String, String)> = Vec::new();
                let value_of = |tags: &[aws_sdk_ec2::types::Tag]| {
                    tags.iter()
                        .find(|t| t.key() == Some(rule.tag.as_str()))
                        .and_then(|t| t.value())
                        .map(str::to_string)
                };
                match rule.from {
                    From::Eip => {
                        let out = ec2
                            .describe_addresses()
                            .filters(filter)
                            .send()
                            .await
                            .map_err(|e| sdk_error("ec2:DescribeAddresses", &e))?;
                        for a in out.addresses() {
                            if let Some(v) = value_of(a.tags()) {
                                let id = a.allocation_id().unwrap_or_default();
                                tagged.push((
                                    v.clone(),
                                    format!("Elastic IP {id} tagged {}={v}", rule.tag),
                                ));
                            }
                        }
                    }
                    From::Instance => {
                        let mut pages = ec2
                            .describe_instances()
                            .filters(filter)
                            .into_paginator()
                            .send();
                        while let Some(page) = pages.next().await {
                            let page = page.map_err(|e| sdk_error("ec2:DescribeInstances", &e))?;
                            for i in page.reservations().iter().flat_map(|r| r.instances()) {
                                let gone = i
                                    .state()
                                    .and_then(|s| s.name())
                                    .is_some_and(|n| n.as_str() == "terminated");
                                if let (false, Some(v)) = (gone, value_of(i.tags())) {
                                    let id = i.instance_id().unwrap_or_default();
                                    tagged.push((
                                        v.clone(),
                                        format!("instance {id} tagged {}={v}", rule.tag),
                                    ));
                                }
                            }
                        }
                    }
                }
                tagged.sort();
                for (value, origin) in tagged {
                    match rule.environment(&value, origin) {
                        Some(Ok(env)) if !facts.environments.iter().any(|e| e.name == env.name) => {
                            facts.environments.push(env);
                        }
                        Some(Err(why)) => facts.unusable.push(why),
                        _ => {}
                    }
                }
            }
            Ok(facts)
        }
    }

    impl Source for DiscoverySource {
        fn name(&self) -> &'static str {
            "discovery"
        }
        fn schedule(&self) -> Schedule {
            self.aws.schedule()
        }
        fn collect(&self) -> CollectFuture<'_> {
            Box::pin(async move { self.collect_facts().await.map(crate::sources::output) })
        }
    }

    #[cfg(test)]
    mod collect_tests {
        use super::*;
        use crate::testing::body;
        use crate::testing::ec2::{addresses, instance, instances, tags, xml};

        fn source(port: u16, rules: &str) -> DiscoverySource {
            crate::testing::aws_credentials();
            let yaml = format!(
                "sources:\n  aws:\n    region: eu-west-1\n    endpoint_url: http://127.0.0.1:{port}\n    interval: 40s\n  discovery:\n{rules}\
                 templates:\n  slot:\n    services: []\nenvironments:\n  - name: prod\n"
            );
            let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
            DiscoverySource::from_config(Arc::new(config)).unwrap()
        }

        fn eip(alloc: &str, name: Option<&str>) -> String {
            let tag = name.map(|n| tags(&[("Name", n)])).unwrap_or_default();
            format!("<item><publicIp>198.51.100.1</publicIp><allocationId>{alloc}</allocationId><domain>vpc</domain>{tag}</item>")
        }

        fn ec2(request: &str) -> String {
            let body = body(request);
            if body.contains("Action=DescribeAddresses") {
                return xml(
                    200,
                    &addresses(
                        &[
                            eip("eipalloc-3", Some("broker-eip-test-3")),
                            eip("eipalloc-1", Some("broker-eip-test-1")),
                            eip("eipalloc-9", Some("broker-eip-prod")),
                            eip("eipalloc-0", None),
                            eip("eipalloc-x", Some("broker-eip-test-x")),
                        ]
                        .concat(),
                    ),
                );
            }
            if body.contains("NextToken=p2") {
                return xml(
                    200,
                    &instances(&[instance("i-2", "running", ("Slot", "blue"))], None),
                );
            }
            xml(
                200,
                &instances(
                    &[
                        instance("i-1", "pending", ("Slot", "green")),
                        instance("i-3", "terminated", ("Slot", "red")),
                        // The name an Elastic IP gave already: the first wins.
                        instance("i-4", "running", ("Slot", "test-1")),
                    ],
                    Some("p2"),
                ),
            )
        }

        #[tokio::test]
        async fn each_rules_matches_are_environments_and_the_rest_say_why_not() {
            let (port, server, bodies) = crate::testing::recording_server(ec2).await;
            let s = source(
                port,
                "    - { template: slot, tag: Name, pattern: '^broker-eip-test-(\\w+)$', name: 'test-${1}', vars: { n: '${2}' } }\n\
                 \x20   - { template: slot, tag: Name, pattern: '^broker-eip-test-(\\d+)$', name: 'test-${1}' }\n\
                 \x20   - { template: slot, from: instance, tag: Slot, pattern: '^(.+)$' }\n",
            );
            assert_eq!(
                (s.name(), s.schedule().interval.0),
                ("discovery", std::time::Duration::from_secs(40))
            );
            let out = s.collect().await.unwrap();
            server.abort();
            let facts = out.downcast_ref::<DiscoveryFacts>().unwrap();
            let found: Vec<_> = facts
                .environments
                .iter()
                .map(|e| (e.name.as_str(), e.origin.as_str()))
                .collect();
            assert_eq!(
                found,
                [
                    (
                        "test-1",
                        "Elastic IP eipalloc-1 tagged Name=broker-eip-test-1"
                    ),
                    (
                        "test-3",
                        "Elastic IP eipalloc-3 tagged Name=broker-eip-test-3"
                    ),
                    ("blue", "instance i-2 tagged Slot=blue"),
                    ("green", "instance i-1 tagged Slot=green"),
                ]
            );
            assert_eq!(facts.environments[0].template, "slot");
            assert_eq!(facts.environments[0].vars["1"], "1");
            // The first rule's variable ${2} is not in its pattern: every match is unusable.
            assert_eq!(
                facts.unusable,
                [
                    "\"broker-eip-test-1\": undefined variable ${2} (defined: 1)",
                    "\"broker-eip-test-3\": undefined variable ${2} (defined: 1)",
                    "\"broker-eip-test-x\": undefined variable ${2} (defined: 1)",
                ]
            );
            let bodies = bodies.lock().unwrap();
            assert!(
                bodies[0].contains("Filter.1.Name=tag-key&Filter.1.Value.1=Name"),
                "{}",
                bodies[0]
            );
            assert_eq!(
                bodies
                    .iter()
                    .filter(|b| b.contains("DescribeInstances"))
                    .count(),
                2
            );
        }

        #[tokio::test]
        async fn a_refused_call_says_what_to_fix() {
            let (port, server) = crate::testing::http_server(|_| {
                Some(xml(403, "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message></Error></Errors><RequestID>r</RequestID></Response>"))
            })
            .await;
            for (rule, call) in [
                (
                    "    - { template: slot, tag: Name, pattern: '^(.+)$' }\n",
                    "ec2:DescribeAddresses",
                ),
                (
                    "    - { template: slot, from: instance, tag: Name, pattern: '^(.+)$' }\n",
                    "ec2:DescribeInstances",
                ),
            ] {
                let e = crate::testing::failure(&source(port, rule)).await;
                assert!(
                    e.starts_with(&format!(
                        "{call}: not permitted (UnauthorizedOperation: no)"
                    )),
                    "{e}"
                );
            }
            server.abort();
        }

        #[test]
        fn no_source_without_rules_or_the_aws_section() {
            let config = |yaml: &str| -> Arc<dyn Watched> {
                Arc::new(crate::config::Config::parse(yaml, "fleet.yaml").unwrap())
            };
            assert!(DiscoverySource::from_config(config(
                "sources:\n  aws:\n    region: x\nenvironments:\n  - name: prod\n"
            ))
            .is_none());
            assert_eq!(
                register(&config("environments:\n  - name: prod\n"))
                    .unwrap()
                    .len(),
                0
            );
        }
    }
}

/// The registry's builder.
pub fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
    #[cfg(feature = "aws")]
    {
        Ok(super::at_most_one(DiscoverySource::from_config(
            config.clone(),
        )))
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = config;
        Ok(Vec::new())
    }
}

/// The discovery source, as the registry knows it.
pub struct Discovery;

impl super::SourceKind for Discovery {
    const NAME: &'static str = "discovery";
    const READS: &'static [&'static str] = &["aws"];
    const FEATURE: Option<&'static str> = Some("aws");
    const BUILT_WITH: bool = cfg!(feature = "aws");
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[];
    type Settings = Vec<Rule>;
    type Facts = DiscoveryFacts;
    type Part = super::NoPart;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn configured(config: &dyn Watched) -> bool {
        !config.sources().discovery.is_empty()
    }
    fn check(rules: &Vec<Rule>, _: &[crate::inventory::Environment]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            if r.pattern.0.captures_len() < 2 {
                out.push((
                    format!("[{i}].pattern"),
                    format!(
                        "{:?} has no capture group to name the environment by, like '^broker-eip-(\\d+)$'",
                        r.pattern.0.as_str()
                    ),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Rule {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn a_match_names_the_environment_and_its_variables_from_the_captures() {
        let r = rule("template: stack\ntag: Name\npattern: '^broker-eip-test-(?P<slot>\\d+)$'\nname: test-${1}\nvars: { domain: 'test-${slot}.example.net' }\n");
        let env = r
            .environment("broker-eip-test-7", "EIP x".into())
            .unwrap()
            .unwrap();
        assert_eq!(env.name, "test-7");
        assert_eq!(env.template, "stack");
        assert_eq!(env.vars["1"], "7");
        assert_eq!(env.vars["slot"], "7");
        assert_eq!(env.vars["domain"], "test-7.example.net");
        // Exactly the pattern: a value that only contains it is no match.
        assert!(r
            .environment("broker-eip-test-7-old", String::new())
            .is_none());
        assert!(r.environment("broker-eip-prod", String::new()).is_none());
    }

    #[test]
    fn a_variable_the_captures_do_not_give_makes_the_match_unusable() {
        let r = rule("template: stack\ntag: Name\npattern: 'eip-(\\d+)'\nname: slot-${2}\n");
        let err = r.environment("eip-3", String::new()).unwrap().unwrap_err();
        assert!(err.contains("undefined variable ${2}"), "{err}");
    }

    #[test]
    fn a_group_that_did_not_take_part_gives_no_variable_and_the_name_defaults_to_the_first() {
        let r = rule("template: stack\ntag: Name\npattern: '^eip-(\\d+)(-(?P<zone>[a-z]))?$'\nvars: { z: '${zone}' }\n");
        let env = r.environment("eip-4-b", String::new()).unwrap().unwrap();
        assert_eq!(env.name, "4");
        assert_eq!(
            (env.vars["zone"].as_str(), env.vars["z"].as_str()),
            ("b", "b")
        );
        let err = r.environment("eip-4", String::new()).unwrap().unwrap_err();
        assert_eq!(err, "\"eip-4\": undefined variable ${zone} (defined: 1)");
    }

    #[test]
    fn a_rule_without_a_capture_group_is_refused_by_its_index() {
        use crate::sources::SourceKind;
        let good = rule("template: stack\ntag: Name\npattern: '^eip-(\\d+)$'\n");
        let bad = rule("template: stack\ntag: Name\npattern: '^eip-\\d+$'\n");
        assert!(Discovery::check(&vec![good.clone()], &[]).is_empty());
        assert_eq!(
            Discovery::check(&vec![good, bad], &[]),
            [(
                "[1].pattern".to_string(),
                "\"^eip-\\\\d+$\" has no capture group to name the environment by, like '^broker-eip-(\\d+)$'".to_string()
            )]
        );
        let config = |yaml: &str| crate::config::Config::parse(yaml, "fleet.yaml").unwrap();
        assert!(!Discovery::configured(&config(
            "environments:\n  - name: prod\n"
        )));
    }
}
