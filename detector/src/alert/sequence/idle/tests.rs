//! Idle hits left out through the daemon's pipeline: the later term of a rule with nothing
//! under way costs no snapshot, a start makes the rule live again at once, and a start
//! that crosses a left-out event in the ring buffer is counted.

use crate::alert::AlertPolicy;
use crate::alert::sequence::{SequenceSettings, rules as seq_rules};
use crate::daemon::{Detection, EventPipeline};
use crate::ecs::probe_testkit::builder;
use crate::event::{EventKind, ProcessEvent};
use crate::process::ProcessTable;
use crate::rules::RuleSet;

fn ev(kind: EventKind, tgid: u32, ppid: u32, t: u64, argv0: &str) -> ProcessEvent {
    let exe = format!("/usr/bin/{argv0}");
    ProcessEvent {
        kind: Some(kind),
        boot_ns: t,
        pid: tgid,
        tgid,
        ppid,
        actor_pid: ppid,
        cgroup_id: 1,
        cgroup_path: b"/system.slice/session-1.scope".to_vec(),
        ns_pid: tgid,
        start_boot_ns: t,
        comm: argv0.as_bytes().to_vec(),
        filename: exe.clone().into_bytes(),
        exe_path: exe.into_bytes(),
        argv: vec![argv0.as_bytes().to_vec()],
        uid: 1000,
        euid: 1000,
        gid: 1000,
        egid: 1000,
        ..Default::default()
    }
}

/// Fork and exec of `name` as `tgid` under the shell (500), exec at `t`.
fn life(tgid: u32, t: u64, name: &str) -> [ProcessEvent; 2] {
    let mut fork = ev(EventKind::Fork, tgid, 500, t - 1, "bash");
    fork.argv.clear();
    [fork, ev(EventKind::Exec, tgid, 500, t, name)]
}

/// `starter` then any child of `bash` on the same host within a minute.
fn pipeline() -> EventPipeline {
    pair("host.id", "process.parent.name == \"bash\"")
}

