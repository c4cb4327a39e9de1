//! Commands: the table of known commands with their arity, dispatch, and the error type every
//! command returns. One module per command family; each command is a struct parsed from its
//! arguments ([`Command::parse_frames`]) and then applied to the keyspace ([`Command::apply`]).
//!
//! The dispatcher also enforces the client's state before a command runs: a client that must
//! still AUTH may only run the commands flagged `no_auth`, a RESP2 client with
//! subscriptions may only run the pub/sub commands, PING, QUIT and RESET, and a client inside
//! MULTI has its commands queued for EXEC (the `transactions` module) instead of run. In
//! cluster mode a command whose keys are not all in one slot served here is refused with
//! Redis Cluster's redirections (the `cluster` module).
//!
//! Each table row also carries the command's metadata (flags, ACL categories, key specs, tips,
//! docs, subcommands) for COMMAND (the `command` module); whether a command writes the
//! keyspace, which the dispatcher needs, is read from the same flags.

mod bits;
mod blocking;
mod client_ctl;
mod cluster;
mod command;
mod connection;
mod dbops;
mod geo;
mod geohash;
mod hash_ttl;
mod hashes;
mod hyperloglog;
mod keys;
mod lcs;
pub(crate) mod lethe;
mod lists;
mod long_double;
mod pubsub;
mod server_info;
mod sets;
mod sort;
mod streams;
mod strings;
mod table;
mod tracking;
mod transactions;
mod zset_ops;
mod zset_pops;
mod zset_range;
mod zsets;

use crate::clients::ClientInfo;
use crate::frame::{Frame, Protocol};
use crate::keyspace::{Changes, Lock, SmallBytes, Txn, WatchStamp, stored_key};
use crate::parse::Parse;
use crate::pubsub::Pushes;
use crate::state::ServerState;
pub use blocking::Blocked;
use bytes::Bytes;
use indexmap::IndexSet;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
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
    /// Shard channels this client is subscribed to (SSUBSCRIBE), in subscription order.
    pub shard_channels: IndexSet<Bytes>,
    /// MULTI queue and WATCHed keys.
    pub tx: transactions::Transaction,
    /// Where published messages for this client go; the connection loop drains the other end.
    pub pushes: Pushes,
    /// This client as others see it (CLIENT LIST).
    pub client: Arc<ClientInfo>,
    /// The client-side caching mode, while `CLIENT TRACKING` is on.
    pub tracking: Option<crate::tracking::Mode>,
    /// `CLIENT CACHING yes|no`, for the next command only.
    pub caching: Option<bool>,
    /// The server's limits and password (CONFIG changes them for everyone).
    pub limits: Arc<crate::limits::Limits>,
    /// Whether AUTH (or HELLO AUTH) succeeded, or no password was required on connecting.
    pub authenticated: bool,
    /// The selected database (`SELECT`).
    pub db: u8,
    /// Set by a blocking command (BLPOP, ...) that found nothing: the connection loop waits on
    /// it and retries, instead of replying now.
    pub blocked: Option<blocking::Blocked>,
    /// CLIENT REPLY OFF: no replies until CLIENT REPLY ON.
    pub reply_off: bool,
    /// CLIENT REPLY SKIP: the reply of the command running now is dropped...
    pub skip_this: bool,
    /// ... and so is the next command's (moved to `skip_this` after each command).
    pub skip_next: bool,
    /// CLIENT NO-TOUCH: reads leave keys' access time and frequency alone (except TOUCH).
    pub no_touch: bool,
    /// In cluster mode, the dependencies on other nodes' keys whose owners confirmed a watch
    /// for this client's current write (or MULTI block): (key, owner). See
    /// [`crate::cluster::remote_deps`].
    pub dependency_watches: Vec<(Bytes, String)>,
    /// This client as the keys' history names it.
    origin: Arc<::lethe::history::Origin>,
}

impl Session {
    /// A new client's state: RESP2, no name, no subscriptions; `pushes` feeds its connection.
    /// As in Redis, a client that connects while no password is set counts as authenticated
    /// even if one is set later.
    pub fn new(
        client: Arc<ClientInfo>,
        pushes: Pushes,
        limits: Arc<crate::limits::Limits>,
    ) -> Session {
        let origin = Arc::new(::lethe::history::Origin::client(format!(
            "id={} addr={}",
            client.id, client.addr
        )));
        Session {
            authenticated: limits.requirepass().is_none(),
            limits,
            protocol: Protocol::Resp2,
            id: client.id,
            client,
            name: None,
            quit: false,
            channels: IndexSet::new(),
            patterns: IndexSet::new(),
            shard_channels: IndexSet::new(),
            tx: transactions::Transaction::default(),
            pushes,
            tracking: None,
            caching: None,
            db: 0,
            blocked: None,
            reply_off: false,
            skip_this: false,
            skip_next: false,
            no_touch: false,
            dependency_watches: Vec::new(),
            origin,
        }
    }

