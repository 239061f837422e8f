//! End-to-end: the `detector replay` binary over NDJSON events written here, with the seed
//! rule as Elastic publishes it (found by [`detector::testsupport::corpus`]; the tests that
//! need it gate on it).

#[path = "common/ecs_validate.rs"]
mod ecs_validate;
#[path = "common/wait.rs"]
mod wait;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use detector::testsupport::{Corpus, Need, require};
use serde_json::{Value, json};

const SEED_ID: &str = "03a514d9-500e-443e-b6a9-72718c548f6c";
const SEED_NAME: &str = "SSH Process Launched From Inside A Container";
const CONTAINER: &str = "4f1c2a9b8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b";

/// What the tests that run the seed rule need.
const SEED: &[Need] = &[Need::Corpus(Corpus::Seed)];

fn seed() -> PathBuf {
    detector::testsupport::corpus(Corpus::Seed)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/replay")
        .join(name)
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `detector replay --no-policy --rules RULES… -` with `input` on stdin: every match
/// an alert (the rule semantics these tests check; the built-in default policy folds
/// identical matches, see the policy tests below).
fn replay_stdin(rules: &[&Path], input: &[u8]) -> Run {
    replay_stdin_with(&["--no-policy".as_ref()], rules, input)
}

/// Runs `detector replay FLAGS… --rules RULES… -` with `input` on stdin.
fn replay_stdin_with(flags: &[&std::ffi::OsStr], rules: &[&Path], input: &[u8]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_detector"));
    cmd.arg("replay").args(flags).arg("--rules");
    for r in rules {
        cmd.arg(r);
    }
    let mut child = cmd
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Write from another thread: the child writes alerts while we feed it.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait::try_child_output_timeout(child, wait::TOOL, "detector replay -")
        .unwrap_or_else(|e| panic!("{e}"));
    wait::join_timeout(feeder, wait::TOOL, "replay's stdin feeder");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every stdout line as JSON; fails unless stdout is exactly one object per line.
fn alerts(run: &Run) -> Vec<Value> {
    let text = std::str::from_utf8(&run.stdout).expect("stdout is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "last line unterminated"
    );
    text.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// A process event as our sensor writes it (nested ECS form).
fn event(pid: u32, name: &str, action: &str, ty: &str, container: bool) -> Value {
    let mut v = json!({
        "@timestamp": format!("2026-11-27T20:00:{:02}.000000001Z", pid % 60),
        "event": {"kind": "event", "category": ["process"], "type": [ty], "action": action,
                  "module": "detector", "dataset": "detector.process"},
        "process": {"pid": pid, "name": name, "executable": format!("/usr/bin/{name}"),
                    "args": [name, "-V"], "args_count": 2,
                    "command_line": format!("{name} -V"),
                    "parent": {"pid": 1, "name": "bash"}},
        "host": {"hostname": "node-1", "os": {"type": "linux"}},
        "ecs": {"version": "9.4.0"}
    });
    if container {
        v["container"] = json!({"id": CONTAINER, "runtime": "runc"});
    }
    v
}

fn ndjson(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        serde_json::to_writer(&mut out, e).unwrap();
        out.push(b'\n');
    }
    out
}

fn pids(alerts: &[Value]) -> BTreeSet<u64> {
    alerts
        .iter()
        .map(|a| a["process"]["pid"].as_u64().unwrap())
        .collect()
}

/// The checks every alert of the seed rule must pass.
fn check_seed_alert(a: &Value) {
    let errors = ecs_validate::validate_ecs(a);
    assert!(errors.is_empty(), "{errors:#?}\n{a}");
    assert_eq!(a["event"]["kind"], "alert", "{a}");
    assert_eq!(a["rule"]["id"], SEED_ID, "{a}");
    assert_eq!(a["rule"]["name"], SEED_NAME, "{a}");
    assert_eq!(a["message"], SEED_NAME, "{a}");
    assert_eq!(a["event"]["severity"], 73, "{a}");
    assert_eq!(a["event"]["risk_score"].as_f64(), Some(73.0), "{a}");
    assert_ne!(a["event"]["module"], "cloud_defend", "{a}");
    assert!(a["event"]["module"].is_string(), "{a}");
    let tactics = a["threat"]["tactic"]["id"].to_string();
    assert!(
        tactics.contains("TA0008") && tactics.contains("TA0003"),
        "{tactics}"
    );
    let techniques = a["threat"]["technique"]["id"].to_string();
    assert!(
        techniques.contains("T1021") && techniques.contains("T1133"),
        "{techniques}"
    );
}

#[test]
fn seed_rule_matches_ssh_in_containers_only() {
    if !require("seed_rule_matches_ssh_in_containers_only", SEED) {
        return;
    }
    // (pid, name, action, event.type, in a container, should match)
    let table = [
        (101, "sshd", "exec", "start", true, true),
        (102, "ssh", "exec", "start", true, true),
        (103, "autossh", "exec", "start", true, true),
        (104, "sshd", "fork", "start", true, true),
        (105, "ssh", "fork", "start", true, true),
        (106, "autossh", "fork", "start", true, true),
        // `:` is case-insensitive in Elasticsearch EQL.
        (107, "SSH", "exec", "start", true, true),
        (108, "AutoSSH", "fork", "start", true, true),
        // On the host: no container.id.
        (201, "ssh", "exec", "start", false, false),
        (202, "sshd", "fork", "start", false, false),
        // An end event.
        (203, "ssh", "end", "end", true, false),
        // Other names.
        (204, "ssh-keygen", "exec", "start", true, false),
        (205, "sshd-session", "exec", "start", true, false),
        (206, "ls", "exec", "start", true, false),
        // A start event whose action is neither fork nor exec.
        (207, "ssh", "change", "start", true, false),
    ];
    let events: Vec<Value> = table
        .iter()
        .map(|&(pid, name, action, ty, c, _)| event(pid, name, action, ty, c))
        .collect();
    let run = replay_stdin(&[&seed()], &ndjson(&events));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = alerts(&run);
    let want: BTreeSet<u64> = table
        .iter()
        .filter(|t| t.5)
        .map(|t| u64::from(t.0))
        .collect();
    assert_eq!(pids(&got), want, "{}", run.stderr);
    assert_eq!(got.len(), want.len());
    for (a, ev) in got.iter().zip(
        events
            .iter()
            .filter(|e| want.contains(&e["process"]["pid"].as_u64().unwrap())),
    ) {
        check_seed_alert(a);
        // The document keeps its own @timestamp and its fields.
        assert_eq!(a["@timestamp"], ev["@timestamp"]);
        assert_eq!(a["process"]["name"], ev["process"]["name"]);
        assert_eq!(a["container"]["id"], CONTAINER);
    }
    assert!(
        run.stderr.contains(&format!(
            "replay: {n} lines read, {n} events, 0 blank, 0 malformed, {m} alerts",
            n = table.len(),
            m = want.len()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("  {} {SEED_NAME} ({SEED_ID})", want.len())),
        "{}",
        run.stderr
    );
}

#[test]
fn dotted_keys_are_accepted_like_nested_objects() {
    if !require("dotted_keys_are_accepted_like_nested_objects", SEED) {
        return;
    }
    let lines = [
        // Fully dotted.
        format!(
            r#"{{"@timestamp":"2026-11-27T20:00:00Z","event.category":["process"],"event.type":["start"],"event.action":"exec","process.name":"ssh","process.pid":301,"container.id":"{CONTAINER}"}}"#
        ),
        // Mixed dotted and nested.
        format!(
            r#"{{"event":{{"category":["process"],"type":["start"]}},"event.action":"fork","process":{{"pid":302,"parent.name":"bash"}},"process.name":"sshd","container":{{"id":"{CONTAINER}"}}}}"#
        ),
        // Dotted on the host: no alert.
        r#"{"event.category":["process"],"event.type":["start"],"event.action":"exec","process.name":"ssh","process.pid":303}"#.to_owned(),
    ];
    let run = replay_stdin(&[&seed()], lines.join("\n").as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = alerts(&run);
    assert_eq!(pids(&got), BTreeSet::from([301, 302]), "{}", run.stderr);
    for a in &got {
        check_seed_alert(a);
    }
    // Expanded into the nested form on output.
    assert_eq!(got[1]["process"]["parent"]["name"], "bash");
    assert_eq!(got[0]["@timestamp"], "2026-11-27T20:00:00Z");
}

#[test]
fn malformed_lines_are_reported_by_number_and_skipped() {
    if !require("malformed_lines_are_reported_by_number_and_skipped", SEED) {
        return;
    }
    let good = |pid| serde_json::to_string(&event(pid, "ssh", "exec", "start", true)).unwrap();
    let mut input = Vec::new();
    let lines: Vec<Vec<u8>> = vec![
        good(401).into_bytes(),                                 // 1
        b"{not json".to_vec(),                                  // 2
        b"".to_vec(),                                           // 3 blank
        br#"{"process": {"pid": "four hundred"}}"#.to_vec(),    // 4 wrong type
        b"{\"process\": {\"name\": \"ss\xffh\"}}".to_vec(),     // 5 invalid UTF-8
        b"[1,2,3]".to_vec(),                                    // 6 not an object
        br#"{"process.name": "ssh", "process": "x"}"#.to_vec(), // 7 conflicting keys
        good(408).into_bytes(),                                 // 8
    ];
    for l in &lines {
        input.extend_from_slice(l);
        input.push(b'\n');
    }
    let run = replay_stdin(&[&seed()], &input);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(pids(&alerts(&run)), BTreeSet::from([401, 408]));
    let reports: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("<stdin>:"))
        .collect();
    let want = [
        "<stdin>:2: invalid JSON",
        "<stdin>:4: not an ECS document",
        "<stdin>:5: invalid UTF-8",
        "<stdin>:6: not a JSON object",
        "<stdin>:7: field `process.name` conflicts",
    ];
    assert_eq!(reports.len(), want.len(), "{}", run.stderr);
    for (r, w) in reports.iter().zip(want) {
        assert!(r.starts_with(w), "{r} does not start with {w}");
    }
    assert!(
        run.stderr
            .contains("replay: 8 lines read, 2 events, 1 blank, 5 malformed, 2 alerts"),
        "{}",
        run.stderr
    );
}

#[test]
fn events_from_a_file_are_named_in_reports() {
    if !require("events_from_a_file_are_named_in_reports", SEED) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.ndjson");
    let mut text = ndjson(&[event(501, "ssh", "exec", "start", true)]);
    text.extend_from_slice(b"oops\n");
    std::fs::write(&path, &text).unwrap();
    // `--rules A EVENTS`: the last value of --rules is the events file.
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("replay")
            .arg("--rules")
            .arg(seed())
            .arg(&path),
        wait::TOOL,
        "detector replay",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2: invalid JSON", path.display())),
        "{stderr}"
    );
    let run = Run {
        code: 1,
        stdout: out.stdout,
        stderr: stderr.into_owned(),
    };
    assert_eq!(pids(&alerts(&run)), BTreeSet::from([501]));
}

#[test]
fn hostile_bytes_keep_one_valid_object_per_line() {
    if !require("hostile_bytes_keep_one_valid_object_per_line", SEED) {
        return;
    }
    let hostile: Vec<String> = vec![
        "line1\nline2\r\n".into(),
        "quote\" backslash\\ \"}{\n".into(),
        "ctl\u{0}\u{1}\u{1b}[31m\u{7f}\u{2028}\u{2029}".into(),
        "x".repeat(1 << 20),
        "unicode ✓ \u{fffd}".into(),
    ];
    let mut events = Vec::new();
    for (i, h) in hostile.iter().enumerate() {
        let mut e = event(600 + i as u32, "ssh", "exec", "start", true);
        e["process"]["args"] = json!(["ssh", h, h]);
        e["process"]["command_line"] = json!(format!("ssh {h} {h}"));
        e["process"]["working_directory"] = json!(h);
        events.push(e);
    }
    let mut input = ndjson(&events);
    // A line longer than the 16 MiB cap: reported, skipped, not held in memory.
    input.extend_from_slice(b"{\"process\": {\"name\": \"");
    input.extend(std::iter::repeat_n(b'a', 17 << 20));
    input.extend_from_slice(b"\"}}\n");
    input.extend_from_slice(&ndjson(&[event(700, "ssh", "exec", "start", true)]));
    let run = replay_stdin(&[&seed()], &input);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let got = alerts(&run);
    assert_eq!(got.len(), hostile.len() + 1);
    for (a, h) in got.iter().zip(&hostile) {
        check_seed_alert(a);
        assert_eq!(a["process"]["args"], json!(["ssh", h, h]));
        assert_eq!(a["process"]["working_directory"], json!(h));
    }
    assert_eq!(got[hostile.len()]["process"]["pid"], 700);
    let line = hostile.len() + 1;
    assert!(
        run.stderr.contains(&format!(
            "<stdin>:{line}: line of {} bytes is longer",
            (17 << 20) + 25
        )),
        "{}",
        run.stderr
    );
    // Reports stay one line each too.
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("<stdin>:"))
            .count(),
        1
    );
}

