//! Stored values: Redis's types, each in a representation changed in place.
//!
//! A value is 24 bytes in the engine's slot: short strings inline, integers as integers (what
//! Redis calls the `int` encoding, so INCR never parses or formats), and collections behind one
//! box each, mutated where they are by the commands (the engine's `compute`), never copied.

use super::hash::Hash;
use super::list::List;
use super::set::Set;
use super::small::SmallBytes;
use super::zset::Zset;
use crate::cmd::CommandError;
use bytes::Bytes;

/// A stored value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string (binary-safe).
    Str(SmallBytes),
    /// A string that is the canonical decimal form of an integer.
    Int(i64),
    /// A hash.
    Hash(Box<Hash>),
    /// A list.
    List(Box<List>),
    /// A set.
    Set(Box<Set>),
    /// A sorted set.
    Zset(Box<Zset>),
}

/// The longest string Redis keeps in one allocation with its object header (`embstr`); longer
/// ones are `raw`. Only `OBJECT ENCODING` shows the difference.
const EMBSTR_MAX: usize = 44;

impl Value {
    /// A string value; integers in canonical form are kept as integers, as Redis does.
    pub fn string(bytes: &[u8]) -> Value {
        match canonical_int(bytes) {
            Some(n) => Value::Int(n),
            None => Value::Str(SmallBytes::new(bytes)),
        }
    }

    /// [`Value::string`] taking a request's argument: a long one is kept in the buffer it was
    /// read into when nothing else shares it (the request parser reads large arguments into
    /// buffers of their own), so a 16 MiB value is stored without a copy.
    pub fn bulk(bytes: Bytes) -> Value {
        if bytes.len() <= 22 || canonical_int(&bytes).is_some() {
            return Value::string(&bytes);
        }
        match bytes.try_into_mut() {
            Ok(unique) => Value::Str(SmallBytes::from_vec(Vec::from(unique))),
            Err(shared) => Value::Str(SmallBytes::new(&shared)),
        }
    }

    /// [`Value::string`] taking a vector's buffer.
    pub fn from_vec(bytes: Vec<u8>) -> Value {
        match canonical_int(&bytes) {
            Some(n) => Value::Int(n),
            None => Value::Str(SmallBytes::from_vec(bytes)),
        }
    }

