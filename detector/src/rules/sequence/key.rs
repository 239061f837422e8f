//! Join keys: the values of a term's key fields, encoded into bytes for hashing and
//! decoded back into [`KeyValue`]s only for a match.

use super::KeyField;
use crate::ecs::field::{Document, FieldValue};

/// One value of a join key, as a match reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyValue {
    /// Missing or `null` (only for `?optional` keys).
    Null,
    Str(String),
    Long(i64),
    Bool(bool),
    /// A multi-valued field (two elements or more), compared as a whole.
    List(Vec<KeyValue>),
}

impl std::fmt::Display for KeyValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyValue::Null => f.write_str("null"),
            KeyValue::Str(s) => f.write_str(s),
            KeyValue::Long(n) => write!(f, "{n}"),
            KeyValue::Bool(b) => write!(f, "{b}"),
            KeyValue::List(v) => {
                f.write_str("[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{x}")?;
                }
                f.write_str("]")
            }
        }
    }
}

const NULL: u8 = 0;
const STR: u8 = 1;
const LONG: u8 = 2;
const BOOL: u8 = 3;
const LIST: u8 = 4;

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(STR);
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// Appends the join key of `doc` for `keys` to `buf`. `false` when a non-optional key is
/// null (Elasticsearch then leaves the event out of the term); `buf` then holds a partial
/// key the caller truncates.
pub(crate) fn encode_append(keys: &[KeyField], doc: &dyn Document, buf: &mut Vec<u8>) -> bool {
    for k in keys {
        let v = match k.field {
            Some(id) => doc.field(id),
            None => FieldValue::Missing,
        };
        match v {
            FieldValue::Missing => {
                if !k.optional {
                    return false;
                }
                buf.push(NULL);
            }
            FieldValue::Str(s) => put_str(buf, s),
            FieldValue::Long(n) => {
                buf.push(LONG);
                buf.extend_from_slice(&n.to_le_bytes());
            }
            FieldValue::Bool(b) => {
                buf.push(BOOL);
                buf.push(b as u8);
            }
            FieldValue::Strs(v) => {
                if !list(buf, v.iter().map(String::as_str), v.len(), k.optional) {
                    return false;
                }
            }
            FieldValue::StaticStrs(v) => {
                if !list(buf, v.iter().copied(), v.len(), k.optional) {
                    return false;
                }
            }
        }
    }
    true
}

/// Whether `probe` already tells that a non-optional key of `keys` is null (missing, or
/// an empty array), so [`encode_append`] would refuse every document it describes.
pub(crate) fn known_null(keys: &[KeyField], probe: &dyn crate::rules::Probe) -> bool {
    keys.iter().any(|k| {
        !k.optional
            && match k.field {
                None => true,
                Some(id) => match probe.field(id) {
                    Some(FieldValue::Missing) => true,
                    Some(FieldValue::Strs(v)) => v.is_empty(),
                    Some(FieldValue::StaticStrs(v)) => v.is_empty(),
                    _ => false,
                },
            }
    })
}

/// An array value: empty is null, one element is that element, more a list.
fn list<'a>(
    buf: &mut Vec<u8>,
    mut items: impl Iterator<Item = &'a str>,
    len: usize,
    optional: bool,
) -> bool {
    match len {
        0 if !optional => false,
        0 => {
            buf.push(NULL);
            true
        }
        1 => {
            put_str(buf, items.next().unwrap_or_default());
            true
        }
        n => {
            buf.push(LIST);
            buf.extend_from_slice(&(n as u32).to_le_bytes());
            for s in items {
                put_str(buf, s);
            }
            true
        }
    }
}

/// Decodes an encoded key (what [`encode`] wrote) into its values.
pub(crate) fn decode(mut b: &[u8]) -> Vec<KeyValue> {
    let mut out = Vec::new();
    while !b.is_empty() {
        out.push(one(&mut b));
    }
    out
}

fn take<'a>(b: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(b.len());
    let (h, t) = b.split_at(n);
    *b = t;
    h
}

fn u32_at(b: &mut &[u8]) -> usize {
    let mut a = [0u8; 4];
    a.copy_from_slice(take(b, 4));
    u32::from_le_bytes(a) as usize
}

fn one(b: &mut &[u8]) -> KeyValue {
    let tag = take(b, 1)[0];
    match tag {
        STR => {
            let n = u32_at(b);
            KeyValue::Str(String::from_utf8_lossy(take(b, n)).into_owned())
        }
        LONG => {
            let mut a = [0u8; 8];
            a.copy_from_slice(take(b, 8));
            KeyValue::Long(i64::from_le_bytes(a))
        }
        BOOL => KeyValue::Bool(take(b, 1)[0] != 0),
        LIST => {
            let n = u32_at(b);
            KeyValue::List((0..n).map(|_| one(b)).collect())
        }
        _ => KeyValue::Null,
    }
}
