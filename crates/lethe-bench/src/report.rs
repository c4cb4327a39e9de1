//! Everything the harness outputs: result records, the summary table, and `BENCHMARKS.md`.
//!
//! Results go to stdout as one JSON object per line so scripts can consume them with no
//! parsing of prose; everything meant for humans (progress, tables, warnings) goes to stderr
//! so stdout stays machine-readable. The same table is written into the suite's section of
//! `BENCHMARKS.md` with the context needed to judge it (date, machine, compiler, mode, exact
//! command), because a figure without its conditions cannot be compared with anything.
//!
//! Charts take the same path as tables: a suite hands its report [`Figure`]s (data, never
//! drawings), and when the section is written [`crate::charts`] renders them into
//! `benchmarks/<suite>/` beside `BENCHMARKS.md`; the section links exactly the files written.
//! The file's header, which names every suite, is rewritten from [`crate::suites::ALL`] on each
//! write, so it cannot fall behind the suites that exist.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::charts::{self, Figure};
use crate::systems::System;

/// Root of the cargo workspace this crate lives in.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Options shared by every suite in one invocation.
#[derive(Debug)]
pub struct RunContext {
    pub quick: bool,
    write: bool,
    systems: Vec<System>,
    cases: Option<String>,
    traces: Option<PathBuf>,
    command: String,
}

impl RunContext {
    pub fn new(quick: bool, write: bool, systems: Vec<System>, cases: Option<String>) -> Self {
        Self {
            quick,
            write,
            systems,
            cases,
            traces: None,
            command: reconstruct_command(),
        }
    }

    /// Where the hit-ratio traces are, when not in the default place.
    pub fn with_traces(mut self, dir: Option<PathBuf>) -> Self {
        self.traces = dir;
        self
    }

    /// The directory holding the `arc/` and `lirs/` traces.
    pub fn traces_dir(&self) -> PathBuf {
        self.traces
            .clone()
            .unwrap_or_else(|| workspace_root().join("../shared/traces"))
    }

    /// The systems to run: the `--systems` list if one was given, else the suite's default.
    pub fn systems(&self, default: &[System]) -> Vec<System> {
        if self.systems.is_empty() {
            default.to_vec()
        } else {
            self.systems.clone()
        }
    }

    /// Whether a case survives the `--cases` substring filter.
    pub fn selects_case(&self, case: &str) -> bool {
        self.cases.as_deref().is_none_or(|f| case.contains(f))
    }

    fn filtered(&self) -> bool {
        !self.systems.is_empty() || self.cases.is_some()
    }
}

/// The command line as a user would type it to reproduce this run.
fn reconstruct_command() -> String {
    let args: Vec<String> = std::env::args().skip(1).map(|a| shell_quote(&a)).collect();
    let args = args.join(" ");
    // `cargo run` sets CARGO for the program it runs; otherwise show the binary as invoked.
    if std::env::var_os("CARGO").is_some() {
        let profile = if cfg!(debug_assertions) {
            ""
        } else {
            " --release"
        };
        format!("cargo run{profile} -p lethe-bench -- {args}")
    } else {
        let bin = std::env::args()
            .next()
            .unwrap_or_else(|| "lethe-bench".into());
        format!("{} {args}", shell_quote(&bin))
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./,=@:%+".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// One measured figure; serialised verbatim as a JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub suite: &'static str,
    pub case: String,
    pub system: &'static str,
    pub metric: &'static str,
    pub value: f64,
}

/// Whether bigger or smaller values of a metric are better, which decides the "best" column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    Neither,
}

fn better(metric: &str) -> Better {
    match metric {
        "ops_per_sec" | "hit_ratio" => Better::Higher,
        "bytes_per_entry" | "overhead_bytes_per_entry" => Better::Lower,
        _ => Better::Neither,
    }
}

