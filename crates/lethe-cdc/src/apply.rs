//! How invalidations reach the targets, the same in replication mode (`runner`) and trigger
//! mode (`trigger`): each batch and each flush goes to every target in turn, retried with
//! exponential backoff while a target fails, until it succeeds or shutdown; a flush is counted
//! once every target took it; and items no target can apply (empty names, tags with an empty
//! level) are dropped and counted before they get that far. The explicit-invalidation body
//! both modes accept (`{"keys": [...], "tags": [...], ...}`) is turned into items here too,
//! and [`run_sessions`] runs either mode's sessions one after the other, reconnecting with
//! the same backoff.

use crate::config::CdcConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::{CdcMetrics, FlushReason};
use crate::target::{Batch, BoxFuture, Target};
use lethe::Invalidation;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tracing::{error, warn};

/// The shutdown signal, polled from several places; it is never polled again once it fired,
/// because everything returns then.
pub(crate) type Stop<'a> = Pin<&'a mut (dyn Future<Output = ()> + Send + 'a)>;

/// Exponential backoff with jitter, bounded by the configuration (`reconnect_min_ms`,
/// `reconnect_max_ms`): between sessions, and (through [`Backoff::fresh`]) between the
/// attempts of a target operation.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub(crate) fn new(config: &CdcConfig) -> Backoff {
        let min = Duration::from_millis(config.reconnect_min_ms);
        Backoff {
            min,
            max: Duration::from_millis(config.reconnect_max_ms),
            current: min,
        }
    }

    /// A new sequence with the same bounds (for a retry loop inside a session).
    pub(crate) fn fresh(&self) -> Backoff {
        Backoff {
            current: self.min,
            ..self.clone()
        }
    }

    pub(crate) fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next delay: the current step with "equal jitter" (half fixed, half random), so
    /// many runners restarted together do not reconnect in lockstep, and none retries at once.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        let half = step / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// A mode's connection to PostgreSQL, run one session at a time by [`run_sessions`].
pub(crate) trait Sessions {
    /// Logged when a setup error stops the run before any session got going.
    const CANNOT_START: &'static str;
    /// Logged when a session ended with an error and the next one is about to be tried.
    const ENDED: &'static str;

    /// Whether a session got going in this process: a failure after that is retried, while a
    /// setup problem before it stops the run.
    fn started(&self) -> bool;

    /// The reconnect bounds are the configuration's.
    fn session_config(&self) -> &CdcConfig;

    /// Connection state and reconnects are counted here.
    fn session_metrics(&self) -> &CdcMetrics;

    /// One session, until shutdown (`Ok`) or an error; `backoff` is reset once it is healthy.
    fn run_session(
        &mut self,
        targets: &[Box<dyn Target>],
        stop: &mut Stop<'_>,
        backoff: &mut Backoff,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// Runs `mode`'s sessions until `shutdown` completes: `Ok` on shutdown, or the first error when
/// the setup is wrong at start (not transient, before any session got going); every other
/// failure is logged, counted and followed by a new session after a backoff delay.
pub(crate) async fn run_sessions<S, F>(
    mut mode: S,
    targets: Vec<Box<dyn Target>>,
    shutdown: F,
) -> Result<()>
where
    S: Sessions,
    F: Future + Send,
{
    // Whatever the signal yields (`ctrl_c` gives a `Result`) only its completion matters.
    let mut shutdown = std::pin::pin!(async move {
        shutdown.await;
    });
    let mut stop: Stop<'_> = shutdown.as_mut();
    let mut backoff = Backoff::new(mode.session_config());
    loop {
        let outcome = mode.run_session(&targets, &mut stop, &mut backoff).await;
        mode.session_metrics().set_connected(false);
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Shutdown => return Ok(()),
            Err(e) if !mode.started() && !e.kind().is_transient() => {
                error!(error = %e, "{}", S::CANNOT_START);
                return Err(e);
            }
            Err(e) => {
                let delay = backoff.next_delay();
                warn!(error = %e, retry_in = ?delay, "{}", S::ENDED);
                mode.session_metrics().reconnected();
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = &mut stop => return Ok(()),
                }
            }
        }
    }
}

/// Retries `op` with backoff (a fresh sequence with `backoff`'s bounds) until it succeeds;
/// `Shutdown` if asked to stop meanwhile. Each failure is logged and counted.
pub(crate) async fn retry<F>(
    metrics: &CdcMetrics,
    name: &str,
    stop: &mut Stop<'_>,
    backoff: &Backoff,
    mut op: impl FnMut() -> F,
) -> Result<()>
where
    F: Future<Output = Result<()>>,
{
    let mut attempt = backoff.fresh();
    loop {
        match op().await {
            Ok(()) => return Ok(()),
            Err(e) => {
                metrics.target_retry();
                let delay = attempt.next_delay();
                warn!(target = name, error = %e, retry_in = ?delay, "target failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.as_mut() => {
                        return Err(Error::new(ErrorKind::Shutdown, "stopped while retrying"));
                    }
                }
            }
        }
    }
}

