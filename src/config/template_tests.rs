//! Templates: expansion, and every error at its node with the environment
//! that instantiated it.

use super::*;

const STACK: &str = "\
templates:
  base:
    vars: { domain: example.net }
    services:
      - name: broker
        healthz: https://${name}.${domain}/broker/healthz
        tls: ${name}.${domain}:443
      - name: signer
        healthz: https://${name}.${domain}/signer/healthz
  stack:
    template: base
    aws_tag: { key: env, value: \"${name}\" }
    services:
      - name: bundler
        healthz: https://${name}.${domain}/bundler/healthz
";

fn parse(envs: &str) -> Result<Config, ConfigError> {
    Config::parse(&format!("{STACK}environments:\n{envs}"), "fleet.yaml")
}

fn service<'a>(c: &'a Config, env: usize, name: &str) -> &'a Service {
    c.environments[env]
        .services
        .iter()
        .find(|s| s.name.0 == name)
        .unwrap_or_else(|| panic!("no service {name} in environments[{env}]"))
}

#[test]
fn an_environment_gets_the_templates_shape_with_its_own_values() {
    let c = parse(
        "  - name: prod\n    template: stack\n  - name: test-1\n    template: stack\n    vars: { domain: test.example.net }\n",
    )
    .unwrap();
    let names = |i: usize| -> Vec<&str> {
        c.environments[i]
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect()
    };
    // A template built on another has both's services, the base's first.
    assert_eq!(names(0), ["broker", "signer", "bundler"]);
    assert_eq!(names(1), ["broker", "signer", "bundler"]);
    assert_eq!(
        service(&c, 0, "broker")
            .healthz
            .as_ref()
            .unwrap()
            .0
            .as_str(),
        "https://prod.example.net/broker/healthz"
    );
    // The environment's vars override the template's defaults.
    assert_eq!(
        service(&c, 1, "broker")
            .healthz
            .as_ref()
            .unwrap()
            .0
            .as_str(),
        "https://test-1.test.example.net/broker/healthz"
    );
    assert_eq!(
        service(&c, 1, "broker").tls.as_ref().unwrap().to_string(),
        "test-1.test.example.net:443"
    );
    assert_eq!(c.environments[1].aws_tag.as_ref().unwrap().value, "test-1");
}

#[test]
fn an_environment_may_add_drop_and_override_services_and_fields() {
    let c = parse(
        "  - name: prod\n    template: stack\n    drop: [signer]\n    aws_tag: { key: Name, value: broker-eip }\n    services:\n      - name: broker\n        tls: other.example.net:8443\n      - name: extra\n        healthz: https://extra.example.net/healthz\n",
    )
    .unwrap();
    let names: Vec<&str> = c.environments[0]
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["broker", "bundler", "extra"]);
    // An overridden service keeps the fields it does not override.
    let broker = service(&c, 0, "broker");
    assert_eq!(
        broker.tls.as_ref().unwrap().to_string(),
        "other.example.net:8443"
    );
    assert_eq!(
        broker.healthz.as_ref().unwrap().0.as_str(),
        "https://prod.example.net/broker/healthz"
    );
    assert_eq!(
        c.environments[0].aws_tag.as_ref().unwrap().value,
        "broker-eip"
    );
}

#[test]
fn variables_expand_with_escapes_and_refuse_the_undefined() {
    let vars: std::collections::BTreeMap<String, String> =
        [("name".to_string(), "prod".to_string())].into();
    assert_eq!(template::expand("a-${name}-b", &vars).unwrap(), "a-prod-b");
    assert_eq!(
        template::expand("$${name} costs $5", &vars).unwrap(),
        "${name} costs $5"
    );
    assert_eq!(
        template::expand("${nope}", &vars).unwrap_err(),
        "undefined variable ${nope} (defined: name)"
    );
    assert!(template::expand("${name", &vars)
        .unwrap_err()
        .starts_with("unterminated"));
}

