//! The normalization passes: rewrites that turn a provider's document into one progenitor 0.15
//! accepts and whose generated types survive real responses.
//!
//! Each pass is a plain function over `serde_json::Value`, returns how many places it rewrote,
//! and has a unit test below on a small input. [`PASSES`] lists them in the order they run, each
//! with the reason it exists; `openapi/README.md` repeats that list for readers of the specs.

use crate::schema_walk::{for_each_schema, walk_schema};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A named rewrite with the reason we need it.
pub struct Pass {
    pub name: &'static str,
    pub reason: &'static str,
    pub run: fn(&mut Value) -> usize,
}

pub const PASSES: &[Pass] = &[
    Pass {
        name: "openapi_version_3_0",
        reason: "progenitor 0.15 accepts OpenAPI 3.0.x only; 3.1-only top-level keys are dropped",
        run: openapi_version_3_0,
    },
    Pass {
        name: "drop_3_1_only_keywords",
        reason: "if/then/else, dependentRequired, unevaluatedProperties, $schema, contentMediaType are not 3.0 and only constrain requests the server validates anyway",
        run: drop_3_1_only_keywords,
    },
    Pass {
        name: "const_to_enum",
        reason: "3.0 has no `const` and progenitor silently drops it; a one-value enum keeps discriminator tags typed",
        run: const_to_enum,
    },
    Pass {
        name: "examples_to_example",
        reason: "schema `examples: [..]` is 3.1; 3.0 wants a single `example`",
        run: examples_to_example,
    },
    Pass {
        name: "numeric_exclusive_bounds",
        reason: "3.1 numeric exclusiveMinimum/Maximum fail to parse as 3.0, which wants minimum + boolean",
        run: numeric_exclusive_bounds,
    },
    Pass {
        name: "type_arrays_to_nullable",
        reason: "`type: [X, 'null']` does not parse as 3.0; it is `type: X, nullable: true`",
        run: type_arrays_to_nullable,
    },
    Pass {
        name: "null_unions_to_nullable",
        reason: "FastAPI's `anyOf: [X, {type: 'null'}]` panics progenitor; it is X with `nullable: true` (a lone $ref wrapped in allOf so nullable counts)",
        run: null_unions_to_nullable,
    },
    Pass {
        name: "standalone_null_type",
        reason: "a schema of `type: 'null'` alone panics typify; it becomes an untyped nullable value",
        run: standalone_null_type,
    },
    Pass {
        name: "dedupe_enum_values",
        reason: "typify panics on duplicate enum values (PI lists RTX3070_8GB twice)",
        run: dedupe_enum_values,
    },
    Pass {
        name: "drop_mistyped_defaults",
        reason: "a default of the wrong JSON type (RunPod v1 `ports: array` with a string default) is a hard error naming no type",
        run: drop_mistyped_defaults,
    },
    Pass {
        name: "object_items_to_additional_properties",
        reason: "`type: object` with `items` (RunPod v1 env, portMappings) means a map; additionalProperties gives a typed HashMap",
        run: object_items_to_additional_properties,
    },
    Pass {
        name: "lenient_string_formats",
        reason: "`format: date-time` becomes chrono::DateTime<Utc>, which rejects PI's offset-less timestamps; string formats stay strings and the facade parses them leniently",
        run: lenient_string_formats,
    },
    Pass {
        name: "string_patterns_as_docs",
        reason: "typify turns a string `pattern` into a regress-checked newtype: on a response (RunPod's CudaVersionAvailability.version) a check can only reject the provider's own data, on a request the provider validates anyway, and regress then compiles twice in every user's build (typify uses it too); the pattern is kept as `x-pattern`",
        run: string_patterns_as_docs,
    },
    Pass {
        name: "default_response_as_error_ranges",
        reason: "progenitor counts a `default` response as a possible success, so 200 Pod + default Problem panics; beside explicit 2xx responses `default` can only mean an error, so it becomes 4XX and 5XX",
        run: default_response_as_error_ranges,
    },
    Pass {
        name: "one_error_body_per_operation",
        reason: "progenitor panics when an operation's error responses have different body types; every PI operation pairs a bodiless 401 with a JSON 422, so bodiless error responses next to typed ones are dropped (they still arrive, as UnexpectedResponse with their status)",
        run: one_error_body_per_operation,
    },
    Pass {
        name: "problem_json_as_json",
        reason: "progenitor types only `application/json` responses; RunPod's RFC 9457 `application/problem+json` errors would otherwise arrive as untyped bytes",
        run: problem_json_as_json,
    },
    Pass {
        name: "one_success_kind_per_operation",
        reason: "progenitor panics when success responses mix a body and no body (RunPod podAction: 200 Pod or 204); the body is dropped so both succeed as `()` (a 204 would otherwise be reported as an error) and callers re-read the resource",
        run: one_success_kind_per_operation,
    },
    Pass {
        name: "lenient_error_bodies",
        reason: "an error body missing a field the document requires (a proxy's `{\"error\": ..}`, FastAPI's `{\"detail\": ..}`) fails to decode, and progenitor then reports it without its HTTP status: a 404 stops being \"already gone\", a 422 looks like a retryable unreadable answer; schemas reached only from error responses lose `required`, so any JSON object decodes and keeps its status",
        run: lenient_error_bodies,
    },
    Pass {
        name: "open_response_enums",
        reason: "a closed enum fails the whole response on a value the spec does not list; enums reachable from a response become strings (known values kept in the docs and x-known-values), so a new GPU type or status never breaks decoding",
        run: open_response_enums,
    },
];

