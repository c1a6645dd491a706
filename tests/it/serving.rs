//! Serving safely: slow clients and connection floods cannot pin the server.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use fleetpulse::config::Config;

async fn exporter(web: &str) -> fleetpulse::app::Running {
    let yaml = format!("{web}environments:\n  - name: prod\n");
    let cfg = Arc::new(Config::parse(&yaml, "t.yaml").unwrap());
    let listener = fleetpulse::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    fleetpulse::app::start(cfg, listener).await.unwrap()
}

/// Reads until EOF or `limit`; returns what arrived and whether EOF came.
async fn read_to_eof(s: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut buf = Vec::new();
    let r = tokio::time::timeout(limit, s.read_to_end(&mut buf)).await;
    (String::from_utf8_lossy(&buf).into_owned(), r.is_ok())
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let running = exporter("web:\n  request_timeout: 1s\n").await;
    let mut slow = TcpStream::connect(running.addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = Instant::now();
    let (_, closed) = read_to_eof(&mut slow, Duration::from_secs(5)).await;
    assert!(closed, "the server kept a half-sent request open");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "took {:?}",
        start.elapsed()
    );
    // Meanwhile and afterwards, normal requests are served.
    let (status, _) = common::get(&format!("http://{}/healthz", running.addr)).await;
    assert_eq!(status, 200);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_and_service_resumes() {
    let running = exporter("web:\n  max_connections: 2\n  request_timeout: 30s\n").await;
    // Two idle connections hold both places.
    let held: Vec<TcpStream> = futures_join(running.addr, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(running.addr).await.unwrap();
    let _ = third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await;
    let (answer, closed) = read_to_eof(&mut third, Duration::from_secs(5)).await;
    assert!(
        closed && answer.is_empty(),
        "third connection was served: {answer:?}"
    );
    drop(held);
    let body = common::eventually(Duration::from_secs(5), "a free place", || async {
        let mut s = TcpStream::connect(running.addr).await.ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let (answer, _) = read_to_eof(&mut s, Duration::from_secs(2)).await;
        answer.starts_with("HTTP/1.1 200").then_some(answer)
    })
    .await;
    assert!(body.ends_with("ok\n"));
    running.shutdown().await.unwrap();
}

async fn futures_join(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}
