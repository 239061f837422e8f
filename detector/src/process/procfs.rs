//! Parsers for `/proc/<pid>/{stat,status,cmdline,cgroup}` and a reader that gathers one
//! process, for seeding the table with processes that began before the daemon.
//!
//! All of it is hostile input: `comm` may hold spaces, parentheses and any byte, so `stat`
//! is split at the LAST `)`; no parser panics or trusts UTF-8.

use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The fields of `/proc/<pid>/stat` the model needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub comm: Vec<u8>,
    pub state: u8,
    pub ppid: u32,
    pub pgid: u32,
    pub sid: u32,
    /// Controlling terminal `(major, minor)`, `None` without one.
    pub tty: Option<(u32, u32)>,
    /// Field 22: start time in clock ticks since boot.
    pub start_ticks: u64,
}

/// Why a `/proc` text did not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("stat: no `(comm)` brackets")]
    NoComm,
    #[error("stat: field {0} missing or not a number")]
    Field(usize),
}

/// Decode the kernel's `tty_nr` encoding.
pub fn decode_tty_nr(tty_nr: u64) -> Option<(u32, u32)> {
    if tty_nr == 0 {
        return None;
    }
    let major = ((tty_nr >> 8) & 0xfff) as u32;
    let minor = ((tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00)) as u32;
    Some((major, minor))
}

/// Parse `/proc/<pid>/stat`.
pub fn parse_stat(buf: &[u8]) -> Result<Stat, ParseError> {
    let open = buf
        .iter()
        .position(|&b| b == b'(')
        .ok_or(ParseError::NoComm)?;
    let close = buf
        .iter()
        .rposition(|&b| b == b')')
        .ok_or(ParseError::NoComm)?;
    if close < open {
        return Err(ParseError::NoComm);
    }
    let pid = std::str::from_utf8(&buf[..open])
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(ParseError::Field(1))?;
    let comm = buf[open + 1..close].to_vec();
    let rest = std::str::from_utf8(&buf[close + 1..]).map_err(|_| ParseError::Field(3))?;
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // fields[0] is stat field 3.
    let num = |field: usize| -> Result<u64, ParseError> {
        fields
            .get(field - 3)
            .and_then(|f| f.parse::<i64>().ok())
            .map(|v| v as u64)
            .ok_or(ParseError::Field(field))
    };
    let state = fields
        .first()
        .and_then(|s| s.bytes().next())
        .ok_or(ParseError::Field(3))?;
    Ok(Stat {
        pid,
        comm,
        state,
        ppid: num(4)? as u32,
        pgid: num(5)? as u32,
        sid: num(6)? as u32,
        tty: decode_tty_nr(num(7)? & 0xffff_ffff),
        start_ticks: num(22)?,
    })
}

/// The fields of `/proc/<pid>/status` the model needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Real, effective, saved, filesystem.
    pub uids: [u32; 4],
    pub gids: [u32; 4],
    /// Last value of `NSpid`: the pid in the process's own pid namespace.
    pub ns_pid: Option<u32>,
    /// `Tgid` (to spot a thread id passed as a pid).
    pub tgid: Option<u32>,
    /// `CapEff` and `CapPrm` (hex bit sets), when listed.
    pub cap_eff: Option<u64>,
    pub cap_prm: Option<u64>,
}

/// Parse `/proc/<pid>/status`; unknown or malformed lines are skipped.
pub fn parse_status(buf: &[u8]) -> Status {
    let mut s = Status::default();
    for line in buf.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, val) = (&line[..colon], &line[colon + 1..]);
        let nums = || {
            std::str::from_utf8(val)
                .unwrap_or("")
                .split_ascii_whitespace()
                .filter_map(|v| v.parse::<u32>().ok())
        };
        match key {
            b"Uid" => nums().take(4).enumerate().for_each(|(i, v)| s.uids[i] = v),
            b"Gid" => nums().take(4).enumerate().for_each(|(i, v)| s.gids[i] = v),
            b"NSpid" => s.ns_pid = nums().next_back(),
            b"Tgid" => s.tgid = nums().next(),
            b"CapEff" | b"CapPrm" => {
                let v = std::str::from_utf8(val)
                    .ok()
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
                if key == b"CapEff" {
                    s.cap_eff = v;
                } else {
                    s.cap_prm = v;
                }
            }
            _ => {}
        }
    }
    s
}

/// Split `/proc/<pid>/cmdline` (NUL-terminated arguments) into argv.
pub fn parse_cmdline(buf: &[u8]) -> Vec<Vec<u8>> {
    let buf = buf.strip_suffix(b"\0").unwrap_or(buf);
    if buf.is_empty() {
        return Vec::new();
    }
    buf.split(|&b| b == 0).map(<[u8]>::to_vec).collect()
}

