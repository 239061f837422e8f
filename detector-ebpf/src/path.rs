//! The path walk shared by the `exe` and `cwd` sections: from a (dentry, mount) up to the
//! task's root, crossing mounts, leaf first. No `unsafe` here.

use detector_common::{EXE_COMPONENT_MAX, EXE_DEPTH_MAX};

use crate::{
    kernel::{Dentry, Mount, Probe, VfsMount},
    record::Record,
};

/// Appends the components of the path of `dentry` in `mount` up to (`root_dentry`,
/// `root_mnt`), leaf first, each NUL-terminated, writing at most `MAX` bytes. Returns
/// whether the walk reached the root (or the namespace's root mount) within its bounds; a
/// `false` walk leaves the components nearest to the leaf.
#[inline(always)]
pub fn walk_path<const MAX: usize>(
    rec: &mut Record,
    mut dentry: Dentry<Probe>,
    mut mount: Mount<Probe>,
    root_dentry: Dentry<Probe>,
    root_mnt: VfsMount<Probe>,
) -> bool {
    const { assert!(MAX > EXE_COMPONENT_MAX) };
    let start = rec.written();
    let mut i = 0u32;
    while i < EXE_DEPTH_MAX + 8 {
        i += 1;
        rec.settle_cursor();
        let Ok(mnt) = mount.mnt() else {
            return false;
        };
        if dentry == root_dentry && mnt == root_mnt {
            return true;
        }
        let Ok(mnt_root) = mnt.root() else {
            return false;
        };
        let Ok(parent) = dentry.parent() else {
            return false;
        };
        if dentry == mnt_root || dentry == parent {
            // Top of this mount: continue from its mountpoint in the parent mount.
            let Ok(mparent) = mount.parent() else {
                return false;
            };
            if mparent == mount {
                // The namespace's root mount, above the task's root: path is complete
                // relative to the global root (the task is outside its own root).
                return true;
            }
            let Ok(mp) = mount.mountpoint() else {
                return false;
            };
            dentry = mp;
            mount = mparent;
            continue;
        }
        if rec.written() - start > MAX - EXE_COMPONENT_MAX {
            return false;
        }
        let Ok(name) = dentry.name() else {
            return false;
        };
        if rec.put_kstr::<EXE_COMPONENT_MAX, _>(name) == 0 {
            return false;
        }
        dentry = parent;
    }
    false
}
