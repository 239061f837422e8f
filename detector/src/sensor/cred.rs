//! Attaching the credential programs (`cred_enter`, `cred_exit` in the eBPF object) to the
//! syscall tracepoints of `set*uid`, `set*gid` and `setsid` (`sensor.credential_events`).
//!
//! Classic tracepoints are found through tracefs, which this host does not mount at boot.
//! When no tracefs is mounted the daemon (root) mounts one at `/sys/kernel/tracing`, logs
//! that it did, and leaves it mounted (other tracers expect it there; unmounting under them
//! would break them). Before attaching, the `ret` offset the exit program reads is checked
//! against the tracepoint's own `format` file, so a kernel with another record layout is
//! refused with a message, not read wrongly.
//!
//! A failure here does not stop the daemon: the fork/exec/exit programs keep running, the
//! reason is logged as an error, and no credential events are produced (see
//! [`attach`]).

use std::path::{Path, PathBuf};

use aya::{Ebpf, programs::TracePoint};
use detector_common::{
    CRED_ENTER_PROGRAM, CRED_EXIT_PROGRAM, CRED_SYSCALLS, SYSCALL_EXIT_RET_OFFSET,
};

/// Where tracefs is looked for, in aya's order (it uses the first non-empty one).
const TRACEFS_CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// Why the credential programs could not be attached.
#[derive(Debug, thiserror::Error)]
pub enum CredError {
    #[error("no tracefs mounted and mounting one at /sys/kernel/tracing failed: {0}")]
    Mount(std::io::Error),
    #[error("reading tracepoint format {path}: {source}")]
    Format {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tracepoint {path} has `ret` at offset {found:?}, the program reads offset {expected}")]
    Layout {
        path: PathBuf,
        found: Option<usize>,
        expected: usize,
    },
    #[error("program {0} is missing from the eBPF object")]
    Missing(&'static str),
    #[error("program {program}: {source}")]
    Program {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
}

/// The mounted tracefs root, mounting one at `/sys/kernel/tracing` when none is.
pub fn ensure_tracefs() -> Result<PathBuf, CredError> {
    if let Some(p) = mounted_tracefs() {
        return Ok(p);
    }
    let target = Path::new(TRACEFS_CANDIDATES[0]);
    mount_tracefs(target).map_err(CredError::Mount)?;
    tracing::info!(
        path = %target.display(),
        "mounted tracefs for the credential-change tracepoints (left mounted)"
    );
    Ok(target.to_path_buf())
}

/// The first tracefs candidate that holds an `events` directory.
fn mounted_tracefs() -> Option<PathBuf> {
    TRACEFS_CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("events").is_dir())
}

fn mount_tracefs(target: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &[u8]| std::ffi::CString::new(s).map_err(std::io::Error::other);
    let (src, dst, fs) = (
        c(b"tracefs")?,
        c(target.as_os_str().as_bytes())?,
        c(b"tracefs")?,
    );
    // SAFETY: every pointer is a NUL-terminated string that outlives the call; no data.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            fs.as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The offset of `long ret` in a tracepoint `format` file.
pub fn ret_offset(format: &str) -> Option<usize> {
    format.lines().find_map(|line| {
        let line = line.trim();
        if !line.starts_with("field:long ret;") {
            return None;
        }
        let rest = line.split("offset:").nth(1)?;
        rest.split(';').next()?.trim().parse().ok()
    })
}

/// Checks that every watched `sys_exit_*` record has `ret` where the program reads it.
fn check_layout(tracefs: &Path) -> Result<(), CredError> {
    for name in CRED_SYSCALLS {
        let path = tracefs
            .join("events/syscalls")
            .join(format!("sys_exit_{name}"))
            .join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| CredError::Format {
            path: path.clone(),
            source,
        })?;
        let found = ret_offset(&text);
        if found != Some(SYSCALL_EXIT_RET_OFFSET) {
            return Err(CredError::Layout {
                path,
                found,
                expected: SYSCALL_EXIT_RET_OFFSET,
            });
        }
    }
    Ok(())
}

fn load_and_attach(ebpf: &mut Ebpf, program: &'static str, prefix: &str) -> Result<(), CredError> {
    let p: &mut TracePoint = ebpf
        .program_mut(program)
        .ok_or(CredError::Missing(program))?
        .try_into()
        .map_err(|source| CredError::Program { program, source })?;
    p.load()
        .map_err(|source| CredError::Program { program, source })?;
    for name in CRED_SYSCALLS {
        p.attach("syscalls", &format!("{prefix}{name}"))
            .map_err(|source| CredError::Program { program, source })?;
    }
    Ok(())
}

/// Loads and attaches both credential programs; returns their names. A failure is logged
/// and yields none: the daemon runs on without credential events (the rest of the sensor
/// does not depend on them). The exit program is attached first, so a thread already
/// inside a watched syscall never leaves a note behind.
pub fn attach(ebpf: &mut Ebpf) -> Vec<&'static str> {
    let run = |ebpf: &mut Ebpf| -> Result<(), CredError> {
        let tracefs = ensure_tracefs()?;
        check_layout(&tracefs)?;
        load_and_attach(ebpf, CRED_EXIT_PROGRAM, "sys_exit_")?;
        load_and_attach(ebpf, CRED_ENTER_PROGRAM, "sys_enter_")?;
        Ok(())
    };
    match run(ebpf) {
        Ok(()) => vec![CRED_ENTER_PROGRAM, CRED_EXIT_PROGRAM],
        Err(e) => {
            tracing::error!(
                error = %e,
                "credential-change events are off: uid_change, gid_change and \
                 session_id_change will not be reported (set [sensor] \
                 credential_events = false to silence this)"
            );
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ret_offset;

    #[test]
    fn finds_ret_in_a_sys_exit_format() {
        let f = "name: sys_exit_setuid\nID: 180\nformat:\n\
                 \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
                 \tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\
                 \tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n\n\
                 print fmt: \"0x%lx\", REC->ret\n";
        assert_eq!(ret_offset(f), Some(16));
        assert_eq!(ret_offset("field:long retval;\toffset:16;"), None);
        assert_eq!(ret_offset("\tfield:long ret;\toffset:x;"), None);
        assert_eq!(ret_offset(""), None);
    }
}
