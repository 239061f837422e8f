//! Differential test of sequences: generated event streams (random keys, categories,
//! timestamps with ties) run through our engine and through Elastic's Python `eql` 1.0.1
//! (`sequences.py` here), which must agree on which sequences match.
//!
//! Where Python `eql` departs from Elasticsearch, the stream or the Python query is shaped
//! so both compute Elasticsearch's answer, and our own unit tests
//! (`rules::sequence::tests`) pin Elasticsearch's side:
//! 1. `==` and `in` are case-insensitive in Python (Elasticsearch: case-sensitive, EQL
//!    syntax reference "Most EQL operators are case-sensitive by default"): values here are
//!    lowercase only; `join_keys_are_exact_and_case_sensitive` pins ours (Python also joins
//!    keys case-insensitively).
//! 2. Null join keys: Python joins null with null for every key; Elasticsearch restricts
//!    non-optional keys to non-null values (elastic/elasticsearch#79677, "Add optional
//!    fields and limit joining keys on non-null values only"). The Python query gets
//!    `and k != null` on each term for each non-optional key — Python's `!=` on a missing
//!    field is false, which is the exists filter Elasticsearch adds. `?k` keys stay as is.
//! 3. `until` and a term matched by the same event: Elasticsearch drops the sequence
//!    (`SequenceMatcher.match`: the nearest until before the hit is `between` the
//!    sequence's last event and the hit, inclusive), Python keeps it. Until terms here use
//!    a tag no other term uses; `until_drops_the_keys_pending_sequences` pins ours.
//! 4. Missing-event terms `![…]` do not exist in Python `eql` 1.0.1: covered by unit
//!    tests after Elasticsearch's `test_missing_events.toml`.
//! 5. Python turns `maxspan` into whole seconds (`walkers.convert_time_range`:
//!    `as_milliseconds() // 1000`, so `500ms` is 0); Elasticsearch keeps milliseconds.
//!    The queries use whole seconds; `maxspan_is_inclusive_from_first_to_last` pins ours.
//! 6. Time: Python counts 100 ns ticks; timestamps here are whole microseconds.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;

use detector::ecs::field::{Document, FieldDef, FieldId, FieldType, FieldValue, Schema};
use detector::rules::sequence::{SequenceEngine, SequenceLimits, compile_sequence};
use serde_json::{Value, json};

/// The fields of generated events.
const FIELDS: &[(&str, FieldType)] = &[
    ("event.category", FieldType::Keyword),
    ("tag", FieldType::Keyword),
    ("k1", FieldType::Keyword),
    ("k2", FieldType::Long),
    ("k3", FieldType::Keyword),
];

struct GenSchema;

impl Schema for GenSchema {
    fn resolve(&self, path: &str) -> Option<FieldDef> {
        let i = FIELDS.iter().position(|(p, _)| *p == path)?;
        Some(FieldDef {
            id: FieldId(i as u16),
            ty: FIELDS[i].1,
        })
    }
}

/// A generated event as our engine sees it.
struct GenDoc {
    category: Vec<String>,
    tag: String,
    k1: Option<String>,
    k2: Option<i64>,
    k3: Option<String>,
}

impl Document for GenDoc {
    fn field(&self, id: FieldId) -> FieldValue<'_> {
        match id.0 {
            0 => FieldValue::Strs(&self.category),
            1 => FieldValue::Str(&self.tag),
            2 => self
                .k1
                .as_deref()
                .map_or(FieldValue::Missing, FieldValue::Str),
            3 => self.k2.map_or(FieldValue::Missing, FieldValue::Long),
            4 => self
                .k3
                .as_deref()
                .map_or(FieldValue::Missing, FieldValue::Str),
            _ => FieldValue::Missing,
        }
    }
}

struct Event {
    id: u32,
    ts_ns: i64,
    doc: GenDoc,
}

impl Event {
    fn json(&self) -> Value {
        let mut d = serde_json::Map::new();
        d.insert("tag".into(), json!(self.doc.tag));
        if let Some(v) = &self.doc.k1 {
            d.insert("k1".into(), json!(v));
        }
        if let Some(v) = self.doc.k2 {
            d.insert("k2".into(), json!(v));
        }
        if let Some(v) = &self.doc.k3 {
            d.insert("k3".into(), json!(v));
        }
        json!({"id": self.id, "cat": self.doc.category[0], "ts": self.ts_ns, "doc": d})
    }
}

/// xorshift64*: deterministic streams from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len() as u64) as usize]
    }
}

/// A stream of `n` events in timestamp order: about one in five shares its predecessor's
/// timestamp; keys are null one time in ten.
fn stream(seed: u64, n: u32) -> Vec<Event> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut ts: i64 = 1_700_000_000_000_000_000;
    let keys = ["h0", "h1", "h2"];
    (0..n)
        .map(|id| {
            if rng.below(5) != 0 {
                ts += rng.below(400_000) as i64 * 1_000; // up to 400 ms, whole µs
            }
            let cat = match rng.below(10) {
                0 | 1 => "file",
                2 | 3 => "network",
                _ => "process",
            };
            let tag = match rng.below(20) {
                0 => "u",
                1..=7 => "a",
                8..=13 => "b",
                _ => "c",
            };
            let key = |rng: &mut Rng| (rng.below(10) != 0).then(|| rng.pick(&keys).to_string());
            Event {
                id,
                ts_ns: ts,
                doc: GenDoc {
                    category: vec![cat.to_string()],
                    tag: tag.to_string(),
                    k1: key(&mut rng),
                    k2: (rng.below(10) != 0).then(|| rng.below(3) as i64),
                    k3: key(&mut rng),
                },
            }
        })
        .collect()
}

/// One term: category, condition, per-term keys.
type Term = (&'static str, &'static str, &'static [&'static str]);

