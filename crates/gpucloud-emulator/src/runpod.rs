//! RunPod REST v2 (`/v2/...`), as far as gpucloud and its users need it.

use crate::catalog;
use crate::errors::runpod::problem;
use crate::shared::Shared;
use crate::state::{Api, EmulatedPod, EmulatedVolume, NewPod, Phase, now_rfc3339};
use crate::wire::{query_pairs, wire};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use runpod_api::types;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v2/pods", get(list_pods).post(create_pod))
        .route("/v2/pods/{id}", get(get_pod).patch(update_pod).delete(delete_pod))
        .route("/v2/pods/{id}/action", post(pod_action))
        .route("/v2/account/ssh-keys", get(get_ssh_keys).put(update_ssh_keys))
        .route("/v2/network-volumes", get(list_volumes).post(create_volume))
        .route("/v2/network-volumes/{id}", get(get_volume).patch(update_volume).delete(delete_volume))
}

/// `POST /v2/pods` answers 413 past this many bytes of body: "The incoming request body or
/// expanded upstream request exceeds the 102400 byte limit" (the document's 413 response).
pub(crate) const MAX_CREATE_BODY: usize = 102_400;

/// The pod as the API document describes it.
fn pod_json(pod: &EmulatedPod, shared: &Shared) -> Value {
    wire::<types::Pod>(pod_fields(pod, shared))
}

pub(crate) fn runpod_status(phase: Phase) -> &'static str {
    match phase {
        Phase::Provisioning => "PROVISIONING",
        Phase::Running => "RUNNING",
        Phase::Stopped => "EXITED",
        Phase::Terminated => "TERMINATED",
        Phase::Failed => "ERROR",
    }
}

/// The document's `podAction` description: "`RUNNING` allows `stop`/`restart`/`terminate`;
/// `EXITED` and `ERROR` allow `start`/`terminate`; `PROVISIONING` and `STARTING` allow
/// `stop`/`terminate`".
fn allowed_actions(phase: Phase) -> &'static [&'static str] {
    match phase {
        Phase::Provisioning => &["stop", "terminate"],
        Phase::Running => &["stop", "restart", "terminate"],
        Phase::Stopped | Phase::Failed => &["start", "terminate"],
        Phase::Terminated => &[],
    }
}

/// `runtime`: "Live utilization metrics. Null when the pod is not RUNNING." Every GPU of the pod
/// reads the utilization set for it ([`crate::Emulator::set_gpu_utilization`]; idle, 0, by
/// default).
fn runtime(pod: &EmulatedPod, running: bool) -> Value {
    if !running {
        return Value::Null;
    }
    let uptime = pod.created.elapsed().as_secs();
    let gpus: Vec<Value> = (0..pod.gpu_count)
        .map(|_| json!({"util": pod.gpu_utilization, "memoryUtil": pod.gpu_utilization / 2}))
        .collect();
    json!({"uptime": uptime, "gpus": gpus, "ports": []})
}

