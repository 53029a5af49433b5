//! The PrimeIntellect API (`/api/v1/...`), as far as gpucloud and its users need it.

use crate::catalog;
use crate::errors::primeintellect::error;
use crate::shared::Shared;
use crate::state::{Api, EmulatedPod, EmulatedVolume, NewPod, Phase, now_rfc3339};
use crate::wire::{query_pairs, wire};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use primeintellect_api::types;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/availability/gpus", get(availability))
        .route("/api/v1/availability/disks", get(disk_availability))
        .route("/api/v1/pods/", get(list_pods).post(create_pod))
        .route("/api/v1/pods/status", get(pods_status))
        .route("/api/v1/pods/{id}", get(get_pod).delete(delete_pod))
        .route("/api/v1/disks/", get(list_disks).post(create_disk))
        .route("/api/v1/disks/{id}", get(get_disk).delete(delete_disk))
        .route("/api/v1/ssh_keys/", get(list_ssh_keys).post(create_ssh_key))
        .route("/api/v1/user/teams", get(list_teams))
}

fn number(pairs: &[(String, String)], key: &str) -> Option<u64> {
    pairs.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok())
}

fn paginate<T: Clone>(items: &[T], pairs: &[(String, String)], default_limit: u64) -> (Vec<T>, u64, u64) {
    let offset = number(pairs, "offset").unwrap_or(0);
    let limit = number(pairs, "limit").unwrap_or(default_limit);
    let page = items.iter().skip(offset as usize).take(limit as usize).cloned().collect();
    (page, offset, limit)
}

async fn availability(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let values = |key: &str| pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let gpu_type = values("gpu_type").into_iter().next();
    let gpu_count = number(&pairs, "gpu_count");
    let regions = values("regions");
    let first = |key: &str| values(key).into_iter().next();
    let (socket, security, cloud_id, data_center) =
        (first("socket"), first("security"), first("cloud_id"), first("data_center_id"));
    let page = number(&pairs, "page").unwrap_or(1).max(1);
    let page_size = number(&pairs, "page_size").unwrap_or(100).max(1);
    let disk_filter = values("disks");
    let state = shared.state();
    // An offer can attach a disk in the same data center.
    let disk_centers: Vec<String> = state
        .volumes
        .iter()
        .filter(|v| v.api == Api::PrimeIntellect && disk_filter.contains(&v.id))
        .map(|v| v.data_center.clone())
        .collect();
    let matching: Vec<Value> = catalog::primeintellect()
        .into_iter()
        .filter(|o| gpu_type.as_deref().is_none_or(|g| g == o.gpu_type))
        .filter(|o| gpu_count.is_none_or(|n| n == u64::from(o.gpu_count)))
        .filter(|o| regions.is_empty() || regions.iter().any(|r| r == o.region))
        .filter(|o| socket.as_deref().is_none_or(|s| s == o.socket))
        // Every emulated offer is secure cloud.
        .filter(|_| security.as_deref().is_none_or(|s| s == "secure_cloud"))
        .filter(|o| cloud_id.as_deref().is_none_or(|c| c == o.cloud_id))
        .filter(|o| data_center.as_deref().is_none_or(|d| d == o.data_center))
        .filter(|o| disk_filter.is_empty() || disk_centers.iter().any(|dc| dc == o.data_center))
        .map(|o| o.to_json())
        .collect();
    let total = matching.len();
    let items: Vec<Value> =
        matching.into_iter().skip(((page - 1) * page_size) as usize).take(page_size as usize).collect();
    axum::Json(wire::<types::AvailabilityResponse>(json!({"items": items, "totalCount": total}))).into_response()
}