/// A query for both engines; the Python text gets the exists filter for non-optional
/// keys (difference 2 above).
struct DiffQuery {
    ours: String,
    python: String,
}

fn query(
    by: &[&str],
    maxspan: Option<&str>,
    terms: &[(Term, usize)],
    until: Option<Term>,
) -> DiffQuery {
    let render = |python: bool| {
        let mut s = String::from("sequence");
        if !by.is_empty() {
            s += &format!(" by {}", by.join(", "));
        }
        if let Some(m) = maxspan {
            s += &format!(" with maxspan={m}");
        }
        let term = |(cat, cond, keys): &Term| {
            let mut c = cond.to_string();
            if python {
                for k in by.iter().chain(keys.iter()).filter(|k| !k.starts_with('?')) {
                    c += &format!(" and {k} != null");
                }
            }
            let mut t = format!(" [{cat} where {c}]");
            if !keys.is_empty() {
                t += &format!(" by {}", keys.join(", "));
            }
            t
        };
        for (t, runs) in terms {
            s += &term(t);
            if *runs > 1 {
                s += &format!(" with runs={runs}");
            }
        }
        if let Some(u) = &until {
            s += " until";
            s += &term(u);
        }
        s
    };
    DiffQuery {
        ours: render(false),
        python: render(true),
    }
}

fn queries() -> Vec<DiffQuery> {
    const A: &str = r#"tag == "a""#;
    const B: &str = r#"tag == "b""#;
    const C: &str = r#"tag == "c""#;
    const U: &str = r#"tag == "u""#;
    vec![
        query(
            &["k1"],
            None,
            &[(("process", A, &[]), 1), (("process", B, &[]), 1)],
            None,
        ),
        query(
            &["k1"],
            Some("1s"),
            &[
                (("process", A, &[]), 1),
                (("file", B, &[]), 1),
                (("any", C, &[]), 1),
            ],
            None,
        ),
        query(
            &["k1", "k2"],
            Some("1s"),
            &[
                (("any", A, &[]), 1),
                (("any", r#"tag in ("b", "c")"#, &[]), 1),
            ],
            None,
        ),
        query(
            &[],
            Some("2s"),
            &[(("process", A, &["k1"]), 1), (("process", B, &["k3"]), 1)],
            Some(("any", U, &["k1"])),
        ),
        query(&["k1"], None, &[(("process", A, &[]), 3)], None),
        query(
            &[],
            Some("1s"),
            &[
                (("any", r#"tag in ("a", "b")"#, &["k1"]), 1),
                (("any", r#"tag in ("b", "c")"#, &["k1"]), 1),
                (("any", C, &["k1"]), 1),
            ],
            None,
        ),
        query(
            &[],
            Some("1s"),
            &[(("process", A, &[]), 1), (("process", B, &[]), 1)],
            None,
        ),
        query(
            &["?k1"],
            None,
            &[(("process", A, &[]), 1), (("network", B, &[]), 1)],
            None,
        ),
        query(
            &["k2"],
            None,
            &[(("process", A, &[]), 1), (("process", B, &[]), 1)],
            Some(("process", U, &[])),
        ),
        query(
            &["k1"],
            Some("1s"),
            &[
                (("process", A, &[]), 1),
                (("process", B, &[]), 2),
                (("process", C, &[]), 1),
            ],
            None,
        ),
        query(
            &["k1", "?k3"],
            Some("3s"),
            &[(("any", A, &[]), 1), (("any", B, &[]), 1)],
            Some(("file", U, &[])),
        ),
    ]
}

fn ours(q: &str, events: &[Event]) -> Vec<Vec<u32>> {
    let compiled = compile_sequence(q, &GenSchema).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut engine = SequenceEngine::new(SequenceLimits::default());
    engine.add_rule(0, Arc::new(compiled));
    let mut out = Vec::new();
    for e in events {
        engine.on_event(&e.doc, e.ts_ns, &e.id, &mut out);
    }
    out.into_iter().map(|m| m.events).collect()
}

/// The interpreter that has `eql`: the one the `eql` command's script names.
fn eql_python() -> String {
    let script = which_eql();
    let text = std::fs::read_to_string(&script).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.contains(' '))
        .unwrap_or_else(|| "python3".to_string())
}

fn which_eql() -> std::path::PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("eql"))
        .find(|p| p.is_file())
        .unwrap_or_default()
}

fn python(qs: &[DiffQuery], events: &[Event]) -> Vec<Vec<Vec<u32>>> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/eql_diff/sequences.py");
    let spec = json!({
        "queries": qs.iter().map(|q| q.python.clone()).collect::<Vec<_>>(),
        "events": events.iter().map(Event::json).collect::<Vec<_>>(),
    });
    let mut child = Command::new(eql_python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sequences.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(v["matches"].clone()).unwrap()
}

/// Both engines on `streams` generated streams of `len` events; returns the number of
/// matches compared. Panics listing every disagreement.
pub fn differential(streams: u64, len: u32) -> usize {
    let qs = queries();
    let mut compared = 0;
    let mut failures = Vec::new();
    for seed in 1..=streams {
        let events = stream(seed, len);
        let theirs = python(&qs, &events);
        for (q, mut want) in qs.iter().zip(theirs) {
            let mut got = ours(&q.ours, &events);
            got.sort();
            want.sort();
            compared += want.len();
            if got != want {
                let only_ours: Vec<_> = got.iter().filter(|m| !want.contains(m)).collect();
                let only_python: Vec<_> = want.iter().filter(|m| !got.contains(m)).collect();
                failures.push(format!(
                    "seed {seed}: {}\n  only ours: {only_ours:?}\n  only python: {only_python:?}",
                    q.ours
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    compared
}
