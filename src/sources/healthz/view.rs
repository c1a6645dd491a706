//! The healthz source's part of the board: each service's last /healthz
//! answer, as the fleet JSON, the page and the terminal show it.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::HealthzFacts;
use crate::board::html::state;
use crate::board::{words, Redactor, State};
use crate::health::Health;
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};

/// A service's last /healthz answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub state: State,
    pub status_code: Option<u16>,
    pub latency_seconds: Option<f64>,
    pub commit: Option<String>,
    /// Why it is not green (or why it is unknown), in words.
    pub reason: Option<String>,
    /// When the current state began, Unix seconds (with history kept).
    #[serde(default)]
    pub since: Option<f64>,
    /// Available (green or degraded) share of the last 24 hours and 30
    /// days, over the time the state was known (with history kept).
    #[serde(default)]
    pub availability: Option<crate::board::Availability>,
    /// The worst state of each of the last 24 hours, oldest first (with
    /// history kept).
    #[serde(default)]
    pub strip: Vec<State>,
}

/// The board state of a health.
pub fn state_of(h: Health) -> State {
    match h {
        Health::Green => State::Green,
        Health::Degraded => State::Degraded,
        Health::Red => State::Red,
    }
}

/// Every service of `env`, in inventory order, with its last reading.
pub fn services(probes: Option<&HealthzFacts>, env: &Environment) -> Vec<Service> {
    let probes = probes.map(Vec::as_slice).unwrap_or(&[]);
    let stack = env.name.as_str();
    env.services
        .iter()
        .map(|svc| {
            let probe = probes
                .iter()
                .find(|p| p.stack == stack && p.service == svc.name.as_str());
            match probe {
                Some(p) => Service {
                    name: svc.name.0.clone(),
                    state: state_of(p.health),
                    status_code: p.status_code,
                    latency_seconds: Some(p.duration_seconds),
                    commit: p.commit.clone(),
                    reason: p.reason.clone(),
                    since: None,
                    availability: None,
                    strip: Vec::new(),
                },
                None => Service {
                    name: svc.name.0.clone(),
                    state: State::Unknown,
                    status_code: None,
                    latency_seconds: None,
                    commit: None,
                    reason: Some(
                        if svc.healthz.is_some() {
                            "no /healthz reading yet"
                        } else {
                            "no /healthz URL configured"
                        }
                        .to_string(),
                    ),
                    since: None,
                    availability: None,
                    strip: Vec::new(),
                },
            }
        })
        .collect()
}

impl Service {
    /// Public mode: internal values leave the reason.
    pub fn redact(&mut self, r: &Redactor) {
        r.scrub_opt(&mut self.reason);
    }

    /// The answer in words: "HTTP 503 in 12 ms · reason", or, when no
    /// HTTP answer came, what happened instead: "connection refused (after
    /// 2 ms)", "certificate has expired (after 15 ms)".
    pub fn detail(&self) -> String {
        match (self.status_code, self.latency_seconds, &self.reason) {
            (Some(c), Some(l), None) => format!("HTTP {c} in {}", words::milliseconds(l)),
            (Some(c), Some(l), Some(r)) => {
                format!("HTTP {c} in {} · {r}", words::milliseconds(l))
            }
            // A timeout says its own length.
            (None, Some(_), Some(r)) if r.starts_with("timed out") => r.clone(),
            (None, Some(l), Some(r)) => format!("{r} (after {})", words::milliseconds(l)),
            (_, _, Some(r)) => r.clone(),
            _ => String::new(),
        }
    }
}

/// "red for 12 minutes, since 10:42 UTC".
pub fn since_words(state: State, since: f64, now: f64) -> String {
    let at = chrono::DateTime::from_timestamp(since.floor() as i64, 0);
    let fmt = if now - since < 86_400.0 {
        "%H:%M UTC"
    } else {
        "%Y-%m-%d %H:%M UTC"
    };
    format!(
        "{} for {}, since {}",
        state.as_str(),
        words::duration_words(now - since),
        at.map(|t| t.format(fmt).to_string()).unwrap_or_default()
    )
}

/// "99.31% over 30 days · 100% over 24 hours".
pub fn availability_words(a: &crate::board::Availability) -> String {
    let pct = |x: Option<f64>| match x {
        Some(x) if x >= 1.0 => "100%".to_string(),
        Some(x) => format!("{:.2}%", (x * 100.0).min(99.99)),
        None => "unknown".to_string(),
    };
    format!(
        "{} over 30 days · {} over 24 hours",
        pct(a.month),
        pct(a.day)
    )
}

