//! Elastic Defend-shaped documents, end to end: `detector run` loads rules of Elastic's
//! Linux corpus (read unmodified from the shared corpus, `testsupport::corpus`), the test
//! makes the real behaviour each rule describes happen on this machine (host processes and
//! runc containers), and checks that the rule's alert is written, and that a near miss of
//! the same behaviour raises none of it. Each row exercises one field Elastic Defend
//! writes and we did not before: the executable's full name (`process.name` beyond the
//! kernel's 15-byte `comm`, also of the parent), `process.working_directory` (walked in the
//! kernel, also inside a container), `process.env_vars` (the configured capture list),
//! `user.Ext.real.id` / `group.Ext.real.id`, and `already_running` for processes found at
//! start-up. The capability sets (`process.thread.capabilities.*`, read only by sequence
//! rules of the corpus) are checked on the alerts' documents.
//!
//! Alerts are tied to the run that caused them by pid (the spawned process, or its child)
//! or by container id, so other activity on the shared host cannot pass for them.

#[path = "common/containers.rs"]
mod containers;
#[path = "common/corpus_rows.rs"]
mod corpus_rows;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "common/ecs_validate.rs"]
mod ecs_validate;
#[path = "common/wait.rs"]
mod wait;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use containers::{RuncContainer, hex_id};
use corpus_rows::{
    Row, Run, Running, Scratch, as_nobody, barrier, brief, cmd, config_with, daemon_on,
    in_container_with, judge, rule_name, run, strings,
};
use detector::testsupport::{Corpus, Need, corpus, require};
use serde_json::Value;

/// Runs `argv` in a fresh runc container with working directory `cwd`.
fn in_container(argv: &[&str], cwd: &str) -> Run {
    in_container_with(argv, cwd, |_| {})
}

/// `bash -c 'sleep …; true' /etc/rc.local start`: its `sleep` child runs with a parent
/// whose args are rc.local's (`persistence_rc_local_service_already_running`).
fn rc_local_tree(scratch: &Scratch) -> Running {
    let child = cmd(
        &[
            "/bin/bash",
            "-c",
            "sleep 600; true",
            "/etc/rc.local",
            "start",
        ],
        scratch.dir.path(),
        &[],
    )
    .stdin(Stdio::null())
    .process_group(0)
    .spawn()
    .unwrap();
    Running(child)
}

