//! `history_throughput`: what the per-key history ([`lethe::CacheBuilder::history`], behind
//! `LETHE.WHY`) costs. The throughput suite's Zipf workload at 2 threads, 90/10 and 50/50,
//! with the default history (16 records per key, 16 MiB) and every insert naming a shared
//! origin, as the server's writes do, against the same cache without history. The ratio is
//! the median of back-to-back on/off pairs' ratios.

use std::sync::Arc;

use lethe::history::{HistoryConfig, Origin};
use lethe::{Cache, InsertOptions};

use super::{Settings, Sink, paired, zipf_workload};
use crate::suites::throughput;
use crate::systems::{BenchCache, LetheCache};

/// Read percentages measured.
const MIXES: [u8; 2] = [90, 50];

/// Lethe keeping a history, every write attributed to one client.
struct HistoryLethe {
    cache: Cache<u64, u64>,
    options: InsertOptions<u64>,
}

impl std::fmt::Debug for HistoryLethe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistoryLethe")
    }
}

impl BenchCache<u64, u64> for HistoryLethe {
    fn with_capacity(capacity: u64) -> Self {
        HistoryLethe {
            cache: Cache::builder()
                .max_capacity(capacity)
                .history(HistoryConfig::default())
                .build(),
            options: InsertOptions::new()
                .origin(Arc::new(Origin::client("id=1 addr=127.0.0.1:50000"))),
        }
    }
    #[inline]
    fn get(&self, key: &u64) -> Option<u64> {
        self.cache.get(key)
    }
    #[inline]
    fn insert(&self, key: u64, value: u64) {
        self.cache.insert_with_options(key, value, &self.options);
    }
    fn entry_count(&self) -> usize {
        self.cache.len()
    }
    fn settle(&self) {
        self.cache.run_pending_tasks();
    }
}

/// Panics unless [`HistoryLethe`] really records: a write and an eviction show up.
pub(super) fn check_history_cache() {
    let c = HistoryLethe::with_capacity(1_000);
    for k in 0..5_000 {
        c.insert(k, k);
    }
    c.settle();
    let written = c.cache.history(&4_999);
    assert!(
        !written.is_empty() && written[0].origin.is_some(),
        "no attributed write recorded"
    );
    let evicted = (0..5_000).any(|k| {
        c.cache
            .history(&k)
            .iter()
            .any(|r| r.happened.cause() == Some(lethe::RemovalCause::Evicted))
    });
    assert!(evicted, "no eviction recorded");
    let stats = c.cache.history_stats().expect("history on");
    assert!(stats.bytes <= stats.budget);
}

pub(super) fn history_throughput(sink: &mut Sink, s: &Settings) {
    check_history_cache();
    let (prefill, streams) = zipf_workload();
    for read_pct in MIXES {
        let case = format!("history_throughput:{read_pct}/{}", 100 - read_pct);
        let ([on, off], ratio) = paired(&case, ["history on", "history off"], s, |v, d| {
            if v == 0 {
                throughput::measure::<HistoryLethe>(&prefill, &streams, read_pct, d)
            } else {
                throughput::measure::<LetheCache<u64, u64>>(&prefill, &streams, read_pct, d)
            }
        });
        sink.push(&format!("{case}:on"), "lethe", "ops_per_sec", on);
        sink.push(&format!("{case}:off"), "lethe", "ops_per_sec", off);
        sink.push(&case, "lethe", "history_over_plain", ratio);
    }
}