/// Runs every pass in order; returns `(pass name, rewrites)` for the report.
pub fn normalize(doc: &mut Value) -> Vec<(&'static str, usize)> {
    PASSES.iter().map(|pass| (pass.name, (pass.run)(doc))).collect()
}

fn count_schemas(doc: &mut Value, mut f: impl FnMut(&mut Map<String, Value>) -> bool) -> usize {
    let mut count = 0;
    for_each_schema(doc, &mut |schema| {
        if f(schema) {
            count += 1;
        }
    });
    count
}

pub fn openapi_version_3_0(doc: &mut Value) -> usize {
    let Some(map) = doc.as_object_mut() else { return 0 };
    let is_3_1 = map.get("openapi").and_then(Value::as_str).is_some_and(|v| v.starts_with("3.1"));
    if !is_3_1 {
        return 0;
    }
    map.insert("openapi".into(), json!("3.0.3"));
    for key in ["jsonSchemaDialect", "webhooks"] {
        map.shift_remove(key);
    }
    1
}

pub fn drop_3_1_only_keywords(doc: &mut Value) -> usize {
    const KEYWORDS: &[&str] = &[
        "if",
        "then",
        "else",
        "dependentRequired",
        "dependentSchemas",
        "unevaluatedProperties",
        "unevaluatedItems",
        "$schema",
        "$id",
        "contentMediaType",
        "contentEncoding",
        "$comment",
    ];
    count_schemas(doc, |schema| {
        let before = schema.len();
        schema.retain(|key, _| !KEYWORDS.contains(&key.as_str()));
        // An allOf member that held only `if/then` is now `{}`: drop it rather than merge nothing.
        if let Some(Value::Array(members)) = schema.get_mut("allOf") {
            members.retain(|member| member.as_object().is_none_or(|m| !m.is_empty()));
        }
        schema.len() != before
    })
}

pub fn const_to_enum(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| match schema.shift_remove("const") {
        Some(value) => {
            if schema.get("type").is_none() {
                let ty = match &value {
                    Value::String(_) => Some("string"),
                    Value::Bool(_) => Some("boolean"),
                    Value::Number(n) if n.is_i64() || n.is_u64() => Some("integer"),
                    Value::Number(_) => Some("number"),
                    _ => None,
                };
                if let Some(ty) = ty {
                    schema.insert("type".into(), json!(ty));
                }
            }
            schema.insert("enum".into(), json!([value]));
            true
        }
        None => false,
    })
}

pub fn examples_to_example(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        if !schema.get("examples").is_some_and(Value::is_array) {
            return false;
        }
        let Some(Value::Array(examples)) = schema.shift_remove("examples") else { unreachable!() };
        if let Some(first) = examples.into_iter().next() {
            schema.entry("example").or_insert(first);
        }
        true
    })
}

