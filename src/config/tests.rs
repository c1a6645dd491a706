//! The config reader's tests: good files, every error class, all errors at once.

use super::*;

const GOOD: &str = "\
listen: 127.0.0.1:9999
environments:
  - name: prod
    boxes: [prod-box]
    services:
      - name: broker
        healthz: https://broker.example.com/healthz
        tls: broker.example.com:443
";

#[test]
fn good_config_parses_with_defaults() {
    let c = Config::parse(GOOD, "fleet.yaml").unwrap();
    assert_eq!(c.environments[0].services[0].name.0, "broker");
    assert_eq!(c.sources.healthz.interval.0, Duration::from_secs(15));
    assert_eq!(c.stack_of_box("prod-box").unwrap().0, "prod");
    assert!(c.has_service("broker"));
    assert!(!c.has_service("nope"));
}

#[test]
fn unset_settings_take_the_defaults_the_readme_gives() {
    let c = Config::parse(GOOD, "fleet.yaml").unwrap();
    let day = 86400;
    assert!(c.history.enabled);
    assert_eq!(c.history.retention.0, Duration::from_secs(90 * day));
    assert_eq!(c.ingest.retention.0, Duration::from_secs(30 * day));
    assert_eq!(c.ingest.max_body_bytes, 1024 * 1024);
    assert_eq!(c.ingest.max_junit_bytes, 16 * 1024 * 1024);
    assert_eq!(c.ingest.unknown_names_cap, 0);
    assert_eq!(c.web.max_connections, 1024);
    assert_eq!(c.web.request_timeout.0, Duration::from_secs(30));
}

#[test]
fn an_environment_is_found_by_its_name() {
    let c = Config::parse(GOOD, "fleet.yaml").unwrap();
    assert_eq!(
        c.environment("prod").map(|e| e.name.0.as_str()),
        Some("prod")
    );
    assert!(c.environment("test").is_none());
}

fn err(text: &str) -> String {
    Config::parse(text, "fleet.yaml").unwrap_err().to_string()
}

#[test]
fn each_error_class_names_file_line_column_and_field() {
    let cases: &[(&str, &str)] = &[
        (
            "environments:\n  - name: prod\n    services:\n      - name: broker\n        healthz: broker/healthz\n",
            "fleet.yaml:5:18: environments[0].services[0].healthz: not a URL: \"broker/healthz\"",
        ),
        (
            "environments:\n  - name: prod\n    services:\n      - name: broker\n        tls: broker.example.com\n",
            "fleet.yaml:5:14: environments[0].services[0].tls: not host:port",
        ),
        (
            "environments:\n  - name: pr od\n",
            "fleet.yaml:2:11: environments[0].name: not a valid name",
        ),
        (
            "environments:\n  - name: prod\n    colour: blue\n",
            "fleet.yaml:3:5: environments[0].colour: unknown field `colour`, expected one of `name`",
        ),
        (
            "sources:\n  healthz:\n    interval: soon\nenvironments: []\n",
            "fleet.yaml:3:15: sources.healthz.interval: not a duration",
        ),
        (
            "listen: nowhere\nenvironments: []\n",
            "fleet.yaml:1:9: listen: invalid socket address",
        ),
        ("environments: []\n", "fleet.yaml:1:1: environments: at least one"),
        (
            "environments:\n  - name: prod\n  - name: prod\n",
            "fleet.yaml:3:11: environments[1].name: duplicate environment name",
        ),
        (
            "environments:\n  - name: prod\n    deployer: 0x12\n",
            "fleet.yaml:3:15: environments[0].deployer: not an address",
        ),
        (
            "environments:\n  - name: prod\n    ci_slot: '('\n",
            "fleet.yaml:3:14: environments[0].ci_slot: not a regular expression",
        ),
        (
            "sources:\n  github:\n    repo: nope\nenvironments:\n  - name: a\n",
            "fleet.yaml:3:11: sources.github.repo: not owner/name",
        ),
        (
            "sources:\n  github:\n    repo: a/b\n    token: hunter2\nenvironments:\n  - name: a\n",
            "fleet.yaml:4:12: sources.github.token: a secret is never written inline",
        ),
        (
            "sources:\n  github:\n    repo: a/b\n    token: { file: /a, env: B }\nenvironments:\n  - name: a\n",
            "fleet.yaml:4:12: sources.github.token: give one of `file` or `env`, not both",
        ),
        (
            "sources:\n  chain:\n    rpc_url: http://127.0.0.1:8545\n    registry_function: operatorMasterWallet(address)\nenvironments:\n  - name: a\n",
            "fleet.yaml:4:24: sources.chain.registry_function: not a view function of one bytes32 argument",
        ),
        (
            "sources:\n  chain:\n    rpc_url: http://127.0.0.1:8545\nenvironments:\n  - name: a\n    registry_account: \"0x593ad699fc1f7cd5bb2e35cbf0f19c557067cbbe80c46d1fb6dfbdb0ae075528\"\n",
            "fleet.yaml:2:3: sources.chain.registry_address: required when an environment lists registry_account",
        ),
        (
            "sources:\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: a\n    dns_names: [a.example.net]\n",
            "fleet.yaml:2:3: sources.aws.hosted_zone_id: required when an environment lists dns_names",
        ),
        (
            "sources:\n  discovery:\n    - { template: slot, tag: Name, pattern: '^(.+)$' }\ntemplates:\n  slot:\n    services: []\nenvironments:\n  - name: a\n",
            "fleet.yaml:2:3: sources.discovery: needs sources.aws",
        ),
        (
            "sources:\n  github:\n    repo: a/b\n    interval: 10s\n    timeout: 20s\nenvironments:\n  - name: a\n",
            "fleet.yaml:5:14: sources.github.timeout: timeout must not exceed interval",
        ),
        (
            "sources:\n  github:\n    repo: a/b\n    ci_slot_match: [title]\nenvironments:\n  - name: a\n",
            "fleet.yaml:4:21: sources.github.ci_slot_match[0]: unknown variant `title`, expected one of `display_title`, `name`, `head_branch`, `job_name`",
        ),
        (
            "environments:\n  - name: prod\n    services: 3\n",
            "fleet.yaml:3:15: environments[0].services: invalid type: string \"3\", expected a sequence",
        ),
        (
            "environments:\n  - name: [\n",
            "fleet.yaml:3:1: (syntax): while parsing a node, did not find expected node content",
        ),
        ("environments:\n  - name: a\n  name: b\n", "fleet.yaml:3:"),
    ];
    for (text, want) in cases {
        let got = err(text);
        assert!(
            got.starts_with(want),
            "for\n{text}\ngot:  {got}\nwant: {want}"
        );
    }
}

