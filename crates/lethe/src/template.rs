//! Key templates: `user:{id}:profile`, `department:{new.department_id}`, `{old.department_id}`.
//!
//! A template is literal text with placeholders in braces. A placeholder names a field the way
//! an event path does: `new.x` or `old.x` for one side of a change, a bare `x` for the new value
//! falling back to the old, and `id` for the event's id. `{{` and `}}` are literal braces.
//!
//! Templates are parsed once, when a rule file loads, so a typo fails there with its column
//! instead of producing wrong keys at run time. Rendering is all or nothing: if any placeholder
//! has no value (or a `Null` one) the template renders nothing, because a key built around a
//! hole would be the wrong key. That is what makes `{old.department_id}` safe to write in a rule
//! that also sees creates, which have no old values: it simply yields no target for them.
//!
//! ```
//! use lethe::{event::Event, event::Operation, template::Template};
//!
//! let t = Template::parse("department:{old.department_id}").unwrap();
//! let moved = Event::new("users", Operation::Update)
//!     .with_old("department_id", 7)
//!     .with_new("department_id", 9);
//! assert_eq!(t.render(|p| moved.lookup(p)).as_deref(), Some("department:7"));
//!
//! let created = Event::new("users", Operation::Create).with_new("department_id", 9);
//! assert_eq!(t.render(|p| created.lookup(p)), None);
//! ```

use crate::event::{Event, FieldPath, Scope};
use std::fmt;
use std::str::FromStr;

/// Literal text with `{field}` placeholders, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Part {
    Literal(String),
    Field(FieldPath),
}