/// The strip's tooltip: the hours it covers, and those not green.
fn strip_title(now: f64, strip: &[State]) -> String {
    let n = strip.len();
    let hm = |t: f64| {
        chrono::DateTime::from_timestamp(t.floor() as i64, 0)
            .map(|d| d.format("%H:%M").to_string())
            .unwrap_or_default()
    };
    let mut title = format!(
        "the last 24 hours, an hour a cell, {} to {} UTC",
        hm(now - n as f64 * 3600.0),
        hm(now)
    );
    for (i, st) in strip.iter().enumerate() {
        if matches!(st, State::Red | State::Degraded) {
            let from = now - (n - i) as f64 * 3600.0;
            title.push_str(&format!("; {}: {}", hm(from), st.as_str()));
        }
    }
    title
}

/// The services as the page's tiles, as of `now`.
pub fn page(services: &[Service], now: f64) -> Markup {
    html! {
        div class="svcs" {
            @if services.is_empty() {
                span class="meta" { "No services listed." }
            }
            @for s in services {
                div class="svc" data-service=(s.name) {
                    b { (s.name) }
                    (state(s.state))
                    @if let Some(t) = s.since {
                        " " span class="since" { (since_words(s.state, t, now)) }
                    }
                    div class="meta" {
                        (s.detail())
                        @if let Some(c) = &s.commit { " · " code { (c) } }
                    }
                    @if !s.strip.is_empty() {
                        div class="strip" title=(strip_title(now, &s.strip)) {
                            @for st in &s.strip {
                                i class={ "s-" (st.as_str()) } {}
                            }
                        }
                    }
                    @if let Some(a) = &s.availability {
                        div class="meta avail" { (availability_words(a)) }
                    }
                }
            }
        }
    }
}

/// This source's part of an environment: each service's last /healthz answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Part {
    pub services: Vec<Service>,
    /// When the part was built (for "red for 12 minutes").
    #[serde(skip)]
    pub read_at: f64,
}

/// Equal when the services are: `read_at` is the time it was drawn, not
/// part of what it says (and not in the JSON).
impl PartialEq for Part {
    fn eq(&self, other: &Part) -> bool {
        self.services == other.services
    }
}