fn format_value(metric: &str, v: f64) -> String {
    match metric {
        "ops_per_sec" => format!("{:.2} M/s", v / 1e6),
        "hit_ratio" => format!("{:.2} %", v * 100.0),
        "bytes_per_entry" | "overhead_bytes_per_entry" => format!("{v:.1} B"),
        _ if v.fract() == 0.0 => format!("{v:.0}"),
        _ => format!("{v:.3}"),
    }
}

/// Collects one suite's records, prints them as they arrive, and renders them at the end.
#[derive(Debug)]
pub struct SuiteReport {
    suite: &'static str,
    title: &'static str,
    systems: Vec<System>,
    records: Vec<Record>,
    notes: Vec<String>,
    figures: Vec<Figure>,
    mode: String,
    load_at_start: String,
}

impl SuiteReport {
    /// `mode` describes the measurement settings in a phrase (duration, repetitions, ...).
    pub fn new(suite: &'static str, title: &'static str, systems: &[System], mode: String) -> Self {
        Self {
            suite,
            title,
            systems: systems.to_vec(),
            records: Vec::new(),
            notes: Vec::new(),
            figures: Vec::new(),
            mode,
            load_at_start: load_average(),
        }
    }

    /// Record a result and print its JSON line immediately, so partial runs still yield data.
    pub fn push(&mut self, case: &str, system: System, metric: &'static str, value: f64) {
        self.push_named(case, system.name(), metric, value);
    }

    /// [`Self::push`] for a system that is not a [`System`] (e.g. an external server driven by
    /// one suite only). Such systems get no column in the default table; a suite using them
    /// renders its own with [`Self::finish_with_table`].
    pub fn push_named(
        &mut self,
        case: &str,
        system: &'static str,
        metric: &'static str,
        value: f64,
    ) {
        let record = Record {
            suite: self.suite,
            case: case.to_string(),
            system,
            metric,
            value,
        };
        let line = serde_json::to_string(&record).expect("a record always serialises");
        let mut out = io::stdout().lock();
        // A closed stdout (e.g. piped into `head`) should not abort the remaining suites.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        self.records.push(record);
    }

    /// (system, value) pairs recorded so far for one case and metric.
    pub fn results(&self, case: &str, metric: &str) -> Vec<(&'static str, f64)> {
        self.records
            .iter()
            .filter(|r| r.case == case && r.metric == metric)
            .map(|r| (r.system, r.value))
            .collect()
    }

    /// Add a markdown paragraph to the suite's BENCHMARKS.md section.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Add a chart to the suite's section; it is rendered (with [`crate::charts`]) when the
    /// section is written, and only then.
    pub fn figure(&mut self, figure: Figure) {
        self.figures.push(figure);
    }

    /// Print the summary table to stderr and, unless `--no-write`, rewrite BENCHMARKS.md and
    /// the suite's charts.
    pub fn finish(&self, ctx: &RunContext) {
        if self.nothing_recorded() {
            return;
        }
        self.write_out(ctx, &self.table());
    }

    /// [`Self::finish`] with a table the suite rendered itself (markdown) instead of the
    /// default one-column-per-system table.
    pub fn finish_with_table(&self, ctx: &RunContext, table: &str) {
        if self.nothing_recorded() {
            return;
        }
        self.write_out(ctx, table);
    }

    fn nothing_recorded(&self) -> bool {
        if self.records.is_empty() {
            // Everything was filtered out; an empty section would only erase real results.
            say!(
                "[{}] no cases selected; BENCHMARKS.md left alone",
                self.suite
            );
        }
        self.records.is_empty()
    }

    fn write_out(&self, ctx: &RunContext, table: &str) {
        say!("\n== {} ==\n{table}", self.title);
        if !ctx.write {
            return;
        }
        let root = workspace_root();
        let root = root.canonicalize().unwrap_or(root);
        let path = root.join("BENCHMARKS.md");
        match self.publish(ctx, table, &root) {
            Ok(charts) => say!(
                "wrote the {} section of {}{}",
                self.suite,
                path.display(),
                if charts > 0 {
                    format!(
                        " and {charts} chart(s) in {}",
                        root.join("benchmarks").join(self.suite).display()
                    )
                } else {
                    String::new()
                }
            ),
            Err(e) => say!("error: could not write {}: {e}", path.display()),
        }
    }

