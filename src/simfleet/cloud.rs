//! An in-process server of the two AWS APIs the aws and dns sources call, as
//! the AWS SDK speaks them: EC2's Query protocol (`POST /` with a form body,
//! `DescribeInstances` and `DescribeAddresses` with `tag:` filters, XML
//! answers in the 2016-11-15 namespace) and Route53's REST-XML
//! `ListResourceRecordSets` (`GET /2013-04-01/hostedzone/{id}/rrset`). Both
//! answer on one endpoint, as the SDK's `endpoint_url` setting expects of an
//! emulator. Requests are not signature-checked: any credentials do.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

/// An EC2 instance as DescribeInstances reports it.
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub tags: Vec<(String, String)>,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down` or `terminated`.
    pub state: String,
    pub instance_type: String,
    pub zone: String,
    pub launch_time: i64,
    pub public_ip: Option<String>,
}

/// An Elastic IP as DescribeAddresses reports it.
#[derive(Debug, Clone)]
pub struct Address {
    pub public_ip: String,
    pub allocation_id: String,
    pub tags: Vec<(String, String)>,
    /// The instance it is associated with; `None` when unassociated.
    pub instance_id: Option<String>,
}

/// A Route53 A record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Fully qualified, with or without the trailing dot.
    pub name: String,
    pub values: Vec<String>,
}

/// What the server serves; change it with [`CloudServer::with`].
#[derive(Debug, Default)]
pub struct Cloud {
    pub instances: Vec<Instance>,
    pub addresses: Vec<Address>,
    /// Hosted zone id (without `/hostedzone/`) → its A records.
    pub zones: BTreeMap<String, Vec<Record>>,
    /// Bytes of XML comment added to each DescribeInstances page: an
    /// answer as large as a misbehaving endpoint's.
    pub padding: usize,
}

type Shared = Arc<Mutex<Cloud>>;

/// The running server. Dropping it stops it.
pub struct CloudServer {
    pub addr: SocketAddr,
    cloud: Shared,
    _serving: super::Serving,
}

impl CloudServer {
    /// Serves `cloud` on a free loopback port.
    pub async fn start(cloud: Cloud) -> std::io::Result<CloudServer> {
        let cloud = Arc::new(Mutex::new(cloud));
        let app = Router::new()
            .route("/", post(ec2))
            .route("/2013-04-01/hostedzone/{zone}/rrset", get(rrsets))
            .with_state(cloud.clone());
        let serving = super::serve(app).await?;
        Ok(CloudServer {
            addr: serving.addr,
            cloud,
            _serving: serving,
        })
    }

    /// The endpoint to configure as `sources.aws.endpoint_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Changes what is served.
    pub fn with<T>(&self, f: impl FnOnce(&mut Cloud) -> T) -> T {
        f(&mut super::lock(&self.cloud))
    }
}

const EC2_NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
const ROUTE53_NS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/xml;charset=UTF-8")],
        body,
    )
        .into_response()
}

/// Text for an XML element or attribute.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An EC2 error as the Query protocol writes it.
fn ec2_error(status: StatusCode, code: &str, message: &str) -> Response {
    xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code>\
             <Message>{}</Message></Error></Errors><RequestID>sim</RequestID></Response>",
            esc(code),
            esc(message)
        ),
    )
}

/// The `Filter.N.Name` / `Filter.N.Value.M` pairs of a Query request, as
/// (name, values).
fn filters(form: &[(String, String)]) -> Vec<(String, Vec<String>)> {
    let mut by_index: BTreeMap<u32, (String, Vec<String>)> = BTreeMap::new();
    for (k, v) in form {
        let mut parts = k.split('.');
        if parts.next() != Some("Filter") {
            continue;
        }
        let Some(n) = parts.next().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        match (parts.next(), parts.next()) {
            (Some("Name"), None) => by_index.entry(n).or_default().0 = v.clone(),
            (Some("Value"), Some(_)) => by_index.entry(n).or_default().1.push(v.clone()),
            _ => {}
        }
    }
    by_index.into_values().collect()
}

/// Whether this emulator knows a filter: only `tag:KEY` and `tag-key`.
fn known(name: &str) -> bool {
    name.starts_with("tag:") || name == "tag-key"
}

/// Whether tags pass every (known) filter.
fn matches(tags: &[(String, String)], filters: &[(String, Vec<String>)]) -> bool {
    filters
        .iter()
        .all(|(name, values)| match name.strip_prefix("tag:") {
            Some(key) => tags.iter().any(|(k, v)| k == key && values.contains(v)),
            None => tags.iter().any(|(k, _)| values.contains(k)),
        })
}

fn tag_set(tags: &[(String, String)]) -> String {
    let mut s = String::from("<tagSet>");
    for (k, v) in tags {
        let _ = write!(
            s,
            "<item><key>{}</key><value>{}</value></item>",
            esc(k),
            esc(v)
        );
    }
    s.push_str("</tagSet>");
    s
}

fn state_code(state: &str) -> u16 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    }
}

fn iso(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S.000Z")
        .to_string()
}