pub fn numeric_exclusive_bounds(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        let mut changed = false;
        for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
            if let Some(Value::Number(n)) = schema.get(exclusive).cloned() {
                schema.insert(bound.into(), Value::Number(n));
                schema.insert(exclusive.into(), json!(true));
                changed = true;
            }
        }
        changed
    })
}

pub fn type_arrays_to_nullable(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        let Some(Value::Array(types)) = schema.get("type").cloned() else { return false };
        let nullable = types.iter().any(|t| t == "null");
        let rest: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
        match rest.len() {
            0 => {
                schema.shift_remove("type");
            }
            1 => {
                schema.insert("type".into(), rest[0].clone());
            }
            _ => {
                // Several real types: an anyOf of each, carrying the type-specific keywords along.
                schema.shift_remove("type");
                let branches: Vec<Value> = rest.into_iter().map(|t| json!({"type": t})).collect();
                schema.insert("anyOf".into(), Value::Array(branches));
            }
        }
        if nullable {
            schema.insert("nullable".into(), json!(true));
        }
        true
    })
}

fn is_null_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

pub fn null_unions_to_nullable(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        let Some(key) = ["anyOf", "oneOf"]
            .into_iter()
            .find(|key| schema.get(*key).and_then(Value::as_array).is_some_and(|b| b.iter().any(is_null_schema)))
        else {
            return false;
        };
        let Some(Value::Array(branches)) = schema.shift_remove(key) else { unreachable!() };
        let mut rest: Vec<Value> = branches.into_iter().filter(|b| !is_null_schema(b)).collect();
        schema.insert("nullable".into(), json!(true));
        match rest.len() {
            0 => {}
            1 => match rest.pop() {
                Some(Value::Object(branch)) if branch.contains_key("$ref") => {
                    schema.insert("allOf".into(), json!([Value::Object(branch)]));
                }
                Some(Value::Object(branch)) => {
                    for (k, v) in branch {
                        schema.entry(k).or_insert(v);
                    }
                }
                _ => {}
            },
            _ => {
                schema.insert(key.into(), Value::Array(rest));
            }
        }
        true
    })
}

pub fn standalone_null_type(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        if schema.get("type").and_then(Value::as_str) != Some("null") {
            return false;
        }
        schema.shift_remove("type");
        schema.insert("nullable".into(), json!(true));
        true
    })
}

pub fn dedupe_enum_values(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        let Some(Value::Array(values)) = schema.get_mut("enum") else { return false };
        let before = values.len();
        let mut seen = Vec::new();
        values.retain(|v| {
            if seen.contains(v) {
                false
            } else {
                seen.push(v.clone());
                true
            }
        });
        values.len() != before
    })
}

fn json_type_matches(declared: &str, value: &Value) -> bool {
    match declared {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

pub fn drop_mistyped_defaults(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        let Some(declared) = schema.get("type").and_then(Value::as_str) else { return false };
        let Some(default) = schema.get("default") else { return false };
        let nullable = schema.get("nullable").and_then(Value::as_bool).unwrap_or(false);
        if json_type_matches(declared, default) || (default.is_null() && nullable) {
            return false;
        }
        schema.shift_remove("default");
        true
    })
}

pub fn object_items_to_additional_properties(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| {
        if schema.get("type").and_then(Value::as_str) != Some("object") || !schema.contains_key("items") {
            return false;
        }
        let items = schema.shift_remove("items").unwrap_or_default();
        schema.entry("additionalProperties").or_insert(items);
        true
    })
}

pub fn lenient_string_formats(doc: &mut Value) -> usize {
    // `binary`/`byte` select how bodies are sent; every other string format is a promise about
    // content that real servers do not always keep.
    const KEEP: &[&str] = &["binary", "byte", "password"];
    count_schemas(doc, |schema| {
        let is_string = schema.get("type").and_then(Value::as_str) == Some("string");
        match schema.get("format").and_then(Value::as_str) {
            Some(format) if is_string && !KEEP.contains(&format) => {
                let format = format.to_string();
                schema.shift_remove("format");
                schema.insert("x-format".into(), json!(format));
                true
            }
            _ => false,
        }
    })
}

pub fn string_patterns_as_docs(doc: &mut Value) -> usize {
    count_schemas(doc, |schema| match schema.shift_remove("pattern") {
        Some(pattern) => {
            schema.insert("x-pattern".into(), pattern);
            true
        }
        None => false,
    })
}

