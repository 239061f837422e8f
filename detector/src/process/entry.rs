//! Entry leaders: the first process of an entry into the system, as in Elastic's session view.
//!
//! Rules, in order (modelled on Elastic's session-view semantics, where the entry leader is
//! decided when a process becomes a session leader and otherwise inherited):
//!
//! 1. Host pid 1 is its own entry leader, type `init`.
//! 2. A process in a pid namespace other than its parent's (or, parent unknown, one whose
//!    pid inside a non-host namespace is 1) enters a container: its own entry leader, type
//!    `container`. This covers a container's init (`runc init` becoming the entrypoint) and
//!    `docker exec`/`kubectl exec`/`runc exec` processes, whose parent is outside.
//! 3. A session leader (tgid == sid), decided at exec or seeding:
//!    - on a virtual console (`/dev/ttyN`, major 4) → `terminal`; on `/dev/console`
//!      (major 5 minor 1) run by `login` → `console`;
//!    - parent's executable `sshd` / `sshd-session` (and the process is not sshd itself) →
//!      `sshd`; `ssm-session-worker` → `ssm`; `teleport` → `teleport`; `kubelet` →
//!      `kubelet`; a container runtime shim (`runc`, `crun`, `conmon`, `containerd-shim*`)
//!      → `container`;
//!    - parent is host pid 1 → `init` (services started by the init system);
//!    - any other controlling terminal (a pty: tmux, screen, terminal emulators) → `terminal`.
//! 4. Otherwise the entry leader is inherited from the parent at fork (and kept across
//!    exec). A process whose ancestry is unknown has none.
//!
//! Shells, `login`, `su` and `sudo` as the *parent* never start a new entry: they carry the
//! entry they were started in.

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

/// Does the subject start an entry (rules 1–3)? `None`: inherit (rule 4).
pub fn classify(
    s: &Subject<'_>,
    parent: Option<&Parent<'_>>,
    host_pid_ns: u64,
) -> Option<EntryType> {
    if s.tgid == 1 {
        return Some(EntryType::Init);
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
        Some((4, minor)) if minor < 64 => return Some(EntryType::Terminal),
        Some((5, 1)) if me == b"login" => return Some(EntryType::Console),
        _ => {}
    }
    if let Some(p) = parent {
        let pb = p.image.exe_basename();
        let t = match pb {
            b"sshd" | b"sshd-session" if me != b"sshd" && me != b"sshd-session" => {
                Some(EntryType::Sshd)
            }
            b"ssm-session-worker" => Some(EntryType::Ssm),
            b"teleport" => Some(EntryType::Teleport),
            b"kubelet" => Some(EntryType::Kubelet),
            b"runc" | b"crun" | b"conmon" => Some(EntryType::Container),
            _ if pb.starts_with(b"containerd-shim") => Some(EntryType::Container),
            _ => None,
        };
        if t.is_some() {
            return t;
        }
    }
    if s.ppid == 1 {
        return Some(EntryType::Init);
    }
    if s.tty.is_some() {
        return Some(EntryType::Terminal);
    }
    None
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
        let sub = |tgid, sid, ppid, tty, image, pid_ns, ns_pid| Subject {
            tgid,
            sid,
            ppid,
            tty,
            image,
            pid_ns,
            ns_pid,
        };
        let par = |image, pid_ns| Parent { image, pid_ns };
        use EntryType::*;
        let table: Vec<(&str, Subject, Option<Parent>, Option<EntryType>)> = vec![
            (
                "pid 1",
                sub(1, 1, 0, None, &systemd, HOST, 1),
                None,
                Some(Init),
            ),
            (
                "container init",
                sub(50, 50, 40, None, &bash, 7, 1),
                Some(par(&runc, HOST)),
                Some(Container),
            ),
            (
                "container init, parent unknown",
                sub(50, 9, 40, None, &bash, 7, 1),
                None,
                Some(Container),
            ),
            (
                "docker exec",
                sub(51, 9, 40, None, &bash, 7, 12),
                Some(par(&runc, HOST)),
                Some(Container),
            ),
            (
                "child inside container",
                sub(52, 50, 50, None, &bash, 7, 2),
                Some(par(&bash, 7)),
                None,
            ),
            (
                "ssh login shell",
                sub(60, 60, 59, Some((136, 2)), &bash, HOST, 60),
                Some(par(&sshd, HOST)),
                Some(Sshd),
            ),
            (
                "ssh command",
                sub(60, 60, 59, None, &bash, HOST, 60),
                Some(par(&sshd_session, HOST)),
                Some(Sshd),
            ),
            (
                "sshd child sshd",
                sub(61, 61, 59, None, &sshd, HOST, 61),
                Some(par(&sshd, HOST)),
                None,
            ),
            (
                "getty login on VT",
                sub(70, 70, 1, Some((4, 1)), &login, HOST, 70),
                Some(par(&systemd, HOST)),
                Some(Terminal),
            ),
            (
                "login on console",
                sub(71, 71, 1, Some((5, 1)), &login, HOST, 71),
                Some(par(&systemd, HOST)),
                Some(Console),
            ),
            (
                "service",
                sub(80, 80, 1, None, &sshd, HOST, 80),
                Some(par(&systemd, HOST)),
                Some(Init),
            ),
            (
                "tmux pane",
                sub(90, 90, 89, Some((136, 5)), &bash, HOST, 90),
                Some(par(&tmux, HOST)),
                Some(Terminal),
            ),
            (
                "setsid daemon, no tty",
                sub(91, 91, 89, None, &bash, HOST, 91),
                Some(par(&bash, HOST)),
                None,
            ),
            (
                "not a session leader",
                sub(92, 90, 90, Some((136, 5)), &bash, HOST, 92),
                Some(par(&bash, HOST)),
                None,
            ),
            (
                "kubelet child",
                sub(93, 93, 20, None, &bash, HOST, 93),
                Some(par(&kubelet, HOST)),
                Some(Kubelet),
            ),
            (
                "shim child",
                sub(94, 94, 20, None, &bash, HOST, 94),
                Some(par(&shim, HOST)),
                Some(Container),
            ),
            (
                "ssm",
                sub(95, 95, 20, Some((136, 1)), &bash, HOST, 95),
                Some(par(&ssm, HOST)),
                Some(Ssm),
            ),
        ];
        for (what, s, p, want) in table {
            assert_eq!(classify(&s, p.as_ref(), HOST), want, "{what}");
        }
    }
}
