//! The literal keys of one field (prefixes, suffixes and substrings from wildcard patterns
//! and regexes), all found in one pass over a value with small fingerprint filters.
//!
//! One Aho-Corasick DFA over every literal of a field (hundreds on `process.args` and
//! `process.command_line` with Elastic's Linux rules) is megabytes: each byte stepped was a
//! dependent load missing the caches. Here each position of the value is looked up in a
//! bitset of at most a few cache lines (16 bits per literal) by a hash of the bytes
//! starting there, with ASCII case folded by setting bit 5 of every byte (a superset of
//! ASCII case folding: a filter only); the positions don't depend on each other, so the
//! loads overlap, and the filter has no branch. A set bit sends
//! the literals whose first bytes hash there to an exact check. Literals are filtered by
//! their first 4 bytes, or 2, or 1 when shorter ([`Table`]). Only literals some key wants
//! anywhere in the value are looked for at every position; prefixes (and whole values) only
//! at the start, suffixes only at the end (filtered by their last bytes).
//!
//! The hits are exactly those of the DFA it replaces (kept in tests as the oracle,
//! `literals_dfa`): every occurrence of every literal, overlapping or not, compared
//! byte for byte, or ASCII-case-insensitively (for a value that is all ASCII) where the
//! key says.

use rustc_hash::FxHashMap;

use super::cands::Cands;
use super::keys::Anchor;

/// One literal and what it keys.
#[derive(Debug)]
struct Entry {
    text: Box<[u8]>,
    /// (case-insensitive, where the literal must be, slots it keys there).
    keys: Vec<(bool, Anchor, Vec<u32>)>,
}

/// Filter bits per literal of a table (rounded up to a power of two): about one position
/// in 16 passes the filter by chance per literal bucket, and the bitset stays small (1 KiB
/// for the 300 literals of `process.args` anywhere), so few of its cache lines are touched.
const BITS_PER_LITERAL: usize = 16;
/// Fewest filter bits of a table hashing its windows (one cache line).
const MIN_BITS: usize = 512;
/// Filter bits per bucket of literals to check.
const BITS_PER_BUCKET: u32 = 8;

/// The bytes a literal is filtered by, read from `b` (at least `width` long) at `at`,
/// ASCII case folded (and some other pairs of bytes merged, which only costs a check).
#[inline(always)]
fn window(b: &[u8], at: usize, width: usize) -> u32 {
    match width {
        4 => u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) | 0x2020_2020,
        2 => u16::from_le_bytes([b[at], b[at + 1]]) as u32 | 0x2020,
        _ => b[at] as u32 | 0x20,
    }
}

/// The literals of one width class (4 bytes and more, 2 or 3, 1), filtered by `width` of
/// their bytes: a bitset of the windows' hashes (of the byte itself for width 1), and the
/// literals by bucket (the hash's top bits).
#[derive(Debug)]
struct Table {
    width: usize,
    /// The hash keeps the top `32 - shift` bits of the product (0: the window itself, of
    /// width 1).
    shift: u32,
    /// Bucket of a hash: `hash >> bucket_shift`.
    bucket_shift: u32,
    bits: Box<[u64]>,
    /// Literals of bucket `k`: `ids[starts[k]..starts[k + 1]]`.
    starts: Box<[u32]>,
    ids: Box<[u32]>,
}