pub fn default_response_as_error_ranges(doc: &mut Value) -> usize {
    let mut count = 0;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return 0 };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut() {
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            if !responses.keys().any(|c| c.starts_with('2')) {
                continue;
            }
            if let Some(default) = responses.shift_remove("default") {
                for range in ["4XX", "5XX"] {
                    responses.entry(range).or_insert_with(|| default.clone());
                }
                count += 1;
            }
        }
    }
    count
}

fn is_error_status(code: &str) -> bool {
    code == "default" || code.starts_with('4') || code.starts_with('5')
}

/// The JSON body schema of a response, following a `$ref` into `components/responses`.
fn response_body<'a>(response: &'a Value, components: &'a Value) -> Option<&'a Value> {
    let response = match response.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.strip_prefix("#/components/responses/")?;
            components.get("responses")?.get(name)?
        }
        None => response,
    };
    let content = response.get("content")?.as_object()?;
    content.iter().find(|(media, _)| media.contains("json")).and_then(|(_, media)| media.get("schema"))
}

pub fn one_error_body_per_operation(doc: &mut Value) -> usize {
    let components = doc.get("components").cloned().unwrap_or(Value::Null);
    let mut removed = 0;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return 0 };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for operation in item.values_mut() {
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            let error_codes: Vec<String> = responses.keys().filter(|c| is_error_status(c)).cloned().collect();
            let bodies: BTreeMap<String, Option<String>> = error_codes
                .iter()
                .map(|code| (code.clone(), response_body(&responses[code], &components).map(|s| s.to_string())))
                .collect();
            let distinct: BTreeSet<&Option<String>> = bodies.values().collect();
            if distinct.len() > 1 && distinct.iter().any(|b| b.is_some()) {
                for (code, body) in &bodies {
                    if body.is_none() {
                        responses.shift_remove(code);
                        removed += 1;
                    }
                }
            }
        }
    }
    removed
}

fn for_each_response(doc: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
                    responses.values_mut().filter_map(Value::as_object_mut).for_each(&mut *f);
                }
            }
        }
    }
    if let Some(responses) = doc.pointer_mut("/components/responses").and_then(Value::as_object_mut) {
        responses.values_mut().filter_map(Value::as_object_mut).for_each(f);
    }
}

pub fn problem_json_as_json(doc: &mut Value) -> usize {
    let mut count = 0;
    for_each_response(doc, &mut |response| {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else { return };
        if content.contains_key("application/json") {
            return;
        }
        if let Some(media) = content.shift_remove("application/problem+json") {
            content.insert("application/json".into(), media);
            count += 1;
        }
    });
    count
}

pub fn one_success_kind_per_operation(doc: &mut Value) -> usize {
    let mut count = 0;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else { return 0 };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in item.values_mut() {
            let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else { continue };
            let success: Vec<String> = responses.keys().filter(|c| c.starts_with('2')).cloned().collect();
            let has_body = |r: &Value| r.get("content").and_then(Value::as_object).is_some_and(|c| !c.is_empty());
            let with_body = success.iter().filter(|c| has_body(&responses[c.as_str()])).count();
            if with_body == 0 || with_body == success.len() {
                continue;
            }
            for code in &success {
                if let Some(response) = responses.get_mut(code).and_then(Value::as_object_mut)
                    && response.shift_remove("content").is_some()
                {
                    count += 1;
                }
            }
        }
    }
    count
}

/// Names of the component schemas reachable from any response.
fn response_reachable_schemas(doc: &Value) -> BTreeSet<String> {
    schemas_reachable_from_responses(doc, |_| true)
}

