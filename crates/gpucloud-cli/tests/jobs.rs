//! `gpucloud run`, `exec`, `cp` and `ssh-config` as a user runs them, against emulated pods that
//! are real SSH hosts, with the system ssh.

use assert_cmd::Command;
use gpucloud_emulator::{Emulator, EmulatorConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn have_ssh() -> bool {
    std::process::Command::new("ssh").arg("-V").output().is_ok()
}

/// A scratch directory with a real Ed25519 key pair `key`/`key.pub`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gpucloud-cli-jobs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "t", "-f"])
        .arg(dir.join("key"))
        .status();
    assert!(made.unwrap().success());
    dir
}

fn gpucloud(emulator: &Emulator, state: &Path) -> Command {
    let mut cmd = Command::cargo_bin("gpucloud").unwrap();
    for var in ["GPUCLOUD_EMULATOR", "PRIME_TEAM_ID"] {
        cmd.env_remove(var);
    }
    cmd.env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url())
        .env("GPUCLOUD_STATE_DIR", state)
        .timeout(Duration::from_secs(90));
    cmd
}

async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_streams_the_command_exits_with_its_status_and_leaves_no_pod() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("run");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("train.sh"), "echo epoch 1\necho loss >&2\nmkdir -p out && echo 0.9 > out/acc\nexit 4\n")
        .unwrap();
    let key = dir.join("key.pub");
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--ssh-key"]).arg(&key);
    cmd.arg("--workdir").arg(&work);
    cmd.args(["--setup", "echo setup done"]);
    cmd.arg("--download").arg(format!("out:{}", dir.join("results").display()));
    cmd.args(["--", "sh", "train.sh"]);
    let output = run(cmd).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(4), "the remote exit status: {stderr}");
    assert_eq!(stdout, "setup done\nepoch 1\n", "remote stdout to stdout: {stderr}");
    assert!(stderr.contains("loss") && stderr.contains("terminating"), "{stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("results/out/acc")).unwrap(), "0.9\n");
    assert!(emulator.live_pods().is_empty(), "the pod was terminated");

    // --json: the outcome with its phase timings on stdout, the output on stderr.
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--json", "--ssh-key"]).arg(&key);
    cmd.args(["--", "echo", "hello"]);
    let output = run(cmd).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(outcome["exit_code"], 0);
    for phase in ["create_accepted", "provider_running", "ssh_answering", "run", "teardown"] {
        assert!(outcome["timings_s"][phase].as_f64().is_some(), "{phase}: {outcome}");
    }
    assert_eq!(outcome["tail"][0], serde_json::json!({"stream": "stdout", "line": "hello"}));
    assert!(emulator.live_pods().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_cp_and_ssh_config_work_on_a_running_pod() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("exec");
    let state = dir.join("state");
    let key = dir.join("key.pub");
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--json", "--ssh-key"]).arg(&key);
    let output = run(cmd).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let pod: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = pod["id"].as_str().unwrap().to_string();

    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["exec", &id, "--ssh-key"]).arg(dir.join("key")).args([
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 5",
    ]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("err"));
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["exec", &id, "--ssh-key"]).arg(dir.join("key")).args(["--", "no-such-tool"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(127), "127 is the command's exit status: {stderr}");
    assert!(stderr.contains("hint: 127") && stderr.contains("cannot find a program"), "{stderr}");
    // Output passes through byte for byte: a non-UTF-8 byte, no newline added.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["exec", &id, "--ssh-key"]).arg(dir.join("key")).args(["--", "printf", r"a\377b\r\nlast"]);
    let output = run(cmd).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.stdout, b"a\xffb\r\nlast");

    // The pod remembers the key it was launched with: no --ssh-key needed.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["exec", &id, "--", "echo", "remembered"]);
    let output = run(cmd).await;
    assert_eq!(String::from_utf8_lossy(&output.stdout), "remembered\n", "{}", String::from_utf8_lossy(&output.stderr));

    // Ctrl-C reaches the remote command: it does not run on (R8).
    let marker = dir.join("exec-marker");
    let mut exec = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
    exec.env_remove("GPUCLOUD_EMULATOR")
        .env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url())
        .env("GPUCLOUD_STATE_DIR", &state)
        .args(["exec", &id, "--ssh-key"])
        .arg(dir.join("key"))
        .args(["--", "sh", "-c", &format!("echo started; sleep 4; touch '{}'", marker.display())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = exec.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    });
    assert_eq!(tokio::time::timeout(Duration::from_secs(60), first).await.unwrap().unwrap(), "started\n");
    assert!(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let waited = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    let output = tokio::time::timeout(Duration::from_secs(30), waited)
        .await
        .expect("exec_cp_and_ssh_config_work_on_a_running_pod: exec still running 30 s after SIGINT")
        .unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(!marker.exists(), "the remote command ran on after Ctrl-C");

    // cp both ways: a directory up, a file back.
    std::fs::create_dir_all(dir.join("data/sub")).unwrap();
    std::fs::write(dir.join("data/sub/x.txt"), "x").unwrap();
    let mut cmd = gpucloud(&emulator, &state);
    cmd.arg("cp").arg(dir.join("data")).arg(format!("{id}:inbox")).arg("--ssh-key").arg(dir.join("key"));
    let output = run(cmd).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut cmd = gpucloud(&emulator, &state);
    cmd.arg("cp").arg(format!("{id}:inbox/data/sub/x.txt")).arg(dir.join("back")).arg("--ssh-key").arg(dir.join("key"));
    let output = run(cmd).await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(std::fs::read_to_string(dir.join("back/x.txt")).unwrap(), "x");

    // ssh-config: a Host block the system ssh can use as it is.
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["ssh-config", &id, "--ssh-key"]).arg(dir.join("key"));
    let output = run(cmd).await;
    let config = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(config.contains("UserKnownHostsFile") && config.contains("StrictHostKeyChecking yes"), "{config}");
    std::fs::write(dir.join("config"), &config).unwrap();
    let host = config.lines().next().unwrap().trim_start_matches("Host ").to_string();
    let ssh = std::process::Command::new("ssh")
        .arg("-F")
        .arg(dir.join("config"))
        .args(["-o", "BatchMode=yes", &host, "echo via-config"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ssh.stdout), "via-config\n", "{}", String::from_utf8_lossy(&ssh.stderr));

    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["down", &id]);
    assert!(run(cmd).await.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_while_the_command_runs_ends_the_pod_and_exits_128_plus_the_signal() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("signal");
    for (signal, code) in [("INT", 130), ("TERM", 143), ("HUP", 129)] {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
        command
            .env_remove("GPUCLOUD_EMULATOR")
            .env("PRIME_API_KEY", emulator.api_key())
            .env("RUNPOD_API_KEY", emulator.api_key())
            .env("PRIME_API_BASE_URL", emulator.base_url())
            .env("RUNPOD_API_BASE_URL", emulator.base_url())
            .env("GPUCLOUD_STATE_DIR", dir.join("state"))
            .args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--ssh-key"])
            .arg(dir.join("key.pub"))
            .args(["--", "sh", "-c", "echo started; sleep 60"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        // Wait for the command's first line: it runs on the pod now.
        let stdout = child.stdout.take().unwrap();
        let first = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
            line
        });
        assert_eq!(tokio::time::timeout(Duration::from_secs(60), first).await.unwrap().unwrap(), "started\n");
        assert_eq!(emulator.live_pods().len(), 1);
        let pid = child.id().to_string();
        assert!(std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(emulator.live_pods().is_empty(), "SIG{signal}: the pod was terminated before the CLI exited");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_does_not_leave_the_jobs_pod_running() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("pipe");
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
    command
        .env_remove("GPUCLOUD_EMULATOR")
        .env("PRIME_API_KEY", emulator.api_key())
        .env("RUNPOD_API_KEY", emulator.api_key())
        .env("PRIME_API_BASE_URL", emulator.base_url())
        .env("RUNPOD_API_BASE_URL", emulator.base_url())
        .env("GPUCLOUD_STATE_DIR", dir.join("state"))
        .args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--ssh-key"])
        .arg(dir.join("key.pub"))
        .args(["--", "sh", "-c", "echo one; sleep 1; echo two; echo three; exit 3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    // As `| head -1`: read one line, then close the pipe while the command still runs.
    let stdout = child.stdout.take().unwrap();
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        line
    });
    assert_eq!(tokio::time::timeout(Duration::from_secs(60), first).await.unwrap().unwrap(), "one\n");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert_eq!(status.code(), Some(3), "the job ran to its end and exited with the command's status");
    assert!(emulator.live_pods().is_empty(), "the pod was terminated although the reader went away");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_7_when_the_pods_termination_cannot_be_confirmed() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("unconfirmed");
    // The command succeeds; then a job that fails (its setup script): 7 either way, not the
    // command's status nor the failure's usual code.
    let succeeds: &[&str] = &["--", "sh", "-c", "echo started; sleep 2"];
    let fails: &[&str] = &["--setup", "echo started; sleep 2; exit 3", "--", "true"];
    for args in [succeeds, fails] {
        let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
        command
            .env_remove("GPUCLOUD_EMULATOR")
            .env("PRIME_API_KEY", emulator.api_key())
            .env("RUNPOD_API_KEY", emulator.api_key())
            .env("PRIME_API_BASE_URL", emulator.base_url())
            .env("RUNPOD_API_BASE_URL", emulator.base_url())
            .env("GPUCLOUD_STATE_DIR", dir.join("state"))
            .env("GPUCLOUD_CONFIRM_TIMEOUT", "15s")
            .args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--ssh-key"])
            .arg(dir.join("key.pub"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let first = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
            line
        });
        assert_eq!(tokio::time::timeout(Duration::from_secs(60), first).await.unwrap().unwrap(), "started\n");
        // From now on the API answers nothing but errors.
        emulator.set_faults(gpucloud_emulator::FaultConfig {
            rate: 1.0,
            kinds: vec![gpucloud_emulator::FaultKind::ServerError],
            ..gpucloud_emulator::FaultConfig::default()
        });
        let waited = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
        let output = tokio::time::timeout(Duration::from_secs(90), waited)
            .await
            .expect("run_exits_7_when_the_pods_termination_cannot_be_confirmed: gpucloud run still running after 90 s (GPUCLOUD_CONFIRM_TIMEOUT=15s)")
            .unwrap();
        emulator.set_faults(gpucloud_emulator::FaultConfig::default());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(7), "{args:?}: {stderr}");
        assert!(stderr.contains("could not be confirmed terminated"), "{stderr}");
        if args == succeeds {
            assert!(stderr.contains("the command exited 0"), "the command's own status is said: {stderr}");
        }
        // Clean up what the faults left.
        for pod in emulator.live_pods() {
            let mut cmd = gpucloud(&emulator, &dir.join("state"));
            cmd.args(["down", &format!("runpod:{}", pod.id)]);
            assert!(run(cmd).await.status.success());
        }
        assert!(emulator.live_pods().is_empty());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsafe_state_directory_is_refused_before_any_pod_is_created() {
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("unsafe-state");
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    // Others may write to it: they could plant a host key or swap the ControlMaster's socket.
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut cmd = gpucloud(&emulator, &state);
    cmd.args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--ssh-key"]).arg(dir.join("key.pub"));
    cmd.args(["--", "true"]);
    let out = run(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("others may write"), "{stderr}");
    assert!(emulator.all_pods().is_empty(), "refused only after a pod was created: {:?}", emulator.all_pods());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --nodes 4`: the command runs on every node of a RunPod cluster, each line prefixed with
/// its rank; every node checks that NODE_RANK, WORLD_SIZE and the hostfile agree; a failing node
/// stops the others and its status is the exit status; the cluster is deleted either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_nodes_4_runs_on_every_node_with_a_consistent_environment_and_fails_fast() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("run-nodes");
    let key = dir.join("key.pub");
    let check = "line=$(sed -n \"$((NODE_RANK + 1))p\" \"$GPUCLOUD_HOSTFILE\"); \
                 test \"$line\" = \"$NODE_ADDR slots=$GPUS_PER_NODE\" || exit 9; \
                 test \"$WORLD_SIZE\" = $((NNODES * GPUS_PER_NODE)) || exit 8; \
                 test \"$(wc -l < \"$GPUCLOUD_HOSTFILE\")\" = \"$NNODES\" || exit 7; \
                 echo \"ok $NODE_RANK of $NNODES, world $WORLD_SIZE, master $MASTER_ADDR:$MASTER_PORT\"";
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--count", "2", "--nodes", "4", "--ssh-key"]).arg(&key);
    cmd.args(["--", "sh", "-c", check]);
    let output = run(cmd).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for rank in 0..4 {
        assert!(
            stdout.contains(&format!("[rank {rank}] ok {rank} of 4, world 8, master 10.65.0.2:29500")),
            "rank {rank}: {stdout}"
        );
    }
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "deleted after the run");

    // Fail fast: rank 1 exits 5 at once; the other would sleep a minute.
    let started = std::time::Instant::now();
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--nodes", "2", "--ssh-key"]).arg(&key);
    cmd.args(["--", "sh", "-c", "if [ \"$NODE_RANK\" = 1 ]; then echo failing >&2; exit 5; fi; sleep 60"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("[rank 1] failing") && stderr.contains("rank 1 failed first"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(50), "the other node was stopped: {:?}", started.elapsed());
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());

    // Not yet: spot recovery on a cluster is refused before anything is created.
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--nodes", "2", "--recover", "1", "--ssh-key"]).arg(&key);
    cmd.args(["--", "true"]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--recover"));
    assert_eq!(emulator.clusters().len(), 0);
}

/// PrimeIntellect's multi-node offers through the CLI: `run --provider primeintellect --nodes 2`
/// runs on both nodes of one multi-node pod with the contract (no `NCCL_SOCKET_IFNAME`, RunPod's
/// rule); `up --nodes 2` launches it, `ls` shows it once as a cluster with both nodes, `down` on
/// its id ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn primeintellect_multi_node_offers_run_and_launch_as_clusters() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("pi-run-nodes");
    let key = dir.join("key.pub");
    let check = "line=$(sed -n \"$((NODE_RANK + 1))p\" \"$GPUCLOUD_HOSTFILE\"); \
                 test \"$line\" = \"$NODE_ADDR slots=$GPUS_PER_NODE\" || exit 9; \
                 echo \"ok $NODE_RANK of $NNODES, world $WORLD_SIZE, nccl ${NCCL_SOCKET_IFNAME:-unset}\"";
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--provider", "primeintellect", "--gpu", "A100_80GB", "--nodes", "2", "--ssh-key"]).arg(&key);
    cmd.args(["--", "sh", "-c", check]);
    let output = run(cmd).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    for rank in 0..2 {
        assert!(
            stdout.contains(&format!("[rank {rank}] ok {rank} of 2, world 2, nccl unset")),
            "rank {rank}: {stdout}"
        );
    }
    assert!(emulator.live_pods().is_empty(), "deleted after the run");

    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["up", "--provider", "primeintellect", "--gpu", "A100_80GB", "--nodes", "2", "--ttl", "1h", "--json"]);
    cmd.arg("--ssh-key").arg(&key);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let cluster: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let id = cluster["id"].as_str().unwrap().to_string();
    assert_eq!(cluster["single_pod"], cluster["id"], "{cluster}");
    assert_eq!(cluster["nodes"].as_array().map(Vec::len), Some(2), "{cluster}");
    assert_eq!(cluster["nodes"][1]["pod"], format!("{id}#1"));

    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.arg("ls");
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert_eq!(stdout.matches(id.as_str()).count(), 3, "the cluster and its two nodes, no pod line: {stdout}");

    // Node 1 is an SSH host of its own by its node id.
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["exec", &format!("{id}#1"), "--ssh-key"]).arg(dir.join("key")).args(["--", "sh", "-c", "pwd"]);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let pod = id.strip_prefix("primeintellect:").unwrap();
    let home = emulator.node_dir(gpucloud_emulator::Api::PrimeIntellect, pod, 1);
    assert_eq!(stdout.trim(), home.canonicalize().unwrap_or(home).display().to_string());

    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["down", &id]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(emulator.live_pods().is_empty());
}

/// `up --nodes` says "delete with: gpucloud down CLUSTER (or any member's id)", and `ls` shows
/// every node's id: `down` on node 1 of a PrimeIntellect multi-node pod (`<pod>#1`) deletes the
/// whole cluster, as a RunPod member's does; `get` on it shows the cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_and_get_on_a_primeintellect_node_id_act_on_its_cluster() {
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("pi-node-down");
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["up", "--provider", "primeintellect", "--gpu", "A100_80GB", "--nodes", "2", "--json"]);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let cluster: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let node = cluster["nodes"][1]["pod"].as_str().unwrap().to_string();
    assert!(node.ends_with("#1"), "{cluster}");

    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["get", &node, "--json"]);
    let output = run(cmd).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(cluster["id"].as_str().unwrap()), "{stdout}");

    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["down", &node]);
    let output = run(cmd).await;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(emulator.live_pods().is_empty(), "the whole multi-node pod ended");
}

