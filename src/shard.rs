//! Sharding: splitting one inventory across several exporters.
//!
//! `fleetpulse serve --shard i/n` keeps only the environments whose stable
//! hash of the name falls in shard `i` of `n`. The hash is FNV-1a (64-bit) of
//! the name's bytes: the same on every machine, build and run, unlike Rust's
//! randomised `HashMap` hasher, so `n` exporters given the same file cover the
//! fleet exactly once between them.

use std::fmt;
use std::str::FromStr;

use crate::config::Config;

/// One shard of `count`: `index` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// Why a `--shard` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard {given:?}: {reason} (expected i/n with 0 <= i < n, e.g. 0/4)")]
pub struct ShardParseError {
    given: String,
    reason: &'static str,
}

impl FromStr for Shard {
    type Err = ShardParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ShardParseError {
            given: s.to_string(),
            reason,
        };
        let (i, n) = s.split_once('/').ok_or_else(|| err("no '/'"))?;
        let index: u32 = i.trim().parse().map_err(|_| err("i is not a number"))?;
        let count: u32 = n.trim().parse().map_err(|_| err("n is not a number"))?;
        if count == 0 {
            return Err(err("n must be at least 1"));
        }
        if index >= count {
            return Err(err("i must be less than n"));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64-bit: small, fast, and stable across platforms and releases.
pub fn stable_hash(name: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    name.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The shard (0-based, of `count`) that owns the environment called `name`.
/// `count` of 0 is treated as 1.
pub fn shard_of(name: &str, count: u32) -> u32 {
    // The remainder is below `count`, itself a u32, so it fits.
    (stable_hash(name) % u64::from(count.max(1))) as u32
}

impl Shard {
    /// Whether this shard owns the environment called `name`.
    pub fn owns(&self, name: &str) -> bool {
        shard_of(name, self.count) == self.index
    }

    /// Keeps only the environments this shard owns. Everything else in the
    /// config (sources, ingest, listen address) is left as it was.
    pub fn apply(&self, config: &mut Config) {
        config.environments.retain(|e| self.owns(e.name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet(n: usize) -> Config {
        let mut y = String::from("environments:\n  - name: prod\n");
        for i in 1..n {
            y.push_str(&format!("  - name: test-{i}\n"));
        }
        match Config::parse(&y, "fleet.yaml") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn shards_partition_the_fleet_exactly_for_every_n_up_to_8() {
        let full = fleet(500);
        let names: Vec<String> = full
            .environments
            .iter()
            .map(|e| e.name.as_str().to_string())
            .collect();
        for count in 1..=8u32 {
            let mut seen: Vec<usize> = vec![0; names.len()];
            for index in 0..count {
                let mut c = full.clone();
                Shard { index, count }.apply(&mut c);
                for e in &c.environments {
                    let pos = names
                        .iter()
                        .position(|n| n == e.name.as_str())
                        .unwrap_or_else(|| panic!("{} not in the fleet", e.name.as_str()));
                    seen[pos] += 1;
                }
            }
            for (name, times) in names.iter().zip(&seen) {
                assert_eq!(*times, 1, "n={count}: {name} is in {times} shards");
            }
        }
    }

    #[test]
    fn shards_are_roughly_even() {
        let full = fleet(1000);
        for count in 2..=8u32 {
            for index in 0..count {
                let mut c = full.clone();
                Shard { index, count }.apply(&mut c);
                let expected = 1000 / count as usize;
                let got = c.environments.len();
                assert!(
                    got > expected / 2 && got < expected * 3 / 2,
                    "shard {index}/{count} got {got}, expected about {expected}"
                );
            }
        }
    }

    #[test]
    fn the_hash_is_stable_across_builds() {
        // Published FNV-1a 64 test vectors: a change here would move
        // environments between shards on upgrade.
        assert_eq!(stable_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(stable_hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn one_shard_keeps_everything() {
        let mut c = fleet(50);
        Shard { index: 0, count: 1 }.apply(&mut c);
        assert_eq!(c.environments.len(), 50);
    }

    #[test]
    fn shard_flags_parse_and_bad_ones_say_why() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(
            "0/1".parse::<Shard>().map(|s| s.to_string()),
            Ok("0/1".into())
        );
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2", ""] {
            let e = bad.parse::<Shard>().expect_err(bad).to_string();
            assert!(e.contains("--shard") && e.contains("i/n"), "{bad}: {e}");
        }
    }
}