/// The pod's fields, unchecked: lists check the whole page at once.
pub(crate) fn pod_fields(pod: &EmulatedPod, shared: &Shared) -> Value {
    let phase = pod.phase(shared.config.ready_delay);
    let status = runpod_status(phase);
    let actions = allowed_actions(phase);
    // "Current cost in USD per hour (0.0 when EXITED or TERMINATED)" (Pod.cost).
    let cost = if matches!(phase, Phase::Stopped | Phase::Terminated | Phase::Failed) { 0.0 } else { pod.price };
    let running = phase == Phase::Running;
    // `direct` is "null unless `22/tcp` is in `ports` and the running pod has been assigned a
    // public port for it" (PodSsh).
    let direct = if running && pod.ports.iter().any(|p| p == "22/tcp") {
        json!({"host": "127.0.0.1", "port": pod.ssh_port, "username": "root",
               "command": format!("ssh root@127.0.0.1 -p {}", pod.ssh_port)})
    } else {
        Value::Null
    };
    let ssh = if running {
        json!({"proxy": {"host": "127.0.0.1", "port": 22, "username": format!("{}-emulator", pod.id),
                         "command": format!("ssh {}-emulator@127.0.0.1", pod.id)},
               "direct": direct})
    } else {
        json!({"proxy": null, "direct": null})
    };
    // A locked pod: "prevents stopping or resetting", so its `actions` leave those out.
    let actions: Vec<&str> = actions.iter().copied().filter(|a| !(pod.locked && is_locked_out(a))).collect();
    let mut fields = json!({
        "id": pod.id, "name": pod.name, "image": pod.image, "args": pod.args, "disk": pod.disk_size,
        "ports": pod.ports, "env": pod.env,
        "registry": null, "status": status, "actions": actions, "mounts": pod.mounts,
        "cloud": pod.provider_type, "dataCenterId": pod.data_center,
        // "Null means unknown or not applicable (CPU pods ...)".
        "cudaVersion": if pod.cpu_flavor.is_some() { Value::Null } else { json!(pod.cuda_version) },
        "ssh": ssh, "template": pod.template_id, "cost": cost, "locked": pod.locked,
        "globalNetworking": {"enabled": false}, "runtime": runtime(pod, running), "createdAt": pod.created_at,
        "startedAt": if running { json!(pod.created_at) } else { Value::Null }
    });
    // `gpu`: "Present for GPU pods; omitted from CPU pods"; `cpu` the other way round. Pod.gpu
    // requires vcpuCount and memory, totals across the pod's GPUs (953afcc).
    match &pod.cpu_flavor {
        Some(flavor) => {
            fields["cpu"] = json!({"id": flavor, "vcpuCount": pod.vcpus, "memory": pod.memory.max(1)});
        }
        None => {
            let (vcpus, ram) = catalog::runpod_host_per_gpu(&pod.gpu_type);
            fields["gpu"] = json!({"id": pod.gpu_type, "count": pod.gpu_count,
                                   "vcpuCount": vcpus * pod.gpu_count.max(1), "memory": ram * pod.gpu_count.max(1)});
        }
    }
    if let Some(cmd) = &pod.cmd {
        fields["cmd"] = json!(cmd);
    }
    if let Some(entrypoint) = &pod.entrypoint {
        fields["entrypoint"] = json!(entrypoint);
    }
    // `cluster`: "Cluster membership; omitted from a standalone pod" (PodCluster: `rank` null
    // until assigned, `ip` omitted until assigned).
    if let Some(member) = &pod.cluster {
        fields["cluster"] = json!({"id": member.cluster_id, "rank": member.rank});
        if let Some(ip) = &member.ip {
            fields["cluster"]["ip"] = json!(ip);
        }
    }
    fields
}

/// The 409 a member pod answers on the pod endpoints that would change it: "Pod belongs to a
/// cluster and cannot be modified via the pod endpoints" (`PATCH`), "... cannot be terminated
/// via the pod endpoints" (`DELETE`); its actions likewise.
fn member_conflict(shared: &Shared, id: &str, what: &str) -> Option<Response> {
    let state = shared.state();
    let pod = state.pods.iter().find(|p| p.api == Api::RunPod && p.id == id && !p.terminated)?;
    let member = pod.cluster.as_ref()?;
    Some(problem(
        StatusCode::CONFLICT,
        &format!(
            "pod {id} belongs to cluster {} and cannot be {what} via the pod endpoints; use /v2/clusters/{}",
            member.cluster_id, member.cluster_id
        ),
    ))
}

/// `GET /v2/pods`: cursor pages, newest first (see [`crate::cursor`]). Cluster member pods "are
/// excluded from `GET /v2/pods` by default (pass `includeClusterPods=true` to include them)".
async fn list_pods(
    State(shared): State<Shared>,
    lag: Option<axum::Extension<crate::shared::ListLag>>,
    RawQuery(query): RawQuery,
) -> Response {
    let pairs = query_pairs(query);
    // A value other than true/false never gets here: the strict layer refuses it (boolean).
    let include_cluster_pods =
        pairs.iter().rev().find(|(k, _)| k == "includeClusterPods").is_some_and(|(_, v)| v == "true");
    let scope = format!("listPods?includeClusterPods={include_cluster_pods}");
    let page_query = match crate::cursor::parse(&pairs, &scope) {
        Ok(q) => q,
        Err(detail) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &detail),
    };
    let state = shared.state();
    let hide = lag.map(|axum::Extension(crate::shared::ListLag(d))| d);
    let listed: Vec<(u64, &EmulatedPod)> = state
        .listed_pods(Api::RunPod, hide)
        .into_iter()
        .filter(|p| include_cluster_pods || p.cluster.is_none())
        .map(|p| (p.seq, p))
        .collect();
    let (page, pagination) = crate::cursor::page(listed, &page_query, &scope);
    let pods: Vec<Value> = page.into_iter().map(|p| pod_fields(p, &shared)).collect();
    axum::Json(wire::<types::ListPodsResponse>(json!({"pods": pods, "pagination": pagination}))).into_response()
}