#[test]
fn each_template_error_names_its_line_and_the_environment() {
    let cases: &[(&str, &str)] = &[
        (
            // An error inside the template is at the template's line.
            "templates:\n  t:\n    services:\n      - name: broker\n        healthz: ftp://${name}.example.net/\nenvironments:\n  - name: prod\n    template: t\n",
            "fleet.yaml:5:18: environments[0].services[0].healthz: not an http(s) URL with a host: \"ftp://prod.example.net/\" (in template \"t\", instantiated by environment \"prod\")",
        ),
        (
            "templates:\n  t:\n    services:\n      - name: broker\n        healthz: https://${zone}/\nenvironments:\n  - name: prod\n    template: t\n",
            "fleet.yaml:5:18: environments[0].services[0].healthz: undefined variable ${zone} (defined: name) (in template \"t\", instantiated by environment \"prod\")",
        ),
        (
            "templates:\n  a:\n    template: b\n  b:\n    template: a\nenvironments:\n  - name: prod\n    template: a\n",
            "fleet.yaml:5:15: templates.b.template: template \"a\" includes itself (a → b → a)",
        ),
        (
            "templates:\n  a:\n    template: a\nenvironments:\n  - name: prod\n",
            "fleet.yaml:3:15: templates.a.template: template \"a\" includes itself (a → a)",
        ),
        (
            "templates:\n  a: {}\nenvironments:\n  - name: prod\n    template: b\n",
            "fleet.yaml:5:15: environments[0].template: no template named \"b\" (defined: a)",
        ),
        (
            "templates:\n  a: { services: [{ name: x }] }\nenvironments:\n  - name: prod\n    template: a\n    drop: [y]\n",
            "fleet.yaml:6:12: environments[0].drop[0]: template \"a\" has no service \"y\" to drop",
        ),
        (
            "environments:\n  - name: prod\n    drop: [y]\n",
            "fleet.yaml:3:5: environments[0].drop: drop needs a template to drop services from",
        ),
        (
            "sources:\n  discovery:\n    - { template: a, tag: Name, pattern: '^slot-\\d+$' }\n  aws:\n    region: eu-west-1\ntemplates:\n  a: {}\nenvironments:\n  - name: prod\n",
            "fleet.yaml:3:42: sources.discovery[0].pattern: \"^slot-\\\\d+$\" has no capture group to name the environment by, like '^broker-eip-(\\d+)$'",
        ),
        (
            "sources:\n  discovery:\n    - { template: nope, tag: Name, pattern: '^slot-(\\d+)$' }\n  aws:\n    region: eu-west-1\nenvironments:\n  - name: prod\n",
            "fleet.yaml:3:19: sources.discovery[0].template: no template named \"nope\" (no templates are defined)",
        ),
        (
            // Two environments expanding to the same name.
            "templates:\n  a: {}\nenvironments:\n  - name: prod\n    template: a\n  - name: prod\n    template: a\n",
            "fleet.yaml:6:11: environments[1].name: duplicate environment name \"prod\" (first at environments[0])",
        ),
    ];
    for (text, want) in cases {
        let got = Config::parse(text, "fleet.yaml").unwrap_err().to_string();
        assert_eq!(got, *want, "for\n{text}");
    }
}

#[test]
fn a_service_duplicated_by_a_template_is_blamed_on_the_template_line() {
    let text = "templates:\n  t:\n    services:\n      - name: a\n      - name: a\nenvironments:\n  - name: prod\n    template: t\n";
    let got = Config::parse(text, "fleet.yaml").unwrap_err().to_string();
    assert!(
        got.starts_with(
            "fleet.yaml:5:15: environments[0].services[1].name: duplicate service \"a\""
        ),
        "{got}"
    );
    assert!(
        got.ends_with("(in template \"t\", instantiated by environment \"prod\")"),
        "{got}"
    );
}

