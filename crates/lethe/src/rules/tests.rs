//! Rule matching, evaluation, loading errors (kind and line) and policies.

use super::*;
use crate::event::FieldValue;
use std::time::Duration;

fn load(src: &str) -> RuleSet {
    match RuleSet::from_toml(src) {
        Ok(set) => set,
        Err(e) => panic!("did not load: {e}"),
    }
}

#[track_caller]
fn fails(src: &str, kind: RuleErrorKind, line: usize) -> RuleError {
    let err = RuleSet::from_toml(src).expect_err("loaded a bad file");
    assert_eq!((err.kind(), err.line()), (kind, Some(line)), "{err}");
    assert!(
        err.to_string().starts_with(&format!("line {line}: ")),
        "{err}"
    );
    err
}

/// The key, tag, prefix or glob of each invalidation, as text.
fn keys(targets: &[Invalidation<String>]) -> Vec<&str> {
    targets.iter().map(text).collect()
}

fn text(i: &Invalidation<String>) -> &str {
    match i {
        Invalidation::Key(s) | Invalidation::Tag(s) => s,
        Invalidation::Prefix(b) | Invalidation::Glob(b) => std::str::from_utf8(b).unwrap(),
        other => panic!("rules never produce {other:?}"),
    }
}

const USERS: &str = r#"
[[rule]]
name = "profile"
entity = "users"
operations = ["update", "delete"]
keys = ["user:{id}:profile"]

[[rule]]
name = "active"
entity = "users"
when = { "new.status" = "active" }
keys = ["active:{id}"]

[[rule]]
name = "email"
entity = "users"
changed = ["email", "name"]
tags = ["mail:{id}"]

[[rule]]
name = "orders"
entity = "orders"
keys = ["order:{id}"]
"#;

fn names<'a>(set: &'a RuleSet, e: &'a Event) -> Vec<&'a str> {
    set.matching_rules(e).map(Rule::name).collect()
}

#[test]
fn matches_by_entity_and_operation() {
    let set = load(USERS);
    let del = Event::new("users", Operation::Delete).id("1");
    assert_eq!(names(&set, &del), ["profile"]);
    let create = Event::new("users", Operation::Create).id("1");
    assert!(names(&set, &create).is_empty());
    let order = Event::new("orders", Operation::Create).id("9");
    assert_eq!(names(&set, &order), ["orders"]);
    assert!(
        names(&set, &Event::new("Users", Operation::Update)).is_empty(),
        "entity is exact"
    );
    assert_eq!(
        set.rules()[0].operations().collect::<Vec<_>>(),
        [Operation::Update, Operation::Delete]
    );
    assert_eq!(
        set.rules()[1].operations().count(),
        5,
        "no operations means all"
    );
}

#[test]
fn matches_by_conditions_and_changed() {
    let set = load(USERS);
    let active = Event::new("users", Operation::Update)
        .id("1")
        .with_new("status", "active");
    assert_eq!(names(&set, &active), ["profile", "active"]);
    let inactive = Event::new("users", Operation::Update)
        .id("1")
        .with_new("status", "gone");
    assert_eq!(names(&set, &inactive), ["profile"]);

    let same_email = Event::new("users", Operation::Update)
        .id("1")
        .with_old("email", "a@x")
        .with_new("email", "a@x");
    assert_eq!(names(&set, &same_email), ["profile"]);
    let new_name = same_email
        .clone()
        .with_old("name", "A")
        .with_new("name", "B");
    assert_eq!(
        names(&set, &new_name),
        ["profile", "email"],
        "any listed field changing is enough"
    );
}

#[test]
fn comparison_tables_and_file_order_of_conditions() {
    let set = load(
        r#"
[[rule]]
name = "adults"
entity = "users"
when = { "new.status" = { in = ["active", "trial"] }, "new.age" = { ge = 18, lt = 65 }, "old.banned" = { present = false } }
keys = ["adult:{id}"]
"#,
    );
    let rule = &set.rules()[0];
    let shown: Vec<String> = rule.conditions().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "new.status in [\"active\", \"trial\"]",
            "new.age >= 18",
            "new.age < 65",
            "old.banned is absent"
        ]
    );
    let e = |age: i64| {
        Event::new("users", Operation::Update)
            .id("1")
            .with_new("status", "trial")
            .with_new("age", age)
    };
    assert!(rule.matches(&e(18)));
    assert!(!rule.matches(&e(17)));
    assert!(!rule.matches(&e(65)));
    assert!(!rule.matches(&e(30).with_old("banned", true)));
    assert!(rule.matches(&e(30).with_old("banned", FieldValue::Null)));
}

