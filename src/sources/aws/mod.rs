//! The aws source: per environment, the EC2 instance(s) and Elastic IP(s)
//! carrying the environment's tag, through the AWS SDK.
//!
//! Credentials come from the SDK's default chain (environment, profile, SSO,
//! instance role); `sources.aws.endpoint_url` points the clients at an
//! emulator. Throttling and 5xx answers are retried by the SDK's standard
//! retry mode with backoff; anything it gives up on fails the run with a
//! message that says what to fix.

use super::{Source, SourceError, Watched};
use crate::catalogue::metric;
use crate::exposition::{b, family, DescriptorEncoder};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::values::{HttpUrl, Schedule, Seconds};

pub mod view;

/// The AWS sources (EC2 and Route53).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// How often the source runs.
    #[serde(default = "AwsConfig::default_interval")]
    pub interval: Seconds,
    /// How long one run may take.
    #[serde(default = "AwsConfig::default_timeout")]
    pub timeout: Seconds,
    /// Region; the SDK's default chain is used when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override, e.g. a local emulator.
    #[serde(default)]
    pub endpoint_url: Option<HttpUrl>,
    /// The Route53 hosted zone holding the inventory's DNS names.
    #[serde(default)]
    pub hosted_zone_id: Option<String>,
}

impl AwsConfig {
    fn default_interval() -> Seconds {
        Seconds(Duration::from_secs(60))
    }
    fn default_timeout() -> Seconds {
        Seconds(Duration::from_secs(30))
    }
    /// The source's schedule.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            interval: self.interval,
            timeout: self.timeout,
        }
    }
}

/// The EC2 calls this source makes, as IAM names them; deploy/aws/iam-policy.json allows exactly these.
pub const CALLS: [&str; 2] = [DESCRIBE_INSTANCES, DESCRIBE_ADDRESSES];
const DESCRIBE_INSTANCES: &str = "ec2:DescribeInstances";
const DESCRIBE_ADDRESSES: &str = "ec2:DescribeAddresses";

/// EC2 instance state, in state-set order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceState {
    Pending,
    Running,
    Stopping,
    Stopped,
    ShuttingDown,
    Terminated,
}

impl InstanceState {
    /// Every state, in state-set order.
    pub const ALL: [InstanceState; 6] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::Stopping,
        InstanceState::Stopped,
        InstanceState::ShuttingDown,
        InstanceState::Terminated,
    ];

    /// The name EC2 uses, which is also the `state` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
        }
    }
}

/// One EC2 instance found by an environment's tag.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Instance {
    pub stack: String,
    pub instance_id: String,
    /// `None` for a state this build does not know.
    pub state: Option<InstanceState>,
    pub instance_type: String,
    pub availability_zone: String,
    /// Unix seconds.
    pub launch_time: Option<f64>,
    pub public_ip: Option<String>,
}

/// One Elastic IP found by an environment's tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ElasticIp {
    pub stack: String,
    pub public_ip: String,
    pub allocation_id: String,
    /// Whether it is associated (with an instance or a network interface).
    pub associated: bool,
    /// The instance it is associated with, if any.
    pub instance_id: Option<String>,
}

/// What the aws source found.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AwsFacts {
    /// Sorted by stack, then instance id.
    pub instances: Vec<Instance>,
    /// Sorted by stack, then public IP.
    pub addresses: Vec<ElasticIp>,
}

impl AwsFacts {
    /// The Elastic IPs of one environment.
    pub fn eips_of<'a>(&'a self, stack: &'a str) -> impl Iterator<Item = &'a ElasticIp> + 'a {
        self.addresses.iter().filter(move |a| a.stack == stack)
    }
}

#[cfg(feature = "aws")]
pub use client::AwsSource;
#[cfg(feature = "aws")]
pub(crate) use client::{sdk_config, sdk_error, AnswerLimit};

/// The source itself, in builds with the `aws` feature (the AWS SDK).
#[cfg(feature = "aws")]
mod client {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
    use aws_sdk_ec2::types::{Filter, InstanceStateName};
    use tokio::sync::OnceCell;

    use super::*;
    use crate::inventory::{Environment, Tag};
    use crate::sources::aws::AwsConfig;
    use crate::sources::Watched;
    use crate::sources::{CollectFuture, Source, SourceError};
    use crate::values::Schedule;

    /// Attempts per call, the first included; retries back off exponentially.
    const MAX_ATTEMPTS: u32 = 4;
    /// Values per EC2 filter: the API accepts up to 200.
    const FILTER_VALUES: usize = 200;
    /// Instances per DescribeInstances page (the API takes 5 to 1,000).
    const PAGE_SIZE: i32 = 200;

