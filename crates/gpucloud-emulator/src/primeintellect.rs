//! The PrimeIntellect API (`/api/v1/...`): its compute surface (availability, pods, disks, SSH
//! keys, user, teams, secrets, templates), as PrimeIntellect's own `prime` CLI and gpucloud use
//! it.
//!
//! The service is a FastAPI application, and answers as one: every field of a response model is
//! sent, `null` when empty (FastAPI serializes the whole model; `prime`'s pydantic models
//! require those keys), and a collection route called without its trailing slash answers `307`
//! to the slashed path (Starlette's `redirect_slashes`), which `prime` relies on: it calls
//! `GET /api/v1/pods?offset=0&limit=100` and `POST /api/v1/pods` where the document has
//! `/api/v1/pods/`.
//!
//! **Multi-node offers** (`catalog::primeintellect_multi_node`) are served by
//! `/availability/multi-node` (the filters and shape of `/availability/gpus`, `gpu_count` the
//! whole configuration's GPUs), `/availability/multi-node-summary` and `/availability/clusters`,
//! never by `/availability/gpus`; they carry `interconnect` (Gbps), `interconnectType` and
//! `provisioningTime` (minutes). `GpuAvailability` has no field for a node count, so none is
//! sent: an offer's `gpuCount` and `prices` are the whole configuration's, every node alike,
//! and the node count is implied by `gpuCount` / GPUs per node (the emulator's multi-node
//! offers: 2 nodes of 8 H100, 4 nodes of 8 H100, 2 nodes of 1 A100, 2 nodes of 2 RTX 4090).
//! `POST /pods/` with such a `cloudId` creates **one** pod (one id) with that many nodes:
//! `clusterId` set, `gpuCount` and `priceHr` the whole configuration's (its bill too), and,
//! once `ACTIVE`, `sshConnection` and `ip` lists with one entry per node in node order
//! (`sshConnection` null and `ip` a list of nulls while it provisions); `primePortMapping` has
//! one entry per node. Each node is its own SSH host (see `ssh`). The document gives nodes no
//! rank, no peer addresses and no environment of their own, so the emulator sets none: every
//! node has the pod's `envVars`, nothing more. The emulator's disk offers are not multi-node
//! (`isMultinode: false`), so a multi-node create naming `disks` is refused (400).

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
use axum::routing::{get, post};
use primeintellect_api::types;
use serde_json::{Value, json};

pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/availability/", get(legacy_availability))
        .route("/api/v1/availability/gpus", get(availability))
        .route("/api/v1/availability/multi-node", get(multi_node_availability))
        .route("/api/v1/availability/clusters", get(cluster_availability))
        .route("/api/v1/availability/gpu-summary", get(gpu_summary))
        .route("/api/v1/availability/multi-node-summary", get(multi_node_summary))
        .route("/api/v1/availability/disks", get(disk_availability))
        .route("/api/v1/pods/", get(list_pods).post(create_pod))
        .route("/api/v1/pods/status", get(pods_status))
        .route("/api/v1/pods/{id}", get(get_pod).delete(delete_pod))
        .route("/api/v1/disks/", get(list_disks).post(create_disk))
        .route("/api/v1/disks/{id}", get(get_disk).patch(update_disk).delete(delete_disk))
        .route("/api/v1/ssh_keys/", get(list_ssh_keys).post(create_ssh_key))
        .route("/api/v1/ssh_keys/{id}", axum::routing::patch(update_ssh_key).delete(delete_ssh_key))
        .route("/api/v1/user/teams", get(list_teams))
        .route("/api/v1/user/whoami", get(whoami))
        .route("/api/v1/user/slug", axum::routing::patch(update_slug))
        .route("/api/v1/teams/{id}/members", get(team_members))
        .route("/api/v1/secrets/", get(list_secrets).post(create_secret))
        .route("/api/v1/secrets/{id}", get(get_secret).patch(update_secret).delete(delete_secret))
        .route("/api/v1/template/check-docker-image", post(check_docker_image))
        .route("/api/v1/template/registry-credentials", get(registry_credentials))
        // Starlette's `redirect_slashes`: a path that matches no route but does with a trailing
        // slash is answered `307 Temporary Redirect` to it (method and body kept by the client).
        .route("/api/v1/availability", axum::routing::any(redirect_slash))
        .route("/api/v1/pods", axum::routing::any(redirect_slash))
        .route("/api/v1/disks", axum::routing::any(redirect_slash))
        .route("/api/v1/ssh_keys", axum::routing::any(redirect_slash))
        .route("/api/v1/secrets", axum::routing::any(redirect_slash))
}

