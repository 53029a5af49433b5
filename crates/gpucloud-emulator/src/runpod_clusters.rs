//! RunPod REST v2 clusters (`/v2/clusters`), as the document (953afcc) and RunPod's Instant
//! Clusters guides describe them.
//!
//! - `POST /v2/clusters` answers `201` with the cluster: `compute.podCount` pods (2..250, the
//!   strict layer refuses others), each `compute.gpuCountPerPod` GPUs of `compute.gpuTypeId`,
//!   all in **one** data center (the first of `dataCenterIds` that has the GPU, or the GPU's
//!   first). `templateId` "Mutually exclusive with `image`, `args`, `entrypoint`, `cmd`, `disk`,
//!   `env`, `ports`, and `mounts` (rejected with 400)"; an unknown GPU, more GPUs per pod than a
//!   host has (8), a GPU out of stock or no data center with it is the capacity `400`.
//! - Members are ordinary pods (real SSH hosts, billed as pods) carrying `cluster {id, rank,
//!   ip}`; rank 0 is the primary. Each has the environment the guides document: `PRIMARY_ADDR` /
//!   `MASTER_ADDR`, `PRIMARY_PORT` / `MASTER_PORT`, `NODE_ADDR`, `NODE_RANK`, `NUM_NODES`,
//!   `NUM_TRAINERS` (GPUs per node), `HOST_NODE_ADDR` and `WORLD_SIZE`, with the request's own
//!   `env`. Private addresses are `10.65.0.{rank + 2}` on `10.65.0.0/16`.
//! - A cluster has no status: `pods {total, byStatus}` (statuses with no pods omitted) and
//!   `primary {podId, status, sshEndpoint}` (`sshEndpoint` once the primary runs with `22/tcp`).
//! - `GET /v2/clusters` (no pagination), `GET /v2/clusters/{id}`, `PATCH` (renames only),
//!   `DELETE` (`204`; terminates every member), `GET /v2/clusters/{id}/pods` (`PodList`).
//! - Under [`crate::FaultKind::PartialPlacement`] the highest-ranked nodes are never placed:
//!   they stay `PROVISIONING` with no rank and no address until the cluster is deleted.
//!
//! Member pods are hidden from `GET /v2/pods` unless `includeClusterPods=true`, and the pod
//! endpoints that would change them answer `409` (see `runpod`).

use crate::catalog;
use crate::errors::runpod::problem;
use crate::shared::{PartialPlacement, Shared};
use crate::state::{Api, ClusterMember, EmulatedCluster, NewPod, Phase, now_rfc3339};
use crate::wire::wire;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use runpod_api::types;
use serde_json::{Value, json};
use std::collections::BTreeMap;

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v2/clusters", get(list_clusters).post(create_cluster))
        .route("/v2/clusters/{id}", get(get_cluster).patch(update_cluster).delete(delete_cluster))
        .route("/v2/clusters/{id}/pods", get(list_cluster_pods))
}

/// The port `MASTER_PORT` / `PRIMARY_PORT` name on the primary ("All ports are available").
pub(crate) const PRIMARY_PORT: u16 = 29500;

/// The overlay network every emulated cluster gets.
const CIDR: &str = "10.65.0.0/16";

/// The UDP port of the overlay's VXLAN traffic.
const VXLAN_PORT: u16 = 4789;

/// The most GPUs one emulated RunPod host has.
const MAX_GPUS_PER_POD: u64 = 8;

/// The container fields `templateId` excludes.
const CONTAINER_FIELDS: [&str; 8] = ["image", "args", "entrypoint", "cmd", "disk", "env", "ports", "mounts"];

fn private_ip(rank: u32) -> String {
    format!("10.65.0.{}", rank + 2)
}

/// The cluster as the document's `Cluster` describes it.
fn cluster_json(cluster: &EmulatedCluster, shared: &Shared) -> Value {
    wire::<types::Cluster>(cluster_fields(cluster, shared))
}