    impl InstanceState {
        fn from_sdk(s: &InstanceStateName) -> Option<Self> {
            Some(match s {
                InstanceStateName::Pending => InstanceState::Pending,
                InstanceStateName::Running => InstanceState::Running,
                InstanceStateName::Stopping => InstanceState::Stopping,
                InstanceStateName::Stopped => InstanceState::Stopped,
                InstanceStateName::ShuttingDown => InstanceState::ShuttingDown,
                InstanceStateName::Terminated => InstanceState::Terminated,
                _ => return None,
            })
        }
    }

    /// The aws source.
    pub struct AwsSource {
        config: Arc<dyn Watched>,
        aws: AwsConfig,
        client: OnceCell<aws_sdk_ec2::Client>,
    }

    impl AwsSource {
        /// Builds the source if `sources.aws` is set and an environment has
        /// a tag for its instances or Elastic IPs.
        pub fn from_config(config: Arc<dyn Watched>) -> Result<Option<Self>, SourceError> {
            let Some(aws) = &config.sources().aws else {
                return Ok(None);
            };
            let tagged = |e: &Environment| e.instance_tag().is_some() || e.eip_tag().is_some();
            if !config.environments().iter().any(tagged) {
                return Ok(None);
            }
            Ok(Some(AwsSource {
                config: config.clone(),
                aws: aws.clone(),
                client: OnceCell::new(),
            }))
        }

        async fn client(&self) -> &aws_sdk_ec2::Client {
            self.client
                .get_or_init(|| async {
                    let conf = aws_sdk_ec2::config::Builder::from(&sdk_config(&self.aws).await)
                        .interceptor(AnswerLimit)
                        .build();
                    aws_sdk_ec2::Client::from_conf(conf)
                })
                .await
        }