/// The pipeline with one sequence rule, `by` a key with maxspan=1m: the exec of `starter`,
/// then an exec where `later` holds; and the shell (500) running.
fn pair(by: &str, later: &str) -> EventPipeline {
    let query = format!(
        "sequence by {by} with maxspan=1m\n  \
         [process where event.action == \"exec\" and process.name == \"starter\"]\n  \
         [process where event.action == \"exec\" and {later}]"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle_pair.toml");
    std::fs::write(
        &path,
        format!(
            "[metadata]\ncreation_date = \"2026/01/01\"\n\n[rule]\nauthor = [\"test\"]\n\
             description = \"d\"\nlanguage = \"eql\"\nlicense = \"Elastic License v2\"\n\
             name = \"idle_pair\"\nrisk_score = 47\nrule_id = \"idle_pair\"\n\
             severity = \"medium\"\ntype = \"eql\"\nquery = '''\n{query}\n'''\n"
        ),
    )
    .unwrap();
    let (_, seqs, errors) = seq_rules::load(&[path], crate::ecs::schema());
    assert!(errors.is_empty() && seqs.len() == 1, "{errors:?}");
    let rules = RuleSet::new(Vec::new(), crate::ecs::schema());
    let mut detection = Detection::new(rules, AlertPolicy::off(), Vec::new());
    detection.configure_sequences(seqs, SequenceSettings::default());
    let table = ProcessTable::events_only("6f1e5c1e-0000-4000-8000-0000000000bb");
    let mut p = EventPipeline::new(table, builder(), detection);
    p.handle(&ev(EventKind::Fork, 500, 1, 1_000, "bash"));
    p.handle(&ev(EventKind::Exec, 500, 1, 2_000, "bash"));
    p
}

#[test]
fn idle_later_terms_are_left_out_until_a_start() {
    let mut p = pipeline();
    let ms = 1_000_000u64;
    // Nothing under way: every child of the shell is left out before its snapshot.
    for i in 0..50u32 {
        for e in life(1_000 + i, 10 * ms + u64::from(i) * ms, "ls") {
            p.handle(&e);
        }
    }
    let idle = p.detection.stage().sequence_stats().idle;
    assert_eq!(idle.skipped, 50, "{idle:?}");
    // A start, then a child: the sequence completes (the child is not left out).
    for e in life(2_000, 100 * ms, "starter")
        .into_iter()
        .chain(life(2_001, 101 * ms, "ls"))
    {
        p.handle(&e);
    }
    p.detection.finish();
    let s = p.detection.stats();
    assert_eq!(s.alerts, 1, "{s:?}");
    assert_eq!(s.sequences.idle.skipped, 50, "{:?}", s.sequences);
    assert_eq!(s.sequences.idle.crossed, 0);
    // Completed: nothing under way again, children are left out again.
    for e in life(3_000, 300 * ms, "ls") {
        p.handle(&e);
    }
    assert_eq!(p.detection.stage().sequence_stats().idle.skipped, 51);
}

/// While a sequence is under way, an event whose *arguments* rule out the later term
/// (fresh ones each time) is still decided before its snapshot: what a probe may hit is
/// remembered by its coarse view, then, as that view asks an argument field, by its
/// arguments; an event they let through completes the sequence.
#[test]
fn arguments_decide_while_a_sequence_is_under_way() {
    let mut p = pair("host.id", "process.args == \"--go\"");
    let ms = 1_000_000u64;
    for e in life(2_000, 100 * ms, "starter") {
        p.handle(&e);
    }
    let skipped = p.stats.skipped;
    for i in 0..40u32 {
        let [fork, mut exec] = life(3_000 + i, 110 * ms + u64::from(i) * ms, "tool");
        exec.argv.push(format!("--stay-{i}").into_bytes());
        p.handle(&fork);
        p.handle(&exec);
    }
    // Every fork and exec decided without a snapshot; the rule stayed live.
    assert_eq!(p.stats.skipped - skipped, 80, "{:?}", p.stats);
    assert_eq!(p.detection.stage().sequence_stats().idle.skipped, 0);
    let [fork, mut exec] = life(4_000, 200 * ms, "tool");
    exec.argv.push(b"--go".to_vec());
    p.handle(&fork);
    p.handle(&exec);
    p.detection.finish();
    assert_eq!(p.detection.stats().alerts, 1, "{:?}", p.detection.stats());
}

/// Fork and exec of `name` as `tgid` under `shell`, exec at `t`.
fn life_under(shell: u32, tgid: u32, t: u64, name: &str) -> [ProcessEvent; 2] {
    let mut fork = ev(EventKind::Fork, tgid, shell, t - 1, "bash");
    fork.argv.clear();
    [fork, ev(EventKind::Exec, tgid, shell, t, name)]
}

/// While a sequence is under way for one join key, later-term hits with other keys are
/// left out after their snapshot (nothing of theirs to advance), the key under way still
/// completes, and a crossing is counted for the key it crossed only.
#[test]
fn hits_of_keys_with_nothing_under_way_are_left_out() {
    let mut p = pair("process.parent.entity_id", "process.name == \"tool\"");
    let ms = 1_000_000u64;
    for shell in [501, 502] {
        p.handle(&ev(EventKind::Fork, shell, 1, 3_000, "bash"));
        p.handle(&ev(EventKind::Exec, shell, 1, 4_000, "bash"));
    }
    // Under way for the children of shell 500.
    for e in life_under(500, 2_000, 100 * ms, "starter") {
        p.handle(&e);
    }
    // Tools under shell 501: their key has nothing under way.
    for i in 0..30u32 {
        for e in life_under(501, 3_000 + i, 110 * ms + u64::from(i) * ms, "tool") {
            p.handle(&e);
        }
    }
    let idle = p.detection.stage().sequence_stats().idle;
    assert_eq!(
        idle,
        super::IdleStats {
            skipped: 30,
            crossed: 0
        }
    );
    // Starts older than the last left-out tool (139 ms), arriving after it: under 501 it
    // crossed a left-out event of its key (counted); under 502 it crossed none.
    let [fork, exec] = life_under(501, 4_000, 138 * ms, "starter");
    p.handle(&fork);
    p.handle(&exec);
    let [fork, exec] = life_under(502, 4_001, 138 * ms, "starter");
    p.handle(&fork);
    p.handle(&exec);
    assert_eq!(p.detection.stage().sequence_stats().idle.crossed, 1);
    // The key under way completes; so does 501's, now started.
    for e in life_under(500, 5_000, 150 * ms, "tool")
        .into_iter()
        .chain(life_under(501, 5_001, 151 * ms, "tool"))
    {
        p.handle(&e);
    }
    p.detection.finish();
    let s = p.detection.stats();
    assert_eq!(s.alerts, 2, "{s:?}");
    assert_eq!(s.sequences.idle.skipped, 30, "{:?}", s.sequences);
}

/// A rule joined on `container.id` takes no host process: the lineage probe knows the
/// key is null, so a host `starter` needs no snapshot (before, it passed as a start).
#[test]
fn terms_whose_join_key_is_known_null_are_not_possible() {
    let mut p = pair("container.id", "process.name == \"tool\"");
    for e in life(2_000, 100_000_000, "starter") {
        p.handle(&e);
    }
    let s = p.detection.stage().sequence_stats();
    assert_eq!(s.decided, 0, "no snapshot was asked about: {s:?}");
    assert_eq!((s.idle.skipped, s.engine.pending), (0, 0), "{s:?}");
}

/// Per-key records stay bounded: past the bound they fold into the rule's record, which
/// a crossing start of any key then meets; waiting starts are counted per key.
#[test]
fn per_key_records_are_bounded() {
    let mut by_key = super::keys::ByKey::default();
    let mut by_rule = vec![i64::MIN; 2];
    for i in 0..10_000i64 {
        by_key.leave_out(1, &i.to_le_bytes(), 1_000 + i, &mut by_rule);
        assert!(by_key.held().1 <= 4096);
    }
    assert_eq!(by_rule[0], i64::MIN, "other rules untouched");
    assert!(by_rule[1] >= 1_000 + 4095, "folded: {}", by_rule[1]);
    // A start of another key of rule 1, older than a folded record: the rule's record
    // (checked by the caller) sees it; the per-key one knows only what it still holds.
    assert!(!by_key.entered(1, b"new key", 0));
    assert!(by_key.waiting(1, b"new key"));
    assert!(!by_key.waiting(0, b"new key"));
    assert!(by_key.entered(1, &9_999i64.to_le_bytes(), 1_000));
    by_key.left(1, b"new key");
    by_key.left(1, &9_999i64.to_le_bytes());
    assert!(!by_key.waiting(1, b"new key"));
    assert_eq!(by_key.held().0, 0);
}

/// A start that reaches the daemon after a left-out event with a later `@timestamp` (two
/// CPUs' events crossing in the ring buffer): Elasticsearch would complete the sequence
/// with the left-out event; the daemon counts the crossing instead of keeping every event.
#[test]
fn a_start_crossing_a_left_out_event_is_counted() {
    let mut p = pipeline();
    let ms = 1_000_000u64;
    let [start_fork, start_exec] = life(2_000, 100 * ms, "starter");
    p.handle(&start_fork);
    for e in life(2_001, 101 * ms, "ls") {
        p.handle(&e);
    }
    // The start's exec (100 ms) arrives after the child's (101 ms), within the window.
    p.handle(&start_exec);
    p.detection.finish();
    let s = p.detection.stats();
    assert_eq!(s.sequences.idle.skipped, 1, "{:?}", s.sequences);
    assert_eq!(s.sequences.idle.crossed, 1, "{:?}", s.sequences);
    assert_eq!(s.sequences.reorder.late, 0);
    assert_eq!(s.alerts, 0);
}

/// A correlator that says no term can hit anything, counting how often it is asked.
#[derive(Default)]
struct NoTerms(std::cell::Cell<u32>);

impl crate::alert::sequence::engine::Correlate for NoTerms {
    fn is_empty(&self) -> bool {
        false
    }
    fn rule_count(&self) -> usize {
        1
    }
    fn wants(&self, _doc: &crate::ecs::EcsDocument) -> bool {
        false
    }
    fn prepare(
        &mut self,
        _doc: &crate::ecs::EcsDocument,
    ) -> Option<crate::alert::sequence::engine::Prepared> {
        None
    }
    fn possible_terms(
        &self,
        _probe: &dyn crate::rules::Probe,
        out: &mut Vec<crate::rules::sequence::TermRef>,
    ) -> bool {
        self.0.set(self.0.get() + 1);
        out.clear();
        true
    }
    fn on_event(
        &mut self,
        _ev: &crate::alert::sequence::engine::Prepared,
        _ts: i64,
        _event: crate::alert::sequence::engine::Handle,
        _out: &mut Vec<crate::alert::sequence::engine::Matched>,
    ) {
    }
    fn expire(&mut self, _now: i64, _out: &mut Vec<crate::alert::sequence::engine::Matched>) {}
    fn stats(&self) -> crate::alert::sequence::engine::EngineStats {
        Default::default()
    }
}

/// A probe that knows nothing but its key, its own coarse view (the term memory goes by
/// the coarse key).
struct Keyed(Vec<u8>);

impl crate::rules::Probe for Keyed {
    fn field(&self, _f: crate::ecs::field::FieldId) -> Option<crate::ecs::field::FieldValue<'_>> {
        None
    }
    fn coarse_key(&self, max: usize, key: &mut Vec<u8>) -> bool {
        key.clear();
        key.extend_from_slice(&self.0);
        key.len() <= max
    }
    fn with_coarse(&self, f: &mut dyn FnMut(&dyn crate::rules::Probe)) -> bool {
        f(self);
        true
    }
}

