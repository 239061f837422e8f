//! Runtime values of EQL value expressions (function arguments and results), with the
//! Java semantics Elasticsearch's EQL functions have: `int` and `long` are distinct (an
//! `int` operation that overflows fails, a `long` one does not overflow into it), strings
//! are measured and indexed in UTF-16 code units, numbers print as Java's `toString`.
//!
//! Strings borrow from the document where they can ([`Cow`]), so evaluating
//! `length(process.name)` or `substring(process.name, 0, 2)` does not allocate.

use std::borrow::Cow;
use std::cmp::Ordering;

/// One value. `Null` is EQL's `null`: a missing field, a `null` literal, or a function that
/// has no result (`indexOf` without a match, a division by zero).
#[derive(Clone, Debug, PartialEq)]
pub enum Val<'a> {
    Null,
    Str(Cow<'a, str>),
    /// Java `int`: integer literals that fit, `length`, `indexOf`.
    Int(i32),
    /// Java `long`: `long` fields, larger literals, `number`.
    Long(i64),
    Double(f64),
    Bool(bool),
}

impl<'a> Val<'a> {
    /// Whether this is a number.
    pub fn is_num(&self) -> bool {
        matches!(self, Val::Int(_) | Val::Long(_) | Val::Double(_))
    }

    /// The value as Java's `Number.intValue()` (a narrowing cast for `long` and `double`),
    /// for positions and radixes.
    pub fn int_value(&self) -> Option<i32> {
        match *self {
            Val::Int(n) => Some(n),
            Val::Long(n) => Some(n as i32),
            Val::Double(x) => Some(x as i32),
            _ => None,
        }
    }

    /// Detaches the value from the document it borrows from.
    pub fn into_owned(self) -> Val<'static> {
        match self {
            Val::Null => Val::Null,
            Val::Str(s) => Val::Str(Cow::Owned(s.into_owned())),
            Val::Int(n) => Val::Int(n),
            Val::Long(n) => Val::Long(n),
            Val::Double(x) => Val::Double(x),
            Val::Bool(b) => Val::Bool(b),
        }
    }

    /// Java's `toString()` of the value (`None` for null): what `string()` and `concat()`
    /// produce.
    pub fn to_java_string(&self) -> Option<Cow<'_, str>> {
        Some(match self {
            Val::Null => return None,
            Val::Str(s) => Cow::Borrowed(&**s),
            Val::Int(n) => Cow::Owned(n.to_string()),
            Val::Long(n) => Cow::Owned(n.to_string()),
            Val::Double(x) => Cow::Owned(java_double_to_string(*x)),
            Val::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        })
    }
}

/// Java's `Double.toString`: `1.0`, `42.5`, `1.0E7`, `1.5E-5`, `NaN`, `Infinity`.
/// Decimal notation for magnitudes in [10⁻³, 10⁷), computerized scientific otherwise;
/// the digits are the shortest that read back to the same double (as in Java 19+).
pub fn java_double_to_string(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let a = x.abs();
    if (1e-3..1e7).contains(&a) {
        let mut s = format!("{x}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        return s;
    }
    // Rust's `{:e}` gives the shortest digits as `d.ddde±x` or `de±x`.
    let e = format!("{x:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let mant = if mant.contains('.') {
        mant.to_string()
    } else {
        format!("{mant}.0")
    };
    format!("{mant}E{exp}")
}

/// Java's `Double.compare`: NaN equals itself and sorts above everything, `-0.0 < 0.0`.
pub fn java_double_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.total_cmp(&b),
    }
}

/// Elasticsearch's comparison of two non-null values (QL `Comparisons.compare`): numbers
/// numerically (as doubles when either is one), strings by code point (Java compares
/// UTF-16 units; the orders differ only between surrogate pairs and U+E000–U+FFFF),
/// booleans `false < true`. `None` when the types cannot be compared.
pub fn compare(l: &Val<'_>, r: &Val<'_>) -> Option<Ordering> {
    Some(match (l, r) {
        (Val::Str(a), Val::Str(b)) => a.as_ref().cmp(b.as_ref()),
        (Val::Bool(a), Val::Bool(b)) => a.cmp(b),
        (Val::Double(_), _) | (_, Val::Double(_)) => java_double_cmp(as_f64(l)?, as_f64(r)?),
        _ => as_i64(l)?.cmp(&as_i64(r)?),
    })
}

