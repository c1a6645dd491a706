//! The metric catalogue: every family fleetpulse exposes, its help text, type
//! and label names, in one place. The renderer, the README's metric reference,
//! the dashboards and the alert rules are all checked against this list.

/// How a family is typed in the exposition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down (also used for `_info` and state sets).
    Gauge,
    /// A monotonically increasing count; its name ends in `_total`.
    Counter,
}

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Full sample name, including `_total` for counters.
    pub name: &'static str,
    /// One-line help text.
    pub help: &'static str,
    pub kind: Kind,
    /// Label names, in the order they are written.
    pub labels: &'static [&'static str],
}

macro_rules! metric {
    ($ident:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal) => {
        pub const $ident: MetricDef = MetricDef {
            name: $name,
            help: $help,
            kind: Kind::$kind,
            labels: &[$($label),*],
        };
    };
}

// The exporter itself.
metric!(
    BUILD_INFO,
    "fleet_exporter_build_info",
    Gauge,
    ["version", "revision", "branch", "rustc_version"],
    "fleetpulse build information (version, git revision and branch, compiler); always 1."
);
metric!(
    HANDLER_PANICS,
    "fleet_exporter_handler_panics_total",
    Counter,
    [],
    "HTTP requests whose handler panicked; each was answered 500 and logged with its route."
);
metric!(
    SOURCE_UP,
    "fleet_source_up",
    Gauge,
    ["source"],
    "1 if the source's last run succeeded, 0 if it failed or timed out, or has not run since start-up and none was kept from before it."
);
metric!(
    SOURCE_LAST_SUCCESS,
    "fleet_source_last_success_timestamp_seconds",
    Gauge,
    ["source"],
    "Unix time of the source's last successful run."
);
metric!(
    SOURCE_DURATION,
    "fleet_source_duration_seconds",
    Gauge,
    ["source"],
    "Wall time of the source's last run."
);
metric!(
    SOURCE_ERRORS,
    "fleet_source_errors_total",
    Counter,
    ["source"],
    "Runs of the source that failed or timed out."
);

// healthz
metric!(
    SERVICE_HEALTH,
    "fleet_service_health",
    Gauge,
    ["stack", "service", "state"],
    "Service health as a state set over green, degraded and red; exactly one is 1."
);
metric!(
    SERVICE_STATUS_CODE,
    "fleet_service_http_status_code",
    Gauge,
    ["stack", "service"],
    "HTTP status code of the last /healthz probe; 0 when no response arrived."
);
metric!(
    SERVICE_PROBE_DURATION,
    "fleet_service_probe_duration_seconds",
    Gauge,
    ["stack", "service"],
    "Duration of the last /healthz probe."
);
metric!(
    SERVICE_COMMIT_INFO,
    "fleet_service_commit_info",
    Gauge,
    ["stack", "service", "commit"],
    "The commit a service reports on /healthz; always 1."
);

// tls
metric!(
    TLS_UP,
    "fleet_tls_up",
    Gauge,
    ["stack", "host"],
    "1 if the TLS handshake completed and a certificate was presented."
);
metric!(
    TLS_CERT_NOT_AFTER,
    "fleet_tls_cert_not_after_timestamp_seconds",
    Gauge,
    ["stack", "host"],
    "Expiry (notAfter) of the leaf certificate."
);
metric!(
    TLS_CHAIN_NOT_AFTER,
    "fleet_tls_chain_earliest_not_after_timestamp_seconds",
    Gauge,
    ["stack", "host"],
    "Earliest expiry (notAfter) of any certificate in the presented chain."
);
metric!(
    TLS_CHAIN_VALID,
    "fleet_tls_chain_valid",
    Gauge,
    ["stack", "host"],
    "1 if the presented chain verifies against the trust roots for the host name."
);

