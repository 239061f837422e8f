//! Capability sets as ECS keyword arrays (`process.thread.capabilities.*`): the names
//! Elastic Defend writes (`CAP_SYS_ADMIN`, …), in bit order.

/// The kernel's capability names by bit (`include/uapi/linux/capability.h`, 0–40).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The names of the bits set in `set`, in bit order; a bit this table does not name (a
/// newer kernel's) becomes `CAP_<n>`.
pub fn cap_names(set: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| set & (1u64 << bit) != 0)
        .map(|bit| match NAMES.get(bit) {
            Some(n) => (*n).to_owned(),
            None => format!("CAP_{bit}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::cap_names;

    #[test]
    fn names_by_bit() {
        assert!(cap_names(0).is_empty());
        assert_eq!(cap_names(1 << 21), ["CAP_SYS_ADMIN"]);
        assert_eq!(
            cap_names((1 << 6) | (1 << 7) | (1 << 19)),
            ["CAP_SETGID", "CAP_SETUID", "CAP_SYS_PTRACE"]
        );
        // A full root set of a 6.x kernel: 41 names, the last CAP_CHECKPOINT_RESTORE.
        let all = cap_names((1 << 41) - 1);
        assert_eq!(all.len(), 41);
        assert_eq!(all.last().unwrap(), "CAP_CHECKPOINT_RESTORE");
        assert_eq!(cap_names(1 << 45), ["CAP_45"]);
    }
}
