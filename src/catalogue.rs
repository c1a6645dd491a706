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

/// Declares one family: `metric!(IDENT, "name", Gauge|Counter, ["label", …], "help")`.
/// Sources declare theirs in their own modules with it.
macro_rules! metric {
    ($ident:ident, $name:literal, $kind:ident, [$($label:literal),*], $help:literal) => {
        pub const $ident: $crate::catalogue::MetricDef = $crate::catalogue::MetricDef {
            name: $name,
            help: $help,
            kind: $crate::catalogue::Kind::$kind,
            labels: &[$($label),*],
        };
    };
}
pub(crate) use metric;

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
    CONFIG_RELOAD_SUCCESSFUL,
    "fleet_config_last_reload_successful",
    Gauge,
    [],
    "1 if the last reload of the config (SIGHUP or POST /-/reload) succeeded, 0 if the file was refused and the previous config kept serving."
);
metric!(
    CONFIG_RELOAD_SUCCESS_TIME,
    "fleet_config_last_reload_success_timestamp_seconds",
    Gauge,
    [],
    "Unix time the config last loaded successfully, at start-up or on a reload."
);
metric!(
    DISCOVERY_REFUSED,
    "fleet_discovery_refused_total",
    Counter,
    [],
    "Environments found by sources.discovery that were refused (a name that is not valid or is taken, a template that does not expand for them); each is logged once."
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
    ["stack", "component", "outcome"],
    "Tests in the newest run of the service's suite, by outcome (passed, failed, skipped)."
);
metric!(
    TEST_RUN_TIMESTAMP,
    "fleet_test_run_timestamp_seconds",
    Gauge,
    ["stack", "component"],
    "Start time of the newest test run of the service."
);
metric!(
    TEST_RUN_DURATION,
    "fleet_test_run_duration_seconds",
    Gauge,
    ["stack", "component"],
    "Duration of the newest test run of the service."
);
metric!(
    TEST_RUN_INFO,
    "fleet_test_run_info",
    Gauge,
    ["stack", "component", "commit"],
    "Commit the newest test run of the service was made against; always 1."
);
metric!(
    TEST_MUTANTS,
    "fleet_test_mutants",
    Gauge,
    ["stack", "component", "outcome"],
    "Mutants in the newest mutation-testing run, by outcome (caught, missed, timeout, unviable)."
);
metric!(
    TEST_MUTANTS_TIMESTAMP,
    "fleet_test_mutants_timestamp_seconds",
    Gauge,
    ["stack", "component"],
    "When the newest mutation-testing result of the service was received."
);
metric!(
    HOST_HEALTH_CHECKS,
    "fleet_host_health_checks",
    Gauge,
    ["stack", "host", "status"],
    "Checks in the host's newest doctor snapshot, by status (ok, warn, fail)."
);
metric!(
    HOST_HEALTH_TIMESTAMP,
    "fleet_host_health_timestamp_seconds",
    Gauge,
    ["stack", "host"],
    "When the host's newest doctor snapshot was received."
);
metric!(
    INGEST_REQUESTS,
    "fleet_ingest_requests_total",
    Counter,
    ["stack", "pusher", "code"],
    "Push requests received, by the name pushed for and the HTTP status answered."
);
metric!(
    INGEST_UNSTAMPED,
    "fleet_ingest_unstamped_requests_total",
    Counter,
    ["stack", "pusher"],
    "Push requests that carried no X-Fleet-Commit header."
);

// History: changes recorded in the store (with a state_dir). Counters count
// changes, not first sightings, and survive restarts and pruning.
metric!(
    HEALTH_CHANGES,
    "fleet_service_health_changes_total",
    Counter,
    ["stack", "component"],
    "Changes of the service's health state (green, degraded, red) recorded in the history; for flap alerts."
);
metric!(
    HEALTH_SINCE,
    "fleet_service_health_since_timestamp_seconds",
    Gauge,
    ["stack", "component"],
    "When the service's current health state began: its last change, or when it was first seen."
);
metric!(
    SERVICE_COMMIT_CHANGES,
    "fleet_service_commit_changes_total",
    Counter,
    ["stack", "component"],
    "Deploys: changes of the commit the service reports on /healthz."
);
metric!(
    BOX_COMMIT_CHANGES,
    "fleet_box_commit_changes_total",
    Counter,
    ["stack", "box"],
    "Deploys: changes of the commit the box reports in its heartbeats."
);
metric!(
    CI_SLOT_HOLDER_CHANGES,
    "fleet_ci_slot_holder_changes_total",
    Counter,
    ["stack"],
    "Changes of the CI slot's holder: a run starts holding it, or releases it."
);
metric!(
    TLS_CERT_ROTATIONS,
    "fleet_tls_cert_rotations_total",
    Counter,
    ["stack", "endpoint"],
    "Rotations: changes of the leaf certificate's expiry the endpoint presents."
);
metric!(
    DRIFT_CHANGES,
    "fleet_drift_changes_total",
    Counter,
    ["stack", "kind"],
    "Changes of the drift flag: raised or cleared."
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

/// The exporter's own families, written first.
pub const EXPORTER: &[MetricDef] = &[
    BUILD_INFO,
    HANDLER_PANICS,
    CONFIG_RELOAD_SUCCESSFUL,
    CONFIG_RELOAD_SUCCESS_TIME,
    DISCOVERY_REFUSED,
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
];

/// The families of the fleet that are not a source's: drift, pushes and
/// history, written after every source's.
pub const FLEET: &[MetricDef] = &[
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
    HEALTH_CHANGES,
    HEALTH_SINCE,
    SERVICE_COMMIT_CHANGES,
    BOX_COMMIT_CHANGES,
    CI_SLOT_HOLDER_CHANGES,
    TLS_CERT_ROTATIONS,
    DRIFT_CHANGES,
];
