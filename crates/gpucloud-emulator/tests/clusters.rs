//! RunPod clusters (`/v2/clusters`) as the document describes them: create `201` in one data
//! center with `podCount` 2..250, `templateId` exclusive with the container fields, members
//! hidden from `GET /v2/pods` unless `includeClusterPods=true`, `409` on member PATCH, DELETE
//! and actions, delete `204` ending every member, members carrying RunPod's documented cluster
//! environment, and the partial-placement fault. Every answer is checked against the document's
//! response schemas (`check_responses`).

mod common;

use gpucloud_emulator::{Emulator, EmulatorConfig, FaultConfig, FaultKind};
use serde_json::{Value, json};
use std::time::Duration;

const H100: &str = "NVIDIA H100 80GB HBM3";

async fn emulator(faults: FaultConfig) -> Emulator {
    let config = EmulatorConfig {
        check_responses: true,
        ready_delay: Duration::from_millis(100),
        faults,
        ..EmulatorConfig::default()
    };
    Emulator::start(config).await.unwrap()
}

fn create_body(name: &str, pods: i64) -> Value {
    json!({"name": name, "type": "TRAINING",
           "compute": {"gpuTypeId": H100, "gpuCountPerPod": 8, "podCount": pods},
           "image": "runpod/pytorch:latest", "ports": ["22/tcp"], "env": {"MY_VAR": "x"},
           "dataCenterIds": ["EU-RO-1"], "startSsh": true})
}

fn assert_documented(emulator: &Emulator) {
    let checks = emulator.response_checks();
    assert!(checks.violations.is_empty(), "answers off the document: {:?}", checks.violations);
}

#[tokio::test]
async fn a_cluster_is_created_listed_renamed_and_deleted_as_documented() {
    common::bounded("a_cluster_is_created_listed_renamed_and_deleted_as_documented", Duration::from_secs(30), async {
        let emulator = emulator(FaultConfig::none()).await;
        let (base, key, client) = (emulator.base_url(), emulator.api_key().to_string(), common::client());
        let (status, _, cluster) =
            common::send(&client, &base, &key, "POST", "/v2/clusters", Some(create_body("train", 3))).await;
        assert_eq!(status, 201, "{cluster}");
        let id = cluster["id"].as_str().unwrap().to_string();
        assert_eq!(cluster["dataCenterId"], "EU-RO-1", "one data center, the preferred one that has the GPU");
        assert_eq!(cluster["pods"]["total"], 3);
        assert_eq!(cluster["compute"]["podCount"], 3);
        let members = emulator.live_pods();
        assert_eq!(members.len(), 3);
        assert!(members.iter().all(|p| p.data_center == "EU-RO-1"));

        // Hidden from /v2/pods by default; listed with includeClusterPods=true.
        let (_, _, default) = common::send(&client, &base, &key, "GET", "/v2/pods", None).await;
        assert_eq!(default["pods"].as_array().unwrap().len(), 0, "members are not in GET /v2/pods: {default}");
        let (_, _, all) = common::send(&client, &base, &key, "GET", "/v2/pods?includeClusterPods=true", None).await;
        let listed = all["pods"].as_array().unwrap();
        assert_eq!(listed.len(), 3);
        assert!(listed.iter().all(|p| p["cluster"]["id"] == id.as_str()));

        // Readiness fields: after the ready delay every member runs; the primary has an endpoint.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, read) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}"), None).await;
        assert_eq!(status, 200);
        assert_eq!(read["pods"]["byStatus"], json!({"RUNNING": 3}));
        assert!(read["primary"]["sshEndpoint"].as_str().is_some_and(|e| e.starts_with("127.0.0.1:")), "{read}");
        let (_, _, pods) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}/pods"), None).await;
        let mut ranks: Vec<i64> =
            pods["pods"].as_array().unwrap().iter().map(|p| p["cluster"]["rank"].as_i64().unwrap()).collect();
        ranks.sort_unstable();
        assert_eq!(ranks, vec![0, 1, 2]);
        assert_eq!(
            read["primary"]["podId"],
            pods["pods"].as_array().unwrap().iter().find(|p| p["cluster"]["rank"] == 0).unwrap()["id"]
        );

        // A member cannot be changed through the pod endpoints.
        let member = members[1].id.clone();
        for (method, path, body) in [
            ("PATCH", format!("/v2/pods/{member}"), Some(json!({"name": "x"}))),
            ("DELETE", format!("/v2/pods/{member}"), None),
            ("POST", format!("/v2/pods/{member}/action"), Some(json!({"action": "stop"}))),
        ] {
            let (status, _, answer) = common::send(&client, &base, &key, method, &path, body).await;
            assert_eq!(status, 409, "{method} {path}: {answer}");
            assert!(answer["detail"].as_str().unwrap().contains(&id), "the 409 names the cluster: {answer}");
        }

        let (status, _, renamed) =
            common::send(&client, &base, &key, "PATCH", &format!("/v2/clusters/{id}"), Some(json!({"name": "b"})))
                .await;
        assert_eq!((status, renamed["name"].as_str()), (200, Some("b")));
        let (_, _, list) = common::send(&client, &base, &key, "GET", "/v2/clusters", None).await;
        assert_eq!(list["clusters"].as_array().unwrap().len(), 1);

        let (status, ..) = common::send(&client, &base, &key, "DELETE", &format!("/v2/clusters/{id}"), None).await;
        assert_eq!(status, 204);
        assert!(emulator.live_pods().is_empty(), "the delete ends every member");
        let (status, ..) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}"), None).await;
        assert_eq!(status, 404);
        assert_documented(&emulator);
    })
    .await;
}

