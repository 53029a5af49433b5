//! PrimeIntellect multi-node offers and pods: listed by `/availability/multi-node` (never by
//! `/availability/gpus`), created with the ordinary `POST /api/v1/pods/` as one pod whose
//! `sshConnection`/`ip` are lists with one entry per node, each node a real SSH host of its own.

mod common;

use common::{bounded, send};
use gpucloud_emulator::{Api, Emulator, EmulatorConfig};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

async fn emulator(ready_delay: Duration) -> Emulator {
    let config = EmulatorConfig { check_responses: true, ready_delay, ..EmulatorConfig::default() };
    Emulator::start(config).await.unwrap()
}

/// A create body for offer `cloud_id` as `prime pods create` sends it, `gpu_count` GPUs in all.
fn create_body(cloud_id: &str, gpu: &str, socket: &str, provider: &str, gpu_count: u32) -> Value {
    json!({"pod": {"name": "multi", "cloudId": cloud_id, "gpuType": gpu, "socket": socket, "gpuCount": gpu_count,
                   "diskSize": null, "vcpus": null, "memory": null, "image": "ubuntu_22_cuda_12", "dataCenterId": null,
                   "maxPrice": null, "country": null, "security": null, "jupyterPassword": null, "autoRestart": false,
                   "customTemplateId": null, "envVars": [{"key": "FOO", "value": "bar"}]},
           "provider": {"type": provider}, "disks": null, "team": null})
}

/// The 2 nodes x 2 RTX 4090 offer.
fn small_body() -> Value {
    create_body("td-4090-4-2n", "RTX4090_24GB", "PCIe", "tensordock", 4)
}

fn cloud_ids(items: &Value) -> Vec<String> {
    items.as_array().unwrap().iter().map(|i| i["cloudId"].as_str().unwrap().to_string()).collect()
}

