//! The tls source's part of the board: each TLS endpoint's last handshake
//! and how long its certificates have left.

use maud::{html, Markup};
use serde::{Deserialize, Serialize};

use super::TlsFacts;
use crate::board::html::{block, state};
use crate::board::{Redactor, State};
use crate::inventory::Environment;
use crate::sources::{BoardPart, Facts};
use crate::thresholds::CERT_WARN_DAYS;

/// A TLS endpoint's last handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsEndpoint {
    pub service: String,
    /// `host:port`; `null` in public mode when the host is an IP address.
    pub host: Option<String>,
    pub state: State,
    /// `null` until the first handshake.
    pub up: Option<bool>,
    pub leaf_not_after: Option<i64>,
    pub chain_earliest_not_after: Option<i64>,
    /// Whole days until the earlier of the two not-afters (negative: expired).
    pub days_left: Option<i64>,
    pub chain_valid: Option<bool>,
    pub error: Option<String>,
}

/// Every TLS endpoint of `env`, in inventory order, as of `now`.
pub fn endpoints(handshakes: Option<&TlsFacts>, env: &Environment, now: f64) -> Vec<TlsEndpoint> {
    let handshakes = handshakes.map(Vec::as_slice).unwrap_or(&[]);
    let stack = env.name.as_str();
    env.services
        .iter()
        .filter_map(|svc| {
            let hp = svc.tls.as_ref()?;
            let host = format!("{}:{}", hp.host, hp.port);
            let probe = handshakes
                .iter()
                .find(|t| t.stack == stack && t.service == svc.name.as_str());
            Some(match probe {
                Some(t) => {
                    let earliest = match (t.leaf_not_after, t.chain_earliest_not_after) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    let days_left =
                        earliest.map(|na| ((na as f64 - now) / 86_400.0).floor() as i64);
                    let state = match days_left {
                        _ if !t.up => State::Red,
                        Some(d) if d < 0 => State::Red,
                        Some(d) if d < CERT_WARN_DAYS => State::Degraded,
                        _ if !t.chain_valid => State::Degraded,
                        _ => State::Green,
                    };
                    TlsEndpoint {
                        service: svc.name.0.clone(),
                        host: Some(host),
                        state,
                        up: Some(t.up),
                        leaf_not_after: t.leaf_not_after,
                        chain_earliest_not_after: t.chain_earliest_not_after,
                        days_left,
                        chain_valid: Some(t.chain_valid),
                        error: t.error.clone(),
                    }
                }
                None => TlsEndpoint {
                    service: svc.name.0.clone(),
                    host: Some(host),
                    state: State::Unknown,
                    up: None,
                    leaf_not_after: None,
                    chain_earliest_not_after: None,
                    days_left: None,
                    chain_valid: None,
                    error: None,
                },
            })
        })
        .collect()
}

impl TlsEndpoint {
    /// Public mode: an address as host goes, internal values leave the error.
    pub fn redact(&mut self, r: &Redactor) {
        if self
            .host
            .as_deref()
            .is_some_and(|h| r.scrub(h) != h || h.parse::<std::net::SocketAddr>().is_ok())
        {
            self.host = None;
        }
        r.scrub_opt(&mut self.error);
    }

