//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, the sharded
//! SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH, and the PUBSUB introspection container.
//!
//! The client's own subscriptions live in its [`Session`](super::Session) (for the counts every
//! confirmation carries, and to unregister on RESET or disconnect); the shared registry that
//! `PUBLISH` consults is [`crate::pubsub::PubSub`]. Each channel or pattern named gets its own
//! confirmation reply, so these commands answer with a [`Frame::Multi`] of pushes.

use super::command::{Doc, KeySpec, Meta, Sub, f, ks};
use super::server_info::{sub_arity, unknown_sub};
use super::{Command, CommandError, Ctx, Reply, Session};
use crate::frame::Frame;
use crate::parse::Parse;
use crate::state::ServerState;
use bytes::Bytes;

fn rest(args: &mut Parse) -> Vec<Bytes> {
    std::iter::from_fn(|| args.try_next()).collect()
}

/// One confirmation: `[kind, name-or-nil, subscriptions left]`.
fn confirm(kind: &'static str, name: Option<Bytes>, session: &Session) -> Frame {
    Frame::Push(vec![
        Frame::bulk(kind),
        name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(session.subscriptions() as i64),
    ])
}

#[derive(Debug)]
pub struct Subscribe(Vec<Bytes>);

impl Command for Subscribe {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Subscribe(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let s = &mut *cx.session;
        let replies = self
            .0
            .into_iter()
            .map(|ch| {
                if s.channels.insert(ch.clone()) {
                    cx.state.pubsub().subscribe(&ch, s.id, &s.pushes);
                }
                confirm("subscribe", Some(ch), s)
            })
            .collect();
        Ok(Frame::Multi(replies))
    }
}

#[derive(Debug)]
pub struct PSubscribe(Vec<Bytes>);

impl Command for PSubscribe {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PSubscribe(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let s = &mut *cx.session;
        let replies = self
            .0
            .into_iter()
            .map(|p| {
                if s.patterns.insert(p.clone()) {
                    cx.state.pubsub().psubscribe(&p, s.id, &s.pushes);
                }
                confirm("psubscribe", Some(p), s)
            })
            .collect();
        Ok(Frame::Multi(replies))
    }
}

#[derive(Debug)]
pub struct Unsubscribe(Vec<Bytes>);

impl Command for Unsubscribe {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Unsubscribe(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(unsubscribe(cx.state, cx.session, self.0))
    }
}

#[derive(Debug)]
pub struct PUnsubscribe(Vec<Bytes>);

impl Command for PUnsubscribe {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PUnsubscribe(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        Ok(punsubscribe(cx.state, cx.session, self.0))
    }
}

/// Leaves `channels`, or every channel when none are named; with nothing to leave Redis still
/// confirms once, with a nil channel.
pub(crate) fn unsubscribe(state: &ServerState, s: &mut Session, channels: Vec<Bytes>) -> Frame {
    let channels = if channels.is_empty() {
        s.channels.iter().cloned().collect()
    } else {
        channels
    };
    if channels.is_empty() {
        return confirm("unsubscribe", None, s);
    }
    let replies = channels
        .into_iter()
        .map(|ch| {
            if s.channels.shift_remove(&ch) {
                state.pubsub().unsubscribe(&ch, s.id);
            }
            confirm("unsubscribe", Some(ch), s)
        })
        .collect();
    Frame::Multi(replies)
}

/// [`unsubscribe`] for patterns.
pub(crate) fn punsubscribe(state: &ServerState, s: &mut Session, patterns: Vec<Bytes>) -> Frame {
    let patterns = if patterns.is_empty() {
        s.patterns.iter().cloned().collect()
    } else {
        patterns
    };
    if patterns.is_empty() {
        return confirm("punsubscribe", None, s);
    }
    let replies = patterns
        .into_iter()
        .map(|p| {
            if s.patterns.shift_remove(&p) {
                state.pubsub().punsubscribe(&p, s.id);
            }
            confirm("punsubscribe", Some(p), s)
        })
        .collect();
    Frame::Multi(replies)
}

