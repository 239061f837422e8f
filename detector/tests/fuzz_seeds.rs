//! Replays every committed fuzz seed (`detector/fuzz/seeds/<target>/`) through the library
//! entry point its cargo-fuzz target feeds, with the same checks: both call
//! `detector::testsupport::fuzz`. Fuzzing needs nightly
//! and libFuzzer and is not part of the test run; this replay is an ordinary test, so the
//! seeds — the inputs each target was written to handle — are checked on every run.
//!
//! Each seed runs under `catch_unwind`, so one report names every seed that panics or
//! breaks a check. The replay also proves it exercised something: every target has seeds,
//! and each target's seeds reach both its accepting and its rejecting path where the
//! target has both (a replay that only ever hits one branch would pass by accident).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use detector::testsupport::fuzz::{self, Outcome};
use detector_common::{EventHeader, HEADER_SIZE};

/// One fuzz target: its name, its replay, and whether its seeds must reach the rejecting
/// path as well as the accepting one.
struct Target {
    name: &'static str,
    replay: fn(&[u8]) -> Outcome,
    rejects_too: bool,
}

const TARGETS: &[Target] = &[
    Target {
        name: "decode",
        replay: fuzz::decode,
        rejects_too: false,
    },
    Target {
        name: "eql",
        replay: fuzz::eql,
        rejects_too: true,
    },
    Target {
        name: "rule_toml",
        replay: fuzz::rule_toml,
        rejects_too: true,
    },
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The seeds of `target`, sorted by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Every target in `detector/fuzz/fuzz_targets/` has a replay here (a new target without
/// one would leave its seeds unchecked).
#[test]
fn every_fuzz_target_is_replayed() {
    let dir = fuzz_dir().join("fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    replayed.sort();
    assert_eq!(on_disk, replayed);
}

/// Replays every seed of every target; fails with the list of seeds that panicked.
#[test]
fn every_seed_replays_without_panic() {
    // The panic message of a failing seed is printed by the hook as usual; the report
    // below names the seed.
    let mut failures = Vec::new();
    for t in TARGETS {
        let seeds = seeds(t.name);
        assert!(!seeds.is_empty(), "{}: no seeds", t.name);
        let mut seen = Vec::new();
        for (name, data) in &seeds {
            match catch_unwind(AssertUnwindSafe(|| (t.replay)(data))) {
                Ok(path) => {
                    eprintln!("{}/{name}: {path:?}", t.name);
                    seen.push(path)
                }
                Err(_) => failures.push(format!("{}/{name}", t.name)),
            }
        }
        if failures.is_empty() {
            assert!(
                seen.contains(&Outcome::Accepted),
                "{}: no seed reaches the accepting path ({seen:?})",
                t.name
            );
            assert!(
                !t.rejects_too || seen.contains(&Outcome::Rejected),
                "{}: no seed reaches the rejecting path ({seen:?})",
                t.name
            );
        }
    }
    assert!(failures.is_empty(), "seeds that panicked: {failures:?}");
}

/// The replays tell the paths apart: broken inputs take each target's rejecting path (so
/// the path checks above are not vacuous).
#[test]
fn the_replay_can_fail() {
    // A header that declares more section bytes than the record holds is rejected.
    let mut short = vec![0u8; HEADER_SIZE];
    short[0] = 2; // kind: exec
    let filename_len_at = std::mem::offset_of!(EventHeader, filename_len);
    short[filename_len_at] = 10;
    assert_eq!(fuzz::decode(&short), Outcome::Rejected);
    assert_eq!(fuzz::decode(&[1, 2, 3]), Outcome::Rejected);
    assert_eq!(fuzz::eql(b"process where"), Outcome::Rejected);
    assert_eq!(fuzz::eql(&[0xff, 0xfe]), Outcome::Skipped);
    assert_eq!(fuzz::rule_toml(b"[rule"), Outcome::Rejected);
}
