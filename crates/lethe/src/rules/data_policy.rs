//! Named per-data-type policies: how long a kind of data lives and what it is tagged with.
//!
//! This is the write side of the seeds' hybrid strategy. Rules decide what an event
//! invalidates; a policy decides, at insert time, the TTL an entry of that kind gets and the
//! tags and dependencies it carries, so that every writer of `user` entries tags them alike and
//! the rules' `user:{id}` tag reaches all of them.

use crate::template::{RenderError, Template};
use std::time::Duration;

/// Recompute time assumed for early refresh when a policy does not give one.
pub const DEFAULT_RECOMPUTE: Duration = Duration::from_millis(100);

/// A policy's TTL strategy, in the loader's terms; the engine maps it onto its own TTL type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyTtl {
    /// No expiry: only invalidation, replacement or eviction removes the entry.
    Never,
    /// Expires a fixed time after the write.
    Fixed(Duration),
    /// Expires when not read for this long.
    Sliding(Duration),
    /// Starts at `base` and adapts to reads and updates, within `[min, max]`.
    Adaptive {
        /// The TTL of an entry with no history (`ttl` in the file).
        base: Duration,
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
}

/// What an insert naming this policy gets.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct DataPolicy {
    /// The policy's name (`user` for `[policy.user]`).
    pub name: String,
    /// The TTL strategy; `None` leaves the cache's default in place.
    pub ttl: Option<PolicyTtl>,
    /// Jitter fraction in `[0, 1)`, if set.
    pub jitter: Option<f64>,
    /// XFetch eagerness for probabilistic early refresh, if set (1.0 is the usual choice).
    pub early_refresh_beta: Option<f64>,
    /// Expected time to recompute a value, for early refresh (`recompute`; default
    /// [`DEFAULT_RECOMPUTE`]).
    pub early_refresh_recompute: Option<Duration>,
    pub(crate) tags: Vec<Template>,
    pub(crate) depends_on: Vec<Template>,
}

impl DataPolicy {
    /// A policy with no TTL, tags or dependencies; the loader validates what it builds, this
    /// constructor trusts the caller.
    pub fn new(name: impl Into<String>) -> Self {
        DataPolicy {
            name: name.into(),
            ttl: None,
            jitter: None,
            early_refresh_beta: None,
            early_refresh_recompute: None,
            tags: Vec::new(),
            depends_on: Vec::new(),
        }
    }

    /// Adds a tag template.
    pub fn with_tag(mut self, tag: Template) -> Self {
        self.tags.push(tag);
        self
    }

    /// Adds a dependency template (a key the entry depends on).
    pub fn with_dependency(mut self, key: Template) -> Self {
        self.depends_on.push(key);
        self
    }

    /// The tag templates, as loaded.
    pub fn tags(&self) -> &[Template] {
        &self.tags
    }

    /// The dependency templates, as loaded.
    pub fn depends_on(&self) -> &[Template] {
        &self.depends_on
    }

    /// The entry's tags, from the inserted value's fields (`lookup` gets the placeholder as
    /// written, and returns `None` for missing or null). Deduplicated, in template order; a tag
    /// that renders empty is dropped.
    ///
    /// Unlike a rule, which silently skips a target it cannot build, a policy fails here: an
    /// entry stored without one of its tags could never be invalidated through that tag, so
    /// the insert should not go ahead quietly.
    pub fn render_tags(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, RenderError> {
        render_all(&self.tags, &lookup)
    }

    /// The keys the entry depends on, rendered and deduplicated as [`DataPolicy::render_tags`]
    /// does, and failing for the same reason.
    pub fn render_dependencies(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, RenderError> {
        render_all(&self.depends_on, &lookup)
    }
}

fn render_all(
    templates: &[Template],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, RenderError> {
    let mut out: Vec<String> = Vec::with_capacity(templates.len());
    for t in templates {
        let s = t.try_render(lookup)?;
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}
