//! The alert file through the running daemon: SIGHUP with a config whose `[sinks.file]`
//! changed (a new path; an unusable one), and size-based rotation (`rotate_bytes`, `keep`).
//! The sink's own tests cover these on the sink alone; these prove the daemon wires them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use detector::testsupport::{Need, require};

use crate::harness::{self, Daemon, Setup, assert_exactly_once, probe_tags, read_ndjson, tags};

const T: Duration = Duration::from_secs(20);

/// SIGHUP after `s`'s config was rewritten; waits for the reload to be answered.
fn reload(d: &mut Daemon) {
    let from = d.stderr_len();
    d.signal(libc::SIGHUP);
    d.wait_stderr_after(from, "detector: reload", T);
}

/// SIGHUP with `[sinks.file] path` changed: alerts before go to the old file, alerts after
/// to the new one (created 0640), each exactly once; the old file is closed, not removed.
#[test]
fn sighup_with_a_new_file_path_moves_the_alerts() {
    if !require(
        "outputs::sighup_with_a_new_file_path_moves_the_alerts",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let mut s = Setup::new("", "");
    let (mut d, _) = Daemon::start(&s.config, &[]);
    let a = tags("move-a", 3);
    for t in &a {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &a, T);

    let old = s.alerts.clone();
    s.alerts = s.dir.path().canonicalize().unwrap().join("moved.ndjson");
    s.write_config("", "");
    reload(&mut d);
    let b = tags("move-b", 3);
    for t in &b {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &b, T);
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());

    assert_exactly_once(&probe_tags(&read_ndjson(&old)), &a, "old file");
    assert_exactly_once(&probe_tags(&read_ndjson(&s.alerts)), &b, "new file");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.alerts).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640, "the new file is created 0640");
    let sinks = out.final_stats["sinks"]
        .as_array()
        .expect("final_stats.sinks");
    let names: Vec<&str> = sinks.iter().filter_map(|k| k["name"].as_str()).collect();
    assert_eq!(
        names,
        [s.alerts.display().to_string()],
        "the running file sink is the new one: {sinks:?}"
    );
}

