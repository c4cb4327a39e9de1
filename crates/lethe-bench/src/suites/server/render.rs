//! The server suite's output: its tables (throughput and CPU per case, memory, targets) and
//! its charts, all read from the records the suite collected.

use std::fmt::Write as _;

use super::{
    MEMORY_CASE, Sink, TARGET_CPU, TARGET_NEW_CASES, TARGET_P1, TARGET_P16, TARGET_TAGGED,
};
use crate::charts;
use crate::report::thousands;

/// Throughput and server CPU per case, Lethe against Redis, for the cases measured.
pub(super) fn figures(sink: &Sink, cases: &[String]) -> Vec<charts::Figure> {
    let rows = |metric: &str| -> Vec<(String, Option<f64>, Option<f64>)> {
        cases
            .iter()
            .map(|c| {
                (
                    c.clone(),
                    sink.get(c, "lethe", metric),
                    sink.get(c, "redis", metric),
                )
            })
            .filter(|r| r.1.is_some() || r.2.is_some())
            .collect()
    };
    let mut out = Vec::new();
    let ops = rows("ops_per_sec");
    if !ops.is_empty() {
        out.push(charts::server_bars(
            "throughput",
            "Server throughput, lethe vs redis (median of runs)",
            "requests per second (logical writes for tagged_set)",
            &ops,
        ));
    }
    let cpu = rows("cpu_s_per_1m_ops");
    if !cpu.is_empty() {
        out.push(charts::server_bars(
            "cpu-per-op",
            "Server CPU per operation, lethe vs redis (median of runs)",
            "server CPU seconds per million requests (lower is better)",
            &cpu,
        ));
    }
    out
}

pub(super) fn render(sink: &Sink) -> String {
    let mut cases: Vec<&str> = Vec::new();
    for r in &sink.rows {
        if r.0 != MEMORY_CASE && !r.0.starts_with("memory_") && !cases.contains(&r.0.as_str()) {
            cases.push(&r.0);
        }
    }
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| case | lethe ops/s | redis ops/s | lethe/redis | lethe CPU s per 1M | redis CPU s \
         per 1M | lethe/redis |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    let cell = |case: &str, system: &str, metric: &str| {
        sink.get(case, system, metric)
            .map_or_else(|| "–".into(), |v| format_value(metric, v))
    };
    for case in &cases {
        let _ = writeln!(
            t,
            "| {case} | {} | {} | {} | {} | {} | {} |",
            cell(case, "lethe", "ops_per_sec"),
            cell(case, "redis", "ops_per_sec"),
            cell(case, "lethe", "ops_over_redis"),
            cell(case, "lethe", "cpu_s_per_1m_ops"),
            cell(case, "redis", "cpu_s_per_1m_ops"),
            cell(case, "lethe", "cpu_over_redis"),
        );
    }

    let mut targets: Vec<[String; 4]> = Vec::new();
    for case in &cases {
        let (what, bound) = match *case {
            c if c.starts_with("tagged_set") => (
                format!(
                    "`{c}`: lethe `LETHE.SET … TAGS 2` / redis `SET` + 2 `SADD` (pipelined), \
                     logical writes/s"
                ),
                TARGET_TAGGED,
            ),
            c if c.ends_with(":P1") => (format!("`{c}`: lethe / redis ops/s"), TARGET_P1),
            c @ ("incr_hot:P16" | "mset10:P16" | "hset_1k:P16" | "sadd:P16" | "lpush:P16"
            | "lpop:P16" | "zadd:P16" | "zrange:P16") => {
                (format!("`{c}`: lethe / redis ops/s"), TARGET_NEW_CASES)
            }
            c => (format!("`{c}`: lethe / redis ops/s"), TARGET_P16),
        };
        targets.push(target_row(
            &what,
            sink.get(case, "lethe", "ops_over_redis"),
            bound,
            true,
        ));
    }
    for case in &cases {
        targets.push(target_row(
            &format!("`{case}`: lethe / redis server CPU s per 1M ops"),
            sink.get(case, "lethe", "cpu_over_redis"),
            TARGET_CPU,
            false,
        ));
    }
    if sink
        .get(MEMORY_CASE, "lethe", "resident_bytes_per_key")
        .is_some()
    {
        let keys = sink.get(MEMORY_CASE, "lethe", "keys").unwrap_or(0.0);
        let _ = writeln!(
            t,
            "\n{} × `SET key:<11 digits> <32 bytes>` into a fresh server each:\n\n\
             | system | resident B/key | used_memory B/key | used_memory error vs allocator |\n\
             |---|---|---|---|",
            thousands(keys as u64)
        );
        for system in ["lethe", "redis"] {
            let cell = |metric: &str, digits: usize| {
                sink.get(MEMORY_CASE, system, metric)
                    .map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
            };
            let error = sink
                .get(MEMORY_CASE, system, "used_memory_error")
                .map_or_else(
                    || "– (it is the allocator's count)".into(),
                    |e| format!("{:.1} %", e * 100.0),
                );
            let _ = writeln!(
                t,
                "| {system} | {} | {} | {error} |",
                cell("resident_bytes_per_key", 1),
                cell("used_memory_bytes_per_key", 1),
            );
        }
        targets.push(target_row(
            "`memory_1m`: lethe / redis resident bytes per key",
            sink.get(MEMORY_CASE, "lethe", "resident_over_redis"),
            1.0,
            false,
        ));
        targets.push(target_row(
            "`memory_1m`: lethe `used_memory` error vs its allocator (fraction)",
            sink.get(MEMORY_CASE, "lethe", "used_memory_error"),
            0.10,
            false,
        ));
    }
    render_collections(sink, &mut t, &mut targets);
    let _ = writeln!(t, "\n| target | measured | required | met |");
    let _ = writeln!(t, "|---|---|---|---|");
    for row in &targets {
        let _ = writeln!(t, "| {} |", row.join(" | "));
    }
    t
}