#[test]
fn evaluate_renders_in_rule_order_and_dedupes() {
    let set = load(
        r#"
[[rule]]
name = "a"
entity = "users"
keys = ["user:{id}", "user:{id}", "dept:{old.dept}"]
tags = ["user:{id}"]

[[rule]]
name = "b"
entity = "users"
keys = ["user:{id}", "dept:{new.dept}"]
prefixes = ["session:{id}:"]
globs = ["feed:*:{id}"]
"#,
    );
    let e = Event::new("users", Operation::Update)
        .id("7")
        .with_old("dept", 1)
        .with_new("dept", 1);
    let targets = set.evaluate(&e);
    assert_eq!(
        targets,
        [
            Invalidation::Key("user:7".into()),
            Invalidation::Key("dept:1".into()),
            // Same text, different kind: not a repeat.
            Invalidation::Tag("user:7".into()),
            Invalidation::Prefix(b"session:7:".to_vec()),
            Invalidation::Glob(b"feed:*:7".to_vec()),
        ]
    );
}

#[test]
fn evaluate_dedupes_beyond_the_linear_threshold() {
    let mut src = String::new();
    for i in 0..40 {
        src += &format!(
            "[[rule]]\nname = \"r{i}\"\nentity = \"t\"\nkeys = [\"k{}:{{id}}\", \"shared\"]\n",
            i % 20
        );
    }
    let set = load(&src);
    let targets = set.evaluate(&Event::new("t", Operation::Update).id("1"));
    assert_eq!(targets.len(), 21);
    assert_eq!(targets[0], Invalidation::Key("k0:1".into()));
    assert_eq!(targets[1], Invalidation::Key("shared".into()));
    assert_eq!(targets[20], Invalidation::Key("k19:1".into()));
}

#[test]
fn missing_fields_skip_targets_without_skipping_the_rule() {
    let set = load(
        r#"
[[rule]]
name = "dept"
entity = "users"
keys = ["dept:{old.dept}", "dept:{new.dept}", "{tenant}", "user:{id}"]
"#,
    );
    let created = Event::new("users", Operation::Create)
        .with_new("dept", 4)
        .with_new("tenant", "");
    // No old dept, no id, and an empty tenant renders an empty (so dropped) key.
    assert_eq!(keys(&set.evaluate(&created)), ["dept:4"]);
    let bulk = Event::new("users", Operation::Bulk);
    assert!(set.evaluate(&bulk).is_empty());
    assert_eq!(set.matching_rules(&bulk).count(), 1);
}

#[test]
fn glob_targets_escape_field_values() {
    let set = load(
        "[[rule]]\nname = \"g\"\nentity = \"u\"\nglobs = [\"feed:*:{id}\"]\nprefixes = [\"p:{id}\"]\n",
    );
    let e = Event::new("u", Operation::Update).id("a*b");
    assert_eq!(
        set.evaluate(&e),
        [
            Invalidation::Prefix(b"p:a*b".to_vec()),
            Invalidation::Glob(b"feed:*:a\\*b".to_vec())
        ]
    );
}

#[test]
fn wildcard_entity_rules_keep_their_file_position() {
    let set = load(
        r#"
[[rule]]
name = "first"
entity = "users"
keys = ["1"]
[[rule]]
name = "any"
entity = "*"
operations = ["schema"]
prefixes = ["report:"]
[[rule]]
name = "third"
entity = "users"
keys = ["3"]
"#,
    );
    let e = Event::new("users", Operation::Schema);
    assert_eq!(names(&set, &e), ["first", "any", "third"]);
    assert_eq!(
        names(&set, &Event::new("orders", Operation::Schema)),
        ["any"]
    );
    assert_eq!(
        names(&set, &Event::new("orders", Operation::Update)),
        Vec::<&str>::new()
    );
    assert_eq!(keys(&set.evaluate(&e)), ["1", "report:", "3"]);
}

