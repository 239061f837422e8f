//! `detector check-rules PATH…`: compile every rule and say, per rule, whether it compiled
//! or why it was rejected (file:line:column and a caret excerpt), then a summary line.
//! Exit status 0 only when at least one rule was found and all compiled.
//!
//! For each rule that compiled it also says which fields it reads that this daemon never
//! fills (they read as missing, see `ecs::schema::known`), and whether it can therefore
//! never match our documents, naming the fields and the kind of data they are ([`reach`]):
//!
//! ```text
//! ok PATH NAME
//! ok PATH NAME; never filled: process.env_vars
//! ok PATH NAME; NEVER MATCHES here, needs file data: file.path
//! never matches here: 2 of 3 compiled rules (file 1, audit 1)
//! 3 compiled, 0 rejected
//! ```
//! `--json` writes the same as one JSON document.

mod reach;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::ecs::EcsSchema;
use crate::rules::error::{display_path, sanitize};
use crate::rules::{RuleError, load_all};
pub use reach::{DataClass, Reach};

/// Arguments of `check-rules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files, or directories searched recursively for `*.toml`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Write the report as one JSON document (rules, fields never filled, summary).
    #[arg(long)]
    pub json: bool,
}

/// Counts reported on the summary line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub compiled: usize,
    pub rejected: usize,
}

impl Summary {
    /// The process exit status: success only when something compiled and nothing failed.
    pub fn exit_code(self) -> ExitCode {
        if self.rejected == 0 && self.compiled > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }
}