/// The cgroup v2 path from `/proc/<pid>/cgroup` (the `0::` line).
pub fn parse_cgroup(buf: &[u8]) -> Option<Vec<u8>> {
    buf.split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"0::"))
        .map(<[u8]>::to_vec)
}

/// `pid:[4026531836]` → 4026531836.
pub fn parse_ns_link(target: &[u8]) -> Option<u64> {
    let open = target.iter().position(|&b| b == b'[')?;
    let inner = target[open + 1..].strip_suffix(b"]")?;
    std::str::from_utf8(inner).ok()?.parse().ok()
}

/// Bound on what we read of a `/proc` file (argv can be megabytes).
pub const MAX_PROC_FILE: usize = 256 << 10;

fn read_capped(path: &Path) -> io::Result<(Vec<u8>, bool)> {
    let f = fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(MAX_PROC_FILE as u64 + 1).read_to_end(&mut buf)?;
    let truncated = buf.len() > MAX_PROC_FILE;
    buf.truncate(MAX_PROC_FILE);
    Ok((buf, truncated))
}

/// One process as read from `/proc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    pub stat: Stat,
    pub status: Status,
    pub args: Vec<Vec<u8>>,
    pub args_truncated: bool,
    /// `readlink exe`; empty for kernel threads or when unreadable.
    pub exe: Vec<u8>,
    /// `readlink cwd`; empty when unreadable.
    pub cwd: Vec<u8>,
    /// The first [`detector_common::ENV_MAX`] bytes of `environ` (what the kernel captures
    /// of an exec), and whether there was more.
    pub environ: Vec<u8>,
    pub environ_truncated: bool,
    pub cgroup_path: Option<Vec<u8>>,
    pub pid_ns: Option<u64>,
    pub mnt_ns: Option<u64>,
}

