//! The blocking list commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP), and the machinery the
//! blocking sorted set commands (BZPOPMIN, BZMPOP, in `zsets`) share: served at once when a
//! key has elements, else the client waits until a push wakes it or its timeout passes.
//!
//! A command that finds nothing registers the client on its keys (see
//! [`crate::keyspace::Blocking`]) while it still holds their locks, and leaves a [`Blocked`] in
//! the session; the connection loop then waits on it, retries the command's attempt on each
//! wake-up (which keeps its place in the queue if it still finds nothing), and replies once
//! served or timed out. Inside MULTI/EXEC the commands never block: an empty result replies at
//! once, as in Redis.

use super::lists::{End, MPopArgs, move_element};
use super::{Command, CommandError, Ctx, Reply};
use crate::frame::Frame;
use crate::keyspace::{Txn, Waiter};
use crate::parse::{Parse, parse_float};
use crate::state::ServerState;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One try of a blocking command: the reply when served, `None` to keep waiting. `retry` is
/// false on the first try: then a key of another type is an error; on later tries it is
/// skipped, as Redis serves blocked clients only from lists.
pub(super) type Attempt =
    dyn FnMut(&ServerState, &mut Txn<'_, '_>, bool) -> Result<Option<Frame>, CommandError> + Send;

/// A client blocked by one of these commands.
pub struct Blocked {
    /// Its registration on the keys.
    pub waiter: Arc<Waiter>,
    /// When it times out (`None`: never).
    pub deadline: Option<Instant>,
    /// The reply on timing out.
    pub timeout_reply: Frame,
    keys: Vec<Bytes>,
    attempt: Box<Attempt>,
}

impl std::fmt::Debug for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocked")
            .field("keys", &self.keys)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Blocked {
    /// Tries again after a wake-up: the reply if served (or failed), `None` to keep waiting.
    pub fn retry(&mut self, cx: &mut Ctx<'_>) -> Option<Frame> {
        let state = cx.state;
        let _gate = state.keyspace().gate().shared();
        // In cluster mode the keys' slot may have left this node while the client waited:
        // it is redirected, as Redis does (its keys share one slot: they were routed).
        if let (Some(cluster), Some(key)) = (state.cluster(), self.keys.first()) {
            if let Err(e) = super::cluster::serves(cluster, lethe_cluster::key_slot(key)) {
                return Some(Frame::Error(e.text().to_string()));
            }
        }
        let attempt = &mut self.attempt;
        let outcome = cx
            .write(self.keys.iter().map(|k| &k[..]), |t| {
                attempt(state, t, true)
            })
            .and_then(|r| r);
        if state.records_changes() {
            state.report_changes(cx.changes, cx.session.id);
        }
        match outcome {
            Ok(None) => None,
            Ok(Some(frame)) => Some(frame),
            Err(e) => Some(Frame::Error(e.text().to_string())),
        }
    }
}

