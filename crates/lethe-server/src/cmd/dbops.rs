//! Commands that move whole values or databases: SWAPDB, DUMP and RESTORE (the payload codec is
//! [`crate::keyspace::rdb`]), and the table rows of this family and of SORT (`sort` module).
//!
//! SWAPDB is O(1): database numbers map to stored key prefixes
//! ([`crate::keyspace::DatabaseMap`]) and the swap trades two numbers' prefixes under the
//! exclusive gate, so the entries never move and keep their tags, dependencies, versions and
//! TTLs. Client tracking, which knows key names but not databases, gets one flush message, as
//! for FLUSHDB: every name may now hold another value.

use super::command::{Doc, KeySpec, f, ks};
use super::{Command, CommandError, Ctx, ErrorKind, Reply, sort};
use crate::frame::Frame;
use crate::keyspace::{now_millis, rdb, timestamp_millis};
use crate::parse::{Parse, parse_int};
use bytes::Bytes;
use lethe::expiry::ExpireCondition;

super::command_table! {
    pub(super) DBOPS;
    "swapdb" 3 SwapDb {
        flags: f::WRITE | f::FAST,
        acl: super::command::acl::KEYSPACE | super::command::acl::DANGEROUS,
        doc: Doc::new("server", "4.0.0", "O(N) where N is the count of clients watching or blocking on keys from both databases.", "Swaps two Redis databases"),
    }
    "dump" 2 Dump {
        flags: f::READONLY,
        acl: super::command::acl::KEYSPACE,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("generic", "2.6.0", "O(1) to access the key and additional O(N*M) to serialize it, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1).", "Return a serialized version of the value stored at the specified key."),
    }
    "restore" -4 Restore {
        flags: f::WRITE | f::DENYOOM,
        acl: super::command::acl::KEYSPACE | super::command::acl::DANGEROUS,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "2.6.0", "O(1) to create the new key and additional O(N*M) to reconstruct the serialized value, where N is the number of Redis objects composing the value and M their average size. For small string values the time complexity is thus O(1)+O(1*M) where M is small, so simply O(1). However for sorted set values the complexity is O(N*M*log(N)) because inserting values into sorted sets is O(log(N)).", "Create a key using the provided serialized value, previously obtained using DUMP."),
    }
    "sort" -2 sort::Sort<false> {
        flags: f::WRITE | f::DENYOOM,
        acl: super::command::acl::SET | super::command::acl::SORTEDSET | super::command::acl::LIST | super::command::acl::DANGEROUS,
        keys: &[
            KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1),
            KeySpec::unknown(ks::RO | ks::ACCESS, "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
            KeySpec::unknown(ks::OW | ks::UPDATE, "For the optional STORE keyword. It is marked 'unknown' because the keyword can appear anywhere in the argument array"),
        ],
        doc: Doc::new("generic", "1.0.0", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "Sort the elements in a list, set or sorted set"),
    }
    "sort_ro" -2 sort::Sort<true> {
        flags: f::READONLY,
        acl: super::command::acl::SET | super::command::acl::SORTEDSET | super::command::acl::LIST | super::command::acl::DANGEROUS,
        keys: &[
            KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1),
            KeySpec::unknown(ks::RO | ks::ACCESS, "For the optional BY/GET keyword. It is marked 'unknown' because the key names derive from the content of the key we sort"),
        ],
        doc: Doc::new("generic", "7.0.0", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N).", "Sort the elements in a list, set or sorted set. Read-only variant of SORT."),
    }
}

/// A database number argument of SWAPDB: Redis's `getIntFromObjectOrReply` with its own
/// message, then the range check.
fn swap_index(raw: &[u8], which: &str) -> Result<i64, CommandError> {
    parse_int(raw)
        .filter(|n| i32::try_from(*n).is_ok())
        .ok_or_else(|| CommandError::err(&format!("invalid {which} DB index")))
}

#[derive(Debug)]
pub struct SwapDb(Bytes, Bytes);

