//! The rule loader's error: a kind to match on, where in the file, and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};

/// What is wrong with a rule file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleErrorKind {
    /// Not valid TOML.
    Syntax,
    /// A key the format does not have (often a typo: `prefix` for `prefixes`).
    UnknownField,
    /// A required key is absent: a rule's `name` or `entity`, or a setting a policy's strategy
    /// needs.
    MissingField,
    /// A value of the wrong type, out of range, or not one of the allowed words.
    BadValue,
    /// A key template that does not parse.
    BadTemplate,
    /// A duration that does not parse, is zero, or contradicts the other bounds.
    BadDuration,
    /// An operation name that is not one of create, update, delete, bulk, schema.
    BadOperation,
    /// A condition with a bad field path, comparison or value.
    BadCondition,
    /// Two rules with one name, or a key or table defined twice.
    Duplicate,
    /// The file could not be read.
    Io,
}

/// Why a rule file did not load. Nothing of the file applies when this is returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    kind: RuleErrorKind,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
    path: Option<PathBuf>,
}

impl RuleError {
    pub(crate) fn new(kind: RuleErrorKind, message: impl Into<String>) -> Self {
        RuleError {
            kind,
            line: None,
            column: None,
            message: message.into(),
            path: None,
        }
    }

    pub(crate) fn at(
        kind: RuleErrorKind,
        (line, column): (usize, usize),
        message: impl Into<String>,
    ) -> Self {
        RuleError {
            line: Some(line),
            column: Some(column),
            ..RuleError::new(kind, message)
        }
    }

    pub(crate) fn in_file(mut self, path: &Path) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// The kind of problem.
    pub fn kind(&self) -> RuleErrorKind {
        self.kind
    }

    /// The 1-based line of the offending value (or key, or table header), when the problem has
    /// a place in the file.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The 1-based character column on [`RuleError::line`]. For a template error it points at
    /// the bad character inside the string when the string has no escapes, else at the string.
    pub fn column(&self) -> Option<usize> {
        self.column
    }

    /// The explanation, naming the rule or policy and the offending value.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The file, when loaded with [`RuleSet::from_file`](super::RuleSet::from_file).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// `rules.toml: line 12: unknown operation ...`; the path and line parts only when known.
impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}: ", path.display())?;
        }
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuleError {}
