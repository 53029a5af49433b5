//! The change report: what a new upstream document adds, removes and changes, so a maintainer
//! sees what an update breaks before committing it.
//!
//! Schemas are compared as a client sees them, not as they are spelled: `$ref`s are resolved and
//! `allOf` parts merged before their properties, `required` lists and enum values are compared, so
//! a property that moved into a referenced schema is not reported as removed. Operations are
//! compared parameter by parameter (resolving `$ref`ed parameters: added, removed, required,
//! enum values, bounds), response code by response code, and by the resolved shape of their
//! request and response bodies.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch", "trace"];
/// How deep nested inline properties are followed; named schemas are reported on their own.
const MAX_DEPTH: usize = 6;

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

/// Follows a chain of local `$ref`s (`#/...`) to the object they name.
fn resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => match doc.pointer(pointer) {
                Some(target) => node = target,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

/// A schema as a client decodes it: own and `allOf`-inherited properties, required names, enum
/// values and types, with `$ref`s resolved. `anyOf`/`oneOf` variants contribute their properties
/// (a nullable `anyOf: [X, null]` is X) but not their required lists.
#[derive(Debug, Default, PartialEq)]
struct Shape {
    properties: BTreeMap<String, Value>,
    required: BTreeSet<String>,
    enum_values: BTreeSet<String>,
    types: BTreeSet<String>,
    /// Numeric and length bounds, as `minimum=1` and the like.
    bounds: BTreeSet<String>,
}

fn shape(doc: &Value, schema: &Value) -> Shape {
    let mut out = Shape::default();
    let mut seen = BTreeSet::new();
    gather(doc, schema, &mut out, &mut seen, true);
    out
}

fn gather(doc: &Value, schema: &Value, out: &mut Shape, seen: &mut BTreeSet<String>, required_counts: bool) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        if !seen.insert(reference.to_string()) {
            return; // a recursive schema: its shape is already being gathered
        }
        let target = resolve(doc, schema);
        if !std::ptr::eq(target, schema) {
            gather(doc, target, out, seen, required_counts);
        }
        seen.remove(reference);
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            out.properties.entry(name.clone()).or_insert_with(|| prop.clone());
        }
    }
    if required_counts && let Some(required) = schema.get("required").and_then(Value::as_array) {
        out.required.extend(required.iter().filter_map(Value::as_str).map(str::to_string));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        out.enum_values.extend(values.iter().map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string())));
    }
    if let Some(value) = schema.get("const") {
        out.enum_values.insert(value.as_str().map(str::to_string).unwrap_or(value.to_string()));
    }
    match schema.get("type") {
        Some(Value::String(t)) => {
            out.types.insert(t.clone());
        }
        Some(Value::Array(ts)) => out.types.extend(ts.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    for bound in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems"] {
        if let Some(value) = schema.get(bound) {
            out.bounds.insert(format!("{bound}={value}"));
        }
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        for part in parts {
            gather(doc, part, out, seen, required_counts);
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            for part in parts {
                gather(doc, part, out, seen, false);
            }
        }
    }
}

fn list(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    items.into_iter().map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join(", ")
}

fn set_delta(notes: &mut Vec<String>, label: &str, before: &BTreeSet<String>, after: &BTreeSet<String>) {
    let added: Vec<_> = after.difference(before).collect();
    let removed: Vec<_> = before.difference(after).collect();
    if !added.is_empty() {
        notes.push(format!("+{label} {}", list(added)));
    }
    if !removed.is_empty() {
        notes.push(format!("-{label} {}", list(removed)));
    }
}

/// Whether a property schema is a plain reference to a named component schema, which the report
/// describes in its own entry.
fn is_named_reference(schema: &Value) -> bool {
    schema.get("$ref").and_then(Value::as_str).is_some_and(|r| r.starts_with("#/components/schemas/"))
}

/// What differs between two schemas, resolved; nested inline properties are prefixed `parent.`.
fn shape_delta(old_doc: &Value, old: &Value, new_doc: &Value, new: &Value, prefix: &str, depth: usize) -> Vec<String> {
    let (before, after) = (shape(old_doc, old), shape(new_doc, new));
    let mut notes = Vec::new();
    let named = |keys: &mut dyn Iterator<Item = &String>| -> BTreeSet<String> {
        keys.map(|k| format!("{prefix}{k}")).collect()
    };
    set_delta(&mut notes, "property", &named(&mut before.properties.keys()), &named(&mut after.properties.keys()));
    set_delta(&mut notes, "required", &named(&mut before.required.iter()), &named(&mut after.required.iter()));
    let label = |what: &str| {
        if prefix.is_empty() { what.to_string() } else { format!("{what} of {}", prefix.trim_end_matches('.')) }
    };
    set_delta(&mut notes, &label("enum value"), &before.enum_values, &after.enum_values);
    set_delta(&mut notes, &label("type"), &before.types, &after.types);
    set_delta(&mut notes, &label("bound"), &before.bounds, &after.bounds);
    if depth < MAX_DEPTH {
        for (name, new_prop) in &after.properties {
            let Some(old_prop) = before.properties.get(name) else { continue };
            if old_prop == new_prop {
                continue;
            }
            if is_named_reference(old_prop) && is_named_reference(new_prop) {
                notes.push(format!("{prefix}{name}: now {}", new_prop["$ref"]));
                continue;
            }
            notes.extend(shape_delta(old_doc, old_prop, new_doc, new_prop, &format!("{prefix}{name}."), depth + 1));
            // Array items are where list payloads change.
            if let (Some(old_items), Some(new_items)) = (old_prop.get("items"), new_prop.get("items"))
                && !(is_named_reference(old_items) && old_items == new_items)
            {
                notes.extend(shape_delta(
                    old_doc,
                    old_items,
                    new_doc,
                    new_items,
                    &format!("{prefix}{name}[]."),
                    depth + 1,
                ));
            }
        }
    }
    notes
}

