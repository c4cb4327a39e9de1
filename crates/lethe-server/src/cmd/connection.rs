//! Connection commands: PING, ECHO, AUTH, HELLO, SELECT, QUIT, RESET, TIME.
//!
//! Authentication is Redis's `requirepass`: one password for the `default` user, the only user
//! there is. AUTH and HELLO AUTH check it and mark the session authenticated; the dispatcher
//! refuses other commands (`NOAUTH`) until then.

use super::{Command, CommandError, Ctx, ErrorKind, Reply};
use crate::frame::{Frame, Protocol};
use crate::parse::{Parse, parse_int};
use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Redis version whose replies Lethe reproduces; clients read it from `HELLO` to decide which
/// commands they may use.
pub const REDIS_COMPAT_VERSION: &str = "7.4.0";

#[derive(Debug)]
pub struct Ping(Option<Bytes>);

impl Command for Ping {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        match args.remaining() {
            0 => Ok(Ping(None)),
            1 => Ok(Ping(args.try_next())),
            _ => Err(CommandError::new(
                ErrorKind::Arity,
                "ERR wrong number of arguments for 'ping' command",
            )),
        }
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // A subscribed RESP2 client reads pushes as arrays, so its PONG takes that shape too.
        if cx.session.protocol == Protocol::Resp2 && cx.session.subscribed() {
            return Ok(Frame::Array(vec![
                Frame::bulk("pong"),
                Frame::Bulk(self.0.unwrap_or_default()),
            ]));
        }
        Ok(match self.0 {
            None => Frame::Simple("PONG".into()),
            Some(msg) => Frame::Bulk(msg),
        })
    }
}

#[derive(Debug)]
pub struct Echo(Bytes);

impl Command for Echo {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Echo(args.next_bytes()?))
    }

    fn apply(self, _: &mut Ctx<'_>) -> Reply {
        Ok(Frame::Bulk(self.0))
    }
}

/// `WRONGPASS ...`, Redis's text for any failed authentication.
fn wrong_pass() -> CommandError {
    CommandError::new(
        ErrorKind::Other,
        "WRONGPASS invalid username-password pair or user is disabled.",
    )
}

