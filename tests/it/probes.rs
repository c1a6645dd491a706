//! The healthz and TLS sources against real in-process rustls services.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetpulse::config::Config;
use fleetpulse::simfleet::{self, Authority, Behaviour, SimService};
use fleetpulse::snapshot::Health;
use fleetpulse::sources::{healthz::HealthzFacts, tls::TlsFacts};
use fleetpulse::sources::{healthz::HealthzSource, tls::TlsSource, Source};

struct Fleet {
    ca: Authority,
    ca_file: tempfile::NamedTempFile,
    services: Vec<(&'static str, SimService)>,
}

async fn fleet(specs: Vec<(&'static str, i64, Behaviour)>) -> Fleet {
    let ca = Authority::new(20).unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca.root_pem()).unwrap();
    let mut services = Vec::new();
    for (name, days, b) in specs {
        let id = ca.issue(&["localhost"], days).unwrap();
        services.push((name, SimService::start(id, b).await.unwrap()));
    }
    Fleet {
        ca,
        ca_file,
        services,
    }
}

fn config(f: &Fleet, extra_services: &[(&str, u16)], timeout: &str) -> Arc<Config> {
    let mut y = format!(
        "sources:\n  healthz:\n    interval: 10s\n    timeout: {timeout}\n    degraded_after: 1s\n  tls:\n    interval: 10s\n    timeout: {timeout}\n    ca_file: {}\nenvironments:\n  - name: test-1\n    services:\n",
        f.ca_file.path().display()
    );
    let all = f
        .services
        .iter()
        .map(|(n, s)| (*n, s.port()))
        .chain(extra_services.iter().copied());
    for (name, port) in all {
        y.push_str(&format!(
            "      - name: {name}\n        healthz: https://localhost:{port}/healthz\n        tls: localhost:{port}\n"
        ));
    }
    Arc::new(Config::parse(&y, "test.yaml").unwrap())
}

/// A loopback port with nothing listening.
fn refused_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn healthz_classifies_each_kind_of_answer() {
    let commit = "abc1234".to_string();
    let f = fleet(vec![
        (
            "green",
            30,
            Behaviour::Healthy {
                commit: commit.clone(),
            },
        ),
        (
            "degraded",
            30,
            Behaviour::Degraded {
                commit: commit.clone(),
            },
        ),
        ("error", 30, Behaviour::Status(500)),
        ("slow", 30, Behaviour::Slow(Duration::from_millis(1500))),
        ("hung", 30, Behaviour::Hang),
        ("closed", 30, Behaviour::Down),
        // 50 MB: read no further than 64 KiB.
        ("huge", 30, Behaviour::Huge(50 * 1024 * 1024)),
    ])
    .await;
    // Handshakes that fail on the certificate: said in words, not as the
    // TLS library's names.
    let self_signed = SimService::start(
        simfleet::self_signed(&["localhost"], 30).unwrap(),
        Behaviour::Healthy { commit: "x".into() },
    )
    .await
    .unwrap();
    let wrong_name = SimService::start(
        f.ca.issue(&["other.example"], 30).unwrap(),
        Behaviour::Healthy { commit: "x".into() },
    )
    .await
    .unwrap();
    let cfg = config(
        &f,
        &[
            ("refused", refused_port()),
            ("selfsigned", self_signed.port()),
            ("wrongname", wrong_name.port()),
        ],
        "2s",
    );
    let source = HealthzSource::new(cfg).unwrap();
    let start = Instant::now();
    let out = source.collect().await.unwrap();
    let probes = out.downcast_ref::<HealthzFacts>().expect("healthz facts");
    // The hung service is bounded by the 2 s timeout, not waited on forever.
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    let by = |n: &str| probes.iter().find(|p| p.service == n).unwrap().clone();
    assert_eq!(by("green").health, Health::Green);
    assert_eq!(by("green").commit.as_deref(), Some("abc1234"));
    assert_eq!(by("green").status_code, Some(200));
    assert_eq!(by("degraded").health, Health::Degraded);
    assert_eq!(by("error").health, Health::Red);
    assert_eq!(by("error").status_code, Some(500));
    assert_eq!(by("slow").health, Health::Degraded);
    assert_eq!(by("hung").health, Health::Red);
    assert_eq!(by("hung").status_code, None);
    assert_eq!(by("closed").health, Health::Red);
    assert_eq!(by("refused").health, Health::Red);
    assert_eq!(by("refused").reason.as_deref(), Some("connection refused"));
    assert_eq!(by("hung").reason.as_deref(), Some("timed out after 2 s"));
    assert_eq!(
        (
            by("huge").health,
            by("huge").status_code,
            by("huge").reason.as_deref()
        ),
        (
            Health::Red,
            Some(200),
            Some("answered with more than 64 KiB; a health answer is small")
        )
    );
    // The simulated self-signed certificate's signature does not match its
    // key, as the demo's bad-certificate service's.
    assert_eq!(
        by("selfsigned").reason.as_deref(),
        Some("certificate is signed with an algorithm that does not match its key")
    );
    assert_eq!(
        by("wrongname").reason.as_deref(),
        Some("certificate is not valid for this host name")
    );
    for p in probes.iter() {
        let reason = p.reason.as_deref().unwrap_or_default();
        assert!(
            !reason.contains('{') && !reason.contains("Error") && !reason.contains("::"),
            "{}: a library's words: {reason}",
            p.service
        );
    }
    assert_eq!(probes.iter().filter(|p| p.stack == "test-1").count(), 10);
}

#[tokio::test]
async fn tls_reports_leaf_and_chain_expiry_apart_and_checks_the_chain() {
    let f = fleet(vec![("leaf90", 90, Behaviour::Down)]).await;
    // A service whose leaf verifies; one self-signed; one that hangs mid-handshake.
    let self_signed = SimService::start(
        simfleet::self_signed(&["localhost"], 3).unwrap(),
        Behaviour::Healthy { commit: "x".into() },
    )
    .await
    .unwrap();
    let wrong_name = SimService::start(
        f.ca.issue(&["other.example"], 50).unwrap(),
        Behaviour::Healthy { commit: "x".into() },
    )
    .await
    .unwrap();
    let hung = SimService::start(f.ca.issue(&["localhost"], 50).unwrap(), Behaviour::Hang)
        .await
        .unwrap();
    // Behaviour::Down closes at accept; the TLS test needs a completed handshake.
    f.services[0]
        .1
        .set(Behaviour::Healthy { commit: "x".into() });
    let cfg = config(
        &f,
        &[
            ("selfsigned", self_signed.port()),
            ("wrongname", wrong_name.port()),
            ("hung", hung.port()),
            ("refused", refused_port()),
        ],
        "2s",
    );
    let source = TlsSource::new(cfg).unwrap();
    let start = Instant::now();
    let out = source.collect().await.unwrap();
    let probes = out.downcast_ref::<TlsFacts>().expect("tls facts");
    assert!(start.elapsed() < Duration::from_secs(4));
    let by = |n: &str| probes.iter().find(|p| p.service == n).unwrap().clone();
    let now = fleetpulse::snapshot::now_unix() as i64;
    let days = |t: Option<i64>| (t.unwrap() - now) as f64 / 86400.0;

    let good = by("leaf90");
    assert!(good.up && good.chain_valid, "{good:?}");
    assert!((days(good.leaf_not_after) - 90.0).abs() < 0.1);
    // The intermediate expires in 20 days: the chain's earliest, not the leaf's.
    assert!((days(good.chain_earliest_not_after) - 20.0).abs() < 0.1);

    let ss = by("selfsigned");
    assert!(ss.up && !ss.chain_valid, "{ss:?}");
    assert!(
        (days(ss.leaf_not_after) - 3.0).abs() < 0.1,
        "self-signed still reports expiry"
    );

    let wn = by("wrongname");
    assert!(
        wn.up && !wn.chain_valid,
        "a chain for another name does not verify"
    );

    for (n, said) in [
        ("hung", "timed out after 2 s"),
        ("refused", "connection refused"),
    ] {
        let p = by(n);
        assert!(!p.up && p.leaf_not_after.is_none(), "{p:?}");
        assert_eq!(p.error.as_deref(), Some(said), "{n}");
    }
}

#[tokio::test]
async fn a_service_is_dialled_at_its_address_and_verified_by_its_name() {
    // Certificates that carry names only, for names no resolver knows:
    // two backends behind one name, and one whose certificate is for
    // another name.
    let ca = Authority::new(20).unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca.root_pem()).unwrap();
    let name = "broker.fleet.invalid";
    let start = |names: &'static [&'static str], commit: &str| {
        let id = ca.issue(names, 30).unwrap();
        SimService::start(
            id,
            Behaviour::Healthy {
                commit: commit.into(),
            },
        )
    };
    let a = start(&["broker.fleet.invalid"], "aaa1111").await.unwrap();
    let b = start(&["broker.fleet.invalid"], "bbb2222").await.unwrap();
    let other = start(&["other.fleet.invalid"], "ccc3333").await.unwrap();
    let svc = |svc: &str, port: u16, address: Option<&str>| {
        let mut s = format!(
            "      - name: {svc}\n        healthz: https://{name}:{port}/healthz\n        tls: {name}:{port}\n"
        );
        if let Some(a) = address {
            s.push_str(&format!("        address: {a}\n"));
        }
        s
    };
    let yaml = format!(
        "sources:\n  tls:\n    timeout: 3s\n    ca_file: {}\n  healthz:\n    timeout: 3s\nenvironments:\n  - name: prod\n    services:\n{}{}{}{}",
        ca_file.path().display(),
        svc("backend-a", a.port(), Some("127.0.0.1")),
        svc("backend-b", b.port(), Some("localhost")),
        svc("misnamed", other.port(), Some("127.0.0.1")),
        svc("by-name", a.port(), None),
    );
    let cfg = Arc::new(Config::parse(&yaml, "t.yaml").unwrap());

    let out = HealthzSource::new(cfg.clone())
        .unwrap()
        .collect()
        .await
        .unwrap();
    let probes = out.downcast_ref::<HealthzFacts>().unwrap();
    let by = |n: &str| probes.iter().find(|p| p.service == n).unwrap().clone();
    // Each backend answered for itself, at its address, under the name.
    assert_eq!(
        by("backend-a").health,
        Health::Green,
        "{:?}",
        by("backend-a")
    );
    assert_eq!(by("backend-a").commit.as_deref(), Some("aaa1111"));
    assert_eq!(
        by("backend-b").health,
        Health::Green,
        "{:?}",
        by("backend-b")
    );
    assert_eq!(by("backend-b").commit.as_deref(), Some("bbb2222"));
    // The name is still checked against the certificate.
    assert_eq!(by("misnamed").health, Health::Red);
    assert_eq!(
        by("misnamed").reason.as_deref(),
        Some("certificate is not valid for this host name")
    );
    // Without an address the name must resolve, and this one does not.
    assert_eq!(by("by-name").health, Health::Red, "{:?}", by("by-name"));

    let out = TlsSource::new(cfg).unwrap().collect().await.unwrap();
    let tls = out.downcast_ref::<TlsFacts>().unwrap();
    let by = |n: &str| tls.iter().find(|p| p.service == n).unwrap().clone();
    for backend in ["backend-a", "backend-b"] {
        let p = by(backend);
        assert!(p.up && p.chain_valid, "{p:?}");
    }
    // Two backends behind one name are two series.
    assert_eq!(
        by("backend-a").host,
        format!("{name}:{}@127.0.0.1", a.port())
    );
    assert_eq!(
        by("backend-b").host,
        format!("{name}:{}@localhost", b.port())
    );
    assert!(
        by("misnamed").up && !by("misnamed").chain_valid,
        "{:?}",
        by("misnamed")
    );
    assert!(!by("by-name").up, "{:?}", by("by-name"));
}
