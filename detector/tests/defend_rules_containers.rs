//! Elastic's Linux rules about containers, end to end: `detector run` loads rules of the
//! corpus (read unmodified through `testsupport::corpus`), the test runs the real tools
//! each rule names inside runc containers (the host's own `/usr` bound read-only into the
//! test rootfs, so `grep`, `chmod`, `mount`, `unshare` and `nsenter` are the real programs;
//! busybox applets where the rule reads them), and checks that the rule's alert is written
//! with the container's id, and that a near miss — the same tool on the host, or in the
//! container with the argument the rule excludes — raises none of it. The rules read
//! `container.id` and `process.entry_leader.entry_meta.type`, for Defend for Containers'
//! rules a busybox applet's name in `process.args`, and, in podman containers,
//! `container.security_context.privileged` (podman records `--privileged`).
//!
//! Not a row: `privilege_escalation_debugfs_launched_inside_container.toml` matches
//! `process.command_line like~ "/dev/sd*"`, a pattern anchored at the start of the whole
//! command line, so it holds only when `argv[0]` itself starts with `/dev/sd` (in
//! Elasticsearch too): a real `debugfs /dev/sda1` never raises it.
//!
//! The host rows are in `defend_rules.rs`.

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

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use corpus_rows::{Row, Run, Scratch, cmd, in_container_with, run};
use detector::testsupport::{Corpus, Need, corpus, require};
use serde_json::json;

/// `argv` in a fresh container whose `/usr` is the host's (read-only).
fn with_host_usr(argv: &[&str]) -> Run {
    in_container_with(argv, "/", |cfg| {
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/usr",
            "type": "bind",
            "source": "/usr",
            "options": ["rbind", "ro", "nosuid", "nodev"],
        }));
    })
}

/// `argv` in a fresh container of the plain test rootfs (busybox applets in `/bin`).
fn plain(argv: &[&str]) -> Run {
    in_container_with(argv, "/", |_| {})
}

/// `argv` in a fresh container with the scratch `bin` directory bound at `/scratch`.
fn with_scratch(s: &Scratch, argv: &[&str]) -> Run {
    let bin = s.dir.path().join("bin").display().to_string();
    in_container_with(argv, "/", |cfg| {
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch",
            "type": "bind",
            "source": bin,
            "options": ["rbind", "ro", "nodev"],
        }));
    })
}

/// `argv` in a fresh podman container (rootful, runc, no network) of the test image, with
/// `flags` added to `podman create`; run to completion and removed. Podman records
/// `--privileged` in the container's state, which the daemon reads
/// (`container.security_context.privileged`).
fn podman(flags: &[&str], argv: &[&str]) -> Run {
    let image = containers::podman_image().unwrap();
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "detector-rules-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let remove = || {
        let _ = wait::try_output_timeout(
            Command::new("podman").args(["rm", "-f", "-t", "0", &name]),
            wait::TOOL,
            "podman rm",
        );
    };
    let created = wait::output_timeout(
        Command::new("podman")
            .args([
                "create",
                "--name",
                &name,
                "--runtime",
                "runc",
                "--network",
                "none",
            ])
            // The limits this machine's root may set (as `containers::PodmanContainer`).
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=4096:4096",
            ])
            .args(flags)
            .arg(image)
            .args(argv),
        wait::CONTAINER,
        "podman create",
    );
    if !created.status.success() {
        remove();
        panic!(
            "podman create {flags:?} {argv:?}: {}",
            String::from_utf8_lossy(&created.stderr)
        );
    }
    let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    let started = wait::try_output_timeout(
        Command::new("podman").args(["start", "-a", &name]),
        wait::CONTAINER,
        "podman start -a",
    );
    remove();
    // The program may fail (debugfs on a missing device); podman itself may not (125: podman,
    // 126: the runtime could not start it, 127: not found).
    let out = started.unwrap();
    assert!(
        !matches!(out.status.code(), Some(125..=127)),
        "podman start {flags:?} {argv:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Run {
        container: Some(id),
        ..Run::default()
    }
}

/// A copy of busybox named `nc`: its `process.name` is `nc`, and it is netcat (busybox
/// picks the applet by its own name).
fn nc(s: &Scratch) {
    s.program("/usr/bin/busybox", "nc");
}

