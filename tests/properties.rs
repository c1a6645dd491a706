//! Properties of everything that reads outside input: the config parser, the
//! push parsers (JUnit, cargo-mutants, doctor), the name rule of the push
//! URLs, and the escaping of label values in the exposition.
//!
//! Generated valid documents must be counted exactly as their model says;
//! arbitrary input must come back as a value or an error, never a panic or a
//! hang. Case counts are kept modest so the file runs in seconds.

#[path = "it/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Value};
use tower::ServiceExt as _;

use fleetpulse::config::{Config, ConfigError, Name};
use fleetpulse::hub::Hub;
use fleetpulse::ingest::doctor::{self, DoctorSummary};
use fleetpulse::ingest::junit::{self, JunitError, MAX_DEPTH};
use fleetpulse::ingest::mutants::{self, MutantCounts};
use fleetpulse::pulse::{Heartbeat, Pulse, TestRun, TestRunFormat};

/// `n` cases, or `PROPTEST_CASES` of them for a longer run.
fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

/// Longest any single parse of a generated input may take: far above a
/// normal parse, far below a hang.
const NO_HANG: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- config

const VALID_CONFIG: &str = "\
listen: 127.0.0.1:9999
state_dir: /var/lib/fleetpulse
sources:
  staleness: 10m
  healthz: {interval: 30s, timeout: 5s, concurrency: 8}
  github:
    repo: acme/fleet
    token: {env: GITHUB_TOKEN}
  chain:
    rpc_url: http://127.0.0.1:8545
    registry_address: \"0x52908400098527886E0F7030069857D2E4169EE7\"
ingest:
  services: [batch]
environments:
  - name: prod
    boxes: [prod-box]
    hosts: [prod-host]
    aws_tag: {key: Stack, value: prod}
    ci_slot: \"^deploy prod\"
    registry_account: \"0x1111111111111111111111111111111111111111111111111111111111111111\"
    services:
      - name: broker
        healthz: https://broker.example.com/healthz
        tls: broker.example.com:443
  - name: test-1
    services:
      - name: broker
";

/// Characters that mean something to YAML, plus some that should not be there.
const YAML_CHARS: &[char] = &[
    ':', '-', ' ', ' ', '\n', '\t', '[', ']', '{', '}', ',', '#', '&', '*', '!', '|', '>', '\'',
    '"', '%', '@', '`', '?', '\\', 'a', '0', '.', '/', '\0', '\r', 'é', '\u{feff}', '\u{2028}',
    '\u{85}',
];

/// An edit of a text: where, what, with which character.
fn edits() -> impl Strategy<Value = Vec<(Index, u8, char)>> {
    prop::collection::vec(
        (any::<Index>(), 0u8..5, prop::sample::select(YAML_CHARS)),
        0..8,
    )
}

fn apply_edits(text: &str, edits: &[(Index, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, op, c) in edits {
        if chars.is_empty() {
            chars.push(*c);
            continue;
        }
        let i = at.index(chars.len());
        match op {
            0 => {
                chars.remove(i);
            }
            1 | 2 => chars.insert(i, *c),
            3 => chars.truncate(i),
            // Duplicate the line holding `i`.
            _ => {
                let start = chars[..i]
                    .iter()
                    .rposition(|&c| c == '\n')
                    .map_or(0, |p| p + 1);
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p + 1);
                let line: Vec<char> = chars[start..end].to_vec();
                chars.splice(end..end, line);
            }
        }
    }
    chars.into_iter().collect()
}

fn yaml_ish() -> impl Strategy<Value = String> {
    prop_oneof![
        // Mutations of a config that parses.
        4 => edits().prop_map(|e| apply_edits(VALID_CONFIG, &e)),
        // Soup of YAML's own characters and words.
        2 => prop::collection::vec(
            prop_oneof![
                prop::sample::select(YAML_CHARS).prop_map(String::from),
                prop::sample::select(&[
                    "environments:", "\n  - name: ", "services:", "boxes: [", "sources:",
                    "aws:", "interval: ", "timeout: ", "10s", "- ", "{", "}", "&a ", "*a",
                    "!!binary ", "<<: ", "---\n", "...\n", "? ", "\"\\u00", "0x", "99999999999999999999",
                ][..])
                .prop_map(String::from),
            ],
            0..60,
        )
        .prop_map(|parts| parts.concat()),
        1 => ".{0,200}",
    ]
}

