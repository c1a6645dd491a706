//! The aws and dns sources against moto server through the real AWS SDK.

use crate::common;
use crate::harness;

use std::sync::Arc;
use std::time::Duration;

use fleetpulse::config::Config;
use fleetpulse::sources::aws::{AwsFacts, AwsSource, InstanceState};
use fleetpulse::sources::dns::{DnsFacts, DnsSource};
use fleetpulse::sources::Source;

use harness::cloud::{config_yaml, seed, Seeded};

fn config(url: &str, s: &Seeded) -> Arc<Config> {
    Arc::new(Config::parse(&config_yaml(url, s, "30s", ""), "aws.yaml").unwrap())
}

async fn aws_facts(cfg: &Arc<Config>) -> AwsFacts {
    let src = AwsSource::from_config(cfg.clone())
        .unwrap()
        .expect("aws source enabled");
    match src.collect().await {
        Ok(out) => out.downcast_ref::<AwsFacts>().expect("aws facts").clone(),
        other => panic!("aws collect: {other:?}"),
    }
}

async fn dns_facts(cfg: &Arc<Config>) -> DnsFacts {
    let src = DnsSource::from_config(cfg.clone())
        .unwrap()
        .expect("dns source enabled");
    match src.collect().await {
        Ok(out) => out.downcast_ref::<DnsFacts>().expect("dns facts").clone(),
        other => panic!("dns collect: {other:?}"),
    }
}