    /// Writes the charts into `<root>/benchmarks/<suite>/`, then the section, linking them, into
    /// `<root>/BENCHMARKS.md`: links are only made to files just written. Returns the number of
    /// charts written.
    fn publish(&self, ctx: &RunContext, table: &str, root: &Path) -> io::Result<usize> {
        // A suite with no charts this run still loses its old ones (unlinked from now on); a
        // suite that never draws gets no folder.
        let has_folder = root.join("benchmarks").join(self.suite).is_dir();
        let (written, errors) = if self.figures.is_empty() && !has_folder {
            (Vec::new(), Vec::new())
        } else {
            charts::write_figures(root, self.suite, &self.figures)
        };
        for e in &errors {
            say!("[{}] chart not written: {e}", self.suite);
        }
        let mut body = self.section(ctx, table);
        if !written.is_empty() || !errors.is_empty() {
            body.push_str("\nCharts (SVG, drawn by the same run from the results above):\n");
            for w in &written {
                let _ = write!(body, "\n![{}]({})\n", w.caption, w.link);
            }
            for e in &errors {
                let _ = write!(body, "\n**Chart not drawn:** {e}\n");
            }
        }
        write_section(&root.join("BENCHMARKS.md"), self.suite, &body)?;
        Ok(written.len())
    }

    /// Markdown table: one row per (case, metric), one column per system, then lethe's ratio
    /// to each other system and the best system when the metric has a direction.
    fn table(&self) -> String {
        let mut rows: Vec<(&str, &'static str)> = Vec::new();
        for r in &self.records {
            if !rows.contains(&(r.case.as_str(), r.metric)) {
                rows.push((r.case.as_str(), r.metric));
            }
        }
        let several_metrics = rows.iter().any(|&(_, m)| m != rows[0].1);
        let lethe_present = self.systems.contains(&System::Lethe);
        let others: Vec<System> = if lethe_present {
            self.systems
                .iter()
                .copied()
                .filter(|&s| s != System::Lethe)
                .collect()
        } else {
            Vec::new()
        };

        let mut head = vec!["case".to_string()];
        if several_metrics {
            head.push("metric".into());
        }
        head.extend(self.systems.iter().map(|s| s.name().to_string()));
        head.extend(others.iter().map(|s| format!("lethe/{}", s.name())));
        head.push("best".into());

        let mut t = String::new();
        let _ = writeln!(t, "| {} |", head.join(" | "));
        let _ = writeln!(t, "|{}", "---|".repeat(head.len()));
        for &(case, metric) in &rows {
            let value = |s: System| {
                self.records
                    .iter()
                    .find(|r| r.case == case && r.metric == metric && r.system == s.name())
                    .map(|r| r.value)
            };
            let mut cells = vec![case.to_string()];
            if several_metrics {
                cells.push(metric.to_string());
            }
            for &s in &self.systems {
                cells.push(value(s).map_or("–".into(), |v| format_value(metric, v)));
            }
            for &s in &others {
                cells.push(match (value(System::Lethe), value(s)) {
                    // A ratio of counts with no better direction (e.g. `len`) is just noise.
                    (Some(l), Some(o)) if o != 0.0 && better(metric) != Better::Neither => {
                        format!("{:.2}×", l / o)
                    }
                    _ => "–".into(),
                });
            }
            let present: Vec<(System, f64)> = self
                .systems
                .iter()
                .filter_map(|&s| value(s).map(|v| (s, v)))
                .collect();
            cells.push(best(metric, &present));
            let _ = writeln!(t, "| {} |", cells.join(" | "));
        }
        t
    }

    fn section(&self, ctx: &RunContext, table: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "## {}\n", self.title);
        let _ = writeln!(s, "- **Date:** {}", utc_now());
        let _ = writeln!(s, "- **Machine:** {}", machine_description());
        let _ = writeln!(s, "- **Compiler:** {}", rustc_version());
        let quick = if ctx.quick {
            "**quick** (`--quick`)"
        } else {
            "full"
        };
        let _ = writeln!(s, "- **Mode:** {quick}: {}", self.mode);
        let _ = writeln!(
            s,
            "- **Load average when the suite started:** {} (other work on the machine skews \
             timings)",
            self.load_at_start
        );
        if ctx.filtered() {
            let _ = writeln!(
                s,
                "- **Filtered:** only some systems or cases were run; see the command"
            );
        }
        let _ = writeln!(s, "- **Command:** `{}`\n", ctx.command);
        for n in &self.notes {
            let _ = writeln!(s, "{n}\n");
        }
        let _ = write!(s, "{table}");
        s
    }
}

