//! RunPod v2 beyond pods and volumes: the catalog's other reads (`/v2/catalog/gpus/{id}`,
//! `/cpus`, `/datacenters`, `/templates`), templates (`/v2/templates`), container registry
//! credentials and ECR delegations (`/v2/registries`), and serverless endpoints
//! (`/v2/serverless`), each with the lifecycle the document gives it.
//!
//! Request bodies reach these handlers already checked against the document by the strict layer
//! (unknown fields, types, ranges, required fields), so the handlers read the JSON as sent; each
//! answer goes through the generated type of the document's response schema ([`wire`]).
//! Templates, registries, delegations and endpoints are kept as the JSON they are answered with
//! (`State::records`). Serverless endpoints run no workers here: their worker, release and
//! build lists are empty, as they are for an endpoint that has scaled to zero and was never
//! built from a repository.

use crate::catalog;
use crate::errors::runpod::problem;
use crate::shared::Shared;
use crate::state::{Api, State as EmulatorState, now_rfc3339};
use crate::wire::{query_pairs, wire};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runpod_api::types;
use serde_json::{Map, Value, json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v2/catalog/gpus", get(list_gpu_types))
        .route("/v2/catalog/gpus/{id}", get(get_gpu_type))
        .route("/v2/catalog/cpus", get(list_cpu_types))
        .route("/v2/catalog/cpus/{id}", get(get_cpu_type))
        .route("/v2/catalog/datacenters", get(list_data_centers))
        .route("/v2/catalog/datacenters/{id}", get(get_data_center))
        .route("/v2/catalog/templates", get(list_public_templates))
        .route("/v2/templates", get(list_templates).post(create_template))
        .route("/v2/templates/{id}", get(get_template).patch(update_template).delete(delete_template))
        .route("/v2/registries", get(list_registries).post(create_registry))
        .route("/v2/registries/{id}", get(get_registry).delete(delete_registry))
        .route("/v2/registries/delegations", get(list_delegations).post(create_delegation))
        .route("/v2/registries/delegations/{id}", axum::routing::delete(delete_delegation))
        .route("/v2/serverless", get(list_endpoints).post(create_endpoint))
        .route("/v2/serverless/{id}", get(get_endpoint).patch(update_endpoint).delete(delete_endpoint))
        .route("/v2/serverless/{id}/workers", get(list_workers))
        .route("/v2/serverless/{id}/releases", get(list_releases))
        .route("/v2/serverless/{id}/builds", get(list_builds))
        .route("/v2/serverless/{id}/builds/{buildId}", get(get_build))
        .route("/v2/serverless/{id}/workers/{workerId}/logs", get(worker_logs))
}

/// A refusal not yet rendered: status and detail (a `Response` is too large an `Err`).
type Refusal = (StatusCode, String);

fn refuse(status: StatusCode, detail: &str) -> Refusal {
    (status, detail.to_string())
}

/// Comma-separated values of `name` (`style: form, explode: false`; the strict layer has
/// already refused repeated keys).
fn list_param(pairs: &[(String, String)], name: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(',').map(str::to_string))
        .filter(|v| !v.is_empty())
        .collect()
}

