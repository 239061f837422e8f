//! Fault injection against `detector run` (root, except the config errors of `bad_config`;
//! each test starts its own daemon with its own rules and alert file, and removes every
//! mount, process and cgroup it made).
//!
//! Alerts are triggered by exec'ing a private copy of `/bin/true` named
//! [`harness::PROBE`] with a unique tag as its argument, so each alert can be counted.
//!
//! Run: `cargo test -p detector --test faults -- --test-threads=1`.

#[path = "faults/harness.rs"]
mod harness;

#[path = "common/ecs_validate.rs"]
mod ecs_validate;

#[path = "common/containers.rs"]
mod containers;

#[path = "common/wait.rs"]
mod wait;

#[path = "faults/hostile.rs"]
mod hostile;

#[path = "faults/bad_config.rs"]
mod bad_config;

#[path = "faults/storm.rs"]
mod storm;

#[path = "faults/outputs.rs"]
mod outputs;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use detector::testsupport::{Need, require};
use harness::{Daemon, Setup, TmpfsGuard, assert_exactly_once, probe_tags, read_ndjson, tags};

const T: Duration = Duration::from_secs(20);

/// The first (file) sink's counters from `final_stats`.
fn file_sink(final_stats: &serde_json::Value) -> &serde_json::Value {
    let sinks = final_stats["sinks"].as_array().expect("final_stats.sinks");
    assert_eq!(sinks.len(), 1, "one sink expected: {sinks:?}");
    &sinks[0]
}