/// The best system(s) for a row, or "tie" when all are equal.
fn best(metric: &str, present: &[(System, f64)]) -> String {
    let pick = match better(metric) {
        Better::Higher => present
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max),
        Better::Lower => present.iter().map(|p| p.1).fold(f64::INFINITY, f64::min),
        Better::Neither => return "–".into(),
    };
    if present.len() < 2 {
        return "–".into();
    }
    let winners: Vec<&str> = present
        .iter()
        .filter(|p| p.1 == pick)
        .map(|p| p.0.name())
        .collect();
    if winners.len() == present.len() {
        "tie".into()
    } else {
        winners.join(" = ")
    }
}

/// The section of `BENCHMARKS.md` before the suites' sections; never a suite's name.
const HEADER_SECTION: &str = "header";
/// The title the file has always started with (also before its header had markers).
const TITLE: &str = "# Lethe benchmarks";

/// The file's header, naming every suite in [`crate::suites::ALL`].
fn header() -> String {
    let names: Vec<String> = crate::suites::names()
        .iter()
        .map(|n| format!("`{n}`"))
        .collect();
    format!(
        "{TITLE}

Written by lethe-bench; do not edit figures by hand. Regenerate with
`cargo run --release -p lethe-bench -- all` from the workspace root, or one suite at a time:
{}.
`--quick` gives a fast, noisier run and is labelled as such. Each suite rewrites only its own
section, between its `lethe-bench:<suite>` markers, and its charts, the SVG files in
`benchmarks/<suite>/` beside this file that its section links; text outside those markers is
preserved.
",
        names.join(", ")
    )
}

/// `existing` with its header replaced by [`header`]: between the header's markers when it has
/// them; otherwise (a file written before the header had markers) the text from the title to
/// the first section, when the file starts with the title; otherwise the header goes first.
fn refresh_header(existing: &str) -> String {
    let (begin, end) = markers(HEADER_SECTION);
    let block = format!("{begin}\n{}\n{end}", header().trim_end());
    if let Some(b) = existing.find(&begin) {
        if let Some(e) = existing[b..].find(&end) {
            let e = b + e + end.len();
            return format!("{}{block}{}", &existing[..b], &existing[e..]);
        }
    }
    if existing.starts_with(TITLE) {
        let rest = existing
            .find("<!-- lethe-bench:")
            .map_or("", |first| &existing[first..]);
        return format!("{block}\n\n{rest}");
    }
    format!("{block}\n\n{existing}")
}

fn markers(suite: &str) -> (String, String) {
    (
        format!("<!-- lethe-bench:{suite}:begin -->"),
        format!("<!-- lethe-bench:{suite}:end -->"),
    )
}

/// Replace (or append) the marked section for `suite` in `existing`, leaving the rest intact.
fn splice(existing: &str, suite: &str, body: &str) -> String {
    let (begin, end) = markers(suite);
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    // Plain `if let` nesting rather than a let-chain: the workspace's MSRV (1.85) predates them.
    if let Some(b) = existing.find(&begin) {
        if let Some(e) = existing[b..].find(&end) {
            let e = b + e + end.len();
            return format!("{}{block}{}", &existing[..b], &existing[e..]);
        }
    }
    let mut out = existing.trim_end().to_string();
    out.push_str("\n\n");
    out.push_str(&block);
    out.push('\n');
    out
}

