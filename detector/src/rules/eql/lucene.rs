//! Lucene regular expressions (what Elasticsearch's `regexp` query and EQL `regex` use)
//! translated to the `regex` crate's syntax, anchored for a full match.
//!
//! Supported: literals, `.`, `?`, `+`, `*`, `{n}`, `{n,}`, `{n,m}`, `|`, `(…)`, `[…]` classes
//! with ranges and `^` negation, `"…"` quoted literals, `\c` escapes, and the `\d \D \s \S
//! \w \W` classes. Lucene's optional operators that Elasticsearch enables (`@` any string,
//! `#` empty language, `&` intersection, `~` complement, `<n-m>` numeric ranges) have no
//! `regex` crate equivalent and are rejected with their offset. `^` and `$` are ordinary
//! characters in Lucene and are translated as literals.

/// A translation failure: byte offset in the pattern and reason.
#[derive(Debug, PartialEq)]
pub struct LuceneError {
    pub offset: usize,
    pub message: String,
}

/// Translates `pat` into an anchored `regex` pattern (`ci` adds `(?i)`).
pub fn translate(pat: &str, ci: bool) -> Result<String, LuceneError> {
    let mut out = String::with_capacity(pat.len() + 16);
    out.push_str(if ci { "(?is)\\A(?:" } else { "(?s)\\A(?:" });
    let chars: Vec<(usize, char)> = pat.char_indices().collect();
    let mut i = 0;
    let mut depth = 0i32;
    let err = |offset: usize, message: String| Err(LuceneError { offset, message });
    while i < chars.len() {
        let (off, c) = chars[i];
        match c {
            '.' | '?' | '+' | '*' | '|' => out.push(c),
            '(' => {
                depth += 1;
                out.push_str("(?:");
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return err(off, "unbalanced `)`".into());
                }
                out.push(')');
            }
            '{' => {
                let close = chars[i..]
                    .iter()
                    .position(|&(_, c)| c == '}')
                    .map(|k| i + k);
                let Some(close) = close else {
                    return err(off, "unclosed `{`".into());
                };
                let body: String = chars[i + 1..close].iter().map(|&(_, c)| c).collect();
                let ok = !body.is_empty()
                    && body.split(',').count() <= 2
                    && body.split(',').next().is_some_and(|a| !a.is_empty())
                    && body.chars().all(|c| c.is_ascii_digit() || c == ',');
                if !ok {
                    return err(off, format!("invalid repetition `{{{body}}}`"));
                }
                out.push('{');
                out.push_str(&body);
                out.push('}');
                i = close;
            }
            '[' => i = class(&chars, i, &mut out)?,
            '"' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&(_, c)| c == '"')
                    .map(|k| i + 1 + k);
                let Some(close) = close else {
                    return err(off, "unclosed `\"` in regex".into());
                };
                let lit: String = chars[i + 1..close].iter().map(|&(_, c)| c).collect();
                out.push_str("(?:");
                out.push_str(&regex::escape(&lit));
                out.push(')');
                i = close;
            }
            '\\' => {
                let Some(&(_, n)) = chars.get(i + 1) else {
                    return err(off, "trailing `\\` in regex".into());
                };
                match n {
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                        out.push('\\');
                        out.push(n);
                    }
                    n => out.push_str(&regex::escape(&n.to_string())),
                }
                i += 1;
            }
            '@' | '#' | '&' | '~' | '<' | '>' => {
                return err(
                    off,
                    format!(
                        "the Lucene regex operator `{c}` is not supported (escape it as `\\{c}` for a literal)"
                    ),
                );
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    if depth != 0 {
        return err(pat.len(), "unclosed `(` in regex".into());
    }
    out.push_str(")\\z");
    Ok(out)
}

/// A `[...]` class starting at `chars[i]`; returns the index of the closing `]`.
fn class(chars: &[(usize, char)], start: usize, out: &mut String) -> Result<usize, LuceneError> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i).map(|c| c.1) == Some('^') {
        out.push('^');
        i += 1;
    }
    let mut empty = true;
    while i < chars.len() {
        let (off, c) = chars[i];
        match c {
            ']' if !empty => {
                out.push(']');
                return Ok(i);
            }
            '-' if !empty && chars.get(i + 1).is_some_and(|c| c.1 != ']') => out.push('-'),
            '\\' => {
                let Some(&(_, n)) = chars.get(i + 1) else {
                    return Err(LuceneError {
                        offset: off,
                        message: "trailing `\\` in class".into(),
                    });
                };
                match n {
                    'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                        out.push('\\');
                        out.push(n);
                    }
                    n => push_class_char(out, n),
                }
                i += 1;
            }
            c => push_class_char(out, c),
        }
        empty = false;
        i += 1;
    }
    Err(LuceneError {
        offset: chars[start].0,
        message: "unclosed `[` in regex".into(),
    })
}

/// A literal inside a `regex` class: escape everything the crate treats specially there.
fn push_class_char(out: &mut String, c: char) {
    if matches!(c, '[' | ']' | '\\' | '-' | '^' | '&' | '~') {
        out.push('\\');
    }
    out.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pat: &str, ci: bool, s: &str) -> bool {
        regex::Regex::new(&translate(pat, ci).unwrap())
            .unwrap()
            .is_match(s)
    }

    #[test]
    fn full_match_semantics() {
        let cases: &[(&str, bool, &str, bool)] = &[
            ("abc", false, "abc", true),
            ("abc", false, "xabcx", false),
            (".*abc.*", false, "xabcx", true),
            ("a.c", false, "a\nc", true),
            ("[0-9]{1,3}", false, "123", true),
            ("[0-9]{1,3}", false, "1234", false),
            ("[^a-c]+", false, "xyz", true),
            ("[^a-c]+", false, "xaz", false),
            ("(ab|cd)+", false, "abcdab", true),
            ("\"a.b\"", false, "a.b", true),
            ("\"a.b\"", false, "axb", false),
            ("a\\.b", false, "a.b", true),
            ("a\\.b", false, "axb", false),
            ("ABC", true, "abc", true),
            ("ABC", false, "abc", false),
            ("\\d+", false, "42", true),
            ("^a$", false, "^a$", true),
            ("[a\\]]+", false, "a]a", true),
            ("[-a]+", false, "-a", true),
            ("a{2}", false, "aa", true),
            (
                ".*[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}:[0-9]{1,5}.*",
                false,
                "ssh -L 10.0.0.1:22",
                true,
            ),
        ];
        for &(p, ci, s, want) in cases {
            assert_eq!(m(p, ci, s), want, "{p:?} {s:?}");
        }
    }

    #[test]
    fn untranslatable_features_are_rejected_with_offsets() {
        let cases: &[(&str, usize, &str)] = &[
            ("ab@", 2, "`@`"),
            ("a#", 1, "`#`"),
            ("a&b", 1, "`&`"),
            ("~a", 0, "`~`"),
            ("<1-5>", 0, "`<`"),
            ("(ab", 3, "unclosed `(`"),
            ("ab)", 2, "unbalanced"),
            ("[ab", 0, "unclosed `[`"),
            ("a{x}", 1, "invalid repetition"),
            ("a\\", 1, "trailing"),
        ];
        for &(p, at, msg) in cases {
            let e = translate(p, false).unwrap_err();
            assert_eq!(e.offset, at, "{p}: {e:?}");
            assert!(e.message.contains(msg), "{p}: {}", e.message);
        }
    }
}