/// `GET /v2/catalog/gpus`. "Availability is included only when requested with
/// include=AVAILABILITY, which requires `product`"; `product`, `count`, `cloud`, `countryCodes`,
/// `cudaVersions` and `minCudaVersion` are "valid only with include=AVAILABILITY (400
/// otherwise)", and the two CUDA filters are mutually exclusive (400). Without it the list
/// carries no `availability`, `dataCenters` or `cudaVersions`.
fn gpu_types_json(query: Option<String>) -> Result<Vec<Value>, Refusal> {
    let pairs = query_pairs(query);
    let values = |name: &str| -> Vec<String> {
        pairs.iter().filter(|(k, _)| k == name).flat_map(|(_, v)| v.split(',').map(str::to_string)).collect()
    };
    let with_availability = values("include").iter().any(|v| v == "AVAILABILITY");
    if with_availability && values("product").is_empty() {
        return Err(refuse(StatusCode::BAD_REQUEST, "include=AVAILABILITY requires product"));
    }
    let scoped = ["product", "count", "cloud", "countryCodes", "cudaVersions", "minCudaVersion"];
    if let Some(name) = scoped.iter().find(|name| !with_availability && !values(name).is_empty()) {
        return Err(refuse(StatusCode::BAD_REQUEST, &format!("{name} is valid only with include=AVAILABILITY")));
    }
    let (allowed, floor) = (values("cudaVersions"), values("minCudaVersion").into_iter().next());
    if !allowed.is_empty() && floor.is_some() {
        return Err(refuse(StatusCode::BAD_REQUEST, "cudaVersions and minCudaVersion are mutually exclusive"));
    }
    let count: u32 = values("count").first().and_then(|v| v.parse().ok()).unwrap_or(1);
    let gpus: Vec<Value> = catalog::runpod()
        .iter()
        .map(|g| {
            let mut gpu = g.to_json();
            let fields = gpu.as_object_mut().expect("an object");
            if !with_availability {
                for name in ["availability", "dataCenters", "cudaVersions"] {
                    fields.remove(name);
                }
                return gpu;
            }
            let cuda = g.cuda_matching(&allowed, floor.as_deref());
            fields.insert(
                "cudaVersions".into(),
                json!(
                    cuda.iter()
                        .map(|v| json!({"version": v, "available": g.availability != "NONE"}))
                        .collect::<Vec<_>>()
                ),
            );
            // "omitted entirely when the configuration is unavailable everywhere".
            if count > 8 || cuda.is_empty() || g.availability == "NONE" {
                fields.insert("availability".into(), json!("NONE"));
                fields.remove("dataCenters");
            }
            gpu
        })
        .collect();
    Ok(gpus)
}

async fn list_gpu_types(RawQuery(query): RawQuery) -> Response {
    match gpu_types_json(query) {
        Ok(gpus) => axum::Json(wire::<types::ListGpuTypesResponse>(json!({ "gpus": gpus }))).into_response(),
        Err((status, detail)) => problem(status, &detail),
    }
}

/// `GET /v2/catalog/gpus/{id}`: one entry of `GET /v2/catalog/gpus`, with the same query rules
/// (the list's handler answers and the entry is picked from it), 404 for an unknown id.
async fn get_gpu_type(Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    if !catalog::runpod().iter().any(|g| g.id == id) {
        return problem(StatusCode::NOT_FOUND, &format!("GPU type {id:?} not found"));
    }
    let listed = gpu_types_json(query);
    let listed = match listed {
        Ok(list) => list,
        Err((status, detail)) => return problem(status, &detail),
    };
    match listed.into_iter().find(|g| g["id"] == id.as_str()) {
        Some(gpu) => axum::Json(wire::<types::GpuType>(gpu)).into_response(),
        None => problem(StatusCode::NOT_FOUND, &format!("GPU type {id:?} not found")),
    }
}

/// The CPU flavors as `CpuType`. "Availability is included only when requested with
/// include=AVAILABILITY, which requires `product`"; `vcpuCount` keeps the flavors that offer it.
fn cpu_types_json(query: Option<String>) -> Result<Vec<Value>, Refusal> {
    let pairs = query_pairs(query);
    let with_availability = list_param(&pairs, "include").iter().any(|v| v == "AVAILABILITY");
    if with_availability && list_param(&pairs, "product").is_empty() {
        return Err(refuse(StatusCode::BAD_REQUEST, "include=AVAILABILITY requires product"));
    }
    let vcpus: Option<u32> = pairs.iter().find(|(k, _)| k == "vcpuCount").and_then(|(_, v)| v.parse().ok());
    Ok(catalog::runpod_cpus()
        .into_iter()
        .filter(|c| vcpus.is_none_or(|n| n >= c.min_vcpus && n <= c.max_vcpus))
        .map(|c| {
            let mut cpu = json!({
                "id": c.id, "name": c.name, "group": c.group, "vcpu": {"min": c.min_vcpus, "max": c.max_vcpus},
                "ramGbPerVcpu": c.ram_gb_per_vcpu,
                "price": {"securePerVcpu": c.secure_per_vcpu, "serverlessPerVcpu": c.secure_per_vcpu * 1.5}
            });
            if with_availability {
                cpu["availability"] = json!("HIGH");
                cpu["dataCenters"] = json!(
                    c.data_centers.iter().map(|dc| json!({"id": dc, "availability": "HIGH"})).collect::<Vec<_>>()
                );
            }
            cpu
        })
        .collect())
}