async fn disk_availability() -> Response {
    let items: Vec<Value> = ["runpod", "hyperstack"]
        .iter()
        .zip(["US-KS-2", "CANADA-1"])
        .map(|(provider, dc)| {
            json!({"cloudId": null, "provider": provider, "dataCenter": dc, "country": if dc == "US-KS-2" {"US"} else {"CA"},
                   "region": if dc == "US-KS-2" {"united_states"} else {"canada"},
                   "spec": {"minCount": 10, "defaultCount": 10, "maxCount": 8192, "pricePerUnit": 0.0001111, "step": 1,
                            "defaultIncludedInPrice": false, "additionalInfo": null},
                   "stockStatus": "Available", "security": "secure_cloud", "isMultinode": false})
        })
        .collect();
    axum::Json(wire::<types::DiskAvailabilityResponse>(json!({"items": items, "totalCount": 2}))).into_response()
}

/// The pod as the API document describes it.
fn pod_json(pod: &EmulatedPod, shared: &Shared) -> Value {
    wire::<types::ApiPodConfig>(pod_fields(pod, shared))
}

/// The pod's fields, unchecked: lists check the whole page at once.
fn pod_fields(pod: &EmulatedPod, shared: &Shared) -> Value {
    let phase = pod.phase(shared.config.ready_delay);
    let status = match phase {
        Phase::Provisioning => "PROVISIONING",
        Phase::Running => "ACTIVE",
        Phase::Stopped => "STOPPED",
        Phase::Terminated => "TERMINATED",
    };
    let running = phase == Phase::Running;
    // Running, the image installs for `installation_time` (`InstallationStatusEnum`: PENDING,
    // ACTIVE, FINISHED, ERROR), with `installationProgress` the "percentage ... completed".
    let installing = shared.config.installation_time;
    let ran_for = pod.created.elapsed().saturating_sub(shared.config.ready_delay);
    let (installation, progress, failure) = match (running, pod.installation_fails) {
        (false, _) => ("PENDING", 0, Value::Null),
        (true, false) if ran_for < installing => {
            ("ACTIVE", (100.0 * ran_for.as_secs_f64() / installing.as_secs_f64()) as u64, Value::Null)
        }
        (true, false) => ("FINISHED", 100, Value::Null),
        (true, true) => ("ERROR", 40, json!("emulated: image installation failed (exit code 1)")),
    };
    // PrimeIntellect's real timestamps carry no UTC offset.
    let created_at = pod.created_at.trim_end_matches('Z').to_string();
    json!({
        "id": pod.id, "userId": "emulator-user", "teamId": pod.team_id, "name": pod.name, "type": "HOSTED",
        "providerType": pod.provider_type, "status": status,
        "installationStatus": installation, "installationProgress": progress, "installationFailure": failure,
        "createdAt": created_at, "updatedAt": created_at,
        "gpuName": pod.gpu_type, "gpuCount": pod.gpu_count, "socket": pod.socket, "priceHr": pod.price,
        "environmentType": pod.image,
        "sshConnection": if running { json!(format!("root@127.0.0.1 -p {}", pod.ssh_port)) } else { Value::Null },
        "ip": if running { json!(["127.0.0.1"]) } else { json!([null]) },
        "isSpot": false, "autoRestart": false
    })
}

async fn list_pods(
    State(shared): State<Shared>,
    RawQuery(query): RawQuery,
    lag: Option<axum::Extension<crate::shared::ListLag>>,
) -> Response {
    let pairs = query_pairs(query);
    let state = shared.state();
    let hide = lag.map(|axum::Extension(crate::shared::ListLag(d))| d);
    let pods = state.listed_pods(Api::PrimeIntellect, hide);
    let total = pods.len();
    // Render only the requested page, outside the lock: concurrent page requests (prefetching
    // clients) are served in parallel, and large accounts stay cheap to page through.
    let (page, offset, limit) = paginate(&pods, &pairs, 100);
    let page: Vec<EmulatedPod> = page.into_iter().cloned().collect();
    drop(state);
    let page: Vec<Value> = page.iter().map(|p| pod_fields(p, &shared)).collect();
    let body = json!({"totalCount": total, "offset": offset, "limit": limit, "data": page});
    axum::Json(wire::<types::GenericPaginationResponseListApiPodConfig>(body)).into_response()
}

