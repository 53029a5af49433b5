//! Every request checked against the provider's own document before a handler sees it.
//!
//! The generated types the handlers decode with come from the down-converted generator input,
//! which loses OpenAPI 3.1's `unevaluatedProperties: false`, `if`/`then` and `const`; so the
//! emulator validates instead against `documents/*.json`, the upstream documents (with the
//! overlay's added enum values and no duplicate ones), with a JSON Schema 2020-12 validator:
//! request bodies, query parameters (typed by their schema: integers, booleans, arrays of
//! repeated keys) and path parameters, each against the operation's own schemas. A request the
//! document refuses gets the provider's refusal:
//!
//! - RunPod: `422` problem+json with one `errors[]` entry per violation, as the document's own
//!   example (`"$: additional properties 'bogus' not allowed"`);
//! - PrimeIntellect (FastAPI): `422 {"detail": [{"loc": [...], "msg": ..., "type": ...}]}`, the
//!   shape FastAPI itself answers request validation with.
//!
//! Unknown routes and methods get each provider's error shape too (problem+json for `/v2/`,
//! FastAPI's `{"detail": "Not Found"}` otherwise; see `errors`). The middleware that runs these
//! checks on every request is in `middleware`.

use crate::errors;
use crate::state::Api;
use axum::body::Body;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonschema::{Registry, Validator};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Request bodies larger than this are not read for validation (`middleware`) (the handlers answer 413 where a
/// document sets a limit; nothing the emulator serves takes more).
pub(crate) const MAX_BODY: usize = 4 << 20;

struct Document {
    uri: &'static str,
    doc: Value,
    registry: Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

fn document(api: Api) -> &'static Document {
    static RUNPOD: OnceLock<Document> = OnceLock::new();
    static PRIMEINTELLECT: OnceLock<Document> = OnceLock::new();
    let (cell, uri, text) = match api {
        Api::RunPod => (&RUNPOD, "urn:gpucloud:runpod-v2", include_str!("../documents/runpod-v2.json")),
        Api::PrimeIntellect => {
            (&PRIMEINTELLECT, "urn:gpucloud:primeintellect", include_str!("../documents/primeintellect.json"))
        }
    };
    cell.get_or_init(|| {
        let doc: Value = serde_json::from_str(text).expect("the vendored document is JSON (regen --check)");
        let registry = Registry::new()
            .add(uri, doc.clone())
            .and_then(|builder| builder.prepare())
            .expect("the vendored document is a valid schema resource");
        Document { uri, doc, registry, validators: Mutex::new(HashMap::new()) }
    })
}

impl Document {
    /// The validator of the schema at `pointer` inside the document, compiled once.
    fn validator(&'static self, pointer: &str) -> Option<Arc<Validator>> {
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(pointer) {
            return Some(Arc::clone(v));
        }
        // A JSON pointer in a URI fragment is percent-encoded where URIs forbid its characters
        // (RFC 6901 section 6): paths such as `/v2/pods/{id}` carry braces.
        let mut fragment = String::with_capacity(pointer.len());
        for c in pointer.chars() {
            match c {
                '{' | '}' | '%' | ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '|' => {
                    fragment.push_str(&format!("%{:02X}", c as u32));
                }
                c => fragment.push(c),
            }
        }
        let schema = json!({ "$ref": format!("{}#{fragment}", self.uri) });
        let validator = match jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .with_registry(&self.registry)
            .build(&schema)
        {
            Ok(v) => Arc::new(v),
            Err(e) => {
                tracing::error!(pointer, error = %e, "a schema of the vendored document does not compile; not validated");
                return None;
            }
        };
        cache.insert(pointer.to_string(), Arc::clone(&validator));
        Some(validator)
    }

    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..16 {
            match node.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(pointer) => node = self.doc.pointer(pointer).unwrap_or(node),
                None => break,
            }
        }
        node
    }

    /// The JSON type a parameter's schema asks for (through `$ref`, `allOf` and FastAPI's
    /// `anyOf: [X, {type: null}]`): how its string value is read.
    fn expected_type(&self, schema: &Value) -> Option<String> {
        let schema = self.resolve(schema);
        match schema.get("type") {
            Some(Value::String(t)) => return Some(t.clone()),
            Some(Value::Array(ts)) => {
                return ts.iter().filter_map(Value::as_str).find(|t| *t != "null").map(str::to_string);
            }
            _ => {}
        }
        if schema.get("enum").is_some() {
            return Some("string".into());
        }
        ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array))
            .flatten()
            .find_map(|part| self.expected_type(part).filter(|t| t != "null"))
    }

    fn items_type(&self, schema: &Value) -> Option<String> {
        let schema = self.resolve(schema);
        if let Some(items) = schema.get("items") {
            return self.expected_type(items);
        }
        ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_array))
            .flatten()
            .find_map(|part| self.items_type(part))
    }
}