    /// This client as the keys' history names it (`LETHE.WHY`): its id and address.
    pub fn origin(&self) -> Arc<::lethe::history::Origin> {
        self.origin.clone()
    }

    /// After a command: whether its reply is dropped (CLIENT REPLY OFF or SKIP), moving a
    /// SKIP on to the next command.
    pub fn reply_silenced(&mut self) -> bool {
        let silent = self.reply_off || self.skip_this;
        self.skip_this = std::mem::take(&mut self.skip_next);
        silent
    }

    /// Channels plus patterns subscribed to: the count pub/sub confirmations report.
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Whether the client is in pub/sub mode: subscribed to anything, shard channels included
    /// (a RESP2 client then may only run the pub/sub commands, as in Redis).
    pub fn subscribed(&self) -> bool {
        self.subscriptions() + self.shard_channels.len() > 0
    }

    /// Whether the client must AUTH before running commands.
    pub fn auth_required(&self) -> bool {
        !self.authenticated && self.limits.requirepass().is_some()
    }

    /// Copies what CLIENT LIST shows of this session to the shared [`ClientInfo`], also
    /// applying `also` to the shared state under the same lock.
    pub fn publish_state_and(&self, also: impl FnOnce(&mut crate::clients::ClientState)) {
        self.client.update(|s| {
            also(s);
            s.name.clone_from(&self.name);
            s.sub = self.channels.len();
            s.psub = self.patterns.len();
            s.ssub = self.shard_channels.len();
            s.multi = self.tx.queue.as_ref().map_or(-1, |q| q.len() as i64);
            s.resp = self.protocol.number();
            s.tracking = self.tracking.as_ref().map(|m| m.redirect);
        });
        // A subscribed client's pushes fall under the `pubsub` output buffer limit.
        self.pushes.set_pubsub(self.subscribed());
    }

    /// Leaves every channel and pattern (on RESET and when the client goes away).
    pub fn leave_pubsub(&mut self, state: &ServerState) {
        for ch in self.channels.drain(..) {
            state.pubsub().unsubscribe(&ch, self.id);
        }
        for p in self.patterns.drain(..) {
            state.pubsub().punsubscribe(&p, self.id);
        }
        for ch in self.shard_channels.drain(..) {
            state.pubsub().sunsubscribe(&ch, self.id);
        }
    }
}

/// What a command runs against: the server state, the calling client, and the record of the
/// keys it changes (for client tracking).
///
/// Commands reach their keys through [`Ctx::read`] and [`Ctx::write`], which lock exactly the
/// shards of the keys named (see [`crate::keyspace`]). Inside EXEC the transaction already
/// holds the locks of every key its commands name; the same calls then use those.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The server state.
    pub state: &'a ServerState,
    /// The calling client.
    pub session: &'a mut Session,
    /// The keys the command changed.
    pub changes: &'a mut Changes,
    /// The locks EXEC took for all of its commands' keys, while it runs them.
    held: Option<Lock<'a>>,
    /// Whether the command runs inside EXEC, where blocking commands never block.
    deny_blocking: bool,
    /// Whether the gate is held exclusively for the command (SWAPDB).
    exclusive: bool,
    /// Whether reads must not count as accesses (CLIENT NO-TOUCH, for commands but TOUCH).
    no_touch: bool,
}

