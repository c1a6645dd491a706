//! `fleetpulse status`: the board as a terminal table, read from a running
//! exporter's `/api/v1/fleet`. Fetching is the only I/O; selecting a stack
//! and rendering the table are pure functions, tested without a server.

use std::fmt::Write as _;
use std::time::Duration;

use crate::views::json::{Fleet, State, SCHEMA_VERSION};
use crate::views::words::{self, ago_words, utc};

/// The path of the fleet JSON under an exporter's base URL.
pub const FLEET_PATH: &str = "/api/v1/fleet";

/// How long one fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the board could not be shown. Each says what was wrong and what to try.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("not an http(s) URL: {0:?} (try --url http://127.0.0.1:8937)")]
    BadUrl(String),
    #[error("cannot reach {url}: {reason} (is fleetpulse serving there? check --url)")]
    Unreachable { url: String, reason: String },
    #[error("{url} answered HTTP {status}: not a fleetpulse fleet endpoint? (check --url)")]
    Http { url: String, status: u16 },
    #[error("{url} did not answer fleet JSON: {reason}")]
    Garbage { url: String, reason: String },
    #[error("{url} serves fleet schema version {found}; this fleetpulse reads version {SCHEMA_VERSION}: upgrade fleetpulse")]
    Schema { url: String, found: u64 },
    #[error("no environment named {stack:?}; the fleet has: {known}")]
    UnknownStack { stack: String, known: String },
    #[error("{url} asks for a user and password (HTTP 401): give --user NAME, with the password in FLEETPULSE_PASSWORD or --password-file")]
    NeedsCredentials { url: String },
    #[error("{url} refused the user and password given (HTTP 401)")]
    BadCredentials { url: String },
    #[error("{0}")]
    Usage(String),
}

/// The environment variable holding the basic-auth password.
pub const PASSWORD_ENV: &str = "FLEETPULSE_PASSWORD";

/// How to reach an exporter served with TLS and basic auth.
#[derive(Default)]
pub struct Access {
    /// PEM CA certificates trusted instead of the system's roots.
    ca_pem: Option<Vec<u8>>,
    /// User and password.
    credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("ca", &self.ca_pem.is_some())
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .finish()
    }
}

impl Access {
    /// Reads the CA file and the password (from `password_file`, else the
    /// `FLEETPULSE_PASSWORD` environment variable). Errors name where it
    /// looked, never the password.
    pub fn new(
        ca_file: Option<std::path::PathBuf>,
        user: Option<String>,
        password_file: Option<&std::path::Path>,
    ) -> Result<Access, StatusError> {
        let ca_pem = match ca_file {
            Some(p) => Some(std::fs::read(&p).map_err(|e| {
                StatusError::Usage(format!("cannot read --ca-file {}: {e}", p.display()))
            })?),
            None => None,
        };
        let credentials = match user {
            None => None,
            Some(user) => {
                let password = match password_file {
                    Some(p) => std::fs::read_to_string(p)
                        .map(|s| s.trim_end().to_string())
                        .map_err(|e| {
                            StatusError::Usage(format!(
                                "cannot read --password-file {}: {e}",
                                p.display()
                            ))
                        })?,
                    None => std::env::var(PASSWORD_ENV).map_err(|_| {
                        StatusError::Usage(format!(
                            "--user needs a password: set {PASSWORD_ENV} or give --password-file"
                        ))
                    })?,
                };
                Some((user, password))
            }
        };
        Ok(Access {
            ca_pem,
            credentials,
        })
    }
}

