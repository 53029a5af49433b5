//! Visiting every schema object of an OpenAPI document, and only schema objects.
//!
//! A naive walk over all JSON objects would rewrite payloads in `example`s or properties that
//! happen to be called `type` or `const`; this walker follows the places where the OpenAPI and
//! JSON Schema grammars put sub-schemas.

use serde_json::{Map, Value};

/// Keys whose value is a single sub-schema.
const SCHEMA_KEYS: &[&str] = &["items", "not", "if", "then", "else", "additionalProperties", "contains"];
/// Keys whose value is an array of sub-schemas.
const SCHEMA_ARRAY_KEYS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keys whose value is a map of name -> sub-schema.
const SCHEMA_MAP_KEYS: &[&str] = &["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"];

/// Calls `f` on every schema object in `doc`, children before parents.
pub fn for_each_schema(doc: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    walk_document(doc, f);
}

fn walk_document(node: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    match node {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match key.as_str() {
                    "example" | "examples" => {}
                    "schema" => walk_schema(value, f),
                    "schemas" => {
                        if let Value::Object(schemas) = value {
                            for schema in schemas.values_mut() {
                                walk_schema(schema, f);
                            }
                        }
                    }
                    _ => walk_document(value, f),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| walk_document(item, f)),
        _ => {}
    }
}

/// Applies `f` to `schema` and everything below it, children first.
pub fn walk_schema(schema: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(map) = schema else { return };
    for (key, value) in map.iter_mut() {
        let key = key.as_str();
        if SCHEMA_KEYS.contains(&key) {
            walk_schema(value, f);
        } else if SCHEMA_ARRAY_KEYS.contains(&key) {
            if let Value::Array(items) = value {
                items.iter_mut().for_each(|item| walk_schema(item, f));
            }
        } else if SCHEMA_MAP_KEYS.contains(&key)
            && let Value::Object(children) = value
        {
            children.values_mut().for_each(|child| walk_schema(child, f));
        }
    }
    f(map);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn visits_schemas_but_not_examples_or_property_names() {
        let mut doc = json!({
            "paths": {"/x": {"get": {"responses": {"200": {"content": {"application/json": {
                "schema": {"type": "object", "properties": {"type": {"type": "string"}}},
                "example": {"type": "not-a-schema"}
            }}}}}}},
            "components": {"schemas": {"A": {"anyOf": [{"type": "integer"}]}}}
        });
        let mut seen = Vec::new();
        for_each_schema(&mut doc, &mut |s| seen.push(Value::Object(s.clone())));
        assert_eq!(seen.len(), 4, "{seen:#?}");
        assert!(!seen.contains(&json!({"type": "not-a-schema"})));
    }
}