// ---------------------------------------------------------------------------------------------
// Errors: kind and line

#[test]
fn syntax_errors() {
    fails(
        "[[rule]]\nname = \"a\"\nentity = \"users\nkeys = []\n",
        RuleErrorKind::Syntax,
        3,
    );
    let e = fails("\n\n[[rule]\n", RuleErrorKind::Syntax, 3);
    assert!(e.message().starts_with("invalid TOML"), "{e}");
}

#[test]
fn unknown_fields() {
    let e = fails(
        "[[rule]]\nname = \"a\"\nentity = \"users\"\nkeys = [\"k\"]\nprefix = [\"p\"]\n",
        RuleErrorKind::UnknownField,
        5,
    );
    assert!(e.message().contains("`prefix`"), "{e}");
    fails("\n[rules]\n", RuleErrorKind::UnknownField, 2);
    fails(
        "[policy.u]\nttl = \"5m\"\ntll = \"5m\"\n",
        RuleErrorKind::UnknownField,
        3,
    );
}

#[test]
fn missing_fields() {
    let e = fails(
        "\n[[rule]]\nname = \"a\"\nkeys = [\"k\"]\n",
        RuleErrorKind::MissingField,
        2,
    );
    assert!(e.message().contains("`entity`"), "{e}");
    fails(
        "[policy.u]\nstrategy = \"sliding\"\n",
        RuleErrorKind::MissingField,
        2,
    );
    let e = fails(
        "[policy.u]\nttl = \"5m\"\nstrategy = \"adaptive\"\nmin = \"1m\"\n",
        RuleErrorKind::MissingField,
        3,
    );
    assert!(e.message().contains("`max`"), "{e}");
}

#[test]
fn bad_values() {
    fails(
        "[[rule]]\nname = \"a\"\nentity = 3\nkeys = [\"k\"]\n",
        RuleErrorKind::BadValue,
        3,
    );
    fails(
        "[[rule]]\nname = \"  \"\nentity = \"u\"\nkeys = [\"k\"]\n",
        RuleErrorKind::BadValue,
        2,
    );
    let e = fails(
        "\n\n[[rule]]\nname = \"a\"\nentity = \"u\"\n",
        RuleErrorKind::BadValue,
        3,
    );
    assert!(e.message().contains("invalidates nothing"), "{e}");
    fails(
        "[policy.u]\nttl = \"5m\"\njitter = 1.0\n",
        RuleErrorKind::BadValue,
        3,
    );
    fails(
        "[policy.u]\nttl = \"5m\"\njitter = -0.1\n",
        RuleErrorKind::BadValue,
        3,
    );
    fails(
        "[policy.u]\nttl = \"5m\"\n\nearly_refresh = 0.0\n",
        RuleErrorKind::BadValue,
        4,
    );
    fails(
        "[policy.u]\nttl = \"5m\"\nstrategy = \"lru\"\n",
        RuleErrorKind::BadValue,
        3,
    );
    fails(
        "[policy.u]\nttl = \"5m\"\nmin = \"1m\"\n",
        RuleErrorKind::BadValue,
        3,
    );
    fails(
        "[policy.u]\nstrategy = \"never\"\nttl = \"5m\"\n",
        RuleErrorKind::BadValue,
        3,
    );
    let e = fails("[rule]\nname = \"a\"\n", RuleErrorKind::BadValue, 1);
    assert!(e.message().contains("sequence"), "{e}");
}

#[test]
fn bad_templates_name_line_and_column() {
    let e = fails(
        "[[rule]]\nname = \"a\"\nentity = \"u\"\nkeys = [\"ok:{id}\",\n  \"user:{id\"]\n",
        RuleErrorKind::BadTemplate,
        5,
    );
    // `{` of `user:{id` is the 6th character of the string, which starts after the quote in
    // column 3.
    assert_eq!(e.column(), Some(9));
    assert!(
        e.message().contains("`user:{id`") && e.message().contains("`keys` of rule `a`"),
        "{e}"
    );
    let e = fails(
        "[policy.u]\ntags = [\"org:{nwe.org_id}\"]\n",
        RuleErrorKind::BadTemplate,
        2,
    );
    assert!(e.message().contains("policy `u`"), "{e}");
    fails(
        "[[rule]]\nname = \"a\"\nentity = \"u\"\nglobs = [\"\"]\n",
        RuleErrorKind::BadTemplate,
        4,
    );
}

