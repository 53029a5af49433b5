//! What the providers' own clients send, replayed (the requests recorded in
//! `../shared/REAL-CLIENTS.md`: PyPI `prime` 0.18.0 and npm `@runpod/mcp-server` 4.0.0), with
//! the answers they need. `tests/real_clients.rs` runs the clients themselves where installed;
//! this runs everywhere.

mod common;

use common::{bounded, send};
use gpucloud_emulator::{Api, Emulator, EmulatorConfig};
use serde_json::{Value, json};
use std::time::Duration;

async fn emulator() -> Emulator {
    let config =
        EmulatorConfig { check_responses: true, ready_delay: Duration::from_millis(50), ..EmulatorConfig::default() };
    Emulator::start(config).await.unwrap()
}

/// `prime pods create`'s body for `cloud_id` (`--yes`, no `sshKeyId`, no `prepaidForHr`).
fn prime_pod(cloud_id: &str, gpu: &str, socket: &str, provider: &str, disks: Value) -> Value {
    json!({"pod": {"name": "real-pod-1", "cloudId": cloud_id, "gpuType": gpu, "socket": socket, "gpuCount": 1,
                   "diskSize": null, "vcpus": null, "memory": null, "image": "ubuntu_22_cuda_12", "dataCenterId": null,
                   "maxPrice": null, "country": null, "security": null, "jupyterPassword": null, "autoRestart": false,
                   "customTemplateId": null, "envVars": [{"key": "FOO", "value": "bar"}]},
           "provider": {"type": provider}, "disks": disks, "team": null})
}

#[tokio::test]
async fn prime_reaches_slashless_collections_and_reads_full_models() {
    bounded("prime_reaches_slashless_collections_and_reads_full_models", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        // FastAPI's 307 to the slashed path, query kept.
        let (status, headers, _) = send(&client, &base, &key, "GET", "/api/v1/pods?offset=0&limit=100", None).await;
        assert_eq!((status, headers["location"].to_str().unwrap()), (307, "/api/v1/pods/?offset=0&limit=100"));
        let (status, headers, _) = send(&client, &base, &key, "POST", "/api/v1/disks", Some(json!({}))).await;
        assert_eq!((status, headers["location"].to_str().unwrap()), (307, "/api/v1/disks/"));
        // A disk, then a pod on it, as prime sends them.
        let disk = json!({"disk": {"size": 50, "name": "realdisk-1", "country": "US", "cloudId": null,
                                   "dataCenterId": "US-KS-2"}, "provider": {"type": "runpod"}, "team": null});
        let (status, _, disk) = send(&client, &base, &key, "POST", "/api/v1/disks/", Some(disk)).await;
        assert!(matches!(status, 200 | 201), "{disk}");
        let disk_id = disk["id"].as_str().unwrap().to_string();
        for field in ["updatedAt", "terminatedAt", "walletId", "stoppedPriceHr", "provisioningPriceHr"] {
            assert!(disk.get(field).is_some(), "disk lacks {field}: {disk}");
        }
        let key_id = emulator.add_ssh_key(Api::PrimeIntellect, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorKey me");
        // Offers in the disk's data center (`disks` filter), then a create naming the disk.
        let (_, _, offers) =
            send(&client, &base, &key, "GET", &format!("/api/v1/availability/gpus?disks={disk_id}"), None).await;
        let offer = &offers["items"][0];
        assert_eq!(offer["dataCenter"], "US-KS-2", "{offers}");
        let body = prime_pod(
            offer["cloudId"].as_str().unwrap(),
            offer["gpuType"].as_str().unwrap(),
            offer["socket"].as_str().unwrap(),
            offer["provider"].as_str().unwrap(),
            json!([disk_id]),
        );
        let (status, _, pod) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(body)).await;
        assert_eq!(status, 200, "{pod}");
        for field in
            ["resources", "attachedResources", "primePortMapping", "walletId", "terminatedAt", "jupyterPassword"]
        {
            assert!(pod.get(field).is_some(), "pod lacks {field}: {pod}");
        }
        let pod_id = pod["id"].as_str().unwrap().to_string();
        assert_eq!(pod["attachedResources"][0]["id"], disk_id.as_str(), "{pod}");
        let (_, _, disk) = send(&client, &base, &key, "GET", &format!("/api/v1/disks/{disk_id}"), None).await;
        assert_eq!(disk["pods"], json!([pod_id]), "the disk shows its pod: {disk}");
        // Without sshKeyId the pod trusts the account's keys (prime pods ssh).
        let live = emulator.live_pods();
        let record = live.iter().find(|p| p.id == pod_id).unwrap();
        assert!(record.authorized_keys.iter().any(|k| k.contains("EmulatorKey")), "key {key_id} not authorized");
        // Lists in the document's spelling.
        let (_, _, pods) = send(&client, &base, &key, "GET", "/api/v1/pods/?offset=0&limit=100", None).await;
        assert_eq!((pods["total_count"].as_u64(), pods.get("totalCount")), (Some(1), None), "{pods}");
        let (_, _, disks) = send(&client, &base, &key, "GET", "/api/v1/disks/?offset=0&limit=100", None).await;
        assert_eq!(disks["total_count"].as_u64(), Some(1), "{disks}");
        // Refusals: an unknown disk, a disk in use, a disk elsewhere.
        let body = |disks: Value| {
            prime_pod(
                offer["cloudId"].as_str().unwrap(),
                offer["gpuType"].as_str().unwrap(),
                offer["socket"].as_str().unwrap(),
                offer["provider"].as_str().unwrap(),
                disks,
            )
        };
        let (status, _, _) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(body(json!(["missing"])))).await;
        assert_eq!(status, 404, "an unknown disk");
        let (status, _, _) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(body(json!([disk_id])))).await;
        assert_eq!(status, 409, "a disk attached to another pod");
        let (status, _, _) = send(&client, &base, &key, "DELETE", &format!("/api/v1/disks/{disk_id}"), None).await;
        assert_eq!(status, 409, "an attached disk is not deleted");
        // Rename, then the spot offer's pod says so.
        let (status, _, renamed) =
            send(&client, &base, &key, "PATCH", &format!("/api/v1/disks/{disk_id}"), Some(json!({"name": "renamed"})))
                .await;
        assert_eq!((status, renamed["name"].as_str()), (200, Some("renamed")), "{renamed}");
        let spot = prime_pod("dc-h100-spot-1", "H100_80GB", "SXM5", "datacrunch", Value::Null);
        let (status, _, pod) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(spot)).await;
        assert_eq!((status, pod["isSpot"].as_bool()), (200, Some(true)), "{pod}");
        assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
    })
    .await;
}