fn schema_delta(old_doc: &Value, old: &Value, new_doc: &Value, new: &Value) -> Vec<String> {
    let mut notes = shape_delta(old_doc, old, new_doc, new, "", 0);
    if notes.is_empty() {
        notes.push("spelling or documentation changed; same properties, required, enum values, types and bounds once $ref/allOf are resolved".into());
    }
    notes
}

/// One parameter, resolved, in the terms that break callers.
fn parameters(doc: &Value, op: &Value) -> BTreeMap<String, (bool, Shape)> {
    op.get("parameters")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| resolve(doc, p))
                .filter_map(|p| {
                    let name = p.get("name")?.as_str()?;
                    let location = p.get("in").and_then(Value::as_str).unwrap_or("?");
                    let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
                    let schema = p.get("schema").map(|s| shape(doc, s)).unwrap_or_default();
                    Some((format!("{name} ({location})"), (required, schema)))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn describe_parameter(required: bool, schema: &Shape) -> String {
    let mut parts = vec![if required { "required".to_string() } else { "optional".to_string() }];
    if !schema.types.is_empty() {
        parts.push(list(&schema.types));
    }
    parts.extend(schema.bounds.iter().cloned());
    if !schema.enum_values.is_empty() {
        parts.push(format!("enum {}", list(&schema.enum_values)));
    }
    parts.join(", ")
}

/// The JSON body schema of a request body or response, resolved through `$ref`.
fn body_schema<'a>(doc: &'a Value, holder: &'a Value) -> Option<&'a Value> {
    let content = resolve(doc, holder).get("content")?.as_object()?;
    let media = content.get("application/json").or_else(|| content.values().next())?;
    media.get("schema")
}

fn operation_delta(old_doc: &Value, old: &Value, new_doc: &Value, new: &Value) -> Vec<String> {
    let mut notes = Vec::new();
    if old.get("operationId") != new.get("operationId") {
        notes.push(format!("operationId {} -> {} (method renamed)", old["operationId"], new["operationId"]));
    }
    let (before, after) = (parameters(old_doc, old), parameters(new_doc, new));
    for (name, (required, schema)) in &after {
        match before.get(name) {
            None => notes.push(format!("+parameter {name}: {}", describe_parameter(*required, schema))),
            Some((was_required, was)) => {
                if was_required != required {
                    notes.push(format!("parameter {name} now {}", if *required { "required" } else { "optional" }));
                }
                let mut changes = Vec::new();
                set_delta(&mut changes, "enum value", &was.enum_values, &schema.enum_values);
                set_delta(&mut changes, "type", &was.types, &schema.types);
                set_delta(&mut changes, "bound", &was.bounds, &schema.bounds);
                if !changes.is_empty() {
                    notes.push(format!("parameter {name}: {}", changes.join(", ")));
                }
            }
        }
    }
    for name in before.keys().filter(|n| !after.contains_key(*n)) {
        notes.push(format!("-parameter {name}"));
    }
    match (old.get("requestBody"), new.get("requestBody")) {
        (None, Some(_)) => notes.push("+requestBody".into()),
        (Some(_), None) => notes.push("-requestBody".into()),
        (Some(o), Some(n)) => {
            if let (Some(os), Some(ns)) = (body_schema(old_doc, o), body_schema(new_doc, n)) {
                for note in shape_delta(old_doc, os, new_doc, ns, "", 0) {
                    notes.push(format!("requestBody {note}"));
                }
            }
        }
        (None, None) => {}
    }
    let codes = |op: &Value| -> BTreeSet<String> {
        op.get("responses").and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    };
    let (old_codes, new_codes) = (codes(old), codes(new));
    for code in new_codes.difference(&old_codes) {
        notes.push(format!("+response {code}"));
    }
    for code in old_codes.difference(&new_codes) {
        notes.push(format!("-response {code}"));
    }
    for code in old_codes.intersection(&new_codes) {
        let (o, n) = (&old["responses"][code], &new["responses"][code]);
        if let (Some(os), Some(ns)) = (body_schema(old_doc, o), body_schema(new_doc, n)) {
            for note in shape_delta(old_doc, os, new_doc, ns, "", 0) {
                notes.push(format!("response {code} {note}"));
            }
        }
    }
    if notes.is_empty() {
        notes.push("documentation or examples changed; same parameters, bodies and response codes".into());
    }
    notes
}

fn section<'a>(
    out: &mut String,
    title: &str,
    (old_doc, old): (&Value, &BTreeMap<String, &'a Value>),
    (new_doc, new): (&Value, &BTreeMap<String, &'a Value>),
    describe: impl Fn(&Value, &Value, &Value, &Value) -> Vec<String>,
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
        let _ = writeln!(out, "  ~ {k}: {}", describe(old_doc, old[*k], new_doc, v).join("; "));
    }
    added.len() + removed.len() + changed.len()
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
    let mut total = section(&mut out, "operations", (old, &operations(old)), (new, &operations(new)), operation_delta);
    total += section(&mut out, "schemas", (old, &schemas(old)), (new, &schemas(new)), schema_delta);
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
        let new = json!({"paths": {"/a": {"get": {"operationId": "a", "parameters": [{"name": "q", "in": "query"}]}},
                                   "/c": {"post": {"operationId": "c"}}},
                         "components": {"schemas": {"G": {"enum": ["H100", "GB200"]}}}});
        let (text, total) = change_report(&old, &new);
        assert_eq!(total, 5, "{text}");
        assert!(text.contains("+ POST /c"), "{text}");
        assert!(text.contains("- GET /b"), "{text}");
        assert!(text.contains("~ GET /a: +parameter q (query): optional"), "{text}");
        assert!(text.contains("~ G: +enum value GB200"), "{text}");
        assert!(text.contains("- Old"), "{text}");
    }

    #[test]
    fn a_property_moved_behind_all_of_is_not_removed() {
        let old = json!({"components": {"schemas": {
            "List": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array"}}}}}});
        let new = json!({"components": {"schemas": {
            "Items": {"type": "object", "required": ["items"], "properties": {"items": {"type": "array"}}},
            "Page": {"type": "object", "required": ["next"], "properties": {"next": {"type": ["string", "null"]}}},
            "List": {"allOf": [{"$ref": "#/components/schemas/Items"}, {"$ref": "#/components/schemas/Page"}]}}}});
        let (text, _) = change_report(&old, &new);
        assert!(text.contains("~ List: +property next; +required next"), "{text}");
        assert!(!text.contains("-property"), "{text}");
    }

    #[test]
    fn parameters_are_itemized_with_refs_resolved() {
        let old = json!({"paths": {"/p": {"get": {"parameters": [
            {"name": "kind", "in": "query", "schema": {"enum": ["a"]}},
            {"name": "gone", "in": "query"}], "responses": {"200": {}}}}}});
        let new = json!({"paths": {"/p": {"get": {"parameters": [
            {"name": "kind", "in": "query", "required": true, "schema": {"enum": ["a", "b"]}},
            {"$ref": "#/components/parameters/Limit"}], "responses": {"200": {}, "413": {}}}}},
            "components": {"parameters": {"Limit": {"name": "limit", "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}}}});
        let (text, _) = change_report(&old, &new);
        assert!(text.contains("+parameter limit (query): optional, integer, maximum=1000, minimum=1"), "{text}");
        assert!(text.contains("parameter kind (query) now required"), "{text}");
        assert!(text.contains("parameter kind (query): +enum value b"), "{text}");
        assert!(text.contains("-parameter gone (query)"), "{text}");
        assert!(text.contains("+response 413"), "{text}");
    }

    /// The real change this report exists for: RunPod v2 a900806e -> 953afcc.
    #[test]
    fn runpod_v2_update_is_reported_truthfully() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let read = |p: &str| -> Value {
            serde_json::from_str(&std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))).unwrap()
        };
        let old = read("openapi/runpod-v2/history/a900806e.upstream.json");
        let new = read("openapi/runpod-v2/upstream.json");
        let (text, _) = change_report(&old, &new);
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
                .to_string()
        };
        let list_pods = line("~ GET /v2/pods:");
        assert!(list_pods.contains("+parameter cursor (query)"), "{list_pods}");
        assert!(list_pods.contains("+parameter limit (query): optional, integer"), "{list_pods}");
        assert!(list_pods.contains("response 200 +property pagination"), "{list_pods}");
        assert!(line("~ POST /v2/pods:").contains("+response 413"), "{text}");
        assert!(line("+ GET /v2/account/secrets").contains("secrets"));
        assert!(!line("~ ListPodsResponse:").contains("-property pods"), "{text}");
        let gpu = line("~ GpuConfig:");
        assert!(!gpu.contains("-property"), "{gpu}");
        assert!(gpu.contains("+required memory, vcpuCount"), "{gpu}");
        assert!(!text.contains("-property"), "nothing was removed from any schema:\n{text}");
    }
}
