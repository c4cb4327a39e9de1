//! The one error type of the crate: a [`ErrorKind`] to branch on and a message for people.
//!
//! The kind decides what the runner does with a failure: configuration, rule, catalog and
//! setting problems are the operator's to fix and stop [`crate::Cdc::run`] at start; connection,
//! protocol and target failures are transient and retried with backoff.

use std::fmt;

/// What went wrong, coarsely: enough to decide between "fix the setup" and "retry".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration cannot be parsed or is inconsistent (a bad connection string, an
    /// unknown key, a bad slot name).
    Config,
    /// A rule is malformed (the engine's rule loader refused it).
    Rule,
    /// A rule names a table or column the database does not have, or a table lacks what a rule
    /// needs (a primary key, `REPLICA IDENTITY FULL`).
    Catalog,
    /// A server setting or privilege logical replication needs is missing (`wal_level`,
    /// `max_replication_slots`, the `REPLICATION` attribute), or the publication does not cover
    /// a table.
    Setting,
    /// Connecting to or talking with PostgreSQL failed; retried.
    Connection,
    /// PostgreSQL sent something this crate cannot decode.
    Protocol,
    /// A target failed to apply invalidations or a flush; retried.
    Target,
    /// The run was asked to stop.
    Shutdown,
}

impl ErrorKind {
    /// Whether the runner retries after this error rather than giving up: setup problems are
    /// not retried at start, since nothing will change until someone edits something.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Connection | ErrorKind::Protocol | ErrorKind::Target
        )
    }
}

/// An error from this crate: a kind, a message naming what failed and how to fix it where that
/// is known, and the underlying cause if any.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn connection(context: &str, source: tokio_postgres::Error) -> Error {
        use tokio_postgres::error::SqlState;
        // A database error (SQLSTATE) reads better inline than as a chained cause.
        let (kind, detail) = match source.as_db_error() {
            Some(db) => {
                // Missing privileges and exhausted limits stay until someone changes the
                // setup: report them rather than retry them forever.
                let setup = [
                    SqlState::INSUFFICIENT_PRIVILEGE,
                    SqlState::CONFIGURATION_LIMIT_EXCEEDED,
                    SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                    SqlState::INVALID_PASSWORD,
                ];
                let kind = if setup.contains(db.code()) {
                    ErrorKind::Setting
                } else {
                    ErrorKind::Connection
                };
                (
                    kind,
                    format!(
                        "{context}: {} (SQLSTATE {})",
                        db.message(),
                        db.code().code()
                    ),
                )
            }
            None => {
                return Error::new(ErrorKind::Connection, context.to_owned()).with_source(source);
            }
        };
        Error::new(kind, detail)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Protocol, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
