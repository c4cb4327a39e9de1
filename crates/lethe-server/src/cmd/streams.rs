//! Stream commands, which Lethe does not implement: each gets an error that says so by name,
//! instead of Redis's generic "unknown command", so a client library probing for streams learns
//! why. They are not in the command table, so COMMAND does not list them (a client that reads
//! COMMAND to discover what the server can do must not think it has streams).

use super::{CommandError, ErrorKind};

/// Redis's stream commands (Redis 7.0's `stream` group).
const STREAM_COMMANDS: &[&str] = &[
    "xadd",
    "xrange",
    "xrevrange",
    "xlen",
    "xread",
    "xreadgroup",
    "xgroup",
    "xack",
    "xdel",
    "xtrim",
    "xinfo",
    "xclaim",
    "xautoclaim",
    "xpending",
    "xsetid",
];

/// The error for `name` if it is a stream command.
pub(super) fn unsupported(name: &[u8]) -> Option<CommandError> {
    let name = std::str::from_utf8(name).ok()?;
    let known = STREAM_COMMANDS
        .iter()
        .find(|c| c.eq_ignore_ascii_case(name))?;
    Some(CommandError::new(
        ErrorKind::UnknownCommand,
        format!(
            "ERR streams are not supported by Lethe ({})",
            known.to_ascii_uppercase()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_commands_are_named_in_their_error() {
        let e = unsupported(b"xAdd").unwrap();
        assert_eq!(e.text(), "ERR streams are not supported by Lethe (XADD)");
        assert!(unsupported(b"xadds").is_none());
        assert!(unsupported(b"get").is_none());
        assert!(unsupported(&[0xff, 0xfe]).is_none());
    }
}
