//! Fuzz targets for every parser that reads input from the network or an operator: RESP
//! requests, commands, the HTTP admin API's purge bodies, PostgreSQL's replication messages,
//! change-capture rules and templates, and the server's TOML configuration.
//!
//! Each target takes arbitrary bytes and must neither panic nor hang; some also check an
//! invariant (the request parser gives the same requests whatever the pacing of its input).
//! The targets are run two ways: by `cargo fuzz` (nightly, coverage-guided; `fuzz/` at the
//! workspace root), and by this crate's `lethe-fuzz` binary, a mutation fuzzer on the stable
//! toolchain that CI runs for a bounded time from the corpus kept in `fuzz/corpus/`.

#![forbid(unsafe_code)]

use bytes::{Bytes, BytesMut};
use lethe_server::request::{ParseLimits, RequestParser};
use std::sync::{Mutex, OnceLock};

/// A fuzz target: a name (also the corpus directory's) and the function run on each input.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Runs one input; panics on a bug.
    pub run: fn(&[u8]),
    /// Tokens the mutator splices in (the format's keywords and delimiters).
    pub dictionary: &'static [&'static [u8]],
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "resp_request",
        run: resp_request,
        dictionary: RESP_TOKENS,
    },
    Target {
        name: "command",
        run: command,
        dictionary: COMMAND_TOKENS,
    },
    Target {
        name: "http_purge",
        run: http_purge,
        dictionary: &[
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"",
            b":",
            b",",
            b"\"tags\"",
            b"\"keys\"",
            b"\"prefixes\"",
            b"\"globs\"",
            b"\"all\"",
            b"true",
            b"\"\"",
            b"\"*\"",
        ],
    },
    Target {
        name: "pgoutput",
        run: pgoutput,
        dictionary: &[
            b"w",
            b"k",
            b"B",
            b"C",
            b"R",
            b"I",
            b"U",
            b"D",
            b"T",
            b"M",
            b"O",
            b"Y",
            b"\x00",
            b"\xff\xff\xff\xff",
            b"\x00\x01",
            b"t",
            b"n",
            b"u",
            b"K",
            b"N",
        ],
    },
    Target {
        name: "cdc_rules",
        run: cdc_rules,
        dictionary: &[
            b"[[table]]",
            b"[cdc]",
            b"name = ",
            b"keys = ",
            b"tags = ",
            b"when = ",
            b"connection = ",
            b"\"{id}\"",
            b"\"user:{id}\"",
            b"{",
            b"}",
            b"\"",
            b"\n",
            b"changed",
            b"old.",
            b"new.",
            b"[",
            b"]",
            b"=",
            b"'",
        ],
    },
    Target {
        name: "rdb_payload",
        run: rdb_payload,
        dictionary: &[
            b"\x00",
            b"\x01",
            b"\x02",
            b"\x04",
            b"\x0b",
            b"\x10",
            b"\x12",
            b"\x14",
            b"\x80\xff\xff\xff\xff",
            b"\x81\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\xc0",
            b"\xc1",
            b"\xc2",
            b"\xc3",
            b"\xf0",
            b"\xf4",
            b"\xfe",
            b"\xff",
        ],
    },
    Target {
        name: "server_config",
        run: server_config,
        dictionary: &[
            b"bind = ",
            b"port = ",
            b"max-memory = ",
            b"http-port = ",
            b"requirepass = ",
            b"protected-mode = ",
            b"max-clients = ",
            b"timeout = ",
            b"proto-max-bulk-len = ",
            b"client-output-buffer-limit = ",
            b"\"pubsub 32mb 8mb 60\"",
            b"http-bind = ",
            b"tls-cert-file = ",
            b"shutdown-timeout = ",
            b"[cdc]",
            b"\n",
            b"\"",
            b"true",
            b"18446744073709551615",
            b"-1",
        ],
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}

const RESP_TOKENS: &[&[u8]] = &[
    b"*",
    b"$",
    b"\r\n",
    b"\r",
    b"\n",
    b"-1",
    b"0",
    b"1",
    b"2",
    b"-0",
    b"+1",
    b"01",
    b"2147483647",
    b"2147483648",
    b"9223372036854775808",
    b"\"",
    b"'",
    b"\\x41",
    b" ",
    b"*1\r\n$4\r\nPING\r\n",
    b"$32768\r\n",
    b"$536870912\r\n",
];

const COMMAND_TOKENS: &[&[u8]] = &[
    b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
    b"*3\r\n$4\r\nINCR\r\n",
    b"$9\r\nLETHE.SET\r\n",
    b"$16\r\nLETHE.INVALIDATE\r\n",
    b"$3\r\nTAG\r\n",
    b"$6\r\nPREFIX\r\n",
    b"$4\r\nGLOB\r\n",
    b"$1\r\n*\r\n",
    b"$5\r\nMULTI\r\n",
    b"$4\r\nEXEC\r\n",
    b"$6\r\nCLIENT\r\n",
    b"$8\r\nTRACKING\r\n",
    b"$2\r\nON\r\n",
    b"$4\r\nHSET\r\n",
    b"$6\r\nEXPIRE\r\n",
    b"$4\r\nSCAN\r\n",
    b"$5\r\nHELLO\r\n",
    b"$1\r\n3\r\n",
    b"$9\r\nSUBSCRIBE\r\n",
    b"\r\n",
    b"*",
    b"$",
];

