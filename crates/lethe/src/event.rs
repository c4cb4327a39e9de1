//! Invalidation events: what changed in the source of truth, in the shape the rules read.
//!
//! An [`Event`] names an entity type (a table, a collection), an [`Operation`], usually the id of
//! the changed row, and whatever field values the source could supply: old values for updates and
//! deletes, new values for creates and updates. Sources differ in how much they send (a trigger
//! sees both rows, some change feeds send only the changed columns, bulk and schema events carry
//! no row at all), so every part but the entity and operation is optional, and the rules treat a
//! value the event does not carry as unknown rather than guessing it.
//!
//! ```
//! use lethe::{event::Event, event::FieldValue, event::Operation};
//!
//! let event = Event::new("users", Operation::Update)
//!     .id("42")
//!     .with_old("department_id", 7)
//!     .with_new("department_id", 9)
//!     .with_old("email", "ada@example.com");
//! assert_eq!(event.field("old.department_id").as_deref(), Some(&FieldValue::Int(7)));
//! // A bare name means the new value when the event has one, else the old value.
//! assert_eq!(event.lookup("department_id").as_deref(), Some("9"));
//! assert_eq!(event.lookup("email").as_deref(), Some("ada@example.com"));
//! assert_eq!(event.lookup("id").as_deref(), Some("42"));
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::str::FromStr;

/// What happened to the entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// A row was created (SQL `INSERT`).
    Create,
    /// A row was changed.
    Update,
    /// A row was deleted.
    Delete,
    /// Many rows changed at once and the source does not say which (a bulk update, `TRUNCATE`).
    Bulk,
    /// The entity's shape changed (a migration), so anything derived from it may be stale.
    Schema,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: [Operation; 5] = [
        Operation::Create,
        Operation::Update,
        Operation::Delete,
        Operation::Bulk,
        Operation::Schema,
    ];

    /// The lowercase name, as written in rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Bulk => "bulk",
            Operation::Schema => "schema",
        }
    }

    // Rule matching's operation mask; unused when the `rules` feature is off.
    #[cfg_attr(not(feature = "rules"), allow(dead_code))]
    pub(crate) fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the names [`Operation::as_str`] gives, in any ASCII case, plus the SQL spellings a
/// trigger reports in `TG_OP`: `insert` for [`Operation::Create`] and `truncate` for
/// [`Operation::Bulk`], so a trigger's value can be passed through unchanged.
impl FromStr for Operation {
    type Err = ParseOperationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let op = match s.to_ascii_lowercase().as_str() {
            "create" | "insert" => Operation::Create,
            "update" => Operation::Update,
            "delete" => Operation::Delete,
            "bulk" | "truncate" => Operation::Bulk,
            "schema" => Operation::Schema,
            _ => {
                return Err(ParseOperationError {
                    input: s.to_owned(),
                });
            }
        };
        Ok(op)
    }
}

/// A string that names no [`Operation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOperationError {
    input: String,
}

impl ParseOperationError {
    /// The text that was not recognised.
    pub fn input(&self) -> &str {
        &self.input
    }
}

impl fmt::Display for ParseOperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown operation `{}`; expected one of create (or insert), update, delete, bulk \
             (or truncate), schema",
            self.input
        )
    }
}

impl std::error::Error for ParseOperationError {}

/// One field's value, as far as invalidation cares: enough to build keys and test conditions.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// SQL `NULL`, JSON `null`. Templates treat it as missing: a key is never built from it.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(String),
}