/// What a probe may hit is listed once per coarse key; the memory of it is bounded in key bytes
/// (hostile command lines make long, unique keys).
#[test]
fn possible_terms_are_remembered_within_bounds() {
    let engine = NoTerms::default();
    let mut idle = super::IdleSkip::new(1);
    for _ in 0..3 {
        assert_eq!(
            idle.wanted(&engine, &Keyed(b"same".to_vec()), 1),
            Some(false)
        );
    }
    assert_eq!(engine.0.get(), 1);
    for i in 0..5_000u32 {
        let mut key = vec![b'k'; 1_500];
        key.extend_from_slice(&i.to_le_bytes());
        assert_eq!(idle.wanted(&engine, &Keyed(key), 1), Some(false));
        // Two levels, each bounded as the verdict cache: 4,096 keys, 1 MiB of them.
        let (entries, bytes) = idle.memory.held();
        assert!(entries <= 2 * 4096 && bytes <= 2 << 20, "{entries} {bytes}");
    }
    assert_eq!(engine.0.get(), 5_001);
    // A key past the bound is never remembered: asked every time.
    let long = Keyed(vec![b'x'; crate::rules::generations::KEY_MAX + 1]);
    idle.wanted(&engine, &long, 1);
    idle.wanted(&engine, &long, 1);
    assert_eq!(engine.0.get(), 5_003);
}
