//! The ECS stage: a process-model [`Snapshot`] (plus the raw kernel event, when there is
//! one) becomes an [`EcsDocument`].
//!
//! Host, agent and per-container parts are built once and shared (`Shared` is an `Arc`), so a
//! document costs the process fields only. Byte strings are rendered through [`text`]
//! ([`keyword`], [`keywords`]).
//!
//! Every document starts from the builder's template for its event kind
//! ([`DocBuilder::template`]), and the fields a [`ModelProbe`] reads from the model are
//! rendered by the same functions here and there: what the probe says of a field is what
//! the document will hold.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::sync::Arc;

use super::{
    Agent, Capabilities, Container, ContainerImage, ContainerSecurityContext, Detector,
    DetectorCgroup, DetectorEvent, DetectorProcess, EcsDocument, EntryLeader, EntryMeta, Group,
    GroupLeader, Host, HostBoot, IdExt, IdName, LeaderParent, ModelProbe, Orchestrator,
    OrchestratorCluster, OrchestratorResource, Os, Parent, Previous, Process, ProcessCore,
    ProcessRef, SessionLeader, Shared, Thread, Tty, User, cap_names, format_rfc3339_nanos, keyword,
    keywords, text,
};
use crate::container::ContainerInfo;
use crate::event::{EventKind, ProcessEvent};
use crate::host::{AgentInfo, HostInfo};
use crate::process::{ExecImage, Id, Lineage, ProcInfo, ProcRef, Snapshot};

/// Containers whose shared ECS parts are kept; beyond this the cache starts over (a
/// rebuild costs a few small strings, so a simple bound is enough).
const CONTAINER_CACHE_MAX: usize = 4096;

/// Builds documents for one host. Owned by the pipeline's ECS stage.
pub struct DocBuilder {
    host: Shared<Host>,
    agent: Shared<Agent>,
    boot_time_unix_ns: u64,
    containers: FxHashMap<String, CachedContainer>,
    /// What every document of an event kind starts from, by [`kind_index`].
    templates: [EcsDocument; EventKind::ALL.len()],
    /// `*.args` buffers of probes, reused from probe to probe (their strings keep their
    /// capacity): a warm probe allocates nothing.
    probe_buffers: RefCell<Vec<Vec<String>>>,
    /// Coarse key buffers of probes ([`crate::ecs::field::Probe::coarse_key_hashed`]),
    /// reused from probe to probe.
    probe_keys: RefCell<Vec<Vec<u8>>>,
}

struct CachedContainer {
    info: Arc<ContainerInfo>,
    container: Shared<Container>,
    orchestrator: Option<Shared<Orchestrator>>,
}

/// The ECS `event.action` and `event.type` of a kernel event kind.
pub fn action_and_type(kind: EventKind) -> (&'static str, &'static str) {
    match kind {
        EventKind::Fork => ("fork", "start"),
        EventKind::Exec => ("exec", "start"),
        EventKind::Exit => ("end", "end"),
        // Elastic Defend's credential-change events: the new ids are in `user.*`,
        // `group.*` and `process.{user,group,real_user,real_group}.*`.
        EventKind::UidChange => ("uid_change", "change"),
        EventKind::GidChange => ("gid_change", "change"),
        EventKind::SessionIdChange => ("session_id_change", "change"),
    }
}

/// The position of `kind` in [`DocBuilder`]'s templates.
fn kind_index(kind: EventKind) -> usize {
    kind.index()
}

/// `container.id` of a container: one rendering for the builder and the probe.
pub(super) fn container_id(info: &ContainerInfo) -> &str {
    &info.reference.id
}

impl DocBuilder {
    pub fn new(info: &HostInfo, agent: &AgentInfo) -> Self {
        let host = Shared::new(host_fields(info));
        let agent = Shared::new(Agent {
            id: Some(agent.id.clone()),
            name: Some(agent.name.clone()),
            r#type: Some(agent.agent_type.into()),
            version: Some(agent.version.into()),
        });
        let template = |kind| {
            let (action, ty) = action_and_type(kind);
            EcsDocument {
                host: Some(host.clone()),
                agent: Some(agent.clone()),
                ..EcsDocument::process_event(action, ty)
            }
        };
        let templates = EventKind::ALL.map(template);
        DocBuilder {
            boot_time_unix_ns: info.boot_time_unix_ns,
            host,
            agent,
            containers: FxHashMap::default(),
            templates,
            probe_buffers: RefCell::default(),
            probe_keys: RefCell::default(),
        }
    }

