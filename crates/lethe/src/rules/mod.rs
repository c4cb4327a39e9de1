//! Declarative invalidation rules and per-data-type policies, loaded from TOML.
//!
//! A rule says: when an event about this entity, with one of these operations and meeting these
//! conditions, arrives, invalidate these keys, tags, prefixes and globs, each written as a
//! [`Template`] over the event's fields. [`RuleSet::evaluate`] turns one
//! [`Event`] into the [`Invalidation`]s of every matching rule (keys as `String`s),
//! deduplicated, in rule order: the engine's own type, applied as is by [`Cache::invalidate`](crate::Cache::invalidate). A policy
//! ([`DataPolicy`]) is the write side: a named TTL strategy plus the tags and dependencies an
//! entry of that kind of data gets, so every writer of `user` entries tags them alike and the
//! rules' `user:{id}` tag reaches all of them.
//!
//! Loading is all or nothing: a file with any problem returns a [`RuleError`] naming the line
//! (and column) of the offending value and what is wrong with it, and no [`RuleSet`] exists, so
//! a bad edit to a live rule file can be refused while the previous set keeps running. Unknown
//! keys are errors, not ignored, because a misspelt `prefix = [...]` silently ignored is an
//! invalidation that never happens.
//!
//! # Format
//!
//! ```
//! use lethe::rules::{PolicyTtl, RuleErrorKind, RuleSet};
//! use lethe::{event::Event, Invalidation, event::Operation};
//! use std::collections::HashMap;
//! use std::time::Duration;
//!
//! let rules = RuleSet::from_toml(r#"
//! ## A changed or deleted user: their profile, everything tagged with them, their sessions.
//! [[rule]]
//! name = "user profile"
//! entity = "users"
//! operations = ["update", "delete"]
//! keys = ["user:{id}:profile"]
//! tags = ["user:{id}"]
//! prefixes = ["session:{id}:"]
//!
//! ## A user moving department changes both departments' member lists. On a create there is
//! ## no old department, so the first key is simply not produced.
//! [[rule]]
//! name = "department members"
//! entity = "users"
//! changed = ["department_id"]
//! keys = ["department:{old.department_id}:members", "department:{new.department_id}:members"]
//!
//! ## Only adult, active users appear in feeds.
//! [[rule]]
//! name = "feeds"
//! entity = "users"
//! when = { "new.status" = "active", "new.age" = { ge = 18 } }
//! globs = ["feed:*:{id}"]
//!
//! [policy.user]
//! ttl = "5m"
//! strategy = "adaptive"
//! min = "30s"
//! max = "1h"
//! jitter = 0.1
//! early_refresh = 1.0
//! tags = ["user:{id}", "org:{org_id}"]
//! depends_on = ["org:{org_id}"]
//! "#)?;
//!
//! let moved = Event::new("users", Operation::Update)
//!     .id("42")
//!     .with_old("department_id", 7)
//!     .with_new("department_id", 9)
//!     .with_new("status", "active")
//!     .with_new("age", 30);
//! assert_eq!(
//!     rules.evaluate(&moved),
//!     [
//!         Invalidation::Key("user:42:profile".into()),
//!         Invalidation::Tag("user:42".into()),
//!         Invalidation::Prefix(b"session:42:".to_vec()),
//!         Invalidation::Key("department:7:members".into()),
//!         Invalidation::Key("department:9:members".into()),
//!         Invalidation::Glob(b"feed:*:42".to_vec()),
//!     ]
//! );
//!
//! let created = Event::new("users", Operation::Create).id("43").with_new("department_id", 9);
//! assert_eq!(rules.evaluate(&created), [Invalidation::Key("department:9:members".into())]);
//!
//! // The insert side: a `user` entry's TTL, tags and dependencies.
//! let user = rules.policy("user").unwrap();
//! let minutes = |m: u64| Duration::from_secs(60 * m);
//! assert_eq!(
//!     user.ttl,
//!     Some(PolicyTtl::Adaptive { base: minutes(5), min: Duration::from_secs(30), max: minutes(60) })
//! );
//! let fields = HashMap::from([("id", "42"), ("org_id", "7")]);
//! let lookup = |f: &str| fields.get(f).map(|v| v.to_string());
//! assert_eq!(user.render_tags(lookup)?, ["user:42", "org:7"]);
//! assert_eq!(user.render_dependencies(lookup)?, ["org:7"]);
//!
//! // A bad file loads nothing, and says where and why.
//! let err = RuleSet::from_toml(
//!     "[[rule]]\nname = \"x\"\nentity = \"users\"\noperations = [\"upsert\"]\nkeys = [\"k\"]\n",
//! )
//! .unwrap_err();
//! assert_eq!((err.kind(), err.line()), (RuleErrorKind::BadOperation, Some(4)));
//! assert!(err.to_string().starts_with("line 4: unknown operation `upsert` in rule `x`"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## `[[rule]]`
//!
//! | key | required | meaning |
//! |---|---|---|
//! | `name` | yes | unique; named in errors and by [`RuleSet::matching_rules`] |
//! | `entity` | yes | the event's entity type, exactly; `"*"` matches every entity |
//! | `operations` | no | any of `create` (or `insert`), `update`, `delete`, `bulk` (or `truncate`), `schema`; absent or empty means all |
//! | `when` | no | field conditions, all of which must hold (below) |
//! | `changed` | no | bare field names; at least one must have changed |
//! | `keys`, `tags`, `prefixes`, `globs` | at least one | templates for what to invalidate |
//!
//! A `when` entry maps a field path (`new.x`, `old.x`, a bare `x` meaning new-else-old, or
//! `id`) to a value, meaning equality, or to a table of comparisons, all of which must hold:
//! `eq`, `ne` (any scalar), `gt`, `ge`, `lt`, `le` (numbers), `in` (a list of scalars), and
//! `present` (`true` or `false`). Numbers compare by value across integers, floats and numeric
//! text. Quote a path with a dot (`"new.status" = ...`): unquoted, TOML reads `new.status` as
//! a table `new` (the loader says so rather than misreading it). A field the event does not carry, or carries as null, fails every comparison (`ne`
//! included) except `present = false`: rules fire on what the source said, not on guesses.
//! `changed` leans the other way, because a missed invalidation costs more than a spurious
//! one: a field counts as changed unless the event carries both its old and new values and they
//! are equal (so on a create every carried field has changed).
//!
//! A target whose template needs a field the event does not carry (or carries as null) is
//! skipped, as is one that renders to the empty string (an empty prefix would match every
//! key). In globs, the values substituted for placeholders are escaped (`\*`, `\?`, `\[`, `\]`,
//! `\\`, Redis `KEYS` syntax) so a `*` in a user's data matches only a `*`.
//!
//! ## `[policy.NAME]`
//!
//! | key | meaning |
//! |---|---|
//! | `ttl` | a duration: whole numbers with units `ms`, `s`, `m`, `h`, `d`, summed (`"1h30m"`) |
//! | `strategy` | `fixed` (the default when `ttl` is given), `sliding`, `adaptive`, or `never` (no `ttl`) |
//! | `min`, `max` | adaptive bounds, both required for `adaptive` and rejected otherwise; `min <= ttl <= max` |
//! | `jitter` | fraction in `[0, 1)` |
//! | `early_refresh` | XFetch eagerness `beta`, positive (1.0 is usual) |
//! | `recompute` | expected time to recompute a value, for `early_refresh` (default 100 ms) |
//! | `tags`, `depends_on` | templates over the inserted value's fields |
//!
//! A policy without `ttl` or `strategy` leaves the cache's default TTL in place. A file may
//! hold only policies, only rules, or both.
//!
//! # Applying them
//! [`crate::Cache::apply_event`] evaluates a rule set against an event and applies every
//! target (in rule order); [`crate::CacheBuilder::data_policies`] gives a cache its policies,
//! and [`crate::Cache::insert_with_policy`] names one on insert.