#[test]
fn a_bad_rule_stops_before_any_event_is_read() {
    if !require("a_bad_rule_stops_before_any_event_is_read", SEED) {
        return;
    }
    let bad = fixture("bad_rule.toml");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-events.ndjson");
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("replay")
            .arg("--rules")
            .arg(seed())
            .arg("--rules")
            .arg(&bad)
            .arg(&missing),
        wait::TOOL,
        "detector replay",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "{}:13:44: cannot compare long field `process.pid` with a string",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("\n   |                                            ^^^^^^^^^^^^^^\n"),
        "{stderr}"
    );
    // The events file was never opened.
    assert!(!stderr.contains("cannot open"), "{stderr}");
    assert!(
        stderr.contains("1 rule(s) rejected, 1 compiled: nothing replayed"),
        "{stderr}"
    );
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        vec!["replay", "--rules"],
        vec!["replay", "--rules", "/nonexistent-rules-dir", "-"],
        vec!["replay", "--rules", "/dev/null"],
    ] {
        let out = wait::output_timeout(
            Command::new(env!("CARGO_BIN_EXE_detector"))
                .args(&args)
                .stdin(Stdio::null()),
            wait::TOOL,
            "detector replay",
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(!out.stderr.is_empty());
    }
    // With a good rule, a missing events file is a usage error too.
    if !require("usage_errors_exit_two (with the seed rule)", SEED) {
        return;
    }
    let seed = seed();
    let out = wait::output_timeout(
        Command::new(env!("CARGO_BIN_EXE_detector"))
            .arg("replay")
            .arg("--rules")
            .arg(&seed)
            .arg("/nonexistent/events.ndjson"),
        wait::TOOL,
        "detector replay",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("/nonexistent/events.ndjson: cannot open")
    );
}