#[test]
fn inline_secrets_are_refused_without_being_echoed() {
    let e = err(
        "sources:\n  github:\n    repo: a/b\n    token: ghp_s3cr3t\nenvironments:\n  - name: a\n",
    );
    assert!(!e.contains("ghp_s3cr3t"), "{e}");
    let ok = Config::parse(
        "sources:\n  github:\n    repo: a/b\n    token: { env: GH_TOKEN }\nenvironments:\n  - name: a\n",
        "f",
    )
    .unwrap();
    assert_eq!(
        ok.sources.github.unwrap().token,
        Some(SecretRef::Env("GH_TOKEN".into()))
    );
}

#[test]
fn secret_refs_never_echo_the_value() {
    let e = SecretRef::Env("FLEETPULSE_TEST_UNSET_VAR".into())
        .read()
        .unwrap_err();
    assert!(e.contains("FLEETPULSE_TEST_UNSET_VAR"));
}

#[test]
fn names_reject_traversal_and_control_characters() {
    for bad in ["", "..", ".", "a/b", "a b", "a\nb", "é", &"x".repeat(65)] {
        assert!(!Name::is_valid(bad), "{bad:?}");
    }
    for good in ["prod", "test-1", "worker_3.eu", &"x".repeat(64)] {
        assert!(Name::is_valid(good), "{good:?}");
    }
}

#[test]
fn durations_parse_units() {
    assert_eq!(
        "500ms".parse::<Seconds>().unwrap().0,
        Duration::from_millis(500)
    );
    assert_eq!(
        "2h".parse::<Seconds>().unwrap().0,
        Duration::from_secs(7200)
    );
    assert!("0s".parse::<Seconds>().is_err());
    assert!("5".parse::<Seconds>().is_err());
}

#[test]
fn every_error_is_reported_at_its_own_node_in_file_order() {
    // `request_timeout` before `sources.healthz.timeout`, a duplicate service
    // after its first occurrence, bad names, an unknown key and a box listed
    // twice: each is reported, each at its own node.
    let text = "\
web:
  request_timeout: 10s
sources:
  healthz:
    interval: 5s
    timeout: 10s
environments:
  - name: prod
    services:
      - name: broker
        healthz: nope
      - name: broker
  - name: pr od
  - name: test-1
    colour: blue
    boxes: [b1]
  - name: test-2
    boxes: [b1]
";
    let e = Config::parse(text, "fleet.yaml").unwrap_err();
    let got: Vec<String> = e
        .problems()
        .iter()
        .map(|p| format!("{}:{} {}", p.line, p.column, p.field))
        .collect();
    assert_eq!(
        got,
        [
            "6:14 sources.healthz.timeout",
            "11:18 environments[0].services[0].healthz",
            "12:15 environments[0].services[1].name",
            "13:11 environments[1].name",
            "15:5 environments[2].colour",
            "18:13 environments[3].boxes[0]",
        ],
        "{e}"
    );
    // One line per problem, each a whole `file:line:column: field: message`.
    let shown = e.to_string();
    assert_eq!(shown.lines().count(), 6, "{shown}");
    assert!(shown
        .lines()
        .all(|l| l.starts_with("fleet.yaml:") && l.split(": ").count() >= 3));
}

