//! Test support, shared by unit tests, integration tests and benches (not part of the
//! daemon's API): where the shared test material lives, and ONE prerequisite gate.
//!
//! # Shared material
//! Elastic's rule corpora and the ECS field definitions are not in this repository. They
//! are found, in this order:
//! - `DETECTOR_ECS_FLAT`: an `ecs_flat.yml` (ECS 9.4) file;
//! - `DETECTOR_RULES_DIR`: a checkout of `elastic/detection-rules`; its
//!   `rules/integrations/cloud_defend/` is the cloud_defend corpus (and holds the seed rule)
//!   and `rules/linux/` the Linux corpus;
//! - `DETECTOR_SHARED_DIR`: a directory laid out as `rules/seed`,
//!   `rules/elastic-cloud_defend`, `rules/elastic-cloud_defend-related`,
//!   `rules/elastic-linux` and `ecs/ecs_flat.yml`;
//! - otherwise `shared/` beside the workspace (`<workspace>/../shared`) or, when that is
//!   absent, beside the nearest ancestor of the workspace that has one (a clone one level
//!   deeper, as CI may make, still finds the material its machine provides).
//!
//! # The gate
//! A test that needs something the machine may lack starts with
//! `if !require("test_name", &[Need::Root, Need::Tool("runc")]) { return; }`.
//! When a need is missing, under `CI=true` or `DETECTOR_REQUIRE_ALL=1` the test FAILS naming
//! what is missing; otherwise it prints `SKIPPED <test>: <why>` and returns. Either way it
//! appends a record to `DETECTOR_TEST_REPORT_DIR` (set by `cargo xtask test`), which lists
//! every skipped test and counts the privileged tests that ran.
#![doc(hidden)]

pub mod fuzz;
pub mod stream;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Names a directory laid out like the shared material (see the module docs).
pub const SHARED_DIR_VAR: &str = "DETECTOR_SHARED_DIR";
/// Names an `ecs_flat.yml`.
pub const ECS_FLAT_VAR: &str = "DETECTOR_ECS_FLAT";
/// Names a checkout of `elastic/detection-rules`.
pub const RULES_DIR_VAR: &str = "DETECTOR_RULES_DIR";
/// Directory for skip/ran records (one file per record), set by the test runner.
pub const REPORT_DIR_VAR: &str = "DETECTOR_TEST_REPORT_DIR";
/// `1` makes every missing prerequisite a failure, as `CI=true` does; `0` turns that off.
pub const REQUIRE_ALL_VAR: &str = "DETECTOR_REQUIRE_ALL";

/// The seed rule's file name, in the shared `rules/seed` and in a detection-rules checkout.
const SEED_FILE: &str = "lateral_movement_ssh_process_launched_inside_a_container.toml";

/// The shared directory: `DETECTOR_SHARED_DIR`, else `shared/` beside the workspace root,
/// else the `shared/` (holding `rules/` or `ecs/`) of the nearest ancestor that has one.
/// Derived from this crate's manifest directory, so no path of a build machine is written
/// in the code. When none exists, `<workspace>/../shared` is returned, so the gate's
/// message names where it looked first.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os(SHARED_DIR_VAR) {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => {
            let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared");
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            find_shared_above(&workspace).unwrap_or(beside)
        }
    }
}

/// The first `<ancestor>/shared` above `workspace` that looks like the shared material.
fn find_shared_above(workspace: &Path) -> Option<PathBuf> {
    let workspace = workspace.canonicalize().ok()?;
    workspace
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared"))
        .find(|d| d.join("rules").is_dir() || d.join("ecs").is_dir())
}

/// A set of Elastic rules the tests read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corpus {
    /// The seed rule, Elastic's "SSH Process Launched From Inside A Container", unmodified.
    Seed,
    /// Elastic's `cloud_defend` integration rules.
    CloudDefend,
    /// Rules from elsewhere in detection-rules about containers (shared directory only).
    CloudDefendRelated,
    /// Elastic's Linux rules (process-event rules and sequences).
    ElasticLinux,
}

impl Corpus {
    /// Its directory in the shared layout (under `rules/`).
    pub fn shared_name(self) -> &'static str {
        match self {
            Corpus::Seed => "seed",
            Corpus::CloudDefend => "elastic-cloud_defend",
            Corpus::CloudDefendRelated => "elastic-cloud_defend-related",
            Corpus::ElasticLinux => "elastic-linux",
        }
    }

    /// Its path in a detection-rules checkout, when it has one.
    fn in_checkout(self) -> Option<&'static str> {
        match self {
            Corpus::Seed => Some("rules/integrations/cloud_defend"),
            Corpus::CloudDefend => Some("rules/integrations/cloud_defend"),
            Corpus::CloudDefendRelated => None,
            Corpus::ElasticLinux => Some("rules/linux"),
        }
    }
}

