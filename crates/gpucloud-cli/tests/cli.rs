//! The `gpucloud` binary, run as a user would, against an emulator it is pointed at through the
//! documented environment variables.

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

fn bare() -> Command {
    let mut cmd = Command::cargo_bin("gpucloud").unwrap();
    for var in ENV {
        cmd.env_remove(var);
    }
    cmd.timeout(Duration::from_secs(60));
    cmd
}

fn against(emulator: &Emulator) -> Command {
    let mut cmd = bare();
    cmd.env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url());
    cmd
}

/// `gpucloud volumes create` of a RunPod volume named `data` in US-KS-2, printing JSON.
fn create_runpod_volume(emulator: &Emulator, size_gb: &str) -> Command {
    let mut cmd = against(emulator);
    cmd.args(["volumes", "create", "--provider", "runpod", "--name", "data", "--size", size_gb]);
    cmd.args(["--data-center", "US-KS-2", "--json"]);
    cmd
}

/// A public key whose private half does not exist: nothing logs in, pods just answer SSH.
const ACCOUNT_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGpHc2VtdWxhdG9yLXRlc3Qta2V5LW5vdC1yZWFs tests@gpucloud";

/// An emulator whose RunPod account holds a key (a RunPod pod has SSH access only then).
async fn emulator(ready_delay: Duration) -> Emulator {
    let emulator = keyless_emulator(ready_delay).await;
    emulator.add_ssh_key(gpucloud_emulator::Api::RunPod, ACCOUNT_KEY);
    emulator
}

/// An emulator as a new account starts: no SSH key anywhere.
async fn keyless_emulator(ready_delay: Duration) -> Emulator {
    Emulator::start(EmulatorConfig { ready_delay, ..EmulatorConfig::default() }).await.unwrap()
}

/// Runs a command off the async runtime (the emulator lives on it) and returns its output.
async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

fn json(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "stderr: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    keys
}

const POD_KEYS: [&str; 16] = [
    "created_at",
    "data_center",
    "gpu_count",
    "gpu_type",
    "id",
    "installation_progress",
    "installation_status",
    "lease_expires_at",
    "name",
    "price_now_per_hour",
    "price_per_hour",
    "provider",
    "spot",
    "ssh",
    "status",
    "team_id",
];

#[tokio::test(flavor = "multi_thread")]
async fn offers_json_has_the_documented_shape_and_order() {
    let emulator = emulator(Duration::ZERO).await;
    let mut cmd = against(&emulator);
    cmd.args(["offers", "--gpu", "H100_80GB", "--json"]);
    let offers = json(&run(cmd).await);
    let offers = offers.as_array().unwrap();
    assert!(offers.len() >= 4);
    assert_eq!(
        keys(&offers[0]),
        [
            "currency",
            "data_center",
            "gpu_count",
            "gpu_type",
            "prepaid_hours",
            "price_per_hour",
            "provider",
            "region",
            "spot",
            "stock",
            "via"
        ]
    );
    // Cheapest first within a currency, USD before any other.
    let usd: Vec<f64> =
        offers.iter().filter(|o| o["currency"] == "USD").map(|o| o["price_per_hour"].as_f64().unwrap()).collect();
    assert!(usd.windows(2).all(|w| w[0] <= w[1]));
    let first_other = offers.iter().position(|o| o["currency"] != "USD").unwrap_or(offers.len());
    assert!(offers[first_other..].iter().all(|o| o["currency"] != "USD"), "no USD offer after a EUR one");
    assert!(offers.iter().all(|o| o["prepaid_hours"].is_null()), "prepaid offers only with --allow-prepaid");
    let mut cmd = against(&emulator);
    cmd.args(["offers", "--provider", "runpod", "--limit", "1", "--on-demand"]);
    cmd.assert().success().stdout(predicate::str::contains("PROVIDER").and(predicate::str::contains("runpod")));
}

