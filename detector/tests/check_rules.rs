//! End-to-end: the `detector check-rules` binary on Elastic's corpora (found by
//! [`detector::testsupport::corpus`]; those tests gate on them) and on hostile input.

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

#[path = "common/wait.rs"]
mod wait;

use detector::testsupport::{Corpus, Need, corpus, require};

fn run(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("check-rules")
            .args(args),
        wait::TOOL,
        "detector check-rules",
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn seed_rule_compiles_and_exits_zero() {
    if !require(
        "seed_rule_compiles_and_exits_zero",
        &[Need::Corpus(Corpus::Seed)],
    ) {
        return;
    }
    let dir = corpus(Corpus::Seed);
    let (code, out, _) = run(&[dir.as_os_str()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok "), "{out}");
    assert!(
        out.contains("SSH Process Launched From Inside A Container"),
        "{out}"
    );
    assert!(out.ends_with("1 compiled, 0 rejected\n"), "{out}");
}

#[test]
fn corpus_reports_every_rule_and_fails_because_some_are_rejected() {
    if !require(
        "corpus_reports_every_rule_and_fails_because_some_are_rejected",
        &[Need::Corpus(Corpus::CloudDefend)],
    ) {
        return;
    }
    let dir = corpus(Corpus::CloudDefend);
    let (code, out, _) = run(&[dir.as_os_str()]);
    assert_eq!(code, 1);
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    let ok = out.lines().filter(|l| l.starts_with("ok ")).count();
    let rejected = out.lines().filter(|l| l.starts_with("rejected ")).count();
    assert_eq!(ok + rejected, files, "{out}");
    assert!(
        out.ends_with(&format!("{ok} compiled, {rejected} rejected\n")),
        "{out}"
    );
    // Every rejection is one of the three unsupported kinds, never a syntax error.
    for l in out.lines().filter(|l| l.starts_with("rejected ")) {
        assert!(
            l.contains("sequences are not supported")
                || l.contains("event category `file` is not supported")
                || l.contains("rule type `query` (language `kuery`) is not supported"),
            "{l}"
        );
    }
}

#[test]
fn hostile_paths_and_missing_files_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let weird = dir
        .path()
        .join(std::ffi::OsStr::from_bytes(b"bad\xff\nname.toml"));
    std::fs::write(&weird, "not toml [").unwrap();
    let missing = dir.path().join("missing.toml");
    let (code, out, _) = run(&[weird.as_os_str(), missing.as_os_str()]);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("rejected ") && l.contains("bad\u{fffd}\\nname.toml:1:")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("missing.toml: cannot read")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), "0 compiled, 2 rejected");
}

#[test]
fn no_arguments_is_a_usage_error() {
    let (code, _, err) = run(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("PATH"), "{err}");
}

/// The first word of a rule's query, comments removed (`process`, `any`, `sequence`, …).
fn query_kind(text: &str) -> Option<String> {
    let v: toml::Table = toml::from_str(text).ok()?;
    let q = v["rule"].get("query")?.as_str()?;
    let code: String = q
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    code.split_whitespace().next().map(str::to_owned)
}

/// Rule file → (class, pending) from tests/fixtures/check_rules_never_match.tsv.
fn never_match_expectations() -> std::collections::BTreeMap<String, (String, bool)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/check_rules_never_match.tsv"
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (file, class) = l.split_once('\t').expect("`file<TAB>class`");
            let pending = class.ends_with('?');
            (
                file.to_owned(),
                (class.trim_end_matches('?').to_owned(), pending),
            )
        })
        .collect()
}