        async fn collect_facts(&self) -> Result<AwsFacts, SourceError> {
            let ec2 = self.client().await;
            let envs = self.config.environments();
            let mut facts = AwsFacts::default();
            for (key, chunk) in by_tag(envs, Environment::instance_tag) {
                let mut pages = ec2
                    .describe_instances()
                    .filters(filter(key, &chunk))
                    .max_results(PAGE_SIZE)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| sdk_error(DESCRIBE_INSTANCES, &e))?;
                    for i in page.reservations().iter().flat_map(|r| r.instances()) {
                        for stack in stacks_of(key, &chunk, i.tags()) {
                            facts.instances.push(instance(stack, i));
                        }
                    }
                }
            }
            for (key, chunk) in by_tag(envs, Environment::eip_tag) {
                // DescribeAddresses is not paginated: it returns every match.
                let out = ec2
                    .describe_addresses()
                    .filters(filter(key, &chunk))
                    .send()
                    .await
                    .map_err(|e| sdk_error(DESCRIBE_ADDRESSES, &e))?;
                for a in out.addresses() {
                    let Some(ip) = a.public_ip() else { continue };
                    // Some endpoints write absent fields as empty strings.
                    let present = |v: Option<&str>| v.filter(|s| !s.is_empty()).map(str::to_string);
                    let instance_id = present(a.instance_id());
                    let associated = instance_id.is_some() || present(a.association_id()).is_some();
                    for stack in stacks_of(key, &chunk, a.tags()) {
                        facts.addresses.push(ElasticIp {
                            stack: stack.to_string(),
                            public_ip: ip.to_string(),
                            allocation_id: a.allocation_id().unwrap_or_default().to_string(),
                            associated,
                            instance_id: instance_id.clone(),
                        });
                    }
                }
            }
            facts.instances.sort_by(|a, b| {
                (a.stack.as_str(), a.instance_id.as_str()).cmp(&(b.stack.as_str(), &b.instance_id))
            });
            facts
                .instances
                .dedup_by(|a, b| a.stack == b.stack && a.instance_id == b.instance_id);
            facts.addresses.sort_by(|a, b| {
                (a.stack.as_str(), a.public_ip.as_str()).cmp(&(b.stack.as_str(), &b.public_ip))
            });
            facts
                .addresses
                .dedup_by(|a, b| a.stack == b.stack && a.public_ip == b.public_ip);
            Ok(facts)
        }
    }

    /// The environments that give a tag (by `tag_of`), grouped by tag key
    /// and cut into chunks one filtered call can serve: (key, [(stack, value)]).
    fn by_tag(
        envs: &[Environment],
        tag_of: fn(&Environment) -> Option<&Tag>,
    ) -> Vec<(&str, Vec<(&str, &str)>)> {
        let mut by_key: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for e in envs {
            if let Some(tag) = tag_of(e) {
                by_key
                    .entry(tag.key.as_str())
                    .or_default()
                    .push((e.name.as_str(), tag.value.as_str()));
            }
        }
        by_key
            .into_iter()
            .flat_map(|(key, envs)| {
                envs.chunks(FILTER_VALUES)
                    .map(|c| (key, c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn filter(key: &str, chunk: &[(&str, &str)]) -> Filter {
        Filter::builder()
            .name(format!("tag:{key}"))
            .set_values(Some(chunk.iter().map(|(_, v)| v.to_string()).collect()))
            .build()
    }

    /// The stacks whose tag a resource carries: its value under `key`
    /// equal to theirs, exactly (a tag that extends another's is not it).
    fn stacks_of<'a>(
        key: &str,
        chunk: &[(&'a str, &str)],
        tags: &[aws_sdk_ec2::types::Tag],
    ) -> Vec<&'a str> {
        let value = tags
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value());
        chunk
            .iter()
            .filter(|(_, v)| Some(*v) == value)
            .map(|(s, _)| *s)
            .collect()
    }

    fn instance(stack: &str, i: &aws_sdk_ec2::types::Instance) -> Instance {
        Instance {
            stack: stack.to_string(),
            instance_id: i.instance_id().unwrap_or_default().to_string(),
            state: i
                .state()
                .and_then(|s| s.name())
                .and_then(InstanceState::from_sdk),
            instance_type: i
                .instance_type()
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            availability_zone: i
                .placement()
                .and_then(|p| p.availability_zone())
                .unwrap_or_default()
                .to_string(),
            launch_time: i.launch_time().map(|t| t.as_secs_f64()),
            public_ip: i.public_ip_address().map(str::to_string),
        }
    }

    impl Source for AwsSource {
        fn name(&self) -> &'static str {
            "aws"
        }
        fn schedule(&self) -> Schedule {
            self.aws.schedule()
        }
        fn collect(&self) -> CollectFuture<'_> {
            Box::pin(async move { self.collect_facts().await.map(crate::sources::output) })
        }
    }

    /// The SDK configuration both AWS sources use: the default credential and
    /// region chains, the configured region and endpoint, standard retries.
    pub(crate) async fn sdk_config(cfg: &AwsConfig) -> aws_config::SdkConfig {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(cfg.timeout.0)
                    .build(),
            );
        if let Some(region) = &cfg.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(url) = &cfg.endpoint_url {
            // `Url` always writes a path; a bare "/" would double up in REST paths.
            loader = loader.endpoint_url(url.0.as_str().trim_end_matches('/'));
        }
        loader.load().await
    }

    /// The largest answer read from the AWS APIs. A page of 200 instances
    /// (the page size asked for) is a few hundred KiB; an answer over this
    /// is refused before its body is read, so a misbehaving endpoint cannot
    /// make the exporter hold it.
    pub(crate) const MAX_ANSWER_BYTES: u64 = 8 * 1024 * 1024;

    /// Refuses an answer whose declared length is over `MAX_ANSWER_BYTES`.
    #[derive(Debug)]
    pub(crate) struct AnswerLimit;

    impl aws_sdk_ec2::config::Intercept for AnswerLimit {
        fn name(&self) -> &'static str {
            "fleetpulse answer limit"
        }

        fn read_after_transmit(
            &self,
            context: &aws_sdk_ec2::config::interceptors::BeforeDeserializationInterceptorContextRef<
                '_,
            >,
            _components: &aws_sdk_ec2::config::RuntimeComponents,
            _cfg: &mut aws_sdk_ec2::config::ConfigBag,
        ) -> Result<(), aws_sdk_ec2::error::BoxError> {
            let declared = context
                .response()
                .headers()
                .get("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            match declared {
                Some(n) if n > MAX_ANSWER_BYTES => Err(format!(
                    "the answer is {:.1} MiB, over the {} MiB fleetpulse reads",
                    n as f64 / (1024.0 * 1024.0),
                    MAX_ANSWER_BYTES / (1024 * 1024)
                )
                .into()),
                _ => Ok(()),
            }
        }
    }

    /// Turns an SDK error into a message that says what to fix.
    pub(crate) fn sdk_error<E, R>(call: &str, e: &SdkError<E, R>) -> SourceError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (code, message) = match e {
            SdkError::ServiceError(se) if se.err().code().is_none() => {
                // An answer that is no error AWS documents (it has no code):
                // the SDK's words for what was wrong with it.
                let mut words = se.err().to_string();
                let mut cause = std::error::Error::source(se.err());
                while let Some(c) = cause {
                    words.push_str(": ");
                    words.push_str(&c.to_string());
                    cause = c.source();
                }
                return SourceError::new(format!(
                    "{call}: the endpoint answered what fleetpulse cannot read: {words}"
                ));
            }
            SdkError::ServiceError(se) => (
                se.err().code().map(str::to_string),
                se.err().message().unwrap_or_default().to_string(),
            ),
            other => (None, DisplayErrorContext(other).to_string()),
        };
        SourceError::new(explain(call, code.as_deref(), &message))
    }

    /// Error codes AWS answers when the credentials are expired or not valid.
    const CREDENTIAL_CODES: &[&str] = &[
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "AuthFailure",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
    ];

    /// Error codes AWS answers when the credentials lack a permission.
    const PERMISSION_CODES: &[&str] = &[
        "UnauthorizedOperation",
        "AccessDenied",
        "AccessDeniedException",
    ];

    /// The message for a failed call: the code (if the service answered one) or
    /// the SDK's description, and what to do about it.
    pub(crate) fn explain(call: &str, code: Option<&str>, message: &str) -> String {
        match code {
        Some(c) if CREDENTIAL_CODES.contains(&c) => format!(
            "{call}: AWS rejected the credentials ({c}: {message}); refresh or replace them \
             (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE, SSO login, or the instance role)"
        ),
        Some(c) if PERMISSION_CODES.contains(&c) => format!(
            "{call}: not permitted ({c}: {message}); attach deploy/aws/iam-policy.json to the exporter's role or user"
        ),
        Some(c) => format!("{call}: {c}: {message}"),
        None if message.contains("no credentials")
            || message.contains("credentials provider")
            || message.contains("Credentials") =>
        {
            format!(
                "{call}: no AWS credentials found ({message}); set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role allowed by deploy/aws/iam-policy.json"
            )
        }
        None if message.contains("region") => format!(
            "{call}: no AWS region ({message}); set sources.aws.region or AWS_REGION"
        ),
        None => format!("{call}: cannot reach AWS: {message}"),
    }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn failed_calls_say_what_to_fix() {
            let cases: &[(Option<&str>, &str, &str)] = &[
                (
                    Some("ExpiredToken"),
                    "The security token included in the request is expired",
                    "AWS rejected the credentials (ExpiredToken",
                ),
                (
                    Some("AuthFailure"),
                    "AWS was not able to validate the provided access credentials",
                    "refresh or replace them",
                ),
                (
                    Some("UnauthorizedOperation"),
                    "You are not authorized to perform this operation.",
                    "attach deploy/aws/iam-policy.json",
                ),
                (
                    None,
                    "dispatch failure: other: no credentials provider was configured",
                    "no AWS credentials found",
                ),
                // Each of the SDK's ways of saying it, alone.
                (
                    None,
                    "no credentials in the environment",
                    "no AWS credentials found",
                ),
                (
                    None,
                    "the credentials provider timed out",
                    "no AWS credentials found",
                ),
                (
                    None,
                    "Credentials could not be loaded",
                    "no AWS credentials found",
                ),
                (
                    None,
                    "failed to construct request: No region was configured",
                    "set sources.aws.region or AWS_REGION",
                ),
                (
                    None,
                    "dispatch failure: io error: Connection refused",
                    "cannot reach AWS: dispatch failure",
                ),
                (
                    Some("RequestLimitExceeded"),
                    "Request limit exceeded.",
                    "ec2:DescribeInstances: RequestLimitExceeded: Request limit exceeded.",
                ),
            ];
            for (code, msg, want) in cases {
                let got = explain("ec2:DescribeInstances", *code, msg);
                assert!(got.contains(want), "{code:?} {msg:?}: {got}");
                assert!(got.starts_with("ec2:DescribeInstances: "), "{got}");
            }
        }

        #[test]
        fn state_names_are_ec2s() {
            let names: Vec<_> = InstanceState::ALL.iter().map(|s| s.as_str()).collect();
            assert_eq!(
                names,
                [
                    "pending",
                    "running",
                    "stopping",
                    "stopped",
                    "shutting-down",
                    "terminated"
                ]
            );
            for s in InstanceState::ALL {
                let sdk = InstanceStateName::from(s.as_str());
                assert_eq!(InstanceState::from_sdk(&sdk), Some(s));
            }
        }
    }

    #[cfg(test)]
    mod collect_tests {
        use super::*;

        use crate::testing::ec2::{instance, instances, tags, xml};

        /// A fleet of three environments: prod by one tag for both kinds,
        /// staging by a tag of its own for each, dev by none.
        fn source(port: u16) -> AwsSource {
            crate::testing::aws_credentials();
            let yaml = format!(
                "sources:\n  aws:\n    region: eu-west-1\n    endpoint_url: http://127.0.0.1:{port}/\n    timeout: 10s\n\
                 environments:\n  - name: prod\n    aws_tag: {{ key: Stack, value: prod }}\n\
                 \x20 - name: staging\n    instance_tag: {{ key: Stack, value: staging }}\n    eip_tag: {{ key: Role, value: staging-eip }}\n\
                 \x20 - name: dev\n"
            );
            let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
            AwsSource::from_config(Arc::new(config)).unwrap().unwrap()
        }

        fn ec2(request: &str) -> String {
            let body = crate::testing::body(request);
            if body.contains("Action=DescribeInstances") {
                if body.contains("NextToken=page-2") {
                    return xml(
                        200,
                        &instances(
                            &[
                                instance("i-0b", "running", ("Stack", "prod")),
                                instance("i-0a", "stopped", ("Stack", "prod")),
                                instance("i-0c", "running", ("Stack", "staging")),
                            ],
                            None,
                        ),
                    );
                }
                return xml(
                    200,
                    &instances(
                        &[
                            instance("i-0b", "running", ("Stack", "prod")),
                            // A tag that extends prod's is not prod's.
                            instance("i-0d", "running", ("Stack", "prod-old")),
                        ],
                        Some("page-2"),
                    ),
                );
            }
            if body.contains("Action=DescribeAddresses") {
                let address = |ip: &str, alloc: &str, more: &str, tag: (&str, &str)| {
                    format!(
                        "<item>{ip}<allocationId>{alloc}</allocationId><domain>vpc</domain>{more}{}</item>",
                        tags(&[tag])
                    )
                };
                let items = if body.contains("tag%3AStack") {
                    [
                        address("<publicIp>198.51.100.9</publicIp>", "eipalloc-9", "<instanceId>i-0b</instanceId><associationId>eipassoc-9</associationId>", ("Stack", "prod")),
                        address("<publicIp>198.51.100.7</publicIp>", "eipalloc-7", "<instanceId></instanceId><associationId></associationId>", ("Stack", "prod")),
                        // An endpoint that lists an address twice: it is kept once.
                        address("<publicIp>198.51.100.7</publicIp>", "eipalloc-7", "<instanceId></instanceId><associationId></associationId>", ("Stack", "prod")),
                        address("", "eipalloc-0", "", ("Stack", "prod")),
                    ]
                    .concat()
                } else {
                    address(
                        "<publicIp>198.51.100.8</publicIp>",
                        "eipalloc-8",
                        "<associationId>eipassoc-8</associationId>",
                        ("Role", "staging-eip"),
                    )
                };
                return xml(
                    200,
                    &format!("<DescribeAddressesResponse><requestId>r</requestId><addressesSet>{items}</addressesSet></DescribeAddressesResponse>"),
                );
            }
            xml(400, "<Response><Errors><Error><Code>InvalidAction</Code><Message>no</Message></Error></Errors></Response>")
        }

        #[tokio::test]
        async fn instances_and_addresses_are_found_by_each_environments_tags() {
            let (port, server, bodies) = crate::testing::recording_server(ec2).await;
            let s = source(port);
            assert_eq!(
                (s.name(), s.schedule().timeout.0),
                ("aws", std::time::Duration::from_secs(10))
            );
            let out = s.collect().await.unwrap();
            server.abort();
            let facts = out.downcast_ref::<AwsFacts>().unwrap();
            let found: Vec<_> = facts
                .instances
                .iter()
                .map(|i| (i.stack.as_str(), i.instance_id.as_str(), i.state))
                .collect();
            assert_eq!(
                found,
                [
                    ("prod", "i-0a", Some(InstanceState::Stopped)),
                    ("prod", "i-0b", Some(InstanceState::Running)),
                    ("staging", "i-0c", Some(InstanceState::Running)),
                ]
            );
            let i = &facts.instances[0];
            assert_eq!(
                (
                    i.instance_type.as_str(),
                    i.availability_zone.as_str(),
                    i.launch_time,
                    i.public_ip.as_deref()
                ),
                ("t3.small", "eu-west-1a", Some(1_735_725_600.0), None)
            );
            let eips: Vec<_> = facts
                .addresses
                .iter()
                .map(|a| {
                    (
                        a.stack.as_str(),
                        a.public_ip.as_str(),
                        a.allocation_id.as_str(),
                        a.associated,
                        a.instance_id.as_deref(),
                    )
                })
                .collect();
            assert_eq!(
                eips,
                [
                    ("prod", "198.51.100.7", "eipalloc-7", false, None),
                    ("prod", "198.51.100.9", "eipalloc-9", true, Some("i-0b")),
                    ("staging", "198.51.100.8", "eipalloc-8", true, None),
                ]
            );
            let bodies = bodies.lock().unwrap();
            let first = bodies
                .iter()
                .find(|b| b.contains("Action=DescribeInstances"))
                .unwrap();
            assert!(first.contains("Filter.1.Name=tag%3AStack"), "{first}");
            assert!(
                first.contains("Filter.1.Value.1=prod&Filter.1.Value.2=staging"),
                "{first}"
            );
            assert!(first.contains("MaxResults=200"), "{first}");
            assert_eq!(
                bodies
                    .iter()
                    .filter(|b| b.contains("Action=DescribeInstances"))
                    .count(),
                2
            );
            let by_role = bodies.iter().find(|b| b.contains("tag%3ARole")).unwrap();
            assert!(
                by_role.contains("Filter.1.Value.1=staging-eip"),
                "{by_role}"
            );
            assert!(!by_role.contains("Value.2"), "{by_role}");
        }

        #[tokio::test]
        async fn a_refused_call_and_an_oversized_answer_are_errors_that_say_why() {
            let (port, server) = crate::testing::http_server(|_| {
                Some(xml(403, "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform this operation.</Message></Error></Errors><RequestID>r</RequestID></Response>"))
            })
            .await;
            let e = crate::testing::failure(&source(port)).await;
            server.abort();
            assert_eq!(
                e,
                "ec2:DescribeInstances: not permitted (UnauthorizedOperation: You are not authorized to perform this operation.); \
                 attach deploy/aws/iam-policy.json to the exporter's role or user"
            );
            let (port, server) = crate::testing::http_server(|_| {
                Some("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 9437184\r\nConnection: close\r\n\r\n".to_string())
            })
            .await;
            let e = crate::testing::failure(&source(port)).await;
            server.abort();
            assert!(
                e.starts_with("ec2:DescribeInstances: cannot reach AWS: "),
                "{e}"
            );
            assert!(
                e.contains("fleetpulse answer limit read_after_transmit interceptor encountered an error: \
                            the answer is 9.0 MiB, over the 8 MiB fleetpulse reads"),
                "the limit is named as what refused the answer: {e}"
            );
        }

        #[test]
        fn a_source_is_built_for_an_instance_tag_or_an_eip_tag_alone() {
            let built = |env: &str| {
                let yaml = format!(
                    "sources:\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: prod\n{env}"
                );
                let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
                AwsSource::from_config(Arc::new(config)).unwrap().is_some()
            };
            assert!(built("    instance_tag: { key: Stack, value: prod }\n"));
            assert!(built("    eip_tag: { key: Stack, value: prod }\n"));
            assert!(!built(""));
        }

        #[test]
        fn the_registry_builds_the_aws_source_from_its_section() {
            use crate::sources::SourceKind;
            let yaml = "sources:\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: prod\n    aws_tag: { key: Stack, value: prod }\n";
            let config: Arc<dyn Watched> =
                Arc::new(crate::config::Config::parse(yaml, "fleet.yaml").unwrap());
            let names =
                |built: Vec<Arc<dyn Source>>| built.iter().map(|s| s.name()).collect::<Vec<_>>();
            assert_eq!(names(super::super::register(&config).unwrap()), ["aws"]);
            assert_eq!(names(Aws::register(&config).unwrap()), ["aws"]);
        }

        #[tokio::test]
        async fn an_answer_of_the_largest_size_read_is_read() {
            let (port, server) = crate::testing::http_server(|_| {
                let page = instances(&[instance("i-0a", "running", ("Stack", "prod"))], None);
                let pad = MAX_ANSWER_BYTES as usize - page.len();
                // Whitespace before the root element: the same answer, 8 MiB long.
                Some(xml(200, &format!("{}{page}", " ".repeat(pad))))
            })
            .await;
            crate::testing::aws_credentials();
            let yaml = format!(
                "sources:\n  aws:\n    region: eu-west-1\n    endpoint_url: http://127.0.0.1:{port}/\n\
                 environments:\n  - name: prod\n    instance_tag: {{ key: Stack, value: prod }}\n"
            );
            let config = crate::config::Config::parse(&yaml, "fleet.yaml").unwrap();
            let s = AwsSource::from_config(Arc::new(config)).unwrap().unwrap();
            let out = s.collect().await;
            server.abort();
            let facts = out.unwrap();
            let facts = facts.downcast_ref::<AwsFacts>().unwrap();
            assert_eq!(facts.instances.len(), 1);
        }

        #[tokio::test]
        async fn an_answer_that_is_not_the_one_asked_for_says_what_it_was() {
            // DescribeInstances' answer to DescribeAddresses.
            let (port, server) =
                crate::testing::http_server(|_| Some(xml(200, &instances(&[], None)))).await;
            let e = crate::testing::failure(&source(port)).await;
            server.abort();
            assert!(
                e.starts_with(
                    "ec2:DescribeAddresses: the endpoint answered what fleetpulse cannot read: "
                ),
                "{e}"
            );
            assert!(e.contains("expected DescribeAddressesResponse"), "{e}");
            assert!(
                !e.contains("requestId"),
                "the answer itself is not written out: {e}"
            );
        }

        #[test]
        fn a_tag_key_with_many_environments_is_asked_for_in_chunks() {
            let yaml: String = (0..=FILTER_VALUES)
                .map(|n| format!("  - name: e{n}\n    aws_tag: {{ key: Stack, value: v{n} }}\n"))
                .collect();
            let envs = crate::testing::environments(&yaml);
            let chunks = by_tag(&envs, Environment::instance_tag);
            let sizes: Vec<_> = chunks.iter().map(|(k, c)| (*k, c.len())).collect();
            assert_eq!(sizes, [("Stack", FILTER_VALUES), ("Stack", 1)]);
            assert_eq!(chunks[1].1, [("e200", "v200")]);
            let f = filter("Stack", &chunks[1].1);
            assert_eq!(
                (f.name(), f.values()),
                (Some("tag:Stack"), &["v200".to_string()][..])
            );
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
        Ok(super::at_most_one(AwsSource::from_config(config.clone())?))
    }
    #[cfg(not(feature = "aws"))]
    {
        let _ = config;
        Ok(Vec::new())
    }
}
impl super::SourceFacts for AwsFacts {
    fn retire(&mut self, listed: &super::Listed<'_>) -> bool {
        let i = super::retain_listed(&mut self.instances, |x| listed.stack(&x.stack));
        let a = super::retain_listed(&mut self.addresses, |x| listed.stack(&x.stack));
        i || a
    }
    fn encode(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        encode(self, enc)
    }
}

