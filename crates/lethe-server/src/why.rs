//! Why a key is or is not cached: the engine's per-key history ([`lethe::history`]) and the
//! key's state, in the one shape that `LETHE.WHY` (RESP) and `GET /v1/keys/{key}/why` (HTTP,
//! and the dashboard's search box) both answer with.
//!
//! Keys appear as clients named them (without the database byte the keyspace stores), and
//! times as Unix milliseconds. The history is newest first; each record is a write (with its
//! version and tags), a change in place, or a removal with its cause, what it matched (the tag
//! or pattern invalidated, the dependency it cascaded from, the version floor) and its origin
//! (the client, the rule, the change in the database, the bus node).

use crate::frame::Frame;
use crate::keyspace::{SmallBytes, key_name};
use crate::state::ServerState;
use lethe::history::{Matched, Record};
use serde_json::{Value as Json, json};

/// One record of a key's history, as reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// `write`, `modified` or `removed`.
    pub event: &'static str,
    /// The removal's cause (`tag`, `pattern`, `dependency`, `expired`, ...).
    pub cause: Option<&'static str>,
    /// The version written.
    pub version: Option<u64>,
    /// The tags written.
    pub tags: Vec<String>,
    /// What a removal matched: `tag user:42`, `pattern user:*`, `dependency profile:42`,
    /// `floor 10 on order:*`.
    pub matched: Option<String>,
    /// Who asked: (`client` | `rule` | `change` | `node`, text).
    pub origin: Vec<(&'static str, String)>,
}

/// A key's state and history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhyReport {
    /// The key as the client named it.
    pub key: Vec<u8>,
    /// Whether a value can be served.
    pub cached: bool,
    /// Milliseconds left before it expires, when it has a deadline.
    pub ttl_ms: Option<u64>,
    /// Its tags (sorted).
    pub tags: Vec<String>,
    /// The keys it depends on, as named by clients.
    pub dependencies: Vec<Vec<u8>>,
    /// Its version.
    pub version: Option<u64>,
    /// Whether the server keeps history at all (`--history-memory 0` turns it off).
    pub history_enabled: bool,
    /// Newest first.
    pub history: Vec<Event>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn event(r: &Record<SmallBytes>) -> Event {
    let matched = r.matched().map(|m| match m {
        Matched::Tag(t) => format!("tag {t}"),
        Matched::Pattern(p) => format!("pattern {}", text(key_name(p))),
        Matched::Dependency(k) => format!("dependency {}", text(key_name(k.as_bytes()))),
        Matched::Floor { on, version } => match on.strip_prefix("tag:") {
            Some(tag) => format!("floor {version} on tag {tag}"),
            None => format!("floor {version} on {}", text(key_name(on.as_bytes()))),
        },
        _ => "other".to_owned(),
    });
    let mut origin = Vec::new();
    if let Some(o) = &r.origin {
        for (name, part) in [
            ("client", &o.client),
            ("rule", &o.rule),
            ("change", &o.change),
            ("node", &o.node),
        ] {
            if let Some(p) = part {
                origin.push((name, p.clone()));
            }
        }
    }
    Event {
        at_ms: i64::try_from(r.at.as_nanos() / 1_000_000).unwrap_or(i64::MAX),
        event: r.happened.as_str(),
        cause: r.happened.cause().map(|c| c.as_str()),
        version: r.version,
        tags: r.tags().to_vec(),
        matched,
        origin,
    }
}

impl WhyReport {
    /// The report on `name` in database `db`.
    pub fn of(state: &ServerState, db: u8, name: &[u8]) -> WhyReport {
        let key = state.keyspace().key(db, name);
        let why = state.cache().why(&key);
        let mut tags = why.tags;
        tags.sort();
        WhyReport {
            key: name.to_vec(),
            cached: why.cached,
            ttl_ms: why
                .ttl
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            tags,
            dependencies: why
                .dependencies
                .iter()
                .map(|d| key_name(d.as_bytes()).to_vec())
                .collect(),
            version: why.version,
            history_enabled: state.keeps_history(),
            history: why.history.iter().map(event).collect(),
        }
    }

