//! What a loader's reads and writes report when they fail: a struct with a kind callers can
//! match on, carrying the source's own error when there is one.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// Why [`super::Loader::get`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// [`super::Source::load`] returned an error (and no stale value could be served).
    Source,
    /// The load this call led or waited for panicked.
    Panicked,
}

/// A failed [`super::Loader::get`].
///
/// The source's error is shared (`Arc`) because one failed load answers every caller that
/// waited for it, and a source's error type need not be `Clone`.
#[derive(Debug)]
pub struct LoadError<E> {
    kind: LoadErrorKind,
    source: Option<Arc<E>>,
}

impl<E> Clone for LoadError<E> {
    fn clone(&self) -> Self {
        LoadError {
            kind: self.kind,
            source: self.source.clone(),
        }
    }
}

impl<E> LoadError<E> {
    pub(crate) fn source(e: Arc<E>) -> Self {
        LoadError {
            kind: LoadErrorKind::Source,
            source: Some(e),
        }
    }

    pub(crate) fn panicked() -> Self {
        LoadError {
            kind: LoadErrorKind::Panicked,
            source: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> LoadErrorKind {
        self.kind
    }

    /// The source's error, for [`LoadErrorKind::Source`].
    pub fn source_error(&self) -> Option<&E> {
        self.source.as_deref()
    }
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.source) {
            (LoadErrorKind::Source, Some(e)) => write!(f, "loading from the source failed: {e}"),
            (LoadErrorKind::Source, None) => f.write_str("loading from the source failed"),
            (LoadErrorKind::Panicked, _) => f.write_str("the load panicked"),
        }
    }
}

impl<E: Error + 'static> Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Why [`super::Loader::insert`] or [`super::Loader::remove`] (or their `try_` forms)
/// failed. In every case the write was not acknowledged: the cache is as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteErrorKind {
    /// Write-through: the source refused the write.
    Source,
    /// Write-behind: the queue is full (only from the `try_` forms; the others wait).
    Full,
    /// The loader was shut down.
    Closed,
}

/// A write that was not acknowledged.
#[derive(Debug)]
pub struct WriteError<E> {
    kind: WriteErrorKind,
    source: Option<E>,
}

impl<E> WriteError<E> {
    pub(crate) fn new(kind: WriteErrorKind) -> Self {
        WriteError { kind, source: None }
    }

    pub(crate) fn source(e: E) -> Self {
        WriteError {
            kind: WriteErrorKind::Source,
            source: Some(e),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> WriteErrorKind {
        self.kind
    }

    /// The source's error, for [`WriteErrorKind::Source`].
    pub fn source_error(&self) -> Option<&E> {
        self.source.as_ref()
    }
}

impl<E: fmt::Display> fmt::Display for WriteError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.kind, &self.source) {
            (WriteErrorKind::Source, Some(e)) => write!(f, "writing to the source failed: {e}"),
            (WriteErrorKind::Source, None) => f.write_str("writing to the source failed"),
            (WriteErrorKind::Full, _) => f.write_str("the write-behind queue is full"),
            (WriteErrorKind::Closed, _) => f.write_str("the loader is shut down"),
        }
    }
}

impl<E: Error + 'static> Error for WriteError<E> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as &(dyn Error + 'static))
    }
}