/// This source's families: instance state, info and launch time; EIP
/// association and info.
pub fn encode(aws: &AwsFacts, enc: &mut DescriptorEncoder) -> std::fmt::Result {
    family(
        enc,
        &INSTANCE_STATE,
        aws.instances.iter().flat_map(|i| {
            InstanceState::ALL.into_iter().map(move |st| {
                (
                    [i.stack.as_str(), i.instance_id.as_str(), st.as_str()],
                    b(i.state == Some(st)),
                )
            })
        }),
    )?;
    family(
        enc,
        &INSTANCE_INFO,
        aws.instances.iter().map(|i| {
            (
                [
                    i.stack.as_str(),
                    i.instance_id.as_str(),
                    i.instance_type.as_str(),
                    i.availability_zone.as_str(),
                ],
                1.0,
            )
        }),
    )?;
    family(
        enc,
        &INSTANCE_LAUNCH,
        aws.instances.iter().filter_map(|i| {
            i.launch_time
                .map(|t| ([i.stack.as_str(), i.instance_id.as_str()], t))
        }),
    )?;
    family(
        enc,
        &EIP_ASSOCIATED,
        aws.addresses
            .iter()
            .map(|a| ([a.stack.as_str(), a.public_ip.as_str()], b(a.associated))),
    )?;
    family(
        enc,
        &EIP_INFO,
        aws.addresses.iter().map(|a| {
            (
                [
                    a.stack.as_str(),
                    a.public_ip.as_str(),
                    a.allocation_id.as_str(),
                    a.instance_id.as_deref().unwrap_or(""),
                ],
                1.0,
            )
        }),
    )?;
    Ok(())
}