#[derive(Debug)]
pub struct Publish {
    channel: Bytes,
    message: Bytes,
}

impl Command for Publish {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Publish {
            channel: args.next_bytes()?,
            message: args.next_bytes()?,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let n = cx.state.pubsub().publish(&self.channel, &self.message);
        Ok(Frame::Integer(n as i64))
    }
}

super::command_table! {
    pub(super) PUBSUB;
    "ssubscribe" -2 SSubscribe {
        flags: f::PUBSUB | f::NOSCRIPT | f::LOADING | f::STALE,
        keys: &[KeySpec::range(ks::NOT_KEY, 1, -1, 1)],
        doc: Doc::new("pubsub", "7.0.0", "O(N) where N is the number of shard channels to subscribe to.", "Listen for messages published to the given shard channels"),
    }
    "sunsubscribe" -1 SUnsubscribe {
        flags: f::PUBSUB | f::NOSCRIPT | f::LOADING | f::STALE,
        keys: &[KeySpec::range(ks::NOT_KEY, 1, -1, 1)],
        doc: Doc::new("pubsub", "7.0.0", "O(N) where N is the number of clients already subscribed to a shard channel.", "Stop listening for messages posted to the given shard channels"),
    }
    "spublish" 3 SPublish {
        flags: f::PUBSUB | f::LOADING | f::STALE | f::FAST,
        keys: &[KeySpec::range(ks::NOT_KEY, 1, 0, 1)],
        doc: Doc::new("pubsub", "7.0.0", "O(N) where N is the number of clients subscribed to the receiving shard channel.", "Post a message to a shard channel"),
    }
    "pubsub" -2 PubSubCmd {
        flags: 0,
        doc: Doc::new("pubsub", "2.8.0", "Depends on subcommand.", "A container for Pub/Sub commands"),
        subs: &[
            Sub { name: "pubsub|channels", arity: -2, meta: Meta { flags: f::PUBSUB | f::LOADING | f::STALE, doc: Doc::new("pubsub", "2.8.0", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)", "List active channels"), ..Meta::NONE } },
            Sub { name: "pubsub|numsub", arity: -2, meta: Meta { flags: f::PUBSUB | f::LOADING | f::STALE, doc: Doc::new("pubsub", "2.8.0", "O(N) for the NUMSUB subcommand, where N is the number of requested channels", "Get the count of subscribers for channels"), ..Meta::NONE } },
            Sub { name: "pubsub|numpat", arity: 2, meta: Meta { flags: f::PUBSUB | f::LOADING | f::STALE, doc: Doc::new("pubsub", "2.8.0", "O(1)", "Get the count of unique patterns pattern subscriptions"), ..Meta::NONE } },
            Sub { name: "pubsub|shardchannels", arity: -2, meta: Meta { flags: f::PUBSUB | f::LOADING | f::STALE, doc: Doc::new("pubsub", "7.0.0", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels).", "List active shard channels"), ..Meta::NONE } },
            Sub { name: "pubsub|shardnumsub", arity: -2, meta: Meta { flags: f::PUBSUB | f::LOADING | f::STALE, doc: Doc::new("pubsub", "7.0.0", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels", "Get the count of subscribers for shard channels"), ..Meta::NONE } },
            Sub { name: "pubsub|help", arity: 2, meta: Meta { flags: f::LOADING | f::STALE, doc: Doc::new("pubsub", "6.2.0", "O(1)", "Show helpful text about the different subcommands"), ..Meta::NONE } },
        ],
    }
}

/// One shard confirmation: `[kind, name-or-nil, shard channels left]` (Redis counts shard
/// subscriptions apart from the others).
fn confirm_shard(kind: &'static str, name: Option<Bytes>, session: &Session) -> Frame {
    Frame::Push(vec![
        Frame::bulk(kind),
        name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(session.shard_channels.len() as i64),
    ])
}

#[derive(Debug)]
pub struct SSubscribe(Vec<Bytes>);

impl Command for SSubscribe {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SSubscribe(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        // Redis 7.0 refuses SSUBSCRIBE inside MULTI/EXEC (unlike SUBSCRIBE), with this text.
        if cx.deny_blocking {
            return Err(CommandError::err(
                "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
            ));
        }
        let s = &mut *cx.session;
        let replies = self
            .0
            .into_iter()
            .map(|ch| {
                if s.shard_channels.insert(ch.clone()) {
                    cx.state.pubsub().ssubscribe(&ch, s.id, &s.pushes);
                }
                confirm_shard("ssubscribe", Some(ch), s)
            })
            .collect();
        Ok(Frame::Multi(replies))
    }
}

#[derive(Debug)]
pub struct SUnsubscribe(Vec<Bytes>);

impl Command for SUnsubscribe {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SUnsubscribe(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let s = &mut *cx.session;
        let channels = if self.0.is_empty() {
            s.shard_channels.iter().cloned().collect()
        } else {
            self.0
        };
        if channels.is_empty() {
            return Ok(confirm_shard("sunsubscribe", None, s));
        }
        let replies = channels
            .into_iter()
            .map(|ch| {
                if s.shard_channels.shift_remove(&ch) {
                    cx.state.pubsub().sunsubscribe(&ch, s.id);
                }
                confirm_shard("sunsubscribe", Some(ch), s)
            })
            .collect();
        Ok(Frame::Multi(replies))
    }
}

#[derive(Debug)]
pub struct SPublish {
    channel: Bytes,
    message: Bytes,
}

impl Command for SPublish {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SPublish {
            channel: args.next_bytes()?,
            message: args.next_bytes()?,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let n = cx.state.pubsub().spublish(&self.channel, &self.message);
        Ok(Frame::Integer(n as i64))
    }
}

/// `PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB|HELP`.
#[derive(Debug)]
pub struct PubSubCmd(Vec<Bytes>);

impl Command for PubSubCmd {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(PubSubCmd(rest(args)))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let mut args = self.0.into_iter();
        let sub = args.next().unwrap_or_default();
        let rest: Vec<Bytes> = args.collect();
        let name = String::from_utf8_lossy(&sub).to_ascii_lowercase();
        // Redis's own text for a pattern argument too many (its subcommand parser's fallback).
        let too_many = || {
            CommandError::err(&format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(&sub)
            ))
        };
        let registry = cx.state.pubsub();
        let names = |list: Vec<Bytes>| Frame::Array(list.into_iter().map(Frame::Bulk).collect());
        let counts = |shard: bool| {
            let mut out = Vec::with_capacity(rest.len() * 2);
            for ch in &rest {
                out.push(Frame::Bulk(ch.clone()));
                out.push(Frame::Integer(registry.numsub(ch, shard) as i64));
            }
            // A flat array in RESP3 too, as Redis 7.0 replies.
            Frame::Array(out)
        };
        match name.as_str() {
            "channels" | "shardchannels" if rest.len() > 1 => Err(too_many()),
            "channels" => Ok(names(registry.channels(rest.first().map(|p| &p[..])))),
            "shardchannels" => Ok(names(registry.shard_channels(rest.first().map(|p| &p[..])))),
            "numsub" => Ok(counts(false)),
            "shardnumsub" => Ok(counts(true)),
            "numpat" | "help" if !rest.is_empty() => Err(sub_arity("pubsub", &name)),
            "numpat" => Ok(Frame::Integer(registry.numpat() as i64)),
            "help" => Ok(Frame::Array(
                PUBSUB_HELP
                    .iter()
                    .map(|l| Frame::Simple((*l).into()))
                    .collect(),
            )),
            _ => Err(unknown_sub("PUBSUB", &sub)),
        }
    }
}

/// Redis 7.0's `PUBSUB HELP` text.
const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];
