//! Differential testing against a real `redis-server`: the same script on both servers, every
//! reply compared byte for byte, in RESP2 and in RESP3.

use super::{Client, Lethe, Redis};

/// Both servers, started fresh (the test fails when `redis-server` is missing).
pub fn servers() -> (Redis, Lethe) {
    let Some(redis) = Redis::start() else {
        unreachable!("Redis::start fails the test when redis-server is missing");
    };
    (redis, Lethe::start())
}

/// A client of each server speaking RESP `proto` ("2" or "3"), on an empty keyspace.
pub fn clients(redis: &Redis, lethe: &Lethe, proto: &str) -> (Client, Client) {
    let (mut r, mut l) = (redis.client(), lethe.client());
    let (hr, hl) = (r.raw(&["HELLO", proto]), l.raw(&["HELLO", proto]));
    assert_eq!(hr[..1], hl[..1], "HELLO {proto}: reply types differ");
    assert_eq!(r.raw(&["FLUSHALL"]), l.raw(&["FLUSHALL"]));
    (r, l)
}

/// Runs each command of `script` on both clients, asserting Lethe's reply equals Redis's.
pub fn run_both(r: &mut Client, l: &mut Client, script: &[&[&str]]) {
    run_both_any(r, l, script);
}

/// [`run_both`] for a script built at run time.
pub fn run_both_owned(r: &mut Client, l: &mut Client, script: &[Vec<String>]) {
    run_both_any(r, l, script);
}

fn run_both_any<C, S>(r: &mut Client, l: &mut Client, script: &[C])
where
    C: AsRef<[S]>,
    S: AsRef<str>,
{
    for (i, cmd) in script.iter().enumerate() {
        let cmd: Vec<&str> = cmd.as_ref().iter().map(AsRef::as_ref).collect();
        let want = r.raw(&cmd);
        let got = l.raw(&cmd);
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "command #{i} {cmd:?}: Lethe's reply differs from Redis's"
        );
    }
}

/// Runs `script` on both servers from an empty keyspace, once in RESP2 and once in RESP3.
pub fn compare(script: &[&[&str]]) {
    compare_any(script);
}

/// [`compare`] for a script built at run time.
pub fn compare_owned(script: &[Vec<String>]) {
    compare_any(script);
}

fn compare_any<C, S>(script: &[C])
where
    C: AsRef<[S]>,
    S: AsRef<str>,
{
    let (redis, lethe) = servers();
    for proto in ["2", "3"] {
        let (mut r, mut l) = clients(&redis, &lethe, proto);
        run_both_any(&mut r, &mut l, script);
    }
}

/// One command as owned strings, for scripts built at run time.
pub fn line(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}