/// The seed rule as this repository ships it (`config/rules`): the policy tests need no
/// corpus.
fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules")
}

/// A config file whose alert policy is `policy` (TOML), in `dir`.
fn config(dir: &Path, policy: &str) -> PathBuf {
    let path = dir.join("detector.toml");
    std::fs::write(&path, policy).unwrap();
    path
}

/// Fails unless the summary names the policy of config `cfg` and says `what` of it.
fn assert_policy(run: &Run, cfg: &Path, what: &str) {
    let want = format!("policy: {}: {what}\n", cfg.display());
    assert!(
        run.stderr.contains(&want),
        "{want:?} not in:\n{}",
        run.stderr
    );
}

#[test]
fn the_configs_exceptions_apply_unless_the_policy_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &format!("[[exceptions]]\nrule_id = \"{SEED_ID}\"\ncontainer_id = \"{CONTAINER}\"\n"),
    );
    let mut other = event(802, "ssh", "exec", "start", true);
    other["container"]["id"] = json!("0".repeat(64));
    let input = ndjson(&[event(801, "ssh", "exec", "start", true), other]);
    let on = replay_stdin_with(
        &["--config".as_ref(), cfg.as_os_str()],
        &[&shipped()],
        &input,
    );
    assert_eq!(on.code, 0, "{}", on.stderr);
    assert_eq!(pids(&alerts(&on)), BTreeSet::from([802]), "{}", on.stderr);
    assert_policy(
        &on,
        &cfg,
        "suppression window 60 s, 1 exception(s); 1 excepted, 0 suppressed",
    );
    let off = replay_stdin_with(&["--no-policy".as_ref()], &[&shipped()], &input);
    assert_eq!(off.code, 0, "{}", off.stderr);
    let got = alerts(&off);
    assert_eq!(pids(&got), BTreeSet::from([801, 802]), "{}", off.stderr);
    for a in &got {
        assert_eq!(a["rule"]["id"], SEED_ID, "{a}");
        assert_eq!(a["event"]["kind"], "alert", "{a}");
    }
    assert!(
        off.stderr.contains("policy: off (--no-policy)"),
        "{}",
        off.stderr
    );
    // Both at once is a usage error; so is a config that cannot be read.
    let both = replay_stdin_with(
        &["--no-policy".as_ref(), "--config".as_ref(), cfg.as_os_str()],
        &[&shipped()],
        &input,
    );
    assert_eq!(both.code, 2, "{}", both.stderr);
    assert!(both.stdout.is_empty());
    let bad = config(dir.path(), "[alerts]\nsuppression_window_secs = -1\n");
    let bad_run = replay_stdin_with(
        &["--config".as_ref(), bad.as_os_str()],
        &[&shipped()],
        &input,
    );
    assert_eq!(bad_run.code, 2, "{}", bad_run.stderr);
    assert!(bad_run.stdout.is_empty());
    assert!(
        bad_run.stderr.contains(&format!("{}:2", bad.display()))
            && bad_run.stderr.contains("suppression_window_secs"),
        "{}",
        bad_run.stderr
    );
}