/// FastAPI (Starlette's router, `redirect_slashes=True`, the default): "if no route matches and
/// the path with a trailing slash added does, redirect there" with `307 Temporary Redirect`, the
/// query kept, so `prime`'s `POST /api/v1/pods` reaches `POST /api/v1/pods/` (httpx follows a 307
/// with the method and body).
async fn redirect_slash(request: axum::extract::Request) -> Response {
    let uri = request.uri();
    let location = match uri.query() {
        Some(query) => format!("{}/?{query}", uri.path()),
        None => format!("{}/", uri.path()),
    };
    (StatusCode::TEMPORARY_REDIRECT, [(axum::http::header::LOCATION, location)]).into_response()
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

/// The `offers` the availability filters of `pairs` select (`gpu_type`, `gpu_count` (the whole
/// configuration's GPUs), repeated `regions`, `socket`, `security`, `cloud_id`,
/// `data_center_id`, and `disks`: offers in a data center where one of those disks is).
fn matching_offers(
    shared: &Shared,
    pairs: &[(String, String)],
    offers: Vec<catalog::PiOffer>,
) -> Vec<catalog::PiOffer> {
    let values = |key: &str| pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect::<Vec<_>>();
    let gpu_type = values("gpu_type").into_iter().next();
    let gpu_count = number(pairs, "gpu_count");
    let regions = values("regions");
    let first = |key: &str| values(key).into_iter().next();
    let (socket, security, cloud_id, data_center) =
        (first("socket"), first("security"), first("cloud_id"), first("data_center_id"));
    let disk_filter = values("disks");
    let state = shared.state();
    // An offer can attach a disk in the same data center.
    let disk_centers: Vec<String> = state
        .volumes
        .iter()
        .filter(|v| v.api == Api::PrimeIntellect && disk_filter.contains(&v.id))
        .map(|v| v.data_center.clone())
        .collect();
    drop(state);
    offers
        .into_iter()
        .filter(|o| gpu_type.as_deref().is_none_or(|g| g == o.gpu_type))
        .filter(|o| gpu_count.is_none_or(|n| n == u64::from(o.gpu_count)))
        .filter(|o| regions.is_empty() || regions.iter().any(|r| r == o.region))
        .filter(|o| socket.as_deref().is_none_or(|s| s == o.socket))
        .filter(|o| security.as_deref().is_none_or(|s| s == o.security))
        .filter(|o| cloud_id.as_deref().is_none_or(|c| c == o.cloud_id))
        .filter(|o| data_center.as_deref().is_none_or(|d| d == o.data_center))
        .filter(|o| disk_filter.is_empty() || disk_centers.iter().any(|dc| dc == o.data_center))
        .collect()
}

/// `page` (1-based) and `page_size` of `items`, and the total.
fn page_of(items: Vec<Value>, pairs: &[(String, String)]) -> (Vec<Value>, usize) {
    let page = number(pairs, "page").unwrap_or(1).max(1);
    let page_size = number(pairs, "page_size").unwrap_or(100).max(1);
    let total = items.len();
    (items.into_iter().skip(((page - 1) * page_size) as usize).take(page_size as usize).collect(), total)
}

async fn availability(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let matching: Vec<Value> =
        matching_offers(&shared, &pairs, catalog::primeintellect()).iter().map(catalog::PiOffer::to_json).collect();
    let (items, total) = page_of(matching, &pairs);
    axum::Json(wire::<types::AvailabilityResponse>(json!({"items": items, "totalCount": total}))).into_response()
}

/// `GET /availability/multi-node`: the same filters and shape as `/availability/gpus`, over
/// the multi-node offers (`gpu_count` is the whole configuration's GPUs); `prime availability
/// list` and `pods create` call it beside `/gpus` and merge both.
async fn multi_node_availability(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let matching: Vec<Value> = matching_offers(&shared, &pairs, catalog::primeintellect_multi_node())
        .iter()
        .map(catalog::PiOffer::to_json)
        .collect();
    let (items, total) = page_of(matching, &pairs);
    axum::Json(wire::<types::AvailabilityResponse>(json!({"items": items, "totalCount": total}))).into_response()
}

/// The document's `LegacyAvailabilityResponse`: offers keyed by `GPUType`.
fn by_gpu_type(offers: &[catalog::PiOffer]) -> Value {
    let mut grouped = serde_json::Map::new();
    for offer in offers {
        let entry = grouped.entry(offer.gpu_type.to_string()).or_insert_with(|| json!([]));
        if let Some(list) = entry.as_array_mut() {
            list.push(offer.to_json());
        }
    }
    Value::Object(grouped)
}

/// `GET /availability/` (the legacy shape): single-node offers keyed by GPU type.
async fn legacy_availability(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    axum::Json(by_gpu_type(&matching_offers(&shared, &pairs, catalog::primeintellect()))).into_response()
}

/// `GET /availability/clusters` (legacy shape): the multi-node offers the same filters select,
/// keyed by GPU type.
async fn cluster_availability(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    axum::Json(by_gpu_type(&matching_offers(&shared, &pairs, catalog::primeintellect_multi_node()))).into_response()
}

/// `GET /availability/gpu-summary`: per GPU type, per GPU count, the cheapest price of each kind
/// over all regions (`cheapest`) and per region, as PrimeIntellect's own CLI test data shows
/// (`{"A100_80GB": {"1": {"cheapest": {"onDemand", "communityPrice", "spotPrice"}, "canada":
/// {...}}}}`). `prime availability gpu-types` lists its keys.
async fn gpu_summary() -> Response {
    axum::Json(summary(&catalog::primeintellect())).into_response()
}

/// `GET /availability/multi-node-summary`: the same over the multi-node offers, keyed by their
/// whole configuration's GPU count.
async fn multi_node_summary() -> Response {
    axum::Json(summary(&catalog::primeintellect_multi_node())).into_response()
}

fn summary(offers: &[catalog::PiOffer]) -> Value {
    let mut out = serde_json::Map::new();
    let lower = |slot: &mut Value, key: &str, price: f64| {
        if slot[key].as_f64().is_none_or(|p| price < p) {
            slot[key] = json!(price);
        }
    };
    for offer in offers.iter().filter(|o| o.priced) {
        let key = if offer.spot {
            "spotPrice"
        } else if offer.security == "community_cloud" {
            "communityPrice"
        } else {
            "onDemand"
        };
        let counts = out.entry(offer.gpu_type.to_string()).or_insert_with(|| json!({}));
        let count = &mut counts[offer.gpu_count.to_string()];
        for place in ["cheapest", offer.region] {
            if count[place].is_null() {
                count[place] = json!({"onDemand": null, "communityPrice": null, "spotPrice": null});
            }
            lower(&mut count[place], key, offer.price);
        }
    }
    Value::Object(out)
}

/// `GET /availability/disks`: the disk offers, filtered by repeated `regions`, `data_center_id`
/// and `cloud_id` as the document's parameters say, paged by `page`/`page_size`.
async fn disk_availability(RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let values = |key: &str| pairs.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect::<Vec<_>>();
    let (regions, centers, clouds) = (values("regions"), values("data_center_id"), values("cloud_id"));
    let items: Vec<Value> = [("runpod", "US-KS-2", "US", "united_states"), ("hyperstack", "CANADA-1", "CA", "canada")]
        .into_iter()
        .filter(|(_, dc, _, region)| {
            (regions.is_empty() || regions.contains(region)) && (centers.is_empty() || centers.contains(dc))
        })
        // No disk offer here is tied to a GPU offer (`cloudId` null), so a cloud filter matches none.
        .filter(|_| clouds.is_empty())
        .map(|(provider, dc, country, region)| {
            json!({"cloudId": null, "provider": provider, "dataCenter": dc, "country": country, "region": region,
                   "spec": {"minCount": 10, "defaultCount": 10, "maxCount": 8192, "pricePerUnit": DISK_USD_PER_GB_HOUR, "step": 1,
                            "defaultIncludedInPrice": false, "additionalInfo": null},
                   "stockStatus": "Available", "security": "secure_cloud", "isMultinode": false})
        })
        .collect();
    let (items, total) = page_of(items, &pairs);
    axum::Json(wire::<types::DiskAvailabilityResponse>(json!({"items": items, "totalCount": total}))).into_response()
}

/// A disk's price, USD per GB-hour (the emulator's disk offers).
const DISK_USD_PER_GB_HOUR: f64 = 0.0001111;

/// The pod as the API document describes it.
fn pod_json(pod: &EmulatedPod, shared: &Shared, volumes: &[EmulatedVolume]) -> Value {
    wire::<types::ApiPodConfig>(pod_fields(pod, shared, volumes))
}

/// The pod's fields, unchecked: lists check the whole page at once. Every property of the
/// document's `APIPodConfig` is sent, `null` where there is nothing (FastAPI sends the whole
/// model; `prime`'s `Pod` model requires `resources`, `attachedResources`, `primePortMapping`,
/// `walletId`, ... to be present), plus the pricing fields PrimeIntellect's current API reference
/// shows (`basePriceHr`, `baseCurrency`) and `jupyterPassword`, which `prime` also requires.
fn pod_fields(pod: &EmulatedPod, shared: &Shared, volumes: &[EmulatedVolume]) -> Value {
    let phase = pod.phase(shared.config.ready_delay);
    let status = match phase {
        Phase::Provisioning => "PROVISIONING",
        Phase::Running => "ACTIVE",
        Phase::Stopped => "STOPPED",
        Phase::Terminated => "TERMINATED",
        Phase::Failed => "ERROR",
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
    let terminated_at = pod.terminated_at.as_deref().map(|t| t.trim_end_matches('Z').to_string());
    let updated_at = terminated_at.clone().unwrap_or_else(|| created_at.clone());
    // `InstanceResources` (the document spells the shared disk `shared_disk`; SOURCES.md notes
    // real answers with `sharedDisk`; neither is used here, so the document's spelling is sent).
    let amount = |n: u32| if n == 0 { Value::Null } else { json!(n) };
    let resources = json!({"memory": amount(pod.memory), "disk": amount(pod.disk_size), "vcpus": amount(pod.vcpus),
                           "shared_disk": null});
    // `PortMapping`: the pod's SSH port, as the provision guide's `primePortMapping` shows it;
    // a multi-node pod's, one per node (described by the node's index).
    let multi_node = !pod.node_ports.is_empty();
    let port_mapping = if running && multi_node {
        let ports: Vec<Value> = (pod.node_ports.iter().enumerate())
            .map(|(node, port)| {
                json!({"internal": "22", "external": port.to_string(), "protocol": "TCP", "usedBy": "SSH",
                       "description": format!("node {node}")})
            })
            .collect();
        json!(ports)
    } else if running {
        json!([{"internal": "22", "external": pod.ssh_port.to_string(), "protocol": "TCP", "usedBy": "SSH",
                "description": null}])
    } else {
        Value::Null
    };
    // "a string or list of strings (if there are multiple nodes)": one entry per node, in order.
    let (ssh_connection, ip) = match (multi_node, running) {
        (true, true) => (
            json!(pod.node_ports.iter().map(|port| format!("root@127.0.0.1 -p {port}")).collect::<Vec<_>>()),
            json!(vec!["127.0.0.1"; pod.node_ports.len()]),
        ),
        (true, false) => (Value::Null, json!(vec![Value::Null; pod.node_ports.len()])),
        (false, true) => (json!(format!("root@127.0.0.1 -p {}", pod.ssh_port)), json!(["127.0.0.1"])),
        (false, false) => (Value::Null, json!([null])),
    };
    // `AttachedResources`: the disks attached at creation. The provision guide: "`UNATTACHED`
    // initially, will become `ATTACHED` once the instance is fully provisioned", mounted at
    // `/data`.
    let attachment = match phase {
        Phase::Running => "ATTACHED",
        _ => "UNATTACHED",
    };
    let attached: Vec<Value> = pod
        .disks
        .iter()
        .map(|id| {
            let size = volumes.iter().find(|v| v.api == Api::PrimeIntellect && &v.id == id).map(|v| v.size);
            json!({"resourceType": "DISK", "id": id, "status": attachment, "isDetachable": true,
                   "mountPath": "/data", "resourcePath": null, "size": size, "isShared": false})
        })
        .collect();
    json!({
        "id": pod.id, "userId": "emulator-user", "teamId": pod.team_id, "walletId": null, "name": pod.name,
        "type": "HOSTED", "providerType": pod.provider_type, "status": status,
        "installationStatus": installation, "installationProgress": progress, "installationFailure": failure,
        "createdAt": created_at, "updatedAt": updated_at, "terminatedAt": terminated_at,
        "gpuName": pod.gpu_type, "gpuCount": pod.gpu_count, "socket": pod.socket, "priceHr": pod.price,
        "stoppedPriceHr": null, "provisioningPriceHr": 0.0, "basePriceHr": pod.price, "baseCurrency": pod.currency,
        "environmentType": pod.image, "customTemplateId": pod.template_id, "clusterId": pod.cluster_id,
        "primePortMapping": port_mapping, "sshConnection": ssh_connection, "ip": ip,
        "resources": resources, "attachedResources": if attached.is_empty() { Value::Null } else { json!(attached) },
        "jupyterPassword": null, "isSpot": pod.spot, "autoRestart": false
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
    let volumes = state.volumes.clone();
    drop(state);
    let page: Vec<Value> = page.iter().map(|p| pod_fields(p, &shared, &volumes)).collect();
    // `total_count`, the document's `GenericPaginationResponse` spelling, which `prime` requires
    // (its `PodList` has `Field(..., alias="total_count")`); the disk guide's `totalCount` example
    // is the one at fault.
    let body = json!({"total_count": total, "offset": offset, "limit": limit, "data": page});
    axum::Json(wire::<types::GenericPaginationResponseListApiPodConfig>(body)).into_response()
}

async fn pods_status(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let ids: Vec<&String> = pairs.iter().filter(|(k, _)| k == "pod_ids").map(|(_, v)| v).collect();
    let state = shared.state();
    let data: Vec<Value> = state
        .pods
        .iter()
        .filter(|p| p.api == Api::PrimeIntellect && !p.gone && ids.contains(&&p.id))
        .map(|p| {
            let pod = pod_json(p, &shared, &state.volumes);
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
    let Some(offer) = catalog::primeintellect_offer(&pod.cloud_id) else {
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
    // `prepaidTime`: "If set, you will be pre-charged for the total number of hours ... at the
    // time of ordering": the offer fixes the hours, so an order without `prepaidForHr` (`prime`
    // has no way to send it) is for the offer's time; one naming other hours is refused.
    if offer.prepaid_hours.is_some() && pod.prepaid_for_hr.is_some_and(|h| Some(h) != offer.prepaid_hours) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "pod.prepaidForHr",
            "a prepaid offer is ordered for its prepaidTime",
        );
    }
    let prepaid_hours = pod.prepaid_for_hr.or(offer.prepaid_hours);
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
    // Disks to attach (the provision guide): "Only disks you own can be attached", "Disks must be
    // in an `ACTIVE` state", and they attach to offers "in the same location as your disk". An
    // unknown id is a 404, as for `GET /disks/{disk_id}`.
    let disks = request.disks.clone().unwrap_or_default();
    if offer.nodes > 1 && !disks.is_empty() {
        return error(StatusCode::BAD_REQUEST, "disks", "the disk offers are not multi-node (isMultinode false)");
    }
    for id in &disks {
        let Some(disk) = state.volumes.iter().find(|v| v.api == Api::PrimeIntellect && &v.id == id) else {
            return error(StatusCode::NOT_FOUND, "disks", &format!("Disk {id} not found"));
        };
        if disk.data_center != offer.data_center {
            return error(
                StatusCode::BAD_REQUEST,
                "disks",
                &format!("disk {id} is in {}, the offer in {}", disk.data_center, offer.data_center),
            );
        }
        if state.pods.iter().any(|p| !p.terminated && p.disks.contains(id)) {
            return error(StatusCode::CONFLICT, "disks", &format!("disk {id} is attached to another pod"));
        }
    }
    let env = pod.env_vars.iter().flatten().map(|e| (e.key.clone(), e.value.clone())).collect();
    // One SSH host per node; a node whose port cannot be had leaves the whole pod without
    // listeners (an endpoint that refuses connections, as for a single node).
    let listeners: Option<Vec<crate::ssh::SshListener>> =
        (0..offer.nodes.max(1)).map(|_| crate::ssh::SshListener::bind()).collect();
    // With `sshKeyId`, that key; without it, every key of the account, as the service does:
    // `prime pods create` never sends `sshKeyId`, and `prime pods ssh` then logs in with the
    // user's key (the provisioning guide: "every team member's SSH keys ... added to the
    // instance" when shared). Which keys exactly is not documented; all of the owner's is the
    // reading that lets the official client work.
    let authorized_keys = state
        .ssh_keys
        .iter()
        .filter(|k| k.api == Api::PrimeIntellect)
        .filter(|k| pod.ssh_key_id.as_ref().is_none_or(|wanted| &k.id == wanted))
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
        ssh_port: listeners.as_ref().and_then(|l| l.first()).map(crate::ssh::SshListener::port),
        banner_delay: banner_delay.map(|axum::Extension(crate::shared::BannerDelay(d))| d).unwrap_or_default(),
        authorized_keys,
        cmd: None,
        entrypoint: None,
        ports: Vec::new(),
        cuda_version: String::new(),
        max_price: pod.max_price,
        prepaid_hours,
        disk_size: disk.unwrap_or(match offer.fixed_disk {
            Some((size, _)) => size,
            None => 100,
        }),
        vcpus: vcpus.unwrap_or(8 * offer.gpu_count),
        memory: memory.unwrap_or(64 * offer.gpu_count),
        spot: offer.spot,
        currency: offer.currency.to_string(),
        disks,
        template_id: pod.custom_template_id.clone(),
        args: String::new(),
        cpu_flavor: None,
    });
    // A multi-node offer: one pod, its nodes' ports, and a cluster id of its own.
    let record = if offer.nodes > 1 {
        let cluster_id = state.new_id(Api::PrimeIntellect);
        let ports: Vec<u16> = match &listeners {
            Some(listeners) => listeners.iter().map(crate::ssh::SshListener::port).collect(),
            None => vec![record.ssh_port; offer.nodes as usize],
        };
        match state.pod_mut(Api::PrimeIntellect, &record.id) {
            Some(stored) => {
                stored.cluster_id = Some(cluster_id);
                stored.node_ports = ports;
                stored.clone()
            }
            None => record,
        }
    } else {
        record
    };
    state.creates += 1;
    drop(state);
    for (node, listener) in listeners.into_iter().flatten().enumerate() {
        listener.serve(&shared, Api::PrimeIntellect, record.id.clone(), node);
    }
    let body = pod_json(&record, &shared, &shared.state().volumes.clone());
    axum::Json(body).into_response()
}

async fn get_pod(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.pods.iter().find(|p| p.api == Api::PrimeIntellect && p.id == id && !p.gone) {
        Some(pod) => axum::Json(pod_json(pod, &shared, &state.volumes)).into_response(),
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

/// The disk as the document's `APIDiskConfig` describes it, every property sent (`prime`'s `Disk`
/// requires `updatedAt`; the disk guide shows `terminatedAt`, `stoppedPriceHr`,
/// `provisioningPriceHr` and `walletId` on every disk), with the live pods it is attached to.
fn disk_json(volume: &EmulatedVolume, pods: &[EmulatedPod]) -> Value {
    let attached: Vec<&str> =
        pods.iter().filter(|p| !p.terminated && p.disks.contains(&volume.id)).map(|p| p.id.as_str()).collect();
    let country = if volume.data_center.starts_with("US") { "US" } else { "CA" };
    wire::<types::ApiDiskConfig>(json!({
        "id": volume.id, "userId": "emulator-user", "teamId": volume.team_id, "walletId": null, "name": volume.name,
        "size": volume.size, "status": "ACTIVE", "providerType": volume.provider_type,
        "createdAt": volume.created_at.trim_end_matches('Z'), "updatedAt": volume.updated_at.trim_end_matches('Z'),
        "terminatedAt": null, "priceHr": volume.size as f64 * DISK_USD_PER_GB_HOUR, "stoppedPriceHr": null,
        "provisioningPriceHr": 0.0, "pods": attached, "clusters": [],
        "info": {"dataCenterId": volume.data_center, "country": country, "cloudId": null, "isMultinode": false}
    }))
}

async fn list_disks(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let state = shared.state();
    let disks: Vec<Value> =
        state.volumes.iter().filter(|v| v.api == Api::PrimeIntellect).map(|v| disk_json(v, &state.pods)).collect();
    let (page, offset, limit) = paginate(&disks, &pairs, 50);
    // `total_count`: see `list_pods`.
    let body = json!({"total_count": disks.len(), "offset": offset, "limit": limit, "data": page});
    axum::Json(wire::<types::GenericPaginationResponseListApiDiskConfig>(body)).into_response()
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
    let now = now_rfc3339();
    let volume = EmulatedVolume {
        api: Api::PrimeIntellect,
        id,
        name: request.disk.name.as_ref().map(|n| n.to_string()).unwrap_or_else(|| "disk".into()),
        size: request.disk.size.get(),
        data_center: request.disk.data_center_id.clone().unwrap_or_else(|| "US-KS-2".into()),
        provider_type: request.provider.type_.0.clone(),
        created_at: now.clone(),
        team_id,
        updated_at: now,
        volume_type: String::new(),
    };
    let body = disk_json(&volume, &[]);
    state.volumes.push(volume);
    // The document lists 200 for a disk create; the disk guide says "201 Created". Both are
    // served, by the emulator's seed (odd: 201), so clients are tested against each.
    let status = if shared.config.seed % 2 == 1 { StatusCode::CREATED } else { StatusCode::OK };
    (status, axum::Json(body)).into_response()
}

async fn get_disk(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let state = shared.state();
    match state.volumes.iter().find(|v| v.api == Api::PrimeIntellect && v.id == id) {
        Some(v) => axum::Json(disk_json(v, &state.pods)).into_response(),
        None => error(StatusCode::NOT_FOUND, "disk_id", "Disk not found"),
    }
}

/// `PATCH /disks/{disk_id}` with `{"name": ...}` (`APIDiskUpdateRequest`): renames the disk and
/// answers it.
async fn update_disk(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: types::ApiDiskUpdateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    if request.name.is_empty() || request.name.len() > 255 {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "name", "must be 1 to 255 characters");
    }
    let mut state = shared.state();
    let Some(volume) = state.volumes.iter_mut().find(|v| v.api == Api::PrimeIntellect && v.id == id) else {
        return error(StatusCode::NOT_FOUND, "disk_id", "Disk not found");
    };
    volume.name = request.name;
    volume.updated_at = now_rfc3339();
    let volume = volume.clone();
    axum::Json(disk_json(&volume, &state.pods)).into_response()
}

async fn delete_disk(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut state = shared.state();
    if state.pods.iter().any(|p| p.api == Api::PrimeIntellect && !p.terminated && p.disks.contains(&id)) {
        return error(StatusCode::CONFLICT, "disk_id", "the disk is attached to a pod; terminate the pod first");
    }
    if !state.remove_volume(Api::PrimeIntellect, &id) {
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

/// The emulated user.
const USER_ID: &str = "emulator-user";

/// `GET /user/whoami`: `GenericResponse[WhoamiResponse]`, the emulated user (`prime whoami`
/// reads `data.id`, `email`, `name`, `slug`, `scope`).
async fn whoami(State(shared): State<Shared>) -> Response {
    let mut user = user_json(&shared.state().user_slug);
    user["scope"] = json!({});
    let body = json!({"status": "success", "data": user});
    axum::Json(wire::<types::GenericResponseWhoamiResponse>(body)).into_response()
}

/// The emulated user as the document's `User`.
fn user_json(slug: &str) -> Value {
    json!({"id": USER_ID, "role": "USER", "createdAt": "2025-01-15T10:30:00.000000", "name": "Emulator User",
           "slug": slug, "email": "user@emulator.invalid", "image": null, "emailVerified": true,
           "hasBetaAccess": false, "isBanned": false, "skipPrepay": false, "blacklist": []})
}

/// `PATCH /user/slug` (`UserSlugUpdateRequest`: "lowercase, 3-30 chars, a-z, 0-9, -", checked by
/// the strict layer): the user's new slug; a team's slug is taken (409).
async fn update_slug(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::UserSlugUpdateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    let slug = request.slug.to_string();
    if crate::state::EMULATED_TEAMS.iter().any(|(_, _, team_slug, _)| *team_slug == slug) {
        return error(StatusCode::CONFLICT, "slug", &format!("the slug {slug} is taken"));
    }
    shared.state().user_slug = slug.clone();
    let body = json!({"status": "success", "data": user_json(&slug)});
    axum::Json(wire::<types::GenericResponseUser>(body)).into_response()
}

/// `GET /teams/{team_id}/members`: absent from the vendored document, but linked from the
/// provisioning guide ("List Team Members") and called by `prime teams members`, which reads
/// `data[]` with `userId`, `userName`, `userEmail`, `role`, `joinedAt`. The emulated user is the
/// one member, with its role in the team; a team the user is not in is a 403, as for creates.
async fn team_members(Path(team_id): Path<String>) -> Response {
    let Some((_, _, _, role)) = crate::state::EMULATED_TEAMS.iter().find(|(id, ..)| *id == team_id) else {
        return error(StatusCode::FORBIDDEN, "team_id", &format!("you are not a member of team {team_id}"));
    };
    let data = json!([{"userId": USER_ID, "userName": "Emulator User", "userEmail": "user@emulator.invalid",
                        "role": role, "joinedAt": "2025-01-15T10:30:00.000000"}]);
    axum::Json(json!({"total_count": 1, "offset": 0, "limit": 100, "data": data})).into_response()
}

fn ssh_key_json(key: &crate::state::EmulatedSshKey) -> Value {
    json!({"id": key.id, "userId": USER_ID, "name": key.name, "publicKey": key.public_key,
           "isPrimary": key.primary, "isUserKey": true})
}

/// `GET /api/v1/ssh_keys/`: offset/limit pages, 100 by default (the document's `limit`).
async fn list_ssh_keys(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let state = shared.state();
    let keys: Vec<Value> = state.ssh_keys.iter().filter(|k| k.api == Api::PrimeIntellect).map(ssh_key_json).collect();
    let (page, offset, limit) = paginate(&keys, &pairs, 100);
    // `total_count`: see `list_pods`.
    let body = json!({"total_count": keys.len(), "offset": offset, "limit": limit, "data": page});
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
        primary: false,
    };
    state.ssh_keys.push(key.clone());
    axum::Json(wire::<types::ApisshKeyConfig>(ssh_key_json(&key))).into_response()
}

/// `PATCH /ssh_keys/{key_id}` with `{"isPrimary": true}` ("Must be true when provided"): makes it
/// the account's one primary key; answers `APISSHKeyUpdateResponseConfig`.
async fn update_ssh_key(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    let request: types::ApisshKeyUpdateRequestConfig = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    if request.is_primary == Some(false) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "isPrimary", "must be true when provided");
    }
    let mut state = shared.state();
    if !state.ssh_keys.iter().any(|k| k.api == Api::PrimeIntellect && k.id == id) {
        return error(StatusCode::NOT_FOUND, "key_id", "SSH key not found");
    }
    let mut updated = serde_json::Map::new();
    if request.is_primary == Some(true) {
        for key in state.ssh_keys.iter_mut().filter(|k| k.api == Api::PrimeIntellect) {
            key.primary = key.id == id;
        }
        updated.insert("isPrimary".into(), json!(true));
    }
    let body = json!({"message": "SSH key updated", "updated_fields": updated});
    axum::Json(wire::<types::ApisshKeyUpdateResponseConfig>(body)).into_response()
}

async fn delete_ssh_key(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    let mut state = shared.state();
    let before = state.ssh_keys.len();
    state.ssh_keys.retain(|k| !(k.api == Api::PrimeIntellect && k.id == id));
    if state.ssh_keys.len() == before {
        return error(StatusCode::NOT_FOUND, "key_id", "SSH key not found");
    }
    axum::Json(json!({"status": "deleted"})).into_response()
}

/// `SecretResponse`; the value is write-only ("will be encrypted") and never returned.
fn secret_json(secret: &crate::state::EmulatedSecret) -> Value {
    json!({"id": secret.id, "name": secret.name, "description": secret.description, "isFile": secret.is_file,
           "userId": if secret.team_id.is_some() { Value::Null } else { json!(USER_ID) }, "teamId": secret.team_id,
           "createdAt": secret.created_at.trim_end_matches('Z'), "updatedAt": secret.value_last_updated_at.trim_end_matches('Z')})
}

/// The `teamId` query parameter of the secrets routes: the user's own secrets without it.
/// `Err` carries the team refused (a `Response` is too large an `Err`); [`not_a_member`] answers it.
fn team_param(pairs: &[(String, String)]) -> Result<Option<String>, String> {
    match pairs.iter().find(|(k, _)| k == "teamId").map(|(_, v)| v.clone()) {
        None => Ok(None),
        Some(team) if crate::state::EMULATED_TEAMS.iter().any(|(id, ..)| *id == team) => Ok(Some(team)),
        Some(team) => Err(team),
    }
}

/// The 403 for a team the user is not in.
fn not_a_member(team: &str) -> Response {
    error(StatusCode::FORBIDDEN, "teamId", &format!("you are not a member of team {team}"))
}

/// `GET /secrets/`: the user's (or with `teamId`, the team's) secrets, offset/limit pages.
async fn list_secrets(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let team = match team_param(&pairs) {
        Ok(team) => team,
        Err(team) => return not_a_member(&team),
    };
    let state = shared.state();
    let secrets: Vec<Value> =
        state.secrets.iter().filter(|s| s.api == Api::PrimeIntellect && s.team_id == team).map(secret_json).collect();
    let (page, offset, limit) = paginate(&secrets, &pairs, 100);
    let body = json!({"total_count": secrets.len(), "offset": offset, "limit": limit, "data": page});
    axum::Json(wire::<types::GenericPaginationResponseListSecretResponse>(body)).into_response()
}

/// `POST /secrets/` (`SecretCreateRequest`): a name taken in the same scope is a 409.
async fn create_secret(State(shared): State<Shared>, body: Bytes) -> Response {
    let request: types::SecretCreateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    let team = match request.team_id.clone() {
        None => None,
        Some(team) if crate::state::EMULATED_TEAMS.iter().any(|(id, ..)| *id == team) => Some(team),
        Some(team) => return error(StatusCode::FORBIDDEN, "teamId", &format!("you are not a member of team {team}")),
    };
    let name = request.name.to_string();
    let mut state = shared.state();
    if state.secrets.iter().any(|s| s.api == Api::PrimeIntellect && s.team_id == team && s.name == name) {
        return error(StatusCode::CONFLICT, "name", &format!("a secret named {name} already exists"));
    }
    let now = now_rfc3339();
    let secret = crate::state::EmulatedSecret {
        api: Api::PrimeIntellect,
        team_id: team,
        is_file: request.is_file,
        id: state.new_id(Api::PrimeIntellect),
        name,
        description: request.description.map(|d| d.to_string()),
        value: request.value.to_string(),
        created_at: now.clone(),
        value_last_updated_at: now,
    };
    let body = json!({"status": "success", "data": secret_json(&secret)});
    state.secrets.push(secret);
    axum::Json(wire::<types::GenericResponseSecretResponse>(body)).into_response()
}

fn find_secret<'a>(
    secrets: &'a mut [crate::state::EmulatedSecret],
    id: &str,
    team: &Option<String>,
) -> Option<&'a mut crate::state::EmulatedSecret> {
    secrets.iter_mut().find(|s| s.api == Api::PrimeIntellect && s.id == id && &s.team_id == team)
}

async fn get_secret(State(shared): State<Shared>, Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    let team = match team_param(&query_pairs(query)) {
        Ok(team) => team,
        Err(team) => return not_a_member(&team),
    };
    let mut state = shared.state();
    match find_secret(&mut state.secrets, &id, &team) {
        Some(secret) => {
            let body = json!({"status": "success", "data": secret_json(secret)});
            axum::Json(wire::<types::GenericResponseSecretResponse>(body)).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "secret_id", "Secret not found"),
    }
}

/// `PATCH /secrets/{secret_id}` (`SecretUpdateRequest`): only the fields sent change.
async fn update_secret(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let request: types::SecretUpdateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    let team = match team_param(&query_pairs(query)) {
        Ok(team) => team,
        Err(team) => return not_a_member(&team),
    };
    let mut state = shared.state();
    let Some(secret) = find_secret(&mut state.secrets, &id, &team) else {
        return error(StatusCode::NOT_FOUND, "secret_id", "Secret not found");
    };
    if let Some(name) = request.name {
        secret.name = name.to_string();
    }
    if let Some(value) = request.value {
        secret.value = value.to_string();
    }
    if let Some(description) = request.description {
        secret.description = Some(description.to_string());
    }
    secret.value_last_updated_at = now_rfc3339();
    let body = json!({"status": "success", "data": secret_json(secret)});
    axum::Json(wire::<types::GenericResponseSecretResponse>(body)).into_response()
}

async fn delete_secret(State(shared): State<Shared>, Path(id): Path<String>, RawQuery(query): RawQuery) -> Response {
    let team = match team_param(&query_pairs(query)) {
        Ok(team) => team,
        Err(team) => return not_a_member(&team),
    };
    let mut state = shared.state();
    let before = state.secrets.len();
    state.secrets.retain(|s| !(s.api == Api::PrimeIntellect && s.id == id && s.team_id == team));
    if state.secrets.len() == before {
        return error(StatusCode::NOT_FOUND, "secret_id", "Secret not found");
    }
    axum::Json(json!({"status": "deleted"})).into_response()
}

/// `POST /template/check-docker-image` (`DockerImageCheckRequest`): whether the image can be
/// pulled. The emulator pulls nothing; it accepts a well-formed reference
/// (`[registry/]name[:tag|@digest]`, lower-case name) and refuses anything else with a 400, so
/// a client sees both answers.
async fn check_docker_image(body: Bytes) -> Response {
    let request: types::DockerImageCheckRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, "body", &e.to_string()),
    };
    let image = request.image.trim();
    let name = image.split(['@', ':']).next().unwrap_or("");
    let well_formed = !image.is_empty()
        && !image.contains(char::is_whitespace)
        && !name.is_empty()
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c));
    if !well_formed {
        return error(StatusCode::BAD_REQUEST, "image", &format!("{image:?} is not a valid image reference"));
    }
    axum::Json(json!({"image": image, "accessible": true})).into_response()
}

/// `GET /template/registry-credentials`: the account's saved registry credentials (none can be
/// saved through the documented API, so the list is empty).
async fn registry_credentials() -> Response {
    axum::Json(wire::<types::RegistryCredentialsListResponse>(json!({"credentials": []}))).into_response()
}
