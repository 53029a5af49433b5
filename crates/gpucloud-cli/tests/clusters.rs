//! `gpucloud up --nodes N` (RunPod clusters), `ls` showing clusters with their members, `down`
//! on a cluster id or on a member id deleting the whole cluster (and saying so), and the reaper
//! deleting a cluster whose lease is over; each command bounded by the binary's timeout.

use assert_cmd::Command;
use gpucloud_emulator::{Emulator, EmulatorConfig};
use predicates::prelude::*;
use serde_json::Value;
use std::time::Duration;

const ENV: [&str; 6] = [
    "PRIME_API_KEY",
    "RUNPOD_API_KEY",
    "PRIME_API_BASE_URL",
    "RUNPOD_API_BASE_URL",
    "GPUCLOUD_EMULATOR",
    "PRIME_TEAM_ID",
];

/// A public key whose private half does not exist: nothing logs in, nodes just answer SSH.
const ACCOUNT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpHc2VtdWxhdG9yLXRlc3Qta2V5LW5vdC1yZWFs tests@gpucloud";

fn bare() -> Command {
    let mut cmd = Command::cargo_bin("gpucloud").unwrap();
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd.timeout(Duration::from_secs(60));
    cmd
}

fn against(emulator: &Emulator, args: &[&str]) -> Command {
    let mut cmd = bare();
    cmd.env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url())
        .args(args);
    cmd
}

async fn emulator() -> Emulator {
    let config = EmulatorConfig { ready_delay: Duration::from_millis(200), ..EmulatorConfig::default() };
    let emulator = Emulator::start(config).await.unwrap();
    emulator.add_ssh_key(gpucloud_emulator::Api::RunPod, ACCOUNT_KEY);
    emulator
}

/// Runs a command off the async runtime (the emulator lives on it).
async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

fn json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn up_cluster(emulator: &Emulator, nodes: &str, ttl: &str) -> Command {
    against(
        emulator,
        &[
            "up",
            "--gpu",
            "H100_80GB",
            "--count",
            "2",
            "--nodes",
            nodes,
            "--name",
            "dist",
            "--ttl",
            ttl,
            "--timeout",
            "30",
            "--json",
        ],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn up_nodes_ls_and_down_of_a_member_delete_the_whole_cluster() {
    let emulator = emulator().await;
    let cluster = json(&run(up_cluster(&emulator, "3", "1h")).await);
    let id = cluster["id"].as_str().unwrap().to_string();
    let nodes = cluster["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    let ranks: Vec<u64> = nodes.iter().map(|n| n["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, vec![0, 1, 2]);
    assert!(nodes.iter().all(|n| n["private_address"].is_string() && n["ssh"].is_string()), "{cluster}");
    assert!(cluster["lease_expires_at"].is_string());
    assert_eq!(emulator.live_pods().len(), 3);

    // `ls --json`: the members, as pods, each naming its cluster and rank.
    let pods = json(&run(against(&emulator, &["ls", "--json"])).await);
    let members: Vec<&Value> = pods.as_array().unwrap().iter().filter(|p| p["cluster"]["id"] == id.as_str()).collect();
    assert_eq!(members.len(), 3, "{pods}");
    // `ls`: the cluster and its members.
    let table = run(against(&emulator, &["ls"])).await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains(&id) && text.contains("rank 2"), "{text}");

    // `down` of a member deletes the cluster, and says so.
    let member = nodes[1]["pod"].as_str().unwrap().to_string();
    let output = run(against(&emulator, &["down", &member])).await;
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(said.contains("deleting the whole cluster") && said.contains(&format!("deleted cluster {id}")), "{said}");
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_down_of_a_cluster_id() {
    let emulator = emulator().await;
    let cluster = json(&run(up_cluster(&emulator, "2", "1h")).await);
    let id = cluster["id"].as_str().unwrap();
    // `get` of a cluster id shows the cluster.
    let shown = json(&run(against(&emulator, &["get", id, "--json"])).await);
    assert_eq!((shown["id"].as_str(), shown["nodes"].as_array().map(Vec::len)), (Some(id), Some(2)));
    let output = run(against(&emulator, &["down", id])).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("deleted cluster {id} and its 2 nodes")));
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_reaper_deletes_a_cluster_whose_lease_is_over() {
    let emulator = emulator().await;
    let cluster = json(&run(up_cluster(&emulator, "2", "10s")).await);
    let id = cluster["id"].as_str().unwrap();
    let expiry: chrono::DateTime<chrono::Utc> = cluster["lease_expires_at"].as_str().unwrap().parse().unwrap();
    // A sweep before the lease ends leaves it.
    let early = json(&run(against(&emulator, &["reap", "--json"])).await);
    if chrono::Utc::now() < expiry {
        assert_eq!(early["reaped_clusters"].as_array().unwrap().len(), 0, "{early}");
    }
    let left = (expiry - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_secs(1)).await;
    let report = json(&run(against(&emulator, &["reap", "--json"])).await);
    let reaped = report["reaped_clusters"].as_array().unwrap();
    assert_eq!(reaped.len(), 1, "{report}");
    assert_eq!(reaped[0]["id"], id);
    assert_eq!(reaped[0]["reason"], "lease_expired");
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());
}