/// A query or path value read as the schema's type; left a string when it does not parse, so
/// the validator reports the type mismatch.
fn typed(value: &str, kind: Option<&str>) -> Value {
    match kind {
        Some("integer") => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(value)),
        Some("number") => value
            .parse::<f64>()
            .ok()
            .and_then(|n| serde_json::Number::from_f64(n).map(Value::Number))
            .unwrap_or_else(|| json!(value)),
        Some("boolean") => match value {
            "true" => json!(true),
            "false" => json!(false),
            _ => json!(value),
        },
        _ => json!(value),
    }
}

/// One way a request breaks its document.
#[derive(Debug, Clone)]
pub(crate) struct Violation {
    /// Where: `["body", "gpu", "count"]`, `["query", "limit"]`, `["path", "id"]`.
    pub loc: Vec<Value>,
    /// What, in the validator's words.
    pub message: String,
}

impl Violation {
    /// RunPod's spelling of the location: `$.gpu.count`, `query.limit`.
    fn runpod_path(&self) -> String {
        let (root, rest) =
            self.loc.split_first().map(|(r, rest)| (r.as_str().unwrap_or(""), rest)).unwrap_or(("", &[]));
        let mut out = if root == "body" { "$".to_string() } else { root.to_string() };
        for part in rest {
            match part {
                Value::Number(n) => out.push_str(&format!("[{n}]")),
                other => {
                    out.push('.');
                    out.push_str(other.as_str().unwrap_or_default());
                }
            }
        }
        out
    }
}