async fn list_cpu_types(RawQuery(query): RawQuery) -> Response {
    match cpu_types_json(query) {
        Ok(cpus) => axum::Json(wire::<types::ListCpuTypesResponse>(json!({ "cpus": cpus }))).into_response(),
        Err((status, detail)) => problem(status, &detail),
    }
}

async fn get_cpu_type(Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    match cpu_types_json(query) {
        Ok(cpus) => match cpus.into_iter().find(|c| c["id"] == id.as_str()) {
            Some(cpu) => axum::Json(wire::<types::CpuType>(cpu)).into_response(),
            None => problem(StatusCode::NOT_FOUND, &format!("CPU flavor {id:?} not found")),
        },
        Err((status, detail)) => problem(status, &detail),
    }
}

/// A data center as `DataCenter`; `include=GPU_AVAILABILITY` / `CPU_AVAILABILITY` add what it
/// offers, "omitted entirely" otherwise.
fn data_center_json(dc: &(&str, &str, &str, &str), include: &[String]) -> Value {
    let (id, name, region, country) = *dc;
    // The emulator's volumes are all STANDARD-capable; its European center is also GDPR.
    let compliance: Vec<&str> = if region == "EUROPE" { vec!["GDPR"] } else { Vec::new() };
    let mut out = json!({"id": id, "name": name, "region": region, "countryCode": country,
                         "networkVolumeTypes": ["STANDARD", "HIGH_PERFORMANCE"], "compliance": compliance,
                         "globalNetwork": false});
    // `CatalogResourceAvailability` entries, "omitted entirely when the data center offers no
    // GPUs" (CPU flavors likewise).
    let gpus: Vec<Value> = catalog::runpod()
        .iter()
        .filter(|g| g.data_centers.contains(&id))
        .map(|g| json!({"id": g.id, "name": g.name, "availability": g.availability}))
        .collect();
    if include.iter().any(|i| i == "GPU_AVAILABILITY") && !gpus.is_empty() {
        out["gpuAvailability"] = json!(gpus);
    }
    let cpus: Vec<Value> = catalog::runpod_cpus()
        .iter()
        .filter(|c| c.data_centers.contains(&id))
        .map(|c| json!({"id": c.id, "name": c.name, "availability": "HIGH"}))
        .collect();
    if include.iter().any(|i| i == "CPU_AVAILABILITY") && !cpus.is_empty() {
        out["cpuAvailability"] = json!(cpus);
    }
    out
}

/// `GET /v2/catalog/datacenters`: filtered by `regions`, `networkVolumeTypes`, `compliance`
/// (comma-separated) and `globalNetwork`.
async fn list_data_centers(RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let include = list_param(&pairs, "include");
    let (regions, volume_types, compliance) =
        (list_param(&pairs, "regions"), list_param(&pairs, "networkVolumeTypes"), list_param(&pairs, "compliance"));
    let global = pairs.iter().find(|(k, _)| k == "globalNetwork").map(|(_, v)| v == "true");
    let centers: Vec<Value> = catalog::RUNPOD_DATA_CENTERS
        .iter()
        .map(|dc| data_center_json(dc, &include))
        .filter(|dc| regions.is_empty() || regions.iter().any(|r| dc["region"] == r.as_str()))
        .filter(|dc| {
            volume_types.iter().all(|t| dc["networkVolumeTypes"].as_array().is_some_and(|a| a.iter().any(|v| v == t)))
        })
        .filter(|dc| compliance.iter().all(|c| dc["compliance"].as_array().is_some_and(|a| a.iter().any(|v| v == c))))
        .filter(|dc| global.is_none_or(|g| dc["globalNetwork"] == g))
        .collect();
    axum::Json(wire::<types::ListDataCentersResponse>(json!({ "dataCenters": centers }))).into_response()
}