/// Where `corpus` is: a directory of rule files, or (the seed, from a detection-rules
/// checkout) the one rule file. Rule loaders take either.
pub fn corpus(corpus: Corpus) -> PathBuf {
    if let Some(checkout) = std::env::var_os(RULES_DIR_VAR).filter(|v| !v.is_empty())
        && let Some(rel) = corpus.in_checkout()
    {
        let dir = Path::new(&checkout).join(rel);
        return match corpus {
            Corpus::Seed => dir.join(SEED_FILE),
            _ => dir,
        };
    }
    shared_dir().join("rules").join(corpus.shared_name())
}

/// The ECS field definitions: `DETECTOR_ECS_FLAT`, else `<shared>/ecs/ecs_flat.yml`.
pub fn ecs_flat() -> PathBuf {
    match std::env::var_os(ECS_FLAT_VAR) {
        Some(f) if !f.is_empty() => PathBuf::from(f),
        _ => shared_dir().join("ecs/ecs_flat.yml"),
    }
}

/// Something a test needs from the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Effective uid 0 (loading eBPF, containers, mounts, cgroups). Makes the test a
    /// privileged one: the runner counts those that ran.
    Root,
    /// An executable of this name on `PATH`.
    Tool(&'static str),
    /// A file or directory at this absolute path (a kernel interface, a system binary).
    Path(&'static str),
    /// A rule corpus (see [`corpus`]).
    Corpus(Corpus),
    /// The ECS field definitions (see [`ecs_flat`]).
    EcsSchema,
}

impl Need {
    /// Why the need is not met here, or `None` when it is.
    pub fn missing(self) -> Option<String> {
        match self {
            Need::Root => {
                // SAFETY: geteuid has no preconditions and cannot fail.
                let uid = unsafe { libc::geteuid() };
                (uid != 0).then(|| format!("needs root (running as uid {uid})"))
            }
            Need::Tool(tool) => {
                (!on_path(tool)).then(|| format!("needs `{tool}` on PATH (not installed?)"))
            }
            Need::Path(p) => (!Path::new(p).exists()).then(|| format!("needs {p} (absent)")),
            Need::Corpus(c) => {
                let path = corpus(c);
                (!has_rules(&path)).then(|| {
                    format!(
                        "needs Elastic's {} rules (none at {})",
                        c.shared_name(),
                        path.display()
                    )
                })
            }
            Need::EcsSchema => {
                let path = ecs_flat();
                (!path.is_file()).then(|| format!("needs the ECS schema (no {})", path.display()))
            }
        }
    }

    /// How to provide it, when that is a setting.
    fn hint(self) -> Option<String> {
        match self {
            Need::Corpus(_) => Some(format!(
                "set {RULES_DIR_VAR} to a detection-rules checkout or {SHARED_DIR_VAR}"
            )),
            Need::EcsSchema => Some(format!(
                "set {ECS_FLAT_VAR} to an ecs_flat.yml or {SHARED_DIR_VAR}"
            )),
            _ => None,
        }
    }
}

/// Is `tool` an executable file in a `PATH` directory?
fn on_path(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|d| {
            std::fs::metadata(d.join(tool))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// A rule file, or a directory with at least one `.toml` file in it.
fn has_rules(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => true,
        Ok(m) if m.is_dir() => std::fs::read_dir(path).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "toml"))
        }),
        _ => false,
    }
}

/// Whether a missing prerequisite fails the test: `DETECTOR_REQUIRE_ALL` when set, else
/// `CI` (true when set to anything but empty, `0` or `false`).
pub fn strict() -> bool {
    fn truthy(var: &str) -> Option<bool> {
        let v = std::env::var(var).ok()?;
        let v = v.trim().to_ascii_lowercase();
        Some(!(v.is_empty() || v == "0" || v == "false" || v == "no"))
    }
    truthy(REQUIRE_ALL_VAR)
        .or_else(|| truthy("CI"))
        .unwrap_or(false)
}

