//! Deciding on the snapshot changes nothing: the terms hit and their keys are those of the
//! built document whenever the snapshot decides, a kept event's document is the one built
//! when it happened, and the daemon's pipeline raises the same sequence alerts, with the
//! same building blocks, whether it builds every document or none.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{LazyEvent, SnapshotDoc, SnapshotFields};
use crate::alert::AlertPolicy;
use crate::alert::sequence::engine::{Limits, for_rules};
use crate::alert::sequence::{SequenceSettings, rules as seq_rules};
use crate::daemon::{Detection, EventPipeline};
use crate::ecs::DocBuilder;
use crate::ecs::probe_testkit::{builder, snapshots};
use crate::event::ProcessEvent;
use crate::process::ProcessTable;
use crate::rules::{RuleSet, SequenceRule};
use crate::sink::{Delivery, Sink, SinkCounters};
use crate::testsupport::stream::{Shape, fork_exec_exit};
use crate::testsupport::{Corpus, Need, corpus, require};

/// A sequence rule file `name` with `query`, in `dir`.
fn rule_file(dir: &std::path::Path, name: &str, query: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[metadata]\ncreation_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"test\"]\n\
             description = \"d\"\nlanguage = \"eql\"\nlicense = \"Elastic License v2\"\n\
             name = \"{name}\"\nrisk_score = 47\nrule_id = \"{name}\"\nseverity = \"medium\"\n\
             type = \"eql\"\nquery = '''\n{query}\n'''\n"
        ),
    )
    .unwrap();
    path
}

/// Sequence rules joining on every identity field the snapshot reads, and on fields it
/// cannot tell (`process.start`: the decision must then be "undecided").
fn own_rules(dir: &std::path::Path) -> Vec<PathBuf> {
    [
        (
            "as_of",
            "sequence by process.entity_id with maxspan=1m\n  \
             [process where event.action == \"fork\"]\n  \
             [process where event.action == \"exec\" and process.name == \"id\"]",
        ),
        (
            "parent_keys",
            "sequence by process.parent.entity_id, process.parent.pid with maxspan=1m\n  \
             [process where event.type == \"start\"] by process.pid\n  \
             [process where event.type == \"end\"] by process.pid",
        ),
        (
            "leaders",
            "sequence by process.session_leader.entity_id, process.group_leader.pid, \
             ?process.entry_leader.entity_id with maxspan=1m\n  \
             [process where event.action == \"exec\"]\n  \
             [process where event.action == \"end\"]",
        ),
        (
            "unknown",
            "sequence by process.start with maxspan=1m\n  \
             [process where event.action == \"exec\"]\n  \
             [process where event.action == \"end\"]",
        ),
    ]
    .iter()
    .map(|(n, q)| rule_file(dir, n, q))
    .collect()
}

/// `paths`' sequence rules that `run` accepts.
fn load(paths: &[PathBuf]) -> Vec<SequenceRule> {
    let (_, seqs, _) = seq_rules::load(paths, crate::ecs::schema());
    for own in ["as_of", "parent_keys", "leaders", "unknown"] {
        assert!(
            seqs.iter().any(|r| r.meta.name == own),
            "{own} did not load"
        );
    }
    runnable(seqs)
}

/// The rules of `seqs` that `run` accepts (it refuses terms on events the sensor does not
/// produce).
fn runnable(seqs: Vec<SequenceRule>) -> Vec<SequenceRule> {
    let refused: Vec<PathBuf> = seq_rules::refuse_unproducible(&seqs, seq_rules::SENSOR_CATEGORIES)
        .into_iter()
        .map(|e| e.file)
        .collect();
    seqs.into_iter()
        .filter(|r| !refused.contains(&r.path))
        .collect()
}

/// A single-event rule every event matches: with it, the pipeline builds every document.
fn every_event(dir: &std::path::Path) -> RuleSet {
    let every = rule_file(dir, "every_event", "process where event.kind == \"event\"");
    let (every, _, errors) = seq_rules::load(&[every], crate::ecs::schema());
    assert!(errors.is_empty(), "{errors:?}");
    every
}

/// The rules of both tests: ours, and the Linux corpus's when it is there.
fn all_rules(dir: &std::path::Path) -> Vec<SequenceRule> {
    let mut paths = own_rules(dir);
    if require(
        "alert::sequence::lazy: corpus rules",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        paths.push(corpus(Corpus::ElasticLinux));
    }
    load(&paths)
}

