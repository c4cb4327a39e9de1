//! The HTTP admin API, served next to RESP when `--http-port` is given: what operators and
//! CDN-style tooling speak, where RESP is what applications speak.
//!
//! | endpoint | what it does |
//! |---|---|
//! | `GET /healthz` | `200 ok` while the server runs (never needs credentials) |
//! | `GET /metrics` | Prometheus text format: the engine's [`lethe::stats::Stats`] and the server's [`Metrics`] |
//! | `POST /invalidate` | a purge: `{"tags": [...], "keys": [...], "prefixes": [...], "globs": [...]}`, or `{"all": true}` |
//! | `GET /v1/keys/{key}` | a string value with `ETag` and `Last-Modified`; `If-None-Match` gives 304 |
//! | `GET /v1/keys/{key}/why` | why the key is or is not cached: its state and recent history, as `LETHE.WHY` (see [`crate::why`]) |
//! | `GET /v1/stats` | a JSON snapshot of the counters the dashboard draws ([`crate::dashboard`]) |
//! | `GET /v1/stats/stream` | the same snapshot once a second, as Server-Sent Events, until shutdown |
//! | `GET /dashboard` | the live dashboard: one self-contained page over the two above |
//!
//! Errors are JSON, `{"error": "..."}`, naming the problem. Keys travel in the URL path and in
//! JSON strings, so only UTF-8 keys can be named here (RESP has no such limit).
//!
//! The port answers to the same rules as RESP: with a password set (`requirepass`), every
//! endpoint but `/healthz` needs it, as `Authorization: Bearer <password>` or Basic with user
//! `default` (or none); without one, protected mode refuses clients not on loopback. This module
//! runs its own accept loop so it can bound what a client may cost: at most
//! [`HttpOptions::max_clients`] connections (more get 503 and are closed), request headers and
//! bodies each within [`HttpOptions::timeout`] (a silent or half-sent request is closed), and a
//! body over [`HttpOptions::max_body`] gets 413 before it is read.

use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::state::{Databases, ServerState};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use lethe::Invalidation;
use lethe::version::ETag;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// Bounds on what one HTTP client may cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Most HTTP connections open at once (its own cap, apart from RESP's `maxclients`).
    pub max_clients: usize,
    /// How long a request's headers, and then its body, may take to arrive; also how long an
    /// idle keep-alive connection stays open.
    pub timeout: Duration,
    /// Largest request body in bytes.
    pub max_body: usize,
}

/// Default [`HttpOptions::max_clients`].
pub const DEFAULT_MAX_CLIENTS: usize = 128;
/// Default [`HttpOptions::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`HttpOptions::max_body`]: 1 MiB.
pub const DEFAULT_MAX_BODY: usize = 1 << 20;

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_clients: DEFAULT_MAX_CLIENTS,
            timeout: DEFAULT_TIMEOUT,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// What the HTTP port shares with RESP.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // the TLS acceptor has no Debug
pub struct Shared {
    /// The keyspace.
    pub db: Arc<ServerState>,
    /// The server's counters.
    pub metrics: Arc<Metrics>,
    /// The password and protected mode (CONFIG SET changes apply here at once).
    pub limits: Arc<Limits>,
    /// TLS, when the server speaks it.
    pub tls: Option<TlsAcceptor>,
}

/// What the handlers share.
#[derive(Clone, Debug)]
struct AppState {
    db: Arc<ServerState>,
    metrics: Arc<Metrics>,
    registry: Arc<Registry>,
    /// Turns true at shutdown: ends the stats streams, which would otherwise hold their
    /// connections open past it.
    stop: watch::Receiver<bool>,
}

/// What the guard in front of every handler needs.
#[derive(Clone, Debug)]
struct Guard {
    limits: Arc<Limits>,
    options: HttpOptions,
}