impl<'a> Ctx<'a> {
    /// A context for running commands of `session`.
    pub fn new(
        state: &'a ServerState,
        session: &'a mut Session,
        changes: &'a mut Changes,
    ) -> Ctx<'a> {
        Ctx {
            state,
            session,
            changes,
            held: None,
            deny_blocking: false,
            exclusive: false,
            no_touch: false,
        }
    }

    /// Runs `f` with the keys `names` (of the client's database) locked for reading: what it
    /// reads of them is one consistent state.
    pub fn read<'k, R>(
        &mut self,
        names: impl IntoIterator<Item = &'k [u8]>,
        f: impl FnOnce(&Txn<'_, 'a>) -> R,
    ) -> Result<R, CommandError> {
        self.access(names, false, |t| f(t))
    }

    /// Runs `f` with the keys `names` (of the client's database) locked for writing: its reads
    /// and writes of them are one atomic step to every other client.
    pub fn write<'k, R>(
        &mut self,
        names: impl IntoIterator<Item = &'k [u8]>,
        f: impl FnOnce(&mut Txn<'_, 'a>) -> R,
    ) -> Result<R, CommandError> {
        let db = self.state.keyspace().databases().prefix(self.session.db);
        if db != 0 {
            self.state.note_database(db);
        }
        self.access(names, true, f)
    }

    /// [`Ctx::write`] for keys of any databases (`(database, name)`): COPY and MOVE. The
    /// [`Txn`] starts in the client's database; [`Txn::use_db`] switches it (to the prefix
    /// [`Ctx::prefix`] gives).
    pub fn write_across<'k, R>(
        &mut self,
        keys: impl IntoIterator<Item = (u8, &'k [u8])>,
        f: impl FnOnce(&mut Txn<'_, 'a>) -> R,
    ) -> Result<R, CommandError> {
        let keys: smallvec::SmallVec<[SmallBytes; 2]> = keys
            .into_iter()
            .map(|(db, n)| {
                let key = self.state.keyspace().key(db, n);
                self.state.note_database(key[0]);
                key
            })
            .collect();
        self.access_stored(keys, true, f)
    }

    /// The stored prefix of database `db` (see [`crate::keyspace::DatabaseMap`]).
    pub fn prefix(&self, db: u8) -> u8 {
        self.state.keyspace().databases().prefix(db)
    }

    /// The stored form of `name` in the client's database.
    pub fn stored_key(&self, name: &[u8]) -> SmallBytes {
        self.state.keyspace().key(self.session.db, name)
    }

    fn access<'k, R>(
        &mut self,
        names: impl IntoIterator<Item = &'k [u8]>,
        write: bool,
        f: impl FnOnce(&mut Txn<'_, 'a>) -> R,
    ) -> Result<R, CommandError> {
        let db = self.prefix(self.session.db);
        let keys: smallvec::SmallVec<[SmallBytes; 2]> =
            names.into_iter().map(|n| stored_key(db, n)).collect();
        self.access_stored(keys, write, f)
    }

    fn access_stored<R>(
        &mut self,
        keys: smallvec::SmallVec<[SmallBytes; 2]>,
        write: bool,
        f: impl FnOnce(&mut Txn<'_, 'a>) -> R,
    ) -> Result<R, CommandError> {
        let db = self.prefix(self.session.db);
        if let Some(lock) = self.held.as_mut() {
            // Key specs name every key a command touches, so this holds for every command
            // EXEC runs under its locks; a key outside them is a bug, reported, not a deadlock.
            if !keys.iter().all(|k| lock.covers(k.as_bytes(), write)) {
                return Err(CommandError::err(
                    "internal error: a key outside the transaction's locks",
                ));
            }
            let blocking = self.state.keyspace().blocking();
            let mut t = Txn::new(lock, db, self.changes, blocking);
            t.set_no_touch(self.no_touch);
            return Ok(f(&mut t));
        }
        let keyspace = self.state.keyspace();
        let mut lock = if write {
            let mut lock = keyspace.lock(&keys);
            if self.state.keeps_history() {
                lock.set_origin(self.session.origin());
            }
            lock
        } else {
            keyspace.lock_read(&keys)
        };
        let mut t = Txn::new(&mut lock, db, self.changes, keyspace.blocking());
        t.set_no_touch(self.no_touch);
        Ok(f(&mut t))
    }

    /// Holds `lock` (EXEC's, on all of its commands' keys) for the commands run next.
    pub(crate) fn hold(&mut self, mut lock: Lock<'a>) {
        if self.state.keeps_history() {
            lock.set_origin(self.session.origin());
        }
        self.held = Some(lock);
    }

    /// Releases what [`Ctx::hold`] holds.
    pub(crate) fn release(&mut self) {
        self.held = None;
    }

    /// The [`WatchStamp`] of a watched key (database number, then name: mapped to its
    /// prefix now, so a SWAPDB since WATCH compares the key now in that database), through
    /// EXEC's locks while they are held.
    pub(crate) fn watch_stamp(&self, watched: &SmallBytes) -> WatchStamp {
        let key = &self.state.keyspace().key(watched[0], &watched[1..]);
        match &self.held {
            Some(lock) => lock
                .metadata(key.as_bytes())
                .map(|m| (m.version, m.created, m.updated, m.expires_at)),
            None => self.state.keyspace().watch_stamp(key),
        }
    }
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

