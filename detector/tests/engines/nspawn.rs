//! systemd-nspawn, the real binary, in the cgroup layout of a systemd host
//! (`/machine.slice/machine-NAME.scope/payload`): systemd is not PID 1 here, so the test
//! makes the machine's scope itself (see `common/engines/nspawn.rs`).

use detector::testsupport::{Need, require};

use crate::engines::nspawn::Nspawn;
use crate::{Checks, Container, assert_ssh_ran, settle};

#[test]
fn nspawn_machine_alerts_with_the_machine_name() {
    if !require(
        "nspawn::nspawn_machine_alerts_with_the_machine_name",
        &[Need::Root, Need::Tool("systemd-nspawn")],
    ) {
        return;
    }
    let m = Nspawn::new().unwrap();
    let want = Container {
        id: m.machine.clone(),
        runtime: "systemd-nspawn",
        name: None,
        image_name: None,
        image_tag: None,
        privileged: None,
    };
    let (_config, d) = crate::start_daemon(&Default::default());
    let out = m.run(&["/usr/bin/ssh", "-V"]).unwrap();
    assert_ssh_ran("systemd-nspawn", &out);
    let mut checks = Checks::default();
    let a = crate::wait_alert(&d, &want.id, "ssh");
    checks.expect(&d, "systemd-nspawn", a.as_ref(), &want);
    settle(&d);
    let s = d.stop();
    drop(m);
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    let got = s.alerts_for(&want.id);
    checks.check(got.len() == 1, || {
        format!("systemd-nspawn: {} alerts, want 1", got.len())
    });
    checks.finish();
}
