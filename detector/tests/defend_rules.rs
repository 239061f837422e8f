//! Elastic's Linux rules, end to end on this host: `detector run` loads rules of the corpus
//! (read unmodified through `testsupport::corpus`), the test makes the real behaviour each
//! rule describes happen (processes spawned with the argv, working directory, user and
//! executable name the rule reads), and checks that the rule's alert is written and that a
//! near miss — the same behaviour with the one detail the rule turns on changed — raises
//! none of it. The rows cover what `defend_shape.rs` does not: EQL functions
//! (`length`, `startsWith` with a field as its second argument), the real ids of set-user-id
//! programs (`user.Ext.real.id`, `process.real_user.id` against `process.user.id`), the
//! capability sets of a file-capability binary joined with its `uid_change` (a sequence),
//! `setcap`/`getcap`, working-directory exclusions, executable names past the kernel's
//! 15-byte `comm` in exclusions of the parent, `process.env_vars` in a sequence with
//! `runs`, and `already_running` for a shell found at start-up under "systemd".
//!
//! The container rows are in `defend_rules_containers.rs`.

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

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use corpus_rows::{Row, Run, Running, Scratch, as_nobody, cmd, run, strings};
use detector::testsupport::{Corpus, Need, corpus, require};

/// `setcap caps file` (by root, checked): the file-capability binaries the rows run.
fn setcap(caps: &str, file: &Path) {
    let st = wait::status_timeout(
        Command::new("/usr/sbin/setcap").arg(caps).arg(file),
        corpus_rows::RUN_BOUND,
        "setcap",
    );
    assert!(st.success(), "setcap {caps} {}: {st:?}", file.display());
}

/// A copy of setpriv with `cap_setuid+ep`: run by nobody, it may change its uid to any.
fn cap_setuid_setpriv(s: &Scratch) -> PathBuf {
    let p = s.dir.path().join("caps").join("setpriv");
    if !p.exists() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy("/usr/bin/setpriv", &p).unwrap();
        setcap("cap_setuid+ep", &p);
    }
    p
}

/// A file for `setcap` to mark (a copy of `true`), one per name.
fn target(s: &Scratch, name: &str) -> String {
    s.program("/bin/true", name).display().to_string()
}

/// `sh -c "script; true"` as nobody (the trailing `true` keeps the shell from exec'ing the
/// last command: the program runs as the shell's child).
fn sh_as_nobody(script: &str) -> Command {
    as_nobody(
        &["/bin/sh", "-c", &format!("{script}; true")],
        Path::new("/"),
    )
}

fn sh_as_root(script: &str) -> Command {
    cmd(
        &["/bin/sh", "-c", &format!("{script}; true")],
        Path::new("/"),
        &[],
    )
}

/// `script -qec "runc run MARKER; true"`: a copy of true named runc, run in a new
/// pseudo-terminal (so it and its shell are interactive), by nobody or by root.
fn runc_in_pty(s: &Scratch, as_nobody_user: bool, marker: &str) -> Run {
    let runc = s.program("/bin/true", "runc");
    let line = format!("{} run {marker}; true", runc.display());
    let argv = ["/usr/bin/script", "-qec", &line, "/dev/null"];
    let mut c = if as_nobody_user {
        as_nobody(&argv, Path::new("/"))
    } else {
        cmd(&argv, Path::new("/"), &[])
    };
    run(&mut c).marked(marker)
}

fn docker_run_it(as_nobody_user: bool) -> Run {
    let docker = corpus_rows::tool_path("docker");
    let argv = [
        docker.to_str().unwrap(),
        "-H",
        "unix:///run/detector-none/docker.sock",
        "run",
        "-it",
        "detector-none",
    ];
    run(&mut if as_nobody_user {
        as_nobody(&argv, Path::new("/"))
    } else {
        cmd(&argv, Path::new("/"), &[])
    })
}

fn touch_d(s: &Scratch, cwd: &Path) -> Run {
    let f = s.subdir("touched").join("f");
    run(&mut cmd(
        &["/usr/bin/touch", "-d", "2001-01-01", f.to_str().unwrap()],
        cwd,
        &[],
    ))
}