fn violations_of(validator: &Validator, instance: &Value, root: &str) -> Vec<Violation> {
    validator
        .iter_errors(instance)
        .map(|error| {
            let mut loc = vec![json!(root)];
            let path = error.instance_path().to_string();
            for segment in path.split('/').skip(1) {
                let segment = segment.replace("~1", "/").replace("~0", "~");
                loc.push(segment.parse::<u64>().map(Value::from).unwrap_or_else(|_| json!(segment)));
            }
            Violation { loc, message: error.to_string() }
        })
        .collect()
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The document's path for a route `template` that may name its parameters differently
/// (`/api/v1/pods/{id}` is the document's `/api/v1/pods/{pod_id}`): the emulator's route names
/// are what its request counters report, so they stay as they are.
fn document_template(document: &Document, template: &str) -> String {
    let shape = |t: &str| -> Vec<String> {
        t.split('/').map(|s| if s.starts_with('{') { "{}".to_string() } else { s.to_string() }).collect()
    };
    let wanted = shape(template);
    document
        .doc
        .get("paths")
        .and_then(Value::as_object)
        .and_then(|paths| paths.keys().find(|p| *p == template).or_else(|| paths.keys().find(|p| shape(p) == wanted)))
        .cloned()
        .unwrap_or_else(|| template.to_string())
}

/// What `method template` (the route as the document spells it) breaks, for this request.
pub(crate) fn check(
    api: Api,
    method: &Method,
    template: &str,
    path: &str,
    query: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<Violation> {
    let document = document(api);
    let template = &document_template(document, template);
    let method_key = method.as_str().to_ascii_lowercase();
    let op_pointer = format!("/paths/{}/{method_key}", escape(template));
    let Some(operation) = document.doc.pointer(&op_pointer) else { return Vec::new() };
    let mut found = Vec::new();
    let path_values: HashMap<&str, &str> = template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, v)| t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).map(|name| (name, v)))
        .collect();
    let parameters = operation.get("parameters").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    for (index, parameter) in parameters.iter().enumerate() {
        let resolved = document.resolve(parameter);
        let (Some(name), Some(location)) =
            (resolved.get("name").and_then(Value::as_str), resolved.get("in").and_then(Value::as_str))
        else {
            continue;
        };
        let Some(schema) = resolved.get("schema") else { continue };
        // The schema's own location in the document, so its `$ref`s resolve.
        let schema_pointer = match parameter.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(target) => format!("{target}/schema"),
            None => format!("{op_pointer}/parameters/{index}/schema"),
        };
        let value = match location {
            "query" => {
                let values: Vec<&str> = query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect();
                if values.is_empty() {
                    if resolved.get("required").and_then(Value::as_bool) == Some(true) {
                        found.push(Violation { loc: vec![json!("query"), json!(name)], message: "is required".into() });
                    }
                    continue;
                }
                if document.expected_type(schema).as_deref() == Some("array") {
                    let kind = document.items_type(schema);
                    // `style: form` (the default for query parameters) with `explode: false`
                    // sends an array as one comma-separated value (`product=POD,CLUSTER`; RunPod
                    // documents `include`, `product`, `countryCodes`, `cudaVersions` so, and its
                    // MCP server sends them so), and upstream refuses the key repeated ("parameter
                    // is not exploded, but is specified multiple times", quoted in the MCP
                    // server's dispatch.ts). `explode` defaults to true for `form`: repeated keys
                    // (`regions=a&regions=b`, PrimeIntellect).
                    let exploded = resolved.get("explode").and_then(Value::as_bool).unwrap_or(true);
                    if !exploded && values.len() > 1 {
                        found.push(Violation {
                            loc: vec![json!("query"), json!(name)],
                            message: "is not exploded, but is specified multiple times: send one comma-separated value"
                                .into(),
                        });
                        continue;
                    }
                    let items: Vec<&str> = if exploded {
                        values.clone()
                    } else {
                        values[0].split(',').filter(|v| !v.is_empty()).collect()
                    };
                    Value::Array(items.iter().map(|v| typed(v, kind.as_deref())).collect())
                } else {
                    typed(values[values.len() - 1], document.expected_type(schema).as_deref())
                }
            }
            "path" => match path_values.get(name) {
                Some(v) => typed(v, document.expected_type(schema).as_deref()),
                None => continue,
            },
            _ => continue,
        };
        if let Some(validator) = document.validator(&schema_pointer) {
            for mut violation in violations_of(&validator, &value, location) {
                violation.loc.insert(1, json!(name));
                found.push(violation);
            }
        }
    }
    let request_body = operation.get("requestBody").map(|b| document.resolve(b));
    if let Some(request_body) = request_body
        && request_body.pointer("/content/application~1json/schema").is_some()
    {
        let body_pointer =
            match operation.pointer("/requestBody/$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
                Some(target) => format!("{target}/content/application~1json/schema"),
                None => format!("{op_pointer}/requestBody/content/application~1json/schema"),
            };
        let required = request_body.get("required").and_then(Value::as_bool) == Some(true);
        match body.filter(|b| !b.is_empty()) {
            None if required => {
                found.push(Violation { loc: vec![json!("body")], message: "a JSON request body is required".into() });
            }
            None => {}
            Some(bytes) => match serde_json::from_slice::<Value>(bytes) {
                Err(e) => found.push(Violation { loc: vec![json!("body")], message: format!("not JSON: {e}") }),
                Ok(instance) => {
                    if let Some(validator) = document.validator(&body_pointer) {
                        found.extend(violations_of(&validator, &instance, "body"));
                    }
                }
            },
        }
    }
    found
}

/// The provider's answer to a request its document refuses (see `errors`).
pub(crate) fn refusal(api: Api, violations: &[Violation]) -> Response {
    match api {
        Api::RunPod => errors::runpod::validation_failed(
            violations.iter().map(|v| format!("{}: {}", v.runpod_path(), v.message)).collect(),
        ),
        Api::PrimeIntellect => errors::primeintellect::validation_failed(
            violations
                .iter()
                .map(|v| json!({"type": "value_error", "loc": v.loc, "msg": v.message, "input": null}))
                .collect(),
        ),
    }
}