impl FieldValue {
    /// Whether this is [`FieldValue::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, FieldValue::Null)
    }

    /// The value as a number: integers, floats, and text that parses as a number (change feeds
    /// often send every column as text).
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FieldValue::Int(i) => Some(*i as f64),
            FieldValue::Float(x) => Some(*x),
            FieldValue::Text(t) => t.trim().parse().ok(),
            FieldValue::Null | FieldValue::Bool(_) => None,
        }
    }

    /// Equality as a rule means it: numbers compare by value across integer, float and numeric
    /// text (so `Int(1)`, `Float(1.0)` and `Text("1")` are the same), everything else by variant
    /// and content. `Null` equals only `Null`.
    pub fn same_as(&self, other: &FieldValue) -> bool {
        use FieldValue::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Text(a), Text(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Int(_) | Float(_) | Text(_), Int(_) | Float(_) | Text(_)) => {
                match (self.as_number(), other.as_number()) {
                    (Some(a), Some(b)) => a == b,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// Text as is (no quotes), numbers in Rust's shortest round-trip form (`Float(2.0)` is `2`),
/// booleans as `true`/`false`, and `Null` as the empty string. Templates never render `Null`
/// (they produce no target instead), so the empty string only shows up when formatting directly.
impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Null => Ok(()),
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::Int(i) => write!(f, "{i}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Text(t) => f.write_str(t),
        }
    }
}

impl From<&str> for FieldValue {
    fn from(v: &str) -> Self {
        FieldValue::Text(v.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(v: String) -> Self {
        FieldValue::Text(v)
    }
}

impl From<i64> for FieldValue {
    fn from(v: i64) -> Self {
        FieldValue::Int(v)
    }
}

impl From<i32> for FieldValue {
    fn from(v: i32) -> Self {
        FieldValue::Int(v.into())
    }
}

impl From<u32> for FieldValue {
    fn from(v: u32) -> Self {
        FieldValue::Int(v.into())
    }
}

impl From<bool> for FieldValue {
    fn from(v: bool) -> Self {
        FieldValue::Bool(v)
    }
}

impl From<f64> for FieldValue {
    fn from(v: f64) -> Self {
        FieldValue::Float(v)
    }
}

/// `None` is [`FieldValue::Null`], so a nullable column converts without a `match`.
impl<T: Into<FieldValue>> From<Option<T>> for FieldValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(FieldValue::Null, Into::into)
    }
}

/// A change to one entity (or, for bulk and schema events, to an entity type).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Event {
    /// The entity type: a table or collection name such as `users`.
    pub entity: String,
    /// What happened.
    pub operation: Operation,
    /// The changed row's id, when there is one row.
    pub id: Option<String>,
    /// Field values before the change, where the source knows them.
    pub old: BTreeMap<String, FieldValue>,
    /// Field values after the change, where the source knows them.
    pub new: BTreeMap<String, FieldValue>,
}

impl Event {
    /// An event with no id and no field values.
    pub fn new(entity: impl Into<String>, operation: Operation) -> Self {
        Event {
            entity: entity.into(),
            operation,
            id: None,
            old: BTreeMap::new(),
            new: BTreeMap::new(),
        }
    }

    /// Sets the changed row's id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Adds a value the field had before the change.
    pub fn with_old(mut self, field: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.old.insert(field.into(), value.into());
        self
    }

    /// Adds a value the field has after the change.
    pub fn with_new(mut self, field: impl Into<String>, value: impl Into<FieldValue>) -> Self {
        self.new.insert(field.into(), value.into());
        self
    }

    /// The value a path names: `new.x` and `old.x` read one side; a bare `x` reads the new value
    /// if the event has one, else the old one (so the same path works for creates, updates and
    /// deletes); `id` is the event's id, or failing that a field named `id`.
    ///
    /// The id is not stored as a [`FieldValue`], so it comes back owned; fields come back
    /// borrowed.
    pub fn field(&self, path: &str) -> Option<Cow<'_, FieldValue>> {
        self.resolve(&FieldPath::split(path)).map(Value::into_cow)
    }

    /// The text a template substitutes for `path` (resolved as [`Event::field`] does): `None`
    /// when the event does not carry the value or it is `Null`. Usable directly as the lookup
    /// of [`Template::render`](crate::template::Template::render).
    pub fn lookup(&self, path: &str) -> Option<String> {
        let mut out = String::new();
        self.resolve(&FieldPath::split(path))?
            .write_to(&mut out)
            .then_some(out)
    }

    pub(crate) fn resolve(&self, path: &FieldPath) -> Option<Value<'_>> {
        let name = path.name.as_str();
        match path.scope {
            Scope::New => self.new.get(name).map(Value::Field),
            Scope::Old => self.old.get(name).map(Value::Field),
            Scope::Any => {
                if let (Some(id), "id") = (&self.id, name) {
                    return Some(Value::Id(id));
                }
                self.new
                    .get(name)
                    .or_else(|| self.old.get(name))
                    .map(Value::Field)
            }
        }
    }
}

/// Which side of the change a path reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    /// A bare name: the new value if present, else the old.
    Any,
    New,
    Old,
}

/// A parsed field reference (`id`, `x`, `new.x`, `old.x`), shared by templates and conditions so
/// both resolve names the same way. `text` is the reference as written, which is what a
/// caller-supplied lookup receives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FieldPath {
    pub(crate) scope: Scope,
    pub(crate) name: String,
    pub(crate) text: String,
}

impl FieldPath {
    /// Lenient split for paths that come from code rather than rule files: anything that is not
    /// `new.`/`old.` prefixed is a bare name. Rule files go through the strict parser in
    /// `template.rs`, which rejects names this would accept.
    pub(crate) fn split(path: &str) -> FieldPath {
        let (scope, name) = if let Some(n) = path.strip_prefix("new.") {
            (Scope::New, n)
        } else if let Some(n) = path.strip_prefix("old.") {
            (Scope::Old, n)
        } else {
            (Scope::Any, path)
        };
        FieldPath {
            scope,
            name: name.to_owned(),
            text: path.to_owned(),
        }
    }
}

