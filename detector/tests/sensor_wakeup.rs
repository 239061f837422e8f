//! The batched wake-up of the ring-buffer reader (`sensor.wake_interval_us`): the kernel
//! wakes the reader at most once per interval, and not at all while the reader says it polls
//! (the `READER` flag). These tests prove that no record is left waiting for a later event
//! (a lost wake-up, or a flag left set when the reader went idle, would leave the last
//! records of a burst in the ring until something else happens on the host), and that under
//! load the reader is hardly ever woken, with nothing lost.

mod common;
#[path = "common/wait.rs"]
mod wait;

use std::process::Command;
use std::time::Duration;

use common::{PrivateBin, Trace, ebpf_lock};
use detector::testsupport::{Need, require};

/// Far above the 1 ms wake interval: only a record stuck in the ring misses it.
const ARRIVAL: Duration = Duration::from_secs(3);

/// Bursts of 1 to 4 processes (each a fork, an exec and an exit within microseconds of each
/// other), separated by pauses shorter and longer than the wake interval: after each burst
/// the exit of its last process must arrive although nothing follows it.
#[test]
fn the_last_record_of_every_burst_arrives_on_its_own() {
    if !require(
        "the_last_record_of_every_burst_arrives_on_its_own",
        &[Need::Root],
    ) {
        return;
    }
    let _lock = ebpf_lock();
    let bin = PrivateBin::copy("/bin/true", "wake-true");
    let sh = PrivateBin::copy("/bin/sh", "wake-burst");
    let path = bin.path.to_str().unwrap().to_owned();
    let trace = Trace::start(&["--wake-interval-us", "1000"]);
    let pauses_us = [0u64, 200, 700, 1_100, 2_500, 10_000, 40_000];
    let mut bursts = 0;
    for (i, pause) in pauses_us.iter().cycle().take(28).enumerate() {
        let n = i % 4 + 1;
        let script = vec![path.as_str(); n].join("; ");
        let mut child = Command::new(&sh.path)
            .arg("-c")
            .arg(&script)
            .spawn()
            .unwrap();
        let shell = child.id();
        let st = wait::wait_timeout(&mut child, wait::TOOL, "a burst");
        assert!(st.success());
        // The shell's own exit is the burst's last record.
        let got = trace.wait_for(ARRIVAL, |e| e["kind"] == "exit" && e["tgid"] == shell);
        assert!(
            got.is_some(),
            "burst {i} ({n} × true, then a {pause} µs pause): the exit of shell {shell} \
             was not delivered within {ARRIVAL:?}"
        );
        bursts += 1;
        std::thread::sleep(Duration::from_micros(*pause));
    }
    let out = trace.stop();
    let execs = out
        .events
        .iter()
        .filter(|e| e["kind"] == "exec" && e["exe_path"] == path.as_str())
        .count();
    assert_eq!(execs, (0..bursts).map(|i| i % 4 + 1).sum::<usize>());
    assert_eq!(out.summary["counters"]["lost_exec"], 0, "{}", out.summary);
}