/// Component schemas reachable from the bodies of responses whose status `wanted` accepts.
fn schemas_reachable_from_responses(doc: &Value, wanted: fn(&str) -> bool) -> BTreeSet<String> {
    fn collect_refs(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(r)) => {
                            if let Some(name) = r.strip_prefix("#/components/schemas/") {
                                out.push(name.to_string());
                            }
                        }
                        ("example" | "examples", _) => {}
                        _ => collect_refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
            _ => {}
        }
    }
    let mut pending = Vec::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values().filter_map(Value::as_object) {
            for operation in item.values() {
                let Some(responses) = operation.get("responses").and_then(Value::as_object) else { continue };
                for (status, response) in responses {
                    if !wanted(status) {
                        continue;
                    }
                    // A response behind a $ref into components/responses counts through it.
                    match response.get("$ref").and_then(Value::as_str) {
                        Some(reference) => {
                            let name = reference.trim_start_matches("#/components/responses/");
                            if let Some(shared) = doc.pointer("/components/responses").and_then(|r| r.get(name)) {
                                collect_refs(shared, &mut pending);
                            }
                        }
                        None => collect_refs(response, &mut pending),
                    }
                }
            }
        }
    }
    let schemas = doc.pointer("/components/schemas");
    let mut reachable = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if reachable.insert(name.clone())
            && let Some(schema) = schemas.and_then(|s| s.get(&name))
        {
            collect_refs(schema, &mut pending);
        }
    }
    reachable
}

fn open_enum(schema: &mut Map<String, Value>) -> bool {
    let Some(Value::Array(values)) = schema.get("enum") else { return false };
    // One-value enums are constants (discriminator tags): keeping them closed keeps the tag typed.
    if values.len() < 2 || !values.iter().all(|v| v.is_string() || v.is_null()) {
        return false;
    }
    let known: Vec<Value> = values.iter().filter(|v| v.is_string()).cloned().collect();
    let listed = known.iter().filter_map(Value::as_str).map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ");
    let note = format!("Known values: {listed}. Values not listed here are kept as sent.");
    let description = match schema.get("description").and_then(Value::as_str) {
        Some(text) if !text.is_empty() => format!("{text}\n\n{note}"),
        _ => note,
    };
    schema.shift_remove("enum");
    schema.insert("type".into(), json!("string"));
    schema.insert("description".into(), json!(description));
    schema.insert("x-known-values".into(), Value::Array(known));
    true
}

