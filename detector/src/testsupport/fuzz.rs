//! The bodies of the cargo-fuzz targets (`detector/fuzz/fuzz_targets/`), with the checks
//! each makes. The targets call these, and `detector/tests/fuzz_seeds.rs` replays the
//! committed seeds through them as ordinary tests: one copy of each check, so the fuzzers and
//! the regression replay cannot drift apart.

use std::path::Path;

use crate::ecs::field::{Document, FieldId, FieldValue};
use crate::event::Decoder;
use crate::rules::{compile_query, error::locate, parse_rule};
use detector_common::{EventHeader, HEADER_SIZE};

/// What one replayed input did in its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Decoded / compiled / loaded.
    Accepted,
    /// Rejected with an error (checked like the target checks it).
    Rejected,
    /// Not for this target (e.g. not UTF-8 where the target wants text): skipped by it too.
    Skipped,
}

/// `decode`: any bytes are either an event whose strings fit the sections the header
/// declares, or a counted error.
pub fn decode(data: &[u8]) -> Outcome {
    let mut d = Decoder::default();
    let Ok(ev) = crate::event::decode(data) else {
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
    // Joining components adds at most the leading '/' (the root cgroup is just "/").
    assert!(ev.cgroup_path.len() <= h.cgroup_path_len as usize + 1);
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
pub fn eql(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::Skipped;
    };
    let (query, value) = text.split_once('\0').unwrap_or((text, "bash"));
    match compile_query(query, crate::ecs::schema()) {
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
pub fn rule_toml(data: &[u8]) -> Outcome {
    let Ok(text) = std::str::from_utf8(data) else {
        return Outcome::Skipped;
    };
    match parse_rule(Path::new("fuzz.toml"), text, crate::ecs::schema()) {
        Ok(rule) => {
            assert!(compile_query(&rule.query, crate::ecs::schema()).is_ok());
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
