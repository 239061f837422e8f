//! Decoding ring-buffer records (see `detector_common`) into [`ProcessEvent`]s.
//!
//! Records come from the kernel but are still checked like hostile input: every length is
//! bounds-checked against the record, and a short or malformed record is an error that the
//! [`Decoder`] counts, never a panic.

use detector_common::{EventHeader, HEADER_SIZE, flags, kind};

use super::{Caps, EventKind, ProcessEvent};

/// Why a record was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {len} bytes is shorter than its {need}-byte header/sections")]
    Truncated { len: usize, need: usize },
    #[error("record has unknown kind {0}")]
    BadKind(u32),
}

/// Decodes records and counts the ones it had to drop.
#[derive(Debug, Default)]
pub struct Decoder {
    /// Records rejected as malformed (short, inconsistent lengths, unknown kind).
    pub malformed: u64,
}

impl Decoder {
    /// Decodes one record; a malformed one is counted and yields `None`.
    pub fn decode(&mut self, record: &[u8]) -> Option<ProcessEvent> {
        match decode(record) {
            Ok(ev) => Some(ev),
            Err(e) => {
                self.malformed(&e);
                None
            }
        }
    }

    /// [`Decoder::decode`] into a used event, reusing its buffers; false (and counted)
    /// for a malformed record.
    pub fn decode_into(&mut self, record: &[u8], ev: &mut ProcessEvent) -> bool {
        match decode_into(record, ev) {
            Ok(()) => true,
            Err(e) => {
                self.malformed(&e);
                false
            }
        }
    }

    fn malformed(&mut self, e: &DecodeError) {
        self.malformed += 1;
        tracing::debug!(error = %e, "dropping malformed record");
    }
}

/// Converts a raw `wait(2)` status into a shell-style exit code: the exit code, or
/// 128 + the signal number when a signal ended the process.
pub fn wait_status_to_exit_code(status: u32) -> i32 {
    let signal = status & 0x7f;
    if signal != 0 {
        128 + signal as i32
    } else {
        ((status >> 8) & 0xff) as i32
    }
}

/// Cuts `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n.min(rest.len()));
    *rest = tail;
    head
}

/// Sets `out` to a NUL-terminated string section without its terminator (and anything
/// after a NUL), reusing its buffer.
fn cstr_into(out: &mut Vec<u8>, b: &[u8]) {
    let end = memchr::memchr(0, b).unwrap_or(b.len());
    out.clear();
    out.extend_from_slice(&b[..end]);
}

/// The exe section holds components leaf first, each NUL-terminated; a complete path is
/// absolute (`/a/b`), a partial one is the reachable suffix without the leading slash.
/// No components: no path was captured (exit records, tasks without mm).
fn exe_path_into(out: &mut Vec<u8>, b: &[u8], partial: bool) {
    out.clear();
    if b.is_empty() {
        return;
    }
    // The components, last first, each preceded by a slash (but the first one of a
    // partial path).
    let body = b.strip_suffix(&[0]).unwrap_or(b);
    out.reserve(body.len() + 1);
    for (i, comp) in body.rsplit(|&c| c == 0).enumerate() {
        if i > 0 || !partial {
            out.push(b'/');
        }
        out.extend_from_slice(comp);
    }
}

/// The cgroup section: components leaf first, each NUL-terminated, like the exe section.
/// A complete walk with no component is the root cgroup (`/`); no cgroup at all is empty.
fn cgroup_path_into(out: &mut Vec<u8>, b: &[u8], partial: bool, none: bool) {
    if none {
        out.clear();
    } else if b.is_empty() && !partial {
        out.clear();
        out.push(b'/');
    } else {
        exe_path_into(out, b, partial);
    }
}

/// argv: the NUL-separated argument block. A trailing empty piece (after the final NUL) is
/// not an argument; when truncated, the last argument may be a prefix of the real one.
/// Reuses the buffers of `out`'s arguments.
fn argv_into(out: &mut Vec<Vec<u8>>, b: &[u8]) {
    let mut n = 0;
    if !b.is_empty() {
        let body = b.strip_suffix(&[0]).unwrap_or(b);
        for piece in body.split(|&c| c == 0) {
            match out.get_mut(n) {
                Some(arg) => {
                    arg.clear();
                    arg.extend_from_slice(piece);
                }
                None => out.push(piece.to_vec()),
            }
            n += 1;
        }
    }
    out.truncate(n);
}

/// Decodes one record.
pub fn decode(record: &[u8]) -> Result<ProcessEvent, DecodeError> {
    let mut ev = ProcessEvent::default();
    decode_into(record, &mut ev)?;
    Ok(ev)
}