/// `run --nodes 3` with `--workdir`, `--setup`, `--download --download-from all`, `--log-dir` and
/// `--json`: every node has the files and the setup's effect, results come back per node, each
/// node's log holds its lines, the JSON names it all; then `--deadline` deletes the cluster
/// (exit 5), and the default log directory is the state directory's `logs/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_nodes_syncs_sets_up_downloads_logs_and_meets_its_deadline() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    let dir = scratch("run-nodes-workdir");
    let key = dir.join("key.pub");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        work.join("train.sh"),
        "cat ready && echo \"trained on $NODE_RANK\" && mkdir -p out && echo $NODE_RANK > out/rank\n",
    )
    .unwrap();
    let (results, logs) = (dir.join("results"), dir.join("logs"));
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--nodes", "3", "--json", "--ssh-key"]).arg(&key);
    cmd.arg("--workdir").arg(&work).args(["--setup", "echo \"set up $NODE_RANK\" > ready"]);
    cmd.arg("--download").arg(format!("out:{}", results.display())).args(["--download-from", "all"]);
    cmd.arg("--log-dir").arg(&logs);
    cmd.args(["--", "sh", "train.sh"]);
    let output = run(cmd).await;
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let outcome: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(outcome["exit_code"], 0);
    assert_eq!(outcome["log_dir"], logs.display().to_string());
    assert_eq!(outcome["download_errors"], serde_json::json!([]));
    let nodes = outcome["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{outcome}");
    for (rank, node) in nodes.iter().enumerate() {
        assert_eq!(node["rank"], rank);
        assert_eq!(node["sync"]["sent"], serde_json::json!(["train.sh"]), "{node}");
        assert_eq!((node["setup_exit_code"].as_i64(), node["exit_code"].as_i64()), (Some(0), Some(0)), "{node}");
        let log_path = logs.join(format!("node-{rank}.log"));
        assert_eq!(node["log"], log_path.display().to_string());
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert_eq!(log, format!("set up {rank}\ntrained on {rank}\n"), "rank {rank}'s log");
        assert_eq!(
            std::fs::read_to_string(results.join(format!("node-{rank}/out/rank"))).unwrap(),
            format!("{rank}\n")
        );
        assert!(stderr.contains(&format!("[rank {rank}] trained on {rank}")), "{stderr}");
    }
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "deleted after the run");

    // --deadline: the whole job bounded; the cluster deleted at the deadline; exit 5. Without
    // --log-dir the logs go to the state directory's logs/.
    let started = std::time::Instant::now();
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--nodes", "2", "--deadline", "6s", "--ssh-key"]).arg(&key);
    cmd.args(["--", "sh", "-c", "echo started; sleep 120"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(40), "{:?}", started.elapsed());
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "deleted at the deadline");
    let default_logs: Vec<PathBuf> =
        std::fs::read_dir(dir.join("state/logs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(default_logs.len(), 1, "{default_logs:?}");
    assert!(stderr.contains(&default_logs[0].display().to_string()), "the default is said: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `run --nodes 2` under the emulator's member fault (rank 1 dies once it has run a while):
/// `--on-member-failure abort` (the default) fails fast with exit 1 and deletes the cluster;
/// `--on-member-failure recreate --recreate-max 1` runs the job again on a new cluster, whose
/// member dies too, and then ends as abort does, the recreation in `--json`; nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_nodes_on_a_member_that_dies_aborts_or_recreates() {
    if !have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let emulator =
        Emulator::start(EmulatorConfig { ready_delay: Duration::ZERO, ..EmulatorConfig::default() }).await.unwrap();
    // Long enough that no launch outlives it on a loaded machine (that would fail the launch).
    emulator.set_member_lifetime(Some(Duration::from_secs(10)));
    let dir = scratch("rn-dies");
    let key = dir.join("key.pub");

    let started = std::time::Instant::now();
    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--nodes", "2", "--ssh-key"]).arg(&key);
    cmd.args(["--", "sleep", "90"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("left RUNNING") || stderr.contains("rank 1 failed first"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "failed fast: {:?}", started.elapsed());
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());

    let mut cmd = gpucloud(&emulator, &dir.join("state"));
    cmd.args(["run", "--gpu", "H100_80GB", "--nodes", "2", "--on-member-failure", "recreate", "--recreate-max", "1"]);
    cmd.args(["--json", "--ssh-key"]).arg(&key).args(["--", "sleep", "90"]);
    let output = run(cmd).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let outcome: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let recreations = outcome["recreations"].as_array().unwrap();
    assert_eq!(recreations.len(), 1, "{outcome}");
    assert_ne!(recreations[0]["cluster"], outcome["cluster"], "{outcome}");
    assert!(recreations[0]["ran_for"].as_f64().unwrap() > 0.0, "{outcome}");
    assert!(stderr.contains("the job was run again on a new cluster"), "{stderr}");
    assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "both clusters deleted");
    emulator.set_member_lifetime(None);
    let _ = std::fs::remove_dir_all(&dir);
}