proptest! {
    #![proptest_config(cases(256))]

    /// The config parser answers every input with a config or an error that
    /// names the file, a line inside the text and a column.
    #[test]
    fn config_parser_never_panics_and_errors_carry_a_line(text in yaml_ish()) {
        let started = Instant::now();
        let parsed = Config::parse(&text, "fleet.yaml");
        prop_assert!(started.elapsed() < NO_HANG);
        match parsed {
            Ok(_) => {}
            Err(e @ ConfigError::Invalid(_)) => {
                let shown = e.to_string();
                let lines = text.split('\n').count();
                prop_assert!(!e.problems().is_empty(), "{}", shown);
                for p in e.problems() {
                    prop_assert_eq!(&p.file, "fleet.yaml");
                    prop_assert!(p.line >= 1 && p.line <= lines, "line {} of {}: {}", p.line, lines, shown);
                    prop_assert!(p.column >= 1, "{}", shown);
                    prop_assert!(!p.field.is_empty() && !p.message.is_empty(), "{}", shown);
                }
                let first = &e.problems()[0];
                let prefix = format!("fleet.yaml:{}:{}: ", first.line, first.column);
                prop_assert!(shown.starts_with(&prefix), "{}", shown);
            }
            Err(other) => prop_assert!(false, "parse gave a read error: {}", other),
        }
    }
}

/// Found by the property above: input cut off inside a key was reported one
/// line past its end.
#[test]
fn an_error_at_the_end_of_the_input_points_at_its_last_line() {
    let text = "sources:\n  github:\n    repo: acme/fleet\n    t";
    let err = Config::parse(text, "fleet.yaml").unwrap_err().to_string();
    assert!(err.starts_with("fleet.yaml:4:6: (syntax): "), "{err}");
}

// ------------------------------------------------------------------ names

/// The documented rule, written independently of `Name::is_valid`.
fn name_rule(s: &str) -> bool {
    let re = regex::Regex::new(r"^[A-Za-z0-9._-]{1,64}$").unwrap();
    re.is_match(s) && s != "." && s != ".."
}

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[A-Za-z0-9._-]{1,64}",
        1 => "[A-Za-z0-9._-]{60,70}",
        2 => "[A-Za-z0-9._/-]{0,12}",
        1 => "(\\.\\./){0,3}\\.{0,3}[a-z]{0,4}",
        1 => "[a-z]{0,4}[\\x00-\\x1f\\x7f][a-z]{0,4}",
        1 => "[a-z]{0,3}[é☃日\u{200b}\u{feff}%?#&+ ][a-z]{0,3}",
        1 => prop::sample::select(&["", ".", "..", "...", "-", "_", "a", "a b", ".hidden", "..a"][..])
            .prop_map(String::from),
        1 => any::<String>().prop_map(|s| s.chars().take(80).collect()),
    ]
}

/// Percent-encodes everything but unreserved characters (dots stay raw, so
/// `..` reaches the router as a path segment).
fn url_segment(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A quoted YAML scalar holding exactly `s` (JSON strings are YAML).
fn yaml_quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

proptest! {
    #![proptest_config(cases(256))]

    /// Box, host, service and stack names are accepted exactly when they
    /// follow the rule: by the validator, and by the config parser.
    #[test]
    fn names_follow_the_rule_in_the_validator_and_the_config(name in names()) {
        let ok = name_rule(&name);
        prop_assert_eq!(Name::is_valid(&name), ok, "{:?}", name);
        prop_assert_eq!(name.parse::<Name>().is_ok(), ok, "{:?}", name);
        let q = yaml_quoted(&name);
        for (text, field) in [
            (format!("environments:\n  - name: {q}\n"), "environments[0].name"),
            (format!("environments:\n  - name: prod\n    boxes: [{q}]\n"), "environments[0].boxes[0]"),
            (format!("environments:\n  - name: prod\n    hosts: [{q}]\n"), "environments[0].hosts[0]"),
            (
                format!("environments:\n  - name: prod\n    services:\n      - name: {q}\n"),
                "environments[0].services[0].name",
            ),
        ] {
            match Config::parse(&text, "fleet.yaml") {
                Ok(c) => {
                    prop_assert!(ok, "{:?} accepted in {}", name, field);
                    prop_assert!(
                        c.environments[0].name.0 == name
                            || c.environments[0].boxes.iter().any(|b| b.0 == name)
                            || c.environments[0].hosts.iter().any(|h| h.0 == name)
                            || c.environments[0].services.iter().any(|s| s.name.0 == name)
                    );
                }
                Err(e) => {
                    prop_assert!(!ok, "{:?} refused in {}: {}", name, field, e);
                    // Characters YAML cannot carry fail in the YAML reader;
                    // everything else fails on the name, naming its field.
                    let shown = e.to_string();
                    if name.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
                        prop_assert!(shown.contains(field), "{}", shown);
                        prop_assert!(shown.contains("not a valid name"), "{}", shown);
                    }
                }
            }
        }
    }
}

