//! The alerts of one matched sequence, in Elastic Security's own shape for EQL sequence
//! alerts (Kibana's `buildAlertGroupFromSequence`): one *building-block* alert per event of
//! the sequence, then one *shell* alert that ties them together, all sharing a group id.
//!
//! - Building block `i` (0-based, in sequence order) is the event's document (as it was
//!   stored: every field it had) plus the alert fields every single-event alert carries
//!   (`event.kind: alert`, `event.id`, `rule.*`, `threat.*`, severity, risk score, message,
//!   tags), plus `kibana.alert.building_block_type: "default"`, `kibana.alert.group.id`,
//!   `kibana.alert.group.index: i` and `kibana.alert.uuid` (its `event.id`).
//! - The shell alert holds the fields all the events share (their intersection, as Kibana
//!   builds it: nested objects field by field, other values when equal), the alert fields,
//!   `kibana.alert.group.id` = `kibana.alert.uuid` = its own `event.id`, `event.start` /
//!   `event.end` (first and last event's `@timestamp`) and `@timestamp` of the last event.
//! - Every line also carries `detector.sequence.{group_id, index (blocks), events, join_key}`:
//!   `kibana.*` is Kibana's reserved namespace, and Elastic's External Alerts rule builds
//!   its own `kibana.alert.*` when it promotes a line, so the link survives under ours.
//!
//! Lines are written building blocks first, shell last (Kibana's order); every line is one
//! JSON object, `event.kind: alert`, so the External Alerts rule takes each of them.

use serde_json::{Map, Value, json};

use super::super::AlertTemplate;
use crate::ecs::EcsDocument;