impl Template {
    /// Parses a template. Errors name the 1-based character column of the problem: an empty
    /// template, an unbalanced brace, an empty placeholder, a qualifier other than `new.` or
    /// `old.`, or a character that cannot be in a field name (letters, digits, `_` and `-` can).
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        use TemplateErrorKind::*;
        if source.is_empty() {
            return Err(TemplateError::new(Empty, 1, "the template is empty"));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = source.chars().zip(1..).peekable();
        while let Some((c, column)) = chars.next() {
            match c {
                '{' if chars.next_if(|&(n, _)| n == '{').is_some() => literal.push('{'),
                '}' if chars.next_if(|&(n, _)| n == '}').is_some() => literal.push('}'),
                '}' => {
                    return Err(TemplateError::new(
                        Unbalanced,
                        column,
                        "`}` without a matching `{` (write `}}` for a literal brace)",
                    ));
                }
                '{' => {
                    let mut text = String::new();
                    loop {
                        match chars.next() {
                            None => {
                                return Err(TemplateError::new(
                                    Unbalanced,
                                    column,
                                    "`{` is never closed (write `{{` for a literal brace)",
                                ));
                            }
                            Some(('}', _)) => break,
                            Some(('{', inner)) => {
                                return Err(TemplateError::new(
                                    Unbalanced,
                                    inner,
                                    "`{` inside a placeholder",
                                ));
                            }
                            Some((ch, _)) => text.push(ch),
                        }
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Field(parse_path(&text, column)?));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The placeholders as written inside the braces (`id`, `new.department_id`), in order,
    /// repeats included. These are the strings a lookup passed to [`Template::render`] receives.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(f) => Some(f.text.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the template has no placeholders (so it renders to the same text every time).
    pub fn is_literal(&self) -> bool {
        self.placeholders().next().is_none()
    }

    /// Substitutes each placeholder with `lookup(placeholder)`; `None` if any lookup returns
    /// `None`. The lookup should return `None` for a null value too (as [`Event::lookup`] does):
    /// a key must never be built from a missing or null field.
    pub fn render(&self, lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.try_render(lookup).ok()
    }

    /// As [`Template::render`], but says which placeholder had no value.
    pub fn try_render(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Field(f) => match lookup(&f.text) {
                    Some(v) => out.push_str(&v),
                    None => {
                        return Err(RenderError {
                            template: self.source.clone(),
                            field: f.text.clone(),
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    /// Renders against an event's id and fields (as [`Event::field`] resolves them); `None` if
    /// any placeholder is missing or null.
    pub fn render_event(&self, event: &Event) -> Option<String> {
        let mut out = String::new();
        self.render_event_into(event, Escape::None, &mut out)
            .then_some(out)
    }

    /// Appends the rendering to `out`, escaping substituted values as `escape` says; false (with
    /// `out` in an unspecified state) when a placeholder has no value. Reads the event directly
    /// rather than through a lookup so a key costs one allocation.
    pub(crate) fn render_event_into(
        &self,
        event: &Event,
        escape: Escape,
        out: &mut String,
    ) -> bool {
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Field(f) => {
                    let Some(value) = event.resolve(f) else {
                        return false;
                    };
                    match escape {
                        Escape::None => {
                            if !value.write_to(out) {
                                return false;
                            }
                        }
                        Escape::Glob => {
                            let mut raw = String::new();
                            if !value.write_to(&mut raw) {
                                return false;
                            }
                            escape_glob(&raw, out);
                        }
                    }
                }
            }
        }
        true
    }
}

/// How substituted values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escape {
    None,
    /// For glob targets: a field value is data, so a `*` in a user's name must match only `*`,
    /// not every key. Uses the Redis `KEYS` escape (`\`), which is the engine's glob syntax.
    /// Only rules render glob targets; unused when the `rules` feature is off.
    #[cfg_attr(not(feature = "rules"), allow(dead_code))]
    Glob,
}

fn escape_glob(raw: &str, out: &mut String) {
    for c in raw.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `open` is the column of the `{`; the text starts one column later.
fn parse_path(text: &str, open: usize) -> Result<FieldPath, TemplateError> {
    use TemplateErrorKind::*;
    if text.is_empty() {
        return Err(TemplateError::new(
            EmptyPlaceholder,
            open,
            "empty placeholder `{}` (write `{{}}` for literal braces)",
        ));
    }
    let (scope, name, name_column) = match text.split_once('.') {
        Some(("new", name)) => (Scope::New, name, open + 5),
        Some(("old", name)) => (Scope::Old, name, open + 5),
        Some((prefix, _)) => {
            return Err(TemplateError::new(
                UnknownPrefix,
                open + 1,
                format!(
                    "unknown qualifier `{prefix}.` in `{{{text}}}`; only `new.` and `old.` may qualify a field"
                ),
            ));
        }
        None => (Scope::Any, text, open + 1),
    };
    if name.is_empty() {
        return Err(TemplateError::new(
            EmptyPlaceholder,
            open,
            format!("no field name after `{text}` in `{{{text}}}`"),
        ));
    }
    if let Some((c, column)) = name
        .chars()
        .zip(name_column..)
        .find(|&(c, _)| !is_name_char(c))
    {
        let hint = if c.is_whitespace() {
            " (field names have no spaces)"
        } else {
            ""
        };
        return Err(TemplateError::new(
            BadName,
            column,
            format!("`{c}` cannot be part of a field name in `{{{text}}}`{hint}"),
        ));
    }
    Ok(FieldPath {
        scope,
        name: name.to_owned(),
        text: text.to_owned(),
    })
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// Checks a field reference written outside braces (a rule condition's path) with the same
/// grammar as a placeholder, so conditions and templates accept the same names. Unused when
/// the `rules` feature is off.
#[cfg_attr(not(feature = "rules"), allow(dead_code))]
pub(crate) fn parse_field_path(text: &str) -> Result<FieldPath, TemplateError> {
    // Columns are relative to a virtual `{` at column 0, so they land on the text's own columns.
    parse_path(text, 0).map_err(|mut e| {
        e.column = e.column.max(1);
        e.message = e
            .message
            .replace(&format!("`{{{text}}}`"), &format!("`{text}`"));
        if e.kind == TemplateErrorKind::EmptyPlaceholder && text.is_empty() {
            e.message = "empty field name".to_owned();
        }
        e
    })
}

/// The template as written.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Template {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Template::parse(s)
    }
}

/// What is wrong with a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateErrorKind {
    /// The template is the empty string.
    Empty,
    /// A `{` without its `}`, or the reverse.
    Unbalanced,
    /// `{}`, or `{new.}`.
    EmptyPlaceholder,
    /// A qualifier other than `new.` or `old.`.
    UnknownPrefix,
    /// A character that cannot be part of a field name.
    BadName,
}

/// A template that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    kind: TemplateErrorKind,
    column: usize,
    message: String,
}

impl TemplateError {
    fn new(kind: TemplateErrorKind, column: usize, message: impl Into<String>) -> Self {
        TemplateError {
            kind,
            column,
            message: message.into(),
        }
    }

    /// The kind of problem.
    pub fn kind(&self) -> TemplateErrorKind {
        self.kind
    }

    /// The 1-based character column in the template where the problem is.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The explanation, without the column.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for TemplateError {}

/// A template could not be rendered because a placeholder had no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    template: String,
    field: String,
}

impl RenderError {
    /// The template, as written.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The placeholder that had no value, as written (`org_id`, `new.org_id`).
    pub fn field(&self) -> &str {
        &self.field
    }
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "template `{}` needs field `{}`, which is missing or null",
            self.template, self.field
        )
    }
}

impl std::error::Error for RenderError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{FieldValue, Operation};
    use std::collections::HashMap;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn renders_literals_and_placeholders() {
        let t = Template::parse("user:{id}:profile").unwrap();
        let m = map(&[("id", "42")]);
        assert_eq!(
            t.render(|p| m.get(p).cloned()).as_deref(),
            Some("user:42:profile")
        );
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["id"]);
        assert!(!t.is_literal());
        assert!(Template::parse("all-users").unwrap().is_literal());
        assert_eq!(t.to_string(), "user:{id}:profile");
    }

    #[test]
    fn lookup_receives_the_placeholder_as_written() {
        let t = Template::parse("{new.a}-{old.a}-{a}").unwrap();
        assert_eq!(
            t.placeholders().collect::<Vec<_>>(),
            ["new.a", "old.a", "a"]
        );
        let m = map(&[("new.a", "N"), ("old.a", "O"), ("a", "B")]);
        assert_eq!(t.render(|p| m.get(p).cloned()).as_deref(), Some("N-O-B"));
    }

