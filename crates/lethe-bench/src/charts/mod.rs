//! The charts of `BENCHMARKS.md`: SVG files rendered from the results a suite hands its report.
//!
//! This module owns two things: the *figures* each suite's results make (which data, which
//! axes and scales, which captions: [`hit_ratio_curves`], [`latency_cdf`], [`server_bars`],
//! [`latency_timeline`]), and the rendering of those figures to SVG with `plotters` (SVG backend
//! only). Suites describe what they measured as plain numbers and names; they never draw. The
//! report ([`crate::report`]) calls [`write_figures`] in the same run that writes the tables,
//! into `benchmarks/<suite>/` beside `BENCHMARKS.md`, and links each written file from the
//! suite's section, so a chart can never disagree with the table next to it.
//!
//! Text is written as SVG `<text>` elements (plotters without its `ttf` feature lays text out
//! with a built-in width estimate), so rendering needs no font files, no fontconfig and no
//! system library: it works on any machine that runs the harness, and the viewer picks the
//! font.
//!
//! The drawing itself, which knows plotters and nothing about suites, is in `render`.

use std::io;
use std::path::{Path, PathBuf};

mod render;

#[cfg(test)]
use render::log_ticks;
pub use render::render_svg;

/// Pixel size of every chart: wide enough for a legend beside eight series.
const SIZE: (u32, u32) = (960, 560);
/// CDF points kept per series: enough for a smooth curve, few enough for a small file.
const CDF_POINTS: usize = 400;
/// Latencies below this (in ms) are drawn at it on the CDF's log axis (a change applied before
/// the commit acknowledgement arrived has latency 0, which a log axis cannot show).
const CDF_FLOOR_MS: f64 = 0.001;

/// One chart and where it goes: `<name>.svg` in the suite's chart folder, linked with
/// `caption` as its text.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File stem: letters, digits, `-` and `_` only (anything else becomes `_`).
    pub name: String,
    pub caption: String,
    pub chart: Chart,
}

/// What is drawn.
#[derive(Debug, Clone)]
pub enum Chart {
    Lines(LineChart),
    Bars(BarChart),
}

/// Named series of (x, y) points on two numeric axes, with optional vertical markers.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x: Axis,
    pub y: Axis,
    pub series: Vec<Series>,
    /// Vertical lines at an x value (e.g. "invalidate_tag returned"), drawn dashed.
    pub markers: Vec<(String, f64)>,
    pub legend: Legend,
}

/// Horizontal bars, one group of bars per category (e.g. one per case, a bar per system).
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    /// Label of the value axis.
    pub value_label: String,
    pub format: Format,
    pub categories: Vec<String>,
    /// One bar per category per group; `None` where the group has no value.
    pub groups: Vec<(String, Vec<Option<f64>>)>,
}

#[derive(Debug, Clone)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
    pub format: Format,
    /// Fixed bounds; `None` fits the data.
    pub range: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

/// How tick labels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// 0.25 -> "25 %".
    Percent,
    /// 1500 -> "1.5k", 2e6 -> "2M", 0.25 -> "0.25".
    Number,
    /// Whole counts in full: 131072 -> "131,072".
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    UpperRight,
    LowerRight,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Format {
    fn tick(self, v: f64) -> String {
        match self {
            Format::Percent => {
                let p = v * 100.0;
                if (p - p.round()).abs() < 1e-9 {
                    format!("{p:.0} %")
                } else {
                    format!("{p:.1} %")
                }
            }
            Format::Number => number(v),
            Format::Count => crate::report::thousands(v.round().max(0.0) as u64),
        }
    }
}

/// A compact tick label: SI suffixes above a thousand, few digits below.
fn number(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = if scaled == 0.0 {
        "0".to_string()
    } else if scaled.abs() >= 100.0 || scaled.fract() == 0.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else if scaled.abs() >= 0.01 {
        format!("{scaled:.2}")
    } else {
        format!("{scaled:.0e}")
    };
    let s = if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{suffix}")
}

// ---------------------------------------------------------------------------------------------
// Figures, one constructor per concept