/// Read `<proc_root>/<pid>`. Fails only when `stat` cannot be read or parsed (the process is
/// gone or the tree is foreign); every other file is optional.
pub fn read_process(proc_root: &Path, pid: u32) -> io::Result<ProcEntry> {
    let dir = proc_root.join(pid.to_string());
    let (stat_buf, _) = read_capped(&dir.join("stat"))?;
    let stat = parse_stat(&stat_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let status = read_capped(&dir.join("status"))
        .map(|(b, _)| parse_status(&b))
        .unwrap_or_default();
    let (args, args_truncated) = read_capped(&dir.join("cmdline"))
        .map(|(b, t)| (parse_cmdline(&b), t))
        .unwrap_or_default();
    let exe = fs::read_link(dir.join("exe"))
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    // A deleted executable reads as "/path (deleted)": keep it, it is what the kernel says.
    let cwd = fs::read_link(dir.join("cwd"))
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    let (mut environ, mut environ_truncated) =
        read_capped(&dir.join("environ")).unwrap_or_default();
    if environ.len() > detector_common::ENV_MAX {
        environ.truncate(detector_common::ENV_MAX);
        environ_truncated = true;
    }
    let cgroup_path = read_capped(&dir.join("cgroup"))
        .ok()
        .and_then(|(b, _)| parse_cgroup(&b));
    let ns = |name: &str| {
        let p = dir.join("ns").join(name);
        fs::read_link(&p)
            .ok()
            .and_then(|t| parse_ns_link(t.as_os_str().as_bytes()))
            .or_else(|| fs::metadata(&p).ok().map(|m| m.ino()))
    };
    Ok(ProcEntry {
        pid_ns: ns("pid"),
        mnt_ns: ns("mnt"),
        stat,
        status,
        args,
        args_truncated,
        exe,
        cwd,
        environ,
        environ_truncated,
        cgroup_path,
    })
}

/// The numeric directory names of `proc_root`: every tgid.
pub fn list_pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = fs::read_dir(proc_root)?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Clock ticks per second (`USER_HZ`), the unit of `stat` field 22.
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_TAIL: &str =
        "S 1 2 3 34816 4 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100 18446744073709551615";

    #[test]
    fn stat_hostile_comm() {
        let table: &[(&[u8], &[u8])] = &[
            (b"42 (bash) ", b"bash"),
            (b"42 (a) b (c) ", b"a) b (c"),
            (b"42 ()) ", b")"),
            (b"42 (x y z) ", b"x y z"),
            (b"42 (\xff\xfe) ", b"\xff\xfe"),
            (b"42 () ", b""),
        ];
        for (head, comm) in table {
            let mut line = head.to_vec();
            line.extend_from_slice(STAT_TAIL.as_bytes());
            let s = parse_stat(&line).unwrap();
            assert_eq!(s.comm, *comm);
            assert_eq!((s.pid, s.state, s.ppid, s.pgid, s.sid), (42, b'S', 1, 2, 3));
            assert_eq!(s.tty, Some((136, 0)));
            assert_eq!(s.start_ticks, 987_654);
        }
    }

    #[test]
    fn stat_errors_and_tty() {
        assert_eq!(parse_stat(b"42 bash S 1"), Err(ParseError::NoComm));
        assert_eq!(parse_stat(b"42 )bash( S"), Err(ParseError::NoComm));
        assert_eq!(parse_stat(b"42 (bash) S 1 2"), Err(ParseError::Field(6)));
        assert_eq!(parse_stat(b""), Err(ParseError::NoComm));
        assert!(parse_stat(b"x (b) S 1 2 3 0").is_err());
        assert_eq!(decode_tty_nr(0), None);
        assert_eq!(decode_tty_nr(34816), Some((136, 0)));
        assert_eq!(decode_tty_nr(1025), Some((4, 1)));
        // pts 300: minor's high bits live above bit 20.
        assert_eq!(decode_tty_nr((136 << 8) | 44 | (1 << 20)), Some((136, 300)));
    }

    #[test]
    fn status_cmdline_cgroup() {
        let status = b"Name:\tsshd\nTgid:\t77\nUid:\t0\t1000\t1001\t1002\nGid:\t5\t6\t7\t8\nNSpid:\t77\t12\t1\nJunk\n\xff:\t1\n";
        let s = parse_status(status);
        assert_eq!(s.uids, [0, 1000, 1001, 1002]);
        assert_eq!(s.gids, [5, 6, 7, 8]);
        assert_eq!(s.ns_pid, Some(1));
        assert_eq!(s.tgid, Some(77));
        assert_eq!(parse_status(b""), Status::default());

        assert_eq!(
            parse_cmdline(b"ssh\0-V\0\0x\xff\0"),
            vec![
                b"ssh".to_vec(),
                b"-V".to_vec(),
                b"".to_vec(),
                b"x\xff".to_vec()
            ]
        );
        assert_eq!(parse_cmdline(b""), Vec::<Vec<u8>>::new());
        // A process that rewrote its argv without the final NUL.
        assert_eq!(
            parse_cmdline(b"sshd: root@pts/0"),
            vec![b"sshd: root@pts/0".to_vec()]
        );

        let cg = b"12:cpu:/x\n1:name=systemd:/init.scope\n0::/system.slice/docker-ab.scope\n";
        assert_eq!(
            parse_cgroup(cg).as_deref(),
            Some(&b"/system.slice/docker-ab.scope"[..])
        );
        assert_eq!(parse_cgroup(b"1:cpu:/\n"), None);
        assert_eq!(parse_ns_link(b"pid:[4026531836]"), Some(4_026_531_836));
        assert_eq!(parse_ns_link(b"pid:[x]"), None);
        assert_eq!(parse_ns_link(b"pid"), None);
    }

    #[test]
    fn fixture_tree() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("4242");
        fs::create_dir_all(d.join("ns")).unwrap();
        fs::write(d.join("stat"), format!("4242 (we) ird) {STAT_TAIL}")).unwrap();
        fs::write(
            d.join("status"),
            "Uid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nNSpid:\t4242\n",
        )
        .unwrap();
        fs::write(d.join("cmdline"), b"/bin/we\0--flag\0").unwrap();
        fs::write(d.join("cgroup"), "0::/docker/abc\n").unwrap();
        std::os::unix::fs::symlink("/usr/bin/we\u{1}", d.join("exe")).unwrap();
        std::os::unix::fs::symlink("pid:[4026531836]", d.join("ns/pid")).unwrap();
        std::os::unix::fs::symlink("mnt:[4026531841]", d.join("ns/mnt")).unwrap();
        fs::create_dir_all(t.path().join("self")).unwrap();
        assert_eq!(list_pids(t.path()).unwrap(), vec![4242]);
        let e = read_process(t.path(), 4242).unwrap();
        assert_eq!(e.stat.comm, b"we) ird");
        assert_eq!(e.exe, b"/usr/bin/we\x01");
        assert_eq!(e.args, vec![b"/bin/we".to_vec(), b"--flag".to_vec()]);
        assert_eq!(e.cgroup_path.as_deref(), Some(&b"/docker/abc"[..]));
        assert_eq!(
            (e.pid_ns, e.mnt_ns),
            (Some(4_026_531_836), Some(4_026_531_841))
        );
        assert_eq!(e.status.ns_pid, Some(4242));
        assert!(read_process(t.path(), 1).is_err());
    }
}
