//! The bus's message schema: what one message on the invalidation stream says, and its JSON
//! encoding. This is the contract between every member (servers, embedded caches, `lethe cdc`),
//! so it is versioned: a member refuses (and counts) a message whose `v` it does not know
//! rather than guessing, and treats it as a gap (it flushes), because skipping an invalidation
//! it cannot read could leave stale data.
//!
//! # Version 1
//!
//! ```json
//! {"v":1,"origin":"node-a","origin_seq":42,"lsn":"0/16B3748",
//!  "items":[{"kind":"key","key":"user:42","db":0},
//!           {"kind":"tag","tag":"user:42"},
//!           {"kind":"prefix","prefix":"session:","db":null},
//!           {"kind":"glob","glob":"page:*:42"},
//!           {"kind":"fence","key":"user:42","version":1207,"hold_ms":30000},
//!           {"kind":"flush","db":null}]}
//! ```
//!
//! - `origin`: the publishing member's node id; `origin_seq`: its own counter, one per message,
//!   starting at 1 for each incarnation of the member (the JetStream message id adds a random
//!   incarnation so a restarted member is not deduplicated against its earlier life).
//! - `lsn`: the commit LSN, when the invalidations come from PostgreSQL change capture (the
//!   message id is then derived from it, so a replay after a restart is deduplicated).
//! - `items`, applied in order: a key, a tag (and its subtree), a key prefix, a Redis-style glob,
//!   a version fence (writes of the key below `version` refused for `hold_ms`) or a flush. `db` names a server database (0-15); `null` or absent means every database
//!   (and is the only meaning embedded caches have). Keys, prefixes and globs are JSON strings
//!   when they are UTF-8, otherwise `{"base64":"..."}` (standard alphabet, padded).
//!
//! Rules (`LETHE.EVENT`) fire on the node where the event arrives; what they invalidate is
//! published as the items above, so members need not share rule files.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The schema version this crate writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// One message on the stream: a batch of invalidations from one origin, applied in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Schema version ([`SCHEMA_VERSION`]).
    pub v: u32,
    /// The publishing member's node id.
    pub origin: String,
    /// The publisher's own sequence number for this message.
    pub origin_seq: u64,
    /// The commit LSN, for invalidations from change capture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lsn: Option<String>,
    /// What to invalidate, in order.
    pub items: Vec<Item>,
}

/// One invalidation in a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Item {
    /// One key.
    Key {
        key: Data,
        #[serde(default)]
        db: Option<u8>,
    },
    /// A tag and its subtree (tags are not per database).
    Tag { tag: String },
    /// Every key starting with these bytes.
    Prefix {
        prefix: Data,
        #[serde(default)]
        db: Option<u8>,
    },
    /// Every key matching a Redis-style glob.
    Glob {
        glob: Data,
        #[serde(default)]
        db: Option<u8>,
    },
    /// A version fence on a key (every database): until `hold_ms` from when a member applies
    /// it, writes of the key carrying a version below `version` are refused there
    /// ([`lethe::Cache::fence`]). Change capture sends it before the key's invalidation, so a
    /// fill that read the row before the change cannot store it after.
    Fence {
        key: Data,
        version: u64,
        hold_ms: u64,
    },
    /// Everything (in one database, or all).
    Flush {
        #[serde(default)]
        db: Option<u8>,
    },
}

/// Binary-safe bytes: a JSON string when UTF-8, `{"base64": ...}` otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Data(pub Vec<u8>);

impl Data {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Data {
    fn from(b: &[u8]) -> Data {
        Data(b.to_vec())
    }
}

impl From<&str> for Data {
    fn from(s: &str) -> Data {
        Data(s.as_bytes().to_vec())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum DataRepr {
    Text(String),
    Binary { base64: String },
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => DataRepr::Binary {
                base64: STANDARD.encode(&self.0),
            }
            .serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        match DataRepr::deserialize(d)? {
            DataRepr::Text(t) => Ok(Data(t.into_bytes())),
            DataRepr::Binary { base64 } => STANDARD
                .decode(base64)
                .map(Data)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON of this schema.
    Malformed(String),
    /// A schema version this member does not know.
    UnknownVersion(u32),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Malformed(e) => write!(f, "malformed bus message: {e}"),
            DecodeError::UnknownVersion(v) => write!(
                f,
                "bus message schema version {v} is not known (this member reads {SCHEMA_VERSION})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

impl Message {
    /// The JSON encoding.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a message always serializes")
    }

    /// Reads a message, refusing versions other than [`SCHEMA_VERSION`].
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        #[derive(Deserialize)]
        struct Version {
            v: u32,
        }
        let version: Version =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if version.v != SCHEMA_VERSION {
            return Err(DecodeError::UnknownVersion(version.v));
        }
        serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_item_and_binary_keys() {
        let m = Message {
            v: SCHEMA_VERSION,
            origin: "node-a".into(),
            origin_seq: 7,
            lsn: Some("0/16B3748".into()),
            items: vec![
                Item::Key {
                    key: Data(vec![0xff, 0x00, b'k']),
                    db: Some(3),
                },
                Item::Tag {
                    tag: "user:42".into(),
                },
                Item::Prefix {
                    prefix: "session:".into(),
                    db: None,
                },
                Item::Glob {
                    glob: "page:*".into(),
                    db: Some(0),
                },
                Item::Flush { db: None },
            ],
        };
        let bytes = m.encode();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#"{"kind":"tag","tag":"user:42"}"#), "{text}");
        assert!(text.contains(r#""base64":"/wBr""#), "{text}");
        assert_eq!(Message::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn documented_example_decodes() {
        let example = br#"{"v":1,"origin":"node-a","origin_seq":42,"lsn":"0/16B3748",
          "items":[{"kind":"key","key":"user:42","db":0},{"kind":"tag","tag":"user:42"},
          {"kind":"prefix","prefix":"session:","db":null},{"kind":"glob","glob":"page:*:42"},
          {"kind":"fence","key":"user:42","version":1207,"hold_ms":30000},
          {"kind":"flush","db":null}]}"#;
        let m = Message::decode(example).unwrap();
        assert_eq!(m.items.len(), 6);
        assert_eq!(
            m.items[0],
            Item::Key {
                key: "user:42".into(),
                db: Some(0)
            }
        );
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert_eq!(
            Message::decode(br#"{"v":2,"whatever":true}"#),
            Err(DecodeError::UnknownVersion(2))
        );
        assert!(matches!(
            Message::decode(b"not json"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            Message::decode(br#"{"v":1,"origin":"a","origin_seq":1,"items":[{"kind":"nope"}]}"#),
            Err(DecodeError::Malformed(_))
        ));
    }
}