async fn get_data_center(Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    let include = list_param(&query_pairs(query), "include");
    match catalog::RUNPOD_DATA_CENTERS.iter().find(|dc| dc.0 == id) {
        Some(dc) => axum::Json(wire::<types::DataCenter>(data_center_json(dc, &include))).into_response(),
        None => problem(StatusCode::NOT_FOUND, &format!("data center {id:?} not found")),
    }
}

/// A template as `Template`, every required field present.
fn template_json(id: &str, fields: &Map<String, Value>, public: bool) -> Value {
    let field = |key: &str, default: Value| fields.get(key).cloned().unwrap_or(default);
    json!({
        "id": id, "name": field("name", json!("template")), "image": field("image", json!("")),
        "args": field("args", json!("")), "disk": field("disk", json!(50)), "env": field("env", json!({})),
        "ports": field("ports", json!([])), "registry": field("registry", Value::Null),
        "mounts": field("mounts", json!({})), "serverless": field("serverless", json!(false)),
        "public": field("public", json!(public)), "category": field("category", json!("NVIDIA")),
        "startSsh": field("startSsh", json!(true)), "startJupyter": field("startJupyter", json!(true)),
        "allowedCudaVersions": field("allowedCudaVersions", json!([])),
        "cmd": field("cmd", json!([])), "entrypoint": field("entrypoint", json!([]))
    })
}

fn public_templates() -> Vec<(Value, &'static str)> {
    catalog::RUNPOD_PUBLIC_TEMPLATES
        .iter()
        .map(|(id, name, image, source)| {
            let fields = json!({"name": name, "image": image, "ports": ["22/tcp", "8888/http"], "public": true});
            (template_json(id, fields.as_object().expect("an object"), true), *source)
        })
        .collect()
}

/// The template `id`: the account's own, or a public one. Pod creates apply it.
pub(crate) fn find_template(state: &EmulatorState, id: &str) -> Option<Value> {
    state
        .records
        .get("templates")
        .and_then(|all| all.iter().find(|t| t["id"] == id).cloned())
        .or_else(|| public_templates().into_iter().map(|(t, _)| t).find(|t| t["id"] == id))
}

/// `GET /v2/catalog/templates?source=official|verified|community` (default `official`).
async fn list_public_templates(RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let source = pairs.iter().find(|(k, _)| k == "source").map_or("official", |(_, v)| v.as_str());
    let templates: Vec<Value> = public_templates().into_iter().filter(|(_, s)| *s == source).map(|(t, _)| t).collect();
    axum::Json(wire::<types::TemplateList>(json!({ "templates": templates }))).into_response()
}

/// The body as a JSON object (the strict layer has checked it against the document).
fn object(body: &Bytes) -> Result<Map<String, Value>, Refusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, "$: the body must be a JSON object")),
        Err(e) => Err(refuse(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}"))),
    }
}

/// A cursor page of the records of `kind`, newest first (see `cursor`), or the 422 of a bad
/// cursor.
fn record_page(state: &EmulatorState, kind: &str, pairs: &[(String, String)]) -> Result<(Vec<Value>, Value), Refusal> {
    let scope = format!("list:{kind}");
    let query = crate::cursor::parse(pairs, &scope).map_err(|d| (StatusCode::UNPROCESSABLE_ENTITY, d))?;
    let listed: Vec<(u64, Value)> =
        state.records.get(kind).into_iter().flatten().cloned().enumerate().map(|(i, v)| (i as u64, v)).collect();
    Ok(crate::cursor::page(listed, &query, &scope))
}

fn find_record<'a>(state: &'a mut EmulatorState, kind: &'static str, id: &str) -> Option<&'a mut Value> {
    state.records.get_mut(kind).and_then(|all| all.iter_mut().find(|r| r["id"] == id))
}