pub fn open_response_enums(doc: &mut Value) -> usize {
    let reachable = response_reachable_schemas(doc);
    let mut count = 0;
    let mut visit = |schema: &mut Map<String, Value>| {
        if open_enum(schema) {
            count += 1;
        }
    };
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            if reachable.contains(name) {
                walk_schema(schema, &mut visit);
            }
        }
    }
    // Inline response schemas (not behind a $ref).
    let mut inline: Vec<&mut Value> = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
                    for response in responses.values_mut() {
                        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
                            for media in content.values_mut() {
                                if let Some(schema) = media.get_mut("schema") {
                                    inline.push(schema);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for schema in inline {
        walk_schema(schema, &mut visit);
    }
    count
}

pub fn lenient_error_bodies(doc: &mut Value) -> usize {
    let errors = schemas_reachable_from_responses(doc, is_error_status);
    let successes = schemas_reachable_from_responses(doc, |status| !is_error_status(status));
    let mut count = 0;
    let mut visit = |schema: &mut Map<String, Value>| {
        if schema.shift_remove("required").is_some() {
            count += 1;
        }
    };
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        for (name, schema) in schemas.iter_mut() {
            if errors.contains(name) && !successes.contains(name) {
                walk_schema(schema, &mut visit);
            }
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `pass` on a document whose only schema is `schema`; returns the rewritten schema.
    fn on_schema(pass: fn(&mut Value) -> usize, schema: Value) -> (usize, Value) {
        let mut doc = json!({"components": {"schemas": {"S": schema}}});
        let n = pass(&mut doc);
        (n, doc["components"]["schemas"]["S"].clone())
    }

    #[test]
    fn version_becomes_3_0() {
        let mut doc = json!({"openapi": "3.1.0", "jsonSchemaDialect": "x"});
        assert_eq!(openapi_version_3_0(&mut doc), 1);
        assert_eq!(doc, json!({"openapi": "3.0.3"}));
        let mut doc = json!({"openapi": "3.0.3"});
        assert_eq!(openapi_version_3_0(&mut doc), 0);
    }

    #[test]
    fn if_then_and_friends_are_dropped() {
        let (n, s) = on_schema(
            drop_3_1_only_keywords,
            json!({"allOf": [{"$ref": "#/a"}, {"if": {"not": {"required": ["t"]}}, "then": {"required": ["i"]}}],
                   "unevaluatedProperties": false}),
        );
        assert_eq!(n, 2);
        assert_eq!(s, json!({"allOf": [{"$ref": "#/a"}]}));
    }

    #[test]
    fn const_becomes_single_value_enum() {
        let (n, s) = on_schema(const_to_enum, json!({"const": "QUEUE_DELAY"}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "string", "enum": ["QUEUE_DELAY"]}));
    }

    #[test]
    fn examples_array_becomes_example() {
        let (n, s) = on_schema(examples_to_example, json!({"type": "integer", "examples": [3, 4]}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "integer", "example": 3}));
    }

    #[test]
    fn media_type_examples_map_is_left_alone() {
        let mut doc = json!({"paths": {"/p": {"get": {"responses": {"200": {"content": {"application/json": {
            "schema": {"type": "string"}, "examples": {"a": {"value": "x"}}}}}}}}}});
        let before = doc.clone();
        assert_eq!(examples_to_example(&mut doc), 0);
        assert_eq!(doc, before);
    }

    #[test]
    fn numeric_exclusive_minimum_becomes_boolean() {
        let (n, s) = on_schema(numeric_exclusive_bounds, json!({"type": "number", "exclusiveMinimum": 0}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "number", "exclusiveMinimum": true, "minimum": 0}));
    }

    #[test]
    fn type_array_with_null_becomes_nullable() {
        let (n, s) = on_schema(type_arrays_to_nullable, json!({"type": ["string", "null"]}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "string", "nullable": true}));
    }

    #[test]
    fn null_union_with_ref_is_wrapped_in_all_of() {
        let (n, s) = on_schema(
            null_unions_to_nullable,
            json!({"anyOf": [{"$ref": "#/components/schemas/T"}, {"type": "null"}], "description": "d"}),
        );
        assert_eq!(n, 1);
        assert_eq!(s, json!({"description": "d", "nullable": true, "allOf": [{"$ref": "#/components/schemas/T"}]}));
    }

    #[test]
    fn null_union_with_inline_schema_is_merged() {
        let (_, s) = on_schema(
            null_unions_to_nullable,
            json!({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}], "title": "T"}),
        );
        assert_eq!(s, json!({"title": "T", "nullable": true, "type": "array", "items": {"type": "string"}}));
    }

    #[test]
    fn null_union_of_several_types_keeps_the_union() {
        let (_, s) = on_schema(
            null_unions_to_nullable,
            json!({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}),
        );
        assert_eq!(s, json!({"nullable": true, "anyOf": [{"type": "string"}, {"type": "integer"}]}));
    }

    #[test]
    fn lone_null_type_becomes_untyped_nullable() {
        let (n, s) = on_schema(standalone_null_type, json!({"type": "null", "title": "x"}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"title": "x", "nullable": true}));
    }

    #[test]
    fn duplicate_enum_values_are_removed() {
        let (n, s) = on_schema(dedupe_enum_values, json!({"enum": ["A", "B", "A"]}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"enum": ["A", "B"]}));
    }

    #[test]
    fn string_default_on_array_is_dropped() {
        let (n, s) = on_schema(
            drop_mistyped_defaults,
            json!({"type": "array", "items": {"type": "string"}, "default": "8888/http"}),
        );
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "array", "items": {"type": "string"}}));
        let (n, _) = on_schema(drop_mistyped_defaults, json!({"type": "integer", "default": 3}));
        assert_eq!(n, 0);
    }

    #[test]
    fn object_with_items_becomes_map() {
        let (n, s) =
            on_schema(object_items_to_additional_properties, json!({"type": "object", "items": {"type": "string"}}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "object", "additionalProperties": {"type": "string"}}));
    }

    #[test]
    fn date_time_format_is_relaxed() {
        let (n, s) = on_schema(lenient_string_formats, json!({"type": "string", "format": "date-time"}));
        assert_eq!(n, 1);
        assert_eq!(s, json!({"type": "string", "x-format": "date-time"}));
        let (n, _) = on_schema(lenient_string_formats, json!({"type": "string", "format": "binary"}));
        assert_eq!(n, 0);
        let (n, s) = on_schema(string_patterns_as_docs, json!({"type": "string", "pattern": "^\\d+$"}));
        assert_eq!((n, s), (1, json!({"type": "string", "x-pattern": "^\\d+$"})));
        let (n, _) = on_schema(string_patterns_as_docs, json!({"type": "string"}));
        assert_eq!(n, 0);
    }

    #[test]
    fn bodiless_error_beside_typed_error_is_dropped() {
        let mut doc = json!({"paths": {"/p": {"get": {"responses": {
            "200": {"description": "ok"},
            "401": {"description": "no"},
            "422": {"description": "bad", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/E"}}}}
        }}}}});
        assert_eq!(one_error_body_per_operation(&mut doc), 1);
        let codes: Vec<&String> = doc["paths"]["/p"]["get"]["responses"].as_object().unwrap().keys().collect();
        assert_eq!(codes, ["200", "422"]);
    }

    #[test]
    fn default_beside_success_becomes_error_ranges() {
        let mut doc = json!({"paths": {"/a": {"get": {"responses": {
            "200": {"description": "ok"}, "404": {"description": "gone"}, "default": {"description": "problem"}}}}}});
        assert_eq!(default_response_as_error_ranges(&mut doc), 1);
        let codes: Vec<&String> = doc["paths"]["/a"]["get"]["responses"].as_object().unwrap().keys().collect();
        assert_eq!(codes, ["200", "404", "4XX", "5XX"]);
    }

    #[test]
    fn problem_json_is_typed_as_json() {
        let mut doc =
            json!({"components": {"responses": {"E": {"content": {"application/problem+json": {"schema": {}}}}}}});
        assert_eq!(problem_json_as_json(&mut doc), 1);
        assert!(doc["components"]["responses"]["E"]["content"]["application/json"].is_object());
    }

    #[test]
    fn mixed_success_bodies_become_bodiless() {
        let mut doc = json!({"paths": {"/a": {"post": {"responses": {
            "200": {"content": {"application/json": {"schema": {}}}}, "204": {"description": "none"}}}}}});
        assert_eq!(one_success_kind_per_operation(&mut doc), 1);
        assert!(doc["paths"]["/a"]["post"]["responses"]["200"].get("content").is_none());
    }

    #[test]
    fn schemas_only_errors_return_lose_required() {
        let mut doc = json!({
            "paths": {"/p": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pod"}}}},
                "404": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
                "422": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Shared"}}}}
            }}}, "/q": {"get": {"responses": {
                "200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Shared"}}}}
            }}}},
            "components": {"schemas": {
                "Pod": {"type": "object", "required": ["id"]},
                "Problem": {"type": "object", "required": ["detail"], "properties": {
                    "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}},
                "Item": {"type": "object", "required": ["param"]},
                "Shared": {"type": "object", "required": ["x"]}
            }}
        });
        assert_eq!(lenient_error_bodies(&mut doc), 2);
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["Problem"].get("required").is_none() && schemas["Item"].get("required").is_none());
        assert_eq!(schemas["Pod"]["required"], json!(["id"]));
        assert_eq!(schemas["Shared"]["required"], json!(["x"]), "also a success body: unchanged");
    }

    #[test]
    fn only_enums_reachable_from_responses_are_opened() {
        let mut doc = json!({
            "paths": {"/p": {"post": {
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Req"}}}},
                "responses": {"200": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Res"}}}}}
            }}},
            "components": {"schemas": {
                "Req": {"type": "object", "properties": {"kind": {"enum": ["a", "b"]}}},
                "Res": {"type": "object", "properties": {"status": {"$ref": "#/components/schemas/Status"},
                                                         "tag": {"type": "string", "enum": ["only"]}}},
                "Status": {"type": "string", "enum": ["UP", "DOWN"], "description": "State."}
            }}
        });
        assert_eq!(open_response_enums(&mut doc), 1);
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["Req"]["properties"]["kind"]["enum"], json!(["a", "b"]));
        assert_eq!(schemas["Res"]["properties"]["tag"]["enum"], json!(["only"]));
        assert_eq!(schemas["Status"]["x-known-values"], json!(["UP", "DOWN"]));
        assert!(schemas["Status"].get("enum").is_none());
        assert!(schemas["Status"]["description"].as_str().unwrap().contains("`DOWN`"));
    }
}