/// Hit ratio against cache size on one trace, a line per system. `results` are
/// (system, capacity in entries, hit ratio in 0..=1); the x axis is logarithmic because the
/// traces' sizes grow by factors.
pub fn hit_ratio_curves(trace: &str, results: &[(&str, u64, f64)]) -> Figure {
    let mut series: Vec<Series> = Vec::new();
    for &(system, size, ratio) in results {
        let point = (size as f64, ratio);
        match series.iter_mut().find(|s| s.name == system) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                name: system.to_string(),
                points: vec![point],
            }),
        }
    }
    for s in &mut series {
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Figure {
        name: format!("hit-ratio-{trace}"),
        caption: format!("Hit ratio vs cache size: {trace}"),
        chart: Chart::Lines(LineChart {
            title: format!("Hit ratio vs cache size: {trace}"),
            x: Axis {
                label: "cache size (entries, log scale)".into(),
                scale: Scale::Log,
                format: Format::Count,
                range: None,
            },
            y: Axis {
                label: "hit ratio".into(),
                scale: Scale::Linear,
                format: Format::Percent,
                range: None,
            },
            series,
            markers: Vec::new(),
            legend: Legend::LowerRight,
        }),
    }
}

/// Cumulative distribution of latencies (ms), a line per case. Each case's samples need not be
/// sorted; at most [`CDF_POINTS`] quantiles per case are drawn, always including the minimum
/// and the maximum.
pub fn latency_cdf(name: &str, title: &str, what: &str, cases: &[(String, Vec<f64>)]) -> Figure {
    let series = cases
        .iter()
        .map(|(case, samples)| Series {
            name: format!("{case} ({} samples)", samples.len()),
            points: cdf_points(samples, CDF_POINTS),
        })
        .collect();
    Figure {
        name: name.to_string(),
        caption: title.to_string(),
        chart: Chart::Lines(LineChart {
            title: title.to_string(),
            x: Axis {
                label: format!("{what} (ms, log scale; below {CDF_FLOOR_MS} ms drawn at it)"),
                scale: Scale::Log,
                format: Format::Number,
                range: None,
            },
            y: Axis {
                label: "fraction of changes at or below".into(),
                scale: Scale::Linear,
                format: Format::Percent,
                range: Some((0.0, 1.0)),
            },
            series,
            markers: Vec::new(),
            legend: Legend::LowerRight,
        }),
    }
}

/// (latency, fraction at or below it) at up to `max_points` evenly spaced ranks.
fn cdf_points(samples: &[f64], max_points: usize) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let steps = max_points.clamp(2, n.max(2)) - 1;
    let mut points: Vec<(f64, f64)> = (0..=steps)
        .map(|i| {
            let rank = ((n - 1) * i + steps / 2) / steps;
            (sorted[rank].max(CDF_FLOOR_MS), (rank + 1) as f64 / n as f64)
        })
        .collect();
    points.dedup_by(|b, a| a.1 == b.1);
    points
}

/// Lethe against Redis per case, as horizontal bars: `rows` are (case, lethe, redis).
pub fn server_bars(
    name: &str,
    title: &str,
    value_label: &str,
    rows: &[(String, Option<f64>, Option<f64>)],
) -> Figure {
    Figure {
        name: name.to_string(),
        caption: title.to_string(),
        chart: Chart::Bars(BarChart {
            title: title.to_string(),
            value_label: value_label.to_string(),
            format: Format::Number,
            categories: rows.iter().map(|r| r.0.clone()).collect(),
            groups: vec![
                ("lethe".into(), rows.iter().map(|r| r.1).collect()),
                ("redis".into(), rows.iter().map(|r| r.2).collect()),
            ],
        }),
    }
}

/// One latency time series: per time slot since a window began, the mean and the largest
/// latency seen. A slot whose mean and max are NaN had no data: the lines break there.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// Which window ("during", "idle").
    pub label: String,
    /// (slot start in ms since the window began, mean µs, max µs), slots in order.
    pub slots: Vec<(f64, f64, f64)>,
}