#[tokio::test]
async fn instances_and_eips_are_found_by_tag_across_environments() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    let f = aws_facts(&config(&moto.url(), &s)).await;

    let ids: Vec<(&str, &str, Option<InstanceState>)> = f
        .instances
        .iter()
        .map(|i| (i.stack.as_str(), i.instance_id.as_str(), i.state))
        .collect();
    let mut want = vec![
        (
            "prod",
            s.prod_instance.as_str(),
            Some(InstanceState::Running),
        ),
        (
            "test-1",
            s.test1_instance.as_str(),
            Some(InstanceState::Stopped),
        ),
        (
            "test-2",
            s.test2_running.as_str(),
            Some(InstanceState::Running),
        ),
        (
            "test-2",
            s.test2_terminated.as_str(),
            Some(InstanceState::Terminated),
        ),
    ];
    want.sort();
    assert_eq!(
        ids, want,
        "the untagged-for-us instance {} must not appear",
        s.stranger_instance
    );

    let prod = f.instances.iter().find(|i| i.stack == "prod").unwrap();
    assert_eq!(prod.instance_type, "t3.small");
    assert!(prod.availability_zone.starts_with("eu-west-1"), "{prod:?}");
    let launched = prod.launch_time.expect("launch time");
    let now = fleetpulse::snapshot::now_unix();
    assert!(
        (now - launched).abs() < 600.0,
        "launch {launched} vs now {now}"
    );

    let eips: Vec<(&str, &str, bool, Option<&str>)> = f
        .addresses
        .iter()
        .map(|a| {
            (
                a.stack.as_str(),
                a.public_ip.as_str(),
                a.associated,
                a.instance_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        eips,
        vec![
            (
                "prod",
                s.prod_eip.as_str(),
                true,
                Some(s.prod_instance.as_str())
            ),
            ("test-1", s.test1_eip.as_str(), false, None),
            (
                "test-2",
                s.test2_eip.as_str(),
                true,
                Some(s.test2_running.as_str())
            ),
        ]
    );
    assert!(f
        .addresses
        .iter()
        .all(|a| a.allocation_id.starts_with("eipalloc-")));
}

#[tokio::test]
async fn a_records_of_listed_names_are_read_from_the_zone() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    let f = dns_facts(&config(&moto.url(), &s)).await;
    let got: Vec<(&str, &str, Vec<&str>)> = f
        .records
        .iter()
        .map(|r| {
            (
                r.stack.as_str(),
                r.name.as_str(),
                r.addresses.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("prod", "broker.example.net", vec![s.prod_eip.as_str()]),
            // Listed as "Worker.Example.NET.": names compare without case or the root dot.
            ("prod", "worker.example.net", vec![s.prod_eip.as_str()]),
            ("test-1", "t1.example.net", vec![s.test1_eip.as_str()]),
            ("test-1", "t1-api.example.net", vec!["192.0.2.10"]),
            ("test-2", "t2.example.net", vec!["192.0.2.20"]),
        ]
    );
}

#[tokio::test]
async fn records_past_the_first_page_of_the_zone_are_found() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    // Route53 answers at most 300 record sets a page; push the listed names past it.
    let filler: Vec<(String, String)> = (0..320)
        .map(|i| {
            (
                format!("aa-{i:03}.example.net"),
                format!("198.51.100.{}", i % 250),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = filler
        .iter()
        .map(|(n, a)| (n.as_str(), a.as_str()))
        .collect();
    harness::cloud::set_a_records(&moto.url(), &s.zone_id, &refs).await;
    harness::cloud::set_a_records(
        &moto.url(),
        &s.zone_id,
        &[("zz.example.net", "203.0.113.9")],
    )
    .await;
    let yaml = config_yaml(&moto.url(), &s, "30s", "").replace(
        "dns_names: [t2.example.net]",
        "dns_names: [t2.example.net, zz.example.net]",
    );
    let cfg = Arc::new(Config::parse(&yaml, "aws.yaml").unwrap());
    let f = dns_facts(&cfg).await;
    let zz = f
        .records
        .iter()
        .find(|r| r.name == "zz.example.net")
        .unwrap();
    assert_eq!(zz.addresses, vec!["203.0.113.9".to_string()]);
}

#[tokio::test]
async fn cloud_families_and_drift_are_served_on_metrics() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    let cfg = config(&moto.url(), &s);
    let running = crate::common::start_exporter(cfg).await;
    let url = format!("http://{}/metrics", running.addr);
    let body = common::eventually(Duration::from_secs(30), "aws and dns up", || {
        let url = url.clone();
        async move {
            let (_, b) = common::get(&url).await;
            (common::sample(&b, r#"fleet_source_up{source="aws"}"#) == Some(1.0)
                && common::sample(&b, r#"fleet_source_up{source="dns"}"#) == Some(1.0))
            .then_some(b)
        }
    })
    .await;
    let has = |series: &str, v: f64| {
        assert_eq!(
            common::sample(&body, series),
            Some(v),
            "{series} in\n{body}"
        );
    };
    let p = &s.prod_instance;
    has(
        &format!(r#"fleet_instance_state{{stack="prod",instance_id="{p}",state="running"}}"#),
        1.0,
    );
    has(
        &format!(r#"fleet_instance_state{{stack="prod",instance_id="{p}",state="stopped"}}"#),
        0.0,
    );
    let t1 = &s.test1_instance;
    has(
        &format!(r#"fleet_instance_state{{stack="test-1",instance_id="{t1}",state="stopped"}}"#),
        1.0,
    );
    assert_eq!(body.matches("fleet_instance_state{").count(), 4 * 6);
    assert!(body.contains(&format!(r#"fleet_instance_info{{stack="prod",instance_id="{p}",instance_type="t3.small",instance_zone="eu-west-1"#)));
    assert!(body.contains(&format!(
        r#"fleet_instance_launch_timestamp_seconds{{stack="prod",instance_id="{p}"}} "#
    )));
    has(
        &format!(
            r#"fleet_eip_associated{{stack="prod",public_ip="{}"}}"#,
            s.prod_eip
        ),
        1.0,
    );
    has(
        &format!(
            r#"fleet_eip_associated{{stack="test-1",public_ip="{}"}}"#,
            s.test1_eip
        ),
        0.0,
    );
    assert!(
        body.contains(&format!(r#",instance_id="{p}"}} 1"#)),
        "eip info names its instance"
    );
    has(
        &format!(
            r#"fleet_dns_record_info{{stack="prod",name="broker.example.net",address="{}"}}"#,
            s.prod_eip
        ),
        1.0,
    );
    has(r#"fleet_drift{stack="prod",kind="dns_mismatch"}"#, 0.0);
    has(r#"fleet_drift{stack="prod",kind="eip_mismatch"}"#, 0.0);
    has(r#"fleet_drift{stack="test-1",kind="dns_mismatch"}"#, 1.0);
    has(r#"fleet_drift{stack="test-1",kind="eip_mismatch"}"#, 1.0);
    // test-2 lists one name: nothing to compare, so no series rather than a 0.
    assert_eq!(
        common::sample(&body, r#"fleet_drift{stack="test-2",kind="dns_mismatch"}"#),
        None
    );
    has(r#"fleet_drift{stack="test-2",kind="eip_mismatch"}"#, 1.0);
    common::promtool_check_metrics(&body);
    running.shutdown().await.unwrap();
}

/// Scrapes the exporter once.
async fn scrape(addr: std::net::SocketAddr) -> String {
    common::get(&format!("http://{addr}/metrics")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_going_away_keeps_last_values_for_staleness_then_drops_them_and_recovers() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    let other = harness::HealthzPeer::start().await;
    let yaml = config_yaml(&moto.url(), &s, "1s", &other.sources_yaml()).replace(
        "environments:\n",
        &format!("environments:\n{}", other.environment_yaml()),
    );
    let cfg = Arc::new(Config::parse(&yaml, "aws.yaml").unwrap());
    let running = crate::common::start_exporter(cfg).await;
    let addr = running.addr;
    let prod = format!(
        r#"fleet_instance_state{{stack="prod",instance_id="{}",state="running"}}"#,
        s.prod_instance
    );
    let up = r#"fleet_source_up{source="aws"}"#;
    let last_ok = r#"fleet_source_last_success_timestamp_seconds{source="aws"}"#;
    let other_ok = r#"fleet_source_last_success_timestamp_seconds{source="healthz"}"#;
    common::eventually(
        Duration::from_secs(20),
        "aws up with prod's instance",
        || async {
            let b = scrape(addr).await;
            (common::sample(&b, up) == Some(1.0) && common::sample(&b, &prod) == Some(1.0))
                .then_some(())
        },
    )
    .await;

    let port = moto.kill();
    let killed_at = fleetpulse::snapshot::now_unix();
    let b = common::eventually(Duration::from_secs(20), "aws down", || async {
        let b = scrape(addr).await;
        (common::sample(&b, up) == Some(0.0)).then_some(b)
    })
    .await;
    assert_eq!(
        common::sample(&b, &prod),
        Some(1.0),
        "last good values are kept while fresh"
    );
    assert!(common::sample(&b, r#"fleet_source_errors_total{source="aws"}"#).unwrap() >= 1.0);
    let last_success = common::sample(&b, last_ok).unwrap();

    let gone = common::eventually(
        Duration::from_secs(20),
        "stale aws values dropped",
        || async {
            let b = scrape(addr).await;
            common::sample(&b, &prod).is_none().then_some(b)
        },
    )
    .await;
    let now = fleetpulse::snapshot::now_unix();
    assert!(
        now - last_success >= 4.0,
        "dropped {:.1} s after the last success, before the 4 s staleness",
        now - last_success
    );
    assert!(
        !gone.contains("fleet_instance_info{"),
        "every aws family goes"
    );
    // The dns source runs on its own schedule against the same peer: its last
    // success may be a little later than the aws source's, so it goes on its
    // own clock, but it goes.
    let gone = common::eventually(
        Duration::from_secs(20),
        "stale dns values dropped",
        || async {
            let b = scrape(addr).await;
            (!b.contains("fleet_dns_record_info{")).then_some(b)
        },
    )
    .await;
    assert_eq!(
        common::sample(&gone, r#"fleet_source_up{source="dns"}"#),
        Some(0.0),
        "dns shares the peer and is down too"
    );
    // The healthz source kept running against its own peer all along.
    assert_eq!(
        common::sample(&gone, r#"fleet_source_up{source="healthz"}"#),
        Some(1.0)
    );
    assert!(
        common::sample(&gone, other_ok).unwrap() > killed_at,
        "healthz stayed fresh"
    );

    let moto = harness::moto(port);
    let s2 = seed(&moto.url()).await;
    // The zone id is new after a restart, so only the aws source recovers here.
    let prod2 = format!(
        r#"fleet_instance_state{{stack="prod",instance_id="{}",state="running"}}"#,
        s2.prod_instance
    );
    common::eventually(Duration::from_secs(20), "aws recovered", || async {
        let b = scrape(addr).await;
        (common::sample(&b, up) == Some(1.0) && common::sample(&b, &prod2) == Some(1.0))
            .then_some(())
    })
    .await;
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn throttled_calls_are_retried_then_given_up_with_the_code() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    let proxy = harness::ThrottlingProxy::start(&moto.url(), 2).await;
    let cfg = config(&proxy.url(), &s);
    let f = aws_facts(&cfg).await;
    assert_eq!(
        f.instances.len(),
        4,
        "the run succeeds after two throttled answers"
    );
    assert_eq!(proxy.throttled(), 2);

    // Throttled every time: the SDK gives up after its attempts, not before, not never.
    let proxy = harness::ThrottlingProxy::start(&moto.url(), u32::MAX).await;
    let src = AwsSource::from_config(config(&proxy.url(), &s))
        .unwrap()
        .unwrap();
    let err = src.collect().await.unwrap_err().to_string();
    assert!(
        err.contains("ec2:DescribeInstances: RequestLimitExceeded"),
        "{err}"
    );
    assert_eq!(proxy.requests(), 4, "four attempts, then the error");
}

#[tokio::test]
async fn missing_credentials_fail_the_source_with_a_log_line_saying_what_to_fix() {
    let moto = harness::moto(0);
    let s = seed(&moto.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("fleet.yaml");
    std::fs::write(&cfg_path, config_yaml(&moto.url(), &s, "2s", "")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fleetpulse"))
        .args(["serve", "--config", cfg_path.to_str().unwrap()])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--state-dir", dir.path().to_str().unwrap()])
        .env_clear()
        .env("HOME", dir.path())
        .env("AWS_CONFIG_FILE", dir.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("FLEETPULSE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let body = common::eventually(Duration::from_secs(30), "aws run failed", || async {
        let r = reqwest::get(format!("http://{addr}/metrics")).await.ok()?;
        let b = r.text().await.ok()?;
        (common::sample(&b, r#"fleet_source_errors_total{source="aws"}"#) >= Some(1.0)).then_some(b)
    })
    .await;
    assert_eq!(
        common::sample(&body, r#"fleet_source_up{source="aws"}"#),
        Some(0.0)
    );
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let log =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("no AWS credentials found"), "{log}");
    assert!(log.contains("AWS_ACCESS_KEY_ID"), "{log}");
}

#[test]
fn iam_policy_allows_exactly_the_calls_made_and_nothing_else() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/aws/iam-policy.json");
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut allowed = Vec::new();
    for st in policy["Statement"].as_array().unwrap() {
        assert_eq!(st["Effect"], "Allow");
        for a in st["Action"].as_array().unwrap() {
            let a = a.as_str().unwrap();
            assert!(!a.contains('*'), "no wildcard actions: {a}");
            allowed.push(a.to_string());
            if a.starts_with("route53:") {
                let r = st["Resource"].as_str().unwrap();
                assert!(
                    r.starts_with("arn:aws:route53:::hostedzone/"),
                    "Route53 limited to the zone: {r}"
                );
            }
        }
    }
    allowed.sort();
    let mut made: Vec<String> = fleetpulse::sources::aws::CALLS
        .iter()
        .chain(fleetpulse::sources::dns::CALLS.iter())
        .map(|s| s.to_string())
        .collect();
    made.sort();
    assert_eq!(allowed, made);
}

/// Runs one instance carrying `tags`.
async fn tagged_instance(ec2: &aws_sdk_ec2::Client, tags: &[(&str, &str)]) -> String {
    use aws_sdk_ec2::types::{InstanceType, ResourceType, Tag, TagSpecification};
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("RunInstances");
    out.instances()[0].instance_id().unwrap().to_string()
}

/// Allocates one Elastic IP carrying `tags`.
async fn tagged_eip(ec2: &aws_sdk_ec2::Client, tags: &[(&str, &str)]) -> String {
    use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};
    let mut spec = TagSpecification::builder().resource_type(ResourceType::ElasticIp);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let a = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(spec.build())
        .send()
        .await
        .expect("AllocateAddress");
    a.public_ip().unwrap().to_string()
}

#[tokio::test]
async fn instances_and_eips_are_found_by_their_own_tags_matched_exactly() {
    let moto = harness::moto(0);
    let url = moto.url();
    let ec2 = aws_sdk_ec2::Client::new(&harness::cloud::sdk(&url).await);
    // An account that tags instances by env and EIPs by Name; staging's
    // tags extend prod's.
    let prod_i = tagged_instance(&ec2, &[("env", "prod")]).await;
    let prod_ip = tagged_eip(&ec2, &[("Name", "broker-eip")]).await;
    let staging_i = tagged_instance(&ec2, &[("env", "prod-staging")]).await;
    let staging_ip = tagged_eip(&ec2, &[("Name", "broker-eip-staging")]).await;
    let slot_i = tagged_instance(&ec2, &[("env", "test-1")]).await;
    let slot_ip = tagged_eip(&ec2, &[("Name", "broker-eip-test-1")]).await;
    // Tagged under the other scheme: not an instance or EIP of anyone here.
    tagged_instance(&ec2, &[("Name", "broker-eip")]).await;
    tagged_eip(&ec2, &[("env", "prod")]).await;

    let yaml = format!(
        "sources:\n  aws:\n    region: eu-west-1\n    endpoint_url: {url}\n\
         environments:\n\
         \x20 - name: prod\n    instance_tag: {{ key: env, value: prod }}\n    eip_tag: {{ key: Name, value: broker-eip }}\n\
         \x20 - name: test-1\n    instance_tag: {{ key: env, value: test-1 }}\n    eip_tag: {{ key: Name, value: broker-eip-test-1 }}\n"
    );
    let cfg = Arc::new(Config::parse(&yaml, "aws.yaml").unwrap());
    let f = aws_facts(&cfg).await;
    let instances: Vec<(&str, &str)> = f
        .instances
        .iter()
        .map(|i| (i.stack.as_str(), i.instance_id.as_str()))
        .collect();
    let mut want = vec![("prod", prod_i.as_str()), ("test-1", slot_i.as_str())];
    want.sort();
    assert_eq!(instances, want, "staging's {staging_i} must not match prod");
    let eips: Vec<(&str, &str)> = f
        .addresses
        .iter()
        .map(|a| (a.stack.as_str(), a.public_ip.as_str()))
        .collect();
    let mut want = vec![("prod", prod_ip.as_str()), ("test-1", slot_ip.as_str())];
    want.sort();
    assert_eq!(eips, want, "staging's {staging_ip} must not match prod");
}

/// An EC2 endpoint answering a 10 MB page (the simulated cloud pads its
/// DescribeInstances answer): the aws source reports an error that says
/// so, without reading the page, and is back once the answers are sized as
/// EC2's are.
#[tokio::test]
async fn an_ec2_page_of_ten_megabytes_is_refused_unread_and_said_so() {
    use fleetpulse::simfleet::cloud::{Cloud, CloudServer, Instance};
    harness::aws_test_credentials();
    let cloud = CloudServer::start(Cloud {
        instances: vec![Instance {
            id: "i-0123456789abcdef0".into(),
            tags: vec![("Stack".into(), "prod".into())],
            state: "running".into(),
            instance_type: "t3.micro".into(),
            zone: "eu-west-1a".into(),
            launch_time: 1_700_000_000,
            public_ip: None,
        }],
        ..Cloud::default()
    })
    .await
    .unwrap();
    let yaml = format!(
        "sources:
  aws:
    region: eu-west-1
    endpoint_url: {}
environments:
  - name: prod
    aws_tag: {{ key: Stack, value: prod }}
",
        cloud.url()
    );
    let cfg = Arc::new(Config::parse(&yaml, "aws.yaml").unwrap());
    let f = aws_facts(&cfg).await;
    assert_eq!(f.instances.len(), 1);

    cloud.with(|c| c.padding = 10 * 1024 * 1024);
    let src = AwsSource::from_config(cfg.clone()).unwrap().unwrap();
    let err = match src.collect().await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a 10 MB page was accepted"),
    };
    assert!(
        err.contains("DescribeInstances") && err.contains("over the 8 MiB fleetpulse reads"),
        "{err}"
    );

    cloud.with(|c| c.padding = 0);
    assert_eq!(aws_facts(&cfg).await.instances.len(), 1);
}
