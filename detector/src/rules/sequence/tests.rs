//! Unit tests of the sequence engine: Elasticsearch's semantics case by case, and the
//! bounds. Event ids are handles (`u32`); `t` is `process.name`, keys are `user.id`
//! (keyword), `process.pid` (long) and `container.id` (keyword).

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::rules::testkit::{TestDoc, TestSchema};

/// One event: (id, @timestamp ms, category, fields).
type Ev = (u32, i64, &'static str, Value);

fn q(text: &str) -> Arc<SequenceQuery> {
    Arc::new(compile_sequence(text, &TestSchema).unwrap_or_else(|e| panic!("{text}: {e}")))
}

fn doc(cat: &str, fields: &Value) -> TestDoc {
    let mut v = fields.as_object().cloned().unwrap_or_default();
    v.insert("event.category".into(), json!([cat]));
    TestDoc::from_json(&Value::Object(v))
}

/// Runs `events` (ms timestamps) through one rule, then expires far in the future;
/// returns each match's event ids. Runs twice, with and without the term index, which
/// must agree.
fn run_with(limits: SequenceLimits, text: &str, events: &[Ev]) -> Vec<Vec<u32>> {
    let mut results = [false, true].map(|indexed| {
        let mut e = SequenceEngine::new(limits);
        e.add_rule(7, q(text));
        if indexed {
            e.build_index(&TestSchema).unwrap();
            assert!(e.is_indexed());
        }
        let mut out = Vec::new();
        for (id, ms, cat, f) in events {
            e.on_event(&doc(cat, f), ms * 1_000_000, id, &mut out);
            // The memory estimate kept as the state changes is the scanned one.
            assert_eq!(e.approx_bytes(), e.approx_bytes_scanned(), "{text}");
        }
        e.expire(i64::MAX / 2, &mut out);
        assert_eq!(e.approx_bytes(), e.approx_bytes_scanned(), "{text}");
        assert!(out.iter().all(|m| m.rule == 7));
        out.into_iter().map(|m| m.events).collect::<Vec<_>>()
    });
    assert_eq!(
        results[0], results[1],
        "indexed and unindexed differ: {text}"
    );
    std::mem::take(&mut results[0])
}

fn run(text: &str, events: &[Ev]) -> Vec<Vec<u32>> {
    run_with(SequenceLimits::default(), text, events)
}

fn p(id: u32, ms: i64, t: &str, user: &str) -> Ev {
    (
        id,
        ms,
        "process",
        json!({"process.name": t, "user.id": user}),
    )
}

const AB: &str = r#"sequence by user.id [process where process.name == "a"] [process where process.name == "b"]"#;

#[test]
fn a_newer_first_event_replaces_the_pending_one() {
    let evs = [
        p(1, 1, "a", "u"),
        p(2, 2, "a", "u"),
        p(3, 3, "b", "u"),
        p(4, 4, "b", "u"),
    ];
    assert_eq!(run(AB, &evs), [[2, 3]]);
}

#[test]
fn join_keys_are_exact_and_case_sensitive() {
    // Elasticsearch's SequenceKey compares the key values with equals (case-sensitive);
    // Python eql joins "U" with "u" (see tests/eql_diff/sequences.rs).
    let evs = [
        p(1, 1, "a", "U"),
        p(2, 2, "b", "u"),
        p(3, 3, "a", "v"),
        p(4, 4, "b", "v"),
    ];
    assert_eq!(run(AB, &evs), [[3, 4]]);
}

#[test]
fn a_string_key_never_equals_a_number() {
    let text = r#"sequence [process where process.name == "a"] by process.pid [process where process.name == "b"] by user.id"#;
    let evs = [
        (
            1,
            1,
            "process",
            json!({"process.name": "a", "process.pid": 5}),
        ),
        (
            2,
            2,
            "process",
            json!({"process.name": "b", "user.id": "5"}),
        ),
    ];
    assert!(run(text, &evs).is_empty());
}

#[test]
fn terms_join_positionally_on_different_fields() {
    let text = r#"sequence by container.id [process where process.name == "a"] by user.id [process where process.name == "b"] by process.parent.entity_id"#;
    let evs = [
        (
            1,
            1,
            "process",
            json!({"process.name": "a", "user.id": "x", "container.id": "c"}),
        ),
        (
            2,
            2,
            "process",
            json!({"process.name": "b", "process.parent.entity_id": "x", "container.id": "d"}),
        ),
        (
            3,
            3,
            "process",
            json!({"process.name": "b", "process.parent.entity_id": "x", "container.id": "c"}),
        ),
    ];
    let mut e = SequenceEngine::new(SequenceLimits::default());
    e.add_rule(0, q(text));
    let mut out = Vec::new();
    for (id, ms, cat, f) in &evs {
        e.on_event(&doc(cat, f), ms * 1_000_000, id, &mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].events, [1, 3]);
    assert_eq!(
        out[0].join_key,
        [KeyValue::Str("c".into()), KeyValue::Str("x".into())]
    );
    assert_eq!(out[0].timestamps, [1_000_000, 3_000_000]);
}

#[test]
fn maxspan_is_inclusive_from_first_to_last() {
    let text = r#"sequence by user.id with maxspan=10ms [process where process.name == "a"] [process where process.name == "b"] [process where process.name == "c"]"#;
    let ok = [p(1, 0, "a", "u"), p(2, 5, "b", "u"), p(3, 10, "c", "u")];
    assert_eq!(run(text, &ok), [[1, 2, 3]]);
    let late = [p(1, 0, "a", "u"), p(2, 5, "b", "u"), p(3, 11, "c", "u")];
    assert!(run(text, &late).is_empty());
    // 1.5s is accepted, as by Elasticsearch.
    let frac = r#"sequence by user.id with maxspan=0.5s [process where process.name == "a"] [process where process.name == "b"]"#;
    assert_eq!(
        run(frac, &[p(1, 0, "a", "u"), p(2, 500, "b", "u")]),
        [[1, 2]]
    );
    assert!(run(frac, &[p(1, 0, "a", "u"), p(2, 501, "b", "u")]).is_empty());
}

#[test]
fn an_advancing_sequence_overrides_the_next_stage() {
    let text = r#"sequence by user.id [process where process.name == "a"] [process where process.name == "b"] [process where process.name == "c"]"#;
    // 1→2 pending at stage 1; 3 (a) then 4 (b) advance 3 to stage 1, replacing 1,2.
    let evs = [
        p(1, 1, "a", "u"),
        p(2, 2, "b", "u"),
        p(3, 3, "a", "u"),
        p(4, 4, "b", "u"),
        p(5, 5, "c", "u"),
    ];
    assert_eq!(run(text, &evs), [[3, 4, 5]]);
}

#[test]
fn an_event_advances_a_sequence_one_stage_at_most() {
    let text = r#"sequence by user.id [process where process.name == "a"] [process where process.name == "a"] [process where process.name == "a"]"#;
    let evs = [
        p(1, 1, "a", "u"),
        p(2, 2, "a", "u"),
        p(3, 3, "a", "u"),
        p(4, 4, "a", "u"),
    ];
    assert_eq!(run(text, &evs), [[1, 2, 3], [2, 3, 4]]);
    // `with runs=3` is the same query.
    let runs = r#"sequence by user.id [process where process.name == "a"] with runs=3"#;
    assert_eq!(run(runs, &evs), [[1, 2, 3], [2, 3, 4]]);
}

#[test]
fn equal_timestamps_follow_arrival_order() {
    let evs = [p(1, 5, "a", "u"), p(2, 5, "b", "u")];
    assert_eq!(run(AB, &evs), [[1, 2]]);
}

#[test]
fn null_join_keys_drop_the_event_unless_optional() {
    // Elasticsearch #79677: non-optional keys are restricted to non-null values; an
    // optional key's null joins null. (Python eql joins nulls either way.)
    let evs = [
        (1, 1, "process", json!({"process.name": "a"})),
        (2, 2, "process", json!({"process.name": "b"})),
    ];
    assert!(run(AB, &evs).is_empty());
    let opt = r#"sequence by ?user.id [process where process.name == "a"] [process where process.name == "b"]"#;
    assert_eq!(run(opt, &evs), [[1, 2]]);
    // An optional key unknown to the schema is always null.
    let unknown = r#"sequence by ?no.such.field [process where process.name == "a"] [process where process.name == "b"]"#;
    assert_eq!(run(unknown, &evs), [[1, 2]]);
}

#[test]
fn until_drops_the_keys_pending_sequences() {
    let text = r#"sequence by user.id [process where process.name == "a"] [process where process.name == "b"] until [process where process.name == "u"]"#;
    let evs = [p(1, 1, "a", "u"), p(2, 2, "u", "u"), p(3, 3, "b", "u")];
    assert!(run(text, &evs).is_empty());
    // Another key's until does nothing.
    let evs = [p(1, 1, "a", "k"), p(2, 2, "u", "other"), p(3, 3, "b", "k")];
    assert_eq!(run(text, &evs), [[1, 3]]);
    // An until event that also starts the sequence kills it (Elasticsearch:
    // `Ordinal.between` is inclusive at the sequence's last event; Python eql keeps it).
    let both = r#"sequence by user.id [process where process.name : "a*"] [process where process.name == "b"] until [process where process.name == "a-until"]"#;
    let evs = [p(1, 1, "a-until", "k"), p(2, 2, "b", "k")];
    assert!(run(both, &evs).is_empty());
}

#[test]
fn categories_filter_on_event_category() {
    let text = r#"sequence by user.id [process where process.name == "a"] [file where process.name == "b"]"#;
    let evs = [
        p(1, 1, "a", "u"),
        p(2, 2, "b", "u"),
        (3, 3, "file", json!({"process.name": "b", "user.id": "u"})),
    ];
    assert_eq!(run(text, &evs), [[1, 3]]);
    let cq = q(text);
    let cats: Vec<_> = cq.categories().map(|(c, _)| c.clone()).collect();
    assert_eq!(
        cats,
        [
            TermCategory::Named("process".into()),
            TermCategory::Named("file".into())
        ]
    );
    let bad: Vec<_> = cq.unproducible_terms(&["process"]).collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        &text[bad[0].category_span.start..bad[0].category_span.end],
        "file"
    );
}

