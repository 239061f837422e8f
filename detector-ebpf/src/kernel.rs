//! Typed handles on the kernel objects the programs read.
//!
//! Rust eBPF has no CO-RE, so every field is reached through an offset from the [`OFFSETS`]
//! global, which the daemon computes from the running kernel's BTF before loading. A bare
//! `u64` address would accept any of those offsets; here each kernel struct the programs
//! touch has its own handle type ([`Task`], [`Mm`], [`Dentry`] …) whose accessors apply only
//! that struct's offsets and return the next typed handle, so a `task_struct` offset cannot
//! be applied to an `mm_struct`. The raw read ([`KPtr::read`]) is private to this module.
//!
//! Each handle reads either with a plain load ([`Direct`]: from a `tp_btf` argument, whose
//! pointers the verifier types from BTF) or through `bpf_probe_read_kernel` into memory we
//! own ([`Probe`]: any other address), see [`Access`]; a handle reached from another reads
//! like it. An offset this kernel lacks ([`MISSING`]) is a read error, so callers flag or
//! skip the field.

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
pub trait Plain: Copy {
    /// A plain load of `Self` at `addr` (see [`Direct`]): one or two BPF load instructions
    /// of the field's own width, which the verifier checks against the struct's BTF.
    ///
    /// # Safety
    /// `addr` must be a BTF-typed kernel pointer plus a constant field offset, so that the
    /// verifier turns the load into a fault-safe `PROBE_MEM` load.
    unsafe fn load(addr: u64) -> Self;
}

impl Plain for u32 {
    #[inline(always)]
    unsafe fn load(addr: u64) -> Self {
        // SAFETY: see the trait; volatile keeps the load at this width and after the
        // NULL checks that precede it.
        unsafe { core::ptr::read_volatile(addr as *const u32) }
    }
}

impl Plain for u64 {
    #[inline(always)]
    unsafe fn load(addr: u64) -> Self {
        // SAFETY: as for `u32`.
        unsafe { core::ptr::read_volatile(addr as *const u64) }
    }
}

impl Plain for [u8; 16] {
    /// Two 8-byte loads (a byte array would otherwise be read a byte at a time).
    #[inline(always)]
    unsafe fn load(addr: u64) -> Self {
        // SAFETY: as for `u32`; the two halves of the array.
        let (lo, hi) = unsafe {
            (
                core::ptr::read_volatile(addr as *const u64),
                core::ptr::read_volatile((addr + 8) as *const u64),
            )
        };
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&lo.to_ne_bytes());
        out[8..].copy_from_slice(&hi.to_ne_bytes());
        out
    }
}

/// How a handle reads kernel memory: the choice is made once, where the first handle is
/// made, and every handle reached from it reads the same way.
pub trait Access: Copy + PartialEq + Eq {
    /// Reads a `T` at `addr`.
    fn read<T: Plain>(addr: u64) -> R<T>;
}

/// Reads through `bpf_probe_read_kernel`: works on any address (a bad one is an error
/// return). For addresses the verifier cannot type: those from `bpf_get_current_task`
/// (classic tracepoints), `container_of`, and array elements at a variable index.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Probe;

impl Access for Probe {
    #[inline(always)]
    fn read<T: Plain>(addr: u64) -> R<T> {
        let mut v = core::mem::MaybeUninit::<T>::uninit();
        // SAFETY: the helper writes at most size_of::<T>() bytes into `v`, which we own, and
        // reads the source address without faulting (a bad address is an error return).
        let r = unsafe {
            bpf_probe_read_kernel(
                v.as_mut_ptr() as *mut c_void,
                core::mem::size_of::<T>() as u32,
                addr as *const c_void,
            )
        };
        if r < 0 {
            return Err(ReadErr);
        }
        // SAFETY: the helper succeeded, so all bytes of `v` were written, and any bytes are a
        // valid `T` (`Plain`).
        Ok(unsafe { v.assume_init() })
    }
}

/// Reads with a plain load: for pointers the verifier types from BTF — a `tp_btf`
/// argument, and every pointer field loaded from one at a constant offset (the `OFFSETS`
/// are `.rodata` constants to it). The verifier checks each load against the struct's BTF
/// and the JIT makes it fault-safe (`PROBE_MEM`: a fault reads 0). Why: one load costs a
/// few ns where the `bpf_probe_read_kernel` helper costs tens (measured per program with
/// `kernel.bpf_stats_enabled`: the header fields of a record were most of each program's
/// time). What it gives up: a faulting read cannot be told from a zero field, so such a
/// read no longer sets `READ_ERROR`; NULL pointers are still errors (checked before use).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Direct;

impl Access for Direct {
    #[inline(always)]
    fn read<T: Plain>(addr: u64) -> R<T> {
        // SAFETY: a `Direct` address is a BTF-typed pointer plus constant offsets (only
        // `KPtr::field` and the `ptr` accessors make them), see `Plain::load`.
        Ok(unsafe { T::load(addr) })
    }
}

/// A non-NULL kernel address read with `A`. Only this module reads through it, with the
/// offsets of the handle type that owns it.
#[derive(Clone, Copy, PartialEq, Eq)]
struct KPtr<A: Access>(u64, core::marker::PhantomData<A>);

