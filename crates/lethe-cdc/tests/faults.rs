//! Faults: PostgreSQL restarting under the stream, the slot dropped while disconnected, the
//! runner restarted, a target failing. In each, no committed invalidation may be lost.

mod common;

use common::*;
use lethe_cdc::{FlushReason, RespTarget, pgoutput};
use std::time::Duration;

/// The slot's confirmed flush position, as PostgreSQL reports it.
async fn slot_confirmed(sql: &tokio_postgres::Client) -> u64 {
    let row = sql
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'lethe'",
            &[],
        )
        .await
        .unwrap();
    pgoutput::parse_lsn(&row.get::<_, String>(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_loses_nothing() {
    restart_mid_stream(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crash_mid_stream_loses_nothing() {
    restart_mid_stream(true).await;
}

/// Updates committed just before PostgreSQL goes down (some in flight when it does) and
/// while the runner is reconnecting all arrive.
async fn restart_mid_stream(crash: bool) {
    let (mut pg, sql) = database(SCHEMA).await;
    exec(
        &sql,
        "INSERT INTO products SELECT g, 1, 1, 'p' FROM generate_series(10, 109) g",
    )
    .await;
    let (cache, cdc) = embedded(Mode::Replication, &pg, RULES).await;

    for id in 10..110 {
        put(&cache, &format!("product:{id}"), &[]);
    }
    for id in 10..60 {
        exec(
            &sql,
            &format!("UPDATE products SET price = price + 1 WHERE id = {id}"),
        )
        .await;
    }
    tokio::task::block_in_place(|| {
        if crash {
            pg.crash();
        } else {
            pg.stop();
        }
        pg.start_server();
    });
    let sql = pg.client().await;
    for id in 60..110 {
        exec(
            &sql,
            &format!("UPDATE products SET price = price + 1 WHERE id = {id}"),
        )
        .await;
    }
    for id in 10..110 {
        gone(&cache, &format!("product:{id}")).await;
    }
    let m = cdc.metrics.snapshot();
    assert!(m.reconnects >= 1, "{m:?}");
    assert_eq!(m.flushes(FlushReason::SlotMissing), 0, "{m:?}");
    cdc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_dropped_while_disconnected_flushes_every_target() {
    let (pg, sql) = database(SCHEMA).await;
    let cache = new_cache();
    let mut config = config(&pg, RULES);
    // A slow reconnect leaves time to drop the slot while the runner is away.
    config.reconnect_min_ms = 3000;
    config.reconnect_max_ms = 3000;
    let cdc = Running::embedded(config, &cache);
    cdc.connected().await;
    put(&cache, "product:1", &[]);
    exec(&sql, "UPDATE products SET price = 2 WHERE id = 1").await;
    gone(&cache, "product:1").await;

    // Disconnect the runner and drop its slot before it comes back.
    exec(
        &sql,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_replication WHERE application_name = 'lethe-cdc'",
    )
    .await;
    let mut dropped = false;
    for _ in 0..100 {
        if sql
            .batch_execute("SELECT pg_drop_replication_slot('lethe')")
            .await
            .is_ok()
        {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped, "the slot stayed active");
    // A change no slot records: only a flush can cover it.
    put(&cache, "product:2", &[]);
    put(&cache, "unrelated", &[]);
    exec(&sql, "UPDATE products SET price = 3 WHERE id = 2").await;

    cdc.until("no flush", |s| s.flushes(FlushReason::SlotMissing) == 1)
        .await;
    assert!(!has(&cache, "product:2") && !has(&cache, "unrelated"));
    // Streaming resumed on the new slot.
    cdc.connected().await;
    put(&cache, "product:3", &[]);
    exec(&sql, "UPDATE products SET price = 4 WHERE id = 3").await;
    gone(&cache, "product:3").await;
    let m = cdc.metrics.snapshot();
    assert!(
        m.reconnects >= 1 && m.flushes(FlushReason::SlotMissing) == 1,
        "{m:?}"
    );
    cdc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_runner_replays_from_the_confirmed_position() {
    let (pg, sql) = database(SCHEMA).await;
    let (cache, first) = embedded(Mode::Replication, &pg, RULES).await;
    put(&cache, "product:1", &[]);
    exec(&sql, "UPDATE products SET price = 2 WHERE id = 1").await;
    gone(&cache, "product:1").await;
    let applied = first.metrics.snapshot().last_applied_lsn;
    let deadline = tokio::time::Instant::now() + WAIT;
    while slot_confirmed(&sql).await < applied {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never confirmed {applied}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await.unwrap();

    // Committed while no runner is streaming: kept by the slot.
    exec(&sql, "UPDATE products SET price = 3 WHERE id = 2").await;
    exec(&sql, "DELETE FROM products WHERE id = 3").await;
    put(&cache, "product:1", &[]); // confirmed before: must not be replayed
    put(&cache, "product:2", &[]);
    put(&cache, "product:3", &[]);

    let second = Running::embedded(config(&pg, RULES), &cache);
    second.connected().await;
    gone(&cache, "product:2").await;
    gone(&cache, "product:3").await;
    barrier(&sql, &cache).await;
    assert!(
        has(&cache, "product:1"),
        "a transaction confirmed before the restart was replayed"
    );
    let m = second.metrics.snapshot();
    // The slot survived the restart: no flush of any kind.
    assert_eq!(m.flushes(FlushReason::SlotMissing), 0, "{m:?}");
    assert_eq!(m.flushes(FlushReason::SlotCreated), 0, "{m:?}");
    // The two transactions from the gap and the barrier; nothing older.
    assert_eq!(m.transactions, 3, "{m:?}");
    second.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_target_holds_back_confirmation_until_it_recovers() {
    let (pg, sql) = database(SCHEMA).await;
    // A port with no server yet.
    let (port, url) = unused_port();
    let mut config = config(&pg, RULES);
    // The first-start flush would wait for the server too; this test is about a commit.
    config.flush_on_slot_create = false;
    let cdc = Running::start(
        config,
        vec![Box::new(RespTarget::new([url.as_str()]).unwrap())],
    );
    cdc.connected().await;
    let before = slot_confirmed(&sql).await;
    exec(&sql, "UPDATE products SET price = 5 WHERE id = 1").await;
    cdc.until("the target was never retried", |s| s.target_retries >= 2)
        .await;
    let held = slot_confirmed(&sql).await;
    let current: String = sql
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .unwrap()
        .get(0);
    let current = pgoutput::parse_lsn(&current).unwrap();
    assert!(
        held < current,
        "confirmed {held:X} moved past an unapplied commit (before {before:X}, WAL at {current:X})"
    );

    // The server comes up: the pending batch goes through and confirmation moves on.
    let server = LetheServer::start_on(port).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while slot_confirmed(&sql).await < current {
        assert!(
            tokio::time::Instant::now() < deadline,
            "confirmation never resumed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cdc.stop().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_whose_first_flush_never_completed_is_not_left_behind() {
    let (pg, sql) = database(SCHEMA).await;
    let (_, url) = unused_port();
    // The new slot must be followed by a flush of a server that is down.
    let cdc = Running::start(
        config(&pg, RULES),
        vec![Box::new(RespTarget::new([url.as_str()]).unwrap())],
    );
    cdc.until("the flush was never attempted", |s| s.target_retries >= 1)
        .await;
    cdc.stop().await.unwrap();
    // Stopped mid-flush: the slot is gone, so the next start creates it and flushes again.
    let slots = sql
        .query(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'lethe'",
            &[],
        )
        .await
        .unwrap();
    assert!(slots.is_empty(), "the slot outlived an unfinished flush");
}
