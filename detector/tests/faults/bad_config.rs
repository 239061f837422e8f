//! Broken configs and rule files: each is refused at start (exit 78, an error naming the
//! file, line, column and cause; no privilege needed) and refused on SIGHUP with the
//! running rules kept (root: a running daemon).

use std::time::Duration;

use crate::harness::{self, Daemon, Setup, tags};
use detector::testsupport::{Need, require};

/// What a case breaks.
enum Broken {
    /// Extra TOML appended after `[stats]` of the good config (line 7 on).
    ConfigSections(&'static str),
    /// Raw bytes appended at the end of the good config.
    ConfigBytes(&'static [u8]),
    /// A rule file `bad.toml` added next to the good rule.
    Rule(&'static [u8]),
    /// `rules.paths` pointing at an empty directory only.
    EmptyRulesDir,
}

struct Case {
    name: &'static str,
    broken: Broken,
    /// Substrings the error must contain (file:line:col and cause).
    expect: &'static [&'static str],
}

/// The head of every broken rule file (a macro, so `rule!` can `concat!` it).
macro_rules! rule_head {
    () => {
        r#"[metadata]
creation_date = "2026/11/27"
[rule]
author = ["x"]
description = "d"
name = "Bad"
risk_score = 21
rule_id = "6a1f0c1e-7f55-4f4e-9b8e-0fa17e5f0099"
severity = "low"
"#
    };
}

const RULE_HEAD: &str = rule_head!();

macro_rules! rule {
    ($body:expr) => {
        concat!(rule_head!(), $body).as_bytes()
    };
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "unknown key",
            broken: Broken::ConfigSections("[sensor]\nring_bytes = 65536\n"),
            expect: &[
                "detector.toml:8:1:",
                "sensor.ring_bytes",
                "unknown field `ring_bytes`",
            ],
        },
        Case {
            name: "wrong type",
            broken: Broken::ConfigSections("[process]\nmax_processes = \"many\"\n"),
            expect: &[
                "detector.toml:8:17:",
                "process.max_processes",
                "invalid type",
            ],
        },
        Case {
            name: "ring not a power of two",
            broken: Broken::ConfigSections("[sensor]\nring_buffer_bytes = 100000\n"),
            expect: &[
                "detector.toml:8:21:",
                "sensor.ring_buffer_bytes",
                "not a power of two",
            ],
        },
        Case {
            name: "invalid TOML",
            broken: Broken::ConfigSections("[sensor\nargv_capture = true\n"),
            expect: &["detector.toml:7:8:", "invalid TOML"],
        },
        Case {
            name: "config not UTF-8",
            broken: Broken::ConfigBytes(b"# caf\xe9\n"),
            expect: &["detector.toml:", "not valid UTF-8"],
        },
        Case {
            name: "rule with bad EQL",
            broken: Broken::Rule(rule!(
                "language = \"eql\"\ntype = \"eql\"\nquery = '''\nprocess where process.name ==\n'''\n"
            )),
            expect: &["bad.toml:14:1:", "found end of query"],
        },
        Case {
            name: "rule with unknown field",
            broken: Broken::Rule(rule!(
                "language = \"eql\"\ntype = \"eql\"\nquery = '''\nprocess where process.nonexistent_field == \"x\"\n'''\n"
            )),
            expect: &[
                "bad.toml:13:15:",
                "unknown field `process.nonexistent_field`",
            ],
        },
        Case {
            name: "rule without query",
            broken: Broken::Rule(rule!("language = \"eql\"\ntype = \"eql\"\n")),
            expect: &["bad.toml", "missing key `query`"],
        },
        Case {
            name: "kuery rule",
            broken: Broken::Rule(rule!(
                "language = \"kuery\"\ntype = \"query\"\nquery = \"process.name : ssh\"\n"
            )),
            expect: &["bad.toml:11:8:", "language `kuery`", "not supported"],
        },
        Case {
            name: "rule file not UTF-8",
            broken: Broken::Rule(b"[rule]\nname = \"caf\xe9\"\n"),
            expect: &["bad.toml", "not valid UTF-8"],
        },
        Case {
            name: "empty rules dir",
            broken: Broken::EmptyRulesDir,
            expect: &["no detection rules found in", "empty-rules"],
        },
    ]
}