mod apply;
mod condition;
mod data_policy;
mod error;
mod load;

pub use condition::Condition;
pub use data_policy::{DEFAULT_RECOMPUTE, DataPolicy, PolicyTtl};
pub use error::{RuleError, RuleErrorKind};

use crate::event::{Event, Operation};
use crate::invalidate::Invalidation;
use crate::template::{Escape, Template};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// One `[[rule]]`: which events it matches and what they invalidate.
#[derive(Clone, Debug)]
pub struct Rule {
    name: String,
    entity: String,
    /// Bit set of [`Operation::bit`]; zero means every operation.
    operations: u8,
    conditions: Vec<Condition>,
    changed: Vec<String>,
    keys: Vec<Template>,
    tags: Vec<Template>,
    prefixes: Vec<Template>,
    globs: Vec<Template>,
    line: usize,
}

impl Rule {
    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entity type it matches (`*` for all).
    pub fn entity(&self) -> &str {
        &self.entity
    }

    /// The operations it matches, in [`Operation::ALL`] order (all of them when the file
    /// named none).
    pub fn operations(&self) -> impl Iterator<Item = Operation> + '_ {
        Operation::ALL.into_iter().filter(|op| self.applies_to(*op))
    }

    /// Whether it matches events with this operation.
    pub fn applies_to(&self, op: Operation) -> bool {
        self.operations == 0 || self.operations & op.bit() != 0
    }

    /// The `when` conditions, in file order (a table of several comparisons gives several).
    pub fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// The `changed` field names.
    pub fn changed(&self) -> &[String] {
        &self.changed
    }

    /// Key templates.
    pub fn keys(&self) -> &[Template] {
        &self.keys
    }

    /// Tag templates.
    pub fn tags(&self) -> &[Template] {
        &self.tags
    }

    /// Prefix templates.
    pub fn prefixes(&self) -> &[Template] {
        &self.prefixes
    }

    /// Glob templates.
    pub fn globs(&self) -> &[Template] {
        &self.globs
    }

    /// The line of the rule's `[[rule]]` header.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether the event matches: entity, operation, every `when` condition, and (if the rule
    /// lists any) at least one `changed` field.
    pub fn matches(&self, event: &Event) -> bool {
        (self.entity == "*" || self.entity == event.entity) && self.admits(event)
    }

    /// [`Rule::matches`] without the entity test, for callers that indexed by entity.
    fn admits(&self, event: &Event) -> bool {
        self.applies_to(event.operation)
            && self.conditions.iter().all(|c| c.holds(event))
            && (self.changed.is_empty()
                || self.changed.iter().any(|f| condition::changed(event, f)))
    }

    /// The invalidations this rule's templates give for the event, deduplicated, in the order
    /// keys, tags, prefixes, globs. Does not check [`Rule::matches`]; skips templates that need
    /// a field the event does not carry.
    pub fn render(&self, event: &Event) -> Vec<Invalidation<String>> {
        let mut out = Deduped::default();
        self.render_into(event, &mut out);
        out.list
    }

    fn render_into(&self, event: &Event, out: &mut Deduped) {
        out.render(&self.keys, event, Escape::None, Invalidation::Key);
        out.render(&self.tags, event, Escape::None, Invalidation::Tag);
        out.render(&self.prefixes, event, Escape::None, |p| {
            Invalidation::Prefix(p.into_bytes())
        });
        out.render(&self.globs, event, Escape::Glob, |g| {
            Invalidation::Glob(g.into_bytes())
        });
    }
}

