//! LXC: a busybox system container (no network) whose init runs `ssh -V` at start
//! (`lxc-start`), and `lxc-attach -- ssh -V` into it. LXC containers have no id besides
//! their name: the daemon reports container.id = the container's name, runtime lxc.

use detector::testsupport::{Need, require};

use crate::engines::lxc::LxcContainer;
use crate::{Checks, Container, assert_ssh_ran, settle};

#[test]
fn lxc_start_and_lxc_attach_alert_with_the_container_name() {
    if !require(
        "lxc::lxc_start_and_lxc_attach_alert_with_the_container_name",
        &[
            Need::Root,
            Need::Tool("lxc-create"),
            Need::Tool("lxc-start"),
            Need::Tool("lxc-attach"),
            Need::Path("/usr/share/lxc/templates/lxc-busybox"),
        ],
    ) {
        return;
    }
    let c = LxcContainer::create(Some("/usr/bin/ssh -V")).unwrap();
    let want = Container {
        id: c.name.clone(),
        runtime: "lxc",
        name: Some(c.name.clone()),
        image_name: None,
        image_tag: None,
        privileged: None,
    };
    let (_config, d) = crate::start_daemon(&Default::default());
    let init = c.start().unwrap();
    let mut checks = Checks::default();
    // The init's own `ssh -V` (a child of the container's init).
    let by_init = d.wait_alerts(
        &want.id,
        |a| a.iter().any(|a| a["process"]["parent"]["pid"] == init),
        crate::ALERT_BOUND,
    );
    match by_init
        .iter()
        .find(|a| a["process"]["parent"]["pid"] == init)
    {
        Some(a) => checks.seed_alert("lxc-start (init runs ssh -V)", a, &want),
        None => checks.0.push(format!(
            "lxc-start: no alert for the ssh -V of init (pid {init}) with container.id {}; {}",
            want.id,
            crate::ssh_alerts_seen(&d)
        )),
    }
    let out = c.attach(&["/usr/bin/ssh", "-V"]).unwrap();
    assert_ssh_ran("lxc-attach", &out);
    let attached = d.wait_alerts(
        &want.id,
        |a| a.iter().any(|a| a["process"]["parent"]["pid"] != init),
        crate::ALERT_BOUND,
    );
    match attached
        .iter()
        .find(|a| a["process"]["parent"]["pid"] != init)
    {
        Some(a) => checks.seed_alert("lxc-attach -- ssh -V", a, &want),
        None => checks.0.push(format!(
            "lxc-attach: no alert with container.id {}; {}",
            want.id,
            crate::ssh_alerts_seen(&d)
        )),
    }
    settle(&d);
    let s = d.stop();
    drop(c);
    assert!(s.status.success(), "daemon exit: {:?}", s.status);
    let got = s.alerts_for(&want.id);
    checks.check(got.len() == 2, || {
        format!(
            "{} alerts for LXC container {}, want 2 (init's ssh, attach's ssh):\n{}",
            got.len(),
            want.id,
            got.iter()
                .map(|a| crate::brief(a))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    checks.finish();
}
