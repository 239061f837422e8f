//! Fully populated documents for tests and benchmarks: every field our document types can
//! carry has a value, so serializing them exercises every path.
#![allow(dead_code)]

use detector::ecs::*;
use detector::rules::meta::{RuleMeta, Severity, Technique, Threat as MetaThreat, ThreatRef};

fn idn(id: u32, name: &str) -> Option<IdName> {
    Some(IdName {
        id: Some(id.to_string()),
        name: Some(name.into()),
    })
}

/// A `ProcessCore` with every field set.
/// A `*.thread` with a comm and capability sets.
pub fn thread(comm: &str) -> Thread {
    Thread {
        name: Some(comm.into()),
        capabilities: Some(Capabilities {
            effective: vec!["CAP_CHOWN".into(), "CAP_SYS_ADMIN".into()],
            permitted: vec!["CAP_SYS_ADMIN".into()],
        }),
    }
}

pub fn core(pid: u32, name: &str, args: &[&str]) -> ProcessCore {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    ProcessCore {
        pid: Some(pid),
        vpid: Some(pid % 100 + 1),
        entity_id: Some(format!("entity-{pid}")),
        name: Some(name.into()),
        executable: Some(format!("/usr/bin/{name}")),
        args_count: Some(args.len() as u64),
        command_line: Some(command_line(&args)),
        args,
        start: Some("2026-11-27T20:00:00.123456789Z".into()),
        working_directory: Some("/root".into()),
        interactive: Some(true),
        tty: Some(Tty {
            char_device: Some(CharDevice {
                major: Some(136),
                minor: Some(3),
            }),
        }),
        user: idn(0, "root"),
        group: idn(0, "root"),
        real_user: idn(1000, "alice"),
        real_group: idn(1000, "alice"),
        saved_user: idn(0, "root"),
        saved_group: idn(0, "root"),
    }
}

fn pref(pid: u32) -> ProcessRef {
    ProcessRef {
        entity_id: Some(format!("entity-{pid}")),
        pid: Some(pid),
        vpid: Some(1),
        start: Some("2026-11-27T19:00:00Z".into()),
    }
}

fn leader_parent(pid: u32) -> LeaderParent {
    let r = pref(pid);
    LeaderParent {
        entity_id: r.entity_id,
        pid: r.pid,
        vpid: r.vpid,
        start: r.start,
        session_leader: Some(pref(pid - 1)),
    }
}

