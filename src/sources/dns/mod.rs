//! The dns source: the A records of the names the inventory lists, read from
//! the Route53 hosted zone in `sources.aws.hosted_zone_id` (it shares the aws
//! source's settings and credentials).

use super::{Source, SourceError, Watched};
use crate::catalogue::metric;
use crate::exposition::{family, DescriptorEncoder};
use serde::Serialize;
use std::sync::Arc;

pub mod view;

/// The Route53 calls this source makes, as IAM names them; deploy/aws/iam-policy.json allows exactly these.
pub const CALLS: [&str; 1] = [LIST_RECORD_SETS];
const LIST_RECORD_SETS: &str = "route53:ListResourceRecordSets";

/// The A record of one listed name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DnsRecord {
    pub stack: String,
    /// Lower case, without the trailing dot.
    pub name: String,
    /// IPv4 addresses, sorted; empty when the zone has no A record for the name.
    pub addresses: Vec<String>,
    /// The target, when the A record is an alias (its addresses are not listed).
    pub alias: Option<String>,
}

/// What the dns source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DnsFacts {
    /// One per (stack, listed name), in inventory order.
    pub records: Vec<DnsRecord>,
}

impl DnsFacts {
    /// The records of one environment.
    pub fn of<'a>(&'a self, stack: &'a str) -> impl Iterator<Item = &'a DnsRecord> + 'a {
        self.records.iter().filter(move |r| r.stack == stack)
    }
}

#[cfg(feature = "aws")]
pub use client::DnsSource;

/// The source itself, in builds with the `aws` feature (the AWS SDK).
#[cfg(feature = "aws")]
mod client {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::Arc;

    use aws_sdk_route53::types::RrType;
    use tokio::sync::OnceCell;

    use super::*;
    use crate::sources::aws::AwsConfig;
    use crate::sources::aws::{sdk_config, sdk_error};
    use crate::sources::Watched;
    use crate::sources::{CollectFuture, Source, SourceError};
    use crate::values::Schedule;

    /// The dns source.
    pub struct DnsSource {
        config: Arc<dyn Watched>,
        aws: AwsConfig,
        zone_id: String,
        client: OnceCell<aws_sdk_route53::Client>,
    }

    impl DnsSource {
        /// Builds the source if `sources.aws` names a hosted zone and an environment lists `dns_names`.
        pub fn from_config(config: Arc<dyn Watched>) -> Result<Option<Self>, SourceError> {
            let Some(aws) = &config.sources().aws else {
                return Ok(None);
            };
            let Some(zone) = &aws.hosted_zone_id else {
                return Ok(None);
            };
            if config.environments().iter().all(|e| e.dns_names.is_empty()) {
                return Ok(None);
            }
            Ok(Some(DnsSource {
                config: config.clone(),
                aws: aws.clone(),
                // The API answers ids as "/hostedzone/Z…" but takes either form.
                zone_id: zone.trim_start_matches("/hostedzone/").to_string(),
                client: OnceCell::new(),
            }))
        }

