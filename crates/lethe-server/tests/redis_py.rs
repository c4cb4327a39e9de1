//! redis-py, the Python client, works against Lethe unchanged (RESP2 and RESP3): the script in
//! `tests/py/` drives an in-process server. `scripts/test-all` installs redis-py.

mod common;

use std::process::Command;

#[test]
fn redis_py_works_unchanged() {
    let lethe = common::Lethe::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/redis_py_smoke.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(lethe.port.to_string())
        .output()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    assert!(
        out.status.success(),
        "redis-py smoke failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// The classic Redis tag pattern (SETEX + SADD tag:x, later SMEMBERS + DEL), sets, lists and a
/// blocking pop, driven by redis-py exactly as applications write them against Redis.
#[test]
fn redis_py_tag_pattern_and_collections_work_unchanged() {
    let lethe = common::Lethe::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/redis_py_collections.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg(lethe.port.to_string())
        .output()
        .expect("python3 is needed (scripts/test-all installs redis-py)");
    assert!(
        out.status.success(),
        "redis-py collections script failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
