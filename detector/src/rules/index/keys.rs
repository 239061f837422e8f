//! What a rule requires of a document for it to match: a set of keys, at least one of which
//! every matching document holds. The index evaluates a rule only for documents holding one
//! of its keys.
//!
//! A key is a string field with a value it must equal (`==`, `in`, `:` without wildcards), a
//! literal it must start or end with, or one it must contain (taken from a wildcard pattern
//! such as `"/tmp/*"` or `"*kubeletctl*"`, or from a regex). Only *positive* tests give
//! keys: a negation (`not`, `!=`, `not in`) is true when the field is missing, so it can
//! never exclude a document.

use super::regex_lit;
use crate::ecs::field::FieldId;
use crate::rules::eql::matcher::{Node, StrMatcher, Test};

/// Where a key's text must appear in one element of the field's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Anchor {
    /// The whole element.
    Whole,
    /// At its start.
    Prefix,
    /// At its end.
    Suffix,
    /// Anywhere in it.
    Within,
}

impl Anchor {
    /// Whether an occurrence at `start..end` of an element `len` bytes long is where this
    /// anchor wants it.
    #[inline]
    pub fn holds(self, start: usize, end: usize, len: usize) -> bool {
        match self {
            Anchor::Within => true,
            Anchor::Prefix => start == 0,
            Anchor::Suffix => end == len,
            Anchor::Whole => start == 0 && end == len,
        }
    }
}

/// One key: some element of `field` holds `text` where `anchor` says, comparing folded
/// characters when `ci` (`text` is then already folded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub field: FieldId,
    pub ci: bool,
    pub anchor: Anchor,
    pub text: String,
}

/// Groups of keys `node` requires, each a necessary condition (at least one key of every
/// group holds in a matching document), most selective first, at most `max`; empty when
/// the node can be true whatever those fields hold.
///
/// A positive string test gives one group; an `and` the groups of all its operands; an
/// `or` whose every branch has groups gives, for each `j`, the union of every branch's
/// `j`-th group (its last when it has fewer): `(a1 ∧ a2) ∨ (b1 ∧ b2)` implies both
/// `a1 ∨ b1` and `a2 ∨ b2`.
fn required(node: &Node, common: &[FieldId], max: usize) -> Vec<Vec<Key>> {
    match node {
        Node::Test(id, Test::Str(m)) => str_keys(*id, m).into_iter().collect(),
        Node::And(parts) => {
            let mut groups: Vec<Vec<Key>> = parts
                .iter()
                .flat_map(|p| required(p, common, max))
                .collect();
            groups.sort_by_key(|g| rank(g, common));
            groups.truncate(max);
            groups
        }
        Node::Or(parts) => {
            let mut branches = Vec::with_capacity(parts.len());
            for p in parts.iter() {
                let g = required(p, common, max);
                if g.is_empty() {
                    return Vec::new();
                }
                branches.push(g);
            }
            let n = branches.iter().map(Vec::len).max().unwrap_or(0);
            let mut groups: Vec<Vec<Key>> = (0..n)
                .map(|j| {
                    branches
                        .iter()
                        .flat_map(|b| b[j.min(b.len() - 1)].iter().cloned())
                        .collect()
                })
                .collect();
            groups.sort_by_key(|g| rank(g, common));
            groups
        }
        Node::Const(false) => vec![Vec::new()],
        _ => Vec::new(),
    }
}

/// The groups of keys `root` requires (at least one key of every group is present in a
/// matching document; see [`required`]), most selective first, at most `max`. Groups on
/// common fields only when there is no other.
pub fn requirements(root: &Node, common: &[FieldId], max: usize) -> Vec<Vec<Key>> {
    let mut groups: Vec<(u8, usize, Vec<Key>)> = root
        .conjuncts()
        .iter()
        .flat_map(|c| required(c, common, max))
        .map(|g| {
            let (class, len) = rank(&g, common);
            (class, len, g)
        })
        .collect();
    groups.sort_by_key(|g| (g.0, g.1));
    if groups.iter().any(|g| g.0 < COMMON) {
        groups.retain(|g| g.0 < COMMON);
    } else {
        groups.truncate(1);
    }
    groups.dedup_by(|a, b| a.2 == b.2);
    groups.truncate(max);
    groups.into_iter().map(|g| g.2).collect()
}

/// Keys of one string test: true only when some element equals an exact value, matches a
/// pattern (so holds its literal run) or matches the regex (so holds one of its required
/// literals). `None` when one pattern or the regex requires no literal.
fn str_keys(field: FieldId, m: &StrMatcher) -> Option<Vec<Key>> {
    let mut keys: Vec<Key> = m
        .exact
        .iter()
        .map(|v| Key {
            field,
            ci: m.ci,
            anchor: Anchor::Whole,
            text: v.to_string(),
        })
        .collect();
    for w in m.wildcards() {
        let run = w.required_literal()?;
        let anchor = match (run.at_start, run.at_end) {
            (true, true) => Anchor::Whole,
            (true, false) => Anchor::Prefix,
            (false, true) => Anchor::Suffix,
            (false, false) => Anchor::Within,
        };
        keys.push(Key {
            field,
            ci: m.ci,
            anchor,
            text: run.text,
        });
    }
    if let Some(re) = m.regex() {
        // The regex runs on the value as it is (case-insensitivity is inside the regex, as
        // classes), so its literals are compared exactly.
        for text in regex_lit::required(re.as_str())? {
            keys.push(Key {
                field,
                ci: false,
                anchor: Anchor::Within,
                text,
            });
        }
    }
    (!keys.is_empty()).then_some(keys)
}

/// The class of a key on a common field.
const COMMON: u8 = 4;

/// How selective one key is, lower is better: an exact value or a literal of 8 bytes or
/// more; a literal of 4 (3 anchored); a shorter one; a one-character substring; any key on a *common* field (`event.action`, … whose values
/// every exec event shares) last.
fn class(k: &Key, common: &[FieldId]) -> u8 {
    if common.contains(&k.field) {
        return COMMON;
    }
    let n = k.text.len();
    match k.anchor {
        // As selective as an exact value (which is often a common command name).
        _ if n >= 8 => 0,
        Anchor::Whole => 0,
        Anchor::Prefix | Anchor::Suffix if n >= 3 => 1,
        Anchor::Within if n >= 4 => 1,
        Anchor::Prefix | Anchor::Suffix => 2,
        Anchor::Within if n >= 2 => 2,
        Anchor::Within => 3,
    }
}

/// Lower is more selective: by the worst key, then fewer keys first.
pub fn rank(req: &[Key], common: &[FieldId]) -> (u8, usize) {
    (
        req.iter().map(|k| class(k, common)).max().unwrap_or(0),
        req.len(),
    )
}
