//! fleetpulse: watches a fleet of environments and says, as Prometheus
//! metrics, a status page and a terminal board, what is running, what is
//! healthy and what has drifted; and receives the pushes of its boxes.
//!
//! Data flows one way: config → sources → hub → snapshot → views. Ingest
//! writes to the store and publishes the pulse into the hub.

pub mod api;
pub mod app;
pub mod board;
pub mod build;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod demo;
pub mod drift;
pub mod events_cli;
pub mod exposition;
pub mod health;
pub mod history;
pub mod hub;
pub mod ingest;
pub mod inventory;
pub mod metrics;
pub mod pulse;
pub mod push;
pub mod scheduler;
pub mod server;
pub mod shard;
pub mod simfleet;
pub mod snapshot;
pub mod sources;
pub mod status_cli;
pub mod store;
#[cfg(test)]
mod testing;
pub mod thresholds;
pub mod values;
pub mod views;
pub mod webconfig;
