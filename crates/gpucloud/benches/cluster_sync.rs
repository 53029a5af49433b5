//! Syncing a workdir to every node of a cluster against syncing it to one node, side by side in
//! one run, against an emulated 8-node RunPod cluster: each round syncs into fresh remote
//! directories (a first sync) one node; then all 8 at once, each from here (each node's
//! [`gpucloud::remote::sync::sync`] over its own session); then as
//! [`gpucloud::Fleet::run_on_cluster`] does it from 3 nodes on: rank 0 synced from here and
//! relayed to the others ([`gpucloud::remote::relay`]). Three rounds, medians printed. The issue's
//! goal: 8 nodes in at most 2x one node's time.
//!
//! `cargo bench -p gpucloud --features remote --bench cluster_sync` (1,000 files, 50 MB; sizes
//! from `GPUCLOUD_CLUSTER_SYNC_BENCH_FILES` and `GPUCLOUD_CLUSTER_SYNC_BENCH_MB`, nodes from
//! `GPUCLOUD_CLUSTER_SYNC_BENCH_NODES`). With `GPUCLOUD_CLUSTER_SYNC_BENCH_UPLINK_MBIT=N`, this
//! machine's sessions go through a modelled uplink of N Mbit/s shared by all of them ([`Uplink`]),
//! while the nodes reach each other directly, as on a real cluster. Figures in BENCHMARKS.md. A
//! one-shot measurement rather than a criterion group: one sample is seconds of disk and SSH work.

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

/// A modelled uplink: every byte this machine sends to any node, on any connection, passes one
/// token bucket of `rate` bytes per second (what a laptop's or an office's upstream link does);
/// what comes back is not limited, nor is anything between nodes.
struct Uplink {
    rate: u64,
    state: std::sync::Mutex<(f64, Instant)>,
}

impl Uplink {
    fn new(rate: u64) -> Self {
        Self { rate, state: std::sync::Mutex::new((0.0, Instant::now())) }
    }