/// An ordered list that ignores repeats. Linear search while short (most events yield a
/// handful of targets), a hash set once long.
#[derive(Debug, Default)]
struct Deduped {
    list: Vec<Invalidation<String>>,
    seen: Option<HashSet<Invalidation<String>>>,
}

impl Deduped {
    const LINEAR: usize = 16;

    fn render(
        &mut self,
        templates: &[Template],
        event: &Event,
        escape: Escape,
        make: fn(String) -> Invalidation<String>,
    ) {
        for t in templates {
            let mut s = String::new();
            if t.render_event_into(event, escape, &mut s) && !s.is_empty() {
                self.push(make(s));
            }
        }
    }

    fn push(&mut self, t: Invalidation<String>) {
        match &mut self.seen {
            Some(seen) => {
                if seen.insert(t.clone()) {
                    self.list.push(t);
                }
            }
            None => {
                if !self.list.contains(&t) {
                    self.list.push(t);
                    if self.list.len() >= Self::LINEAR {
                        self.seen = Some(self.list.iter().cloned().collect());
                    }
                }
            }
        }
    }
}

/// A loaded, validated rule file: rules in file order, indexed by entity, and policies by name.
/// Immutable; to change the rules, load a new set and swap it in.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    /// Indices into `rules` per entity, ascending, so a lookup visits only that entity's rules.
    by_entity: HashMap<String, Vec<usize>>,
    /// Indices of `entity = "*"` rules, ascending.
    any_entity: Vec<usize>,
    policies: BTreeMap<String, DataPolicy>,
}

