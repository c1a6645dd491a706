//! A plain-HTTP server of OIDC discovery documents (OpenID Connect
//! Discovery 1.0) at `/{stack}/.well-known/openid-configuration`, advertising
//! the issuer set for each stack (404 for a stack with none).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::response::IntoResponse;

type Issuers = Arc<Mutex<HashMap<String, String>>>;

/// The running server. Dropping it stops it.
pub struct OidcPeer {
    pub addr: SocketAddr,
    issuers: Issuers,
    _serving: super::Serving,
}

async fn discovery(
    State(map): State<Issuers>,
    Path(stack): Path<String>,
) -> axum::response::Response {
    let issuer = super::lock(&map).get(&stack).cloned();
    match issuer {
        Some(iss) => axum::Json(serde_json::json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "jwks_uri": format!("{iss}/.well-known/jwks.json"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"]
        }))
        .into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

impl OidcPeer {
    /// Serves `issuers` as (stack, issuer) on a free loopback port.
    pub async fn start(issuers: &[(&str, &str)]) -> std::io::Result<OidcPeer> {
        let map: Issuers = Arc::new(Mutex::new(
            issuers
                .iter()
                .map(|(s, i)| (s.to_string(), i.to_string()))
                .collect(),
        ));
        let app = axum::Router::new()
            .route(
                "/{stack}/.well-known/openid-configuration",
                axum::routing::get(discovery),
            )
            .with_state(map.clone());
        let serving = super::serve(app).await?;
        Ok(OidcPeer {
            addr: serving.addr,
            issuers: map,
            _serving: serving,
        })
    }

    /// The discovery URL of one stack.
    pub fn url(&self, stack: &str) -> String {
        format!(
            "http://{}/{stack}/.well-known/openid-configuration",
            self.addr
        )
    }

    /// Changes the issuer one stack advertises.
    pub fn set(&self, stack: &str, issuer: &str) {
        super::lock(&self.issuers).insert(stack.to_string(), issuer.to_string());
    }
}
