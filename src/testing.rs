//! Builders the unit tests share: an environment from a line of YAML, and
//! pushed and probed values with their usual fields.

use crate::health::Health;
use crate::inventory::Environment;
use crate::pulse::{Heartbeat, TestRun, TestRunFormat};
use crate::sources::healthz::ServiceProbe;

/// The environments of a fleet config's `environments:` list, written as
/// YAML under it.
pub fn environments(yaml: &str) -> Vec<Environment> {
    crate::config::Config::parse(&format!("environments:\n{yaml}"), "fleet.yaml")
        .unwrap_or_else(|e| panic!("{e}"))
        .environments
}

/// The one environment `name`, with `more` (YAML under it, indented four
/// spaces) as its settings.
pub fn environment(name: &str, more: &str) -> Environment {
    environments(&format!("  - name: {name}\n{more}")).remove(0)
}

/// One heartbeat of `box_name`, received at 1.
pub fn heartbeat(stack: &str, box_name: &str) -> Heartbeat {
    Heartbeat {
        stack: stack.into(),
        box_name: box_name.into(),
        timestamp: 1.0,
        count: 1,
        recent: vec![1.0],
        commit: None,
        version: None,
        booted_at: None,
    }
}

/// A JSON test run of `service` on `stack` with one test passed, received at 1.
pub fn test_run(stack: &str, service: &str) -> TestRun {
    TestRun {
        stack: stack.into(),
        service: service.into(),
        passed: 1,
        failed: 0,
        errored: 0,
        skipped: 0,
        duration_seconds: None,
        started_at: None,
        received_at: 1.0,
        commit: None,
        format: TestRunFormat::Json,
    }
}

/// A /healthz reading of `service` on `stack`: HTTP 200 in 10 ms.
pub fn service_probe(stack: &str, service: &str, health: Health) -> ServiceProbe {
    ServiceProbe {
        stack: stack.into(),
        service: service.into(),
        health,
        status_code: Some(200),
        duration_seconds: 0.01,
        commit: None,
        reason: None,
    }
}

/// A mutation-testing result of `service` with one mutant caught, received at 1.
pub fn mutants(service: &str) -> crate::pulse::Mutants {
    crate::pulse::Mutants {
        service: service.into(),
        caught: 1,
        missed: 0,
        timeout: 0,
        unviable: 0,
        received_at: 1.0,
        commit: None,
    }
}

/// A doctor snapshot of `host` on `stack` with one check ok, received at 1.
pub fn host_health(stack: &str, host: &str) -> crate::pulse::HostHealth {
    crate::pulse::HostHealth {
        host: host.into(),
        stack: stack.into(),
        ok: 1,
        warn: 0,
        fail: 0,
        received_at: 1.0,
        commit: None,
    }
}

/// An HTTP/1.1 server on loopback that answers each request with
/// `answer(path)`, a whole response as bytes; `None` never answers. Stops
/// when the handle is aborted.
pub async fn http_server(answer: fn(&str) -> Option<String>) -> (u16, tokio::task::JoinHandle<()>) {
    http_server_seeing(move |head| answer(head.split(' ').nth(1).unwrap_or(""))).await
}

/// As [`http_server`], but `answer` is given each whole request (request
/// line, headers and a body of `Content-Length` bytes) and may keep state. A connection is kept
/// open for further requests unless the answer says `Connection: close`.
pub async fn http_server_seeing(
    answer: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let answer = std::sync::Arc::new(answer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                // Requests on a kept-alive connection are answered in turn.
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                loop {
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end + 4]).into_owned();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (n, v) = l.split_once(':')?;
                            n.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0usize);
                    while request.len() < end + 4 + length {
                        match tcp.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let whole: Vec<u8> = request.drain(..end + 4 + length).collect();
                    let head = String::from_utf8_lossy(&whole).into_owned();
                    match answer(&head) {
                        Some(response) => {
                            let close = response.to_ascii_lowercase().contains("connection: close");
                            if tcp.write_all(response.as_bytes()).await.is_err() || close {
                                return;
                            }
                        }
                        None => std::future::pending::<()>().await,
                    }
                }
            });
        }
    });
    (port, task)
}

