//! The table's bound: churn, eviction order, `/proc` listing, reaped records.

use super::*;

#[test]
fn churn_stays_bounded() {
    let mut f = table_with(1_000, 64);
    let t = &mut f.t;
    t.apply(&exec(1, 0, 0, "/sbin/init", &["init"]));
    let mut kept = 0u64;
    let started = std::time::Instant::now();
    for i in 0..100_000u32 {
        let pid = 1_000 + (i % 30_000);
        let start = 1_000 + i as u64;
        let cg = 10_000 + (i as u64 % 500);
        let path = format!("/system.slice/docker-{:064x}.scope", cg);
        let base = ProcessEvent {
            cgroup_id: cg,
            cgroup_path: path.into_bytes(),
            ..ev(EventKind::Fork, pid, 1, start, "w")
        };
        t.apply(&base);
        t.apply(&ProcessEvent {
            kind: Some(EventKind::Exec),
            exe_path: b"/bin/true".to_vec(),
            ..base.clone()
        });
        // Every 7th exit is "lost": those stay live until evicted or their pid is reused.
        if i % 7 != 0 {
            t.apply(&ProcessEvent {
                kind: Some(EventKind::Exit),
                exit_code: Some(0),
                ..base
            });
        } else {
            kept += 1;
        }
        let st = t.stats();
        assert!(
            st.live <= 1_000 && st.exited <= 64,
            "bounded at {i}: {st:?}"
        );
        // The exited-tgid index counts exactly the grace queue; the live set's order and
        // cgroup counts match its records.
        if i % 1_000 == 0 {
            t.exited.assert_consistent();
            t.live.assert_consistent();
        }
    }
    let st = t.stats();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "churn: {} events in {secs:.2} s = {:.0} events/s; {st:?}",
        st.events,
        st.events as f64 / secs
    );
    let (lru, cgroups, queue, refs) = t.index_sizes();
    assert_eq!(lru as u64, st.live, "lru index matches the live map");
    assert_eq!(refs, st.live, "one cgroup reference per live process");
    assert!(cgroups <= 501 && cgroups as u64 == st.cgroups);
    assert!(st.containers.entries <= 64 && queue <= 2 * 64 + 17);
    assert!(
        st.evicted_live + st.pid_reuse >= kept - 1_000,
        "{st:?} kept {kept}"
    );
    assert!(st.evicted_live > 0);
    assert_eq!(st.events, 1 + 100_000 * 2 + (100_000 - kept));
}

/// Found by the end-to-end churn test: after more processes than the bound lived and then
/// exited at once, each exit of an evicted process pushed out another live one, until the
/// table knew almost nothing of what still runs. An exit must not evict.
#[test]
fn exit_of_evicted_process_evicts_nothing() {
    let mut fx = table_with(4, 8);
    for (i, pid) in (10..15u32).enumerate() {
        fx.t.apply(&ev(EventKind::Fork, pid, 1, 100 + i as u64, "sleep"));
    }
    // Five forks into a table of four: the least recently seen (10) was evicted.
    assert_eq!((fx.t.stats().live, fx.t.stats().evicted_live), (4, 1));
    let snap =
        fx.t.apply(&ev(EventKind::Exit, 10, 1, 100, "sleep"))
            .unwrap();
    assert_eq!(snap.subject.pid, 10);
    let st = fx.t.stats();
    assert_eq!((st.live, st.evicted_live), (4, 1), "{st:?}");
    for pid in 11..15 {
        assert!(
            fx.t.current(pid, EventKind::Exit).is_some(),
            "{pid} still known"
        );
    }
}

/// One step of an eviction scenario: events of host processes whose parent (pid 1) the
/// table does not know. Pid `p` starts at tick `p` (`p * 10` ms).
#[derive(Clone, Copy, Debug)]
enum Step {
    Fork(u32),
    /// An exec: the process is seen again.
    Exec(u32),
    Exit(u32),
    /// Forks of pids `a..b` whose exits are lost (short processes, ring overflow).
    Churn(u32, u32),
}

