//! The CLIENT subcommands that control connections rather than describe them: REPLY, PAUSE,
//! UNPAUSE, UNBLOCK, NO-EVICT, NO-TOUCH and SETINFO (CLIENT itself dispatches to them from
//! `server_info`).
//!
//! Each one only records a setting; what it does happens elsewhere: the connection loop drops
//! replies per [`Session::reply_silenced`] and waits out pauses before running a command
//! ([`crate::clients::Clients::wait_unpaused`]), a blocked client's loop ends its wait on
//! CLIENT UNBLOCK, and NO-TOUCH makes reads peek at keys ([`super::Ctx`]).

use super::server_info::sub_arity;
use super::{CommandError, Ctx, Reply, Session};
use crate::frame::Frame;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Redis's error for an argument too many (its subcommand parser's fallback).
fn too_many(sub: &str) -> CommandError {
    CommandError::err(&format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try CLIENT HELP."
    ))
}

/// `ON` or `OFF` (any case); anything else is a syntax error, as Redis says.
fn on_off(arg: &[u8]) -> Result<bool, CommandError> {
    if arg.eq_ignore_ascii_case(b"on") {
        Ok(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Ok(false)
    } else {
        Err(CommandError::syntax())
    }
}

/// Whether CLIENT (sub) with `rest` arguments is one of this module's, with the arity check
/// Redis makes: `Some(Err)` for a wrong count.
pub(super) fn arity(name: &str, rest: &[Bytes]) -> Option<Result<(), CommandError>> {
    let ok = match name {
        "reply" | "no-evict" | "no-touch" => rest.len() == 1,
        "pause" | "unblock" => !rest.is_empty(),
        "unpause" => rest.is_empty(),
        "setinfo" => rest.len() == 2,
        _ => return None,
    };
    Some(if ok {
        Ok(())
    } else {
        Err(sub_arity("client", name))
    })
}

/// Runs one of this module's subcommands (after [`arity`] accepted it).
pub(super) fn run(cx: &mut Ctx<'_>, name: &str, sub: &[u8], rest: &[Bytes]) -> Reply {
    match name {
        "reply" => reply(cx.session, &rest[0]),
        "pause" => pause(cx, sub, rest),
        "unpause" => {
            cx.state.clients().unpause();
            Ok(Frame::ok())
        }
        "unblock" => unblock(cx, sub, rest),
        "no-evict" => {
            let on = on_off(&rest[0])?;
            cx.session.client.update(|s| s.no_evict = on);
            Ok(Frame::ok())
        }
        "no-touch" => {
            let on = on_off(&rest[0])?;
            cx.session.no_touch = on;
            cx.session.client.update(|s| s.no_touch = on);
            Ok(Frame::ok())
        }
        _ => set_info(cx, &rest[0], &rest[1]),
    }
}

/// CLIENT REPLY ON|OFF|SKIP. OFF and SKIP are not answered (SKIP silences the next command
/// too); ON is.
fn reply(s: &mut Session, mode: &[u8]) -> Reply {
    if mode.eq_ignore_ascii_case(b"on") {
        s.reply_off = false;
        s.skip_this = false;
        s.skip_next = false;
    } else if mode.eq_ignore_ascii_case(b"off") {
        s.reply_off = true;
    } else if mode.eq_ignore_ascii_case(b"skip") {
        if !s.reply_off {
            // This command's reply, and (moved along after it) the next one's.
            s.skip_this = true;
            s.skip_next = true;
        }
    } else {
        return Err(CommandError::syntax());
    }
    Ok(Frame::ok())
}

/// CLIENT PAUSE timeout [WRITE|ALL].
fn pause(cx: &mut Ctx<'_>, sub: &[u8], rest: &[Bytes]) -> Reply {
    if rest.len() > 2 {
        return Err(too_many(&String::from_utf8_lossy(sub)));
    }
    let ms = crate::parse::parse_int(&rest[0])
        .ok_or_else(|| CommandError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CommandError::err("timeout is negative"));
    }
    let all = match rest.get(1) {
        None => true,
        Some(m) if m.eq_ignore_ascii_case(b"all") => true,
        Some(m) if m.eq_ignore_ascii_case(b"write") => false,
        Some(_) => {
            return Err(CommandError::err("CLIENT PAUSE mode must be WRITE or ALL"));
        }
    };
    // A timeout beyond what the clock counts pauses until CLIENT UNPAUSE (a century).
    let now = Instant::now();
    let until = now
        .checked_add(Duration::from_millis(ms as u64))
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now);
    cx.state.clients().pause(until, all);
    Ok(Frame::ok())
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked and now is not.
fn unblock(cx: &mut Ctx<'_>, sub: &[u8], rest: &[Bytes]) -> Reply {
    if rest.len() > 2 {
        return Err(too_many(&String::from_utf8_lossy(sub)));
    }
    let id = crate::parse::parse_int(&rest[0]).ok_or_else(CommandError::not_integer)?;
    let error = match rest.get(1) {
        None => false,
        Some(r) if r.eq_ignore_ascii_case(b"timeout") => false,
        Some(r) if r.eq_ignore_ascii_case(b"error") => true,
        Some(_) => {
            return Err(CommandError::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    };
    let done = u64::try_from(id)
        .ok()
        .and_then(|id| cx.state.clients().get(id))
        .is_some_and(|c| c.unblock(error));
    Ok(super::bool_reply(done))
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2): shown in CLIENT LIST and INFO.
fn set_info(cx: &mut Ctx<'_>, attr: &[u8], value: &Bytes) -> Reply {
    let name = attr.eq_ignore_ascii_case(b"lib-name");
    if !name && !attr.eq_ignore_ascii_case(b"lib-ver") {
        return Err(CommandError::err(&format!(
            "Unrecognized option '{}'",
            String::from_utf8_lossy(attr)
        )));
    }
    // Redis 7.2 keeps these printable and space-free, as client names, so CLIENT LIST stays
    // parseable; a library name may not contain a space either.
    if !value.iter().all(|b| (b'!'..=b'~').contains(b)) {
        return Err(CommandError::err(&format!(
            "{} cannot contain spaces, newlines or special characters.",
            if name { "lib-name" } else { "lib-ver" }
        )));
    }
    let value = (!value.is_empty()).then(|| value.clone());
    cx.session.client.update(|s| {
        if name {
            s.lib_name = value;
        } else {
            s.lib_ver = value;
        }
    });
    Ok(Frame::ok())
}