fn remove_record(state: &mut EmulatorState, kind: &'static str, id: &str) -> bool {
    let Some(all) = state.records.get_mut(kind) else { return false };
    let before = all.len();
    all.retain(|r| r["id"] != id);
    all.len() != before
}

async fn list_templates(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    match record_page(&shared.state(), "templates", &pairs) {
        Ok((templates, pagination)) => {
            let body = json!({"templates": templates, "pagination": pagination});
            axum::Json(wire::<types::ListTemplatesResponse>(body)).into_response()
        }
        Err((status, detail)) => problem(status, &detail),
    }
}

async fn create_template(State(shared): State<Shared>, body: Bytes) -> Response {
    let fields = match object(&body) {
        Ok(f) => f,
        Err((status, detail)) => return problem(status, &detail),
    };
    let mut state = shared.state();
    let id = state.new_id(Api::RunPod);
    let template = wire::<types::Template>(template_json(&id, &fields, false));
    state.records.entry("templates").or_default().push(template.clone());
    (StatusCode::CREATED, axum::Json(template)).into_response()
}

async fn get_template(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match find_template(&shared.state(), &id) {
        Some(template) => axum::Json(wire::<types::Template>(template)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "template not found"),
    }
}

/// PATCH: the fields sent replace the template's.
async fn update_template(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = match object(&body) {
        Ok(f) => f,
        Err((status, detail)) => return problem(status, &detail),
    };
    let mut state = shared.state();
    let Some(template) = find_record(&mut state, "templates", &id) else {
        return problem(StatusCode::NOT_FOUND, "template not found");
    };
    for (key, value) in fields {
        template[key] = value;
    }
    axum::Json(wire::<types::Template>(template.clone())).into_response()
}

async fn delete_template(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if remove_record(&mut shared.state(), "templates", &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "template not found")
    }
}

/// Registry credentials: `{id, name}` is all that is ever answered (the username and password
/// are write-only).
async fn list_registries(State(shared): State<Shared>) -> Response {
    let registries = shared.state().records.get("registries").cloned().unwrap_or_default();
    axum::Json(wire::<types::ListRegistriesResponse>(json!({ "registries": registries }))).into_response()
}

async fn create_registry(State(shared): State<Shared>, body: Bytes) -> Response {
    let fields = match object(&body) {
        Ok(f) => f,
        Err((status, detail)) => return problem(status, &detail),
    };
    let name = fields.get("name").and_then(Value::as_str).unwrap_or_default().to_string();
    let mut state = shared.state();
    if state.records.get("registries").is_some_and(|all| all.iter().any(|r| r["name"] == name.as_str())) {
        return problem(StatusCode::CONFLICT, &format!("a registry credential named {name:?} already exists"));
    }
    let registry = wire::<types::Registry>(json!({"id": state.new_id(Api::RunPod), "name": name}));
    state.records.entry("registries").or_default().push(registry.clone());
    (StatusCode::CREATED, axum::Json(registry)).into_response()
}

async fn get_registry(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match find_record(&mut shared.state(), "registries", &id) {
        Some(registry) => axum::Json(registry.clone()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "registry not found"),
    }
}

async fn delete_registry(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if remove_record(&mut shared.state(), "registries", &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "registry not found")
    }
}

async fn list_delegations(State(shared): State<Shared>) -> Response {
    let delegations = shared.state().records.get("delegations").cloned().unwrap_or_default();
    axum::Json(wire::<types::ListDelegationsResponse>(json!({ "delegations": delegations }))).into_response()
}

