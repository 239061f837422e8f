//! Wildcard patterns (`*` any run, `?` one character) and case folding, compiled once.
//!
//! Case-insensitive matching folds each character to its simple lowercase form (one code
//! point to one code point, like Java's `Character.toLowerCase`, which Elasticsearch's
//! case-insensitive term and wildcard queries use), so `?` still matches exactly one
//! character. Backslash is an ordinary character, as in Elasticsearch EQL, where Windows
//! paths like `"C:\\Windows\\*"` are written without escaping the wildcard.
//! Matching never allocates.

use memchr::memmem;

/// Simple lowercase of one character (identity when the full mapping is not one character).
#[inline]
pub fn fold(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

/// `s` with every character folded.
pub fn fold_str(s: &str) -> String {
    s.chars().map(fold).collect()
}

/// Whether `value` folds to `folded` (already folded), without allocating.
#[inline]
pub fn eq_folded(value: &str, folded: &str) -> bool {
    if value.is_ascii() {
        value.len() == folded.len()
            && value
                .bytes()
                .zip(folded.bytes())
                .all(|(a, b)| a.to_ascii_lowercase() == b)
    } else {
        value.chars().map(fold).eq(folded.chars())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PTok {
    Lit(char),
    One,
    Star,
}

/// A compiled wildcard pattern.
#[derive(Debug)]
pub struct Wildcard {
    ci: bool,
    /// Tokens for the general matcher (folded when `ci`).
    toks: Vec<PTok>,
    /// For patterns without `?`: the literal pieces between stars (folded when `ci`),
    /// matched with substring search.
    parts: Option<StarParts>,
    /// Patterns made only of `*` and `?` (`?*`, the corpus's "non-empty"): a length test.
    length: Option<(usize, bool)>,
}

#[derive(Debug)]
struct StarParts {
    /// Pattern starts/ends with a literal piece.
    anchored_start: bool,
    anchored_end: bool,
    pieces: Vec<String>,
    finders: Vec<memmem::Finder<'static>>,
}

/// A run of literal characters every value matching a pattern contains (folded when the
/// pattern is case-insensitive): what the rule index keys a wildcard pattern on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiteralRun {
    pub text: String,
    /// The run starts the pattern: a matching value starts with it.
    pub at_start: bool,
    /// The run ends the pattern: a matching value ends with it.
    pub at_end: bool,
}

/// Whether a pattern string contains wildcard characters.
pub fn has_wildcards(p: &str) -> bool {
    p.contains(['*', '?'])
}

impl Wildcard {
    /// Compiles `pattern`; `ci` for case-insensitive (`:` and `like~`).
    pub fn new(pattern: &str, ci: bool) -> Self {
        let mut toks: Vec<PTok> = Vec::new();
        for c in pattern.chars() {
            let t = match c {
                '*' => PTok::Star,
                '?' => PTok::One,
                c => PTok::Lit(if ci { fold(c) } else { c }),
            };
            if t == PTok::Star && toks.last() == Some(&PTok::Star) {
                continue;
            }
            toks.push(t);
        }
        let parts = if toks.contains(&PTok::One) {
            None
        } else {
            let folded: String = if ci {
                fold_str(pattern)
            } else {
                pattern.to_string()
            };
            let pieces: Vec<String> = folded
                .split('*')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            let finders = pieces
                .iter()
                .map(|p| memmem::Finder::new(p.as_bytes()).into_owned())
                .collect();
            Some(StarParts {
                anchored_start: !pattern.starts_with('*'),
                anchored_end: !pattern.ends_with('*'),
                pieces,
                finders,
            })
        };
        let length = toks
            .iter()
            .all(|t| matches!(t, PTok::Star | PTok::One))
            .then(|| {
                let ones = toks.iter().filter(|t| **t == PTok::One).count();
                (ones, toks.contains(&PTok::Star))
            });
        Wildcard {
            ci,
            toks,
            parts,
            length,
        }
    }

    /// The most selective literal run of the pattern (longest, an anchored run counting one
    /// character more), or `None` for a pattern of wildcards only (`*`, `?*`). Taken from
    /// the same tokens [`Wildcard::matches`] uses, so every matching value holds it: as a
    /// prefix when `at_start`, a suffix when `at_end`, somewhere otherwise (after folding
    /// each character when case-insensitive).
    pub fn required_literal(&self) -> Option<LiteralRun> {
        let mut best: Option<(usize, LiteralRun)> = None;
        let mut i = 0;
        while i < self.toks.len() {
            let start = i;
            let mut text = String::new();
            while let Some(PTok::Lit(c)) = self.toks.get(i) {
                text.push(*c);
                i += 1;
            }
            if text.is_empty() {
                i += 1;
                continue;
            }
            let run = LiteralRun {
                text,
                at_start: start == 0,
                at_end: i == self.toks.len(),
            };
            let score = run.text.len() + usize::from(run.at_start || run.at_end);
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, run));
            }
        }
        best.map(|(_, r)| r)
    }

    /// Whether the whole `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        if let Some((n, star)) = self.length {
            // Characters, not bytes: `?` is one character.
            return if star {
                value.len() >= 4 * n || value.chars().count() >= n
            } else {
                value.len() >= n && value.len() <= 4 * n && value.chars().count() == n
            };
        }
        match &self.parts {
            Some(p) if !self.ci => star_match(p, value.as_bytes(), |h, i, _| h.find(i)),
            Some(p) if value.is_ascii() => star_match(p, value.as_bytes(), |_, hay, needle| {
                find_ascii_ci(hay, needle)
            }),
            _ if self.ci => glob(&self.toks, value.chars().map(fold)),
            _ => glob(&self.toks, value.chars()),
        }
    }
}

