//! The kernel-record decoder: any bytes are either a [`ProcessEvent`] whose strings fit in
//! the sections the header declares, or a counted error — never a panic or an allocation
//! beyond the record's own size.
#![no_main]

use detector::event::{Decoder, decode};
use detector_common::{EventHeader, HEADER_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = Decoder::default();
    let Ok(ev) = decode(data) else {
        assert!(d.decode(data).is_none());
        assert_eq!(d.malformed, 1);
        return;
    };
    assert!(d.decode(data).is_some());
    // A record long enough to decode holds a whole header.
    assert!(data.len() >= HEADER_SIZE);
    // SAFETY: at least HEADER_SIZE bytes; the header is plain integers.
    let h: EventHeader = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    assert!(ev.comm.len() <= 16 && !ev.comm.contains(&0));
    assert!(ev.filename.len() <= h.filename_len as usize && !ev.filename.contains(&0));
    assert!(ev.cgroup_leaf.len() <= h.cgroup_leaf_len as usize && !ev.cgroup_leaf.contains(&0));
    assert!(
        ev.cgroup_parent.len() <= h.cgroup_parent_len as usize && !ev.cgroup_parent.contains(&0)
    );
    // Joining components adds at most the leading '/'.
    assert!(ev.exe_path.len() <= h.exe_len as usize + 1);
    let argv_bytes: usize = ev.argv.iter().map(|a| a.len() + 1).sum();
    assert!(argv_bytes <= h.argv_len as usize + 1);
    assert!(ev.argv.iter().all(|a| !a.contains(&0)));
    assert_eq!(ev.pid, h.pid);
    assert_eq!(ev.boot_ns, h.boot_ns);
});