    /// A document with only what every document of this host carries (`host`, `agent`,
    /// `ecs`): the base of reports that are not process events.
    pub fn base(&self) -> EcsDocument {
        EcsDocument {
            host: Some(self.host.clone()),
            agent: Some(self.agent.clone()),
            ecs: Some(super::Ecs::current()),
            ..EcsDocument::default()
        }
    }

    /// What every document of `kind` starts from: `event.*` (action, type, category, kind,
    /// module, dataset), `host.*`, `agent.*` and `ecs.version`. [`DocBuilder::build`] never
    /// changes these, so a probe reads them here ([`ModelProbe`]).
    pub fn template(&self, kind: EventKind) -> &EcsDocument {
        &self.templates[kind_index(kind)]
    }

    /// What the document of `snap` will hold, before it is built: for the rules to tell
    /// whether building it is worth it (see [`ModelProbe`]).
    pub fn probe<'a>(&'a self, snap: &'a Snapshot) -> ModelProbe<'a> {
        ModelProbe::new(
            self.template(snap.kind),
            &snap.subject.image,
            Some(snap),
            None,
            snap.kind,
            &self.probe_buffers,
            &self.probe_keys,
        )
    }

    /// What the document of an event will hold, known before the process model has built
    /// its snapshot: the subject's `image` after the event, and the event's `kind`. The
    /// parent, the leaders and the container are unknown.
    pub fn image_probe<'a>(&'a self, image: &'a ExecImage, kind: EventKind) -> ModelProbe<'a> {
        ModelProbe::new(
            self.template(kind),
            image,
            None,
            None,
            kind,
            &self.probe_buffers,
            &self.probe_keys,
        )
    }

    /// [`DocBuilder::image_probe`] that also knows what the process model tells of the
    /// parent, the previous image and the container before any snapshot ([`Lineage`]):
    /// rules on the parent's name, executable, args or command line (a shell's or a web
    /// server's children), or on the container, are then decided without a snapshot, and
    /// remembered.
    pub fn lineage_probe<'a>(&'a self, lineage: Lineage<'a>) -> ModelProbe<'a> {
        ModelProbe::new(
            self.template(lineage.kind),
            lineage.image,
            None,
            Some(lineage),
            lineage.kind,
            &self.probe_buffers,
            &self.probe_keys,
        )
    }

    /// A boot-time instant as an RFC 3339 date.
    /// `@timestamp` of an event at `boot_ns`, as nanoseconds since the epoch (what the
    /// document's `@timestamp` reads back as).
    pub fn unix_ns(&self, boot_ns: u64) -> i64 {
        i64::try_from(self.boot_time_unix_ns.saturating_add(boot_ns)).unwrap_or(i64::MAX)
    }

    /// A builder of the same host and agent (empty caches): it builds the same documents,
    /// later (kept sequence events, `alert::sequence::lazy`).
    pub fn same_host(&self) -> DocBuilder {
        DocBuilder {
            host: self.host.clone(),
            agent: self.agent.clone(),
            boot_time_unix_ns: self.boot_time_unix_ns,
            containers: FxHashMap::default(),
            templates: self.templates.clone(),
            probe_buffers: RefCell::default(),
            probe_keys: RefCell::default(),
        }
    }

    fn date(&self, boot_ns: u64) -> String {
        format_rfc3339_nanos(i128::from(self.boot_time_unix_ns.saturating_add(boot_ns)))
    }

    /// The document of one event. `raw` adds what only the kernel record knows (the exact
    /// event time, capture flags, cgroup names).
    pub fn build(&mut self, snap: &Snapshot, raw: Option<&ProcessEvent>) -> EcsDocument {
        let mut doc = self.template(snap.kind).clone();
        doc.timestamp = Some(self.date(snap.event_boot_ns));
        doc.process = Some(self.process(snap));
        let creds = &snap.subject.creds;
        // Elastic Defend's `user.Ext.real` / `group.Ext.real`: the real ids beside ECS's
        // effective `user` / `group`.
        doc.user = Some(User {
            id: Some(creds.user.id.to_string()),
            name: creds.user.name.as_deref().map(str::to_owned),
            ext: Some(IdExt {
                real: Some(id_name(&creds.real_user)),
            }),
            ..User::default()
        });
        doc.group = Some(Group {
            id: Some(creds.group.id.to_string()),
            name: creds.group.name.as_deref().map(str::to_owned),
            ext: Some(IdExt {
                real: Some(id_name(&creds.real_group)),
            }),
        });
        if let Some(info) = &snap.container {
            let (container, orchestrator) = self.container(info);
            doc.container = Some(container);
            doc.orchestrator = orchestrator;
        }
        doc.detector = Some(Detector {
            process: Some(DetectorProcess {
                args_truncated: snap.subject.image.args_truncated.then_some(true),
                exe_path_partial: raw.and_then(|r| r.exe_path_partial.then_some(true)),
                mnt_ns_ino: Some(snap.subject.mnt_ns_ino).filter(|&n| n != 0),
                working_directory_partial: snap
                    .subject
                    .image
                    .working_directory_partial
                    .then_some(true),
                env_vars_truncated: snap.subject.image.env_truncated.then_some(true),
            }),
            cgroup: Some(DetectorCgroup {
                id: Some(snap.subject.cgroup_id).filter(|&c| c != 0),
                path: raw.and_then(cgroup_names),
            }),
            event: Some(DetectorEvent {
                boot_ns: Some(snap.event_boot_ns),
            }),
            ..Detector::default()
        });
        doc
    }

