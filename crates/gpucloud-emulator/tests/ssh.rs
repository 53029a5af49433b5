//! Emulated pods are SSH hosts the system `ssh`, `tar` over ssh and `rsync` over ssh work with.

use gpucloud_emulator::{Api, Emulator, EmulatorConfig, FaultConfig, FaultKind};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn have(program: &str) -> bool {
    Command::new(program).arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A fresh directory with an Ed25519 key pair `key`/`key.pub`, made by `ssh-keygen`.
fn keypair(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("gpucloud-ssh-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("key");
    let made =
        Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f"]).arg(&key).status();
    assert!(made.unwrap().success());
    let public = std::fs::read_to_string(dir.join("key.pub")).unwrap();
    (dir, public.trim().to_string())
}

fn ssh(dir: &Path, port: u16, command: &str, stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new("ssh")
        .args(["-i"])
        .arg(dir.join("key"))
        .args(["-p", &port.to_string(), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", dir.join("known_hosts").display()))
        .args(["-o", "IdentitiesOnly=yes", "root@127.0.0.1", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        std::io::Write::write_all(&mut input, bytes).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

async fn runpod_pod(emulator: &Emulator) -> (String, u16) {
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let body = json!({"name": "ssh", "image": "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04",
                      "gpu": {"id": "NVIDIA H100 80GB HBM3", "count": 2}, "cloud": "SECURE", "startSsh": true,
                      "ports": ["22/tcp"], "env": {"STAGE": "two"}});
    let pod: serde_json::Value = http
        .post(format!("{}/v2/pods", emulator.base_url()))
        .bearer_auth(emulator.api_key())
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = pod["id"].as_str().unwrap().to_string();
    let port = emulator.all_pods().iter().find(|p| p.id == id).unwrap().ssh_port;
    (id, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_commands_over_the_system_ssh_with_its_streams_and_exit_status() {
    if !have("ssh") {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: std::time::Duration::ZERO, ..EmulatorConfig::default() })
            .await
            .unwrap();
    let (dir, public) = keypair("exec");
    emulator.add_ssh_key(Api::RunPod, &public);
    let (id, port) = runpod_pod(&emulator).await;
    let (dir2, port2) = (dir.clone(), port);
    let run = move |command: &'static str, stdin: Option<&'static [u8]>| {
        let dir = dir2.clone();
        tokio::task::spawn_blocking(move || ssh(&dir, port2, command, stdin))
    };

    let out = run("echo out; echo err >&2; echo $STAGE; pwd; exit 3", None).await.unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(&lines[..2], ["out", "two"], "the pod's env: {stdout}");
    assert!(lines[2].contains(&id), "runs in the pod's own directory: {stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"));
    // stdin reaches the command; the pod's nvidia-smi reports its utilization per GPU.
    let out = run("cat > f && wc -c < f", Some(b"12345")).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5");
    assert!(emulator.set_gpu_utilization(&id, 73));
    let out = run("nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits", None).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "73\n73\n");

    // tar over ssh, both ways.
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a.txt"), "alpha").unwrap();
    let tarball = Command::new("tar").arg("-C").arg(&src).args(["-cf", "-", "."]).output().unwrap().stdout;
    let tarball: &'static [u8] = Box::leak(tarball.into_boxed_slice());
    let out = run("mkdir -p job && tar -C job -xf - && cat job/sub/a.txt", Some(tarball)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alpha", "{}", String::from_utf8_lossy(&out.stderr));
    // rsync over ssh, with the flags RunPod containers need.
    if have("rsync") {
        std::fs::write(src.join("b.txt"), "beta").unwrap();
        let rsh = format!(
            "ssh -i {} -p {port} -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
            dir.join("key").display(),
            dir.join("known_hosts").display()
        );
        let synced = Command::new("rsync")
            .args(["-az", "--no-owner", "--no-group", "-e", &rsh])
            .arg(format!("{}/", src.display()))
            .arg("root@127.0.0.1:synced/")
            .output()
            .unwrap();
        assert!(synced.status.success(), "{}", String::from_utf8_lossy(&synced.stderr));
        let out = run("cat synced/b.txt synced/sub/a.txt", None).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "betaalpha");
    }

    // Another key is refused: public-key auth with the pod's keys only.
    let (other, _) = keypair("other");
    std::fs::copy(dir.join("known_hosts"), other.join("known_hosts")).unwrap();
    let out = tokio::task::spawn_blocking(move || ssh(&other, port, "true", None)).await.unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Terminated: the host and its directory are gone.
    let home = String::from_utf8_lossy(&run("pwd", None).await.unwrap().stdout).trim().to_string();
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    http.delete(format!("{}/v2/pods/{id}", emulator.base_url())).bearer_auth(emulator.api_key()).send().await.unwrap();
    assert!(!Path::new(&home).exists(), "{home} outlived its pod");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_mid_command_is_what_ssh_reports_as_255() {
    if !have("ssh") {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let faults = FaultConfig { rate: 1.0, kinds: vec![FaultKind::SshDropMidCommand], ..FaultConfig::default() };
    let config = EmulatorConfig { faults, ready_delay: std::time::Duration::ZERO, ..EmulatorConfig::default() };
    let emulator = Emulator::start(config).await.unwrap();
    let (dir, public) = keypair("drop");
    emulator.add_ssh_key(Api::RunPod, &public);
    let (_, port) = runpod_pod(&emulator).await;
    let out =
        tokio::task::spawn_blocking(move || ssh(&dir, port, "echo started; sleep 5; echo done", None)).await.unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", String::from_utf8_lossy(&out.stderr));
    // The command had started (the connection was up), and its end was never seen.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "started\n", "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_pod_cuts_its_connections_and_kills_its_commands() {
    if !have("ssh") {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: std::time::Duration::ZERO, ..EmulatorConfig::default() })
            .await
            .unwrap();
    let (dir, public) = keypair("stop");
    emulator.add_ssh_key(Api::RunPod, &public);
    let (id, port) = runpod_pod(&emulator).await;
    let marker = dir.join("marker");
    let command = format!("sleep 4; touch '{}'", marker.display());
    let dir2 = dir.clone();
    let running = tokio::task::spawn_blocking(move || ssh(&dir2, port, &command, None));
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    let stopped = http
        .post(format!("{}/v2/pods/{id}/action", emulator.base_url()))
        .bearer_auth(emulator.api_key())
        .json(&json!({"action": "stop"}))
        .send()
        .await
        .unwrap();
    assert!(stopped.status().is_success(), "{}", stopped.status());
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), running)
        .await
        .expect("stopping_a_pod_cuts_its_connections_and_kills_its_commands: ssh still connected 20 s after the stop")
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "the connection was cut: {}", String::from_utf8_lossy(&out.stderr));
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert!(!marker.exists(), "the command was killed with its pod's stop");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn each_emulator_has_its_own_random_api_key() {
    let first = Emulator::start(EmulatorConfig::default()).await.unwrap();
    let second = Emulator::start(EmulatorConfig::default()).await.unwrap();
    assert_ne!(first.api_key(), second.api_key());
    assert!(first.api_key().len() >= 32, "{}", first.api_key());
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    for key in ["emulator-key", second.api_key()] {
        let refused = http.get(format!("{}/v2/pods", first.base_url())).bearer_auth(key).send().await.unwrap();
        assert_eq!(refused.status().as_u16(), 401, "{key} opened another emulator");
    }
    let ok = http.get(format!("{}/v2/pods", first.base_url())).bearer_auth(first.api_key()).send().await.unwrap();
    assert!(ok.status().is_success(), "{}", ok.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_started_runpod_pod_answers_on_a_new_port_with_its_public_key_in_the_env() {
    if !have("ssh") {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: std::time::Duration::ZERO, ..EmulatorConfig::default() })
            .await
            .unwrap();
    let (dir, public) = keypair("restart");
    emulator.add_ssh_key(Api::RunPod, &public);
    let (id, port) = runpod_pod(&emulator).await;
    let dir2 = dir.clone();
    let out = tokio::task::spawn_blocking(move || ssh(&dir2, port, "printf %s \"$PUBLIC_KEY\"", None)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), public, "startSsh injects PUBLIC_KEY");
    let http = reqwest::Client::builder().tls_backend_preconfigured(runpod_api::tls_config().unwrap()).build().unwrap();
    for action in ["stop", "start"] {
        let answer = http
            .post(format!("{}/v2/pods/{id}/action", emulator.base_url()))
            .bearer_auth(emulator.api_key())
            .json(&json!({"action": action}))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{action}: {}", answer.status());
    }
    let moved = emulator.all_pods().iter().find(|p| p.id == id).unwrap().ssh_port;
    assert_ne!(moved, port, "a start assigns a new public port");
    let dir2 = dir.clone();
    let out = tokio::task::spawn_blocking(move || ssh(&dir2, moved, "echo back", None)).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "back\n", "{}", String::from_utf8_lossy(&out.stderr));
    let dir2 = dir.clone();
    let old = tokio::task::spawn_blocking(move || ssh(&dir2, port, "echo old", None)).await.unwrap();
    assert!(!old.status.success(), "the old port no longer answers");
    let _ = std::fs::remove_dir_all(&dir);
}
