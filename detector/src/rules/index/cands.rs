//! The set of candidate rules of one event: a bitset by rule number, so a rule reached
//! through several keys is evaluated once and candidates come out in rule order.

/// Sets of up to `64 * INLINE_WORDS` members (rules, or slots of 4 per rule) stay on the
/// stack.
const INLINE_WORDS: usize = 16;

/// A set of rule numbers below a bound fixed at creation.
#[derive(Clone, Debug)]
pub struct Cands {
    /// Words in use (`n.div_ceil(64)`): operations touch only these.
    used: usize,
    inline: [u64; INLINE_WORDS],
    /// Used instead of `inline` for more than `64 * INLINE_WORDS` members (then one
    /// allocation per set).
    heap: Vec<u64>,
}

impl Default for Cands {
    fn default() -> Self {
        Cands::new(0)
    }
}

impl Cands {
    /// An empty set for members `0..n`.
    #[inline]
    pub fn new(n: usize) -> Self {
        let words = n.div_ceil(64);
        Cands {
            used: words,
            inline: [0; INLINE_WORDS],
            heap: if words > INLINE_WORDS {
                vec![0; words]
            } else {
                Vec::new()
            },
        }
    }

    #[inline]
    fn words(&self) -> &[u64] {
        if self.heap.is_empty() {
            &self.inline[..self.used]
        } else {
            &self.heap
        }
    }

    #[inline]
    fn words_mut(&mut self) -> &mut [u64] {
        if self.heap.is_empty() {
            &mut self.inline[..self.used]
        } else {
            &mut self.heap
        }
    }

    /// The set of every rule `0..n`.
    pub fn full(n: usize) -> Self {
        let mut c = Cands::new(n);
        for (i, w) in c.words_mut().iter_mut().enumerate() {
            let left = n - 64 * i;
            *w = if left >= 64 {
                u64::MAX
            } else {
                (1 << left) - 1
            };
        }
        c
    }

    /// Whether no rule is in the set.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.words().iter().all(|&w| w == 0)
    }

    /// Keeps only the rules also in `other` (same bound).
    #[inline]
    pub fn and_with(&mut self, other: &Cands) {
        for (a, b) in self.words_mut().iter_mut().zip(other.words()) {
            *a &= b;
        }
    }

    /// Adds the rules of `other` (same bound).
    #[inline]
    pub fn or_with(&mut self, other: &Cands) {
        for (a, b) in self.words_mut().iter_mut().zip(other.words()) {
            *a |= b;
        }
    }

    /// How many rules are in both sets (same bound).
    #[inline]
    pub fn count_common(&self, other: &Cands) -> usize {
        self.words()
            .iter()
            .zip(other.words())
            .map(|(a, b)| (a & b).count_ones() as usize)
            .sum()
    }

    /// Whether some rule is in both sets (same bound).
    #[inline]
    pub fn intersects(&self, other: &Cands) -> bool {
        self.words()
            .iter()
            .zip(other.words())
            .any(|(a, b)| a & b != 0)
    }

    /// Adds rule `i` (below the bound).
    #[inline]
    pub fn add(&mut self, i: u32) {
        let i = i as usize;
        self.words_mut()[i / 64] |= 1 << (i % 64);
    }

    /// Adds every rule of `list`.
    #[inline]
    pub fn add_all(&mut self, list: &[u32]) {
        for &i in list {
            self.add(i);
        }
    }

    /// Read as slots of `K` groups per rule (`rule * K + group`), the set of rules `0..n`
    /// all of whose slots are set. `K` must be 4 (16 rules per word).
    #[cfg(test)]
    pub fn complete_groups<const K: usize>(&self, n: usize) -> Cands {
        let mut out = Cands::full(n);
        out.retain_complete::<K>(self, None);
        out
    }

    /// Keeps the rules all of whose `K` slots (`rule * K + group`) are set in `a` or in
    /// `b`. `K` must be 4: the slots of 16 rules fill one word.
    #[inline]
    pub fn retain_complete<const K: usize>(&mut self, a: &Cands, b: Option<&Cands>) {
        const { assert!(K == 4) };
        let (a, b) = (a.words(), b.map(Cands::words));
        for (wi, w) in self.words_mut().iter_mut().enumerate() {
            let mut keep = 0u64;
            for q in 0..4 {
                let si = wi * 4 + q;
                let Some(&x) = a.get(si) else {
                    break;
                };
                let x = x | b.map_or(0, |b| b[si]);
                // Bit 4k set when all four slots of rule k of this word are set...
                let mut c = x & (x >> 1) & (x >> 2) & (x >> 3) & 0x1111_1111_1111_1111;
                // ...gathered into bits 0..16.
                c = (c | (c >> 3)) & 0x0303_0303_0303_0303;
                c = (c | (c >> 6)) & 0x000F_000F_000F_000F;
                c = (c | (c >> 12)) & 0x0000_00FF_0000_00FF;
                c = (c | (c >> 24)) & 0xFFFF;
                keep |= c << (16 * q);
            }
            *w &= keep;
        }
    }

    /// Number of rules in the set.
    pub fn len(&self) -> usize {
        self.words().iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The rules, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words().iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros();
                w &= w - 1;
                Some(wi as u32 * 64 + b)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_groups_needs_every_slot_of_a_rule() {
        for n in [1usize, 15, 16, 17, 63, 64, 65, 200, 300] {
            let mut slots = Cands::new(n * 4);
            let mut want = Vec::new();
            for r in 0..n as u32 {
                // Rule r gets r % 5 of its 4 slots: complete when 4.
                for g in 0..(r % 5).min(4) {
                    slots.add(r * 4 + g);
                }
                if r % 5 == 4 {
                    want.push(r);
                }
            }
            let got: Vec<u32> = slots.complete_groups::<4>(n).iter().collect();
            assert_eq!(got, want, "n={n}");
            // The same with the slots split over two sets, into a partial set.
            let (mut a, mut b) = (Cands::new(n * 4), Cands::new(n * 4));
            for s in slots.iter() {
                if s % 3 == 0 { a.add(s) } else { b.add(s) }
            }
            let mut some = Cands::new(n);
            for r in (0..n as u32).step_by(2) {
                some.add(r);
            }
            some.retain_complete::<4>(&a, Some(&b));
            let want2: Vec<u32> = want.iter().copied().filter(|r| r % 2 == 0).collect();
            assert_eq!(some.iter().collect::<Vec<_>>(), want2, "n={n}");
        }
    }

    #[test]
    fn sets_iterate_in_order_without_duplicates() {
        for n in [0usize, 1, 63, 64, 65, 1024, 1025, 2000] {
            let mut c = Cands::new(n);
            let picks: Vec<u32> = (0..n as u32)
                .filter(|i| i % 7 == 3 || i % 64 == 63)
                .collect();
            for &i in picks.iter().rev() {
                c.add(i);
                c.add(i);
            }
            assert_eq!(c.iter().collect::<Vec<_>>(), picks, "n={n}");
            assert_eq!(c.len(), picks.len());
            let full = Cands::full(n);
            assert_eq!(full.len(), n);
            assert_eq!(c.intersects(&full), !picks.is_empty());
            assert_eq!(c.count_common(&full), picks.len());
            let mut both = full.clone();
            both.and_with(&c);
            assert_eq!(both.iter().collect::<Vec<_>>(), picks);
            let mut none = Cands::new(n);
            assert!(none.is_empty() && !none.intersects(&full));
            none.or_with(&c);
            assert_eq!(none.len(), picks.len());
        }
    }
}
