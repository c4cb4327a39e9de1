//! Client-side caching (CLIENT TRACKING): the same multi-client scripts against a real
//! `redis-server` and against Lethe must produce the same bytes on every connection, pushes
//! included; then Lethe's own ways of forgetting (tags, dependencies, patterns, rules, expiry,
//! eviction) must push too.

// Transcripts are built step by step, one push per exchange, in the order they happen.
#![allow(clippy::vec_init_then_push)]

mod common;

use common::{Client, Lethe, Redis};

/// Reads the next thing a tracking client receives after sending PING: any pushes, then PONG.
fn pushes_then_pong(c: &mut Client) -> String {
    c.send(&common::encode(&["PING"]));
    let mut out = String::new();
    loop {
        let reply = String::from_utf8_lossy(&c.read_reply()).into_owned();
        let done = reply == "+PONG\r\n" || reply.starts_with("*2\r\n$4\r\npong");
        out.push_str(&reply);
        if done {
            return out;
        }
    }
}

fn hello3(c: &mut Client) {
    assert!(c.cmd(&["HELLO", "3"]).starts_with("%7"));
}

/// The default mode, RESP3: what is read is tracked; writes, deletes, TTL changes, flushes push.
fn default_mode(port: u16) -> Vec<String> {
    let mut a = Client::connect(port);
    let mut b = Client::connect(port);
    hello3(&mut a);
    let mut t = Vec::new();
    t.push(a.cmd(&["CLIENT", "TRACKING", "on"]));
    t.push(a.cmd(&["CLIENT", "GETREDIR"]));
    t.push(a.cmd(&["CLIENT", "TRACKINGINFO"]));
    // A missing key read is tracked: its creation pushes.
    t.push(a.cmd(&["GET", "k"]));
    t.push(b.cmd(&["SET", "k", "1"]));
    t.push(pushes_then_pong(&mut a));
    // Once pushed, the key is forgotten until read again.
    t.push(b.cmd(&["SET", "k", "2"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["GET", "k"]));
    t.push(b.cmd(&["DEL", "k"]));
    t.push(pushes_then_pong(&mut a));
    // One push per key a multi-key write changed.
    t.push(a.cmd(&["MGET", "m1", "m2", "m3"]));
    t.push(b.cmd(&["MSET", "m1", "x", "m3", "y"]));
    t.push(pushes_then_pong(&mut a));
    // A write that changes nothing does not push.
    t.push(b.cmd(&["SET", "m2", "z", "XX"]));
    t.push(pushes_then_pong(&mut a));
    // TTL changes and value updates of every type push.
    t.push(b.cmd(&["SET", "e", "1"]));
    t.push(a.cmd(&["GET", "e"]));
    t.push(b.cmd(&["EXPIRE", "e", "100"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["TTL", "e"]));
    t.push(b.cmd(&["PERSIST", "e"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["STRLEN", "e"]));
    t.push(b.cmd(&["INCR", "e"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["HGET", "h", "f"]));
    t.push(b.cmd(&["HSET", "h", "f", "1"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["EXISTS", "r1", "r2"]));
    t.push(b.cmd(&["SET", "r1", "v"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["EXISTS", "r1"]));
    t.push(b.cmd(&["RENAME", "r1", "r2"]));
    t.push(pushes_then_pong(&mut a));
    // The client's own writes push too (no NOLOOP).
    t.push(a.cmd(&["GET", "own"]));
    t.push(a.cmd(&["SET", "own", "1"]));
    t.push(pushes_then_pong(&mut a));
    // A flush: one push with a null key list.
    t.push(b.cmd(&["FLUSHALL"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["CLIENT", "TRACKING", "off"]));
    t.push(a.cmd(&["GET", "k"]));
    t.push(b.cmd(&["SET", "k", "3"]));
    t.push(pushes_then_pong(&mut a));
    t
}

/// OPTIN, OPTOUT, NOLOOP, BCAST with prefixes, and the errors of each.
fn modes(port: u16) -> Vec<String> {
    let mut a = Client::connect(port);
    let mut b = Client::connect(port);
    hello3(&mut a);
    let mut t = Vec::new();
    for args in [
        &["CLIENT", "CACHING", "yes"][..],
        &["CLIENT", "TRACKING", "on", "PREFIX", "x"],
        &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
        &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
        &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
        &["CLIENT", "TRACKING", "on", "REDIRECT", "x"],
        &["CLIENT", "TRACKING", "maybe"],
        &["CLIENT", "TRACKING", "on", "bogus"],
        &["CLIENT", "TRACKING", "on", "PREFIX"],
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "ab", "PREFIX", "a",
        ],
        &["CLIENT", "TRACKING"],
        &["CLIENT", "CACHING"],
    ] {
        t.push(a.cmd(args));
    }
    // OPTIN: only reads right after CLIENT CACHING yes are tracked.
    t.push(a.cmd(&["CLIENT", "TRACKING", "on", "OPTIN"]));
    t.push(a.cmd(&["CLIENT", "CACHING", "no"]));
    t.push(a.cmd(&["CLIENT", "CACHING", "maybe"]));
    t.push(a.cmd(&["GET", "o1"]));
    t.push(a.cmd(&["CLIENT", "CACHING", "yes"]));
    t.push(a.cmd(&["CLIENT", "TRACKINGINFO"]));
    t.push(a.cmd(&["GET", "o2"]));
    t.push(a.cmd(&["GET", "o3"]));
    t.push(b.cmd(&["MSET", "o1", "1", "o2", "2", "o3", "3"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["CLIENT", "TRACKING", "on", "OPTOUT"]));
    t.push(a.cmd(&["CLIENT", "TRACKING", "on", "BCAST"]));
    t.push(a.cmd(&["CLIENT", "TRACKING", "off"]));
    // OPTOUT: every read but the one after CLIENT CACHING no.
    t.push(a.cmd(&["CLIENT", "TRACKING", "on", "OPTOUT"]));
    t.push(a.cmd(&["CLIENT", "CACHING", "yes"]));
    t.push(a.cmd(&["CLIENT", "CACHING", "no"]));
    t.push(a.cmd(&["CLIENT", "TRACKINGINFO"]));
    t.push(a.cmd(&["GET", "p1"]));
    t.push(a.cmd(&["GET", "p2"]));
    t.push(b.cmd(&["MSET", "p1", "1", "p2", "2"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["CLIENT", "TRACKING", "off"]));
    // NOLOOP: the client's own writes do not come back; others' do.
    t.push(a.cmd(&["CLIENT", "TRACKING", "on", "NOLOOP"]));
    t.push(a.cmd(&["GET", "n1"]));
    t.push(a.cmd(&["GET", "n2"]));
    t.push(a.cmd(&["SET", "n1", "mine"]));
    t.push(pushes_then_pong(&mut a));
    t.push(b.cmd(&["SET", "n2", "theirs"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["CLIENT", "TRACKINGINFO"]));
    t.push(a.cmd(&["CLIENT", "TRACKING", "off"]));
    // BCAST: every change under a prefix, read or not.
    t.push(a.cmd(&[
        "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:", "PREFIX", "cfg",
    ]));
    t.push(a.cmd(&["CLIENT", "TRACKINGINFO"]));
    t.push(b.cmd(&["SET", "user:1", "a"]));
    t.push(b.cmd(&["SET", "other", "a"]));
    t.push(b.cmd(&["DEL", "cfg:x", "nothing"]));
    t.push(b.cmd(&["SET", "cfg:x", "1"]));
    t.push(b.cmd(&["DEL", "cfg:x", "nothing"]));
    t.push(pushes_then_pong(&mut a));
    t.push(a.cmd(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "user:1"]));
    t.push(a.cmd(&["RESET"]));
    t.push(a.cmd(&["CLIENT", "TRACKINGINFO"]));
    t
}

/// RESP2 through REDIRECT to a client subscribed to `__redis__:invalidate`, and the broken
/// redirect notice once that client is gone.
fn redirect(port: u16) -> Vec<String> {
    let mut sink = Client::connect(port);
    let mut reader = Client::connect(port);
    let mut writer = Client::connect(port);
    let id = sink.cmd(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end();
    let mut t = Vec::new();
    t.push(sink.cmd(&["SUBSCRIBE", "__redis__:invalidate"]));
    t.push(reader.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", id]));
    t.push(reader.cmd(&["GET", "a"]));
    t.push(reader.cmd(&["GET", "b"]));
    t.push(writer.cmd(&["SET", "a", "1"]));
    t.push(pushes_then_pong(&mut sink));
    t.push(writer.cmd(&["FLUSHALL"]));
    t.push(pushes_then_pong(&mut sink));
    // A RESP2 client tracking without a redirect gets nothing (RESP2 cannot carry pushes).
    let mut plain = Client::connect(port);
    t.push(plain.cmd(&["CLIENT", "TRACKING", "on"]));
    t.push(plain.cmd(&["GET", "c"]));
    t.push(writer.cmd(&["SET", "c", "1"]));
    t.push(pushes_then_pong(&mut plain));
    // A RESP3 client whose redirect target disconnects is told so.
    let mut orphan = Client::connect(port);
    hello3(&mut orphan);
    t.push(orphan.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", id]));
    drop(sink);
    // The server notices the disconnect asynchronously: wait until the id is gone.
    for _ in 0..200 {
        if !writer
            .cmd(&["CLIENT", "LIST"])
            .contains(&format!("id={id} "))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    t.push(orphan.cmd(&["GET", "d"]));
    t.push(writer.cmd(&["SET", "d", "1"]));
    let masked = |reply: String| reply.replace(&format!(":{id}\r\n"), ":<id>\r\n");
    t.push(masked(pushes_then_pong(&mut orphan)));
    t.push(masked(orphan.cmd(&["CLIENT", "TRACKINGINFO"])));
    t
}

/// Expiry pushes without any further command: the server expires keys on its own.
fn expiry(port: u16) -> Vec<String> {
    let mut a = Client::connect(port);
    let mut b = Client::connect(port);
    hello3(&mut a);
    let mut t = Vec::new();
    t.push(a.cmd(&["CLIENT", "TRACKING", "on"]));
    t.push(b.cmd(&["SET", "t", "1", "PX", "100"]));
    t.push(a.cmd(&["GET", "t"]));
    // No command is sent: the push must arrive by itself (read waits up to 5 s).
    t.push(String::from_utf8_lossy(&a.read_reply()).into_owned());
    t
}

fn compare(name: &str, script: fn(u16) -> Vec<String>) {
    let Some(redis) = Redis::start() else {
        panic!("redis-server is needed for the differential tracking tests");
    };
    let lethe = Lethe::start();
    let want = script(redis.port);
    let got = script(lethe.port);
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g, w, "{name}: step {i} differs from Redis");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn default_mode_matches_redis() {
    compare("default", default_mode);
}

#[test]
fn optin_optout_noloop_bcast_match_redis() {
    compare("modes", modes);
}

#[test]
fn resp2_redirect_and_broken_redirect_match_redis() {
    compare("redirect", redirect);
}

#[test]
fn expiry_pushes_like_redis() {
    compare("expiry", expiry);
}

// Lethe's own invalidations: each must reach a client caching the key.

fn tracking_client(lethe: &Lethe) -> Client {
    let mut a = lethe.client();
    hello3(&mut a);
    assert_eq!(a.cmd(&["CLIENT", "TRACKING", "on"]), "+OK\r\n");
    a
}

fn push_of(keys: &[&str]) -> String {
    let mut s = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len());
    for k in keys {
        s.push_str(&format!("${}\r\n{k}\r\n", k.len()));
    }
    s
}

/// The keys of every invalidate push that arrives before PONG, sorted.
fn pushed_keys(c: &mut Client) -> Vec<String> {
    let text = pushes_then_pong(c);
    let mut keys: Vec<String> = text
        .split(">2\r\n$10\r\ninvalidate\r\n")
        .skip(1)
        .flat_map(|push| {
            let lines: Vec<&str> = push.split("\r\n").collect();
            let n: usize = lines[0].trim_start_matches('*').parse().unwrap();
            (0..n)
                .map(|i| lines[2 + 2 * i].to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn tag_invalidation_pushes_every_key_it_hid_and_no_other() {
    let lethe = Lethe::start();
    let mut w = lethe.client();
    let mut a = tracking_client(&lethe);
    for (k, tag) in [
        ("u1", "user:1"),
        ("u1p", "user:1:profile"),
        ("u2", "user:2"),
    ] {
        assert_eq!(w.cmd(&["LETHE.SET", k, "v", "TAGS", "1", tag]), "+OK\r\n");
        a.cmd(&["GET", k]);
    }
    assert_eq!(w.cmd(&["LETHE.INVALIDATE", "TAG", "user:1"]), ":2\r\n");
    assert_eq!(pushed_keys(&mut a), ["u1", "u1p"]);
    // Each key is pushed once, even when a later write reclaims the hidden entries.
    for i in 0..100 {
        w.cmd(&["SET", &format!("filler{i}"), "x"]);
    }
    assert_eq!(pushed_keys(&mut a), Vec::<String>::new());
    assert_eq!(a.cmd(&["GET", "u2"]), "$1\r\nv\r\n");
}

#[test]
fn dependency_pattern_and_rule_invalidations_push() {
    let lethe = Lethe::start();
    let mut w = lethe.client();
    let mut a = tracking_client(&lethe);
    w.cmd(&["SET", "root", "r"]);
    w.cmd(&["LETHE.SET", "child", "c", "DEPENDS", "1", "root"]);
    w.cmd(&["SET", "page:1", "p"]);
    w.cmd(&["SET", "page:2", "p"]);
    w.cmd(&["SET", "keep", "k"]);
    for k in ["child", "page:1", "page:2", "keep"] {
        a.cmd(&["GET", k]);
    }
    w.cmd(&["SET", "root", "r2"]);
    assert_eq!(pushed_keys(&mut a), ["child"]);
    assert_eq!(w.cmd(&["LETHE.INVALIDATE", "PREFIX", "page:"]), ":2\r\n");
    assert_eq!(pushed_keys(&mut a), ["page:1", "page:2"]);

    let rules = "[[rule]]\nname = \"p\"\nentity = \"product\"\noperations = [\"update\"]\nkeys = [\"product:{id}\"]\n";
    assert_eq!(w.cmd(&["LETHE.RULES", "LOAD", rules]), "+OK\r\n");
    w.cmd(&["SET", "product:7", "old"]);
    a.cmd(&["GET", "product:7"]);
    w.cmd(&["LETHE.EVENT", "product", "update", "7"]);
    assert_eq!(pushed_keys(&mut a), ["product:7"]);
    assert_eq!(a.cmd(&["GET", "keep"]), "$1\r\nk\r\n");
    assert_eq!(pushed_keys(&mut a), Vec::<String>::new());
}

#[test]
fn version_floor_and_stale_writes_push_only_when_the_entry_goes() {
    let lethe = Lethe::start();
    let mut w = lethe.client();
    let mut a = tracking_client(&lethe);
    w.cmd(&["LETHE.SET", "v", "a", "VERSION", "5"]);
    a.cmd(&["GET", "v"]);
    // A refused older write leaves the cached copy right: no push.
    assert!(
        w.cmd(&["LETHE.SETIFNEWER", "v", "3", "old"])
            .starts_with("-ERR stale version")
    );
    assert_eq!(pushed_keys(&mut a), Vec::<String>::new());
    assert_eq!(w.cmd(&["LETHE.SETIFNEWER", "v", "9", "new"]), "+OK\r\n");
    assert_eq!(pushed_keys(&mut a), ["v"]);
}

#[test]
fn a_tracked_key_pushes_once_and_the_exact_bytes_are_redis_s() {
    let lethe = Lethe::start();
    let mut w = lethe.client();
    let mut a = tracking_client(&lethe);
    a.cmd(&["GET", "k"]);
    w.cmd(&["SET", "k", "1"]);
    assert_eq!(
        pushes_then_pong(&mut a),
        format!("{}+PONG\r\n", push_of(&["k"]))
    );
}

/// The proof with a real client library: redis-rs's client-side cache (RESP3, CLIENT TRACKING
/// under the hood) serves a value from its own memory until Lethe invalidates the value's tag;
/// then the cached copy is dropped and the next read fetches the new value.
#[test]
fn redis_rs_client_cache_drops_a_value_after_a_tag_invalidation() {
    use redis::AsyncConnectionConfig;
    use redis::caching::CacheConfig;

    let lethe = Lethe::start();
    let port = lethe.port;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{port}/?protocol=resp3")).unwrap();
        let config = AsyncConnectionConfig::new().set_cache_config(CacheConfig::new());
        let mut cached = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        let mut admin = client.get_multiplexed_async_connection().await.unwrap();

        let set = |v: &str| {
            let mut cmd = redis::cmd("LETHE.SET");
            cmd.arg("product:7")
                .arg(v)
                .arg("TAGS")
                .arg(1)
                .arg("category:5");
            cmd
        };
        let _: () = set("v1").query_async(&mut admin).await.unwrap();
        let get = || {
            let mut cmd = redis::cmd("GET");
            cmd.arg("product:7");
            cmd
        };
        let first: String = get().query_async(&mut cached).await.unwrap();
        let second: String = get().query_async(&mut cached).await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("v1", "v1"));
        let stats = cached.get_cache_statistics().unwrap();
        assert_eq!(
            (stats.hit, stats.miss),
            (1, 1),
            "the second read came from the client"
        );

        // Invalidate the tag's parent: nothing writes the key itself, so only the tag
        // invalidation can drop the client's copy.
        let n: i64 = redis::cmd("LETHE.INVALIDATE")
            .arg("TAG")
            .arg("category")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert_eq!(n, 1);
        // The push travels asynchronously to the client's connection task: wait for it,
        // bounded.
        let mut invalidated = 0;
        for _ in 0..500 {
            invalidated = cached.get_cache_statistics().unwrap().invalidate;
            if invalidated > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(invalidated, 1, "the client heard the tag invalidation");
        let gone: Option<String> = get().query_async(&mut cached).await.unwrap();
        assert_eq!(
            gone, None,
            "the client asked the server again, not its stale copy"
        );
        let _: () = set("v2").query_async(&mut admin).await.unwrap();
        // The re-read key is tracked again: the write pushes, the next read sees v2.
        for _ in 0..500 {
            if cached.get_cache_statistics().unwrap().invalidate >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let fresh: String = get().query_async(&mut cached).await.unwrap();
        assert_eq!(fresh, "v2");
    });
}