/// A process event with every field of [`EcsDocument`] populated (alert-only fields too,
/// except `rule`/`threat`, which [`full_alert`] adds).
pub fn full_event() -> EcsDocument {
    let mut doc = EcsDocument::process_event("exec", "start");
    doc.timestamp = Some("2026-11-27T20:00:01.000000001Z".into());
    let ev = doc.event.as_mut().unwrap();
    ev.id = Some("event-1".into());
    ev.created = Some("2026-11-27T20:00:01.5Z".into());
    ev.sequence = Some(12345);
    ev.severity = Some(47);
    ev.risk_score = Some(47.0);
    doc.process = Some(Process {
        core: core(
            4242,
            "ssh",
            &["ssh", "-V", "bad\u{fffd}utf8", "quote\"nl\n"],
        ),
        thread: Some(thread("ssh")),
        env_vars: vec!["LD_PRELOAD=/tmp/x.so".into(), "HISTFILE=/dev/null".into()],
        end: Some("2026-11-27T20:00:02Z".into()),
        exit_code: Some(255),
        parent: Some(Parent {
            core: core(4200, "bash", &["bash", "-i"]),
            thread: Some(thread("bash")),
            end: Some("2026-11-27T20:00:03Z".into()),
            exit_code: Some(0),
            group_leader: Some(pref(4200)),
        }),
        group_leader: Some(GroupLeader {
            core: core(4242, "ssh", &["ssh"]),
            same_as_process: Some(true),
        }),
        session_leader: Some(SessionLeader {
            core: core(4100, "bash", &["bash"]),
            same_as_process: Some(false),
            parent: Some(leader_parent(4000)),
        }),
        entry_leader: Some(EntryLeader {
            core: core(4000, "sshd", &["sshd: alice [priv]"]),
            same_as_process: Some(false),
            parent: Some(leader_parent(999)),
            entry_meta: Some(EntryMeta {
                r#type: Some("sshd".into()),
                source: Some(EntryMetaSource {
                    ip: Some("192.0.2.7".into()),
                }),
            }),
        }),
        previous: Some(Previous {
            executable: Some("/bin/sh".into()),
            args: vec!["sh".into(), "-c".into(), "ssh -V".into()],
            args_count: Some(3),
        }),
    });
    doc.user = Some(User {
        id: Some("0".into()),
        name: Some("root".into()),
        group: idn(0, "root"),
        ext: Some(IdExt {
            real: idn(1000, "alice"),
        }),
    });
    doc.group = Some(Group {
        id: Some("0".into()),
        name: Some("root".into()),
        ext: Some(IdExt {
            real: idn(1000, "alice"),
        }),
    });
    doc.container = Some(Shared::new(Container {
        id: Some("0123456789abcdef".repeat(4)),
        runtime: Some("containerd".into()),
        name: Some("web".into()),
        image: Some(ContainerImage {
            name: Some("registry.example/web".into()),
            tag: vec!["1.2.3".into()],
        }),
        security_context: Some(ContainerSecurityContext {
            privileged: Some(false),
        }),
    }));
    doc.orchestrator = Some(Shared::new(Orchestrator {
        r#type: Some("kubernetes".into()),
        namespace: Some("default".into()),
        resource: Some(OrchestratorResource {
            name: Some("web-5d8f".into()),
            r#type: Some("pod".into()),
        }),
        cluster: Some(OrchestratorCluster {
            name: Some("prod-eu".into()),
        }),
    }));
    doc.host = Some(Shared::new(Host {
        hostname: Some("node-1".into()),
        name: Some("node-1".into()),
        id: Some("4c4c4544004d3510".into()),
        architecture: Some("x86_64".into()),
        boot: Some(HostBoot {
            id: Some("a9d4f0e2-0000-4000-8000-000000000001".into()),
        }),
        os: Some(Os {
            r#type: Some("linux".into()),
            family: Some("debian".into()),
            name: Some("Debian GNU/Linux".into()),
            version: Some("12".into()),
            kernel: Some("6.18.0".into()),
            full: Some("Debian GNU/Linux 12 (bookworm)".into()),
            platform: Some("debian".into()),
        }),
        pid_ns_ino: Some("4026531836".into()),
    }));
    doc.agent = Some(Shared::new(Agent {
        id: Some("agent-1".into()),
        name: Some("detector".into()),
        r#type: Some("detector".into()),
        version: Some("0.1.0".into()),
    }));
    doc.message = Some("message".into());
    doc.tags = vec!["tag".into()];
    doc.detector = Some(Detector {
        process: Some(DetectorProcess {
            args_truncated: Some(true),
            exe_path_partial: Some(false),
            mnt_ns_ino: Some(4026531841),
            working_directory_partial: Some(true),
            env_vars_truncated: Some(true),
        }),
        cgroup: Some(DetectorCgroup {
            id: Some(1234),
            path: Some("/kubepods/besteffort/podx/0123".into()),
        }),
        startup_scan: Some(false),
        event: Some(DetectorEvent {
            boot_ns: Some(123_456_789_000),
        }),
        loss: Some(DetectorLoss {
            kernel_lost: Some(3),
            kernel_lost_total: Some(10),
            malformed: Some(1),
            alerts_dropped: Some(2),
            sequence_events_late: Some(4),
            sequences_evicted: Some(5),
        }),
        alert: Some(DetectorAlert {
            suppressed_count: Some(2),
        }),
    });
    doc
}

fn tref(id: &str, kind: &str) -> ThreatRef {
    ThreatRef {
        id: id.into(),
        name: format!("{kind} {id}"),
        reference: format!("https://attack.example/{kind}/{id}/"),
    }
}

/// Rule metadata with every key set, written for these tests.
pub fn full_rule_meta() -> RuleMeta {
    RuleMeta {
        rule_id: "5f0b8f2e-1c1d-4c2a-9a77-0d7c2b1e9f10".into(),
        name: "Test: remote shell client inside a container".into(),
        description: "Fires on ssh started inside a container (test rule).".into(),
        severity: Severity::Critical,
        risk_score: 99,
        references: vec!["https://example.invalid/ref1".into()],
        author: vec!["detector tests".into()],
        license: Some("MIT".into()),
        tags: vec![
            "Domain: Container".into(),
            "Tactic: Lateral Movement".into(),
        ],
        version: Some(2),
        threat: vec![MetaThreat {
            framework: "MITRE ATT&CK".into(),
            tactic: tref("TA0008", "tactic"),
            technique: vec![Technique {
                id: "T1021".into(),
                name: "technique T1021".into(),
                reference: "https://attack.example/technique/T1021/".into(),
                subtechnique: vec![tref("T1021.004", "subtechnique")],
            }],
        }],
    }
}

/// The alert of [`full_rule_meta`] on [`full_event`]: every field populated.
pub fn full_alert() -> EcsDocument {
    let mut doc = detector::alert::AlertTemplate::new(&full_rule_meta())
        .alert_with_suppressed(&full_event(), 3);
    // The alert builder leaves `rule.category` empty (rules carry no such key): set it here
    // so the fixture covers the field.
    doc.rule.as_mut().unwrap().make_mut().category = Some("Threat Detection".into());
    doc
}