const ROWS: &[Row] = &[
    Row {
        rule: "credential_access_sensitive_keys_or_passwords_search_inside_container.toml",
        covers: "container (entry_leader.entry_meta.type): the real grep for private keys, vs \
                 for certificates",
        hit: |_| with_host_usr(&["/usr/bin/grep", "-rl", "BEGIN RSA PRIVATE", "/etc"]),
        miss: |_| with_host_usr(&["/usr/bin/grep", "-rl", "BEGIN CERTIFICATE", "/etc"]),
    },
    Row {
        rule: "execution_file_made_executable_via_chmod_inside_container.toml",
        covers: "container: the real chmod +x on a file in /tmp, vs chmod 644",
        hit: |_| with_host_usr(&["/usr/bin/chmod", "+x", "/tmp/detector-none"]),
        miss: |_| with_host_usr(&["/usr/bin/chmod", "644", "/tmp/detector-none"]),
    },
    Row {
        rule: "privilege_escalation_mount_launched_inside_container.toml",
        covers: "container (entry_leader.entry_meta.type): the real mount, vs on the host",
        hit: |_| with_host_usr(&["/usr/bin/mount"]),
        miss: |_| run(&mut cmd(&["/usr/bin/mount"], Path::new("/"), &[])),
    },
    Row {
        rule: "privilege_escalation_unshare_namespace_manip.toml",
        covers: "container: the real unshare -U, vs unshare --fork --kill-child (excluded)",
        hit: |_| with_host_usr(&["/usr/bin/unshare", "-U", "/bin/true"]),
        miss: |_| with_host_usr(&["/usr/bin/unshare", "--fork", "--kill-child", "/bin/true"]),
    },
    Row {
        rule: "privilege_escalation_nsenter_execution_inside_container.toml",
        covers: "container.id: the real nsenter -t 1 in a container, vs on the host",
        hit: |_| with_host_usr(&["/usr/bin/nsenter", "-t", "1", "-u", "/bin/true"]),
        miss: |_| {
            run(&mut cmd(
                &["/usr/bin/nsenter", "-t", "1", "-u", "/bin/true"],
                Path::new("/"),
                &[],
            ))
        },
    },
    Row {
        rule: "discovery_suspicious_network_tool_launched_inside_container.toml",
        covers: "container: nc (busybox netcat) to a remote port, vs nc -z (excluded)",
        hit: |s| {
            nc(s);
            with_scratch(s, &["/scratch/nc", "-w", "1", "192.0.2.1", "9"])
        },
        miss: |s| {
            nc(s);
            with_scratch(s, &["/scratch/nc", "-z", "-w", "1", "192.0.2.1", "9"])
        },
    },
    Row {
        rule: "discovery_suspicious_network_tool_launched_inside_a_container.toml",
        covers: "container, busybox applet in process.args: /bin/nc, vs /bin/which nc (excluded)",
        hit: |_| plain(&["/bin/nc", "-w", "1", "192.0.2.1", "9"]),
        miss: |_| plain(&["/bin/which", "nc"]),
    },
    Row {
        rule: "privilege_escalation_chroot_execution_detected_inside_container.toml",
        covers: "container, busybox applet in process.args: /bin/chroot, vs /bin/which chroot \
                 (excluded)",
        hit: |_| plain(&["/bin/chroot", "/", "/bin/true"]),
        miss: |_| plain(&["/bin/which", "chroot"]),
    },
    Row {
        rule: "privilege_escalation_mount_launched_inside_a_privileged_container.toml",
        covers: "container.security_context.privileged: busybox mount in a podman \
                 --privileged container, vs in an unprivileged one",
        hit: |_| podman(&["--privileged"], &["/bin/mount"]),
        miss: |_| podman(&[], &["/bin/mount"]),
    },
    Row {
        rule: "privilege_escalation_debugfs_launched_inside_a_privileged_container.toml",
        covers: "container.security_context.privileged: the real debugfs on /dev/sd* in a \
                 podman --privileged container, vs debugfs -R (excluded)",
        hit: |_| {
            podman(
                &["--privileged", "-v", "/usr:/usr:ro"],
                &["/usr/sbin/debugfs", "/dev/sdzz9"],
            )
        },
        miss: |_| {
            podman(
                &["--privileged", "-v", "/usr:/usr:ro"],
                &["/usr/sbin/debugfs", "-R", "stats", "/dev/sdzz9"],
            )
        },
    },
];

#[test]
fn corpus_container_rules_fire_on_real_container_behaviour() {
    if !require(
        "defend_rules_containers::corpus_container_rules_fire_on_real_container_behaviour",
        &[
            Need::Root,
            Need::Corpus(Corpus::ElasticLinux),
            Need::Tool("runc"),
            Need::Tool("podman"),
            Need::Path("/usr/sbin/debugfs"),
            Need::Path("/usr/bin/busybox"),
            Need::Path("/usr/bin/grep"),
            Need::Path("/usr/bin/chmod"),
            Need::Path("/usr/bin/mount"),
            Need::Path("/usr/bin/unshare"),
            Need::Path("/usr/bin/nsenter"),
        ],
    ) {
        return;
    }
    let dir = corpus(Corpus::ElasticLinux);
    let files: Vec<PathBuf> = ROWS.iter().map(|r| dir.join(r.rule)).collect();
    let (_cfg, d) = corpus_rows::start_daemon(&files);
    let mut scratch = Scratch::new();
    let runs: Vec<(Run, Run)> = ROWS
        .iter()
        .map(|r| ((r.hit)(&mut scratch), (r.miss)(&mut scratch)))
        .collect();
    let alerts = corpus_rows::settle_and_stop(d);
    let (hits, failures) = corpus_rows::judge(&dir, ROWS, &runs, &alerts);
    let all: Vec<&serde_json::Value> = alerts.iter().collect();
    assert!(
        failures.is_empty(),
        "{}\nall alerts:\n{}",
        failures.join("\n"),
        corpus_rows::brief(&all)
    );

    // Every hit is its container's, seen as a container by the entry leader too.
    for (row, h) in ROWS.iter().zip(&hits) {
        for a in h {
            assert_eq!(a["event"]["action"], "exec", "{}: {a}", row.rule);
            assert_eq!(
                a["process"]["entry_leader"]["entry_meta"]["type"], "container",
                "{}: {a}",
                row.rule
            );
        }
    }
    let row = |file: &str| ROWS.iter().position(|r| r.rule == file).unwrap();
    let grep =
        hits[row("credential_access_sensitive_keys_or_passwords_search_inside_container.toml")][0];
    assert_eq!(grep["process"]["executable"], "/usr/bin/grep", "{grep}");
    let chroot =
        hits[row("privilege_escalation_chroot_execution_detected_inside_container.toml")][0];
    assert_eq!(chroot["process"]["name"], "busybox", "{chroot}");
    assert_eq!(chroot["process"]["args"][0], "/bin/chroot", "{chroot}");
    let privileged =
        hits[row("privilege_escalation_mount_launched_inside_a_privileged_container.toml")][0];
    assert_eq!(
        privileged["container"]["security_context"]["privileged"], true,
        "{privileged}"
    );
    assert_eq!(privileged["container"]["runtime"], "podman", "{privileged}");
}
