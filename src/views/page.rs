//! The status page: `GET /` renders the whole page, `GET /board` only the
//! board, which a few lines of script fetch every few seconds and swap in
//! without reloading. No external assets: it works on a closed network.
//!
//! Both render the `json::Fleet` model (redacted in public mode) with maud,
//! whose templates escape every interpolated value: names come from the
//! config and from pushes, and none can inject markup.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use super::json::{BoxStatus, Environment, Fleet, State};
use super::words::{self, ago_words, utc};
use crate::board::html::{badge, opt, state};

/// Where the footer's documentation link goes.
pub const DOCS_URL: &str = "https://github.com/fleetpulse/fleetpulse#readme";

/// Changes listed per environment on the page (the JSON has more).
pub const PAGE_CHANGES: usize = 5;

/// How often the page fetches a fresh board, in milliseconds.
pub const REFRESH_MS: u32 = 5000;

const CSS: &str = "\
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
main{max-width:1180px;margin:0 auto;padding:20px}
h1{font-size:24px;margin:0 0 2px}h2{font-size:18px;margin:26px 0 8px}h3{font-size:16px;margin:0}
.lede{color:#555;margin:0 0 12px}
.meta{color:#555;font-size:13px}
.env{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 14px;margin:10px 0}
.env header{display:flex;gap:10px;align-items:center;margin-bottom:8px}
.svcs{display:flex;flex-wrap:wrap;gap:6px}
.svc{border:1px solid #dde1e7;border-radius:6px;padding:4px 8px;font-size:13px;min-width:120px}
.svc b{display:block}
.since{font-size:12px;color:#555}
.strip{display:flex;gap:1px;margin-top:3px}.strip i{display:block;width:5px;height:10px;border-radius:1px}
.s-green{background:#3fb96b}.s-degraded{background:#f0a020}.s-red{background:#d83a3a}.s-unknown{background:#d5d9e0}
.changes{list-style:none;padding:0;margin:4px 0 0}.changes li{margin:1px 0}.changes time{color:#555;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
.st{display:inline-block;border-radius:4px;padding:0 6px;font-weight:600;font-size:12px;letter-spacing:.02em}
.st-green{background:#d9f2e1;color:#125c2b}.st-degraded{background:#fdecc8;color:#7a4b00}
.st-red{background:#fbd5d5;color:#8a1111}.st-unknown{background:#e4e7ec;color:#3f4654}
.sub{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px 16px;margin-top:8px;font-size:13px}
.note{color:#555;font-size:13px;max-width:820px}
code{font-size:12px}
footer{margin:24px 0 8px}footer a{color:#1d4ed8}
#conn{color:#8a1111;font-size:13px}
";

const SCRIPT: &str = "\
(function(){var b=document.getElementById('board'),c=document.getElementById('conn');\
function tick(){fetch('board',{cache:'no-store'}).then(function(r){if(!r.ok)throw new Error('HTTP '+r.status);return r.text()})\
.then(function(h){b.innerHTML=h;b.setAttribute('data-refreshes',String(1+Number(b.getAttribute('data-refreshes')||0)));c.textContent=''})\
.catch(function(){c.textContent='Could not refresh: showing the data read earlier.'})}\
setInterval(tick,REFRESH);})();";

/// The whole page.
pub fn render(fleet: &Fleet) -> String {
    let script = SCRIPT.replace("REFRESH", &REFRESH_MS.to_string());
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { "The fleet, live" }
                style { (PreEscaped(CSS)) }
            }
            body {
                main {
                    h1 { "The fleet, live" }
                    p class="lede" {
                        "Each environment's services as last probed, its certificates, \
                         the boxes' boot heartbeats and the newest test receipts, refreshing on their own."
                    }
                    div id="conn" role="status" {}
                    div id="board" data-refreshes="0" { (board(fleet)) }
                    h2 { "What you are looking at" }
                    p class="note" {
                        "States are read, not pushed: nothing here pages anyone. A test receipt is \
                         the newest run recorded for a service; a green count means the tested \
                         behaviours held in that run, not that every behaviour is covered. A \
                         heartbeat is a box reporting that it booted, so an old stamp is a long \
                         uptime, not a fault. Mutation results say how many planted bugs the tests \
                         caught and how many slipped through."
                    }
                    footer class="meta" {
                        "fleetpulse " (env!("CARGO_PKG_VERSION")) " · "
                        a href="metrics" { "metrics" } " · "
                        a href="api/v1/fleet" { "fleet JSON" } " · "
                        a href=(DOCS_URL) { "documentation" }
                    }
                }
                script { (PreEscaped(script)) }
            }
        }
    };
    let mut out = page.into_string();
    out.push('\n');
    out
}

/// The board alone (what the page swaps in on refresh).
pub fn render_board(f: &Fleet) -> String {
    board(f).into_string()
}

fn board(f: &Fleet) -> Markup {
    let now = f.read_at;
    html! {
        section id="fleet" data-read-at=(f.read_at) data-state=(f.state.as_str()) {
            p class="meta" {
                "Overall " (state(f.state)) " · data read at " time { (utc(f.read_at)) }
                @if f.public { " · public view" }
            }
            h2 { "Environments" }
            @if f.environments.is_empty() {
                p { "No environments are configured." }
            }
            @for e in &f.environments { (environment(e)) }

            h2 { "Heartbeats" }
            @if f.boxes.is_empty() {
                p { "No boxes are listed and none has reported." }
            } @else {
                table {
                    tr { th { "Box" } th { "Stack" } th { "State" } th { "Last boot" } th { "Commit" } th { "Version" } }
                    @for b in &f.boxes {
                        tr {
                            td { (b.name) } td { (b.stack) } td { (state(b.state)) }
                            td {
                                (words::last_boot(b.status, b.last_heartbeat, b.boots_in_last_hour, now))
                                @if let (BoxStatus::Reported, Some(t)) = (b.status, b.last_heartbeat) {
                                    " " span class="meta" { "(booted " (utc(t)) ")" }
                                }
                            }
                            td { (opt(b.commit.as_deref())) } td { (opt(b.version.as_deref())) }
                        }
                    }
                }
            }

            h2 { "Test receipts" }
            @if f.tests.is_empty() {
                p { "No test run has been recorded yet." }
            } @else {
                table {
                    tr { th { "Service" } th { "Stack" } th { "State" } th { "Passed" } th { "Failed" } th { "Skipped" } th { "When" } th { "Commit" } }
                    @for t in &f.tests {
                        tr {
                            td { (t.service) } td { (t.stack) } td { (state(t.state)) }
                            td { (t.passed) " passed" } td { (t.failed) " failed" } td { (t.skipped) " skipped" }
                            td { (ago_words(now, t.ran_at)) } td { (opt(t.commit.as_deref())) }
                        }
                    }
                }
            }

            h2 { "Mutation results" }
            @if f.mutants.is_empty() {
                p { "No mutation results have been recorded yet." }
            } @else {
                table {
                    tr { th { "Service" } th { "Caught" } th { "Missed" } th { "Timed out" } th { "Unviable" } th { "When" } th { "Commit" } }
                    @for m in &f.mutants {
                        tr {
                            td { (m.service) } td { (m.caught) " caught" }
                            td {
                                @if m.missed > 0 { (state(State::Degraded)) " " }
                                (m.missed) " missed"
                            }
                            td { (m.timeout) } td { (m.unviable) }
                            td { (ago_words(now, m.received_at)) } td { (opt(m.commit.as_deref())) }
                        }
                    }
                }
            }

            @if !f.hosts.is_empty() {
                h2 { "Hosts" }
                table {
                    tr { th { "Host" } th { "Stack" } th { "State" } th { "Checks" } th { "When" } }
                    @for d in &f.hosts {
                        tr {
                            td { (d.host) } td { (d.stack) } td { (state(d.state)) }
                            td { (d.ok) " ok · " (d.warn) " warn · " (d.fail) " fail" }
                            td { (ago_words(now, d.received_at)) }
                        }
                    }
                }
            }

            h2 { "Sources" }
            @if f.sources.is_empty() {
                p { "No source is configured." }
            } @else {
                table {
                    tr { th { "Source" } th { "State" } th { "Last success" } th { "Errors" } th { "Last error" } }
                    @for s in &f.sources {
                        tr {
                            td { (s.source) }
                            td { (badge(s.state, words::source_state(s.state))) }
                            td {
                                @match s.last_success {
                                    Some(t) => (ago_words(now, t)),
                                    None => "never",
                                }
                            }
                            td { (s.errors_total) }
                            td { (opt(s.last_error.as_deref())) }
                        }
                    }
                }
            }
        }
    }
}

/// "11-26 10:42" (UTC).
fn change_time(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.format("%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

fn environment(e: &Environment) -> Markup {
    let (wide, blocks) = e.parts.blocks();
    html! {
        article class="env" data-stack=(e.stack) {
            header {
                h3 { (e.stack) } (state(e.state))
                @if let Some(d) = &e.discovered {
                    span class="meta" { "discovered" @if !d.is_empty() { ": " (d) } }
                }
            }
            @for b in wide { (b) }
            div class="sub" {
                @for b in blocks { (b) }
                @if !e.changes.is_empty() {
                    div class="recent" {
                        b { "Recent changes (UTC)" }
                        ul class="changes" {
                            @for c in e.changes.iter().take(PAGE_CHANGES) {
                                li data-kind=(c.kind.as_str()) {
                                    time { (change_time(c.at)) } " "
                                    (crate::history::words(c.kind, &c.subject, c.from.as_deref(), c.to.as_deref(), c.detail.as_deref()))
                                }
                            }
                        }
                    }
                }
                @if !e.drift.is_empty() {
                    div {
                        b { "Drift" }
                        ul {
                            @for d in &e.drift {
                                li {
                                    (d.kind.replace('_', " ")) " "
                                    @if d.drifted { (badge(State::Degraded, "drifted")) } @else { (badge(State::Green, "in line")) }
                                    @if !d.detail.is_empty() { " — " (d.detail) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_as_recorded, recorded_board};

    #[test]
    fn the_boards_of_recorded_fleets_are_as_recorded() {
        // The fleets the integration tests recorded from their snapshots.
        for name in ["degraded", "source-down-public", "with-history"] {
            let (_, fleet) = recorded_board(name);
            assert_as_recorded(&format!("page/{name}.html"), &render_board(&fleet));
        }
    }

    #[test]
    fn the_page_wraps_the_board_with_its_refresh_script() {
        let (_, fleet) = recorded_board("degraded");
        let page = render(&fleet);
        assert!(page.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(page.ends_with("</html>\n"));
        let board = format!(
            "<div id=\"board\" data-refreshes=\"0\">{}</div>",
            render_board(&fleet)
        );
        assert!(page.contains(&board));
        assert!(page.contains(&format!("setInterval(tick,{REFRESH_MS});")));
        assert!(!page.contains("REFRESH"));
        assert!(page.contains(&format!("<a href=\"{DOCS_URL}\">documentation</a>")));
        assert!(page.contains(concat!("fleetpulse ", env!("CARGO_PKG_VERSION"), " · ")));
    }
}