fn write_section(path: &Path, suite: &str, body: &str) -> io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let updated = splice(&refresh_header(&existing), suite, body);
    // Write-then-rename so an interrupted run never leaves a truncated file behind.
    let tmp = path.with_extension("md.tmp");
    std::fs::write(&tmp, updated)?;
    std::fs::rename(&tmp, path)
}

/// Current time as `YYYY-MM-DD HH:MM UTC`, computed from the Unix clock.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format_utc(secs)
}

fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Proleptic Gregorian date for a count of days since 1970-01-01. Works in 400-year eras
/// (146,097 days each), counting years from March so the leap day falls at a year's end.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // year of era
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The 1, 5 and 15 minute load averages, as the kernel reports them.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" / "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `n` with comma thousands separators, for prose.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn rustc_version() -> String {
    Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown (`rustc --version` failed)".into())
}

fn machine_description() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("unknown memory".into(), |kb| {
            format!("{:.1} GiB RAM", kb as f64 / (1024.0 * 1024.0))
        });
    format!("`{host}`, {cpu}, {cores} cores available, {mem}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_utc(1_709_251_199), "2024-02-29 23:59 UTC");
        assert_eq!(format_utc(4_107_542_400), "2100-03-01 00:00 UTC");
    }

    #[test]
    fn splice_appends_then_replaces_preserving_other_text() {
        let header = header();
        let a = splice(&header, "memory", "## Memory\nold");
        assert!(a.starts_with(header.trim_end()));
        let b = splice(&a, "throughput", "## Throughput\nx");
        let c = format!("{b}\nhand-written footer\n");
        let d = splice(&c, "memory", "## Memory\nnew");
        assert!(d.contains("## Memory\nnew") && !d.contains("old"));
        assert!(d.contains("## Throughput\nx"));
        assert!(d.ends_with("hand-written footer\n"));
        assert!(d.find("lethe-bench:memory").unwrap() < d.find("lethe-bench:throughput").unwrap());
    }

    /// The old header, as files written before it had markers start.
    const OLD_HEADER: &str = "# Lethe benchmarks

