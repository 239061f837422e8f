use super::*;
use crate::ecs::{Container, Process, ProcessCore};
use crate::rules::meta::{Severity, Technique, Threat as MetaThreat, ThreatRef};

fn tref(id: &str) -> ThreatRef {
    ThreatRef {
        id: id.into(),
        name: format!("name {id}"),
        reference: format!("https://x/{id}"),
    }
}

fn meta() -> RuleMeta {
    RuleMeta {
        rule_id: "11111111-2222-4333-8444-555555555555".into(),
        name: "Test rule: shell in container".into(),
        description: "  A test rule.\n".into(),
        severity: Severity::High,
        risk_score: 73,
        references: vec![
            "https://example.invalid/a".into(),
            "https://example.invalid/b".into(),
        ],
        author: vec!["Tester".into()],
        license: Some("MIT".into()),
        tags: vec!["Domain: Container".into(), "Use Case: Test".into()],
        version: Some(3),
        threat: vec![
            MetaThreat {
                framework: "MITRE ATT&CK".into(),
                tactic: tref("TA0001"),
                technique: vec![Technique {
                    id: "T1000".into(),
                    name: "tech".into(),
                    reference: "https://x/T1000".into(),
                    subtechnique: vec![tref("T1000.001"), tref("T1000.002")],
                }],
            },
            MetaThreat {
                framework: "MITRE ATT&CK".into(),
                tactic: tref("TA0002"),
                technique: vec![Technique {
                    id: "T1000".into(),
                    name: "tech".into(),
                    reference: "https://x/T1000".into(),
                    subtechnique: vec![tref("T1000.001")],
                }],
            },
            MetaThreat {
                framework: "MITRE ATT&CK".into(),
                tactic: tref("TA0001"),
                technique: vec![],
            },
        ],
    }
}

fn event() -> EcsDocument {
    let mut doc = EcsDocument::process_event("exec", "start");
    doc.timestamp = Some("2026-01-02T03:04:05.000000006Z".into());
    doc.process = Some(Process {
        core: ProcessCore {
            pid: Some(7),
            name: Some("sh".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    doc.container = Some(Shared::new(Container {
        id: Some("c".repeat(64)),
        ..Default::default()
    }));
    doc.tags = vec!["event-tag".into()];
    doc
}

#[test]
fn alert_carries_rule_threat_and_event_fields() {
    let m = meta();
    let a = build_alert(&event(), &m);
    let v = serde_json::to_value(&a).unwrap();
    assert_eq!(v["event"]["kind"], "alert");
    assert_eq!(v["event"]["module"], "detector");
    assert_eq!(v["event"]["dataset"], "detector.alerts");
    assert_eq!(v["event"]["action"], "exec");
    assert_eq!(v["event"]["category"], serde_json::json!(["process"]));
    assert_eq!(v["event"]["severity"], 73);
    assert_eq!(v["event"]["risk_score"], 73.0);
    assert_eq!(v["@timestamp"], "2026-01-02T03:04:05.000000006Z");
    assert!(v["event"]["created"].as_str().unwrap().ends_with('Z'));
    let id = v["event"]["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    assert_eq!(v["message"], m.name.as_str());
    assert_eq!(
        v["tags"],
        serde_json::json!(["Domain: Container", "Use Case: Test"])
    );
    assert_eq!(v["rule"]["id"], m.rule_id.as_str());
    assert_eq!(v["rule"]["uuid"], m.rule_id.as_str());
    assert_eq!(v["rule"]["description"], "A test rule.");
    assert_eq!(v["rule"]["reference"], "https://example.invalid/a");
    assert_eq!(v["rule"]["author"], serde_json::json!(["Tester"]));
    assert_eq!(v["rule"]["license"], "MIT");
    assert_eq!(v["rule"]["ruleset"], DEFAULT_RULESET);
    assert_eq!(v["rule"]["version"], "3");
    assert_eq!(v["threat"]["framework"], "MITRE ATT&CK");
    assert_eq!(
        v["threat"]["tactic"]["id"],
        serde_json::json!(["TA0001", "TA0002"])
    );
    assert_eq!(
        v["threat"]["tactic"]["name"],
        serde_json::json!(["name TA0001", "name TA0002"])
    );
    assert_eq!(v["threat"]["technique"]["id"], serde_json::json!(["T1000"]));
    assert_eq!(
        v["threat"]["technique"]["subtechnique"]["id"],
        serde_json::json!(["T1000.001", "T1000.002"])
    );
    assert_eq!(
        v["threat"]["technique"]["subtechnique"]["reference"],
        serde_json::json!(["https://x/T1000.001", "https://x/T1000.002"])
    );
    assert_eq!(v["container"]["id"], "c".repeat(64));
    assert!(v.get("detector").is_none());
}

#[test]
fn each_alert_gets_a_fresh_id_and_severity_scale() {
    let mut m = meta();
    let t = AlertTemplate::new(&m);
    let (a, b) = (t.alert(&event()), t.alert(&event()));
    assert_ne!(a.event.as_ref().unwrap().id, b.event.as_ref().unwrap().id);
    for (sev, score) in [
        (Severity::Low, 21),
        (Severity::Medium, 47),
        (Severity::High, 73),
        (Severity::Critical, 99),
    ] {
        m.severity = sev;
        let a = build_alert(&event(), &m);
        assert_eq!(a.event.unwrap().severity, Some(score));
    }
}

#[test]
fn rule_without_threat_or_references_or_version() {
    let m = RuleMeta {
        threat: vec![],
        references: vec![],
        version: None,
        ..meta()
    };
    let v = serde_json::to_value(build_alert(&EcsDocument::default(), &m)).unwrap();
    assert!(v.get("threat").is_none());
    assert!(v["rule"].get("reference").is_none());
    assert!(v["rule"].get("version").is_none());
    // An event without @timestamp gets the alert's creation time.
    assert_eq!(v["@timestamp"], v["event"]["created"]);
    assert_eq!(v["ecs"]["version"], crate::ecs::ECS_VERSION);
}

#[test]
fn suppressed_count_and_line_encoding() {
    let t = AlertTemplate::new(&meta());
    let mut ev = event();
    ev.process.as_mut().unwrap().core.args = vec!["a\nb".into(), "\"q\"".into(), "\u{fffd}".into()];
    let a = t.alert_with_suppressed(&ev, 41);
    let mut enc = LineEncoder::new();
    let line = enc.encode(&a).unwrap().to_vec();
    assert_eq!(line.last(), Some(&b'\n'));
    assert_eq!(
        line.iter().filter(|&&b| b == b'\n').count(),
        1,
        "exactly one newline"
    );
    let back: EcsDocument = serde_json::from_slice(&line).unwrap();
    assert_eq!(back, a);
    assert_eq!(
        back.detector.unwrap().alert.unwrap().suppressed_count,
        Some(41)
    );
    // The buffer is reused: a second encode gives a line of its own, not an appended one.
    let again = enc.encode(&a).unwrap();
    assert_eq!(again, &line[..]);
}
