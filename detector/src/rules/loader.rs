//! Loads Elastic detection-rules TOML files as published: `[metadata]`, `[rule]` with the
//! query and its metadata, `[[rule.threat]]` tables.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::eql::{QueryError, compile_query};
use super::error::RuleError;
use super::meta::RuleMeta;
use super::sequence::{compile_sequence, is_sequence};
use super::{LoadedRule, Rule, SequenceRule};
use crate::ecs::field::Schema;

/// Rule files are a few kilobytes; anything much larger is not a rule.
pub const MAX_RULE_FILE: u64 = 4 << 20;
/// Directory nesting followed at most (symlink loops are also cut by the visited set).
const MAX_DEPTH: usize = 32;

/// The keys the loader itself needs, with their positions.
#[derive(Deserialize)]
struct QueryFile {
    rule: QueryPart,
}

#[derive(Deserialize)]
struct QueryPart {
    query: Option<Spanned<String>>,
    language: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct MetaFile {
    rule: RuleMeta,
}

/// Every rule file under `paths` (files as given, directories searched recursively for
/// `*.toml`, sorted), plus errors for paths that cannot be read.
pub fn collect_rule_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<RuleError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for p in paths {
        match fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, 0, &mut seen, &mut files, &mut errors),
            Ok(_) => files.push(p.clone()),
            Err(e) => errors.push(RuleError::file(p, format!("cannot read: {e}"))),
        }
    }
    (files, errors)
}

fn walk(
    dir: &Path,
    depth: usize,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<RuleError>,
) {
    if depth > MAX_DEPTH {
        errors.push(RuleError::file(
            dir,
            "directory nesting too deep; not searched",
        ));
        return;
    }
    if let Ok(c) = fs::canonicalize(dir)
        && !seen.insert(c)
    {
        return;
    }
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(RuleError::file(dir, format!("cannot read directory: {e}")));
            return;
        }
    };
    let mut list: Vec<PathBuf> = Vec::new();
    for e in entries {
        match e {
            Ok(e) => list.push(e.path()),
            Err(e) => errors.push(RuleError::file(
                dir,
                format!("cannot read directory entry: {e}"),
            )),
        }
    }
    list.sort();
    for p in list {
        match fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk(&p, depth + 1, seen, files, errors),
            Ok(_) if p.extension().is_some_and(|x| x == "toml") => files.push(p),
            Ok(_) => {}
            Err(e) => errors.push(RuleError::file(&p, format!("cannot read: {e}"))),
        }
    }
}

/// Reads and compiles one rule file (single-event rules only; a sequence is an error).
pub fn load_file(path: &Path, schema: &dyn Schema) -> Result<Rule, RuleError> {
    parse_rule(path, &read_rule_text(path)?, schema)
}

/// Reads and compiles one rule file of either kind.
pub fn load_any_file(path: &Path, schema: &dyn Schema) -> Result<LoadedRule, RuleError> {
    parse_any_rule(path, &read_rule_text(path)?, schema)
}

