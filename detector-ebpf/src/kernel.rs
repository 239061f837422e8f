//! Typed handles on the kernel objects the programs read.
//!
//! Rust eBPF has no CO-RE, so every field is reached through an offset from the [`OFFSETS`]
//! global, which the daemon computes from the running kernel's BTF before loading. A bare
//! `u64` address would accept any of those offsets; here each kernel struct the programs
//! touch has its own handle type ([`Task`], [`Mm`], [`Dentry`] …) whose accessors apply only
//! that struct's offsets and return the next typed handle, so a `task_struct` offset cannot
//! be applied to an `mm_struct`. The raw read ([`KPtr::read`]) is private to this module.
//!
//! Every read goes through `bpf_probe_read_kernel` into memory we own (it faults safely on a
//! bad address) and checks the return value; an offset this kernel lacks ([`MISSING`]) is
//! a read error too, so callers flag or skip the field.

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_probe_read_kernel;
use detector_common::{MISSING, Offsets};

/// Kernel struct offsets, filled by the daemon (`EbpfLoader::override_global`). Lives in
/// `.rodata`, so the verifier sees the values as constants and prunes branches on `MISSING`.
#[unsafe(no_mangle)]
static OFFSETS: Offsets = Offsets::missing();

/// Reads one offset from the global (volatile: the compiler must not fold the placeholder).
macro_rules! off {
    ($field:ident) => {
        // SAFETY: a plain read of a field of an immutable static.
        unsafe { core::ptr::read_volatile(&OFFSETS.$field) }
    };
}

/// A kernel read failed or an offset is missing on this kernel.
pub struct ReadErr;

/// The result of a kernel read.
pub type R<T> = Result<T, ReadErr>;

/// Types a kernel read may produce: plain data for which every bit pattern is a valid value.
trait Plain: Copy {}
impl Plain for u32 {}
impl Plain for u64 {}
impl<const N: usize> Plain for [u8; N] {}

/// A non-NULL kernel address. Only this module reads through it, with the offsets of the
/// handle type that owns it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct KPtr(u64);

impl KPtr {
    /// `None` for NULL.
    #[inline(always)]
    fn new(addr: u64) -> Option<Self> {
        if addr == 0 { None } else { Some(KPtr(addr)) }
    }

    /// Reads a `T` at `self + offset` from kernel memory.
    #[inline(always)]
    fn read<T: Plain>(self, offset: u32) -> R<T> {
        if offset == MISSING {
            return Err(ReadErr);
        }
        let mut v = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: the helper writes at most size_of::<T>() bytes into `v`, which we own, and
        // reads the source address without faulting (a bad address is an error return).
        let r = unsafe {
            bpf_probe_read_kernel(
                v.as_mut_ptr() as *mut c_void,
                core::mem::size_of::<T>() as u32,
                (self.0 + offset as u64) as *const c_void,
            )
        };
        if r < 0 {
            return Err(ReadErr);
        }
        // SAFETY: the helper succeeded, so all bytes of `v` were written, and any bytes are a
        // valid `T` (`Plain`).
        Ok(unsafe { v.assume_init() })
    }

    /// Reads the kernel pointer at `self + offset`; NULL is an error.
    #[inline(always)]
    fn ptr(self, offset: u32) -> R<KPtr> {
        KPtr::new(self.read::<u64>(offset)?).ok_or(ReadErr)
    }

    /// `self + offset` without reading (an embedded struct); a missing offset is an error.
    #[inline(always)]
    fn field(self, offset: u32) -> R<KPtr> {
        if offset == MISSING {
            return Err(ReadErr);
        }
        Ok(KPtr(self.0 + offset as u64))
    }

    /// `self - offset`: the containing struct of an embedded member (`container_of`).
    #[inline(always)]
    fn container(self, offset: u32) -> R<KPtr> {
        if offset == MISSING {
            return Err(ReadErr);
        }
        Ok(KPtr(self.0 - offset as u64))
    }
}