#[tokio::test]
async fn prime_reads_availability_user_teams_and_keys() {
    bounded("prime_reads_availability_user_teams_and_keys", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let (status, _, summary) = send(&client, &base, &key, "GET", "/api/v1/availability/gpu-summary", None).await;
        assert_eq!(status, 200);
        assert!(summary["H100_80GB"]["1"]["cheapest"]["onDemand"].is_number(), "{summary}");
        let (status, _, multi) =
            send(&client, &base, &key, "GET", "/api/v1/availability/multi-node?page=1&page_size=100", None).await;
        // The multi-node offers, none of which `/gpus` lists.
        assert_eq!((status, multi["totalCount"].as_u64()), (200, Some(4)), "{multi}");
        // Disk offers honour their filters.
        let (_, _, canada) =
            send(&client, &base, &key, "GET", "/api/v1/availability/disks?regions=canada&page=1&page_size=100", None)
                .await;
        assert_eq!(canada["items"].as_array().map(Vec::len), Some(1), "{canada}");
        assert_eq!(canada["items"][0]["dataCenter"], "CANADA-1");
        let (_, _, kansas) =
            send(&client, &base, &key, "GET", "/api/v1/availability/disks?data_center_id=US-KS-2", None).await;
        assert_eq!((kansas["totalCount"].as_u64(), &kansas["items"][0]["dataCenter"]), (Some(1), &json!("US-KS-2")));
        let (status, _, me) = send(&client, &base, &key, "GET", "/api/v1/user/whoami", None).await;
        assert_eq!((status, me["data"]["id"].as_str()), (200, Some("emulator-user")), "{me}");
        let (status, _, members) =
            send(&client, &base, &key, "GET", "/api/v1/teams/clteamemulator000000000002/members", None).await;
        assert_eq!((status, members["data"][0]["role"].as_str()), (200, Some("MEMBER")), "{members}");
        let (status, ..) = send(&client, &base, &key, "GET", "/api/v1/teams/someone-elses/members", None).await;
        assert_eq!(status, 403);
        // SSH keys: primary, then delete.
        let id = emulator.add_ssh_key(Api::PrimeIntellect, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorKey me");
        let (status, _, updated) =
            send(&client, &base, &key, "PATCH", &format!("/api/v1/ssh_keys/{id}"), Some(json!({"isPrimary": true})))
                .await;
        assert_eq!((status, &updated["updated_fields"]), (200, &json!({"isPrimary": true})), "{updated}");
        let (_, _, keys) = send(&client, &base, &key, "GET", "/api/v1/ssh_keys/", None).await;
        assert_eq!((keys["total_count"].as_u64(), keys["data"][0]["isPrimary"].as_bool()), (Some(1), Some(true)));
        let (status, ..) = send(&client, &base, &key, "DELETE", &format!("/api/v1/ssh_keys/{id}"), None).await;
        assert_eq!(status, 200);
        let (status, ..) = send(&client, &base, &key, "DELETE", &format!("/api/v1/ssh_keys/{id}"), None).await;
        assert_eq!(status, 404);
        // Secrets: the value never comes back.
        let (status, _, created) = send(
            &client,
            &base,
            &key,
            "POST",
            "/api/v1/secrets/",
            Some(json!({"name": "HF_TOKEN", "value": "hf_secret"})),
        )
        .await;
        assert_eq!(status, 200, "{created}");
        assert!(!created.to_string().contains("hf_secret"), "{created}");
        let (status, ..) =
            send(&client, &base, &key, "POST", "/api/v1/secrets/", Some(json!({"name": "HF_TOKEN", "value": "again"})))
                .await;
        assert_eq!(status, 409, "a name is taken once");
        assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
    })
    .await;
}

