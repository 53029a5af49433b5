//! Syncing a workdir to a pod: [`gpucloud::remote::sync::sync`] against `rsync -a` over the same
//! connection (the session's ControlMaster), side by side in one run, against an emulated pod on
//! loopback. Each round syncs into a fresh remote directory (first sync), then again with one file
//! changed (re-sync); three rounds alternate the two tools and the medians are printed.
//!
//! `cargo bench -p gpucloud --features remote --bench sync` (10,000 files, 500 MB; smaller with
//! `GPUCLOUD_SYNC_BENCH_FILES` and `GPUCLOUD_SYNC_BENCH_MB`). Figures in BENCHMARKS.md. A one-shot
//! measurement rather than a criterion group: one sample is several seconds of disk and SSH work.

use gpucloud::remote::{RemoteSession, SessionOptions};
use gpucloud::{Fleet, LaunchRequest, RunPod, SecretString};
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
    let (files, mb) = (size("GPUCLOUD_SYNC_BENCH_FILES", 10_000), size("GPUCLOUD_SYNC_BENCH_MB", 500));
    let scratch = std::env::temp_dir().join(format!("gpucloud-bench-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let key = scratch.join("key");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status();
    if !made.is_ok_and(|s| s.success()) || Command::new("rsync").arg("--version").output().is_err() {
        eprintln!("skipped: needs ssh-keygen, ssh and rsync");
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
    let request = LaunchRequest {
        ssh_public_key: Some(public.trim().to_string()),
        ..LaunchRequest::new("H100_80GB", 1, "bench")
    };
    let pod = rt.block_on(fleet.launch(&request)).unwrap();
    let options = SessionOptions { identity_file: Some(key.clone()), ..SessionOptions::default() };
    let session = rt.block_on(RemoteSession::connect(&pod, &options)).unwrap();
    let endpoint = session.endpoint().clone();
    let ssh = format!(
        "ssh -o ControlPath={} -o BatchMode=yes -o UserKnownHostsFile={} -p {}",
        session.control_socket().display(),
        session.known_hosts().display(),
        endpoint.port
    );
    let rsync = |remote: &str| {
        let status = Command::new("rsync")
            .args(["-a", "-e", &ssh])
            .arg(format!("{}/", work.display()))
            .arg(format!("{}@{}:{remote}/", endpoint.user, endpoint.host))
            .status()
            .unwrap();
        assert!(status.success(), "rsync -a");
    };
    let touch_one = |round: usize| std::fs::write(work.join("d000/f00000.bin"), format!("changed {round}")).unwrap();

    let (mut ours_first, mut ours_again, mut rsync_first, mut rsync_again) = (vec![], vec![], vec![], vec![]);
    let mut method = None;
    for round in 0..3 {
        let remote = format!("ours-{round}");
        let started = Instant::now();
        let report = rt.block_on(gpucloud::remote::sync::sync(&session, &work, &remote)).unwrap();
        ours_first.push(started.elapsed());
        method = Some(report.method);
        touch_one(round);
        let started = Instant::now();
        rt.block_on(gpucloud::remote::sync::sync(&session, &work, &remote)).unwrap();
        ours_again.push(started.elapsed());

        let remote = format!("rsync-{round}");
        let started = Instant::now();
        rsync(&remote);
        rsync_first.push(started.elapsed());
        touch_one(round + 10);
        let started = Instant::now();
        rsync(&remote);
        rsync_again.push(started.elapsed());
    }
    let (a, b, c, d) = (median(ours_first), median(rsync_first), median(ours_again), median(rsync_again));
    println!("sync of {files} files, {mb} MB, median of 3 (gpucloud's sync used {method:?}):");
    println!("  first sync: gpucloud {a:.2?}, rsync -a {b:.2?}: ratio {:.2}", a.as_secs_f64() / b.as_secs_f64());
    println!(
        "  re-sync, one file changed: gpucloud {c:.2?}, rsync -a {d:.2?}: ratio {:.2}",
        c.as_secs_f64() / d.as_secs_f64()
    );
    rt.block_on(async {
        let _ = session.close().await;
        let _ = fleet.terminate(&pod.id).await;
    });
    let _ = std::fs::remove_dir_all(&scratch);
}
