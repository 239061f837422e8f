//! Sequence rules: the corpus compiles, and the engine agrees with Elastic's Python `eql`
//! on generated event streams (differences from Elasticsearch encoded, with sources).

use std::path::PathBuf;

use detector::ecs::schema;
use detector::rules::{LoadedRule, load_all_kinds};
use detector::testsupport::{Corpus, Need, corpus, require};

#[path = "eql_diff/sequences.rs"]
mod eql_diff;

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

/// The ECS schema, plus the fields the `capture` branch adds to it (issue 12's process
/// capture: `process.env_vars`, thread capabilities) for as long as the schema here lacks
/// them: three sequence-process rules read them. Consulted only for fields the ECS schema
/// does not resolve, so once `capture` is merged it is a no-op (then delete it).
#[derive(Default)]
struct WithCaptureFields {
    borrowed: std::cell::RefCell<std::collections::BTreeSet<String>>,
}

impl detector::ecs::field::Schema for WithCaptureFields {
    fn resolve(&self, path: &str) -> Option<detector::ecs::field::FieldDef> {
        use detector::ecs::field::{FieldDef, FieldId, FieldType};
        const CAPTURE: &[&str] = &[
            "process.env_vars",
            "process.thread.capabilities.effective",
            "process.thread.capabilities.permitted",
        ];
        if let Some(d) = schema().resolve(path) {
            return Some(d);
        }
        let i = CAPTURE.iter().position(|p| *p == path)?;
        self.borrowed.borrow_mut().insert(path.to_string());
        Some(FieldDef {
            id: FieldId(u16::MAX - i as u16),
            ty: FieldType::Keyword,
        })
    }
}

/// Every `sequence-process` rule of Elastic's Linux corpus (INDEX.tsv) compiles unmodified
/// against the ECS schema, and the sequences with file or network terms are reported.
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
    let schema = WithCaptureFields::default();
    for outcome in load_all_kinds(std::slice::from_ref(&dir), &schema) {
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
    let borrowed = schema.borrowed.into_inner();
    if !borrowed.is_empty() {
        eprintln!("fields taken from the overlay (the ECS schema lacks them): {borrowed:?}");
    }
    eprintln!(
        "sequence-process: {process_ok} compiled; other sequences: {mixed_ok} compiled, {} not:",
        mixed_failed.len()
    );
    for e in &mixed_failed {
        eprintln!("  {e}");
    }
    assert!(process_failed.is_empty(), "{process_failed:#?}");
    if !index.is_empty() {
        assert_eq!(process_ok, 30, "the corpus marks 30 sequence-process rules");
        assert_eq!(
            seen_sequences, 69,
            "30 sequence-process + 39 sequence-mixed"
        );
    }
}