/// The `memory_collections` row name of `kind` with `size` members.
pub(super) fn collection_case(kind: &str, size: u64) -> String {
    format!("memory_{kind}_{size}")
}

fn render_collections(sink: &Sink, t: &mut String, targets: &mut Vec<[String; 4]>) {
    let mut rows = Vec::new();
    for kind in crate::suites::server_memory::COLLECTION_TYPES {
        for size in crate::suites::server_memory::COLLECTION_SIZES {
            let case = collection_case(kind, size);
            if sink.get(&case, "lethe", "bytes_per_member").is_some() {
                rows.push((kind, size, case));
            }
        }
    }
    let Some((_, _, first)) = rows.first() else {
        return;
    };
    let members = sink.get(first, "lethe", "members").unwrap_or(0.0);
    let _ = writeln!(
        t,
        "\nCollections, {} members per load into a fresh server each: bytes per member the \
         allocator holds (Lethe `allocator_allocated`, Redis `used_memory`) and resident \
         bytes per member:\n\n\
         | collection | members each | lethe B/member | redis B/member | lethe/redis | lethe \
         resident B/member | redis resident B/member |\n|---|---|---|---|---|---|---|",
        thousands(members as u64)
    );
    let cell = |case: &str, system: &str, metric: &str, digits: usize| {
        sink.get(case, system, metric)
            .map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
    };
    for (kind, size, case) in &rows {
        let _ = writeln!(
            t,
            "| {kind} | {} | {} | {} | {} | {} | {} |",
            thousands(*size),
            cell(case, "lethe", "bytes_per_member", 1),
            cell(case, "redis", "bytes_per_member", 1),
            cell(case, "lethe", "bytes_over_redis", 2),
            cell(case, "lethe", "resident_bytes_per_member", 1),
            cell(case, "redis", "resident_bytes_per_member", 1),
        );
        targets.push(target_row(
            &format!("`{case}`: lethe / redis allocated bytes per member"),
            sink.get(case, "lethe", "bytes_over_redis"),
            1.0,
            false,
        ));
    }
}

pub(super) fn target_row(
    what: &str,
    measured: Option<f64>,
    bound: f64,
    at_least: bool,
) -> [String; 4] {
    let required = if at_least {
        format!("≥ {bound:.2}×")
    } else {
        format!("≤ {bound:.2}×")
    };
    match measured {
        Some(v) => {
            let met = if at_least { v >= bound } else { v <= bound };
            [
                what.into(),
                format!("{v:.2}×"),
                required,
                if met { "yes" } else { "**no**" }.into(),
            ]
        }
        None => [what.into(), "not measured".into(), required, "–".into()],
    }
}

fn format_value(metric: &str, v: f64) -> String {
    match metric {
        "ops_per_sec" => format!("{} /s", thousands(v.round() as u64)),
        "cpu_s_per_1m_ops" => format!("{v:.3} s"),
        _ => format!("{v:.2}×"),
    }
}