/// Runs the subcommand, writing its report to stdout.
pub fn main(args: &Args) -> ExitCode {
    let schema = crate::ecs::schema();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if args.json {
        check_json(&args.paths, schema, &mut out)
    } else {
        check(&args.paths, schema, &mut out)
    };
    match written {
        Ok(s) => s.exit_code(),
        Err(e) => {
            eprintln!("detector check-rules: cannot write report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One rule file's outcome.
struct Checked {
    outcome: Result<(PathBuf, String, Reach), RuleError>,
}

fn check_all(paths: &[PathBuf], schema: &EcsSchema) -> Vec<Checked> {
    load_all(paths, schema)
        .into_iter()
        .map(|o| Checked {
            outcome: o.map(|rule| {
                let r = reach::reach(&rule, schema);
                (rule.path, rule.meta.name, r)
            }),
        })
        .collect()
}

fn summary(checked: &[Checked]) -> Summary {
    let compiled = checked.iter().filter(|c| c.outcome.is_ok()).count();
    Summary {
        compiled,
        rejected: checked.len() - compiled,
    }
}

/// The classes of data a rule that can never match needs, joined (`file+network`).
fn classes(r: &Reach) -> String {
    r.classes()
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join("+")
}

/// Compiles every rule under `paths` against `schema` and writes one report line (plus
/// excerpt for rejections) per rule and the summary lines.
pub fn check(paths: &[PathBuf], schema: &EcsSchema, out: &mut dyn Write) -> io::Result<Summary> {
    let checked = check_all(paths, schema);
    let mut never: BTreeMap<String, usize> = BTreeMap::new();
    let mut never_total = 0;
    let mut partly = 0;
    for c in &checked {
        match &c.outcome {
            Ok((path, name, r)) => {
                write!(out, "ok {} {}", display_path(path), sanitize(name))?;
                match &r.never_matches {
                    Some(blame) => {
                        never_total += 1;
                        *never.entry(classes(r)).or_default() += 1;
                        let data = classes(r).replace('+', " and ");
                        write!(
                            out,
                            "; NEVER MATCHES here, needs {data} data: {}",
                            blame.join(", ")
                        )?;
                        let rest: Vec<&str> = r
                            .never_filled
                            .iter()
                            .filter(|f| !blame.contains(f))
                            .map(String::as_str)
                            .collect();
                        if !rest.is_empty() {
                            write!(out, "; also never filled: {}", rest.join(", "))?;
                        }
                    }
                    None if !r.never_filled.is_empty() => {
                        partly += 1;
                        write!(out, "; never filled: {}", r.never_filled.join(", "))?;
                    }
                    None => {}
                }
                writeln!(out)?;
            }
            Err(e) => writeln!(out, "rejected {e}")?,
        }
    }
    let s = summary(&checked);
    if s.compiled + s.rejected == 0 {
        writeln!(out, "no rule files found")?;
    }
    if never_total > 0 {
        let by: Vec<String> = never.iter().map(|(c, n)| format!("{c} {n}")).collect();
        writeln!(
            out,
            "never matches here: {never_total} of {} compiled rules ({})",
            s.compiled,
            by.join(", ")
        )?;
    }
    if partly > 0 {
        writeln!(
            out,
            "may match but read fields never filled (read as missing): {partly} rules"
        )?;
    }
    writeln!(out, "{} compiled, {} rejected", s.compiled, s.rejected)?;
    Ok(s)
}

/// [`check`], written as one JSON document:
/// `{"rules": [{"file", "name", "compiled", "error", "never_filled", "never_matches":
/// {"classes", "fields"} | null}…], "summary": {"compiled", "rejected", "never_matches"}}`.
pub fn check_json(
    paths: &[PathBuf],
    schema: &EcsSchema,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    use serde_json::json;
    let checked = check_all(paths, schema);
    let s = summary(&checked);
    let rules: Vec<serde_json::Value> = checked
        .iter()
        .map(|c| match &c.outcome {
            Ok((path, name, r)) => json!({
                "file": path.to_string_lossy(),
                "name": name,
                "compiled": true,
                "never_filled": r.never_filled,
                "never_matches": r.never_matches.as_ref().map(|f| json!({
                    "classes": r.classes().iter().map(|c| c.name()).collect::<Vec<_>>(),
                    "fields": f,
                })),
            }),
            Err(e) => json!({
                "file": e.file.to_string_lossy(),
                "name": e.rule_name,
                "compiled": false,
                "error": e.to_string(),
            }),
        })
        .collect();
    let never = checked
        .iter()
        .filter(|c| matches!(&c.outcome, Ok((_, _, r)) if r.never_matches.is_some()))
        .count();
    let doc = json!({
        "rules": rules,
        "summary": {"compiled": s.compiled, "rejected": s.rejected, "never_matches": never},
    });
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a corpus rule should do, judged from its own text independently of the engine.
    fn expected(text: &str) -> Result<(), &'static str> {
        let v: toml::Table = toml::from_str(text).unwrap();
        let rule = v["rule"].as_table().unwrap();
        if rule["type"].as_str() != Some("eql") {
            return Err("is not supported: only EQL rules");
        }
        let q = rule["query"].as_str().unwrap();
        let code: String = q
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        let first = code.split_whitespace().next().unwrap_or("");
        match first {
            "process" | "any" => Ok(()),
            "sequence" => Err("sequences are not supported"),
            _ => Err("is not supported: this engine sees only process events"),
        }
    }

    #[test]
    fn corpus_single_event_rules_compile_and_the_rest_are_rejected_precisely() {
        use crate::testsupport::{Corpus, Need, corpus, require};
        let corpora = [Corpus::CloudDefend, Corpus::CloudDefendRelated];
        if !require(
            "cli::check_rules::tests::corpus_single_event_rules_compile_and_the_rest_are_rejected_precisely",
            &corpora.map(Need::Corpus),
        ) {
            return;
        }
        for c in corpora {
            let dir = corpus(c);
            let mut report = Vec::new();
            let summary = check(
                std::slice::from_ref(&dir),
                crate::ecs::schema(),
                &mut report,
            )
            .unwrap();
            let report = String::from_utf8(report).unwrap();
            let mut want = Summary::default();
            let (files, _) = crate::rules::collect_rule_files(std::slice::from_ref(&dir));
            for f in &files {
                let text = std::fs::read_to_string(f).unwrap();
                let shown = display_path(f);
                match expected(&text) {
                    Ok(()) => {
                        want.compiled += 1;
                        assert!(
                            report
                                .lines()
                                .any(|l| l.starts_with(&format!("ok {shown} "))),
                            "{shown}\n{report}"
                        );
                    }
                    Err(reason) => {
                        want.rejected += 1;
                        let line = report
                            .lines()
                            .find(|l| l.starts_with(&format!("rejected {shown}:")))
                            .unwrap_or_else(|| panic!("{shown} not rejected\n{report}"));
                        assert!(line.contains(reason), "{line}");
                    }
                }
            }
            assert_eq!(summary, want, "{report}");
            assert!(want.compiled > 0 && want.rejected > 0);
            assert!(report.ends_with(&format!(
                "{} compiled, {} rejected\n",
                want.compiled, want.rejected
            )));
            eprintln!(
                "{}: {} compiled, {} rejected",
                dir.display(),
                want.compiled,
                want.rejected
            );
        }
    }

    #[test]
    fn report_format_for_good_and_bad_rules() {
        let dir = tempfile::tempdir().unwrap();
        let rule = |name: &str, query: &str| {
            format!(
                "[rule]\nname = \"{name}\"\ndescription = \"d\"\nrisk_score = 21\nrule_id = \"x\"\nseverity = \"low\"\ntype = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\n"
            )
        };
        std::fs::write(
            dir.path().join("a.toml"),
            rule("Good", "process where process.name == \"x\""),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.toml"),
            rule("Bad", "process where\n  process.name == 1"),
        )
        .unwrap();
        let mut out = Vec::new();
        let s = check(&[dir.path().to_path_buf()], crate::ecs::schema(), &mut out).unwrap();
        assert_eq!(
            s,
            Summary {
                compiled: 1,
                rejected: 1
            }
        );
        let out = String::from_utf8(out).unwrap();
        let a = display_path(&dir.path().join("a.toml"));
        let b = display_path(&dir.path().join("b.toml"));
        let want = format!(
            "ok {a} Good\nrejected {b}:11:19: cannot compare keyword field `process.name` with a number\n11 |   process.name == 1\n   |                   ^\n1 compiled, 1 rejected\n"
        );
        assert_eq!(out, want);
    }

    #[test]
    fn report_names_never_filled_fields_and_rules_that_cannot_match() {
        let dir = tempfile::tempdir().unwrap();
        let rule = |name: &str, query: &str| {
            format!(
                "[rule]\nname = \"{name}\"\ndescription = \"d\"\nrisk_score = 21\nrule_id = \"x\"\nseverity = \"low\"\ntype = \"eql\"\nlanguage = \"eql\"\nquery = '''\n{query}\n'''\n"
            )
        };
        let files = [
            ("a.toml", "Filled", r#"process where process.name == "x""#),
            (
                "b.toml",
                "Partly",
                r#"process where process.name == "x" and not file.path == "/y""#,
            ),
            (
                "c.toml",
                "Never",
                r#"any where (auditd.data.syscall == "kill" or file.path == "/y") and process.title != "a""#,
            ),
        ];
        for (f, name, q) in files {
            std::fs::write(dir.path().join(f), rule(name, q)).unwrap();
        }
        let p = |f: &str| display_path(&dir.path().join(f));
        let mut out = Vec::new();
        let s = check(&[dir.path().to_path_buf()], crate::ecs::schema(), &mut out).unwrap();
        assert_eq!(s.exit_code(), ExitCode::SUCCESS);
        let want = format!(
            "ok {} Filled\n\
             ok {} Partly; never filled: file.path\n\
             ok {} Never; NEVER MATCHES here, needs file and audit data: auditd.data.syscall, file.path; also never filled: process.title\n\
             never matches here: 1 of 3 compiled rules (file+audit 1)\n\
             may match but read fields never filled (read as missing): 1 rules\n\
             3 compiled, 0 rejected\n",
            p("a.toml"),
            p("b.toml"),
            p("c.toml")
        );
        assert_eq!(String::from_utf8(out).unwrap(), want);

        std::fs::write(dir.path().join("d.toml"), "not toml [").unwrap();
        let mut out = Vec::new();
        let s = check_json(&[dir.path().to_path_buf()], crate::ecs::schema(), &mut out).unwrap();
        assert_eq!((s.compiled, s.rejected), (3, 1));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v["summary"],
            serde_json::json!({"compiled": 3, "rejected": 1, "never_matches": 1})
        );
        let rules = v["rules"].as_array().unwrap();
        let by = |f: &str| {
            let file = dir.path().join(f).to_string_lossy().into_owned();
            rules
                .iter()
                .find(|r| r["file"] == file.as_str())
                .unwrap()
                .clone()
        };
        assert_eq!(by("a.toml")["never_matches"], serde_json::Value::Null);
        assert_eq!(
            by("b.toml")["never_filled"],
            serde_json::json!(["file.path"])
        );
        assert_eq!(
            by("c.toml")["never_matches"],
            serde_json::json!({"classes": ["file", "audit"], "fields": ["auditd.data.syscall", "file.path"]})
        );
        assert_eq!(by("d.toml")["compiled"], false);
        assert!(
            by("d.toml")["error"]
                .as_str()
                .unwrap()
                .contains("d.toml:1:")
        );
    }

    #[test]
    fn nothing_found_is_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let s = check(&[dir.path().to_path_buf()], crate::ecs::schema(), &mut out).unwrap();
        assert_eq!(s, Summary::default());
        assert_eq!(s.exit_code(), ExitCode::FAILURE);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "no rule files found\n0 compiled, 0 rejected\n"
        );
    }
}