#[tokio::test]
async fn the_mcp_servers_requests_get_what_the_document_promises() {
    bounded("the_mcp_servers_requests_get_what_the_document_promises", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        // Comma arrays (explode: false), as the MCP server sends them; repeated keys refused.
        let (status, _, gpus) = send(&client, &base, &key, "GET",
                                     "/v2/catalog/gpus?include=AVAILABILITY&product=POD%2CCLUSTER&countryCodes=US%2CCA", None).await;
        assert_eq!(status, 200, "{gpus}");
        let (status, _, refused) =
            send(&client, &base, &key, "GET", "/v2/catalog/gpus?include=AVAILABILITY&product=POD&product=CLUSTER", None).await;
        assert_eq!(status, 422, "{refused}");
        let (status, _, gpu) = send(&client, &base, &key, "GET",
                                    "/v2/catalog/gpus/NVIDIA%20H100%2080GB%20HBM3?include=AVAILABILITY&product=POD", None).await;
        assert_eq!((status, gpu["id"].as_str()), (200, Some("NVIDIA H100 80GB HBM3")), "{gpu}");
        let (_, _, centers) = send(&client, &base, &key, "GET", "/v2/catalog/datacenters?regions=EUROPE", None).await;
        assert_eq!(centers["dataCenters"].as_array().map(Vec::len), Some(1), "{centers}");
        // A template, then a pod from it.
        let (status, _, template) = send(&client, &base, &key, "POST", "/v2/templates",
            Some(json!({"name": "mine", "image": "ubuntu:24.04", "ports": ["22/tcp"], "env": {"A": "1"}, "disk": 30}))).await;
        assert_eq!(status, 201, "{template}");
        let template_id = template["id"].as_str().unwrap();
        let (_, _, templates) = send(&client, &base, &key, "GET", "/v2/templates", None).await;
        assert_eq!(templates["templates"][0]["id"], template_id, "list-templates reads data.templates");
        let body = json!({"name": "from-template", "templateId": template_id,
                          "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}, "env": {"B": "2"}});
        let (status, _, pod) = send(&client, &base, &key, "POST", "/v2/pods", Some(body)).await;
        assert_eq!(status, 201, "{pod}");
        assert_eq!((pod["image"].as_str(), pod["template"].as_str(), pod["disk"].as_u64()),
                   (Some("ubuntu:24.04"), Some(template_id), Some(30)), "{pod}");
        // The template's `startJupyter` "defaults to `true` when omitted": a generated password.
        let mut env = pod["env"].clone();
        let password = env.as_object_mut().and_then(|e| e.remove("JUPYTER_PASSWORD"));
        assert!(password.as_ref().and_then(Value::as_str).is_some_and(|p| p.len() >= 16), "{pod}");
        assert_eq!(env, json!({"A": "1", "B": "2"}));
        let pod_id = pod["id"].as_str().unwrap().to_string();
        // PATCH honours ports, disk and locked; a locked pod refuses stop.
        let (status, _, pod) = send(&client, &base, &key, "PATCH", &format!("/v2/pods/{pod_id}"),
                                    Some(json!({"ports": ["22/tcp"], "disk": 60, "locked": true}))).await;
        assert_eq!(status, 200, "{pod}");
        assert_eq!((&pod["ports"], pod["disk"].as_u64(), pod["locked"].as_bool()), (&json!(["22/tcp"]), Some(60), Some(true)));
        assert!(!pod["actions"].as_array().unwrap().iter().any(|a| a == "stop"), "{pod}");
        let (status, ..) = send(&client, &base, &key, "POST", &format!("/v2/pods/{pod_id}/action"),
                                Some(json!({"action": "stop"}))).await;
        assert_eq!(status, 409, "a locked pod is not stopped");
        // A CPU pod.
        let (status, _, cpu) = send(&client, &base, &key, "POST", "/v2/pods",
            Some(json!({"name": "mcp-cpu", "image": "ubuntu:22.04", "cpu": {"id": "cpu3c", "vcpuCount": 4}}))).await;
        assert_eq!(status, 201, "{cpu}");
        assert_eq!((cpu["cpu"]["vcpuCount"].as_u64(), cpu.get("gpu")), (Some(4), None), "{cpu}");
        // Volume type and update.
        let (status, _, volume) = send(&client, &base, &key, "POST", "/v2/network-volumes",
            Some(json!({"name": "hps", "size": 20, "dataCenter": "US-KS-2", "type": "HIGH_PERFORMANCE"}))).await;
        assert_eq!((status, volume["type"].as_str()), (201, Some("HIGH_PERFORMANCE")), "{volume}");
        let id = volume["id"].as_str().unwrap();
        let (status, _, volume) = send(&client, &base, &key, "PATCH", &format!("/v2/network-volumes/{id}"),
                                       Some(json!({"name": "renamed", "size": 60}))).await;
        assert_eq!((status, volume["size"].as_u64()), (200, Some(60)), "{volume}");
        let (status, ..) = send(&client, &base, &key, "PATCH", &format!("/v2/network-volumes/{id}"),
                                Some(json!({"size": 10}))).await;
        assert_eq!(status, 400, "a volume does not shrink");
        // Registries and serverless, each with its lifecycle.
        let (status, _, registry) = send(&client, &base, &key, "POST", "/v2/registries",
                                         Some(json!({"name": "ghcr", "username": "me", "password": "pw"}))).await;
        assert_eq!(status, 201, "{registry}");
        assert!(!registry.to_string().contains("pw"), "the password is write-only");
        let (status, _, endpoint) = send(&client, &base, &key, "POST", "/v2/serverless",
            Some(json!({"name": "infer", "type": "QUEUE", "image": "me/worker:1", "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
                        "gpu": {"pools": ["ADA_24"]}}))).await;
        assert_eq!(status, 201, "{endpoint}");
        let endpoint_id = endpoint["id"].as_str().unwrap();
        let (status, _, workers) = send(&client, &base, &key, "GET", &format!("/v2/serverless/{endpoint_id}/workers"), None).await;
        assert_eq!((status, workers["summary"]["total"].as_u64()), (200, Some(0)), "{workers}");
        let (status, ..) = send(&client, &base, &key, "DELETE", &format!("/v2/serverless/{endpoint_id}"), None).await;
        assert_eq!(status, 204);
        assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
    })
    .await;
}

#[tokio::test]
async fn the_request_log_has_one_masked_line_per_exchange() {
    bounded("the_request_log_has_one_masked_line_per_exchange", Duration::from_secs(30), async {
        let path = std::env::temp_dir().join(format!("gpucloud-request-log-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let config = EmulatorConfig { log_requests: Some(path.clone()), ..EmulatorConfig::default() };
        let emulator = Emulator::start(config).await.unwrap();
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let body = json!({"name": "logged", "image": "ubuntu:22.04", "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1},
                          "env": {"HF_TOKEN": "hf_very_secret", "MODE": "fast"}});
        let (status, ..) = send(&client, &base, &key, "POST", "/v2/pods", Some(body)).await;
        assert_eq!(status, 201);
        let (status, ..) = send(&client, &base, "wrong-key", "GET", "/api/v1/pods/?limit=5", None).await;
        assert_eq!(status, 401);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!((lines[0]["method"].as_str(), lines[0]["path"].as_str(), lines[0]["status"].as_u64()),
                   (Some("POST"), Some("/v2/pods"), Some(201)));
        assert_eq!(lines[0]["body"]["env"], json!({"HF_TOKEN": "***", "MODE": "fast"}));
        assert!(lines[0]["duration_ms"].is_number());
        assert_eq!((lines[1]["query"].as_str(), lines[1]["status"].as_u64()), (Some("limit=5"), Some(401)));
        assert!(!text.contains("hf_very_secret") && !text.contains(&key), "a secret reached the log: {text}");
    })
    .await;
}

/// The first SSE event of `GET path` (the stream itself never ends).
async fn first_event(client: &reqwest::Client, base: &str, key: &str, path: &str) -> Value {
    let mut response = client.get(format!("{base}{path}")).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = response.chunk().await.unwrap().expect("the stream goes on");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    serde_json::from_str(data).unwrap()
}

#[tokio::test]
async fn runpod_log_lines_carry_wall_clock_times_and_since_resumes() {
    bounded("runpod_log_lines_carry_wall_clock_times_and_since_resumes", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let body =
            json!({"name": "logs", "image": "ubuntu:22.04", "gpu": {"id": "NVIDIA GeForce RTX 4090", "count": 1}});
        let (_, _, pod) = send(&client, &base, &key, "POST", "/v2/pods", Some(body)).await;
        let (id, created) = (pod["id"].as_str().unwrap().to_string(), pod["createdAt"].as_str().unwrap().to_string());
        tokio::time::sleep(Duration::from_millis(600)).await;
        let created = chrono::DateTime::parse_from_rfc3339(&created).unwrap();
        let first = first_event(&client, &base, &key, &format!("/v2/pods/{id}/logs?tail=1000")).await;
        let ts = chrono::DateTime::parse_from_rfc3339(first["ts"].as_str().unwrap()).unwrap();
        assert_eq!(ts, created, "the first line is written as the pod is created: {first}");
        let since =
            (created + chrono::Duration::milliseconds(300)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let resumed =
            first_event(&client, &base, &key, &format!("/v2/pods/{id}/logs?since={}", since.replace('+', "%2B"))).await;
        assert_eq!(resumed["ts"].as_str(), Some(since.as_str()), "since resumes at that time: {resumed}");
        assert!(resumed["line"].as_str().unwrap().contains("step 3:"), "{resumed}");
    })
    .await;
}

#[tokio::test]
async fn a_resized_volume_bills_its_new_size_from_the_resize_on() {
    bounded("a_resized_volume_bills_its_new_size_from_the_resize_on", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let body = json!({"name": "grows", "size": 20, "dataCenter": "US-KS-2"});
        let (_, _, volume) = send(&client, &base, &key, "POST", "/v2/network-volumes", Some(body)).await;
        let id = volume["id"].as_str().unwrap().to_string();
        assert_eq!(volume["type"], "STANDARD", "the default tier");
        let (status, ..) =
            send(&client, &base, &key, "PATCH", &format!("/v2/network-volumes/{id}"), Some(json!({"size": 60}))).await;
        assert_eq!(status, 200);
        let rate = |gb: f64| gb * gpucloud_emulator::RUNPOD_VOLUME_USD_PER_GB_MONTH / 730.0;
        let mut rates: Vec<f64> = emulator.charges().iter().filter(|c| c.id == id).map(|c| c.rate).collect();
        rates.sort_by(f64::total_cmp);
        assert_eq!(rates.len(), 2, "the stretch at 20 GB closed, one at 60 GB open: {rates:?}");
        assert!((rates[0] - rate(20.0)).abs() < 1e-12 && (rates[1] - rate(60.0)).abs() < 1e-12, "{rates:?}");
    })
    .await;
}

#[tokio::test]
async fn a_spot_pod_is_interrupted_as_a_provider_would_and_on_demand_never() {
    bounded("a_spot_pod_is_interrupted_as_a_provider_would_and_on_demand_never", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let create = |cloud_id: &str, provider: &str| prime_pod(cloud_id, "H100_80GB", "SXM5", provider, Value::Null);
        let mut spot = Vec::new();
        for _ in 0..3 {
            let (status, _, pod) =
                send(&client, &base, &key, "POST", "/api/v1/pods/", Some(create("dc-h100-spot-1", "datacrunch"))).await;
            assert_eq!((status, pod["isSpot"].as_bool()), (200, Some(true)), "{pod}");
            spot.push(pod["id"].as_str().unwrap().to_string());
        }
        let (_, _, on_demand) =
            send(&client, &base, &key, "POST", "/api/v1/pods/", Some(create("hs-h100-sxm-1", "hyperstack"))).await;
        assert_eq!(on_demand["isSpot"].as_bool(), Some(false), "{on_demand}");
        let interrupt = |id: &str, body: Option<Value>| {
            let path = format!("/_emulator/pods/{id}/interrupt");
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            async move { send(&client, &base, &key, "POST", &path, body).await.0 }
        };
        assert_eq!(interrupt(on_demand["id"].as_str().unwrap(), None).await, 409, "on-demand is never interrupted");
        assert_eq!(interrupt("nosuchpod", None).await, 404);
        assert_eq!(interrupt(&spot[0], Some(json!({"how": "sideways"}))).await, 422);
        let status_of = |id: &str| {
            let path = format!("/api/v1/pods/{id}");
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            async move {
                let (status, _, pod) = send(&client, &base, &key, "GET", &path, None).await;
                (status, pod["status"].as_str().unwrap_or_default().to_string())
            }
        };
        while status_of(&spot[0]).await != (200, "ACTIVE".to_string()) {
            tokio::time::sleep(Duration::from_millis(10)).await; // the 50 ms ready delay
        }
        // No request from the owner: the status changes all the same.
        assert_eq!(interrupt(&spot[0], None).await, 204);
        assert_eq!(status_of(&spot[0]).await, (200, "TERMINATED".to_string()));
        assert_eq!(interrupt(&spot[1], Some(json!({"how": "stopped"}))).await, 204);
        assert_eq!(status_of(&spot[1]).await, (200, "STOPPED".to_string()));
        assert_eq!(interrupt(&spot[2], Some(json!({"how": "gone"}))).await, 204);
        assert_eq!(status_of(&spot[2]).await.0, 404, "gone: the provider no longer knows it");
        assert_eq!(interrupt(&spot[0], None).await, 404, "an ended pod is not interrupted again");
        let live: Vec<_> = emulator.live_pods().into_iter().map(|p| (p.id, p.interrupted)).collect();
        assert_eq!(live.len(), 2, "the stopped spot pod and the on-demand one: {live:?}");
        assert!(emulator.all_pods().iter().filter(|p| p.interrupted).count() == 3);
        assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
    })
    .await;
}

#[tokio::test]
async fn the_preemption_fault_takes_spot_pods_back_after_their_lifetime_unasked() {
    bounded("the_preemption_fault_takes_spot_pods_back_after_their_lifetime_unasked", Duration::from_secs(30), async {
        let emulator = emulator().await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        emulator.set_spot_lifetime(Some(Duration::from_millis(300)));
        let create = |cloud_id: &str, provider: &str| prime_pod(cloud_id, "H100_80GB", "SXM5", provider, Value::Null);
        let started = std::time::Instant::now();
        let (_, _, spot) =
            send(&client, &base, &key, "POST", "/api/v1/pods/", Some(create("dc-h100-spot-1", "datacrunch"))).await;
        let (_, _, on_demand) =
            send(&client, &base, &key, "POST", "/api/v1/pods/", Some(create("hs-h100-sxm-1", "hyperstack"))).await;
        let status_of = |id: &str| {
            let path = format!("/api/v1/pods/{id}");
            let (client, base, key) = (client.clone(), base.clone(), key.clone());
            async move {
                send(&client, &base, &key, "GET", &path, None).await.2["status"].as_str().unwrap_or("").to_string()
            }
        };
        let (spot, on_demand) = (spot["id"].as_str().unwrap(), on_demand["id"].as_str().unwrap());
        while status_of(spot).await != "TERMINATED" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(300), "not before its lifetime: {took:?}");
        assert_eq!(status_of(on_demand).await, "ACTIVE", "on-demand is never taken back");
        assert!(emulator.all_pods().iter().any(|p| p.id == spot && p.interrupted));
        emulator.set_spot_lifetime(None);
    })
    .await;
}
