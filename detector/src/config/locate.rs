//! Maps between byte spans of a TOML document and dotted key paths, both ways.
//!
//! serde errors from `toml` carry a span but no key path, and our own value checks know the
//! key path but not the span; the document's `toml_edit` tree (which keeps spans) bridges
//! them so every error can name both.

use std::ops::Range;

use toml_edit::{Array, Item, Table, Value};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn render(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    // Debug quoting escapes control characters and quotes of hostile keys.
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

fn contains(outer: Option<Range<usize>>, inner: &Range<usize>) -> bool {
    outer.is_some_and(|o| {
        (o.start <= inner.start && inner.start < o.end) || (o.start == inner.start && o.is_empty())
    })
}

/// The dotted key path of the deepest key or value whose span contains `span`'s start.
pub(super) fn path_at(root: &Table, span: &Range<usize>) -> Option<String> {
    let segs = in_table(root, span)?;
    if segs.is_empty() {
        None
    } else {
        Some(render(&segs))
    }
}

fn in_table(t: &Table, span: &Range<usize>) -> Option<Vec<Seg>> {
    for (k, item) in t.iter() {
        if let Some(mut p) = in_item(item, span) {
            p.insert(0, Seg::Key(k.to_string()));
            return Some(p);
        }
        if contains(t.key(k).and_then(|k| k.span()), span) {
            return Some(vec![Seg::Key(k.to_string())]);
        }
    }
    contains(t.span(), span).then(Vec::new)
}

fn in_item(item: &Item, span: &Range<usize>) -> Option<Vec<Seg>> {
    match item {
        Item::None => None,
        Item::Table(t) => in_table(t, span),
        Item::ArrayOfTables(a) => {
            for (i, t) in a.iter().enumerate() {
                if let Some(mut p) = in_table(t, span) {
                    p.insert(0, Seg::Index(i));
                    return Some(p);
                }
            }
            contains(a.span(), span).then(Vec::new)
        }
        Item::Value(v) => in_value(v, span),
    }
}

fn in_value(v: &Value, span: &Range<usize>) -> Option<Vec<Seg>> {
    match v {
        Value::Array(a) => in_array(a, span),
        Value::InlineTable(t) => {
            for (k, item) in t.iter() {
                if let Some(mut p) = in_value(item, span) {
                    p.insert(0, Seg::Key(k.to_string()));
                    return Some(p);
                }
                if contains(t.key(k).and_then(|k| k.span()), span) {
                    return Some(vec![Seg::Key(k.to_string())]);
                }
            }
            contains(t.span(), span).then(Vec::new)
        }
        _ => contains(v.span(), span).then(Vec::new),
    }
}

fn in_array(a: &Array, span: &Range<usize>) -> Option<Vec<Seg>> {
    for (i, v) in a.iter().enumerate() {
        if let Some(mut p) = in_value(v, span) {
            p.insert(0, Seg::Index(i));
            return Some(p);
        }
    }
    contains(a.span(), span).then(Vec::new)
}

fn parse_path(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (name, rest) = part.split_once('[').unwrap_or((part, ""));
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        for idx in rest.split('[') {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

/// A node of the tree: tables hold items, inline tables and arrays hold values, arrays of
/// tables hold tables.
#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Item(&'a Item),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn span(self) -> Option<Range<usize>> {
        match self {
            Node::Table(t) => t.span(),
            Node::Item(i) => i.span(),
            Node::Value(v) => v.span(),
        }
    }

    /// The child at `seg` and the span of its key (if it has one).
    fn child(self, seg: &Seg) -> Option<(Node<'a>, Option<Range<usize>>)> {
        let table = match self {
            Node::Table(t) | Node::Item(Item::Table(t)) => Some(t),
            _ => None,
        };
        let value = match self {
            Node::Item(Item::Value(v)) | Node::Value(v) => Some(v),
            _ => None,
        };
        match seg {
            Seg::Key(k) => {
                if let Some(t) = table {
                    return Some((Node::Item(t.get(k)?), t.key(k).and_then(|k| k.span())));
                }
                let t = value?.as_inline_table()?;
                Some((Node::Value(t.get(k)?), t.key(k).and_then(|k| k.span())))
            }
            Seg::Index(i) => {
                if let Node::Item(Item::ArrayOfTables(a)) = self {
                    return Some((Node::Table(a.get(*i)?), None));
                }
                Some((Node::Value(value?.as_array()?.get(*i)?), None))
            }
        }
    }
}

/// The span of the value (or, failing that, the key or table header) at dotted `path`,
/// e.g. `sinks.file.rotate_bytes`, `rules.paths[0]`, `exceptions[1].rule_id`.
pub(super) fn span_of(root: &Table, path: &str) -> Option<Range<usize>> {
    let segs = parse_path(path);
    let Some(Seg::Key(first)) = segs.first() else {
        return None;
    };
    let mut node = Node::Item(root.get(first)?);
    let mut best = root.key(first).and_then(|k| k.span());
    for seg in &segs[1..] {
        match node.child(seg) {
            Some((child, key_span)) => {
                best = child.span().or(key_span).or(best);
                node = child;
            }
            None => break,
        }
    }
    node.span().or(best)
}
