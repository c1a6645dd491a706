//! The inventory's shape: environments (stacks), their services, boxes and
//! hosts, and what each must look like in the cloud, DNS, OIDC and on chain.
//! Plain data, read from the fleet config; the sources watch it.

use serde::Deserialize;

use crate::values::{Address, HostPort, HttpUrl, Name, Pattern};

/// One environment — a stack: prod or a test slot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    pub name: Name,
    #[serde(default)]
    pub services: Vec<Service>,
    /// Boxes that send a heartbeat at boot.
    #[serde(default)]
    pub boxes: Vec<Name>,
    /// Hosts that push a daily doctor snapshot.
    #[serde(default)]
    pub hosts: Vec<Name>,
    /// The cloud tag that finds this environment's instance(s) and Elastic IP(s).
    #[serde(default)]
    pub aws_tag: Option<Tag>,
    /// The tag that finds its instance(s), when it is not `aws_tag`.
    #[serde(default)]
    pub instance_tag: Option<Tag>,
    /// The tag that finds its Elastic IP(s), when it is not `aws_tag`.
    #[serde(default)]
    pub eip_tag: Option<Tag>,
    /// DNS names that must all resolve to the same A record (the environment's EIP).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// The OIDC issuer the environment must advertise.
    #[serde(default)]
    pub oidc: Option<OidcExpectation>,
    /// Pattern over a CI run's display title, name or head branch that marks
    /// the run as holding this environment's test slot.
    #[serde(default)]
    pub ci_slot: Option<Pattern>,
    /// Deployer wallet address on the chain.
    #[serde(default)]
    pub deployer: Option<String>,
    /// The account (a 32-byte id, hex) that must be registered in the registry contract.
    #[serde(default)]
    pub registry_account: Option<String>,
    /// Where a discovered environment was found (`sources.discovery`);
    /// `None` for one written in the file.
    #[serde(default)]
    pub discovered: Option<String>,
}

/// An environment found in the cloud: instantiated from `template` with
/// `vars`, as if the file listed it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
pub struct Discovered {
    pub name: String,
    pub template: String,
    pub vars: std::collections::BTreeMap<String, String>,
    /// What it was found by, in words: `Elastic IP eipalloc-… tagged Name=broker-eip-test-3`.
    pub origin: String,
}

impl Environment {
    /// The tag its instances carry (`instance_tag`, else `aws_tag`).
    pub fn instance_tag(&self) -> Option<&Tag> {
        self.instance_tag.as_ref().or(self.aws_tag.as_ref())
    }
    /// The tag its Elastic IPs carry (`eip_tag`, else `aws_tag`).
    pub fn eip_tag(&self) -> Option<&Tag> {
        self.eip_tag.as_ref().or(self.aws_tag.as_ref())
    }
}

/// One service of an environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Name,
    /// Its health endpoint.
    #[serde(default)]
    pub healthz: Option<HttpUrl>,
    /// The TLS endpoint to check, `host:port`.
    #[serde(default)]
    pub tls: Option<HostPort>,
    /// Where to connect for both probes, when not at the names above (one
    /// backend behind a shared name, a private address): the names are
    /// still sent as SNI and checked against the certificate, as curl's
    /// `--resolve` does.
    #[serde(default)]
    pub address: Option<Address>,
}

/// A cloud tag `key: value`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Where an environment's OIDC discovery document is and what issuer it must name.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcExpectation {
    /// URL of the discovery document, e.g. `https://host/.well-known/openid-configuration`.
    pub url: HttpUrl,
    /// The issuer it must advertise.
    pub issuer: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(extra: &str) -> Environment {
        crate::config::Config::parse(
            &format!("environments:\n  - name: prod\n{extra}"),
            "fleet.yaml",
        )
        .unwrap()
        .environments
        .remove(0)
    }

    fn tag(key: &str, value: &str) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn each_tag_falls_back_to_the_environments_own() {
        let plain = env("");
        assert_eq!((plain.instance_tag(), plain.eip_tag()), (None, None));
        let shared = env("    aws_tag: {key: Stack, value: prod}\n");
        assert_eq!(shared.instance_tag(), Some(&tag("Stack", "prod")));
        assert_eq!(shared.eip_tag(), Some(&tag("Stack", "prod")));
        let own = env(
            "    aws_tag: {key: Stack, value: prod}\n    instance_tag: {key: Name, value: broker}\n    eip_tag: {key: Name, value: broker-eip}\n",
        );
        assert_eq!(own.instance_tag(), Some(&tag("Name", "broker")));
        assert_eq!(own.eip_tag(), Some(&tag("Name", "broker-eip")));
    }
}
