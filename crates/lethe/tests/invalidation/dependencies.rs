//! Invalidation tests: dependencies.

use super::common::*;
use lethe::{InsertOptions, RemovalCause, version::WriteCondition};

/// A <- B <- C (C depends on B, B on A), plus an unrelated D.
fn chain(c: &C) {
    put(c, "A", "a", &InsertOptions::new());
    put(c, "B", "b", &deps(&["A"]));
    put(c, "C", "c", &deps(&["B"]));
    put(c, "D", "d", &InsertOptions::new());
}

fn assert_chain_gone(c: &C, log: &Log, root_cause: RemovalCause) {
    assert_eq!(present(c, &["A", "B", "C", "D"]), strs(&["D"]));
    let heard = causes(log);
    assert_eq!(heard.get("A"), Some(&root_cause));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("C"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("D"), None);
    assert_eq!(c.stats().removals.get(RemovalCause::Dependency), 2);
}

#[test]
fn dependency_cascade_on_invalidate_key() {
    let (c, log) = cache();
    chain(&c);
    assert!(c.invalidate_key("A"));
    assert_chain_gone(&c, &log, RemovalCause::Explicit);
    assert!(c.dependents_of(&s("A")).is_empty());
    assert!(c.dependents_of(&s("B")).is_empty());
}

#[test]
fn dependency_cascade_on_remove() {
    let (c, log) = cache();
    chain(&c);
    assert_eq!(c.remove("A").as_deref(), Some("a"));
    assert_chain_gone(&c, &log, RemovalCause::Explicit);
}

#[test]
fn dependency_cascade_on_replace() {
    let (c, log) = cache();
    chain(&c);
    c.insert(s("A"), s("a2"));
    assert_eq!(present(&c, &["A", "B", "C", "D"]), strs(&["A", "D"]));
    assert_eq!(c.get("A").as_deref(), Some("a2"));
    let heard = causes(&log);
    assert_eq!(heard.get("A"), Some(&RemovalCause::Replaced));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("C"), Some(&RemovalCause::Dependency));
    // Replacing the middle of a chain takes only what is below it.
    chain(&c);
    drain(&log);
    c.insert(s("B"), s("b2"));
    assert_eq!(present(&c, &["A", "B", "C"]), strs(&["A", "B"]));
}

#[test]
fn dependency_cascade_on_expiry() {
    // Reclaimed by run_pending_tasks.
    let (c, clock, log) = setup(|b| b);
    put(&c, "A", "a", &InsertOptions::new().ttl(secs(1)));
    put(&c, "B", "b", &deps(&["A"]));
    put(&c, "C", "c", &deps(&["B"]));
    clock.advance(secs(2));
    c.run_pending_tasks();
    assert_eq!(present(&c, &["A", "B", "C"]), Vec::<String>::new());
    let heard = causes(&log);
    assert_eq!(heard.get("A"), Some(&RemovalCause::Expired));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(heard.get("C"), Some(&RemovalCause::Dependency));

    // Reclaimed by a write to the shard.
    let (c, clock, log) = setup(|b| b.shards(1));
    put(&c, "A", "a", &InsertOptions::new().ttl(secs(1)));
    put(&c, "B", "b", &deps(&["A"]));
    clock.advance(secs(2));
    c.insert(s("unrelated"), s("x"));
    let heard = causes(&log);
    assert_eq!(heard.get("A"), Some(&RemovalCause::Expired));
    assert_eq!(heard.get("B"), Some(&RemovalCause::Dependency));
    assert_eq!(c.get("B"), None);
}

#[test]
fn dependency_cascade_on_eviction() {
    let (c, _, log) = setup(|b| b.max_capacity(8).shards(1));
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "B", "b", &deps(&["A"]));
    let mut evicted_a = false;
    for i in 0..10_000 {
        // Keep B popular so the policy prefers evicting A.
        for _ in 0..3 {
            c.get("B");
        }
        c.insert(format!("filler{i}"), s("x"));
        let events = drain(&log);
        if let Some(a) = events.iter().position(|(k, _, _)| k == "A") {
            assert_eq!(events[a].2, RemovalCause::Evicted);
            let b = events
                .iter()
                .find(|(k, _, _)| k == "B")
                .expect("B removed in the same call as A");
            assert!(
                matches!(b.2, RemovalCause::Dependency | RemovalCause::Evicted),
                "{b:?}"
            );
            evicted_a = true;
            break;
        }
        assert!(
            events.iter().all(|(k, _, _)| k != "B"),
            "B left before A: {events:?}"
        );
    }
    assert!(evicted_a, "A was never evicted");
    assert_eq!(c.get("B"), None);
}