fn step_events(step: Step) -> Vec<ProcessEvent> {
    let start = |p: u32| p as u64 * 10;
    match step {
        Step::Fork(p) => vec![ev(EventKind::Fork, p, 1, start(p), "w")],
        Step::Exec(p) => vec![exec(p, 1, start(p), "/usr/bin/sleep", &["sleep", "100"])],
        Step::Exit(p) => vec![ev(EventKind::Exit, p, 1, start(p), "w")],
        Step::Churn(a, b) => (a..b)
            .map(|p| ev(EventKind::Fork, p, 1, start(p), "w"))
            .collect(),
    }
}

/// A table with `max` records, `grace` exited, and a fixture `/proc` listing `running`
/// (`None`: no `/proc` at all).
fn table_over_proc(max: usize, grace: usize, running: Option<&[u32]>) -> Fx {
    let mut f = table_with(max, grace);
    if let Some(pids) = running {
        let root = f._dir.path().join("proc");
        std::fs::create_dir_all(&root).unwrap();
        for p in pids {
            std::fs::create_dir_all(root.join(p.to_string())).unwrap();
        }
        f.t.cfg.proc_root = Some(root);
    }
    f
}

/// What `max_processes` promises (config docs, README): the bound holds live and exited
/// records together; exited ones leave first, then records of processes `/proc` no longer
/// lists, then the least recently seen running process. A long-lived process is not
/// forgotten because short ones churn with lost exits.
#[test]
#[rustfmt::skip]
fn eviction_order() {
    use Step::*;
    struct Case {
        what: &'static str,
        max: usize,
        grace: usize,
        running: Option<&'static [u32]>,
        steps: &'static [Step],
        live: &'static [u32],
        exited: u64,
        /// (evicted_live, evicted_exited, reaped)
        counts: (u64, u64, u64),
    }
    let cases = [
        Case {
            what: "exited records leave before any live one",
            max: 4, grace: 8, running: None,
            steps: &[Fork(10), Fork(11), Fork(12), Exit(12), Fork(13), Fork(14)],
            live: &[10, 11, 13, 14], exited: 0, counts: (0, 1, 0),
        },
        Case {
            what: "then the least recently seen running process",
            max: 4, grace: 8, running: None,
            steps: &[Fork(10), Fork(11), Fork(12), Fork(13), Exec(10), Fork(14)],
            live: &[10, 12, 13, 14], exited: 0, counts: (1, 0, 0),
        },
        Case {
            what: "exited records count toward the bound",
            max: 4, grace: 8, running: None,
            steps: &[Fork(10), Fork(11), Fork(12), Fork(13), Exit(10), Exit(11)],
            live: &[12, 13], exited: 2, counts: (0, 0, 0),
        },
        Case {
            what: "the grace queue keeps at most `grace`",
            max: 8, grace: 1, running: None,
            steps: &[Fork(10), Fork(11), Exit(10), Exit(11)],
            live: &[], exited: 1, counts: (0, 1, 0),
        },
        Case {
            what: "a long-lived process survives churn with lost exits",
            max: 4, grace: 2, running: Some(&[50]),
            steps: &[Fork(50), Churn(100, 120)],
            live: &[50, 118, 119], exited: 1, counts: (0, 17, 18),
        },
        Case {
            what: "without /proc to tell leaks from live processes, it does not (the fallback)",
            max: 4, grace: 2, running: None,
            steps: &[Fork(50), Churn(100, 120)],
            live: &[116, 117, 118, 119], exited: 0, counts: (17, 0, 0),
        },
        Case {
            what: "a host really over the bound: the least recently seen running process",
            max: 4, grace: 2, running: Some(&[10, 11, 12, 13, 14]),
            steps: &[Fork(10), Fork(11), Fork(12), Fork(13), Exec(10), Fork(14)],
            live: &[10, 12, 13, 14], exited: 0, counts: (1, 0, 0),
        },
    ];
    for c in cases {
        let mut f = table_over_proc(c.max, c.grace, c.running);
        for &step in c.steps {
            for e in step_events(step) {
                f.t.apply(&e);
                let st = f.t.stats();
                assert!(
                    st.live + st.exited <= c.max as u64 && st.exited <= c.grace as u64,
                    "{}: bound after {step:?}: {st:?}", c.what
                );
                f.t.live.assert_consistent();
                f.t.exited.assert_consistent();
            }
        }
        let st = f.t.stats();
        let mut live = f.t.live_tgids();
        live.sort_unstable();
        assert_eq!(live, c.live, "{}: live", c.what);
        assert_eq!(st.exited, c.exited, "{}: exited", c.what);
        assert_eq!((st.evicted_live, st.evicted_exited, st.reaped), c.counts, "{}: {st:?}", c.what);
    }
}