/// The aws source, as the registry knows it.
pub struct Aws;

impl super::SourceKind for Aws {
    const NAME: &'static str = "aws";
    const FEATURE: Option<&'static str> = Some("aws");
    const BUILT_WITH: bool = cfg!(feature = "aws");
    const FAMILIES: &'static [crate::catalogue::MetricDef] = &[
        INSTANCE_STATE,
        INSTANCE_INFO,
        INSTANCE_LAUNCH,
        EIP_ASSOCIATED,
        EIP_INFO,
    ];
    type Settings = Option<AwsConfig>;
    type Facts = AwsFacts;
    type Part = view::Part;

    fn register(config: &Arc<dyn Watched>) -> Result<Vec<Arc<dyn Source>>, SourceError> {
        register(config)
    }
    fn configured(config: &dyn Watched) -> bool {
        config.sources().aws.is_some()
    }
    fn schedule(settings: &Option<AwsConfig>) -> Option<Schedule> {
        settings.as_ref().map(AwsConfig::schedule)
    }
    fn check(
        settings: &Option<AwsConfig>,
        environments: &[crate::inventory::Environment],
    ) -> Vec<(String, String)> {
        let lists_names = environments.iter().any(|e| !e.dns_names.is_empty());
        match settings {
            Some(aws) if lists_names && aws.hosted_zone_id.is_none() => vec![(
                "hosted_zone_id".to_string(),
                "required when an environment lists dns_names (the Route53 zone holding them)"
                    .to_string(),
            )],
            _ => Vec::new(),
        }
    }
}