Written by lethe-bench; do not edit figures by hand. Regenerate with
`cargo run --release -p lethe-bench -- all` from the workspace root, or one suite at a time
(`throughput`, `hitratio`, `memory`, `invalidation`, `server`); `--quick` gives a fast,
noisier run and is labelled as such. Each suite rewrites only its own section, between its
`lethe-bench:<suite>` markers; text outside those markers is preserved.
";

    #[test]
    fn header_names_every_suite_and_replaces_the_old_one() {
        let old = splice(OLD_HEADER, "bus", "## Bus\nfigures");
        let new = refresh_header(&old);
        for name in crate::suites::names() {
            assert!(
                new.contains(&format!("`{name}`")),
                "the header does not name {name}:\n{new}"
            );
        }
        assert!(new.starts_with("<!-- lethe-bench:header:begin -->\n# Lethe benchmarks"));
        assert_eq!(new.matches("# Lethe benchmarks").count(), 1, "{new}");
        assert!(!new.contains("(`throughput`, `hitratio`, `memory`, `invalidation`, `server`)"));
        assert!(
            new.contains("## Bus\nfigures"),
            "a section was lost:\n{new}"
        );
        assert_eq!(
            refresh_header(&new),
            new,
            "refreshing twice changes nothing"
        );
        let fresh = refresh_header("");
        assert!(fresh.contains("`bus`") && fresh.contains("`cdc`"));
        let foreign = refresh_header("# Someone else's notes\n");
        assert!(foreign.ends_with("# Someone else's notes\n"));
    }

    /// The targets of the markdown image links in `md`.
    fn links(md: &str) -> Vec<String> {
        md.match_indices("](")
            .filter_map(|(i, _)| {
                let rest = &md[i + 2..];
                rest.find(')').map(|e| rest[..e].to_string())
            })
            .collect()
    }

    #[test]
    fn published_sections_link_charts_that_exist() {
        let dir = crate::charts::tests::TempDir::new("publish");
        let ctx = RunContext::new(false, true, Vec::new(), None);
        let mut report = SuiteReport::new("hitratio", "Hit ratio", &[System::Lethe], "m".into());
        report.push("OLTP@256", System::Lethe, "hit_ratio", 0.3);
        report.push("OLTP@512", System::Lethe, "hit_ratio", 0.4);
        report.figure(crate::charts::hit_ratio_curves(
            "OLTP",
            &[("lethe", 256, 0.3), ("lethe", 512, 0.4)],
        ));
        // A figure with no data cannot be drawn: reported in the section, not linked.
        report.figure(crate::charts::hit_ratio_curves("empty", &[]));
        let table = report.table();
        assert_eq!(report.publish(&ctx, &table, &dir.0).expect("publish"), 1);
        let md = std::fs::read_to_string(dir.0.join("BENCHMARKS.md")).expect("written");
        let targets = links(&md);
        assert_eq!(
            targets,
            vec!["benchmarks/hitratio/hit-ratio-OLTP.svg".to_string()]
        );
        for t in &targets {
            let svg = std::fs::read_to_string(dir.0.join(t))
                .unwrap_or_else(|e| panic!("{t} is linked but cannot be read: {e}"));
            let (texts, _) = crate::charts::tests::parse_svg(&svg);
            assert!(texts.iter().any(|t| t.contains("OLTP")));
        }
        assert!(md.contains("![Hit ratio vs cache size: OLTP]("));
        assert!(md.contains("**Chart not drawn:** Hit ratio vs cache size: empty"));
        assert!(md.contains("| OLTP@256 |"), "the table is there too");

        // A second run with fewer charts leaves no stale file and no dead link.
        let mut again = SuiteReport::new("hitratio", "Hit ratio", &[System::Lethe], "m".into());
        again.push("x", System::Lethe, "hit_ratio", 0.5);
        again.figure(crate::charts::hit_ratio_curves(
            "P3",
            &[("lethe", 8192, 0.5)],
        ));
        assert_eq!(
            again
                .publish(&ctx, &again.table(), &dir.0)
                .expect("publish"),
            1
        );
        let md = std::fs::read_to_string(dir.0.join("BENCHMARKS.md")).expect("written");
        assert_eq!(
            links(&md),
            vec!["benchmarks/hitratio/hit-ratio-P3.svg".to_string()]
        );
        assert!(
            !dir.0
                .join("benchmarks/hitratio/hit-ratio-OLTP.svg")
                .exists()
        );
        assert!(dir.0.join("benchmarks/hitratio/hit-ratio-P3.svg").is_file());

        // A run that draws nothing links nothing and leaves nothing behind.
        let mut bare = SuiteReport::new("hitratio", "Hit ratio", &[System::Lethe], "m".into());
        bare.push("y", System::Lethe, "hit_ratio", 0.5);
        assert_eq!(
            bare.publish(&ctx, &bare.table(), &dir.0).expect("publish"),
            0
        );
        let md = std::fs::read_to_string(dir.0.join("BENCHMARKS.md")).expect("written");
        assert!(links(&md).is_empty(), "{md}");
        assert!(!dir.0.join("benchmarks/hitratio/hit-ratio-P3.svg").exists());
        // A suite that never draws gets no folder.
        let mut memory = SuiteReport::new("memory", "Memory", &[System::Lethe], "m".into());
        memory.push("z", System::Lethe, "len", 1.0);
        memory
            .publish(&ctx, &memory.table(), &dir.0)
            .expect("publish");
        assert!(!dir.0.join("benchmarks/memory").exists());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_672_123), "12,672,123");
    }

    #[test]
    fn quoting() {
        assert_eq!(shell_quote("--systems=lethe,moka"), "--systems=lethe,moka");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
