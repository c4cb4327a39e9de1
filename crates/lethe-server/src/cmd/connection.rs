//! Connection commands: PING, ECHO, HELLO, SELECT, QUIT, RESET, TIME.

use super::{Command, CommandError, Ctx, ErrorKind, Reply};
use crate::frame::{Frame, Protocol};
use crate::parse::{Parse, parse_int};
use bytes::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Redis version whose replies Lethe reproduces; clients read it from `HELLO` to decide which
/// commands they may use.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

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
        if cx.session.protocol == Protocol::Resp2 && cx.session.subscriptions() > 0 {
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

#[derive(Debug)]
pub struct Hello {
    protocol: Option<Protocol>,
    name: Option<Bytes>,
}

impl Command for Hello {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut hello = Hello {
            protocol: None,
            name: None,
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
                    let user = args.next_bytes()?;
                    let _password = args.next_bytes()?;
                    // No users are configured: like Redis's passwordless `default` user, any
                    // password is accepted for it and every other user is unknown.
                    if &user[..] != b"default" {
                        return Err(CommandError::new(
                            ErrorKind::Other,
                            "WRONGPASS invalid username-password pair or user is disabled.",
                        ));
                    }
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
pub struct Select;

impl Command for Select {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        match args.next_int()? {
            0 => Ok(Select),
            // One keyspace only: the other Redis databases do not exist here.
            _ => Err(CommandError::err("DB index is out of range")),
        }
    }

    fn apply(self, _: &mut Ctx<'_>) -> Reply {
        Ok(Frame::ok())
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
        cx.session.leave_pubsub(cx.db);
        cx.session.tx.clear();
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
