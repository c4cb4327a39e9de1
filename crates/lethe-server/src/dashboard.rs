//! The live dashboard on the HTTP admin port: `GET /dashboard` (one page, compiled into the
//! binary), and the statistics it draws, `GET /v1/stats` (a JSON snapshot) and
//! `GET /v1/stats/stream` (the same snapshot once a second, as Server-Sent Events).
//!
//! Kept apart from [`crate::http`], which routes to it and guards it like every other endpoint,
//! because it owns the snapshot's shape and the page that reads it. Every counter in the
//! snapshot is cumulative and read where it is already kept (the engine's [`lethe::stats::Stats`], the
//! server's [`Metrics`], the tag statistics, change capture's and the bus's counters): nothing
//! is measured for the dashboard alone, and the page computes rates from successive snapshots.
//!
//! The page is plain HTML with inline script and style (`dashboard/index.html`): no build step
//! and nothing fetched from elsewhere, so it works offline and behind the admin port's
//! authentication, whose credentials the browser resends on the page's same-origin requests.

use crate::metrics::Metrics;
use crate::state::ServerState;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The page, as served.
const PAGE: &str = include_str!("dashboard/index.html");

/// How many of the most invalidated tags a snapshot lists.
pub const TOP_TAGS: usize = 10;

/// How often the stream sends a snapshot.
pub const STREAM_EVERY: Duration = Duration::from_secs(1);

/// What the page may load: its own inline script and style, and requests to this origin only
/// (so it holds to "nothing fetched from elsewhere"); no framing by other sites.
const POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                      connect-src 'self'; frame-ancestors 'none'";

/// `GET /dashboard`.
pub async fn page() -> Response {
    use axum::http::header;
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
        ],
        Html(PAGE),
    )
        .into_response()
}

/// A snapshot of the server's counters, for `GET /v1/stats`: everything cumulative since start
/// except the gauges (entries, memory, lags). `cdc` and `bus` are null when the server runs
/// without them.
pub fn snapshot(db: &ServerState, metrics: &Metrics) -> Value {
    let s = db.cache().stats();
    let removals: Map<String, Value> = s
        .removals
        .iter()
        .map(|(cause, n)| (cause.as_str().to_owned(), json!(n)))
        .collect();
    let families: Map<String, Value> = metrics
        .commands_by_family()
        .into_iter()
        .map(|(f, n)| (f.to_owned(), json!(n)))
        .collect();
    let total: u64 = families.values().filter_map(Value::as_u64).sum();
    let tag_stats = db.tag_stats();
    let applied: Map<String, Value> = tag_stats
        .by_kind()
        .map(|(k, n)| (k.to_owned(), json!(n)))
        .collect();
    // Entries taken away by an invalidation, as opposed to writes, expiry or eviction.
    let removed: Map<String, Value> = s
        .removals
        .iter()
        .filter(|(cause, _)| {
            use lethe::RemovalCause::*;
            matches!(cause, Tag | Pattern | Dependency | Stale)
        })
        .map(|(cause, n)| (cause.as_str().to_owned(), json!(n)))
        .collect();
    let top_tags: Vec<Value> = tag_stats
        .top(TOP_TAGS)
        .into_iter()
        .map(|(tag, r)| json!({"tag": tag, "invalidations": r.invalidations, "last_ms": r.last_ms}))
        .collect();
    let allocator = crate::allocator::stats()
        .map(|a| json!({"allocated": a.allocated, "active": a.active, "resident": a.resident}));
    let cdc = db.cdc_metrics().map(|m| {
        let c = m.snapshot();
        json!({
            "connected": c.connected,
            "lag_bytes": c.lag_bytes,
            "lag_ms": c.lag_ms,
            "transactions": c.transactions,
            "invalidations": c.invalidations,
        })
    });
    let bus = db.bus().map(|b| {
        use std::sync::atomic::Ordering::Relaxed;
        let m = b.member_stats();
        json!({
            "connected": m.connected.load(Relaxed),
            "lag_messages": m.lag_messages.load(Relaxed),
            "lag_ms": m.lag_ms.load(Relaxed),
            "applied_messages": m.applied.load(Relaxed),
        })
    });
    json!({
        "time_ms": crate::keyspace::now_millis(),
        "engine": {
            "hits": s.hits,
            "misses": s.misses,
            "inserts": s.inserts,
            "updates": s.updates,
            "entries": s.entries,
            "weight": s.weight,
            "capacity": s.capacity,
            "tags": s.tags,
            "dependency_edges": s.dependency_edges,
            "invalidations": s.invalidations,
            "leases_granted": s.leases_granted,
            "fills_refused": s.fills_refused,
            "writes_fenced": s.writes_fenced,
            "evictions": s.removals.get(lethe::RemovalCause::Evicted),
            "removals": removals,
        },
        "allocator": allocator,
        "clients": metrics.connected_clients(),
        "commands": {"total": total, "by_family": families},
        "invalidations": {"applied": applied, "removed": removed},
        "top_tags": top_tags,
        "cdc": cdc,
        "bus": bus,
    })
}