/// The gate: true when every need is met (the test goes on). Otherwise, in strict mode
/// ([`strict`]) it panics naming `test` and what is missing, so the test fails; outside it,
/// it prints `SKIPPED <test>: <why>`, records the skip and returns false.
///
/// A test that needs [`Need::Root`] and runs is recorded as a privileged test that ran.
pub fn require(test: &str, needs: &[Need]) -> bool {
    let unmet: Vec<(Need, String)> = needs
        .iter()
        .filter_map(|&n| n.missing().map(|why| (n, why)))
        .collect();
    if unmet.is_empty() {
        if needs.contains(&Need::Root) {
            record(test, Outcome::Ran, "");
        }
        return true;
    }
    let mut why = unmet
        .iter()
        .map(|(_, why)| why.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    let mut hints: Vec<String> = unmet.iter().filter_map(|(n, _)| n.hint()).collect();
    hints.dedup();
    if !hints.is_empty() {
        why = format!("{why} ({})", hints.join("; "));
    }
    if strict() {
        record(test, Outcome::Failed, &why);
        panic!(
            "{test}: prerequisite missing: {why} (CI or {REQUIRE_ALL_VAR}=1: a test that \
             cannot run fails)"
        );
    }
    if record(test, Outcome::Skipped, &why) {
        eprintln!("SKIPPED {test}: {why}");
    }
    false
}

/// The name of the running test: libtest names each test's thread after it.
pub fn current_test() -> String {
    std::thread::current()
        .name()
        .filter(|n| *n != "main")
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// What a record says happened to a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A privileged test had everything it needs and ran.
    Ran,
    /// A prerequisite was missing; the test returned early (it passes, and is listed).
    Skipped,
    /// A prerequisite was missing in strict mode; the test fails.
    Failed,
}

impl Outcome {
    /// The word written in records (read by `cargo xtask test`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ran => "ran",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// Appends one record to the report directory, when there is one: one file per record
/// (written aside, then renamed), so parallel test threads and processes never interleave.
/// A test that asks twice (a check called in a loop) is recorded once: returns whether this
/// record is new. Failing to write is reported, not fatal: the gate's verdict is what matters.
fn record(test: &str, outcome: Outcome, why: &str) -> bool {
    static SEEN: Mutex<Option<HashSet<(String, &'static str)>>> = Mutex::new(None);
    static SEQ: AtomicU64 = AtomicU64::new(0);
    {
        let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
        if !seen
            .get_or_insert_with(HashSet::new)
            .insert((test.to_owned(), outcome.as_str()))
        {
            return false;
        }
    }
    let Some(dir) = std::env::var_os(REPORT_DIR_VAR).filter(|d| !d.is_empty()) else {
        return true;
    };
    let line = serde_json::json!({
        "test": test,
        "outcome": outcome.as_str(),
        "why": why,
    });
    let name = format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    let dir = Path::new(&dir);
    let tmp = dir.join(format!(".{name}.tmp"));
    let done = dir.join(format!("{name}.json"));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| writeln!(f, "{line}"))
        .and_then(|()| std::fs::rename(&tmp, &done));
    if let Err(e) = written {
        eprintln!("cannot write the test record {}: {e}", done.display());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_met_need_is_not_missing_and_an_absent_one_says_what() {
        assert_eq!(Need::Path("/").missing(), None);
        assert_eq!(Need::Tool("sh").missing(), None);
        let why = Need::Tool("no-such-tool-for-detector-tests")
            .missing()
            .unwrap();
        assert!(why.contains("no-such-tool-for-detector-tests"), "{why}");
        let why = Need::Path("/no/such/path").missing().unwrap();
        assert!(why.contains("/no/such/path"), "{why}");
    }

    #[test]
    fn the_default_shared_dir_is_beside_the_workspace_or_an_ancestor() {
        // Only when the variable is unset: the runner may point it elsewhere.
        if std::env::var_os(SHARED_DIR_VAR).is_none() {
            let dir = shared_dir();
            assert!(dir.ends_with("shared"), "{}", dir.display());
            if !dir.starts_with(env!("CARGO_MANIFEST_DIR")) {
                let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
                let workspace = workspace.canonicalize().unwrap();
                assert!(
                    workspace.starts_with(dir.parent().unwrap()),
                    "{} is not beside an ancestor of {}",
                    dir.display(),
                    workspace.display()
                );
            }
        }
    }

    #[test]
    fn the_shared_dir_is_found_beside_an_ancestor() {
        let top = tempfile::tempdir().unwrap();
        let workspace = top.path().join("ci/clone/repo");
        std::fs::create_dir_all(&workspace).unwrap();
        assert_eq!(find_shared_above(&workspace), None);
        // A `shared` without the material is passed over.
        std::fs::create_dir_all(top.path().join("ci/clone/shared")).unwrap();
        assert_eq!(find_shared_above(&workspace), None);
        std::fs::create_dir_all(top.path().join("shared/rules")).unwrap();
        let found = find_shared_above(&workspace).unwrap();
        assert_eq!(found, top.path().canonicalize().unwrap().join("shared"));
        // The nearest wins.
        std::fs::create_dir_all(top.path().join("ci/clone/shared/ecs")).unwrap();
        let found = find_shared_above(&workspace).unwrap();
        assert!(found.ends_with("ci/clone/shared"), "{}", found.display());
    }

    #[test]
    fn rule_paths_accept_a_file_or_a_directory_with_toml() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_rules(dir.path()));
        assert!(!has_rules(&dir.path().join("absent")));
        let file = dir.path().join("r.toml");
        std::fs::write(&file, "").unwrap();
        assert!(has_rules(dir.path()));
        assert!(has_rules(&file));
    }
}
