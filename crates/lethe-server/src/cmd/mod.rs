//! Commands: the table of known commands with their arity, dispatch, and the error type every
//! command returns. One module per command family; each command is a struct parsed from its
//! arguments ([`Command::parse_frames`]) and then applied to the keyspace ([`Command::apply`]).
//!
//! The dispatcher also enforces the client's state before a command runs: a RESP2 client with
//! subscriptions may only run the pub/sub commands, PING, QUIT and RESET, and a client inside
//! MULTI has its commands queued for EXEC (the `transactions` module) instead of run.

mod connection;
mod hashes;
mod keys;
mod lethe;
mod pubsub;
mod server_info;
mod strings;
mod transactions;

use crate::clients::ClientInfo;
use crate::db::Db;
use crate::frame::{Frame, Protocol};
use crate::parse::Parse;
use crate::pubsub::Pushes;
use bytes::Bytes;
use indexmap::IndexSet;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// Per-client state that commands read and change.
#[derive(Debug)]
pub struct Session {
    /// The protocol replies are encoded in (`HELLO` changes it).
    pub protocol: Protocol,
    /// The client id (`HELLO` reports it).
    pub id: u64,
    /// The name set with `HELLO ... SETNAME`.
    pub name: Option<Bytes>,
    /// Set by `QUIT`: close after the reply.
    pub quit: bool,
    /// Channels this client is subscribed to, in subscription order.
    pub channels: IndexSet<Bytes>,
    /// Patterns this client is subscribed to, in subscription order.
    pub patterns: IndexSet<Bytes>,
    /// MULTI queue and WATCHed keys.
    pub tx: transactions::Transaction,
    /// Where published messages for this client go; the connection loop drains the other end.
    pub pushes: Pushes,
    /// This client as others see it (CLIENT LIST).
    pub client: Arc<ClientInfo>,
}

impl Session {
    /// A new client's state: RESP2, no name, no subscriptions; `pushes` feeds its connection.
    pub fn new(client: Arc<ClientInfo>, pushes: Pushes) -> Session {
        Session {
            protocol: Protocol::Resp2,
            id: client.id,
            client,
            name: None,
            quit: false,
            channels: IndexSet::new(),
            patterns: IndexSet::new(),
            tx: transactions::Transaction::default(),
            pushes,
        }
    }

    /// Channels plus patterns subscribed to: the count pub/sub confirmations report.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Copies what CLIENT LIST shows of this session to the shared [`ClientInfo`].
    pub fn publish_state(&self) {
        self.client.update(|s| {
            s.name.clone_from(&self.name);
            s.sub = self.channels.len();
            s.psub = self.patterns.len();
            s.multi = self.tx.queue.as_ref().map_or(-1, |q| q.len() as i64);
            s.resp = self.protocol.number();
        });
    }

    /// Leaves every channel and pattern (on RESET and when the client goes away).
    pub fn leave_pubsub(&mut self, db: &Db) {
        for ch in self.channels.drain(..) {
            db.pubsub().unsubscribe(&ch, self.id);
        }
        for p in self.patterns.drain(..) {
            db.pubsub().punsubscribe(&p, self.id);
        }
    }
}

/// What a command runs against.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The keyspace.
    pub db: &'a Db,
    /// The calling client.
    pub session: &'a mut Session,
}

/// The kind of a [`CommandError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Unknown command.
    UnknownCommand,
    /// Wrong number of arguments.
    Arity,
    /// Malformed options (`ERR syntax error` and relatives).
    Syntax,
    /// An argument or stored value is not a valid number.
    NotANumber,
    /// The key holds another type (`WRONGTYPE`).
    WrongType,
    /// The value does not fit in the keyspace's capacity (`OOM`).
    OutOfMemory,
    /// Any other refusal (out of range, no such key, ...).
    Other,
}

/// A command's failure, carrying the exact Redis reply text (error code included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError {
    kind: ErrorKind,
    text: String,
}

impl CommandError {
    /// An error of `kind` replying `text` (which starts with the error code).
    pub fn new(kind: ErrorKind, text: impl Into<String>) -> CommandError {
        CommandError {
            kind,
            text: text.into(),
        }
    }

    /// `ERR <message>`.
    pub fn err(message: &str) -> CommandError {
        CommandError::new(ErrorKind::Other, format!("ERR {message}"))
    }

    /// `ERR syntax error`.
    pub fn syntax() -> CommandError {
        CommandError::new(ErrorKind::Syntax, "ERR syntax error")
    }

    /// `ERR value is not an integer or out of range`.
    pub fn not_integer() -> CommandError {
        CommandError::new(
            ErrorKind::NotANumber,
            "ERR value is not an integer or out of range",
        )
    }

    /// `WRONGTYPE ...`.
    pub fn wrong_type() -> CommandError {
        CommandError::new(
            ErrorKind::WrongType,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        )
    }

