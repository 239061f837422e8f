//! `detector check-rules PATH…`: compile every rule and say, per rule, whether it compiled
//! or why it was rejected (file:line:column and a caret excerpt), then a summary line.
//! Exit status 0 only when at least one rule was found and all compiled.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::ecs::field::Schema;
use crate::rules::error::{display_path, sanitize};
use crate::rules::load_all;

/// Arguments of `check-rules`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files, or directories searched recursively for `*.toml`.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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
    match check(&args.paths, schema, &mut out) {
        Ok(s) => s.exit_code(),
        Err(e) => {
            eprintln!("detector check-rules: cannot write report: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Compiles every rule under `paths` against `schema` and writes one report line (plus
/// excerpt for rejections) per rule and a summary line.
pub fn check(paths: &[PathBuf], schema: &dyn Schema, out: &mut dyn Write) -> io::Result<Summary> {
    let mut s = Summary::default();
    for outcome in load_all(paths, schema) {
        match outcome {
            Ok(rule) => {
                s.compiled += 1;
                writeln!(
                    out,
                    "ok {} {}",
                    display_path(&rule.path),
                    sanitize(&rule.meta.name)
                )?;
            }
            Err(e) => {
                s.rejected += 1;
                writeln!(out, "rejected {e}")?;
            }
        }
    }
    if s.compiled + s.rejected == 0 {
        writeln!(out, "no rule files found")?;
    }
    writeln!(out, "{} compiled, {} rejected", s.compiled, s.rejected)?;
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