/// The fleet JSON URL for what the user gave: a base URL, or the endpoint itself.
pub fn fleet_url(base: &str) -> Result<String, StatusError> {
    let parsed = url::Url::parse(base).map_err(|_| StatusError::BadUrl(base.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(StatusError::BadUrl(base.to_string()));
    }
    let trimmed = base.trim_end_matches('/');
    Ok(if trimmed.ends_with(FLEET_PATH) {
        trimmed.to_string()
    } else {
        format!("{trimmed}{FLEET_PATH}")
    })
}

/// Fetches and parses the board.
pub async fn fetch(base: &str, access: &Access) -> Result<Fleet, StatusError> {
    let url = fleet_url(base)?;
    let (status, body) = request(&url, access).await?;
    if !(200..300).contains(&status) {
        return Err(StatusError::Http { url, status });
    }
    parse(&url, &body)
}

/// GETs `url` with `access`: the status and the body. A 401 is an error
/// saying what credentials to give.
pub(crate) async fn request(url: &str, access: &Access) -> Result<(u16, Vec<u8>), StatusError> {
    let url = url.to_string();
    let unreachable = |e: reqwest::Error| StatusError::Unreachable {
        url: url.clone(),
        reason: error_chain(&e),
    };
    let mut client = reqwest::Client::builder().timeout(FETCH_TIMEOUT);
    if let Some(pem) = &access.ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
            StatusError::Usage(format!("--ca-file holds no usable PEM certificate: {e}"))
        })?;
        if certs.is_empty() {
            return Err(StatusError::Usage(
                "--ca-file holds no PEM certificate".into(),
            ));
        }
        client = client.tls_certs_only(certs);
    }
    let client = client.build().map_err(unreachable)?;
    let mut req = client.get(&url);
    if let Some((user, password)) = &access.credentials {
        req = req.basic_auth(user, Some(password));
    }
    let resp = req.send().await.map_err(unreachable)?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(if access.credentials.is_some() {
            StatusError::BadCredentials { url }
        } else {
            StatusError::NeedsCredentials { url }
        });
    }
    let body = resp.bytes().await.map_err(unreachable)?;
    Ok((status.as_u16(), body.to_vec()))
}

/// Parses a fleet JSON body, checking its schema version first.
pub fn parse(url: &str, body: &[u8]) -> Result<Fleet, StatusError> {
    let garbage = |reason: String| StatusError::Garbage {
        url: url.to_string(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| garbage(format!("not JSON ({e})")))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(found) => {
            return Err(StatusError::Schema {
                url: url.to_string(),
                found,
            })
        }
        None => return Err(garbage("no \"schema_version\" field".to_string())),
    }
    serde_json::from_value(value).map_err(|e| garbage(format!("unexpected shape ({e})")))
}

/// The board limited to `stack`, if given.
pub fn select(fleet: Fleet, stack: Option<&str>) -> Result<Fleet, StatusError> {
    match stack {
        None => Ok(fleet),
        Some(s) => fleet
            .only_stack(s)
            .ok_or_else(|| StatusError::UnknownStack {
                stack: s.to_string(),
                known: if fleet.environments.is_empty() {
                    "no environments".to_string()
                } else {
                    fleet
                        .environments
                        .iter()
                        .map(|e| e.stack.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            }),
    }
}

/// 1 when anything on the board is red, else 0.
pub fn exit_code(fleet: &Fleet) -> u8 {
    u8::from(fleet.worst() == State::Red)
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (non-empty).
pub fn colour_wanted() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn paint(s: State, text: &str, colour: bool) -> String {
    if !colour {
        return text.to_string();
    }
    let code = match s {
        State::Green => "32",
        State::Unknown => "2",
        State::Degraded => "33",
        State::Red => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Rows of cells, each cell with the state that colours it (if any).
type Cell = (String, Option<State>);

fn table(out: &mut String, header: &[&str], rows: &[Vec<Cell>], colour: bool) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, (c, _)) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<(String, Option<State>)>| {
        let mut l = String::new();
        for (i, (c, st)) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(c.chars().count());
            let last = i + 1 == cells.len();
            let text = match st {
                Some(s) => paint(*s, c, colour),
                None => c.clone(),
            };
            l.push_str(&text);
            if !last {
                l.push_str(&" ".repeat(pad + 2));
            }
        }
        l.trim_end().to_string()
    };
    out.push_str(&line(
        header.iter().map(|h| (h.to_string(), None)).collect(),
    ));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.clone()));
        out.push('\n');
    }
}

fn plain(s: impl Into<String>) -> Cell {
    (s.into(), None)
}

fn st(s: State) -> Cell {
    (s.as_str().to_string(), Some(s))
}

fn or_dash(v: Option<&str>) -> String {
    v.unwrap_or("-").to_string()
}