fn as_f64(v: &Val<'_>) -> Option<f64> {
    match *v {
        Val::Int(n) => Some(n as f64),
        Val::Long(n) => Some(n as f64),
        Val::Double(x) => Some(x),
        _ => None,
    }
}

fn as_i64(v: &Val<'_>) -> Option<i64> {
    match *v {
        Val::Int(n) => Some(n as i64),
        Val::Long(n) => Some(n),
        _ => None,
    }
}

/// The four arithmetic operations and the remainder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// Java integer arithmetic on `int` or `long` operands: `None` where Java throws
/// (overflow, a zero divisor). `MIN_VALUE / -1` wraps and `% -1` is 0, as in Java.
macro_rules! integer_arith {
    ($op:expr, $a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        match $op {
            Arith::Add => a.checked_add(b),
            Arith::Sub => a.checked_sub(b),
            Arith::Mul => a.checked_mul(b),
            Arith::Div => (b != 0).then(|| a.wrapping_div(b)),
            Arith::Mod => (b != 0).then(|| a.wrapping_rem(b)),
        }
    }};
}

/// Elasticsearch's arithmetic (QL `Arithmetics`): widen to `double` if either operand is
/// one (IEEE results: `1 / 0.0` is infinity), else to `long` if either is one, else `int`.
/// Integer overflow and integer division by zero throw in Elasticsearch (the search
/// fails); here they give null, so the event cannot match. Division truncates toward zero.
pub fn arith(op: Arith, l: &Val<'_>, r: &Val<'_>) -> Val<'static> {
    if !l.is_num() || !r.is_num() {
        return Val::Null;
    }
    if matches!(l, Val::Double(_)) || matches!(r, Val::Double(_)) {
        let (a, b) = (as_f64(l).unwrap_or(0.0), as_f64(r).unwrap_or(0.0));
        return Val::Double(match op {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
            Arith::Mod => a % b,
        });
    }
    if let (Val::Int(a), Val::Int(b)) = (l, r) {
        return integer_arith!(op, *a, *b).map_or(Val::Null, Val::Int);
    }
    let (a, b) = (as_i64(l).unwrap_or(0), as_i64(r).unwrap_or(0));
    integer_arith!(op, a, b).map_or(Val::Null, Val::Long)
}

/// Length in UTF-16 code units (Java's `String.length()`).
#[inline]
pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// Where UTF-16 position `pos` (at most the length) falls in `s`: the byte offset of the
/// character starting there, or `Err(byte offset of the character it splits)` when `pos`
/// is inside a surrogate pair.
pub fn utf16_to_byte(s: &str, pos: usize) -> Result<usize, usize> {
    if s.is_ascii() {
        return Ok(pos.min(s.len()));
    }
    let mut units = 0;
    for (b, c) in s.char_indices() {
        if units == pos {
            return Ok(b);
        }
        units += c.len_utf16();
        if units > pos {
            return Err(b);
        }
    }
    Ok(s.len())
}

/// UTF-16 position of byte offset `b` (a character boundary) in `s`.
pub fn byte_to_utf16(s: &str, b: usize) -> usize {
    utf16_len(&s[..b])
}