impl RuleSet {
    /// A set with no rules and no policies.
    pub fn new() -> Self {
        RuleSet::default()
    }

    /// Loads rules and policies from TOML text (the format is in the [module docs](self)).
    pub fn from_toml(text: &str) -> Result<RuleSet, RuleError> {
        load::load(text)
    }

    /// Loads rules and policies from a TOML file; errors carry the path.
    pub fn from_file(path: impl AsRef<Path>) -> Result<RuleSet, RuleError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            RuleError::new(RuleErrorKind::Io, format!("cannot read the rule file: {e}"))
                .in_file(path)
        })?;
        load::load(&text).map_err(|e| e.in_file(path))
    }

    fn assemble(rules: Vec<Rule>, policies: BTreeMap<String, DataPolicy>) -> RuleSet {
        let mut by_entity: HashMap<String, Vec<usize>> = HashMap::new();
        let mut any_entity = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            if rule.entity == "*" {
                any_entity.push(i);
            } else {
                by_entity.entry(rule.entity.clone()).or_default().push(i);
            }
        }
        RuleSet {
            rules,
            by_entity,
            any_entity,
            policies,
        }
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The policies, by name.
    pub fn policies(&self) -> impl ExactSizeIterator<Item = &DataPolicy> {
        self.policies.values()
    }

    /// The policy with this name.
    pub fn policy(&self, name: &str) -> Option<&DataPolicy> {
        self.policies.get(name)
    }

    /// The rules the event matches (see [`Rule::matches`]), in file order.
    pub fn matching_rules<'a>(&'a self, event: &'a Event) -> impl Iterator<Item = &'a Rule> {
        let specific = self
            .by_entity
            .get(event.entity.as_str())
            .map_or(&[][..], Vec::as_slice);
        let mut specific = specific.iter().copied().peekable();
        let mut any = self.any_entity.iter().copied().peekable();
        // Merge the two ascending index lists so wildcard rules keep their file position.
        std::iter::from_fn(move || match (specific.peek(), any.peek()) {
            (Some(s), Some(a)) if s < a => specific.next(),
            (Some(_), None) => specific.next(),
            _ => any.next(),
        })
        .map(|i| &self.rules[i])
        .filter(move |rule| rule.admits(event))
    }

    /// Everything the event invalidates: the invalidations of every matching rule, in rule
    /// order, each rule's in the order keys, tags, prefixes, globs, without repeats.
    pub fn evaluate(&self, event: &Event) -> Vec<Invalidation<String>> {
        let mut out = Deduped::default();
        for rule in self.matching_rules(event) {
            rule.render_into(event, &mut out);
        }
        out.list
    }
}

#[cfg(test)]
mod tests;