/// Compares a password in time independent of where it differs, as Redis does, so response
/// times do not reveal how much of a guess was right.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let len = given.len().max(expected.len());
    let mut diff = u8::from(given.len() != expected.len());
    for i in 0..len {
        diff |= given.get(i).copied().unwrap_or(0) ^ expected.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Checks `user`/`password` against the only user, `default`; on success the session is
/// authenticated. Without a password configured, `default` takes any password, as Redis's
/// `nopass` user does.
fn authenticate(cx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> Result<(), CommandError> {
    if user != b"default" {
        return Err(wrong_pass());
    }
    match cx.session.limits.requirepass() {
        Some(expected) if !same_secret(password, &expected) => Err(wrong_pass()),
        _ => {
            cx.session.authenticated = true;
            Ok(())
        }
    }
}

#[derive(Debug)]
pub struct Auth {
    user: Option<Bytes>,
    password: Bytes,
}

impl Command for Auth {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        match args.remaining() {
            1 => Ok(Auth {
                user: None,
                password: args.next_bytes()?,
            }),
            2 => Ok(Auth {
                user: Some(args.next_bytes()?),
                password: args.next_bytes()?,
            }),
            _ => Err(CommandError::syntax()),
        }
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let user = match self.user {
            Some(user) => user,
            // The one-argument form is only meaningful with a password configured.
            None if cx.session.limits.requirepass().is_none() => {
                return Err(CommandError::err(
                    "AUTH <password> called without any password configured for the default \
                     user. Are you sure your configuration is correct?",
                ));
            }
            None => Bytes::from_static(b"default"),
        };
        authenticate(cx, &user, &self.password)?;
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct Hello {
    protocol: Option<Protocol>,
    name: Option<Bytes>,
    auth: Option<(Bytes, Bytes)>,
}

impl Command for Hello {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut hello = Hello {
            protocol: None,
            name: None,
            auth: None,
        };
        if let Some(version) = args.try_next() {
            hello.protocol = Some(match parse_int(&version) {
                Some(2) => Protocol::Resp2,
                Some(3) => Protocol::Resp3,
                Some(_) => {
                    return Err(CommandError::new(
                        ErrorKind::Other,
                        "NOPROTO unsupported protocol version",
                    ));
                }
                None => {
                    return Err(CommandError::err(
                        "Protocol version is not an integer or out of range",
                    ));
                }
            });
        }
        while let Some(opt) = args.try_next() {
            let keyword = String::from_utf8_lossy(&opt).to_ascii_uppercase();
            let bad = || {
                CommandError::new(
                    ErrorKind::Syntax,
                    format!(
                        "ERR Syntax error in HELLO option '{}'",
                        String::from_utf8_lossy(&opt)
                    ),
                )
            };
            match keyword.as_str() {
                "AUTH" if args.remaining() >= 2 => {
                    hello.auth = Some((args.next_bytes()?, args.next_bytes()?));
                }
                "SETNAME" if args.remaining() >= 1 => {
                    let name = args.next_bytes()?;
                    // Redis keeps names printable and space-free so CLIENT LIST stays parseable.
                    if !name.iter().all(|b| (b'!'..=b'~').contains(b)) {
                        return Err(CommandError::err(
                            "Client names cannot contain spaces, newlines or special characters.",
                        ));
                    }
                    hello.name = Some(name);
                }
                _ => return Err(bad()),
            }
        }
        Ok(hello)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if let Some((user, password)) = &self.auth {
            authenticate(cx, user, password)?;
        }
        if cx.session.auth_required() {
            return Err(CommandError::new(
                ErrorKind::Other,
                "NOAUTH HELLO must be called with the client already authenticated, otherwise \
                 the HELLO AUTH <user> <pass> option can be used to authenticate the client and \
                 select the RESP protocol version at the same time",
            ));
        }
        if let Some(p) = self.protocol {
            cx.session.protocol = p;
        }
        if self.name.is_some() {
            cx.session.name = self.name;
        }
        let text = |s: &str| Frame::bulk(Bytes::copy_from_slice(s.as_bytes()));
        Ok(Frame::Map(vec![
            (text("server"), text("redis")),
            (text("version"), text(REDIS_COMPAT_VERSION)),
            (text("proto"), Frame::Integer(cx.session.protocol.number())),
            (text("id"), Frame::Integer(cx.session.id as i64)),
            (text("mode"), text("standalone")),
            (text("role"), text("master")),
            (text("modules"), Frame::Array(Vec::new())),
        ]))
    }
}

#[derive(Debug)]
pub struct Select(i64);

impl Command for Select {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Select(args.next_int()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // A cluster has database 0 only, as Redis Cluster (checked before the range).
        if cx.state.cluster().is_some() && self.0 != 0 {
            return Err(CommandError::err("SELECT is not allowed in cluster mode"));
        }
        match u8::try_from(self.0) {
            Ok(db) if db < crate::keyspace::DATABASES => {
                cx.session.db = db;
                Ok(Frame::ok())
            }
            _ => Err(CommandError::err("DB index is out of range")),
        }
    }
}

#[derive(Debug)]
pub struct Quit;

impl Command for Quit {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Quit)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.session.quit = true;
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct Reset;

impl Command for Reset {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Reset)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        cx.session.protocol = Protocol::Resp2;
        cx.session.name = None;
        cx.session.leave_pubsub(cx.state);
        cx.session.tx.clear();
        // RESET also turns client-side caching off, as in Redis.
        cx.state.tracking().disable(cx.session.id);
        cx.session.tracking = None;
        cx.session.caching = None;
        // CLIENT REPLY ON (a SKIP already moved onto this very command still applies to it,
        // as in Redis), NO-TOUCH and NO-EVICT off.
        cx.session.reply_off = false;
        cx.session.skip_next = false;
        cx.session.no_touch = false;
        cx.session.client.update(|s| {
            s.no_touch = false;
            s.no_evict = false;
        });
        Ok(Frame::Simple("RESET".into()))
    }
}

#[derive(Debug)]
pub struct Time;

impl Command for Time {
    fn parse_frames(_: &mut Parse) -> Result<Self, CommandError> {
        Ok(Time)
    }

    fn apply(self, _: &mut Ctx<'_>) -> Reply {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Frame::Array(vec![
            Frame::bulk(now.as_secs().to_string()),
            Frame::bulk(now.subsec_micros().to_string()),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"pw", b"pw"));
        assert!(!same_secret(b"pw", b"px"));
        assert!(!same_secret(b"pw", b"pw2"));
        assert!(!same_secret(b"", b"pw"));
        assert!(same_secret(b"", b""));
    }
}
