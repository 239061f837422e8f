//! EQL tokens, following Elasticsearch's `EqlBase.g4` lexer.
//!
//! Differences from the grammar are deliberate and only ever reject more: old-style
//! single-quoted and `?"…"` strings are errors (Elasticsearch rejects them too, later).

use super::QueryError;

/// A byte range in the query text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The bytes `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    /// The span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// One token kind. Keywords are lowercase, as in every published rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Ident(String),
    /// A backtick-quoted identifier piece (may contain dots, slashes, …).
    Quoted(String),
    /// A string literal, escapes already decoded.
    Str(String),
    Int(i64),
    Float(f64),
    /// `?` before a field name.
    Optional,
    // keywords
    And,
    Or,
    Not,
    In,
    InCi,
    Like,
    LikeCi,
    Regex,
    RegexCi,
    Where,
    Any,
    Sequence,
    Join,
    By,
    With,
    Until,
    Maxspan,
    Of,
    True,
    False,
    Null,
    /// `name~` directly followed by `(`: an insensitive function name.
    TildeIdent(String),
    // punctuation
    Colon,
    Eq,
    Neq,
    Assign,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Dot,
    Comma,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Pipe,
    Bang,
    Eof,
}

impl Tok {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier `{s}`"),
            Tok::Quoted(s) => format!("identifier `{s}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Int(_) | Tok::Float(_) => "a number".into(),
            Tok::Eof => "end of query".into(),
            Tok::TildeIdent(s) => format!("`{s}~`"),
            other => format!("`{}`", other.text()),
        }
    }

    fn text(&self) -> &'static str {
        match self {
            Tok::Optional => "?",
            Tok::And => "and",
            Tok::Or => "or",
            Tok::Not => "not",
            Tok::In => "in",
            Tok::InCi => "in~",
            Tok::Like => "like",
            Tok::LikeCi => "like~",
            Tok::Regex => "regex",
            Tok::RegexCi => "regex~",
            Tok::Where => "where",
            Tok::Any => "any",
            Tok::Sequence => "sequence",
            Tok::Join => "join",
            Tok::By => "by",
            Tok::With => "with",
            Tok::Until => "until",
            Tok::Maxspan => "maxspan",
            Tok::Of => "of",
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::Colon => ":",
            Tok::Eq => "==",
            Tok::Neq => "!=",
            Tok::Assign => "=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::Dot => ".",
            Tok::Comma => ",",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Pipe => "|",
            Tok::Bang => "!",
            _ => "?",
        }
    }

    /// Keywords may still name a field piece after a dot (`event.sequence`).
    pub fn keyword_text(&self) -> Option<&'static str> {
        match self {
            Tok::And
            | Tok::Or
            | Tok::Not
            | Tok::In
            | Tok::Like
            | Tok::Regex
            | Tok::Where
            | Tok::Any
            | Tok::Sequence
            | Tok::Join
            | Tok::By
            | Tok::With
            | Tok::Until
            | Tok::Maxspan
            | Tok::Of
            | Tok::True
            | Tok::False
            | Tok::Null => Some(self.text()),
            _ => None,
        }
    }
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub span: Span,
}