#[test]
fn decided_hits_are_the_documents_and_so_is_the_kept_event() {
    let dir = tempfile::tempdir().unwrap();
    let rules = all_rules(dir.path());
    let mut engine = for_rules(
        &rules,
        Limits {
            total: 1000,
            per_rule: 1000,
            max_age_ns: 1_000_000_000,
        },
    );
    let ids = SnapshotFields::new();
    let mut docs = builder();
    let later = Arc::new(Mutex::new(docs.same_host()));
    let (mut decided, mut undecided, mut hit) = (0, 0, 0);
    for (i, snap) in snapshots(0x5e9_1a2e, 4000).into_iter().enumerate() {
        let ev = ProcessEvent {
            exe_path_partial: i % 2 == 0,
            cgroup_path: if i % 3 == 0 {
                Vec::new()
            } else {
                format!("/system.slice/x-{i}.scope").into_bytes()
            },
            ..ProcessEvent::default()
        };
        let doc = docs.build(&snap, Some(&ev));
        let want = format!("{:?}", engine.prepare(&doc));
        let probe = docs.probe(&snap);
        let sd = SnapshotDoc::new(&probe, &snap, &ids);
        let got = engine
            .prepare_from(&sd)
            .expect("the engine reads any document");
        if sd.undecided() {
            undecided += 1;
        } else {
            decided += 1;
            hit += got.is_some() as usize;
            assert_eq!(format!("{got:?}"), want, "snapshot {i}: {snap:?}");
        }
        drop(probe);
        let ts = docs.unix_ns(snap.event_boot_ns);
        assert_eq!(
            Some(ts),
            doc.timestamp
                .as_deref()
                .and_then(crate::alert::clock::EventTime::parse)
                .map(|t| t.unix_nanos())
        );
        let lazy = LazyEvent::new(snap, &ev, Arc::clone(&later));
        assert_eq!(lazy.doc(), doc, "snapshot {i}");
    }
    eprintln!("{decided} decided ({hit} with hits), {undecided} undecided");
    assert!(decided > 1000 && hit > 100 && undecided > 10);
}

/// Keeps every line written.
struct Capture(Arc<Mutex<Vec<Value>>>, Arc<SinkCounters>);

impl Sink for Capture {
    fn write_line(&mut self, line: &[u8]) -> Delivery {
        self.0
            .lock()
            .unwrap()
            .push(serde_json::from_slice(line).unwrap());
        Delivery::Written
    }
    fn retry(&mut self) -> usize {
        0
    }
    fn reopen(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> usize {
        0
    }
    fn counters(&self) -> Arc<SinkCounters> {
        self.1.clone()
    }
    fn name(&self) -> &str {
        "capture"
    }
}

/// Fork, exec and exit of `lives` processes under a few shells (host and containers),
/// programs some sequence rules of the corpus complete on among them.
fn stream(lives: usize) -> Vec<ProcessEvent> {
    const PROGRAMS: &[(&str, &[&str])] = &[
        ("/usr/bin/bash", &["bash", "-c", "ls -la /var/log"]),
        ("/usr/bin/id", &["id", "-u"]),
        ("/usr/bin/python3.11", &["python3", "/app/worker.py", "-v"]),
        ("/usr/bin/base64", &["base64", "-d", "/tmp/x"]),
        ("/usr/bin/ps", &["ps", "-ef"]),
        ("/usr/bin/curl", &["curl", "-fsS", "http://127.0.0.1/x"]),
        ("/usr/bin/sh", &["sh", "-c", "true"]),
    ];
    let shape = Shape {
        containers: 2,
        root_every: Some(7),
        partial_every: Some(5),
    };
    let (mut out, stream) = fork_exec_exit(lives, PROGRAMS, shape);
    out.extend(stream);
    out
}

/// The sequence lines `events` raise through the daemon's pipeline with `rules`
/// (single-event) and `seqs`, the random ids taken out; and the sequence side's counters
/// (events decided on their snapshot, left out as idle).
fn sequence_lines(
    docs: DocBuilder,
    rules: RuleSet,
    seqs: Vec<SequenceRule>,
    events: &[ProcessEvent],
) -> (Vec<Value>, crate::alert::sequence::SequenceStats) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Capture(lines.clone(), Arc::default());
    let mut detection = Detection::new(rules, AlertPolicy::off(), vec![Box::new(sink)]);
    detection.configure_sequences(seqs, SequenceSettings::default());
    let table = ProcessTable::events_only("6f1e5c1e-0000-4000-8000-0000000000aa");
    let mut p = EventPipeline::new(table, docs, detection);
    for ev in events {
        p.handle(ev);
    }
    p.detection.finish();
    let counted = p.detection.stats().sequences;
    let mut out: Vec<Value> = std::mem::take(&mut *lines.lock().unwrap())
        .into_iter()
        .filter(|l| l.pointer("/detector/sequence").is_some())
        .collect();
    for l in &mut out {
        let o = l.as_object_mut().unwrap();
        o.remove("kibana");
        let e = o["event"].as_object_mut().unwrap();
        e.remove("id");
        e.remove("created");
        o["detector"]["sequence"]
            .as_object_mut()
            .unwrap()
            .remove("group_id");
    }
    (out, counted)
}