/// The board as text tables.
pub fn render_table(f: &Fleet, colour: bool) -> String {
    let now = f.read_at;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "fleet {} (read at {}){}",
        paint(f.state, f.state.as_str(), colour),
        utc(f.read_at),
        if f.public { ", public view" } else { "" }
    );

    out.push_str("\nSERVICES\n");
    let mut rows = Vec::new();
    for e in &f.environments {
        for s in &e.parts.healthz.services {
            let cert = e
                .parts
                .tls
                .tls
                .iter()
                .find(|t| t.service == s.name)
                .map(|t| t.cell())
                .unwrap_or_else(|| plain("-"));
            rows.push(vec![
                plain(e.stack.clone()),
                plain(s.name.clone()),
                st(s.state),
                plain(
                    s.since
                        .map(|t| words::duration_words(now - t))
                        .unwrap_or("-".into()),
                ),
                plain(s.status_code.map(|c| c.to_string()).unwrap_or("-".into())),
                plain(
                    s.latency_seconds
                        .map(words::milliseconds)
                        .unwrap_or("-".into()),
                ),
                plain(or_dash(s.commit.as_deref())),
                cert,
                plain(or_dash(s.reason.as_deref())),
            ]);
        }
    }
    if rows.is_empty() {
        out.push_str("(no services)\n");
    } else {
        table(
            &mut out,
            &[
                "STACK", "SERVICE", "STATE", "FOR", "HTTP", "LATENCY", "COMMIT", "CERT", "NOTE",
            ],
            &rows,
            colour,
        );
    }

    let drifted: Vec<Vec<Cell>> = f
        .environments
        .iter()
        .flat_map(|e| {
            e.drift.iter().filter(|d| d.drifted).map(|d| {
                vec![
                    plain(e.stack.clone()),
                    st(State::Degraded),
                    plain(d.kind.clone()),
                    plain(d.detail.clone()),
                ]
            })
        })
        .collect();
    if !drifted.is_empty() {
        out.push_str("\nDRIFT\n");
        table(
            &mut out,
            &["STACK", "STATE", "KIND", "DETAIL"],
            &drifted,
            colour,
        );
    }

    let slots: Vec<Vec<Cell>> = f
        .environments
        .iter()
        .filter_map(|e| {
            let [holder, since, queued] = e.parts.github.slot.as_ref()?.cells(now);
            Some(vec![
                plain(e.stack.clone()),
                plain(holder),
                plain(since),
                plain(queued),
            ])
        })
        .collect();
    if !slots.is_empty() {
        out.push_str("\nCI SLOTS\n");
        table(
            &mut out,
            &["STACK", "HELD BY", "SINCE", "QUEUE"],
            &slots,
            colour,
        );
    }

    if !f.boxes.is_empty() {
        out.push_str("\nHEARTBEATS\n");
        let rows: Vec<Vec<Cell>> = f
            .boxes
            .iter()
            .map(|b| {
                let last = words::last_boot(b.status, b.last_heartbeat, b.boots_in_last_hour, now);
                vec![
                    plain(b.stack.clone()),
                    plain(b.name.clone()),
                    st(b.state),
                    plain(last),
                    plain(or_dash(b.commit.as_deref())),
                ]
            })
            .collect();
        table(
            &mut out,
            &["STACK", "BOX", "STATE", "LAST BOOT", "COMMIT"],
            &rows,
            colour,
        );
    }

    if !f.tests.is_empty() {
        out.push_str("\nTEST RECEIPTS\n");
        let rows: Vec<Vec<Cell>> = f
            .tests
            .iter()
            .map(|t| {
                vec![
                    plain(t.stack.clone()),
                    plain(t.service.clone()),
                    st(t.state),
                    plain(format!(
                        "{} passed, {} failed, {} skipped",
                        t.passed, t.failed, t.skipped
                    )),
                    plain(ago_words(now, t.ran_at)),
                    plain(or_dash(t.commit.as_deref())),
                ]
            })
            .collect();
        table(
            &mut out,
            &["STACK", "SERVICE", "STATE", "RESULT", "WHEN", "COMMIT"],
            &rows,
            colour,
        );
    }

    if !f.mutants.is_empty() {
        out.push_str("\nMUTANTS\n");
        let rows: Vec<Vec<Cell>> = f
            .mutants
            .iter()
            .map(|m| {
                vec![
                    plain(m.service.clone()),
                    plain(format!("{} caught", m.caught)),
                    if m.missed > 0 {
                        (format!("{} missed", m.missed), Some(State::Degraded))
                    } else {
                        plain("0 missed")
                    },
                    plain(ago_words(now, m.received_at)),
                    plain(or_dash(m.commit.as_deref())),
                ]
            })
            .collect();
        table(
            &mut out,
            &["SERVICE", "CAUGHT", "MISSED", "WHEN", "COMMIT"],
            &rows,
            colour,
        );
    }

    if !f.hosts.is_empty() {
        out.push_str("\nHOSTS\n");
        let rows: Vec<Vec<Cell>> = f
            .hosts
            .iter()
            .map(|h| {
                vec![
                    plain(h.stack.clone()),
                    plain(h.host.clone()),
                    st(h.state),
                    plain(format!("{} ok, {} warn, {} fail", h.ok, h.warn, h.fail)),
                    plain(ago_words(now, h.received_at)),
                ]
            })
            .collect();
        table(
            &mut out,
            &["STACK", "HOST", "STATE", "CHECKS", "WHEN"],
            &rows,
            colour,
        );
    }

    if !f.sources.is_empty() {
        out.push_str("\nSOURCES\n");
        let rows: Vec<Vec<Cell>> = f
            .sources
            .iter()
            .map(|s| {
                let word = words::source_state(s.state);
                vec![
                    plain(s.source.clone()),
                    (word.to_string(), Some(s.state)),
                    plain(
                        s.last_success
                            .map(|t| ago_words(now, t))
                            .unwrap_or("never".into()),
                    ),
                    plain(or_dash(s.last_error.as_deref())),
                ]
            })
            .collect();
        table(
            &mut out,
            &["SOURCE", "STATE", "LAST SUCCESS", "LAST ERROR"],
            &rows,
            colour,
        );
    }
    out
}