/// Every push route answers a name that breaks the rule with 400 before it
/// looks at anything else, and lets a name that follows it through to the
/// token check (401: this receiver has no tokens file).
#[test]
fn push_urls_refuse_exactly_the_names_that_break_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(
        "environments:\n  - name: prod\n    boxes: [prod-box]\n",
        "fleet.yaml",
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ingest = rt.block_on(async {
        Arc::new(fleetpulse::ingest::Ingest::start(&config, dir.path(), Box::new(|_| {})).unwrap())
    });
    let router = fleetpulse::ingest::router::<()>(ingest);
    let routes = [
        (Method::POST, "heartbeats"),
        (Method::PUT, "test-runs"),
        (Method::PUT, "mutants"),
        (Method::PUT, "host-health"),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(cases(256));
    runner
        .run(&(names(), 0..routes.len()), |(name, route)| {
            let (method, path) = &routes[route];
            let uri = format!("/api/v1/{path}/{}", url_segment(&name));
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let status = rt
                .block_on(router.clone().oneshot(request))
                .unwrap()
                .status();
            let want = if name.is_empty() {
                // No segment, no route.
                StatusCode::NOT_FOUND
            } else if name_rule(&name) {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            prop_assert_eq!(status, want, "{} {} for {:?}", method, uri, name);
            Ok(())
        })
        .unwrap();
}

// ------------------------------------------------------------------ JUnit

#[derive(Debug, Clone, Copy, PartialEq)]
enum Child {
    Failure,
    Error,
    Skipped,
    SystemOut,
}

#[derive(Debug, Clone)]
enum Node {
    Suite {
        time: Option<u32>,
        children: Vec<Node>,
    },
    Case {
        empty_form: bool,
        children: Vec<Child>,
    },
    Noise(&'static str),
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    passed: u64,
    failed: u64,
    errored: u64,
    skipped: u64,
}

impl Expected {
    fn add(&mut self, node: &Node) {
        match node {
            Node::Suite { children, .. } => children.iter().for_each(|c| self.add(c)),
            Node::Case { children, .. } => {
                if children.contains(&Child::Error) {
                    self.errored += 1;
                } else if children.contains(&Child::Failure) {
                    self.failed += 1;
                } else if children.contains(&Child::Skipped) {
                    self.skipped += 1;
                } else {
                    self.passed += 1;
                }
            }
            Node::Noise(_) => {}
        }
    }
}

const NOISE: &[&str] = &[
    "<properties><property name=\"k\" value=\"a &amp; b\"/></properties>",
    "<!-- <testcase/> in a comment -->",
    "<![CDATA[<testcase/><failure/>]]>",
    "text &lt;testcase&gt; &unknown;",
    "<system-out>out</system-out>",
    "<?pi <testcase/> ?>",
];

fn case_name() -> impl Strategy<Value = String> {
    "[a-z:_ <>&\"'é]{0,12}".prop_map(|s| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    })
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => (
            any::<bool>(),
            prop::collection::vec(
                prop::sample::select(&[Child::Failure, Child::Error, Child::Skipped, Child::SystemOut][..]),
                0..3,
            ),
        )
            .prop_map(|(empty_form, children)| Node::Case { empty_form, children }),
        1 => prop::sample::select(NOISE).prop_map(Node::Noise),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        (
            prop::option::of(0u32..100_000),
            prop::collection::vec(inner, 0..6),
        )
            .prop_map(|(time, children)| Node::Suite { time, children })
    })
}

