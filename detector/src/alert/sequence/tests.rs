//! The sequence stage with a scripted correlator: ordering, bodies kept only for events the
//! engine holds, completed sequences read back, and the alert shape.

use serde_json::{Value, json};

use super::engine::{Correlate, EngineStats, Handle, Matched, Prepared};
use super::*;

/// `a` then `b` with the same `process.pid` (one pending `a` per pid); everything else is
/// ignored. Records the order events came in.
#[derive(Default)]
struct Script {
    pending: Vec<(i64, Handle)>,
    seen: Vec<String>,
    matched: u64,
}

fn name(doc: &EcsDocument) -> &str {
    doc.process
        .as_ref()
        .and_then(|p| p.core.name.as_deref())
        .unwrap_or("")
}

fn pid(doc: &EcsDocument) -> i64 {
    doc.process
        .as_ref()
        .and_then(|p| p.core.pid)
        .map_or(0, i64::from)
}

impl Correlate for Script {
    fn is_empty(&self) -> bool {
        false
    }
    fn rule_count(&self) -> usize {
        1
    }
    fn wants(&self, doc: &EcsDocument) -> bool {
        name(doc) != "ignored"
    }
    fn prepare(&mut self, doc: &EcsDocument) -> Option<Prepared> {
        Some(Prepared::Doc(Box::new(doc.clone())))
    }
    fn on_event(&mut self, ev: &Prepared, _ts: i64, event: Handle, out: &mut Vec<Matched>) {
        let Prepared::Doc(doc) = ev else {
            panic!("the script prepares documents");
        };
        self.seen.push(format!("{}{}", name(doc), pid(doc)));
        let key = pid(doc);
        match name(doc) {
            "a" => {
                self.pending.retain(|(k, _)| *k != key);
                self.pending.push((key, event));
            }
            "b" => {
                if let Some(i) = self.pending.iter().position(|(k, _)| *k == key) {
                    let (_, first) = self.pending.remove(i);
                    self.matched += 1;
                    out.push(Matched {
                        rule: 0,
                        events: vec![first, event],
                        join_key: vec![json!(key)],
                    });
                }
            }
            _ => {}
        }
    }
    fn expire(&mut self, _now_ns: i64, _out: &mut Vec<Matched>) {}
    fn stats(&self) -> EngineStats {
        EngineStats {
            pending: self.pending.len() as u64,
            matched: self.matched,
            ..EngineStats::default()
        }
    }
}

fn doc(name: &str, pid: i64, ms: u32) -> EcsDocument {
    let mut d = EcsDocument::process_event("exec", "start");
    d.timestamp = Some(format!("2026-12-05T12:00:00.{ms:03}Z"));
    let mut p = crate::ecs::Process::default();
    p.core.name = Some(name.into());
    p.core.pid = Some(pid as u32);
    d.process = Some(p);
    d
}

fn stage(window_ms: i64) -> SequenceStage {
    let settings = SequenceSettings {
        reorder_window_ns: window_ms * 1_000_000,
        ..SequenceSettings::default()
    };
    SequenceStage::with_engine(Box::new(Script::default()), settings)
}