/// A command table row: Redis's arity convention (n exact, -n at least n, name included),
/// whether the command writes the keyspace (its `write` flag), and its metadata.
struct Spec {
    name: &'static str,
    arity: i32,
    writes: bool,
    run: fn(&mut Parse, &mut Ctx<'_>) -> Reply,
    meta: command::Meta,
}

fn run<C: Command>(args: &mut Parse, cx: &mut Ctx<'_>) -> Reply {
    C::parse_frames(args)?.apply(cx)
}

/// `command_table! { pub(super) NAME; "name" arity Type { flags: .., acl: .., tips: .., keys: ..,
/// doc: .., subs: .. } ... }` defines the rows `NAME` of a command family: `flags` first and
/// `doc` required, the rest as needed ([`command::Meta::NONE`] fills in). `acl` lists only the
/// categories the flags do not imply. Every family's rows are listed in [`TABLES`].
macro_rules! command_table {
    ($vis:vis $table:ident; $($name:literal $arity:literal $ty:ty {
        flags: $flags:expr $(, $field:ident: $value:expr)* $(,)?
    })*) => {
        $vis const $table: &[$crate::cmd::Spec] = &[$($crate::cmd::Spec {
            name: $name,
            arity: $arity,
            writes: $flags & $crate::cmd::command::f::WRITE != 0,
            run: $crate::cmd::run::<$ty>,
            meta: $crate::cmd::command::Meta {
                flags: $flags,
                $($field: $value,)*
                ..$crate::cmd::command::Meta::NONE
            },
        }),*];
    };
}
use command::f;
pub(crate) use command_table;

/// Every family's table rows; a command's [`CommandId`] is its position in their concatenation.
const TABLES: &[&[Spec]] = &[
    table::CORE,
    dbops::DBOPS,
    zsets::ZSETS,
    geo::GEO,
    pubsub::PUBSUB,
    hash_ttl::HASH_TTL,
    bits::BITS,
    hyperloglog::HYPERLOGLOG,
    lcs::LCS,
    cluster::CLUSTER,
];

/// The command table: [`TABLES`] concatenated.
static COMMANDS: LazyLock<Vec<&'static Spec>> =
    LazyLock::new(|| TABLES.iter().flat_map(|t| t.iter()).collect());

/// What a subscribed RESP2 client may run.
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];

/// The command table by lowercase name.
static BY_NAME: LazyLock<HashMap<&'static str, &'static Spec>> =
    LazyLock::new(|| COMMANDS.iter().map(|s| (s.name, *s)).collect());

/// A cheap hasher for looking up the command of every request. The table is fixed, so the
/// names clients send can only miss it: there is nothing for chosen collisions to slow down.
#[derive(Clone, Copy, Debug, Default)]
struct NameHasher(u64);

impl std::hash::Hasher for NameHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Positions in the command table by lowercase name, for the dispatcher.
static POSITION: LazyLock<HashMap<&'static [u8], usize, BuildHasherDefault<NameHasher>>> =
    LazyLock::new(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_bytes(), i))
            .collect()
    });

/// Longest command name in the table, with room to spare: longer names are unknown.
const MAX_NAME: usize = 32;

/// The position in the command table of the command called `name` (any case), without
/// allocating.
fn position(name: &[u8]) -> Option<usize> {
    let mut buf = [0u8; MAX_NAME];
    let lower = buf.get_mut(..name.len())?;
    for (to, from) in lower.iter_mut().zip(name) {
        *to = from.to_ascii_lowercase();
    }
    POSITION.get(&*lower).copied()
}

/// How many commands the table has: a [`CommandId`] is below this.
pub fn command_count() -> usize {
    COMMANDS.len()
}

/// The lowercase name of the command at `id` in the table.
pub fn command_name(id: CommandId) -> &'static str {
    COMMANDS[id.0].name
}

/// The family of the command at `id`, for counting commands by family: its COMMAND DOCS group
/// (`string`, `hash`, `sorted-set`, ...), except that `LETHE.*` commands, which call themselves
/// a module's, are the `lethe` family.
pub fn command_family(id: CommandId) -> &'static str {
    match COMMANDS[id.0].meta.doc.group() {
        "module" => "lethe",
        group => group,
    }
}