impl Table {
    /// The table of `ids` (of `entries`), each filtered by its first (`from_end`: last)
    /// `width` bytes. `None` when there are none.
    fn build(entries: &[Entry], ids: &[u32], width: usize, from_end: bool) -> Option<Self> {
        if ids.is_empty() {
            return None;
        }
        let (nbits, shift, bucket_shift) = if width == 1 {
            (256usize, 0, 0)
        } else {
            let n = (ids.len() * BITS_PER_LITERAL)
                .next_power_of_two()
                .max(MIN_BITS);
            let log = n.trailing_zeros();
            (n, 32 - log, BITS_PER_BUCKET.trailing_zeros())
        };
        let mut t = Table {
            width,
            shift,
            bucket_shift,
            bits: vec![0u64; nbits / 64].into(),
            starts: Box::default(),
            ids: Box::default(),
        };
        let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); nbits >> bucket_shift];
        for &id in ids {
            let text = &entries[id as usize].text;
            let at = if from_end { text.len() - width } else { 0 };
            let h = t.hash(window(text, at, width));
            t.bits[(h >> 6) as usize] |= 1 << (h & 63);
            let b = &mut buckets[(h >> bucket_shift) as usize];
            if !b.contains(&id) {
                b.push(id);
            }
        }
        let mut starts = Vec::with_capacity(buckets.len() + 1);
        let mut all = Vec::with_capacity(ids.len());
        for b in &buckets {
            starts.push(all.len() as u32);
            all.extend_from_slice(b);
        }
        starts.push(all.len() as u32);
        t.starts = starts.into();
        t.ids = all.into();
        Some(t)
    }

    /// The filter hash of a window.
    #[inline(always)]
    fn hash(&self, w: u32) -> u32 {
        if self.shift == 0 {
            w & 0xff
        } else {
            w.wrapping_mul(0x9E37_79B1) >> self.shift
        }
    }

    /// Whether the filter passes hash `h` (0 or 1).
    #[inline(always)]
    fn bit(&self, h: u32) -> u64 {
        (self.bits[(h >> 6) as usize] >> (h & 63)) & 1
    }

    /// The literals to check where the window hashes to `h`.
    #[inline(always)]
    fn bucket(&self, h: u32) -> &[u32] {
        let k = (h >> self.bucket_shift) as usize;
        &self.ids[self.starts[k] as usize..self.starts[k + 1] as usize]
    }

    /// The literals to check where `hay` has the window `w`, when the filter passes.
    #[inline(always)]
    fn candidates(&self, w: u32) -> Option<&[u32]> {
        let h = self.hash(w);
        (self.bit(h) != 0).then(|| self.bucket(h))
    }
}

/// The width class of a literal of `len` bytes.
fn width_of(len: usize) -> usize {
    match len {
        4.. => 4,
        2 | 3 => 2,
        _ => 1,
    }
}

/// The tables of a set of literals, one per width class present.
fn tables(entries: &[Entry], ids: &[u32], from_end: bool) -> Vec<Table> {
    [4, 2, 1]
        .into_iter()
        .filter_map(|w| {
            let of: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|&i| width_of(entries[i as usize].text.len()) == w)
                .collect();
            Table::build(entries, &of, w, from_end)
        })
        .collect()
}

/// The literals of one field, with the slots each one keys.
#[derive(Debug)]
pub struct Literals {
    /// By id.
    entries: Vec<Entry>,
    /// Literals some key wants anywhere: checked at every position.
    within: Vec<Table>,
    /// The others wanted at the start (prefixes, whole values): checked there only.
    prefix: Vec<Table>,
    /// The others wanted at the end: checked there only, filtered by their last bytes.
    suffix: Vec<Table>,
}

impl Literals {
    /// Builds the filters over `(literal, case-insensitive, anchor, slot)` keys
    /// (case-insensitive literals folded; literals are never empty, an empty one is left
    /// out). `None` when there are none.
    pub fn build(keys: &[(&str, bool, Anchor, u32)]) -> Option<Self> {
        let mut ids: FxHashMap<&str, usize> = FxHashMap::default();
        let mut entries: Vec<Entry> = Vec::new();
        for &(text, ci, anchor, slot) in keys {
            if text.is_empty() {
                continue;
            }
            let p = *ids.entry(text).or_insert_with(|| {
                entries.push(Entry {
                    text: text.as_bytes().into(),
                    keys: Vec::new(),
                });
                entries.len() - 1
            });
            let keys = &mut entries[p].keys;
            match keys.iter_mut().find(|(c, a, _)| *c == ci && *a == anchor) {
                Some((_, _, slots)) => {
                    if slots.last() != Some(&slot) {
                        slots.push(slot);
                    }
                }
                None => keys.push((ci, anchor, vec![slot])),
            }
        }
        if entries.is_empty() {
            return None;
        }
        let has = |e: &Entry, f: fn(Anchor) -> bool| e.keys.iter().any(|k| f(k.1));
        let pick = |f: &dyn Fn(&Entry) -> bool| -> Vec<u32> {
            (0..entries.len() as u32)
                .filter(|&i| f(&entries[i as usize]))
                .collect()
        };
        let within = pick(&|e| has(e, |a| a == Anchor::Within));
        let prefix = pick(&|e| {
            !has(e, |a| a == Anchor::Within)
                && has(e, |a| matches!(a, Anchor::Prefix | Anchor::Whole))
        });
        let suffix = pick(&|e| !has(e, |a| a == Anchor::Within) && has(e, |a| a == Anchor::Suffix));
        Some(Literals {
            within: tables(&entries, &within, false),
            prefix: tables(&entries, &prefix, false),
            suffix: tables(&entries, &suffix, true),
            entries,
        })
    }