fn cluster_fields(cluster: &EmulatedCluster, shared: &Shared) -> Value {
    let state = shared.state();
    let members: Vec<_> = cluster
        .members
        .iter()
        .filter_map(|id| state.pods.iter().find(|p| p.api == Api::RunPod && &p.id == id && !p.terminated))
        .collect();
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for pod in &members {
        *by_status.entry(crate::runpod::runpod_status(pod.phase(shared.config.ready_delay))).or_default() += 1;
    }
    let mut fields = json!({
        "id": cluster.id, "name": cluster.name, "type": cluster.kind,
        "compute": {"gpuTypeId": cluster.gpu_type, "gpuCountPerPod": cluster.gpu_count_per_pod,
                    "podCount": cluster.pod_count},
        "dataCenterId": cluster.data_center,
        "pods": {"total": members.len(), "byStatus": by_status},
        "network": {"cidr": CIDR, "vxlanId": cluster.vxlan_id, "vxlanPort": VXLAN_PORT},
        "createdAt": cluster.created_at,
    });
    if let Some(template) = &cluster.template_id {
        fields["template"] = json!(template);
    }
    let primary = members.iter().find(|p| p.cluster.as_ref().is_some_and(|m| m.rank == Some(0)));
    if let Some(primary) = primary {
        let phase = primary.phase(shared.config.ready_delay);
        fields["primary"] = json!({"podId": primary.id, "status": crate::runpod::runpod_status(phase)});
        // "omitted when the primary is not yet RUNNING or does not expose SSH (22/tcp)".
        if phase == Phase::Running && primary.ports.iter().any(|p| p == "22/tcp") {
            fields["primary"]["sshEndpoint"] = json!(format!("127.0.0.1:{}", primary.ssh_port));
        }
    }
    fields
}