/// What the emulator's own answers were checked against ([`crate::EmulatorConfig::check_responses`]).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ResponseChecks {
    /// JSON responses validated, per route and status: `"GET /v2/pods 200"`.
    pub checked: std::collections::BTreeMap<String, u64>,
    /// Each way a response broke the document's schema for its status: route, status, where,
    /// what.
    pub violations: Vec<String>,
}

/// The JSON Schema pointer of the body the document gives `status` of the operation (the exact
/// code, its class such as `4XX`, or `default`), through a `$ref`ed response.
fn response_schema_pointer(document: &Document, op_pointer: &str, status: u16) -> Option<String> {
    let responses = document.doc.pointer(&format!("{op_pointer}/responses"))?;
    let class = format!("{}XX", status / 100);
    let (key, response) = [status.to_string(), class, "default".to_string()]
        .into_iter()
        .find_map(|key| responses.get(&key).map(|r| (key, r)))?;
    let base = match response.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
        Some(target) => target.to_string(),
        None => format!("{op_pointer}/responses/{}", escape(&key)),
    };
    let content = document.doc.pointer(&format!("{base}/content"))?.as_object()?;
    let media = ["application/json", "application/problem+json"].into_iter().find(|m| content.contains_key(*m))?;
    Some(format!("{base}/content/{}/schema", escape(media)))
}

/// Validates a JSON response against its operation's documented response schema, recording the
/// check in `checks`.
pub(crate) async fn check_response(
    checks: &Mutex<ResponseChecks>,
    api: Api,
    method: &Method,
    template: &str,
    response: Response,
) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("application/problem+json"));
    let status = response.status().as_u16();
    let document = document(api);
    let template = &document_template(document, template);
    let op_pointer = format!("/paths/{}/{}", escape(template), method.as_str().to_ascii_lowercase());
    let Some(pointer) = is_json.then(|| response_schema_pointer(document, &op_pointer, status)).flatten() else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "unreadable response").into_response();
    };
    let route = format!("{method} {template} {status}");
    let found: Vec<String> = match serde_json::from_slice::<Value>(&bytes) {
        Err(e) => vec![format!("{route}: not JSON: {e}")],
        Ok(instance) => document
            .validator(&pointer)
            .map(|validator| {
                violations_of(&validator, &instance, "response")
                    .into_iter()
                    .map(|v| format!("{route}: {}: {}", v.runpod_path(), v.message))
                    .collect()
            })
            .unwrap_or_default(),
    };
    for violation in &found {
        tracing::error!(%violation, "the emulator answered outside its document");
    }
    let mut checks = checks.lock().unwrap_or_else(|e| e.into_inner());
    *checks.checked.entry(route).or_default() += 1;
    checks.violations.extend(found);
    drop(checks);
    Response::from_parts(parts, Body::from(bytes))
}

