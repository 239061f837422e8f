//! The string, number and address functions of EQL, with the Java semantics of
//! Elasticsearch's implementations (`StringUtils`, `*FunctionProcessor`, `CIDRUtils`):
//! UTF-16 positions, `Long.parseLong` / `Double.valueOf` grammars, IPv4 mapped into IPv6.
//! [`super::func`] dispatches to these.

use std::borrow::Cow;
use std::net::IpAddr;

use super::value::{Val, byte_to_utf16, utf16_len, utf16_slice, utf16_to_byte};
use super::wildcard::fold;

/// A CIDR block as an inclusive range of IPv6 addresses (IPv4 mapped into `::ffff:0:0/96`,
/// as Elasticsearch's `CIDRUtils` compares them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    lo: u128,
    hi: u128,
}

fn ip_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl Cidr {
    /// `a.b.c.d/n`, `x::y/n`, or a single address.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, bits) = match s.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().ok()?;
        let width = if ip.is_ipv4() { 32 } else { 128 };
        let n: u32 = match bits {
            None => width,
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => b.parse().ok()?,
            Some(_) => return None,
        };
        if n > width {
            return None;
        }
        let prefix = n + (128 - width);
        let host = u128::MAX.checked_shr(prefix).unwrap_or(0);
        let v = ip_u128(ip);
        Some(Cidr {
            lo: v & !host,
            hi: v | host,
        })
    }

    pub(super) fn contains(&self, ip: IpAddr) -> bool {
        (self.lo..=self.hi).contains(&ip_u128(ip))
    }
}

/// Whether `s` starts with `p`, folding case when `ci`; returns the end of the match.
pub(super) fn prefix_end(s: &str, p: &str, ci: bool) -> Option<usize> {
    if !ci {
        return s.starts_with(p).then_some(p.len());
    }
    let mut it = s.char_indices();
    for pc in p.chars() {
        match it.next() {
            Some((_, c)) if fold(c) == fold(pc) => {}
            _ => return None,
        }
    }
    Some(it.next().map_or(s.len(), |(b, _)| b))
}

pub(super) fn ends_with(s: &str, p: &str, ci: bool) -> bool {
    if !ci {
        return s.ends_with(p);
    }
    let mut it = s.chars().rev();
    p.chars()
        .rev()
        .all(|pc| it.next().is_some_and(|c| fold(c) == fold(pc)))
}

/// First match of `needle` in `hay` at or after byte `from` (a character boundary):
/// `(start, end)` byte offsets.
pub(super) fn find(hay: &str, needle: &str, from: usize, ci: bool) -> Option<(usize, usize)> {
    if !ci {
        return hay[from..]
            .find(needle)
            .map(|i| (from + i, from + i + needle.len()));
    }
    let mut b = from;
    loop {
        if let Some(e) = prefix_end(&hay[b..], needle, true) {
            return Some((b, b + e));
        }
        b += hay[b..].chars().next()?.len_utf8();
    }
}

/// Last match of `needle` in `hay`.
pub(super) fn rfind(hay: &str, needle: &str, ci: bool) -> Option<(usize, usize)> {
    if !ci {
        return hay.rfind(needle).map(|i| (i, i + needle.len()));
    }
    let mut starts: Vec<usize> = hay.char_indices().map(|(b, _)| b).collect();
    starts.push(hay.len());
    starts
        .into_iter()
        .rev()
        .find_map(|b| prefix_end(&hay[b..], needle, true).map(|e| (b, b + e)))
}

fn slice<'a>(s: Cow<'a, str>, a: usize, b: usize) -> Cow<'a, str> {
    match s {
        Cow::Borrowed(x) => Cow::Borrowed(&x[a..b]),
        Cow::Owned(x) => Cow::Owned(x[a..b].to_string()),
    }
}

/// `between` (`StringUtils.between`): the text after the first `left` and before the next
/// `right` (the last `right` when greedy); empty when either is absent; the source itself
/// when it or a bound is empty.
pub(super) fn between<'a>(s: Cow<'a, str>, l: &str, r: &str, greedy: bool, ci: bool) -> Val<'a> {
    if s.is_empty() || l.is_empty() || r.is_empty() {
        return Val::Str(s);
    }
    let Some((_, start)) = find(&s, l, 0, ci) else {
        return Val::Str(Cow::Borrowed(""));
    };
    let end = if greedy {
        rfind(&s, r, ci).map(|(b, _)| b)
    } else {
        find(&s, r, start, ci).map(|(b, _)| b)
    };
    match end {
        None => Val::Str(Cow::Borrowed("")),
        // Java's `substring(start, end)` throws when the last `right` is before `start`.
        Some(e) if e < start => Val::Null,
        Some(e) => Val::Str(slice(s, start, e)),
    }
}