async fn ec2(State(cloud): State<Shared>, body: Bytes) -> Response {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let action = form
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let filters = filters(&form);
    if let Some((name, _)) = filters.iter().find(|(n, _)| !known(n)) {
        return ec2_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValue",
            &format!("The filter '{name}' is invalid"),
        );
    }
    let cloud = super::lock(&cloud);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    match action.as_str() {
        "DescribeInstances" => {
            let _ = write!(
                out,
                "<DescribeInstancesResponse xmlns=\"{EC2_NS}\"><requestId>sim</requestId><reservationSet>"
            );
            for i in cloud
                .instances
                .iter()
                .filter(|i| matches(&i.tags, &filters))
            {
                let ip = i
                    .public_ip
                    .as_deref()
                    .map(|ip| format!("<ipAddress>{}</ipAddress>", esc(ip)))
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "<item><reservationId>r-{id}</reservationId><ownerId>123456789012</ownerId>\
                     <groupSet/><instancesSet><item><instanceId>{id}</instanceId>\
                     <imageId>ami-0a1b2c3d</imageId>\
                     <instanceState><code>{code}</code><name>{state}</name></instanceState>\
                     <instanceType>{ty}</instanceType><launchTime>{launched}</launchTime>\
                     <placement><availabilityZone>{zone}</availabilityZone><tenancy>default</tenancy></placement>\
                     {ip}{tags}</item></instancesSet></item>",
                    id = esc(&i.id),
                    code = state_code(&i.state),
                    state = esc(&i.state),
                    ty = esc(&i.instance_type),
                    launched = iso(i.launch_time),
                    zone = esc(&i.zone),
                    tags = tag_set(&i.tags),
                );
            }
            out.push_str("</reservationSet>");
            if cloud.padding > 0 {
                out.push_str("<!--");
                out.extend(std::iter::repeat_n(' ', cloud.padding));
                out.push_str("-->");
            }
            out.push_str("</DescribeInstancesResponse>");
        }
        "DescribeAddresses" => {
            let _ = write!(
                out,
                "<DescribeAddressesResponse xmlns=\"{EC2_NS}\"><requestId>sim</requestId><addressesSet>"
            );
            for a in cloud
                .addresses
                .iter()
                .filter(|a| matches(&a.tags, &filters))
            {
                let association = a
                    .instance_id
                    .as_deref()
                    .map(|i| {
                        format!(
                            "<instanceId>{}</instanceId><associationId>eipassoc-{}</associationId>",
                            esc(i),
                            esc(a.allocation_id.trim_start_matches("eipalloc-"))
                        )
                    })
                    .unwrap_or_default();
                let _ = write!(
                    out,
                    "<item><publicIp>{ip}</publicIp><allocationId>{alloc}</allocationId>\
                     <domain>vpc</domain>{association}{tags}</item>",
                    ip = esc(&a.public_ip),
                    alloc = esc(&a.allocation_id),
                    tags = tag_set(&a.tags),
                );
            }
            out.push_str("</addressesSet></DescribeAddressesResponse>");
        }
        other => {
            return ec2_error(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                &format!("The action {other} is not valid for this web service."),
            )
        }
    }
    xml(StatusCode::OK, out)
}

async fn rrsets(State(cloud): State<Shared>, Path(zone): Path<String>) -> Response {
    let cloud = super::lock(&cloud);
    let Some(records) = cloud.zones.get(zone.trim_start_matches("/hostedzone/")) else {
        return xml(
            StatusCode::NOT_FOUND,
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{ROUTE53_NS}\">\
                 <Error><Type>Sender</Type><Code>NoSuchHostedZone</Code>\
                 <Message>No hosted zone found with ID: {}</Message></Error>\
                 <RequestId>sim</RequestId></ErrorResponse>",
                esc(&zone)
            ),
        );
    };
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListResourceRecordSetsResponse xmlns=\"{ROUTE53_NS}\"><ResourceRecordSets>"
    );
    for r in records {
        let name = if r.name.ends_with('.') {
            r.name.clone()
        } else {
            format!("{}.", r.name)
        };
        let _ = write!(
            out,
            "<ResourceRecordSet><Name>{}</Name><Type>A</Type><TTL>300</TTL><ResourceRecords>",
            esc(&name)
        );
        for v in &r.values {
            let _ = write!(
                out,
                "<ResourceRecord><Value>{}</Value></ResourceRecord>",
                esc(v)
            );
        }
        out.push_str("</ResourceRecords></ResourceRecordSet>");
    }
    out.push_str(
        "</ResourceRecordSets><IsTruncated>false</IsTruncated><MaxItems>300</MaxItems></ListResourceRecordSetsResponse>",
    );
    xml(StatusCode::OK, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_filters_are_read_by_index() {
        let form = pairs(&[
            ("Action", "DescribeInstances"),
            ("Filter.2.Name", "tag-key"),
            ("Filter.1.Name", "tag:Stack"),
            ("Filter.1.Value.1", "prod"),
            ("Filter.1.Value.2", "test-1"),
            ("Filter.2.Value.1", "Stack"),
        ]);
        assert_eq!(
            filters(&form),
            vec![
                (
                    "tag:Stack".to_string(),
                    vec!["prod".to_string(), "test-1".to_string()]
                ),
                ("tag-key".to_string(), vec!["Stack".to_string()]),
            ]
        );
    }

    #[test]
    fn tag_filters_match_key_and_value() {
        let tags = pairs(&[("Stack", "prod")]);
        let f = |name: &str, values: &[&str]| {
            vec![(
                name.to_string(),
                values.iter().map(|v| v.to_string()).collect(),
            )]
        };
        assert!(matches(&tags, &f("tag:Stack", &["prod"])));
        assert!(!matches(&tags, &f("tag:Stack", &["test-1"])));
        assert!(!matches(&tags, &f("tag:Name", &["prod"])));
        assert!(matches(&tags, &f("tag-key", &["Stack"])));
        assert!(!matches(&tags, &f("tag-key", &["Name"])));
        assert!(matches(&tags, &[]));
        assert!(known("tag:Stack") && known("tag-key") && !known("instance-state-name"));
    }
}
