//! The fingerprint filters report exactly the hits of the DFA they replaced
//! ([`super::super::literals_dfa`]) and of a brute-force check of every key.

use super::*;
use crate::rules::index::literals_dfa;
use crate::rules::testkit::Rng;

type Key<'a> = (&'a str, bool, Anchor, u32);

/// The slots the filters set for `v`.
fn got(l: &Literals, v: &str) -> Vec<u32> {
    let n = 64 * 1024;
    let mut c = Cands::new(n);
    l.collect(v, v.is_ascii(), &mut c);
    c.iter().collect()
}

/// The slots the old DFA sets for `v`.
fn oracle(l: &literals_dfa::Literals, v: &str) -> Vec<u32> {
    let mut c = Cands::new(64 * 1024);
    l.collect(v, v.is_ascii(), &mut c);
    c.iter().collect()
}

/// The slots of every key `v` holds, checked one by one.
fn brute(keys: &[Key<'_>], v: &str) -> Vec<u32> {
    let mut want = Cands::new(64 * 1024);
    for &(text, ci, anchor, slot) in keys {
        if text.is_empty() || (ci && !v.is_ascii()) {
            continue;
        }
        let (hay, text) = if ci {
            (v.to_ascii_lowercase(), text.to_ascii_lowercase())
        } else {
            (v.to_string(), text.to_string())
        };
        let ok = match anchor {
            Anchor::Within => hay.contains(&text),
            Anchor::Prefix => hay.starts_with(&text),
            Anchor::Suffix => hay.ends_with(&text),
            Anchor::Whole => hay == text,
        };
        if ok {
            want.add(slot);
        }
    }
    want.iter().collect()
}

/// Compares the three on `values`.
fn agree(keys: &[Key<'_>], values: &[String]) -> usize {
    let l = Literals::build(keys).unwrap();
    let d = literals_dfa::Literals::build(keys).unwrap();
    let mut hits = 0;
    for v in values {
        let g = got(&l, v);
        assert_eq!(g, oracle(&d, v), "against the DFA: {v:?} {keys:?}");
        assert_eq!(g, brute(keys, v), "against brute force: {v:?}");
        hits += g.len();
    }
    hits
}

/// Hostile values: empty, non-ASCII, case variants, overlapping literals, literals at the
/// very start or end, values shorter than the literal.
#[test]
fn hostile_values() {
    let keys: &[Key<'_>] = &[
        ("ab", false, Anchor::Within, 0),
        ("ab", true, Anchor::Prefix, 1),
        ("AB", false, Anchor::Suffix, 2),
        ("b", false, Anchor::Within, 3),
        ("bab", true, Anchor::Whole, 4),
        ("é", false, Anchor::Within, 5),
        ("é", true, Anchor::Within, 6),
        ("a.b", false, Anchor::Within, 7),
        ("abab", false, Anchor::Within, 8),
        ("babab", true, Anchor::Within, 9),
        ("-netdev", false, Anchor::Prefix, 10),
        ("hostfwd=", true, Anchor::Within, 11),
        ("/etc/shadow", false, Anchor::Suffix, 12),
        ("@`", false, Anchor::Within, 13),
        ("[", true, Anchor::Within, 14),
        ("{", false, Anchor::Suffix, 15),
        ("café", true, Anchor::Prefix, 16),
        ("a\u{212A}", false, Anchor::Within, 17),
        ("xyz", true, Anchor::Suffix, 18),
        ("xyz", false, Anchor::Within, 19),
        ("ab", false, Anchor::Within, 20),
    ];
    let values: Vec<String> = [
        "",
        "a",
        "b",
        "ab",
        "AB",
        "aB",
        "xab",
        "xAB",
        "bab",
        "BAB",
        "café",
        "CAFÉ",
        "Café au lait",
        "a.b",
        "A.B",
        "abab",
        "ababab",
        "BaBaB",
        "xxab\u{212A}",
        "a\u{212A}",
        "-netdev",
        "-NETDEV",
        "-netde",
        "x-netdev",
        "hostfwd",
        "HOSTFWD=tcp::2222-:22",
        "cat /etc/shadow",
        "/etc/shadow",
        "/ETC/SHADOW",
        "tc/shadow",
        "@`",
        "`@",
        "{[",
        "x{",
        "XYZ",
        "axyz",
        "xyzA",
        "\u{0}ab\u{0}",
        "ééé",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert!(agree(keys, &values) > 40);
}

/// Characters of generated literals and values: letters in both cases, bytes that differ
/// from others by bit 5 only (`@` and `` ` ``, `[` and `{`), separators, non-ASCII ones
/// (KELVIN SIGN folds to `k`).
const ALPHABET: &[char] = &[
    'a', 'A', 'b', 'B', 'k', 'K', '-', '/', '=', '@', '`', '[', '{', ' ', 'é', '\u{212A}', '0',
];

fn random_text(r: &mut Rng, max: usize) -> String {
    let n = 1 + r.below(max);
    (0..n).map(|_| ALPHABET[r.below(ALPHABET.len())]).collect()
}

/// `text` with the case of some ASCII letters flipped.
fn flip_case(r: &mut Rng, text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphabetic() && r.below(2) == 0 {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// Values made of literals (case flipped or not), their pieces and random characters.
fn random_values(r: &mut Rng, texts: &[&str], n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let mut v = String::new();
            for _ in 0..r.below(5) {
                match r.below(4) {
                    0 => v.push_str(&random_text(r, 3)),
                    1 => {
                        let t = texts[r.below(texts.len())];
                        v.push_str(&flip_case(r, t));
                    }
                    2 => {
                        let t = texts[r.below(texts.len())];
                        let cut: String = t.chars().take(r.below(t.len() + 1)).collect();
                        v.push_str(&cut);
                    }
                    _ => v.push_str(texts[r.below(texts.len())]),
                }
            }
            v
        })
        .collect()
}

/// Random key sets over a small alphabet, random values mostly made of their literals: the
/// filters agree with the DFA and with brute force on every one.
#[test]
fn random_keys_and_values_agree() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let anchors = [
        Anchor::Within,
        Anchor::Prefix,
        Anchor::Suffix,
        Anchor::Whole,
    ];
    let mut hits = 0;
    for round in 0..300 {
        let texts: Vec<String> = (0..1 + r.below(40))
            .map(|_| random_text(&mut r, 7))
            .collect();
        let keys: Vec<Key<'_>> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    t.as_str(),
                    r.below(2) == 0,
                    anchors[r.below(4)],
                    (i as u32) * 4 + (round % 4) as u32,
                )
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let values = random_values(&mut r, &refs, 200);
        hits += agree(&keys, &values);
    }
    assert!(hits > 10_000, "hits: {hits}");
}

/// Every field's literals of Elastic's Linux rules: the filters agree with the DFA on values
/// made of those literals and on realistic arguments and command lines.
#[test]
fn corpus_literals_agree() {
    use crate::rules::RuleSet;
    use crate::testsupport::{Corpus, Need, corpus, require};
    if !require(
        "rules::index::literals::corpus_literals_agree",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let (set, _) = RuleSet::load(&[corpus(Corpus::ElasticLinux)], crate::ecs::schema());
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    let mut fields = 0;
    let mut hits = 0;
    for lits in set.index.literal_sets() {
        fields += 1;
        let keys = lits.keys();
        let texts: Vec<&str> = keys.iter().map(|k| k.0).collect();
        let mut values = random_values(&mut r, &texts, 3000);
        values.extend(
            [
                "qemu-system-x86_64 -netdev user,id=n0,hostfwd=tcp::2222-:22 -nographic",
                "cat /var/log/app/worker-17.log",
                "curl -fsS http://127.0.0.1:8080/jobs/17/status",
                "/usr/bin/python3 -c import socket,subprocess,os",
                "bash -c ls -la /var/log && cat /etc/os-release",
                "/tmp/.X11-unix/x",
                "",
            ]
            .map(String::from),
        );
        hits += agree(&keys, &values);
    }
    assert!(fields >= 5, "fields with literals: {fields}");
    assert!(hits > 1000, "hits: {hits}");
}

/// The filters of the whole corpus take tens of KiB where the DFAs took megabytes (3.4 MB:
/// 1.9 for `process.args`, 1.0 for `process.command_line`), which counted in the daemon's
/// peak RSS and in what a verdict-cache miss had to bring into the caches.
#[test]
fn corpus_filters_are_small() {
    use crate::rules::RuleSet;
    use crate::testsupport::{Corpus, Need, corpus, require};
    if !require(
        "rules::index::literals::corpus_filters_are_small",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let (set, _) = RuleSet::load(&[corpus(Corpus::ElasticLinux)], crate::ecs::schema());
    let (mut tables, mut dfas) = (0, 0);
    for lits in set.index.literal_sets() {
        for t in lits.within.iter().chain(&lits.prefix).chain(&lits.suffix) {
            tables += t.bits.len() * 8 + t.starts.len() * 4 + t.ids.len() * 4;
        }
        dfas += literals_dfa::Literals::build(&lits.keys())
            .unwrap()
            .memory();
    }
    assert!(tables < 64 * 1024, "filter tables: {tables} bytes");
    assert!(
        tables * 50 < dfas,
        "filter tables {tables} bytes, DFAs {dfas}"
    );
}
