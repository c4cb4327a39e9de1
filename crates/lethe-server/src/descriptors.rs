//! File descriptors: sizing `maxclients` to the process's descriptor limit at start, and a
//! reserve descriptor so a client arriving when none is left is told so instead of waiting in
//! the listen backlog.
//!
//! As Redis does at start, the soft `RLIMIT_NOFILE` is raised toward `maxclients` plus a reserve
//! (for listeners, log files, the HTTP port's connections and the like); when the hard limit
//! does not allow it, `maxclients` is lowered to what fits and the change is logged, so clients
//! past it get `-ERR max number of clients reached` rather than an accept loop failing.

use std::io;

/// Descriptors kept for everything but RESP clients (Redis's `CONFIG_MIN_RESERVED_FDS`).
pub const RESERVED: u64 = 32;

/// What [`fit_max_clients`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fitted {
    /// The `maxclients` to use: the requested one, or lower if the descriptors do not allow it.
    pub max_clients: u64,
    /// The soft descriptor limit before and after.
    pub soft_before: u64,
    /// The soft descriptor limit now in force.
    pub soft_after: u64,
}

/// Raises the soft descriptor limit toward `max_clients + reserve` (never past the hard limit)
/// and returns the `maxclients` that fits what was obtained. The error is when not even one
/// client fits.
pub fn fit_max_clients(max_clients: u64, reserve: u64) -> io::Result<Fitted> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let wanted = max_clients.saturating_add(reserve);
    let limit = getrlimit(Resource::Nofile);
    let soft_before = limit.current.unwrap_or(u64::MAX);
    let hard = limit.maximum.unwrap_or(u64::MAX);
    let mut soft_after = soft_before;
    if soft_before < wanted {
        let target = wanted.min(hard);
        let raised = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            },
        );
        if raised.is_ok() {
            soft_after = target;
        }
    }
    if soft_after <= reserve {
        return Err(io::Error::other(format!(
            "the descriptor limit ({soft_after}) leaves no room for clients beyond the \
             {reserve} reserved; raise it (ulimit -n)"
        )));
    }
    Ok(Fitted {
        max_clients: max_clients.min(soft_after - reserve),
        soft_before,
        soft_after,
    })
}

/// Whether an accept error means the process (or system) is out of descriptors.
pub fn is_exhausted(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(e.raw_os_error(), Some(c) if c == Errno::MFILE.raw_os_error() || c == Errno::NFILE.raw_os_error())
}

/// One descriptor held in reserve (on `/dev/null`), released to accept and refuse a client when
/// the process is out of descriptors.
#[derive(Debug)]
pub struct Reserve(Option<std::fs::File>);

impl Reserve {
    /// Takes the reserve descriptor (none if even that fails).
    pub fn new() -> Reserve {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Frees the descriptor; false if there was none to free.
    pub fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    /// Takes the descriptor back.
    pub fn restore(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

impl Default for Reserve {
    fn default() -> Self {
        Reserve::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_clients_fits_under_the_limit() {
        let now = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let fitted = fit_max_clients(10, RESERVED).unwrap();
        assert_eq!(fitted.max_clients, 10);
        assert!(fitted.soft_after >= fitted.soft_before.min(10 + RESERVED));
        // Asking for more than any limit allows lowers maxclients to what fits.
        let huge = fit_max_clients(u64::MAX / 2, RESERVED).unwrap();
        let hard = now.maximum.unwrap_or(u64::MAX);
        assert!(huge.max_clients <= hard.saturating_sub(RESERVED));
        assert!(huge.max_clients < u64::MAX / 2);
    }

    #[test]
    fn the_reserve_is_released_and_restored() {
        let mut r = Reserve::new();
        assert!(r.release());
        assert!(!r.release());
        r.restore();
        assert!(r.release());
    }
}
