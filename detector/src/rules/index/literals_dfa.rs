//! The oracle of [`super::literals`] in tests: the literal keys of one field found in one
//! pass over a value with one Aho-Corasick DFA (what the index used before the fingerprint
//! filters, which must report exactly the same hits).
//!
//! Case-sensitive and case-insensitive literals share one automaton: when some literal is
//! case-insensitive the automaton folds ASCII case, and a case-sensitive literal's hit is
//! confirmed by comparing the bytes. The DFA is stepped byte by byte here (no per-search
//! setup, which dominated for short arguments), reporting every literal ending at each
//! position (overlapping matches).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};
use rustc_hash::FxHashMap;

use super::cands::Cands;
use super::keys::Anchor;

/// One literal and what it keys.
#[derive(Debug)]
struct Entry {
    text: Box<str>,
    /// (case-insensitive, where the literal must be, slots it keys there).
    keys: Vec<(bool, Anchor, Vec<u32>)>,
}

/// The literals of one field, with the slots each one keys.
#[derive(Debug)]
pub struct Literals {
    dfa: DFA,
    start: StateID,
    /// The automaton folds ASCII case (some literal is case-insensitive).
    folds: bool,
    /// By pattern id.
    entries: Vec<Entry>,
}

impl Literals {
    /// Builds the automaton over `(literal, case-insensitive, anchor, slot)` keys
    /// (case-insensitive literals folded). `None` when there are none (or too many for an
    /// automaton, which never happens with a few thousand rules).
    pub fn build(keys: &[(&str, bool, Anchor, u32)]) -> Option<Self> {
        let mut ids: FxHashMap<&str, usize> = FxHashMap::default();
        let mut entries: Vec<Entry> = Vec::new();
        for &(text, ci, anchor, slot) in keys {
            let p = *ids.entry(text).or_insert_with(|| {
                entries.push(Entry {
                    text: text.into(),
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
        let folds = keys.iter().any(|k| k.1);
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(folds)
            .start_kind(StartKind::Unanchored)
            .prefilter(false)
            .build(entries.iter().map(|e| e.text.as_bytes()))
            .ok()?;
        let start = dfa.start_state(Anchored::No).ok()?;
        Some(Literals {
            dfa,
            start,
            folds,
            entries,
        })
    }

    /// The DFA's heap bytes (tests).
    pub fn memory(&self) -> usize {
        use aho_corasick::automaton::Automaton;
        self.dfa.memory_usage()
    }

    /// Sets the slots of every literal `value` holds where its key says. Case-insensitive
    /// keys are only trusted for an ASCII value (`ascii`): folding other characters may
    /// yield ASCII ones, so the caller makes their slots hit otherwise.
    #[inline]
    pub fn collect(&self, value: &str, ascii: bool, c: &mut Cands) {
        let hay = value.as_bytes();
        let mut sid = self.start;
        for (i, &b) in hay.iter().enumerate() {
            sid = self.dfa.next_state(Anchored::No, sid, b);
            if !self.dfa.is_match(sid) {
                continue;
            }
            let end = i + 1;
            for k in 0..self.dfa.match_len(sid) {
                let e = &self.entries[self.dfa.match_pattern(sid, k).as_usize()];
                let start = end - e.text.len();
                for (ci, anchor, slots) in &e.keys {
                    let found = if *ci {
                        ascii
                    } else {
                        !self.folds || &hay[start..end] == e.text.as_bytes()
                    };
                    let at = anchor.holds(start, end, hay.len());
                    if found && at {
                        c.add_all(slots);
                    }
                }
            }
        }
    }
}