#[tokio::test]
async fn members_carry_the_documented_environment() {
    common::bounded("members_carry_the_documented_environment", Duration::from_secs(30), async {
        let emulator = emulator(FaultConfig::none()).await;
        let (base, key, client) = (emulator.base_url(), emulator.api_key().to_string(), common::client());
        let (status, _, cluster) =
            common::send(&client, &base, &key, "POST", "/v2/clusters", Some(create_body("env", 4))).await;
        assert_eq!(status, 201);
        let members = emulator.live_pods();
        let mut ranks = Vec::new();
        for pod in &members {
            let member = pod.cluster.as_ref().expect("a member");
            assert_eq!(member.cluster_id, cluster["id"].as_str().unwrap());
            let rank = member.rank.expect("a rank");
            ranks.push(rank);
            let env = &pod.env;
            assert_eq!(env["NODE_RANK"], rank.to_string());
            assert_eq!(env["NUM_NODES"], "4");
            assert_eq!(env["NUM_TRAINERS"], "8");
            assert_eq!(env["WORLD_SIZE"], "32");
            assert_eq!(env["MASTER_ADDR"], "10.65.0.2");
            assert_eq!(env["PRIMARY_ADDR"], env["MASTER_ADDR"]);
            assert_eq!(env["MASTER_PORT"], env["PRIMARY_PORT"]);
            assert_eq!(env["HOST_NODE_ADDR"], format!("{}:{}", env["MASTER_ADDR"], env["MASTER_PORT"]));
            assert_eq!(Some(&env["NODE_ADDR"]), member.ip.as_ref(), "NODE_ADDR is the private address");
            assert_eq!(env["MY_VAR"], "x", "the request's env is kept");
            assert!(pod.ssh_port > 0, "each member is an SSH host");
        }
        ranks.sort_unstable();
        assert_eq!(ranks, vec![0, 1, 2, 3]);
        assert_documented(&emulator);
    })
    .await;
}

#[tokio::test]
async fn creates_breaking_the_documented_rules_are_refused() {
    common::bounded("creates_breaking_the_documented_rules_are_refused", Duration::from_secs(30), async {
        let emulator = emulator(FaultConfig::none()).await;
        let (base, key, client) = (emulator.base_url(), emulator.api_key().to_string(), common::client());
        for pods in [1, 251] {
            let (status, _, answer) =
                common::send(&client, &base, &key, "POST", "/v2/clusters", Some(create_body("bad", pods))).await;
            assert!(status == 400 || status == 422, "podCount {pods}: {status} {answer}");
        }
        let mut with_template = create_body("tpl", 2);
        with_template["templateId"] = json!("runpod-torch-v240");
        let (status, _, answer) = common::send(&client, &base, &key, "POST", "/v2/clusters", Some(with_template)).await;
        assert_eq!(status, 400, "templateId with container fields: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains("image"), "{answer}");
        let mut too_many = create_body("big", 2);
        too_many["compute"]["gpuCountPerPod"] = json!(9);
        let (status, ..) = common::send(&client, &base, &key, "POST", "/v2/clusters", Some(too_many)).await;
        assert_eq!(status, 400);
        let mut nowhere = create_body("nowhere", 2);
        nowhere["dataCenterIds"] = json!(["US-KS-2"]);
        let (status, ..) = common::send(&client, &base, &key, "POST", "/v2/clusters", Some(nowhere)).await;
        assert_eq!(status, 400, "no preferred data center has the GPU");
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "nothing was created");
        assert_documented(&emulator);
    })
    .await;
}