#[test]
fn a_node_count_outside_2_to_250_is_refused_naming_the_flag() {
    for nodes in ["1", "251"] {
        bare()
            .args(["up", "--gpu", "H100", "--nodes", nodes])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--nodes").and(predicate::str::contains("2..=250")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_nodes_lists_cluster_shapes_by_price_per_gpu_hour() {
    let emulator = emulator().await;
    let offers = json(
        &run(against(&emulator, &["offers", "--gpu", "H100_80GB", "--count", "8", "--nodes", "2", "--json"])).await,
    );
    let offers = offers.as_array().unwrap();
    assert!(!offers.is_empty());
    for offer in offers {
        assert_eq!(
            (offer["nodes"].as_u64(), offer["gpus_per_node"].as_u64(), offer["total_gpus"].as_u64()),
            (Some(2), Some(8), Some(16))
        );
        let (total, per_gpu) =
            (offer["price_per_hour"].as_f64().unwrap(), offer["price_per_gpu_hour"].as_f64().unwrap());
        assert!((total - per_gpu * 16.0).abs() < 1e-6, "{offer}");
    }
    let per_gpu: Vec<f64> = offers.iter().map(|o| o["price_per_gpu_hour"].as_f64().unwrap()).collect();
    assert!(per_gpu.windows(2).all(|w| w[0] <= w[1]), "ranked by price per GPU-hour: {per_gpu:?}");
    assert!(offers.iter().any(|o| o["provider"] == "runpod" && o["launchable"] == true));
    // No requests create anything.
    assert_eq!(emulator.stats().creates, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_total_gpus_lists_single_and_multi_node_shapes_in_one_ranking() {
    let emulator = emulator().await;
    let shapes = json(&run(against(&emulator, &["offers", "--gpu", "H100_80GB", "--total-gpus", "8", "--json"])).await);
    let shapes = shapes.as_array().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for shape in shapes {
        let (nodes, per_node) = (shape["nodes"].as_u64().unwrap(), shape["gpus_per_node"].as_u64().unwrap());
        assert_eq!(nodes * per_node, 8, "every shape holds 8 GPUs: {shape}");
        seen.insert(nodes);
    }
    // One node of 8 (PrimeIntellect's hs-h100-sxm-8) beside clusters of 2 and more nodes.
    assert!(seen.contains(&1) && seen.iter().any(|n| *n >= 2), "shapes by node count: {seen:?}");
    let usd: Vec<f64> =
        shapes.iter().filter(|s| s["currency"] == "USD").map(|s| s["price_per_gpu_hour"].as_f64().unwrap()).collect();
    assert!(usd.windows(2).all(|w| w[0] <= w[1]), "ranked by price per GPU-hour: {usd:?}");
    // Bad input is refused naming the flag, before any request.
    for bad in
        [&["--total-gpus", "0"][..], &["--total-gpus", "8", "--nodes", "2"], &["--total-gpus", "8", "--count", "2"]]
    {
        let mut args = vec!["offers", "--gpu", "H100_80GB"];
        args.extend_from_slice(bad);
        let output = run(against(&emulator, &args)).await;
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--total-gpus"), "{bad:?}");
    }
    assert_eq!(emulator.stats().creates, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_nodes_refuses_what_it_does_not_do_yet_before_creating_anything() {
    let emulator = emulator().await;
    for flag in [&["--detach"][..], &["--recover", "1"], &["--checkpoint-dir", "ckpt"]] {
        let mut args = vec!["run", "--gpu", "H100_80GB", "--nodes", "2"];
        args.extend_from_slice(flag);
        args.extend_from_slice(&["--", "true"]);
        let output = run(against(&emulator, &args)).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag:?}: {stderr}");
        assert!(stderr.contains(flag[0]) && stderr.contains("--nodes"), "{flag:?}: {stderr}");
    }
    // The cluster-only flags without --nodes.
    for flag in [
        &["--download-from", "all"][..],
        &["--log-dir", "logs"],
        &["--on-member-failure", "recreate"],
        &["--recreate-max", "2"],
    ] {
        let mut args = vec!["run", "--gpu", "H100_80GB"];
        args.extend_from_slice(flag);
        args.extend_from_slice(&["--", "true"]);
        let output = run(against(&emulator, &args)).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flag:?}: {stderr}");
        assert!(stderr.contains(flag[0]) && stderr.contains("--nodes"), "{flag:?}: {stderr}");
    }
    // --recreate-max without the recreate policy.
    let args = ["run", "--gpu", "H100_80GB", "--nodes", "2", "--recreate-max", "2", "--", "true"];
    let output = run(against(&emulator, &args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--on-member-failure recreate"), "{stderr}");
    assert_eq!(emulator.stats().creates, 0);
    assert!(emulator.clusters().is_empty());
}