fn write_node(node: &Node, name: &str, out: &mut String) {
    match node {
        Node::Suite { time, children } => {
            out.push_str(&format!("<testsuite name=\"{name}\""));
            if let Some(t) = time {
                out.push_str(&format!(" time=\"{}.{:03}\"", t / 1000, t % 1000));
            }
            out.push('>');
            for c in children {
                write_node(c, name, out);
            }
            out.push_str("</testsuite>\n");
        }
        Node::Case {
            empty_form,
            children,
        } => {
            if children.is_empty() && *empty_form {
                out.push_str(&format!("<testcase name=\"{name}\" time=\"0.5\"/>"));
                return;
            }
            out.push_str(&format!("<testcase classname=\"x\" name=\"{name}\">"));
            for c in children {
                out.push_str(match c {
                    Child::Failure => "<failure message=\"boom\">at x.rs:1 &amp; more</failure>",
                    Child::Error => "<error type=\"panic\"/>",
                    Child::Skipped => "<skipped/>",
                    Child::SystemOut => "<system-out><![CDATA[<failure/>]]></system-out>",
                });
            }
            out.push_str("</testcase>\n");
        }
        Node::Noise(n) => out.push_str(n),
    }
}

/// A JUnit document: `<testsuites>` around the nodes, or a single
/// `<testsuite>` root.
fn junit_doc() -> impl Strategy<Value = (String, Expected, Option<u32>)> {
    (
        any::<bool>(),
        prop::option::of(0u32..100_000),
        prop::collection::vec(node(), 0..8),
        case_name(),
        any::<bool>(),
    )
        .prop_map(|(suites_root, root_time, nodes, name, prolog)| {
            let mut expected = Expected::default();
            nodes.iter().for_each(|n| expected.add(n));
            let root = if suites_root {
                "testsuites"
            } else {
                "testsuite"
            };
            let mut xml = String::new();
            if prolog {
                xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- report -->\n");
            }
            let tests = expected.passed + expected.failed + expected.errored + expected.skipped;
            xml.push_str(&format!("<{root} tests=\"{tests}\""));
            if let Some(t) = root_time {
                xml.push_str(&format!(" time=\"{}.{:03}\"", t / 1000, t % 1000));
            }
            xml.push('>');
            for n in &nodes {
                write_node(n, &name, &mut xml);
            }
            xml.push_str(&format!("</{root}>\n"));
            (xml, expected, root_time)
        })
}

const XML_TOKENS: &[&str] = &[
    "<testsuites>",
    "</testsuites>",
    "<testsuite>",
    "</testsuite>",
    "<testsuite time=\"1,5\">",
    "<testsuite timestamp=\"2024-01-01T00:00:00\">",
    "<testcase>",
    "</testcase>",
    "<testcase/>",
    "<failure/>",
    "<error>",
    "</error>",
    "<skipped/>",
    "<!DOCTYPE a [",
    "<!ENTITY x \"&x;&x;\">",
    "]>",
    "&x;",
    "&amp;",
    "&#0;",
    "&#x110000;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    "<?xml version=\"1.0\"?>",
    " time=\"",
    " timestamp=\"",
    "\"",
    "'",
    "=",
    ">",
    "<",
    "/",
    "</",
    "\0",
    "é",
    "\u{feff}",
    " ",
];

fn xml_soup() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(XML_TOKENS), 0..60)
            .prop_map(|t| t.concat().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..512),
        (junit_doc(), edits()).prop_map(|((xml, _, _), e)| apply_edits(&xml, &e).into_bytes()),
    ]
}

/// Entity declarations, nested and wide, as a "billion laughs" would write them.
fn doctype() -> impl Strategy<Value = String> {
    (1usize..12, 1usize..16, any::<bool>()).prop_map(|(levels, width, external)| {
        let mut d = String::from("<!DOCTYPE testsuite [\n <!ENTITY e0 \"lol\">\n");
        for i in 1..levels {
            d.push_str(&format!(
                " <!ENTITY e{i} \"{}\">\n",
                format!("&e{};", i - 1).repeat(width)
            ));
        }
        if external {
            d.push_str(" <!ENTITY ext SYSTEM \"file:///etc/passwd\">\n");
        }
        d.push_str("]>\n");
        d
    })
}

