//! Replays every committed fuzz seed (`detector/fuzz/seeds/<target>/`) through the library
//! entry point its cargo-fuzz target feeds, with the same checks the target makes
//! (`detector/fuzz/fuzz_targets/<target>.rs`; keep the two in step). Fuzzing needs nightly
//! and libFuzzer and is not part of the test run; this replay is an ordinary test, so the
//! seeds — the inputs each target was written to handle — are checked on every run.
//!
//! Each seed runs under `catch_unwind`, so one report names every seed that panics or
//! breaks a check. The replay also proves it exercised something: every target has seeds,
//! and each target's seeds reach both its accepting and its rejecting path where the
//! target has both (a replay that only ever hits one branch would pass by accident).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use detector::ecs::field::{Document, FieldId, FieldValue};
use detector::event::{Decoder, decode};
use detector::rules::{compile_query, error::locate, parse_rule};
use detector_common::{EventHeader, HEADER_SIZE};

/// What one replayed input did in its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// Decoded / compiled / loaded.
    Accepted,
    /// Rejected with an error (checked like the target checks it).
    Rejected,
    /// Not for this target (e.g. not UTF-8 where the target wants text): skipped by it too.
    Skipped,
}

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
        replay: replay_decode,
        rejects_too: false,
    },
    Target {
        name: "eql",
        replay: replay_eql,
        rejects_too: true,
    },
    Target {
        name: "rule_toml",
        replay: replay_rule_toml,
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

/// `decode`: any bytes are either an event whose strings fit the sections the header
/// declares, or a counted error.
fn replay_decode(data: &[u8]) -> Outcome {
    let mut d = Decoder::default();
    let Ok(ev) = decode(data) else {
        assert!(d.decode(data).is_none());
        assert_eq!(d.malformed, 1);
        return Outcome::Rejected;
    };
    assert!(d.decode(data).is_some());
    assert!(data.len() >= HEADER_SIZE);
    // SAFETY: at least HEADER_SIZE bytes (checked above); the header is plain integers, so
    // any bytes are a valid value, and read_unaligned needs no alignment.
    let h: EventHeader = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    assert!(ev.comm.len() <= 16 && !ev.comm.contains(&0));
    assert!(ev.filename.len() <= h.filename_len as usize && !ev.filename.contains(&0));
    assert!(ev.cgroup_leaf.len() <= h.cgroup_leaf_len as usize && !ev.cgroup_leaf.contains(&0));
    assert!(
        ev.cgroup_parent.len() <= h.cgroup_parent_len as usize && !ev.cgroup_parent.contains(&0)
    );
    // Joining components adds at most the leading '/'.
    assert!(ev.exe_path.len() <= h.exe_len as usize + 1);
    let argv_bytes: usize = ev.argv.iter().map(|a| a.len() + 1).sum();
    assert!(argv_bytes <= h.argv_len as usize + 1);
    assert!(ev.argv.iter().all(|a| !a.contains(&0)));
    assert_eq!(ev.pid, h.pid);
    assert_eq!(ev.boot_ns, h.boot_ns);
    Outcome::Accepted
}

/// The `eql` target's document: every field answers from one fuzzed value.
struct FuzzDoc {
    value: String,
    list: Vec<String>,
    long: i64,
}

impl Document for FuzzDoc {
    fn field(&self, id: FieldId) -> FieldValue<'_> {
        match id.0 % 6 {
            0 => FieldValue::Str(&self.value),
            1 => FieldValue::Strs(&self.list),
            2 => FieldValue::Long(self.long),
            3 => FieldValue::Bool(self.value.len().is_multiple_of(2)),
            4 => FieldValue::StaticStrs(&["start", "exec"]),
            _ => FieldValue::Missing,
        }
    }
}

/// `eql`: `<query>` or `<query>\0<value>`; a compiled query is evaluated against a
/// document built from `<value>`, a compile error must point inside the query.
fn replay_eql(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::Skipped;
    };
    let (query, value) = text.split_once('\0').unwrap_or((text, "bash"));
    match compile_query(query, detector::ecs::schema()) {
        Ok(q) => {
            let doc = FuzzDoc {
                value: value.to_string(),
                list: value.split(',').map(str::to_string).collect(),
                long: value.parse().unwrap_or(value.len() as i64),
            };
            let _ = q.matches(&doc);
            Outcome::Accepted
        }
        Err(e) => {
            assert!(
                e.span.start <= e.span.end && e.span.end <= query.len(),
                "span {:?} outside a query of {} bytes",
                e.span,
                query.len()
            );
            let _ = locate(query, e.span.start, e.span.end);
            Outcome::Rejected
        }
    }
}

/// `rule_toml`: a rule file is a rule whose query compiles on its own, or an error that
/// displays and points inside the file.
fn replay_rule_toml(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::Skipped;
    };
    match parse_rule(Path::new("fuzz.toml"), text, detector::ecs::schema()) {
        Ok(rule) => {
            assert!(compile_query(&rule.query, detector::ecs::schema()).is_ok());
            Outcome::Accepted
        }
        Err(e) => {
            if e.line > 0 {
                assert!(
                    e.line <= text.lines().count().max(1) + 1,
                    "line {} beyond the file",
                    e.line
                );
            }
            let _ = e.to_string();
            Outcome::Rejected
        }
    }
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
    assert_eq!(replay_decode(&short), Outcome::Rejected);
    assert_eq!(replay_decode(&[1, 2, 3]), Outcome::Rejected);
    assert_eq!(replay_eql(b"process where"), Outcome::Rejected);
    assert_eq!(replay_eql(&[0xff, 0xfe]), Outcome::Skipped);
    assert_eq!(replay_rule_toml(b"[rule"), Outcome::Rejected);
}
