//! The HTTP admin API, served next to RESP when `--http-port` is given: what operators and
//! CDN-style tooling speak, where RESP is what applications speak.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the server runs |
//! | `GET /metrics` | Prometheus text format: the engine's [`lethe::Stats`] and the server's [`Metrics`] |
//! | `POST /invalidate` | a purge: `{"tags": [...], "keys": [...], "prefixes": [...], "globs": [...]}` |
//! | `GET /v1/keys/{key}` | a string value with `ETag` and `Last-Modified`; `If-None-Match` gives 304 |
//!
//! Errors are JSON, `{"error": "..."}`, naming the problem. Keys travel in the URL path and in
//! JSON strings, so only UTF-8 keys can be named here (RESP has no such limit).

use crate::keyspace::stored_key;
use crate::metrics::Metrics;
use crate::state::{Databases, Invalidate, ServerState};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lethe::ETag;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::json;
use std::future::Future;
use std::io;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the handlers share.
#[derive(Clone, Debug)]
struct AppState {
    db: Arc<ServerState>,
    registry: Arc<Registry>,
}

/// The admin API over `db`, exposing `metrics` (with the engine's statistics) at `/metrics`.
pub fn router(db: Arc<ServerState>, metrics: &Metrics) -> Router {
    let mut registry = metrics.registry(db.clone());
    crate::cdc::register(&mut registry, &db);
    let registry = Arc::new(registry);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/invalidate", post(invalidate))
        .route("/v1/keys/{key}", get(get_key))
        .with_state(AppState { db, registry })
}

/// Serves the admin API on `listener` until `shutdown` completes, then stops accepting and
/// returns once the requests in flight are answered.
pub async fn serve(
    listener: TcpListener,
    db: Arc<ServerState>,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router(db, &metrics))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn healthz() -> &'static str {
    "ok"
}

async fn prometheus(State(app): State<AppState>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &app.registry) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A purge request; every list is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Purge {
    tags: Vec<String>,
    keys: Vec<String>,
    prefixes: Vec<String>,
    globs: Vec<String>,
}

/// Applies a purge: tags first (all together, as one epoch), then keys, prefixes and globs.
///
/// Replies with how many entries each kind invalidated, and the sequence number of the latest
/// invalidation applied by then (this request's last one, unless another client's came after).
/// Prefix, glob and key counts are the engine's, removed by the call itself. A tag
/// invalidation hides its entries without visiting them, so for tags the count is of the
/// distinct keys under the tags (their subtrees included) just before the invalidation; an entry
/// written in between is invalidated but not counted. Dependents removed by the cascade are not
/// counted anywhere.
///
/// Tags are validated before anything is applied, so a malformed tag fails the whole request
/// with nothing done.
async fn invalidate(State(app): State<AppState>, body: Bytes) -> Response {
    let purge: Purge = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}")),
    };
    if purge.tags.is_empty()
        && purge.keys.is_empty()
        && purge.prefixes.is_empty()
        && purge.globs.is_empty()
    {
        return error(
            StatusCode::BAD_REQUEST,
            "nothing to invalidate: give tags, keys, prefixes or globs",
        );
    }
    let cache = app.db.cache();
    // Each kind is applied (and counted) on its own, to every database in use; tags first, so
    // a malformed one fails the request before anything is done.
    let apply = |what: Vec<Invalidate>| app.db.invalidate(&what, Databases::InUse);
    let tagged = match apply(purge.tags.into_iter().map(Invalidate::Tag).collect()) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let bytes = |s: String| Bytes::from(s.into_bytes());
    let keys = apply(
        purge
            .keys
            .into_iter()
            .map(|k| Invalidate::Key(bytes(k)))
            .collect(),
    );
    let prefixes = apply(
        purge
            .prefixes
            .into_iter()
            .map(|p| Invalidate::Prefix(bytes(p)))
            .collect(),
    );
    let globs = apply(
        purge
            .globs
            .into_iter()
            .map(|g| Invalidate::Glob(bytes(g)))
            .collect(),
    );
    let (keys, prefixes, globs) = (
        keys.unwrap_or_default(),
        prefixes.unwrap_or_default(),
        globs.unwrap_or_default(),
    );
    let seq = cache.last_seq();
    axum::Json(json!({
        "invalidated": {"keys": keys, "prefixes": prefixes, "globs": globs, "tags": tagged},
        "seq": seq,
    }))
    .into_response()
}

/// A string value, with validators for conditional requests.
///
/// The ETag is the engine's content hash ([`ETag::of`] the value's bytes), so it is stable
/// across restarts and writes of the same bytes. `Last-Modified` is the entry's
/// [`lethe::EntryMetadata::last_modified`]: the source's time if the writer gave one, else the
/// time of the write.
async fn get_key(
    State(app): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = stored_key(0, key.as_bytes());
    let Some(found) = app.db.cache().get_with_metadata(key.as_bytes()) else {
        return error(StatusCode::NOT_FOUND, "no such key");
    };
    let bytes = match found.value.to_bytes() {
        Ok(b) => b,
        Err(_) => {
            let other = found.value;
            return error(
                StatusCode::CONFLICT,
                &format!(
                    "the key holds a {}; only string values are served",
                    other.type_name()
                ),
            );
        }
    };
    let etag = ETag::of(&bytes[..]).to_string();
    let last_modified = httpdate::fmt_http_date(found.metadata.last_modified.to_system_time());
    let mut validators = HeaderMap::new();
    for (name, value) in [
        (header::ETAG, etag.as_str()),
        (header::LAST_MODIFIED, &last_modified),
    ] {
        if let Ok(v) = HeaderValue::from_str(value) {
            validators.insert(name, v);
        }
    }
    if none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, validators).into_response();
    }
    validators.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    (validators, bytes).into_response()
}

/// Whether `If-None-Match` names `etag` (or is `*`): RFC 9110's weak comparison, which is the one
/// `If-None-Match` uses, so `W/"..."` matches too. Several headers and comma-separated lists are
/// read whole.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// `{"error": message}` with `status`.
fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_inm(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::IF_NONE_MATCH, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn if_none_match_lists_weak_tags_and_star() {
        let tag = "\"0123\"";
        assert!(none_match(&with_inm(&["\"0123\""]), tag));
        assert!(none_match(&with_inm(&["\"x\", W/\"0123\""]), tag));
        assert!(none_match(&with_inm(&["\"x\"", "\"0123\""]), tag));
        assert!(none_match(&with_inm(&["*"]), tag));
        assert!(!none_match(&with_inm(&["\"0124\""]), tag));
        assert!(!none_match(&HeaderMap::new(), tag));
    }
}
