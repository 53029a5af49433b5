//! The change report: what a new upstream document adds, removes and changes, so a maintainer
//! sees what an update breaks before committing it.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn operations(doc: &Value) -> BTreeMap<String, &Value> {
    let mut out = BTreeMap::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            for method in METHODS {
                if let Some(op) = item.get(*method) {
                    out.insert(format!("{} {path}", method.to_uppercase()), op);
                }
            }
        }
    }
    out
}

fn schemas(doc: &Value) -> BTreeMap<String, &Value> {
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

fn keys(value: &Value, field: &str) -> Vec<String> {
    match value.get(field) {
        Some(Value::Object(map)) => map.keys().cloned().collect(),
        Some(Value::Array(items)) => {
            items.iter().map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string())).collect()
        }
        _ => Vec::new(),
    }
}

/// What changed inside one schema, in a maintainer's terms.
fn schema_delta(old: &Value, new: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    for (field, label) in [("properties", "property"), ("enum", "enum value"), ("required", "required")] {
        let (before, after) = (keys(old, field), keys(new, field));
        let added: Vec<_> = after.iter().filter(|k| !before.contains(k)).collect();
        let removed: Vec<_> = before.iter().filter(|k| !after.contains(k)).collect();
        if !added.is_empty() {
            notes.push(format!("+{label} {}", added.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
        }
        if !removed.is_empty() {
            notes.push(format!("-{label} {}", removed.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")));
        }
    }
    if notes.is_empty() {
        notes.push("definition changed".into());
    }
    notes
}

fn section<'a>(
    out: &mut String,
    title: &str,
    old: &BTreeMap<String, &'a Value>,
    new: &BTreeMap<String, &'a Value>,
    describe: impl Fn(&Value, &Value) -> Vec<String>,
) -> usize {
    let added: Vec<_> = new.keys().filter(|k| !old.contains_key(*k)).collect();
    let removed: Vec<_> = old.keys().filter(|k| !new.contains_key(*k)).collect();
    let changed: Vec<_> = new.iter().filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v)).collect();
    let _ = writeln!(out, "{title}: {} added, {} removed, {} changed", added.len(), removed.len(), changed.len());
    for k in &added {
        let _ = writeln!(out, "  + {k}");
    }
    for k in &removed {
        let _ = writeln!(out, "  - {k}   (BREAKING: code using it stops compiling)");
    }
    for (k, v) in &changed {
        let _ = writeln!(out, "  ~ {k}: {}", describe(old[*k], v).join("; "));
    }
    added.len() + removed.len() + changed.len()
}

fn operation_delta(old: &Value, new: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    if old.get("operationId") != new.get("operationId") {
        notes.push(format!("operationId {} -> {} (method renamed)", old["operationId"], new["operationId"]));
    }
    let param_names = |op: &Value| -> Vec<String> {
        op.get("parameters")
            .and_then(Value::as_array)
            .map(|ps| ps.iter().filter_map(|p| p.get("name").and_then(Value::as_str).map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let (before, after) = (param_names(old), param_names(new));
    for p in after.iter().filter(|p| !before.contains(p)) {
        notes.push(format!("+parameter {p}"));
    }
    for p in before.iter().filter(|p| !after.contains(p)) {
        notes.push(format!("-parameter {p}"));
    }
    for field in ["requestBody", "responses"] {
        if old.get(field) != new.get(field) {
            notes.push(format!("{field} changed"));
        }
    }
    if notes.is_empty() {
        notes.push("documentation changed".into());
    }
    notes
}

/// Renders the report comparing the current upstream document with a candidate.
pub fn change_report(old: &Value, new: &Value) -> (String, usize) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "version: {} -> {}   openapi: {} -> {}",
        old.pointer("/info/version").unwrap_or(&Value::Null),
        new.pointer("/info/version").unwrap_or(&Value::Null),
        old.get("openapi").unwrap_or(&Value::Null),
        new.get("openapi").unwrap_or(&Value::Null)
    );
    let mut total = section(&mut out, "operations", &operations(old), &operations(new), operation_delta);
    total += section(&mut out, "schemas", &schemas(old), &schemas(new), schema_delta);
    (out, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_added_removed_and_changed() {
        let old = json!({"paths": {"/a": {"get": {"operationId": "a"}}, "/b": {"get": {"operationId": "b"}}},
                         "components": {"schemas": {"G": {"enum": ["H100"]}, "Old": {}}}});
        let new = json!({"paths": {"/a": {"get": {"operationId": "a", "parameters": [{"name": "q"}]}},
                                   "/c": {"post": {"operationId": "c"}}},
                         "components": {"schemas": {"G": {"enum": ["H100", "GB200"]}}}});
        let (text, total) = change_report(&old, &new);
        assert_eq!(total, 5, "{text}");
        assert!(text.contains("+ POST /c"), "{text}");
        assert!(text.contains("- GET /b"), "{text}");
        assert!(text.contains("~ GET /a: +parameter q"), "{text}");
        assert!(text.contains("~ G: +enum value GB200"), "{text}");
        assert!(text.contains("- Old"), "{text}");
    }
}