        async fn collect_facts(&self) -> Result<DnsFacts, SourceError> {
            let r53 = self
                .client
                .get_or_init(|| async {
                    aws_sdk_route53::Client::from_conf(
                        aws_sdk_route53::config::Builder::from(&sdk_config(&self.aws).await)
                            .interceptor(crate::sources::aws::AnswerLimit)
                            .build(),
                    )
                })
                .await;
            let wanted: BTreeSet<String> = self
                .config
                .environments()
                .iter()
                .flat_map(|e| e.dns_names.iter().map(|n| normalise(n)))
                .collect();
            let mut found: BTreeMap<String, (Vec<String>, Option<String>)> = BTreeMap::new();
            // Route53 pages by (name, type, identifier) tokens rather than a page number.
            let mut next: Option<(String, RrType, Option<String>)> = None;
            let mut asked = BTreeSet::new();
            loop {
                let mut req = r53
                    .list_resource_record_sets()
                    .hosted_zone_id(&self.zone_id);
                if let Some((name, ty, id)) = next.take() {
                    req = req
                        .start_record_name(name)
                        .start_record_type(ty)
                        .set_start_record_identifier(id);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| sdk_error(LIST_RECORD_SETS, &e))?;
                for set in out.resource_record_sets() {
                    if set.r#type() != &RrType::A {
                        continue;
                    }
                    let name = normalise(set.name());
                    if !wanted.contains(&name) {
                        continue;
                    }
                    let entry = found.entry(name).or_default();
                    entry
                        .0
                        .extend(set.resource_records().iter().map(|r| r.value().to_string()));
                    if let Some(alias) = set.alias_target() {
                        entry.1 = Some(normalise(alias.dns_name()));
                    }
                }
                match (
                    out.is_truncated(),
                    out.next_record_name(),
                    out.next_record_type(),
                ) {
                    (true, Some(name), Some(ty)) => {
                        let token = (
                            name.to_string(),
                            ty.clone(),
                            out.next_record_identifier().map(str::to_string),
                        );
                        // A page must move on: an endpoint answering the
                        // same token again would be asked for ever.
                        if !asked.insert(token.clone()) {
                            return Err(SourceError::new(format!(
                                "{LIST_RECORD_SETS}: the endpoint answered the page starting at {} {} again",
                                token.0,
                                token.1.as_str()
                            )));
                        }
                        next = Some(token);
                    }
                    _ => break,
                }
            }
            let mut records = Vec::new();
            for e in self.config.environments() {
                for n in &e.dns_names {
                    let name = normalise(n);
                    let (mut addresses, alias) = found.get(&name).cloned().unwrap_or_default();
                    addresses.sort();
                    addresses.dedup();
                    records.push(DnsRecord {
                        stack: e.name.0.clone(),
                        name,
                        addresses,
                        alias,
                    });
                }
            }
            Ok(DnsFacts { records })
        }
    }

    /// Lower case, no trailing dot: `Broker.Example.NET.` → `broker.example.net`.
    fn normalise(name: &str) -> String {
        name.trim_end_matches('.').to_ascii_lowercase()
    }

    impl Source for DnsSource {
        fn name(&self) -> &'static str {
            "dns"
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

        fn set(name: &str, ty: &str, values: &[&str], alias: Option<&str>) -> String {
            let records: String = values
                .iter()
                .map(|v| format!("<ResourceRecord><Value>{v}</Value></ResourceRecord>"))
                .collect();
            let alias = alias
                .map(|a| format!("<AliasTarget><HostedZoneId>Z2</HostedZoneId><DNSName>{a}</DNSName><EvaluateTargetHealth>false</EvaluateTargetHealth></AliasTarget>"))
                .unwrap_or_default();
            let records = if records.is_empty() {
                String::new()
            } else {
                format!("<TTL>300</TTL><ResourceRecords>{records}</ResourceRecords>")
            };
            format!("<ResourceRecordSet><Name>{name}</Name><Type>{ty}</Type>{records}{alias}</ResourceRecordSet>")
        }

        fn page(sets: &[String], next: Option<(&str, &str, Option<&str>)>) -> String {
            let more = match next {
                Some((name, ty, id)) => format!(
                    "<IsTruncated>true</IsTruncated><NextRecordName>{name}</NextRecordName><NextRecordType>{ty}</NextRecordType>{}",
                    id.map(|i| format!("<NextRecordIdentifier>{i}</NextRecordIdentifier>")).unwrap_or_default()
                ),
                None => "<IsTruncated>false</IsTruncated>".into(),
            };
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListResourceRecordSetsResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
                 <ResourceRecordSets>{}</ResourceRecordSets>{more}<MaxItems>300</MaxItems></ListResourceRecordSetsResponse>",
                sets.concat()
            );
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        }

        /// A zone of two pages: the second starts at www, by a weighted record's identifier.
        fn route53(request: &str) -> String {
            let line = request.lines().next().unwrap_or("");
            if line.contains("name=www.example.net") {
                assert!(line.contains("identifier=w2"), "{line}");
                return page(
                    &[
                        set(
                            "www.example.net.",
                            "A",
                            &["198.51.100.7", "198.51.100.8"],
                            None,
                        ),
                        set("www.example.net.", "A", &["198.51.100.7"], None),
                        set(
                            "lb.example.net.",
                            "A",
                            &[],
                            Some("dualstack.lb-1.eu-west-1.elb.amazonaws.com."),
                        ),
                    ],
                    None,
                );
            }
            page(
                &[
                    set("API.Example.NET.", "A", &["198.51.100.9"], None),
                    set("api.example.net.", "AAAA", &["2001:db8::1"], None),
                    set("other.example.net.", "A", &["203.0.113.1"], None),
                ],
                Some(("www.example.net.", "A", Some("w2"))),
            )
        }

        fn source(port: u16, zone: &str) -> DnsSource {
            crate::testing::aws_credentials();
            let yaml = format!(
                "sources:\n  aws:\n    region: eu-west-1\n    endpoint_url: http://127.0.0.1:{port}/\n    hosted_zone_id: {zone}\n    interval: 45s\n\
                 environments:\n  - name: prod\n    dns_names: [api.example.net, www.example.net., LB.example.net]\n\
                 \x20 - name: staging\n    dns_names: [gone.example.net]\n  - name: dev\n"
            );
            let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
            DnsSource::from_config(Arc::new(config)).unwrap().unwrap()
        }

        #[tokio::test]
        async fn each_listed_names_a_records_are_read_across_pages() {
            let (port, server, lines) = crate::testing::recording_server(route53).await;
            let s = source(port, "/hostedzone/Z0123");
            assert_eq!(
                (s.name(), s.schedule().interval.0),
                ("dns", std::time::Duration::from_secs(45))
            );
            let out = s.collect().await.unwrap();
            server.abort();
            let facts = out.downcast_ref::<DnsFacts>().unwrap();
            let records: Vec<_> = facts
                .records
                .iter()
                .map(|r| {
                    (
                        r.stack.as_str(),
                        r.name.as_str(),
                        r.addresses.clone(),
                        r.alias.as_deref(),
                    )
                })
                .collect();
            assert_eq!(
                records,
                [
                    (
                        "prod",
                        "api.example.net",
                        vec!["198.51.100.9".to_string()],
                        None
                    ),
                    (
                        "prod",
                        "www.example.net",
                        vec!["198.51.100.7".to_string(), "198.51.100.8".to_string()],
                        None
                    ),
                    (
                        "prod",
                        "lb.example.net",
                        vec![],
                        Some("dualstack.lb-1.eu-west-1.elb.amazonaws.com")
                    ),
                    ("staging", "gone.example.net", vec![], None),
                ]
            );
            let lines = lines.lock().unwrap();
            assert_eq!(lines.len(), 2);
            assert!(
                lines[0].starts_with("GET /2013-04-01/hostedzone/Z0123/rrset"),
                "{}",
                lines[0]
            );
        }

        #[tokio::test]
        async fn a_page_answered_again_is_an_error_not_a_loop() {
            let (port, server) = crate::testing::http_server(|_| {
                Some(page(&[], Some(("www.example.net.", "A", None))))
            })
            .await;
            let e = crate::testing::failure(&source(port, "Z0123")).await;
            server.abort();
            assert_eq!(
                e,
                format!("{LIST_RECORD_SETS}: the endpoint answered the page starting at www.example.net. A again")
            );
        }

        #[tokio::test]
        async fn a_refused_listing_says_what_to_fix() {
            let (port, server) = crate::testing::http_server(|_| {
                let body = "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not allowed</Message></Error><RequestId>r</RequestId></ErrorResponse>";
                Some(format!("HTTP/1.1 403 Forbidden\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}", body.len()))
            })
            .await;
            let e = crate::testing::failure(&source(port, "Z0123")).await;
            server.abort();
            assert_eq!(
                e,
                format!("{LIST_RECORD_SETS}: not permitted (AccessDenied: not allowed); attach deploy/aws/iam-policy.json to the exporter's role or user")
            );
        }

        #[test]
        fn no_source_without_a_zone_or_a_name() {
            let none = |yaml: &str| {
                let config = crate::config::Config::parse(yaml, "fleet.yaml").unwrap();
                DnsSource::from_config(Arc::new(config)).unwrap().is_none()
            };
            assert!(none(
                "environments:\n  - name: prod\n    dns_names: [a.example.net]\n"
            ));
            assert!(none(
                "sources:\n  aws:\n    hosted_zone_id: Z1\nenvironments:\n  - name: prod\n"
            ));
            assert_eq!(normalise("Broker.Example.NET."), "broker.example.net");
        }
    }
}