// Its families.
metric!(INSTANCE_STATE, "fleet_instance_state", Gauge, ["stack", "instance_id", "state"], "EC2 instance state as a state set over pending, running, stopping, stopped, shutting-down and terminated.");
metric!(
    INSTANCE_INFO,
    "fleet_instance_info",
    Gauge,
    ["stack", "instance_id", "instance_type", "instance_zone"],
    "EC2 instance found by the environment's tag; always 1."
);
metric!(
    INSTANCE_LAUNCH,
    "fleet_instance_launch_timestamp_seconds",
    Gauge,
    ["stack", "instance_id"],
    "Launch time of the EC2 instance."
);
metric!(
    EIP_ASSOCIATED,
    "fleet_eip_associated",
    Gauge,
    ["stack", "public_ip"],
    "1 if the environment's Elastic IP is associated with an instance."
);
metric!(EIP_INFO, "fleet_eip_info", Gauge, ["stack", "public_ip", "allocation_id", "instance_id"], "Elastic IP found by the environment's tag and the instance it is associated with (empty if none); always 1.");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::{Facts, SourceKind};

    fn facts() -> AwsFacts {
        AwsFacts {
            instances: vec![Instance {
                stack: "prod".into(),
                instance_id: "i-0aaa".into(),
                state: Some(InstanceState::Stopping),
                instance_type: "t3.small".into(),
                availability_zone: "eu-west-1a".into(),
                launch_time: Some(1_750_000_000.0),
                public_ip: None,
            }],
            addresses: vec![
                ElasticIp {
                    stack: "prod".into(),
                    public_ip: "198.51.100.7".into(),
                    allocation_id: "eipalloc-0a".into(),
                    associated: true,
                    instance_id: Some("i-0aaa".into()),
                },
                ElasticIp {
                    stack: "staging".into(),
                    public_ip: "198.51.100.8".into(),
                    allocation_id: "eipalloc-0b".into(),
                    associated: false,
                    instance_id: None,
                },
            ],
        }
    }

    #[test]
    fn instances_and_addresses_are_written_with_every_state() {
        let written: Vec<String> = ["fleet_instance_", "fleet_eip_"]
            .iter()
            .flat_map(|p| crate::metrics::samples_of(Facts::default().with("aws", facts()), p))
            .collect();
        let state = |s: &str, v: &str| {
            format!(r#"fleet_instance_state{{stack="prod",instance_id="i-0aaa",state="{s}"}} {v}"#)
        };
        assert_eq!(
            written,
            [
                state("pending", "0.0"),
                state("running", "0.0"),
                state("stopping", "1.0"),
                state("stopped", "0.0"),
                state("shutting-down", "0.0"),
                state("terminated", "0.0"),
                r#"fleet_instance_info{stack="prod",instance_id="i-0aaa",instance_type="t3.small",instance_zone="eu-west-1a"} 1.0"#.into(),
                r#"fleet_instance_launch_timestamp_seconds{stack="prod",instance_id="i-0aaa"} 1750000000.0"#.into(),
                r#"fleet_eip_associated{stack="prod",public_ip="198.51.100.7"} 1.0"#.into(),
                r#"fleet_eip_associated{stack="staging",public_ip="198.51.100.8"} 0.0"#.into(),
                r#"fleet_eip_info{stack="prod",public_ip="198.51.100.7",allocation_id="eipalloc-0a",instance_id="i-0aaa"} 1.0"#.into(),
                r#"fleet_eip_info{stack="staging",public_ip="198.51.100.8",allocation_id="eipalloc-0b",instance_id=""} 1.0"#.into(),
            ]
        );
    }

    #[test]
    fn a_removed_environment_takes_its_instances_and_addresses_along() {
        let retire = |f: AwsFacts, envs: &str| {
            let mut facts = Facts::default().with("aws", f);
            facts.retire(&crate::testing::environments(envs));
            facts.get::<AwsFacts>().unwrap().clone()
        };
        let staging = retire(facts(), "  - name: staging\n");
        assert!(staging.instances.is_empty());
        assert_eq!(staging.addresses.len(), 1);
        // Only an address gone: the facts still change.
        let only = retire(
            AwsFacts {
                instances: vec![],
                ..facts()
            },
            "  - name: prod\n",
        );
        assert_eq!(only.addresses.len(), 1);
        assert_eq!(facts().eips_of("staging").count(), 1);
    }

    #[test]
    fn dns_names_need_the_zone_that_holds_them() {
        let config = |yaml: &str, envs: &str| {
            crate::config::Config::parse(&format!("{yaml}environments:\n{envs}"), "fleet.yaml")
        };
        let named = "  - name: prod\n    dns_names: [api.example.net]\n";
        let e = config("sources:\n  aws:\n    region: eu-west-1\n", named)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("sources.aws.hosted_zone_id: required when an environment lists dns_names"),
            "{e}"
        );
        let ok = config(
            "sources:\n  aws:\n    region: eu-west-1\n    hosted_zone_id: Z1\n",
            named,
        )
        .unwrap();
        let aws = ok.sources.aws.clone().unwrap();
        assert!(Aws::check(&Some(aws.clone()), &ok.environments).is_empty());
        assert!(Aws::check(&None, &ok.environments).is_empty());
        assert!(Aws::configured(&ok));
        let s = Aws::schedule(&Some(aws)).unwrap();
        assert_eq!(
            (s.interval.0, s.timeout.0),
            (Duration::from_secs(60), Duration::from_secs(30))
        );
        assert_eq!(Aws::schedule(&None), None);
        let plain = config("", "  - name: prod\n").unwrap();
        assert!(!Aws::configured(&plain));
    }
}
