//! What one SSH connection per pod buys: a command over a [`RemoteSession`] (its ControlMaster
//! reused) vs the same command through a fresh `ssh` process (a new TCP connection, key exchange
//! and authentication each time), against an emulated pod on loopback, side by side.
//! `cargo bench -p gpucloud --bench remote`; figures in BENCHMARKS.md. Needs the system ssh.

use criterion::{Criterion, criterion_group, criterion_main};
use gpucloud::remote::{RemoteCommand, RemoteSession, SessionOptions};
use gpucloud::{Fleet, LaunchRequest, RunPod, SecretString};
use gpucloud_emulator::{Emulator, EmulatorConfig};
use std::process::Command;
use std::time::Duration;

fn ssh_reuse(c: &mut Criterion) {
    let scratch = std::env::temp_dir().join(format!("gpucloud-bench-remote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let key = scratch.join("key");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no ssh-keygen");
        return;
    }
    let public = std::fs::read_to_string(scratch.join("key.pub")).unwrap();
    // SAFETY: set before the runtime and its threads start; nothing else reads the environment yet.
    unsafe { std::env::set_var(gpucloud::remote::STATE_DIR_ENV, scratch.join("state")) };
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
    let known_hosts = session.known_hosts().to_path_buf();
    let command = RemoteCommand::new(["true"]);

    let mut group = c.benchmark_group("ssh_command");
    group.measurement_time(Duration::from_secs(10)).sample_size(30);
    group.bench_function("one_session_reused", |b| {
        b.to_async(&rt).iter(|| async { assert_eq!(session.run(&command, &mut |_| {}).await.unwrap().exit_code, 0) })
    });
    group.bench_function("fresh_ssh_process", |b| {
        b.iter(|| {
            let status = Command::new("ssh")
                .arg("-i")
                .arg(&key)
                .args(["-p", &endpoint.port.to_string(), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
                .arg("-o")
                .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
                .arg(format!("{}@{}", endpoint.user, endpoint.host))
                .arg("true")
                .status()
                .unwrap();
            assert!(status.success());
        })
    });
    group.finish();
    rt.block_on(async {
        let _ = session.close().await;
        let _ = fleet.terminate(&pod.id).await;
    });
    let _ = std::fs::remove_dir_all(&scratch);
}

criterion_group!(benches, ssh_reuse);
criterion_main!(benches);