/// The admin API over `db`, exposing `metrics` (with the engine's statistics) at `/metrics`
/// and the dashboard, behind the authentication of `limits` and the body bounds of `options`;
/// streams end once `stop` turns true.
pub fn router(
    db: Arc<ServerState>,
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
    options: HttpOptions,
    stop: watch::Receiver<bool>,
) -> Router {
    let mut registry = metrics.registry(db.clone());
    crate::cdc::register(&mut registry, &db);
    crate::bus::register(&mut registry, &db);
    let registry = Arc::new(registry);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus))
        .route("/invalidate", post(invalidate))
        .route("/v1/keys/{key}", get(get_key))
        .route("/v1/stats", get(stats))
        .route("/v1/stats/stream", get(stats_stream))
        .route("/dashboard", get(crate::dashboard::page))
        .route("/v1/keys/{key}/why", get(why_key))
        .with_state(AppState {
            db,
            metrics,
            registry,
            stop,
        })
        .layer(middleware::from_fn_with_state(
            Guard { limits, options },
            guard,
        ))
}

/// Serves the admin API on `listener` until `stop` turns true; then stops accepting, lets
/// requests in flight finish, and closes what is still open after `shutdown_timeout`.
pub async fn serve(
    listener: TcpListener,
    shared: Shared,
    options: HttpOptions,
    mut stop: watch::Receiver<bool>,
    shutdown_timeout: Duration,
) {
    let app = router(
        shared.db.clone(),
        shared.metrics.clone(),
        shared.limits.clone(),
        options,
        stop.clone(),
    );
    let slots = Arc::new(Semaphore::new(options.max_clients));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let tls = shared.tls.clone();
                    if crate::limits::protected_refuses(&shared.limits, peer.ip()) {
                        debug!(%peer, "HTTP: refusing a non-loopback client: protected mode");
                        shared.limits.rejected();
                        connections.spawn(refuse(socket, tls, StatusCode::FORBIDDEN, PROTECTED));
                        continue;
                    }
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        debug!(%peer, "HTTP: refusing a client: connection limit reached");
                        connections.spawn(refuse(
                            socket,
                            tls,
                            StatusCode::SERVICE_UNAVAILABLE,
                            "too many HTTP connections",
                        ));
                        continue;
                    };
                    let (app, stop) = (app.clone(), stop.clone());
                    connections.spawn(async move {
                        serve_connection(socket, tls, app, options, stop).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    crate::server::drain(&mut connections, shutdown_timeout, "HTTP").await;
}

/// Completes once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The protected-mode refusal, as RESP's DENIED says it.
const PROTECTED: &str = "protected mode: no password is set, so only loopback clients are \
                         served; set requirepass (then authenticate) or turn protected-mode off";

/// Serves one connection: HTTP/1.1 with keep-alive, headers within the timeout; on shutdown,
/// finishes the request in flight and closes.
async fn serve_connection(
    socket: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    app: Router,
    options: HttpOptions,
    mut stop: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let stream: Box<dyn crate::connection::Stream> = match tls {
        None => Box::new(socket),
        Some(tls) => match tokio::time::timeout(options.timeout, tls.accept(socket)).await {
            Ok(Ok(s)) => Box::new(s),
            _ => return,
        },
    };
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(options.timeout)
        // Headers beyond this are refused (431) rather than buffered.
        .max_buf_size(64 * 1024)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        _ = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Answers `status` with a JSON error and closes, without reading the request.
async fn refuse(
    socket: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    status: StatusCode,
    message: &'static str,
) {
    let body = json!({ "error": message }).to_string();
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    let write = async move {
        let mut stream: Box<dyn crate::connection::Stream> = match tls {
            None => Box::new(socket),
            Some(tls) => match tls.accept(socket).await {
                Ok(s) => Box::new(s),
                Err(_) => return,
            },
        };
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.write_all(body.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(DEFAULT_TIMEOUT, write).await;
}

/// In front of every handler: credentials, then the body's size and pace.
async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    if req.uri().path() != "/healthz" && !authorized(&g.limits, req.headers()) {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "authentication required: Authorization: Bearer <requirepass>, or Basic with user \
             default",
        );
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"lethe\", charset=\"UTF-8\""),
        );
        return r;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > g.options.max_body as u64) {
        return too_large(g.options.max_body);
    }
    let (parts, body) = req.into_parts();
    let read = async {
        let mut body = body;
        let mut bytes = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(error(StatusCode::BAD_REQUEST, "the request body broke off"));
            };
            if let Ok(data) = frame.into_data() {
                if bytes.len() + data.len() > g.options.max_body {
                    return Err(too_large(g.options.max_body));
                }
                bytes.extend_from_slice(&data);
            }
        }
        Ok(bytes)
    };
    let bytes = match tokio::time::timeout(g.options.timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(response)) => return response,
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn too_large(max: usize) -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("the request body is over the limit of {max} bytes"),
    )
}

