//! Credential-change events end to end with `detector run`: real `setpriv`, `setsid` and
//! `nsenter` calls on this host raise the alerts of the corpus rules that read
//! `uid_change` / `session_id_change` (loaded unmodified from the Elastic Linux corpus) and
//! of this test's own rules on the document shape, and the near misses — a `set*id` to the
//! ids already held, a refused `setuid`, a `kworker`-named process that never calls
//! `setsid` — raise none. Root tests, gated by [`detector::testsupport::require`]; every
//! wait is bounded.

#[path = "common/containers.rs"]
mod containers;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/wait.rs"]
mod wait;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use daemon::{Daemon, Opts, config_file};
use detector::testsupport::{Corpus, Need, corpus, require};
use serde_json::Value;

/// How long an alert may take to reach the file after the behaviour (events are read within
/// milliseconds; the bound only guards against a hang).
const ALERT_BOUND: Duration = Duration::from_secs(15);

const NSENTER_RULE: &str = "privilege_escalation_docker_escape_via_nsenter.toml";
const KWORKER_RULE: &str = "privilege_escalation_kworker_uid_elevation.toml";

/// This test's rules on the document shape: the new ids in `user.*`/`group.*` and the
/// process's own fields, for each kind.
const SHAPE_RULES: &str = r#"
[metadata]
creation_date = "2026/12/05"
maturity = "development"
updated_date = "2026/12/05"

[rule]
author = ["detector tests"]
description = "uid_change to nobody by setpriv (test rule)"
language = "eql"
license = "MIT"
name = "Test uid_change shape"
risk_score = 21
rule_id = "00000000-cred-0000-0000-000000000001"
severity = "low"
type = "eql"
query = '''
process where event.type == "change" and event.action == "uid_change" and
  process.name == "setpriv" and user.id == "65534" and process.user.id == "65534" and
  process.real_user.id == "65534" and process.args == "--reuid=65534"
'''
"#;

const GID_RULE: &str = r#"
[metadata]
creation_date = "2026/12/05"
maturity = "development"
updated_date = "2026/12/05"

[rule]
author = ["detector tests"]
description = "gid_change to nogroup by setpriv (test rule)"
language = "eql"
license = "MIT"
name = "Test gid_change shape"
risk_score = 21
rule_id = "00000000-cred-0000-0000-000000000002"
severity = "low"
type = "eql"
query = '''
process where event.type == "change" and event.action == "gid_change" and
  process.name == "setpriv" and group.id == "65534" and process.group.id == "65534" and
  process.real_group.id == "65534"
'''
"#;

const SID_RULE: &str = r#"
[metadata]
creation_date = "2026/12/05"
maturity = "development"
updated_date = "2026/12/05"

[rule]
author = ["detector tests"]
description = "session_id_change by setsid (test rule)"
language = "eql"
license = "MIT"
name = "Test session_id_change shape"
risk_score = 21
rule_id = "00000000-cred-0000-0000-000000000003"
severity = "low"
type = "eql"
query = '''
process where event.type == "change" and event.action == "session_id_change" and
  process.name == "setsid" and process.session_leader.same_as_process == true and
  process.group_leader.same_as_process == true
'''
"#;

/// A daemon running the two corpus rules and the shape rules.
fn start(dir: &Path) -> Daemon {
    let linux = corpus(Corpus::ElasticLinux);
    let own = dir.join("own");
    std::fs::create_dir_all(&own).unwrap();
    for (name, text) in [
        ("uid.toml", SHAPE_RULES),
        ("gid.toml", GID_RULE),
        ("sid.toml", SID_RULE),
    ] {
        std::fs::write(own.join(name), text).unwrap();
    }
    let paths = [
        linux.join(NSENTER_RULE),
        linux.join(KWORKER_RULE),
        own.clone(),
    ];
    let list = paths
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    let shipped = detector_rules_line();
    let (_guard, config) = config_file(|t| {
        assert!(t.contains(&shipped), "rules.paths line moved");
        // Every change is asserted on its own: no folding of identical alerts.
        let window = "\nsuppression_window_secs = 60\n";
        assert!(t.contains(window), "the shipped window moved");
        t.replace(&shipped, &format!("paths = [{list}]"))
            .replace(window, "\nsuppression_window_secs = 0\n")
    });
    let keep = dir.join("detector.toml");
    std::fs::copy(&config, &keep).unwrap();
    Daemon::start_with(Opts {
        config: Some(keep),
        ..Opts::default()
    })
}