/// Issue 12: every single-event rule of Elastic's Linux corpus compiles, and the rules
/// check-rules says can never match here are exactly those of the expectations, each
/// needing data this sensor does not produce (or, marked pending, data another part of
/// the issue adds), blamed on fields we never fill.
#[test]
fn linux_corpus_single_event_rules_compile_and_never_match_list_is_explained() {
    if !require(
        "linux_corpus_single_event_rules_compile_and_never_match_list_is_explained",
        &[Need::Corpus(Corpus::ElasticLinux)],
    ) {
        return;
    }
    let dir = corpus(Corpus::ElasticLinux);
    let (_, out, err) = run(&["--json".as_ref(), dir.as_os_str()]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    let rules = v["rules"].as_array().unwrap();
    let name = |r: &serde_json::Value| {
        std::path::Path::new(r["file"].as_str().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    let by_name: std::collections::BTreeMap<String, &serde_json::Value> =
        rules.iter().map(|r| (name(r), r)).collect();

    // Every `process where` / `any where` rule compiles.
    let (files, _) = detector::rules::collect_rule_files(std::slice::from_ref(&dir));
    let mut singles = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if !matches!(query_kind(&text).as_deref(), Some("process" | "any")) {
            continue;
        }
        singles += 1;
        let file = f.file_name().unwrap().to_string_lossy().into_owned();
        let r = by_name[&file];
        assert_eq!(r["compiled"], true, "{file}: {}", r["error"]);
    }
    // The corpus index, when the shared layout has one, counts the same rules.
    if let Ok(index) = std::fs::read_to_string(dir.join("INDEX.tsv")) {
        let indexed = index
            .lines()
            .filter(|l| {
                let kind = l.split('\t').nth(4);
                kind == Some("process-single") || kind == Some("any-single")
            })
            .count();
        assert_eq!(singles, indexed);
        assert_eq!(singles, 236, "the corpus of issue 12");
    }
    assert!(singles > 200, "only {singles} single-event rules");

    // The never-match list, both ways.
    let want = never_match_expectations();
    let produced_elsewhere = [
        "file",
        "network",
        "audit",
        "module_load",
        "registry",
        "kubernetes_audit",
        "event_source",
    ];
    for (file, (class, pending)) in &want {
        for c in class.split('+') {
            assert!(
                *pending || produced_elsewhere.contains(&c),
                "{file}: class {c} is data this sensor produces; mark it pending (`?`) or fix the rule's analysis"
            );
        }
        let r = by_name
            .get(file)
            .unwrap_or_else(|| panic!("{file}: not in the corpus"));
        if !pending {
            assert!(
                !r["never_matches"].is_null(),
                "{file}: expected never to match here ({class}): {r}"
            );
        }
    }
    let schema = detector::ecs::schema();
    let mut never = 0;
    for r in rules {
        let Some(nm) = r.get("never_matches").filter(|n| !n.is_null()) else {
            continue;
        };
        never += 1;
        let file = name(r);
        let classes: Vec<&str> = nm["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let (class, _) = want
            .get(&file)
            .unwrap_or_else(|| panic!("{file} never matches here but is not expected to: {nm}"));
        assert_eq!(&classes.join("+"), class, "{file}");
        // Blamed on fields it reads and we never fill: not on fields we fill.
        let fields = nm["fields"].as_array().unwrap();
        assert!(!fields.is_empty(), "{file}");
        for f in fields {
            let f = f.as_str().unwrap();
            assert!(
                r["never_filled"].as_array().unwrap().iter().any(|n| n == f),
                "{file}: {f}"
            );
            assert!(
                !matches!(schema.status(f), detector::ecs::FieldStatus::Filled(_)),
                "{file}: blamed on {f}, which we fill"
            );
        }
    }
    assert_eq!(v["summary"]["never_matches"], never);
    // The README's table of them is the report's.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = readme
        .split("\n## Elastic's Linux rules here\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has the section");
    assert!(section.contains(&format!("all **{singles} single-event rules")));
    assert!(section.contains(&format!("these **{never} can never match**")));
    for r in rules.iter().filter(|r| !r["never_matches"].is_null()) {
        assert!(
            section.contains(&format!("`{}`", name(r))),
            "README lacks {}",
            name(r)
        );
    }
    assert!(never >= want.values().filter(|(_, p)| !p).count());
    eprintln!("{singles} single-event rules compile; {never} can never match here");
}

/// A rule naming a field no schema we know has still fails, located in the file; a known
/// field we never fill compiles.
#[test]
fn unknown_fields_fail_and_never_filled_fields_compile() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |query: &str| {
        format!(
            "[rule]\nname = \"n\"\ndescription = \"d\"\nrisk_score = 21\nrule_id = \"x\"\nseverity = \"low\"\ntype = \"eql\"\nlanguage = \"eql\"\nquery = '''\nprocess where\n  {query}\n'''\n"
        )
    };
    let bad = dir.path().join("bad.toml");
    let good = dir.path().join("good.toml");
    std::fs::write(&bad, rule(r#"process.nme == "x""#)).unwrap();
    std::fs::write(
        &good,
        rule(r#"file.path == "/x" or auditd.data.syscall == "kill""#),
    )
    .unwrap();
    let (code, out, _) = run(&[bad.as_os_str(), good.as_os_str()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "rejected {}:11:3: unknown field `process.nme`",
            bad.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ok {} n; NEVER MATCHES here, needs file and audit data: auditd.data.syscall, file.path\n",
            good.display()
        )),
        "{out}"
    );
    assert!(out.ends_with("1 compiled, 1 rejected\n"), "{out}");
}