fn read_rule_text(path: &Path) -> Result<String, RuleError> {
    let f = fs::File::open(path).map_err(|e| RuleError::file(path, format!("cannot open: {e}")))?;
    let mut bytes = Vec::new();
    f.take(MAX_RULE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| RuleError::file(path, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_RULE_FILE {
        return Err(RuleError::file(
            path,
            format!("file larger than {MAX_RULE_FILE} bytes; not a rule file"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        RuleError::file(
            path,
            format!("not valid UTF-8 (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

fn toml_error(path: &Path, text: &str, e: toml::de::Error) -> RuleError {
    let reason = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(r) => RuleError::at(path, text, r.start, r.end, reason),
        None => RuleError::file(path, reason),
    }
}

/// Parses and compiles a single-event rule from `text` (the contents of `path`, used in
/// errors); a sequence query is an error.
pub fn parse_rule(path: &Path, text: &str, schema: &dyn Schema) -> Result<Rule, RuleError> {
    let (meta, query, compiled) = parse_with(path, text, |q| compile_query(q, schema))?;
    Ok(Rule {
        meta,
        query,
        path: path.to_path_buf(),
        compiled,
    })
}

/// Parses and compiles a rule of either kind: a query whose first word is `sequence` is
/// compiled by [`compile_sequence`], any other as [`parse_rule`] does.
pub fn parse_any_rule(
    path: &Path,
    text: &str,
    schema: &dyn Schema,
) -> Result<LoadedRule, RuleError> {
    enum Compiled {
        Event(super::CompiledQuery),
        Sequence(super::SequenceQuery),
    }
    let (meta, query, compiled) = parse_with(path, text, |q| {
        if is_sequence(q) {
            compile_sequence(q, schema).map(Compiled::Sequence)
        } else {
            compile_query(q, schema).map(Compiled::Event)
        }
    })?;
    let path = path.to_path_buf();
    Ok(match compiled {
        Compiled::Event(compiled) => LoadedRule::Event(Rule {
            meta,
            query,
            path,
            compiled,
        }),
        Compiled::Sequence(q) => LoadedRule::Sequence(SequenceRule {
            meta,
            query,
            path,
            compiled: std::sync::Arc::new(q),
        }),
    })
}

/// The TOML checks shared by both kinds, then `compile` on the query text; query errors
/// are located in the file.
fn parse_with<T>(
    path: &Path,
    text: &str,
    compile: impl FnOnce(&str) -> Result<T, QueryError>,
) -> Result<(super::RuleMeta, String, T), RuleError> {
    let q: QueryFile = toml::from_str(text).map_err(|e| toml_error(path, text, e))?;
    let name = q.rule.name.clone();
    let named = |mut e: RuleError| {
        e.rule_name = name.clone();
        e
    };
    let at =
        |r: Range<usize>, reason: String| named(RuleError::at(path, text, r.start, r.end, reason));

    let language = q.rule.language.as_ref().map(|s| s.get_ref().as_str());
    let kind = q.rule.kind.as_ref().map(|s| s.get_ref().as_str());
    match (kind, language) {
        (Some("eql"), Some("eql") | None) => {}
        (Some("eql"), Some(l)) => {
            let span = q.rule.language.as_ref().map(|s| s.span()).unwrap_or(0..0);
            return Err(at(
                span,
                format!("language `{l}` is not supported: EQL rules need language = \"eql\""),
            ));
        }
        (None, _) => return Err(named(RuleError::file(path, "missing key `type` in [rule]"))),
        (Some(k), l) => {
            let span = q.rule.kind.as_ref().map(|s| s.span()).unwrap_or(0..0);
            return Err(at(
                span,
                format!(
                    "rule type `{k}`{} is not supported: only EQL rules (type = \"eql\") can run here",
                    l.map(|l| format!(" (language `{l}`)")).unwrap_or_default()
                ),
            ));
        }
    }
    let Some(query) = &q.rule.query else {
        return Err(named(RuleError::file(
            path,
            "missing key `query` in [rule]",
        )));
    };
    let meta: MetaFile = toml::from_str(text).map_err(|e| named(toml_error(path, text, e)))?;

    let compiled = compile(query.get_ref()).map_err(|e| {
        let (start, end, note) = map_span(
            text,
            query.span(),
            query.get_ref(),
            e.span.start,
            e.span.end,
        );
        at(start..end, format!("{}{note}", e.message))
    })?;
    Ok((meta.rule, query.get_ref().clone(), compiled))
}

/// Maps a byte range inside the query value to a byte range of the file. Exact for literal
/// strings (`'…'`, `'''…'''`) and for basic strings without escapes; otherwise points at
/// the query's start and says where in the query the error is.
fn map_span(
    text: &str,
    token: Range<usize>,
    value: &str,
    start: usize,
    end: usize,
) -> (usize, usize, String) {
    let raw = &text[token.clone()];
    let (delim, multi) = if raw.starts_with("'''") || raw.starts_with("\"\"\"") {
        (3, true)
    } else {
        (1, false)
    };
    let mut content = token.start + delim;
    if multi {
        if text[content..].starts_with("\r\n") {
            content += 2;
        } else if text[content..].starts_with('\n') {
            content += 1;
        }
    }
    let body_end = token.end.saturating_sub(delim).max(content);
    if text.get(content..body_end) == Some(value) {
        return (content + start, content + end, String::new());
    }
    let (l, c, _) = super::error::locate(value, start, end);
    (
        content,
        content + 1,
        format!(" (at line {l}, column {c} of the query)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::testkit::TestSchema;

    const GOOD: &str = r#"[metadata]
creation_date = "2024/01/01"

[rule]
author = ["Tester"]
description = "d"
language = "eql"
license = "MIT"
name = "Test rule"
risk_score = 47
rule_id = "abc-123"
severity = "medium"
tags = ["A", "B"]
type = "eql"
version = 3
references = ["https://example.invalid/"]

query = '''
process where event.type == "start" and
  process.name : "bad" and process.nope == "x"
'''

[[rule.threat]]
framework = "MITRE ATT&CK"
[[rule.threat.technique]]
id = "T1"
name = "Tech"
reference = "https://t/"
[[rule.threat.technique.subtechnique]]
id = "T1.1"
name = "Sub"
reference = "https://t/1"

[rule.threat.tactic]
id = "TA1"
name = "Tac"
reference = "https://ta/"
"#;

    #[test]
    fn loads_metadata_and_threats() {
        let text = GOOD.replace(" and process.nope == \"x\"", "");
        let r = parse_rule(Path::new("t.toml"), &text, &TestSchema).unwrap();
        assert_eq!(r.meta.rule_id, "abc-123");
        assert_eq!(r.meta.name, "Test rule");
        assert_eq!(r.meta.risk_score, 47);
        assert_eq!(r.meta.severity, crate::rules::meta::Severity::Medium);
        assert_eq!(r.meta.version, Some(3));
        assert_eq!(r.meta.tags, ["A", "B"]);
        assert_eq!(r.meta.license.as_deref(), Some("MIT"));
        assert_eq!(r.meta.threat.len(), 1);
        assert_eq!(r.meta.threat[0].tactic.id, "TA1");
        assert_eq!(r.meta.threat[0].technique[0].subtechnique[0].id, "T1.1");
        assert!(r.query.starts_with("process where"));
    }

    #[test]
    fn query_errors_are_located_in_the_file() {
        let e = parse_rule(Path::new("t.toml"), GOOD, &TestSchema).unwrap_err();
        assert_eq!((e.line, e.column), (20, 28), "{e}");
        assert!(e.reason.contains("unknown field `process.nope`"), "{e}");
        assert_eq!(e.rule_name.as_deref(), Some("Test rule"));
        let shown = e.to_string();
        assert!(shown.starts_with("t.toml:20:28: unknown field"), "{shown}");
        assert!(
            shown.ends_with(&format!("\n   | {}^^^^^^^^^^^^", " ".repeat(27))),
            "{shown}"
        );
    }

    #[test]
    fn basic_string_queries_with_escapes_still_point_near() {
        let text = GOOD.replace(
            "query = '''\nprocess where event.type == \"start\" and\n  process.name : \"bad\" and process.nope == \"x\"\n'''",
            "query = \"process where process.name == \\\"a\\\" and nope == 1\"",
        );
        let e = parse_rule(Path::new("t.toml"), &text, &TestSchema).unwrap_err();
        assert_eq!(e.line, 18, "{e}");
        assert!(
            e.reason.contains("(at line 1, column 39 of the query)"),
            "{e}"
        );
    }

    #[test]
    fn file_level_errors_name_the_key() {
        let cases: &[(&str, &str, &str, usize)] = &[
            ("rule_id = \"abc-123\"\n", "", "missing field `rule_id`", 0),
            ("risk_score = 47", "risk_score = \"x\"", "invalid type", 10),
            (
                "severity = \"medium\"",
                "severity = \"extreme\"",
                "unknown variant `extreme`",
                12,
            ),
            (
                "type = \"eql\"",
                "type = \"query\"",
                "rule type `query` (language `eql`) is not supported",
                14,
            ),
            ("name = \"Test rule\"", "name = \"Test rule", "", 9),
            ("query = '''", "qery = '''", "missing key `query`", 0),
            (
                "language = \"eql\"",
                "language = \"lucene\"",
                "language `lucene` is not supported",
                7,
            ),
        ];
        for (from, to, msg, line) in cases {
            let text = GOOD
                .replace(" and process.nope == \"x\"", "")
                .replace(from, to);
            let e = parse_rule(Path::new("t.toml"), &text, &TestSchema).unwrap_err();
            assert!(e.reason.contains(msg), "{from}: {e}");
            if *line > 0 {
                assert_eq!(e.line, *line, "{from}: {e}");
            }
        }
    }

    #[test]
    fn collects_toml_files_recursively_in_order() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("b/c")).unwrap();
        fs::write(dir.path().join("b/c/z.toml"), "").unwrap();
        fs::write(dir.path().join("a.toml"), "").unwrap();
        fs::write(dir.path().join("b/readme.md"), "").unwrap();
        let (files, errs) =
            collect_rule_files(&[dir.path().to_path_buf(), dir.path().join("missing")]);
        let rel: Vec<_> = files
            .iter()
            .map(|f| f.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(rel, [PathBuf::from("a.toml"), PathBuf::from("b/c/z.toml")]);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].to_string().contains("missing: cannot read"),
            "{}",
            errs[0]
        );
    }

    #[test]
    fn hostile_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin.toml");
        fs::write(&bin, [0xff, 0xfe, b'\n']).unwrap();
        assert!(
            load_file(&bin, &TestSchema)
                .unwrap_err()
                .reason
                .contains("UTF-8")
        );
        let big = dir.path().join("big.toml");
        fs::write(&big, vec![b'#'; (MAX_RULE_FILE + 10) as usize]).unwrap();
        assert!(
            load_file(&big, &TestSchema)
                .unwrap_err()
                .reason
                .contains("larger")
        );
        let nl = dir.path().join("new\nline.toml");
        fs::write(&nl, "[rule").unwrap();
        let e = load_file(&nl, &TestSchema).unwrap_err().to_string();
        assert!(
            e.starts_with("new\\nline.toml:") || e.contains("new\\nline.toml:"),
            "{e}"
        );
    }
}