proptest! {
    #![proptest_config(cases(256))]

    /// A generated report is counted as its model says: every test case once,
    /// by its worst outcome, whatever the nesting and noise around it.
    #[test]
    fn junit_counts_of_generated_reports_match_their_model((xml, want, root_time) in junit_doc()) {
        let s = junit::count(xml.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}: {xml}")))?;
        let got = Expected { passed: s.passed, failed: s.failed, errored: s.errored, skipped: s.skipped };
        prop_assert_eq!(&got, &want, "{}", xml);
        let tests = want.passed + want.failed + want.errored + want.skipped;
        prop_assert_eq!(s.passed + s.failed + s.errored + s.skipped, tests);
        let tests_attribute = format!(" tests=\"{tests}\"");
        prop_assert!(xml.contains(&tests_attribute));
        if let Some(t) = root_time {
            prop_assert_eq!(s.duration_seconds, Some(f64::from(t) / 1000.0));
        }
    }

    /// Any bytes at all come back as counts or an error, quickly.
    #[test]
    fn junit_parser_never_panics_or_hangs(bytes in xml_soup()) {
        let started = Instant::now();
        let _ = junit::count(&bytes);
        prop_assert!(started.elapsed() < NO_HANG);
    }

    /// A DOCTYPE is refused before any entity could be expanded, however the
    /// declarations are built and whatever report follows.
    #[test]
    fn junit_refuses_every_doctype_without_expanding_it(
        decl in doctype(),
        (xml, _, _) in junit_doc(),
        use_entities in any::<bool>(),
    ) {
        let body = if use_entities {
            xml.replacen("<testcase", "<testcase note=\"&e9;&ext;\"", 1)
        } else {
            xml
        };
        let doc = format!("<?xml version=\"1.0\"?>\n{decl}{body}");
        let started = Instant::now();
        prop_assert_eq!(junit::count(doc.as_bytes()), Err(JunitError::Doctype));
        prop_assert!(started.elapsed() < NO_HANG);
    }

    /// Nesting past `MAX_DEPTH` is refused as too deep, however deep and
    /// whether or not it is ever closed; anything shallower is counted.
    #[test]
    fn junit_refuses_deep_nesting_with_an_error_not_a_hang(
        depth in prop_oneof![0usize..(MAX_DEPTH + 4), 0usize..20_000],
        element in prop::sample::select(&["testsuite", "testcase", "x", "failure"][..]),
        closed in any::<bool>(),
    ) {
        let mut xml = String::from("<testsuites>");
        xml.push_str(&format!("<{element}>").repeat(depth));
        if closed {
            xml.push_str(&format!("</{element}>").repeat(depth));
            xml.push_str("</testsuites>");
        }
        let started = Instant::now();
        let got = junit::count(xml.as_bytes());
        prop_assert!(started.elapsed() < NO_HANG);
        if depth + 1 > MAX_DEPTH {
            prop_assert_eq!(got, Err(JunitError::TooDeep));
        } else if closed {
            prop_assert!(got.is_ok(), "{:?}", got);
        } else {
            prop_assert!(matches!(got, Err(JunitError::Malformed { .. })), "{:?}", got);
        }
    }
}

// ---------------------------------------------------- mutants and doctor

/// Arbitrary JSON, with the keys the parsers look for over-represented.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        prop::sample::select(
            &[
                "ok",
                "WARN",
                "fail",
                "maybe",
                "Baseline",
                "CaughtMutant",
                "MissedMutant",
                "Timeout",
                "Unviable",
                "Success",
                "",
            ][..]
        )
        .prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "checks", "status", "outcomes", "summary", "scenario", "caught",
                            "missed", "timeout", "unviable",
                        ][..]
                    )
                    .prop_map(String::from),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..512),
        (json_value(), edits()).prop_map(|(v, e)| apply_edits(&v.to_string(), &e).into_bytes()),
        // Deep nesting: serde_json's recursion limit must turn it into an error.
        (
            1usize..5000,
            prop::sample::select(&["[", "{\"checks\":"][..])
        )
            .prop_map(|(n, open)| open.repeat(n).into_bytes()),
    ]
}

