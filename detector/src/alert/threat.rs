//! The rule's `[[rule.threat]]` tables as ECS `threat.*` parallel arrays.

use crate::ecs::{Techniques, Threat, ThreatRefs};
use crate::rules::meta;

/// Flattens the rule's threat tables the way Elastic's ECS mapping expects them:
/// `threat.tactic.{id,name,reference}`, `threat.technique.{…}` and
/// `threat.technique.subtechnique.{…}` are arrays, index-aligned *within* each level, each
/// entry once (by id) in first-seen order. `threat.framework` is a single keyword: the first
/// table's framework (all published rules use "MITRE ATT&CK"). `None` when the rule has no
/// threat table.
pub(super) fn flatten(tables: &[meta::Threat]) -> Option<Threat> {
    let first = tables.first()?;
    let mut tactic = ThreatRefs::default();
    let mut technique = Techniques::default();
    let mut sub = ThreatRefs::default();
    for t in tables {
        push(
            &mut tactic.id,
            &mut tactic.name,
            &mut tactic.reference,
            &t.tactic,
        );
        for tech in &t.technique {
            if !technique.id.contains(&tech.id) {
                technique.id.push(tech.id.clone());
                technique.name.push(tech.name.clone());
                technique.reference.push(tech.reference.clone());
            }
            for s in &tech.subtechnique {
                push(&mut sub.id, &mut sub.name, &mut sub.reference, s);
            }
        }
    }
    if !sub.id.is_empty() {
        technique.subtechnique = Some(sub);
    }
    Some(Threat {
        framework: Some(first.framework.clone()),
        tactic: (!tactic.id.is_empty()).then_some(tactic),
        technique: (!technique.id.is_empty()).then_some(technique),
    })
}

fn push(
    ids: &mut Vec<String>,
    names: &mut Vec<String>,
    refs: &mut Vec<String>,
    r: &meta::ThreatRef,
) {
    if r.id.is_empty() || ids.contains(&r.id) {
        return;
    }
    ids.push(r.id.clone());
    names.push(r.name.clone());
    refs.push(r.reference.clone());
}