/// Reads pod `id` until it is `ACTIVE`.
async fn active(client: &reqwest::Client, emulator: &Emulator, id: &str) -> Value {
    let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
    loop {
        let (status, _, pod) = send(client, &base, &key, "GET", &format!("/api/v1/pods/{id}"), None).await;
        assert_eq!(status, 200, "{pod}");
        if pod["status"] == "ACTIVE" {
            return pod;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The port of each `root@127.0.0.1 -p PORT` of a pod's `sshConnection` list.
fn ports(pod: &Value) -> Vec<u16> {
    pod["sshConnection"]
        .as_array()
        .unwrap_or_else(|| panic!("sshConnection is a list: {pod}"))
        .iter()
        .map(|c| c.as_str().unwrap().rsplit(' ').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn multi_node_offers_are_listed_by_multi_node_and_never_by_gpus() {
    bounded("multi_node_offers_are_listed_by_multi_node_and_never_by_gpus", Duration::from_secs(30), async {
        let emulator = emulator(Duration::from_millis(50)).await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let (status, _, multi) = send(&client, &base, &key, "GET", "/api/v1/availability/multi-node", None).await;
        assert_eq!((status, multi["totalCount"].as_u64()), (200, Some(4)), "{multi}");
        let multi_ids = cloud_ids(&multi["items"]);
        for item in multi["items"].as_array().unwrap() {
            assert!(item["interconnect"].is_u64(), "interconnect is an integer (Gbps): {item}");
            assert!(item["interconnectType"].is_string() && item["provisioningTime"].is_u64(), "{item}");
            assert!(item["prices"]["onDemand"].is_number(), "priced as a whole: {item}");
        }
        let (_, _, single) = send(&client, &base, &key, "GET", "/api/v1/availability/gpus?page_size=100", None).await;
        let single_ids = cloud_ids(&single["items"]);
        assert!(multi_ids.iter().all(|id| !single_ids.contains(id)), "{multi_ids:?} in /gpus: {single_ids:?}");
        // The filters of /gpus, gpu_count the whole configuration's GPUs.
        let (_, _, h100) =
            send(&client, &base, &key, "GET", "/api/v1/availability/multi-node?gpu_type=H100_80GB&gpu_count=16", None)
                .await;
        assert_eq!(cloud_ids(&h100["items"]), ["hs-h100-sxm-16-2n"], "{h100}");
        assert_eq!(
            (&h100["items"][0]["interconnect"], &h100["items"][0]["interconnectType"]),
            (&json!(3200), &json!("Infiniband"))
        );
        let (_, _, eu) =
            send(&client, &base, &key, "GET", "/api/v1/availability/multi-node?regions=eu_north", None).await;
        assert_eq!(cloud_ids(&eu["items"]), ["dc-h100-sxm-32-4n"], "{eu}");
        let (_, _, none) =
            send(&client, &base, &key, "GET", "/api/v1/availability/multi-node?gpu_type=H100_80GB&gpu_count=8", None)
                .await;
        assert_eq!(none["totalCount"].as_u64(), Some(0), "8 H100 is a single-node shape: {none}");
        let (_, _, page) =
            send(&client, &base, &key, "GET", "/api/v1/availability/multi-node?page=2&page_size=3", None).await;
        assert_eq!((page["totalCount"].as_u64(), page["items"].as_array().map(Vec::len)), (Some(4), Some(1)));
        // The summary and the legacy shape.
        let (status, _, summary) =
            send(&client, &base, &key, "GET", "/api/v1/availability/multi-node-summary", None).await;
        assert_eq!(status, 200);
        assert_eq!(summary["H100_80GB"]["32"]["cheapest"]["onDemand"], json!(70.08), "{summary}");
        assert!(summary["H100_80GB"].get("1").is_none(), "no single-node price: {summary}");
        let (status, _, legacy) =
            send(&client, &base, &key, "GET", "/api/v1/availability/clusters?gpu_type=A100_80GB", None).await;
        assert_eq!(status, 200);
        assert_eq!(cloud_ids(&legacy["A100_80GB"]), ["lambda-a100-2-2n"], "{legacy}");
        assert!(legacy.get("H100_80GB").is_none(), "{legacy}");
        assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
    })
    .await;
}

#[tokio::test]
async fn a_multi_node_create_is_one_pod_whose_ssh_and_ip_become_lists_of_its_nodes() {
    bounded(
        "a_multi_node_create_is_one_pod_whose_ssh_and_ip_become_lists_of_its_nodes",
        Duration::from_secs(30),
        async {
            let emulator = emulator(Duration::from_millis(300)).await;
            let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
            let client = common::client();
            let body = create_body("lambda-a100-2-2n", "A100_80GB", "SXM4", "lambdalabs", 2);
            let (status, _, created) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(body)).await;
            assert_eq!(status, 200, "{created}");
            let id = created["id"].as_str().unwrap().to_string();
            assert_eq!(created["status"], "PROVISIONING", "{created}");
            assert!(created["clusterId"].as_str().is_some_and(|c| !c.is_empty() && c != id), "{created}");
            assert_eq!((&created["gpuCount"], &created["priceHr"]), (&json!(2), &json!(3.58)), "{created}");
            assert_eq!((&created["sshConnection"], &created["ip"]), (&Value::Null, &json!([null, null])), "{created}");
            let pod = active(&client, &emulator, &id).await;
            eprintln!("a running multi-node pod: {pod}");
            let ports = ports(&pod);
            assert_eq!(ports.len(), 2, "{pod}");
            assert_ne!(ports[0], ports[1], "{pod}");
            assert_eq!(pod["ip"], json!(["127.0.0.1", "127.0.0.1"]), "{pod}");
            assert_eq!(pod["clusterId"], created["clusterId"]);
            assert_eq!(pod["primePortMapping"].as_array().map(Vec::len), Some(2), "{pod}");
            // One pod record, its nodes' ports in node order.
            let live = emulator.live_pods();
            assert_eq!(live.len(), 1);
            assert_eq!((live[0].node_ports.clone(), live[0].ssh_port), (ports.clone(), ports[0]));
            // The status and list answers carry the lists too.
            let (_, _, statuses) =
                send(&client, &base, &key, "GET", &format!("/api/v1/pods/status?pod_ids={id}"), None).await;
            let entry = &statuses["data"][0];
            assert_eq!((&entry["sshConnection"], &entry["ip"]), (&pod["sshConnection"], &pod["ip"]), "{statuses}");
            let (_, _, list) = send(&client, &base, &key, "GET", "/api/v1/pods/", None).await;
            assert_eq!(list["data"][0]["sshConnection"], pod["sshConnection"], "{list}");
            // It bills the whole offer's price, as one pod.
            let charges: Vec<_> = emulator.charges().into_iter().filter(|c| c.id == id).collect();
            assert_eq!(charges.len(), 1);
            assert!((charges[0].rate - 3.58).abs() < 1e-9, "{charges:?}");
            // A single-node pod is as it was: a string, no cluster.
            let single = create_body("lambda-a100-1", "A100_80GB", "SXM4", "lambdalabs", 1);
            let (_, _, single) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(single)).await;
            let single = active(&client, &emulator, single["id"].as_str().unwrap()).await;
            assert!(single["sshConnection"].is_string(), "{single}");
            assert_eq!((&single["ip"], &single["clusterId"]), (&json!(["127.0.0.1"]), &Value::Null), "{single}");
            // Delete ends the pod, every node with it.
            let (status, ..) = send(&client, &base, &key, "DELETE", &format!("/api/v1/pods/{id}"), None).await;
            assert_eq!(status, 200);
            let (_, _, ended) = send(&client, &base, &key, "GET", &format!("/api/v1/pods/{id}"), None).await;
            assert_eq!((&ended["status"], &ended["sshConnection"]), (&json!("TERMINATED"), &Value::Null), "{ended}");
            assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
        },
    )
    .await;
}

#[tokio::test]
async fn an_unknown_cloud_id_still_fails_and_a_multi_node_order_is_checked_against_its_offer() {
    bounded(
        "an_unknown_cloud_id_still_fails_and_a_multi_node_order_is_checked_against_its_offer",
        Duration::from_secs(30),
        async {
            let emulator = emulator(Duration::from_millis(50)).await;
            let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
            let client = common::client();
            let unknown = create_body("no-such-offer", "H100_80GB", "SXM5", "hyperstack", 16);
            let (status, _, answer) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(unknown)).await;
            assert_eq!(status, 422, "{answer}");
            assert!(answer.to_string().contains("pod.cloudId"), "{answer}");
            // gpuCount is the whole configuration's: one node's share is refused.
            let per_node = create_body("hs-h100-sxm-16-2n", "H100_80GB", "SXM5", "hyperstack", 8);
            let (status, _, answer) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(per_node)).await;
            assert_eq!(status, 422, "{answer}");
            // The disk offers are not multi-node.
            let mut with_disk = small_body();
            with_disk["disks"] = json!(["some-disk"]);
            let (status, _, answer) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(with_disk)).await;
            assert_eq!(status, 400, "{answer}");
            assert!(emulator.live_pods().is_empty());
            // The whole 32-GPU order is one pod of four nodes.
            let big = create_body("dc-h100-sxm-32-4n", "H100_80GB", "SXM5", "datacrunch", 32);
            let (status, _, pod) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(big)).await;
            assert_eq!((status, &pod["priceHr"], &pod["ip"]), (200, &json!(70.08), &json!([null, null, null, null])));
            let pod = active(&client, &emulator, pod["id"].as_str().unwrap()).await;
            assert_eq!(ports(&pod).len(), 4, "{pod}");
        },
    )
    .await;
}