async fn pods_status(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let ids: Vec<&String> = pairs.iter().filter(|(k, _)| k == "pod_ids").map(|(_, v)| v).collect();
    let state = shared.state();
    let data: Vec<Value> = state
        .pods
        .iter()
        .filter(|p| p.api == Api::PrimeIntellect && ids.contains(&&p.id))
        .map(|p| {
            let pod = pod_json(p, &shared);
            let fields =
                ["status", "sshConnection", "ip", "installationStatus", "installationFailure", "installationProgress"];
            let mut entry = json!({"podId": p.id, "providerType": p.provider_type});
            for field in fields {
                entry[field] = pod[field].clone();
            }
            entry
        })
        .collect();
    axum::Json(wire::<types::GenericResponseListApiPodStatusResponse>(json!({"data": data}))).into_response()
}

/// The team a create names, checked against [`crate::state::EMULATED_TEAMS`]: `Err` is the 403's message.
fn team_of(team: Option<&types::TeamConfig>) -> Result<Option<String>, String> {
    match team {
        None => Ok(None),
        Some(team) if crate::state::EMULATED_TEAMS.iter().any(|(id, ..)| *id == team.team_id) => {
            Ok(Some(team.team_id.clone()))
        }
        Some(team) => Err(format!("you are not a member of team {}", team.team_id)),
    }
}