/// A storm of fork+exec: every exec arrives, none is lost, and the reader, polling while the
/// storm lasts, was woken at most about once a millisecond and far less than once per 20
/// records (with wake-ups only bounded by the interval, a storm of a process a millisecond
/// gets one per about 3 records); with the interval at 0, every record wakes it as the
/// kernel does by default (the wake-up counter, counted only for forced wake-ups, stays 0).
#[test]
fn a_storm_is_read_with_few_wake_ups_and_no_loss() {
    if !require(
        "a_storm_is_read_with_few_wake_ups_and_no_loss",
        &[Need::Root],
    ) {
        return;
    }
    let _lock = ebpf_lock();
    const N: u64 = 3000;
    let bin = PrivateBin::copy("/bin/true", "wake-storm-true");
    let sh = PrivateBin::copy("/bin/sh", "wake-storm");
    let path = bin.path.to_str().unwrap().to_owned();
    for interval in ["1000", "0"] {
        let started = std::time::Instant::now();
        let trace = Trace::start(&["--wake-interval-us", interval]);
        let st = wait::status_timeout(
            Command::new(&sh.path).arg("-c").arg(format!(
                "i=0; while [ $i -lt {N} ]; do {path}; i=$((i+1)); done"
            )),
            wait::CONTAINER,
            "the storm loop",
        );
        assert!(st.success());
        let out = trace.stop();
        // The programs were attached for less than this.
        let attached_ms = started.elapsed().as_secs_f64() * 1000.0;
        let execs = out
            .events
            .iter()
            .filter(|e| e["kind"] == "exec" && e["exe_path"] == path.as_str())
            .count() as u64;
        let c = &out.summary["counters"];
        let counter = |name: &str| c[name].as_u64().unwrap_or_else(|| panic!("{name}: {c}"));
        let sent = counter("sent_fork") + counter("sent_exec") + counter("sent_exit");
        let wakeups = counter("wakeups");
        eprintln!(
            "interval {interval} µs: {execs} execs, {sent} records, {wakeups} wake-ups, \
             attached < {attached_ms:.0} ms"
        );
        assert_eq!(execs, N, "interval {interval}: {}", out.summary);
        assert_eq!(out.summary["counters"]["lost_exec"], 0, "{}", out.summary);
        if interval == "0" {
            assert_eq!(wakeups, 0, "{c}");
        } else {
            assert!(
                wakeups > 0,
                "the first record after a pause wakes the reader: {c}"
            );
            // At most one wake-up per millisecond (plus rare races between CPUs), however
            // fast or slow the machine runs the storm; a wake-up per record would exceed
            // it wherever records come faster than one a millisecond, as they do here.
            assert!(
                (wakeups as f64) <= attached_ms * 1.2 + 50.0,
                "{wakeups} wake-ups in {attached_ms:.0} ms ({sent} records): not batched ({c})"
            );
            assert!(
                wakeups * 20 < sent,
                "{wakeups} wake-ups for {sent} records: the polling flag is ignored ({c})"
            );
        }
    }
}

/// A sustained stream (parallel exec loops, several records a millisecond) stretches the
/// polling period onto the lax timer (`stretched_polls` counts its drains), and the records
/// still arrive on their own: the exit of the last loop is delivered with nothing after it,
/// well before the trace stops and drains. A reader that never stretched, or one that
/// stranded records on the stretched timer, fails here.
#[test]
fn a_sustained_stream_stretches_the_poll_and_strands_nothing() {
    if !require(
        "a_sustained_stream_stretches_the_poll_and_strands_nothing",
        &[Need::Root],
    ) {
        return;
    }
    let _lock = ebpf_lock();
    const LOOPS: usize = 4;
    const N: u64 = 1500;
    let bin = PrivateBin::copy("/bin/true", "stretch-true");
    let sh = PrivateBin::copy("/bin/sh", "stretch-loop");
    let path = bin.path.to_str().unwrap().to_owned();
    let trace = Trace::start(&["--wake-interval-us", "1000"]);
    let loops: Vec<_> = (0..LOOPS)
        .map(|_| {
            Command::new(&sh.path)
                .arg("-c")
                .arg(format!(
                    "i=0; while [ $i -lt {N} ]; do {path}; i=$((i+1)); done"
                ))
                .spawn()
                .unwrap()
        })
        .collect();
    let shells: Vec<u32> = loops.iter().map(|c| c.id()).collect();
    for mut c in loops {
        assert!(wait::wait_timeout(&mut c, wait::CONTAINER, "a storm loop").success());
    }
    // `wait_for` consumes what it reads: look for the loops' exits in one pass.
    let mut left = shells.clone();
    while !left.is_empty() {
        let got = trace.wait_for(ARRIVAL, |e| {
            e["kind"] == "exit" && left.iter().any(|s| e["tgid"] == *s)
        });
        let Some(exit) = got else {
            panic!("the exits of loops {left:?} were not delivered within {ARRIVAL:?}");
        };
        left.retain(|s| exit["tgid"] != *s);
    }
    let out = trace.stop();
    let reader = &out.summary["reader"];
    eprintln!("reader: {reader}");
    let execs = out
        .events
        .iter()
        .filter(|e| e["kind"] == "exec" && e["exe_path"] == path.as_str())
        .count() as u64;
    assert_eq!(execs, LOOPS as u64 * N, "{}", out.summary);
    assert_eq!(out.summary["counters"]["lost_exec"], 0, "{}", out.summary);
    let stretched = reader["stretched_polls"].as_u64().unwrap();
    let polls = reader["polls"].as_u64().unwrap();
    assert!(
        stretched > 0,
        "the stream never stretched the poll: {reader}"
    );
    assert!(
        stretched * 16 > polls,
        "mostly polled at the base interval under a sustained stream: {reader}"
    );
}
