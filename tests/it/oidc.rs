//! The oidc source against discovery documents served in-process, and the
//! issuer drift it feeds.

use crate::common;
use crate::harness;

use std::sync::Arc;
use std::time::Duration;

use fleetpulse::config::Config;
use fleetpulse::sources::oidc::{OidcFacts, OidcSource};
use fleetpulse::sources::Source;

use harness::OidcPeer;

fn yaml(peer: &OidcPeer, closed_port: u16) -> String {
    format!(
        "sources:
  oidc:
    interval: 1s
    timeout: 1s
environments:
  - name: prod
    oidc:
      url: {prod}
      issuer: https://id.example.net
  - name: test-1
    oidc:
      url: {t1}
      issuer: https://id.test-1.example.net
  - name: test-2
    oidc:
      url: {t2}
      issuer: https://id.test-2.example.net
  - name: test-3
    oidc:
      url: http://127.0.0.1:{closed_port}/.well-known/openid-configuration
      issuer: https://id.test-3.example.net
  - name: nothing-to-check
",
        prod = peer.url("prod"),
        t1 = peer.url("test-1"),
        t2 = peer.url("test-2"),
    )
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn advertised_issuers_are_read_and_failures_kept_per_environment() {
    let peer = OidcPeer::start(&[
        ("prod", "https://id.example.net"),
        ("test-1", "https://id.prod.example.net"),
    ])
    .await
    .expect("peer server");
    let cfg = Arc::new(Config::parse(&yaml(&peer, closed_port()), "oidc.yaml").unwrap());
    let src = OidcSource::from_config(cfg.clone())
        .unwrap()
        .expect("oidc source enabled");
    let out = src.collect().await.expect("oidc collect");
    let f = out.downcast_ref::<OidcFacts>().expect("oidc facts");
    let got: Vec<(&str, Option<&str>)> = f
        .documents
        .iter()
        .map(|d| (d.stack.as_str(), d.issuer.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("prod", Some("https://id.example.net")),
            ("test-1", Some("https://id.prod.example.net")),
            ("test-2", None),
            ("test-3", None),
        ]
    );
    assert!(
        f.documents[2].error.as_deref().unwrap().contains("404"),
        "{f:?}"
    );
    assert!(f.documents[3].error.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_drift_is_served_and_follows_the_document() {
    let peer = OidcPeer::start(&[
        ("prod", "https://id.example.net"),
        ("test-1", "https://id.prod.example.net"),
    ])
    .await
    .expect("peer server");
    let cfg = Arc::new(Config::parse(&yaml(&peer, closed_port()), "oidc.yaml").unwrap());
    let running = crate::common::start_exporter(cfg).await;
    let url = format!("http://{}/metrics", running.addr);
    let series =
        |stack: &str| format!(r#"fleet_drift{{stack="{stack}",kind="oidc_issuer_mismatch"}}"#);
    let body = common::eventually(Duration::from_secs(20), "oidc read", || async {
        let b = common::get(&url).await.1;
        common::sample(&b, &series("prod")).is_some().then_some(b)
    })
    .await;
    assert_eq!(
        common::sample(&body, r#"fleet_source_up{source="oidc"}"#),
        Some(1.0)
    );
    assert_eq!(common::sample(&body, &series("prod")), Some(0.0));
    assert_eq!(common::sample(&body, &series("test-1")), Some(1.0));
    // Unreadable documents are unknown, not "agrees".
    assert_eq!(common::sample(&body, &series("test-2")), None);
    assert_eq!(common::sample(&body, &series("test-3")), None);
    assert_eq!(common::sample(&body, &series("nothing-to-check")), None);

    peer.set("test-1", "https://id.test-1.example.net");
    peer.set("test-2", "https://id.elsewhere.example.net");
    common::eventually(
        Duration::from_secs(20),
        "drift follows the documents",
        || async {
            let b = common::get(&url).await.1;
            (common::sample(&b, &series("test-1")) == Some(0.0)
                && common::sample(&b, &series("test-2")) == Some(1.0))
            .then_some(())
        },
    )
    .await;
    running.shutdown().await.unwrap();
}