/// A resolved value, borrowed either way so rendering a key allocates only the key.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Value<'a> {
    Id(&'a str),
    Field(&'a FieldValue),
}

impl<'a> Value<'a> {
    /// Appends the value's text; false (and nothing written) for `Null`, which must not become
    /// part of a key.
    pub(crate) fn write_to(self, out: &mut String) -> bool {
        match self {
            Value::Id(id) => out.push_str(id),
            Value::Field(FieldValue::Null) => return false,
            Value::Field(FieldValue::Text(t)) => out.push_str(t),
            // Writing to a String cannot fail.
            Value::Field(v) => {
                let _ = write!(out, "{v}");
            }
        }
        true
    }

    pub(crate) fn into_cow(self) -> Cow<'a, FieldValue> {
        match self {
            Value::Id(id) => Cow::Owned(FieldValue::Text(id.to_owned())),
            Value::Field(v) => Cow::Borrowed(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_case_insensitively_with_sql_aliases() {
        for op in Operation::ALL {
            assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
            assert_eq!(op.as_str().to_uppercase().parse::<Operation>(), Ok(op));
        }
        assert_eq!("insert".parse::<Operation>(), Ok(Operation::Create));
        assert_eq!("TRUNCATE".parse::<Operation>(), Ok(Operation::Bulk));
        let err = "upsert".parse::<Operation>().unwrap_err();
        assert_eq!(err.input(), "upsert");
        assert!(err.to_string().contains("`upsert`"), "{err}");
    }

    #[test]
    fn field_values_display_without_quotes_and_null_as_empty() {
        assert_eq!(FieldValue::from("a b").to_string(), "a b");
        assert_eq!(FieldValue::from(42).to_string(), "42");
        assert_eq!(FieldValue::from(2.0).to_string(), "2");
        assert_eq!(FieldValue::from(2.5).to_string(), "2.5");
        assert_eq!(FieldValue::from(true).to_string(), "true");
        assert_eq!(FieldValue::Null.to_string(), "");
        assert_eq!(FieldValue::from(None::<i64>), FieldValue::Null);
        assert_eq!(FieldValue::from(Some(3_i64)), FieldValue::Int(3));
    }

    #[test]
    fn same_as_compares_numbers_by_value() {
        assert!(FieldValue::Int(1).same_as(&FieldValue::Float(1.0)));
        assert!(FieldValue::Text("1".into()).same_as(&FieldValue::Int(1)));
        assert!(!FieldValue::Int(1).same_as(&FieldValue::Int(2)));
        assert!(!FieldValue::Text("a".into()).same_as(&FieldValue::Int(1)));
        assert!(!FieldValue::Bool(true).same_as(&FieldValue::Text("true".into())));
        assert!(!FieldValue::Null.same_as(&FieldValue::Text(String::new())));
        assert!(FieldValue::Null.same_as(&FieldValue::Null));
        // Text compares as text when both sides are text, even if numeric.
        assert!(!FieldValue::Text("1.0".into()).same_as(&FieldValue::Text("1".into())));
    }

    #[test]
    fn field_resolves_scopes_and_id() {
        let e = Event::new("users", Operation::Update)
            .id("42")
            .with_old("dept", 7)
            .with_new("dept", 9)
            .with_old("only_old", "x")
            .with_new("gone", FieldValue::Null);
        assert_eq!(e.field("new.dept").as_deref(), Some(&FieldValue::Int(9)));
        assert_eq!(e.field("old.dept").as_deref(), Some(&FieldValue::Int(7)));
        assert_eq!(e.field("dept").as_deref(), Some(&FieldValue::Int(9)));
        assert_eq!(
            e.field("only_old").as_deref(),
            Some(&FieldValue::Text("x".into()))
        );
        assert_eq!(e.field("new.only_old"), None);
        assert_eq!(
            e.field("id").as_deref(),
            Some(&FieldValue::Text("42".into()))
        );
        assert_eq!(e.field("missing"), None);
        // Null is a value for `field` but not for `lookup`.
        assert_eq!(e.field("gone").as_deref(), Some(&FieldValue::Null));
        assert_eq!(e.lookup("gone"), None);
        assert_eq!(e.lookup("old.dept").as_deref(), Some("7"));
    }

    #[test]
    fn id_falls_back_to_an_id_field() {
        let e = Event::new("users", Operation::Delete).with_old("id", 5);
        assert_eq!(e.lookup("id").as_deref(), Some("5"));
        let e = e.id("6");
        assert_eq!(e.lookup("id").as_deref(), Some("6"));
        assert_eq!(e.lookup("old.id").as_deref(), Some("5"));
    }
}
