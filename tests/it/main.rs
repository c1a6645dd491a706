//! The integration tests, as one binary: it links fleetpulse (and the AWS
//! SDK, octocrab and alloy) once rather than once per file. Each module is
//! one area; `common` holds the shared helpers (peers, processes, waiting),
//! `fixtures` plain snapshots, `harness` the cloud, CI and chain peers.
//!
//! `cargo test --test it MODULE::` runs one area.

mod common;
mod fixtures;

mod architecture;
mod browser;
mod catalogue;
mod exporter;
mod history;
mod ingest;
mod page;
mod probes;
mod reload;
mod serving;
mod shipped;
mod status;
mod thresholds;
mod webconfig;

// The areas that start the cloud, CI and chain peers need every source.
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod harness;

#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod aws;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod chain;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod demo;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod discovery;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod faults;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod github;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod oidc;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod prometheus;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod restart;
#[cfg(all(feature = "aws", feature = "github", feature = "chain"))]
mod serve_sources;