/// The `rules.paths` line of the shipped config as `config_variant` rewrites it.
fn detector_rules_line() -> String {
    let rules = daemon::repo().join("config/rules").canonicalize().unwrap();
    format!("paths = [{:?}]", rules.display().to_string())
}

fn alerts_of<'a>(docs: &'a [Value], rule_name_part: &str) -> Vec<&'a Value> {
    docs.iter()
        .filter(|d| {
            d["event"]["kind"] == "alert"
                && d["rule"]["name"]
                    .as_str()
                    .is_some_and(|n| n.contains(rule_name_part))
        })
        .collect()
}

fn run(cmd: &mut Command) -> std::process::ExitStatus {
    cmd.status().expect("spawning a test command")
}

/// Waits (bounded) until an alert whose rule name contains `part` names `marker` in its
/// `process.args`.
fn wait_alert(d: &Daemon, part: &str, marker: &str) -> Option<Value> {
    let deadline = std::time::Instant::now() + ALERT_BOUND;
    loop {
        let docs = d.docs();
        if std::time::Instant::now() > deadline {
            eprintln!("daemon stderr:\n{}", d.stderr_lines().join("\n"));
            for a in &docs {
                eprintln!(
                    "alert file: {} {} {}",
                    a["rule"]["name"], a["event"]["action"], a["process"]["args"]
                );
            }
        }
        if let Some(a) = alerts_of(&docs, part).into_iter().find(|a| {
            a["process"]["args"]
                .as_array()
                .is_some_and(|args| args.iter().any(|x| x == marker))
        }) {
            return Some(a.clone());
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn credential_changes_raise_corpus_and_shape_alerts_and_near_misses_do_not() {
    if !require(
        "cred_events",
        &[
            Need::Root,
            Need::Tool("setpriv"),
            Need::Tool("setsid"),
            Need::Tool("nsenter"),
            Need::Tool("unshare"),
            Need::Tool("runc"),
            Need::Path("/bin/busybox"),
            Need::Corpus(Corpus::ElasticLinux),
        ],
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = start(tmp.path());

    // Near misses first, with markers of their own: a set*id to the ids already held,
    // and a refused setuid (nobody may not become root).
    assert!(run(Command::new("setpriv").args(["--reuid=0", "true", "near-miss-same"])).success());
    // The refused call runs in a process that already is nobody (the change to nobody
    // happens in the `setpriv` that execs the shell, whose args do not hold the marker as
    // an element).
    let refused = run(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sh",
        "-c",
        "exec setpriv --reuid=0 true near-miss-refused",
    ]));
    assert!(
        !refused.success(),
        "nobody became root: the near miss is not one"
    );
    // A kworker-named binary that never calls setsid.
    let fake_kworker = tmp.path().join("kworker_idle");
    std::fs::copy("/bin/true", &fake_kworker).unwrap();
    assert!(run(&mut Command::new(&fake_kworker)).success());

    // The real behaviours.
    assert!(
        run(Command::new("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "true",
            "real-setpriv"
        ]))
        .success()
    );
    assert!(run(Command::new("setsid").args(["true", "real-setsid"])).success());
    // A rootkit-style process named like a kernel worker leaves its session as root.
    let kworker = tmp.path().join("kworker_evil");
    std::fs::copy("/usr/bin/setsid", &kworker).unwrap();
    assert!(run(Command::new(&kworker).args(["true", "real-kworker"])).success());
    // nsenter in a (pid namespace) container, switching to another uid on the way.
    assert!(
        run(Command::new("unshare").args([
            "--pid",
            "--fork",
            "--mount-proc",
            "nsenter",
            "-t",
            "1",
            "-S",
            "65534",
            "-G",
            "65534",
            "true",
            "real-nsenter",
        ]))
        .success()
    );

    // And in a real runc container (busybox's nsenter; CAP_SETUID/CAP_SETGID granted, which
    // runc's default spec leaves out), in a docker-shaped cgroup.
    let cg = format!("/docker/{}", containers::hex_id());
    let mut c = containers::RuncContainer::new(
        &[
            "/bin/busybox",
            "nsenter",
            "-t",
            "1",
            "-S",
            "65534",
            "-G",
            "65534",
            "/bin/busybox",
            "true",
            "real-runc-nsenter",
        ],
        Some(&cg),
    )
    .expect("runc bundle");
    c.edit_config(|cfg| {
        for set in ["bounding", "effective", "permitted"] {
            let caps = cfg["process"]["capabilities"][set].as_array_mut().unwrap();
            caps.push("CAP_SETUID".into());
            caps.push("CAP_SETGID".into());
        }
    })
    .unwrap();
    let out = c.run().expect("runc run");
    assert!(
        out.status.success(),
        "nsenter in the container failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let uid = wait_alert(&d, "Test uid_change shape", "real-setpriv")
        .expect("no uid_change alert for setpriv --reuid=65534");
    assert_eq!(uid["event"]["action"], "uid_change");
    assert_eq!(uid["event"]["type"], serde_json::json!(["change"]));
    assert_eq!(uid["user"]["id"], "65534");
    let gid = wait_alert(&d, "Test gid_change shape", "real-setpriv")
        .expect("no gid_change alert for setpriv --regid=65534");
    assert_eq!(gid["group"]["id"], "65534");
    let sid = wait_alert(&d, "Test session_id_change shape", "real-setsid")
        .expect("no session_id_change alert for setsid");
    assert_eq!(
        sid["process"]["session_leader"]["pid"], sid["process"]["pid"],
        "after setsid the process leads its session"
    );
    let kw = wait_alert(&d, "Kworker", "real-kworker")
        .expect("the corpus kworker rule did not fire on a kworker-named setsid as root");
    assert_eq!(kw["event"]["action"], "session_id_change");
    let ns = wait_alert(&d, "Docker Escape via Nsenter", "real-nsenter").expect(
        "the corpus nsenter escape rule did not fire on nsenter -t 1 -S 65534 in a container",
    );
    assert_eq!(
        ns["process"]["entry_leader"]["entry_meta"]["type"],
        "container"
    );
    assert_eq!(ns["user"]["id"], "65534");

    let ns = wait_alert(&d, "Docker Escape via Nsenter", "real-runc-nsenter")
        .expect("the corpus nsenter escape rule did not fire in a runc container");
    assert_eq!(
        ns["process"]["entry_leader"]["entry_meta"]["type"],
        "container"
    );
    assert!(
        ns["container"]["id"]
            .as_str()
            .is_some_and(|id| cg.ends_with(id)),
        "container id: {}",
        ns["container"]
    );
    drop(c);

    let stopped = d.stop();
    assert!(
        stopped.status.success(),
        "daemon exit: {:?}",
        stopped.status
    );
    for marker in ["near-miss-same", "near-miss-refused"] {
        let hits: Vec<_> = stopped
            .docs
            .iter()
            .filter(|a| {
                a["event"]["kind"] == "alert"
                    && a["process"]["args"]
                        .as_array()
                        .is_some_and(|args| args.iter().any(|x| x == marker))
            })
            .collect();
        assert!(hits.is_empty(), "near miss {marker} raised {hits:?}");
    }
    let idle = alerts_of(&stopped.docs, "Kworker")
        .into_iter()
        .filter(|a| a["process"]["name"] == "kworker_idle")
        .count();
    assert_eq!(
        idle, 0,
        "a kworker-named process that never called setsid raised the rule"
    );
    let events = &stopped.final_stats["events"];
    assert!(
        events["uid_change"].as_u64().unwrap_or(0) >= 2,
        "stats: {events}"
    );
    assert!(
        events["session_id_change"].as_u64().unwrap_or(0) >= 2,
        "stats: {events}"
    );
}
