//! The shipped seccomp profile (`config/seccomp/detector.json`, OCI/docker format) applied
//! to a process on the host, without a container runtime: the profile's allowed system
//! calls become a classic-BPF seccomp filter installed right before `exec` (as runc does),
//! so a test can run the real daemon under exactly that list — or under the list minus one
//! call, to see what a refusal looks like.
//!
//! Only what the shipped profile uses is supported: `defaultAction` `SCMP_ACT_ERRNO`
//! (EPERM unless `defaultErrnoRet`), `architectures` naming x86-64, and rules with
//! `action: SCMP_ACT_ALLOW` and no argument filters. Anything else panics, so the profile
//! cannot grow a feature this translation silently ignores. System call numbers come from
//! the kernel headers (`asm/unistd_64.h`, package linux-libc-dev).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Where the kernel headers name the x86-64 system calls.
pub const UNISTD_64: &str = "/usr/include/x86_64-linux-gnu/asm/unistd_64.h";
/// `AUDIT_ARCH_X86_64` (linux/audit.h).
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// Offsets in `struct seccomp_data`.
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;

/// The shipped profile's path.
pub fn profile_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/seccomp/detector.json")
}

/// The profile, parsed.
pub fn profile() -> Value {
    let path = profile_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The system calls a profile allows (its `SCMP_ACT_ALLOW` rules), checking that it uses
/// nothing else.
pub fn allowed(profile: &Value) -> BTreeSet<String> {
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO", "{profile}");
    let mut names = BTreeSet::new();
    for rule in profile["syscalls"].as_array().expect("syscalls: [...]") {
        assert_eq!(rule["action"], "SCMP_ACT_ALLOW", "rule {rule}");
        assert!(
            rule.get("args")
                .is_none_or(|a| a.as_array().is_some_and(Vec::is_empty)),
            "argument filters are not supported here: {rule}"
        );
        for n in rule["names"].as_array().expect("names: [...]") {
            let n = n.as_str().expect("a system call name").to_owned();
            assert!(names.insert(n.clone()), "{n} listed twice");
        }
    }
    names
}

/// System call numbers by name, from the kernel headers.
pub fn numbers() -> std::collections::BTreeMap<String, u32> {
    let text = std::fs::read_to_string(UNISTD_64).unwrap_or_else(|e| panic!("{UNISTD_64}: {e}"));
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("#define __NR_")?;
            let (name, nr) = rest.split_once(char::is_whitespace)?;
            Some((name.to_owned(), nr.trim().parse().ok()?))
        })
        .collect()
}

/// The classic-BPF program allowing `names` (everything else: errno `errno`; another
/// architecture: kill).
pub fn filter(names: &BTreeSet<String>, errno: u32) -> Vec<libc::sock_filter> {
    let nrs = numbers();
    let mut allow: Vec<u32> = names
        .iter()
        .map(|n| {
            *nrs.get(n)
                .unwrap_or_else(|| panic!("{n} is not an x86-64 system call ({UNISTD_64})"))
        })
        .collect();
    allow.sort_unstable();
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let ret = libc::BPF_RET | libc::BPF_K;
    let mut prog = vec![
        stmt(load, ARCH_OFFSET),
        jeq(AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret, SECCOMP_RET_KILL_PROCESS),
        stmt(load, NR_OFFSET),
    ];
    // One compare per call: jump to the ALLOW at the end, else fall through. The ALLOW
    // sits after the n compares and the ERRNO, so compare i jumps n - i over the rest.
    let n = allow.len();
    for (i, nr) in allow.iter().enumerate() {
        let to_allow = (n - i) as u8; // the remaining compares and the ERRNO
        assert!(n - i < 256, "too many calls for one jump");
        prog.push(jeq(*nr, to_allow, 0));
    }
    prog.push(stmt(ret, SECCOMP_RET_ERRNO | (errno & 0xffff)));
    prog.push(stmt(ret, SECCOMP_RET_ALLOW));
    prog
}

/// Makes `cmd` exec under the filter (with no_new_privs, as container runtimes set it).
pub fn apply(cmd: &mut Command, filter: Vec<libc::sock_filter>) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2) on
    // memory it owns (the filter moved into it); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