    /// The name `TYPE` replies with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) | Value::Int(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Zset(_) => "zset",
        }
    }

    /// The name `OBJECT ENCODING` replies with.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
            Value::Str(_) => "raw",
            Value::Hash(h) => h.encoding(),
            Value::List(l) => l.encoding(),
            Value::Set(s) => s.encoding(),
            Value::Zset(z) => z.encoding(),
        }
    }

    /// Heap bytes the value owns, as the allocator counts them (O(1)).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::Int(_) => 0,
            Value::Hash(h) => super::small::alloc_size(std::mem::size_of::<Hash>()) + h.heap_size(),
            Value::List(l) => super::small::alloc_size(std::mem::size_of::<List>()) + l.heap_size(),
            Value::Set(s) => super::small::alloc_size(std::mem::size_of::<Set>()) + s.heap_size(),
            Value::Zset(z) => super::small::alloc_size(std::mem::size_of::<Zset>()) + z.heap_size(),
        }
    }

    /// The string's bytes, for a reply (integers formatted); WRONGTYPE for other types.
    pub fn to_bytes(&self) -> Result<Bytes, CommandError> {
        match self {
            Value::Str(s) => Ok(Bytes::copy_from_slice(s)),
            Value::Int(n) => Ok(Bytes::copy_from_slice(
                itoa::Buffer::new().format(*n).as_bytes(),
            )),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// Runs `f` on the string's bytes (integers formatted); WRONGTYPE for other types.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R, CommandError> {
        match self {
            Value::Str(s) => Ok(f(s)),
            Value::Int(n) => Ok(f(itoa::Buffer::new().format(*n).as_bytes())),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The string's length in bytes; WRONGTYPE for other types.
    pub fn str_len(&self) -> Result<usize, CommandError> {
        self.with_bytes(<[u8]>::len)
    }

    /// The hash; WRONGTYPE for other types.
    pub fn as_hash(&self) -> Result<&Hash, CommandError> {
        match self {
            Value::Hash(h) => Ok(h),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The hash, to change, with its expired fields removed first (a write is where they
    /// go lazily); WRONGTYPE for other types.
    pub fn as_hash_mut(&mut self) -> Result<&mut Hash, CommandError> {
        match self {
            Value::Hash(h) => {
                if h.has_field_deadlines() {
                    h.purge_expired(super::now_millis());
                }
                Ok(h)
            }
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The set; WRONGTYPE for other types.
    pub fn as_set(&self) -> Result<&Set, CommandError> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The set, to change; WRONGTYPE for other types.
    pub fn as_set_mut(&mut self) -> Result<&mut Set, CommandError> {
        match self {
            Value::Set(s) => Ok(s),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The sorted set; WRONGTYPE for other types.
    pub fn as_zset(&self) -> Result<&Zset, CommandError> {
        match self {
            Value::Zset(z) => Ok(z),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The sorted set, to change; WRONGTYPE for other types.
    pub fn as_zset_mut(&mut self) -> Result<&mut Zset, CommandError> {
        match self {
            Value::Zset(z) => Ok(z),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// Whether a client blocked on this key may be served by it (a list or a sorted set).
    pub fn wakes_blocked(&self) -> bool {
        matches!(self, Value::List(_) | Value::Zset(_))
    }

    /// The list; WRONGTYPE for other types.
    pub fn as_list(&self) -> Result<&List, CommandError> {
        match self {
            Value::List(l) => Ok(l),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// The list, to change; WRONGTYPE for other types.
    pub fn as_list_mut(&mut self) -> Result<&mut List, CommandError> {
        match self {
            Value::List(l) => Ok(l),
            _ => Err(CommandError::wrong_type()),
        }
    }

    /// Whether this is a string (of either representation).
    pub fn is_string(&self) -> bool {
        matches!(self, Value::Str(_) | Value::Int(_))
    }
}

/// The integer `bytes` spell in canonical form (no sign but a leading `-`, no leading zeros,
/// no spaces, within i64), as Redis's `string2ll` accepts for its `int` encoding.
pub fn canonical_int(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || bytes.len() > 20 {
        return None;
    }
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && (digits.len() > 1 || bytes[0] == b'-'))
    {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_24_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    #[test]
    fn long_unshared_arguments_are_stored_without_a_copy() {
        let buf = Bytes::from(vec![b'x'; 100_000]);
        let at = buf.as_ptr();
        match Value::bulk(buf) {
            Value::Str(s) => assert_eq!(s.as_bytes().as_ptr(), at),
            other => panic!("{other:?}"),
        }
        // Shared, or short, or an integer: copied into the value as usual.
        let buf = Bytes::from(vec![b'y'; 1000]);
        let keep = buf.clone();
        assert!(matches!(Value::bulk(buf), Value::Str(s) if s.as_bytes() == &keep[..]));
        assert!(matches!(
            Value::bulk(Bytes::from_static(b"42")),
            Value::Int(42)
        ));
    }

    #[test]
    fn integers_are_kept_only_in_canonical_form() {
        for (s, want) in [
            ("0", Some(0)),
            ("-1", Some(-1)),
            ("9223372036854775807", Some(i64::MAX)),
            ("-9223372036854775808", Some(i64::MIN)),
            ("9223372036854775808", None),
            ("01", None),
            ("-0", None),
            ("+1", None),
            (" 1", None),
            ("1.0", None),
            ("", None),
            ("-", None),
        ] {
            assert_eq!(canonical_int(s.as_bytes()), want, "{s:?}");
        }
        assert!(matches!(Value::string(b"42"), Value::Int(42)));
        assert!(matches!(Value::string(b"042"), Value::Str(_)));
        assert_eq!(Value::string(b"-17").to_bytes().unwrap(), &b"-17"[..]);
    }
}
