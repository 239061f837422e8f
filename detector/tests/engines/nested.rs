//! A process three cgroup levels below a real container's own cgroup (what systemd inside
//! a container, docker-in-docker or any container making its own sub-cgroups produce)
//! belongs to that container: the test moves a waiting process of a docker container from
//! the host into `/docker/<id>/a/b/c`, then lets it exec `ssh -V`.

use std::time::Duration;

use detector::testsupport::{Need, require};

use crate::common::CgroupGuard;
use crate::engines::{cgroup_of, docker::Dockerd, pids_in_cgroup_with};
use crate::{Checks, settle, unique, wait};

#[test]
fn process_three_levels_below_a_docker_container_alerts_with_its_id() {
    if !require(
        "nested::process_three_levels_below_a_docker_container_alerts_with_its_id",
        &[Need::Root, Need::Tool("dockerd"), Need::Tool("docker")],
    ) {
        return;
    }
    let dockerd = Dockerd::start().unwrap();
    dockerd.import().unwrap();
    let (_config, d) = crate::start_daemon(&dockerd.state_roots());
    let name = unique("nested");
    dockerd
        .run_detached(&name, &[], &["/bin/sleep", "300"])
        .unwrap();
    let want = crate::dockerd::reported(&dockerd, &name);
    let marker = unique("waiter");
    dockerd
        .exec_detached(
            &name,
            &[
                "/bin/sh",
                "-c",
                "while [ ! -e /tmp/go ]; do sleep 0.05; done; exec /usr/bin/ssh -V",
                &marker,
            ],
        )
        .unwrap();
    let container_cg = format!("/docker/{}", want.id);
    let pid = wait::until(
        Duration::from_secs(30),
        "the waiting shell in the container",
        || pids_in_cgroup_with(&container_cg, &marker).first().copied(),
    );
    let nested = CgroupGuard::new(&format!("docker/{}/a/b/c", want.id)).unwrap();
    nested.add(pid).unwrap();
    assert_eq!(
        cgroup_of(pid).as_deref(),
        Some(format!("{container_cg}/a/b/c").as_str()),
        "the waiting shell moved three levels below the container"
    );
    // Release it: the file appears in the container's own /tmp.
    std::fs::write(format!("/proc/{pid}/root/tmp/go"), b"").unwrap();
    let mut checks = Checks::default();
    let got = d.wait_alerts(
        &want.id,
        |a| a.iter().any(|a| a["process"]["pid"] == pid),
        crate::ALERT_BOUND,
    );
    match got.iter().find(|a| a["process"]["pid"] == pid) {
        Some(a) => checks.seed_alert("ssh -V three levels below the container", a, &want),
        None => checks.0.push(format!(
            "no alert for pid {pid} (ssh -V in {container_cg}/a/b/c) with container.id {}; {}",
            want.id,
            crate::ssh_alerts_seen(&d)
        )),
    }
    wait::until(Duration::from_secs(30), "ssh -V to exit", || {
        wait::proc_state(pid).is_none().then_some(())
    });
    settle(&d);
    let s = d.stop();
    drop(nested);
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    checks.finish();
}
