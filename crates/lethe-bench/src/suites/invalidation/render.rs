//! The invalidation suite's table and its targets, read from the records the suite collected,
//! and how its durations and ratios are written.

use super::{
    Sink, TARGET_HISTORY_RATIO, TARGET_MAX_GET_US, TARGET_P99_RATIO, TARGET_SPEEDUP,
    TARGET_TAGGED_RATIO,
};
use crate::report::thousands;

pub(super) fn render(sink: &Sink) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(t, "| case | system | metric | value |");
    let _ = writeln!(t, "|---|---|---|---|");
    for (case, system, metric, value) in &sink.rows {
        let _ = writeln!(
            t,
            "| {case} | {system} | {metric} | {} |",
            format_value(metric, *value)
        );
    }

    let mut targets: Vec<[String; 4]> = Vec::new();
    if sink.rows.iter().any(|r| r.0 == "tag_1m") {
        let measured = sink.get("tag_1m", "lethe", "speedup_vs_redis_sets");
        targets.push(target_row(
            "`tag_1m`: redis_sets seconds / lethe `invalidate_tag` seconds",
            measured,
            TARGET_SPEEDUP,
            true,
        ));
        if let Some(v) = sink.get("tag_1m", "lethe", "speedup_incl_reclaim_vs_redis_sets") {
            targets.push([
                "`tag_1m`: redis_sets seconds / lethe (`invalidate_tag` + `reclaim_seconds`)"
                    .into(),
                format_ratio(v),
                "(no target; for context)".into(),
                "–".into(),
            ]);
        }
        targets.push(target_row(
            "`tag_1m`: get p99 during the invalidation / idle, per completed get",
            sink.get("tag_1m", "lethe", "p99_during_over_idle"),
            TARGET_P99_RATIO,
            false,
        ));
        targets.push(target_row(
            "`tag_1m`: the same, corrected for coordinated omission",
            sink.get("tag_1m", "lethe", "p99_corrected_during_over_idle"),
            TARGET_P99_RATIO,
            false,
        ));
        if let Some(max) = sink.get("tag_1m:during", "lethe", "get_max_us") {
            let met = max <= TARGET_MAX_GET_US;
            targets.push([
                "`tag_1m`: longest get during the invalidation".into(),
                format!("{max:.0} µs"),
                format!("≤ {TARGET_MAX_GET_US:.0} µs"),
                if met { "yes" } else { "**no**" }.into(),
            ]);
        }
        for (metric, what) in [
            (
                "p99_corrected_during_over_busy",
                "`tag_1m`: corrected get p99 during the invalidation / busy (every core busy, no \
                 invalidation)",
            ),
            (
                "max_during_over_busy",
                "`tag_1m`: longest get during the invalidation / busy",
            ),
        ] {
            if let Some(v) = sink.get("tag_1m", "lethe", metric) {
                targets.push([
                    what.into(),
                    format_ratio(v),
                    "(no target; tells stalls of a busy machine from the reclamation's)".into(),
                    "–".into(),
                ]);
            }
        }
    }
    if let Some(v) = sink.get("tagged_throughput", "lethe", "tagged_over_untagged") {
        targets.push(target_row(
            "`tagged_throughput`: 3 tags / untagged ops/s (90/10, 2 threads)",
            Some(v),
            TARGET_TAGGED_RATIO,
            true,
        ));
    }
    for mix in ["90/10", "50/50"] {
        let case = format!("history_throughput:{mix}");
        if let Some(v) = sink.get(&case, "lethe", "history_over_plain") {
            targets.push(target_row(
                &format!("`{case}`: history on / off ops/s (2 threads, median of pairs)"),
                Some(v),
                TARGET_HISTORY_RATIO,
                true,
            ));
        }
    }
    if !targets.is_empty() {
        let _ = writeln!(t, "\n| target | measured | required | met |");
        let _ = writeln!(t, "|---|---|---|---|");
        for row in &targets {
            let _ = writeln!(t, "| {} |", row.join(" | "));
        }
    }
    t
}

fn target_row(what: &str, measured: Option<f64>, bound: f64, at_least: bool) -> [String; 4] {
    let required = if at_least {
        format!("≥ {}", format_ratio(bound))
    } else {
        format!("≤ {}", format_ratio(bound))
    };
    match measured {
        Some(v) => {
            let met = if at_least { v >= bound } else { v <= bound };
            [
                what.into(),
                format_ratio(v),
                required,
                if met { "yes" } else { "**no**" }.into(),
            ]
        }
        None => [what.into(), "not measured".into(), required, "–".into()],
    }
}

fn format_value(metric: &str, v: f64) -> String {
    match metric {
        "seconds" | "reclaim_seconds" | "window_seconds" => format_seconds(v),
        "ops_per_sec" | "gets_per_sec" => format!("{:.2} M/s", v / 1e6),
        "entries" | "entries_removed" | "samples" => thousands(v as u64),
        "skipped" => "skipped (redis-server unavailable)".into(),
        m if m.contains("_us") => format!("{v:.3} µs"),
        "steal_ms" => format!("{v:.0} ms"),
        m if m.starts_with("speedup") || m.contains("_over_") => format_ratio(v),
        _ => format!("{v}"),
    }
}

pub(super) fn format_ratio(v: f64) -> String {
    if v >= 100.0 {
        format!("{}×", thousands(v.round() as u64))
    } else {
        format!("{v:.2}×")
    }
}

pub(super) fn format_seconds(v: f64) -> String {
    if v < 1e-3 {
        format!("{:.2} µs", v * 1e6)
    } else if v < 1.0 {
        format!("{:.2} ms", v * 1e3)
    } else {
        format!("{v:.3} s")
    }
}