#[tokio::test(flavor = "multi_thread")]
async fn up_ls_get_down_round_trip() {
    let emulator = emulator(Duration::from_millis(300)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "A100_80GB", "--name", "cli", "--timeout", "30", "--json"]);
    let mut pod = json(&run(cmd).await);
    // `up --json`: the pod, and its launch's phase timings.
    let timings = pod.as_object_mut().unwrap().remove("timings_s").expect("up --json has timings_s");
    for phase in ["create_accepted", "provider_running", "ssh_answering"] {
        assert!(timings[phase].as_f64().is_some_and(|s| s >= 0.0), "{phase}: {timings}");
    }
    assert_eq!(keys(&pod), POD_KEYS);
    assert_eq!(pod["status"], "running");
    assert!(pod["ssh"].as_str().unwrap().starts_with("ssh "));
    let id = pod["id"].as_str().unwrap().to_string();
    assert_eq!(emulator.live_pods().len(), 1);

    let mut cmd = against(&emulator);
    cmd.args(["ls", "--json"]);
    let pods = json(&run(cmd).await);
    assert_eq!(pods.as_array().unwrap().len(), 1);
    assert_eq!(pods[0]["id"], id.as_str());

    let mut cmd = against(&emulator);
    cmd.args(["get", &id, "--json"]);
    assert_eq!(json(&run(cmd).await)["id"], id.as_str());

    let mut cmd = against(&emulator);
    cmd.args(["down", &id]);
    let output = run(cmd).await;
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("terminated"));
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn up_no_wait_returns_a_provisioning_pod() {
    let emulator = emulator(Duration::from_secs(60)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "RTX 4090", "--provider", "runpod", "--no-wait", "--json"]);
    let pod = json(&run(cmd).await);
    assert_eq!(pod["status"], "provisioning");
    assert_eq!(pod["provider"], "runpod");
    assert_eq!(emulator.live_pods().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn up_past_its_timeout_exits_5_and_leaves_nothing() {
    let emulator = emulator(Duration::from_secs(60)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--timeout", "1"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(5), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("timed out"));
    assert_eq!(emulator.stats().creates, 1);
    assert!(emulator.live_pods().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_capacity_exits_4() {
    let emulator = emulator(Duration::ZERO).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "B200"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(4), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no capacity"));
}

#[tokio::test(flavor = "multi_thread")]
async fn volumes_create_ls_rm() {
    let emulator = emulator(Duration::ZERO).await;
    let cmd = create_runpod_volume(&emulator, "50");
    let volume = json(&run(cmd).await);
    assert_eq!(keys(&volume), ["data_center", "id", "name", "provider", "size_gb", "status"]);
    let id = volume["id"].as_str().unwrap().to_string();
    let mut cmd = against(&emulator);
    cmd.args(["volumes", "ls", "--json"]);
    assert_eq!(json(&run(cmd).await).as_array().unwrap().len(), 1);
    let mut cmd = against(&emulator);
    cmd.args(["volumes", "rm", "--provider", "runpod", &id]);
    assert!(run(cmd).await.status.success());
    assert!(emulator.volumes().is_empty());
}

#[test]
fn bad_flags_get_a_clear_message_and_a_usage_exit_code() {
    let cases: [(&[&str], &str); 9] = [
        (&["up"], "--gpu"),
        (&["up", "--gpu", "H100", "--count", "0"], "--count"),
        (&["get", "not-a-pod"], "provider:id"),
        (&["offers", "--max-price=-1"], "positive price"),
        (&["offers", "--provider", "aws"], "not a provider"),
        (&["emulator", "--fault", "gremlins"], "not a fault kind"),
        (&["reap", "--idle-below", "5", "--idle-for", "30m"], "--every"),
        (&["reap", "--idle-below", "0", "--idle-for", "30m", "--every", "1m"], "--idle-below"),
        (&["cost", "--by", "week"], "--by"),
    ];
    for (args, expected) in cases {
        bare().args(args).assert().code(2).stderr(predicate::str::contains(expected));
    }
}

#[test]
fn a_missing_key_says_how_to_set_one_or_try_the_emulator() {
    bare()
        .args(["ls"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("PRIME_API_KEY").and(predicate::str::contains("--emulator")));
    bare().args(["get", "runpod:abc"]).assert().code(3).stderr(predicate::str::contains("RUNPOD_API_KEY"));
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    bare()
        .env("RUNPOD_API_KEY", "k")
        .env("RUNPOD_API_BASE_URL", "http://api.example.com")
        .args(["ls"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unencrypted").and(predicate::str::contains("--allow-insecure-http")));
}

#[test]
fn the_demo_runs_the_whole_job_on_the_emulator() {
    bare()
        .args(["demo", "--ready-delay", "0.3"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("SSH endpoint: ssh")
                .and(predicate::str::contains("  pod> hello from the pod\n  pod> 0\n  (exit status 0)"))
                .and(predicate::str::contains("pods left on the emulator: 0")),
        )
        .stderr(predicate::str::contains("nothing is real"));
}

#[test]
fn emulator_mode_is_announced_and_works_for_offers() {
    bare()
        .args(["--emulator", "offers", "--gpu", "A100_80GB"])
        .assert()
        .success()
        .stderr(predicate::str::contains("emulator"));
    bare()
        .env("GPUCLOUD_EMULATOR", "1")
        .args(["ls", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("[]"));
}

#[test]
fn the_standalone_emulator_serves_until_killed() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"))
        .args(["emulator", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(line.contains("listening on http://127.0.0.1:"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn under_faults_up_reports_a_running_pod_or_fails_typed_and_leaves_nothing_unreported() {
    use gpucloud_emulator::FaultConfig;
    let faults = FaultConfig { rate: 0.3, retry_after: Duration::from_millis(50), ..FaultConfig::default() };
    let emulator = Emulator::start(EmulatorConfig {
        ready_delay: Duration::from_millis(100),
        faults,
        seed: 11,
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let mut reported: Vec<String> = Vec::new();
    for _ in 0..6 {
        let mut cmd = against(&emulator);
        cmd.args(["up", "--gpu", "H100_80GB", "--timeout", "20", "--json"]);
        let output = run(cmd).await;
        if output.status.success() {
            let pod: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(pod["status"], "running");
            reported.push(pod["id"].as_str().unwrap().split_once(':').unwrap().1.to_string());
        } else {
            let code = output.status.code().unwrap();
            assert!([1, 3, 4, 5].contains(&code), "exit {code}: {}", String::from_utf8_lossy(&output.stderr));
            assert!(String::from_utf8_lossy(&output.stderr).starts_with("gpucloud: error:"));
        }
        let mut live: Vec<String> = emulator.live_pods().into_iter().map(|p| p.id).collect();
        live.sort();
        let mut expected = reported.clone();
        expected.sort();
        assert_eq!(live, expected, "every live pod is one the CLI reported");
    }
    assert!(!reported.is_empty(), "some launches succeed at a 30% fault rate");
    assert!(emulator.stats().faults.values().sum::<u64>() > 0);
}

/// Starts `gpucloud up` against `emulator`, waits until its pod exists, sends `signal`, and
/// returns the CLI's output.
async fn signal_during_up(emulator: &Emulator, signal: &str) -> std::process::Output {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
    for var in ENV {
        command.env_remove(var);
    }
    command
        .env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url())
        .args(["up", "--gpu", "H100_80GB", "--timeout", "300"])
        .stderr(std::process::Stdio::piped());
    let creates = emulator.stats().creates;
    let child = command.spawn().unwrap();
    // Wait until the pod exists and the CLI is waiting for it, then signal.
    for _ in 0..200 {
        if emulator.stats().creates == creates + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emulator.stats().creates, creates + 1);
    assert_eq!(emulator.live_pods().len(), 1);
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_sigterm_and_sighup_during_up_clean_up_and_exit_128_plus_the_signal() {
    let emulator = emulator(Duration::from_secs(120)).await;
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let output = signal_during_up(&emulator, signal).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(stderr.contains(&format!("SIG{signal} received")) && stderr.contains("cancelled"), "{stderr}");
        assert!(emulator.live_pods().is_empty(), "SIG{signal}: the pod was terminated before the CLI exited");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn teams_are_listed_and_up_acts_for_the_team_given() {
    let emulator = emulator(Duration::from_millis(200)).await;
    let team = gpucloud_emulator::EMULATED_TEAMS[1].0;
    let mut cmd = against(&emulator);
    cmd.args(["teams", "--json"]);
    let teams = json(&run(cmd).await);
    assert_eq!(keys(&teams[0]), ["id", "name", "role", "slug"]);
    assert_eq!(teams[1]["id"], team);

    let mut cmd = against(&emulator);
    cmd.env("PRIME_TEAM_ID", team).args(["up", "--gpu", "H100_80GB", "--provider", "primeintellect", "--json"]);
    let pod = json(&run(cmd).await);
    assert_eq!(pod["team_id"], team);
    assert_eq!(pod["installation_status"], "FINISHED");
    assert_eq!(emulator.live_pods()[0].team_id.as_deref(), Some(team));

    let mut cmd = against(&emulator);
    cmd.args(["get", pod["id"].as_str().unwrap()]);
    let output = run(cmd).await;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("installation  FINISHED") && text.contains(team), "{text}");

    let mut cmd = against(&emulator);
    cmd.args([
        "--team",
        "two words",
        "volumes",
        "create",
        "--provider",
        "primeintellect",
        "--name",
        "d",
        "--size",
        "10",
        "--via",
        "runpod",
    ]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid team_id"));
}

/// `gpucloud` with stdout piped and nothing else set.
fn piped(args: &[&str]) -> std::process::Child {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
    for var in ENV {
        command.env_remove(var);
    }
    command.args(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
}

#[test]
fn a_closed_pipe_ends_the_command_quietly_with_success() {
    use std::io::{BufRead, Read};
    // The reader goes away after one line, as `| head -1` does; the next sweep's line meets a
    // closed pipe.
    let mut reaper = piped(&["--emulator", "reap", "--every", "1s", "--json"]);
    let mut first = String::new();
    std::io::BufReader::new(reaper.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert!(first.contains("\"examined\""), "{first}");
    let status = reaper.wait().unwrap();
    let mut stderr = String::new();
    reaper.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{stderr}");

    // Closed before the first line, for a command that prints a table.
    let mut offers = piped(&["--emulator", "offers", "--all"]);
    drop(offers.stdout.take());
    let status = offers.wait().unwrap();
    let mut stderr = String::new();
    offers.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_to_a_pipe_carry_no_colour() {
    use gpucloud_emulator::{FaultConfig, FaultKind};
    let faults = FaultConfig { rate: 1.0, kinds: vec![FaultKind::ServerError], ..FaultConfig::default() };
    let emulator = Emulator::start(EmulatorConfig { faults, ready_delay: Duration::ZERO, ..EmulatorConfig::default() })
        .await
        .unwrap();
    let mut cmd = against(&emulator);
    cmd.args(["-vv", "ls"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in piped logs: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn down_of_a_pod_that_is_gone_says_so() {
    let emulator = emulator(Duration::ZERO).await;
    let mut cmd = against(&emulator);
    cmd.args(["down", "primeintellect:zzz"]);
    let output = run(cmd).await;
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("no such pod") && !stdout.contains("terminated primeintellect:zzz"), "{stdout}");

    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--json"]);
    let pod = json(&run(cmd).await);
    let id = pod["id"].as_str().unwrap();
    for expected in ["terminated runpod:", "already"] {
        let mut cmd = against(&emulator);
        cmd.args(["down", id]);
        let output = run(cmd).await;
        assert!(String::from_utf8_lossy(&output.stdout).contains(expected), "{output:?}");
    }
}

#[test]
fn an_unknown_gpu_is_named_with_the_closest_known_ones() {
    for args in [&["--emulator", "offers", "--gpu", "H100_80G"][..], &["--emulator", "up", "--gpu", "H100_80G"]] {
        let output = bare().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("not a GPU gpucloud knows") && stderr.contains("closest known: H100_80GB"), "{stderr}");
    }
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        bare().args(["completions", shell]).assert().success().stdout(predicate::str::contains("gpucloud"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_passes_env_volume_and_region() {
    let emulator = emulator(Duration::ZERO).await;
    let cmd = create_runpod_volume(&emulator, "10");
    let volume = json(&run(cmd).await);
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--env", "HF_TOKEN=x=y", "--region", "US"]);
    cmd.args(["--volume", volume["id"].as_str().unwrap(), "--json"]);
    json(&run(cmd).await);
    let pod = &emulator.live_pods()[0];
    assert_eq!(pod.env.get("HF_TOKEN").map(String::as_str), Some("x=y"));
    assert!(pod.data_center.starts_with("US"), "{}", pod.data_center);
    bare().args(["up", "--gpu", "H100_80GB", "--env", "NOEQUALS"]).assert().code(2);
}

const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILXGDN/SclOozk1xsDztpmhGiKkkrfQB9SKoO8dSIQQZ me@example.com";

/// A scratch directory with an `id_ed25519` / `id_ed25519.pub` pair and a fake `ssh` that prints
/// its arguments.
fn scratch() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("gpucloud-cli-{}-{}", std::process::id(), fastrand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    std::fs::write(dir.join("id_ed25519.pub"), format!("{PUBLIC_KEY}\n")).unwrap();
    std::fs::write(dir.join("ssh"), "#!/bin/sh\necho \"ssh $*\"\n").unwrap();
    std::fs::set_permissions(dir.join("ssh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_with_a_key_then_ssh_runs_the_system_ssh_with_the_pods_endpoint() {
    let emulator = keyless_emulator(Duration::from_millis(100)).await;
    let dir = scratch();
    let private = dir.join("id_ed25519");
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--json", "--ssh-key"]).arg(&private);
    let pod = json(&run(cmd).await);
    assert_eq!(emulator.live_pods()[0].authorized_keys, [PUBLIC_KEY], "the key reached the pod");
    let id = pod["id"].as_str().unwrap().to_string();

    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = against(&emulator);
    let state = dir.join("state");
    cmd.env("PATH", &path)
        .env("GPUCLOUD_STATE_DIR", &state)
        .args(["ssh", &id, "--ssh-key"])
        .arg(dir.join("id_ed25519.pub"))
        .args(["--", "nvidia-smi", "-L"]);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let port = emulator.live_pods()[0].ssh_port;
    // The pod's own known-hosts file, never the user's; new, so its key is accepted on first contact.
    let known_hosts = state.join("known_hosts").join(id.replace(':', "-"));
    let expected = format!(
        "ssh -p {port} -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={} -i {} root@127.0.0.1 -- nvidia-smi -L",
        known_hosts.display(),
        private.display()
    );
    assert_eq!(stdout.trim(), expected);

    let mut cmd = against(&emulator);
    cmd.args(["ssh-keys", "ls", "--provider", "runpod", "--json"]);
    let keys = json(&run(cmd).await);
    assert_eq!(keys[0]["public_key"], PUBLIC_KEY);
    let mut cmd = against(&emulator);
    cmd.args(["ssh-keys", "add"]).arg(dir.join("id_ed25519.pub"));
    let output = run(cmd).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains("primeintellect: registered as"), "{output:?}");
    assert_eq!(emulator.ssh_keys().len(), 2, "one per provider, none twice");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_to_a_pod_that_is_not_ready_says_so() {
    let emulator = emulator(Duration::from_secs(60)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--no-wait", "--json"]);
    let pod = json(&run(cmd).await);
    let mut cmd = against(&emulator);
    cmd.args(["ssh", pod["id"].as_str().unwrap()]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not ready for SSH yet (it is provisioning)"),
        "{output:?}"
    );
    let dir = scratch();
    bare().args(["--emulator", "up", "--gpu", "H100_80GB", "--ssh-key"]).arg(dir.join("nope")).assert().code(2);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_prints_the_tail_and_follow_stops_quietly_when_the_reader_goes() {
    use std::io::BufRead;
    let emulator = emulator(Duration::ZERO).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--json"]);
    let pod = json(&run(cmd).await);
    let id = pod["id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut cmd = against(&emulator);
    cmd.args(["logs", &id, "--tail", "3"]);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.lines().all(|l| l.contains("step ")), "{stdout}");

    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
    for var in ENV {
        command.env_remove(var);
    }
    command.env("RUNPOD_API_KEY", emulator.api_key()).env("RUNPOD_API_BASE_URL", emulator.base_url());
    let mut follow = command
        .args(["logs", &id, "--follow", "--tail", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    assert!(first.contains("step "), "{first}");
    let status = tokio::task::spawn_blocking(move || follow.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(0), "the next line met a closed pipe: quiet success");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_pods_launches_several_and_cleans_all_up_when_not_all_become_ready() {
    let emulator = emulator(Duration::from_millis(100)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--pods", "3", "--json"]);
    let pods = json(&run(cmd).await);
    let mut names: Vec<String> =
        pods.as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names.len(), 3);
    assert!(names[0].starts_with("gpucloud-1-") && names[2].starts_with("gpucloud-3-"), "{names:?}");
    assert_eq!(emulator.live_pods().len(), 3);

    // None can become ready in time: every pod is terminated, none is left.
    let slow = Emulator::start(EmulatorConfig { ready_delay: Duration::from_secs(120), ..EmulatorConfig::default() })
        .await
        .unwrap();
    let mut cmd = against(&slow);
    cmd.args(["up", "--gpu", "H100_80GB", "--pods", "3", "--timeout", "2"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(5), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(slow.stats().creates, 3);
    assert!(slow.live_pods().is_empty());
}

/// RunPod lists are cursor-paginated (document 953afcc): `ls` reads every page.
#[tokio::test(flavor = "multi_thread")]
async fn ls_lists_an_account_of_2500_runpod_pods_in_full() {
    let emulator = emulator(Duration::ZERO).await;
    emulator.seed_pods(gpucloud_emulator::Api::RunPod, 2500);
    let mut cmd = against(&emulator);
    cmd.env_remove("PRIME_API_KEY").args(["ls", "--json"]);
    let pods = json(&run(cmd).await);
    let pods = pods.as_array().unwrap();
    assert_eq!(pods.len(), 2500);
    assert!(pods.iter().any(|p| p["name"] == "seeded-0"), "the oldest pod, on the last page");
    // Pages of 1,000 (the document's maximum `limit`): three list requests.
    assert_eq!(emulator.stats().requests_by_route.get("GET /v2/pods"), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_on_a_runpod_account_without_a_key_says_how_to_fix_it_and_creates_nothing() {
    let emulator = keyless_emulator(Duration::from_millis(100)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--provider", "runpod", "--gpu", "H100_80GB"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(2), "the request has to change: exit 2");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no SSH public key") && stderr.contains("--ssh-key") && stderr.contains("--ready status"),
        "{stderr}"
    );
    assert!(emulator.all_pods().is_empty(), "nothing was created");

    // --ready status: the caller asked for the provider's word only.
    let mut cmd = against(&emulator);
    cmd.args(["up", "--provider", "runpod", "--gpu", "H100_80GB", "--ready", "status", "--json"]);
    let pod = json(&run(cmd).await);
    assert_eq!(pod["status"], "running");
    assert_eq!(emulator.live_pods().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_start_a_runpod_pod_and_a_start_on_a_full_host_says_what_to_do() {
    let emulator = emulator(Duration::from_millis(50)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--provider", "runpod", "--gpu", "H100_80GB", "--json"]);
    let pod = json(&run(cmd).await);
    let id = pod["id"].as_str().unwrap().to_string();
    let gpu = emulator.live_pods()[0].gpu_type.clone();
    // The pod has no volume: its container disk is wiped on restart. Without a terminal to ask
    // at, the stop is refused unless --yes says so.
    let mut cmd = against(&emulator);
    cmd.args(["stop", &id]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("wiped") && stderr.contains("--yes"), "{stderr}");
    assert!(!emulator.live_pods()[0].stopped, "refused: still running");
    let mut cmd = against(&emulator);
    cmd.args(["stop", "--yes", &id]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && stderr.contains("wiped"), "the warning is still said: {stderr}");
    assert!(emulator.live_pods()[0].stopped);
    // Its host's GPUs are taken now: the start is refused, typed, with the ways out.
    emulator.set_stocked_out(&gpu, true);
    let mut cmd = against(&emulator);
    cmd.args(["start", &id]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("no free GPU") && stderr.contains("--or-redeploy"), "{stderr}");
    emulator.set_stocked_out(&gpu, false);
    let mut cmd = against(&emulator);
    cmd.args(["start", &id]);
    assert!(run(cmd).await.status.success());
    assert!(!emulator.live_pods()[0].stopped);
    // Only this pod's host is full now: --or-redeploy launches a replacement and ends the old.
    let mut cmd = against(&emulator);
    cmd.args(["stop", "-y", &id]);
    assert!(run(cmd).await.status.success());
    emulator.set_stocked_out(id.split_once(':').unwrap().1, true);
    let mut cmd = against(&emulator);
    cmd.args(["start", "--or-redeploy", &id]);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("redeployed as runpod:") && stdout.contains(&format!("terminated {id}")), "{stdout}");
    let live = emulator.live_pods();
    assert_eq!(live.len(), 1);
    assert!(!live[0].stopped && format!("runpod:{}", live[0].id) != id);
    // PrimeIntellect has no stop: the error points at terminating and relaunching by the disk.
    let mut cmd = against(&emulator);
    cmd.args(["stop", "primeintellect:0123456789abcdef"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success() && stderr.contains("up --volume"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spending_limits_refuse_before_any_create_with_exit_6() {
    let emulator = emulator(Duration::from_millis(50)).await;
    let mut cmd = against(&emulator);
    cmd.args(["up", "--gpu", "H100_80GB", "--budget", "5", "--ttl", "10h"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("over budget ($5.00)"), "{stderr}");
    let mut cmd = against(&emulator);
    cmd.env("GPUCLOUD_MAX_BURN_USD_PER_HOUR", "1").args(["up", "--gpu", "H100_80GB"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(6), "{stderr}");
    assert!(stderr.contains("over the cap of $1.00/h"), "{stderr}");
    assert_eq!(emulator.stats().creates, 0, "nothing was created");
    // A prepaid offer is listed only when asked for, marked as such.
    let mut cmd = against(&emulator);
    cmd.args(["offers", "--gpu", "H100_80GB", "--allow-prepaid"]);
    cmd.assert().success().stdout(predicate::str::contains("prepaid 24h").and(predicate::str::contains("EUR 1.79")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_reports_billed_and_estimated_spend_per_provider_pod_and_day() {
    let emulator = emulator(Duration::ZERO).await;
    let up = json(
        &run({
            let mut cmd = against(&emulator);
            cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--name", "billed", "--json"]);
            cmd
        })
        .await,
    );
    let id = up["id"].as_str().unwrap().to_string();
    let raw_id = id.split_once(':').unwrap().1.to_string();
    emulator.backdate(gpucloud_emulator::Api::RunPod, &raw_id, Duration::from_secs(4 * 3600));
    let output = run({
        let mut cmd = against(&emulator);
        cmd.args(["down", &id]);
        cmd
    })
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let billed: f64 = emulator.charges().iter().filter(|c| c.id == raw_id).map(|c| c.amount()).sum();

    let report = json(
        &run({
            let mut cmd = against(&emulator);
            cmd.args(["cost", "--since", "1d", "--by", "pod", "--json"]);
            cmd
        })
        .await,
    );
    assert_eq!(
        keys(&report),
        [
            "billed_usd",
            "by_provider",
            "entries",
            "estimated_usd",
            "groups",
            "interrupted",
            "interrupted_usd",
            "since",
            "total_usd",
            "unpriced",
            "until"
        ]
    );
    assert!((report["billed_usd"].as_f64().unwrap() - billed).abs() < 0.005, "{report}");
    let group = report["groups"].as_array().unwrap().iter().find(|g| g["key"] == id.as_str()).expect("the pod's row");
    assert!((group["billed_usd"].as_f64().unwrap() - billed).abs() < 0.005, "{group}");

    let table = run({
        let mut cmd = against(&emulator);
        cmd.args(["cost", "--since", "2d", "--by", "day"]);
        cmd
    })
    .await;
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    assert!(text.starts_with("DAY"), "{text}");
    assert!(text.contains(&format!("UTC: ${billed:.2} (")), "{text}");
    assert!(text.contains("sums: RunPod's account-wide billing"), "the headline says what it sums: {text}");

    let bad = run({
        let mut cmd = against(&emulator);
        cmd.args(["cost", "--since", "forever"]);
        cmd
    })
    .await;
    assert_eq!(bad.status.code(), Some(2), "a bad --since is a usage error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_burn_counts_every_configured_provider_whatever_provider_selects() {
    let limit = Duration::from_secs(120);
    let test = async {
        // Pods stay provisioning: the PrimeIntellect one counts at its running price anyway.
        let emulator = emulator(Duration::from_secs(60)).await;
        let mut cmd = against(&emulator);
        cmd.args(["up", "--provider", "primeintellect", "--gpu", "H100_80GB", "--no-wait", "--json"]);
        let pi = json(&run(cmd).await);
        assert_eq!(pi["price_per_hour"], 1.95);
        assert_eq!(pi["price_now_per_hour"], 1.95);
        // $1.95 (PrimeIntellect, provisioning) + $1.99 (RunPod) passes $3.5.
        let mut cmd = against(&emulator);
        cmd.args(["up", "--provider", "runpod", "--gpu", "H100_80GB", "--no-wait", "--max-burn", "3.5"]);
        let output = run(cmd).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(6), "{stderr}");
        assert!(stderr.contains("burn cap"), "{stderr}");
        assert_eq!(emulator.live_pods().len(), 1, "nothing more was created");
    };
    tokio::time::timeout(limit, test).await.unwrap_or_else(|_| {
        panic!("max_burn_counts_every_configured_provider_whatever_provider_selects: over {limit:?}")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_processes_under_one_burn_cap_cannot_pass_it_together() {
    let limit = Duration::from_secs(120);
    let test = async {
        // Pods stay provisioning (listed at $0.00 by a naive read): each counts at $1.95.
        let emulator = emulator(Duration::from_secs(60)).await;
        let state = std::env::temp_dir().join(format!("gpucloud-cli-burn-ledger-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&state);
        let launches = (0..4).map(|_| {
            let mut cmd = against(&emulator);
            cmd.env("GPUCLOUD_STATE_DIR", &state);
            cmd.args(["up", "--provider", "primeintellect", "--gpu", "H100_80GB", "--no-wait", "--max-burn", "3"]);
            run(cmd)
        });
        let outputs = futures::future::join_all(launches).await;
        let codes: Vec<_> = outputs.iter().map(|o| o.status.code()).collect();
        let created = codes.iter().filter(|c| **c == Some(0)).count();
        assert_eq!(created, 1, "one $1.95/h pod fits under $3/h, two do not: {codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == Some(6)).count(), 3, "the others hit the cap: {codes:?}");
        assert_eq!(emulator.all_pods().len(), 1, "nothing more was created");
        let _ = std::fs::remove_dir_all(&state);
    };
    tokio::time::timeout(limit, test)
        .await
        .unwrap_or_else(|_| panic!("parallel_processes_under_one_burn_cap_cannot_pass_it_together: over {limit:?}"));
}