    #[test]
    fn old_and_new_render_from_an_event() {
        let e = Event::new("users", Operation::Update)
            .id("1")
            .with_old("department_id", 7)
            .with_new("department_id", 9);
        let new = Template::parse("department:{new.department_id}").unwrap();
        let old = Template::parse("department:{old.department_id}").unwrap();
        let bare = Template::parse("department:{department_id}").unwrap();
        assert_eq!(new.render_event(&e).as_deref(), Some("department:9"));
        assert_eq!(old.render_event(&e).as_deref(), Some("department:7"));
        assert_eq!(bare.render_event(&e).as_deref(), Some("department:9"));
        assert_eq!(old.render(|p| e.lookup(p)).as_deref(), Some("department:7"));
    }

    #[test]
    fn missing_or_null_field_renders_nothing() {
        let created = Event::new("users", Operation::Create).with_new("department_id", 9);
        let old = Template::parse("department:{old.department_id}").unwrap();
        assert_eq!(old.render_event(&created), None);
        assert_eq!(old.render(|p| created.lookup(p)), None);

        let nulled =
            Event::new("users", Operation::Update).with_new("department_id", FieldValue::Null);
        let new = Template::parse("department:{new.department_id}").unwrap();
        assert_eq!(new.render_event(&nulled), None);

        let err = Template::parse("org:{org_id}:{id}")
            .unwrap()
            .try_render(|p| (p == "id").then(|| "1".to_string()))
            .unwrap_err();
        assert_eq!(err.field(), "org_id");
        assert_eq!(err.template(), "org:{org_id}:{id}");
        assert!(err.to_string().contains("`org_id`"), "{err}");
    }

    #[test]
    fn doubled_braces_are_literal() {
        let t = Template::parse("{{json}}:{id}:}}{{").unwrap();
        assert_eq!(t.placeholders().collect::<Vec<_>>(), ["id"]);
        assert_eq!(
            t.render(|_| Some("7".into())).as_deref(),
            Some("{json}:7:}{")
        );
        let t = Template::parse("{{{id}}}").unwrap();
        assert_eq!(t.render(|_| Some("7".into())).as_deref(), Some("{7}"));
    }

    #[test]
    fn glob_escape_protects_values_but_not_the_pattern() {
        let e = Event::new("feeds", Operation::Update).id("a*b?[c]\\");
        let t = Template::parse("feed:*:{id}").unwrap();
        let mut out = String::new();
        assert!(t.render_event_into(&e, Escape::Glob, &mut out));
        assert_eq!(out, "feed:*:a\\*b\\?\\[c\\]\\\\");
        assert_eq!(t.render_event(&e).as_deref(), Some("feed:*:a*b?[c]\\"));
    }

    #[test]
    fn parse_errors_name_the_column() {
        let cases: &[(&str, TemplateErrorKind, usize)] = &[
            ("", TemplateErrorKind::Empty, 1),
            ("user:{id", TemplateErrorKind::Unbalanced, 6),
            ("user:id}", TemplateErrorKind::Unbalanced, 8),
            ("a{b{c}}", TemplateErrorKind::Unbalanced, 4),
            ("user:{}", TemplateErrorKind::EmptyPlaceholder, 6),
            ("user:{new.}", TemplateErrorKind::EmptyPlaceholder, 6),
            (
                "dept:{neww.department_id}",
                TemplateErrorKind::UnknownPrefix,
                7,
            ),
            ("user:{ id}", TemplateErrorKind::BadName, 7),
            ("user:{new.a.b}", TemplateErrorKind::BadName, 12),
            ("user:{a:b}", TemplateErrorKind::BadName, 8),
        ];
        for &(src, kind, column) in cases {
            let err = Template::parse(src).unwrap_err();
            assert_eq!((err.kind(), err.column()), (kind, column), "{src}: {err}");
            assert!(err.to_string().starts_with(&format!("column {column}: ")));
        }
        let err = Template::parse("dept:{neww.department_id}").unwrap_err();
        assert!(err.message().contains("`neww.`"), "{err}");
    }

    #[test]
    fn field_paths_outside_braces_use_the_same_grammar() {
        let p = parse_field_path("new.status").unwrap();
        assert_eq!((p.scope, p.name.as_str()), (Scope::New, "status"));
        let e = parse_field_path("nwe.status").unwrap_err();
        assert_eq!(
            (e.kind(), e.column()),
            (TemplateErrorKind::UnknownPrefix, 1)
        );
        assert!(e.message().contains("`nwe.status`"), "{e}");
        let e = parse_field_path("new.sta tus").unwrap_err();
        assert_eq!((e.kind(), e.column()), (TemplateErrorKind::BadName, 8));
        assert_eq!(
            parse_field_path("").unwrap_err().kind(),
            TemplateErrorKind::EmptyPlaceholder
        );
    }
}