#[test]
fn bad_durations() {
    for (value, needle) in [
        ("\"5x\"", "`x`"),
        ("30", "needs a unit"),
        ("\"0s\"", "zero"),
        ("true", "boolean"),
    ] {
        let e = fails(
            &format!("[policy.u]\nstrategy = \"fixed\"\nttl = {value}\n"),
            RuleErrorKind::BadDuration,
            3,
        );
        assert!(e.message().contains(needle), "{e}");
    }
    fails(
        "[policy.u]\nttl = \"5m\"\nstrategy = \"adaptive\"\nmin = \"2h\"\nmax = \"1h\"\n",
        RuleErrorKind::BadDuration,
        4,
    );
    fails(
        "[policy.u]\nttl = \"5h\"\nstrategy = \"adaptive\"\nmin = \"1m\"\nmax = \"1h\"\n",
        RuleErrorKind::BadDuration,
        2,
    );
}

#[test]
fn bad_operation_on_line_seven() {
    let src = "# users\n\n[[rule]]\nname = \"x\"\nentity = \"users\"\noperations = [\n  \"upsert\",\n]\nkeys = [\"k\"]\n";
    let e = fails(src, RuleErrorKind::BadOperation, 7);
    assert_eq!(e.column(), Some(3));
    assert_eq!(
        e.to_string(),
        "line 7: unknown operation `upsert` in rule `x`; expected one of create, update, delete, bulk, schema"
    );
}

#[test]
fn bad_conditions() {
    let rule =
        |when: &str| format!("[[rule]]\nname = \"c\"\nentity = \"u\"\nkeys = [\"k\"]\n{when}\n");
    let e = fails(
        &rule("when = { \"neww.status\" = 1 }"),
        RuleErrorKind::BadCondition,
        5,
    );
    assert!(e.message().contains("`neww.`"), "{e}");
    let e = fails(
        &rule("when = { status = { gte = 1 } }"),
        RuleErrorKind::BadCondition,
        5,
    );
    assert!(e.message().contains("`gte`"), "{e}");
    fails(
        &rule("when = { age = { gt = \"ten\" } }"),
        RuleErrorKind::BadCondition,
        5,
    );
    fails(
        &rule("when = { status = [\"a\", \"b\"] }"),
        RuleErrorKind::BadCondition,
        5,
    );
    fails(
        &rule("when = { status = {} }"),
        RuleErrorKind::BadCondition,
        5,
    );
    fails(
        &rule("when = { status = { in = [] } }"),
        RuleErrorKind::BadCondition,
        5,
    );
    fails(
        &rule("when = { status = { present = 1 } }"),
        RuleErrorKind::BadCondition,
        5,
    );
    let e = fails(
        &rule("\n[rule.when]\nok = 1\n\"bad name\" = 2"),
        RuleErrorKind::BadCondition,
        8,
    );
    assert_eq!(
        e.column(),
        Some(5),
        "points at the space inside the quoted key"
    );
    let e = fails(
        &rule("when = { new.status = \"active\" }"),
        RuleErrorKind::BadCondition,
        5,
    );
    assert!(e.message().contains("must be quoted"), "{e}");
    let e = fails(
        &rule("changed = [\"email\", \"new.email\"]"),
        RuleErrorKind::BadCondition,
        5,
    );
    assert!(e.message().contains("write `email`"), "{e}");
}

#[test]
fn duplicates() {
    let e = fails(
        "[[rule]]\nname = \"a\"\nentity = \"u\"\nkeys = [\"k\"]\n[[rule]]\nname = \"a\"\nentity = \"v\"\nkeys = [\"k\"]\n",
        RuleErrorKind::Duplicate,
        6,
    );
    assert!(e.message().contains("line 2"), "{e}");
    fails(
        "[[rule]]\nname = \"a\"\nname = \"b\"\n",
        RuleErrorKind::Duplicate,
        3,
    );
    fails(
        "[policy.u]\nttl = \"1m\"\n[policy.u]\nttl = \"2m\"\n",
        RuleErrorKind::Duplicate,
        3,
    );
}