/// Redis's blocking timeout: seconds as a float, rounded up to milliseconds; 0 blocks forever.
/// Beyond what milliseconds in an `i64` can count (infinity included), Redis's conversion
/// wraps to a negative number: the same error here.
pub(super) fn parse_timeout(b: &[u8]) -> Result<Option<Duration>, CommandError> {
    let secs = parse_float(b)
        .ok_or_else(|| CommandError::err("timeout is not a float or out of range"))?;
    let ms = (secs * 1000.0).ceil();
    if !(0.0..i64::MAX as f64).contains(&ms) {
        return Err(CommandError::err("timeout is negative"));
    }
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// Runs a blocking command: served at once if `attempt` finds something; else, inside EXEC,
/// `empty_reply`; else the client blocks on `wait_keys` until `timeout`.
#[allow(clippy::too_many_arguments)]
pub(super) fn serve_or_block(
    cx: &mut Ctx<'_>,
    keys: Vec<Bytes>,
    wait_keys: &[Bytes],
    timeout: Option<Duration>,
    empty_reply: Frame,
    timeout_reply: Frame,
    mut attempt: Box<Attempt>,
) -> Reply {
    let state = cx.state;
    let deny = cx.deny_blocking;
    let outcome = cx.write(keys.iter().map(|k| &k[..]), |t| {
        if let Some(reply) = attempt(state, t, false)? {
            return Ok(Ok(reply));
        }
        if deny {
            return Ok(Ok(empty_reply));
        }
        // Registered under the keys' locks: no push can come between the look and this.
        let stored = wait_keys.iter().map(|k| t.key(k)).collect();
        Ok::<_, CommandError>(Err(state.keyspace().blocking().register(stored)))
    })??;
    match outcome {
        Ok(reply) => Ok(reply),
        Err(waiter) => {
            cx.session.blocked = Some(Blocked {
                waiter,
                // A deadline past what the clock can count is never reached.
                deadline: timeout.and_then(|d| Instant::now().checked_add(d)),
                timeout_reply,
                keys,
                attempt,
            });
            // Not sent: the connection loop replies once the client is served or times out.
            Ok(Frame::NullArray)
        }
    }
}

/// The list at `key` if it is one with elements; a key of another type is an error on the
/// first try and skipped on retries.
fn ready(t: &Txn<'_, '_>, key: &[u8], retry: bool) -> Result<bool, CommandError> {
    match t.get(key) {
        None => Ok(false),
        Some(v) => match v.as_list() {
            Ok(l) => Ok(!l.is_empty()),
            Err(_) if retry => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// BLPOP (`END` 0) and BRPOP (1).
#[derive(Debug)]
pub struct BPop<const END: u8>(Vec<Bytes>, Option<Duration>);

impl<const END: u8> Command for BPop<END> {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut keys: Vec<Bytes> = std::iter::from_fn(|| args.try_next()).collect();
        let timeout = parse_timeout(&keys.pop().expect("arity"))?;
        Ok(BPop(keys, timeout))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let end = if END == 0 { End::Left } else { End::Right };
        let keys = self.0.clone();
        let attempt = Box::new(move |_: &ServerState, t: &mut Txn<'_, '_>, retry: bool| {
            for key in &keys {
                if ready(t, key, retry)? {
                    let mut one = MPopArgs {
                        keys: vec![key.clone()],
                        end,
                        count: 1,
                    }
                    .pop(t)?;
                    // [key, [element]] -> [key, element]
                    if let Some(Frame::Array(mut pair)) = one.take() {
                        if let Some(Frame::Array(mut els)) = pair.pop() {
                            pair.push(els.pop().unwrap_or(Frame::Null));
                        }
                        return Ok(Some(Frame::Array(pair)));
                    }
                }
            }
            Ok(None)
        });
        serve_or_block(
            cx,
            self.0.clone(),
            &self.0,
            self.1,
            Frame::NullArray,
            Frame::NullArray,
            attempt,
        )
    }
}

/// BLMOVE and BRPOPLPUSH.
#[derive(Debug)]
pub struct BLMove {
    from: Bytes,
    to: Bytes,
    from_end: End,
    to_end: End,
    timeout: Option<Duration>,
}

impl BLMove {
    fn run(self, cx: &mut Ctx<'_>) -> Reply {
        let BLMove {
            from,
            to,
            from_end,
            to_end,
            timeout,
        } = self;
        let (src, dst) = (from.clone(), to.clone());
        let attempt = Box::new(
            move |state: &ServerState, t: &mut Txn<'_, '_>, retry: bool| {
                // As Redis, the destination's type is checked only when there is something to move.
                if !ready(t, &src, retry)? {
                    return Ok(None);
                }
                Ok(move_element(state, t, &src, &dst, from_end, to_end)?
                    .map(|v| Frame::Bulk(v.into())))
            },
        );
        serve_or_block(
            cx,
            vec![from.clone(), to],
            &[from],
            timeout,
            Frame::Null,
            Frame::NullArray,
            attempt,
        )
    }
}

impl Command for BLMove {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let (from, to) = (args.next_bytes()?, args.next_bytes()?);
        let from_end = End::parse(&args.next_bytes()?)?;
        let to_end = End::parse(&args.next_bytes()?)?;
        Ok(BLMove {
            from,
            to,
            from_end,
            to_end,
            timeout: parse_timeout(&args.next_bytes()?)?,
        })
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        self.run(cx)
    }
}

#[derive(Debug)]
pub struct BRPopLPush(BLMove);

impl Command for BRPopLPush {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(BRPopLPush(BLMove {
            from: args.next_bytes()?,
            to: args.next_bytes()?,
            from_end: End::Right,
            to_end: End::Left,
            timeout: parse_timeout(&args.next_bytes()?)?,
        }))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        self.0.run(cx)
    }
}

#[derive(Debug)]
pub struct BLMPop(Option<Duration>, MPopArgs);

impl Command for BLMPop {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let timeout = args.next_bytes()?;
        let mpop = MPopArgs::parse(args)?;
        Ok(BLMPop(parse_timeout(&timeout)?, mpop))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let BLMPop(timeout, mpop) = self;
        let keys = mpop.keys.clone();
        let attempt = Box::new(move |_: &ServerState, t: &mut Txn<'_, '_>, retry: bool| {
            for key in &mpop.keys {
                if ready(t, key, retry)? {
                    let one = MPopArgs {
                        keys: vec![key.clone()],
                        end: mpop.end,
                        count: mpop.count,
                    };
                    return one.pop(t);
                }
            }
            Ok(None)
        });
        serve_or_block(
            cx,
            keys.clone(),
            &keys,
            timeout,
            Frame::NullArray,
            Frame::NullArray,
            attempt,
        )
    }
}