/// Decodes one record into `ev`, reusing its buffers (the daemon decodes into recycled
/// events, so a steady stream of records allocates nothing). On error `ev` is unspecified.
pub fn decode_into(record: &[u8], ev: &mut ProcessEvent) -> Result<(), DecodeError> {
    if record.len() < HEADER_SIZE {
        return Err(DecodeError::Truncated {
            len: record.len(),
            need: HEADER_SIZE,
        });
    }
    // SAFETY: the slice holds at least HEADER_SIZE bytes; EventHeader is plain integers
    // (any bit pattern valid) and read_unaligned needs no alignment.
    let h: EventHeader = unsafe { std::ptr::read_unaligned(record.as_ptr().cast()) };
    let kind = match h.kind {
        kind::FORK => EventKind::Fork,
        kind::EXEC => EventKind::Exec,
        kind::EXIT => EventKind::Exit,
        kind::UID_CHANGE => EventKind::UidChange,
        kind::GID_CHANGE => EventKind::GidChange,
        kind::SESSION_ID_CHANGE => EventKind::SessionIdChange,
        k => return Err(DecodeError::BadKind(k)),
    };
    let sections = [
        h.filename_len,
        h.cgroup_path_len,
        h.exe_len,
        h.cwd_len,
        h.argv_len,
        h.env_len,
    ];
    let need = HEADER_SIZE + sections.iter().map(|&l| l as usize).sum::<usize>();
    if record.len() < need {
        return Err(DecodeError::Truncated {
            len: record.len(),
            need,
        });
    }
    let mut rest = &record[HEADER_SIZE..need];
    cstr_into(&mut ev.filename, take(&mut rest, h.filename_len as usize));
    let cgroup_partial = h.flags & flags::CGROUP_TRUNCATED != 0;
    cgroup_path_into(
        &mut ev.cgroup_path,
        take(&mut rest, h.cgroup_path_len as usize),
        cgroup_partial,
        h.flags & flags::NO_CGROUP != 0,
    );
    let exe_partial = h.flags & flags::EXE_PARTIAL != 0;
    exe_path_into(
        &mut ev.exe_path,
        take(&mut rest, h.exe_len as usize),
        exe_partial,
    );
    let cwd_partial = h.flags & flags::CWD_PARTIAL != 0;
    exe_path_into(
        &mut ev.cwd,
        take(&mut rest, h.cwd_len as usize),
        cwd_partial,
    );
    argv_into(&mut ev.argv, take(&mut rest, h.argv_len as usize));
    let env = take(&mut rest, h.env_len as usize);
    ev.env.clear();
    ev.env.extend_from_slice(env);
    cstr_into(&mut ev.comm, &h.comm);
    ev.kind = Some(kind);
    ev.boot_ns = h.boot_ns;
    ev.pid = h.pid;
    ev.tgid = h.tgid;
    ev.ppid = h.ppid;
    ev.actor_pid = h.actor_pid;
    ev.uid = h.uid;
    ev.gid = h.gid;
    ev.euid = h.euid;
    ev.egid = h.egid;
    ev.exe_path_partial = exe_partial;
    ev.argv_truncated = h.flags & flags::ARGV_TRUNCATED != 0;
    ev.cgroup_id = h.cgroup_id;
    ev.cgroup_path_partial = cgroup_partial;
    ev.pid_ns_ino = h.pid_ns_ino;
    ev.mnt_ns_ino = h.mnt_ns_ino;
    ev.ns_pid = h.ns_pid;
    ev.tty = (h.flags & flags::HAS_TTY != 0).then_some((h.tty_major, h.tty_minor));
    ev.sid = h.sid;
    ev.pgid = h.pgid;
    ev.start_boot_ns = h.start_boot_ns;
    ev.exit_code = (kind == EventKind::Exit).then(|| wait_status_to_exit_code(h.exit_status));
    ev.cwd_partial = cwd_partial && !ev.cwd.is_empty();
    ev.env_truncated = h.flags & flags::ENV_TRUNCATED != 0;
    ev.caps = (h.flags & flags::HAS_CAPS != 0).then_some(Caps {
        effective: h.cap_effective,
        permitted: h.cap_permitted,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(h: &EventHeader) -> Vec<u8> {
        // SAFETY: EventHeader is repr(C) plain integers without padding.
        unsafe { std::slice::from_raw_parts((h as *const EventHeader).cast::<u8>(), HEADER_SIZE) }
            .to_vec()
    }

    /// An exec record for `/usr/bin/env`, argv `env -i`, in cgroup `docker-x.scope`.
    fn exec_record() -> Vec<u8> {
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"env");
        let filename = b"/usr/bin/env\0";
        let cgroup = b"docker-x.scope\0system.slice\0";
        let exe = b"env\0bin\0usr\0";
        let cwd = b"src\0root\0";
        let args = b"env\0-i\0";
        let env = b"HOME=/root\0LD_PRELOAD=/x.so\0";
        let h = EventHeader {
            kind: kind::EXEC,
            flags: flags::HAS_TTY | flags::HAS_CAPS,
            cap_effective: 1 << 21,
            cap_permitted: (1 << 21) | 1,
            pid: 10,
            tgid: 10,
            ppid: 1,
            uid: 1000,
            tty_major: 136,
            tty_minor: 2,
            filename_len: filename.len() as u16,
            cgroup_path_len: cgroup.len() as u16,
            exe_len: exe.len() as u16,
            argv_len: args.len() as u16,
            cwd_len: cwd.len() as u16,
            env_len: env.len() as u16,
            comm,
            ..Default::default()
        };
        let mut r = header_bytes(&h);
        for s in [&filename[..], cgroup, exe, cwd, args, env] {
            r.extend_from_slice(s);
        }
        r
    }

    #[test]
    fn decodes_a_well_formed_exec() {
        let ev = decode(&exec_record()).unwrap();
        assert_eq!(ev.kind, Some(EventKind::Exec));
        assert_eq!(ev.pid, 10);
        assert_eq!(ev.ppid, 1);
        assert_eq!(ev.uid, 1000);
        assert_eq!(ev.comm, b"env");
        assert_eq!(ev.filename, b"/usr/bin/env");
        assert_eq!(ev.exe_path, b"/usr/bin/env");
        assert!(!ev.exe_path_partial);
        assert_eq!(ev.argv, vec![b"env".to_vec(), b"-i".to_vec()]);
        assert_eq!(ev.cgroup_path, b"/system.slice/docker-x.scope");
        assert!(!ev.cgroup_path_partial);
        assert_eq!(ev.tty, Some((136, 2)));
        assert_eq!(ev.exit_code, None);
        assert_eq!(ev.cwd, b"/root/src");
        assert!(!ev.cwd_partial && !ev.env_truncated);
        assert_eq!(ev.env, b"HOME=/root\0LD_PRELOAD=/x.so\0");
        assert_eq!(
            ev.caps,
            Some(Caps {
                effective: 1 << 21,
                permitted: (1 << 21) | 1
            })
        );
    }

    #[test]
    fn truncated_and_garbage_records_are_rejected_and_counted() {
        let good = exec_record();
        let mut d = Decoder::default();
        // Every strict prefix is too short for the header or for its sections.
        for cut in 0..good.len() {
            assert!(
                d.decode(&good[..cut]).is_none(),
                "prefix of {cut} bytes accepted"
            );
        }
        assert_eq!(d.malformed, good.len() as u64);
        // Unknown kind.
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&77u32.to_le_bytes());
        assert_eq!(decode(&bad), Err(DecodeError::BadKind(77)));
        // Section lengths that point past the end.
        let mut bad = good.clone();
        let argv_len_at = std::mem::offset_of!(EventHeader, argv_len);
        bad[argv_len_at..argv_len_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(decode(&bad), Err(DecodeError::Truncated { .. })));
        // Pseudo-random garbage never panics.
        let mut x = 0x2545f4914f6cdd1du64;
        for len in 0..600 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = d.decode(&bytes);
        }
        // Garbage with a valid kind but random lengths is still bounds-checked.
        let mut bad = good;
        for b in &mut bad[100..144] {
            *b = 0xff;
        }
        let _ = decode(&bad);
    }

    fn argv(b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![b"stale".to_vec(); 3];
        argv_into(&mut out, b);
        out
    }

    fn exe_path(b: &[u8], partial: bool) -> Vec<u8> {
        let mut out = b"stale".to_vec();
        exe_path_into(&mut out, b, partial);
        out
    }

    fn cstr(b: &[u8]) -> Vec<u8> {
        let mut out = b"stale".to_vec();
        cstr_into(&mut out, b);
        out
    }

    #[test]
    fn strings_and_argv_edge_cases() {
        let cases: &[(&[u8], Vec<&[u8]>)] = &[
            (b"", vec![]),
            (b"a\0", vec![b"a"]),
            (b"a\0\0", vec![b"a", b""]),
            (b"a\0b", vec![b"a", b"b"]), // truncated mid-argument
            (b"\xff\n\"\0", vec![b"\xff\n\""]),
        ];
        for (raw, want) in cases {
            let got = argv(raw);
            let want: Vec<Vec<u8>> = want.iter().map(|w| w.to_vec()).collect();
            assert_eq!(got, want, "{raw:?}");
        }
        assert_eq!(exe_path(b"true\0x\0tmp\0", false), b"/tmp/x/true");
        assert_eq!(exe_path(b"true\0x\0", true), b"x/true");
        // No terminator, an empty component, nothing at all.
        assert_eq!(exe_path(b"true\0bin", false), b"/bin/true");
        assert_eq!(exe_path(b"a\0\0", false), b"//a");
        assert_eq!(exe_path(b"", false), b"");
        assert_eq!(exe_path(b"", true), b"");
        // The root directory: one empty component (the kernel's cwd walk at `/`).
        assert_eq!(exe_path(b"\0", false), b"/");
        assert_eq!(cstr(b"abc\0\0\0"), b"abc");
    }

    /// Decoding into a used event leaves nothing of the previous record behind.
    #[test]
    fn decoding_into_a_used_event_equals_a_fresh_decode() {
        let exec = exec_record();
        let mut h = EventHeader {
            kind: kind::EXIT,
            pid: 11,
            tgid: 11,
            exit_status: 3 << 8,
            ..Default::default()
        };
        h.comm[..2].copy_from_slice(b"sh");
        let exit = header_bytes(&h);
        let mut ev = ProcessEvent::default();
        for record in [&exec, &exit, &exec, &exec, &exit] {
            decode_into(record, &mut ev).unwrap();
            assert_eq!(ev, decode(record).unwrap());
        }
        assert!(ev.argv.is_empty() && ev.exe_path.is_empty() && ev.filename.is_empty());
        assert!(ev.cwd.is_empty() && ev.env.is_empty() && ev.caps.is_none());
    }

    /// The credential kinds decode to their own event kinds, with the ids after the change
    /// and no exit code.
    #[test]
    fn credential_change_records_decode() {
        for (k, want) in [
            (kind::UID_CHANGE, EventKind::UidChange),
            (kind::GID_CHANGE, EventKind::GidChange),
            (kind::SESSION_ID_CHANGE, EventKind::SessionIdChange),
        ] {
            let h = EventHeader {
                kind: k,
                pid: 21,
                tgid: 20,
                uid: 65534,
                euid: 65534,
                gid: 65534,
                egid: 65534,
                sid: 20,
                exit_status: 7 << 8,
                ..Default::default()
            };
            let ev = decode(&header_bytes(&h)).unwrap();
            assert_eq!(ev.kind, Some(want));
            assert!(want.is_cred_change());
            assert_eq!(
                (ev.pid, ev.tgid, ev.euid, ev.egid, ev.sid),
                (21, 20, 65534, 65534, 20)
            );
            assert_eq!(ev.exit_code, None);
        }
        assert_eq!(
            decode(&header_bytes(&EventHeader {
                kind: 7,
                ..Default::default()
            })),
            Err(DecodeError::BadKind(7))
        );
    }

    /// The root cgroup, a partial walk, and no cgroup at all.
    #[test]
    fn cgroup_paths() {
        let path = |b: &[u8], partial, none| {
            let mut out = b"stale".to_vec();
            cgroup_path_into(&mut out, b, partial, none);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(path(b"", false, false), "/");
        assert_eq!(path(b"", false, true), "");
        assert_eq!(path(b"", true, false), "");
        assert_eq!(path(b"c\0b\0a\0", false, false), "/a/b/c");
        assert_eq!(path(b"c\0b\0", true, false), "b/c");
        let mut rec = exec_record();
        let flags_at = std::mem::offset_of!(EventHeader, flags);
        rec[flags_at..flags_at + 4]
            .copy_from_slice(&(flags::HAS_TTY | flags::CGROUP_TRUNCATED).to_le_bytes());
        let ev = decode(&rec).unwrap();
        assert_eq!(ev.cgroup_path, b"system.slice/docker-x.scope");
        assert!(ev.cgroup_path_partial);
    }

    #[test]
    fn wait_status_becomes_shell_exit_code() {
        for (status, code) in [
            (0, 0),
            (7 << 8, 7),
            (255 << 8, 255),
            (9, 137),
            (15, 143),
            (0x80 | 11, 139),
        ] {
            assert_eq!(wait_status_to_exit_code(status), code, "{status:#x}");
        }
    }
}
