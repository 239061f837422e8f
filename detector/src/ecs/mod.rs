//! Typed ECS (Elastic Common Schema 9.x) documents.
//!
//! One document type, [`EcsDocument`], serves process events and alerts alike: an alert is
//! the event it fired on plus `rule.*`, `threat.*` and a few `event.*` fields (see
//! [`crate::alert`]). Field names and types follow ECS 9.4 (`ecs_flat.yml`); a test
//! serializes fully populated documents and validates every leaf against that file.
//!
//! How a document is built: start from [`EcsDocument::default()`] (or
//! [`EcsDocument::process_event`]) and fill the parts you know; every field is an `Option`
//! (or a `Vec`) and absent values are left out of the JSON. Parts computed once and shared by
//! every event (`host`, `agent`, a container's description) are wrapped in [`Shared`], a
//! cheap-to-clone `Arc` that serializes as its content.
//!
//! What ECS lacks lives under one custom namespace, `detector.*` ([`Detector`]):
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `detector.process.args_truncated` | boolean | the kernel's argv capture hit its bound |
//! | `detector.process.exe_path_partial` | boolean | `process.executable` is a path suffix |
//! | `detector.process.mnt_ns_ino` | long | mount namespace inode of the process |
//! | `detector.cgroup.id` | long | cgroup v2 id (inode) of the process |
//! | `detector.cgroup.path` | keyword | whole cgroup v2 path, read in the kernel at the event |
//! | `detector.startup_scan` | boolean | synthesized from `/proc` at daemon start |
//! | `detector.alert.suppressed_count` | long | alerts of this rule folded into this one |
//! | `detector.event.boot_ns` | long | CLOCK_BOOTTIME ns of the kernel event |
//! | `detector.loss.kernel_lost` | long | kernel events lost since the last loss report |
//! | `detector.loss.kernel_lost_total` | long | kernel events lost since start |
//! | `detector.loss.malformed` | long | undecodable records since the last loss report |
//! | `detector.loss.alerts_dropped` | long | alert lines dropped by a full output queue |
//! | `detector.loss.sequence_events_late` | long | events not fed to sequences (late for the reorder window, or untimed) |
//! | `detector.loss.sequences_evicted` | long | pending sequences evicted by the state bounds |
//!
//! Byte strings from the kernel (argv, paths, names) become JSON strings through [`text`]:
//! invalid UTF-8 is replaced by U+FFFD (lossy, documented), and serde_json escapes control
//! characters, quotes and backslashes, so any bytes give one valid JSON line.

mod build;
mod caps;
mod doc;
pub mod field;
mod probe;
mod process;
mod schema;
mod shared;
mod time;

pub use build::{DocBuilder, action_and_type};
pub use caps::cap_names;
pub use doc::*;
/// Synthetic snapshots and a builder, for tests of what reads probes (the daemon stage).
#[cfg(test)]
pub(crate) use probe::tests as probe_testkit;
pub use probe::{ARGS_FIELDS, ModelProbe};
pub use process::*;
pub use schema::integration::{INTEGRATION_FIELDS, IntegrationField};
pub use schema::known::{FieldSource, FieldStatus, ecs_table_version, ecs_type};
pub use schema::{DEFEND_FIELDS, EcsSchema, UNPOPULATED_FIELDS, schema};
pub use shared::Shared;
pub use time::{format_rfc3339_nanos, format_system_time, now_rfc3339};

/// The ECS version our documents conform to (`ecs.version`): the field set of
/// `ecs_flat.yml` 9.4.0.
pub const ECS_VERSION: &str = "9.4.0";

/// Renders kernel bytes as a string for a JSON field.
///
/// Invalid UTF-8 sequences are replaced by U+FFFD (so a path that is not UTF-8 cannot be
/// reproduced exactly from the document: the lossy rendering is a deliberate trade for valid
/// JSON). NUL bytes are kept as `\u0000` escapes by serde_json, as are all other control
/// characters; nothing here can produce an unescaped control character in the output.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A keyword field rendered from kernel bytes (`*.name`, `*.executable`): [`text`], and
/// absent (`None`) when empty. Borrowed when the bytes are UTF-8.
///
/// The document builder and the [`ModelProbe`] both render these fields through this one
/// function, so the rules see the same value before and after the document is built.
pub fn keyword(bytes: &[u8]) -> Option<std::borrow::Cow<'_, str>> {
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes))
}

/// A multi-valued keyword field rendered from kernel byte strings (`*.args`): each element
/// through [`text`], into `out` (whose strings are reused, so a warm buffer allocates
/// nothing). Shared by the document builder and the [`ModelProbe`], as [`keyword`] is.
pub fn keywords(items: &[Vec<u8>], out: &mut Vec<String>) {
    out.truncate(items.len());
    for (i, b) in items.iter().enumerate() {
        let s = String::from_utf8_lossy(b);
        match out.get_mut(i) {
            Some(o) => {
                o.clear();
                o.push_str(&s);
            }
            None => out.push(s.into_owned()),
        }
    }
}

/// Joins argv into a `process.command_line` the way Elastic's sensors do: arguments
/// separated by one space, each rendered through [`text`].
pub fn command_line(args: &[String]) -> String {
    args.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_lossy_and_json_safe() {
        let s = text(b"a\xffb\n\"\0\x1b");
        assert_eq!(s, "a\u{fffd}b\n\"\0\x1b");
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            !json.bytes().any(|b| b < 0x20),
            "unescaped control char in {json}"
        );
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), s);
    }

    #[test]
    fn construction_helpers() {
        let core = ProcessCore {
            pid: Some(10),
            vpid: Some(1),
            entity_id: Some("e10".into()),
            start: Some("2026-01-01T00:00:00Z".into()),
            name: Some("sh".into()),
            ..Default::default()
        };
        let sl = ProcessCore {
            pid: Some(5),
            entity_id: Some("e5".into()),
            ..Default::default()
        };
        let lp = LeaderParent::new(&core, Some(&sl));
        assert_eq!(
            (lp.pid, lp.vpid, lp.entity_id.as_deref()),
            (Some(10), Some(1), Some("e10"))
        );
        assert_eq!(lp.session_leader.unwrap().pid, Some(5));
        let v = serde_json::to_value(Tty::char_device(136, 2)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"char_device": {"major": 136, "minor": 2}})
        );
        let v = serde_json::to_value(IdName::new(0, None)).unwrap();
        assert_eq!(v, serde_json::json!({"id": "0"}));
        // Empty parts are left out entirely: no null, {} or [].
        let doc = EcsDocument {
            process: Some(Process {
                parent: Some(Parent::default()),
                ..Default::default()
            }),
            user: Some(User {
                group: Some(IdName::default()),
                ext: Some(IdExt::default()),
                ..Default::default()
            }),
            tags: vec![],
            ..Default::default()
        };
        assert_eq!(serde_json::to_string(&doc).unwrap(), "{}");
        println!(
            "size_of::<EcsDocument>() = {}",
            std::mem::size_of::<EcsDocument>()
        );
    }

    #[test]
    fn command_line_joins_with_spaces() {
        assert_eq!(command_line(&["ssh".into(), "-V".into()]), "ssh -V");
        assert_eq!(command_line(&[]), "");
    }
}