/// `s[start..end]` in UTF-16 units (`start <= end <= length`). A bound inside a surrogate
/// pair cuts the pair as Java does; the lone half is shown as U+FFFD.
pub fn utf16_slice<'a>(s: Cow<'a, str>, start: usize, end: usize) -> Cow<'a, str> {
    match (utf16_to_byte(&s, start), utf16_to_byte(&s, end)) {
        (Ok(a), Ok(b)) => match s {
            Cow::Borrowed(x) => Cow::Borrowed(&x[a..b]),
            Cow::Owned(x) => Cow::Owned(x[a..b].to_string()),
        },
        (a, b) => {
            let mut out = String::new();
            let from = match a {
                Ok(a) => a,
                Err(split) => {
                    out.push('\u{FFFD}');
                    split + s[split..].chars().next().map_or(0, char::len_utf8)
                }
            };
            match b {
                Ok(b) => out.push_str(&s[from..b.max(from)]),
                Err(split) => {
                    out.push_str(&s[from..split.max(from)]);
                    out.push('\u{FFFD}');
                }
            }
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_print_as_java() {
        for (x, want) in [
            (1.0, "1.0"),
            (42.5, "42.5"),
            (-0.5, "-0.5"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1234567.0, "1234567.0"),
            (1e7, "1.0E7"),
            (1.5e-5, "1.5E-5"),
            (3735928559.0, "3.735928559E9"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(java_double_to_string(x), want, "{x}");
        }
    }

    #[test]
    fn arithmetic_widens_and_fails_like_java() {
        use Val::*;
        let cases: &[(Arith, Val, Val, Val)] = &[
            (Arith::Add, Int(4), Int(5), Int(9)),
            (Arith::Add, Int(4), Double(0.5), Double(4.5)),
            (Arith::Add, Int(i32::MAX), Int(1), Null),
            (Arith::Add, Long(i32::MAX as i64), Int(1), Long(1 << 31)),
            (Arith::Add, Long(i64::MAX), Int(1), Null),
            (Arith::Sub, Double(10.5), Double(0.5), Double(10.0)),
            (Arith::Mul, Int(1 << 16), Int(1 << 16), Null),
            (Arith::Mul, Long(1 << 16), Int(1 << 16), Long(1 << 32)),
            (Arith::Div, Int(4), Int(3), Int(1)),
            (Arith::Div, Int(-7), Int(2), Int(-3)),
            (Arith::Div, Int(4), Double(3.0), Double(4.0 / 3.0)),
            (Arith::Div, Int(4), Int(0), Null),
            (Arith::Div, Long(4), Long(0), Null),
            (Arith::Div, Int(4), Double(0.0), Double(f64::INFINITY)),
            (Arith::Div, Int(i32::MIN), Int(-1), Int(i32::MIN)),
            (Arith::Mod, Int(10), Int(6), Int(4)),
            (Arith::Mod, Int(10), Int(-6), Int(4)),
            (Arith::Mod, Int(-10), Int(-6), Int(-4)),
            (Arith::Mod, Int(10), Double(0.5), Double(0.0)),
            (Arith::Mod, Int(10), Int(0), Null),
            (Arith::Mod, Int(i32::MIN), Int(-1), Int(0)),
            (Arith::Add, Null, Int(1), Null),
            (Arith::Add, Str("1".into()), Int(1), Null),
        ];
        for (op, l, r, want) in cases {
            assert_eq!(&arith(*op, l, r), want, "{op:?} {l:?} {r:?}");
        }
    }

    #[test]
    fn utf16_positions() {
        assert_eq!(utf16_len("abc"), 3);
        assert_eq!(utf16_len("é😀"), 3);
        assert_eq!(utf16_to_byte("é😀x", 1), Ok(2));
        assert_eq!(utf16_to_byte("é😀x", 2), Err(2));
        assert_eq!(utf16_to_byte("é😀x", 3), Ok(6));
        assert_eq!(utf16_to_byte("é😀x", 4), Ok(7));
        assert_eq!(utf16_slice("é😀x".into(), 0, 2), "é\u{FFFD}");
        assert_eq!(utf16_slice("é😀x".into(), 2, 4), "\u{FFFD}x");
        assert_eq!(utf16_slice("é😀x".into(), 1, 3), "😀");
        assert!(matches!(
            utf16_slice("abc".into(), 1, 2),
            Cow::Borrowed("b")
        ));
    }

    #[test]
    fn comparisons_follow_java() {
        use Val::*;
        assert_eq!(compare(&Int(1), &Long(1)), Some(Ordering::Equal));
        assert_eq!(compare(&Int(1), &Double(1.5)), Some(Ordering::Less));
        assert_eq!(
            compare(&Str("b".into()), &Str("a".into())),
            Some(Ordering::Greater)
        );
        assert_eq!(
            compare(&Double(f64::NAN), &Double(1e300)),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&Str("1".into()), &Int(1)), None);
        assert_eq!(compare(&Bool(false), &Bool(true)), Some(Ordering::Less));
    }
}