/// What `fleetpulse status` prints and exits with.
pub struct Report {
    pub output: String,
    /// 0: nothing red; 1: something red.
    pub exit_code: u8,
}

/// Fetches the board, selects the stack, and renders it as a table (or as
/// the selected JSON).
pub async fn run(
    base: &str,
    access: &Access,
    stack: Option<&str>,
    json: bool,
    colour: bool,
) -> Result<Report, StatusError> {
    let fleet = select(fetch(base, access).await?, stack)?;
    let output = if json {
        // A model of plain fields serializes without error.
        let mut s = serde_json::to_string_pretty(&fleet).unwrap_or_default();
        s.push('\n');
        s
    } else {
        render_table(&fleet, colour)
    };
    Ok(Report {
        exit_code: exit_code(&fleet),
        output,
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if !s.contains(&msg) {
            s.push_str(": ");
            s.push_str(&msg);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_url_accepts_a_base_or_the_endpoint_and_refuses_non_http() {
        assert_eq!(fleet_url("http://h:1").unwrap(), "http://h:1/api/v1/fleet");
        assert_eq!(fleet_url("http://h:1/").unwrap(), "http://h:1/api/v1/fleet");
        assert_eq!(
            fleet_url("http://h:1/api/v1/fleet").unwrap(),
            "http://h:1/api/v1/fleet"
        );
        assert!(matches!(fleet_url("h:1"), Err(StatusError::BadUrl(_))));
        assert!(matches!(fleet_url("ftp://h/"), Err(StatusError::BadUrl(_))));
    }

    #[test]
    fn parse_refuses_garbage_and_other_schema_versions() {
        let e = parse("u", b"<html>oops</html>").unwrap_err();
        assert!(e.to_string().contains("not JSON"), "{e}");
        let e = parse("u", br#"{"hello":1}"#).unwrap_err();
        assert!(e.to_string().contains("schema_version"), "{e}");
        let e = parse("u", br#"{"schema_version":2}"#).unwrap_err();
        assert!(matches!(e, StatusError::Schema { found: 2, .. }), "{e}");
        let e = parse("u", br#"{"schema_version":1}"#).unwrap_err();
        assert!(e.to_string().contains("unexpected shape"), "{e}");
    }

    use crate::testing::{assert_as_recorded, recorded_board};

    fn recorded(name: &str) -> (Vec<u8>, Fleet) {
        let (text, fleet) = recorded_board(name.trim_end_matches(".json"));
        assert_eq!(
            parse("u", text.as_bytes()).ok().map(|f| f.read_at),
            Some(fleet.read_at)
        );
        (text.into_bytes(), fleet)
    }

    fn table_recorded(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/status/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_tables_of_recorded_boards_are_as_recorded() {
        // The same boards as the integration tests' status::the_tables_are_as_recorded.
        for (board, colour, table) in [
            ("degraded.json", false, "degraded.txt"),
            ("degraded.json", true, "degraded-colour.txt"),
            ("source-down-public.json", false, "source-down-public.txt"),
        ] {
            let (_, fleet) = recorded(board);
            assert_as_recorded(&format!("status/{table}"), &render_table(&fleet, colour));
        }
    }

    #[test]
    fn a_stack_is_selected_or_the_known_ones_are_named_and_red_exits_1() {
        let (_, fleet) = recorded("degraded.json");
        assert_eq!(fleet.worst(), State::Red);
        assert_eq!(exit_code(&fleet), 1);
        let stacks: Vec<String> = fleet.environments.iter().map(|e| e.stack.clone()).collect();
        assert!(stacks.len() > 1);
        assert_eq!(
            select(fleet.clone(), None).unwrap().environments.len(),
            stacks.len()
        );
        let one = select(fleet.clone(), Some(&stacks[0])).unwrap();
        assert_eq!(one.environments.len(), 1);
        assert_eq!(one.environments[0].stack, stacks[0]);
        assert_eq!(exit_code(&one), u8::from(one.worst() == State::Red));
        let e = select(fleet.clone(), Some("nowhere"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "no environment named \"nowhere\"; the fleet has: {}",
                stacks.join(", ")
            )
        );
        let mut empty = fleet;
        empty.environments.clear();
        let e = select(empty, Some("x")).unwrap_err().to_string();
        assert!(e.ends_with("the fleet has: no environments"), "{e}");
        let mut calm = recorded("degraded.json").1;
        calm.environments
            .iter_mut()
            .for_each(|e| e.state = State::Green);
        calm.boxes
            .iter_mut()
            .for_each(|b| b.state = State::Degraded);
        calm.tests.clear();
        calm.hosts.clear();
        assert_eq!(exit_code(&calm), 0);
    }

    #[test]
    fn each_service_shows_its_own_certificate() {
        let (_, mut fleet) = recorded("degraded.json");
        let prod = &mut fleet.environments[0];
        let signer = prod
            .parts
            .tls
            .tls
            .iter_mut()
            .find(|t| t.service == "signer")
            .unwrap();
        signer.days_left = Some(5);
        let table = render_table(&fleet, false);
        let row = |service: &str| {
            table
                .lines()
                .find(|l| l.starts_with("prod ") && l.split_whitespace().nth(1) == Some(service))
                .unwrap()
                .to_string()
        };
        assert!(row("signer").contains(" 5 days "), "{table}");
        assert!(row("broker").contains(" 60 days "), "{table}");
    }

    #[test]
    fn paint_colours_by_state_only_when_asked() {
        assert_eq!(paint(State::Red, "red", false), "red");
        assert_eq!(paint(State::Red, "r", true), "\x1b[1;31mr\x1b[0m");
        assert_eq!(paint(State::Green, "g", true), "\x1b[32mg\x1b[0m");
        assert_eq!(paint(State::Degraded, "d", true), "\x1b[33md\x1b[0m");
        assert_eq!(paint(State::Unknown, "u", true), "\x1b[2mu\x1b[0m");
        let mut out = String::new();
        table(
            &mut out,
            &["A", "LONGER"],
            &[
                vec![plain("wide cell"), st(State::Green)],
                vec![plain("x"), plain("")],
            ],
            false,
        );
        assert_eq!(out, "A          LONGER\nwide cell  green\nx\n");
    }

    #[tokio::test]
    async fn run_fetches_selects_and_renders_or_says_what_is_wrong() {
        let (port, server) = crate::testing::http_server_seeing(|request| {
            let path = request.split(' ').nth(1).unwrap_or("");
            let authorized = request
                .lines()
                .any(|l| l.eq_ignore_ascii_case("authorization: Basic dTpwdw=="));
            let body = String::from_utf8(recorded("degraded.json").0).unwrap();
            Some(match path {
                "/api/v1/fleet" => crate::testing::json_response(200, &body),
                "/auth/api/v1/fleet" if authorized => crate::testing::json_response(200, &body),
                "/auth/api/v1/fleet" => crate::testing::json_response(401, "{}"),
                "/html/api/v1/fleet" => crate::testing::json_response(200, "<html>"),
                _ => crate::testing::json_response(404, "{}"),
            })
        })
        .await;
        let base = format!("http://127.0.0.1:{port}");
        let none = Access::default();
        let (_, fleet) = recorded("degraded.json");
        let report = run(&base, &none, None, false, false).await.unwrap();
        assert_eq!(report.output, table_recorded("degraded.txt"));
        assert_eq!(report.exit_code, 1);
        let stack = fleet.environments[0].stack.clone();
        let report = run(
            &format!("{base}/api/v1/fleet/"),
            &none,
            Some(&stack),
            true,
            false,
        )
        .await
        .unwrap();
        let shown: Fleet = serde_json::from_str(&report.output).unwrap();
        assert!(report.output.ends_with("}\n"));
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            serde_json::to_value(fleet.only_stack(&stack).unwrap()).unwrap()
        );
        assert_eq!(report.exit_code, exit_code(&shown));

        let err = |r: Result<Report, StatusError>| r.err().unwrap().to_string();
        let at = |p: &str| format!("{base}{p}/api/v1/fleet");
        assert_eq!(
            err(run(&format!("{base}/gone"), &none, None, false, false).await),
            format!(
                "{} answered HTTP 404: not a fleetpulse fleet endpoint? (check --url)",
                at("/gone")
            )
        );
        assert!(
            err(run(&format!("{base}/html"), &none, None, false, false).await)
                .contains("did not answer fleet JSON: not JSON")
        );
        assert!(
            err(run(&format!("{base}/auth"), &none, None, false, false).await)
                .contains("asks for a user and password (HTTP 401)")
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "wrong\n").unwrap();
        let wrong = Access::new(None, Some("u".into()), Some(&file)).unwrap();
        assert_eq!(
            err(run(&format!("{base}/auth"), &wrong, None, false, false).await),
            format!(
                "{} refused the user and password given (HTTP 401)",
                at("/auth")
            )
        );
        std::fs::write(&file, "pw\n").unwrap();
        let right = Access::new(None, Some("u".into()), Some(&file)).unwrap();
        assert_eq!(
            format!("{right:?}"),
            "Access { ca: false, user: Some(\"u\") }"
        );
        assert_eq!(
            run(&format!("{base}/auth"), &right, None, false, false)
                .await
                .unwrap()
                .exit_code,
            1
        );
        server.abort();

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let e = err(run(&closed_base, &none, None, false, false).await);
        assert!(
            e.starts_with(&format!("cannot reach {closed_base}/api/v1/fleet: ")),
            "{e}"
        );
        assert!(
            e.contains("Connection refused"),
            "the whole chain of causes: {e}"
        );
        assert!(
            e.ends_with("(is fleetpulse serving there? check --url)"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn access_files_that_cannot_be_used_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = Access::new(Some(missing.clone()), None, None)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("cannot read --ca-file {}: ", missing.display())),
            "{e}"
        );
        let e = Access::new(None, Some("u".into()), Some(&missing))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!(
                "cannot read --password-file {}: ",
                missing.display()
            )),
            "{e}"
        );
        let not_pem = dir.path().join("ca.pem");
        std::fs::write(&not_pem, "no certificate here\n").unwrap();
        let access = Access::new(Some(not_pem), None, None).unwrap();
        let e = request("http://127.0.0.1:1/", &access)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(e, "--ca-file holds no PEM certificate");
    }
}
