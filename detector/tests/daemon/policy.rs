//! Exceptions and suppression, configured in a copy of the shipped config.

use std::time::Duration;

use crate::daemon::{Daemon, Opts, SSH_RULE_ID, config_file};
use crate::{Need, assert_ecs, assert_ssh_rule, brief, docker_path, require, runc_run};

const WINDOW_SECS: u64 = 4;

/// `ssh -V` `n` times in one container: `n` identical matches (same rule, container,
/// executable).
fn ssh_times(n: usize) -> String {
    format!("for i in $(seq {n}); do /usr/bin/ssh -V 2>/dev/null; done")
}

#[test]
fn exceptions_and_suppression_work_as_configured() {
    if !require(
        "policy::exceptions_and_suppression_work_as_configured",
        &[Need::Root, Need::Tool("runc")],
    ) {
        return;
    }
    let (excepted_path, excepted) = docker_path();
    let (_dir, config) = config_file(|t| {
        let t = t.replace(
            "\nsuppression_window_secs = 60\n",
            &format!("\nsuppression_window_secs = {WINDOW_SECS}\n"),
        );
        assert!(t.contains(&format!("suppression_window_secs = {WINDOW_SECS}")));
        format!(
            "{t}\n[[exceptions]]\nrule_id = \"{SSH_RULE_ID}\"\ncontainer_id = \"{excepted}\"\ncomment = \"e2e test\"\n"
        )
    });
    let d = Daemon::start_with(Opts {
        config: Some(config),
        ..Opts::default()
    });

    // The excepted container: 2 matches, no alert. Another: 1 match, 1 alert, no follow-up.
    runc_run(&["/bin/sh", "-c", &ssh_times(2)], &excepted_path);
    let (once_path, once) = docker_path();
    runc_run(&["/usr/bin/ssh", "-V"], &once_path);

    // N identical matches: one alert at once, one follow-up with the count when the window
    // closes (while the daemon runs).
    const N: usize = 5;
    let (burst_path, burst) = docker_path();
    runc_run(&["/bin/sh", "-c", &ssh_times(N)], &burst_path);
    let first = d.wait_alerts(&burst, |a| !a.is_empty(), Duration::from_secs(10));
    assert_eq!(
        first.len(),
        1,
        "{}",
        brief(&first.iter().collect::<Vec<_>>())
    );
    assert!(
        first[0]["detector"]["alert"]["suppressed_count"].is_null(),
        "{}",
        first[0]
    );
    let both = d.wait_alerts(
        &burst,
        |a| a.len() >= 2,
        Duration::from_secs(WINDOW_SECS + 5),
    );
    assert_eq!(both.len(), 2, "no follow-up alert after the window closed");
    assert_eq!(
        both[1]["detector"]["alert"]["suppressed_count"],
        (N - 1) as u64,
        "{}",
        both[1]
    );

    // A burst still inside its window at SIGTERM: its follow-up is written at exit.
    const M: usize = 3;
    let (late_path, late) = docker_path();
    runc_run(&["/bin/sh", "-c", &ssh_times(M)], &late_path);
    d.wait_alerts(&late, |a| !a.is_empty(), Duration::from_secs(10));
    let s = d.stop();
    assert!(s.status.success());

    assert_eq!(
        s.alerts_for(&excepted).len(),
        0,
        "{}",
        brief(&s.alerts_for(&excepted))
    );
    assert_eq!(s.final_stats["excepted"], 2, "{}", s.final_stats);
    let once_alerts = s.alerts_for(&once);
    assert_eq!(once_alerts.len(), 1, "{}", brief(&once_alerts));
    assert!(once_alerts[0]["detector"]["alert"]["suppressed_count"].is_null());
    let burst_alerts = s.alerts_for(&burst);
    assert_eq!(burst_alerts.len(), 2, "{}", brief(&burst_alerts));
    let late_alerts = s.alerts_for(&late);
    assert_eq!(late_alerts.len(), 2, "{}", brief(&late_alerts));
    assert_eq!(
        late_alerts[1]["detector"]["alert"]["suppressed_count"],
        (M - 1) as u64
    );
    for a in burst_alerts.iter().chain(&late_alerts).chain(&once_alerts) {
        assert_ssh_rule(a);
        assert_eq!(a["process"]["executable"], "/usr/bin/ssh");
    }
    assert!(
        s.final_stats["suppressed"].as_u64().unwrap() >= (N - 1 + M - 1) as u64,
        "{}",
        s.final_stats
    );
    assert_ecs(&s.docs);
}
