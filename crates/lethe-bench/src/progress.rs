//! Progress bars for long runs, and the one way the harness prints human lines while they are
//! drawn.
//!
//! A full run takes tens of minutes, so on a terminal each suite gets a line (its name, its
//! place in the run, elapsed time) and suites that know how many steps they have add a bar for
//! them (the current case, steps done, an estimate of the time left). Bars are drawn only when
//! stderr is a terminal and never in `--quick` runs: CI runs `--quick` with stderr captured,
//! and a log file full of redraws helps nobody. Without bars every call here is a no-op and
//! [`say!`] is `eprintln!`.
//!
//! While bars are drawn, any other write to stderr would land in the middle of them and leave
//! half-erased lines behind, so every human line goes through [`say!`], which lifts the bars,
//! prints the line above them and draws them again. The terminal is one per process, so the
//! bars' coordinator is too: it is set once by [`init`] at start-up and only ever drawn to.
//! It carries no results; those flow from the suites to [`crate::report`] alone.

use std::fmt;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `Some` when bars are drawn; unset (as in tests) means no bars.
static BARS: OnceLock<Option<MultiProgress>> = OnceLock::new();

/// Decides once whether this process draws bars: when `wanted` (not `--quick`) and stderr is a
/// terminal.
pub fn init(wanted: bool) {
    let bars = (wanted && std::io::stderr().is_terminal())
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let _ = BARS.set(bars);
}

fn bars() -> Option<&'static MultiProgress> {
    BARS.get().and_then(Option::as_ref)
}

/// Prints one line to stderr, above the bars when they are drawn. Use through [`say!`].
pub fn line(args: fmt::Arguments<'_>) {
    match bars() {
        Some(m) => m.suspend(|| eprintln!("{args}")),
        None => eprintln!("{args}"),
    }
}

/// `eprintln!` that keeps the progress bars intact.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::progress::line(format_args!($($arg)*))
    };
}

/// A bar, or nothing when bars are not drawn. Cheap to clone; shared by a suite's threads.
/// Removed from the screen when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Bar(Option<Arc<Shown>>);

/// The drawn bar; clears itself when the last [`Bar`] holding it goes.
#[derive(Debug)]
struct Shown(ProgressBar);

impl Drop for Shown {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

impl Bar {
    /// A bar that draws nothing.
    pub fn hidden() -> Self {
        Bar(None)
    }

    fn shown(bar: ProgressBar) -> Self {
        Bar(Some(Arc::new(Shown(bar))))
    }

    /// Counts `n` more steps done.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.0.inc(n);
        }
    }

    /// What is being done now (e.g. the case name).
    pub fn set_message(&self, message: impl Into<String>) {
        if let Some(b) = &self.0 {
            b.0.set_message(message.into());
        }
    }
}

/// The line of suite `index` (from 0) of `count` in this run: its name and elapsed time.
pub fn suite(name: &str, index: usize, count: usize) -> Bar {
    let Some(m) = bars() else {
        return Bar::hidden();
    };
    let bar = m.add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{prefix}] {wide_msg} {elapsed_precise}")
            .expect("a valid template"),
    );
    bar.set_prefix(format!("{}/{count}", index + 1));
    bar.set_message(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    Bar::shown(bar)
}

/// A bar of `total` steps for one suite's cases, under its suite line.
pub fn steps(suite: &str, total: u64) -> Bar {
    let Some(m) = bars() else {
        return Bar::hidden();
    };
    let bar = m.add(ProgressBar::new(total));
    bar.set_style(
        ProgressStyle::with_template("  {prefix} {wide_msg} [{bar:30}] {pos}/{len} (eta {eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(suite.to_string());
    bar.enable_steady_tick(Duration::from_millis(500));
    Bar::shown(bar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_init_nothing_is_drawn() {
        // Tests never call `init`, as `--quick` runs and piped runs never draw.
        assert!(bars().is_none());
        let b = steps("s", 10);
        assert!(b.0.is_none());
        b.inc(3);
        b.set_message("case");
        assert!(suite("s", 0, 1).0.is_none());
        say!("a line to stderr: {}", 42);
    }
}