#[test]
fn a_duplicate_key_names_its_second_occurrence() {
    let e = err("environments:\n  - name: a\n    name: b\n");
    assert!(
        e.starts_with("fleet.yaml:3:5: (syntax): duplicate key `name`"),
        "{e}"
    );
}

/// A pushed name belongs to the environment of its box or host, or of its
/// service when one environment alone lists it.
#[test]
fn a_pushed_name_is_placed_in_its_environment() {
    let c = Config::parse(
        "environments:\n  - name: prod\n    boxes: [prod-box]\n    hosts: [prod-host]\n    services:\n      - name: api\n      - name: web\n  - name: staging\n    boxes: [staging-box]\n    hosts: [staging-host]\n    services:\n      - name: web\n      - name: worker\n",
        "fleet.yaml",
    )
    .unwrap();
    let stack = |n: &str| c.stack_of_name(n).map(|s| s.0.as_str());
    assert_eq!(stack("prod-box"), Some("prod"));
    assert_eq!(stack("staging-box"), Some("staging"));
    assert_eq!(stack("prod-host"), Some("prod"));
    assert_eq!(stack("staging-host"), Some("staging"));
    assert_eq!(stack("api"), Some("prod"));
    assert_eq!(stack("worker"), Some("staging"));
    assert_eq!(stack("web"), None, "listed by both");
    assert_eq!(stack("elsewhere"), None);
    let host = |n: &str| c.stack_of_host(n).map(|s| s.0.as_str());
    assert_eq!(host("staging-host"), Some("staging"));
    assert_eq!(host("staging-box"), None, "a box is not a host");
}

/// The inventory's services are those the environments list and those
/// `ingest.services` names; the sources see the settings as configured.
#[test]
fn services_are_known_from_either_list_and_the_sources_see_their_settings() {
    use crate::sources::Watched;
    let c = Config::parse(
        "sources:\n  staleness: 7m\ningest:\n  services: [pusher]\nenvironments:\n  - name: prod\n    services:\n      - name: api\n",
        "fleet.yaml",
    )
    .unwrap();
    assert!(c.has_service("api"));
    assert!(c.has_service("pusher"));
    assert!(!c.has_service("elsewhere"));
    assert_eq!(Watched::sources(&c).staleness.0, Duration::from_secs(420));
    assert_eq!(Watched::environments(&c).len(), 1);
}

/// An empty inventory is an error of its own even when an error elsewhere
/// cut a list element; only an environment cut for its own error stands in
/// for the "at least one".
#[test]
fn an_empty_inventory_is_reported_beside_errors_elsewhere() {
    assert_eq!(
        err("ingest:\n  services: [[x]]\nenvironments: []\n"),
        "fleet.yaml:2:14: ingest.services[0]: invalid type: sequence, expected a string\n\
         fleet.yaml:3:1: environments: at least one environment is required"
    );
    assert_eq!(
        err("environments:\n  - name: pr od\n"),
        "fleet.yaml:2:11: environments[0].name: not a valid name: \"pr od\" (expected 1 to 64 of A-Z a-z 0-9 . _ -)"
    );
}

/// Each error names the element as the file numbers it, however many
/// elements before it (in its own list or another) were cut for theirs.
#[test]
fn errors_after_cut_elements_name_the_files_own_indices() {
    assert_eq!(
        err("environments:\n  - name: prod\n    services:\n      - { name: a, healthz: a/healthz }\n      - { name: b }\n  - name: staging\n    services:\n      - { name: c }\n      - { name: d, healthz: d/healthz }\n      - { name: e, healthz: e/healthz }\n"),
        "fleet.yaml:4:29: environments[0].services[0].healthz: not a URL: \"a/healthz\"\n\
         fleet.yaml:9:29: environments[1].services[1].healthz: not a URL: \"d/healthz\"\n\
         fleet.yaml:10:29: environments[1].services[2].healthz: not a URL: \"e/healthz\""
    );
}
/// A file that ends in the middle of a node is refused at the end of its
/// last line, the place an editor shows.
#[test]
fn a_file_cut_short_is_refused_where_it_ends() {
    assert_eq!(
        err("environments: ["),
        "fleet.yaml:1:16: (syntax): while parsing a node, did not find expected node content"
    );
    assert_eq!(
        err("environments:\n  - name: prod\n    services: [\n"),
        "fleet.yaml:4:1: (syntax): while parsing a node, did not find expected node content"
    );
}

/// A quoted value is text, never a number or a boolean.
#[test]
fn a_quoted_number_or_boolean_is_text() {
    assert_eq!(
        err("public: 'true'\ningest:\n  unknown_names_cap: '5'\nenvironments:\n  - name: prod\n"),
        "fleet.yaml:1:9: public: not a boolean (true or false)\n\
         fleet.yaml:3:22: ingest.unknown_names_cap: invalid type: string \"5\", expected usize"
    );
    let c = Config::parse(
        "public: true\ningest:\n  unknown_names_cap: 5\nenvironments:\n  - name: prod\n",
        "fleet.yaml",
    )
    .unwrap();
    assert_eq!((c.public, c.ingest.unknown_names_cap), (true, 5));
}