/// What a create's `gpu` or `cpu` resolves to in the catalog.
struct Placement {
    /// The GPU type id or CPU flavor id (stock-outs are keyed by it).
    hardware: String,
    gpu_count: u32,
    /// USD per hour.
    price: f64,
    /// Data centers that have it.
    data_centers: Vec<String>,
    cuda_version: Option<String>,
    vcpus: u32,
    memory: u32,
    cpu_flavor: Option<String>,
}

/// A refusal not yet rendered: status and detail (a `Response` is too large an `Err`).
type Refusal = (StatusCode, String);

fn refuse(status: StatusCode, detail: &str) -> Refusal {
    (status, detail.to_string())
}

const NO_CAPACITY: &str = "There are no instances currently available for this configuration";

fn gpu_placement(gpu: &types::CreateGpuConfig, request: &types::CreatePodRequest) -> Result<Placement, Refusal> {
    let gpu_id = gpu.id.clone();
    let count = u32::try_from(gpu.count.get()).unwrap_or(u32::MAX);
    let Some(entry) = catalog::runpod().into_iter().find(|g| g.id == gpu_id) else {
        return Err(refuse(StatusCode::BAD_REQUEST, &format!("unknown GPU type {gpu_id:?}")));
    };
    let unit_price = if request.cloud.0 == "COMMUNITY" { entry.community } else { entry.secure };
    // minRamPerGpu / minVcpuCountPerGpu are placement filters (CreateGpuConfig): no host that
    // meets them is the documented capacity refusal, a 400.
    let (host_vcpus, host_ram) = catalog::runpod_host_per_gpu(entry.id);
    let host_too_small = gpu.min_vcpu_count_per_gpu.is_some_and(|n| n.get() > u64::from(host_vcpus))
        || gpu.min_ram_per_gpu.is_some_and(|n| n.get() > u64::from(host_ram));
    // CUDA: "A non-empty set is mutually exclusive with minCudaVersion (400 if both are sent)";
    // "a version no machine reports yields a capacity error rather than a fallback".
    if !gpu.allowed_cuda_versions.is_empty() && gpu.min_cuda_version.is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "gpu.allowedCudaVersions and gpu.minCudaVersion are mutually exclusive",
        ));
    }
    let cuda = entry.cuda_matching(&gpu.allowed_cuda_versions, gpu.min_cuda_version.as_deref());
    let Some(cuda_version) = cuda.last().copied() else {
        return Err(refuse(StatusCode::BAD_REQUEST, NO_CAPACITY));
    };
    if unit_price <= 0.0 || entry.availability == "NONE" || count > 8 || host_too_small {
        return Err(refuse(StatusCode::BAD_REQUEST, NO_CAPACITY));
    }
    Ok(Placement {
        hardware: entry.id.to_string(),
        gpu_count: count,
        price: ((unit_price * f64::from(count)) * 100.0).round() / 100.0,
        data_centers: entry.data_centers.iter().map(|dc| dc.to_string()).collect(),
        cuda_version: Some(cuda_version.to_string()),
        vcpus: host_vcpus * count,
        memory: host_ram * count,
        cpu_flavor: None,
    })
}

/// A CPU pod (`CreateCpuConfig`): a flavor of `GET /v2/catalog/cpus` and a `vcpuCount` that
/// "must be valid for the selected CPU flavor and must be a power of two"; priced per vCPU on
/// Secure Cloud, with `ramGbPerVcpu` memory per vCPU.
fn cpu_placement(cpu: &types::CreateCpuConfig, request: &types::CreatePodRequest) -> Result<Placement, Refusal> {
    let Some(flavor) = catalog::runpod_cpus().into_iter().find(|c| c.id == cpu.id.as_str()) else {
        return Err(refuse(StatusCode::BAD_REQUEST, &format!("unknown CPU flavor {:?}", cpu.id.as_str())));
    };
    let vcpus = cpu.vcpu_count;
    if vcpus < i64::from(flavor.min_vcpus) || vcpus > i64::from(flavor.max_vcpus) || vcpus.count_ones() != 1 {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            &format!(
                "vcpuCount {vcpus} is not a power of two between {} and {} for {}",
                flavor.min_vcpus, flavor.max_vcpus, flavor.id
            ),
        ));
    }
    if request.cloud.0 == "COMMUNITY" {
        return Err(refuse(StatusCode::BAD_REQUEST, "CPU pods run on Secure Cloud only"));
    }
    let vcpus = u32::try_from(vcpus).unwrap_or(u32::MAX);
    Ok(Placement {
        hardware: flavor.id.to_string(),
        gpu_count: 0,
        price: ((f64::from(vcpus) * flavor.secure_per_vcpu) * 1000.0).round() / 1000.0,
        data_centers: flavor.data_centers.iter().map(|dc| dc.to_string()).collect(),
        cuda_version: None,
        vcpus,
        memory: (f64::from(vcpus) * flavor.ram_gb_per_vcpu) as u32,
        cpu_flavor: Some(flavor.id.to_string()),
    })
}

