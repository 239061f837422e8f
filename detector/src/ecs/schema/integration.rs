//! Fields outside ECS that Elastic's published rules read: Elastic Defend's `*.Ext.*`
//! extensions and fields of other Elastic integrations (Auditd Manager, Kubernetes audit
//! logs). Our sensor fills none of them unless the field table has a row for it; they are
//! listed so that a rule reading them compiles and reads them as missing, as it does
//! against an Elasticsearch index whose mapping has them but whose documents do not.
//!
//! The list is ours, written by hand from what the rule corpora read (a test of
//! `schema::known` asserts that every field any rule of the corpora reads is known): each
//! entry names where the field comes from, so `check-rules` can say what data a rule needs.

use crate::ecs::field::FieldType;

/// One non-ECS field rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntegrationField {
    /// Dotted path, as rules write it (without the backquotes some need).
    pub path: &'static str,
    /// Its type in the producing integration's mapping.
    pub ty: FieldType,
    /// Which data produces it.
    pub source: &'static str,
}

const DEFEND_PROCESS: &str = "Elastic Defend process events";
const DEFEND_FILE: &str = "Elastic Defend file events";
const DEFEND_MODULE: &str = "Elastic Defend kernel-module load events (8.x: absent; 9.5+)";
const AUDITD: &str = "Auditd Manager integration (auditd_manager.auditd) or Auditbeat";
const K8S_AUDIT: &str = "Kubernetes integration, audit logs (kubernetes.audit_logs)";

const fn f(path: &'static str, ty: FieldType, source: &'static str) -> IntegrationField {
    IntegrationField { path, ty, source }
}

/// Every non-ECS field the corpora read, sorted by path.
pub const INTEGRATION_FIELDS: &[IntegrationField] = &[
    f("auditd.data.a0", FieldType::Keyword, AUDITD),
    f("auditd.data.a1", FieldType::Keyword, AUDITD),
    f("auditd.data.a2", FieldType::Keyword, AUDITD),
    f("auditd.data.class", FieldType::Keyword, AUDITD),
    f("auditd.data.socket.family", FieldType::Keyword, AUDITD),
    f("auditd.data.syscall", FieldType::Keyword, AUDITD),
    // The name a renamed file had before.
    f("file.Ext.original.name", FieldType::Keyword, DEFEND_FILE),
    // The real gid of the process (ECS has `process.real_group.id`).
    f("group.Ext.real.id", FieldType::Keyword, DEFEND_PROCESS),
    f(
        "kubernetes.audit.annotations.authorization_k8s_io/decision",
        FieldType::Keyword,
        K8S_AUDIT,
    ),
    f(
        "kubernetes.audit.objectRef.resource",
        FieldType::Keyword,
        K8S_AUDIT,
    ),
    f(
        "kubernetes.audit.objectRef.subresource",
        FieldType::Keyword,
        K8S_AUDIT,
    ),
    f("kubernetes.audit.stage", FieldType::Keyword, K8S_AUDIT),
    f(
        "kubernetes.audit.user.extra.authentication.kubernetes.io/pod-name",
        FieldType::Keyword,
        K8S_AUDIT,
    ),
    f("kubernetes.audit.verb", FieldType::Keyword, K8S_AUDIT),
    // The kernel's taint flags of a loaded module.
    f(
        "process.Ext.load_module.taint_flags",
        FieldType::Keyword,
        DEFEND_MODULE,
    ),
    // The real uid of the process (ECS has `process.real_user.id`).
    f("user.Ext.real.id", FieldType::Keyword, DEFEND_PROCESS),
];

/// The entry of `path`, if it is one of [`INTEGRATION_FIELDS`].
pub fn integration_field(path: &str) -> Option<&'static IntegrationField> {
    INTEGRATION_FIELDS
        .binary_search_by(|e| e.path.cmp(path))
        .ok()
        .map(|i| &INTEGRATION_FIELDS[i])
}