#[test]
fn transitive_chain_is_removed_entirely() {
    let (c, log) = cache();
    put(&c, "n0", "v", &InsertOptions::new());
    for i in 1..50 {
        put(&c, &format!("n{i}"), "v", &deps(&[&format!("n{}", i - 1)]));
    }
    assert_eq!(c.dependency_chain(&s("n0")).len(), 49);
    c.invalidate_key("n0");
    assert!(c.is_empty());
    let heard = causes(&log);
    assert_eq!(heard.len(), 50);
    assert_eq!(
        heard
            .values()
            .filter(|c| **c == RemovalCause::Dependency)
            .count(),
        49
    );
}

#[test]
fn dependency_cycle_terminates_and_removes_both() {
    let (c, log) = cache();
    put(&c, "A", "a", &deps(&["B"]));
    put(&c, "B", "b", &deps(&["A"]));
    put(&c, "C", "c", &deps(&["A"]));
    assert_eq!(c.dependency_chain(&s("A")).len(), 2); // B and C (A itself excluded)
    assert!(c.invalidate_key("A"));
    assert_eq!(present(&c, &["A", "B", "C"]), Vec::<String>::new());
    let heard = causes(&log);
    assert_eq!(heard.len(), 3);
    assert_eq!(heard["A"], RemovalCause::Explicit);
    assert_eq!(heard["B"], RemovalCause::Dependency);
    assert_eq!(heard["C"], RemovalCause::Dependency);

    // Self-dependency is ignored rather than looping.
    put(&c, "S", "s", &deps(&["S"]));
    assert!(c.dependents_of(&s("S")).is_empty());
    assert!(c.invalidate_key("S"));
}

#[test]
fn dependency_introspection() {
    let (c, _) = cache();
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "X", "x", &InsertOptions::new());
    put(&c, "B", "b", &deps(&["A", "X"]));
    put(&c, "C", "c", &deps(&["B"]));
    put(&c, "D", "d", &deps(&["A"]));
    assert_eq!(c.dependencies_of("B"), vec![s("A"), s("X")]);
    assert_eq!(c.dependencies_of("C"), vec![s("B")]);
    assert!(c.dependencies_of("A").is_empty());
    assert!(c.dependencies_of("missing").is_empty());
    assert_eq!(sorted(c.dependents_of(&s("A"))), strs(&["B", "D"]));
    assert_eq!(sorted(c.dependents_of(&s("B"))), strs(&["C"]));
    assert!(c.dependents_of(&s("C")).is_empty());
    assert_eq!(sorted(c.dependency_chain(&s("A"))), strs(&["B", "C", "D"]));
    assert_eq!(sorted(c.dependency_chain(&s("X"))), strs(&["B", "C"]));
    // Breadth first: direct dependents before C.
    let chain = c.dependency_chain(&s("A"));
    assert_eq!(chain.last().map(String::as_str), Some("C"));
    c.invalidate_key("X");
    assert!(c.dependency_chain(&s("A")) == vec![s("D")]);
    assert!(c.dependencies_of("B").is_empty());
}

#[test]
fn reinserting_a_dependent_with_new_dependencies_unlinks_the_old_ones() {
    let (c, _) = cache();
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "X", "x", &InsertOptions::new());
    put(&c, "S", "s", &InsertOptions::new());
    put(&c, "B", "b1", &deps(&["A", "S"]));
    put(&c, "B", "b2", &deps(&["X", "S"]));
    assert!(c.dependents_of(&s("A")).is_empty());
    assert_eq!(c.dependents_of(&s("S")), vec![s("B")]);
    c.invalidate_key("A");
    assert_eq!(c.get("B").as_deref(), Some("b2"), "old dependency unlinked");
    c.invalidate_key("X");
    assert_eq!(c.get("B"), None, "new dependency linked");

    // The shared dependency stays linked across the rewrite.
    put(&c, "B", "b3", &deps(&["S"]));
    put(&c, "B", "b4", &deps(&["S"]));
    c.invalidate_key("S");
    assert_eq!(c.get("B"), None);

    // A plain rewrite drops every dependency.
    put(&c, "S", "s", &InsertOptions::new());
    put(&c, "B", "b5", &deps(&["S"]));
    put(&c, "B", "b6", &InsertOptions::new());
    c.invalidate_key("S");
    assert_eq!(c.get("B").as_deref(), Some("b6"));
}

#[test]
fn invalidating_an_uncached_key_still_cascades_to_its_dependents() {
    let (c, log) = cache();
    put(&c, "B", "b", &deps(&["A"]));
    assert!(!c.invalidate_key("A"));
    assert_eq!(c.get("B"), None);
    assert_eq!(causes(&log).get("B"), Some(&RemovalCause::Dependency));
}

