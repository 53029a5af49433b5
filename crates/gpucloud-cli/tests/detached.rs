//! `gpucloud run --detach` and `gpucloud jobs ...` as a user runs them, against emulated RunPod
//! pods that are real SSH hosts: the job survives its launcher's SIGKILL, `jobs logs --follow`
//! resumes at a byte offset without losing or repeating a line, `jobs wait` exits with the
//! command's status, and the pod ends itself after --linger.

use gpucloud_emulator::{Emulator, EmulatorConfig};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TEST: &str = "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself";

fn have_ssh() -> bool {
    Command::new("ssh").arg("-V").output().is_ok()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpucloud-cli-detached-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "t", "-f"])
        .arg(dir.join("key"))
        .status();
    assert!(made.unwrap().success());
    dir
}

fn gpucloud(emulator: &Emulator, state: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
    for var in ["GPUCLOUD_EMULATOR", "PRIME_TEAM_ID"] {
        cmd.env_remove(var);
    }
    cmd.env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url())
        .env("GPUCLOUD_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to its end, at most `limit` (killed and the test failed, naming `what`, past it).
async fn finish(mut cmd: Command, what: &'static str, limit: Duration) -> std::process::Output {
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let done = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    match tokio::time::timeout(limit, done).await {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{what}: still running after {limit:?} (time bound of the test)");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let started = Instant::now();
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("detach");
    let state = dir.join("state");
    let script = "i=1; while [ $i -le 60 ]; do echo line $i; i=$((i+1)); sleep 0.05; done; mkdir -p out; echo 0.9 > out/acc; exit 4";
    let expected: String = (1..=60).map(|i| format!("line {i}\n")).collect();

    // --detach without a lease may land on PrimeIntellect: refused, saying why (exit 2).
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["run", "--detach", "--gpu", "H100_80GB", "--ssh-key"]).arg(dir.join("key.pub")).args(["--", "true"]);
    let output = finish(cmd, "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself: run --detach without a lease", Duration::from_secs(30)).await;
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only the lease and a running reaper"));
    // On RunPod too: its watchdog starts only with the job, and a launcher killed before that
    // (during the launch or the sync) would leave a pod nothing ends.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["run", "--detach", "--provider", "runpod", "--gpu", "H100_80GB", "--ssh-key"])
        .arg(dir.join("key.pub"))
        .args(["--", "true"]);
    let output = finish(cmd, "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself: run --detach --provider runpod without a lease", Duration::from_secs(30)).await;
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(emulator.all_pods().is_empty(), "refused before any request");

    // The launcher is SIGKILLed as soon as it has printed the id: the job runs on.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args([
        "run",
        "--detach",
        "--json",
        "--linger",
        "6s",
        "--ttl",
        "1h",
        "--gpu",
        "H100_80GB",
        "--provider",
        "runpod",
        "--ssh-key",
    ])
    .arg(dir.join("key.pub"))
    .args(["--", "sh", "-c", script]);
    let mut launcher = cmd.spawn().unwrap();
    let mut stdout = launcher.stdout.take().unwrap();
    let read = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let mut byte = [0u8; 1];
        while stdout.read(&mut byte).unwrap_or(0) == 1 {
            text.push(byte[0] as char);
            if text.trim_end().ends_with('}') && serde_json::from_str::<serde_json::Value>(&text).is_ok() {
                break;
            }
        }
        text
    });
    let text = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("run --detach printed no id within 30 s")
        .unwrap();
    let _ = Command::new("kill").args(["-KILL", &launcher.id().to_string()]).status();
    let _ = launcher.wait();
    let submitted: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let id = submitted["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("runpod:"), "the job id is its pod's: {id}");
    assert_eq!(submitted["guards"]["watchdog"], true, "{submitted}");

    // Followed, the follower SIGKILLed after some bytes, then resumed at the next byte.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "logs", &id, "--follow", "--poll", "1s"]);
    let mut follower = cmd.spawn().unwrap();
    let mut out = follower.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut got = Vec::new();
        let mut buffer = [0u8; 7];
        while got.len() < 40 {
            match out.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buffer[..n]),
            }
        }
        got
    });
    let first = tokio::time::timeout(Duration::from_secs(30), first)
        .await
        .expect("jobs logs --follow printed nothing within 30 s")
        .unwrap();
    let _ = Command::new("kill").args(["-KILL", &follower.id().to_string()]).status();
    let followed = follower.wait_with_output().unwrap();
    assert!(!first.is_empty(), "jobs logs --follow: {}", String::from_utf8_lossy(&followed.stderr));
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "logs", &id, "--follow", "--poll", "1s", "--offset", &first.len().to_string()]);
    let rest = finish(cmd, "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself: jobs logs --follow --offset", Duration::from_secs(30)).await;
    assert_eq!(
        rest.status.code(),
        Some(4),
        "exits with the command's status: {}",
        String::from_utf8_lossy(&rest.stderr)
    );
    let mut whole = first.clone();
    whole.extend_from_slice(&rest.stdout);
    assert_eq!(String::from_utf8_lossy(&whole), expected, "every line once, in order");

    // ls shows it; wait exits with its status; download collects.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "ls", "--json"]);
    let ls = finish(
        cmd,
        "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself: jobs ls",
        Duration::from_secs(30),
    )
    .await;
    assert!(ls.status.success(), "{}", String::from_utf8_lossy(&ls.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let row = rows.as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap_or_else(|| panic!("{rows}"));
    assert_eq!(row["state"], serde_json::json!({"state": "exited", "code": 4}), "{row}");
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "wait", &id, "--poll", "1s"]);
    let wait = finish(
        cmd,
        "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself: jobs wait",
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(wait.status.code(), Some(4), "{}", String::from_utf8_lossy(&wait.stderr));
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "download", &id]).arg(format!("out:{}", dir.join("results").display()));
    let download = finish(
        cmd,
        "a_detached_job_survives_its_launcher_and_is_followed_waited_collected_and_ends_itself: jobs download",
        Duration::from_secs(30),
    )
    .await;
    assert!(download.status.success(), "{}", String::from_utf8_lossy(&download.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("results/out/acc")).unwrap(), "0.9\n");

    // Nobody ends it: the pod ends itself once the linger has passed.
    let ending = Instant::now();
    while !emulator.live_pods().is_empty() {
        assert!(ending.elapsed() < Duration::from_secs(20), "{TEST}: the pod did not end itself within 20 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{TEST}: took {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_spot_on_runpod_alone_is_refused_saying_why() {
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let state = std::env::temp_dir().join(format!("gpucloud-cli-detached-{}-spot", std::process::id()));
    for args in [&["up", "--spot"][..], &["run", "--detach", "--ttl", "1h", "--spot"][..]] {
        let mut cmd = gpucloud(&emulator, &state);
        cmd.args(args).args(["--gpu", "H100_80GB", "--provider", "runpod"]);
        if args[0] == "run" {
            cmd.args(["--", "true"]);
        }
        let output = finish(
            cmd,
            "up_spot_on_runpod_alone_is_refused_saying_why: up or run --spot --provider runpod",
            Duration::from_secs(30),
        )
        .await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("RunPod removed them in 2026"), "{stderr}");
    }
    assert_eq!(emulator.stats().creates, 0, "nothing created in its place");
    let _ = std::fs::remove_dir_all(&state);
}