#[test]
fn the_expanded_file_is_itself_a_config_without_templates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    std::fs::write(
        &path,
        format!("{STACK}environments:\n  - name: prod\n    template: stack\n    drop: [bundler]\n"),
    )
    .unwrap();
    let text = Config::expanded(&path).unwrap();
    assert!(!text.contains("template"), "{text}");
    assert!(!text.contains("${"), "{text}");
    let again = Config::parse(&text, "expanded.yaml").unwrap();
    let original = Config::load(&path).unwrap();
    assert_eq!(again.environments.len(), 1);
    let urls = |c: &Config| -> Vec<String> {
        c.environments[0]
            .services
            .iter()
            .map(|s| {
                format!(
                    "{} {:?} {:?}",
                    s.name.0,
                    s.healthz.as_ref().map(|u| u.0.to_string()),
                    s.tls.as_ref().map(|t| t.to_string())
                )
            })
            .collect()
    };
    assert_eq!(urls(&again), urls(&original));
}

#[test]
fn the_example_is_four_stacks_of_ten_services_in_under_80_lines() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/fleet.example.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .count();
    assert!(lines <= 80, "{lines} non-comment lines");
    let c = Config::parse(&text, path).unwrap();
    assert_eq!(c.environments.len(), 4);
    for e in &c.environments {
        assert_eq!(e.services.len(), 10, "{}", e.name.0);
    }
}

/// A template built on another merges its vars with the base's by key, and
/// may only build on a template that exists.
#[test]
fn a_templates_vars_merge_with_its_bases_and_its_base_must_exist() {
    let c = Config::parse(
        "templates:\n  base:\n    vars: { domain: example.net, port: '443' }\n    services:\n      - name: broker\n        tls: ${name}.${domain}:${port}\n  stack:\n    template: base\n    vars: { port: '8443' }\nenvironments:\n  - name: prod\n    template: stack\n",
        "fleet.yaml",
    )
    .unwrap();
    assert_eq!(
        service(&c, 0, "broker").tls.as_ref().unwrap().to_string(),
        "prod.example.net:8443"
    );
    let got = Config::parse(
        "templates:\n  a:\n    template: nope\nenvironments:\n  - name: prod\n    template: a\n",
        "fleet.yaml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        got,
        "fleet.yaml:3:15: templates.a.template: no template named \"nope\" (defined: a)"
    );
    // An undefined variable in the environment's own lines is the
    // environment's, not the template's.
    let got = Config::parse(
        "templates:\n  a:\n    services:\n      - name: broker\nenvironments:\n  - name: prod\n    template: a\n    services:\n      - name: signer\n        healthz: https://${zone}/\n",
        "fleet.yaml",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        got,
        "fleet.yaml:10:18: environments[0].services[1].healthz: undefined variable ${zone} (defined: name) (in environment \"prod\")"
    );
}

/// Found environments are added to those the file lists, or are the whole
/// inventory of a file that lists none, each with its template's shape.
#[test]
fn found_environments_join_the_files_or_stand_alone() {
    let found = |name: &str| crate::inventory::Discovered {
        name: name.into(),
        template: "stack".into(),
        vars: [("domain".to_string(), "found.example.net".to_string())].into(),
        origin: format!("Elastic IP eipalloc-1 tagged Slot={name}"),
    };
    let names =
        |c: &Config| -> Vec<String> { c.environments.iter().map(|e| e.name.0.clone()).collect() };
    let c = Config::parse_with(
        &format!("{STACK}environments:\n  - name: prod\n    template: stack\n"),
        "fleet.yaml",
        &[found("test-1"), found("test-2")],
    )
    .unwrap();
    assert_eq!(names(&c), ["prod", "test-1", "test-2"]);
    assert_eq!(
        service(&c, 2, "bundler")
            .healthz
            .as_ref()
            .unwrap()
            .0
            .as_str(),
        "https://test-2.found.example.net/bundler/healthz"
    );
    let c = Config::parse_with(STACK, "fleet.yaml", &[found("test-3")]).unwrap();
    assert_eq!(names(&c), ["test-3"]);
    assert_eq!(service(&c, 0, "broker").name.as_str(), "broker");
}