/// Disk full: the daemon keeps running, counts and logs the failure, keeps alerts in its
/// bounded queue (dropping and counting beyond it), writes them once space returns, and
/// the file never holds a partial line.
#[test]
fn full_disk_queues_alerts_and_writes_them_when_space_returns() {
    if !require(
        "full_disk_queues_alerts_and_writes_them_when_space_returns",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    // Room for every alert of the test once the filler is gone (alerts carry about 5 KiB each).
    let tmpfs = TmpfsGuard::mount("256k");
    let mut s = Setup::new("", "queue_max = 8");
    s.alerts = tmpfs.path.join("alerts.ndjson");
    s.write_config("", "queue_max = 8");
    let (mut d, _) = Daemon::start(&s.config, &[]);

    let before = tags("before", 3);
    for t in &before {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &before, T);

    // Fill the tmpfs: page-sized writes until ENOSPC, then single bytes for the rest of the
    // filler's last page. The alert file keeps the slack of its own last page, so the next
    // alert (about 4 KiB) is taken in part and must be cut off again.
    let filler_path = tmpfs.path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let page = vec![b'x'; 4096];
    while filler.write_all(&page).is_ok() {}
    while filler.write(b"x").map(|n| n == 1).unwrap_or(false) {}
    drop(filler);

    let from = d.stderr_len();
    let full = tags("full", 6);
    let over = tags("over", 5);
    for t in full.iter().chain(&over) {
        s.probe(t);
    }
    d.wait_stderr_after(from, "sink write failed", T);
    // 6 + 5 alerts against a queue of 8: 8 wait, 3 are dropped and counted.
    d.wait_stderr_after(from, "\"queued\":8", T);
    d.wait_stderr_after(from, "retry queue full", T);
    assert!(d.alive(), "the daemon died on a full disk");
    // Meanwhile the file holds only whole lines, and only the alerts from before.
    let docs = read_ndjson(&s.alerts);
    assert_exactly_once(&probe_tags(&docs), &before, "while full");

    // Space returns.
    std::fs::remove_file(&filler_path).unwrap();
    let queued: Vec<String> = full.iter().chain(&over[..2]).cloned().collect();
    harness::wait_tags(&s.alerts, &queued, T);
    let after = tags("after", 2);
    for t in &after {
        s.probe(t);
    }
    let docs = harness::wait_tags(&s.alerts, &after, T);
    let want: Vec<String> = before
        .iter()
        .chain(&queued)
        .chain(&after)
        .cloned()
        .collect();
    let have = probe_tags(&docs);
    assert_exactly_once(&have, &want, "after recovery");
    assert_eq!(have, want, "order kept through the queue");

    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    let sink = file_sink(&out.final_stats);
    assert!(sink["failed"].as_u64().unwrap() >= 1, "{sink}");
    assert_eq!(sink["queued"], 0, "{sink}");
    // Every line written is in the file, whole.
    let docs = read_ndjson(&s.alerts);
    assert_eq!(
        sink["written"].as_u64().unwrap(),
        docs.len() as u64,
        "{sink}"
    );
    // 3 alerts dropped, plus any loss report that met the full queue too (a report is
    // written for the drops at the next stats tick).
    let dropped = sink["dropped"].as_u64().unwrap();
    assert!(dropped >= 3, "{sink}");
    assert_eq!(out.final_stats["alerts"], 3 + 11 + 2, "{}", out.final_stats);
    // The drops are in the alert stream: the loss reports that got through carry all of
    // them (a dropped report's count is carried by the next one).
    let reports: Vec<&serde_json::Value> = docs
        .iter()
        .filter(|d| d["event"]["dataset"] == "detector.loss")
        .collect();
    let reported: u64 = reports
        .iter()
        .map(|r| {
            r["detector"]["loss"]["alerts_dropped"]
                .as_u64()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(
        reported, dropped,
        "drops reported in the stream: {reports:#?}"
    );
    for r in &reports {
        let errors = ecs_validate::validate_ecs(r);
        assert!(
            errors.is_empty(),
            "loss report is not valid ECS: {errors:#?}\n{r}"
        );
    }
}

/// logrotate's default: rename the file, then SIGHUP. Alerts before go to the renamed
/// file, alerts after to the new one, each exactly once.
#[test]
fn rotate_by_rename_and_sighup_loses_and_duplicates_nothing() {
    if !require(
        "rotate_by_rename_and_sighup_loses_and_duplicates_nothing",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let s = Setup::new("", "");
    let (mut d, _) = Daemon::start(&s.config, &[]);
    let a = tags("rename-a", 5);
    for t in &a {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &a, T);
    let rotated = s.alerts.with_extension("ndjson.1");
    std::fs::rename(&s.alerts, &rotated).unwrap();
    let from = d.stderr_len();
    d.signal(libc::SIGHUP);
    d.wait_stderr_after(from, "detector: reloaded:", T);
    let b = tags("rename-b", 5);
    for t in &b {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &b, T);
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert_exactly_once(&probe_tags(&read_ndjson(&rotated)), &a, "rotated file");
    assert_exactly_once(&probe_tags(&read_ndjson(&s.alerts)), &b, "new file");
    let mode = std::fs::metadata(&s.alerts).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the reopened file is created 0640");
    assert_eq!(file_sink(&out.final_stats)["written"], 10);
}

/// logrotate's copytruncate: copy the file, truncate it in place, no signal. The daemon's
/// O_APPEND writes continue at the new end (offset 0, no hole of NULs).
///
/// copytruncate's known weakness is a line written between the copy and the truncate: it
/// is in neither file. The test triggers no alert in that instant (every alert of batch
/// `a` is in the file before the copy, batch `b` starts after the truncate), so any loss or
/// duplicate here is the daemon's.
#[test]
fn copytruncate_rotation_loses_and_duplicates_nothing() {
    if !require(
        "copytruncate_rotation_loses_and_duplicates_nothing",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let s = Setup::new("", "");
    let (d, _) = Daemon::start(&s.config, &[]);
    let a = tags("copytrunc-a", 5);
    for t in &a {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &a, T);
    let rotated = s.alerts.with_extension("ndjson.1");
    std::fs::copy(&s.alerts, &rotated).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&s.alerts)
        .unwrap()
        .set_len(0)
        .unwrap();
    let b = tags("copytrunc-b", 5);
    for t in &b {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &b, T);
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    let bytes = std::fs::read(&s.alerts).unwrap();
    assert_eq!(
        bytes.first(),
        Some(&b'{'),
        "writes continue at offset 0 (O_APPEND)"
    );
    assert!(!bytes.contains(&0), "no hole of NULs after the truncate");
    assert_exactly_once(&probe_tags(&read_ndjson(&rotated)), &a, "copied file");
    assert_exactly_once(&probe_tags(&read_ndjson(&s.alerts)), &b, "truncated file");
}

/// `kill -9` in the middle of a storm of alerting execs, against the one contract the
/// README states ("The alert file after a crash"): the killed writer may leave one partial
/// last line and no other damage; the next start cuts it, so the file then holds only whole
/// lines, and every whole line from before the crash stays, byte for byte. The restarted
/// daemon seeds its table from /proc and keeps alerting into the same file.
///
/// A kill rarely lands inside the one `write(2)` of a line; when it did not, the test tears
/// the file as such a kill would (the first half of the last line, appended again), so the
/// repair at the next start is exercised on every run.
#[test]
fn kill9_during_alert_storm_then_restart() {
    if !require("kill9_during_alert_storm_then_restart", &[Need::Root]) {
        return;
    }
    let _l = harness::lock();
    let s = Setup::new("", "");
    let (d, _) = Daemon::start(&s.config, &[]);
    let storm = storm::Storm::start(2, {
        let probe = s.probe.clone();
        move |w, i| {
            let _ = wait::try_status_timeout(
                std::process::Command::new(&probe)
                    .arg(format!("{}storm-{w}-{i}", harness::TAG_PREFIX)),
                wait::TOOL,
                "a storm probe",
            );
        }
    });
    // Let alerts flow, then kill while they still do.
    wait::until(T, "20 storm alerts in the file", || {
        (probe_tags(&harness::read_ndjson_after_crash(&s.alerts).0).len() >= 20).then_some(())
    });
    d.kill9();
    let ran = storm.stop();
    assert!(ran > 20, "storm ran {ran} execs");

    // Right after the crash: whole lines, then at most one partial line (the helper fails
    // on any other damage).
    let (docs, partial) = harness::read_ndjson_after_crash(&s.alerts);
    let stormed = probe_tags(&docs).len();
    assert!(stormed >= 20, "{stormed} storm alerts");
    let mut crashed = std::fs::read(&s.alerts).unwrap();
    let whole = crashed[..crashed.len() - partial.len()].to_vec();
    if partial.is_empty() {
        let last = whole[..whole.len() - 1]
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap();
        let torn = last[..last.len() / 2].to_vec();
        eprintln!("kill -9 left only whole lines; tearing the file as a kill mid-write would");
        std::fs::OpenOptions::new()
            .append(true)
            .open(&s.alerts)
            .and_then(|mut f| f.write_all(&torn))
            .unwrap();
        crashed.extend_from_slice(&torn);
    } else {
        eprintln!(
            "kill -9 left a partial last line of {} bytes",
            partial.len()
        );
    }
    assert!(crashed.len() > whole.len());

    let (d, seeded) = Daemon::start(&s.config, &[]);
    // The start cut the partial line, and only it.
    let repaired = std::fs::read(&s.alerts).unwrap();
    assert!(
        repaired == whole,
        "the restart did not cut exactly the partial last line: {} whole bytes before the \
         crash, {} with the partial line, {} after the start; the file ends …{:?}",
        whole.len(),
        crashed.len(),
        repaired.len(),
        String::from_utf8_lossy(&repaired[repaired.len().saturating_sub(200)..])
    );
    assert!(seeded > 0, "the restarted daemon seeded nothing from /proc");
    let after = tags("after-restart", 3);
    for t in &after {
        s.probe(t);
    }
    let docs = harness::wait_tags(&s.alerts, &after, T);
    let have = probe_tags(&docs);
    assert_eq!(
        have.len(),
        stormed + after.len(),
        "nothing lost or added: {have:?}"
    );
    // The restarted daemon knows the probe's parent (this test process, seeded from /proc).
    let last = docs
        .iter()
        .rev()
        .find(|d| d["process"]["args"][1] == *after.last().unwrap());
    let last = last.unwrap();
    assert_eq!(
        last["process"]["parent"]["pid"],
        std::process::id(),
        "parent from the seeded table: {last}"
    );
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("partial line"),
        "the cut is logged: {}",
        out.stderr_text()
    );
    // Repaired: only whole lines, and every whole line from before the crash kept.
    let bytes = std::fs::read(&s.alerts).unwrap();
    assert!(
        bytes.starts_with(&whole),
        "lines from before the crash changed"
    );
    let docs = read_ndjson(&s.alerts);
    assert_eq!(probe_tags(&docs).len(), stormed + after.len());
}

/// A crashed writer (kill -9 inside a multi-page write(2)) can leave a partial last line;
/// the daemon cuts it off when it opens the file, so its own lines are never glued to it.
#[test]
fn partial_last_line_left_by_a_crash_is_cut_at_open() {
    if !require(
        "partial_last_line_left_by_a_crash_is_cut_at_open",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let s = Setup::new("", "");
    let whole = "{\"message\":\"a whole line from before\"}\n";
    std::fs::write(&s.alerts, format!("{whole}{{\"event\":{{\"kind\":\"al")).unwrap();
    let (d, _) = Daemon::start(&s.config, &[]);
    let t = tags("after-partial", 1);
    s.probe(&t[0]);
    let docs = harness::wait_tags(&s.alerts, &t, T);
    assert_eq!(docs[0]["message"], "a whole line from before");
    assert_eq!(docs.len(), 2, "{docs:?}");
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("partial line"),
        "the cut is logged: {}",
        out.stderr_text()
    );
}

/// Ring-buffer overload: the minimum ring and a 4-worker fork+exec storm. Losses are
/// counted in the stats, reported in the alert stream as a valid ECS metric document, and
/// the daemon detects again once the storm is over.
#[test]
fn ring_buffer_overload_is_counted_reported_and_recovered() {
    if !require(
        "ring_buffer_overload_is_counted_reported_and_recovered",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let s = Setup::new("[sensor]\nring_buffer_bytes = 65536\n", "");
    let storm_bin = harness::copy_bin("/bin/true", &s.dir.path().join("dtr-storm"));
    let (mut d, _) = Daemon::start(&s.config, &[]);
    // Long arguments make each exec record large (4 KiB of argv), so sixteen of them fill
    // the 64 KiB ring. The reader is stalled (SIGSTOP) while the storm runs: a storm
    // against a running reader overflows the ring only when it outruns it, which a loaded
    // host (a parallel build, a slow CI machine) does not promise.
    let arg = "s".repeat(1024);
    let stalled = harness::Stalled::new(&d);
    let storm = storm::Storm::start(4, {
        let bin = storm_bin.clone();
        let arg = arg.clone();
        move |_, _| {
            let _ = wait::try_status_timeout(
                std::process::Command::new(&bin).args([&arg, &arg, &arg, &arg]),
                wait::TOOL,
                "a storm exec",
            );
        }
    });
    // Enough execs to overflow the ring many times over, however slow the machine.
    let storm_execs = wait::try_until(Duration::from_secs(30), Duration::from_millis(20), || {
        (storm.count() >= 200).then_some(())
    });
    let execs = storm.stop();
    drop(stalled);
    assert!(
        storm_execs.is_some() && execs >= 200,
        "the storm ran only {execs} execs in 30 s"
    );
    // Loss is reported at the next stats tick (every second): watch the file for the
    // report for two ticks plus this daemon's own start-up time (its pace now).
    let ticks = Duration::from_secs(2) + d.started_in;
    let reported = wait::try_until(ticks, Duration::from_millis(50), || {
        read_ndjson(&s.alerts)
            .iter()
            .any(|doc| doc["event"]["dataset"] == "detector.loss")
            .then_some(())
    });
    assert!(
        reported.is_some(),
        "no loss report after {execs} execs into a stalled 64 KiB ring; stderr:\n{}",
        d.stderr().join("\n")
    );
    d.wait_stderr("events lost", T);

    // Recovered: an alerting exec after the storm alerts.
    let after = tags("after-storm", 2);
    for t in &after {
        s.probe(t);
    }
    let docs = harness::wait_tags(&s.alerts, &after, T);
    let reports: Vec<_> = docs
        .iter()
        .filter(|doc| doc["event"]["dataset"] == "detector.loss")
        .collect();
    for r in &reports {
        assert_eq!(r["event"]["kind"], "metric", "{r}");
        let errors = ecs_validate::validate_ecs(r);
        assert!(
            errors.is_empty(),
            "loss report is not valid ECS: {errors:#?}\n{r}"
        );
    }
    let reported: u64 = reports
        .iter()
        .map(|r| r["detector"]["loss"]["kernel_lost"].as_u64().unwrap_or(0))
        .sum();
    assert!(reported > 0, "no kernel_lost in the reports: {reports:?}");

    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    let k = &out.final_stats["kernel"];
    let kernel_lost: u64 = ["lost_fork", "lost_exec", "lost_exit", "lost_cred"]
        .iter()
        .map(|n| k[n].as_u64().unwrap())
        .sum();
    assert!(
        kernel_lost > 0,
        "final_stats shows no kernel loss: {}",
        out.final_stats
    );
    eprintln!(
        "ring overload: kernel lost {kernel_lost} (reported in the stream {reported}), \
         events delivered {}",
        out.final_stats["events"]
    );
    assert!(
        kernel_lost >= reported,
        "reports ({reported}) exceed the final count ({kernel_lost})"
    );
}

/// The daemon listens on nothing, and its alert file is not readable by other users (also
/// when the file existed with broader bits).
#[test]
fn no_listening_socket_and_private_alert_file() {
    if !require("no_listening_socket_and_private_alert_file", &[Need::Root]) {
        return;
    }
    let _l = harness::lock();
    // The check can fail: it sees a listener of our own.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let unix = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    let mine = storm::listening_sockets(std::process::id() as i32);
    assert!(
        mine.len() >= 2,
        "the checker misses our own listeners: {mine:?}"
    );
    drop((tcp, unix));

    let s = Setup::new("", "");
    std::fs::write(&s.alerts, "").unwrap();
    std::fs::set_permissions(&s.alerts, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (d, _) = Daemon::start(&s.config, &[]);
    let t = tags("private", 1);
    s.probe(&t[0]);
    harness::wait_tags(&s.alerts, &t, T);
    let listening = storm::listening_sockets(d.pid());
    assert!(listening.is_empty(), "the daemon listens: {listening:?}");
    let mode = std::fs::metadata(&s.alerts).unwrap().permissions().mode();
    assert_eq!(mode & 0o007, 0, "alert file readable by others: {mode:o}");
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());

    // A new file is created without any bits for others.
    let s = Setup::new("", "");
    let (d, _) = Daemon::start(&s.config, &[]);
    let mode = std::fs::metadata(&s.alerts).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o007,
        0,
        "new alert file readable by others: {mode:o}"
    );
    assert!(storm::listening_sockets(d.pid()).is_empty());
    d.stop();
}
