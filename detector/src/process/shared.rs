//! A record's output [`ProcInfo`], built once and shared while it holds.
//!
//! Why: with sequence rules loaded, most fork and exec events get a snapshot, and a
//! snapshot names up to five processes (the subject, its parent, three leaders), most of
//! them the same few shells again and again. Building each of those infos afresh (names
//! looked up, ids and references copied) and dropping them again was most of what the
//! process model added per event. Now a record keeps the `Arc<ProcInfo>` it last built,
//! and a snapshot is a handful of reference-count increments.
//!
//! Exactness: a cached info is used only when it is exactly what would be built now. It
//! is checked, on every use, against
//! - the record: every field [`super::view::bare_info`] copies ([`same_bare`]);
//! - the parent reference: the parent the table finds now (it may have left the table);
//! - the user and group names: the name cache has not changed since
//!   ([`super::users::UserNames::generation`]), and every name was found or a lookup of a
//!   missing one would not reload the files now ([`super::users::UserNames::misses_hold`]);
//!   otherwise the names are looked up again, as before.
//!
//! Otherwise a new info is built and cached. The cached value is immutable behind its
//! `Arc`: a later change to the record builds a new one, so a snapshot (or a leader link)
//! holding the old one keeps what the process was when it was taken.

use std::cell::RefCell;
use std::sync::Arc;

use super::entity::IdContext;
use super::model::{ProcInfo, ProcRef};
use super::record::Rec;

/// The cache slot in a record (see the module docs).
#[derive(Clone, Debug, Default)]
pub(super) struct InfoCache(RefCell<Option<Cached>>);

#[derive(Clone, Debug)]
struct Cached {
    /// [`super::users::UserNames::generation`] when the names were looked up.
    names_generation: u64,
    info: Arc<ProcInfo>,
}

impl InfoCache {
    /// The cached info, if it is what would be built now for `r` with parent `parent`
    /// (a reference to it, as the table finds it now) and names of `names_generation`;
    /// `misses_hold` says whether a missing name would stay missing (no reload) now.
    pub fn get(
        &self,
        ids: &IdContext,
        r: &Rec,
        parent: Option<&Rec>,
        names_generation: u64,
        misses_hold: impl FnOnce() -> bool,
    ) -> Option<Arc<ProcInfo>> {
        let slot = self.0.borrow();
        let c = slot.as_ref()?;
        let i = &c.info;
        let all_found = i.creds.user.name.is_some()
            && i.creds.real_user.name.is_some()
            && i.creds.group.name.is_some()
            && i.creds.real_group.name.is_some();
        let names_hold = c.names_generation == names_generation && (all_found || misses_hold());
        let fresh = names_hold && same_bare(i, r) && same_ref(ids, i.parent.as_ref(), parent);
        fresh.then(|| Arc::clone(i))
    }

    /// Remember `info`, built for the record now with names of `names_generation`.
    pub fn set(&self, info: Arc<ProcInfo>, names_generation: u64) {
        *self.0.borrow_mut() = Some(Cached {
            names_generation,
            info,
        });
    }
}

/// Whether `i` holds what [`super::view::bare_info`] would copy from `r` now (its entity id
/// is `r`'s: a record's identity never changes). Keep in step with `bare_info`: the
/// debug-build check in `View::info` compares the two on every use.
fn same_bare(i: &ProcInfo, r: &Rec) -> bool {
    let c = &i.creds;
    i.pid == r.tgid
        && i.vpid == r.ns_pid
        && i.ppid == r.ppid
        && i.pgid == r.pgid
        && i.sid == r.sid
        && Arc::ptr_eq(&i.image, &r.image)
        && i.start_boot_ns == r.start_boot_ns
        && i.end_boot_ns == r.exit.map(|(_, end)| end)
        && i.exit_code == r.exit.map(|(code, _)| code)
        && i.interactive == r.tty.is_some()
        && i.tty == r.tty
        && c.caps == r.caps
        && c.user.id == r.euid
        && c.real_user.id == r.uid
        && c.group.id == r.egid
        && c.real_group.id == r.gid
        && i.pid_ns_ino == r.pid_ns
        && i.mnt_ns_ino == r.mnt_ns
        && i.cgroup_id == r.cgroup_id
}

/// Whether `cached` is the reference `to_ref` would make of `now`.
fn same_ref(ids: &IdContext, cached: Option<&ProcRef>, now: Option<&Rec>) -> bool {
    match (cached, now) {
        (None, None) => true,
        (Some(c), Some(p)) => {
            c.pid == p.tgid
                && c.vpid == p.ns_pid
                && c.start_boot_ns == p.start_boot_ns
                && c.entity_id == p.entity_id(ids)
        }
        _ => false,
    }
}