    fn core(&self, p: &ProcInfo) -> ProcessCore {
        let image = &p.image;
        let mut args = Vec::new();
        keywords(&image.args, &mut args);
        ProcessCore {
            pid: Some(p.pid),
            vpid: Some(p.vpid).filter(|&v| v != 0),
            entity_id: Some(p.entity_id.to_string()),
            name: keyword(&image.name).map(Into::into),
            executable: keyword(&image.executable).map(Into::into),
            args_count: (!args.is_empty()).then_some(args.len() as u64),
            command_line: (!args.is_empty()).then(|| super::command_line(&args)),
            args,
            start: (p.start_boot_ns != 0).then(|| self.date(p.start_boot_ns)),
            working_directory: keyword(&image.working_directory).map(Into::into),
            interactive: Some(p.interactive),
            tty: p.tty.map(|(maj, min)| Tty::char_device(maj, min)),
            user: Some(id_name(&p.creds.user)),
            group: Some(id_name(&p.creds.group)),
            real_user: Some(id_name(&p.creds.real_user)),
            real_group: Some(id_name(&p.creds.real_group)),
            ..ProcessCore::default()
        }
    }

    fn reference(&self, r: &ProcRef) -> ProcessRef {
        ProcessRef {
            entity_id: Some(r.entity_id.to_string()),
            pid: Some(r.pid),
            vpid: Some(r.vpid).filter(|&v| v != 0),
            start: (r.start_boot_ns != 0).then(|| self.date(r.start_boot_ns)),
        }
    }

    fn leader_parent(&self, leader: &ProcInfo, session: Option<&ProcRef>) -> Option<LeaderParent> {
        let p = self.reference(leader.parent.as_ref()?);
        Some(LeaderParent {
            entity_id: p.entity_id,
            pid: p.pid,
            vpid: p.vpid,
            start: p.start,
            session_leader: session.map(|s| self.reference(s)),
        })
    }

    fn process(&self, snap: &Snapshot) -> Process {
        let s = &snap.subject;
        let parent = match &snap.parent {
            Some(p) => Some(Parent {
                core: self.core(p),
                thread: thread(p),
                group_leader: snap.parent_group_leader.as_ref().map(|g| self.reference(g)),
                ..Parent::default()
            }),
            // Never seen or evicted: the pid is still known from the kernel.
            None if s.ppid != 0 => Some(Parent {
                core: ProcessCore {
                    pid: Some(s.ppid),
                    ..ProcessCore::default()
                },
                ..Parent::default()
            }),
            None => None,
        };
        let mut env_vars = Vec::new();
        keywords(&s.image.env_vars, &mut env_vars);
        Process {
            core: self.core(s),
            thread: thread(s),
            env_vars,
            end: s.end_boot_ns.map(|e| self.date(e)),
            exit_code: s.exit_code,
            parent,
            group_leader: snap.group_leader.as_ref().map(|g| GroupLeader {
                core: self.core(g),
                same_as_process: Some(snap.same_as_process(g)),
            }),
            session_leader: snap.session_leader.as_ref().map(|l| SessionLeader {
                core: self.core(l),
                same_as_process: Some(snap.same_as_process(l)),
                parent: self.leader_parent(l, snap.session_leader_parent_session_leader.as_ref()),
            }),
            entry_leader: snap.entry_leader.as_ref().map(|e| EntryLeader {
                core: self.core(&e.info),
                same_as_process: Some(snap.same_as_process(&e.info)),
                parent: self
                    .leader_parent(&e.info, snap.entry_leader_parent_session_leader.as_ref()),
                entry_meta: Some(EntryMeta {
                    r#type: Some(e.entry_type.as_str().into()),
                    ..EntryMeta::default()
                }),
            }),
            previous: snap.previous.as_ref().map(|p| {
                let mut args = Vec::new();
                keywords(&p.args, &mut args);
                Previous {
                    executable: keyword(&p.executable).map(Into::into),
                    args_count: (!p.args.is_empty()).then_some(p.args.len() as u64),
                    args,
                }
            }),
        }
    }