async fn create_pod(
    State(shared): State<Shared>,
    installation_fails: Option<axum::Extension<crate::shared::InstallationFails>>,
    banner_delay: Option<axum::Extension<crate::shared::BannerDelay>>,
    body: Bytes,
) -> Response {
    let request: types::BodyCreatePodApiV1PodsPost = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    let team_id = match team_of(request.team.as_ref()) {
        Ok(team) => team,
        Err(message) => return error(StatusCode::FORBIDDEN, "team.teamId", &message),
    };
    let pod = &request.pod;
    let Some(offer) = catalog::primeintellect().into_iter().find(|o| o.cloud_id == pod.cloud_id) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "pod.cloudId", "no such offer");
    };
    if pod.gpu_type.0 != offer.gpu_type
        || pod.socket.0 != offer.socket
        || pod.gpu_count.get() != u64::from(offer.gpu_count)
    {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "pod", "gpuType, socket and gpuCount must match the offer");
    }
    if request.provider.type_.0 != offer.provider {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "provider.type", "does not match the offer's provider");
    }
    let image = pod.image.as_ref().map(|i| i.0.clone()).unwrap_or_else(|| "ubuntu_22_cuda_12".into());
    if !offer.to_json()["images"].as_array().is_some_and(|images| images.iter().any(|i| i == image.as_str()))
        && image != "custom_template"
    {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "pod.image", "not available for this offer");
    }
    // The body is checked against the offer it names (the document's `PodRequestConfig`).
    if pod.data_center_id.as_deref().is_some_and(|dc| dc != offer.data_center) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "pod.dataCenterId",
            &format!("the offer is in {}", offer.data_center),
        );
    }
    if pod.security.as_ref().is_some_and(|s| s.0 != offer.security) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "pod.security", &format!("the offer is {}", offer.security));
    }
    let amount = |v: Option<std::num::NonZeroU64>| v.map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    let (disk, vcpus, memory) = (amount(pod.disk_size), amount(pod.vcpus), amount(pod.memory));
    for (field, value) in [("diskSize", disk), ("vcpus", vcpus), ("memory", memory)] {
        if let Some(why) = offer.refuse_resource(field, value) {
            return error(StatusCode::UNPROCESSABLE_ENTITY, &format!("pod.{field}"), &why);
        }
    }
    // "set the `image` to `custom_template`" with a template id (the provision guide).
    if pod.custom_template_id.is_some() != (image == "custom_template") {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "pod.image",
            "custom_template goes with customTemplateId, and only with it",
        );
    }
    if offer.prepaid_hours.is_some() && pod.prepaid_for_hr != offer.prepaid_hours {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "pod.prepaidForHr",
            "a prepaid offer is ordered for its prepaidTime",
        );
    }
    let price = offer.pod_price(disk, vcpus, memory);
    if offer.spot && pod.max_price.is_some_and(|cap| cap < price) {
        return error(StatusCode::BAD_REQUEST, "pod.maxPrice", &format!("the current price {price} exceeds maxPrice"));
    }
    let name = pod.name.clone().unwrap_or_else(|| "pod".into());
    if name.is_empty() || name.len() > 64 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "pod.name", "must be 1 to 64 characters");
    }
    let mut state = shared.state();
    if state.stocked_out.contains(offer.cloud_id) || state.stocked_out.contains(offer.gpu_type) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "pod", "No instances available for this configuration");
    }
    let env = pod.env_vars.iter().flatten().map(|e| (e.key.clone(), e.value.clone())).collect();
    let ssh = crate::ssh::SshListener::bind();
    let authorized_keys = state
        .ssh_keys
        .iter()
        .filter(|k| k.api == Api::PrimeIntellect && Some(&k.id) == pod.ssh_key_id.as_ref())
        .map(|k| k.public_key.clone())
        .collect();
    let record = state.add_pod(NewPod {
        api: Api::PrimeIntellect,
        name,
        gpu_type: offer.gpu_type.to_string(),
        socket: offer.socket.to_string(),
        gpu_count: offer.gpu_count,
        price,
        provider_type: offer.provider.to_string(),
        data_center: offer.data_center.to_string(),
        image,
        env,
        team_id,
        installation_fails: installation_fails.is_some(),
        ssh_port: ssh.as_ref().map(crate::ssh::SshListener::port),
        banner_delay: banner_delay.map(|axum::Extension(crate::shared::BannerDelay(d))| d).unwrap_or_default(),
        authorized_keys,
        cmd: None,
        entrypoint: None,
        ports: Vec::new(),
        cuda_version: String::new(),
        max_price: pod.max_price,
        prepaid_hours: pod.prepaid_for_hr,
    });
    state.creates += 1;
    drop(state);
    if let Some(listener) = ssh {
        listener.serve(&shared, Api::PrimeIntellect, record.id.clone());
    }
    let body = pod_json(&record, &shared);
    axum::Json(body).into_response()
}

async fn get_pod(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.pods.iter().find(|p| p.api == Api::PrimeIntellect && p.id == id) {
        Some(pod) => axum::Json(pod_json(pod, &shared)).into_response(),
        None => error(StatusCode::NOT_FOUND, "pod_id", "Pod not found"),
    }
}

async fn delete_pod(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if shared.state().terminate_pod(Api::PrimeIntellect, &id) {
        axum::Json(wire::<types::ApiDeletePodResponse>(json!({"status": "TERMINATED"}))).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "pod_id", "Pod not found")
    }
}

fn disk_json(volume: &EmulatedVolume) -> Value {
    wire::<types::ApiDiskConfig>(json!({
        "id": volume.id, "userId": "emulator-user", "teamId": volume.team_id, "name": volume.name, "size": volume.size, "status": "ACTIVE", "providerType": volume.provider_type,
        "createdAt": volume.created_at.trim_end_matches('Z'), "priceHr": volume.size as f64 * 0.0001111,
        "pods": [], "clusters": [], "info": {"dataCenterId": volume.data_center}
    }))
}

async fn list_disks(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let state = shared.state();
    let disks: Vec<Value> = state.volumes.iter().filter(|v| v.api == Api::PrimeIntellect).map(disk_json).collect();
    let (page, offset, limit) = paginate(&disks, &pairs, 50);
    axum::Json(json!({"totalCount": disks.len(), "offset": offset, "limit": limit, "data": page})).into_response()
}

