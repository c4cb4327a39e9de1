//! The engine's error type: a struct with a kind callers can match on and a message for people.

use std::fmt;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A builder or option value is out of range or inconsistent.
    InvalidConfig,
    /// A tag name is empty or has an empty level.
    InvalidTag,
    /// A data policy named on insert does not exist, or cannot be rendered from the fields
    /// given.
    InvalidPolicy,
}

/// An error from the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The kind of error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable explanation, naming the offending setting.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::InvalidConfig => "invalid configuration",
            ErrorKind::InvalidTag => "invalid tag",
            ErrorKind::InvalidPolicy => "invalid data policy",
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for Error {}