/// `POST /v2/registries/delegations` with an ECR resource ARN
/// (`arn:aws:ecr:REGION:ACCOUNT:repository/NAME[:TAG]`): the repository, tag and region are read
/// from it; anything else is a 400.
async fn create_delegation(State(shared): State<Shared>, body: Bytes) -> Response {
    let fields = match object(&body) {
        Ok(f) => f,
        Err((status, detail)) => return problem(status, &detail),
    };
    let resource = fields.get("resource").and_then(Value::as_str).unwrap_or_default();
    let parts: Vec<&str> = resource.splitn(6, ':').collect();
    let (Some(region), Some(account), Some(repository)) =
        (parts.get(3), parts.get(4), parts.get(5).and_then(|r| r.strip_prefix("repository/")))
    else {
        return problem(StatusCode::BAD_REQUEST, &format!("{resource:?} is not an ECR repository ARN"));
    };
    if !resource.starts_with("arn:aws:ecr:") || repository.is_empty() {
        return problem(StatusCode::BAD_REQUEST, &format!("{resource:?} is not an ECR repository ARN"));
    }
    let (repository, tag) = repository.split_once(':').unwrap_or((repository, "latest"));
    let mut state = shared.state();
    let delegation = wire::<types::EcrDelegation>(json!({
        "id": state.new_id(Api::RunPod), "name": fields.get("name").cloned().unwrap_or(Value::Null),
        "delegatorUserId": "emulator-user", "awsUser": format!("arn:aws:iam::{account}:user/runpod-pull"),
        "repository": repository, "tag": tag, "awsRegion": region,
        "dockerRegistryUri": format!("{account}.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}"),
        "createdAt": now_rfc3339()
    }));
    state.records.entry("delegations").or_default().push(delegation.clone());
    (StatusCode::CREATED, axum::Json(delegation)).into_response()
}

async fn delete_delegation(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if remove_record(&mut shared.state(), "delegations", &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "delegation not found")
    }
}

/// An endpoint as `Endpoint`: the create's fields, with the document's defaults (`workers`
/// `{min: 0, max: 3}`, `timeout` 300000, `flashboot` `OFF`) and the request URLs of its type.
fn endpoint_json(id: &str, fields: &Map<String, Value>, created_at: &str) -> Value {
    let field = |key: &str, default: Value| fields.get(key).cloned().unwrap_or(default);
    let mut workers = field("workers", json!({}));
    if workers.get("min").is_none() {
        workers["min"] = json!(0);
    }
    if workers.get("max").is_none() {
        workers["max"] = json!(3);
    }
    let mut endpoint = json!({
        "id": id, "name": field("name", json!("endpoint")), "type": field("type", json!("QUEUE")),
        "image": field("image", json!("")), "args": field("args", json!("")), "disk": field("disk", json!(20)),
        "env": field("env", json!({})), "ports": field("ports", json!([])), "registry": field("registry", Value::Null),
        "workers": workers, "scaling": field("scaling", json!({"type": "QUEUE_DELAY", "queueDelay": 4})),
        "dataCenterIds": field("dataCenterIds", json!([])), "networkVolumes": field("networkVolumes", json!([])),
        "timeout": field("timeout", json!(300_000)), "flashboot": field("flashboot", json!("OFF")),
        "createdAt": created_at
    });
    if let Some(gpu) = fields.get("gpu") {
        let mut gpu = gpu.clone();
        for (key, default) in [("allowedCudaVersions", json!([])), ("minCudaVersion", Value::Null)] {
            if gpu.get(key).is_none() {
                gpu[key] = default;
            }
        }
        endpoint["gpu"] = gpu;
    }
    if let Some(cpu) = fields.get("cpu") {
        endpoint["cpu"] = cpu.clone();
    }
    endpoint
}

async fn list_endpoints(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    match record_page(&shared.state(), "endpoints", &pairs) {
        Ok((endpoints, pagination)) => {
            let body = json!({"endpoints": endpoints, "pagination": pagination});
            axum::Json(wire::<types::ListEndpointsResponse>(body)).into_response()
        }
        Err((status, detail)) => problem(status, &detail),
    }
}

