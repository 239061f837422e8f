//! Entry leaders: the first process of an entry into the system, as in Elastic's session view.
//!
//! The rules follow Elastic's session processor (auditbeat `add_session_metadata`), where
//! the entry leader is decided when a process becomes a session leader and otherwise
//! inherited, plus one rule for containers. In order:
//!
//! 1. Host pid 1 is its own entry leader, type `init`. Kernel threads (pid 2 and its
//!    children) never have one.
//! 2. A process in a pid namespace other than its parent's (or, parent unknown, one whose
//!    pid inside a non-host namespace is 1) enters a container: its own entry leader, type
//!    `container`. This covers a container's init (`runc init` becoming the entrypoint) and
//!    `docker exec`/`kubectl exec`/`runc exec` processes, whose parent is outside. (Our
//!    addition: the kernel tells us the namespace, so we need not guess from names.)
//! 3. A session leader (tgid == sid), decided at exec or seeding:
//!    - on a serial tty (major 4, minor 64–255) → `terminal`;
//!    - `login` on a virtual console (major 4, minor 0–63) or `/dev/console` (5, 1) →
//!      `console`;
//!    - parent is host pid 1 → `init` (services started by the init system);
//!    - unless the process itself is a runtime helper (`runc`, `containerd-shim*`,
//!      `calico-node`, `check-status`, `conmon`), by the parent's executable name:
//!      `ssm-session-worker` with a pty → `ssm`; `sshd` or `sshd-session` (OpenSSH ≥ 9.8),
//!      the process not being one itself → `sshd`; a container runtime (`runc`, `crun`,
//!      `conmon`, `containerd-shim*`) → `container`; `teleport` → `teleport`; `kubelet` →
//!      `kubelet`.
//! 4. Otherwise the entry leader is inherited: from the parent, else from the session
//!    leader, else from the process group leader (Elastic's order). A session leader on a
//!    pty that matches no rule (tmux, screen, a terminal emulator) inherits too.

use super::model::{EntryType, ExecImage};

/// What the rules look at for the subject.
pub struct Subject<'a> {
    pub tgid: u32,
    pub sid: u32,
    pub ppid: u32,
    pub tty: Option<(u32, u32)>,
    pub image: &'a ExecImage,
    pub pid_ns: u64,
    pub ns_pid: u32,
}

/// What the rules look at for the parent, when known.
pub struct Parent<'a> {
    pub image: &'a ExecImage,
    pub pid_ns: u64,
}

/// Whether the subject is a kernel thread (kthreadd or one of its children).
pub fn is_kernel_thread(tgid: u32, ppid: u32) -> bool {
    tgid == 2 || ppid == 2
}

const FILTERED: [&[u8]; 5] = [
    b"runc",
    b"containerd-shim",
    b"calico-node",
    b"check-status",
    b"conmon",
];
const RUNTIMES: [&[u8]; 4] = [b"containerd-shim", b"runc", b"crun", b"conmon"];

fn starts_with_any(name: &[u8], list: &[&[u8]]) -> bool {
    list.iter().any(|p| name.starts_with(p))
}

