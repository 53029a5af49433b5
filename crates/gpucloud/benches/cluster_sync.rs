//! Syncing a workdir to every node of a cluster, as [`gpucloud::Fleet::run_on_cluster`] does
//! (each node's [`gpucloud::remote::sync::sync`] over its own session, all at once), against
//! syncing it to one node, side by side in one run, against an emulated 8-node RunPod cluster on
//! loopback. Each round syncs into fresh remote directories (a first sync): one node, then all 8
//! at once; three rounds, medians printed. The goal: 8 nodes in at most 2x one node's time.
//!
//! `cargo bench -p gpucloud --features remote --bench cluster_sync` (1,000 files, 50 MB; sizes
//! from `GPUCLOUD_CLUSTER_SYNC_BENCH_FILES` and `GPUCLOUD_CLUSTER_SYNC_BENCH_MB`, nodes from
//! `GPUCLOUD_CLUSTER_SYNC_BENCH_NODES`). Figures in BENCHMARKS.md. A one-shot measurement rather
//! than a criterion group: one sample is seconds of disk and SSH work.

use gpucloud::remote::{RemoteSession, SessionOptions};
use gpucloud::{ClusterRequest, Fleet, RunPod, SecretString};
use gpucloud_emulator::{Emulator, EmulatorConfig};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn size(variable: &str, default: usize) -> usize {
    std::env::var(variable).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `files` files over 100 folders, `mb` MB in all, of bytes that do not compress.
fn workdir(dir: &Path, files: usize, mb: usize) {
    let each = mb * 1_000_000 / files.max(1);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..files {
        let folder = dir.join(format!("d{:03}", i % 100));
        std::fs::create_dir_all(&folder).unwrap();
        let bytes: Vec<u8> = (0..each)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        std::fs::write(folder.join(format!("f{i:05}.bin")), bytes).unwrap();
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only when benched.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let files = size("GPUCLOUD_CLUSTER_SYNC_BENCH_FILES", 1_000);
    let mb = size("GPUCLOUD_CLUSTER_SYNC_BENCH_MB", 50);
    let nodes = size("GPUCLOUD_CLUSTER_SYNC_BENCH_NODES", 8) as u32;
    let scratch = std::env::temp_dir().join(format!("gpucloud-bench-cluster-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let key = scratch.join("key");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: needs ssh-keygen and ssh");
        return;
    }
    let public = std::fs::read_to_string(scratch.join("key.pub")).unwrap();
    // SAFETY: set before the runtime and its threads start; nothing else reads the environment yet.
    unsafe { std::env::set_var(gpucloud::remote::STATE_DIR_ENV, scratch.join("state")) };
    let work = scratch.join("work");
    workdir(&work, files, mb);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emulator = rt
        .block_on(Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }))
        .unwrap();
    let runpod = RunPod::new(SecretString::from(emulator.api_key().to_string()), Some(&emulator.base_url()))
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));
    let fleet = Fleet::new().with(runpod);
    let options = SessionOptions { identity_file: Some(key.clone()), ..SessionOptions::default() };
    let request = ClusterRequest {
        ssh_public_key: Some(public.trim().to_string()),
        session: Some(options.clone()),
        ready_timeout: Duration::from_secs(120),
        ..ClusterRequest::new("H100_80GB", 1, nodes, "bench")
    };
    let cluster = rt.block_on(fleet.launch_cluster(&request)).unwrap();
    let sessions: Vec<RemoteSession> = rt
        .block_on(futures::future::try_join_all(
            cluster.nodes.iter().map(|node| RemoteSession::connect(&node.pod, &options)),
        ))
        .unwrap();

    let (mut one, mut all, mut method) = (Vec::new(), Vec::new(), None);
    for round in 0..3 {
        let started = Instant::now();
        let report = rt.block_on(gpucloud::remote::sync::sync(&sessions[0], &work, &format!("one-{round}"))).unwrap();
        one.push(started.elapsed());
        method = Some(report.method);
        assert_eq!(report.sent.len(), files);

        let started = Instant::now();
        let remote = format!("all-{round}");
        let reports = rt
            .block_on(futures::future::try_join_all(
                sessions.iter().map(|session| gpucloud::remote::sync::sync(session, &work, &remote)),
            ))
            .unwrap();
        all.push(started.elapsed());
        assert!(reports.iter().all(|r| r.sent.len() == files));
    }
    let (a, b) = (median(one.clone()), median(all.clone()));
    println!("sync of {files} files, {mb} MB, median of 3 (method {method:?}):");
    println!("  1 node: {a:.2?} (rounds {one:.2?})");
    println!("  {nodes} nodes at once: {b:.2?} (rounds {all:.2?})");
    println!("  ratio {:.2} (goal: at most 2.00)", b.as_secs_f64() / a.as_secs_f64());
    rt.block_on(async {
        for session in sessions {
            let _ = session.close().await;
        }
        let _ = fleet.delete_cluster(&cluster.id).await;
    });
    let _ = std::fs::remove_dir_all(&scratch);
}