/// `*`-only patterns: pieces must appear in order; the first is a prefix and the last a
/// suffix when the pattern is anchored there. Leftmost matching of each piece is optimal.
fn star_match(
    p: &StarParts,
    hay: &[u8],
    find: impl Fn(&memmem::Finder<'static>, &[u8], &[u8]) -> Option<usize>,
) -> bool {
    let n = p.pieces.len();
    if n == 0 {
        // "" matches only ""; "*" matches anything.
        return !(p.anchored_start && p.anchored_end) || hay.is_empty();
    }
    let mut lo = 0usize;
    let mut hi = hay.len();
    let mut first = 0usize;
    let mut last = n;
    if p.anchored_start {
        let piece = p.pieces[0].as_bytes();
        if hay.len() < piece.len() || find(&p.finders[0], &hay[..piece.len()], piece) != Some(0) {
            return false;
        }
        lo = piece.len();
        first = 1;
    }
    if p.anchored_end && last > first {
        let piece = p.pieces[n - 1].as_bytes();
        if hi < lo + piece.len()
            || find(&p.finders[n - 1], &hay[hi - piece.len()..], piece) != Some(0)
        {
            return false;
        }
        hi -= piece.len();
        last = n - 1;
    } else if p.anchored_end && n == 1 && p.anchored_start {
        // A literal with no stars at all: the prefix must be the whole value.
        return lo == hay.len();
    }
    for i in first..last {
        let piece = p.pieces[i].as_bytes();
        match find(&p.finders[i], &hay[lo..hi], piece) {
            Some(at) => lo += at + piece.len(),
            None => return false,
        }
    }
    true
}

/// Naive ASCII case-insensitive search of a folded needle in an ASCII haystack.
fn find_ascii_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() > hay.len() {
        return None;
    }
    (0..=hay.len() - needle.len()).find(|&i| {
        hay[i..i + needle.len()]
            .iter()
            .zip(needle)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
    })
}