/// The alert fields of `template` for an event (`event.*` alert keys, `message`, `tags`,
/// `rule`, `threat`), as JSON: what each line of a group gets on top of its event.
fn alert_fields(template: &AlertTemplate) -> Map<String, Value> {
    let alert = template.alert(&EcsDocument::default());
    match serde_json::to_value(&alert) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Puts the alert fields onto an event: `event.*` keys of the alert replace the event's
/// (kind, id, module, dataset, severity, risk score, created; the event keeps its category,
/// type and action), `message`, `tags`, `rule`, `threat` replace; `ecs` and `@timestamp`
/// are kept when the event has them.
fn overlay(doc: &mut Map<String, Value>, fields: &Map<String, Value>) {
    for (k, v) in fields {
        match (k.as_str(), v) {
            ("event", Value::Object(ev)) => {
                let target = doc
                    .entry("event")
                    .or_insert_with(|| Value::Object(Map::new()));
                if !target.is_object() {
                    *target = Value::Object(Map::new());
                }
                if let Value::Object(t) = target {
                    for (ek, evv) in ev {
                        if !matches!(ek.as_str(), "category" | "type" | "action") {
                            t.insert(ek.clone(), evv.clone());
                        }
                    }
                }
            }
            ("ecs" | "@timestamp", _) => {
                doc.entry(k.clone()).or_insert_with(|| v.clone());
            }
            // The alert of an empty document has no process, host…: nothing else to copy.
            ("message" | "tags" | "rule" | "threat", _) => {
                doc.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
}

/// Sets `a.b.c…` in `doc` to `v`, creating (or replacing non-object) parents.
fn set_path(doc: &mut Map<String, Value>, path: &[&str], v: Value) {
    let (last, parents) = path.split_last().expect("a non-empty path");
    let mut cur = doc;
    for p in parents {
        let e = cur
            .entry((*p).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !e.is_object() {
            *e = Value::Object(Map::new());
        }
        cur = e.as_object_mut().expect("made an object above");
    }
    cur.insert((*last).to_owned(), v);
}

/// Keeps in `a` the fields `a` and `b` share: objects field by field, other values when
/// equal (Kibana's `objectPairIntersection`, in place: no copy per event of a group);
/// false when nothing is shared (`a` is then to be dropped).
fn intersect(a: &mut Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.retain(|k, xv| y.get(k).is_some_and(|yv| intersect(xv, yv)));
            !x.is_empty()
        }
        (a, b) => a == b,
    }
}

/// One matched sequence, ready to be written.
pub struct Group {
    /// The JSON of each event, in sequence order.
    pub events: Vec<Value>,
    /// The join key values (as the engine reports them), for `detector.sequence.join_key`.
    pub join_key: Vec<Value>,
}

/// The lines of `group` as JSON objects: its building blocks, then its shell alert.
pub fn build(template: &AlertTemplate, group: Group) -> Vec<Value> {
    let fields = alert_fields(template);
    let group_id = uuid::Uuid::new_v4().to_string();
    let keys: Vec<Value> = group.join_key.into_iter().map(keyword).collect();
    let n = group.events.len();
    let mut lines = Vec::with_capacity(n + 1);
    for (i, ev) in group.events.into_iter().enumerate() {
        let mut doc = match ev {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        overlay(&mut doc, &fields);
        let id = uuid::Uuid::new_v4().to_string();
        set_path(&mut doc, &["event", "id"], Value::String(id.clone()));
        set_path(&mut doc, &["kibana", "alert", "uuid"], Value::String(id));
        set_path(
            &mut doc,
            &["kibana", "alert", "building_block_type"],
            json!("default"),
        );
        set_path(
            &mut doc,
            &["kibana", "alert", "group", "id"],
            json!(group_id),
        );
        set_path(&mut doc, &["kibana", "alert", "group", "index"], json!(i));
        set_path(
            &mut doc,
            &["detector", "sequence"],
            json!({"group_id": group_id, "index": i, "events": n, "join_key": keys}),
        );
        lines.push(Value::Object(doc));
    }
    let mut shared: Option<Value> = lines.first().cloned();
    for b in lines.iter().skip(1) {
        if let Some(s) = shared.as_mut()
            && !intersect(s, b)
        {
            shared = None;
        }
    }
    let mut shell = match shared {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    // What the blocks alone carry is not the shell's.
    if let Some(Value::Object(k)) = shell.get_mut("kibana")
        && let Some(Value::Object(a)) = k.get_mut("alert")
    {
        a.remove("building_block_type");
        a.remove("uuid");
    }
    overlay(&mut shell, &fields);
    let ts = |v: &Value| v.get("@timestamp").cloned().unwrap_or(Value::Null);
    let (first, last) = (
        lines.first().map(ts).unwrap_or(Value::Null),
        lines.last().map(ts).unwrap_or(Value::Null),
    );
    if !last.is_null() {
        shell.insert("@timestamp".into(), last.clone());
        set_path(&mut shell, &["event", "end"], last);
    }
    if !first.is_null() {
        set_path(&mut shell, &["event", "start"], first);
    }
    set_path(&mut shell, &["event", "id"], json!(group_id));
    set_path(&mut shell, &["kibana", "alert", "uuid"], json!(group_id));
    set_path(
        &mut shell,
        &["kibana", "alert", "group", "id"],
        json!(group_id),
    );
    set_path(
        &mut shell,
        &["detector", "sequence"],
        json!({"group_id": group_id, "events": n, "join_key": keys}),
    );
    lines.push(Value::Object(shell));
    lines
}

/// One join key value as `detector.sequence.join_key` holds it: a keyword (numbers and
/// booleans as their text, a multi-valued key as its JSON text, a missing key `null`).
/// One rule's keys mix types (`user.id` beside `process.pid`) and an index maps a field
/// from the first value it sees, so a number there followed by a string elsewhere would
/// make Elasticsearch refuse the line; as keywords every line maps alike.
fn keyword(v: Value) -> Value {
    match v {
        Value::Null | Value::String(_) => v,
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => Value::String(other.to_string()),
    }
}

#[cfg(test)]
mod keyword_tests {
    use super::keyword;
    use serde_json::json;

    /// Every join key value maps as a keyword, whatever its EQL type.
    #[test]
    fn join_keys_are_keywords() {
        let cases = [
            (json!("h1"), json!("h1")),
            (json!(-42), json!("-42")),
            (json!(true), json!("true")),
            (json!(null), json!(null)),
            (json!(["a", 1]), json!(r#"["a",1]"#)),
        ];
        for (v, want) in cases {
            assert_eq!(keyword(v.clone()), want, "{v}");
        }
    }
}
