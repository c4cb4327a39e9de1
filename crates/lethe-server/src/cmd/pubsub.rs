//! Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH.
//!
//! The client's own subscriptions live in its [`Session`](super::Session) (for the counts every
//! confirmation carries, and to unregister on RESET or disconnect); the shared registry that
//! `PUBLISH` consults is [`crate::pubsub::PubSub`]. Each channel or pattern named gets its own
//! confirmation reply, so these commands answer with a [`Frame::Multi`] of pushes.

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