/// General glob over a character iterator, with single-star backtracking (linear in
/// practice, quadratic at worst; no allocation).
fn glob<I: Iterator<Item = char> + Clone>(pat: &[PTok], text: I) -> bool {
    let mut p = 0usize;
    let mut t = text;
    let mut star: Option<(usize, I)> = None;
    loop {
        let mut next = t.clone();
        match next.next() {
            Some(c) => {
                if let Some(&tok) = pat.get(p) {
                    match tok {
                        PTok::Star => {
                            star = Some((p + 1, t.clone()));
                            p += 1;
                            continue;
                        }
                        PTok::One => {
                            p += 1;
                            t = next;
                            continue;
                        }
                        PTok::Lit(x) if x == c => {
                            p += 1;
                            t = next;
                            continue;
                        }
                        PTok::Lit(_) => {}
                    }
                }
                match &mut star {
                    Some((sp, st)) => {
                        st.next();
                        t = st.clone();
                        p = *sp;
                    }
                    None => return false,
                }
            }
            None => return pat[p.min(pat.len())..].iter().all(|t| *t == PTok::Star),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_table() {
        // (pattern, ci, value, expected)
        let cases: &[(&str, bool, &str, bool)] = &[
            ("*", false, "", true),
            ("*", false, "abc", true),
            ("", false, "", true),
            ("", false, "a", false),
            ("?*", false, "", false),
            ("?*", false, "x", true),
            ("*?", true, "é", true),
            ("??", false, "éa", true),
            ("??", false, "éab", false),
            ("?*?", false, "é", false),
            ("?*?", false, "éé", true),
            ("**", false, "", true),
            ("abc", false, "abc", true),
            ("abc", false, "abcd", false),
            ("abc", false, "ABC", false),
            ("abc", true, "ABC", true),
            ("a*", false, "abc", true),
            ("a*", false, "bac", false),
            ("*c", false, "abc", true),
            ("*c", false, "abcd", false),
            ("*b*", false, "abc", true),
            ("*b*", false, "acd", false),
            ("a*c", false, "ac", true),
            ("a*c", false, "abbbc", true),
            ("a*c", false, "abcb", false),
            ("ab*ba", false, "aba", false),
            ("ab*ba", false, "abba", true),
            ("a*b*c", false, "axxbyyc", true),
            ("a*b*c", false, "axxcyyb", false),
            ("*-*d*", true, "base64 -D", true),
            ("*-*d*", false, "base64 -D", false),
            ("a?c", false, "abc", true),
            ("a?c", false, "ac", false),
            ("a?c", false, "aéc", true),
            ("?", false, "é", true),
            ("??", false, "é", false),
            ("*ssh*", true, "/USR/BIN/SSH", true),
            ("*SSH*", true, "/usr/bin/ssh", true),
            ("*ß*", true, "STRASSE", false),
            ("*é*", true, "CAFÉ", true),
            ("*é", false, "CAFÉ", false),
            ("k*", true, "\u{212A}elvin", true),
            ("*x?z*", true, "aaXyZbb", true),
            ("*a*a*a*b", false, "aaaaaaaaaaaaaaaaaaaaaaaaa", false),
            (r"C:\Windows\*", true, r"c:\windows\system32", true),
        ];
        for &(pat, ci, value, want) in cases {
            assert_eq!(
                Wildcard::new(pat, ci).matches(value),
                want,
                "{pat:?} ci={ci} {value:?}"
            );
        }
    }

    /// Every value a pattern matches holds its required literal where it says.
    #[test]
    fn required_literal_table() {
        /// (text, at_start, at_end)
        type Run = (&'static str, bool, bool);
        // (pattern, ci, the run or none, values that match)
        let cases: &[(&str, bool, Option<Run>, &[&str])] = &[
            (
                "/tmp/*",
                false,
                Some(("/tmp/", true, false)),
                &["/tmp/", "/tmp/x"],
            ),
            (
                "*.cgi",
                false,
                Some((".cgi", false, true)),
                &[".cgi", "a.cgi"],
            ),
            ("*abc*de*", false, Some(("abc", false, false)), &["xabcyde"]),
            (
                "ab*cde",
                false,
                Some(("cde", false, true)),
                &["abcde", "abxcde"],
            ),
            (
                "a?bcd*",
                false,
                Some(("bcd", false, false)),
                &["axbcd", "aébcdz"],
            ),
            (
                "PY*",
                true,
                Some(("py", true, false)),
                &["python", "PYTHON"],
            ),
            ("*É*", true, Some(("é", false, false)), &["café", "CAFÉ"]),
            ("a\\*", false, Some(("a\\", true, false)), &["a\\", "a\\x"]),
            ("abc", false, Some(("abc", true, true)), &["abc"]),
            ("?*", false, None, &["x"]),
            ("*", false, None, &[""]),
        ];
        for &(pat, ci, want, values) in cases {
            let w = Wildcard::new(pat, ci);
            let got = w.required_literal();
            let want = want.map(|(t, s, e)| LiteralRun {
                text: t.into(),
                at_start: s,
                at_end: e,
            });
            assert_eq!(got, want, "{pat:?}");
            for v in values {
                assert!(w.matches(v), "{pat:?} {v:?}");
                if let Some(run) = &got {
                    let f = if ci { fold_str(v) } else { v.to_string() };
                    let t = run.text.as_str();
                    assert!(
                        f.contains(t)
                            && (!run.at_start || f.starts_with(t))
                            && (!run.at_end || f.ends_with(t)),
                        "{pat:?} {v:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn folding() {
        assert!(eq_folded("SSH", "ssh"));
        assert!(eq_folded("CAFÉ", "café"));
        assert!(!eq_folded("ssh", "sshd"));
        assert_eq!(fold('İ'), 'İ');
        assert_eq!(fold('Σ'), 'σ');
    }
}