/// The registry's builder: the source when its section is configured, in
/// builds with the `aws` feature (without it, `sources::from_config`
/// refuses a configured section before this runs).
pub fn register(
    config: &std::sync::Arc<dyn super::Watched>,
) -> Result<Vec<std::sync::Arc<dyn super::Source>>, super::SourceError> {
    #[cfg(feature = "aws")]
    {
        Ok(super::at_most_one(DnsSource::from_config(config.clone())?))
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = config;
        Ok(Vec::new())
    }
}
impl super::SourceFacts for DnsFacts {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        super::retain_listed(&mut self.records, |r| listed.stack(&r.stack))
    }
    fn encode(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        encode(self, enc)
    }
}

/// This source's family: the A records of each DNS name.
pub fn encode(dns: &DnsFacts, enc: &mut DescriptorEncoder) -> std::fmt::Result {
    family(
        enc,
        &DNS_RECORD_INFO,
        dns.records.iter().flat_map(|r| {
            r.addresses
                .iter()
                .map(move |a| ([r.stack.as_str(), r.name.as_str(), a.as_str()], 1.0))
        }),
    )?;
    Ok(())
}

/// The dns source, as the registry knows it.
pub struct Dns;

impl super::SourceKind for Dns {
    const NAME: &'static str = "dns";
    const READS: &'static [&'static str] = &["aws"];
    const FEATURE: Option<&'static str> = Some("aws");
    const BUILT_WITH: bool = cfg!(feature = "aws");
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[DNS_RECORD_INFO];
    type Settings = super::NoSettings;
    type Facts = DnsFacts;
    type Part = view::Part;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn configured(config: &dyn Watched) -> bool {
        config.sources().aws.is_some()
    }
}