async fn create_disk(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::BodyCreateDiskApiV1DisksPost = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    let team_id = match team_of(request.team.as_ref()) {
        Ok(team) => team,
        Err(message) => return error(StatusCode::FORBIDDEN, "team.teamId", &message),
    };
    let mut state = shared.state();
    let id = state.new_id(Api::PrimeIntellect);
    let volume = EmulatedVolume {
        api: Api::PrimeIntellect,
        id,
        name: request.disk.name.as_ref().map(|n| n.to_string()).unwrap_or_else(|| "disk".into()),
        size: request.disk.size.get(),
        data_center: request.disk.data_center_id.clone().unwrap_or_else(|| "US-KS-2".into()),
        provider_type: request.provider.type_.0.clone(),
        created_at: now_rfc3339(),
        team_id,
    };
    let body = disk_json(&volume);
    state.volumes.push(volume);
    // The document lists 200 for a disk create; the disk guide says "201 Created". Both are
    // served, by the emulator's seed (odd: 201), so clients are tested against each.
    let status = if shared.config.seed % 2 == 1 { StatusCode::CREATED } else { StatusCode::OK };
    (status, axum::Json(body)).into_response()
}

async fn get_disk(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.volumes.iter().find(|v| v.api == Api::PrimeIntellect && v.id == id) {
        Some(v) => axum::Json(disk_json(v)).into_response(),
        None => error(StatusCode::NOT_FOUND, "disk_id", "Disk not found"),
    }
}

async fn delete_disk(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    if !shared.state().remove_volume(Api::PrimeIntellect, &id) {
        return error(StatusCode::NOT_FOUND, "disk_id", "Disk not found");
    }
    axum::Json(json!({"status": "deleted"})).into_response()
}

async fn list_teams() -> Response {
    let data: Vec<Value> = crate::state::EMULATED_TEAMS
        .iter()
        .map(|(id, name, slug, role)| {
            json!({"teamId": id, "name": name, "slug": slug, "role": role, "createdAt": "2025-01-15T10:30:00.000000"})
        })
        .collect();
    // PrimeIntellect's docs show this shape (the document's `data`, plus pagination fields the
    // document leaves out); it is served as is, since a round trip through the generated type
    // would drop those fields.
    let body = json!({"total_count": data.len(), "offset": 0, "limit": 100, "data": data});
    axum::Json(body).into_response()
}

fn ssh_key_json(key: &crate::state::EmulatedSshKey) -> Value {
    json!({"id": key.id, "userId": "emulator-user", "name": key.name, "publicKey": key.public_key,
           "isPrimary": false, "isUserKey": true})
}

/// `GET /api/v1/ssh_keys/`: offset/limit pages, 100 by default (the document's `limit`).
async fn list_ssh_keys(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let state = shared.state();
    let keys: Vec<Value> = state.ssh_keys.iter().filter(|k| k.api == Api::PrimeIntellect).map(ssh_key_json).collect();
    let (page, offset, limit) = paginate(&keys, &pairs, 100);
    let body = json!({"totalCount": keys.len(), "offset": offset, "limit": limit, "data": page});
    axum::Json(wire::<types::GenericPaginationResponseListApisshKeyConfig>(body)).into_response()
}

async fn create_ssh_key(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::ApisshKeyUploadRequestConfig = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    if !request.public_key.starts_with("ssh-") && !request.public_key.starts_with("ecdsa-") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "publicKey", "not an OpenSSH public key");
    }
    let mut state = shared.state();
    let key = crate::state::EmulatedSshKey {
        api: Api::PrimeIntellect,
        id: state.new_id(Api::PrimeIntellect),
        name: request.name,
        public_key: request.public_key,
    };
    state.ssh_keys.push(key.clone());
    axum::Json(wire::<types::ApisshKeyConfig>(ssh_key_json(&key))).into_response()
}
