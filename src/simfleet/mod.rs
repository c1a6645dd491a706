//! A simulated fleet on loopback: TLS services answering `/healthz`, with
//! certificates of chosen expiry from a throwaway CA, and the peers the
//! other sources read (EC2 and Route53, GitHub's Actions API, an Ethereum
//! JSON-RPC node, OIDC discovery), each speaking the real protocol. Used by
//! `fleetpulse demo`, by the tests and by the benchmarks.

pub mod chain;
pub mod cloud;
pub mod github;
pub mod oidc;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Request, Response};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Errors building the simulated fleet.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How a simulated service answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with `{"status":"ok","commit":…}`.
    Healthy { commit: String },
    /// 200 with `{"status":"degraded"}`.
    Degraded { commit: String },
    /// This status with a small body.
    Status(u16),
    /// 200, but only after this long.
    Slow(Duration),
    /// Accepts the connection and then says nothing, ever.
    Hang,
    /// 200 with a health answer padded to this many bytes.
    Huge(usize),
    /// Closes every connection at once.
    Down,
}

/// A throwaway certificate authority: a root and one intermediate.
pub struct Authority {
    root: CertifiedIssuer<'static, KeyPair>,
    intermediate: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its key, ready for a server.
#[derive(Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

fn now() -> i64 {
    crate::clock::now_unix() as i64
}

impl Authority {
    /// A root valid ten years and an intermediate valid `intermediate_days`.
    pub fn new(intermediate_days: i64) -> Result<Self, SimError> {
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "fleetpulse demo root");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = at(now() - 86400);
        p.not_after = at(now() + 3650 * 86400);
        let root = CertifiedIssuer::self_signed(p, KeyPair::generate()?)?;
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "fleetpulse demo intermediate");
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = at(now() - 86400);
        p.not_after = at(now() + intermediate_days * 86400);
        let intermediate = CertifiedIssuer::signed_by(p, KeyPair::generate()?, &root)?;
        Ok(Authority { root, intermediate })
    }

    /// The root, PEM, for a trust store (`sources.tls.ca_file`).
    pub fn root_pem(&self) -> String {
        self.root.pem()
    }

    /// A leaf for `names` expiring `days` from now (negative: already expired),
    /// served with the intermediate.
    pub fn issue(&self, names: &[&str], days: i64) -> Result<Identity, SimError> {
        let key = KeyPair::generate()?;
        let mut p = leaf_params(names, days)?;
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(&key, &self.intermediate)?;
        Ok(Identity {
            chain: vec![cert.der().clone(), self.intermediate.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}

fn leaf_params(names: &[&str], days: i64) -> Result<CertificateParams, SimError> {
    let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    if let Some(first) = names.first() {
        p.distinguished_name.push(rcgen::DnType::CommonName, *first);
    }
    p.not_before = at(now() - 30 * 86400);
    p.not_after = at(now() + days * 86400);
    Ok(p)
}

/// A self-signed leaf for `names` expiring `days` from now: it never verifies.
pub fn self_signed(names: &[&str], days: i64) -> Result<Identity, SimError> {
    let key = KeyPair::generate()?;
    let cert = leaf_params(names, days)?.self_signed(&key)?;
    Ok(Identity {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    })
}

/// A running simulated service. Dropping it stops it.
pub struct SimService {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    task: JoinHandle<()>,
}

impl Drop for SimService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SimService {
    /// Starts a TLS service on an ephemeral loopback port.
    pub async fn start(identity: Identity, behaviour: Behaviour) -> Result<SimService, SimError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Self::start_on(listener, identity, behaviour)
    }

    /// Starts a TLS service on a bound listener.
    pub fn start_on(
        listener: TcpListener,
        identity: Identity,
        behaviour: Behaviour,
    ) -> Result<SimService, SimError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let addr = listener.local_addr()?;
        let behaviour = Arc::new(Mutex::new(behaviour));
        let b = behaviour.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let current = lock(&b).clone();
                match current {
                    Behaviour::Down => drop(tcp),
                    Behaviour::Hang => {
                        tokio::spawn(async move {
                            let _held = tcp;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        });
                    }
                    _ => {
                        let acceptor = acceptor.clone();
                        let b = b.clone();
                        tokio::spawn(async move {
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let io = hyper_util::rt::TokioIo::new(tls);
                            let svc = service_fn(move |req| answer(req, lock(&b).clone()));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, svc)
                                .await;
                        });
                    }
                }
            }
        });
        Ok(SimService {
            addr,
            behaviour,
            task,
        })
    }

    /// Changes how the service answers from the next request on.
    pub fn set(&self, behaviour: Behaviour) {
        *lock(&self.behaviour) = behaviour;
    }

    /// A handle that changes the behaviour without owning the service.
    pub fn behaviour_handle(&self) -> BehaviourHandle {
        BehaviourHandle(self.behaviour.clone())
    }

    /// How it answers now.
    pub fn behaviour(&self) -> Behaviour {
        lock(&self.behaviour).clone()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Changes a service's behaviour from elsewhere.
#[derive(Clone)]
pub struct BehaviourHandle(Arc<Mutex<Behaviour>>);

impl BehaviourHandle {
    pub fn set(&self, behaviour: Behaviour) {
        *lock(&self.0) = behaviour;
    }
    pub fn get(&self) -> Behaviour {
        lock(&self.0).clone()
    }
}

/// A peer's server on a loopback port, stopped when dropped.
pub struct Serving {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on a free loopback port.
pub async fn serve(app: axum::Router) -> std::io::Result<Serving> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Serving { addr, task })
}

// Plain values, always consistent: a poisoned lock is still readable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    behaviour: Behaviour,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let json = |status: u16, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        r
    };
    if req.uri().path() != "/healthz" {
        return Ok(json(404, r#"{"error":"not found"}"#.into()));
    }
    Ok(match behaviour {
        Behaviour::Healthy { commit } => {
            json(200, format!(r#"{{"status":"ok","commit":"{commit}"}}"#))
        }
        Behaviour::Degraded { commit } => json(
            200,
            format!(r#"{{"status":"degraded","commit":"{commit}","detail":"queue backlog"}}"#),
        ),
        Behaviour::Status(code) => json(code, r#"{"status":"error"}"#.into()),
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            json(200, r#"{"status":"ok"}"#.into())
        }
        Behaviour::Huge(n) => {
            let (head, tail) = (br#"{"status":"ok","pad":""#, br#""}"#);
            let mut body = vec![b'x'; n.max(head.len() + tail.len())];
            body[..head.len()].copy_from_slice(head);
            let end = body.len() - tail.len();
            body[end..].copy_from_slice(tail);
            let mut r = json(200, String::new());
            *r.body_mut() = Full::new(Bytes::from(body));
            r
        }
        // Handled at accept time; a connection already open when the
        // behaviour changed just gets an error.
        Behaviour::Hang | Behaviour::Down => json(503, r#"{"status":"down"}"#.into()),
    })
}