/// The id of the command called `name` (any case), if the table has it.
pub fn command_id(name: &[u8]) -> Option<CommandId> {
    position(name).map(CommandId)
}

/// A command's position in the command table, as [`dispatch_command`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandId(pub usize);

impl CommandId {
    /// Its position in the table.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Runs one request (name first) and returns its reply, errors included, and which command
/// of the table ran (or was refused: wrong arity,
/// not allowed in the client's state); `None` for a name the server does not know.
pub fn dispatch_command(args: Vec<Bytes>, cx: &mut Ctx<'_>) -> (Frame, Option<CommandId>) {
    let id = position(&args[0]).map(CommandId);
    let reply = match run_command(args, id, cx, false) {
        Ok(frame) => frame,
        Err(e) => Frame::Error(e.text),
    };
    (reply, id)
}

/// Runs a command queued by MULTI, from EXEC, which holds the gate (and maybe the command's
/// key locks) for it.
pub(crate) fn execute_queued(args: Vec<Bytes>, cx: &mut Ctx<'_>) -> Reply {
    let id = position(&args[0]).map(CommandId);
    let deny = std::mem::replace(&mut cx.deny_blocking, true);
    let reply = run_command(args, id, cx, true);
    cx.deny_blocking = deny;
    reply
}

/// The key names of a queued command (args name first), per its key specs; `None` if the
/// command reaches beyond the keys it names (a whole-keyspace operation, another database, or
/// the engine's own write path), so that EXEC cannot run it under key locks alone.
pub(crate) fn lockable_keys(args: &[Bytes]) -> Option<(Vec<Bytes>, bool)> {
    let spec = &COMMANDS[position(&args[0])?];
    // Commands that touch no keyspace at all run under any locks.
    const KEYSPACE_FREE: &[&str] = &[
        "ping", "echo", "time", "publish", "command", "client", "hello", "auth", "config",
        "spublish", "pubsub",
    ];
    if KEYSPACE_FREE.contains(&spec.name) {
        return Some((Vec::new(), false));
    }
    // SORT's keys depend on its options; with key-reading patterns it is whole-keyspace.
    if matches!(spec.name, "sort" | "sort_ro") {
        return sort::lockable(args);
    }
    // Commands naming keys of other databases than the client's: their key specs cannot say.
    const OTHER_DATABASES: &[&str] = &["select", "copy", "move"];
    if spec.meta.keys.is_empty()
        || spec.name.starts_with("lethe.")
        || OTHER_DATABASES.contains(&spec.name)
    {
        return None;
    }
    let keys = command::key_positions(&spec.meta, args)
        .into_iter()
        .map(|i| args[i].clone())
        .collect();
    // Locked for writing also where only the key specs say so (PFCOUNT's cache refresh).
    Some((keys, spec.writes || command::changes_keys(&spec.meta)))
}

/// Whether CLIENT PAUSE holds back this request, and as what: `None` for a request the
/// dispatcher refuses before running anything (unknown, wrong arity), else whether it counts
/// as a write for `WRITE` pauses: a write, a command that Redis propagates although it does
/// not write (PUBLISH, SPUBLISH: its `may_replicate` flag), or an EXEC of such commands.
pub fn pause_class(args: &[Bytes], session: &Session) -> Option<bool> {
    let spec = COMMANDS[position(&args[0])?];
    let argc = args.len() as i32;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        return None;
    }
    let may_replicate = |spec: &Spec| spec.writes || matches!(spec.name, "publish" | "spublish");
    Some(match (spec.name, &session.tx.queue) {
        ("exec", Some(queue)) => queue
            .iter()
            .any(|q| position(&q[0]).is_some_and(|i| may_replicate(COMMANDS[i]))),
        _ => may_replicate(spec),
    })
}

/// Commands a client in MULTI runs at once instead of queueing.
const NOT_QUEUED: &[&str] = &["exec", "discard", "multi", "watch", "quit", "reset"];