    /// The JSON the HTTP API serves.
    pub fn to_json(&self) -> Json {
        let history: Vec<Json> = self
            .history
            .iter()
            .map(|e| {
                let origin = if e.origin.is_empty() {
                    Json::Null
                } else {
                    let mut o = serde_json::Map::new();
                    for name in ["client", "rule", "change", "node"] {
                        let v = e
                            .origin
                            .iter()
                            .find(|(n, _)| *n == name)
                            .map_or(Json::Null, |(_, t)| Json::String(t.clone()));
                        o.insert(name.to_owned(), v);
                    }
                    Json::Object(o)
                };
                json!({
                    "at_ms": e.at_ms,
                    "event": e.event,
                    "cause": e.cause,
                    "version": e.version,
                    "tags": e.tags,
                    "matched": e.matched,
                    "origin": origin,
                })
            })
            .collect();
        let state = self.cached.then(|| {
            json!({
                "ttl_ms": self.ttl_ms,
                "tags": self.tags,
                "dependencies": self.dependencies.iter().map(|d| text(d)).collect::<Vec<_>>(),
                "version": self.version,
            })
        });
        json!({
            "key": text(&self.key),
            "cached": self.cached,
            "state": state,
            "history_enabled": self.history_enabled,
            "history": history,
        })
    }

    /// The `LETHE.WHY` reply: a map (a flat array in RESP2), its `history` an array of maps,
    /// newest first; absent parts are nulls.
    pub fn to_frame(&self) -> Frame {
        let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let opt_int = |n: Option<u64>| n.map_or(Frame::Null, int);
        let bulk_list = |items: Vec<Frame>| Frame::Array(items);
        let history = self
            .history
            .iter()
            .map(|e| {
                Frame::Map(vec![
                    (Frame::bulk("at_ms"), Frame::Integer(e.at_ms)),
                    (Frame::bulk("event"), Frame::bulk(e.event)),
                    (
                        Frame::bulk("cause"),
                        e.cause.map_or(Frame::Null, Frame::bulk),
                    ),
                    (Frame::bulk("version"), opt_int(e.version)),
                    (
                        Frame::bulk("tags"),
                        bulk_list(e.tags.iter().map(|t| Frame::bulk(t.clone())).collect()),
                    ),
                    (
                        Frame::bulk("matched"),
                        e.matched.clone().map_or(Frame::Null, Frame::bulk),
                    ),
                    (
                        Frame::bulk("origin"),
                        if e.origin.is_empty() {
                            Frame::Null
                        } else {
                            Frame::Map(
                                e.origin
                                    .iter()
                                    .map(|(n, t)| (Frame::bulk(*n), Frame::bulk(t.clone())))
                                    .collect(),
                            )
                        },
                    ),
                ])
            })
            .collect();
        Frame::Map(vec![
            (Frame::bulk("key"), Frame::bulk(self.key.clone())),
            (
                Frame::bulk("cached"),
                Frame::Integer(i64::from(self.cached)),
            ),
            (Frame::bulk("ttl_ms"), opt_int(self.ttl_ms)),
            (
                Frame::bulk("tags"),
                bulk_list(self.tags.iter().map(|t| Frame::bulk(t.clone())).collect()),
            ),
            (
                Frame::bulk("dependencies"),
                bulk_list(
                    self.dependencies
                        .iter()
                        .map(|d| Frame::bulk(d.clone()))
                        .collect(),
                ),
            ),
            (Frame::bulk("version"), opt_int(self.version)),
            (
                Frame::bulk("history_enabled"),
                Frame::Integer(i64::from(self.history_enabled)),
            ),
            (Frame::bulk("history"), Frame::Array(history)),
        ])
    }
}