/// SIGHUP with `[sinks.file] path` unusable (in a directory that does not exist; under a
/// regular file): the daemon says why on stderr, naming the path, keeps the old file open
/// and keeps alerting into it; nothing is created at the bad path.
#[test]
fn sighup_with_an_unusable_file_path_keeps_the_old_file() {
    if !require(
        "outputs::sighup_with_an_unusable_file_path_keeps_the_old_file",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let mut s = Setup::new("", "");
    let (mut d, _) = Daemon::start(&s.config, &[]);
    let a = tags("keep-a", 2);
    for t in &a {
        s.probe(t);
    }
    harness::wait_tags(&s.alerts, &a, T);
    let good = s.alerts.clone();
    let root = s.dir.path().canonicalize().unwrap();
    let not_a_dir = root.join("plain-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let bad: [PathBuf; 2] = [
        root.join("no/such/dir/alerts.ndjson"),
        not_a_dir.join("alerts.ndjson"),
    ];
    let mut want = a.clone();
    for (i, path) in bad.iter().enumerate() {
        s.alerts = path.clone();
        s.write_config("", "");
        let from = d.stderr_len();
        d.signal(libc::SIGHUP);
        let said = d.wait_stderr_after(from, &path.display().to_string(), T);
        assert!(
            said.contains("unusable") || said.contains("keeping"),
            "the refusal does not say the old output stays: {said}"
        );
        assert!(d.alive(), "the daemon died on an unusable output");
        let more = tags(&format!("keep-{i}"), 2);
        for t in &more {
            s.probe(t);
        }
        harness::wait_tags(&good, &more, T);
        want.extend(more);
        assert!(!path.exists(), "{} was created", path.display());
    }
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    let have = probe_tags(&read_ndjson(&good));
    assert_exactly_once(&have, &want, "the old file");
    assert_eq!(have, want, "in order");
}

/// The rotated generations of `path`: `path.1` … while they exist.
fn generations(path: &Path) -> Vec<PathBuf> {
    (1..)
        .map(|i| PathBuf::from(format!("{}.{i}", path.display())))
        .take_while(|p| p.exists())
        .collect()
}

/// Probe tags of `path` (strict: every line whole).
fn tags_in(path: &Path) -> Vec<String> {
    probe_tags(&read_ndjson(path))
}

/// Every file of the rotation, oldest first: `path.N` … `path.1`, `path`.
fn files_oldest_first(path: &Path) -> Vec<PathBuf> {
    let mut files = generations(path);
    files.reverse();
    files.push(path.to_path_buf());
    files
}

/// `sinks.file.rotate_bytes` / `keep` through the daemon: alerts driven past
/// `rotate_bytes` again and again. While fewer than `keep` rotations happened, nothing is
/// lost (every alert exactly once across the files, in order); past `keep`, the oldest
/// whole files go and only they: the kept alerts are the newest ones, contiguous. Every
/// file holds only whole lines and no more than `rotate_bytes` (each alert is far
/// smaller), and no generation beyond `keep` exists.
#[test]
fn size_rotation_through_the_daemon_keeps_whole_files_and_loses_nothing_within_keep() {
    if !require(
        "outputs::size_rotation_through_the_daemon_keeps_whole_files_and_loses_nothing_within_keep",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    const ROTATE: u64 = 16 * 1024;
    const KEEP: usize = 2;
    let s = Setup::new("", &format!("rotate_bytes = {ROTATE}\nkeep = {KEEP}"));
    let (d, _) = Daemon::start(&s.config, &[]);

    let all = tags("rot", 400);
    let mut sent = 0;
    // One alert at a time, each waited for, so each rotation is seen as it happens.
    let send = |n: &mut usize| {
        let t = &all[*n];
        s.probe(t);
        crate::wait::until(T, &format!("the alert {t} in one of the files"), || {
            files_oldest_first(&s.alerts)
                .iter()
                .any(|f| {
                    harness::read_ndjson_after_crash(f)
                        .0
                        .iter()
                        .any(|d| d["process"]["args"][1] == t.as_str())
                })
                .then_some(())
        });
        *n += 1;
    };

    // Phase 1: up to `keep` rotations, nothing may be lost.
    while generations(&s.alerts).len() < KEEP {
        assert!(
            sent < all.len(),
            "{sent} alerts of rotate_bytes={ROTATE} never rotated {KEEP} times"
        );
        send(&mut sent);
    }
    let mut have: Vec<String> = files_oldest_first(&s.alerts)
        .iter()
        .flat_map(|f| tags_in(f))
        .collect();
    assert_eq!(
        have,
        all[..sent],
        "within keep: every alert exactly once, in order"
    );
    assert!(
        sent > KEEP + 1,
        "{sent} alerts filled {KEEP} files: rotate_bytes too small for the test"
    );

    // Phase 2: more rotations than `keep`: the oldest file goes, whole.
    let first_gen = tags_in(&generations(&s.alerts)[KEEP - 1]);
    while files_oldest_first(&s.alerts)
        .iter()
        .flat_map(|f| tags_in(f))
        .any(|t| t == first_gen[0])
    {
        assert!(
            sent < all.len(),
            "{sent} alerts and the oldest file was never dropped"
        );
        send(&mut sent);
    }
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("rotated alert file"),
        "rotation not logged:\n{}",
        out.stderr_text()
    );

    let files = files_oldest_first(&s.alerts);
    assert_eq!(files.len(), KEEP + 1, "generations kept: {files:?}");
    assert!(
        !PathBuf::from(format!("{}.{}", s.alerts.display(), KEEP + 1)).exists(),
        "a generation beyond keep"
    );
    have.clear();
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(
            len <= ROTATE,
            "{} holds {len} bytes > rotate_bytes",
            f.display()
        );
        // read_ndjson fails on a partial or non-JSON line.
        let t = tags_in(f);
        assert!(!t.is_empty(), "{} holds no alert", f.display());
        have.extend(t);
    }
    // The kept alerts are the newest, contiguous: only whole files were dropped.
    let kept_from = sent - have.len();
    assert_eq!(
        have,
        all[kept_from..sent],
        "kept alerts are the newest, in order"
    );
    assert!(kept_from > 0, "nothing was dropped past keep");
    assert!(
        first_gen.iter().all(|t| !have.contains(t)),
        "the oldest generation was not dropped whole"
    );
    eprintln!(
        "size rotation: {sent} alerts, the newest {} kept in {} files of <= {ROTATE} bytes",
        have.len(),
        files.len()
    );
    let sink = &out.final_stats["sinks"][0];
    assert_eq!(sink["written"].as_u64(), Some(sent as u64), "{sink}");
    assert_eq!(sink["dropped"], 0, "{sink}");
}
