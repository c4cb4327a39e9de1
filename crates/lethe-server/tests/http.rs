//! The HTTP admin API, served in-process beside RESP: health, Prometheus metrics, purges and
//! conditional reads. Requests are raw HTTP/1.1 over a `TcpStream` (`Connection: close`, read to
//! the end), so nothing but the standard library stands between the test and the server.

mod common;

use lethe::{InsertOptions, clock::Timestamp, version::ETag};
use lethe_server::keyspace::{Value, stored_key};
use lethe_server::state::ServerState;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Lethe with RESP and HTTP listeners on ephemeral ports, sharing `db`; stopped on drop.
struct Served {
    resp_port: u16,
    http_port: u16,
    db: Arc<ServerState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    fn start() -> Served {
        let bind = || {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            l
        };
        let (resp, http) = (bind(), bind());
        let resp_port = resp.local_addr().unwrap().port();
        let http_port = http.local_addr().unwrap().port();
        // With a key history, for `/v1/keys/{key}/why` (the server keeps none by default).
        let db = Arc::new(ServerState::with_history(
            1 << 20,
            Some(lethe::history::HistoryConfig::default()),
        ));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served_db = db.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let resp = tokio::net::TcpListener::from_std(resp).unwrap();
                let http = tokio::net::TcpListener::from_std(http).unwrap();
                lethe_server::Server::builder(resp)
                    .db(served_db)
                    .http(http, lethe_server::http::HttpOptions::default())
                    .build()
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Served {
            resp_port,
            http_port,
            db,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        request(self.http_port, method, path, headers, body)
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], "")
    }

    fn post_json(&self, path: &str, body: &str) -> Reply {
        self.request("POST", path, &[("Content-Type", "application/json")], body)
    }

    fn set_tagged(&self, key: &str, value: &str, tag: &str) {
        self.db.cache().insert_with_options(
            stored_key(0, key.as_bytes()),
            Value::string(value.as_bytes()),
            &InsertOptions::new().tag(tag),
        );
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// A response: status, headers (lowercase names) and body.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// The value of the sample `name{labels}` (labels as printed, empty for none).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{metrics}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn healthz_answers_ok() {
    let s = Served::start();
    let r = s.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok");
    assert_eq!(s.get("/nope").status, 404);
}