async fn create_pod(
    State(shared): State<Shared>,
    banner_delay: Option<axum::Extension<crate::shared::BannerDelay>>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_CREATE_BODY {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body of {} bytes exceeds the {MAX_CREATE_BODY} byte limit", body.len()),
        );
    }
    let request: types::CreatePodRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let placement = match (&request.gpu, &request.cpu) {
        (Some(gpu), None) => gpu_placement(gpu, &request),
        (None, Some(cpu)) => cpu_placement(cpu, &request),
        _ => Err(refuse(StatusCode::BAD_REQUEST, "exactly one of gpu or cpu must be set")),
    };
    let placement = match placement {
        Ok(p) => p,
        Err((status, detail)) => return problem(status, &detail),
    };
    let cloud = request.cloud.0.clone();
    let mut state = shared.state();
    // `templateId`: "Create from a template instead of specifying image"; the template's image,
    // ports, env (the request's own entries win), disk and args apply where the request leaves
    // them out.
    let template = match request.template_id.as_ref().map(|id| id.to_string()) {
        None => None,
        Some(id) => match crate::runpod_resources::find_template(&state, &id) {
            Some(template) => Some(template),
            None => return problem(StatusCode::BAD_REQUEST, &format!("template {id} not found")),
        },
    };
    let from_template = |key: &str| template.as_ref().map(|t| t[key].clone()).unwrap_or(Value::Null);
    // A stock-out is a 400: "`400` covers both 'your request breaks a rule' and 'no capacity'"
    // (the document); the ambiguous create-then-500 of third-party reports is its own fault.
    if state.stocked_out.contains(&placement.hardware) {
        return problem(StatusCode::BAD_REQUEST, "There are no instances currently available for this configuration");
    }
    // Placement: `dataCenterIds` are the "preferred data centers for placement"; the pod goes
    // to one of them that has this hardware, and none is the documented capacity refusal. A
    // network volume must be "in the same data center as the pod", and exists on Secure Cloud
    // only.
    let network = request.mounts.as_ref().map(|m| m.network.as_slice()).unwrap_or_default();
    let mut candidates: Vec<String> = if request.data_center_ids.is_empty() {
        placement.data_centers.clone()
    } else {
        request.data_center_ids.iter().filter(|dc| placement.data_centers.contains(dc)).cloned().collect()
    };
    if !network.is_empty() && cloud == "COMMUNITY" {
        return problem(StatusCode::BAD_REQUEST, "network volumes are available on Secure Cloud only");
    }
    for mount in network {
        let Some(volume) = state.volumes.iter().find(|v| v.api == Api::RunPod && v.id == mount.volume_id) else {
            return problem(StatusCode::BAD_REQUEST, &format!("network volume {} not found", mount.volume_id));
        };
        let home = volume.data_center.clone();
        candidates.retain(|dc| *dc == home);
        if candidates.is_empty() {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "network volume {} is in {home}; the pod must be placed in the same data center",
                    mount.volume_id
                ),
            );
        }
    }
    let Some(data_center) = candidates.first().cloned() else {
        return problem(StatusCode::BAD_REQUEST, "There are no instances currently available for this configuration");
    };
    let image = request.image.clone().or_else(|| from_template("image").as_str().map(str::to_string));
    let ports = if request.ports.is_empty() {
        from_template("ports").as_array().map(|p| p.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    } else {
        None
    };
    let ports = ports.unwrap_or_else(|| request.ports.clone());
    let mut env: std::collections::BTreeMap<String, String> = from_template("env")
        .as_object()
        .map(|e| e.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
        .unwrap_or_default();
    env.extend(request.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    // `startJupyter` "injects a generated `JUPYTER_PASSWORD` environment variable, unless the
    // request already sets one" (the template's flag when the body does not say).
    let start_jupyter = request.start_jupyter || from_template("startJupyter") == true;
    if start_jupyter && !env.contains_key("JUPYTER_PASSWORD") {
        use rand::Rng as _;
        env.insert("JUPYTER_PASSWORD".into(), format!("{:016x}", rand::rng().random::<u64>()));
    }
    // `disk`: "Container disk in GB", 50 by default here (the document gives no default).
    let disk = request
        .disk
        .map(|d| u32::try_from(d.get()).unwrap_or(u32::MAX))
        .or_else(|| from_template("disk").as_u64().and_then(|d| u32::try_from(d).ok()))
        .unwrap_or(50);
    let args = request.args.clone().or_else(|| from_template("args").as_str().map(str::to_string)).unwrap_or_default();
    let ssh = crate::ssh::SshListener::bind();
    // The account's keys reach pods created with SSH (the document's `PodSsh`).
    let authorized_keys = if request.start_ssh { state.keys_of(Api::RunPod) } else { Vec::new() };
    let record = state.add_pod(NewPod {
        api: Api::RunPod,
        name: request.name.to_string(),
        gpu_type: placement.hardware.clone(),
        socket: String::new(),
        gpu_count: placement.gpu_count,
        price: placement.price,
        provider_type: cloud,
        data_center,
        image: image.unwrap_or_default(),
        env,
        team_id: None,
        installation_fails: false,
        ssh_port: ssh.as_ref().map(crate::ssh::SshListener::port),
        banner_delay: banner_delay.map(|axum::Extension(crate::shared::BannerDelay(d))| d).unwrap_or_default(),
        authorized_keys,
        cmd: (!request.cmd.is_empty()).then(|| request.cmd.clone()),
        entrypoint: (!request.entrypoint.is_empty()).then(|| request.entrypoint.clone()),
        ports,
        cuda_version: placement.cuda_version.unwrap_or_default(),
        max_price: None,
        prepaid_hours: None,
        disk_size: disk,
        vcpus: placement.vcpus,
        memory: placement.memory,
        spot: false,
        currency: "USD".into(),
        disks: Vec::new(),
        template_id: request.template_id.as_ref().map(|t| t.to_string()),
        args,
        cpu_flavor: placement.cpu_flavor,
    });
    if let (Some(mounts), Some(pod)) = (&request.mounts, state.pod_mut(Api::RunPod, &record.id)) {
        pod.mounts = serde_json::to_value(mounts).unwrap_or_else(|_| json!({}));
    }
    let record = state.pod_mut(Api::RunPod, &record.id).map(|p| p.clone()).unwrap_or(record);
    state.creates += 1;
    drop(state);
    if let Some(listener) = ssh {
        listener.serve(&shared, Api::RunPod, record.id.clone(), 0);
    }
    let body = pod_json(&record, &shared);
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn get_pod(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.pods.iter().find(|p| p.api == Api::RunPod && p.id == id) {
        Some(pod) => axum::Json(pod_json(pod, &shared)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "pod not found"),
    }
}

/// `PATCH /v2/pods/{id}`: only the fields present change (the document's PATCH semantics):
/// `name`, `image`, `args`, `disk`, `ports`, `env` (replaced as a whole), `mounts` (`{}` leaves
/// them unchanged) and `locked`. `disk` is the container disk, which can grow, not shrink.
async fn update_pod(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(conflict) = member_conflict(&shared, &id, "modified") {
        return conflict;
    }
    let request: types::UpdatePodRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let mut state = shared.state();
    let Some(pod) = state.pod_mut(Api::RunPod, &id).filter(|p| !p.terminated) else {
        return problem(StatusCode::NOT_FOUND, "pod not found");
    };
    if let Some(disk) = request.disk {
        let disk = u32::try_from(disk.get()).unwrap_or(u32::MAX);
        if disk < pod.disk_size {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("disk can only grow: {disk} GB is less than the current {} GB", pod.disk_size),
            );
        }
        pod.disk_size = disk;
    }
    if let Some(name) = &request.name {
        pod.name = name.to_string();
    }
    if let Some(image) = &request.image {
        pod.image = image.clone();
    }
    if let Some(args) = &request.args {
        pod.args = args.clone();
    }
    if !request.env.is_empty() {
        pod.env = request.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    }
    if !request.ports.is_empty() {
        pod.ports = request.ports.clone();
    }
    if let Some(mounts) = &request.mounts {
        let mounts = serde_json::to_value(mounts).unwrap_or_else(|_| json!({}));
        if mounts.as_object().is_some_and(|m| !m.is_empty()) {
            pod.mounts = mounts;
        }
    }
    if let Some(locked) = request.locked {
        pod.locked = locked;
    }
    let pod = pod.clone();
    drop(state);
    axum::Json(pod_json(&pod, &shared)).into_response()
}

/// `locked`: "Whether the pod is locked (prevents stopping or resetting)".
fn is_locked_out(action: &str) -> bool {
    matches!(action, "stop" | "restart")
}

async fn delete_pod(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if let Some(conflict) = member_conflict(&shared, &id, "terminated") {
        return conflict;
    }
    if shared.state().terminate_pod(Api::RunPod, &id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "pod not found")
    }
}

/// `POST /v2/pods/{id}/action`: "`start`, `stop`, and `restart` return `200` with the updated
/// pod. `terminate` returns `204` with no body. Requesting an action that is not valid for the
/// pod's current status returns `409`."
async fn pod_action(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(conflict) = member_conflict(&shared, &id, "stopped, started or terminated") {
        return conflict;
    }
    let request: types::PodActionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let ready_delay = shared.config.ready_delay;
    let mut state = shared.state();
    let stocked_out = state.stocked_out.clone();
    let Some(pod) = state.pod_mut(Api::RunPod, &id).filter(|p| !p.terminated) else {
        return problem(StatusCode::NOT_FOUND, "pod not found");
    };
    let action = request.action.0.as_str();
    let mut new_listener = None;
    // A stopped pod resumes on its own host; with that host's GPUs taken (its GPU type stocked
    // out here) the start is the documented capacity 400.
    if action == "start" && (stocked_out.contains(&pod.gpu_type) || stocked_out.contains(&pod.id)) {
        return problem(StatusCode::BAD_REQUEST, "There are no instances currently available on this pod's host");
    }
    let phase = pod.phase(ready_delay);
    if pod.locked && is_locked_out(action) {
        return problem(
            StatusCode::CONFLICT,
            &format!("the pod is locked: unlock it (PATCH locked: false) to {action} it"),
        );
    }
    if !allowed_actions(phase).contains(&action) {
        return problem(
            StatusCode::CONFLICT,
            &format!("action {action:?} is not valid for a pod that is {}", runpod_status(phase)),
        );
    }
    match action {
        "stop" => {
            state.stop_billing(Api::RunPod, &id);
            if let Some(pod) = state.pod_mut(Api::RunPod, &id) {
                pod.stopped = true;
            }
            // A stopped container runs nothing: detached processes end too.
            state.kill_pod_processes(Api::RunPod, &id);
        }
        "start" | "restart" => {
            // A restart keeps billing through; a start opens a new running stretch.
            state.start_billing(Api::RunPod, &id);
            // "Container disk in GB (ephemeral, wiped on restart)" (BaseContainerConfig.disk).
            state.wipe_container_disk(Api::RunPod, &id);
            if let Some(pod) = state.pod_mut(Api::RunPod, &id) {
                // A stopped pod resumes with a new public port (`PodSsh.direct` is null while it
                // is stopped and assigned again when it runs): its SSH host moves.
                if action == "start" && pod.stopped && pod.ssh_port != 0 {
                    new_listener = crate::ssh::SshListener::bind();
                    pod.ssh_port = new_listener.as_ref().map_or(0, crate::ssh::SshListener::port);
                }
                pod.stopped = false;
            }
        }
        _ => {
            state.terminate_pod(Api::RunPod, &id);
            return StatusCode::NO_CONTENT.into_response();
        }
    }
    let Some(pod) = state.pod_mut(Api::RunPod, &id).map(|p| p.clone()) else {
        return problem(StatusCode::NOT_FOUND, "pod not found");
    };
    drop(state);
    if let Some(listener) = new_listener {
        listener.serve(&shared, Api::RunPod, id.clone(), 0);
    }
    axum::Json(pod_json(&pod, &shared)).into_response()
}

async fn get_ssh_keys(State(shared): State<Shared>) -> Response {
    let keys = shared.state().keys_of(Api::RunPod);
    axum::Json(wire::<types::SshKeys>(json!({ "keys": keys }))).into_response()
}

/// `PUT /v2/account/ssh-keys`: the body is the complete new set (a replacement, not a merge).
async fn update_ssh_keys(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::UpdateSshKeysRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    // The document's pattern for each entry: `<type> <base64-key> [comment]`.
    let well_formed = |key: &str| {
        let mut words = key.split_whitespace();
        let kind = words.next().unwrap_or("");
        ["ssh-", "ecdsa-", "sk-"].iter().any(|p| kind.starts_with(p)) && words.next().is_some()
    };
    if let Some(bad) = request.keys.iter().position(|k| !well_formed(k)) {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$.keys[{bad}]: not an authorized_keys entry"));
    }
    let mut state = shared.state();
    state.ssh_keys.retain(|k| k.api != Api::RunPod);
    for key in &request.keys {
        state.ssh_keys.push(crate::state::EmulatedSshKey {
            api: Api::RunPod,
            id: String::new(),
            name: String::new(),
            public_key: key.clone(),
            primary: false,
        });
    }
    axum::Json(wire::<types::SshKeys>(json!({ "keys": request.keys }))).into_response()
}

fn volume_json(volume: &EmulatedVolume) -> Value {
    wire::<types::NetworkVolume>(json!({"id": volume.id, "name": volume.name, "size": volume.size,
                                        "dataCenter": volume.data_center, "type": volume.volume_type}))
}

async fn list_volumes(State(shared): State<Shared>) -> Response {
    let state = shared.state();
    let volumes: Vec<Value> = state.volumes.iter().filter(|v| v.api == Api::RunPod).map(volume_json).collect();
    axum::Json(wire::<types::ListNetworkVolumesResponse>(json!({"networkVolumes": volumes}))).into_response()
}

async fn create_volume(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::CreateNetworkVolumeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let mut state = shared.state();
    let id = state.new_id(Api::RunPod);
    let volume = EmulatedVolume {
        api: Api::RunPod,
        id,
        name: request.name.to_string(),
        size: u64::try_from(request.size).unwrap_or(0),
        data_center: request.data_center.to_string(),
        provider_type: "runpod".into(),
        created_at: now_rfc3339(),
        team_id: None,
        updated_at: now_rfc3339(),
        // "When omitted, the volume is provisioned using the data center's default" tier:
        // STANDARD here.
        volume_type: request.type_.as_ref().map_or_else(|| "STANDARD".to_string(), |t| t.0.clone()),
    };
    let body = volume_json(&volume);
    state.volumes.push(volume);
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn get_volume(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.volumes.iter().find(|v| v.api == Api::RunPod && v.id == id) {
        Some(v) => axum::Json(volume_json(v)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "network volume not found"),
    }
}

/// `PATCH /v2/network-volumes/{id}`: a new `name`, and a `size` that "must be greater than or
/// equal to the current size" (storage only grows).
async fn update_volume(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: types::UpdateNetworkVolumeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("$: {e}")),
    };
    let mut state = shared.state();
    let Some(current) = state.volumes.iter().find(|v| v.api == Api::RunPod && v.id == id).map(|v| v.size) else {
        return problem(StatusCode::NOT_FOUND, "network volume not found");
    };
    let size = request.size.map(|s| u64::try_from(s).unwrap_or(0));
    if let Some(size) = size.filter(|s| *s < current) {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("size can only grow: {size} GB is less than the current {current} GB"),
        );
    }
    // A new size bills from now: the stretch at the old size is closed first.
    let resized = size.is_some_and(|s| s != current);
    if resized {
        state.settle_volume(Api::RunPod, &id);
    }
    let Some(volume) = state.volumes.iter_mut().find(|v| v.api == Api::RunPod && v.id == id) else {
        return problem(StatusCode::NOT_FOUND, "network volume not found");
    };
    if let Some(size) = size {
        volume.size = size;
    }
    if resized {
        volume.created_at = now_rfc3339();
    }
    if let Some(name) = request.name {
        volume.name = name.to_string();
    }
    volume.updated_at = now_rfc3339();
    let body = volume_json(volume);
    drop(state);
    axum::Json(body).into_response()
}

async fn delete_volume(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if !shared.state().remove_volume(Api::RunPod, &id) {
        return problem(StatusCode::NOT_FOUND, "network volume not found");
    }
    StatusCode::NO_CONTENT.into_response()
}
