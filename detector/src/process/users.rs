//! User and group names for ids, from the passwd/group files the process itself sees.
//!
//! A host process's uid 1000 is named by the host's `/etc/passwd`; a container process's by
//! the container's (`/proc/<pid>/root/etc/passwd`). The files are loaded once per mount
//! namespace and cached; the cache holds at most `max_namespaces` databases (the oldest
//! loaded is dropped first), each file is read up to 4 MiB and 65,536 entries. An id missing
//! from a database loaded more than `RELOAD_AFTER` ago triggers one reload (a user added
//! since). Unreadable files give no names, never an error.

use std::collections::VecDeque;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

const MAX_FILE: u64 = 4 << 20;
const MAX_ENTRIES: usize = 65_536;
const RELOAD_AFTER: Duration = Duration::from_secs(10);

/// Parse `/etc/passwd` or `/etc/group` text: `name:x:id:…` → id → name.
pub fn parse_id_file(buf: &[u8]) -> FxHashMap<u32, Arc<str>> {
    let mut map = FxHashMap::default();
    for line in buf.split(|&b| b == b'\n') {
        if map.len() >= MAX_ENTRIES {
            break;
        }
        if line.first() == Some(&b'#') {
            continue;
        }
        let mut f = line.split(|&b| b == b':');
        let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let Some(id) = std::str::from_utf8(id)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        if name.is_empty() || name.starts_with(b"+") || name.starts_with(b"-") {
            continue;
        }
        // First entry wins, as getpwuid does.
        map.entry(id)
            .or_insert_with(|| String::from_utf8_lossy(name).into());
    }
    map
}

fn read(path: &Path) -> Option<Vec<u8>> {
    read_from(fs::File::open(path).ok()?)
}

fn read_from(f: fs::File) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    f.take(MAX_FILE).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// Open `rel` inside the directory `root` as if `root` were `/`: symlinks in a container's
/// tree (`/etc/passwd -> /etc/shadow`) resolve inside the container, never on the host.
/// `openat2(RESOLVE_IN_ROOT)` (Linux ≥ 5.6); without it, nothing is read (no names).
fn read_in_root(root: &Path, rel: &str) -> Option<Vec<u8>> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let dir = fs::File::open(root).ok()?;
    let path = std::ffi::CString::new(rel).ok()?;
    // SAFETY: open_how is plain data; zeroed is a valid value and we set every field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid dirfd, NUL-terminated path and a correctly sized open_how; the returned
    // fd (if any) is owned by the File below and closed by it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    read_from(unsafe { fs::File::from_raw_fd(fd as i32) })
}

/// One namespace's names. The maps hash with FxHash (ids from a file, looked up up to four
/// times per process in every snapshot); a file cannot make them worse than its own size.
struct Db {
    users: FxHashMap<u32, Arc<str>>,
    groups: FxHashMap<u32, Arc<str>>,
    loaded: Instant,
}

/// Cached id → name resolution per mount namespace.
pub struct UserNames {
    host_root: PathBuf,
    proc_root: PathBuf,
    host_mnt_ns: u64,
    max_namespaces: usize,
    dbs: FxHashMap<u64, Db>,
    order: VecDeque<u64>,
    /// Database loads (first loads and reloads), for stats.
    pub loads: u64,
    /// Changes to the cached databases: a name looked up at one generation is the name a
    /// lookup at the same generation returns (see [`UserNames::generation`]).
    generation: u64,
}

/// Which file.
#[derive(Clone, Copy)]
enum Kind {
    User,
    Group,
}

impl UserNames {
    /// `host_root` holds the host's `etc/` (normally `/`), `proc_root` is `/proc`; processes
    /// in `host_mnt_ns` (or with an unknown namespace, 0) use the host's files.
    pub fn new(
        host_root: PathBuf,
        proc_root: PathBuf,
        host_mnt_ns: u64,
        max_namespaces: usize,
    ) -> Self {
        UserNames {
            host_root,
            proc_root,
            host_mnt_ns,
            max_namespaces: max_namespaces.max(1),
            dbs: FxHashMap::default(),
            order: VecDeque::new(),
            loads: 0,
            generation: 0,
        }
    }

    /// Advances whenever a database is loaded, reloaded or dropped: while it stays the same,
    /// a lookup that found a name finds the same name again (a miss may still reload). The
    /// process model's shared infos (`shared`) keep their names while it holds.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Name of `uid` for process `pid` in mount namespace `mnt_ns`.
    pub fn user(&mut self, mnt_ns: u64, pid: u32, uid: u32) -> Option<Arc<str>> {
        self.lookup(mnt_ns, pid, uid, Kind::User)
    }

    /// Name of `gid` for process `pid` in mount namespace `mnt_ns`.
    pub fn group(&mut self, mnt_ns: u64, pid: u32, gid: u32) -> Option<Arc<str>> {
        self.lookup(mnt_ns, pid, gid, Kind::Group)
    }