/// Reader latency over time, a mean and a max line per window, with vertical markers (ms) for
/// the moments that matter (e.g. when the invalidation call returned). The latency axis is
/// logarithmic: a stall is orders of magnitude above a normal read.
pub fn latency_timeline(
    name: &str,
    title: &str,
    timelines: &[Timeline],
    markers: &[(String, f64)],
) -> Figure {
    let mut series = Vec::new();
    for t in timelines {
        series.push(Series {
            name: format!("{}: max per slot", t.label),
            points: t.slots.iter().map(|&(x, _, max)| (x, max)).collect(),
        });
        series.push(Series {
            name: format!("{}: mean per slot", t.label),
            points: t.slots.iter().map(|&(x, mean, _)| (x, mean)).collect(),
        });
    }
    Figure {
        name: name.to_string(),
        caption: title.to_string(),
        chart: Chart::Lines(LineChart {
            title: title.to_string(),
            x: Axis {
                label: "time since the window began (ms)".into(),
                scale: Scale::Linear,
                format: Format::Number,
                range: None,
            },
            y: Axis {
                label: "get latency (µs, log scale)".into(),
                scale: Scale::Log,
                format: Format::Number,
                range: None,
            },
            series,
            markers: markers.to_vec(),
            legend: Legend::UpperRight,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Files

/// A figure written to disk: its caption and its path relative to the folder of
/// `BENCHMARKS.md` (with `/` separators, as markdown links want).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub caption: String,
    pub link: String,
}

/// Renders `figures` into `<root>/benchmarks/<suite>/<name>.svg`, replacing that folder's
/// previous SVG files (a chart of a case this run did not measure would otherwise stay there,
/// unlinked, looking current). Returns what was written, and the figures that failed with why.
pub fn write_figures(root: &Path, suite: &str, figures: &[Figure]) -> (Vec<Written>, Vec<String>) {
    let rel = format!("benchmarks/{suite}");
    let dir = root.join(&rel);
    let mut written = Vec::new();
    let mut errors = Vec::new();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        errors.push(format!("cannot create {}: {e}", dir.display()));
        return (written, errors);
    }
    let mut names: Vec<String> = Vec::new();
    for f in figures {
        let stem = file_stem(&f.name);
        if names.contains(&stem) {
            errors.push(format!(
                "two charts named {stem}; the second was not written"
            ));
            continue;
        }
        let path = dir.join(format!("{stem}.svg"));
        match render_svg(&f.chart).and_then(|svg| {
            write_atomically(&path, &svg)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))
        }) {
            Ok(()) => {
                written.push(Written {
                    caption: f.caption.clone(),
                    link: format!("{rel}/{stem}.svg"),
                });
            }
            Err(e) => errors.push(format!("{}: {e}", f.caption)),
        }
        names.push(stem);
    }
    if let Err(e) = remove_stale(&dir, &names) {
        errors.push(format!("cannot clean {}: {e}", dir.display()));
    }
    (written, errors)
}

fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    let tmp: PathBuf = path.with_extension("svg.tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

/// Removes `*.svg` files in `dir` whose stem is not in `keep`.
fn remove_stale(dir: &Path, keep: &[String]) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "svg")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| !keep.iter().any(|k| k == s));
        if stale {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh, empty directory under the system's temp dir, removed on drop.
    #[derive(Debug)]
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "lethe-bench-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create a temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Every text node of a well-formed SVG document (panics with the parse error otherwise),
    /// and the number of elements per name.
    pub(crate) fn parse_svg(svg: &str) -> (Vec<String>, std::collections::HashMap<String, usize>) {
        let doc = roxmltree::Document::parse(svg)
            .unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{svg}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        let mut texts = Vec::new();
        let mut counts = std::collections::HashMap::new();
        for node in doc.descendants() {
            if node.is_element() {
                *counts
                    .entry(node.tag_name().name().to_string())
                    .or_insert(0) += 1;
            }
            if let Some(t) = node.text().filter(|_| node.is_text()).map(str::trim) {
                if !t.is_empty() {
                    texts.push(t.to_string());
                }
            }
        }
        (texts, counts)
    }

    /// Writes `figure` into a temp dir as the report does and returns the file's contents.
    fn write_one(figure: Figure) -> String {
        let dir = TempDir::new("chart");
        let (written, errors) = write_figures(&dir.0, "suite", std::slice::from_ref(&figure));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].caption, figure.caption);
        let path = dir.0.join(&written[0].link);
        assert!(path.starts_with(dir.0.join("benchmarks/suite")));
        std::fs::read_to_string(&path).expect("the chart file exists")
    }

    fn has(texts: &[String], want: &str) -> bool {
        texts.iter().any(|t| t.contains(want))
    }

    #[test]
    fn hit_ratio_chart_names_every_system_and_axis() {
        let results = [
            ("lethe", 256, 0.30),
            ("lethe", 512, 0.38),
            ("lethe", 1000, 0.45),
            ("lru", 512, 0.24),
            ("lru", 256, 0.17),
            ("lru", 1000, 0.33),
        ];
        let figure = hit_ratio_curves("OLTP", &results);
        let Chart::Lines(lines) = &figure.chart else {
            panic!("hit ratios are lines")
        };
        assert_eq!(lines.series.len(), 2);
        assert_eq!(
            lines.series[1].points,
            vec![(256.0, 0.17), (512.0, 0.24), (1000.0, 0.33)],
            "points sorted by size"
        );
        let svg = write_one(figure);
        let (texts, counts) = parse_svg(&svg);
        for want in [
            "Hit ratio vs cache size: OLTP",
            "lethe",
            "lru",
            "cache size (entries, log scale)",
            "hit ratio",
        ] {
            assert!(has(&texts, want), "{want:?} missing from {texts:?}");
        }
        assert!(
            texts.iter().any(|t| t.ends_with('%')),
            "percent ticks: {texts:?}"
        );
        // Two data lines and their two legend samples.
        assert!(
            counts.get("polyline").copied().unwrap_or(0) >= 4,
            "{counts:?}"
        );
        // Six measured points are marked.
        assert!(
            counts.get("circle").copied().unwrap_or(0) >= 6,
            "{counts:?}"
        );
    }

    #[test]
    fn cdf_points_are_monotone_and_end_at_one() {
        let samples: Vec<f64> = (0..10_000).rev().map(|i| f64::from(i) / 100.0).collect();
        let p = cdf_points(&samples, 50);
        assert!(p.len() <= 50 && p.len() >= 40, "{} points", p.len());
        assert!(p.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(p.last().copied(), Some((99.99, 1.0)));
        assert_eq!(p[0].0, CDF_FLOOR_MS, "0 ms is drawn at the floor");
        assert_eq!(cdf_points(&[], 50), Vec::new());
        assert_eq!(cdf_points(&[2.0], 50), vec![(2.0, 1.0)]);
    }

    #[test]
    fn latency_cdf_chart_names_its_cases() {
        let cases = vec![
            ("rate:1k".to_string(), vec![0.4, 0.8, 1.2, 3.0, 0.0]),
            ("rate:max".to_string(), vec![2.0, 4.0, 9.0, 40.0]),
        ];
        let figure = latency_cdf("latency-cdf", "Commit to invalidation", "latency", &cases);
        let svg = write_one(figure);
        let (texts, _) = parse_svg(&svg);
        for want in [
            "Commit to invalidation",
            "rate:1k (5 samples)",
            "rate:max (4 samples)",
            "latency (ms, log scale",
            "fraction of changes at or below",
            "100 %",
        ] {
            assert!(has(&texts, want), "{want:?} missing from {texts:?}");
        }
    }

    #[test]
    fn server_bars_name_every_case_and_both_servers() {
        let rows = vec![
            ("set:P1".to_string(), Some(120_000.0), Some(100_000.0)),
            ("get:P16".to_string(), Some(1_500_000.0), Some(1_200_000.0)),
            ("tagged_set".to_string(), Some(90_000.0), None),
        ];
        let figure = server_bars("ops", "Throughput", "requests per second", &rows);
        let svg = write_one(figure);
        let (texts, counts) = parse_svg(&svg);
        for want in [
            "Throughput",
            "set:P1",
            "get:P16",
            "tagged_set",
            "lethe",
            "redis",
            "requests per second",
            "1.2M",
        ] {
            assert!(has(&texts, want), "{want:?} missing from {texts:?}");
        }
        // Five bars (redis has no tagged_set), two legend swatches, the background and the
        // plot frame: at least nine rectangles.
        assert!(counts.get("rect").copied().unwrap_or(0) >= 9, "{counts:?}");
    }

    #[test]
    fn server_bars_label_every_case_of_a_full_run() {
        let rows: Vec<_> = (0..16)
            .map(|i| {
                (
                    format!("case{i}"),
                    Some(1000.0 * f64::from(i + 1)),
                    Some(900.0),
                )
            })
            .collect();
        let svg = render_svg(&server_bars("x", "x", "x", &rows).chart).expect("drawn");
        let (texts, _) = parse_svg(&svg);
        for (case, _, _) in &rows {
            assert!(texts.contains(case), "{case} unlabelled: {texts:?}");
        }
    }

    #[test]
    fn latency_timeline_names_windows_and_markers() {
        let timelines = vec![
            Timeline {
                label: "during".into(),
                slots: vec![(0.0, 0.2, 3.0), (1.0, 0.3, 900.0), (2.0, 0.2, 2.0)],
            },
            Timeline {
                label: "idle".into(),
                slots: vec![(0.0, 0.2, 1.0), (1.0, 0.2, 1.5), (2.0, 0.2, 1.2)],
            },
        ];
        let markers = vec![("invalidate_tag returned".to_string(), 0.4)];
        let figure = latency_timeline("timeline", "Reader latency", &timelines, &markers);
        let svg = write_one(figure);
        let (texts, _) = parse_svg(&svg);
        for want in [
            "Reader latency",
            "during: max per slot",
            "during: mean per slot",
            "idle: max per slot",
            "idle: mean per slot",
            "invalidate_tag returned",
            "time since the window began (ms)",
            "get latency (µs, log scale)",
        ] {
            assert!(has(&texts, want), "{want:?} missing from {texts:?}");
        }
    }

    #[test]
    fn timeline_lines_break_where_there_is_no_data() {
        let polylines = |gap: bool| {
            let mut slots = vec![(0.0, 0.2, 3.0), (1.0, 0.3, 900.0)];
            if gap {
                slots.push((1.5, f64::NAN, f64::NAN));
            }
            slots.push((2.0, 0.2, 2.0));
            let t = [Timeline {
                label: "during".into(),
                slots,
            }];
            let figure = latency_timeline("t", "t", &t, &[]);
            let svg = render_svg(&figure.chart).expect("drawn");
            let (_, counts) = parse_svg(&svg);
            counts.get("polyline").copied().unwrap_or(0)
        };
        // Both lines (max and mean) split in two: two more polylines, nothing drawn across.
        assert_eq!(polylines(true), polylines(false) + 2);
    }

    #[test]
    fn empty_charts_fail_instead_of_drawing_nothing() {
        let figure = hit_ratio_curves("none", &[]);
        assert!(render_svg(&figure.chart).is_err());
        let figure = server_bars("x", "x", "x", &[("a".into(), None, None)]);
        assert!(render_svg(&figure.chart).is_err());
    }

    #[test]
    fn writing_replaces_the_suites_old_charts_only() {
        let dir = TempDir::new("stale");
        let one = hit_ratio_curves("A", &[("lru", 10, 0.5), ("lru", 20, 0.6)]);
        let two = hit_ratio_curves("B/x", &[("lru", 10, 0.5), ("lru", 20, 0.6)]);
        let (w, e) = write_figures(&dir.0, "s", &[one.clone(), two]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w[1].link, "benchmarks/s/hit-ratio-B_x.svg");
        let other = dir.0.join("benchmarks/other/keep.svg");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, "<svg/>").unwrap();
        let (w, e) = write_figures(&dir.0, "s", &[one]);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(w.len(), 1);
        assert!(dir.0.join("benchmarks/s/hit-ratio-A.svg").is_file());
        assert!(!dir.0.join("benchmarks/s/hit-ratio-B_x.svg").exists());
        assert!(other.is_file(), "another suite's chart was removed");
    }

    #[test]
    fn log_axes_are_labelled_at_few_measured_values_or_one_two_five() {
        let sizes = [256.0, 512.0, 1000.0, 2000.0, 512.0];
        assert_eq!(
            log_ticks((200.0, 2500.0), sizes.into_iter()),
            vec![256.0, 512.0, 1000.0, 2000.0]
        );
        let many = (1..100).map(f64::from);
        assert_eq!(
            log_ticks((0.5, 120.0), many),
            vec![0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
    }

    #[test]
    fn tick_labels() {
        assert_eq!(Format::Percent.tick(0.25), "25 %");
        assert_eq!(Format::Percent.tick(0.125), "12.5 %");
        assert_eq!(Format::Number.tick(1500.0), "1.5k");
        assert_eq!(Format::Number.tick(2e6), "2M");
        assert_eq!(Format::Number.tick(0.25), "0.25");
        assert_eq!(Format::Number.tick(0.0), "0");
        assert_eq!(Format::Number.tick(131_072.0), "131k");
        assert_eq!(Format::Count.tick(131_072.0), "131,072");
    }
}
