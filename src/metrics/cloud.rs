//! Families of the cloud, CI and chain part of the snapshot: aws, dns, github
//! and chain facts. A source with no facts (never succeeded, or stale) writes
//! no series.

use std::fmt;

use prometheus_client::encoding::DescriptorEncoder;

use super::{b, family};
use crate::catalogue as cat;
use crate::snapshot::Snapshot;
use crate::sources::aws::InstanceState;

pub(super) fn encode(s: &Snapshot, enc: &mut DescriptorEncoder) -> fmt::Result {
    if let Some(aws) = &s.facts.aws {
        family(
            enc,
            &cat::INSTANCE_STATE,
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
            &cat::INSTANCE_INFO,
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
            &cat::INSTANCE_LAUNCH,
            aws.instances.iter().filter_map(|i| {
                i.launch_time
                    .map(|t| ([i.stack.as_str(), i.instance_id.as_str()], t))
            }),
        )?;
        family(
            enc,
            &cat::EIP_ASSOCIATED,
            aws.addresses
                .iter()
                .map(|a| ([a.stack.as_str(), a.public_ip.as_str()], b(a.associated))),
        )?;
        family(
            enc,
            &cat::EIP_INFO,
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
    }

    if let Some(dns) = &s.facts.dns {
        family(
            enc,
            &cat::DNS_RECORD_INFO,
            dns.records.iter().flat_map(|r| {
                r.addresses
                    .iter()
                    .map(move |a| ([r.stack.as_str(), r.name.as_str(), a.as_str()], 1.0))
            }),
        )?;
    }

    if let Some(gh) = &s.facts.github {
        family(
            enc,
            &cat::CI_SLOT_OCCUPIED,
            gh.slots
                .iter()
                .map(|sl| ([sl.stack.as_str()], b(sl.holder.is_some()))),
        )?;
        family(
            enc,
            &cat::CI_SLOT_QUEUE_DEPTH,
            gh.slots
                .iter()
                .map(|sl| ([sl.stack.as_str()], f64::from(sl.queued))),
        )?;
        family(
            enc,
            &cat::CI_SLOT_RUN_STARTED,
            gh.slots.iter().filter_map(|sl| {
                let started = sl.holder.as_ref()?.started_at?;
                Some(([sl.stack.as_str()], started))
            }),
        )?;
        let run_ids: Vec<String> = gh
            .slots
            .iter()
            .map(|sl| {
                sl.holder
                    .as_ref()
                    .map(|r| r.id.to_string())
                    .unwrap_or_default()
            })
            .collect();
        family(
            enc,
            &cat::CI_SLOT_RUN_INFO,
            gh.slots.iter().zip(&run_ids).filter_map(|(sl, id)| {
                let r = sl.holder.as_ref()?;
                Some((
                    [
                        sl.stack.as_str(),
                        id.as_str(),
                        r.workflow.as_str(),
                        r.branch.as_str(),
                    ],
                    1.0,
                ))
            }),
        )?;
        family(
            enc,
            &cat::GITHUB_HEAD_INFO,
            [([gh.head.branch.as_str(), gh.head.sha.as_str()], 1.0)],
        )?;
        if let Some(rl) = &gh.rate_limit {
            family(
                enc,
                &cat::GITHUB_RATE_LIMIT_REMAINING,
                [([], rl.remaining as f64)],
            )?;
            family(enc, &cat::GITHUB_RATE_LIMIT_RESET, [([], rl.reset)])?;
        }
    }

    if let Some(chain) = &s.facts.chain {
        family(
            enc,
            &cat::DEPLOYER_BALANCE,
            chain
                .balances
                .iter()
                .map(|x| ([x.stack.as_str(), x.address.as_str()], x.balance)),
        )?;
        family(
            enc,
            &cat::REGISTRY_REGISTERED,
            chain
                .registrations
                .iter()
                .map(|r| ([r.stack.as_str()], b(r.registered))),
        )?;
        family(
            enc,
            &cat::CHAIN_BLOCK_NUMBER,
            [([], chain.block_number as f64)],
        )?;
    }
    Ok(())
}