#[test]
fn suppression_windows_run_on_the_recorded_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "[alerts]\nsuppression_window_secs = 30\n");
    // 100 identical matches (same rule, container and executable) one second apart in
    // event time, replayed in a fraction of a second: windows [0, 30), [30, 60), [60, 90)
    // fold 29 each and are closed by the documents at 30, 60 and 90 s; [90, 120) folds 9
    // and is closed at the end of the input.
    let events: Vec<Value> = (0..100u32)
        .map(|i| {
            let mut e = event(1000 + i, "ssh", "exec", "start", true);
            e["@timestamp"] = json!(format!(
                "2026-11-27T20:{:02}:{:02}.000000001Z",
                i / 60,
                i % 60
            ));
            e
        })
        .collect();
    let run = replay_stdin_with(
        &["--config".as_ref(), cfg.as_os_str()],
        &[&shipped()],
        &ndjson(&events),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let got = alerts(&run);
    let folded: Vec<(u64, Option<u64>)> = got
        .iter()
        .map(|a| {
            assert_eq!(a["rule"]["id"], SEED_ID, "{a}");
            (
                a["process"]["pid"].as_u64().unwrap(),
                a["detector"]["alert"]["suppressed_count"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        folded,
        vec![
            (1000, None),
            (1029, Some(29)),
            (1030, None),
            (1059, Some(29)),
            (1060, None),
            (1089, Some(29)),
            (1090, None),
            (1099, Some(9)),
        ],
        "{}",
        run.stderr
    );
    // Each alert keeps its document's time.
    assert_eq!(got[1]["@timestamp"], events[29]["@timestamp"]);
    assert!(
        run.stderr
            .contains("100 events, 0 blank, 0 malformed, 8 alerts"),
        "{}",
        run.stderr
    );
    assert_policy(
        &run,
        &cfg,
        "suppression window 30 s, 0 exception(s); 0 excepted, 96 suppressed",
    );
    // Without the policy, every match is an alert.
    let off = replay_stdin_with(&["--no-policy".as_ref()], &[&shipped()], &ndjson(&events));
    assert_eq!(alerts(&off).len(), 100, "{}", off.stderr);
}