    /// The certificate in words: "12 days left", "handshake failed: …".
    pub fn words(&self) -> String {
        match (self.up, self.days_left) {
            (None, _) => "no handshake yet".to_string(),
            (Some(false), _) => format!(
                "handshake failed{}",
                self.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            (Some(true), Some(d)) if d < 0 => "expired".to_string(),
            (Some(true), Some(d)) => format!(
                "{d} days left{}",
                if self.chain_valid == Some(false) {
                    ", chain does not verify"
                } else {
                    ""
                }
            ),
            (Some(true), None) => "no expiry read".to_string(),
        }
    }

    /// The terminal's CERT column: the days left, or that the handshake
    /// failed, with the state to colour it by.
    pub fn cell(&self) -> (String, Option<State>) {
        match (self.up, self.days_left) {
            (Some(false), _) => ("handshake failed".to_string(), Some(self.state)),
            (Some(true), Some(d)) => (format!("{d} days"), Some(self.state)),
            _ => ("-".to_string(), None),
        }
    }
}

/// The certificates block of an environment's card.
pub fn page(endpoints: &[TlsEndpoint]) -> Markup {
    let items: Vec<Markup> = endpoints
        .iter()
        .map(|t| html! { li { (t.service) " " (state(t.state)) " — " (t.words()) } })
        .collect();
    block("Certificates", &items)
}

/// This source's part of an environment: its TLS endpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub tls: Vec<TlsEndpoint>,
}