    /// Sets the slots of every literal `value` holds where its key says. Case-insensitive
    /// keys are only trusted for an ASCII value (`ascii`): folding other characters may
    /// yield ASCII ones, so the caller makes their slots hit otherwise.
    #[inline]
    pub fn collect(&self, value: &str, ascii: bool, c: &mut Cands) {
        let hay = value.as_bytes();
        for t in &self.within {
            if hay.len() < t.width {
                continue;
            }
            match t.width {
                4 => self.within::<4>(t, hay, ascii, c),
                2 => self.within::<2>(t, hay, ascii, c),
                _ => self.within::<1>(t, hay, ascii, c),
            }
        }
        for t in &self.prefix {
            if hay.len() >= t.width
                && let Some(ids) = t.candidates(window(hay, 0, t.width))
            {
                self.check(ids, hay, 0, ascii, c);
            }
        }
        for t in &self.suffix {
            if hay.len() < t.width {
                continue;
            }
            let Some(ids) = t.candidates(window(hay, hay.len() - t.width, t.width)) else {
                continue;
            };
            for &id in ids {
                let n = self.entries[id as usize].text.len();
                if let Some(start) = hay.len().checked_sub(n) {
                    self.check(&[id], hay, start, ascii, c);
                }
            }
        }
    }

    /// Checks the literals of `t` (of width `W`) at every position of `hay` (at least `W`
    /// long): the filter over 64 positions at a time without a branch (the loads overlap,
    /// nothing to mispredict), then the positions that passed.
    #[inline]
    fn within<const W: usize>(&self, t: &Table, hay: &[u8], ascii: bool, c: &mut Cands) {
        let positions = hay.len() + 1 - W;
        let mut base = 0;
        while base < positions {
            let end = (base + 64).min(positions);
            let mut passed = 0u64;
            for at in base..end {
                passed |= t.bit(t.hash(window(hay, at, W))) << (at - base);
            }
            while passed != 0 {
                let at = base + passed.trailing_zeros() as usize;
                passed &= passed - 1;
                self.check(t.bucket(t.hash(window(hay, at, W))), hay, at, ascii, c);
            }
            base = end;
        }
    }

    /// Checks the literals `ids` at `start` of `hay`, setting the slots of each key whose
    /// literal is there (byte for byte, or ASCII-case-insensitively in an ASCII value) where
    /// the key wants it.
    #[inline]
    fn check(&self, ids: &[u32], hay: &[u8], start: usize, ascii: bool, c: &mut Cands) {
        for &id in ids {
            let e = &self.entries[id as usize];
            let end = start + e.text.len();
            let Some(seg) = hay.get(start..end) else {
                continue;
            };
            if !seg.eq_ignore_ascii_case(&e.text) {
                continue;
            }
            let exact = seg == &*e.text;
            for (ci, anchor, slots) in &e.keys {
                let found = if *ci { ascii } else { exact };
                let at = anchor.holds(start, end, hay.len());
                if found && at {
                    c.add_all(slots);
                }
            }
        }
    }
}

#[cfg(test)]
impl Literals {
    /// The keys it was built from, as [`Literals::build`] takes them (tests: the oracle is
    /// built from the same).
    pub fn keys(&self) -> Vec<(&str, bool, Anchor, u32)> {
        let mut out = Vec::new();
        for e in &self.entries {
            let text = std::str::from_utf8(&e.text).expect("built from a str");
            for (ci, anchor, slots) in &e.keys {
                out.extend(slots.iter().map(|&s| (text, *ci, *anchor, s)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