    /// `ERR invalid expire time in '<cmd>' command`.
    pub fn invalid_expire(cmd: &str) -> CommandError {
        CommandError::err(&format!("invalid expire time in '{cmd}' command"))
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The reply text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CommandError {}

/// A command's outcome: its reply or its error.
pub type Reply = Result<Frame, CommandError>;

/// A Redis command.
pub trait Command: Sized {
    /// Parses the arguments after the name (arity already checked).
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError>;
    /// Runs the command.
    fn apply(self, cx: &mut Ctx<'_>) -> Reply;
}

/// A command table row: Redis's arity convention (n exact, -n at least n, name included), and
/// whether the command writes the keyspace.
struct Spec {
    name: &'static str,
    arity: i32,
    writes: bool,
    run: fn(&mut Parse, &mut Ctx<'_>) -> Reply,
}

fn run<C: Command>(args: &mut Parse, cx: &mut Ctx<'_>) -> Reply {
    C::parse_frames(args)?.apply(cx)
}

macro_rules! table {
    ($($name:literal $arity:literal $access:ident $ty:ty;)*) => {
        const COMMANDS: &[Spec] = &[$(Spec {
            name: $name,
            arity: $arity,
            writes: table!(@writes $access),
            run: run::<$ty>,
        }),*];
    };
    (@writes read) => { false };
    (@writes write) => { true };
}

table! {
    "ping" -1 read connection::Ping;
    "echo" 2 read connection::Echo;
    "hello" -1 read connection::Hello;
    "select" 2 read connection::Select;
    "quit" -1 read connection::Quit;
    "reset" 1 read connection::Reset;
    "time" 1 read connection::Time;
    "subscribe" -2 read pubsub::Subscribe;
    "psubscribe" -2 read pubsub::PSubscribe;
    "unsubscribe" -1 read pubsub::Unsubscribe;
    "punsubscribe" -1 read pubsub::PUnsubscribe;
    "publish" 3 read pubsub::Publish;
    "multi" 1 read transactions::Multi;
    "exec" 1 read transactions::Exec;
    "discard" 1 read transactions::Discard;
    "watch" -2 read transactions::Watch;
    "unwatch" 1 read transactions::Unwatch;
    "client" -2 read server_info::Client;
    "config" -2 read server_info::Config;
    "info" -1 read server_info::Info;
    "get" 2 read strings::Get;
    "set" -3 write strings::Set;
    "getex" -2 write strings::GetEx;
    "getdel" 2 write strings::GetDel;
    "getset" 3 write strings::GetSet;
    "mget" -2 read strings::MGet;
    "mset" -3 write strings::MSet;
    "msetnx" -3 write strings::MSetNx;
    "setnx" 3 write strings::SetNx;
    "setex" 4 write strings::SetEx;
    "psetex" 4 write strings::PSetEx;
    "append" 3 write strings::Append;
    "strlen" 2 read strings::StrLen;
    "getrange" 4 read strings::GetRange;
    "setrange" 4 write strings::SetRange;
    "incr" 2 write strings::Incr;
    "decr" 2 write strings::Decr;
    "incrby" 3 write strings::IncrBy;
    "decrby" 3 write strings::DecrBy;
    "incrbyfloat" 3 write strings::IncrByFloat;
    "del" -2 write keys::Del;
    "unlink" -2 write keys::Del;
    "exists" -2 read keys::Exists;
    "type" 2 read keys::Type;
    "touch" -2 read keys::Touch;
    "expire" -3 write keys::Expire;
    "pexpire" -3 write keys::PExpire;
    "expireat" -3 write keys::ExpireAt;
    "pexpireat" -3 write keys::PExpireAt;
    "ttl" 2 read keys::Ttl;
    "pttl" 2 read keys::PTtl;
    "expiretime" 2 read keys::ExpireTime;
    "pexpiretime" 2 read keys::PExpireTime;
    "persist" 2 write keys::Persist;
    "keys" 2 read keys::Keys;
    "scan" -2 read keys::Scan;
    "randomkey" 1 read keys::RandomKey;
    "rename" 3 write keys::Rename;
    "dbsize" 1 read keys::DbSize;
    "flushdb" -1 write keys::Flush;
    "flushall" -1 write keys::Flush;
    "hset" -4 write hashes::HSet;
    "hmset" -4 write hashes::HMSet;
    "hget" 3 read hashes::HGet;
    "hmget" -3 read hashes::HMGet;
    "hgetall" 2 read hashes::HGetAll;
    "hdel" -3 write hashes::HDel;
    "hexists" 3 read hashes::HExists;
    "hlen" 2 read hashes::HLen;
    "hkeys" 2 read hashes::HKeys;
    "hvals" 2 read hashes::HVals;
    "hincrby" 4 write hashes::HIncrBy;
    "lethe.set" -3 write lethe::Set;
    "lethe.invalidate" -3 write lethe::Invalidate;
    "lethe.tags" 2 read lethe::Tags;
    "lethe.keys.tag" 2 read lethe::KeysTag;
    "lethe.deps" 2 read lethe::Deps;
    "lethe.dependents" 2 read lethe::Dependents;
    "lethe.version" 2 read lethe::Version;
    "lethe.setifnewer" 4 write lethe::SetIfNewer;
    "lethe.cas" -4 write lethe::Cas;
    "lethe.etag" 2 read lethe::Etag;
    "lethe.getifnonematch" 3 read lethe::GetIfNoneMatch;
    "lethe.lease" 2 write lethe::LeaseCmd;
    "lethe.fill" -4 write lethe::Fill;
    "lethe.rules" -2 write lethe::Rules;
    "lethe.event" -4 write lethe::EventCmd;
    "lethe.stats" -1 read lethe::Stats;
}

/// What a subscribed RESP2 client may run.
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ping",
    "quit",
    "reset",
];

/// The command table by lowercase name.
static BY_NAME: LazyLock<HashMap<&'static str, &'static Spec>> =
    LazyLock::new(|| COMMANDS.iter().map(|s| (s.name, s)).collect());

/// Runs one request (name first) and returns its reply, errors included.
pub fn dispatch(args: Vec<Bytes>, cx: &mut Ctx<'_>) -> Frame {
    match execute(args, cx) {
        Ok(frame) => frame,
        Err(e) => Frame::Error(e.text),
    }
}

fn execute(args: Vec<Bytes>, cx: &mut Ctx<'_>) -> Reply {
    run_command(args, cx, false)
}

/// Runs a command queued by MULTI, from EXEC, which already holds the write lock.
pub(crate) fn execute_locked(args: Vec<Bytes>, cx: &mut Ctx<'_>) -> Reply {
    run_command(args, cx, true)
}

/// Commands a client in MULTI runs at once instead of queueing.
const NOT_QUEUED: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];

fn run_command(mut args: Vec<Bytes>, cx: &mut Ctx<'_>, locked: bool) -> Reply {
    let spec = match check(&args, cx) {
        Ok(spec) => spec,
        Err(e) => {
            // A command rejected while queueing poisons the transaction, as in Redis.
            if cx.session.tx.queue.is_some() {
                cx.session.tx.failed = true;
            }
            return Err(e);
        }
    };
    if let Some(queue) = cx.session.tx.queue.as_mut() {
        if !NOT_QUEUED.contains(&spec.name) {
            queue.push(args);
            return Ok(Frame::Simple("QUEUED".into()));
        }
    }
    args.remove(0);
    // Every write holds the keyspace's write lock for its whole read-modify-write, so writes are
    // linearizable among themselves (an INCR cannot resurrect a key a DEL removed meanwhile).
    let _guard = (spec.writes && !locked).then(|| cx.db.write_lock());
    (spec.run)(&mut Parse::new(args), cx)
}

/// Finds the command and checks that it may run as given: known, right arity, allowed in the
/// client's state.
fn check(args: &[Bytes], cx: &Ctx<'_>) -> Result<&'static Spec, CommandError> {
    let name = &args[0];
    let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
    let Some(spec) = BY_NAME.get(lower.as_str()).copied() else {
        return Err(CommandError::new(
            ErrorKind::UnknownCommand,
            unknown_command(name, &args[1..]),
        ));
    };
    let argc = args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return Err(CommandError::new(
            ErrorKind::Arity,
            format!("ERR wrong number of arguments for '{}' command", spec.name),
        ));
    }
    // A RESP2 connection with subscriptions is a stream of pushes that cannot be told apart
    // from replies, so Redis allows only the commands that make sense in that state. RESP3
    // marks pushes as such and lifts the restriction.
    if cx.session.protocol == Protocol::Resp2
        && cx.session.subscriptions() > 0
        && !ALLOWED_WHILE_SUBSCRIBED.contains(&spec.name)
    {
        return Err(CommandError::err(&format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET \
             are allowed in this context",
            spec.name
        )));
    }
    Ok(spec)
}

/// Redis's text: the name and then quoted arguments until 128 characters of them are shown.
fn unknown_command(name: &[u8], args: &[Bytes]) -> String {
    let mut shown = String::new();
    for arg in args {
        if shown.len() >= 128 {
            break;
        }
        let arg = String::from_utf8_lossy(arg);
        let room = 128 - shown.len();
        let arg: String = arg.chars().take(room).collect();
        shown.push_str(&format!("'{arg}' "));
    }
    let name: String = String::from_utf8_lossy(name).chars().take(128).collect();
    format!("ERR unknown command '{name}', with args beginning with: {shown}")
}

/// `:1` or `:0`, how Redis answers yes/no questions.
pub(crate) fn bool_reply(b: bool) -> Frame {
    Frame::Integer(i64::from(b))
}