/// The request parser, fed whole and then in pieces whose sizes come from the input: both must
/// give the same requests (or both fail), and every byte must be accounted for.
pub fn resp_request(data: &[u8]) {
    let (limits, pacing, input) = match data {
        [flags, pacing, rest @ ..] => (
            ParseLimits {
                max_bulk: if flags & 1 == 0 { 1 << 20 } else { 64 },
                unauthenticated: flags & 2 != 0,
            },
            usize::from(*pacing) + 1,
            rest,
        ),
        _ => return,
    };
    let whole = parse_all(input, input.len().max(1), limits);
    let paced = parse_all(input, pacing, limits);
    assert_eq!(whole, paced, "pacing changed the parse");
}

/// Requests parsed from `input` fed `step` bytes at a time, and the error that ended it.
fn parse_all(input: &[u8], step: usize, limits: ParseLimits) -> (Vec<Vec<Bytes>>, Option<String>) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        loop {
            match parser.parse(&mut buf, limits) {
                Ok(Some(req)) => out.push(req),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
        if pos == input.len() {
            return (out, None);
        }
        let mut n = step.min(input.len() - pos);
        if let Some(big) = parser.big_arg() {
            n = n.min(big.wanted());
            big.reserve();
            big.buffer().extend_from_slice(&input[pos..pos + n]);
        } else {
            buf.extend_from_slice(&input[pos..pos + n]);
        }
        pos += n;
    }
}

/// A client's session over one small keyspace, kept across inputs so state built by earlier
/// inputs (keys, tags, MULTI, tracking) meets later ones.
fn client() -> &'static Mutex<lethe_server::local::LocalClient> {
    static CLIENT: OnceLock<Mutex<lethe_server::local::LocalClient>> = OnceLock::new();
    CLIENT.get_or_init(|| {
        use std::sync::Arc;
        let limits = Arc::new(lethe_server::limits::Limits::new());
        let state = Arc::new(lethe_server::state::ServerState::new(1 << 20));
        Mutex::new(lethe_server::local::LocalClient::new(state, limits, 1))
    })
}

/// Commands that would only measure the allocator: Redis, too, lets SETRANGE grow a string to
/// `proto-max-bulk-len`, and DEBUG-like waits are not bugs.
fn skipped(args: &[Bytes]) -> bool {
    let name = args[0].to_ascii_lowercase();
    match name.as_slice() {
        b"setrange" => args
            .get(2)
            .and_then(|o| std::str::from_utf8(o).ok()?.parse::<i64>().ok())
            .is_none_or(|o| o > 1 << 16),
        // A changed password or limit would stop the rest of the run from reaching commands.
        b"config" | b"auth" | b"hello" => true,
        _ => false,
    }
}

/// Requests parsed from the input and run as one client would run them.
pub fn command(data: &[u8]) {
    let (requests, _) = parse_all(data, data.len().max(1), ParseLimits::default());
    let mut guard = client().lock().unwrap_or_else(|p| p.into_inner());
    let client = &mut *guard;
    for args in requests {
        if args.is_empty() || skipped(&args) {
            continue;
        }
        let _ = client.run(args);
    }
    // Pushes to itself (tracking, pub/sub) would pile up across inputs; the background upkeep
    // (expiry, reclamation, tracking) runs between inputs as the server's maintenance would.
    let _ = client.take_pushes();
    client.state().maintain();
    // Keep the keyspace small so one input's cost does not grow with the run.
    if client.state().cache().len() > 10_000 {
        client.state().flush();
    }
}

/// A purge body of the HTTP admin API.
pub fn http_purge(data: &[u8]) {
    let _ = lethe_server::http::Purge::from_json(data);
}

/// A replication message from PostgreSQL.
pub fn pgoutput(data: &[u8]) {
    let _ = lethe_cdc::fuzz::replication_message(data);
}

/// A DUMP payload for RESTORE: as given, and with a valid version and checksum appended so
/// that mutations reach the value decoder; whatever decodes must dump and decode again.
pub fn rdb_payload(data: &[u8]) {
    use lethe_server::keyspace::rdb;
    let _ = rdb::restore(data);
    let mut payload = data.to_vec();
    payload.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    if let Ok(value) = rdb::restore(&payload) {
        assert!(rdb::restore(&rdb::dump(&value)).is_ok());
    }
}

/// Change-capture rules and their key templates.
pub fn cdc_rules(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lethe_cdc::fuzz::rules(text);
    }
}

/// The server's configuration file, and the limits it sets.
pub fn server_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(o) = lethe_server::config::parse_toml(text) {
        let c = lethe_server::config::Config::default().apply(o);
        let _ = c.limits();
        let _ = c.http_options();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_runs_its_corpus() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        for t in TARGETS {
            let dir = root.join(t.name);
            let seeds: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect();
            assert!(!seeds.is_empty(), "{} has no corpus", t.name);
            for s in seeds {
                (t.run)(&s);
            }
        }
    }

    #[test]
    fn pacing_is_checked() {
        let input = b"\x00\x00*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n";
        resp_request(input);
        let (reqs, err) = parse_all(&input[2..], 1, ParseLimits::default());
        assert_eq!(reqs.len(), 2);
        assert!(err.is_none());
    }
}