/// Whether the request carries the password, when one is set (`Bearer <password>`, or Basic
/// with user `default` or none).
fn authorized(limits: &Limits, headers: &HeaderMap) -> bool {
    let Some(password) = limits.requirepass() else {
        return true;
    };
    let given = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| credentials(v.as_bytes()))
        .collect::<Vec<_>>();
    given.iter().any(|g| constant_time_eq(g, &password))
}

/// The password in an `Authorization` header value.
fn credentials(value: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = (&value[..space], value[space + 1..].trim_ascii());
    if scheme.eq_ignore_ascii_case(b"bearer") {
        return Some(rest.to_vec());
    }
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest)
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    match &decoded[..colon] {
        b"" | b"default" => Some(decoded[colon + 1..].to_vec()),
        _ => None,
    }
}

/// Compares without stopping at the first difference, so response times do not tell how much
/// of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, &x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
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

async fn stats(State(app): State<AppState>) -> Response {
    axum::Json(crate::dashboard::snapshot(&app.db, &app.metrics)).into_response()
}

async fn stats_stream(State(app): State<AppState>) -> Response {
    crate::dashboard::stream(app.db, app.metrics, app.stop)
}

/// A purge request; every list is optional. A prefix or glob matching every key (`""`, `*`)
/// is refused unless `all` is true; `all` alone invalidates everything.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Purge {
    /// Tags to invalidate (with their subtrees).
    pub tags: Vec<String>,
    /// Keys to invalidate.
    pub keys: Vec<String>,
    /// Key prefixes to invalidate.
    pub prefixes: Vec<String>,
    /// Key globs (Redis `KEYS` syntax) to invalidate.
    pub globs: Vec<String>,
    /// The explicit form of a purge of everything.
    pub all: bool,
}