/// The pipeline raises the same sequence alerts, every building block the same document,
/// whether every event's document is built (a single-event rule wants each) or the
/// sequences decide on snapshots; and a block is its event as of the event: the first
/// block of `as_of` (a fork) names the process as it was before the exec that completed
/// the sequence.
#[test]
fn the_pipeline_raises_the_same_sequences_without_documents() {
    let dir = tempfile::tempdir().unwrap();
    let seqs = || all_rules(dir.path());
    let events = stream(600);
    let every = every_event(dir.path());
    // One host, one boot time: the two runs' dates are the same.
    let docs = builder();
    let (built, built_counts) = sequence_lines(docs.same_host(), every, seqs(), &events);
    let (lazy, lazy_counts) = sequence_lines(
        docs.same_host(),
        RuleSet::new(Vec::new(), crate::ecs::schema()),
        seqs(),
        &events,
    );
    assert_eq!(built_counts.decided, 0);
    let decided = lazy_counts.decided;
    eprintln!(
        "{decided} of {} events decided on their snapshot",
        events.len()
    );
    assert!(decided > 500, "{decided} events decided on their snapshot");
    assert_same(&built, &lazy);
    assert_eq!(built_counts.idle.skipped, 0);
    // `as_of`: the fork's block is `bash`, the exec's `id`, of the same process.
    let as_of: Vec<&Value> = lazy
        .iter()
        .filter(|l| l.pointer("/rule/name").and_then(Value::as_str) == Some("as_of"))
        .collect();
    assert!(as_of.len() >= 3 * 10, "{}", as_of.len());
    for group in as_of.chunks(3) {
        let name = |v: &Value| {
            v.pointer("/process/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let action = |v: &Value| {
            v.pointer("/event/action")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        assert_eq!(action(group[0]).as_deref(), Some("fork"), "{group:?}");
        assert_eq!(name(group[0]).as_deref(), Some("bash"), "{group:?}");
        assert_eq!(action(group[1]).as_deref(), Some("exec"));
        assert_eq!(name(group[1]).as_deref(), Some("id"));
        assert_eq!(
            group[0].pointer("/process/entity_id"),
            group[1].pointer("/process/entity_id")
        );
    }
}

/// Two runs' sequence lines are the same, and there are some.
fn assert_same(built: &[Value], lazy: &[Value]) {
    assert!(!built.is_empty());
    assert_eq!(built.len(), lazy.len());
    for (b, l) in built.iter().zip(lazy) {
        assert_eq!(b, l);
    }
}

/// With the corpus's rules alone (our own rules start on every event, so none of theirs
/// is ever idle), most events are left out as idle ([`super::super::idle`]) before their
/// snapshot, and the pipeline still raises the same sequence alerts as when every
/// document is built (where nothing is left out).
#[test]
fn events_left_out_as_idle_change_no_alert() {
    if !require(
        "alert::sequence::lazy: idle events",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let every = every_event(dir.path());
    let seqs = || {
        let (_, seqs, _) = seq_rules::load(&[corpus(Corpus::ElasticLinux)], crate::ecs::schema());
        runnable(seqs)
    };
    let events = stream(600);
    let docs = builder();
    let (built, built_counts) = sequence_lines(docs.same_host(), every, seqs(), &events);
    let empty = RuleSet::new(Vec::new(), crate::ecs::schema());
    let (lazy, lazy_counts) = sequence_lines(docs.same_host(), empty, seqs(), &events);
    eprintln!("idle: {:?} of {} events", lazy_counts.idle, events.len());
    assert_eq!(built_counts.idle.skipped, 0);
    assert!(lazy_counts.idle.skipped > 100, "{:?}", lazy_counts.idle);
    assert_eq!(lazy_counts.idle.crossed, 0);
    assert_same(&built, &lazy);
}

/// Decisions remembered by probe key ([`super::super::termcache`]) are the documents':
/// every snapshot decided twice through one stage (the second time from the cache), each
/// decided answer equal to the engine's over the built document.
#[test]
fn remembered_term_decisions_are_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let rules = all_rules(dir.path());
    let limits = Limits {
        total: 1000,
        per_rule: 1000,
        max_age_ns: 1_000_000_000,
    };
    let mut engine = for_rules(&rules, limits);
    let mut stage = crate::alert::sequence::SequenceStage::new(
        &rules,
        SequenceSettings {
            limits,
            ..SequenceSettings::default()
        },
    );
    let mut docs = builder();
    // Few enough that every key stays remembered (keys of these snapshots are long).
    let snaps = snapshots(0x7e2_3ca5, 800);
    let (mut decided, mut hit) = (0, 0);
    for round in 0..2 {
        for (i, snap) in snaps.iter().enumerate() {
            let doc = docs.build(snap, None);
            let want = engine.prepare(&doc);
            let probe = docs.probe(snap);
            match stage.decide(&probe, snap) {
                super::super::Decision::Undecided => {}
                super::super::Decision::NoTerm => {
                    decided += 1;
                    assert!(want.is_none(), "round {round}, snapshot {i}: {want:?}");
                }
                super::super::Decision::Hits(p) => {
                    decided += 1;
                    hit += 1;
                    assert_eq!(
                        format!("{:?}", Some(p)),
                        format!("{want:?}"),
                        "round {round}, snapshot {i}"
                    );
                }
            }
        }
    }
    let cached = stage.term_cache.hits;
    eprintln!("{decided} decided ({hit} with hits), {cached} from the cache");
    assert!(decided > 300 && hit > 100 && cached >= 500, "{cached}");
}