/// A dependent's source was invalidated by a tag: the dependent must not be served either
/// ("when one goes, this entry goes").
#[test]
fn dependents_of_a_tag_invalidated_entry_are_not_served() {
    let (c, log) = cache();
    put(&c, "A", "a", &tags(&["t"]));
    put(&c, "B", "b", &deps(&["A"]));
    c.invalidate_tag("t");
    assert_eq!(c.get("A"), None);
    assert_eq!(
        c.get("B"),
        None,
        "B depends on A, which a tag invalidation removed"
    );
    c.run_pending_tasks();
    assert_eq!(c.get("B"), None);
    assert_eq!(causes(&log).get("B"), Some(&RemovalCause::Dependency));
}

/// Same with a tag version floor.
#[test]
fn dependents_of_an_entry_below_a_tag_floor_are_not_served() {
    let (c, _) = cache();
    put(&c, "A", "a", &tags(&["t"]).version(1));
    put(&c, "B", "b", &deps(&["A"]));
    c.set_version_floor_tag("t", 5).unwrap();
    assert_eq!(c.get("A"), None);
    assert_eq!(c.get("B"), None, "B depends on A, which is now stale");
}

/// A self-dependency is ignored: the entry does not depend on (or inherit anything from) the
/// value it replaces.
#[test]
fn a_self_dependency_is_ignored() {
    let (c, log) = cache();
    put(&c, "k", "old", &tags(&["t"]));
    put(&c, "k", "new", &deps(&["k"]));
    assert_eq!(c.tags_of("k"), Some(vec![]));
    assert!(c.dependents_of(&s("k")).is_empty());
    c.invalidate_tag("t");
    assert_eq!(
        c.get("k").as_deref(),
        Some("new"),
        "the new value has no tag"
    );
    c.run_pending_tasks();
    assert_eq!(c.get("k").as_deref(), Some("new"));
    assert_eq!(
        drain(&log),
        vec![(s("k"), s("old"), RemovalCause::Replaced)]
    );
}

/// The dependency is written (with a tag) after its dependent; invalidating the tag still
/// takes the dependent.
#[test]
fn a_dependent_written_before_its_tagged_dependency_is_not_served_after_the_tag_goes() {
    let (c, _) = cache();
    put(&c, "B", "b", &deps(&["A"]));
    put(&c, "A", "a", &tags(&["t"]));
    c.invalidate_tag("t");
    assert_eq!(c.get("A"), None);
    assert_eq!(
        c.get("B"),
        None,
        "B depends on A, which the tag invalidation removed"
    );
}

/// A refused write must not touch the dependency edges of the entry that stays.
#[test]
fn a_refused_write_keeps_the_stored_entrys_dependencies() {
    for refusal in ["exists", "not-newer", "below-floor", "cas-mismatch"] {
        let (c, _) = cache();
        put(&c, "A", "a", &InsertOptions::new());
        put(&c, "B", "b", &deps(&["A"]).version(10));
        let again = deps(&["A"]);
        let r = match refusal {
            "exists" => c.try_insert(s("B"), s("b2"), &again.condition(WriteCondition::IfAbsent)),
            "not-newer" => c.try_insert(
                s("B"),
                s("b2"),
                &again.version(3).condition(WriteCondition::IfNewer),
            ),
            "below-floor" => {
                c.set_version_floor_prefix("B", 5);
                c.try_insert(s("B"), s("b2"), &again.version(3))
            }
            _ => c.compare_and_set(s("B"), 99, s("b2"), &again),
        };
        assert!(r.is_err(), "{refusal}");
        assert_eq!(c.get("B").as_deref(), Some("b"), "{refusal}");
        assert_eq!(
            c.dependents_of(&s("A")),
            vec![s("B")],
            "{refusal}: edge kept"
        );
        c.invalidate_key("A");
        assert_eq!(c.get("B"), None, "{refusal}: B must follow A");
    }
}

/// Rewriting an entry hidden by a tag invalidation (not yet reclaimed) with the same dependency
/// must leave the new entry linked to it.
#[test]
fn rewriting_a_hidden_entry_keeps_the_new_entrys_dependencies() {
    let (c, _) = cache();
    put(&c, "A", "a", &InsertOptions::new());
    put(&c, "B", "b1", &tags(&["t"]).depends_on(s("A")));
    c.invalidate_tag("t");
    put(&c, "B", "b2", &deps(&["A"]));
    assert_eq!(c.get("B").as_deref(), Some("b2"));
    assert_eq!(c.dependents_of(&s("A")), vec![s("B")]);
    c.invalidate_key("A");
    assert_eq!(c.get("B"), None, "b2 depends on A");
}
