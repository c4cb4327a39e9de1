//! The client-side caching subcommands of CLIENT: TRACKING, CACHING, TRACKINGINFO, GETREDIR,
//! with Redis 7's options, checks and error texts. The shared state they change is in
//! [`crate::tracking`]; which keys a command reads or changes is reported by the dispatcher.

use super::{CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::parse::parse_int;
use crate::tracking::Mode;
use bytes::Bytes;

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`.
pub(super) fn tracking(cx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    let on = match args[0].to_ascii_lowercase().as_slice() {
        b"on" => true,
        b"off" => false,
        _ => return Err(CommandError::syntax()),
    };
    let mut mode = Mode::default();
    let mut redirect_given = false;
    let mut i = 1;
    while i < args.len() {
        let more = i + 1 < args.len();
        match args[i].to_ascii_lowercase().as_slice() {
            b"redirect" if more => {
                if redirect_given {
                    return Err(CommandError::err(
                        "A client can only redirect to a single other client",
                    ));
                }
                i += 1;
                let id = parse_int(&args[i]).ok_or_else(CommandError::not_integer)?;
                mode.redirect = u64::try_from(id).unwrap_or(u64::MAX);
                redirect_given = true;
            }
            b"prefix" if more => {
                i += 1;
                mode.prefixes.push(args[i].clone());
            }
            b"bcast" => mode.bcast = true,
            b"optin" => mode.optin = true,
            b"optout" => mode.optout = true,
            b"noloop" => mode.noloop = true,
            _ => return Err(CommandError::syntax()),
        }
        i += 1;
    }
    let tracking = cx.state.tracking();
    if !on {
        tracking.disable(cx.session.id);
        cx.session.tracking = None;
        cx.session.caching = None;
        return Ok(Frame::ok());
    }
    if !mode.bcast && !mode.prefixes.is_empty() {
        return Err(CommandError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if let Some(current) = &cx.session.tracking {
        if current.bcast != mode.bcast {
            return Err(CommandError::err(
                "You can't switch BCAST mode on/off before disabling tracking for this client, \
                 and then re-enabling it with a different mode.",
            ));
        }
    }
    if (mode.optin || mode.optout) && mode.bcast {
        return Err(CommandError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if mode.optin && mode.optout {
        return Err(CommandError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if let Some(current) = &cx.session.tracking {
        if (mode.optin && current.optout) || (mode.optout && current.optin) {
            return Err(CommandError::err(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, \
                 and then re-enabling it with a different mode.",
            ));
        }
    }
    // Overlapping prefixes would send the same key twice. Redis checks each given prefix
    // against those in force, then against the ones given after it.
    let existing = cx
        .session
        .tracking
        .as_ref()
        .map(|m| m.prefixes.clone())
        .unwrap_or_default();
    let overlap = |a: &Bytes, b: &Bytes| a.starts_with(b) || b.starts_with(a);
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    for (n, p) in mode.prefixes.iter().enumerate() {
        if let Some(q) = existing.iter().find(|q| overlap(p, q)) {
            return Err(CommandError::err(&format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                text(p),
                text(q)
            )));
        }
        if let Some(q) = mode.prefixes[n + 1..].iter().find(|q| overlap(p, q)) {
            return Err(CommandError::err(&format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a \
                 single client must not overlap.",
                text(p),
                text(q)
            )));
        }
    }
    if mode.redirect != 0
        && mode.redirect != cx.session.id
        && cx.state.clients().get(mode.redirect).is_none()
    {
        return Err(CommandError::err(
            "The client ID you want redirect to does not exist",
        ));
    }
    // Redirecting to oneself is the same as not redirecting.
    if mode.redirect == cx.session.id {
        mode.redirect = 0;
    }
    // Enabling again adds prefixes and options to the ones in force, as in Redis.
    if let Some(current) = cx.session.tracking.take() {
        let mut prefixes = current.prefixes;
        prefixes.append(&mut mode.prefixes);
        mode.prefixes = prefixes;
        mode.optin |= current.optin;
        mode.optout |= current.optout;
        mode.noloop |= current.noloop;
        if !redirect_given {
            mode.redirect = current.redirect;
        }
    }
    tracking.enable(cx.session.id, mode.clone());
    cx.session.tracking = Some(mode);
    Ok(Frame::ok())
}

/// `CLIENT CACHING YES|NO`: whether the next command's reads are tracked (OPTIN / OPTOUT).
pub(super) fn caching(cx: &mut Ctx<'_>, arg: &[u8]) -> Reply {
    let Some(mode) = &cx.session.tracking else {
        return Err(CommandError::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN \
             or OPTOUT mode enabled",
        ));
    };
    match arg.to_ascii_lowercase().as_slice() {
        b"yes" if mode.optin => cx.session.caching = Some(true),
        b"yes" => {
            return Err(CommandError::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
        b"no" if mode.optout => cx.session.caching = Some(false),
        b"no" => {
            return Err(CommandError::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
        _ => return Err(CommandError::syntax()),
    }
    Ok(Frame::ok())
}

/// `CLIENT TRACKINGINFO`: flags, redirect and prefixes.
pub(super) fn tracking_info(cx: &mut Ctx<'_>) -> Reply {
    let flag = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    let (flags, redirect, prefixes) = match cx.state.tracking().mode(cx.session.id) {
        None => (vec![flag("off")], -1, Vec::new()),
        Some((mode, broken)) => {
            let mut flags = vec![flag("on")];
            for (set, name) in [
                (mode.bcast, "bcast"),
                (mode.optin, "optin"),
                (mode.optout, "optout"),
                (cx.session.caching == Some(true), "caching-yes"),
                (cx.session.caching == Some(false), "caching-no"),
                (mode.noloop, "noloop"),
                (broken, "broken_redirect"),
            ] {
                if set {
                    flags.push(flag(name));
                }
            }
            // Redis keeps prefixes in a radix tree, so they come out sorted.
            let mut prefixes = mode.prefixes;
            prefixes.sort();
            let prefixes = prefixes.into_iter().map(Frame::Bulk).collect();
            (flags, mode.redirect as i64, prefixes)
        }
    };
    Ok(Frame::Map(vec![
        (flag("flags"), Frame::Set(flags)),
        (flag("redirect"), Frame::Integer(redirect)),
        (flag("prefixes"), Frame::Array(prefixes)),
    ]))
}

/// `CLIENT GETREDIR`: -1 when not tracking, 0 without a redirect, else the target's id.
pub(super) fn get_redir(cx: &mut Ctx<'_>) -> Reply {
    Ok(Frame::Integer(match &cx.session.tracking {
        None => -1,
        Some(mode) => mode.redirect as i64,
    }))
}

/// Called after a read ran while some client tracks: remembers the keys it served for the
/// calling client (per its mode), so a later change of them is pushed to it. What commands
/// change is reported by the dispatcher from the command's record of changes.
pub(super) fn after(cx: &mut Ctx<'_>, served: &[Bytes]) {
    let Some(mode) = cx.session.tracking.as_ref() else {
        return;
    };
    let given = cx.session.caching.is_some();
    let skip = mode.bcast || (mode.optin && !given) || (mode.optout && given);
    if !skip && !served.is_empty() {
        cx.state
            .tracking()
            .remember(cx.session.id, served, cx.state.clients());
    }
}