impl BoardPart for Part {
    fn build(facts: &Facts, env: &Environment, now: f64) -> Self {
        Part {
            tls: endpoints(facts.get(), env, now),
        }
    }
    fn state(&self) -> Option<State> {
        self.tls.iter().map(|t| t.state).max()
    }
    fn redact(&mut self, r: &Redactor) {
        self.tls.iter_mut().for_each(|t| t.redact(r));
    }
    fn page(&self) -> Option<Markup> {
        Some(page(&self.tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::tls::TlsProbe;

    const NOW: f64 = 1_750_000_000.0;
    const DAY: i64 = 86_400;

    fn env() -> Environment {
        crate::testing::environment("prod", "    services:\n      - name: api\n        tls: api.example.net:443\n      - name: cron\n      - name: web\n        tls: 10.0.0.7:8443\n")
    }

    /// A good handshake with `api`'s certificates expiring in `leaf` and
    /// `chain` days.
    fn probe(leaf: Option<f64>, chain: Option<f64>) -> TlsProbe {
        let at = |d: f64| NOW as i64 + (d * DAY as f64) as i64;
        TlsProbe {
            stack: "prod".into(),
            service: "api".into(),
            host: "api.example.net:443".into(),
            up: true,
            leaf_not_after: leaf.map(at),
            chain_earliest_not_after: chain.map(at),
            chain_valid: true,
            error: None,
        }
    }

    fn api(p: TlsProbe) -> TlsEndpoint {
        endpoints(Some(&vec![p]), &env(), NOW).remove(0)
    }

    #[test]
    fn only_services_with_a_tls_endpoint_are_listed_unknown_until_probed() {
        let other_stack = TlsProbe {
            stack: "staging".into(),
            ..probe(Some(90.0), None)
        };
        let got = endpoints(Some(&vec![other_stack]), &env(), NOW);
        let listed: Vec<_> = got
            .iter()
            .map(|t| (t.service.as_str(), t.host.as_deref(), t.state))
            .collect();
        assert_eq!(
            listed,
            [
                ("api", Some("api.example.net:443"), State::Unknown),
                ("web", Some("10.0.0.7:8443"), State::Unknown)
            ]
        );
        assert_eq!(got[0].words(), "no handshake yet");
        assert_eq!(got[0].cell(), ("-".to_string(), None));
        assert_eq!(endpoints(None, &env(), NOW), got);
    }

    #[test]
    fn the_days_left_count_to_the_earlier_expiry_in_whole_days() {
        let t = api(probe(Some(90.0), Some(30.5)));
        assert_eq!((t.days_left, t.state), (Some(30), State::Green));
        assert_eq!(t.leaf_not_after, Some(NOW as i64 + 90 * DAY));
        assert_eq!(t.words(), "30 days left");
        assert_eq!(t.cell(), ("30 days".to_string(), Some(State::Green)));
        assert_eq!(api(probe(Some(20.0), Some(40.0))).days_left, Some(20));
        assert_eq!(api(probe(None, Some(40.0))).days_left, Some(40));
        assert_eq!(api(probe(Some(40.0), None)).days_left, Some(40));
        let none = api(probe(None, None));
        assert_eq!((none.days_left, none.state), (None, State::Green));
        assert_eq!(none.words(), "no expiry read");
        // Half a day past expiry is day -1.
        assert_eq!(api(probe(Some(-0.5), None)).days_left, Some(-1));
    }

    #[test]
    fn red_when_down_or_expired_degraded_when_close_or_unverified() {
        let state = |p: TlsProbe| api(p).state;
        assert_eq!(state(probe(Some(-0.5), None)), State::Red);
        assert_eq!(state(probe(Some(0.5), None)), State::Degraded);
        assert_eq!(
            state(probe(Some(CERT_WARN_DAYS as f64 - 0.5), None)),
            State::Degraded
        );
        assert_eq!(
            state(probe(Some(CERT_WARN_DAYS as f64 + 0.5), None)),
            State::Green
        );
        let unverified = TlsProbe {
            chain_valid: false,
            ..probe(Some(90.0), None)
        };
        let t = api(unverified.clone());
        assert_eq!(t.state, State::Degraded);
        assert_eq!(t.words(), "90 days left, chain does not verify");
        let down = TlsProbe {
            up: false,
            error: Some("connection refused".into()),
            ..unverified
        };
        let t = api(down.clone());
        assert_eq!(t.state, State::Red);
        assert_eq!(t.words(), "handshake failed: connection refused");
        assert_eq!(t.cell(), ("handshake failed".to_string(), Some(State::Red)));
        let t = api(TlsProbe {
            error: None,
            ..down
        });
        assert_eq!(t.words(), "handshake failed");
        assert_eq!(api(probe(Some(-3.0), None)).words(), "expired");
    }

    #[test]
    fn public_mode_hides_address_hosts_and_internal_values_in_errors() {
        let r = Redactor::new().unwrap();
        let mut t = api(TlsProbe {
            up: false,
            error: Some("connect to 10.0.0.7:443: refused".into()),
            ..probe(None, None)
        });
        t.redact(&r);
        assert_eq!(t.host.as_deref(), Some("api.example.net:443"));
        assert_eq!(t.error.as_deref(), Some("connect to [hidden]:443: refused"));
        let mut part = Part::build(&Facts::default(), &env(), NOW);
        part.redact(&r);
        assert_eq!(part.tls[1].host, None);
        // An IPv6 address is hidden as well, bracketed as a socket address.
        let mut v6 = TlsEndpoint {
            host: Some("[fd00::7]:443".into()),
            ..part.tls[0].clone()
        };
        v6.redact(&r);
        assert_eq!(v6.host, None);
        // A name that carries an address is hidden too, though no socket address.
        let mut named = TlsEndpoint {
            host: Some("10.0.0.7.nip.io:443".into()),
            ..part.tls[0].clone()
        };
        named.redact(&r);
        assert_eq!(named.host, None);
    }

    #[test]
    fn a_certificate_on_its_last_day_is_not_yet_expired() {
        let last_day = api(probe(Some(0.5), None));
        assert_eq!(last_day.days_left, Some(0));
        assert_eq!(last_day.words(), "0 days left");
        assert_eq!(api(probe(Some(-0.5), None)).words(), "expired");
    }

    #[test]
    fn the_part_is_as_bad_as_its_worst_endpoint_and_lists_each() {
        let facts = Facts::default().with("tls", vec![probe(Some(5.0), None)]);
        let part = Part::build(&facts, &env(), NOW);
        // web is unknown, api degraded: degraded is worse.
        assert_eq!(part.state(), Some(State::Degraded));
        assert_eq!(Part::default().state(), None);
        let html = part.page().unwrap().into_string();
        assert!(
            html.contains(
                r#"<li>api <span class="st st-degraded">degraded</span> — 5 days left</li>"#
            ),
            "{html}"
        );
        assert!(html.contains("<b>Certificates</b>"), "{html}");
        assert!(
            html.contains("web <span class=\"st st-unknown\">unknown</span> — no handshake yet")
        );
    }
}