impl Command for SwapDb {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(SwapDb(args.next_bytes()?, args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        if cx.state.cluster().is_some() {
            return Err(CommandError::err("SWAPDB is not allowed in cluster mode"));
        }
        let a = swap_index(&self.0, "first")?;
        let b = swap_index(&self.1, "second")?;
        let range = 0..i64::from(crate::keyspace::DATABASES);
        if !range.contains(&a) || !range.contains(&b) {
            return Err(CommandError::err("DB index is out of range"));
        }
        if !cx.exclusive {
            return Err(CommandError::err(
                "internal error: SWAPDB without the keyspace held whole",
            ));
        }
        if a != b {
            cx.state.keyspace().swap_databases(a as u8, b as u8);
            cx.state.tracking().flushed(cx.state.clients());
        }
        Ok(Frame::ok())
    }
}

#[derive(Debug)]
pub struct Dump(Bytes);

impl Command for Dump {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        Ok(Dump(args.next_bytes()?))
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let payload = cx.read([&self.0[..]], |t| t.get(&self.0).map(rdb::dump))?;
        Ok(payload.map_or(Frame::Null, |p| Frame::Bulk(p.into())))
    }
}

#[derive(Debug)]
pub struct Restore {
    key: Bytes,
    ttl: Bytes,
    payload: Bytes,
    replace: bool,
    absttl: bool,
}

impl Command for Restore {
    fn parse_frames(args: &mut Parse) -> Result<Self, CommandError> {
        let mut r = Restore {
            key: args.next_bytes()?,
            ttl: args.next_bytes()?,
            payload: args.next_bytes()?,
            replace: false,
            absttl: false,
        };
        // IDLETIME and FREQ exclude each other, as in Redis: the second is a syntax error.
        let (mut idle, mut freq) = (false, false);
        while let Some(opt) = args.try_next() {
            match String::from_utf8_lossy(&opt).to_ascii_uppercase().as_str() {
                "REPLACE" => r.replace = true,
                "ABSTTL" => r.absttl = true,
                "IDLETIME" if args.remaining() > 0 && !freq => {
                    let n = args.next_int()?;
                    if n < 0 {
                        return Err(CommandError::err("Invalid IDLETIME value, must be >= 0"));
                    }
                    idle = true;
                }
                "FREQ" if args.remaining() > 0 && !idle => {
                    let n = args.next_int()?;
                    if !(0..=255).contains(&n) {
                        return Err(CommandError::err(
                            "Invalid FREQ value, must be >= 0 and <= 255",
                        ));
                    }
                    freq = true;
                }
                _ => return Err(CommandError::syntax()),
            }
        }
        Ok(r)
    }

    fn apply(self, cx: &mut Ctx<'_>) -> Reply {
        let state = cx.state;
        let key = &self.key[..];
        cx.write([key], |t| {
            if !self.replace && t.exists(key) {
                return Err(CommandError::new(
                    ErrorKind::Other,
                    "BUSYKEY Target key name already exists.",
                ));
            }
            let ttl = parse_int(&self.ttl).ok_or_else(CommandError::not_integer)?;
            if ttl < 0 {
                return Err(CommandError::err("Invalid TTL value, must be >= 0"));
            }
            let value = rdb::restore(&self.payload).map_err(|e| match e {
                rdb::Error::Envelope => {
                    CommandError::err("DUMP payload version or checksum are wrong")
                }
                rdb::Error::Format => CommandError::err("Bad data format"),
            })?;
            // Refused before anything changes: REPLACE keeps the old value then.
            state.check_fits(&t.key(key), &value)?;
            if self.replace {
                t.delete(key);
            }
            let at = match ttl {
                0 => None,
                ms if self.absttl => Some(ms),
                ms => Some(ms.saturating_add(now_millis())),
            };
            // A deadline already past stores nothing (the old value is gone with REPLACE).
            if at.is_some_and(|at| at <= now_millis()) {
                return Ok(Frame::ok());
            }
            t.insert(key, value, &lethe::InsertOptions::new())
                .map_err(crate::state::refused)?;
            if let Some(at) = at {
                t.expire_at(key, timestamp_millis(at), ExpireCondition::Always);
            }
            Ok(Frame::ok())
        })?
    }
}