#[test]
fn out_of_order_arrival_within_the_window_still_completes_the_sequence() {
    let mut s = stage(50);
    let mut out = Vec::new();
    // `b` is read before `a` but happened after it.
    s.offer(&doc("b", 7, 20), None, &mut out);
    s.offer(&doc("a", 7, 10), None, &mut out);
    assert!(out.is_empty(), "the window still holds both");
    s.finish(false, &mut out);
    assert_eq!(out.len(), 1);
    let c = &out[0];
    let names: Vec<&str> = c
        .events
        .iter()
        .map(|e| e["process"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(
        c.last.timestamp.as_deref(),
        Some("2026-12-05T12:00:00.020Z")
    );
    assert_eq!(c.join_key, [json!(7)]);
    assert_eq!(s.stats().reorder.reordered, 1);
}

#[test]
fn without_the_window_the_same_arrival_misses_and_counts_the_late_event() {
    let mut s = stage(0);
    let mut out = Vec::new();
    s.offer(&doc("b", 7, 20), None, &mut out);
    s.offer(&doc("a", 7, 10), None, &mut out);
    s.finish(false, &mut out);
    assert!(out.is_empty());
    let st = s.stats();
    assert_eq!((st.reorder.late, st.events_lost()), (1, 1));
}

#[test]
fn bodies_are_stored_only_for_events_the_engine_holds() {
    let mut s = stage(0);
    let mut out = Vec::new();
    for (i, n) in ["x", "a", "y", "z", "b"].iter().enumerate() {
        s.offer(&doc(n, 1, i as u32), None, &mut out);
    }
    s.offer(&doc("ignored", 1, 9), None, &mut out);
    assert_eq!(out.len(), 1);
    // `a` (held while pending) and `b` (held in the match): two events kept, not five,
    // and none compressed yet (young).
    let st = s.stats().bodies;
    assert_eq!((st.kept, st.stored), (2, 0));
}

#[test]
fn untimed_events_are_counted_not_fed() {
    let mut s = stage(10);
    let mut out = Vec::new();
    let mut d = doc("a", 1, 0);
    d.timestamp = None;
    s.offer(&d, None, &mut out);
    assert_eq!(s.stats().untimed, 1);
    assert_eq!(s.stats().reorder.admitted, 0);
}

#[test]
fn raw_json_is_what_the_building_block_shows() {
    let mut s = stage(0);
    let mut out = Vec::new();
    let raw_a = br#"{"@timestamp":"2026-12-05T12:00:00.001Z","process":{"name":"a","pid":3},"file":{"path":"/etc/shadow"}}"#;
    s.offer(&doc("a", 3, 1), Some(raw_a), &mut out);
    s.offer(&doc("b", 3, 2), None, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].events[0]["file"]["path"], "/etc/shadow");
}

#[test]
fn a_sequence_becomes_building_blocks_then_a_shell_sharing_a_group_id() {
    let meta = crate::rules::meta::RuleMeta {
        rule_id: "r-1".into(),
        name: "A then B".into(),
        ..Default::default()
    };
    let t = crate::alert::AlertTemplate::new(&meta);
    let mut a = serde_json::to_value(doc("a", 5, 1)).unwrap();
    let mut b = serde_json::to_value(doc("b", 5, 2)).unwrap();
    a["host"] = json!({"name": "box"});
    b["host"] = json!({"name": "box"});
    let lines = shape::build(
        &t,
        shape::Group {
            events: vec![a, b],
            join_key: vec![json!(5)],
        },
    );
    assert_eq!(lines.len(), 3);
    let gid = lines[2]["kibana"]["alert"]["group"]["id"].as_str().unwrap();
    assert_eq!(lines[2]["event"]["id"], gid);
    assert_eq!(lines[2]["kibana"]["alert"]["uuid"], gid);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["event"]["kind"], "alert", "line {i}");
        assert_eq!(l["rule"]["id"], "r-1");
        assert_eq!(l["message"], "A then B");
        assert_eq!(l["kibana"]["alert"]["group"]["id"], gid);
        assert_eq!(l["detector"]["sequence"]["group_id"], gid);
        assert_eq!(l["detector"]["sequence"]["events"], 2);
    }
    for (i, l) in lines.iter().take(2).enumerate() {
        assert_eq!(l["kibana"]["alert"]["building_block_type"], "default");
        assert_eq!(l["kibana"]["alert"]["group"]["index"], i);
        assert_ne!(l["event"]["id"], gid);
        assert_eq!(l["event"]["action"], "exec", "the event keeps its action");
    }
    assert_eq!(lines[0]["process"]["name"], "a");
    assert_eq!(lines[1]["process"]["name"], "b");
    // The shell: shared fields only, the span of the sequence, no building-block marks.
    let shell = &lines[2];
    assert_eq!(shell["host"]["name"], "box");
    assert_eq!(shell["process"]["pid"], 5);
    assert_eq!(shell["process"].get("name"), None);
    assert_eq!(shell["kibana"]["alert"].get("building_block_type"), None);
    assert_eq!(shell["kibana"]["alert"]["group"].get("index"), None);
    assert_eq!(shell["event"]["start"], "2026-12-05T12:00:00.001Z");
    assert_eq!(shell["event"]["end"], "2026-12-05T12:00:00.002Z");
    assert_eq!(shell["@timestamp"], "2026-12-05T12:00:00.002Z");
    // Every line is one JSON object on one line.
    for l in &lines {
        let text = serde_json::to_string(l).unwrap();
        assert!(!text.contains('\n'));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert!(back.is_object());
    }
}

/// A sequence rule file, through the loader of both kinds.
fn seq_rule(name: &str, query: &str) -> SequenceRule {
    let text = format!(
        "[metadata]\ncreation_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"t\"]\ndescription = \"d\"\n\
         language = \"eql\"\nlicense = \"Elastic License v2\"\nname = \"{name}\"\nrisk_score = 47\n\
         rule_id = \"{name}-id\"\nseverity = \"medium\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
    );
    match crate::rules::parse_any_rule(std::path::Path::new("t.toml"), &text, crate::ecs::schema())
    {
        Ok(crate::rules::LoadedRule::Sequence(r)) => r,
        Ok(_) => panic!("not a sequence"),
        Err(e) => panic!("{e}"),
    }
}

