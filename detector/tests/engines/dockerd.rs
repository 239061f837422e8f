//! A private dockerd: `docker run` and `docker exec` of `ssh -V`, a container without ssh,
//! and an sshd accepting a key-authenticated connection from a client in the same
//! container.

use std::process::Command;
use std::time::Duration;

use detector::testsupport::{Need, require};
use serde_json::Value;

use crate::engines::docker::{self, Dockerd};
use crate::{ALERT_BOUND, Checks, Container, assert_ssh_ran, is_hex64, settle, unique, wait};

fn needs() -> [Need; 3] {
    [Need::Root, Need::Tool("dockerd"), Need::Tool("docker")]
}

/// What docker reports about container `name`, as its alerts should say it.
pub(crate) fn reported(dockerd: &Dockerd, name: &str) -> Container {
    let id = dockerd.id_of(name).unwrap();
    assert!(is_hex64(&id), "docker id {id:?}");
    Container {
        id,
        runtime: "docker",
        name: Some(name.to_string()),
        image_name: Some(docker::IMAGE_NAME),
        image_tag: Some(docker::IMAGE_TAG),
        privileged: Some(false),
    }
}

/// `docker run … ssh -V` and `docker exec … ssh -V` each give one alert of the seed rule
/// with the id docker reports, the container's name, image and runtime; `docker run … true`
/// gives none.
#[test]
fn docker_run_and_exec_alert_with_docker_metadata() {
    if !require(
        "dockerd::docker_run_and_exec_alert_with_docker_metadata",
        &needs(),
    ) {
        return;
    }
    let dockerd = Dockerd::start().unwrap();
    dockerd.import().unwrap();
    let (_config, d) = crate::start_daemon(&dockerd.state_roots());

    let run_name = unique("run");
    let out = dockerd
        .run(&run_name, &[], &["/usr/bin/ssh", "-V"])
        .unwrap();
    assert_ssh_ran("docker run", &out);
    let run = reported(&dockerd, &run_name);

    let exec_name = unique("exec");
    dockerd
        .run_detached(&exec_name, &[], &["/bin/sleep", "300"])
        .unwrap();
    let out = dockerd.exec(&exec_name, &["/usr/bin/ssh", "-V"]).unwrap();
    assert_ssh_ran("docker exec", &out);
    let exec = reported(&dockerd, &exec_name);

    let quiet_name = unique("quiet");
    dockerd.run(&quiet_name, &[], &["/bin/true"]).unwrap();
    let quiet = reported(&dockerd, &quiet_name);

    let mut checks = Checks::default();
    let a = crate::wait_alert(&d, &run.id, "ssh");
    checks.expect(&d, "docker run", a.as_ref(), &run);
    let a = crate::wait_alert(&d, &exec.id, "ssh");
    checks.expect(&d, "docker exec", a.as_ref(), &exec);
    settle(&d);
    let s = d.stop();
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    for (what, c, n) in [
        ("docker run", &run, 1),
        ("docker exec", &exec, 1),
        ("docker run true", &quiet, 0),
    ] {
        let got = s.alerts_for(&c.id);
        checks.check(got.len() == n, || {
            format!(
                "{what}: {} alert(s) for {}, want {n}:\n{}",
                got.len(),
                c.id,
                got.iter()
                    .map(|a| crate::brief(a))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    }
    checks.finish();
}

/// An sshd in a container (`--network none`: its own loopback) accepts a key-authenticated
/// connection from an `ssh` run by `docker exec` in the same container: the listener's
/// exec, its fork(s) for the connection and the client each alert with the container's id.
#[test]
fn docker_sshd_accepting_a_connection_alerts_on_its_forks() {
    if !require(
        "dockerd::docker_sshd_accepting_a_connection_alerts_on_its_forks",
        &needs(),
    ) {
        return;
    }
    let keys = tempfile::Builder::new()
        .prefix("detector-keys-")
        .tempdir()
        .unwrap();
    crate::engines::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "detector-test", "-f"])
            .arg(keys.path().join("id")),
        wait::TOOL,
    )
    .unwrap();
    std::fs::copy(
        keys.path().join("id.pub"),
        keys.path().join("authorized_keys"),
    )
    .unwrap();
    let dockerd = Dockerd::start().unwrap();
    dockerd.import().unwrap();
    let (_config, d) = crate::start_daemon(&dockerd.state_roots());

    let name = unique("sshd");
    let mount = format!("{}:/keys:ro", keys.path().display());
    dockerd
        .run_detached(
            &name,
            &["-v", &mount],
            &[
                "/usr/sbin/sshd",
                "-D",
                "-e",
                "-o",
                "AuthorizedKeysFile=/keys/authorized_keys",
            ],
        )
        .unwrap();
    let c = reported(&dockerd, &name);
    let listener = dockerd.pid_of(&name).unwrap();
    // Listening on 127.0.0.1:2222 (0x08AE, state 0A) in the container's network namespace.
    wait::until(
        Duration::from_secs(30),
        "sshd to listen on 127.0.0.1:2222",
        || {
            std::fs::read_to_string(format!("/proc/{listener}/net/tcp"))
                .ok()?
                .contains(":08AE 00000000:0000 0A")
                .then_some(())
        },
    );
    let marker = unique("accepted");
    let out = dockerd
        .exec(
            &name,
            &[
                "/usr/bin/ssh",
                "-i",
                "/keys/id",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
                "-p",
                "2222",
                "root@127.0.0.1",
                "echo",
                &marker,
            ],
        )
        .unwrap_or_else(|e| {
            let log = dockerd
                .cli()
                .args(["logs", &name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            panic!("ssh to the container's sshd: {e}\nsshd log:\n{log}")
        });
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&marker),
        "the connection was not accepted: {out:?}"
    );

    let forked = |a: &[&Value]| {
        a.iter().any(|a| {
            a["event"]["action"] == "fork"
                && a["process"]["name"] == "sshd"
                && a["process"]["parent"]["pid"] == listener
        }) && a.iter().any(|a| a["process"]["name"] == "ssh")
    };
    d.wait_alerts(&c.id, forked, ALERT_BOUND);
    settle(&d);
    let s = d.stop();
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    let got = s.alerts_for(&c.id);
    let all = || {
        got.iter()
            .map(|a| crate::brief(a))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut checks = Checks::default();
    match got
        .iter()
        .find(|a| a["event"]["action"] == "exec" && a["process"]["pid"] == listener)
    {
        Some(a) => checks.seed_alert("sshd listener exec", a, &c),
        None => checks.0.push(format!(
            "no exec alert for the listening sshd (pid {listener}):\n{}",
            all()
        )),
    }
    let forks: Vec<&&Value> = got
        .iter()
        .filter(|a| {
            a["event"]["action"] == "fork"
                && a["process"]["name"] == "sshd"
                && a["process"]["parent"]["pid"] == listener
        })
        .collect();
    checks.check(!forks.is_empty(), || {
        format!(
            "no fork alert of the listening sshd (pid {listener}):\n{}",
            all()
        )
    });
    for f in forks {
        checks.seed_alert("sshd fork for the connection", f, &c);
    }
    let clients: Vec<&&Value> = got
        .iter()
        .filter(|a| a["process"]["name"] == "ssh")
        .collect();
    checks.check(clients.len() == 1, || {
        format!("{} ssh client alerts, want 1:\n{}", clients.len(), all())
    });
    for a in clients {
        checks.seed_alert("ssh client (docker exec)", a, &c);
    }
    checks.finish();
}
