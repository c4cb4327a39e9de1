//! Where rules meet the engine: events become invalidations, policies become insert options.
//!
//! Data flows one way: an [`Event`] is evaluated by a [`RuleSet`] into [`Invalidation`]s with
//! `String` keys, each applied by the cache with its key converted to the cache's key type (and
//! so reaches the subscribers with its sequence number). A [`DataPolicy`] named on insert becomes [`InsertOptions`].

use super::{DataPolicy, PolicyTtl, RuleSet};
use crate::cache::Cache;
use crate::entry::InsertOptions;
use crate::error::{Error, ErrorKind};
use crate::event::Event;
use crate::expiry::{AdaptiveTtl, EarlyRefresh, Ttl};
use crate::invalidate::{Applied, Invalidation};
use crate::version::Inserted;
use std::hash::{BuildHasher, Hash};

impl PolicyTtl {
    /// The engine's TTL strategy for this policy TTL.
    pub fn to_ttl(self) -> Ttl {
        match self {
            PolicyTtl::Never => Ttl::Never,
            PolicyTtl::Fixed(d) => Ttl::Fixed(d),
            PolicyTtl::Sliding(d) => Ttl::Sliding(d),
            PolicyTtl::Adaptive { base, min, max } => {
                Ttl::Adaptive(AdaptiveTtl::new(base, min, max))
            }
        }
    }
}

impl DataPolicy {
    /// Insert options for an entry of this kind: TTL strategy, jitter, early refresh, and the
    /// tags and dependencies rendered from the entry's fields (`lookup` returns a field's value,
    /// `None` for missing or null). Fails, naming the field, when a template needs a field
    /// `lookup` does not have.
    pub fn insert_options<K: From<String>>(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<InsertOptions<K>, Error> {
        let bad = |e: crate::template::RenderError| {
            Error::new(
                ErrorKind::InvalidPolicy,
                format!(
                    "policy `{}`: template `{}` needs field `{}`",
                    self.name,
                    e.template(),
                    e.field()
                ),
            )
        };
        let mut options = InsertOptions::new();
        options.ttl = self.ttl.map(PolicyTtl::to_ttl);
        options.jitter = self.jitter;
        options.early_refresh = self.early_refresh_beta.map(|beta| {
            EarlyRefresh::new(
                beta,
                self.early_refresh_recompute
                    .unwrap_or(super::DEFAULT_RECOMPUTE),
            )
        });
        options.tags = self.render_tags(&lookup).map_err(bad)?;
        options.depends_on = self
            .render_dependencies(&lookup)
            .map_err(bad)?
            .into_iter()
            .map(K::from)
            .collect();
        Ok(options)
    }
}

impl<K> Invalidation<K> {
    /// The same invalidation with its key, if it names one, converted by `f` (a rule's
    /// `Invalidation<String>` into a cache's key type, say); tags, prefixes and globs are kept.
    pub fn map_key<K2>(self, f: impl FnOnce(K) -> K2) -> Invalidation<K2> {
        match self {
            Invalidation::Key(k) => Invalidation::Key(f(k)),
            Invalidation::Tag(t) => Invalidation::Tag(t),
            Invalidation::Prefix(p) => Invalidation::Prefix(p),
            Invalidation::Glob(g) => Invalidation::Glob(g),
            Invalidation::PrefixFloor(p, v) => Invalidation::PrefixFloor(p, v),
            Invalidation::TagFloor(t, v) => Invalidation::TagFloor(t, v),
        }
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + AsRef<[u8]> + From<String> + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Evaluates `rules` against `event` and applies every resulting invalidation, in rule
    /// order. Returns them as applied, with their sequence numbers. An invalidation that cannot be
    /// applied (a rendered tag with an empty level) is skipped and reported in the error list.
    pub fn apply_event(&self, rules: &RuleSet, event: &Event) -> (Vec<Applied<K>>, Vec<Error>) {
        let mut applied = Vec::new();
        let mut errors = Vec::new();
        for invalidation in rules.evaluate(event) {
            match self.invalidate(invalidation.map_key(K::from)) {
                Ok(a) => applied.push(a),
                Err(e) => errors.push(e),
            }
        }
        (applied, errors)
    }
}

impl<K, V, S> Cache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + From<String> + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher + Clone + Send + Sync + 'static,
{
    /// Inserts under the named data policy (see [`crate::CacheBuilder::data_policies`]): its
    /// TTL strategy, and its tags and dependencies rendered from the entry's fields (`fields`
    /// returns a field's value by name). Fails if the policy does not exist or a template needs
    /// a field `fields` lacks; a write refused by a condition or floor is reported too.
    pub fn insert_with_policy(
        &self,
        key: K,
        value: V,
        policy: &str,
        fields: impl Fn(&str) -> Option<String>,
    ) -> Result<Inserted, Error> {
        let Some(rules) = &self.inner.policies else {
            return Err(Error::new(
                ErrorKind::InvalidPolicy,
                format!("no data policies configured; cannot use policy `{policy}`"),
            ));
        };
        let Some(p) = rules.policy(policy) else {
            return Err(Error::new(
                ErrorKind::InvalidPolicy,
                format!("unknown data policy `{policy}`"),
            ));
        };
        let options = p.insert_options(fields)?;
        self.try_insert(key, value, &options)
            .map_err(|r| Error::new(ErrorKind::InvalidPolicy, format!("policy `{policy}`: {r}")))
    }
}