#[test]
fn io_errors_carry_the_path() {
    let path = std::env::temp_dir().join("lethe-rules-unit-no-such-file.toml");
    let e = RuleSet::from_file(&path).unwrap_err();
    assert_eq!(
        (e.kind(), e.line(), e.path()),
        (RuleErrorKind::Io, None, Some(path.as_path()))
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read", path.display())),
        "{e}"
    );
}

#[test]
fn loading_is_all_or_nothing() {
    // Two good rules and a good policy, then one bad value at the very end: the good parts
    // must not come back on their own.
    let good = "[[rule]]\nname = \"a\"\nentity = \"u\"\nkeys = [\"k\"]\n[[rule]]\nname = \"b\"\nentity = \"u\"\nkeys = [\"j\"]\n[policy.p]\nttl = \"1m\"\n";
    assert_eq!(load(good).rules().len(), 2);
    fails(
        &format!("{good}jitter = 2.0\n"),
        RuleErrorKind::BadValue,
        11,
    );
    // A bad rule after good ones, with a good policy before them.
    let bad_rule = format!(
        "[policy.q]\nttl = \"1m\"\n{good}[[rule]]\nname = \"c\"\nentity = \"u\"\nkeys = [\"{{\"]\n"
    );
    fails(&bad_rule, RuleErrorKind::BadTemplate, 16);
}

// ---------------------------------------------------------------------------------------------
// Policies

#[test]
fn policies_load_alone_with_every_strategy() {
    let set = load(
        r#"
[policy.fixed]
ttl = "5m"
[policy.sliding]
ttl = "90s"
strategy = "sliding"
[policy.adaptive]
ttl = "5m"
strategy = "adaptive"
min = "30s"
max = "1h"
jitter = 0.25
early_refresh = 1.5
[policy.forever]
strategy = "never"
[policy.tags_only]
tags = ["t:{id}"]
"#,
    );
    assert!(set.rules().is_empty());
    let ttl = |name: &str| set.policy(name).unwrap().ttl;
    assert_eq!(
        ttl("fixed"),
        Some(PolicyTtl::Fixed(Duration::from_secs(300)))
    );
    assert_eq!(
        ttl("sliding"),
        Some(PolicyTtl::Sliding(Duration::from_secs(90)))
    );
    assert_eq!(
        ttl("adaptive"),
        Some(PolicyTtl::Adaptive {
            base: Duration::from_secs(300),
            min: Duration::from_secs(30),
            max: Duration::from_secs(3600)
        })
    );
    assert_eq!(ttl("forever"), Some(PolicyTtl::Never));
    assert_eq!(ttl("tags_only"), None);
    let adaptive = set.policy("adaptive").unwrap();
    assert_eq!(
        (adaptive.jitter, adaptive.early_refresh_beta),
        (Some(0.25), Some(1.5))
    );
    assert_eq!(set.policy("fixed").unwrap().jitter, None);
    assert_eq!(
        set.policies().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["adaptive", "fixed", "forever", "sliding", "tags_only"]
    );
    assert!(set.policy("nope").is_none());
}

#[test]
fn policy_rendering_names_the_missing_field() {
    let set = load(
        "[policy.user]\ntags = [\"user:{id}\", \"org:{org_id}\", \"user:{id}\"]\ndepends_on = [\"org:{org_id}\", \"plan:{new.plan}\"]\n",
    );
    let user = set.policy("user").unwrap();
    assert_eq!(user.tags().len(), 3);
    let full = |f: &str| match f {
        "id" => Some("42".to_owned()),
        "org_id" => Some("7".to_owned()),
        "new.plan" => Some("pro".to_owned()),
        _ => None,
    };
    assert_eq!(user.render_tags(full).unwrap(), ["user:42", "org:7"]);
    assert_eq!(
        user.render_dependencies(full).unwrap(),
        ["org:7", "plan:pro"]
    );
    let no_org = |f: &str| (f == "id").then(|| "42".to_owned());
    let err = user.render_tags(no_org).unwrap_err();
    assert_eq!((err.field(), err.template()), ("org_id", "org:{org_id}"));
    let e = Event::new("users", Operation::Create)
        .id("1")
        .with_new("org_id", 3)
        .with_new("plan", "free");
    assert_eq!(
        user.render_dependencies(|f| e.lookup(f)).unwrap(),
        ["org:3", "plan:free"]
    );
}
