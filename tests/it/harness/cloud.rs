//! A small fleet seeded into moto through the real AWS SDK.

use aws_sdk_ec2::types::{DomainType, InstanceType, ResourceType, Tag as Ec2Tag, TagSpecification};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

/// What was created, for the assertions.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub zone_id: String,
    /// prod: one running t3.small with an associated EIP; its two names agree.
    pub prod_instance: String,
    pub prod_eip: String,
    /// test-1: a stopped instance and an unassociated EIP; its names disagree.
    pub test1_instance: String,
    pub test1_eip: String,
    /// test-2: a running and a terminated instance; its name is not its EIP.
    pub test2_running: String,
    pub test2_terminated: String,
    pub test2_eip: String,
    /// Tagged for an environment the inventory does not list.
    pub stranger_instance: String,
}

/// An SDK config pointed at moto.
pub async fn sdk(url: &str) -> aws_config::SdkConfig {
    super::aws_test_credentials();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-1"))
        .endpoint_url(url)
        .load()
        .await
}

fn tag(resource: ResourceType, value: &str) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(resource)
        .tags(Ec2Tag::builder().key("Stack").value(value).build())
        .build()
}

async fn run(ec2: &aws_sdk_ec2::Client, stack: &str, ty: InstanceType) -> String {
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .instance_type(ty)
        .min_count(1)
        .max_count(1)
        .tag_specifications(tag(ResourceType::Instance, stack))
        .send()
        .await
        .expect("RunInstances");
    out.instances()[0].instance_id().unwrap().to_string()
}

async fn eip(ec2: &aws_sdk_ec2::Client, stack: &str, instance: Option<&str>) -> String {
    let a = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(tag(ResourceType::ElasticIp, stack))
        .send()
        .await
        .expect("AllocateAddress");
    if let Some(i) = instance {
        ec2.associate_address()
            .allocation_id(a.allocation_id().unwrap())
            .instance_id(i)
            .send()
            .await
            .expect("AssociateAddress");
    }
    a.public_ip().unwrap().to_string()
}

/// Upserts A records in the zone.
pub async fn set_a_records(url: &str, zone_id: &str, records: &[(&str, &str)]) {
    let r53 = aws_sdk_route53::Client::new(&sdk(url).await);
    let mut batch = ChangeBatch::builder();
    for (name, ip) in records {
        batch = batch.changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(
                    ResourceRecordSet::builder()
                        .name(*name)
                        .r#type(RrType::A)
                        .ttl(60)
                        .resource_records(ResourceRecord::builder().value(*ip).build().unwrap())
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        );
    }
    r53.change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch.build().unwrap())
        .send()
        .await
        .expect("ChangeResourceRecordSets");
}

/// Seeds three environments' instances, EIPs and DNS records.
pub async fn seed(url: &str) -> Seeded {
    let conf = sdk(url).await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let prod_instance = run(&ec2, "prod", InstanceType::T3Small).await;
    let prod_eip = eip(&ec2, "prod", Some(&prod_instance)).await;
    let test1_instance = run(&ec2, "test-1", InstanceType::T3Micro).await;
    ec2.stop_instances()
        .instance_ids(&test1_instance)
        .send()
        .await
        .expect("StopInstances");
    let test1_eip = eip(&ec2, "test-1", None).await;
    let test2_running = run(&ec2, "test-2", InstanceType::T3Micro).await;
    let test2_terminated = run(&ec2, "test-2", InstanceType::T3Micro).await;
    ec2.terminate_instances()
        .instance_ids(&test2_terminated)
        .send()
        .await
        .expect("TerminateInstances");
    let test2_eip = eip(&ec2, "test-2", Some(&test2_running)).await;
    let stranger_instance = run(&ec2, "elsewhere", InstanceType::T3Micro).await;
    eip(&ec2, "elsewhere", Some(&stranger_instance)).await;

    let r53 = aws_sdk_route53::Client::new(&conf);
    let zone = r53
        .create_hosted_zone()
        .name("example.net")
        .caller_reference(format!("fleetpulse-{}", std::process::id()))
        .send()
        .await
        .expect("CreateHostedZone");
    let zone_id = zone.hosted_zone().unwrap().id().to_string();
    set_a_records(
        url,
        &zone_id,
        &[
            ("broker.example.net", &prod_eip),
            ("worker.example.net", &prod_eip),
            ("t1.example.net", &test1_eip),
            ("t1-api.example.net", "192.0.2.10"),
            ("t2.example.net", "192.0.2.20"),
            ("elsewhere.example.net", "192.0.2.30"),
        ],
    )
    .await;
    Seeded {
        zone_id,
        prod_instance,
        prod_eip,
        test1_instance,
        test1_eip,
        test2_running,
        test2_terminated,
        test2_eip,
        stranger_instance,
    }
}

/// The inventory for the seeded fleet (aws and dns parts), with `extra`
/// spliced into `sources:` and `env_extra[stack]` into each environment.
pub fn config_yaml(url: &str, s: &Seeded, interval: &str, extra_sources: &str) -> String {
    format!(
        "sources:
  staleness: 4s
  aws:
    interval: {interval}
    timeout: {interval}
    region: eu-west-1
    endpoint_url: {url}
    hosted_zone_id: {zone}
{extra_sources}environments:
  - name: prod
    aws_tag: {{ key: Stack, value: prod }}
    dns_names: [broker.example.net, Worker.Example.NET.]
  - name: test-1
    aws_tag: {{ key: Stack, value: test-1 }}
    dns_names: [t1.example.net, t1-api.example.net]
  - name: test-2
    aws_tag: {{ key: Stack, value: test-2 }}
    dns_names: [t2.example.net]
",
        zone = s.zone_id
    )
}