/// Does the subject start an entry (rules 1–3)? `None`: inherit (rule 4).
pub fn classify(
    s: &Subject<'_>,
    parent: Option<&Parent<'_>>,
    host_pid_ns: u64,
) -> Option<EntryType> {
    if s.tgid == 1 {
        return Some(EntryType::Init);
    }
    if is_kernel_thread(s.tgid, s.ppid) {
        return None;
    }
    let in_container = s.pid_ns != 0 && host_pid_ns != 0 && s.pid_ns != host_pid_ns;
    match parent {
        Some(p) if in_container && p.pid_ns != 0 && p.pid_ns != s.pid_ns => {
            return Some(EntryType::Container);
        }
        None if in_container && s.ns_pid == 1 => return Some(EntryType::Container),
        _ => {}
    }
    if s.tgid != s.sid {
        return None;
    }
    let me = s.image.exe_basename();
    match s.tty {
        Some((4, 64..=255)) => return Some(EntryType::Terminal),
        Some((4, 0..=63)) | Some((5, 1)) if me == b"login" => return Some(EntryType::Console),
        _ => {}
    }
    if s.ppid == 1 {
        return Some(EntryType::Init);
    }
    if starts_with_any(me, &FILTERED) {
        return None;
    }
    let p = parent?;
    let pb = p.image.exe_basename();
    let pts = matches!(s.tty, Some((136..=143, _)));
    match pb {
        b"ssm-session-worker" if pts => Some(EntryType::Ssm),
        b"sshd" | b"sshd-session" if me != b"sshd" && me != b"sshd-session" => {
            Some(EntryType::Sshd)
        }
        b"teleport" => Some(EntryType::Teleport),
        b"kubelet" => Some(EntryType::Kubelet),
        _ if starts_with_any(pb, &RUNTIMES) => Some(EntryType::Container),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(exe: &str) -> ExecImage {
        ExecImage {
            executable: exe.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    #[rustfmt::skip]
    fn rules() {
        const HOST: u64 = 100;
        let bash = img("/usr/bin/bash");
        let sshd = img("/usr/sbin/sshd");
        let login = img("/usr/bin/login");
        let runc = img("/usr/sbin/runc");
        let systemd = img("/usr/lib/systemd/systemd");
        let sshd_session = img("/usr/lib/openssh/sshd-session");
        let tmux = img("/usr/bin/tmux");
        let kubelet = img("/usr/bin/kubelet");
        let shim = img("/usr/bin/containerd-shim-runc-v2");
        let ssm = img("/usr/bin/ssm-session-worker");
        let sub = |tgid, sid, ppid, tty, image, pid_ns, ns_pid| Subject { tgid, sid, ppid, tty, image, pid_ns, ns_pid };
        let par = |image, pid_ns| Parent { image, pid_ns };
        use EntryType::*;
        let pts = Some((136, 2));
        // (what, subject, parent, expected)
        let table: Vec<(&str, Subject, Option<Parent>, Option<EntryType>)> = vec![
            ("pid 1", sub(1, 1, 0, None, &systemd, HOST, 1), None, Some(Init)),
            ("kernel thread", sub(40, 0, 2, None, &bash, HOST, 40), None, None),
            ("container init", sub(50, 50, 40, None, &bash, 7, 1), Some(par(&runc, HOST)), Some(Container)),
            ("container init, parent unknown", sub(50, 9, 40, None, &bash, 7, 1), None, Some(Container)),
            ("docker exec", sub(51, 9, 40, None, &bash, 7, 12), Some(par(&runc, HOST)), Some(Container)),
            ("child inside container", sub(52, 50, 50, None, &bash, 7, 2), Some(par(&bash, 7)), None),
            ("ssh login shell", sub(60, 60, 59, pts, &bash, HOST, 60), Some(par(&sshd, HOST)), Some(Sshd)),
            ("ssh command", sub(60, 60, 59, None, &bash, HOST, 60), Some(par(&sshd_session, HOST)), Some(Sshd)),
            ("sshd child sshd", sub(61, 61, 59, None, &sshd, HOST, 61), Some(par(&sshd, HOST)), None),
            ("login on VT", sub(70, 70, 1, Some((4, 1)), &login, HOST, 70), Some(par(&systemd, HOST)), Some(Console)),
            ("login on console", sub(71, 71, 1, Some((5, 1)), &login, HOST, 71), Some(par(&systemd, HOST)), Some(Console)),
            ("login on serial", sub(72, 72, 1, Some((4, 64)), &login, HOST, 72), Some(par(&systemd, HOST)), Some(Terminal)),
            ("shell on VT, not login", sub(73, 73, 70, Some((4, 1)), &bash, HOST, 73), Some(par(&login, HOST)), None),
            ("service", sub(80, 80, 1, None, &sshd, HOST, 80), Some(par(&systemd, HOST)), Some(Init)),
            ("tmux pane inherits", sub(90, 90, 89, Some((136, 5)), &bash, HOST, 90), Some(par(&tmux, HOST)), None),
            ("setsid daemon, no tty", sub(91, 91, 89, None, &bash, HOST, 91), Some(par(&bash, HOST)), None),
            ("not a session leader", sub(92, 90, 90, Some((136, 5)), &bash, HOST, 92), Some(par(&bash, HOST)), None),
            ("kubelet child", sub(93, 93, 20, None, &bash, HOST, 93), Some(par(&kubelet, HOST)), Some(Kubelet)),
            ("shim child", sub(94, 94, 20, None, &bash, HOST, 94), Some(par(&shim, HOST)), Some(Container)),
            ("runc as session leader", sub(96, 96, 20, None, &runc, HOST, 96), Some(par(&shim, HOST)), None),
            ("ssm", sub(95, 95, 20, Some((136, 1)), &bash, HOST, 95), Some(par(&ssm, HOST)), Some(Ssm)),
            ("ssm without pty", sub(97, 97, 20, None, &bash, HOST, 97), Some(par(&ssm, HOST)), None),
            ("session leader, parent unknown", sub(98, 98, 20, pts, &bash, HOST, 98), None, None),
        ];
        for (what, s, p, want) in table {
            assert_eq!(classify(&s, p.as_ref(), HOST), want, "{what}");
        }
    }
}