impl BoardPart for Part {
    const WIDE: bool = true;
    fn build(facts: &Facts, env: &Environment, now: f64) -> Self {
        Part {
            services: services(facts.get(), env),
            read_at: now,
        }
    }
    fn state(&self) -> Option<State> {
        self.services.iter().map(|s| s.state).max()
    }
    fn redact(&mut self, r: &Redactor) {
        self.services.iter_mut().for_each(|s| s.redact(r));
    }
    fn page(&self) -> Option<Markup> {
        Some(page(&self.services, self.read_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::board::Availability;
    use crate::sources::healthz::ServiceProbe;

    // 2025-06-15T15:06:40Z.
    const NOW: f64 = 1_750_000_000.0;

    fn env() -> Environment {
        crate::testing::environment("prod", "    services:\n      - name: api\n        healthz: https://api.example.net/healthz\n      - name: web\n        healthz: https://web.example.net/healthz\n      - name: cron\n")
    }

    fn probe(stack: &str, service: &str, health: Health) -> ServiceProbe {
        ServiceProbe {
            status_code: Some(503),
            duration_seconds: 0.012,
            commit: Some("4f2c9e1".into()),
            reason: Some("HTTP 503".into()),
            ..crate::testing::service_probe(stack, service, health)
        }
    }

    fn service(code: Option<u16>, latency: Option<f64>, reason: Option<&str>) -> Service {
        Service {
            name: "api".into(),
            state: State::Red,
            status_code: code,
            latency_seconds: latency,
            commit: None,
            reason: reason.map(String::from),
            since: None,
            availability: None,
            strip: Vec::new(),
        }
    }

    #[test]
    fn each_listed_service_shows_its_own_reading_or_why_there_is_none() {
        let probes = vec![
            probe("staging", "api", Health::Green),
            probe("prod", "web", Health::Red),
            probe("prod", "api", Health::Degraded),
        ];
        let got = services(Some(&probes), &env());
        let names: Vec<_> = got.iter().map(|s| (s.name.as_str(), s.state)).collect();
        assert_eq!(
            names,
            [
                ("api", State::Degraded),
                ("web", State::Red),
                ("cron", State::Unknown)
            ]
        );
        assert_eq!(got[0].status_code, Some(503));
        assert_eq!(got[0].latency_seconds, Some(0.012));
        assert_eq!(got[0].commit.as_deref(), Some("4f2c9e1"));
        assert_eq!(got[0].reason.as_deref(), Some("HTTP 503"));
        assert_eq!(got[2].reason.as_deref(), Some("no /healthz URL configured"));
        let none = services(None, &env());
        assert_eq!(none[0].reason.as_deref(), Some("no /healthz reading yet"));
        assert!(none
            .iter()
            .all(|s| s.state == State::Unknown && s.status_code.is_none()));
        assert_eq!(state_of(Health::Green), State::Green);
    }

    #[test]
    fn the_detail_says_the_answer_or_what_came_instead() {
        assert_eq!(
            service(Some(200), Some(0.012), None).detail(),
            "HTTP 200 in 12 ms"
        );
        assert_eq!(
            service(Some(503), Some(0.012), Some("draining")).detail(),
            "HTTP 503 in 12 ms · draining"
        );
        assert_eq!(
            service(None, Some(5.0), Some("timed out after 5 s")).detail(),
            "timed out after 5 s"
        );
        assert_eq!(
            service(None, Some(0.002), Some("connection refused")).detail(),
            "connection refused (after 2 ms)"
        );
        assert_eq!(
            service(None, None, Some("no /healthz reading yet")).detail(),
            "no /healthz reading yet"
        );
        assert_eq!(service(Some(200), None, None).detail(), "");
    }

    #[test]
    fn since_reads_as_a_time_of_day_within_a_day_and_a_date_beyond() {
        assert_eq!(
            since_words(State::Red, NOW - 720.0, NOW),
            "red for 12 minutes, since 14:54 UTC"
        );
        assert_eq!(
            since_words(State::Degraded, NOW - 86_399.0, NOW),
            "degraded for 23 hours, since 15:06 UTC"
        );
        assert_eq!(
            since_words(State::Green, NOW - 86_400.0, NOW),
            "green for 1 day, since 2025-06-14 15:06 UTC"
        );
    }

    #[test]
    fn availability_is_a_percentage_never_rounded_up_to_a_whole_hundred() {
        let words = |month, day| availability_words(&Availability { day, month });
        assert_eq!(
            words(Some(0.99314), Some(1.0)),
            "99.31% over 30 days · 100% over 24 hours"
        );
        assert_eq!(
            words(Some(0.999999), None),
            "99.99% over 30 days · unknown over 24 hours"
        );
    }

    #[test]
    fn the_strip_title_names_its_hours_and_those_not_green() {
        let strip = [State::Green, State::Red, State::Unknown, State::Degraded];
        assert_eq!(
            strip_title(NOW, &strip),
            "the last 24 hours, an hour a cell, 11:06 to 15:06 UTC; 12:06: red; 14:06: degraded"
        );
    }

    #[test]
    fn a_tile_shows_state_detail_commit_strip_and_availability() {
        let mut s = service(Some(503), Some(0.012), Some("draining"));
        s.commit = Some("4f2c9e1".into());
        s.since = Some(NOW - 720.0);
        s.strip = vec![State::Green, State::Red];
        s.availability = Some(Availability {
            day: Some(0.5),
            month: Some(0.75),
        });
        let html = page(&[s.clone()], NOW).into_string();
        for want in [
            r#"<div class="svc" data-service="api"><b>api</b><span class="st st-red">red</span>"#,
            r#"<span class="since">red for 12 minutes, since 14:54 UTC</span>"#,
            r#"<div class="meta">HTTP 503 in 12 ms · draining · <code>4f2c9e1</code></div>"#,
            r#"<i class="s-green"></i><i class="s-red"></i>"#,
            r#"<div class="meta avail">75.00% over 30 days · 50.00% over 24 hours</div>"#,
        ] {
            assert!(html.contains(want), "{want}\nin\n{html}");
        }
        let bare = page(&[service(None, None, Some("no /healthz reading yet"))], NOW).into_string();
        for absent in ["since", "strip", "avail", "<code>"] {
            assert!(!bare.contains(absent), "{absent} in {bare}");
        }
        assert!(page(&[], NOW).into_string().contains("No services listed."));
    }

    #[test]
    fn the_part_is_as_bad_as_its_worst_service_and_hides_internal_values() {
        let facts = Facts::default().with(
            "healthz",
            vec![
                probe("prod", "api", Health::Green),
                ServiceProbe {
                    reason: Some("connect to 10.0.0.7:443 refused".into()),
                    ..probe("prod", "web", Health::Degraded)
                },
            ],
        );
        let mut part = Part::build(&facts, &env(), NOW);
        assert_eq!(part.read_at, NOW);
        // cron has no reading: unknown, which is better than degraded.
        assert_eq!(part.state(), Some(State::Degraded));
        assert_eq!(Part::default().state(), None);
        let later = Part {
            read_at: NOW + 60.0,
            ..part.clone()
        };
        assert_eq!(part, later);
        part.redact(&Redactor::new().unwrap());
        assert_eq!(
            part.services[1].reason.as_deref(),
            Some("connect to [hidden]:443 refused")
        );
        assert_ne!(part, later);
        let shown = part.page().unwrap().into_string();
        assert!(shown.contains("data-service=\"cron\""), "{shown}");
    }
}