/// As [`http_server_seeing`], also keeping every whole request, in order.
#[cfg(any(feature = "aws", feature = "github", feature = "chain"))]
pub async fn recording_server(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (
    u16,
    tokio::task::JoinHandle<()>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = requests.clone();
    let (port, task) = http_server_seeing(move |request| {
        kept.lock().unwrap().push(request.to_string());
        Some(answer(request))
    })
    .await;
    (port, task, requests)
}

/// The error of one run of `source`, which must fail.
#[cfg(any(feature = "aws", feature = "github", feature = "chain"))]
pub async fn failure(source: &dyn crate::sources::Source) -> String {
    match source.collect().await {
        Ok(_) => panic!("{} ran without an error", source.name()),
        Err(e) => e.to_string(),
    }
}

/// The body of a whole request.
#[cfg(any(feature = "aws", feature = "github", feature = "chain"))]
pub fn body(request: &str) -> &str {
    request.split("\r\n\r\n").nth(1).unwrap_or("")
}

/// A whole HTTP/1.1 response with a JSON `body`.
pub fn json_response(status: u16, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

// The integration tests compare with recorded files the same way.
include!("../tests/it/common/recorded.rs");

/// A board the integration tests recorded (`tests/fixtures/fleet/<name>.json`):
/// its text and its model.
pub fn recorded_board(name: &str) -> (String, crate::views::json::Fleet) {
    let path = format!(
        "{}/tests/fixtures/fleet/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fleet = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    (text, fleet)
}

/// Credentials for the AWS SDK's default chain (the tests' loopback
/// endpoints take any), and no instance metadata lookups.
#[cfg(feature = "aws")]
pub fn aws_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::env::set_var("AWS_ACCESS_KEY_ID", "AKIATEST000000000000");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "test-secret");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// Answers of EC2's query API, as a loopback endpoint gives them.
#[cfg(feature = "aws")]
pub mod ec2 {
    /// A whole response with `status` and an XML body.
    pub fn xml(status: u16, body: &str) -> String {
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    /// A `tagSet` of `tags`.
    pub fn tags(tags: &[(&str, &str)]) -> String {
        let items: String = tags
            .iter()
            .map(|(k, v)| format!("<item><key>{k}</key><value>{v}</value></item>"))
            .collect();
        format!("<tagSet>{items}</tagSet>")
    }

    /// One instance `id` in `state`, tagged `Name=id` and `tag`.
    pub fn instance(id: &str, state: &str, tag: (&str, &str)) -> String {
        format!(
            "<item><instanceId>{id}</instanceId><instanceState><code>0</code><name>{state}</name></instanceState>\
             <instanceType>t3.small</instanceType><placement><availabilityZone>eu-west-1a</availabilityZone></placement>\
             <launchTime>2025-01-01T10:00:00.000Z</launchTime>{}</item>",
            tags(&[("Name", id), tag])
        )
    }

    /// A DescribeInstances answer of one reservation of `items`, with
    /// `next` as the token of a further page.
    pub fn instances(items: &[String], next: Option<&str>) -> String {
        format!(
            "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId>\
             <reservationSet><item><reservationId>r-1</reservationId><instancesSet>{}</instancesSet></item></reservationSet>{}\
             </DescribeInstancesResponse>",
            items.concat(),
            next.map(|t| format!("<nextToken>{t}</nextToken>")).unwrap_or_default()
        )
    }

    /// A DescribeAddresses answer of `items` (`<item>`s).
    pub fn addresses(items: &str) -> String {
        format!(
            "<DescribeAddressesResponse><requestId>r</requestId><addressesSet>{items}</addressesSet></DescribeAddressesResponse>"
        )
    }
}