/// `POST /v2/serverless`: `image` or `templateId` (the template's image applies).
async fn create_endpoint(State(shared): State<Shared>, body: Bytes) -> Response {
    let mut fields = match object(&body) {
        Ok(f) => f,
        Err((status, detail)) => return problem(status, &detail),
    };
    let mut state = shared.state();
    if let Some(template_id) = fields.remove("templateId") {
        let id = template_id.as_str().unwrap_or_default();
        let Some(template) = find_template(&state, id) else {
            return problem(StatusCode::BAD_REQUEST, &format!("template {id} not found"));
        };
        for key in ["image", "args", "disk", "env", "ports", "registry"] {
            if !fields.contains_key(key) {
                fields.insert(key.into(), template[key].clone());
            }
        }
    }
    let id = state.new_id(Api::RunPod);
    let endpoint = wire::<types::Endpoint>(endpoint_json(&id, &fields, &now_rfc3339()));
    state.records.entry("endpoints").or_default().push(endpoint.clone());
    (StatusCode::CREATED, axum::Json(endpoint)).into_response()
}

async fn get_endpoint(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match find_record(&mut shared.state(), "endpoints", &id) {
        Some(endpoint) => axum::Json(endpoint.clone()).into_response(),
        None => problem(StatusCode::NOT_FOUND, "endpoint not found"),
    }
}

async fn update_endpoint(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let fields = match object(&body) {
        Ok(f) => f,
        Err((status, detail)) => return problem(status, &detail),
    };
    let mut state = shared.state();
    let Some(endpoint) = find_record(&mut state, "endpoints", &id) else {
        return problem(StatusCode::NOT_FOUND, "endpoint not found");
    };
    for (key, value) in fields.into_iter().filter(|(k, _)| k != "templateId") {
        endpoint[key] = value;
    }
    axum::Json(wire::<types::Endpoint>(endpoint.clone())).into_response()
}

async fn delete_endpoint(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if remove_record(&mut shared.state(), "endpoints", &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "endpoint not found")
    }
}

fn endpoint_exists(shared: &Shared, id: &str) -> bool {
    shared.state().records.get("endpoints").is_some_and(|all| all.iter().any(|e| e["id"] == id))
}

async fn list_workers(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if !endpoint_exists(&shared, &id) {
        return problem(StatusCode::NOT_FOUND, "endpoint not found");
    }
    let summary = json!({"running": 0, "idle": 0, "initializing": 0, "throttled": 0, "unhealthy": 0, "total": 0});
    let body = json!({"workers": [], "summary": summary, "endpointVersion": 1});
    axum::Json(wire::<types::ListEndpointWorkersResponse>(body)).into_response()
}

async fn list_releases(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if !endpoint_exists(&shared, &id) {
        return problem(StatusCode::NOT_FOUND, "endpoint not found");
    }
    let rollout = json!({"inProgress": false, "workersOnLatest": 0, "workersTotal": 0, "percentOnLatest": 100});
    let body = json!({"endpointVersion": 1, "rollout": rollout, "releases": [],
                      "pagination": {"nextCursor": null, "hasNextPage": false}});
    axum::Json(wire::<types::ListEndpointReleasesResponse>(body)).into_response()
}

async fn list_builds(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if !endpoint_exists(&shared, &id) {
        return problem(StatusCode::NOT_FOUND, "endpoint not found");
    }
    let body = json!({"builds": [], "pagination": {"nextCursor": null, "hasNextPage": false}});
    axum::Json(wire::<types::ListEndpointBuildsResponse>(body)).into_response()
}

/// No endpoint here is built from a repository, so no build exists.
async fn get_build(State(shared): State<Shared>, Path((id, build_id)): Path<(String, String)>) -> Response {
    if !endpoint_exists(&shared, &id) {
        return problem(StatusCode::NOT_FOUND, "endpoint not found");
    }
    problem(StatusCode::NOT_FOUND, &format!("build {build_id} not found"))
}

/// No endpoint here runs a worker, so no worker has logs.
async fn worker_logs(State(shared): State<Shared>, Path((id, worker_id)): Path<(String, String)>) -> Response {
    if !endpoint_exists(&shared, &id) {
        return problem(StatusCode::NOT_FOUND, "endpoint not found");
    }
    problem(StatusCode::NOT_FOUND, &format!("worker {worker_id} not found"))
}