fn chkconfig_under(s: &Scratch, parent: &str) -> Run {
    let chk = s.program("/bin/true", "chkconfig");
    let sh = s.program("/usr/bin/dash", parent);
    run(&mut cmd(
        &[
            sh.to_str().unwrap(),
            "-c",
            &format!("{} --add detector-none; true", chk.display()),
        ],
        Path::new("/"),
        &[],
    ))
}

const ROWS: &[Row] = &[
    Row {
        rule: "defense_evasion_hex_payload_execution_via_commandline.toml",
        covers: "function length(): 14 \\xNN escapes (66 bytes) vs 14 bare \\x (38 bytes)",
        hit: |_| {
            run(&mut cmd(
                &["/bin/echo", &"\\x41".repeat(14)],
                Path::new("/"),
                &[],
            ))
        },
        miss: |_| {
            run(&mut cmd(
                &["/bin/echo", &"\\x".repeat(14)],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "privilege_escalation_potential_suid_lpe_via_process_args.toml",
        covers: "function startsWith(executable, command_line): a set-user-id id run bare by \
                 nobody from sh -c, vs the same with an argument",
        hit: |s| {
            let id = s.setuid_program("/usr/bin/id", "id");
            run(&mut sh_as_nobody(id.to_str().unwrap()))
        },
        miss: |s| {
            let id = s.setuid_program("/usr/bin/id", "id");
            run(&mut sh_as_nobody(&format!("{} -u", id.display())))
        },
    },
    Row {
        rule: "privilege_escalation_potential_suid_sgid_exploitation.toml",
        covers: "long name and real ids: set-user-id start-stop-daemon (17 bytes) by nobody, vs \
                 the same program named start-stop-daem (its comm)",
        hit: |s| {
            let p = s.setuid_program("/usr/sbin/start-stop-daemon", "start-stop-daemon");
            run(&mut as_nobody(
                &[p.to_str().unwrap(), "--version"],
                Path::new("/"),
            ))
        },
        miss: |s| {
            let p = s.setuid_program("/usr/sbin/start-stop-daemon", "start-stop-daem");
            run(&mut as_nobody(
                &[p.to_str().unwrap(), "--version"],
                Path::new("/"),
            ))
        },
    },
    Row {
        rule: "privilege_escalation_suspicious_suid_binary_execution.toml",
        covers: "real ids: the real set-user-id su by nobody from sh -c, vs by root",
        hit: |_| run(&mut sh_as_nobody("/usr/bin/su --version")),
        miss: |_| run(&mut sh_as_root("/usr/bin/su --version")),
    },
    Row {
        rule: "privilege_escalation_container_util_misconfiguration.toml",
        covers: "user.Ext.real.id/group.Ext.real.id and process.interactive: runc run in a \
                 pseudo-terminal by nobody, vs by root",
        hit: |s| runc_in_pty(s, true, &format!("dtrc-hit-{}", std::process::id())),
        miss: |s| runc_in_pty(s, false, &format!("dtrc-miss-{}", std::process::id())),
    },
    Row {
        rule: "privilege_escalation_writable_docker_socket.toml",
        covers: "user.Ext.real.id: docker -H unix://…/docker.sock run -it by nobody, vs by root",
        hit: |_| docker_run_it(true),
        miss: |_| docker_run_it(false),
    },
    Row {
        rule: "privilege_escalation_suspicious_uid_guid_elevation.toml",
        covers: "capabilities (sequence): setpriv with file caps cap_setuid+ep exec'd by nobody \
                 (CAP_SETUID effective and permitted), then its uid_change to 0, vs to 1",
        hit: |s| {
            let p = cap_setuid_setpriv(s);
            run(&mut as_nobody(
                &[p.to_str().unwrap(), "--reuid=0", "/bin/true"],
                Path::new("/"),
            ))
        },
        miss: |s| {
            let p = cap_setuid_setpriv(s);
            run(&mut as_nobody(
                &[p.to_str().unwrap(), "--reuid=1", "/bin/true"],
                Path::new("/"),
            ))
        },
    },
    Row {
        rule: "persistence_setuid_setgid_capability_set.toml",
        covers: "setcap cap_setuid+ep, vs cap_net_raw+ep",
        hit: |s| {
            let f = target(s, "setcap-setuid");
            run(&mut cmd(
                &["/usr/sbin/setcap", "cap_setuid+ep", &f],
                Path::new("/"),
                &[],
            ))
        },
        miss: |s| {
            let f = target(s, "setcap-netraw");
            run(&mut cmd(
                &["/usr/sbin/setcap", "cap_net_raw+ep", &f],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "persistence_process_capability_set_via_setcap.toml",
        covers: "working directory: setcap, excluded in /opt/dynatrace/oneagent",
        hit: |s| {
            let f = target(s, "setcap-cwd-hit");
            run(&mut cmd(
                &["/usr/sbin/setcap", "cap_net_raw+ep", &f],
                &s.subdir("work"),
                &[],
            ))
        },
        miss: |s| {
            let f = target(s, "setcap-cwd-miss");
            let cwd = s.outside_dir("/opt/dynatrace/oneagent");
            run(&mut cmd(
                &["/usr/sbin/setcap", "cap_net_raw+ep", &f],
                &cwd,
                &[],
            ))
        },
    },
    Row {
        rule: "discovery_process_capabilities.toml",
        covers: "getcap -r / by nobody (user.id), vs by root",
        hit: |s| {
            let g = s.program("/bin/true", "getcap");
            run(&mut as_nobody(
                &[g.to_str().unwrap(), "-r", "/"],
                Path::new("/"),
            ))
        },
        miss: |s| {
            let g = s.program("/bin/true", "getcap");
            run(&mut cmd(
                &[g.to_str().unwrap(), "-r", "/"],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "discovery_pam_version_discovery.toml",
        covers: "working directory: dpkg-query -W libpam-modules, excluded in /var/ossec",
        hit: |s| {
            run(&mut cmd(
                &["/usr/bin/dpkg-query", "-W", "libpam-modules"],
                &s.subdir("work"),
                &[],
            ))
        },
        miss: |s| {
            let cwd = s.outside_dir("/var/ossec");
            run(&mut cmd(
                &["/usr/bin/dpkg-query", "-W", "libpam-modules"],
                &cwd,
                &[],
            ))
        },
    },
    Row {
        rule: "defense_evasion_timestomp_touch.toml",
        covers: "working directory: touch -d, excluded in /opt/libexec",
        hit: |s| touch_d(s, &s.subdir("work")),
        miss: |s| {
            let cwd = s.outside_dir("/opt/libexec");
            touch_d(s, &cwd)
        },
    },
    Row {
        rule: "discovery_proc_maps_read.toml",
        covers: "working directory: cat /proc/self/maps, excluded in /opt/traps/deb-installer",
        hit: |s| {
            run(&mut cmd(
                &["/bin/cat", "/proc/self/maps"],
                &s.subdir("work"),
                &[],
            ))
        },
        miss: |s| {
            let cwd = s.outside_dir("/opt/traps/deb-installer");
            run(&mut cmd(&["/bin/cat", "/proc/self/maps"], &cwd, &[]))
        },
    },
    Row {
        rule: "persistence_boot_file_copy.toml",
        covers: "long parent name: cp from /boot under sh, vs under update-grub-gfxpayload \
                 (22 bytes, excluded)",
        hit: |s| {
            let line = format!("cp /boot/detector-none {}/x; true", s.dir.path().display());
            run(&mut cmd(&["/bin/sh", "-c", &line], Path::new("/"), &[]))
        },
        miss: |s| {
            let sh = s.program("/usr/bin/dash", "update-grub-gfxpayload");
            let line = format!("cp /boot/detector-none {}/x; true", s.dir.path().display());
            run(&mut cmd(
                &[sh.to_str().unwrap(), "-c", &line],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "persistence_chkconfig_service_add.toml",
        covers: "long parent name: chkconfig --add under update-alternatives2, vs under \
                 update-alternatives (excluded; both comm update-alternat)",
        hit: |s| chkconfig_under(s, "update-alternatives2"),
        miss: |s| chkconfig_under(s, "update-alternatives"),
    },
    Row {
        rule: "privilege_escalation_looney_tunables_cve_2023_4911.toml",
        covers: "env vars (sequence, runs=5): five execs of true by one shell with \
                 GLIBC_TUNABLES=glibc.*=glibc.*=…, vs with a well-formed tunable",
        hit: |_| five_trues("glibc.malloc.mxfast=glibc.malloc.mxfast=1"),
        miss: |_| five_trues("glibc.malloc.mxfast=1"),
    },
    Row {
        rule: "command_and_control_telegram_api_request.toml",
        covers: "curl to api.telegram.org (resolved to 127.0.0.1: refused at once), vs \
                 api.telegram.example",
        hit: |_| curl_to("api.telegram.org"),
        miss: |_| curl_to("api.telegram.example"),
    },
];

/// `sh -c "for …; do /bin/true; done"`, five children of one shell, all with
/// `GLIBC_TUNABLES` set to `tunables` (this glibc is patched: a malformed value is
/// ignored).
fn five_trues(tunables: &str) -> Run {
    run(&mut cmd(
        &[
            "/bin/sh",
            "-c",
            "for i in 1 2 3 4 5; do /bin/true; done; true",
        ],
        Path::new("/"),
        &[("GLIBC_TUNABLES", tunables)],
    ))
}

/// `curl https://HOST/` with HOST resolved to 127.0.0.1 (nothing listens on 443 here).
fn curl_to(host: &str) -> Run {
    run(&mut cmd(
        &[
            "/usr/bin/curl",
            "-s",
            "--max-time",
            "2",
            "--resolve",
            &format!("{host}:443:127.0.0.1"),
            &format!("https://{host}/"),
        ],
        Path::new("/"),
        &[],
    ))
}

/// Read only by the start-up scan: `already_running` shells whose parent is systemd.
const SYSTEMD_SHELL_RULE: &str = "persistence_systemd_shell_execution.toml";

/// A copy of dash named `systemd`, started as `/sbin/init` (its command line is init's),
/// which reads `bash -c 'sleep 600; true' detector` from its stdin and runs it: a shell
/// child of "systemd" (`persistence_systemd_shell_execution` once found at start-up).
fn init_tree(s: &Scratch) -> Running {
    let init = s.program("/usr/bin/dash", "systemd");
    let mut child = Command::new(&init)
        .arg0("/sbin/init")
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let tree = Running(child);
    stdin
        .write_all(b"bash -c 'sleep 600; true' detector\n")
        .unwrap();
    drop(stdin);
    tree.wait_for_child();
    tree
}

#[test]
fn corpus_rules_fire_on_real_host_behaviour() {
    if !require(
        "defend_rules::corpus_rules_fire_on_real_host_behaviour",
        &[
            Need::Root,
            Need::Corpus(Corpus::ElasticLinux),
            Need::Tool("runc"),
            Need::Tool("docker"),
            Need::Path("/usr/bin/setpriv"),
            Need::Path("/usr/sbin/setcap"),
            Need::Path("/usr/bin/script"),
            Need::Path("/usr/bin/dpkg-query"),
            Need::Path("/usr/bin/su"),
            Need::Path("/usr/bin/id"),
            Need::Path("/usr/bin/dash"),
            Need::Path("/usr/bin/touch"),
            Need::Path("/usr/sbin/start-stop-daemon"),
            Need::Path("/usr/bin/curl"),
            Need::Path("/usr/bin/bash"),
        ],
    ) {
        return;
    }
    let dir = corpus(Corpus::ElasticLinux);
    let files: Vec<PathBuf> = ROWS
        .iter()
        .map(|r| r.rule)
        .chain([SYSTEMD_SHELL_RULE])
        .map(|f| dir.join(f))
        .collect();
    let mut scratch = Scratch::new();
    // Found at start-up: a shell under "systemd"; the same tree started afterwards is a
    // live exec, which the rule (already_running only) leaves alone.
    let before = init_tree(&scratch);
    let (_cfg, d) = corpus_rows::start_daemon(&files);
    let after = init_tree(&scratch);
    let runs: Vec<(Run, Run)> = ROWS
        .iter()
        .map(|r| ((r.hit)(&mut scratch), (r.miss)(&mut scratch)))
        .collect();
    let alerts = corpus_rows::settle_and_stop(d);
    let (before_run, after_run) = (before.run(), after.run());
    drop((before, after));
    let (hits, failures) = corpus_rows::judge(&dir, ROWS, &runs, &alerts);
    let all: Vec<&serde_json::Value> = alerts.iter().collect();
    assert!(
        failures.is_empty(),
        "{}\nall alerts:\n{}",
        failures.join("\n"),
        corpus_rows::brief(&all)
    );

    // Field by field, on the alerts' documents.
    let row = |file: &str| ROWS.iter().position(|r| r.rule == file).unwrap();
    let hex = hits[row("defense_evasion_hex_payload_execution_via_commandline.toml")][0];
    assert_eq!(
        hex["process"]["command_line"],
        format!("/bin/echo {}", "\\x41".repeat(14)),
        "{hex}"
    );
    let ssd = hits[row("privilege_escalation_potential_suid_sgid_exploitation.toml")][0];
    assert_eq!(ssd["process"]["name"], "start-stop-daemon", "{ssd}");
    assert_eq!(ssd["process"]["thread"]["name"], "start-stop-daem", "{ssd}");
    assert_eq!(ssd["process"]["user"]["id"], "0", "{ssd}");
    assert_eq!(ssd["process"]["real_user"]["id"], "65534", "{ssd}");
    assert_eq!(ssd["user"]["Ext"]["real"]["id"], "65534", "{ssd}");
    let pty = hits[row("privilege_escalation_container_util_misconfiguration.toml")][0];
    assert_eq!(pty["process"]["interactive"], true, "{pty}");
    assert_eq!(pty["process"]["parent"]["interactive"], true, "{pty}");
    assert_eq!(pty["group"]["Ext"]["real"]["id"], "65534", "{pty}");
    // The sequence: the exec with CAP_SETUID in both sets by nobody, then the change to 0.
    let seq = &hits[row("privilege_escalation_suspicious_uid_guid_elevation.toml")];
    let exec = seq
        .iter()
        .find(|a| a["event"]["action"] == "exec")
        .unwrap_or_else(|| panic!("no exec building block: {seq:?}"));
    for set in ["effective", "permitted"] {
        let caps = strings(&exec["process"]["thread"]["capabilities"][set]);
        assert_eq!(caps, ["CAP_SETUID"], "{set}: {exec}");
    }
    assert_eq!(exec["user"]["id"], "65534", "{exec}");
    let change = seq
        .iter()
        .find(|a| a["event"]["action"] == "uid_change")
        .unwrap_or_else(|| panic!("no uid_change building block: {seq:?}"));
    assert_eq!(change["user"]["id"], "0", "{change}");
    let boot = hits[row("persistence_boot_file_copy.toml")][0];
    assert!(boot["process"]["working_directory"].is_string(), "{boot}");
    let chk = hits[row("persistence_chkconfig_service_add.toml")][0];
    assert_eq!(
        chk["process"]["parent"]["name"], "update-alternatives2",
        "{chk}"
    );
    // One building block per exec of the run (and the sequence's own alert).
    let looney = &hits[row("privilege_escalation_looney_tunables_cve_2023_4911.toml")];
    let blocks = looney
        .iter()
        .filter(|a| a["kibana"]["alert"]["building_block_type"] == "default")
        .filter(|a| a["process"]["name"] == "true")
        .count();
    assert_eq!(blocks, 5, "{}", corpus_rows::brief(looney));
    assert_eq!(
        strings(&looney[0]["process"]["env_vars"]),
        ["GLIBC_TUNABLES=glibc.malloc.mxfast=glibc.malloc.mxfast=1"],
        "{}",
        looney[0]
    );

    // Found at start-up: Defend's already_running for the shell under "systemd", flagged;
    // nothing for the tree started after the daemon.
    let name = corpus_rows::rule_name(&dir.join(SYSTEMD_SHELL_RULE));
    let of = |r: &Run| -> Vec<&serde_json::Value> {
        alerts
            .iter()
            .filter(|a| a["rule"]["name"] == name.as_str() && r.owns(a))
            .collect()
    };
    let early = of(&before_run);
    assert_eq!(early.len(), 1, "{}", corpus_rows::brief(&all));
    let a = early[0];
    assert_eq!(a["event"]["action"], "already_running", "{a}");
    assert_eq!(a["event"]["type"], serde_json::json!(["info"]), "{a}");
    assert_eq!(a["detector"]["startup_scan"], true, "{a}");
    assert_eq!(a["process"]["name"], "bash", "{a}");
    assert_eq!(a["process"]["parent"]["name"], "systemd", "{a}");
    assert_eq!(a["process"]["parent"]["command_line"], "/sbin/init", "{a}");
    let late = of(&after_run);
    assert!(late.is_empty(), "{}", corpus_rows::brief(&late));
}