fn have(program: &str) -> bool {
    Command::new(program).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A fresh directory with an Ed25519 key pair `key`/`key.pub`, made by `ssh-keygen`.
fn keypair(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("gpucloud-multi-node-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    let made =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"]).arg(&key).status();
    assert!(made.unwrap().success());
    let public = std::fs::read_to_string(dir.join("key.pub")).unwrap();
    (dir, public.trim().to_string())
}

/// `command` on the host at `port` with the system `ssh`, host keys recorded in `dir/known_hosts`.
fn ssh(dir: &Path, port: u16, command: &str) -> Output {
    Command::new("ssh")
        .arg("-i")
        .arg(dir.join("key"))
        .args(["-p", &port.to_string(), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"])
        .args(["-o", "ConnectTimeout=5", "-o", "HashKnownHosts=no"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", dir.join("known_hosts").display()))
        .args(["-o", "IdentitiesOnly=yes", "root@127.0.0.1", command])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

async fn ssh_async(dir: &Path, port: u16, command: &str) -> Output {
    let (dir, command) = (dir.to_path_buf(), command.to_string());
    tokio::task::spawn_blocking(move || ssh(&dir, port, &command)).await.unwrap()
}

/// The host key `known_hosts` recorded for `port`.
fn host_key(dir: &Path, port: u16) -> String {
    let known = std::fs::read_to_string(dir.join("known_hosts")).unwrap();
    let prefix = format!("[127.0.0.1]:{port} ");
    known.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no key for {port}: {known}")).into()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_is_its_own_ssh_host_and_delete_ends_every_node() {
    if !have("ssh") {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    bounded("each_node_is_its_own_ssh_host_and_delete_ends_every_node", Duration::from_secs(60), async {
        let emulator = emulator(Duration::from_millis(100)).await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let (dir, public) = keypair("nodes");
        emulator.add_ssh_key(Api::PrimeIntellect, &public);
        let (status, _, pod) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(small_body())).await;
        assert_eq!(status, 200, "{pod}");
        let id = pod["id"].as_str().unwrap().to_string();
        let pod = active(&client, &emulator, &id).await;
        let ports = ports(&pod);
        assert_eq!(ports.len(), 2);
        // Each node: its own home, the pod's environment and keys, its share of the GPUs, no rank.
        for (node, port) in ports.iter().enumerate() {
            let out = ssh_async(&dir, *port, "echo \"$HOME|$FOO|${NODE_RANK:-none}\"; nvidia-smi | wc -l").await;
            assert_eq!(out.status.code(), Some(0), "node {node}: {}", text(&out));
            let home = emulator.node_dir(Api::PrimeIntellect, &id, node);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
            assert_eq!(lines, [format!("{}|bar|none", home.display()).as_str(), "2"], "node {node}");
        }
        assert_eq!(emulator.node_dir(Api::PrimeIntellect, &id, 0), emulator.pod_dir(Api::PrimeIntellect, &id));
        // Two hosts, two host keys.
        assert_ne!(host_key(&dir, ports[0]), host_key(&dir, ports[1]));
        // A file written on node 1 is not on node 0.
        let out = ssh_async(&dir, ports[1], "echo one > only-on-1").await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(emulator.node_dir(Api::PrimeIntellect, &id, 1).join("only-on-1").exists());
        let out = ssh_async(&dir, ports[0], "test -e only-on-1").await;
        assert_eq!(out.status.code(), Some(1), "node 0 has no only-on-1: {}", text(&out));
        // A command running on node 1 is cut, and killed, by the pod's delete.
        let marker = dir.join("marker");
        let running = {
            let (dir, port, command) = (dir.clone(), ports[1], format!("sleep 4; touch '{}'", marker.display()));
            tokio::task::spawn_blocking(move || ssh(&dir, port, &command))
        };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (status, ..) = send(&client, &base, &key, "DELETE", &format!("/api/v1/pods/{id}"), None).await;
        assert_eq!(status, 200);
        let out = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect(
                "each_node_is_its_own_ssh_host_and_delete_ends_every_node: ssh still connected 20 s after the delete",
            )
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "the connection was cut: {}", text(&out));
        // Every node stops answering, and their directories go.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (node, port) in ports.iter().enumerate() {
            let out = ssh_async(&dir, *port, "true").await;
            assert_eq!(out.status.code(), Some(255), "node {node} still answers: {}", text(&out));
            assert!(!emulator.node_dir(Api::PrimeIntellect, &id, node).exists(), "node {node}'s directory");
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!marker.exists(), "node 1's command was killed with the pod");
        assert!(emulator.response_checks().violations.is_empty(), "{:?}", emulator.response_checks().violations);
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_multi_node_pod_cuts_and_silences_every_node() {
    if !have("ssh") {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    bounded("a_failed_multi_node_pod_cuts_and_silences_every_node", Duration::from_secs(60), async {
        let emulator = emulator(Duration::from_millis(100)).await;
        let (base, key) = (emulator.base_url(), emulator.api_key().to_string());
        let client = common::client();
        let (dir, public) = keypair("fail");
        emulator.add_ssh_key(Api::PrimeIntellect, &public);
        let (_, _, pod) = send(&client, &base, &key, "POST", "/api/v1/pods/", Some(small_body())).await;
        let id = pod["id"].as_str().unwrap().to_string();
        let ports = ports(&active(&client, &emulator, &id).await);
        let marker = dir.join("marker");
        let running = {
            let (dir, port, command) = (dir.clone(), ports[1], format!("sleep 4; touch '{}'", marker.display()));
            tokio::task::spawn_blocking(move || ssh(&dir, port, &command))
        };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(emulator.fail_pod(Api::PrimeIntellect, &id));
        let out = tokio::time::timeout(Duration::from_secs(20), running)
            .await
            .expect("a_failed_multi_node_pod_cuts_and_silences_every_node: ssh still connected 20 s after the failure")
            .unwrap();
        assert_eq!(out.status.code(), Some(255), "{}", text(&out));
        let (_, _, failed) = send(&client, &base, &key, "GET", &format!("/api/v1/pods/{id}"), None).await;
        assert_eq!((&failed["status"], &failed["sshConnection"]), (&json!("ERROR"), &Value::Null), "{failed}");
        for (node, port) in ports.iter().enumerate() {
            let out = ssh_async(&dir, *port, "true").await;
            assert_eq!(out.status.code(), Some(255), "node {node} still answers: {}", text(&out));
        }
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!marker.exists(), "node 1's command was killed with the pod");
        let _ = std::fs::remove_dir_all(&dir);
    })
    .await;
}