const SUMMARIES: &[&str] = &[
    "CaughtMutant",
    "MissedMutant",
    "Timeout",
    "Unviable",
    "Success",
    "Failure",
];

proptest! {
    #![proptest_config(cases(256))]

    /// An `outcomes.json` without totals is counted outcome by outcome,
    /// leaving out the baseline and the mutants that neither passed nor
    /// failed the tests; with totals, the totals win.
    #[test]
    fn mutants_outcomes_round_trip_to_their_counts(
        outcomes in prop::collection::vec((any::<bool>(), prop::sample::select(SUMMARIES)), 0..60),
        totals in prop::option::of(prop::array::uniform4(prop::option::of(0u64..1_000_000))),
        extra in any::<bool>(),
    ) {
        let mut want = MutantCounts::default();
        let list: Vec<Value> = outcomes
            .iter()
            .enumerate()
            .map(|(i, (baseline, summary))| {
                if *baseline {
                    return json!({"scenario": "Baseline", "summary": summary, "log_path": "log/baseline.log"});
                }
                match *summary {
                    "CaughtMutant" => want.caught += 1,
                    "MissedMutant" => want.missed += 1,
                    "Timeout" => want.timeout += 1,
                    "Unviable" => want.unviable += 1,
                    _ => {}
                }
                json!({
                    "scenario": {"Mutant": {"name": format!("replace f{i} -> bool with true"), "file": "src/lib.rs"}},
                    "summary": summary,
                    "phase_results": [{"phase": "Build", "duration": 0.5}],
                })
            })
            .collect();
        let mut doc = json!({"outcomes": list});
        if extra {
            doc["cargo_mutants_version"] = json!("25.0.0");
            doc["total_mutants"] = json!(outcomes.len());
        }
        if let Some(t) = totals.filter(|t| t.iter().any(Option::is_some)) {
            want = MutantCounts {
                caught: t[0].unwrap_or(0),
                missed: t[1].unwrap_or(0),
                timeout: t[2].unwrap_or(0),
                unviable: t[3].unwrap_or(0),
            };
            for (key, v) in ["caught", "missed", "timeout", "unviable"].iter().zip(t) {
                if let Some(v) = v {
                    doc[*key] = json!(v);
                }
            }
        }
        let body = serde_json::to_vec_pretty(&doc).unwrap();
        prop_assert_eq!(mutants::parse(&body), Ok(want));
    }

    /// Any bytes at all come back as counts or an error.
    #[test]
    fn mutants_parser_never_panics(bytes in json_bytes()) {
        let _ = mutants::parse(&bytes);
    }

    /// A doctor snapshot's checks are counted by status, whatever the case of
    /// the status word and whatever else the checks and the document hold.
    #[test]
    fn doctor_snapshots_round_trip_to_their_counts(
        checks in prop::collection::vec(
            (
                prop::sample::select(&[
                    ("ok", 0), ("pass", 0), ("passed", 0), ("warn", 1), ("warning", 1),
                    ("fail", 2), ("failed", 2), ("error", 2), ("critical", 2),
                ][..]),
                prop::collection::vec(any::<bool>(), 8),
                prop::option::of(json_value()),
            ),
            0..40,
        ),
        host_fields in prop::collection::btree_map("[a-z]{1,8}", json_value(), 0..4),
    ) {
        let mut want = DoctorSummary::default();
        let list: Vec<Value> = checks
            .iter()
            .enumerate()
            .map(|(i, ((status, class), upper, detail))| {
                match *class {
                    0 => want.ok += 1,
                    1 => want.warn += 1,
                    _ => want.fail += 1,
                }
                let status: String = status
                    .chars()
                    .zip(upper.iter().cycle())
                    .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
                    .collect();
                let mut check = json!({"name": format!("check-{i}"), "status": status});
                if let Some(d) = detail {
                    check["detail"] = d.clone();
                }
                check
            })
            .collect();
        let mut doc: serde_json::Map<String, Value> = host_fields.into_iter().collect();
        doc.insert("checks".into(), Value::Array(list));
        let body = serde_json::to_vec(&Value::Object(doc)).unwrap();
        prop_assert_eq!(doctor::summarize(&body), Ok(want));
    }

    /// Any bytes at all come back as counts or an error.
    #[test]
    fn doctor_parser_never_panics(bytes in json_bytes()) {
        let _ = doctor::summarize(&bytes);
    }
}