/// Applies `batch` to every target in turn, retrying each until it succeeds or shutdown.
pub(crate) async fn apply_all(
    metrics: &CdcMetrics,
    targets: &[Box<dyn Target>],
    batch: &Batch,
    stop: &mut Stop<'_>,
    backoff: &Backoff,
) -> Result<()> {
    each_target(metrics, targets, stop, backoff, |t| t.apply(batch)).await
}

/// Flushes every target, retrying each until it succeeds or shutdown, then counts the flush.
pub(crate) async fn flush_all(
    metrics: &CdcMetrics,
    targets: &[Box<dyn Target>],
    reason: FlushReason,
    stop: &mut Stop<'_>,
    backoff: &Backoff,
) -> Result<()> {
    each_target(metrics, targets, stop, backoff, |t| t.flush(reason)).await?;
    metrics.flushed(reason);
    Ok(())
}

/// Runs `op` on every target in turn, retrying each until it succeeds or shutdown.
async fn each_target<'t, 'f>(
    metrics: &CdcMetrics,
    targets: &'t [Box<dyn Target>],
    stop: &mut Stop<'_>,
    backoff: &Backoff,
    op: impl Fn(&'t dyn Target) -> BoxFuture<'f, Result<()>>,
) -> Result<()>
where
    't: 'f,
{
    for target in targets {
        retry(
            metrics,
            target.name(),
            stop,
            backoff,
            || op(target.as_ref()),
        )
        .await?;
    }
    Ok(())
}

/// Whether some target can apply `item`; what none could is logged, counted as a rejected
/// message and dropped: empty names (an empty prefix would match every key) and tags with an
/// empty level.
pub(crate) fn valid(metrics: &CdcMetrics, item: &Invalidation<String>) -> bool {
    let ok = match item {
        Invalidation::Key(k) => !k.is_empty(),
        Invalidation::Tag(t) => !t
            .split(lethe::tag_registry::TAG_SEPARATOR)
            .any(str::is_empty),
        Invalidation::Prefix(p) | Invalidation::Glob(p) => !p.is_empty(),
        // Version floors: rules and messages never produce them; a target applies them as the
        // cache does.
        _ => true,
    };
    if !ok {
        warn!(target = ?item, "ignoring an invalidation no target can apply");
        metrics.rejected_message();
    }
    ok
}

/// The key, tag, prefix or glob an invalidation names, as text (for logs and tests); rendered
/// from rules and messages, so valid UTF-8 unless a message escaped bytes into it.
pub(crate) fn text(item: &Invalidation<String>) -> String {
    match item {
        Invalidation::Key(s) | Invalidation::Tag(s) | Invalidation::TagFloor(s, _) => s.clone(),
        Invalidation::Prefix(b) | Invalidation::Glob(b) | Invalidation::PrefixFloor(b, _) => {
            String::from_utf8_lossy(b).into_owned()
        }
        other => format!("{other:?}"),
    }
}

/// The body of an explicit invalidation (`pg_logical_emit_message` in replication mode,
/// `pg_notify` without `table` in trigger mode).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Explicit {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    globs: Vec<String>,
}

impl Explicit {
    /// Keys, tags, prefixes and globs, in that order, without what no target can apply.
    pub(crate) fn items(self, metrics: &CdcMetrics) -> Vec<Invalidation<String>> {
        let items = self
            .keys
            .into_iter()
            .map(Invalidation::Key)
            .chain(self.tags.into_iter().map(Invalidation::Tag))
            .chain(
                self.prefixes
                    .into_iter()
                    .map(|p| Invalidation::Prefix(p.into_bytes())),
            )
            .chain(
                self.globs
                    .into_iter()
                    .map(|g| Invalidation::Glob(g.into_bytes())),
            );
        items.filter(|t| valid(metrics, t)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_bound_with_jitter() {
        let config = CdcConfig::new("host=x");
        let mut b = Backoff::new(&config);
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = b.next_delay();
            assert!(last <= Duration::from_millis(config.reconnect_max_ms));
        }
        assert!(last >= Duration::from_millis(config.reconnect_max_ms / 2));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(config.reconnect_min_ms));
        // A fresh sequence starts again from the lower bound, whatever the original's step.
        let mut fresh = Backoff::new(&config);
        for _ in 0..20 {
            fresh.next_delay();
        }
        assert!(fresh.fresh().next_delay() <= Duration::from_millis(config.reconnect_min_ms));
    }

    #[test]
    fn unappliable_items_are_dropped_and_counted() {
        let metrics = CdcMetrics::new();
        let explicit: Explicit = serde_json::from_str(
            r#"{"keys":["home",""],"tags":["category:5","a::b"],"prefixes":[""],"globs":["g*"]}"#,
        )
        .unwrap();
        assert_eq!(
            explicit.items(&metrics),
            [
                Invalidation::Key("home".into()),
                Invalidation::Tag("category:5".into()),
                Invalidation::Glob(b"g*".to_vec()),
            ]
        );
        assert_eq!(metrics.snapshot().rejected_messages, 3);
    }
}
