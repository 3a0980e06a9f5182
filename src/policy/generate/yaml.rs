//! YAML for generated objects, with comments on the rules they explain. No serializer of
//! the YAML crates writes comments; generated documents need them (first/last seen, counts,
//! what could not be expressed), so this small emitter writes block YAML from JSON values:
//! maps in the order built, strings plain when YAML reads them back as the same string, else
//! double-quoted (JSON's escapes are YAML's).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

/// A value with comments: `comments[pointer]` goes above the sequence item or map key at
/// that JSON pointer (`/spec/egress/2`).
pub struct Commented<'a> {
    pub value: &'a Value,
    pub comments: &'a BTreeMap<String, Vec<String>>,
}

pub fn write(doc: &Commented, out: &mut String) {
    let mut pointer = String::new();
    node(doc, doc.value, &mut pointer, 0, false, out);
}

fn comment(doc: &Commented, pointer: &str, indent: usize, out: &mut String) {
    for line in doc.comments.get(pointer).into_iter().flatten() {
        let _ = writeln!(out, "{:indent$}# {line}", "");
    }
}

/// Appends a JSON pointer segment (`~` and `/` escaped).
fn segment(pointer: &mut String, key: &str) {
    pointer.push('/');
    if key.contains(['~', '/']) {
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
    } else {
        pointer.push_str(key);
    }
}

/// Writes the entries of a map or sequence at `indent`, each on its own lines; `inline`: the
/// first map key continues a `- ` already written.
fn node(
    doc: &Commented,
    v: &Value,
    pointer: &mut String,
    indent: usize,
    inline: bool,
    out: &mut String,
) {
    let at = pointer.len();
    match v {
        Value::Object(map) => {
            for (i, (k, item)) in map.iter().enumerate() {
                segment(pointer, k);
                if !(inline && i == 0) {
                    comment(doc, pointer, indent, out);
                    let _ = write!(out, "{:indent$}", "");
                }
                out.push_str(&scalar_text(k));
                out.push(':');
                child(doc, item, pointer, indent, out);
                pointer.truncate(at);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let _ = write!(pointer, "/{i}");
                comment(doc, pointer, indent, out);
                let _ = write!(out, "{:indent$}-", "");
                match item {
                    // A map's first key goes on the dash's line.
                    Value::Object(map) if !map.is_empty() => {
                        out.push(' ');
                        node(doc, item, pointer, indent + 2, true, out);
                    }
                    _ => child(doc, item, pointer, indent, out),
                }
                pointer.truncate(at);
            }
        }
        other => {
            let _ = writeln!(out, "{:indent$}{}", "", scalar(other));
        }
    }
}

/// The value after `key:` or `-`: inline when scalar or empty, else on the next lines.
fn child(doc: &Commented, v: &Value, pointer: &mut String, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            node(doc, v, pointer, indent + 2, false, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            node(doc, v, pointer, indent + 2, false, out);
        }
        other => {
            let _ = writeln!(out, " {}", scalar(other));
        }
    }
}

fn scalar(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string().into(),
        Value::Number(n) => n.to_string().into(),
        Value::String(s) => scalar_text(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string plain when it cannot read back as anything else, else double-quoted.
fn scalar_text(s: &str) -> Cow<'_, str> {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        && s.as_bytes()[0].is_ascii_alphabetic()
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(serde_json::to_string(s).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_back_as_the_same_value_with_comments() {
        let v = json!({"apiVersion": "cilium.io/v2", "metadata": {"name": "x", "labels": {"a.b/c": "yes"}},
            "spec": {"egress": [{"toFQDNs": [{"matchName": "api.example.com"}],
              "toPorts": [{"ports": [{"port": "443", "protocol": "TCP"}]}]}, {}],
              "empty": [], "n": 5, "star": "*.x.io", "ip": "10.0.0.1/32", "t": true}});
        let comments = BTreeMap::from([(
            "/spec/egress/0".to_string(),
            vec!["api.example.com: 3 connections".to_string()],
        )]);
        let mut out = String::new();
        write(
            &Commented {
                value: &v,
                comments: &comments,
            },
            &mut out,
        );
        assert!(
            out.contains("  egress:\n    # api.example.com: 3 connections\n    - toFQDNs:\n"),
            "{out}"
        );
        assert!(out.contains("port: \"443\""), "{out}");
        let back: Value = serde_saphyr::from_str(&out).unwrap();
        assert_eq!(back, v, "{out}");
    }
}