/// Splits the whole query into tokens (comments and whitespace dropped), ending with `Eof`.
pub fn tokenize(src: &str) -> Result<Vec<Token>, QueryError> {
    let mut lx = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<u8> {
        self.b.get(self.pos + k).copied()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            span: Span::new(start, self.pos),
        });
    }

    fn err(&self, start: usize, end: usize, msg: impl Into<String>) -> QueryError {
        QueryError::new(
            Span::new(start, end.max(start + 1).min(self.b.len().max(start + 1))),
            msg,
        )
    }

    fn run(&mut self) -> Result<(), QueryError> {
        while self.pos < self.b.len() {
            let start = self.pos;
            let c = self.b[self.pos];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'/' if self.peek(1) == Some(b'/') => {
                    while self.pos < self.b.len() && self.b[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'/' if self.peek(1) == Some(b'*') => self.block_comment()?,
                b'"' => self.string()?,
                b'\'' => {
                    return Err(self.err(
                        start,
                        start + 1,
                        "use double quotes [\"] to define string literals, not single quotes [']",
                    ));
                }
                b'`' => self.quoted_ident()?,
                b'?' => {
                    if matches!(self.peek(1), Some(b'"') | Some(b'\'')) {
                        return Err(self.err(
                            start,
                            start + 2,
                            "the ?\"...\" raw string syntax is not supported; use \"\"\"...\"\"\"",
                        ));
                    }
                    self.pos += 1;
                    self.push(Tok::Optional, start);
                }
                b'0'..=b'9' => self.number()?,
                b'.' if matches!(self.peek(1), Some(b'0'..=b'9')) => self.number()?,
                b'a'..=b'z' | b'A'..=b'Z' | b'_' | b'@' => self.ident(),
                _ => self.punct()?,
            }
        }
        let end = self.b.len();
        self.out.push(Token {
            tok: Tok::Eof,
            span: Span::new(end, end),
        });
        Ok(())
    }

    /// `/* … */`, nesting as the grammar's recursive BRACKETED_COMMENT does.
    fn block_comment(&mut self) -> Result<(), QueryError> {
        let start = self.pos;
        let mut depth = 0usize;
        while self.pos < self.b.len() {
            if self.b[self.pos] == b'/' && self.peek(1) == Some(b'*') {
                depth += 1;
                self.pos += 2;
            } else if self.b[self.pos] == b'*' && self.peek(1) == Some(b'/') {
                depth -= 1;
                self.pos += 2;
                if depth == 0 {
                    return Ok(());
                }
            } else {
                self.pos += 1;
            }
        }
        Err(self.err(start, start + 2, "unterminated /* comment"))
    }

    fn string(&mut self) -> Result<(), QueryError> {
        let start = self.pos;
        if self.b[self.pos..].starts_with(b"\"\"\"") {
            // Raw string: no escapes, single line, closing `"""` plus up to two more quotes
            // that belong to the content.
            let body = start + 3;
            let mut i = body;
            loop {
                match self.b.get(i) {
                    None | Some(b'\n') | Some(b'\r') => {
                        return Err(self.err(
                            start,
                            start + 3,
                            "unterminated raw string (\"\"\"...\"\"\" must close on the same line)",
                        ));
                    }
                    Some(b'"') if self.b[i..].starts_with(b"\"\"\"") => break,
                    _ => i += 1,
                }
            }
            let mut close = i;
            let mut extra = 0;
            while extra < 2 && self.b.get(close + 3) == Some(&b'"') {
                close += 1;
                extra += 1;
            }
            let text = self.src[body..close].to_string();
            self.pos = close + 3;
            self.push(Tok::Str(text), start);
            return Ok(());
        }
        self.pos += 1;
        let mut out = String::new();
        let mut run = self.pos;
        loop {
            let Some(c) = self.peek(0) else {
                return Err(self.err(start, start + 1, "unterminated string"));
            };
            match c {
                b'"' => {
                    out.push_str(&self.src[run..self.pos]);
                    self.pos += 1;
                    break;
                }
                b'\n' | b'\r' => {
                    return Err(self.err(
                        start,
                        start + 1,
                        "unterminated string (a \"...\" string cannot span lines; write \\n)",
                    ));
                }
                b'\\' => {
                    out.push_str(&self.src[run..self.pos]);
                    let esc = self.pos;
                    let decoded = match self.peek(1) {
                        Some(b'b') => '\u{8}',
                        Some(b't') => '\t',
                        Some(b'n') => '\n',
                        Some(b'f') => '\u{c}',
                        Some(b'r') => '\r',
                        Some(b'"') => '"',
                        Some(b'\'') => '\'',
                        Some(b'\\') => '\\',
                        Some(b'u') => {
                            let ch = self.unicode_escape(esc)?;
                            out.push(ch);
                            run = self.pos;
                            continue;
                        }
                        _ => {
                            let end = esc
                                + 1
                                + self.src[esc + 1..].chars().next().map_or(0, char::len_utf8);
                            return Err(self.err(
                                esc,
                                end,
                                "invalid escape sequence (allowed: \\b \\t \\n \\f \\r \\\" \\' \\\\ \\u{hex})",
                            ));
                        }
                    };
                    out.push(decoded);
                    self.pos += 2;
                    run = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        self.push(Tok::Str(out), start);
        Ok(())
    }

    /// `\u{XXXX}`: 2 to 8 hex digits naming a Unicode scalar value.
    fn unicode_escape(&mut self, esc: usize) -> Result<char, QueryError> {
        let bad = |me: &Self, end: usize| {
            me.err(
                esc,
                end,
                "invalid unicode escape (expected \\u{XXXX} with 2 to 8 hex digits)",
            )
        };
        if self.peek(2) != Some(b'{') {
            return Err(bad(self, esc + 2));
        }
        let digits = esc + 3;
        let mut i = digits;
        while i < self.b.len() && self.b[i].is_ascii_hexdigit() {
            i += 1;
        }
        if self.b.get(i) != Some(&b'}') || !(2..=8).contains(&(i - digits)) {
            return Err(bad(self, i.min(self.b.len())));
        }
        let v = u32::from_str_radix(&self.src[digits..i], 16).map_err(|_| bad(self, i + 1))?;
        let ch = char::from_u32(v).ok_or_else(|| {
            self.err(
                esc,
                i + 1,
                format!("\\u{{{v:X}}} is not a Unicode scalar value"),
            )
        })?;
        self.pos = i + 1;
        Ok(ch)
    }

    fn quoted_ident(&mut self) -> Result<(), QueryError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek(0) {
                None => return Err(self.err(start, start + 1, "unterminated `quoted` identifier")),
                Some(b'`') if self.peek(1) == Some(b'`') => {
                    out.push('`');
                    self.pos += 2;
                }
                Some(b'`') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
                    out.push(ch);
                    self.pos += ch.len_utf8();
                }
            }
        }
        if out.is_empty() {
            return Err(self.err(start, self.pos, "empty `quoted` identifier"));
        }
        self.push(Tok::Quoted(out), start);
        Ok(())
    }

    fn number(&mut self) -> Result<(), QueryError> {
        let start = self.pos;
        let digits = |me: &mut Self| {
            while matches!(me.peek(0), Some(b'0'..=b'9')) {
                me.pos += 1;
            }
        };
        digits(self);
        let mut float = false;
        if self.peek(0) == Some(b'.')
            && !matches!(self.peek(1), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        {
            float = true;
            self.pos += 1;
            digits(self);
        }
        if matches!(self.peek(0), Some(b'e' | b'E'))
            && (matches!(self.peek(1), Some(b'0'..=b'9'))
                || (matches!(self.peek(1), Some(b'+' | b'-'))
                    && matches!(self.peek(2), Some(b'0'..=b'9'))))
        {
            float = true;
            self.pos += 2;
            digits(self);
        }
        let text = &self.src[start..self.pos];
        let tok = if float {
            Tok::Float(
                text.parse()
                    .map_err(|_| self.err(start, self.pos, "invalid number"))?,
            )
        } else {
            Tok::Int(text.parse().map_err(|_| {
                self.err(
                    start,
                    self.pos,
                    "integer out of range (must fit in a signed 64-bit long)",
                )
            })?)
        };
        self.push(tok, start);
        Ok(())
    }

    fn ident(&mut self) {
        let start = self.pos;
        self.pos += 1;
        while matches!(
            self.peek(0),
            Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_')
        ) {
            self.pos += 1;
        }
        let word = &self.src[start..self.pos];
        if self.peek(0) == Some(b'~') {
            let tilde = match word {
                "in" => Some(Tok::InCi),
                "like" => Some(Tok::LikeCi),
                "regex" => Some(Tok::RegexCi),
                _ => None,
            };
            self.pos += 1;
            let tok = tilde.unwrap_or_else(|| Tok::TildeIdent(word.to_string()));
            self.push(tok, start);
            return;
        }
        let tok = match word {
            "and" => Tok::And,
            "or" => Tok::Or,
            "not" => Tok::Not,
            "in" => Tok::In,
            "like" => Tok::Like,
            "regex" => Tok::Regex,
            "where" => Tok::Where,
            "any" => Tok::Any,
            "sequence" => Tok::Sequence,
            "join" => Tok::Join,
            "by" => Tok::By,
            "with" => Tok::With,
            "until" => Tok::Until,
            "maxspan" => Tok::Maxspan,
            "of" => Tok::Of,
            "true" => Tok::True,
            "false" => Tok::False,
            "null" => Tok::Null,
            _ => Tok::Ident(word.to_string()),
        };
        self.push(tok, start);
    }

    fn punct(&mut self) -> Result<(), QueryError> {
        let start = self.pos;
        let two = (self.b[self.pos], self.peek(1));
        let (tok, len) = match two {
            (b'=', Some(b'=')) => (Tok::Eq, 2),
            (b'!', Some(b'=')) => (Tok::Neq, 2),
            (b'<', Some(b'=')) => (Tok::Le, 2),
            (b'>', Some(b'=')) => (Tok::Ge, 2),
            (b'=', _) => (Tok::Assign, 1),
            (b'!', _) => (Tok::Bang, 1),
            (b'<', _) => (Tok::Lt, 1),
            (b'>', _) => (Tok::Gt, 1),
            (b':', _) => (Tok::Colon, 1),
            (b'+', _) => (Tok::Plus, 1),
            (b'-', _) => (Tok::Minus, 1),
            (b'*', _) => (Tok::Star, 1),
            (b'/', _) => (Tok::Slash, 1),
            (b'%', _) => (Tok::Percent, 1),
            (b'.', _) => (Tok::Dot, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'|', _) => (Tok::Pipe, 1),
            _ => {
                let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
                return Err(self.err(
                    start,
                    start + ch.len_utf8(),
                    format!("unexpected character {:?}", ch),
                ));
            }
        };
        self.pos += len;
        self.push(tok, start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            toks(r#""a\tb\nc\r\"\\\'\b\f\u{41}\u{1F600}""#),
            vec![
                Tok::Str("a\tb\nc\r\"\\'\u{8}\u{c}A\u{1F600}".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn raw_strings_keep_backslashes_and_trailing_quotes() {
        assert_eq!(
            toks(r#""""a\.b""""#),
            vec![Tok::Str(r"a\.b".into()), Tok::Eof]
        );
        assert_eq!(
            toks(r#""""say "hi"""""#),
            vec![Tok::Str("say \"hi\"".into()), Tok::Eof]
        );
        assert_eq!(toks(r#""""""""#), vec![Tok::Str("".into()), Tok::Eof]);
    }

    #[test]
    fn comments_nest_and_are_skipped() {
        assert_eq!(
            toks("a /* x /* y */ z */ // tail\n b"),
            vec![Tok::Ident("a".into()), Tok::Ident("b".into()), Tok::Eof]
        );
    }

    #[test]
    fn operators_and_tilde_keywords() {
        assert_eq!(
            toks("== != < <= > >= : in~ like~ regex~ startsWith~( ?x"),
            vec![
                Tok::Eq,
                Tok::Neq,
                Tok::Lt,
                Tok::Le,
                Tok::Gt,
                Tok::Ge,
                Tok::Colon,
                Tok::InCi,
                Tok::LikeCi,
                Tok::RegexCi,
                Tok::TildeIdent("startsWith".into()),
                Tok::LParen,
                Tok::Optional,
                Tok::Ident("x".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers_and_quoted_identifiers() {
        assert_eq!(
            toks("1 2.5 1e3 .5 3s `a/b``c`"),
            vec![
                Tok::Int(1),
                Tok::Float(2.5),
                Tok::Float(1000.0),
                Tok::Float(0.5),
                Tok::Int(3),
                Tok::Ident("s".into()),
                Tok::Quoted("a/b`c".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn lexer_errors_have_positions() {
        let cases: &[(&str, usize, &str)] = &[
            ("a == 'x'", 5, "single quotes"),
            ("a == \"x", 5, "unterminated string"),
            ("a == \"x\ny\"", 5, "cannot span lines"),
            ("a == \"\\q\"", 6, "invalid escape"),
            ("a == \"\\u{1}\"", 6, "unicode escape"),
            ("a == \"\\u{D800}\"", 6, "not a Unicode scalar"),
            ("/* open", 0, "unterminated /*"),
            ("a == ?\"x\"", 5, "raw string syntax"),
            ("a # b", 2, "unexpected character"),
            ("x == 99999999999999999999", 5, "out of range"),
            ("x == \"\"\"abc\n\"\"\"", 5, "raw string"),
        ];
        for (src, at, msg) in cases {
            let e = tokenize(src).unwrap_err();
            assert_eq!(e.span.start, *at, "{src}: {e:?}");
            assert!(e.message.contains(msg), "{src}: {}", e.message);
        }
    }
}