/// Breaks `s` as `case` says.
fn apply(s: &mut Setup, case: &Case) {
    match &case.broken {
        Broken::ConfigSections(extra) => s.write_config(extra, ""),
        Broken::ConfigBytes(bytes) => {
            s.write_config("", "");
            let mut text = std::fs::read(&s.config).unwrap();
            text.extend_from_slice(bytes);
            std::fs::write(&s.config, text).unwrap();
        }
        Broken::Rule(bytes) => {
            s.write_config("", "");
            std::fs::write(s.rules.join("bad.toml"), bytes).unwrap();
        }
        Broken::EmptyRulesDir => {
            let empty = s.dir.path().canonicalize().unwrap().join("empty-rules");
            std::fs::create_dir_all(&empty).unwrap();
            let good = s.rules.clone();
            s.rules = empty;
            s.write_config("", "");
            s.rules = good;
        }
    }
}

/// Undoes [`apply`].
fn restore(s: &mut Setup) {
    let _ = std::fs::remove_file(s.rules.join("bad.toml"));
    s.write_config("", "");
}

fn check(case: &Case, text: &str, when: &str) {
    for e in case.expect {
        assert!(
            text.contains(e),
            "{} ({when}): error lacks {e:?}:\n{text}",
            case.name
        );
    }
}

#[test]
fn broken_config_or_rules_exit_78_at_start() {
    // No gate: config and rule errors are found before the sensor starts, so this runs
    // (and must pass) without privileges.
    // RULE_HEAD documents the line numbers the cases assert (rules: 9 lines of head).
    assert_eq!(RULE_HEAD.lines().count(), 9);
    for case in cases() {
        let mut s = Setup::new("", "");
        apply(&mut s, &case);
        let d = Daemon::spawn(&s.config, &[]);
        let out = d.finish();
        assert_eq!(
            out.status.code(),
            Some(78),
            "{}: exit {:?}\n{}",
            case.name,
            out.status,
            out.stderr_text()
        );
        let err: Vec<&String> = out
            .stderr
            .iter()
            .skip_while(|l| !l.starts_with("detector: error:"))
            .collect();
        assert!(
            !err.is_empty(),
            "{}: no error line:\n{}",
            case.name,
            out.stderr_text()
        );
        let text = err
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        check(&case, &text, "start");
        assert!(
            !out.stderr_text().contains("panicked"),
            "{}: panic:\n{}",
            case.name,
            out.stderr_text()
        );
    }
}

#[test]
fn broken_config_or_rules_refused_on_sighup_old_rules_kept() {
    if !require(
        "bad_config::broken_config_or_rules_refused_on_sighup_old_rules_kept",
        &[Need::Root],
    ) {
        return;
    }
    let _l = harness::lock();
    let mut s = Setup::new("", "");
    let (mut d, _) = Daemon::start(&s.config, &[]);
    for (i, case) in cases().iter().enumerate() {
        apply(&mut s, case);
        let from = d.stderr_len();
        d.signal(libc::SIGHUP);
        d.wait_stderr_after(from, "detector: reload refused", Duration::from_secs(20));
        // The error may span several lines: wait until all it must say has arrived (or
        // the bound passes, and `check` names what is missing).
        let text =
            crate::wait::try_until(Duration::from_secs(20), Duration::from_millis(10), || {
                let text = d.stderr()[from..].join("\n");
                case.expect.iter().all(|e| text.contains(e)).then_some(text)
            })
            .unwrap_or_else(|| d.stderr()[from..].join("\n"));
        check(case, &text, "SIGHUP");
        assert!(
            !text.contains("detector: reloaded"),
            "{}: reloaded anyway:\n{text}",
            case.name
        );
        // The old rules still run.
        let t = tags(&format!("hup-{i}"), 1);
        s.probe(&t[0]);
        harness::wait_tags(&s.alerts, &t, Duration::from_secs(20));
        restore(&mut s);
    }
    // And a good reload after all that is taken.
    let from = d.stderr_len();
    d.signal(libc::SIGHUP);
    let line = d.wait_stderr_after(from, "detector: reloaded:", Duration::from_secs(20));
    assert!(line.contains("reloaded: 1 rules"), "{line}");
    let out = d.stop();
    assert!(out.status.success(), "{}", out.stderr_text());
}