    fn container(
        &mut self,
        info: &Arc<ContainerInfo>,
    ) -> (Shared<Container>, Option<Shared<Orchestrator>>) {
        if let Some(c) = self.containers.get(&info.reference.id)
            && (Arc::ptr_eq(&c.info, info) || *c.info == **info)
        {
            return (c.container.clone(), c.orchestrator.clone());
        }
        let container = Shared::new(Container {
            id: Some(container_id(info).to_owned()),
            runtime: Some(info.reference.runtime.as_str().into()),
            name: info.name.clone(),
            image: Some(ContainerImage {
                name: info.image_name.clone(),
                tag: info.image_tag.iter().cloned().collect(),
            }),
            security_context: Some(ContainerSecurityContext {
                privileged: info.privileged,
            }),
        });
        let orchestrator = info.orchestrator_type.map(|t| {
            Shared::new(Orchestrator {
                r#type: Some(t.into()),
                namespace: info.orchestrator_namespace.clone(),
                resource: Some(OrchestratorResource {
                    name: info.resource_name.clone(),
                    r#type: info.resource_type.map(Into::into),
                }),
                cluster: Some(OrchestratorCluster {
                    name: info.cluster_name.clone(),
                }),
            })
        });
        if self.containers.len() >= CONTAINER_CACHE_MAX {
            self.containers.clear();
        }
        self.containers.insert(
            info.reference.id.clone(),
            CachedContainer {
                info: info.clone(),
                container: container.clone(),
                orchestrator: orchestrator.clone(),
            },
        );
        (container, orchestrator)
    }
}

/// `*.thread.*`: the `comm` at the exec and the capability sets.
fn thread(p: &ProcInfo) -> Option<Thread> {
    Some(Thread {
        name: keyword(&p.image.comm).map(Into::into),
        capabilities: p.creds.caps.map(|c| Capabilities {
            effective: cap_names(c.effective),
            permitted: cap_names(c.permitted),
        }),
    })
}

fn id_name(id: &Id) -> IdName {
    IdName::new(id.id, id.name.as_deref().map(str::to_owned))
}

/// `detector.cgroup.path`: the whole cgroup v2 path the kernel read at the event
/// (root-relative; partial — no leading `/` — when its walk stopped early).
fn cgroup_names(raw: &ProcessEvent) -> Option<String> {
    (!raw.cgroup_path.is_empty()).then(|| text(&raw.cgroup_path))
}

fn host_fields(h: &HostInfo) -> Host {
    Host {
        hostname: Some(h.hostname.clone()),
        name: Some(h.hostname.clone()),
        id: h.id.clone(),
        architecture: Some(h.architecture.clone()),
        boot: h.boot_id.clone().map(|id| HostBoot { id: Some(id) }),
        os: Some(Os {
            r#type: Some(h.os_type.into()),
            family: h.os_family.clone(),
            name: h.os_name.clone(),
            version: h.os_version.clone(),
            kernel: h.os_kernel.clone(),
            full: h.os_full.clone(),
            platform: h.os_platform.clone(),
        }),
        pid_ns_ino: h.pid_ns_ino.map(|n| n.to_string()),
    }
}

#[cfg(test)]
mod cred_tests {
    use super::*;

    /// Elastic Defend's names for the credential changes, and every kind its own template.
    #[test]
    fn credential_kinds_are_change_events() {
        assert_eq!(
            action_and_type(EventKind::UidChange),
            ("uid_change", "change")
        );
        assert_eq!(
            action_and_type(EventKind::GidChange),
            ("gid_change", "change")
        );
        assert_eq!(
            action_and_type(EventKind::SessionIdChange),
            ("session_id_change", "change")
        );
        for (i, k) in EventKind::ALL.iter().enumerate() {
            assert_eq!(kind_index(*k), i);
            assert_eq!(action_and_type(*k).0.replace("end", "exit"), k.name());
        }
    }
}