impl Purge {
    /// Parses and checks a purge body: the error is the 400 reply's message.
    pub fn from_json(body: &[u8]) -> Result<Purge, String> {
        let purge: Purge =
            serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))?;
        if !purge.all {
            if purge.tags.is_empty()
                && purge.keys.is_empty()
                && purge.prefixes.is_empty()
                && purge.globs.is_empty()
            {
                return Err(
                    "nothing to invalidate: give tags, keys, prefixes or globs (or all: true)"
                        .into(),
                );
            }
            let everything = purge
                .prefixes
                .iter()
                .any(|p| crate::limits::prefix_matches_everything(p.as_bytes()))
                || purge
                    .globs
                    .iter()
                    .any(|g| crate::limits::glob_matches_everything(g.as_bytes()));
            if everything {
                return Err("a prefix or glob matching every key needs \"all\": true".into());
            }
        }
        Ok(purge)
    }
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
    let purge = match Purge::from_json(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let cache = app.db.cache();
    // Each kind is applied (and counted) on its own, to every database in use; tags first, so
    // a malformed one fails the request before anything is done.
    let origin = app
        .db
        .keeps_history()
        .then(|| Arc::new(lethe::history::Origin::client("http POST /invalidate")));
    let apply =
        |what: Vec<Invalidation<Bytes>>| app.db.invalidate(&what, Databases::InUse, origin.clone());
    let tagged = match apply(purge.tags.into_iter().map(Invalidation::Tag).collect()) {
        Ok(n) => n,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let count = |what: Vec<Invalidation<Bytes>>| apply(what).unwrap_or_default();
    let keys = count(
        purge
            .keys
            .into_iter()
            .map(|k| Invalidation::Key(Bytes::from(k.into_bytes())))
            .collect(),
    );
    let prefixes = count(
        purge
            .prefixes
            .into_iter()
            .map(|p| Invalidation::Prefix(p.into_bytes()))
            .collect(),
    );
    let globs = count(
        purge
            .globs
            .into_iter()
            .map(|g| Invalidation::Glob(g.into_bytes()))
            .collect(),
    );
    // Every key of every database (the engine's own walk, so listeners hear of each removal).
    let all = if purge.all {
        count(vec![Invalidation::Prefix(Vec::new())])
    } else {
        0
    };
    let seq = cache.last_seq();
    axum::Json(json!({
        "invalidated": {"keys": keys, "prefixes": prefixes, "globs": globs, "tags": tagged, "all": all},
        "seq": seq,
    }))
    .into_response()
}

/// A string value, with validators for conditional requests.
///
/// The ETag is the engine's content hash ([`ETag::of`] the value's bytes), so it is stable
/// across restarts and writes of the same bytes. `Last-Modified` is the entry's
/// [`lethe::entry::EntryMetadata::last_modified`]: the source's time if the writer gave one, else the
/// time of the write.
async fn get_key(
    State(app): State<AppState>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let key = app.db.keyspace().key(0, key.as_bytes());
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

/// Why a key (of database 0) is or is not cached, as JSON; always 200, since "not cached,
/// and here is why" is an answer.
async fn why_key(State(app): State<AppState>, Path(key): Path<String>) -> Response {
    axum::Json(crate::why::WhyReport::of(&app.db, 0, key.as_bytes()).to_json()).into_response()
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
    fn credentials_come_as_bearer_or_basic_for_the_default_user() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(
            credentials(b"Bearer s3cret").as_deref(),
            Some(&b"s3cret"[..])
        );
        assert_eq!(
            credentials(b"bearer  s3cret ").as_deref(),
            Some(&b"s3cret"[..])
        );
        let basic = format!("Basic {}", b64("default:pw:with:colons"));
        assert_eq!(
            credentials(basic.as_bytes()).as_deref(),
            Some(&b"pw:with:colons"[..])
        );
        let anonymous = format!("Basic {}", b64(":pw"));
        assert_eq!(
            credentials(anonymous.as_bytes()).as_deref(),
            Some(&b"pw"[..])
        );
        let other_user = format!("Basic {}", b64("admin:pw"));
        assert_eq!(credentials(other_user.as_bytes()), None);
        assert_eq!(credentials(b"Basic !!!"), None);
        assert_eq!(credentials(b"Digest x"), None);
        assert_eq!(credentials(b"Bearer"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn purges_of_everything_must_say_so() {
        for body in [
            r#"{"prefixes": [""]}"#,
            r#"{"globs": ["*"]}"#,
            r#"{"keys": ["a"], "globs": ["**"]}"#,
            r#"{}"#,
        ] {
            assert!(Purge::from_json(body.as_bytes()).is_err(), "{body}");
        }
        for body in [
            r#"{"all": true}"#,
            r#"{"prefixes": [""], "all": true}"#,
            r#"{"globs": ["a*"]}"#,
        ] {
            assert!(Purge::from_json(body.as_bytes()).is_ok(), "{body}");
        }
        assert!(Purge::from_json(br#"{"al": true}"#).is_err());
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
