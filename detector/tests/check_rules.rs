//! End-to-end: the `detector check-rules` binary on Elastic's corpora (found by
//! [`detector::testsupport::corpus`]; those tests gate on them) and on hostile input.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

#[path = "common/wait.rs"]
mod wait;

use detector::testsupport::{Corpus, Need, corpus, require};

fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("check-rules")
            .args(args),
        wait::TOOL,
        "detector check-rules",
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn seed_rule_compiles_and_exits_zero() {
    if !require(
        "seed_rule_compiles_and_exits_zero",
        &[Need::Corpus(Corpus::Seed)],
    ) {
        return;
    }
    let dir = corpus(Corpus::Seed);
    let (code, out, _) = run(&[dir.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok "), "{out}");
    assert!(
        out.contains("SSH Process Launched From Inside A Container"),
        "{out}"
    );
    assert!(out.ends_with("1 compiled, 0 rejected\n"), "{out}");
}

#[test]
fn corpus_reports_every_rule_and_fails_because_some_are_rejected() {
    if !require(
        "corpus_reports_every_rule_and_fails_because_some_are_rejected",
        &[Need::Corpus(Corpus::CloudDefend)],
    ) {
        return;
    }
    let dir = corpus(Corpus::CloudDefend);
    let (code, out, _) = run(&[dir.as_os_str()]);
    assert_eq!(code, 1);
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    let ok = out.lines().filter(|l| l.starts_with("ok ")).count();
    let rejected = out.lines().filter(|l| l.starts_with("rejected ")).count();
    assert_eq!(ok + rejected, files, "{out}");
    assert!(
        out.ends_with(&format!("{ok} compiled, {rejected} rejected\n")),
        "{out}"
    );
    // Every rejection is one of the three unsupported kinds, never a syntax error.
    for l in out.lines().filter(|l| l.starts_with("rejected ")) {
        assert!(
            l.contains("sequences are not supported")
                || l.contains("event category `file` is not supported")
                || l.contains("rule type `query` (language `kuery`) is not supported"),
            "{l}"
        );
    }
}

#[test]
fn hostile_paths_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let weird = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"bad\xff\nname.toml"));
    std::fs::write(&weird, "not toml [").unwrap();
    let missing = dir.path().join("missing.toml");
    let (code, out, _) = run(&[weird.as_os_str(), missing.as_os_str()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("rejected ") && l.contains("bad\u{fffd}\\nname.toml:1:")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("missing.toml: cannot read")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), "0 compiled, 2 rejected");
}

#[test]
fn no_arguments_is_a_usage_error() {
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("PATH"), "{err}");
}