    /// Waits until `n` bytes may go.
    async fn take(&self, n: usize) {
        loop {
            let wait = {
                let mut state = self.state.lock().unwrap();
                let now = Instant::now();
                // At most 10 ms of credit (a burst, not a second's worth), and never less than a
                // read: a timer's millisecond would otherwise cap a fast link.
                let cap = (self.rate as f64 / 100.0).max(65_536.0);
                state.0 = (state.0 + now.duration_since(state.1).as_secs_f64() * self.rate as f64).min(cap);
                state.1 = now;
                if state.0 >= n as f64 {
                    state.0 -= n as f64;
                    return;
                }
                Duration::from_secs_f64((n as f64 - state.0) / self.rate as f64)
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// A local port that forwards to `127.0.0.1:port`, this machine's side through the bucket.
    async fn proxy(self: std::sync::Arc<Self>, port: u16) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let uplink = self.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (mut client_in, mut client_out) = client.into_split();
                    let (mut server_in, mut server_out) = server.into_split();
                    let up = async {
                        let mut buffer = vec![0u8; 16_384];
                        loop {
                            let n = match tokio::io::AsyncReadExt::read(&mut client_in, &mut buffer).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            uplink.take(n).await;
                            if tokio::io::AsyncWriteExt::write_all(&mut server_out, &buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut server_out).await;
                    };
                    let down = async {
                        let _ = tokio::io::copy(&mut server_in, &mut client_out).await;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut client_out).await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        local
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
    let uplink_mbit = std::env::var("GPUCLOUD_CLUSTER_SYNC_BENCH_UPLINK_MBIT").ok().and_then(|v| v.parse::<u64>().ok());
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
    // The nodes' own endpoints: what rank 0 relays to (the cluster's network).
    let direct: Vec<RemoteSession> = rt
        .block_on(futures::future::try_join_all(
            cluster.nodes.iter().map(|node| RemoteSession::connect(&node.pod, &options)),
        ))
        .unwrap();
    // This machine's sessions: through the modelled uplink when one is set. Connected after the
    // direct ones, then the direct endpoints pinned again for the relay's host keys.
    let through_uplink: Vec<RemoteSession> = match uplink_mbit {
        None => Vec::new(),
        Some(mbit) => {
            let bucket = std::sync::Arc::new(Uplink::new(mbit * 1_000_000 / 8));
            let pods: Vec<gpucloud::Pod> = cluster
                .nodes
                .iter()
                .map(|node| {
                    let mut pod = node.pod.clone();
                    if let gpucloud::model::pod::PodRecord::RunPod(raw) = &mut pod.raw
                        && let Some(endpoint) = raw.ssh.direct.as_mut()
                    {
                        let port = rt.block_on(bucket.clone().proxy(u16::try_from(endpoint.port).unwrap()));
                        endpoint.port = port.into();
                    }
                    pod
                })
                .collect();
            let through = rt
                .block_on(futures::future::try_join_all(pods.iter().map(|pod| RemoteSession::connect(pod, &options))))
                .unwrap();
            for session in &direct {
                gpucloud::remote::pin_known_hosts(session.known_hosts(), session.endpoint()).unwrap();
            }
            through
        }
    };
    let sessions: Vec<&RemoteSession> =
        if through_uplink.is_empty() { direct.iter().collect() } else { through_uplink.iter().collect() };

    let (mut one, mut all, mut relayed, mut method) = (Vec::new(), Vec::new(), Vec::new(), None);
    for round in 0..3 {
        let started = Instant::now();
        let report = rt.block_on(gpucloud::remote::sync::sync(sessions[0], &work, &format!("one-{round}"))).unwrap();
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

        // As `Fleet::run_on_cluster` does it from `RELAY_MIN_NODES` nodes on: rank 0 synced from
        // here, the others copied from rank 0.
        let started = Instant::now();
        let remote = format!("relayed-{round}");
        rt.block_on(async {
            gpucloud::remote::sync::sync(sessions[0], &work, &remote).await.unwrap();
            let targets: Vec<&RemoteSession> = direct[1..].iter().collect();
            let files: Vec<String> = gpucloud::remote::sync::files_to_sync(&work)
                .unwrap()
                .into_keys()
                .chain([gpucloud::remote::sync::MARKER_FILE.to_string()])
                .collect();
            let results =
                gpucloud::remote::relay::relay(sessions[0], &remote, &files, &targets, std::future::pending())
                    .await
                    .unwrap();
            assert!(results.iter().all(Result::is_ok), "{results:?}");
        });
        relayed.push(started.elapsed());
        let (code, out, _) =
            rt.block_on(direct[nodes as usize - 1].output(&format!("find {remote} -type f | wc -l"))).unwrap();
        assert_eq!((code, out.trim()), (0, (files + 1).to_string().as_str()), "every file and the sync marker");
    }
    let (a, b, c) = (median(one.clone()), median(all.clone()), median(relayed.clone()));
    let uplink =
        uplink_mbit.map_or("loopback, no uplink limit".to_string(), |m| format!("this machine's uplink {m} Mbit/s"));
    println!("sync of {files} files, {mb} MB, median of 3 (method {method:?}; {uplink}):");
    println!("  1 node: {a:.2?} (rounds {one:.2?})");
    println!("  {nodes} nodes, each synced from here at once: {b:.2?} (rounds {all:.2?})");
    println!("  {nodes} nodes, rank 0 synced, then relayed to the others: {c:.2?} (rounds {relayed:.2?})");
    println!(
        "  ratios to 1 node: {:.2} each from here, {:.2} relayed (goal: at most 2.00)",
        b.as_secs_f64() / a.as_secs_f64(),
        c.as_secs_f64() / a.as_secs_f64()
    );
    rt.block_on(async {
        for session in through_uplink.into_iter().chain(direct) {
            let _ = session.close().await;
        }
        let _ = fleet.delete_cluster(&cluster.id).await;
    });
    let _ = std::fs::remove_dir_all(&scratch);
}