// Its families.
metric!(
    DNS_RECORD_INFO,
    "fleet_dns_record_info",
    Gauge,
    ["stack", "name", "address"],
    "A record of a DNS name the inventory lists; always 1."
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Facts, SourceKind};

    fn record(stack: &str, name: &str, addresses: &[&str]) -> DnsRecord {
        DnsRecord {
            stack: stack.into(),
            name: name.into(),
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            alias: None,
        }
    }

    fn facts() -> DnsFacts {
        DnsFacts {
            records: vec![
                record("prod", "api.example.net", &["192.0.2.1", "192.0.2.2"]),
                record("prod", "old.example.net", &[]),
                record("staging", "api.staging.example.net", &["192.0.2.9"]),
            ],
        }
    }

    #[test]
    fn each_address_of_each_name_is_one_series() {
        assert_eq!(
            crate::metrics::samples_of(Facts::default().with("dns", facts()), "fleet_dns_"),
            [
                r#"fleet_dns_record_info{stack="prod",name="api.example.net",address="192.0.2.1"} 1.0"#,
                r#"fleet_dns_record_info{stack="prod",name="api.example.net",address="192.0.2.2"} 1.0"#,
                r#"fleet_dns_record_info{stack="staging",name="api.staging.example.net",address="192.0.2.9"} 1.0"#,
            ]
        );
    }

    #[test]
    fn a_removed_environment_takes_its_records_along_and_the_aws_section_turns_it_on() {
        let config = |text: &str| crate::config::Config::parse(text, "fleet.yaml").unwrap();
        let prod = config("environments:\n  - name: prod\n");
        let mut f = Facts::default().with("dns", facts());
        f.retire(&prod.environments);
        let names: Vec<_> = f
            .get::<DnsFacts>()
            .unwrap()
            .records
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(names, ["api.example.net", "old.example.net"]);
        assert_eq!(facts().of("staging").count(), 1);
        assert!(!Dns::configured(&prod));
        let aws =
            config("sources:\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: prod\n");
        assert!(Dns::configured(&aws));
    }
}
