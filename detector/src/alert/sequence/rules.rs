//! Loading rules of both kinds for the alert stage: single-event rules into a [`RuleSet`],
//! sequence rules beside it; and what `run` refuses (a term needing events the sensor does
//! not produce).

use std::path::{Path, PathBuf};

use crate::ecs::field::Schema;
use crate::rules::sequence::{TermCategory, TermInfo};
use crate::rules::{LoadedRule, RuleError, RuleSet, SequenceRule, load_all_kinds};

/// The event categories the live sensor produces (fork, exec and exit are `process`).
pub const SENSOR_CATEGORIES: &[&str] = &["process"];

/// Every rule under `paths`: the single-event rules indexed in a set, the sequence rules in
/// load order, and the errors (files that did not load).
pub fn load(
    paths: &[PathBuf],
    schema: &dyn Schema,
) -> (RuleSet, Vec<SequenceRule>, Vec<RuleError>) {
    let mut events = Vec::new();
    let mut sequences = Vec::new();
    let mut errors = Vec::new();
    for o in load_all_kinds(paths, schema) {
        match o {
            Ok(LoadedRule::Event(r)) => events.push(r),
            Ok(LoadedRule::Sequence(r)) => sequences.push(r),
            Err(e) => errors.push(e),
        }
    }
    (RuleSet::new(events, schema), sequences, errors)
}

fn category_name(c: &TermCategory) -> &str {
    match c {
        TermCategory::Any => "any",
        TermCategory::Named(n) => n,
    }
}

/// One error per sequence rule with a term that events of `produced` can never match,
/// naming the term at its file, line and column (`run` refuses such a rule: loaded, it
/// would silently never alert, or, for `until` and missing-event terms, alert when it
/// should not).
pub fn refuse_unproducible(rules: &[SequenceRule], produced: &[&str]) -> Vec<RuleError> {
    let mut errors = Vec::new();
    for r in rules {
        let bad: Vec<&TermInfo> = r.compiled.unproducible_terms(produced).collect();
        let Some(first) = bad.first() else {
            continue;
        };
        let what = |t: &TermInfo| {
            let kind = match t.kind {
                crate::rules::sequence::TermKind::Event => "term",
                crate::rules::sequence::TermKind::Missing => "missing-event term",
                crate::rules::sequence::TermKind::Until => "until term",
            };
            format!(
                "{kind} `{}`",
                r.query
                    .get(t.span.start..t.span.end)
                    .unwrap_or("")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(80)
                    .collect::<String>()
            )
        };
        let reason = format!(
            "this sequence's {} needs `{}` events, which the sensor does not produce (it \
             produces {}): `detector run` refuses the rule, which would never match \
             (`detector replay` runs it over recorded events){}",
            what(first),
            category_name(&first.category),
            produced.join(", "),
            if bad.len() > 1 {
                format!("; {} more term(s) likewise", bad.len() - 1)
            } else {
                String::new()
            }
        );
        let mut e = located(
            &r.path,
            &r.query,
            first.category_span.start,
            first.category_span.end,
            reason,
        );
        e.rule_name = Some(r.meta.name.clone());
        errors.push(e);
    }
    errors
}

/// An error at `start..end` of the query of the rule file `path`: located in the file when
/// the query appears there verbatim (literal strings, as Elastic's rules write them).
fn located(path: &Path, query: &str, start: usize, end: usize, reason: String) -> RuleError {
    if let Ok(text) = std::fs::read_to_string(path)
        && let Some(off) = text.find(query)
    {
        return RuleError::at(path, &text, off + start, off + end, reason);
    }
    let (l, c, _) = crate::rules::error::locate(query, start, end);
    RuleError::file(
        path,
        format!("{reason} (at line {l}, column {c} of the query)"),
    )
}
