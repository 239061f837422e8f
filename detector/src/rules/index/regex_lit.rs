//! Literals a regex requires: strings at least one of which every match contains, so the
//! index can key a `regex` test on them like on a wildcard pattern's literal.
//!
//! Read from the regex's syntax tree (the `regex` crate's own parser, same defaults):
//! a literal requires itself; a concatenation the best requirement of its parts; an
//! alternation the union of its branches' (each must have one); a repetition at least once
//! its body's; anything else (classes, `.`, optional parts, look-arounds) nothing. Under
//! `(?i)` letters become classes, so only case-less characters remain literals, which is
//! still exact.

use regex_syntax::hir::{Hir, HirKind};

/// The literals `pattern` requires (one of them occurs in every match), or `None` when it
/// requires none that this analysis finds (or does not parse).
pub fn required(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let lits = req(&hir)?;
    (!lits.is_empty() && lits.iter().all(|l| !l.is_empty())).then_some(lits)
}

/// Higher is more selective: by the shortest literal (the weakest alternative bounds
/// selectivity), then whether no literal is a single character common in arguments and
/// paths (`.`, `/`, `-`, letters, digits…), then fewer literals.
fn score(lits: &[String]) -> (usize, bool, std::cmp::Reverse<usize>) {
    let common = |l: &String| {
        let mut c = l.chars();
        matches!((c.next(), c.next()), (Some(x), None) if x.is_alphanumeric() || "./-_ =,".contains(x))
    };
    (
        lits.iter().map(String::len).min().unwrap_or(0),
        !lits.iter().any(common),
        std::cmp::Reverse(lits.len()),
    )
}

fn req(h: &Hir) -> Option<Vec<String>> {
    match h.kind() {
        HirKind::Literal(l) => std::str::from_utf8(&l.0)
            .ok()
            .filter(|s| !s.is_empty())
            .map(|s| vec![s.to_string()]),
        HirKind::Capture(c) => req(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => req(&r.sub),
        HirKind::Concat(parts) => {
            // Adjacent literals are one literal in the tree already; pick the best part
            // (the first of equals).
            parts.iter().rev().filter_map(req).max_by_key(|l| score(l))
        }
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for b in branches {
                all.extend(req(b)?);
            }
            Some(all)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::eql::lucene::translate;

    #[test]
    fn required_literals_table() {
        // (Lucene pattern, case-insensitive, expected literals)
        let cases: &[(&str, bool, Option<&[&str]>)] = &[
            ("ssh.?", false, Some(&["ssh"])),
            ("abc", false, Some(&["abc"])),
            (".*foo.*bar.*", false, Some(&["foo"])),
            (".*longer.*ab.*", false, Some(&["longer"])),
            ("(abc|de)x*", false, Some(&["abc", "de"])),
            ("(abc|.*)", false, None),
            ("[0-9]+", false, None),
            (".*", false, None),
            ("(ab)?cd", false, Some(&["cd"])),
            ("(ab)?", false, None),
            ("(ab)+", false, Some(&["ab"])),
            // Case-insensitive: letters are classes; the case-less characters stay.
            ("ssh", true, None),
            ("a:b", true, Some(&[":"])),
            (
                ".*[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{1,5}.*",
                false,
                Some(&[":"]),
            ),
            ("café.*", false, Some(&["café"])),
        ];
        for &(pat, ci, want) in cases {
            let re = translate(pat, ci).unwrap();
            let got = required(&re);
            let want = want.map(|w| w.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert_eq!(got, want, "{pat:?} ci={ci} ({re})");
        }
    }

    /// Every match of a regex holds one of its literals (checked on generated strings).
    #[test]
    fn every_match_holds_a_literal() {
        let pats = [
            "ab.*cd",
            "(x|yz)+q",
            "[a-c]*(bb|cc)[0-9]?",
            ".*a\\.b.*",
            "(ab){2}",
        ];
        let alphabet = ['a', 'b', 'c', 'd', 'x', 'y', 'z', 'q', '.', '1'];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut matched = 0;
        for pat in pats {
            let re = regex::Regex::new(&translate(pat, false).unwrap()).unwrap();
            let lits = required(re.as_str()).unwrap_or_else(|| panic!("{pat}"));
            for _ in 0..20_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let len = (seed % 7) as usize;
                let s: String = (0..len)
                    .map(|i| alphabet[((seed >> (8 + 4 * i)) % alphabet.len() as u64) as usize])
                    .collect();
                if re.is_match(&s) {
                    matched += 1;
                    assert!(lits.iter().any(|l| s.contains(l.as_str())), "{pat} {s}");
                }
            }
        }
        assert!(matched > 50, "matches: {matched}");
    }
}