/// A host really over the bound lists `/proc` once per `max/16` evictions, not per new
/// process.
#[test]
fn listing_proc_is_rate_limited() {
    let running: Vec<u32> = (100..200).collect();
    let mut f = table_over_proc(32, 4, Some(&running));
    for p in 100..132 {
        f.t.apply(&ev(EventKind::Fork, p, 1, p as u64 * 10, "w"));
    }
    assert_eq!(f.t.stats().proc_sweeps, 0, "not full yet");
    for p in 132..140 {
        f.t.apply(&ev(EventKind::Fork, p, 1, p as u64 * 10, "w"));
    }
    let st = f.t.stats();
    // 8 evictions, max/16 = 2 per listing.
    assert_eq!(
        (st.evicted_live, st.reaped, st.proc_sweeps),
        (8, 0, 4),
        "{st:?}"
    );
}

/// The sweep spares what the current event has seen, and a reaped record whose events were
/// still on their way (here its exit) comes back whole, not rebuilt from the event.
#[test]
fn reaped_records_serve_late_events() {
    let mut f = table_over_proc(3, 4, Some(&[20]));
    // Pid 20 runs and is readable in /proc: the exec of 30 (reparented to it) loads it.
    std::fs::write(
        f._dir.path().join("proc/20/stat"),
        "20 (bash) S 1 20 20 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 20 0 0",
    )
    .unwrap();
    f.t.apply(&ev(EventKind::Fork, 30, 1, 300, "w"));
    f.t.apply(&ev(EventKind::Fork, 32, 1, 320, "w"));
    f.t.apply(&exec(31, 1, 310, "/usr/bin/sleep", &["sleep", "1000"]));
    // Full (3). 30's exec names parent 20, which must be loaded. None of 30, 31, 32 is in
    // /proc, but 30 is this event's subject: 32 and 31 (least recently seen first) are
    // reaped, 32 then leaves the exited queue for room.
    let snap =
        f.t.apply(&exec(30, 20, 300, "/bin/true", &["true"]))
            .unwrap();
    assert_eq!(snap.parent.as_ref().map(|p| p.pid), Some(20));
    let st = f.t.stats();
    assert_eq!(
        (
            st.live,
            st.exited,
            st.reaped,
            st.evicted_exited,
            st.loaded_late
        ),
        (2, 1, 2, 1, 1),
        "{st:?}"
    );
    let mut live = f.t.live_tgids();
    live.sort_unstable();
    assert_eq!(live, vec![20, 30]);
    // 31's exit arrives: its document has what its exec said.
    let end =
        f.t.apply(&ProcessEvent {
            exit_code: Some(0),
            ..ev(EventKind::Exit, 31, 1, 310, "sleep")
        })
        .unwrap();
    assert_eq!(s(&end.subject.image.executable), "/usr/bin/sleep");
    assert_eq!(end.subject.image.args_count(), 2);
    assert_eq!(end.subject.exit_code, Some(0));
    let st = f.t.stats();
    assert_eq!((st.unknown_subject, st.evicted_live), (1, 0), "{st:?}");
    assert!(st.live + st.exited <= 3, "{st:?}");
}