/// `GET /v1/stats/stream`: a snapshot at once, then one every [`STREAM_EVERY`], until the
/// client goes or `stop` turns true (the server shuts down), which ends the response so the
/// connection can close.
pub fn stream(
    db: Arc<ServerState>,
    metrics: Arc<Metrics>,
    stop: watch::Receiver<bool>,
) -> Response {
    let events = futures_util::stream::unfold(
        (db, metrics, stop, true),
        |(db, metrics, mut stop, first)| async move {
            if *stop.borrow() {
                return None;
            }
            if !first {
                tokio::select! {
                    _ = tokio::time::sleep(STREAM_EVERY) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
            let data = snapshot(&db, &metrics).to_string();
            let event = Event::default().event("stats").data(data);
            Some((Ok::<_, Infallible>(event), (db, metrics, stop, false)))
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::{Value as Stored, stored_key};

    #[test]
    fn the_snapshot_counts_what_happened() {
        let db = ServerState::new(1 << 20);
        let metrics = Metrics::new();
        let cache = db.cache();
        cache.insert_with_options(
            stored_key(0, b"k"),
            Stored::string(&b"v"[..]),
            &lethe::InsertOptions::new().tag("t"),
        );
        assert!(cache.get(stored_key(0, b"k").as_bytes()).is_some());
        assert!(cache.get(stored_key(0, b"nope").as_bytes()).is_none());
        db.invalidate(
            &[lethe::Invalidation::Tag("t".into())],
            crate::state::Databases::InUse,
            None,
        )
        .unwrap();
        metrics.command_ran(crate::cmd::command_id(b"get"), Duration::ZERO);
        let s = snapshot(&db, &metrics);
        assert_eq!(s["engine"]["hits"], 1, "{s}");
        assert_eq!(s["engine"]["misses"], 1, "{s}");
        assert_eq!(s["engine"]["inserts"], 1, "{s}");
        assert_eq!(s["invalidations"]["applied"]["tag"], 1, "{s}");
        assert_eq!(s["top_tags"][0]["tag"], "t", "{s}");
        assert_eq!(s["top_tags"][0]["invalidations"], 1, "{s}");
        assert_eq!(s["commands"]["by_family"]["string"], 1, "{s}");
        assert_eq!(s["commands"]["total"], 1, "{s}");
        assert!(s["cdc"].is_null() && s["bus"].is_null(), "{s}");
        assert!(s["time_ms"].as_i64().unwrap() > 0);
        // With change capture attached, its lag is there.
        db.set_cdc_metrics(Arc::new(lethe_cdc::CdcMetrics::new()));
        let s = snapshot(&db, &metrics);
        assert_eq!(s["cdc"]["lag_ms"], 0, "{s}");
        assert_eq!(s["cdc"]["lag_bytes"], 0, "{s}");
    }
}