#[tokio::test]
async fn partial_placement_leaves_nodes_provisioning_until_the_delete() {
    common::bounded("partial_placement_leaves_nodes_provisioning_until_the_delete", Duration::from_secs(30), async {
        let faults = FaultConfig {
            rate: 1.0,
            kinds: vec![FaultKind::PartialPlacement],
            creates_only: true,
            unplaced_nodes: 2,
            ..FaultConfig::default()
        };
        let emulator = emulator(faults).await;
        let (base, key, client) = (emulator.base_url(), emulator.api_key().to_string(), common::client());
        let (status, _, cluster) =
            common::send(&client, &base, &key, "POST", "/v2/clusters", Some(create_body("partial", 4))).await;
        assert_eq!(status, 201);
        let id = cluster["id"].as_str().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, _, read) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}"), None).await;
        assert_eq!(read["pods"]["byStatus"], json!({"RUNNING": 2, "PROVISIONING": 2}), "{read}");
        let (_, _, pods) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}/pods"), None).await;
        let unranked = pods["pods"].as_array().unwrap().iter().filter(|p| p["cluster"]["rank"].is_null()).count();
        assert_eq!(unranked, 2, "nodes never placed have no rank");
        let (status, ..) = common::send(&client, &base, &key, "DELETE", &format!("/v2/clusters/{id}"), None).await;
        assert_eq!(status, 204);
        assert!(emulator.live_pods().is_empty());
        assert_eq!(emulator.stats().faults.get("partial-placement"), Some(&1));
        assert_documented(&emulator);
    })
    .await;
}

#[tokio::test]
async fn members_bill_to_their_cluster() {
    common::bounded("members_bill_to_their_cluster", Duration::from_secs(30), async {
        let emulator = emulator(FaultConfig::none()).await;
        let (base, key, client) = (emulator.base_url(), emulator.api_key().to_string(), common::client());
        let (_, _, cluster) =
            common::send(&client, &base, &key, "POST", "/v2/clusters", Some(create_body("billed", 2))).await;
        let id = cluster["id"].as_str().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (status, _, billing) =
            common::send(&client, &base, &key, "GET", "/v2/billing/clusters?bucketSize=hour&lastN=1", None).await;
        assert_eq!(status, 200, "{billing}");
        let records = billing["records"].as_array().unwrap();
        assert_eq!(records.len(), 1, "{billing}");
        assert_eq!(records[0]["clusterId"], id);
        assert!(records[0]["gpuAmount"].as_f64().unwrap() > 0.0);
        assert_eq!(billing["metadata"]["uniqueClusterCount"], 1);
        let (_, _, pods) =
            common::send(&client, &base, &key, "GET", "/v2/billing/pods?bucketSize=hour&lastN=1", None).await;
        assert!(pods["records"].as_array().unwrap().is_empty(), "members are not billed as pods: {pods}");
        let (_, _, account) =
            common::send(&client, &base, &key, "GET", "/v2/billing?bucketSize=hour&lastN=1", None).await;
        assert!(account["records"][0]["clusterGpuAmount"].as_f64().unwrap() > 0.0, "{account}");
        common::send(&client, &base, &key, "DELETE", &format!("/v2/clusters/{id}"), None).await;
        assert_documented(&emulator);
    })
    .await;
}

#[tokio::test]
async fn the_member_fault_takes_down_the_highest_ranked_member_of_each_cluster_once() {
    common::bounded("the_member_fault_takes_down_the_highest_ranked_member", Duration::from_secs(30), async {
        let emulator = emulator(FaultConfig::none()).await;
        let (base, key, client) = (emulator.base_url(), emulator.api_key().to_string(), common::client());
        let (status, _, cluster) =
            common::send(&client, &base, &key, "POST", "/v2/clusters", Some(create_body("dies", 3))).await;
        assert_eq!(status, 201, "{cluster}");
        let id = cluster["id"].as_str().unwrap().to_string();
        let by_status = || async {
            let (_, _, read) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}"), None).await;
            read["pods"]["byStatus"].clone()
        };
        // Up a while with the fault off: nothing happens.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(by_status().await, json!({"RUNNING": 3}));

        emulator.set_member_lifetime(Some(Duration::from_millis(500)));
        let started = std::time::Instant::now();
        loop {
            let read = by_status().await;
            if read != json!({"RUNNING": 3}) {
                assert_eq!(read, json!({"RUNNING": 2, "ERROR": 1}), "one member down, the others up");
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "no member failed");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, _, pods) = common::send(&client, &base, &key, "GET", &format!("/v2/clusters/{id}/pods"), None).await;
        let failed: Vec<&Value> = pods["pods"].as_array().unwrap().iter().filter(|p| p["status"] == "ERROR").collect();
        assert_eq!(failed.len(), 1, "{pods}");
        assert_eq!(failed[0]["cluster"]["rank"], 2, "the highest rank: {pods}");
        // (Its SSH connections cut and processes killed: the cluster job tests of the gpucloud
        // crate see it; these members have no registered key, so no SSH at all.)
        for pod in emulator.live_pods() {
            let rank = pod.cluster.as_ref().and_then(|m| m.rank);
            assert_eq!(pod.failed, rank == Some(2), "rank {rank:?}");
        }
        // Only one per cluster: well past the lifetime again, still one down.
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(by_status().await, json!({"RUNNING": 2, "ERROR": 1}));
        emulator.set_member_lifetime(None);
        let (status, ..) = common::send(&client, &base, &key, "DELETE", &format!("/v2/clusters/{id}"), None).await;
        assert_eq!(status, 204);
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());
        assert_documented(&emulator);
    })
    .await;
}