fn real_stage(window_ms: i64) -> crate::alert::AlertStage {
    let seq = seq_rule(
        "a-then-b",
        "sequence by process.pid with maxspan=1s\n  [process where process.name == \"a\"]\n  [process where process.name == \"b\"]",
    );
    let settings = SequenceSettings {
        reorder_window_ns: window_ms * 1_000_000,
        ..SequenceSettings::default()
    };
    crate::alert::AlertStage::with_sequences(
        crate::rules::RuleSet::new(Vec::new(), crate::ecs::schema()),
        vec![seq],
        crate::alert::AlertPolicy::off(),
        settings,
    )
}

/// Every line the stage writes for `docs` (then the end of input), as JSON.
fn lines_of(stage: &mut crate::alert::AlertStage, docs: &[EcsDocument]) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut keep = |a: crate::alert::AlertLine<'_>| {
        lines.push(serde_json::from_slice::<Value>(a.line).unwrap());
    };
    for d in docs {
        stage.evaluate(d, &mut keep);
    }
    stage.end_of_input(&mut keep);
    stage.finish(&mut keep);
    lines
}

#[test]
fn the_real_engine_completes_a_sequence_through_the_alert_stage() {
    let mut stage = real_stage(100);
    // Read out of order (b first), within the window; a near miss on another key.
    let lines = lines_of(
        &mut stage,
        &[
            doc("b", 7, 300),
            doc("a", 7, 200),
            doc("a", 8, 250),
            doc("b", 9, 400),
        ],
    );
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(lines[0]["process"]["name"], "a");
    assert_eq!(lines[1]["process"]["name"], "b");
    assert_eq!(lines[2]["rule"]["name"], "a-then-b");
    assert_eq!(lines[2]["detector"]["sequence"]["join_key"], json!(["7"]));
    let st = stage.sequence_stats();
    assert_eq!((st.engine.matched, st.reorder.reordered), (1, 2));
    // Only events the engine held were kept: a(7), a(8), b(7).
    assert_eq!(st.bodies.kept, 3);
}

#[test]
fn the_real_engine_misses_outside_maxspan() {
    let mut stage = real_stage(100);
    let mut late_b = doc("b", 7, 0);
    late_b.timestamp = Some("2026-12-05T12:00:02.000Z".into());
    let lines = lines_of(&mut stage, &[doc("a", 7, 0), late_b]);
    assert!(lines.is_empty(), "{lines:#?}");
}

/// An event kept long enough to be compressed reads back exactly as one still young, and
/// one young event dropped before it settles is never compressed.
#[test]
fn settled_and_young_events_read_back_the_same() {
    let run = |others: usize| {
        let mut s = stage(0);
        let mut out = Vec::new();
        let mut first = doc("a", 1, 0);
        if let Some(p) = first.process.as_mut() {
            p.core.args = vec!["a".into(), "-x".into(), "ünïcode \"quoted\"".into()];
            p.core.executable = Some("/usr/bin/a".into());
        }
        s.offer(&first, None, &mut out);
        // Other pending `a`s (each kept: a pid of its own) push `a(1)` out of the young.
        for i in 0..others {
            s.offer(&doc("a", 100 + i as i64, 1), None, &mut out);
        }
        s.offer(&doc("b", 1, 2), None, &mut out);
        assert_eq!(out.len(), 1);
        let st = s.stats().bodies;
        (out.remove(0).events, st)
    };
    let (young, st_young) = run(0);
    let (settled, st_settled) = run(YOUNG + 10);
    assert_eq!(young, settled);
    assert_eq!(young[0]["process"]["args"][2], "ünïcode \"quoted\"");
    assert_eq!((st_young.kept, st_young.stored), (2, 0));
    assert_eq!(st_settled.kept, YOUNG as u64 + 12);
    // Every event pushed out of the young was still held (a pending `a`): `a(1)` and the
    // eleven oldest of the others (`b` pushed the last one out).
    assert_eq!(st_settled.stored, 12);
    assert!(st_settled.compressed_bytes > 0);
}

/// The document as the alert shows it from a young event is exactly its JSON encoding read
/// back (what a compressed body gives).
#[test]
fn a_young_document_reads_as_its_encoding() {
    let mut d = doc("a", 1, 0);
    d.process.as_mut().unwrap().core.args = vec!["x".into(), "\u{1}\t\"".into()];
    let slot = Slot::default();
    *slot.lock() = Held::Doc(Box::new(d.clone()));
    let young = slot.value().unwrap();
    let mut store = BodyStore::new();
    slot.settle(&mut store);
    assert!(matches!(&*slot.lock(), Held::Body(_)));
    assert_eq!(slot.value().unwrap(), young);
    let encoded: Value = serde_json::from_slice(&serde_json::to_vec(&d).unwrap()).unwrap();
    assert_eq!(young, encoded);
}