/// `substring` (`StringUtils.substringSlice`): Python-like slice in UTF-16 units, negative
/// positions counted from the end.
pub(super) fn substring(s: Cow<'_, str>, start: i64, end: Option<i64>) -> Cow<'_, str> {
    if s.is_empty() {
        return s;
    }
    let len = utf16_len(&s) as i64;
    let mut start = start;
    let mut end = end.unwrap_or(len);
    if start < 0 {
        start = (start + len).max(0);
    }
    if end < 0 {
        end = (end + len).max(0);
    } else if end > len {
        end = len;
    }
    if start >= end {
        return Cow::Borrowed("");
    }
    utf16_slice(s, start as usize, end as usize)
}

/// `indexOf` (Java `String.indexOf(sub, from)`): UTF-16 position of the first match at or
/// after `from` (negative counts as 0); null when there is none.
pub(super) fn index_of(s: &str, sub: &str, from: i32, ci: bool) -> Val<'static> {
    let len = utf16_len(s);
    let from = from.max(0) as usize;
    if from >= len {
        return if sub.is_empty() {
            Val::Int(len as i32)
        } else {
            Val::Null
        };
    }
    // A start inside a surrogate pair: no match can begin on its second half.
    let b = utf16_to_byte(s, from)
        .unwrap_or_else(|split| split + s[split..].chars().next().map_or(0, char::len_utf8));
    match find(s, sub, b, ci) {
        Some((at, _)) => Val::Int(byte_to_utf16(s, at) as i32),
        None => Val::Null,
    }
}

/// Java's `Long.parseLong` grammar: an optional sign and at least one digit of the radix.
fn parse_long(s: &str, radix: u32) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(s, radix).ok()
}

/// Java's `Double.valueOf` grammar (surrounding whitespace and control characters ignored,
/// `NaN`, `Infinity`, an `f`/`d` suffix), without hexadecimal floats.
fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (sign, body) = match t.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    match body {
        "NaN" => return Some(f64::NAN),
        "Infinity" => return Some(sign * f64::INFINITY),
        _ => {}
    }
    let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
    let (mant, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits = |x: &str| x.bytes().all(|c| c.is_ascii_digit());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) || !exp_ok {
        return None;
    }
    body.parse::<f64>().ok().map(|x| sign * x)
}

/// `number` (`ToNumberFunctionProcessor`): base 10 reads a `long`, else a `double`; other
/// bases a `long`; a `0x` prefix means base 16 when no base is given.
pub(super) fn number(s: &str, radix: Option<i32>) -> Val<'static> {
    let hex = s.starts_with("0x");
    let radix = radix.unwrap_or(if hex { 16 } else { 10 });
    if !(2..=36).contains(&radix) {
        return Val::Null;
    }
    let s = if hex && radix == 16 { &s[2..] } else { s };
    if radix == 10 {
        if let Some(n) = parse_long(s, 10) {
            return Val::Long(n);
        }
        return parse_double(s).map_or(Val::Null, Val::Double);
    }
    parse_long(s, radix as u32).map_or(Val::Null, Val::Long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_blocks() {
        let c = |s| Cidr::parse(s).unwrap_or_else(|| panic!("{s}"));
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(c("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!c("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(
            c("10.1.2.3/8").contains(ip("10.9.9.9")),
            "host bits ignored"
        );
        assert!(c("192.168.1.1").contains(ip("192.168.1.1")));
        assert!(!c("192.168.1.1").contains(ip("192.168.1.2")));
        assert!(c("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(!c("0.0.0.0/0").contains(ip("::1")));
        assert!(c("::/0").contains(ip("::1")));
        assert!(c("fe80::/10").contains(ip("fe80::1")));
        assert!(c("::ffff:0:0/96").contains(ip("1.2.3.4")), "IPv4 is mapped");
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "x",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "::/129",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn number_parses_like_java() {
        use Val::*;
        let cases: &[(&str, Option<i32>, Val)] = &[
            ("1337", None, Long(1337)),
            ("+1337", None, Long(1337)),
            ("-1337", None, Long(-1337)),
            ("42.5", None, Double(42.5)),
            ("  1337  ", None, Double(1337.0)),
            ("1e3", None, Double(1000.0)),
            ("1.5d", None, Double(1.5)),
            ("deadbeef", Some(16), Long(3735928559)),
            ("0xdeadbeef", None, Long(3735928559)),
            ("0xdeadbeef", Some(16), Long(3735928559)),
            ("0xdeadbeef", Some(10), Null),
            ("777", Some(8), Long(511)),
            ("", None, Null),
            ("abc", None, Null),
            ("inf", None, Null),
            ("1 2", None, Null),
            ("12", Some(1), Null),
            ("99999999999999999999", None, Double(1e20)),
        ];
        for (s, r, want) in cases {
            assert_eq!(&number(s, *r), want, "number({s:?}, {r:?})");
        }
    }
}
