//! Serving safely: slow clients and connection floods cannot pin the server
//! (the flood of 10,000 idle connections and slowloris against the shipped
//! binary is in `ingest.rs`, where pushes are served through it).

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use fleetpulse::config::Config;

async fn exporter(web: &str) -> fleetpulse::app::Running {
    let yaml = format!("{web}environments:\n  - name: prod\n");
    let cfg = Arc::new(Config::parse(&yaml, "t.yaml").unwrap());
    crate::common::start_exporter(cfg).await
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
async fn with_every_place_taken_a_new_connection_takes_the_oldest_idle_ones_place() {
    let running = exporter("web:\n  max_connections: 2\n  request_timeout: 30s\n").await;
    // Two idle connections hold both places.
    let mut held: Vec<TcpStream> = futures_join(running.addr, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A third is served: the oldest idle connection gives up its place.
    let mut third = TcpStream::connect(running.addr).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_to_eof(&mut third, Duration::from_secs(5)).await;
    assert!(
        closed && answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok\n"),
        "third connection: {answer:?}"
    );
    let (gone, closed) = read_to_eof(&mut held[0], Duration::from_secs(5)).await;
    assert!(
        closed && gone.is_empty(),
        "the oldest idle connection was closed: {gone:?}"
    );
    // The younger idle one still holds its place, and can still be served.
    held[1]
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_eof(&mut held[1], Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    running.shutdown().await.unwrap();
}

async fn futures_join(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(TcpStream::connect(addr).await.unwrap());
    }
    v
}
