//! The status page: `GET /` renders the whole page, `GET /board` only the
//! board, which a few lines of script fetch every few seconds and swap in
//! without reloading. No external assets: it works on a closed network.
//!
//! Both render the `json::Fleet` model (redacted in public mode), and every
//! name is HTML-escaped: names come from the config and from pushes.

use std::fmt::Write as _;

use super::json::{BoxStatus, Environment, Fleet, State};
use super::{ago_words, duration_words, utc};

/// How often the page fetches a fresh board, in milliseconds.
pub const REFRESH_MS: u32 = 5000;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

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
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e7;font-size:13px}
th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eceff3;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
.st{display:inline-block;border-radius:4px;padding:0 6px;font-weight:600;font-size:12px;letter-spacing:.02em}
.st-green{background:#d9f2e1;color:#125c2b}.st-degraded{background:#fdecc8;color:#7a4b00}
.st-red{background:#fbd5d5;color:#8a1111}.st-unknown{background:#e4e7ec;color:#3f4654}
.sub{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px 16px;margin-top:8px;font-size:13px}
.note{color:#555;font-size:13px;max-width:820px}
code{font-size:12px}
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
    let mut h = String::with_capacity(16 * 1024);
    h.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
    h.push_str("<title>The fleet, live</title><style>");
    h.push_str(CSS);
    h.push_str("</style></head><body><main>");
    h.push_str("<h1>The fleet, live</h1>");
    h.push_str(
        "<p class=\"lede\">Each environment's services as last probed, its certificates, \
         the boxes' boot heartbeats and the newest test receipts, refreshing on their own.</p>",
    );
    h.push_str("<div id=\"conn\" role=\"status\"></div>");
    h.push_str("<div id=\"board\" data-refreshes=\"0\">");
    h.push_str(&render_board(fleet));
    h.push_str("</div>");
    h.push_str(
        "<h2>What you are looking at</h2><p class=\"note\">States are read, not pushed: \
         nothing here pages anyone. A test receipt is the newest run recorded for a service; \
         a green count means the tested behaviours held in that run, not that every behaviour \
         is covered. A heartbeat is a box reporting that it booted, so an old stamp is a long \
         uptime, not a fault. Mutation results say how many planted bugs the tests caught and \
         how many slipped through.</p>",
    );
    h.push_str("</main><script>");
    h.push_str(&SCRIPT.replace("REFRESH", &REFRESH_MS.to_string()));
    h.push_str("</script></body></html>\n");
    h
}

/// A state as a coloured label that also says it in words.
fn badge(s: State, word: &str) -> String {
    format!(
        "<span class=\"st st-{}\">{}</span>",
        s.as_str(),
        escape(word)
    )
}

fn state(s: State) -> String {
    badge(s, s.as_str())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| escape(&v.to_string()))
        .unwrap_or_else(|| "—".to_string())
}

/// The board alone (what the page swaps in on refresh).
pub fn render_board(f: &Fleet) -> String {
    let mut h = String::with_capacity(12 * 1024);
    let now = f.read_at;
    // Writing to a String cannot fail; `let _` keeps the renderer infallible.
    let _ = write!(
        h,
        "<section id=\"fleet\" data-read-at=\"{}\" data-state=\"{}\">",
        f.read_at,
        f.state.as_str()
    );
    let _ = write!(
        h,
        "<p class=\"meta\">Overall {} · data read at <time>{}</time>{}</p>",
        state(f.state),
        utc(f.read_at),
        if f.public { " · public view" } else { "" }
    );

    h.push_str("<h2>Environments</h2>");
    if f.environments.is_empty() {
        h.push_str("<p>No environments are configured.</p>");
    }
    for e in &f.environments {
        environment(&mut h, e);
    }

    h.push_str("<h2>Heartbeats</h2>");
    if f.boxes.is_empty() {
        h.push_str("<p>No boxes are listed and none has reported.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Box</th><th>Stack</th><th>State</th><th>Last boot</th>\
             <th>Commit</th><th>Version</th></tr>",
        );
        for b in &f.boxes {
            let last = match (b.status, b.last_heartbeat) {
                (BoxStatus::NeverReported, _) | (_, None) => "never reported".to_string(),
                (BoxStatus::RestartLoop, Some(_)) => format!(
                    "restart loop: {} boots in the last hour",
                    b.boots_in_last_hour
                ),
                (BoxStatus::Reported, Some(t)) => format!(
                    "up {} <span class=\"meta\">(booted {})</span>",
                    duration_words(now - t),
                    utc(t)
                ),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&b.name),
                escape(&b.stack),
                state(b.state),
                last,
                opt(b.commit.as_deref()),
                opt(b.version.as_deref())
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Test receipts</h2>");
    if f.tests.is_empty() {
        h.push_str("<p>No test run has been recorded yet.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Service</th><th>Stack</th><th>State</th><th>Passed</th>\
             <th>Failed</th><th>Skipped</th><th>When</th><th>Commit</th></tr>",
        );
        for t in &f.tests {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} passed</td><td>{} failed</td>\
                 <td>{} skipped</td><td>{}</td><td>{}</td></tr>",
                escape(&t.service),
                escape(&t.stack),
                state(t.state),
                t.passed,
                t.failed,
                t.skipped,
                ago_words(now, t.ran_at),
                opt(t.commit.as_deref())
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Mutation results</h2>");
    if f.mutants.is_empty() {
        h.push_str("<p>No mutation results have been recorded yet.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Service</th><th>Caught</th><th>Missed</th><th>Timed out</th>\
             <th>Unviable</th><th>When</th><th>Commit</th></tr>",
        );
        for m in &f.mutants {
            let missed = if m.missed > 0 {
                format!("{} {} missed", state(State::Degraded), m.missed)
            } else {
                format!("{} missed", m.missed)
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{} caught</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td></tr>",
                escape(&m.service),
                m.caught,
                missed,
                m.timeout,
                m.unviable,
                ago_words(now, m.received_at),
                opt(m.commit.as_deref())
            );
        }
        h.push_str("</table>");
    }

    if !f.hosts.is_empty() {
        h.push_str(
            "<h2>Hosts</h2><table><tr><th>Host</th><th>Stack</th><th>State</th>\
             <th>Checks</th><th>When</th></tr>",
        );
        for d in &f.hosts {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ok · {} warn · {} fail</td>\
                 <td>{}</td></tr>",
                escape(&d.host),
                escape(&d.stack),
                state(d.state),
                d.ok,
                d.warn,
                d.fail,
                ago_words(now, d.received_at)
            );
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Sources</h2>");
    if f.sources.is_empty() {
        h.push_str("<p>No source is configured.</p>");
    } else {
        h.push_str(
            "<table><tr><th>Source</th><th>State</th><th>Last success</th><th>Errors</th>\
             <th>Last error</th></tr>",
        );
        for s in &f.sources {
            let word = match s.state {
                State::Green => "up",
                State::Red => "down",
                _ => "not run yet",
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&s.source),
                badge(s.state, word),
                s.last_success
                    .map(|t| ago_words(now, t))
                    .unwrap_or_else(|| "never".to_string()),
                s.errors_total,
                opt(s.last_error.as_deref())
            );
        }
        h.push_str("</table>");
    }
    h.push_str("</section>");
    h
}

fn environment(h: &mut String, e: &Environment) {
    let _ = write!(
        h,
        "<article class=\"env\" data-stack=\"{0}\"><header><h3>{0}</h3>{1}</header><div class=\"svcs\">",
        escape(&e.stack),
        state(e.state)
    );
    if e.services.is_empty() {
        h.push_str("<span class=\"meta\">No services listed.</span>");
    }
    for s in &e.services {
        let mut detail = match (s.status_code, s.latency_seconds) {
            (Some(c), Some(l)) => format!("HTTP {c} in {:.0} ms", l * 1000.0),
            (None, Some(l)) => format!("no answer after {:.1} s", l),
            _ => String::new(),
        };
        if let Some(r) = &s.reason {
            if !detail.is_empty() {
                detail.push_str(" · ");
            }
            detail.push_str(r);
        }
        let _ = write!(
            h,
            "<div class=\"svc\" data-service=\"{}\"><b>{}</b>{}<div class=\"meta\">{}{}</div></div>",
            escape(&s.name),
            escape(&s.name),
            state(s.state),
            escape(&detail),
            s.commit
                .as_deref()
                .map(|c| format!(" · <code>{}</code>", escape(c)))
                .unwrap_or_default()
        );
    }
    h.push_str("</div><div class=\"sub\">");

    if !e.tls.is_empty() {
        h.push_str("<div><b>Certificates</b><ul>");
        for t in &e.tls {
            let what = match (t.up, t.days_left) {
                (None, _) => "no handshake yet".to_string(),
                (Some(false), _) => format!(
                    "handshake failed{}",
                    t.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
                (Some(true), Some(d)) if d < 0 => "expired".to_string(),
                (Some(true), Some(d)) => format!(
                    "{d} days left{}",
                    if t.chain_valid == Some(false) {
                        ", chain does not verify"
                    } else {
                        ""
                    }
                ),
                (Some(true), None) => "no expiry read".to_string(),
            };
            let _ = write!(
                h,
                "<li>{} {} — {}</li>",
                escape(&t.service),
                state(t.state),
                escape(&what)
            );
        }
        h.push_str("</ul></div>");
    }

    if !e.instances.is_empty() {
        h.push_str("<div><b>Instances</b><ul>");
        for i in &e.instances {
            let up = i
                .uptime_seconds
                .map(|u| format!(", launched {} ago", duration_words(u)))
                .unwrap_or_default();
            let _ = write!(
                h,
                "<li>{}{} {}{}</li>",
                i.instance_id
                    .as_deref()
                    .map(|id| format!("<code>{}</code> ", escape(id)))
                    .unwrap_or_default(),
                escape(&i.instance_type),
                escape(i.state.as_deref().unwrap_or("state unknown")),
                escape(&up)
            );
        }
        h.push_str("</ul></div>");
    }

    if !e.elastic_ips.is_empty() {
        h.push_str("<div><b>Elastic IPs</b><ul>");
        for a in &e.elastic_ips {
            let _ = write!(
                h,
                "<li>{}{}</li>",
                a.public_ip
                    .as_deref()
                    .map(|ip| format!("<code>{}</code> ", escape(ip)))
                    .unwrap_or_default(),
                if a.associated {
                    "associated"
                } else {
                    "not associated"
                }
            );
        }
        h.push_str("</ul></div>");
    }

    if !e.dns.is_empty() {
        h.push_str("<div><b>DNS</b><ul>");
        for d in &e.dns {
            let target = match (&d.addresses, &d.alias) {
                (_, Some(alias)) => format!("alias of {alias}"),
                (Some(a), None) if a.is_empty() => "no A record".to_string(),
                (Some(a), None) => a.join(", "),
                (None, None) => "has an A record".to_string(),
            };
            let _ = write!(h, "<li>{} — {}</li>", escape(&d.name), escape(&target));
        }
        h.push_str("</ul></div>");
    }

    if let Some(slot) = &e.slot {
        let who = match &slot.holder {
            Some(r) => format!(
                "held by {} “{}” on {} ({}{})",
                r.workflow,
                r.title,
                r.branch,
                r.status,
                r.started_at
                    .map(|t| format!(", since {}", utc(t)))
                    .unwrap_or_default()
            ),
            None => "free".to_string(),
        };
        let _ = write!(
            h,
            "<div><b>CI slot</b><ul><li>{}; {} queued</li></ul></div>",
            escape(&who),
            slot.queued
        );
    }

    if let Some(c) = &e.chain {
        h.push_str("<div><b>Chain</b><ul>");
        if let Some(b) = c.balance {
            let _ = write!(h, "<li>deployer balance {} {}</li>", b, escape(&c.symbol));
        }
        if let Some(r) = c.registered {
            h.push_str("<li>registration ");
            h.push_str(&if r {
                badge(State::Green, "present")
            } else {
                badge(State::Red, "missing")
            });
            h.push_str("</li>");
        }
        let _ = write!(
            h,
            "<li class=\"meta\">at block {}</li></ul></div>",
            c.block_number
        );
    }

    if !e.drift.is_empty() {
        h.push_str("<div><b>Drift</b><ul>");
        for d in &e.drift {
            let _ = write!(
                h,
                "<li>{} {}{}</li>",
                escape(&d.kind.replace('_', " ")),
                if d.drifted {
                    badge(State::Degraded, "drifted")
                } else {
                    badge(State::Green, "in line")
                },
                if d.detail.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", escape(&d.detail))
                }
            );
        }
        h.push_str("</ul></div>");
    }
    h.push_str("</div></article>");
}