impl<A: Access> KPtr<A> {
    /// `None` for NULL.
    #[inline(always)]
    fn new(addr: u64) -> Option<Self> {
        if addr == 0 {
            None
        } else {
            Some(KPtr(addr, core::marker::PhantomData))
        }
    }

    /// Reads a `T` at `self + offset` from kernel memory.
    #[inline(always)]
    fn read<T: Plain>(self, offset: u32) -> R<T> {
        if offset == MISSING {
            return Err(ReadErr);
        }
        A::read(self.0 + offset as u64)
    }

    /// Reads the kernel pointer at `self + offset`; NULL is an error.
    #[inline(always)]
    fn ptr(self, offset: u32) -> R<KPtr<A>> {
        KPtr::new(self.read::<u64>(offset)?).ok_or(ReadErr)
    }

    /// `self + offset` without reading (an embedded struct); a missing offset is an error.
    #[inline(always)]
    fn field(self, offset: u32) -> R<KPtr<A>> {
        if offset == MISSING {
            return Err(ReadErr);
        }
        Ok(KPtr(self.0 + offset as u64, core::marker::PhantomData))
    }

    /// The same address, read through the helper from now on.
    #[inline(always)]
    fn probe(self) -> KPtr<Probe> {
        KPtr(self.0, core::marker::PhantomData)
    }

    /// `self - offset`: the containing struct of an embedded member (`container_of`).
    /// Read through the helper: the verifier rejects a load below a typed pointer.
    #[inline(always)]
    fn container(self, offset: u32) -> R<KPtr<Probe>> {
        if offset == MISSING {
            return Err(ReadErr);
        }
        Ok(KPtr(self.0 - offset as u64, core::marker::PhantomData))
    }
}

/// Declares a handle type for one kernel struct and its accessors, one line per field:
/// `val NAME: TYPE = OFFSET` reads a value, `ptr NAME: HANDLE = OFFSET` follows a non-NULL
/// pointer to another handle (read the same way). `OFFSET` names a field of [`Offsets`].
macro_rules! kernel_struct {
    (
        $(#[$doc:meta])*
        $name:ident {
            $( $(#[$fdoc:meta])* $how:ident $field:ident : $t:tt = $off:ident; )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name<A: Access>(KPtr<A>);

        impl<A: Access> $name<A> {
            $( kernel_struct!(@accessor $(#[$fdoc])* $how $field : $t = $off); )*

            /// The same object, read through the helper (for walks whose handles may come
            /// from [`Probe`] reads).
            #[allow(dead_code)]
            #[inline(always)]
            pub fn probe(self) -> $name<Probe> {
                $name(self.0.probe())
            }
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
        pub fn $field(self) -> R<$t<A>> {
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

impl<A: Access> Task<A> {
    /// The task at `addr`; `None` for NULL. [`Direct`] only for a `tp_btf` argument (the
    /// tracepoint's BTF types it as `struct task_struct *`).
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

impl<A: Access> VfsMount<A> {
    /// The `struct mount` this `vfsmount` is embedded in (`real_mount()`), read through
    /// the helper (see [`KPtr::container`]).
    #[inline(always)]
    pub fn mount(self) -> R<Mount<Probe>> {
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

impl<A: Access> Mount<A> {
    /// The embedded `mnt` member.
    #[inline(always)]
    pub fn mnt(self) -> R<VfsMount<A>> {
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

impl<A: Access> KernfsNode<A> {
    /// The parent directory; `None` at the hierarchy's root (NULL parent), an error when
    /// the read failed — so a path walk can tell "reached the root" from "could not look".
    #[inline(always)]
    pub fn parent(self) -> R<Option<KernfsNode<A>>> {
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
        /// `pids[PIDTYPE_PGID]`: the process group leader's pid.
        ptr pgid_pid: Pid = signal_pgid_pid;
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

impl<A: Access> Pid<A> {
    /// `numbers[0]`: the pid's number and namespace in the initial pid namespace (a
    /// constant offset, so read like the pid itself).
    #[inline(always)]
    pub fn upid0(self) -> R<Upid<A>> {
        self.0.field(off!(pid_numbers)).map(Upid)
    }

    /// `numbers[level]`: the pid's number and namespace at `level`. Bounds `level` (the
    /// kernel nests at most 32 pid namespaces) and the `upid` size so the address stays
    /// inside the object. Read through the helper: a variable index is no constant offset.
    #[inline(always)]
    pub fn upid(self, level: u32) -> R<Upid<Probe>> {
        if level > 31 {
            return Err(ReadErr);
        }
        let size = off!(upid_size);
        if size > 64 {
            return Err(ReadErr);
        }
        let numbers = self.0.field(off!(pid_numbers))?.probe();
        Ok(Upid(KPtr(
            numbers.0 + (level * size) as u64,
            core::marker::PhantomData,
        )))
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

impl<A: Access> Binprm<A> {
    /// The `linux_binprm *` argument of `sched_process_exec`; `None` for NULL.
    #[inline(always)]
    pub fn from_arg(addr: u64) -> Option<Self> {
        KPtr::new(addr).map(Binprm)
    }
}

/// A NUL-terminated string in kernel memory; only [`crate::record::Record`] copies it
/// (always through `bpf_probe_read_kernel_str`, whatever `A`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KStr<A: Access>(KPtr<A>);

impl<A: Access> KStr<A> {
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