/// The environment RunPod's Instant Clusters guides document on every node.
fn node_env(rank: u32, nodes: u32, gpus_per_node: u32) -> BTreeMap<String, String> {
    let primary = private_ip(0);
    let port = PRIMARY_PORT.to_string();
    [
        ("PRIMARY_ADDR", primary.clone()),
        ("MASTER_ADDR", primary.clone()),
        ("PRIMARY_PORT", port.clone()),
        ("MASTER_PORT", port.clone()),
        ("NODE_ADDR", private_ip(rank)),
        ("NODE_RANK", rank.to_string()),
        ("NUM_NODES", nodes.to_string()),
        ("NUM_TRAINERS", gpus_per_node.to_string()),
        ("HOST_NODE_ADDR", format!("{primary}:{port}")),
        ("WORLD_SIZE", (nodes * gpus_per_node).to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

async fn list_clusters(State(shared): State<Shared>) -> Response {
    let clusters = shared.state().clusters.clone();
    let all: Vec<Value> = clusters.iter().map(|c| cluster_fields(c, &shared)).collect();
    axum::Json(wire::<types::ListClustersResponse>(json!({ "clusters": all }))).into_response()
}

fn find(shared: &Shared, id: &str) -> Option<EmulatedCluster> {
    shared.state().clusters.iter().find(|c| c.id == id).cloned()
}

fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "cluster not found")
}

async fn get_cluster(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match find(&shared, &id) {
        Some(cluster) => axum::Json(cluster_json(&cluster, &shared)).into_response(),
        None => not_found(),
    }
}

async fn list_cluster_pods(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(cluster) = find(&shared, &id) else { return not_found() };
    let pods: Vec<Value> = {
        let state = shared.state();
        cluster
            .members
            .iter()
            .filter_map(|m| state.pods.iter().find(|p| p.api == Api::RunPod && &p.id == m && !p.terminated))
            .map(|p| crate::runpod::pod_fields(p, &shared))
            .collect()
    };
    axum::Json(wire::<types::PodList>(json!({ "pods": pods }))).into_response()
}

/// `PATCH /v2/clusters/{id}`: "only changes the cluster name".
async fn update_cluster(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: types::UpdateClusterRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let renamed = {
        let mut state = shared.state();
        let Some(cluster) = state.clusters.iter_mut().find(|c| c.id == id) else { return not_found() };
        if let Some(name) = request.name {
            cluster.name = name.to_string();
        }
        cluster.clone()
    };
    axum::Json(cluster_json(&renamed, &shared)).into_response()
}

/// `DELETE /v2/clusters/{id}`: "Permanently deletes a cluster and terminates all of its member
/// pods", `204`.
async fn delete_cluster(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut state = shared.state();
    let Some(at) = state.clusters.iter().position(|c| c.id == id) else { return not_found() };
    let cluster = state.clusters.remove(at);
    for member in &cluster.members {
        state.terminate_pod(Api::RunPod, member);
    }
    StatusCode::NO_CONTENT.into_response()
}

/// What a cluster create resolves to before anything is created.
struct Shape {
    gpu_type: String,
    gpus_per_pod: u32,
    pods: u32,
    price_per_pod: f64,
    data_center: String,
    cuda_version: String,
}

fn shape(
    request: &types::CreateClusterRequest,
    stocked_out: &std::collections::BTreeSet<String>,
) -> Result<Shape, String> {
    let gpu_id = request.compute.gpu_type_id.to_string();
    let Some(entry) = catalog::runpod().into_iter().find(|g| g.id == gpu_id) else {
        return Err(format!("unknown GPU type {gpu_id:?}"));
    };
    let gpus = request.compute.gpu_count_per_pod.get();
    if gpus > MAX_GPUS_PER_POD {
        return Err(format!(
            "compute.gpuCountPerPod {gpus} is more than {gpu_id}'s maximum of {MAX_GPUS_PER_POD} per pod"
        ));
    }
    let capacity = "There are no instances currently available for this configuration".to_string();
    if entry.secure <= 0.0 || entry.availability == "NONE" || stocked_out.contains(entry.id) {
        return Err(capacity);
    }
    // "A cluster is always placed within a single data center": the first preferred one that
    // has the GPU.
    let data_center = if request.data_center_ids.is_empty() {
        entry.data_centers.first().map(|dc| dc.to_string())
    } else {
        request.data_center_ids.iter().find(|dc| entry.data_centers.contains(&dc.as_str())).cloned()
    };
    let Some(data_center) = data_center else { return Err(capacity) };
    let gpus_per_pod = u32::try_from(gpus).unwrap_or(u32::MAX);
    Ok(Shape {
        gpu_type: entry.id.to_string(),
        gpus_per_pod,
        pods: u32::try_from(request.compute.pod_count).unwrap_or(0),
        price_per_pod: ((entry.secure * f64::from(gpus_per_pod)) * 100.0).round() / 100.0,
        data_center,
        cuda_version: entry.cuda.last().copied().unwrap_or_default().to_string(),
    })
}

async fn create_cluster(
    State(shared): State<Shared>,
    partial: Option<axum::Extension<PartialPlacement>>,
    body: Bytes,
) -> Response {
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let request: types::CreateClusterRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    // The strict layer refuses a podCount outside 2..250 first; a direct caller of this handler
    // gets the same rule.
    if !(2..=250).contains(&request.compute.pod_count) {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("compute.podCount {} is outside 2..250", request.compute.pod_count),
        );
    }
    if request.template_id.is_some() {
        let clashing: Vec<&str> = CONTAINER_FIELDS.iter().copied().filter(|f| raw.get(*f).is_some()).collect();
        if !clashing.is_empty() {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("templateId is mutually exclusive with {}", clashing.join(", ")),
            );
        }
    }
    let mut state = shared.state();
    let template = match request.template_id.as_ref().map(|id| id.to_string()) {
        None => None,
        Some(id) => match crate::runpod_resources::find_template(&state, &id) {
            Some(template) => Some((id, template)),
            None => return problem(StatusCode::BAD_REQUEST, &format!("template {id} not found")),
        },
    };
    let shape = match shape(&request, &state.stocked_out) {
        Ok(shape) => shape,
        Err(detail) => return problem(StatusCode::BAD_REQUEST, &detail),
    };
    let from_template = |key: &str| template.as_ref().map(|(_, t)| t[key].clone()).unwrap_or(Value::Null);
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let image = request.image.clone().or_else(|| from_template("image").as_str().map(str::to_string));
    let ports = if template.is_some() { strings(&from_template("ports")) } else { request.ports.clone() };
    let mut user_env: BTreeMap<String, String> = from_template("env")
        .as_object()
        .map(|e| e.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    user_env.extend(request.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let disk = request
        .disk
        .map(|d| u32::try_from(d.get()).unwrap_or(u32::MAX))
        .or_else(|| from_template("disk").as_u64().and_then(|d| u32::try_from(d).ok()))
        .unwrap_or(50);
    let args = request.args.clone().or_else(|| from_template("args").as_str().map(str::to_string)).unwrap_or_default();
    let authorized_keys = if request.start_ssh { state.keys_of(Api::RunPod) } else { Vec::new() };
    let unplaced = partial.map_or(0, |axum::Extension(PartialPlacement(k))| k.clamp(1, shape.pods - 1));
    let cluster_id = state.new_id(Api::RunPod);
    let vxlan_id = u32::try_from(state.clusters.len()).unwrap_or(0) + 42;
    let (vcpus, ram) = catalog::runpod_host_per_gpu(&shape.gpu_type);
    let mut members = Vec::new();
    let mut listeners = Vec::new();
    for rank in 0..shape.pods {
        let placed = rank < shape.pods - unplaced;
        let mut env = user_env.clone();
        if placed {
            env.extend(node_env(rank, shape.pods, shape.gpus_per_pod));
        }
        let ssh = if placed { crate::ssh::SshListener::bind() } else { None };
        let record = state.add_pod(NewPod {
            api: Api::RunPod,
            name: format!("{}-node-{rank}", request.name.as_str()),
            gpu_type: shape.gpu_type.clone(),
            socket: String::new(),
            gpu_count: shape.gpus_per_pod,
            price: shape.price_per_pod,
            provider_type: "SECURE".into(),
            data_center: shape.data_center.clone(),
            image: image.clone().unwrap_or_default(),
            env,
            team_id: None,
            installation_fails: false,
            ssh_port: ssh.as_ref().map(crate::ssh::SshListener::port),
            banner_delay: std::time::Duration::ZERO,
            authorized_keys: authorized_keys.clone(),
            cmd: (!request.cmd.is_empty()).then(|| request.cmd.clone()),
            entrypoint: (!request.entrypoint.is_empty()).then(|| request.entrypoint.clone()),
            ports: ports.clone(),
            cuda_version: shape.cuda_version.clone(),
            max_price: None,
            prepaid_hours: None,
            disk_size: disk,
            vcpus: vcpus * shape.gpus_per_pod,
            memory: ram * shape.gpus_per_pod,
            spot: false,
            currency: "USD".into(),
            disks: Vec::new(),
            template_id: template.as_ref().map(|(id, _)| id.clone()),
            args: args.clone(),
            cpu_flavor: None,
        });
        if let Some(pod) = state.pod_mut(Api::RunPod, &record.id) {
            pod.cluster = Some(ClusterMember {
                cluster_id: cluster_id.clone(),
                rank: placed.then_some(rank),
                ip: placed.then(|| private_ip(rank)),
            });
            pod.never_starts = !placed;
            if let Some(mounts) = &request.mounts {
                pod.mounts = serde_json::to_value(mounts).unwrap_or_else(|_| json!({}));
            }
        }
        if let Some(listener) = ssh {
            listeners.push((listener, record.id.clone()));
        }
        members.push(record.id);
    }
    let cluster = EmulatedCluster {
        id: cluster_id,
        name: request.name.to_string(),
        kind: request.type_.0.clone(),
        gpu_type: shape.gpu_type,
        gpu_count_per_pod: shape.gpus_per_pod,
        pod_count: shape.pods,
        template_id: template.map(|(id, _)| id),
        data_center: shape.data_center,
        members,
        cidr: CIDR.into(),
        vxlan_id,
        created_at: now_rfc3339(),
        price_per_pod: shape.price_per_pod,
    };
    state.clusters.push(cluster.clone());
    state.creates += u64::from(shape.pods);
    drop(state);
    for (listener, id) in listeners {
        listener.serve(&shared, Api::RunPod, id, 0);
    }
    (StatusCode::CREATED, axum::Json(cluster_json(&cluster, &shared))).into_response()
}
