//! Field conditions: the `when` and `changed` parts of a rule.
//!
//! A condition only holds on a value the event carries. An event that does not carry the field
//! (or carries `Null`) fails every comparison, `ne` included, and passes only
//! `present = false`: a rule should fire on what the source said, not on a guess about what it
//! left out. `changed` leans the other way, because a missed invalidation (a stale entry) costs
//! more than a spurious one (a miss): a field counts as changed unless both sides are known and
//! equal.

use crate::event::{Event, FieldPath, FieldValue};
use std::fmt;

/// One test of one field, from a rule's `when` table.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub(crate) path: FieldPath,
    pub(crate) test: Test,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Test {
    Eq(FieldValue),
    Ne(FieldValue),
    Gt(f64),
    Ge(f64),
    Lt(f64),
    Le(f64),
    In(Vec<FieldValue>),
    Present(bool),
}

impl Condition {
    /// The field path as written (`new.status`).
    pub fn path(&self) -> &str {
        &self.path.text
    }

    /// Whether the event meets the condition.
    pub fn holds(&self, event: &Event) -> bool {
        let value = event
            .resolve(&self.path)
            .map(|v| v.into_cow())
            .filter(|v| !v.is_null());
        let Some(value) = value else {
            return self.test == Test::Present(false);
        };
        let number = || value.as_number();
        match &self.test {
            Test::Eq(want) => value.same_as(want),
            Test::Ne(want) => !value.same_as(want),
            Test::Gt(n) => number().is_some_and(|v| v > *n),
            Test::Ge(n) => number().is_some_and(|v| v >= *n),
            Test::Lt(n) => number().is_some_and(|v| v < *n),
            Test::Le(n) => number().is_some_and(|v| v <= *n),
            Test::In(set) => set.iter().any(|w| value.same_as(w)),
            Test::Present(p) => *p,
        }
    }
}

/// `new.age > 18`, `new.status = "active"`, `old.plan in ["pro", "team"]`, `new.deleted_at is
/// present`.
impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path();
        match &self.test {
            Test::Eq(v) => write!(f, "{path} = {}", Quoted(v)),
            Test::Ne(v) => write!(f, "{path} != {}", Quoted(v)),
            Test::Gt(n) => write!(f, "{path} > {n}"),
            Test::Ge(n) => write!(f, "{path} >= {n}"),
            Test::Lt(n) => write!(f, "{path} < {n}"),
            Test::Le(n) => write!(f, "{path} <= {n}"),
            Test::In(set) => {
                write!(f, "{path} in [")?;
                for (i, v) in set.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", Quoted(v))?;
                }
                f.write_str("]")
            }
            Test::Present(true) => write!(f, "{path} is present"),
            Test::Present(false) => write!(f, "{path} is absent"),
        }
    }
}

struct Quoted<'a>(&'a FieldValue);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            FieldValue::Text(t) => write!(f, "{t:?}"),
            FieldValue::Null => f.write_str("null"),
            v => write!(f, "{v}"),
        }
    }
}

/// Whether `field` changed: true unless the event knows both sides and they are equal (by
/// [`FieldValue::same_as`]), or knows neither.
pub(crate) fn changed(event: &Event, field: &str) -> bool {
    match (event.old.get(field), event.new.get(field)) {
        (None, None) => false,
        (Some(old), Some(new)) => !old.same_as(new),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Operation, Scope};

    fn cond(path: &str, test: Test) -> Condition {
        Condition {
            path: crate::template::parse_field_path(path).unwrap(),
            test,
        }
    }

    #[test]
    fn comparisons_need_a_carried_value() {
        let e = Event::new("users", Operation::Update)
            .with_new("status", "active")
            .with_new("age", 20)
            .with_new("score", "7.5")
            .with_new("deleted_at", FieldValue::Null);
        assert!(cond("new.status", Test::Eq("active".into())).holds(&e));
        assert!(!cond("new.status", Test::Eq("banned".into())).holds(&e));
        assert!(cond("new.status", Test::Ne("banned".into())).holds(&e));
        assert!(!cond("old.status", Test::Ne("banned".into())).holds(&e));
        assert!(cond("age", Test::Gt(18.0)).holds(&e));
        assert!(!cond("age", Test::Gt(20.0)).holds(&e));
        assert!(cond("age", Test::Ge(20.0)).holds(&e));
        assert!(cond("age", Test::Lt(21.0)).holds(&e));
        assert!(!cond("age", Test::Le(19.0)).holds(&e));
        assert!(
            cond("score", Test::Gt(7.0)).holds(&e),
            "numeric text compares as a number"
        );
        assert!(
            !cond("status", Test::Gt(0.0)).holds(&e),
            "text is not a number"
        );
        assert!(cond("age", Test::Eq(FieldValue::Float(20.0))).holds(&e));
        assert!(cond("status", Test::In(vec!["x".into(), "active".into()])).holds(&e));
        assert!(!cond("status", Test::In(vec!["x".into()])).holds(&e));
        assert!(cond("status", Test::Present(true)).holds(&e));
        assert!(
            !cond("deleted_at", Test::Present(true)).holds(&e),
            "null is absent"
        );
        assert!(cond("deleted_at", Test::Present(false)).holds(&e));
        assert!(cond("nothing", Test::Present(false)).holds(&e));
        assert!(!cond("deleted_at", Test::Ne("x".into())).holds(&e));
    }

    #[test]
    fn changed_is_true_unless_known_equal() {
        let e = Event::new("users", Operation::Update)
            .with_old("email", "a@x")
            .with_new("email", "b@x")
            .with_old("name", "Ada")
            .with_new("name", "Ada")
            .with_old("n", 1)
            .with_new("n", 1.0)
            .with_new("only_new", 1)
            .with_old("only_old", 1);
        assert!(changed(&e, "email"));
        assert!(!changed(&e, "name"));
        assert!(!changed(&e, "n"));
        assert!(changed(&e, "only_new"));
        assert!(changed(&e, "only_old"));
        assert!(!changed(&e, "absent"));
    }

    #[test]
    fn conditions_display_readably() {
        assert_eq!(
            cond("new.status", Test::Eq("active".into())).to_string(),
            "new.status = \"active\""
        );
        assert_eq!(cond("age", Test::Ge(18.0)).to_string(), "age >= 18");
        assert_eq!(
            cond("plan", Test::In(vec!["pro".into(), 3.into()])).to_string(),
            "plan in [\"pro\", 3]"
        );
        assert_eq!(cond("x", Test::Present(false)).to_string(), "x is absent");
        assert_eq!(
            Scope::Any,
            crate::template::parse_field_path("x").unwrap().scope
        );
    }
}