#[test]
fn metrics_expose_engine_and_server_counters() {
    let s = Served::start();
    let mut c = common::Client::connect(s.resp_port);
    assert_eq!(c.raw(&["SET", "k", "v"]), b"+OK\r\n");
    assert_eq!(c.raw(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(c.raw(&["GET", "missing"]), b"$-1\r\n");
    c.raw(&["NOSUCHCOMMAND", "x"]);

    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .contains("openmetrics-text")
    );
    let m = &r.body;
    for name in [
        "lethe_cache_hits_total",
        "lethe_cache_misses_total",
        "lethe_cache_inserts_total",
        "lethe_cache_updates_total",
        "lethe_cache_invalidations_total",
        "lethe_cache_leases_granted_total",
        "lethe_cache_fills_refused_total",
        "lethe_cache_removals_total{cause=\"evicted\"}",
        "lethe_cache_removals_total{cause=\"tag\"}",
        "lethe_cache_entries",
        "lethe_cache_weight_bytes",
        "lethe_cache_capacity_bytes",
        "lethe_cache_tags",
        "lethe_cache_dependency_edges",
        "lethe_connected_clients",
        "lethe_connections_total",
        "lethe_command_duration_seconds_bucket",
        "lethe_command_duration_seconds_count",
    ] {
        assert!(m.contains(name), "no {name} in:\n{m}");
    }
    assert_eq!(sample(m, "lethe_cache_hits_total"), 1.0);
    assert_eq!(sample(m, "lethe_cache_misses_total"), 1.0);
    assert_eq!(sample(m, "lethe_cache_entries"), 1.0);
    assert_eq!(
        sample(m, "lethe_cache_capacity_bytes"),
        f64::from(1u32 << 20)
    );
    assert_eq!(sample(m, "lethe_connected_clients"), 1.0);
    assert_eq!(sample(m, "lethe_commands_total{command=\"get\"}"), 2.0);
    assert_eq!(sample(m, "lethe_commands_total{command=\"set\"}"), 1.0);
    assert_eq!(sample(m, "lethe_commands_total{command=\"unknown\"}"), 1.0);
    assert_eq!(sample(m, "lethe_command_duration_seconds_count"), 4.0);
    assert!(m.trim_end().ends_with("# EOF"), "{m}");

    // Counters move with traffic; the client gauge falls when the client leaves.
    c.raw(&["GET", "k"]);
    drop(c);
    let m = s.get("/metrics").body;
    assert_eq!(sample(&m, "lethe_cache_hits_total"), 2.0);
    assert_eq!(sample(&m, "lethe_commands_total{command=\"get\"}"), 3.0);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while sample(&s.get("/metrics").body, "lethe_connected_clients") != 0.0 {
        assert!(std::time::Instant::now() < deadline, "client never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(sample(&m, "lethe_connections_total"), 1.0);
}

#[test]
fn invalidate_purges_tags_keys_prefixes_and_globs_and_counts_them() {
    let s = Served::start();
    s.set_tagged("profile:1", "a", "user:1:profile");
    s.set_tagged("avatar:1", "b", "user:1:avatar");
    s.set_tagged("profile:2", "c", "user:2:profile");
    s.set_tagged("page:/a", "x", "page");
    s.set_tagged("page:/b", "y", "page");
    s.set_tagged("session:9:token", "t", "session");
    s.set_tagged("plain", "p", "other");

    let r = s.post_json(
        "/invalidate",
        r#"{"tags": ["user:1"], "keys": ["plain", "absent"], "prefixes": ["page:"], "globs": ["session:*:token"]}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(
        j["invalidated"],
        serde_json::json!({"keys": 1, "prefixes": 2, "globs": 1, "tags": 2, "all": 0})
    );
    let seq = j["seq"].as_u64().unwrap();
    assert_eq!(seq, s.db.cache().last_seq());
    assert!(seq >= 5, "one tag, two keys, a prefix and a glob: {seq}");

    let cache = s.db.cache();
    for gone in [
        "profile:1",
        "avatar:1",
        "page:/a",
        "page:/b",
        "session:9:token",
        "plain",
    ] {
        assert!(
            cache.get(&stored_key(0, gone.as_bytes())).is_none(),
            "{gone} survived"
        );
    }
    assert!(
        cache.get(&stored_key(0, b"profile:2")).is_some(),
        "user:2 is not under user:1"
    );
    // RESP sees the purge too.
    let mut c = common::Client::connect(s.resp_port);
    assert_eq!(c.raw(&["GET", "profile:1"]), b"$-1\r\n");
    assert_eq!(c.raw(&["GET", "profile:2"]), b"$1\r\nc\r\n");
}

#[test]
fn invalidate_rejects_bad_requests_with_a_json_error() {
    let s = Served::start();
    s.set_tagged("k", "v", "t");
    for (body, needle) in [
        ("{not json", "invalid JSON"),
        (r#"{"tags": "t"}"#, "invalid JSON"),
        (r#"{"tag": ["t"]}"#, "unknown field"),
        ("{}", "nothing to invalidate"),
        (r#"{"tags": ["t", "a::b"], "keys": ["k"]}"#, "tag"),
    ] {
        let r = s.post_json("/invalidate", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let error = r.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{body}: {error}");
    }
    // The malformed tag failed the request before anything was applied.
    assert!(s.db.cache().get(&stored_key(0, b"k")).is_some());
    assert_eq!(s.db.cache().last_seq(), 0);
    assert_eq!(s.get("/invalidate").status, 405);
}

#[test]
fn keys_are_served_with_validators_and_conditional_reads() {
    let s = Served::start();
    let modified = Timestamp(1_700_000_000_123_000_000);
    s.db.cache().insert_with_options(
        stored_key(0, b"greeting"),
        Value::string(b"hello"),
        &InsertOptions::new().last_modified(modified),
    );

    let r = s.get("/v1/keys/greeting");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "hello");
    let etag = r.header("etag").unwrap().to_owned();
    assert_eq!(etag, ETag::of(&b"hello"[..]).to_string());
    assert_eq!(
        r.header("last-modified"),
        Some("Tue, 14 Nov 2023 22:13:20 GMT")
    );

    let r = s.request("GET", "/v1/keys/greeting", &[("If-None-Match", &etag)], "");
    assert_eq!(r.status, 304);
    assert_eq!(r.body, "");
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let stale = ETag::of(&b"bye"[..]).to_string();
    let r = s.request("GET", "/v1/keys/greeting", &[("If-None-Match", &stale)], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "hello");

    // A write through RESP changes the tag.
    let mut c = common::Client::connect(s.resp_port);
    assert_eq!(c.raw(&["SET", "greeting", "hi"]), b"+OK\r\n");
    let r = s.request("GET", "/v1/keys/greeting", &[("If-None-Match", &etag)], "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "hi");
    assert_ne!(r.header("etag"), Some(etag.as_str()));
    assert!(r.header("last-modified").unwrap().ends_with(" GMT"));

    let r = s.get("/v1/keys/absent");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "no such key");

    assert_eq!(c.raw(&["HSET", "h", "f", "v"]), b":1\r\n");
    let r = s.get("/v1/keys/h");
    assert_eq!(r.status, 409);
    assert!(
        r.json()["error"].as_str().unwrap().contains("hash"),
        "{}",
        r.body
    );

    // Percent-encoded paths name keys with reserved characters.
    assert_eq!(c.raw(&["SET", "a/b c", "z"]), b"+OK\r\n");
    assert_eq!(s.get("/v1/keys/a%2Fb%20c").body, "z");
}

#[test]
fn shutdown_stops_both_listeners() {
    let mut s = Served::start();
    assert_eq!(s.get("/healthz").status, 200);
    let (resp, http) = (s.resp_port, s.http_port);
    s.stop_and_join();
    assert!(TcpStream::connect(("127.0.0.1", http)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", resp)).is_err());
}

#[test]
fn stats_count_commands_by_family_and_invalidations() {
    let s = Served::start();
    let mut c = common::Client::connect(s.resp_port);
    let before = s.get("/v1/stats").json();
    assert_eq!(c.raw(&["SET", "a", "1"]), b"+OK\r\n");
    assert_eq!(c.raw(&["GET", "a"]), b"$1\r\n1\r\n");
    assert_eq!(c.raw(&["GET", "nope"]), b"$-1\r\n");
    assert_eq!(c.raw(&["HSET", "h", "f", "v"]), b":1\r\n");
    s.set_tagged("t1", "v", "hot");
    assert_eq!(c.raw(&["LETHE.INVALIDATE", "TAG", "hot"]), b":1\r\n");
    assert_eq!(c.raw(&["LETHE.INVALIDATE", "TAG", "hot"]), b":0\r\n");
    let r = s.get("/v1/stats");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().contains("json"));
    let after = r.json();
    let grew = |path: &str| {
        after.pointer(path).and_then(|v| v.as_u64()).unwrap_or(0)
            - before.pointer(path).and_then(|v| v.as_u64()).unwrap_or(0)
    };
    assert_eq!(grew("/commands/by_family/string"), 3, "{after}");
    assert_eq!(grew("/commands/by_family/hash"), 1, "{after}");
    assert_eq!(grew("/commands/by_family/lethe"), 2, "{after}");
    assert_eq!(grew("/engine/hits"), 1, "{after}");
    assert_eq!(grew("/engine/misses"), 1, "{after}");
    assert_eq!(grew("/invalidations/applied/tag"), 2, "{after}");
    assert_eq!(after["top_tags"][0]["tag"], "hot", "{after}");
    assert_eq!(after["top_tags"][0]["invalidations"], 2, "{after}");
    assert!(after["time_ms"].as_u64().unwrap() >= before["time_ms"].as_u64().unwrap());
    assert!(after["cdc"].is_null() && after["bus"].is_null(), "{after}");
}

#[test]
fn the_stats_stream_pushes_snapshots_and_ends_at_shutdown() {
    let mut s = Served::start();
    let mut t = TcpStream::connect(("127.0.0.1", s.http_port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(b"GET /v1/stats/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    // The first snapshot comes at once, the next a second later.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while String::from_utf8_lossy(&seen)
        .matches("event: stats")
        .count()
        < 2
    {
        let n = t
            .read(&mut buf)
            .expect("a snapshot within the read timeout");
        assert!(n > 0, "the stream ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&seen).into_owned();
    assert!(text.contains("text/event-stream"), "{text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let snapshot: serde_json::Value = serde_json::from_str(data).unwrap();
    assert!(snapshot["engine"]["entries"].is_u64(), "{snapshot}");
    // Shutdown ends the stream rather than waiting out the drain timeout (5 s) on it.
    let started = std::time::Instant::now();
    s.stop_and_join();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown waited {:?} on the stream",
        started.elapsed()
    );
    let mut rest = Vec::new();
    let _ = t.read_to_end(&mut rest);
    assert!(!String::from_utf8_lossy(&rest).contains("HTTP/1.1"));
}

#[test]
fn why_tells_a_purged_key_s_history_and_a_cached_key_s_state() {
    let s = Served::start();
    s.set_tagged("u:1", "Ada", "user:1");
    s.set_tagged("u:2", "Bob", "user:2");
    let r = s.post_json("/invalidate", r#"{"tags": ["user:1"]}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    // Reclamation comes with later writes; the record keeps the purge's time and origin.
    s.db.cache().run_pending_tasks();

    let gone = s.get("/v1/keys/u:1/why");
    assert_eq!(gone.status, 200, "{}", gone.body);
    let j = gone.json();
    assert_eq!(j["key"], "u:1");
    assert_eq!(j["cached"], false);
    assert!(j["state"].is_null());
    assert_eq!(j["history_enabled"], true);
    let newest = &j["history"][0];
    assert_eq!(newest["event"], "removed", "{j}");
    assert_eq!(newest["cause"], "tag");
    assert_eq!(newest["matched"], "tag user:1");
    assert_eq!(newest["origin"]["client"], "http POST /invalidate");
    assert_eq!(j["history"][1]["event"], "write");
    assert_eq!(j["history"][1]["tags"][0], "user:1");

    let kept = s.get("/v1/keys/u:2/why").json();
    assert_eq!(kept["cached"], true);
    assert_eq!(kept["state"]["tags"][0], "user:2");
    assert!(kept["state"]["ttl_ms"].is_null());
    assert_eq!(kept["history"].as_array().map(Vec::len), Some(1));
    // A key never written: not cached, nothing known, still an answer.
    let never = s.get("/v1/keys/nobody/why").json();
    assert_eq!(never["cached"], false);
    assert_eq!(never["history"].as_array().map(Vec::len), Some(0));
}