const ROWS: &[Row] = &[
    Row {
        rule: "defense_evasion_root_certificate_installation.toml",
        covers: "long name: the real update-ca-certificates (`#!/bin/sh -e`), comm update-ca-certi",
        hit: |_| {
            run(&mut cmd(
                &["/usr/sbin/update-ca-certificates", "--help"],
                Path::new("/"),
                &[],
            ))
        },
        miss: |s| {
            run(&mut cmd(
                &[s.program("/bin/true", "update-ca-certi").to_str().unwrap()],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "credential_access_cookies_chromium_browsers_debugging.toml",
        covers: "long name: google-chrome-stable (20 bytes)",
        hit: |s| {
            run(&mut cmd(
                &[
                    s.program("/bin/true", "google-chrome-stable")
                        .to_str()
                        .unwrap(),
                    "--remote-debugging-port=9222",
                    "--user-data-dir=/tmp/x",
                ],
                Path::new("/"),
                &[],
            ))
        },
        miss: |s| {
            run(&mut cmd(
                &[
                    s.program("/bin/true", "google-chrome-stable")
                        .to_str()
                        .unwrap(),
                    "--remote-debugging-port=0",
                    "--user-data-dir=/tmp/x",
                ],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "persistence_git_hook_process_execution.toml",
        covers: "long parent name: a git hook named prepare-commit-msg (18 bytes) runs a shell",
        hit: |s| {
            run(&mut cmd(
                &[
                    s.program("/usr/bin/dash", "prepare-commit-msg")
                        .to_str()
                        .unwrap(),
                    "-c",
                    "/bin/sh -c true; true",
                ],
                Path::new("/"),
                &[],
            ))
        },
        miss: |s| {
            run(&mut cmd(
                &[
                    s.program("/usr/bin/dash", "prepare-commit-")
                        .to_str()
                        .unwrap(),
                    "-c",
                    "/bin/sh -c true; true",
                ],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "defense_evasion_shell_history_clearing_via_environment_variables.toml",
        covers: "env vars: HISTFILE=/dev/null",
        hit: |_| {
            run(&mut cmd(
                &["/bin/true"],
                Path::new("/"),
                &[("HISTFILE", "/dev/null")],
            ))
        },
        miss: |_| {
            run(&mut cmd(
                &["/bin/true"],
                Path::new("/"),
                &[("HISTFILE", "/root/.bash_history")],
            ))
        },
    },
    Row {
        rule: "command_and_control_curl_socks_proxy_detected.toml",
        covers: "env vars: curl from a shell through http_proxy=socks5h://",
        hit: |_| {
            run(&mut cmd(
                &[
                    "/bin/sh",
                    "-c",
                    "curl -s --max-time 2 http://127.0.0.1:9/; true",
                ],
                Path::new("/"),
                &[("http_proxy", "socks5h://127.0.0.1:9")],
            ))
        },
        miss: |_| {
            run(&mut cmd(
                &[
                    "/bin/sh",
                    "-c",
                    "curl -s --max-time 2 http://127.0.0.1:9/; true",
                ],
                Path::new("/"),
                &[("http_proxy", "http://127.0.0.1:9")],
            ))
        },
    },
    Row {
        rule: "execution_via_github_runner_with_runner_tracking_id_tampering_via_env_vars.toml",
        covers: "env vars: RUNNER_TRACKING_ID not github_* under Runner.Worker",
        hit: |s| {
            run(&mut cmd(
                &[
                    s.program("/usr/bin/dash", "Runner.Worker")
                        .to_str()
                        .unwrap(),
                    "-c",
                    "/bin/true; true",
                ],
                Path::new("/"),
                &[("RUNNER_TRACKING_ID", "detector-tampered")],
            ))
        },
        miss: |s| {
            run(&mut cmd(
                &[
                    s.program("/usr/bin/dash", "Runner.Worker")
                        .to_str()
                        .unwrap(),
                    "-c",
                    "/bin/true; true",
                ],
                Path::new("/"),
                &[("RUNNER_TRACKING_ID", "github_7d3f")],
            ))
        },
    },
    Row {
        rule: "defense_evasion_hidden_file_dir_tmp.toml",
        covers: "working directory: touch of a dot file in /tmp",
        hit: |s| {
            let name = format!(".detector-defend-{}", std::process::id());
            let r = run(&mut cmd(&["/usr/bin/touch", &name], Path::new("/tmp"), &[]));
            let _ = std::fs::remove_file(Path::new("/tmp").join(name));
            let _ = s;
            r
        },
        miss: |s| {
            run(&mut cmd(
                &["/usr/bin/touch", ".detector-defend"],
                &s.subdir("tmp-sub"),
                &[],
            ))
        },
    },
    Row {
        rule: "privilege_escalation_linux_suspicious_symbolic_link.toml",
        covers: "working directory /etc and real ids: a non-root shell links to shadow",
        hit: |s| {
            let link = s.subdir("links-hit").join("l");
            run(&mut as_nobody(
                &[
                    "/bin/sh",
                    "-c",
                    &format!("ln -s shadow {}; true", link.display()),
                ],
                Path::new("/etc"),
            ))
        },
        // Real root: the rule leaves root's links alone.
        miss: |s| {
            let link = s.subdir("links-miss").join("l");
            run(&mut cmd(
                &[
                    "/bin/sh",
                    "-c",
                    &format!("ln -s shadow {}; true", link.display()),
                ],
                Path::new("/etc"),
                &[],
            ))
        },
    },
    Row {
        rule: "discovery_polkit_version_discovery.toml",
        covers: "working directory: pkaction --version, excluded from /opt/msp-agent",
        hit: |_| {
            run(&mut cmd(
                &["/usr/bin/pkaction", "--version"],
                Path::new("/tmp"),
                &[],
            ))
        },
        miss: |s| {
            run(&mut cmd(
                &["/usr/bin/pkaction", "--version"],
                &s.outside_dir("/opt/msp-agent"),
                &[],
            ))
        },
    },
    Row {
        rule: "credential_access_kubernetes_service_account_secret_access.toml",
        covers: "working directory inside a container (walked to the container's root)",
        hit: |_| {
            in_container(
                &["/bin/cat", "token"],
                "/var/run/secrets/kubernetes.io/serviceaccount",
            )
        },
        miss: |_| in_container(&["/bin/cat", "token"], "/tmp"),
    },
    Row {
        rule: "defense_evasion_kernel_module_removal.toml",
        covers: "working directory: rmmod from a shell, excluded in an NVIDIA makeself directory",
        hit: |s| {
            let rmmod = s.program("/bin/true", "rmmod");
            run(&mut cmd(
                &[
                    "/bin/sh",
                    "-c",
                    &format!("{} detector_none; true", rmmod.display()),
                ],
                &s.subdir("work"),
                &[],
            ))
        },
        miss: |s| {
            let rmmod = s.program("/bin/true", "rmmod");
            let dir = PathBuf::from(format!(
                "/tmp/makeself-{}-NVIDIA-Linux-x86_64",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let r = run(&mut cmd(
                &[
                    "/bin/sh",
                    "-c",
                    &format!("{} detector_none; true", rmmod.display()),
                ],
                &dir,
                &[],
            ));
            let _ = std::fs::remove_dir(&dir);
            let _ = s;
            r
        },
    },
    Row {
        rule: "discovery_suid_sguid_enumeration.toml",
        covers: "real ids: find -perm -4000 by nobody (user.Ext.real.id)",
        hit: |s| {
            run(&mut as_nobody(
                &[
                    "/usr/bin/find",
                    s.dir.path().to_str().unwrap(),
                    "-perm",
                    "-4000",
                ],
                Path::new("/"),
            ))
        },
        miss: |s| {
            run(&mut cmd(
                &[
                    "/usr/bin/find",
                    s.dir.path().to_str().unwrap(),
                    "-perm",
                    "-4000",
                ],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "privilege_escalation_sda_disk_mount_non_root.toml",
        covers: "real ids: debugfs on /dev/sd* by nobody",
        hit: |_| {
            run(&mut as_nobody(
                &["/usr/sbin/debugfs", "/dev/sdzz9"],
                Path::new("/"),
            ))
        },
        miss: |_| {
            run(&mut cmd(
                &["/usr/sbin/debugfs", "/dev/sdzz9"],
                Path::new("/"),
                &[],
            ))
        },
    },
];

/// Extra corpus rules whose runs are not in [`ROWS`]: the start-up ones.
const RC_LOCAL_RULE: &str = "persistence_rc_local_service_already_running.toml";

#[test]
fn corpus_rules_fire_on_defend_shaped_documents() {
    if !require(
        "defend_shape::corpus_rules_fire_on_defend_shaped_documents",
        &[
            Need::Root,
            Need::Corpus(Corpus::ElasticLinux),
            Need::Tool("runc"),
            Need::Tool("setpriv"),
            Need::Tool("debugfs"),
            Need::Tool("pkaction"),
            Need::Tool("curl"),
            Need::Path("/usr/sbin/update-ca-certificates"),
        ],
    ) {
        return;
    }
    let dir = corpus(Corpus::ElasticLinux);
    let files: Vec<PathBuf> = ROWS
        .iter()
        .map(|r| r.rule)
        .chain([RC_LOCAL_RULE])
        .map(|f| dir.join(f))
        .collect();
    // The corpus rules, unmodified, plus the shipped seed rule (the barrier and the
    // start-up sshd).
    let (_cfg_dir, config) = config_with(&files);

    let mut scratch = Scratch::new();
    // Found at start-up: an rc.local child, and an sshd in a container (the seed rule).
    let before = rc_local_tree(&scratch);
    let sshd_id = hex_id();
    let mut sshd = RuncContainer::new(
        &["/usr/sbin/sshd", "-D", "-e"],
        Some(&format!("/docker/{sshd_id}")),
    )
    .unwrap();
    let sshd_pid = sshd.start().unwrap();
    // Let bash fork its sleep before the daemon reads /proc.
    before.wait_for_child();

    let d = daemon_on(config, &files);
    // The same rc.local tree started after the daemon: a live exec, not already_running.
    let after = rc_local_tree(&scratch);
    let after_run = after.run();

    let runs: Vec<(Run, Run)> = ROWS
        .iter()
        .map(|r| ((r.hit)(&mut scratch), (r.miss)(&mut scratch)))
        .collect();

    barrier(&d);
    let s = d.stop();
    assert!(s.status.success(), "{:?}", s.status);
    drop((before, after, sshd));
    let owned: Vec<Value> = s
        .docs
        .iter()
        .filter(|d| d["event"]["kind"] == "alert")
        .cloned()
        .collect();
    for a in &owned {
        let errors = ecs_validate::validate_ecs(a);
        assert!(errors.is_empty(), "not ECS 9.4 / Defend: {errors:#?}\n{a}");
    }
    let alerts: Vec<&Value> = owned.iter().collect();

    let (hits, failures) = judge(&dir, ROWS, &runs, &owned);
    for a in hits.iter().flatten() {
        assert_eq!(a["event"]["action"], "exec", "{a}");
        assert_eq!(a["host"]["os"]["type"], "linux", "{a}");
    }
    assert!(
        failures.is_empty(),
        "{}\nall alerts:\n{}",
        failures.join("\n"),
        brief(&alerts)
    );

    // Field by field, on the alerts' documents.
    let of_rule = |file: &str| -> Vec<&Value> {
        let n = rule_name(&dir.join(file));
        alerts
            .iter()
            .copied()
            .filter(|a| a["rule"]["name"] == n.as_str())
            .collect()
    };
    let ca = of_rule(ROWS[0].rule);
    let ca = ca.iter().find(|a| runs[0].0.owns(a)).unwrap();
    assert_eq!(ca["process"]["name"], "update-ca-certificates", "{ca}");
    assert_eq!(
        ca["process"]["executable"], "/usr/sbin/update-ca-certificates",
        "{ca}"
    );
    assert_eq!(ca["process"]["thread"]["name"], "update-ca-certi", "{ca}");
    assert_eq!(ca["process"]["working_directory"], "/", "{ca}");
    // Root: every capability, as names.
    for set in ["effective", "permitted"] {
        let caps = strings(&ca["process"]["thread"]["capabilities"][set]);
        assert!(
            caps.contains(&"CAP_SYS_ADMIN") && caps.contains(&"CAP_CHOWN"),
            "{set}: {caps:?}"
        );
    }
    let hook = of_rule(ROWS[2].rule);
    let hook = hook.iter().find(|a| runs[2].0.owns(a)).unwrap();
    assert_eq!(
        hook["process"]["parent"]["name"], "prepare-commit-msg",
        "{hook}"
    );
    assert_eq!(
        hook["process"]["parent"]["thread"]["name"], "prepare-commit-",
        "{hook}"
    );
    let hist = of_rule(ROWS[3].rule);
    assert_eq!(
        strings(&hist[0]["process"]["env_vars"]),
        ["HISTFILE=/dev/null"],
        "{}",
        hist[0]
    );
    let k8s = of_rule(ROWS[9].rule);
    assert_eq!(
        k8s[0]["process"]["working_directory"], "/var/run/secrets/kubernetes.io/serviceaccount",
        "{}",
        k8s[0]
    );
    let suid = of_rule(ROWS[11].rule);
    let suid = suid.iter().find(|a| runs[11].0.owns(a)).unwrap();
    assert_eq!(suid["user"]["Ext"]["real"]["id"], "65534", "{suid}");
    assert_eq!(suid["group"]["Ext"]["real"]["id"], "65534", "{suid}");
    assert_eq!(suid["user"]["id"], "65534", "{suid}");
    // No capability at all as nobody: the sets are left out.
    assert!(
        suid["process"]["thread"]["capabilities"].is_null(),
        "{suid}"
    );

    // Found at start-up: Defend's already_running/info for the rc.local child; the seed rule
    // still alerts on the sshd through the exec view; both flagged.
    let rc = of_rule(RC_LOCAL_RULE);
    let before_pid = |a: &&Value| {
        a["process"]["parent"]["args"]
            .as_array()
            .is_some_and(|_| !after_run.owns(a))
    };
    let early: Vec<&Value> = rc.iter().copied().filter(before_pid).collect();
    assert_eq!(early.len(), 1, "{}", brief(&rc));
    assert_eq!(
        early[0]["event"]["action"], "already_running",
        "{}",
        early[0]
    );
    assert_eq!(
        early[0]["event"]["type"],
        serde_json::json!(["info"]),
        "{}",
        early[0]
    );
    assert_eq!(early[0]["detector"]["startup_scan"], true, "{}", early[0]);
    assert!(
        rc.iter().all(|a| !after_run.owns(a)),
        "the live rc.local tree alerted: {}",
        brief(&rc)
    );
    let seed: Vec<&Value> = alerts
        .iter()
        .copied()
        .filter(|a| a["container"]["id"] == sshd_id.as_str())
        .collect();
    assert_eq!(seed.len(), 1, "{}", brief(&seed));
    assert_eq!(seed[0]["rule"]["name"], daemon::SSH_RULE_NAME);
    assert_eq!(seed[0]["process"]["pid"], sshd_pid);
    assert_eq!(seed[0]["event"]["action"], "exec", "{}", seed[0]);
    assert_eq!(seed[0]["detector"]["startup_scan"], true, "{}", seed[0]);
}
