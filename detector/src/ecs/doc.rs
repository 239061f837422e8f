//! The ECS document: top-level field sets (`event`, `host`, `container`, …) and the custom
//! `detector.*` namespace. Process field sets live in `process.rs`.

use std::borrow::Cow;

use super::{ECS_VERSION, Process, Shared};

/// Whether a value is left out of the JSON: `None`, an empty `Vec`, or an object whose
/// fields are all left out. Keeps documents free of `null`, `[]` and `{}`.
pub trait Skip {
    /// `true` when serialization leaves the value out.
    fn skip(&self) -> bool;
}

impl<T: Skip> Skip for Option<T> {
    fn skip(&self) -> bool {
        self.as_ref().is_none_or(Skip::skip)
    }
}
impl<T> Skip for Vec<T> {
    fn skip(&self) -> bool {
        self.is_empty()
    }
}
impl<T: Skip> Skip for Shared<T> {
    fn skip(&self) -> bool {
        (**self).skip()
    }
}
macro_rules! never_skip {
    ($($t:ty),*) => { $(impl Skip for $t { fn skip(&self) -> bool { false } })* };
}
never_skip!(String, Cow<'static, str>, bool, u32, u64, i32, i64, f64);

/// Declares an ECS object: serde derives, absent fields skipped, `#[serde(default)]` so a
/// document from elsewhere (replay) may leave out anything.
macro_rules! ecs_object {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(default)]
        pub struct $name {
            $( $(#[$fm])* #[serde(skip_serializing_if = "crate::ecs::Skip::skip")] pub $f: $t, )*
        }
        impl crate::ecs::Skip for $name {
            fn skip(&self) -> bool {
                true $(&& crate::ecs::Skip::skip(&self.$f))*
            }
        }
    };
}
pub(crate) use ecs_object;

ecs_object! {
    /// One ECS document: a process event, or an alert (the event plus `rule`, `threat` and
    /// the alert's `event.*` values).
    pub struct EcsDocument {
        /// `@timestamp`: when the event happened (RFC 3339).
        #[serde(rename = "@timestamp")]
        pub timestamp: Option<String>,
        pub event: Option<Event>,
        pub process: Option<Process>,
        /// The effective user of the process (`user.id` is what rules test).
        pub user: Option<User>,
        /// The effective group of the process.
        pub group: Option<Group>,
        pub container: Option<Shared<Container>>,
        pub orchestrator: Option<Shared<Orchestrator>>,
        pub host: Option<Shared<Host>>,
        pub agent: Option<Shared<Agent>>,
        pub ecs: Option<Ecs>,
        /// Alerts: the rule's name.
        pub message: Option<String>,
        pub tags: Vec<String>,
        pub rule: Option<Shared<Rule>>,
        pub threat: Option<Shared<Threat>>,
        /// The custom namespace: everything ECS has no field for.
        pub detector: Option<Detector>,
    }
}

impl EcsDocument {
    /// A process event skeleton: `event.kind: event`, `event.category: [process]`,
    /// `event.module: detector`, `event.dataset: detector.process`, `ecs.version`, and the
    /// given action (`fork`, `exec`, `end`) and types (`start` / `end`).
    pub fn process_event(action: &str, event_type: &str) -> Self {
        EcsDocument {
            event: Some(Event {
                kind: Some("event".into()),
                category: vec!["process".into()],
                r#type: vec![event_type.into()],
                action: Some(action.into()),
                module: Some(EVENT_MODULE.into()),
                dataset: Some(PROCESS_DATASET.into()),
                ..Event::default()
            }),
            ecs: Some(Ecs::current()),
            ..EcsDocument::default()
        }
    }
}

/// `event.module` of everything we emit: ours, not `cloud_defend` (Elastic's integration),
/// so Elastic's External Alerts rule treats our alerts as external ones.
pub const EVENT_MODULE: &str = "detector";
/// `event.action` of a process found running at start-up, as Elastic Defend reports it.
pub const ALREADY_RUNNING_ACTION: &str = "already_running";
/// `event.type` of an `already_running` event (Elastic Defend's).
pub const ALREADY_RUNNING_TYPE: &str = "info";
/// `event.dataset` of process events.
pub const PROCESS_DATASET: &str = "detector.process";
/// `event.dataset` of alerts.
pub const ALERT_DATASET: &str = "detector.alerts";

ecs_object! {
    /// `event.*`.
    pub struct Event {
        /// `event`, or `alert` for alerts.
        pub kind: Option<String>,
        pub category: Vec<String>,
        pub r#type: Vec<String>,
        /// `fork`, `exec` or `end` for process events.
        pub action: Option<String>,
        pub id: Option<String>,
        pub created: Option<String>,
        pub module: Option<String>,
        pub dataset: Option<String>,
        /// Monotonic sequence number of the event at its source.
        pub sequence: Option<u64>,
        /// Alerts: 21, 47, 73 or 99.
        pub severity: Option<i64>,
        /// Alerts: the rule's risk score (ECS `float`).
        pub risk_score: Option<f64>,
    }
}

ecs_object! {
    /// An `{id, name}` pair: `group`, `process.user`, `process.group`, `process.real_user`, ….
    pub struct IdName {
        pub id: Option<String>,
        pub name: Option<String>,
    }
}

impl IdName {
    /// A numeric id (as ECS's keyword) with an optional resolved name.
    pub fn new(id: u32, name: Option<String>) -> Self {
        IdName {
            id: Some(id.to_string()),
            name,
        }
    }
}

ecs_object! {
    /// `user.*`.
    pub struct User {
        pub id: Option<String>,
        pub name: Option<String>,
        pub group: Option<IdName>,
        /// Elastic Defend's `user.Ext.*`.
        #[serde(rename = "Ext")]
        pub ext: Option<IdExt>,
    }
}

ecs_object! {
    /// `group.*`: the effective group, and Elastic Defend's `group.Ext.*`.
    pub struct Group {
        pub id: Option<String>,
        pub name: Option<String>,
        #[serde(rename = "Ext")]
        pub ext: Option<IdExt>,
    }
}

ecs_object! {
    /// Elastic Defend's `user.Ext` / `group.Ext`: the real id beside ECS's effective one.
    pub struct IdExt {
        pub real: Option<IdName>,
    }
}

ecs_object! {
    /// `container.*`.
    pub struct Container {
        /// Full id (64 hex for docker/containerd/CRI-O/podman), or the name for LXC/nspawn.
        pub id: Option<String>,
        pub runtime: Option<String>,
        pub name: Option<String>,
        pub image: Option<ContainerImage>,
        pub security_context: Option<ContainerSecurityContext>,
    }
}

ecs_object! {
    /// `container.security_context.*`.
    pub struct ContainerSecurityContext {
        /// Whether the container runs privileged (all capabilities and devices); absent when
        /// its runtime's state does not tell.
        pub privileged: Option<bool>,
    }
}

ecs_object! {
    /// `container.image.*`.
    pub struct ContainerImage {
        pub name: Option<String>,
        /// ECS declares `container.image.tag` an array.
        pub tag: Vec<String>,
    }
}

ecs_object! {
    /// `orchestrator.*` (Kubernetes when known).
    pub struct Orchestrator {
        /// `kubernetes`.
        pub r#type: Option<String>,
        pub namespace: Option<String>,
        pub resource: Option<OrchestratorResource>,
        pub cluster: Option<OrchestratorCluster>,
    }
}

ecs_object! {
    /// `orchestrator.cluster.*`.
    pub struct OrchestratorCluster {
        pub name: Option<String>,
    }
}

ecs_object! {
    /// `orchestrator.resource.*`.
    pub struct OrchestratorResource {
        pub name: Option<String>,
        /// `pod`.
        pub r#type: Option<String>,
    }
}

ecs_object! {
    /// `host.*`.
    pub struct Host {
        pub hostname: Option<String>,
        pub name: Option<String>,
        /// `/etc/machine-id`.
        pub id: Option<String>,
        pub architecture: Option<String>,
        pub boot: Option<HostBoot>,
        pub os: Option<Os>,
        /// Inode of the host's (init's) pid namespace; ECS types it `keyword`.
        pub pid_ns_ino: Option<String>,
    }
}

ecs_object! {
    /// `host.boot.*`.
    pub struct HostBoot {
        /// `/proc/sys/kernel/random/boot_id`.
        pub id: Option<String>,
    }
}

ecs_object! {
    /// `host.os.*`.
    pub struct Os {
        /// `linux`.
        pub r#type: Option<String>,
        pub family: Option<String>,
        pub name: Option<String>,
        pub version: Option<String>,
        pub kernel: Option<String>,
        pub full: Option<String>,
        pub platform: Option<String>,
    }
}

ecs_object! {
    /// `agent.*`: this daemon. (`observer.*` is ECS's field set for network and security
    /// appliances that watch others' traffic; a host sensor is an agent, as in Elastic Defend.)
    pub struct Agent {
        pub id: Option<String>,
        pub name: Option<String>,
        /// `detector`.
        pub r#type: Option<String>,
        pub version: Option<String>,
    }
}

ecs_object! {
    /// `ecs.*`.
    pub struct Ecs {
        pub version: Option<Cow<'static, str>>,
    }
}

impl Ecs {
    /// `ecs.version` = [`ECS_VERSION`], without allocating.
    pub fn current() -> Self {
        Ecs {
            version: Some(Cow::Borrowed(ECS_VERSION)),
        }
    }
}

ecs_object! {
    /// `rule.*` of an alert.
    pub struct Rule {
        /// The detection rule's `rule_id`.
        pub id: Option<String>,
        /// Also the `rule_id` (stable across versions of the rule, as Elastic uses it).
        pub uuid: Option<String>,
        pub name: Option<String>,
        pub description: Option<String>,
        /// The rule's first reference URL (ECS `rule.reference` is one keyword).
        pub reference: Option<String>,
        pub author: Vec<String>,
        pub license: Option<String>,
        pub ruleset: Option<String>,
        /// ECS types `rule.version` as `keyword`.
        pub version: Option<String>,
        pub category: Option<String>,
    }
}

ecs_object! {
    /// `threat.*` of an alert: the rule's MITRE tables flattened into ECS's parallel arrays.
    pub struct Threat {
        pub framework: Option<String>,
        pub tactic: Option<ThreatRefs>,
        pub technique: Option<Techniques>,
    }
}

ecs_object! {
    /// Parallel `id` / `name` / `reference` arrays (a tactic or subtechnique list).
    pub struct ThreatRefs {
        pub id: Vec<String>,
        pub name: Vec<String>,
        pub reference: Vec<String>,
    }
}

ecs_object! {
    /// `threat.technique.*`.
    pub struct Techniques {
        pub id: Vec<String>,
        pub name: Vec<String>,
        pub reference: Vec<String>,
        pub subtechnique: Option<ThreatRefs>,
    }
}

ecs_object! {
    /// `detector.*`: the custom namespace (see the module docs for the table).
    pub struct Detector {
        pub process: Option<DetectorProcess>,
        pub cgroup: Option<DetectorCgroup>,
        /// The event was synthesized from `/proc` when the daemon started.
        pub startup_scan: Option<bool>,
        pub alert: Option<DetectorAlert>,
        pub event: Option<DetectorEvent>,
        pub loss: Option<DetectorLoss>,
    }
}

ecs_object! {
    /// `detector.process.*`: capture quality and namespaces of the subject process.
    pub struct DetectorProcess {
        /// The kernel's argv capture hit its bound: `process.args` is a prefix.
        pub args_truncated: Option<bool>,
        /// The path walk stopped early: `process.executable` is a suffix.
        pub exe_path_partial: Option<bool>,
        pub mnt_ns_ino: Option<u64>,
        /// The working-directory walk stopped early: `process.working_directory` is a
        /// suffix.
        pub working_directory_partial: Option<bool>,
        /// The environment capture hit its bound: `process.env_vars` may miss variables.
        pub env_vars_truncated: Option<bool>,
    }
}

ecs_object! {
    /// `detector.cgroup.*`: the process's cgroup v2.
    pub struct DetectorCgroup {
        pub id: Option<u64>,
        pub path: Option<String>,
    }
}

ecs_object! {
    /// `detector.alert.*`.
    pub struct DetectorAlert {
        /// Alerts of the same rule and subject suppressed into this one.
        pub suppressed_count: Option<u64>,
    }
}

ecs_object! {
    /// `detector.event.*`: the kernel's view of the event.
    pub struct DetectorEvent {
        /// CLOCK_BOOTTIME ns when the kernel saw the event: exact ordering, and the start of
        /// the detection-latency measurement (`@timestamp` is the same instant on the wall
        /// clock, rounded through the boot time estimate).
        pub boot_ns: Option<u64>,
    }
}

ecs_object! {
    /// `detector.loss.*`: on `event.kind: metric` loss reports written to the alert stream,
    /// so whoever tails alerts sees the gaps.
    pub struct DetectorLoss {
        /// Kernel events the ring buffer had no room for since the previous report.
        pub kernel_lost: Option<u64>,
        /// Kernel events lost since the daemon started.
        pub kernel_lost_total: Option<u64>,
        /// Records that could not be decoded since the previous report.
        pub malformed: Option<u64>,
        /// Alert lines an output had to drop (retry queue full) since the previous report.
        pub alerts_dropped: Option<u64>,
        /// Events not fed to EQL sequences since the previous report: later than the
        /// reorder window, or without `@timestamp`.
        pub sequence_events_late: Option<u64>,
        /// Pending EQL sequences evicted by the state bounds since the previous report.
        pub sequences_evicted: Option<u64>,
    }
}