/// The documented operation `method path` is, if any: its path template and its first tag. A
/// literal segment beats a parameter (`/v2/registries/delegations` over `/v2/registries/{id}`).
pub(crate) fn documented(api: Api, method: &Method, path: &str) -> Option<(String, String)> {
    let document = document(api);
    let method = method.as_str().to_ascii_lowercase();
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document.doc.get("paths")?.as_object()?;
    paths
        .iter()
        .filter_map(|(template, operations)| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            let operation = operations.get(&method)?;
            let tag = operation.pointer("/tags/0").and_then(Value::as_str).unwrap_or("").to_string();
            Some((literal, template.clone(), tag))
        })
        .max_by_key(|(literal, ..)| *literal)
        .map(|(_, template, tag)| (template, tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_violations(api: Api, method: Method, template: &str, body: Value) -> Vec<String> {
        check(api, &method, template, template, &[], Some(body.to_string().as_bytes()))
            .iter()
            .map(|v| format!("{}: {}", v.runpod_path(), v.message))
            .collect()
    }

    fn query_violations(api: Api, template: &str, query: &[(&str, &str)]) -> Vec<String> {
        let pairs: Vec<(String, String)> = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        check(api, &Method::GET, template, template, &pairs, None).iter().map(|v| v.runpod_path()).collect()
    }

    /// What the response check finds in `body`, answered with `status` to `method template`.
    fn response_violations(api: Api, method: &str, template: &str, status: u16, body: Value) -> Option<usize> {
        let document = document(api);
        let op = format!("/paths/{}/{method}", escape(template));
        let validator = document.validator(&response_schema_pointer(document, &op, status)?)?;
        Some(violations_of(&validator, &body, "response").len())
    }

    #[test]
    fn responses_are_checked_against_the_schema_of_their_status() {
        let error = json!({"title": "Not Found", "status": 404, "detail": "pod not found"});
        assert_eq!(response_violations(Api::RunPod, "get", "/v2/pods/{id}", 404, error.clone()), Some(0));
        // A pod without its required fields, or an error where a pod is documented, is caught.
        assert!(response_violations(Api::RunPod, "get", "/v2/pods/{id}", 200, json!({"id": "x"})).unwrap() > 0);
        assert!(response_violations(Api::RunPod, "get", "/v2/pods/{id}", 200, error).unwrap() > 0);
        let keys = json!({"keys": ["ssh-ed25519 AAAA me"]});
        assert_eq!(response_violations(Api::RunPod, "get", "/v2/account/ssh-keys", 200, keys), Some(0));
        let page = json!({"items": [], "totalCount": "two"});
        assert!(response_violations(Api::PrimeIntellect, "get", "/api/v1/availability/gpus", 200, page).unwrap() > 0);
    }

    #[test]
    fn runpod_create_refuses_unknown_fields_and_a_missing_image() {
        let ok = json!({"name": "p", "image": "runpod/pytorch", "gpu": {"id": "NVIDIA H100 80GB HBM3", "count": 1}});
        assert!(body_violations(Api::RunPod, Method::POST, "/v2/pods", ok.clone()).is_empty());
        let mut bogus = ok.clone();
        bogus["bogus"] = json!(1);
        assert!(!body_violations(Api::RunPod, Method::POST, "/v2/pods", bogus).is_empty(), "unevaluatedProperties");
        let mut imageless = ok.clone();
        imageless.as_object_mut().unwrap().remove("image");
        assert!(
            !body_violations(Api::RunPod, Method::POST, "/v2/pods", imageless).is_empty(),
            "image unless templateId"
        );
        let mut cloud = ok;
        cloud["cloud"] = json!("BOGUS");
        let found = body_violations(Api::RunPod, Method::POST, "/v2/pods", cloud);
        assert!(found.iter().any(|v| v.starts_with("$.cloud")), "{found:?}");
    }

    #[test]
    fn runpod_ranges_and_query_enums_hold() {
        let volume = json!({"name": "v", "size": 5, "dataCenter": "US-KS-2"});
        let found = body_violations(Api::RunPod, Method::POST, "/v2/network-volumes", volume);
        assert!(!found.is_empty(), "volume size 10-4096");
        assert_eq!(query_violations(Api::RunPod, "/v2/pods", &[("limit", "0")]), ["query.limit"]);
        assert!(query_violations(Api::RunPod, "/v2/pods", &[("limit", "1000")]).is_empty());
    }

    #[test]
    fn primeintellect_query_enums_and_page_size_hold() {
        let template = "/api/v1/availability/gpus";
        assert!(
            query_violations(Api::PrimeIntellect, template, &[("regions", "united_states"), ("regions", "canada")])
                .is_empty()
        );
        assert_eq!(query_violations(Api::PrimeIntellect, template, &[("regions", "US")]), ["query.regions"]);
        assert!(!query_violations(Api::PrimeIntellect, template, &[("gpu_type", "H100_94GB")]).is_empty());
        assert!(!query_violations(Api::PrimeIntellect, template, &[("page_size", "101")]).is_empty());
        assert!(
            query_violations(Api::PrimeIntellect, template, &[("page_size", "100"), ("gpu_type", "H100_80GB")])
                .is_empty()
        );
    }
}
