//! `gpucloud run --spot` on PrimeIntellect as a user runs it, against an emulator that interrupts
//! the job's spot pod: with `--recover` the job is relaunched, its `--checkpoint-dir` carried
//! across, and the outcome lists the interruption and its cost; without, `run` exits 8. A
//! detached job run with `--recover` is recorded and recovered by `jobs wait --recover` and by
//! `reap --recover`; one cancelled is never relaunched; `cost` marks what the interrupted
//! attempts cost.

use gpucloud_emulator::{Api, Emulator, EmulatorConfig, Interruption};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const TEST: &str = "run_spot_recovers_an_interrupted_job_with_its_checkpoint_and_exits_8_without";

fn have_ssh() -> bool {
    Command::new("ssh").arg("-V").output().is_ok()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpucloud-cli-spot-{}-{name}", std::process::id()));
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

/// Whether a checkpoint was pulled back into `state` (a whole pull lands in `current/`).
fn pulled(state: &Path) -> bool {
    std::fs::read_dir(state.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|entry| entry.path().join("current/ckpt/step").is_file())
}

/// Interrupts the one live spot pod once `ready` says so; returns its id.
async fn interrupt_when(emulator: &Emulator, ready: impl Fn(&str) -> bool) -> String {
    loop {
        if let Some(pod) = emulator.live_pods().into_iter().find(|p| p.api == Api::PrimeIntellect && p.spot)
            && ready(&pod.id)
        {
            emulator.interrupt(&pod.id, Interruption::Terminated).unwrap();
            return pod.id;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `cmd` while `driver` runs, at most `limit` (the process killed and the test failed past it).
async fn finish<D>(
    mut cmd: Command,
    driver: impl std::future::Future<Output = D>,
    limit: Duration,
) -> (std::process::Output, D) {
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let done = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    let both = async { tokio::join!(done, driver) };
    match tokio::time::timeout(limit, both).await {
        Ok((output, driven)) => (output.unwrap(), driven),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("{TEST}: still running after {limit:?} (time bound of the test)");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_spot_recovers_an_interrupted_job_with_its_checkpoint_and_exits_8_without() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("recover");
    let state = dir.join("state");
    let key = dir.join("key.pub");
    let script = "s=$(cat ckpt/step 2>/dev/null || echo 0); echo \"resumed at $s\"; \
                  while [ \"$s\" -lt 60 ]; do s=$((s+1)); mkdir -p ckpt; echo $s > ckpt/step.new; \
                  mv ckpt/step.new ckpt/step; sleep 0.1; done; echo \"done at $s\"";

    // A detached job's checkpoints are carried by its recoverers: without --recover, refused
    // before any request (exit 2).
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["run", "--detach", "--spot", "--ttl", "1h", "--checkpoint-dir", "ckpt"]).args([
        "--gpu",
        "H100_80GB",
        "--",
        "true",
    ]);
    let (output, ()) = finish(cmd, async {}, Duration::from_secs(30)).await;
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--checkpoint-dir with --detach needs --recover"));
    assert_eq!(emulator.stats().creates, 0);

    // Recovered once, from the pulled checkpoint.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["run", "--spot", "--provider", "primeintellect", "--gpu", "H100_80GB", "--json"])
        .args(["--recover", "1", "--checkpoint-dir", "ckpt", "--checkpoint-every", "1s", "--ssh-key"])
        .arg(&key)
        .args(["--", "sh", "-c", script]);
    let (output, interrupted) =
        finish(cmd, interrupt_when(&emulator, |_| pulled(&state)), Duration::from_secs(120)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("was interrupted") && stderr.contains("relaunching the job"), "{stderr}");
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let interruptions = outcome["interruptions"].as_array().unwrap();
    assert_eq!(interruptions.len(), 1, "{outcome}");
    assert_eq!(interruptions[0]["pod"], format!("primeintellect:{interrupted}"));
    assert!(interruptions[0]["spot"] == true && interruptions[0]["ran_for_s"].as_f64().unwrap() > 0.0);
    assert!(outcome["interrupted_cost"].as_f64().is_some_and(|c| c > 0.0), "{outcome}");
    assert!(outcome["restored_checkpoint"]["age_s"].is_number(), "{outcome}");
    let tail = outcome["tail"].to_string();
    assert!(!tail.contains("resumed at 0") && tail.contains("done at 60"), "resumed from the checkpoint: {tail}");
    assert!(emulator.live_pods().is_empty(), "both pods terminated");

    // No recovery: exit 8, saying so, and no pod left.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["run", "--spot", "--provider", "primeintellect", "--gpu", "H100_80GB", "--ssh-key"]).arg(&key).args([
        "--",
        "sh",
        "-c",
        "touch started; sleep 30",
    ]);
    // Once the command runs (not while the pod is launched: that is the launch's failover).
    let running = |id: &str| emulator.pod_dir(Api::PrimeIntellect, id).join("gpucloud-job/started").exists();
    let (output, _) = finish(cmd, interrupt_when(&emulator, running), Duration::from_secs(60)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(emulator.live_pods().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `cmd` to its end, at most `limit`; stdout and stderr as text.
async fn run_to_end(cmd: Command, what: &str, limit: Duration) -> (Option<i32>, String, String) {
    let (output, ()) = finish(cmd, async {}, limit).await;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    eprintln!("{what}: {}", text(&output.stderr));
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_spot_jobs_are_recovered_by_jobs_wait_and_by_the_reaper_never_after_a_cancel() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("detached-recover");
    let state = dir.join("state");
    let key = dir.join("key.pub");
    let limit = Duration::from_secs(60);
    let submit = |command: &str| {
        let mut cmd = gpucloud(&emulator, &state);
        cmd.args(["run", "--detach", "--spot", "--provider", "primeintellect", "--gpu", "H100_80GB"])
            .args(["--ttl", "1h", "--recover", "1", "--ssh-key"])
            .arg(&key)
            .args(["--", "sh", "-c", command]);
        cmd
    };

    // jobs wait --recover: the interrupted job is relaunched and its status is the command's.
    let (code, stdout, stderr) = run_to_end(submit("sleep 2; exit 4"), "submit", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("recorded in") && stderr.contains("jobs wait --recover"), "{stderr}");
    let first = stdout.trim().to_string();
    let pod = first.strip_prefix("primeintellect:").expect("a PrimeIntellect job id");
    emulator.interrupt(pod, Interruption::Gone).unwrap();
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "wait", &first, "--recover", "--poll", "1s", "--end"]);
    let (code, _, stderr) = run_to_end(cmd, "jobs wait --recover", limit).await;
    assert_eq!(code, Some(4), "the command's status: {stderr}");
    assert!(stderr.contains("relaunched as primeintellect:") && stderr.contains("recovered:"), "{stderr}");
    assert!(emulator.live_pods().is_empty(), "--end terminated the relaunched pod");
    assert_eq!(emulator.stats().creates, 2);

    // reap --recover: one sweep relaunches an interrupted job; its first id still finds it.
    let (code, stdout, stderr) = run_to_end(submit("sleep 3; exit 0"), "submit", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    let first = stdout.trim().to_string();
    emulator.interrupt(first.strip_prefix("primeintellect:").unwrap(), Interruption::Terminated).unwrap();
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["reap", "--recover", "--json"]);
    let (code, stdout, stderr) = run_to_end(cmd, "reap --recover", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let jobs = report["recorded_jobs"].as_array().expect("recorded_jobs");
    let relaunched: Vec<_> = jobs.iter().filter(|j| j["relaunched_as"].is_string()).collect();
    assert_eq!(relaunched.len(), 1, "{report}");
    assert_eq!(relaunched[0]["job"], first.as_str());
    assert_eq!(emulator.stats().creates, 4);
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "wait", &first, "--poll", "1s", "--end"]);
    let (code, _, stderr) = run_to_end(cmd, "jobs wait (first id)", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(emulator.live_pods().is_empty());

    // Cancelled: the pod's end is no interruption; the reaper relaunches nothing.
    let (code, stdout, stderr) = run_to_end(submit("sleep 60"), "submit", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    let first = stdout.trim().to_string();
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "cancel", &first]);
    let (code, _, stderr) = run_to_end(cmd, "jobs cancel", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["reap", "--recover"]);
    let (code, stdout, stderr) = run_to_end(cmd, "reap --recover", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("relaunched"), "{stdout}");
    assert_eq!(emulator.stats().creates, 5, "nothing relaunched after a cancel");
    assert!(emulator.live_pods().is_empty());
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["jobs", "wait", &first, "--recover"]);
    let (code, _, stderr) = run_to_end(cmd, "jobs wait --recover (cancelled)", limit).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("ended without an exit status") && stderr.contains("jobs cancel"), "{stderr}");

    // The cost report marks what the two interrupted attempts cost.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["cost", "--since", "1h", "--json"]);
    let (code, stdout, stderr) = run_to_end(cmd, "cost", limit).await;
    assert_eq!(code, Some(0), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let marked = report["interrupted"].as_array().expect("interrupted");
    assert_eq!(marked.len(), 2, "{report}");
    assert!(marked.iter().all(|m| m["total_usd"].as_f64().is_some_and(|usd| usd > 0.0)), "{report}");
    let sum: f64 = marked.iter().map(|m| m["total_usd"].as_f64().unwrap()).sum();
    assert!((report["interrupted_usd"].as_f64().unwrap() - sum).abs() < 1e-9, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