// aws
metric!(INSTANCE_STATE, "fleet_instance_state", Gauge, ["stack", "instance_id", "state"], "EC2 instance state as a state set over pending, running, stopping, stopped, shutting-down and terminated.");
metric!(
    INSTANCE_INFO,
    "fleet_instance_info",
    Gauge,
    ["stack", "instance_id", "instance_type", "availability_zone"],
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

// dns
metric!(
    DNS_RECORD_INFO,
    "fleet_dns_record_info",
    Gauge,
    ["stack", "name", "address"],
    "A record of a DNS name the inventory lists; always 1."
);

// github
metric!(
    CI_SLOT_OCCUPIED,
    "fleet_ci_slot_occupied",
    Gauge,
    ["stack"],
    "1 if a CI run currently holds the test slot."
);
metric!(
    CI_SLOT_QUEUE_DEPTH,
    "fleet_ci_slot_queue_depth",
    Gauge,
    ["stack"],
    "CI runs queued behind the one holding the test slot."
);
metric!(
    CI_SLOT_RUN_STARTED,
    "fleet_ci_slot_run_started_timestamp_seconds",
    Gauge,
    ["stack"],
    "Start time of the CI run holding the test slot."
);
metric!(
    CI_SLOT_RUN_INFO,
    "fleet_ci_slot_run_info",
    Gauge,
    ["stack", "run_id", "workflow", "branch"],
    "The CI run holding the test slot; always 1."
);
metric!(
    GITHUB_HEAD_INFO,
    "fleet_github_head_commit_info",
    Gauge,
    ["branch", "commit"],
    "Head commit of the main branch; always 1."
);
metric!(
    GITHUB_RATE_LIMIT_REMAINING,
    "fleet_github_rate_limit_remaining",
    Gauge,
    [],
    "GitHub API requests left in the current rate-limit window."
);
metric!(
    GITHUB_RATE_LIMIT_RESET,
    "fleet_github_rate_limit_reset_timestamp_seconds",
    Gauge,
    [],
    "When the GitHub API rate-limit window resets."
);

// chain
metric!(
    DEPLOYER_BALANCE,
    "fleet_deployer_balance",
    Gauge,
    ["stack", "address"],
    "Deployer wallet balance in whole tokens."
);
metric!(
    REGISTRY_REGISTERED,
    "fleet_registry_registered",
    Gauge,
    ["stack"],
    "1 if the environment's account is registered in the registry contract."
);
metric!(
    CHAIN_BLOCK_NUMBER,
    "fleet_chain_block_number",
    Gauge,
    [],
    "Latest block number seen on the chain RPC."
);

// drift
metric!(
    DRIFT,
    "fleet_drift",
    Gauge,
    ["stack", "kind"],
    "1 if the environment has drifted in this way, 0 if it agrees; absent when unknown."
);

// ingest
metric!(
    HEARTBEAT_TIMESTAMP,
    "fleet_heartbeat_timestamp_seconds",
    Gauge,
    ["stack", "box"],
    "Time of the box's last boot heartbeat."
);
metric!(
    HEARTBEATS,
    "fleet_heartbeats_total",
    Counter,
    ["stack", "box"],
    "Boot heartbeats received from the box."
);
metric!(
    BOX_EXPECTED,
    "fleet_box_expected",
    Gauge,
    ["stack", "box"],
    "1 for every box listed in the inventory."
);
metric!(
    BOX_COMMIT_INFO,
    "fleet_box_commit_info",
    Gauge,
    ["stack", "box", "commit", "version"],
    "Commit and version the box reported in its last heartbeat; always 1."
);
metric!(
    TEST_RUN_TESTS,
    "fleet_test_run_tests",
    Gauge,
    ["stack", "service", "outcome"],
    "Tests in the newest run of the service's suite, by outcome (passed, failed, skipped)."
);
metric!(
    TEST_RUN_TIMESTAMP,
    "fleet_test_run_timestamp_seconds",
    Gauge,
    ["stack", "service"],
    "Start time of the newest test run of the service."
);
metric!(
    TEST_RUN_DURATION,
    "fleet_test_run_duration_seconds",
    Gauge,
    ["stack", "service"],
    "Duration of the newest test run of the service."
);
metric!(
    TEST_RUN_INFO,
    "fleet_test_run_info",
    Gauge,
    ["stack", "service", "commit"],
    "Commit the newest test run of the service was made against; always 1."
);
metric!(
    TEST_MUTANTS,
    "fleet_test_mutants",
    Gauge,
    ["service", "outcome"],
    "Mutants in the newest mutation-testing run, by outcome (caught, missed, timeout, unviable)."
);
metric!(
    TEST_MUTANTS_TIMESTAMP,
    "fleet_test_mutants_timestamp_seconds",
    Gauge,
    ["service"],
    "When the newest mutation-testing result of the service was received."
);
metric!(
    HOST_HEALTH_CHECKS,
    "fleet_host_health_checks",
    Gauge,
    ["host", "status"],
    "Checks in the host's newest doctor snapshot, by status (ok, warn, fail)."
);
metric!(
    HOST_HEALTH_TIMESTAMP,
    "fleet_host_health_timestamp_seconds",
    Gauge,
    ["host"],
    "When the host's newest doctor snapshot was received."
);
metric!(
    INGEST_REQUESTS,
    "fleet_ingest_requests_total",
    Counter,
    ["host", "code"],
    "Push requests received, by the name pushed for and the HTTP status answered."
);
metric!(
    INGEST_UNSTAMPED,
    "fleet_ingest_unstamped_requests_total",
    Counter,
    ["host"],
    "Push requests that carried no X-Fleet-Commit header."
);

// The process, as every Prometheus client library names it (client_golang's
// process collector): standard names, no `fleet_` prefix.
metric!(
    PROCESS_CPU,
    "process_cpu_seconds_total",
    Counter,
    [],
    "Total user and system CPU time spent in seconds."
);
metric!(
    PROCESS_RESIDENT,
    "process_resident_memory_bytes",
    Gauge,
    [],
    "Resident memory size in bytes."
);
metric!(
    PROCESS_VIRTUAL,
    "process_virtual_memory_bytes",
    Gauge,
    [],
    "Virtual memory size in bytes."
);
metric!(
    PROCESS_OPEN_FDS,
    "process_open_fds",
    Gauge,
    [],
    "Number of open file descriptors."
);
metric!(
    PROCESS_MAX_FDS,
    "process_max_fds",
    Gauge,
    [],
    "Maximum number of open file descriptors (absent when unlimited)."
);
metric!(
    PROCESS_START,
    "process_start_time_seconds",
    Gauge,
    [],
    "Start time of the process since unix epoch in seconds."
);

/// Every family, in exposition order.
pub const ALL: &[MetricDef] = &[
    BUILD_INFO,
    HANDLER_PANICS,
    PROCESS_CPU,
    PROCESS_RESIDENT,
    PROCESS_VIRTUAL,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    PROCESS_START,
    SOURCE_UP,
    SOURCE_LAST_SUCCESS,
    SOURCE_DURATION,
    SOURCE_ERRORS,
    SERVICE_HEALTH,
    SERVICE_STATUS_CODE,
    SERVICE_PROBE_DURATION,
    SERVICE_COMMIT_INFO,
    TLS_UP,
    TLS_CERT_NOT_AFTER,
    TLS_CHAIN_NOT_AFTER,
    TLS_CHAIN_VALID,
    INSTANCE_STATE,
    INSTANCE_INFO,
    INSTANCE_LAUNCH,
    EIP_ASSOCIATED,
    EIP_INFO,
    DNS_RECORD_INFO,
    CI_SLOT_OCCUPIED,
    CI_SLOT_QUEUE_DEPTH,
    CI_SLOT_RUN_STARTED,
    CI_SLOT_RUN_INFO,
    GITHUB_HEAD_INFO,
    GITHUB_RATE_LIMIT_REMAINING,
    GITHUB_RATE_LIMIT_RESET,
    DEPLOYER_BALANCE,
    REGISTRY_REGISTERED,
    CHAIN_BLOCK_NUMBER,
    DRIFT,
    HEARTBEAT_TIMESTAMP,
    HEARTBEATS,
    BOX_EXPECTED,
    BOX_COMMIT_INFO,
    TEST_RUN_TESTS,
    TEST_RUN_TIMESTAMP,
    TEST_RUN_DURATION,
    TEST_RUN_INFO,
    TEST_MUTANTS,
    TEST_MUTANTS_TIMESTAMP,
    HOST_HEALTH_CHECKS,
    HOST_HEALTH_TIMESTAMP,
    INGEST_REQUESTS,
    INGEST_UNSTAMPED,
];

/// Looks a family up by its sample name.
pub fn find(name: &str) -> Option<&'static MetricDef> {
    ALL.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(
                m.name.starts_with("fleet_") || m.name.starts_with("process_"),
                "{}",
                m.name
            );
            assert_eq!(
                m.kind == Kind::Counter,
                m.name.ends_with("_total"),
                "{}",
                m.name
            );
            for l in m.labels {
                assert!(
                    !["env", "environment", "type"].contains(l),
                    "{} uses label {l}",
                    m.name
                );
            }
            if m.name.ends_with("_info") {
                assert_eq!(m.kind, Kind::Gauge);
            }
        }
    }
}