    /// Whether, for a process in `mnt_ns`, a lookup of an id its files do not name would
    /// now answer `None` without reading the files again: the namespace's database is
    /// loaded and not due for a reload. With [`UserNames::generation`] unchanged, a missing
    /// name then stays missing, as a name found stays found.
    pub fn misses_hold(&self, mnt_ns: u64) -> bool {
        let key = if mnt_ns == 0 {
            self.host_mnt_ns
        } else {
            mnt_ns
        };
        self.dbs
            .get(&key)
            .is_some_and(|db| db.loaded.elapsed() <= RELOAD_AFTER)
    }

    /// Number of cached databases.
    pub fn cached_namespaces(&self) -> usize {
        self.dbs.len()
    }

    fn lookup(&mut self, mnt_ns: u64, pid: u32, id: u32, kind: Kind) -> Option<Arc<str>> {
        let key = if mnt_ns == 0 {
            self.host_mnt_ns
        } else {
            mnt_ns
        };
        let stale = match self.dbs.get(&key) {
            Some(db) => {
                let map = match kind {
                    Kind::User => &db.users,
                    Kind::Group => &db.groups,
                };
                if let Some(n) = map.get(&id) {
                    return Some(n.clone());
                }
                db.loaded.elapsed() > RELOAD_AFTER
            }
            None => true,
        };
        if !stale {
            return None;
        }
        let (users, groups) = if key == self.host_mnt_ns {
            let root = &self.host_root;
            (
                read(&root.join("etc/passwd")),
                read(&root.join("etc/group")),
            )
        } else {
            // The container's own files, resolved inside its root.
            let root = self.proc_root.join(pid.to_string()).join("root");
            (
                read_in_root(&root, "etc/passwd"),
                read_in_root(&root, "etc/group"),
            )
        };
        let users = users.map(|b| parse_id_file(&b));
        let groups = groups.map(|b| parse_id_file(&b));
        self.loads += 1;
        self.generation += 1;
        if users.is_none() && groups.is_none() && self.dbs.contains_key(&key) {
            // The process is gone: keep what we had rather than forgetting every name.
            if let Some(db) = self.dbs.get_mut(&key) {
                db.loaded = Instant::now();
            }
            return None;
        }
        let db = Db {
            users: users.unwrap_or_default(),
            groups: groups.unwrap_or_default(),
            loaded: Instant::now(),
        };
        if self.dbs.insert(key, db).is_none() {
            self.order.push_back(key);
            while self.dbs.len() > self.max_namespaces {
                if let Some(old) = self.order.pop_front() {
                    self.dbs.remove(&old);
                }
            }
        }
        let db = self.dbs.get(&key)?;
        match kind {
            Kind::User => db.users.get(&id).cloned(),
            Kind::Group => db.groups.get(&id).cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse() {
        let m = parse_id_file(b"root:x:0:0:root:/root:/bin/sh\n# c\nsshd:x:105:65534::/run/sshd:/usr/sbin/nologin\ndup:x:0:0\nbad:x:notnum\n:x:7\n+nis::8\n\xff\xfeu:x:9:9\n");
        assert_eq!(m.get(&0).map(|s| &**s), Some("root"));
        assert_eq!(m.get(&105).map(|s| &**s), Some("sshd"));
        assert_eq!(m.get(&9).map(|s| &**s), Some("\u{fffd}\u{fffd}u"));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn host_and_container_roots() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        fs::create_dir_all(host.join("etc")).unwrap();
        fs::write(
            host.join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        fs::write(host.join("etc/group"), "root:x:0:\nstaff:x:1000:\n").unwrap();
        let proc = t.path().join("proc");
        fs::create_dir_all(proc.join("77/root/etc")).unwrap();
        fs::write(
            proc.join("77/root/etc/passwd"),
            "root:x:0:0::/:/bin/sh\nsshd:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        let mut u = UserNames::new(host, proc, 1, 2);
        assert_eq!(u.user(1, 5, 1000).as_deref(), Some("alice"));
        assert_eq!(u.user(0, 5, 1000).as_deref(), Some("alice"));
        assert_eq!(u.group(1, 5, 1000).as_deref(), Some("staff"));
        assert_eq!(u.user(9, 77, 1000).as_deref(), Some("sshd"));
        assert_eq!(u.group(9, 77, 1000), None);
        // Cached: the container's file is not read again even when the process is gone.
        assert_eq!(u.user(9, 12345, 1000).as_deref(), Some("sshd"));
        assert_eq!(u.loads, 2);
        // A container whose passwd is a symlink to an absolute path reads its own file at
        // that path, not the host's.
        fs::create_dir_all(t.path().join("proc/88/root/etc")).unwrap();
        fs::create_dir_all(t.path().join("proc/88/root/secret")).unwrap();
        fs::write(
            t.path().join("proc/88/root/secret/pw"),
            "inside:x:5:5::/:/bin/sh\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("/secret/pw", t.path().join("proc/88/root/etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/shadow", t.path().join("proc/88/root/etc/group")).unwrap();
        assert_eq!(u.user(12, 88, 5).as_deref(), Some("inside"));
        assert_eq!(
            u.group(12, 88, 0),
            None,
            "the host's /etc/shadow is never read"
        );
        // Bounded to 2 namespaces.
        u.user(10, 1, 0);
        u.user(11, 1, 0);
        assert_eq!(u.cached_namespaces(), 2);
        assert_eq!(u.loads, 5);
    }
}