// -------------------------------------------------------------- escaping

/// The label values of every sample of `family` in a text exposition, read
/// with the format's own escaping rules (`\\`, `\"`, `\n`).
fn samples(exposition: &str, family: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(family).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let mut labels = BTreeMap::new();
        let mut chars = rest.chars();
        loop {
            let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
            assert_eq!(chars.next(), Some('"'), "{line}");
            let mut value = String::new();
            loop {
                match chars.next().expect("unterminated label value") {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => panic!("bad escape \\{other:?} in {line}"),
                    },
                    '\n' => panic!("raw newline in {line}"),
                    c => value.push(c),
                }
            }
            labels.insert(name, value);
            match chars.next() {
                Some(',') => continue,
                Some('}') => break,
                other => panic!("expected , or }} after a label, found {other:?} in {line}"),
            }
        }
        out.push(labels);
    }
    out
}

fn promtool_check(exposition: &str) -> Result<(), String> {
    match common::promtool_says(exposition) {
        (true, _) => Ok(()),
        (false, said) => Err(said),
    }
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9\"\\\\\n]{0,16}",
        "[ -~\n\t\r]{0,24}",
        "[\"\\\\\né☃{}=,# ]{1,8}",
        Just("\\n".to_string()),
        Just("\\\"".to_string()),
        Just("\"}".to_string()),
    ]
}

proptest! {
    #![proptest_config(cases(24))]

    /// Label values with quotes, backslashes and newlines come out of the
    /// real renderer escaped: promtool accepts the exposition, and reading
    /// the escapes back gives the values that went in, in both formats.
    #[test]
    fn label_values_are_escaped_in_the_exposition(
        commit in label_value(),
        version in label_value(),
        run_commit in label_value(),
    ) {
        let config = Config::parse(
            "environments:\n  - name: prod\n    boxes: [prod-a]\n    services:\n      - name: broker\n",
            "fleet.yaml",
        )
        .unwrap();
        let hub = Hub::new(Arc::new(config));
        let mut pulse = Pulse::default();
        pulse.heartbeats.insert(
            "prod-a".into(),
            Arc::new(Heartbeat {
                stack: "prod".into(),
                box_name: "prod-a".into(),
                timestamp: 1000.0,
                count: 1,
                recent: vec![1000.0],
                commit: Some(commit.clone()),
                version: Some(version.clone()),
                booted_at: None,
            }),
        );
        pulse.test_runs.insert(
            ("prod".into(), "broker".into()),
            Arc::new(TestRun {
                stack: "prod".into(),
                service: "broker".into(),
                passed: 1,
                failed: 0,
                errored: 0,
                skipped: 0,
                duration_seconds: None,
                started_at: None,
                received_at: 1000.0,
                commit: Some(run_commit.clone()),
                format: TestRunFormat::Json,
            }),
        );
        hub.publish_pulse(Arc::new(pulse));

        let text = fleetpulse::metrics::render_text(hub.snapshot());
        if let Err(problems) = promtool_check(&text) {
            return Err(TestCaseError::fail(format!("promtool: {problems}\n{text}")));
        }
        let om = fleetpulse::metrics::render_openmetrics(hub.snapshot());
        for exposition in [&text, &om] {
            let info = samples(exposition, "fleet_box_commit_info");
            prop_assert_eq!(info.len(), 1, "{}", exposition);
            prop_assert_eq!(&info[0]["box"], "prod-a");
            prop_assert_eq!(&info[0]["commit"], &commit);
            prop_assert_eq!(&info[0]["version"], &version);
            let runs = samples(exposition, "fleet_test_run_info");
            prop_assert_eq!(runs.len(), 1, "{}", exposition);
            prop_assert_eq!(&runs[0]["commit"], &run_commit);
        }
    }
}
