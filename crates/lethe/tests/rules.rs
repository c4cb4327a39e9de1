//! Events, templates and rule files through the public API: a realistic rule file evaluated
//! against change events, loading from disk, and errors that point at the right line.

use lethe::rules::{PolicyTtl, RuleErrorKind, RuleSet};
use lethe::{
    Invalidation, event::Event, event::FieldValue, event::Operation, template::Template,
    template::TemplateErrorKind,
};
use std::path::PathBuf;
use std::time::Duration;

/// The key, tag, prefix or glob of a rule's invalidation, as text.
fn text(i: &Invalidation<String>) -> &str {
    match i {
        Invalidation::Key(s) | Invalidation::Tag(s) => s,
        Invalidation::Prefix(b) | Invalidation::Glob(b) => std::str::from_utf8(b).unwrap(),
        other => panic!("rules never produce {other:?}"),
    }
}

const SHOP: &str = r#"
# Users: profile and sessions on any change; department member lists when they move.
[[rule]]
name = "user"
entity = "users"
operations = ["update", "delete"]
keys = ["user:{id}:profile"]
tags = ["user:{id}"]
prefixes = ["session:{id}:"]

[[rule]]
name = "department members"
entity = "users"
changed = ["department_id"]
keys = ["department:{old.department_id}:members", "department:{new.department_id}:members"]

# Orders: only a paid order over 100 touches the revenue report.
[[rule]]
name = "revenue"
entity = "orders"
operations = ["create", "update"]
when = { "new.status" = "paid", "new.total" = { gt = 100 } }
keys = ["report:revenue"]
globs = ["report:revenue:*:{new.customer_id}"]

# Any bulk change or migration flushes derived reports.
[[rule]]
name = "reports"
entity = "*"
operations = ["bulk", "schema"]
prefixes = ["report:"]

[policy.user]
ttl = "10m"
strategy = "sliding"
jitter = 0.05
tags = ["user:{id}", "department:{department_id}"]
depends_on = ["department:{department_id}"]
"#;

