//! The literal keys of one field (prefixes, suffixes and substrings from wildcard patterns
//! and regexes), found in one pass over a value with an Aho-Corasick automaton.

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use rustc_hash::FxHashMap;

use super::cands::Cands;
use super::keys::Anchor;

/// Literals of one field and one case mode, with the rules each one keys.
#[derive(Debug)]
pub struct Literals {
    ac: AhoCorasick,
    /// By pattern id: where the literal must be and which rules it keys there.
    entries: Vec<Vec<(Anchor, Vec<u32>)>>,
}

impl Literals {
    /// Builds the automaton over `(literal, anchor, rule)` keys; ASCII case-insensitive
    /// when `ci` (literals are then folded). `None` when there are none (or too many for an
    /// automaton, which never happens with a few thousand rules).
    pub fn build(keys: &[(&str, Anchor, u32)], ci: bool) -> Option<Self> {
        let mut texts: Vec<&str> = Vec::new();
        let mut ids: FxHashMap<&str, usize> = FxHashMap::default();
        let mut entries: Vec<Vec<(Anchor, Vec<u32>)>> = Vec::new();
        for &(text, anchor, rule) in keys {
            let p = *ids.entry(text).or_insert_with(|| {
                texts.push(text);
                entries.push(Vec::new());
                texts.len() - 1
            });
            match entries[p].iter_mut().find(|(a, _)| *a == anchor) {
                Some((_, rules)) => {
                    if rules.last() != Some(&rule) {
                        rules.push(rule);
                    }
                }
                None => entries[p].push((anchor, vec![rule])),
            }
        }
        if texts.is_empty() {
            return None;
        }
        let ac = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .ascii_case_insensitive(ci)
            .build(&texts)
            .ok()?;
        Some(Literals { ac, entries })
    }

    /// Adds the rules of every literal `value` holds where its key says. Case-insensitive
    /// sets must only be given ASCII values (folding other characters may yield ASCII).
    #[inline]
    pub fn collect(&self, value: &str, c: &mut Cands) {
        for m in self.ac.find_overlapping_iter(value) {
            for (anchor, rules) in &self.entries[m.pattern().as_usize()] {
                let at = match anchor {
                    Anchor::Within => true,
                    Anchor::Prefix => m.start() == 0,
                    Anchor::Suffix => m.end() == value.len(),
                    Anchor::Whole => m.start() == 0 && m.end() == value.len(),
                };
                if at {
                    c.add_all(rules);
                }
            }
        }
    }
}
