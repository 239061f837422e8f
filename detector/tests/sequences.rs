//! Sequence rules: the corpus compiles, and the engine agrees with Elastic's Python `eql`
//! on generated event streams (differences from Elasticsearch encoded, with sources).

use std::path::PathBuf;

use detector::ecs::schema;
use detector::rules::{LoadedRule, load_all_kinds};
use detector::testsupport::{Corpus, Need, corpus, require};

#[path = "eql_diff/sequences.rs"]
mod eql_diff;

/// Counts the bytes this thread has live on the heap, so one test can measure what the
/// engine holds while other tests run on other threads.
struct Counting;

thread_local! {
    static LIVE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

fn count(delta: isize) {
    // `try_with`: a thread being torn down may still free memory.
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the only addition is
// bookkeeping in a const-initialized thread-local `Cell` (no allocation, no destructor).
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { std::alloc::System.alloc(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: `p` was allocated by `alloc` above with layout `l`.
        unsafe { std::alloc::System.dealloc(p, l) };
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; `p` and `l` come from this allocator.
        let q = unsafe { std::alloc::System.realloc(p, l, new) };
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_bytes() -> isize {
    LIVE.with(|c| c.get())
}

/// 100,000 pending sequences with corpus-sized join keys (a 32-character host id and a
/// 44-character entity id, as `sequence by host.id, process.entity_id`) and a `u64`
/// handle per event stay within 64 MiB: the target for the whole engine.
#[test]
fn memory_with_100000_pending_sequences() {
    let (bytes, per) = eql_diff::pending_memory(100_000, live_bytes);
    eprintln!(
        "100,000 pending sequences: {bytes} bytes ({:.1} MiB), {per} bytes each",
        bytes as f64 / (1 << 20) as f64
    );
    assert!(bytes < 64 << 20, "{bytes} bytes");
    assert!(per <= 640, "{per} bytes per pending sequence");
}

/// Our engine and Elastic's Python `eql` agree on generated streams (see
/// `eql_diff/sequences.rs` for the differences from Elasticsearch that are encoded).
#[test]
fn differential_against_python_eql() {
    if !require(
        "differential_against_python_eql",
        &[Need::Tool("python3"), Need::Tool("eql")],
    ) {
        return;
    }
    let compared = eql_diff::differential(40, 400);
    eprintln!("{compared} matches compared");
    assert!(
        compared > 500,
        "only {compared} matches: the streams test little"
    );
}

/// Every `sequence-process` rule of Elastic's Linux corpus (INDEX.tsv) compiles unmodified
/// against the ECS schema, and so does every sequence with file or network terms (their
/// fields are ECS 9.4 or integration fields the schema knows).
#[test]
fn corpus_sequences_compile() {
    if !require(
        "corpus_sequences_compile",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let dir = corpus(Corpus::ElasticLinux);
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).unwrap_or_default();
    let kind_of = |file: &str| {
        index
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .find(|c| c.first() == Some(&file))
            .and_then(|c| c.get(4).map(|s| s.to_string()))
    };
    let mut process_ok = 0;
    let mut process_failed = Vec::new();
    let mut mixed_ok = 0;
    let mut mixed_failed = Vec::new();
    let mut seen_sequences = 0;
    for outcome in load_all_kinds(std::slice::from_ref(&dir), schema()) {
        let (file, result): (PathBuf, Result<(), String>) = match &outcome {
            Ok(LoadedRule::Sequence(r)) => (r.path.clone(), Ok(())),
            Ok(LoadedRule::Event(_)) => continue,
            Err(e) => (PathBuf::from(&e.file), Err(e.to_string())),
        };
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let kind = kind_of(&name).unwrap_or_else(|| {
            if text.contains("sequence") {
                "sequence-?".into()
            } else {
                "other".into()
            }
        });
        if !kind.starts_with("sequence") {
            continue;
        }
        seen_sequences += 1;
        match (kind.as_str(), result) {
            ("sequence-process", Ok(())) => process_ok += 1,
            ("sequence-process", Err(e)) => process_failed.push(e),
            (_, Ok(())) => mixed_ok += 1,
            (_, Err(e)) => mixed_failed.push(e),
        }
    }
    eprintln!(
        "sequence-process: {process_ok} compiled; other sequences: {mixed_ok} compiled, {} not:",
        mixed_failed.len()
    );
    for e in &mixed_failed {
        eprintln!("  {e}");
    }
    assert!(process_failed.is_empty(), "{process_failed:#?}");
    assert!(mixed_failed.is_empty(), "{mixed_failed:#?}");
    if !index.is_empty() {
        assert_eq!(process_ok, 30, "the corpus marks 30 sequence-process rules");
        assert_eq!(mixed_ok, 39, "the corpus marks 39 sequence-mixed rules");
        assert_eq!(
            seen_sequences, 69,
            "30 sequence-process + 39 sequence-mixed"
        );
    }
}