/// Elasticsearch's `test_missing_events.toml` shapes: `missingInBetween`,
/// `positivePlusMissing` (trailing), `leadingSimple`.
#[test]
fn missing_events() {
    let mid = r#"sequence by user.id with maxspan=1s [process where process.name == "a"] ![process where process.name == "m"] [process where process.name == "b"]"#;
    assert_eq!(run(mid, &[p(1, 0, "a", "u"), p(2, 10, "b", "u")]), [[1, 2]]);
    assert!(
        run(
            mid,
            &[p(1, 0, "a", "u"), p(2, 5, "m", "u"), p(3, 10, "b", "u")]
        )
        .is_empty()
    );
    // Another key's missing event does not count.
    assert_eq!(
        run(
            mid,
            &[p(1, 0, "a", "u"), p(2, 5, "m", "v"), p(3, 10, "b", "u")]
        ),
        [[1, 3]]
    );
    let trailing = r#"sequence by user.id with maxspan=1s [process where process.name == "a"] ![process where process.name == "m"]"#;
    assert_eq!(
        run(trailing, &[p(1, 0, "a", "u"), p(2, 1001, "m", "u")]),
        [[1]]
    );
    assert!(run(trailing, &[p(1, 0, "a", "u"), p(2, 1000, "m", "u")]).is_empty());
    let leading = r#"sequence by user.id with maxspan=1s ![process where process.name == "m"] [process where process.name == "a"]"#;
    assert!(run(leading, &[p(1, 0, "m", "u"), p(2, 1000, "a", "u")]).is_empty());
    assert_eq!(
        run(leading, &[p(1, 0, "m", "u"), p(2, 1001, "a", "u")]),
        [[2]]
    );
    // Not reported before its trailing window has passed.
    let mut e = SequenceEngine::new(SequenceLimits::default());
    e.add_rule(0, q(trailing));
    let mut out = Vec::new();
    e.on_event(
        &doc("process", &json!({"process.name": "a", "user.id": "u"})),
        0,
        &1u32,
        &mut out,
    );
    e.expire(999_000_000, &mut out);
    assert!(out.is_empty());
    e.expire(1_000_000_001, &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn compile_errors() {
    let cases: &[(&str, &str)] = &[
        (
            r#"sequence by user.id [process where true] by process.pid [process where true]"#,
            "inconsistent number of join keys",
        ),
        (
            r#"sequence with maxspan=5 [process where true] [process where true]"#,
            "needs a time unit",
        ),
        (
            r#"sequence with maxspan=5y [process where true] [process where true]"#,
            "unknown time unit",
        ),
        (
            r#"sequence [process where true] ![process where true]"#,
            "needs `with maxspan",
        ),
        (
            r#"sequence with maxspan=1s ![process where true] ![process where true]"#,
            "at least one term",
        ),
        (
            r#"sequence by nope [process where true] [process where true]"#,
            "unknown join key field",
        ),
        (r#"process where true"#, "not a sequence"),
    ];
    for (text, want) in cases {
        let e = compile_sequence(text, &TestSchema).unwrap_err();
        assert!(e.message.contains(want), "{text}: {e}");
    }
}

/// 100,000 short-lived keys: with maxspan the pending state stays bounded by what one
/// maxspan holds; with caps the oldest are evicted and counted.
#[test]
fn pending_state_is_bounded() {
    let text = r#"sequence by user.id with maxspan=1s [process where process.name == "a"] [process where process.name == "b"]"#;
    let mut e: SequenceEngine<u32> = SequenceEngine::new(SequenceLimits::default());
    e.add_rule(0, q(text));
    let mut out = Vec::new();
    let mut peak = 0;
    for i in 0..100_000u32 {
        // One new key every 100 µs: 10,000 per maxspan.
        let d = doc(
            "process",
            &json!({"process.name": "a", "user.id": format!("k{i}")}),
        );
        e.on_event(&d, i as i64 * 100_000, &i, &mut out);
        peak = peak.max(e.stats().pending);
    }
    let s = e.stats();
    assert!(peak <= 10_001, "peak {peak}");
    assert_eq!(s.evicted, 0);
    assert!(s.expired >= 89_000, "{s:?}");
    // Caps: 1,000 per rule.
    let limits = SequenceLimits {
        per_rule: 1_000,
        total: 1_500,
        max_age_ns: i64::MAX / 4,
    };
    let mut e: SequenceEngine<u32> = SequenceEngine::new(limits);
    let unbounded = r#"sequence by user.id [process where process.name == "a"] [process where process.name == "b"]"#;
    e.add_rule(0, q(unbounded));
    e.add_rule(1, q(unbounded));
    for i in 0..100_000u32 {
        let d = doc(
            "process",
            &json!({"process.name": "a", "user.id": format!("k{i}")}),
        );
        e.on_event(&d, i as i64, &i, &mut out);
        let s = e.stats();
        assert!(s.pending <= 1_500, "{s:?}");
        assert!(s.pending_per_rule.iter().all(|&(_, n)| n <= 1_000), "{s:?}");
    }
    let s = e.stats();
    assert_eq!(s.pending + s.evicted as usize, 200_000, "{s:?}");
    // The newest survive: the last key still completes.
    let d = doc(
        "process",
        &json!({"process.name": "b", "user.id": "k99999"}),
    );
    e.on_event(&d, 200_000, &0, &mut out);
    assert_eq!(out.len(), 2);
}

/// More than four positive stages (per-key slots on the heap): the same matches, and the
/// memory estimate still the scanned one (`run_with` checks it after every event).
#[test]
fn long_sequences_keep_their_slots_on_the_heap() {
    let text = r#"sequence by user.id [process where process.name == "a"] with runs=5 [process where process.name == "b"]"#;
    let mut evs: Vec<Ev> = (1..=5).map(|i| p(i, i as i64, "a", "u")).collect();
    evs.push(p(6, 6, "a", "v"));
    evs.push(p(7, 7, "b", "u"));
    evs.push(p(8, 8, "b", "v"));
    assert_eq!(run(text, &evs), vec![vec![1, 2, 3, 4, 5, 7]]);
}

/// The term index tells the caller which events no sequence term can match.
#[test]
fn may_match_probe_uses_the_term_index() {
    use crate::ecs::field::{FieldId, FieldValue, Schema};
    struct NameProbe(FieldId, &'static str);
    impl crate::rules::Probe for NameProbe {
        fn field(&self, id: FieldId) -> Option<FieldValue<'_>> {
            (id == self.0).then_some(FieldValue::Str(self.1))
        }
    }
    let name = TestSchema.resolve("process.name").unwrap().id;
    let mut e: SequenceEngine<u32> = SequenceEngine::new(SequenceLimits::default());
    e.add_rule(0, q(AB));
    assert!(
        e.may_match_probe(&NameProbe(name, "zzz")),
        "unindexed: conservative"
    );
    e.build_index(&TestSchema).unwrap();
    assert!(!e.may_match_probe(&NameProbe(name, "zzz")));
    assert!(e.may_match_probe(&NameProbe(name, "a")));
    assert!(e.may_match_probe(&NameProbe(name, "b")));
    let d = doc("process", &json!({"process.name": "zzz", "user.id": "u"}));
    assert_eq!(e.candidate_count(&d), 0);
}
