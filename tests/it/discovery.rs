//! Environments discovered from the cloud: a `fleetpulse serve` watching
//! moto server, where Elastic IPs are allocated and released mid-test.

use crate::common;
use crate::harness;

use std::process::Command;
use std::time::Duration;

use aws_sdk_ec2::types::{DomainType, ResourceType, Tag, TagSpecification};
use common::{eventually, sample, spawn_listening};
use fleetpulse::simfleet::{Authority, Behaviour, SimService};

const BIN: &str = env!("CARGO_BIN_EXE_fleetpulse");

/// Allocates an Elastic IP tagged `key=value`; its allocation id.
async fn eip(ec2: &aws_sdk_ec2::Client, key: &str, value: &str) -> String {
    let a = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::ElasticIp)
                .tags(Tag::builder().key(key).value(value).build())
                .build(),
        )
        .send()
        .await
        .expect("AllocateAddress");
    a.allocation_id().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_tagged_in_the_cloud_appears_within_an_interval_and_goes_when_released() {
    let moto = harness::moto(0);
    let url = moto.url();
    let ec2 = aws_sdk_ec2::Client::new(&harness::cloud::sdk(&url).await);
    eip(&ec2, "Name", "broker-eip").await;
    // Extends a slot's tag: not a slot.
    eip(&ec2, "Name", "broker-eip-test-7-old").await;

    let authority = Authority::new(20).unwrap();
    let service = SimService::start(
        authority.issue(&["localhost"], 30).unwrap(),
        Behaviour::Healthy {
            commit: "abc1234".into(),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, authority.root_pem()).unwrap();
    let file = dir.path().join("fleet.yaml");
    std::fs::write(
        &file,
        format!(
            "listen: 127.0.0.1:0\n\
             sources:\n\
             \x20 aws: {{ interval: 2s, timeout: 2s, region: eu-west-1, endpoint_url: '{url}' }}\n\
             \x20 healthz: {{ interval: 1s, timeout: 1s }}\n\
             \x20 tls: {{ ca_file: '{ca}' }}\n\
             \x20 discovery:\n\
             \x20   - {{ template: slot, tag: Name, pattern: '^broker-eip-test-(\\d+)$', name: 'test-${{1}}' }}\n\
             \x20   - {{ template: slot, tag: Slot, pattern: '^(.+)$' }}\n\
             templates:\n\
             \x20 slot:\n\
             \x20   eip_tag: {{ key: Name, value: 'broker-eip-${{name}}' }}\n\
             \x20   services:\n\
             \x20     - {{ name: broker, healthz: 'https://localhost:{port}/healthz' }}\n\
             environments:\n\
             \x20 - name: prod\n\
             \x20   eip_tag: {{ key: Name, value: broker-eip }}\n",
            ca = ca.display(),
            port = service.port(),
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut cmd = Command::new(BIN);
    cmd.args(["--log.format", "logfmt", "serve", "--config"])
        .arg(&file);
    let process = spawn_listening(
        cmd,
        "fleetpulse: serving on http://127.0.0.1:",
        "fleetpulse serve",
    );
    let base = format!("http://127.0.0.1:{}", process.port);
    let metrics = || {
        let base = base.clone();
        async move { common::get(&format!("{base}/metrics")).await.1 }
    };
    let m = eventually(Duration::from_secs(20), "discovery up", || async {
        let m = metrics().await;
        (sample(&m, r#"fleet_source_up{source="discovery"}"#) == Some(1.0)
            && sample(&m, r#"fleet_source_up{source="aws"}"#) == Some(1.0))
        .then_some(m)
    })
    .await;
    assert!(!m.contains(r#"stack="test-7""#), "{m}");
    assert!(m.contains(r#"fleet_eip_associated{stack="prod""#), "{m}");

    // A new slot's EIP: its environment is on /metrics, its service probed,
    // its EIP found by the template's tag, within an aws interval or two.
    let slot = eip(&ec2, "Name", "broker-eip-test-7").await;
    let m = eventually(
        Duration::from_secs(15),
        "test-7 discovered and probed",
        || async {
            let m = metrics().await;
            (sample(
                &m,
                r#"fleet_service_health{stack="test-7",component="broker",state="green"}"#,
            ) == Some(1.0)
                && m.contains(r#"fleet_eip_associated{stack="test-7""#))
            .then_some(m)
        },
    )
    .await;
    assert!(m.contains(r#"fleet_eip_associated{stack="prod""#), "{m}");
    assert!(!m.contains(r#"stack="test-7-old""#), "{m}");
    let fleet: serde_json::Value =
        serde_json::from_str(&common::get(&format!("{base}/api/v1/fleet")).await.1).unwrap();
    let envs = fleet["environments"].as_array().unwrap();
    let found = envs.iter().find(|e| e["stack"] == "test-7").unwrap();
    assert_eq!(
        found["discovered"].as_str().unwrap(),
        format!("Elastic IP {slot} tagged Name=broker-eip-test-7")
    );
    let prod = envs.iter().find(|e| e["stack"] == "prod").unwrap();
    assert!(prod["discovered"].is_null());

    // A name that cannot be an environment, and one already taken: refused
    // alone, logged once each, counted.
    eip(&ec2, "Slot", "bad name!").await;
    eip(&ec2, "Slot", "prod").await;
    eventually(Duration::from_secs(15), "two refusals counted", || async {
        (sample(&metrics().await, "fleet_discovery_refused_total") == Some(2.0)).then_some(())
    })
    .await;
    let runs = |m: &str| {
        sample(
            m,
            r#"fleet_source_last_success_timestamp_seconds{source="discovery"}"#,
        )
    };
    let seen = runs(&metrics().await);
    eventually(
        Duration::from_secs(15),
        "two more discovery runs",
        || async {
            let m = metrics().await;
            (runs(&m) > seen.map(|t| t + 2.0)).then_some(())
        },
    )
    .await;
    assert_eq!(
        sample(&metrics().await, "fleet_discovery_refused_total"),
        Some(2.0)
    );
    assert_eq!(
        process
            .log()
            .matches("discovered environment refused")
            .count(),
        2,
        "{}",
        process.log()
    );
    assert!(sample(
        &metrics().await,
        r#"fleet_service_health{stack="test-7",component="broker",state="green"}"#
    )
    .is_some());

    // Released: the slot's series go.
    ec2.release_address()
        .allocation_id(&slot)
        .send()
        .await
        .expect("ReleaseAddress");
    let m = eventually(Duration::from_secs(15), "test-7 gone", || async {
        let m = metrics().await;
        (!m.contains(r#"stack="test-7""#)).then_some(m)
    })
    .await;
    assert!(m.contains(r#"fleet_eip_associated{stack="prod""#), "{m}");

    // Two new names at once, one on two addresses: both in force, the
    // doubled one once (the source folds a name found twice), nothing more
    // refused. "prod" was refused as taken, not as the config's duplicate.
    eip(&ec2, "Slot", "test-9").await;
    eip(&ec2, "Slot", "test-9").await;
    eip(&ec2, "Slot", "test-10").await;
    let m = eventually(
        Duration::from_secs(15),
        "test-9 and test-10 in force",
        || async {
            let m = metrics().await;
            (m.contains(r#"stack="test-9""#) && m.contains(r#"stack="test-10""#)).then_some(m)
        },
    )
    .await;
    assert_eq!(sample(&m, "fleet_discovery_refused_total"), Some(2.0));
    assert!(
        process
            .log()
            .contains(r#"environment \"prod\" already exists"#),
        "{}",
        process.log()
    );
}
