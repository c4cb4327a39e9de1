//! The command table: every command Lethe serves, with its arity, the type that parses and runs
//! it, and the metadata COMMAND reports (flags, ACL categories, key specs, tips, docs,
//! subcommands). Rows are copied from Redis 7.0's command metadata so that COMMAND INFO and
//! COMMAND DOCS match a real server; families added later keep their rows in their own module
//! (see [`super::TABLES`]) so the table grows without one file holding all of it.

use super::command::{Doc, KeySpec, LETHE, Meta, Sub, acl, f, ks};
use super::{
    blocking, command, connection, hashes, keys, lethe, lists, pubsub, server_info, sets, strings,
    transactions,
};

super::command_table! {
    pub(super) CORE;
    "ping" -1 connection::Ping {
        flags: f::FAST,
        acl: acl::CONNECTION,
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        doc: Doc::new("connection", "1.0.0", "O(1)", "Ping the server"),
    }
    "echo" 2 connection::Echo {
        flags: f::LOADING | f::STALE | f::FAST,
        acl: acl::CONNECTION,
        doc: Doc::new("connection", "1.0.0", "O(1)", "Echo the given string"),
    }
    "hello" -1 connection::Hello {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::NO_AUTH | f::ALLOW_BUSY,
        acl: acl::CONNECTION,
        doc: Doc::new("connection", "6.0.0", "O(1)", "Handshake with Redis"),
    }
    "select" 2 connection::Select {
        flags: f::LOADING | f::STALE | f::FAST,
        acl: acl::CONNECTION,
        doc: Doc::new("connection", "1.0.0", "O(1)", "Change the selected database for the current connection"),
    }
    "quit" -1 connection::Quit {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::NO_AUTH | f::ALLOW_BUSY,
        acl: acl::CONNECTION,
        doc: Doc::new("connection", "1.0.0", "O(1)", "Close the connection"),
    }
    "reset" 1 connection::Reset {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::NO_AUTH | f::ALLOW_BUSY,
        acl: acl::CONNECTION,
        doc: Doc::new("connection", "6.2.0", "O(1)", "Reset the connection"),
    }
    "time" 1 connection::Time {
        flags: f::LOADING | f::STALE | f::FAST,
        tips: &["nondeterministic_output"],
        doc: Doc::new("server", "2.6.0", "O(1)", "Return the current server time"),
    }
    "subscribe" -2 pubsub::Subscribe {
        flags: f::PUBSUB | f::NOSCRIPT | f::LOADING | f::STALE,
        doc: Doc::new("pubsub", "2.0.0", "O(N) where N is the number of channels to subscribe to.", "Listen for messages published to the given channels"),
    }
    "psubscribe" -2 pubsub::PSubscribe {
        flags: f::PUBSUB | f::NOSCRIPT | f::LOADING | f::STALE,
        doc: Doc::new("pubsub", "2.0.0", "O(N) where N is the number of patterns the client is already subscribed to.", "Listen for messages published to channels matching the given patterns"),
    }
    "unsubscribe" -1 pubsub::Unsubscribe {
        flags: f::PUBSUB | f::NOSCRIPT | f::LOADING | f::STALE,
        doc: Doc::new("pubsub", "2.0.0", "O(N) where N is the number of clients already subscribed to a channel.", "Stop listening for messages posted to the given channels"),
    }
    "punsubscribe" -1 pubsub::PUnsubscribe {
        flags: f::PUBSUB | f::NOSCRIPT | f::LOADING | f::STALE,
        doc: Doc::new("pubsub", "2.0.0", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).", "Stop listening for messages posted to channels matching the given patterns"),
    }
    "publish" 3 pubsub::Publish {
        flags: f::PUBSUB | f::LOADING | f::STALE | f::FAST,
        doc: Doc::new("pubsub", "2.0.0", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).", "Post a message to a channel"),
    }
    "multi" 1 transactions::Multi {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::ALLOW_BUSY,
        acl: acl::TRANSACTION,
        doc: Doc::new("transactions", "1.2.0", "O(1)", "Mark the start of a transaction block"),
    }
    "exec" 1 transactions::Exec {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::SKIP_SLOWLOG,
        acl: acl::TRANSACTION,
        doc: Doc::new("transactions", "1.2.0", "Depends on commands in the transaction", "Execute all commands issued after MULTI"),
    }
    "discard" 1 transactions::Discard {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::ALLOW_BUSY,
        acl: acl::TRANSACTION,
        doc: Doc::new("transactions", "2.0.0", "O(N), when N is the number of queued commands", "Discard all commands issued after MULTI"),
    }
    "watch" -2 transactions::Watch {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::ALLOW_BUSY,
        acl: acl::TRANSACTION,
        keys: &[KeySpec::range(ks::RO, 1, -1, 1)],
        doc: Doc::new("transactions", "2.2.0", "O(1) for every key.", "Watch the given keys to determine execution of the MULTI/EXEC block"),
    }
    "unwatch" 1 transactions::Unwatch {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::ALLOW_BUSY,
        acl: acl::TRANSACTION,
        doc: Doc::new("transactions", "2.2.0", "O(1)", "Forget about all watched keys"),
    }
    "client" -2 server_info::Client {
        flags: 0,
        doc: Doc::new("connection", "2.4.0", "Depends on subcommand.", "A container for client connection commands"),
        subs: &[
            Sub { name: "client|id", arity: 2, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "5.0.0", "O(1)", "Returns the client ID for the current connection"), ..Meta::NONE } },
            Sub { name: "client|getname", arity: 2, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "2.6.9", "O(1)", "Get the current connection name"), ..Meta::NONE } },
            Sub { name: "client|setname", arity: 3, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "2.6.9", "O(1)", "Set the current connection name"), ..Meta::NONE } },
            Sub { name: "client|info", arity: 2, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, tips: &["nondeterministic_output"], doc: Doc::new("connection", "6.2.0", "O(1)", "Returns information about the current client connection."), ..Meta::NONE } },
            Sub { name: "client|list", arity: -2, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, tips: &["nondeterministic_output"], doc: Doc::new("connection", "2.4.0", "O(N) where N is the number of client connections", "Get the list of client connections"), ..Meta::NONE } },
            Sub { name: "client|kill", arity: -3, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "2.4.0", "O(N) where N is the number of client connections", "Kill the connection of a client"), ..Meta::NONE } },
            Sub { name: "client|tracking", arity: -3, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "6.0.0", "O(1). Some options may introduce additional complexity.", "Enable or disable server assisted client side caching support"), ..Meta::NONE } },
            Sub { name: "client|caching", arity: 3, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "6.0.0", "O(1)", "Instruct the server about tracking or not keys in the next request"), ..Meta::NONE } },
            Sub { name: "client|trackinginfo", arity: 2, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "6.2.0", "O(1)", "Return information about server assisted client side caching for the current connection"), ..Meta::NONE } },
            Sub { name: "client|reply", arity: 3, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "3.2.0", "O(1)", "Instruct the server whether to reply to commands"), ..Meta::NONE } },
            Sub { name: "client|pause", arity: -3, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "2.9.50", "O(1)", "Stop processing commands from clients for some time"), ..Meta::NONE } },
            Sub { name: "client|unpause", arity: 2, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "6.2.0", "O(N) Where N is the number of paused clients", "Resume processing of clients that were paused"), ..Meta::NONE } },
            Sub { name: "client|unblock", arity: -3, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "5.0.0", "O(log N) where N is the number of client connections", "Unblock a client blocked in a blocking command from a different connection"), ..Meta::NONE } },
            Sub { name: "client|no-evict", arity: 3, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "7.0.0", "O(1)", "Set client eviction mode for the current connection"), ..Meta::NONE } },
            // Redis 7.2's rows (src/commands/client-no-touch.json, client-setinfo.json).
            Sub { name: "client|no-touch", arity: 3, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "7.2.0", "O(1)", "Controls whether commands sent by the client affect the LRU/LFU of accessed keys."), ..Meta::NONE } },
            Sub { name: "client|setinfo", arity: 4, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, tips: &["request_policy:all_nodes", "response_policy:all_succeeded"], doc: Doc::new("connection", "7.2.0", "O(1)", "Sets information specific to the client or connection."), ..Meta::NONE } },
            Sub { name: "client|getredir", arity: 2, meta: Meta { flags: f::NOSCRIPT | f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("connection", "6.0.0", "O(1)", "Get tracking notifications redirection client ID if any"), ..Meta::NONE } },
        ],
    }
    "config" -2 server_info::Config {
        flags: 0,
        doc: Doc::new("server", "2.0.0", "Depends on subcommand.", "A container for server configuration commands"),
        subs: &[
            Sub { name: "config|get", arity: -3, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, doc: Doc::new("server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Get the values of configuration parameters"), ..Meta::NONE } },
            Sub { name: "config|set", arity: -4, meta: Meta { flags: f::ADMIN | f::NOSCRIPT | f::LOADING | f::STALE, tips: &["request_policy:all_nodes", "response_policy:all_succeeded"], doc: Doc::new("server", "2.0.0", "O(N) when N is the number of configuration parameters provided", "Set configuration parameters to the given values"), ..Meta::NONE } },
        ],
    }
    "info" -1 server_info::Info {
        flags: f::LOADING | f::STALE,
        acl: acl::DANGEROUS,
        tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"],
        doc: Doc::new("server", "1.0.0", "O(1)", "Get information and statistics about the server"),
    }
    "get" 2 strings::Get {
        flags: f::READONLY | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Get the value of a key"),
    }
    "set" -3 strings::Set {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::noted(ks::RW | ks::ACCESS | ks::UPDATE | ks::VARIABLE_FLAGS, 1, 0, 1, "RW and ACCESS due to the optional `GET` argument")],
        doc: Doc::new("string", "1.0.0", "O(1)", "Set the string value of a key"),
    }
    "getex" -2 strings::GetEx {
        flags: f::WRITE | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::noted(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1, "RW and UPDATE because it changes the TTL")],
        doc: Doc::new("string", "6.2.0", "O(1)", "Get the value of a key and optionally set its expiration"),
    }
    "getdel" 2 strings::GetDel {
        flags: f::WRITE | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("string", "6.2.0", "O(1)", "Get the value of a key and delete the key"),
    }
    "getset" 3 strings::GetSet {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Set the string value of a key and return its old value"),
    }
    "mget" -2 strings::MGet {
        flags: f::READONLY | f::FAST,
        acl: acl::STRING,
        tips: &["request_policy:multi_shard"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, -1, 1)],
        doc: Doc::new("string", "1.0.0", "O(N) where N is the number of keys to retrieve.", "Get the values of all the given keys"),
    }
    "mset" -3 strings::MSet {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        tips: &["request_policy:multi_shard", "response_policy:all_succeeded"],
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, -1, 2)],
        doc: Doc::new("string", "1.0.1", "O(N) where N is the number of keys to set.", "Set multiple keys to multiple values"),
    }
    "msetnx" -3 strings::MSetNx {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        tips: &["request_policy:multi_shard", "response_policy:agg_min"],
        keys: &[KeySpec::range(ks::OW | ks::INSERT, 1, -1, 2)],
        doc: Doc::new("string", "1.0.1", "O(N) where N is the number of keys to set.", "Set multiple keys to multiple values, only if none of the keys exist"),
    }
    "setnx" 3 strings::SetNx {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::OW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Set the value of a key, only if the key does not exist"),
    }
    "setex" 4 strings::SetEx {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "2.0.0", "O(1)", "Set the value and expiration of a key"),
    }
    "psetex" 4 strings::PSetEx {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "2.6.0", "O(1)", "Set the value and expiration in milliseconds of a key"),
    }
    "append" 3 strings::Append {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("string", "2.0.0", "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.", "Append a value to a key"),
    }
    "strlen" 2 strings::StrLen {
        flags: f::READONLY | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("string", "2.2.0", "O(1)", "Get the length of the value stored in a key"),
    }
    "getrange" 4 strings::GetRange {
        flags: f::READONLY,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("string", "2.4.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", "Get a substring of the string stored at a key"),
    }
    "substr" 4 strings::GetRange {
        flags: f::READONLY,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.", "Get a substring of the string stored at a key"),
    }
    "setrange" 4 strings::SetRange {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "2.2.0", "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.", "Overwrite part of a string at key starting at the specified offset"),
    }
    "incr" 2 strings::Incr {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Increment the integer value of a key by one"),
    }
    "decr" 2 strings::Decr {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Decrement the integer value of a key by one"),
    }
    "incrby" 3 strings::IncrBy {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Increment the integer value of a key by the given amount"),
    }
    "decrby" 3 strings::DecrBy {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "1.0.0", "O(1)", "Decrement the integer value of a key by the given number"),
    }
    "incrbyfloat" 3 strings::IncrByFloat {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("string", "2.6.0", "O(1)", "Increment the float value of a key by the given amount"),
    }
    "del" -2 keys::Del {
        flags: f::WRITE,
        acl: acl::KEYSPACE,
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        keys: &[KeySpec::range(ks::RM | ks::DELETE, 1, -1, 1)],
        doc: Doc::new("generic", "1.0.0", "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).", "Delete a key"),
    }
    "unlink" -2 keys::Del {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        keys: &[KeySpec::range(ks::RM | ks::DELETE, 1, -1, 1)],
        doc: Doc::new("generic", "4.0.0", "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking."),
    }
    "exists" -2 keys::Exists {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        keys: &[KeySpec::range(ks::RO, 1, -1, 1)],
        doc: Doc::new("generic", "1.0.0", "O(N) where N is the number of keys to check.", "Determine if a key exists"),
    }
    "type" 2 keys::Type {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Determine the type stored at key"),
    }
    "touch" -2 keys::Touch {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        keys: &[KeySpec::range(ks::RO, 1, -1, 1)],
        doc: Doc::new("generic", "3.2.1", "O(N) where N is the number of keys that will be touched.", "Alters the last access time of a key(s). Returns the number of existing keys specified."),
    }
    "expire" -3 keys::Expire {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Set a key's time to live in seconds"),
    }
    "pexpire" -3 keys::PExpire {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "2.6.0", "O(1)", "Set a key's time to live in milliseconds"),
    }
    "expireat" -3 keys::ExpireAt {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "1.2.0", "O(1)", "Set the expiration for a key as a UNIX timestamp"),
    }
    "pexpireat" -3 keys::PExpireAt {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "2.6.0", "O(1)", "Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
    }
    "ttl" 2 keys::Ttl {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Get the time to live for a key in seconds"),
    }
    "pttl" 2 keys::PTtl {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("generic", "2.6.0", "O(1)", "Get the time to live for a key in milliseconds"),
    }
    "expiretime" 2 keys::ExpireTime {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("generic", "7.0.0", "O(1)", "Get the expiration Unix timestamp for a key"),
    }
    "pexpiretime" 2 keys::PExpireTime {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("generic", "7.0.0", "O(1)", "Get the expiration Unix timestamp for a key in milliseconds"),
    }
    "persist" 2 keys::Persist {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "2.2.0", "O(1)", "Remove the expiration from a key"),
    }
    "keys" 2 keys::Keys {
        flags: f::READONLY,
        acl: acl::KEYSPACE | acl::DANGEROUS,
        tips: &["request_policy:all_shards", "nondeterministic_output_order"],
        doc: Doc::new("generic", "1.0.0", "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.", "Find all keys matching the given pattern"),
    }
    "scan" -2 keys::Scan {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        tips: &["nondeterministic_output", "request_policy:special"],
        doc: Doc::new("generic", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.", "Incrementally iterate the keys space"),
    }
    "randomkey" 1 keys::RandomKey {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        tips: &["request_policy:all_shards", "nondeterministic_output"],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Return a random key from the keyspace"),
    }
    "rename" 3 keys::Rename {
        flags: f::WRITE,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::OW | ks::UPDATE, 2, 0, 1)],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Rename a key"),
    }
    "renamenx" 3 keys::RenameNx {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::OW | ks::INSERT, 2, 0, 1)],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Rename a key, only if the new key does not exist"),
    }
    "copy" -3 keys::Copy {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1), KeySpec::range(ks::OW | ks::UPDATE, 2, 0, 1)],
        doc: Doc::new("generic", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "Copy a key"),
    }
    "move" 3 keys::Move {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("generic", "1.0.0", "O(1)", "Move a key to another database"),
    }
    "object" -2 keys::Object {
        flags: 0,
        doc: Doc::new("generic", "2.2.3", "Depends on subcommand.", "A container for object introspection commands"),
        subs: &[
            Sub { name: "object|idletime", arity: 3, meta: Meta { flags: f::READONLY, acl: acl::KEYSPACE, tips: &["nondeterministic_output"], keys: &[KeySpec::range(ks::RO, 2, 0, 1)], doc: Doc::new("generic", "2.2.3", "O(1)", "Get the time since a Redis object was last accessed"), ..Meta::NONE } },
            Sub { name: "object|encoding", arity: 3, meta: Meta { flags: f::READONLY, acl: acl::KEYSPACE, tips: &["nondeterministic_output"], keys: &[KeySpec::range(ks::RO, 2, 0, 1)], doc: Doc::new("generic", "2.2.3", "O(1)", "Inspect the internal encoding of a Redis object"), ..Meta::NONE } },
            Sub { name: "object|help", arity: 2, meta: Meta { flags: f::LOADING | f::STALE, acl: acl::KEYSPACE, doc: Doc::new("generic", "6.2.0", "O(1)", "Show helpful text about the different subcommands"), ..Meta::NONE } },
            Sub { name: "object|freq", arity: 3, meta: Meta { flags: f::READONLY, acl: acl::KEYSPACE, tips: &["nondeterministic_output"], keys: &[KeySpec::range(ks::RO, 2, 0, 1)], doc: Doc::new("generic", "4.0.0", "O(1)", "Get the logarithmic access frequency counter of a Redis object"), ..Meta::NONE } },
            Sub { name: "object|refcount", arity: 3, meta: Meta { flags: f::READONLY, acl: acl::KEYSPACE, tips: &["nondeterministic_output"], keys: &[KeySpec::range(ks::RO, 2, 0, 1)], doc: Doc::new("generic", "2.2.3", "O(1)", "Get the number of references to the value of the key"), ..Meta::NONE } },
        ],
    }
    "dbsize" 1 keys::DbSize {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        tips: &["request_policy:all_shards", "response_policy:agg_sum"],
        doc: Doc::new("server", "1.0.0", "O(1)", "Return the number of keys in the selected database"),
    }
    "flushdb" -1 keys::Flush<false> {
        flags: f::WRITE,
        acl: acl::KEYSPACE | acl::DANGEROUS,
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        doc: Doc::new("server", "1.0.0", "O(N) where N is the number of keys in the selected database", "Remove all keys from the current database"),
    }
    "flushall" -1 keys::Flush<true> {
        flags: f::WRITE,
        acl: acl::KEYSPACE | acl::DANGEROUS,
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        doc: Doc::new("server", "1.0.0", "O(N) where N is the total number of keys in all databases", "Remove all keys from all databases"),
    }
    "hset" -4 hashes::HSet {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(1) for each field/value pair added, so O(N) to add N field/value pairs when the command is called with multiple field/value pairs.", "Set the string value of a hash field"),
    }
    "hmset" -4 hashes::HMSet {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(N) where N is the number of fields being set.", "Set multiple hash fields to multiple values"),
    }
    "hget" 3 hashes::HGet {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(1)", "Get the value of a hash field"),
    }
    "hmget" -3 hashes::HMGet {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(N) where N is the number of fields being requested.", "Get the values of all the given hash fields"),
    }
    "hgetall" 2 hashes::HGetAll {
        flags: f::READONLY,
        acl: acl::HASH,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(N) where N is the size of the hash.", "Get all the fields and values in a hash"),
    }
    "hdel" -3 hashes::HDel {
        flags: f::WRITE | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(N) where N is the number of fields to be removed.", "Delete one or more hash fields"),
    }
    "hexists" 3 hashes::HExists {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(1)", "Determine if a hash field exists"),
    }
    "hlen" 2 hashes::HLen {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(1)", "Get the number of fields in a hash"),
    }
    "hkeys" 2 hashes::HKeys {
        flags: f::READONLY,
        acl: acl::HASH,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(N) where N is the size of the hash.", "Get all the fields in a hash"),
    }
    "hvals" 2 hashes::HVals {
        flags: f::READONLY,
        acl: acl::HASH,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(N) where N is the size of the hash.", "Get all the values in a hash"),
    }
    "hincrby" 4 hashes::HIncrBy {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(1)", "Increment the integer value of a hash field by the given number"),
    }
    "hsetnx" 4 hashes::HSetNx {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("hash", "2.0.0", "O(1)", "Set the value of a hash field, only if the field does not exist"),
    }
    "hstrlen" 3 hashes::HStrLen {
        flags: f::READONLY | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("hash", "3.2.0", "O(1)", "Get the length of the value of a hash field"),
    }
    "hincrbyfloat" 4 hashes::HIncrByFloat {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::HASH,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("hash", "2.6.0", "O(1)", "Increment the float value of a hash field by the given amount"),
    }
    "hrandfield" -2 hashes::HRandField {
        flags: f::READONLY,
        acl: acl::HASH,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "6.2.0", "O(N) where N is the number of fields returned", "Get one or multiple random fields from a hash"),
    }
    "hscan" -3 hashes::HScan {
        flags: f::READONLY,
        acl: acl::HASH,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("hash", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "Incrementally iterate hash fields and associated values"),
    }
    "sadd" -3 sets::SAdd {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "Add one or more members to a set"),
    }
    "srem" -3 sets::SRem {
        flags: f::WRITE | f::FAST,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "O(N) where N is the number of members to be removed.", "Remove one or more members from a set"),
    }
    "smembers" 2 sets::SMembers {
        flags: f::READONLY,
        acl: acl::SET,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "O(N) where N is the set cardinality.", "Get all the members in a set"),
    }
    "sismember" 3 sets::SIsMember {
        flags: f::READONLY | f::FAST,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "O(1)", "Determine if a given value is a member of a set"),
    }
    "smismember" -3 sets::SMIsMember {
        flags: f::READONLY | f::FAST,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("set", "6.2.0", "O(N) where N is the number of elements being checked for membership", "Returns the membership associated with the given elements for a set"),
    }
    "scard" 2 sets::SCard {
        flags: f::READONLY | f::FAST,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "O(1)", "Get the number of members in a set"),
    }
    "spop" -2 sets::SPop {
        flags: f::WRITE | f::FAST,
        acl: acl::SET,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the value of the passed count.", "Remove and return one or multiple random members from a set"),
    }
    "srandmember" -2 sets::SRandMember {
        flags: f::READONLY,
        acl: acl::SET,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("set", "1.0.0", "Without the count argument O(1), otherwise O(N) where N is the absolute value of the passed count.", "Get one or multiple random members from a set"),
    }
    "smove" 4 sets::SMove {
        flags: f::WRITE | f::FAST,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::RW | ks::INSERT, 2, 0, 1)],
        doc: Doc::new("set", "1.0.0", "O(1)", "Move a member from one set to another"),
    }
    "sinter" -2 sets::SetOp<0> {
        flags: f::READONLY,
        acl: acl::SET,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, -1, 1)],
        doc: Doc::new("set", "1.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "Intersect multiple sets"),
    }
    "sunion" -2 sets::SetOp<1> {
        flags: f::READONLY,
        acl: acl::SET,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, -1, 1)],
        doc: Doc::new("set", "1.0.0", "O(N) where N is the total number of elements in all given sets.", "Add multiple sets"),
    }
    "sdiff" -2 sets::SetOp<2> {
        flags: f::READONLY,
        acl: acl::SET,
        tips: &["nondeterministic_output_order"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, -1, 1)],
        doc: Doc::new("set", "1.0.0", "O(N) where N is the total number of elements in all given sets.", "Subtract multiple sets"),
    }
    "sinterstore" -3 sets::SetOpStore<0> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1), KeySpec::range(ks::RO | ks::ACCESS, 2, -1, 1)],
        doc: Doc::new("set", "1.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "Intersect multiple sets and store the resulting set in a key"),
    }
    "sunionstore" -3 sets::SetOpStore<1> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::range(ks::RO | ks::ACCESS, 2, -1, 1)],
        doc: Doc::new("set", "1.0.0", "O(N) where N is the total number of elements in all given sets.", "Add multiple sets and store the resulting set in a key"),
    }
    "sdiffstore" -3 sets::SetOpStore<2> {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::SET,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1), KeySpec::range(ks::RO | ks::ACCESS, 2, -1, 1)],
        doc: Doc::new("set", "1.0.0", "O(N) where N is the total number of elements in all given sets.", "Subtract multiple sets and store the resulting set in a key"),
    }
    "sintercard" -3 sets::SInterCard {
        flags: f::READONLY,
        acl: acl::SET,
        keys: &[KeySpec::keynum(ks::RO | ks::ACCESS, 1, 0, 1, 1)],
        doc: Doc::new("set", "7.0.0", "O(N*M) worst case where N is the cardinality of the smallest set and M is the number of sets.", "Intersect multiple sets and return the cardinality of the result"),
    }
    "sscan" -3 sets::SScan {
        flags: f::READONLY,
        acl: acl::SET,
        tips: &["nondeterministic_output"],
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("set", "2.8.0", "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection..", "Incrementally iterate Set elements"),
    }
    "lpush" -3 lists::Push<0> {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "Prepend one or multiple elements to a list"),
    }
    "rpush" -3 lists::Push<1> {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "Append one or multiple elements to a list"),
    }
    "lpushx" -3 lists::Push<2> {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("list", "2.2.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "Prepend an element to a list, only if the list exists"),
    }
    "rpushx" -3 lists::Push<3> {
        flags: f::WRITE | f::DENYOOM | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("list", "2.2.0", "O(1) for each element added, so O(N) to add N elements when the command is called with multiple arguments.", "Append an element to a list, only if the list exists"),
    }
    "lpop" -2 lists::Pop<0> {
        flags: f::WRITE | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(N) where N is the number of elements returned", "Remove and get the first elements in a list"),
    }
    "rpop" -2 lists::Pop<1> {
        flags: f::WRITE | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(N) where N is the number of elements returned", "Remove and get the last elements in a list"),
    }
    "lrange" 4 lists::LRange {
        flags: f::READONLY,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(S+N) where S is the distance of start offset from HEAD for small lists, from nearest end (HEAD or TAIL) for large lists; and N is the number of elements in the specified range.", "Get a range of elements from a list"),
    }
    "lindex" 3 lists::LIndex {
        flags: f::READONLY,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(N) where N is the number of elements to traverse to get to the element at index. This makes asking for the first or the last element of the list O(1).", "Get an element from a list by its index"),
    }
    "linsert" 5 lists::LInsert {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::INSERT, 1, 0, 1)],
        doc: Doc::new("list", "2.2.0", "O(N) where N is the number of elements to traverse before seeing the value pivot. This means that inserting somewhere on the left end on the list (head) can be considered O(1) and inserting somewhere on the right end (tail) is O(N).", "Insert an element before or after another element in a list"),
    }
    "llen" 2 lists::LLen {
        flags: f::READONLY | f::FAST,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(1)", "Get the length of a list"),
    }
    "lmove" 5 lists::LMove {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::RW | ks::INSERT, 2, 0, 1)],
        doc: Doc::new("list", "6.2.0", "O(1)", "Pop an element from a list, push it to another list and return it"),
    }
    "lmpop" -4 lists::LMPop {
        flags: f::WRITE,
        acl: acl::LIST,
        keys: &[KeySpec::keynum(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1, 1)],
        doc: Doc::new("list", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "Pop elements from a list"),
    }
    "lpos" -3 lists::LPos {
        flags: f::READONLY,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("list", "6.0.6", "O(N) where N is the number of elements in the list, for the average case. When searching for elements near the head or the tail of the list, or when the MAXLEN option is provided, the command may run in constant time.", "Return the index of matching elements on a list"),
    }
    "lrem" 4 lists::LRem {
        flags: f::WRITE,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(N+M) where N is the length of the list and M is the number of elements removed.", "Remove elements from a list"),
    }
    "lset" 4 lists::LSet {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(N) where N is the length of the list. Setting either the first or the last element of the list is O(1).", "Set the value of an element in a list by its index"),
    }
    "ltrim" 4 lists::LTrim {
        flags: f::WRITE,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::DELETE, 1, 0, 1)],
        doc: Doc::new("list", "1.0.0", "O(N) where N is the number of elements to be removed by the operation.", "Trim a list to the specified range"),
    }
    "rpoplpush" 3 lists::RPopLPush {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::RW | ks::INSERT, 2, 0, 1)],
        doc: Doc::new("list", "1.2.0", "O(1)", "Remove the last element in a list, prepend it to another list and return it"),
    }
    "blpop" -3 blocking::BPop<0> {
        flags: f::WRITE | f::NOSCRIPT | f::BLOCKING,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, -2, 1)],
        doc: Doc::new("list", "2.0.0", "O(N) where N is the number of provided keys.", "Remove and get the first element in a list, or block until one is available"),
    }
    "brpop" -3 blocking::BPop<1> {
        flags: f::WRITE | f::NOSCRIPT | f::BLOCKING,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, -2, 1)],
        doc: Doc::new("list", "2.0.0", "O(N) where N is the number of provided keys.", "Remove and get the last element in a list, or block until one is available"),
    }
    "blmove" 6 blocking::BLMove {
        flags: f::WRITE | f::DENYOOM | f::NOSCRIPT | f::BLOCKING,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::RW | ks::INSERT, 2, 0, 1)],
        doc: Doc::new("list", "6.2.0", "O(1)", "Pop an element from a list, push it to another list and return it; or block until one is available"),
    }
    "blmpop" -5 blocking::BLMPop {
        flags: f::WRITE | f::BLOCKING,
        acl: acl::LIST,
        keys: &[KeySpec::keynum(ks::RW | ks::ACCESS | ks::DELETE, 2, 0, 1, 1)],
        doc: Doc::new("list", "7.0.0", "O(N+M) where N is the number of provided keys and M is the number of elements returned.", "Pop elements from a list, or block until one is available"),
    }
    "brpoplpush" 4 blocking::BRPopLPush {
        flags: f::WRITE | f::DENYOOM | f::NOSCRIPT | f::BLOCKING,
        acl: acl::LIST,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::DELETE, 1, 0, 1), KeySpec::range(ks::RW | ks::INSERT, 2, 0, 1)],
        doc: Doc::new("list", "2.2.0", "O(1)", "Pop an element from a list, push it to another list and return it; or block until one is available"),
    }
    "auth" -2 connection::Auth {
        flags: f::NOSCRIPT | f::LOADING | f::STALE | f::FAST | f::NO_AUTH | f::ALLOW_BUSY,
        acl: acl::CONNECTION,
        doc: Doc::new("connection", "1.0.0", "O(N) where N is the number of passwords defined for the user", "Authenticate to the server"),
    }
    "command" -1 command::CommandCmd {
        flags: f::LOADING | f::STALE,
        acl: acl::CONNECTION,
        tips: &["nondeterministic_output_order"],
        doc: Doc::new("server", "2.8.13", "O(N) where N is the total number of Redis commands", "Get array of Redis command details"),
        subs: &[
            Sub { name: "command|count", arity: 2, meta: Meta { flags: f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("server", "2.8.13", "O(1)", "Get total number of Redis commands"), ..Meta::NONE } },
            Sub { name: "command|docs", arity: -2, meta: Meta { flags: f::LOADING | f::STALE, acl: acl::CONNECTION, tips: &["nondeterministic_output_order"], doc: Doc::new("server", "7.0.0", "O(N) where N is the number of commands to look up", "Get array of specific Redis command documentation"), ..Meta::NONE } },
            Sub { name: "command|info", arity: -2, meta: Meta { flags: f::LOADING | f::STALE, acl: acl::CONNECTION, tips: &["nondeterministic_output_order"], doc: Doc::new("server", "2.8.13", "O(N) where N is the number of commands to look up", "Get array of specific Redis command details, or all when no argument is given."), ..Meta::NONE } },
            Sub { name: "command|getkeys", arity: -4, meta: Meta { flags: f::LOADING | f::STALE, acl: acl::CONNECTION, doc: Doc::new("server", "2.8.13", "O(N) where N is the number of arguments to the command", "Extract keys given a full Redis command"), ..Meta::NONE } },
            Sub { name: "command|list", arity: -2, meta: Meta { flags: f::LOADING | f::STALE, acl: acl::CONNECTION, tips: &["nondeterministic_output_order"], doc: Doc::new("server", "7.0.0", "O(N) where N is the total number of Redis commands", "Get an array of Redis command names"), ..Meta::NONE } },
        ],
    }
    "lethe.set" -3 lethe::Set {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Set a string value with tags, dependencies, a version and a TTL"),
    }
    "lethe.attach" -2 lethe::Attach {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Give an existing key of any type tags, dependencies, a version or a TTL, keeping its value"),
    }
    "lethe.fence" 4 lethe::Fence {
        flags: f::WRITE | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Refuse writes and fills of a key below a version for a while"),
    }
    "lethe.invalidate" -3 lethe::Invalidate {
        flags: f::WRITE,
        acl: acl::KEYSPACE,
        doc: Doc::new("module", LETHE, "O(N) where N is the number of keys removed", "Remove the keys with a tag, prefix or glob, or given keys, and their dependents"),
    }
    "lethe.tags" 2 lethe::Tags {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "List the tags of a key"),
    }
    "lethe.why" 2 lethe::Why {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(N) where N is the number of records kept for the key", "Tell why a key is or is not cached: its recent writes and removals with their causes and origins, and what keeps it"),
    }
    "lethe.keys.tag" 2 lethe::KeysTag {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        doc: Doc::new("module", LETHE, "O(N) where N is the number of keys with the tag", "List the keys carrying a tag"),
    }
    "lethe.deps" 2 lethe::Deps {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "List the keys a key depends on"),
    }
    "lethe.dependents" 2 lethe::Dependents {
        flags: f::READONLY,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "List the keys depending directly on a key"),
    }
    "lethe.version" 2 lethe::Version {
        flags: f::READONLY | f::FAST,
        acl: acl::KEYSPACE,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Get the version of a key"),
    }
    "lethe.setifnewer" 4 lethe::SetIfNewer {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Set a value only if its version is newer than the stored one"),
    }
    "lethe.cas" -4 lethe::Cas {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Set a value only if the stored one is the expected one"),
    }
    "lethe.etag" 2 lethe::Etag {
        flags: f::READONLY | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Get the entity tag of a value"),
    }
    "lethe.getifnonematch" 3 lethe::GetIfNoneMatch {
        flags: f::READONLY | f::FAST,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RO | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Get a value unless its entity tag matches"),
    }
    "lethe.lease" 2 lethe::LeaseCmd {
        flags: f::WRITE,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::RW | ks::ACCESS, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Get a value, or a lease to fill it when missing"),
    }
    "lethe.fill" -4 lethe::Fill {
        flags: f::WRITE | f::DENYOOM,
        acl: acl::STRING,
        keys: &[KeySpec::range(ks::OW | ks::UPDATE, 1, 0, 1)],
        doc: Doc::new("module", LETHE, "O(1)", "Fill a missing value with a lease token"),
    }
    "lethe.rules" -2 lethe::Rules {
        flags: f::WRITE | f::ADMIN | f::NOSCRIPT,
        doc: Doc::new("module", LETHE, "O(N) where N is the number of rules", "Load, list or test invalidation rules"),
    }
    "lethe.event" -4 lethe::EventCmd {
        flags: f::WRITE,
        acl: acl::KEYSPACE,
        doc: Doc::new("module", LETHE, "O(N) where N is the number of keys removed", "Apply a change event through the invalidation rules"),
    }
    "lethe.stats" -1 lethe::Stats {
        flags: f::READONLY,
        doc: Doc::new("module", LETHE, "O(1)", "Get the engine statistics, or a tag's"),
    }
}