/// Declares a handle type for one kernel struct and its accessors, one line per field:
/// `val NAME: TYPE = OFFSET` reads a value, `ptr NAME: HANDLE = OFFSET` follows a non-NULL
/// pointer to another handle. `OFFSET` names a field of [`Offsets`].
macro_rules! kernel_struct {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$fdoc:meta])* $how:ident $field:ident : $t:tt = $off:ident; )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name(KPtr);

        impl $name {
            $( kernel_struct!(@accessor $(#[$fdoc])* $how $field : $t = $off); )*
        }
    };
    (@accessor $(#[$fdoc:meta])* val $field:ident : $t:ty = $off:ident) => {
        $(#[$fdoc])*
        #[inline(always)]
        pub fn $field(self) -> R<$t> {
            self.0.read(off!($off))
        }
    };
    (@accessor $(#[$fdoc:meta])* ptr $field:ident : $t:ident = $off:ident) => {
        $(#[$fdoc])*
        #[inline(always)]
        pub fn $field(self) -> R<$t> {
            self.0.ptr(off!($off)).map($t)
        }
    };
}

kernel_struct! {
    /// `struct task_struct`.
    Task {
        /// Thread id.
        val pid: u32 = task_pid;
        /// Thread-group id.
        val tgid: u32 = task_tgid;
        val comm: [u8; 16] = task_comm;
        val start_boottime: u64 = task_start_boottime;
        val exit_code: u32 = task_exit_code;
        ptr real_parent: Task = task_real_parent;
        ptr group_leader: Task = task_group_leader;
        ptr real_cred: Cred = task_real_cred;
        /// NULL for kernel threads and exiting tasks.
        ptr mm: Mm = task_mm;
        ptr fs: FsStruct = task_fs;
        ptr cgroups: CssSet = task_cgroups;
        ptr signal: Signal = task_signal;
        ptr nsproxy: NsProxy = task_nsproxy;
        ptr thread_pid: Pid = task_thread_pid;
    }
}

impl Task {
    /// The task a `tp_btf` argument points at (the tracepoint's BTF types it as
    /// `struct task_struct *`); `None` for NULL.
    #[inline(always)]
    pub fn from_arg(addr: u64) -> Option<Self> {
        KPtr::new(addr).map(Task)
    }
}

kernel_struct! {
    /// `struct cred`.
    Cred {
        val uid: u32 = cred_uid;
        val gid: u32 = cred_gid;
        val euid: u32 = cred_euid;
        val egid: u32 = cred_egid;
        /// `kernel_cap_t` (one `u64` since 6.3; two `u32`s, low first, before).
        val cap_effective: u64 = cred_cap_effective;
        val cap_permitted: u64 = cred_cap_permitted;
    }
}

kernel_struct! {
    /// `struct mm_struct`.
    Mm {
        /// User-space bounds of the argument block.
        val arg_start: u64 = mm_arg_start;
        val arg_end: u64 = mm_arg_end;
        ptr exe_file: File = mm_exe_file;
        /// User-space bounds of the environment block.
        val env_start: u64 = mm_env_start;
        val env_end: u64 = mm_env_end;
    }
}

kernel_struct! {
    /// `struct file`.
    File {
        /// `f_path.mnt`.
        ptr path_mnt: VfsMount = file_path_mnt;
        /// `f_path.dentry`.
        ptr path_dentry: Dentry = file_path_dentry;
    }
}

kernel_struct! {
    /// `struct fs_struct`.
    FsStruct {
        /// `root.mnt`.
        ptr root_mnt: VfsMount = fs_root_mnt;
        /// `root.dentry`.
        ptr root_dentry: Dentry = fs_root_dentry;
        /// `pwd.mnt`: the working directory's mount.
        ptr pwd_mnt: VfsMount = fs_pwd_mnt;
        /// `pwd.dentry`.
        ptr pwd_dentry: Dentry = fs_pwd_dentry;
    }
}

kernel_struct! {
    /// `struct dentry`.
    Dentry {
        /// `d_parent` (a dentry is its own parent at the top of its filesystem).
        ptr parent: Dentry = dentry_parent;
        /// `d_name.name`.
        ptr name: KStr = dentry_name;
    }
}

kernel_struct! {
    /// `struct vfsmount` (embedded in a [`Mount`]).
    VfsMount {
        ptr root: Dentry = vfsmount_root;
    }
}

impl VfsMount {
    /// The `struct mount` this `vfsmount` is embedded in (`real_mount()`).
    #[inline(always)]
    pub fn mount(self) -> R<Mount> {
        self.0.container(off!(mount_mnt)).map(Mount)
    }
}

kernel_struct! {
    /// `struct mount`.
    Mount {
        /// `mnt_parent`: the mount this one sits on (itself at the namespace's root).
        ptr parent: Mount = mount_parent;
        /// `mnt_mountpoint`: the dentry in the parent mount this one covers.
        ptr mountpoint: Dentry = mount_mountpoint;
    }
}

impl Mount {
    /// The embedded `mnt` member.
    #[inline(always)]
    pub fn mnt(self) -> R<VfsMount> {
        self.0.field(off!(mount_mnt)).map(VfsMount)
    }
}

kernel_struct! {
    /// `struct css_set`.
    CssSet {
        /// `dfl_cgrp`: the cgroup on the default (v2) hierarchy.
        ptr dfl_cgrp: Cgroup = css_set_dfl_cgrp;
    }
}

kernel_struct! {
    /// `struct cgroup`.
    Cgroup {
        ptr kn: KernfsNode = cgroup_kn;
    }
}

kernel_struct! {
    /// `struct kernfs_node` (a cgroup directory).
    KernfsNode {
        /// The node id: the cgroup v2 id (inode number of the directory).
        val id: u64 = kernfs_id;
        ptr name: KStr = kernfs_name;
    }
}

impl KernfsNode {
    /// The parent directory; `None` at the hierarchy's root (NULL parent), an error when
    /// the read failed — so a path walk can tell "reached the root" from "could not look".
    #[inline(always)]
    pub fn parent(self) -> R<Option<KernfsNode>> {
        Ok(KPtr::new(self.0.read::<u64>(off!(kernfs_parent))?).map(KernfsNode))
    }
}

kernel_struct! {
    /// `struct signal_struct` (shared by a thread group).
    Signal {
        /// Live threads of the group.
        val live: u32 = signal_live;
        val group_exit_code: u32 = signal_group_exit_code;
        /// The controlling terminal; NULL when there is none.
        ptr tty: Tty = signal_tty;
        /// `pids[PIDTYPE_SID]`: the session leader's pid.
        ptr sid_pid: Pid = signal_sid_pid;
    }
}

kernel_struct! {
    /// `struct tty_struct`.
    Tty {
        val index: u32 = tty_index;
        ptr driver: TtyDriver = tty_driver;
    }
}

kernel_struct! {
    /// `struct tty_driver`.
    TtyDriver {
        val major: u32 = tty_driver_major;
        val minor_start: u32 = tty_driver_minor_start;
    }
}

kernel_struct! {
    /// `struct pid`.
    Pid {
        /// Depth of the pid namespace the pid was made in (0: the initial one).
        val level: u32 = pid_level;
    }
}

impl Pid {
    /// `numbers[level]`: the pid's number and namespace at `level`. Bounds `level` (the
    /// kernel nests at most 32 pid namespaces) and the `upid` size so the address stays
    /// inside the object.
    #[inline(always)]
    pub fn upid(self, level: u32) -> R<Upid> {
        if level > 31 {
            return Err(ReadErr);
        }
        let size = off!(upid_size);
        if size > 64 {
            return Err(ReadErr);
        }
        let numbers = self.0.field(off!(pid_numbers))?;
        Ok(Upid(KPtr(numbers.0 + (level * size) as u64)))
    }
}

kernel_struct! {
    /// `struct upid` (one element of `pid.numbers`).
    Upid {
        val nr: u32 = upid_nr;
        ptr ns: PidNamespace = upid_ns;
    }
}

kernel_struct! {
    /// `struct pid_namespace`.
    PidNamespace {
        /// `ns.inum`.
        val inum: u32 = pid_ns_inum;
    }
}

kernel_struct! {
    /// `struct nsproxy`.
    NsProxy {
        ptr mnt_ns: MntNamespace = nsproxy_mnt_ns;
    }
}

kernel_struct! {
    /// `struct mnt_namespace`.
    MntNamespace {
        /// `ns.inum`.
        val inum: u32 = mnt_ns_inum;
    }
}

kernel_struct! {
    /// `struct linux_binprm`.
    Binprm {
        /// The path `execve` was given.
        ptr filename: KStr = binprm_filename;
    }
}

impl Binprm {
    /// The `linux_binprm *` argument of `sched_process_exec`; `None` for NULL.
    #[inline(always)]
    pub fn from_arg(addr: u64) -> Option<Self> {
        KPtr::new(addr).map(Binprm)
    }
}

/// A NUL-terminated string in kernel memory; only [`crate::record::Record`] copies it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KStr(KPtr);

impl KStr {
    /// The string's address, for `bpf_probe_read_kernel_str`.
    #[inline(always)]
    pub fn addr(self) -> u64 {
        self.0.0
    }
}

/// Whether `sched_process_exit` passes `group_dead` as its second argument (kernel >= 6.16).
#[inline(always)]
pub fn exit_has_group_dead() -> bool {
    off!(exit_has_group_dead) == 1
}