fn run_command(
    mut args: Vec<Bytes>,
    id: Option<CommandId>,
    cx: &mut Ctx<'_>,
    queued: bool,
) -> Reply {
    let spec = match check(&args, id, cx) {
        Ok(spec) => spec,
        Err(e) => {
            if cx.session.tx.queue.is_some() {
                // An EXEC refused (its arity) discards the transaction, as in Redis.
                if id.is_some_and(|id| COMMANDS[id.0].name == "exec") {
                    cx.session.tx.clear();
                    let why = e.text.strip_prefix("ERR ").unwrap_or(&e.text);
                    return Err(CommandError::new(
                        ErrorKind::Other,
                        format!("EXECABORT Transaction discarded because of: {why}"),
                    ));
                }
                // Any other command rejected while queueing poisons the transaction.
                cx.session.tx.failed = true;
            }
            return Err(e);
        }
    };
    let state = cx.state;
    if let Some(queue) = cx.session.tx.queue.as_mut() {
        if !NOT_QUEUED.contains(&spec.name) {
            // Checked when queued, as Redis does; a refusal makes EXEC abort.
            if let Some(Err(e)) = state.cluster().map(|c| cluster::route(c, spec, &args)) {
                cx.session.tx.failed = true;
                return Err(e);
            }
            queue.push(args);
            return Ok(Frame::Simple("QUEUED".into()));
        }
    }
    // Every command holds the gate shared, so a transaction that needs the keyspace whole
    // can hold it exclusively; EXEC takes it itself, and the commands it runs are under its.
    let gate = state.keyspace().gate();
    // SWAPDB changes what every database number means: it runs alone (inside EXEC it runs
    // under EXEC's exclusive hold, as a command without keys).
    let whole = spec.name == "swapdb";
    let _gate = (!queued && spec.name != "exec" && !whole).then(|| gate.shared());
    let exclusive = (!queued && whole).then(|| gate.exclusive());
    cx.exclusive = exclusive.is_some() || (queued && whole);
    // In cluster mode, routed under the gate: a new slot map is applied under it held
    // exclusively, so no command routed by an older map is still running once it applies.
    // EXEC routes its queue itself (`cluster::route_queue`).
    if let Some(cluster) = state.cluster().filter(|_| !queued) {
        if let Err(e) = cluster::route(cluster, spec, &args) {
            // As Redis, a redirection inside MULTI (WATCH) makes EXEC abort.
            if cx.session.tx.queue.is_some() {
                cx.session.tx.failed = true;
            }
            return Err(e);
        }
    }
    let tracking = state.tracking().active();
    // The keys a read serves, for client tracking to remember.
    let served: Vec<Bytes> = match &cx.session.tracking {
        Some(_) if tracking && spec.meta.flags & f::READONLY != 0 => {
            command::key_positions(&spec.meta, &args)
                .into_iter()
                .map(|i| args[i].clone())
                .collect()
        }
        _ => Vec::new(),
    };
    args.remove(0);
    // TOUCH touches under CLIENT NO-TOUCH too, as in Redis.
    cx.no_touch = cx.session.no_touch && spec.name != "touch";
    let reply = (spec.run)(&mut Parse::new(args), cx);
    if tracking || state.records_changes() {
        // A read that changed what it read (PFCOUNT storing a fresh count in the value) tells
        // the trackers before remembering what it served, as Redis does: the caller hears of
        // its earlier reads of the key, not of the one it was just answered.
        let changed_by_read = !queued && !served.is_empty() && !cx.changes.is_empty();
        if changed_by_read {
            state.report_changes(cx.changes, cx.session.id);
        }
        if tracking {
            tracking::after(cx, &served);
        }
        // Inside EXEC the changes wait for EXEC to release its locks.
        if !queued && !changed_by_read {
            state.report_changes(cx.changes, cx.session.id);
        }
    }
    // `CLIENT CACHING` applies to the next command only (to a whole MULTI ... EXEC).
    if !queued && spec.name != "client" && cx.session.tx.queue.is_none() {
        cx.session.caching = None;
    }
    reply
}

/// Finds the command and checks that it may run as given: known, right arity, allowed in the
/// client's state.
fn check(
    args: &[Bytes],
    id: Option<CommandId>,
    cx: &Ctx<'_>,
) -> Result<&'static Spec, CommandError> {
    let name = &args[0];
    let Some(spec) = id.map(|id| &COMMANDS[id.0]) else {
        if let Some(e) = streams::unsupported(name) {
            return Err(e);
        }
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
    // As Redis: unknown commands and arity are reported first, then authentication.
    if spec.meta.flags & f::NO_AUTH == 0 && cx.session.auth_required() {
        return Err(CommandError::new(
            ErrorKind::Other,
            "NOAUTH Authentication required.",
        ));
    }
    // A RESP2 connection with subscriptions is a stream of pushes that cannot be told apart
    // from replies, so Redis allows only the commands that make sense in that state. RESP3
    // marks pushes as such and lifts the restriction.
    if cx.session.protocol == Protocol::Resp2
        && cx.session.subscribed()
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
