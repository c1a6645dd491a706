//! The doctor-snapshot routes: `PUT` and `GET /api/v1/host-health/{host}`
//! (the document whole, written atomically) and `GET /api/v1/host-health`
//! (every host the token may see, summarized).

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::request::{is_json, media_type, read_body, stamped, unsupported};
use super::{doctor, shown, unexpected, Ingest, Refusal};
use crate::clock::now_unix;
use crate::config::Name;
use crate::pulse::HostHealth;
use crate::store::{NameKind, Write, Written};

pub(super) async fn put(
    State(ing): State<Arc<Ingest>>,
    UrlPath(name): UrlPath<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let stamped = stamped(&parts.headers);
    let result: Result<serde_json::Value, Refusal> = async {
        let admitted = ing.admit(NameKind::Host, name.clone(), &parts.headers)?;
        let media = media_type(&parts.headers);
        if !media.as_deref().is_some_and(is_json) {
            return Err(unsupported(media.as_deref(), "application/json"));
        }
        let bytes = read_body(body, &parts.headers, ing.rules().max_body_bytes).await?;
        let s = doctor::summarize(&bytes).map_err(|e| Refusal::bad_request(e.to_string()))?;
        // Valid JSON is valid UTF-8.
        let document = String::from_utf8(bytes.to_vec())
            .map_err(|_| Refusal::bad_request("malformed JSON: not UTF-8"))?;
        let summary = HostHealth {
            host: admitted.name.clone(),
            stack: ing
                .rules()
                .inventory
                .stack_of(NameKind::Host, &admitted.name)
                .to_string(),
            ok: s.ok,
            warn: s.warn,
            fail: s.fail,
            received_at: now_unix(),
            commit: admitted.commit.clone(),
        };
        match ing
            .commit(&admitted, Write::HostHealth { summary, document })
            .await?
        {
            Written::HostHealth(h) => Ok(json!({
                "host": h.host,
                "stack": h.stack,
                "ok": h.ok,
                "warn": h.warn,
                "fail": h.fail,
            })),
            other => Err(unexpected(other)),
        }
    }
    .await;
    ing.finish(NameKind::Host, &name, stamped, result)
}

pub(super) async fn get_one(
    State(ing): State<Arc<Ingest>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        if !Name::is_valid(&name) {
            return Err(Refusal::bad_request(format!(
                "not a valid host name: {}",
                shown(&name)
            )));
        }
        let caller = ing.caller(&headers)?;
        if !caller.scope.allows(&name) {
            return Err(Refusal::new(
                StatusCode::FORBIDDEN,
                format!("token {} may not read {name}", caller.id),
            ));
        }
        let reader = ing.clone();
        let host = name.clone();
        let stored = tokio::task::spawn_blocking(move || reader.store.host_health_document(&host))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(read_failed)?;
        let stored = stored.ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("no doctor snapshot from host {name}"),
            )
        })?;
        let mut r = (
            [(header::CONTENT_TYPE, "application/json")],
            stored.document,
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(&format!("{}", stored.summary.received_at)) {
            r.headers_mut().insert("x-fleet-received-at", v);
        }
        Ok(r)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

fn read_failed(e: String) -> Refusal {
    tracing::error!(error = %e, "cannot read doctor snapshots");
    Refusal::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "cannot read the store; see the server log",
    )
}

pub(super) async fn get_all(State(ing): State<Arc<Ingest>>, headers: HeaderMap) -> Response {
    let result = async {
        let scope = ing.caller(&headers)?.scope.clone();
        let reader = ing.clone();
        let all = tokio::task::spawn_blocking(move || reader.store.host_health_documents())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(read_failed)?;
        // A host the inventory no longer lists is retired: not in the aggregate
        // (its row waits out ingest.retention), unless names outside the
        // inventory are admitted, as on the board.
        let rules = ing.rules();
        let listed =
            |host: &str| rules.unknown_names_cap > 0 || rules.inventory.knows(NameKind::Host, host);
        let hosts: Vec<_> = all
            .into_iter()
            .filter(|d| scope.allows(&d.summary.host) && listed(&d.summary.host))
            .map(|d| {
                // Stored documents were valid JSON when they were pushed.
                let snapshot: serde_json::Value =
                    serde_json::from_str(&d.document).unwrap_or(serde_json::Value::Null);
                json!({
                    "host": d.summary.host,
                    "stack": d.summary.stack,
                    "received_at": d.summary.received_at,
                    "commit": d.summary.commit,
                    "ok": d.summary.ok,
                    "warn": d.summary.warn,
                    "fail": d.summary.fail,
                    "snapshot": snapshot,
                })
            })
            .collect();
        Ok::<_, Refusal>(axum::Json(json!({ "hosts": hosts })).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
