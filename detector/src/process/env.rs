//! Which environment variables an exec keeps (`sensor.capture_env_vars`).
//!
//! Every exec's captured environment (up to 4 KiB, a few dozen entries) is filtered on the
//! daemon's hot path, and nearly every entry is one the list does not name (`PATH`,
//! `HOME`, `LS_COLORS`…). So the names are arranged once, at config load, for turning an
//! entry away quickly: by the entry's first byte and length before any comparison, and
//! entries are found with `memchr` rather than a byte-by-byte split.

/// The configured variable names, arranged for [`EnvNames::filter`].
#[derive(Debug, Clone, Default)]
pub struct EnvNames {
    /// Listed names by length in bytes (index = length); each bucket holds a few names.
    by_len: Vec<Vec<Box<[u8]>>>,
    /// `first[b]`: some listed name begins with byte `b`.
    first: Box<[bool]>,
}

impl EnvNames {
    /// The names to keep: exact, case-sensitive as the kernel's (an empty name is ignored).
    pub fn new<S: AsRef<str>>(names: &[S]) -> Self {
        let mut by_len: Vec<Vec<Box<[u8]>>> = Vec::new();
        let mut first = vec![false; 256].into_boxed_slice();
        for n in names {
            let n = n.as_ref().as_bytes();
            let Some(&b) = n.first() else { continue };
            if by_len.len() <= n.len() {
                by_len.resize(n.len() + 1, Vec::new());
            }
            if !by_len[n.len()].iter().any(|m| &**m == n) {
                by_len[n.len()].push(n.into());
            }
            first[usize::from(b)] = true;
        }
        EnvNames { by_len, first }
    }

    /// Whether no name is listed (the capture is off).
    pub fn is_empty(&self) -> bool {
        self.by_len.is_empty()
    }

    /// Whether `name` is listed.
    fn holds(&self, name: &[u8]) -> bool {
        match (name.first(), self.by_len.get(name.len())) {
            (Some(&b), Some(bucket)) if self.first[usize::from(b)] => {
                bucket.iter().any(|m| &**m == name)
            }
            _ => false,
        }
    }

    /// The variables of an environment block (NUL-separated `NAME=value`) whose names are
    /// listed, in block order, into `out`. An entry without `=` is skipped; the last entry
    /// of a truncated block may be a value prefix.
    pub fn filter(&self, block: &[u8], out: &mut Vec<Vec<u8>>) {
        out.clear();
        if self.is_empty() {
            return;
        }
        // A listed name is shorter than `by_len.len()`: its `=` is found among that many
        // bytes, so a long value (LS_COLORS, PATH) is never scanned for one.
        let window = self.by_len.len() + 1;
        let mut rest = block;
        while !rest.is_empty() {
            let end = memchr::memchr(0, rest).unwrap_or(rest.len());
            let entry = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            let head = &entry[..entry.len().min(window)];
            if let Some(eq) = memchr::memchr(b'=', head)
                && self.holds(&entry[..eq])
            {
                out.push(entry.to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EnvNames;

    fn filter(names: &[&str], block: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![b"stale".to_vec()];
        EnvNames::new(names).filter(block, &mut out);
        out
    }

    #[test]
    fn keeps_listed_names_exactly() {
        let names = ["LD_PRELOAD", "http_proxy"];
        let block = b"HOME=/root\0LD_PRELOAD=/tmp/x.so\0LD_PRELOAD_X=1\0HTTP_PROXY=h\0junk\0http_proxy=socks5h://a\0";
        assert_eq!(
            filter(&names, block),
            vec![
                b"LD_PRELOAD=/tmp/x.so".to_vec(),
                b"http_proxy=socks5h://a".to_vec()
            ]
        );
        assert!(filter(&[], block).is_empty());
        // A truncated last entry keeps its value prefix.
        assert_eq!(
            filter(&names, b"A=1\0LD_PRELOAD=/tm"),
            vec![b"LD_PRELOAD=/tm".to_vec()]
        );
    }

    #[test]
    fn hostile_blocks() {
        let names = ["A", "LD_PRELOAD"];
        #[rustfmt::skip]
        let table: &[(&[u8], &[&[u8]])] = &[
            // (block, kept)
            (b"", &[]),
            (b"\0\0\0", &[]),
            (b"=x\0A\0A=\0", &[b"A="]),
            (b"A==b\0A=1=2\0", &[b"A==b", b"A=1=2"]),
            // The same name twice is kept twice, as the kernel passed it.
            (b"A=1\0A=2", &[b"A=1", b"A=2"]),
            // Invalid UTF-8 and newlines in values pass through as bytes.
            (b"LD_PRELOAD=\xff\n\"x\0", &[b"LD_PRELOAD=\xff\n\"x"]),
            // A name longer than any listed one, and a listed name as its prefix.
            (b"LD_PRELOAD_LONGER_THAN_ANY=1\0LD_PRELOADX=2\0", &[]),
            // An `=` only beyond the longest listed name: no name at all.
            (b"ABCDEFGHIJKLMNOPQRSTUVWXYZ=1\0", &[]),
        ];
        for (block, kept) in table {
            let want: Vec<Vec<u8>> = kept.iter().map(|k| k.to_vec()).collect();
            assert_eq!(
                filter(&names, block),
                want,
                "{:?}",
                String::from_utf8_lossy(block)
            );
        }
    }

    #[test]
    fn agrees_with_a_plain_scan() {
        let names = ["HOME", "LD_PRELOAD", "http_proxy", "HTTP_PROXY", "X"];
        let set = EnvNames::new(&names);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"=\0XHOMEhttp_proxyLD_PRELOAD\xff";
        for _ in 0..2000 {
            let mut block = Vec::new();
            for _ in 0..(rng % 40) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                block.push(alphabet[(rng % alphabet.len() as u64) as usize]);
            }
            let plain: Vec<Vec<u8>> = block
                .split(|&b| b == 0)
                .filter(|e| {
                    e.iter()
                        .position(|&b| b == b'=')
                        .is_some_and(|eq| names.iter().any(|n| n.as_bytes() == &e[..eq]))
                })
                .map(<[u8]>::to_vec)
                .collect();
            let mut out = Vec::new();
            set.filter(&block, &mut out);
            assert_eq!(out, plain, "{block:?}");
        }
    }
}