fn shop() -> RuleSet {
    RuleSet::from_toml(SHOP).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_department_move_invalidates_both_departments() {
    let set = shop();
    let moved = Event::new("users", Operation::Update)
        .id("42")
        .with_old("department_id", 3)
        .with_new("department_id", 5);
    assert_eq!(
        set.evaluate(&moved),
        [
            Invalidation::Key("user:42:profile".into()),
            Invalidation::Tag("user:42".into()),
            Invalidation::Prefix(b"session:42:".to_vec()),
            Invalidation::Key("department:3:members".into()),
            Invalidation::Key("department:5:members".into()),
        ]
    );
    let stayed = Event::new("users", Operation::Update)
        .id("42")
        .with_old("department_id", 3)
        .with_new("department_id", 3);
    assert_eq!(
        set.evaluate(&stayed).len(),
        3,
        "unchanged department: no member lists"
    );
}

#[test]
fn a_delete_uses_old_values_and_a_create_has_none() {
    let set = shop();
    let deleted = Event::new("users", Operation::Delete)
        .id("7")
        .with_old("department_id", 2);
    let targets = set.evaluate(&deleted);
    let keys: Vec<&str> = targets.iter().map(text).collect();
    assert_eq!(
        keys,
        [
            "user:7:profile",
            "user:7",
            "session:7:",
            "department:2:members"
        ]
    );
    let created = Event::new("users", "insert".parse().unwrap())
        .id("8")
        .with_new("department_id", 2);
    assert_eq!(
        set.evaluate(&created),
        [Invalidation::Key("department:2:members".into())]
    );
}

#[test]
fn conditions_gate_the_revenue_report() {
    let set = shop();
    let order = |status: &str, total: FieldValue| {
        Event::new("orders", Operation::Update)
            .id("o1")
            .with_new("status", status)
            .with_new("total", total)
            .with_new("customer_id", "c*1")
    };
    assert!(set.evaluate(&order("paid", 99.5.into())).is_empty());
    assert!(set.evaluate(&order("pending", 500.into())).is_empty());
    // Change feeds that send numbers as text still compare numerically.
    assert_eq!(
        set.evaluate(&order("paid", "150.00".into())),
        [
            Invalidation::Key("report:revenue".into()),
            Invalidation::Glob(b"report:revenue:*:c\\*1".to_vec()),
        ]
    );
    assert!(
        set.evaluate(&order("paid", FieldValue::Null)).is_empty(),
        "null fails comparisons"
    );
    let paid = order("paid", 101.into());
    let rules: Vec<&str> = set.matching_rules(&paid).map(|r| r.name()).collect();
    assert_eq!(rules, ["revenue"]);
}

#[test]
fn wildcard_rules_catch_bulk_and_schema_events_of_any_entity() {
    let set = shop();
    for entity in ["users", "orders", "anything"] {
        for op in [Operation::Bulk, Operation::Schema] {
            assert_eq!(
                set.evaluate(&Event::new(entity, op)),
                [Invalidation::Prefix(b"report:".to_vec())],
                "{entity} {op}"
            );
        }
    }
    let truncate: Operation = "TRUNCATE".parse().unwrap();
    assert_eq!(truncate, Operation::Bulk);
}

#[test]
fn the_user_policy_renders_from_the_inserted_fields() {
    let set = shop();
    let user = set.policy("user").expect("policy loaded");
    assert_eq!(user.ttl, Some(PolicyTtl::Sliding(Duration::from_secs(600))));
    assert_eq!(user.jitter, Some(0.05));
    assert_eq!(user.early_refresh_beta, None);
    let row = Event::new("users", Operation::Create)
        .id("42")
        .with_new("department_id", 5);
    assert_eq!(
        user.render_tags(|f| row.lookup(f)).unwrap(),
        ["user:42", "department:5"]
    );
    assert_eq!(
        user.render_dependencies(|f| row.lookup(f)).unwrap(),
        ["department:5"]
    );
    let no_department = Event::new("users", Operation::Create).id("42");
    let err = user.render_tags(|f| no_department.lookup(f)).unwrap_err();
    assert_eq!(err.field(), "department_id");
}

#[test]
fn templates_through_the_public_api() {
    let t: Template = "department:{new.department_id}/{old.department_id}/{{x}}"
        .parse()
        .unwrap();
    assert_eq!(
        t.placeholders().collect::<Vec<_>>(),
        ["new.department_id", "old.department_id"]
    );
    let e = Event::new("users", Operation::Update)
        .with_old("department_id", 1)
        .with_new("department_id", 2);
    assert_eq!(t.render_event(&e).as_deref(), Some("department:2/1/{x}"));
    let created = Event::new("users", Operation::Create).with_new("department_id", 2);
    assert_eq!(t.render_event(&created), None);
    let err = Template::parse("user:{id").unwrap_err();
    assert_eq!(
        (err.kind(), err.column()),
        (TemplateErrorKind::Unbalanced, 6)
    );
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, text: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("lethe-rules-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn files_load_and_errors_name_file_and_line() {
    let good = TempFile::new("good", SHOP);
    let set = RuleSet::from_file(&good.0).unwrap();
    assert_eq!(set.rules().len(), 4);
    assert_eq!(set.rules()[2].name(), "revenue");
    assert_eq!(set.rules()[2].line(), 18);

    // The same file with one typo'd operation in the third rule.
    let bad = TempFile::new(
        "bad",
        &SHOP.replace("\"create\", \"update\"", "\"create\", \"upsert\""),
    );
    let err = RuleSet::from_file(&bad.0).unwrap_err();
    assert_eq!(err.kind(), RuleErrorKind::BadOperation);
    assert_eq!(err.line(), Some(21));
    assert_eq!(err.path(), Some(bad.0.as_path()));
    assert_eq!(
        err.to_string(),
        format!(
            "{}: line 21: unknown operation `upsert` in rule `revenue`; expected one of create, \
             update, delete, bulk, schema",
            bad.0.display()
        )
    );
}

#[test]
fn every_error_kind_points_at_its_line() {
    // (replace this, with that, expect kind, on line) applied to the SHOP file.
    let cases: &[(&str, &str, RuleErrorKind, usize)] = &[
        (
            "strategy = \"sliding\"",
            "strategy = = \"sliding\"",
            RuleErrorKind::Syntax,
            35,
        ),
        (
            "prefixes = [\"report:\"]",
            "prefix = [\"report:\"]",
            RuleErrorKind::UnknownField,
            31,
        ),
        ("entity = \"orders\"\n", "", RuleErrorKind::MissingField, 18),
        ("jitter = 0.05", "jitter = 1.5", RuleErrorKind::BadValue, 36),
        (
            "session:{id}:",
            "session:{id:",
            RuleErrorKind::BadTemplate,
            9,
        ),
        (
            "ttl = \"10m\"",
            "ttl = \"10 minutes\"",
            RuleErrorKind::BadDuration,
            34,
        ),
        (
            "operations = [\"update\", \"delete\"]",
            "operations = [\"update\", \"remove\"]",
            RuleErrorKind::BadOperation,
            6,
        ),
        (
            "{ gt = 100 }",
            "{ above = 100 }",
            RuleErrorKind::BadCondition,
            22,
        ),
        (
            "name = \"reports\"",
            "name = \"user\"",
            RuleErrorKind::Duplicate,
            28,
        ),
    ];
    for &(from, to, kind, line) in cases {
        assert!(SHOP.contains(from), "{from}");
        let err = RuleSet::from_toml(&SHOP.replacen(from, to, 1)).unwrap_err();
        assert_eq!((err.kind(), err.line()), (kind, Some(line)), "{to}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rules and policies applied to a cache

const APP_RULES: &str = r#"
[[rule]]
name = "user changed"
entity = "users"
operations = ["update", "delete"]
tags = ["user:{id}"]

[[rule]]
name = "department members"
entity = "users"
changed = ["department_id"]
keys = ["department:{old.department_id}:members", "department:{new.department_id}:members"]

[[rule]]
name = "sessions"
entity = "users"
operations = ["delete"]
prefixes = ["session:{id}:"]

[policy.user]
ttl = "5m"
strategy = "sliding"
tags = ["user:{id}", "org:{org_id}"]
depends_on = ["org:{org_id}"]
"#;

#[test]
fn events_invalidate_what_the_rules_say_and_policies_tag_inserts() {
    use lethe::{Cache, Invalidation, RemovalCause, expiry::Ttl, invalidate::Applied};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let rules = Arc::new(RuleSet::from_toml(APP_RULES).unwrap());
    let seen: Arc<Mutex<Vec<Applied<String>>>> = Arc::default();
    let log = seen.clone();
    let cache: Cache<String, String> = Cache::builder()
        .max_capacity(1000)
        .data_policies(rules.clone())
        .subscriber(move |a: &Applied<String>| log.lock().unwrap().push(a.clone()))
        .build();
    let fields = |id: &'static str| {
        move |f: &str| match f {
            "id" => Some(id.to_string()),
            "org_id" => Some("7".to_string()),
            _ => None,
        }
    };
    cache
        .insert_with_policy("user:42:profile".into(), "Ada".into(), "user", fields("42"))
        .unwrap();
    cache
        .insert_with_policy("user:43:profile".into(), "Bob".into(), "user", fields("43"))
        .unwrap();
    assert_eq!(
        cache.tags_of("user:42:profile").unwrap(),
        ["user:42", "org:7"]
    );
    assert_eq!(
        cache.dependencies_of("user:42:profile"),
        ["org:7".to_string()]
    );
    let meta = cache.get_with_metadata("user:42:profile").unwrap().metadata;
    assert!(meta.remaining().unwrap() <= Duration::from_secs(300));
    // A policy that needs a field the caller does not have refuses the insert.
    let err = cache
        .insert_with_policy("x".into(), "v".into(), "user", |_| None)
        .unwrap_err();
    assert!(err.to_string().contains("needs field"), "{err}");
    assert!(
        cache
            .insert_with_policy("x".into(), "v".into(), "nope", |_| None)
            .is_err()
    );
    assert_eq!(
        rules.policy("user").unwrap().ttl.unwrap().to_ttl(),
        Ttl::Sliding(Duration::from_secs(300))
    );

    cache.insert("department:1:members".into(), "[42]".into());
    cache.insert("department:2:members".into(), "[]".into());
    cache.insert("department:3:members".into(), "[9]".into());
    cache.insert("session:42:a".into(), "s".into());
    cache.insert("session:420:a".into(), "s".into());

    let moved = Event::new("users", Operation::Update)
        .id("42")
        .with_old("department_id", 1)
        .with_new("department_id", 2);
    let (applied, errors) = cache.apply_event(&rules, &moved);
    assert!(errors.is_empty());
    assert_eq!(applied.len(), 3);
    assert_eq!(cache.get("user:42:profile"), None);
    assert_eq!(cache.get("user:43:profile").as_deref(), Some("Bob"));
    assert_eq!(cache.get("department:1:members"), None);
    assert_eq!(cache.get("department:2:members"), None);
    assert_eq!(cache.get("department:3:members").as_deref(), Some("[9]"));
    assert!(
        cache.contains("session:42:a"),
        "update does not touch sessions"
    );

    let deleted = Event::new("users", Operation::Delete).id("42");
    cache.apply_event(&rules, &deleted);
    assert!(!cache.contains("session:42:a"));
    assert!(
        cache.contains("session:420:a"),
        "prefix `session:42:` must not match 420"
    );

    let seen = seen.lock().unwrap();
    let seqs: Vec<u64> = seen.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(seen[0].invalidation, Invalidation::Tag("user:42".into()));
    cache.run_pending_tasks();
    assert_eq!(cache.stats().removals.get(RemovalCause::Tag), 1);
    assert_eq!(cache.stats().removals.get(RemovalCause::Pattern), 1);
}

#[test]
fn a_bad_rule_file_leaves_the_running_rules_in_place() {
    let good = RuleSet::from_toml(APP_RULES).unwrap();
    let broken = APP_RULES.replace("\"sliding\"", "\"sometimes\"");
    let err = RuleSet::from_toml(&broken).unwrap_err();
    let line = APP_RULES
        .lines()
        .position(|l| l.contains("\"sliding\""))
        .unwrap()
        + 1;
    assert_eq!(err.line(), Some(line), "{err}");
    assert!(err.to_string().contains("sometimes"), "{err}");
    // The previous set is untouched and still evaluates.
    let e = Event::new("users", Operation::Delete).id("1");
    assert_eq!(good.evaluate(&e).len(), 2);
}
