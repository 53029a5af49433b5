//! The job soak (issue 26): many `gpucloud run` jobs at once against the emulator with SSH faults
//! (dropped and stalled connections), non-UTF-8 output and a hostile `tar` on the pod, some of the
//! launchers killed with SIGKILL mid-job; then one `gpucloud reap`. Then one job streaming a lot of
//! output (its peak RSS), and `gpucloud exec` against plain `ssh` streaming the same bytes from the
//! same pod, side by side.
//!
//! CI runs the short form (the defaults below). The full size is `cargo xtask job-soak`
//! (release build; 20 jobs, 5 killed, 1 GiB streamed); its figures go in BENCHMARKS.md. Sizes:
//! `GPUCLOUD_JOB_SOAK_JOBS`, `GPUCLOUD_JOB_SOAK_KILLED`, `GPUCLOUD_JOB_SOAK_STREAM_MB`,
//! `GPUCLOUD_JOB_SOAK_FAULT_RATE`, `GPUCLOUD_JOB_SOAK_DEADLINE_S`.
//!
//! What must hold whatever the faults hit: every run returns within its deadline + 60 s, no run
//! panics (exit 101) or dies by a signal it was not sent, no pod is left after the reap, nothing is
//! written outside the download directories, and streamed output arrives byte for byte.

use gpucloud_emulator::{Emulator, EmulatorConfig, FaultConfig, FaultKind};
use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn size(variable: &str, default: u64) -> u64 {
    std::env::var(variable).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn have_tools() -> bool {
    ["ssh", "ssh-keygen"].iter().all(|tool| Command::new(tool).arg("-V").output().is_ok())
}

/// The lease each job's pod carries: a killed launcher's pod is the reaper's once it expires.
const TTL: Duration = Duration::from_secs(30);

struct Soak {
    emulator: Emulator,
    dir: PathBuf,
}

impl Soak {
    fn gpucloud(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("gpucloud"));
        for var in ["GPUCLOUD_EMULATOR", "PRIME_TEAM_ID", "GPUCLOUD_CONFIRM_TIMEOUT"] {
            cmd.env_remove(var);
        }
        cmd.env("PRIME_API_KEY", self.emulator.api_key())
            .env("RUNPOD_API_KEY", self.emulator.api_key())
            .env("PRIME_API_BASE_URL", self.emulator.base_url())
            .env("RUNPOD_API_BASE_URL", self.emulator.base_url())
            .env("GPUCLOUD_STATE_DIR", self.dir.join("state"))
            .stdin(Stdio::null());
        cmd
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pub")
    }
}

/// A hostile pod's `tar`: whatever it is asked, it sends a link named `results` to `victim`, then
/// `results/authorized_keys` (setuid) through it. Returns the directory to put first on `PATH`.
fn hostile_tar(dir: &Path, victim: &Path) -> PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    builder.append_link(&mut link, "results", victim).unwrap();
    let body = b"ssh-ed25519 AAAA attacker\n";
    let mut file = tar::Header::new_gnu();
    file.set_size(body.len() as u64);
    file.set_mode(0o4755);
    builder.append_data(&mut file, "results/authorized_keys", &body[..]).unwrap();
    let stream = dir.join("evil.tar");
    std::fs::write(&stream, builder.into_inner().unwrap()).unwrap();
    let bin = dir.join("evilbin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("tar");
    std::fs::write(&script, format!("#!/bin/sh\ncat '{}'\n", stream.display())).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Writes a result file and downloads it.
    Plain,
    /// Prints bytes that are not UTF-8, a `\r` and no final newline.
    Bytes,
    /// Downloads through the hostile `tar`.
    HostileTar,
    /// Runs long enough to have its launcher killed with SIGKILL.
    Killed,
}

const BYTES: &[u8] = b"a\xffb\r\n\xfe\xfdlast";

struct Running {
    kind: Kind,
    child: Child,
    started: Instant,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    /// Says when stdout's first line arrived.
    started_line: Option<std::sync::mpsc::Receiver<()>>,
    download: PathBuf,
}

fn drain(from: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    drain_telling(from, None)
}

/// Reads `from` to its end; tells `first_line` when a newline arrived.
fn drain_telling(
    mut from: impl std::io::Read + Send + 'static,
    first_line: Option<std::sync::mpsc::Sender<()>>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let (mut all, mut buffer, mut first_line) = (Vec::new(), vec![0u8; 1 << 16], first_line);
        loop {
            match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all.extend_from_slice(&buffer[..n]);
                    if all.contains(&b'\n')
                        && let Some(tell) = first_line.take()
                    {
                        let _ = tell.send(());
                    }
                }
            }
        }
        all
    })
}

/// Waits for `child` until `deadline`; kills it (and says so) past it.
fn wait_bounded(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn many_jobs_with_faults_hostile_pods_and_killed_launchers_leave_nothing_behind() {
    if !have_tools() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let jobs = size("GPUCLOUD_JOB_SOAK_JOBS", 6) as usize;
    let killed = (size("GPUCLOUD_JOB_SOAK_KILLED", 2) as usize).min(jobs);
    let stream_mb = size("GPUCLOUD_JOB_SOAK_STREAM_MB", 64);
    let fault_rate = std::env::var("GPUCLOUD_JOB_SOAK_FAULT_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.05);
    let deadline = Duration::from_secs(size("GPUCLOUD_JOB_SOAK_DEADLINE_S", 90));
    let bound = deadline + Duration::from_secs(60);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emulator = runtime
        .block_on(Emulator::start(EmulatorConfig {
            ready_delay: Duration::from_millis(300),
            ..EmulatorConfig::default()
        }))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("gpucloud-job-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "soak", "-f"])
        .arg(dir.join("key"))
        .status();
    assert!(made.unwrap().success());
    let soak = Soak { emulator, dir: dir.clone() };
    let victim = dir.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let evil = hostile_tar(&dir, &victim);

    // Every SSH command may drop mid-way or go silent; the API itself answers.
    soak.emulator.set_faults(FaultConfig {
        rate: fault_rate,
        kinds: vec![FaultKind::SshDropMidCommand, FaultKind::SshStall],
        ..FaultConfig::default()
    });

    let soak_started = Instant::now();
    let mut running = Vec::new();
    for i in 0..jobs {
        let kind =
            if i < killed { Kind::Killed } else { [Kind::Plain, Kind::Bytes, Kind::HostileTar][(i - killed) % 3] };
        let provider = if i % 2 == 0 { "runpod" } else { "primeintellect" };
        let download = dir.join(format!("out-{i}"));
        let mut cmd = soak.gpucloud();
        cmd.args(["run", "--gpu", "H100_80GB", "--provider", provider, "--ttl"])
            .arg(format!("{}s", TTL.as_secs()))
            .arg("--deadline")
            .arg(format!("{}s", deadline.as_secs()))
            .arg("--ssh-key")
            .arg(soak.key())
            .arg("--download")
            .arg(format!("results:{}", download.display()));
        if kind == Kind::HostileTar {
            cmd.arg("--env").arg(format!("PATH={}:/usr/bin:/bin", evil.display()));
        }
        let script = match kind {
            Kind::Plain => "mkdir -p results && echo ok > results/r && echo done".to_string(),
            Kind::Bytes => r"mkdir -p results && printf 'a\377b\r\n\376\375last'".to_string(),
            Kind::HostileTar => "mkdir -p results && echo fine > results/r && echo done".to_string(),
            Kind::Killed => "echo started; sleep 600".to_string(),
        };
        cmd.args(["--", "sh", "-c", &script]).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let (tell, started_line) = std::sync::mpsc::channel();
        let stdout = drain_telling(child.stdout.take().unwrap(), Some(tell));
        let stderr = drain(child.stderr.take().unwrap());
        let started_line = (kind == Kind::Killed).then_some(started_line);
        running.push(Running { kind, child, started: Instant::now(), stdout, stderr, started_line, download });
    }

    // SIGKILL the launchers of the long jobs once their command runs (it printed "started"), or
    // once their bound passed: their pods live on with a lease, for the reaper.
    for job in running.iter_mut().filter(|job| job.kind == Kind::Killed) {
        let until = job.started + bound;
        let started = job.started_line.take().expect("a killed job watches its first line");
        let _ = started.recv_timeout(until.saturating_duration_since(Instant::now()));
        let _ = job.child.kill();
    }

    let mut codes: BTreeMap<Kind, Vec<String>> = BTreeMap::new();
    let mut late = Vec::new();
    let mut problems = Vec::new();
    for mut job in running {
        let status = wait_bounded(&mut job.child, job.started + bound);
        let stdout = job.stdout.join().unwrap();
        let stderr = String::from_utf8_lossy(&job.stderr.join().unwrap()).to_string();
        let Some(status) = status else {
            late.push(format!("{:?} still running {bound:?} after its start: {stderr}", job.kind));
            continue;
        };
        use std::os::unix::process::ExitStatusExt as _;
        let code = match (status.code(), status.signal()) {
            (Some(code), _) => code.to_string(),
            (None, Some(signal)) => format!("signal {signal}"),
            (None, None) => "?".to_string(),
        };
        codes.entry(job.kind).or_default().push(code.clone());
        if status.code() == Some(101) {
            problems.push(format!("{:?} panicked: {stderr}", job.kind));
        }
        if job.kind != Kind::Killed && status.signal().is_some() {
            problems.push(format!("{:?} died of {code}: {stderr}", job.kind));
        }
        if status.success() {
            match job.kind {
                Kind::Plain
                    if std::fs::read_to_string(job.download.join("results/r")).ok().as_deref() != Some("ok\n") =>
                {
                    problems.push(format!("Plain exited 0 without its download: {stderr}"));
                }
                Kind::Bytes if stdout != BYTES => {
                    problems.push(format!("Bytes exited 0 with stdout {stdout:?}, not {BYTES:?}"));
                }
                Kind::HostileTar => {
                    problems.push(format!("the hostile tar's download was taken as a success: {stderr}"))
                }
                _ => {}
            }
        }
    }
    let returned_in = soak_started.elapsed();

    // What the killed launchers left: leased pods, reaped once their lease is over.
    soak.emulator.set_faults(FaultConfig::none());
    let left_before_reap = soak.emulator.live_pods().len();
    std::thread::sleep((soak_started + TTL + Duration::from_secs(2)).saturating_duration_since(Instant::now()));
    let mut reap = soak.gpucloud();
    reap.arg("reap").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut reaper = reap.spawn().unwrap();
    let reap_out = drain(reaper.stderr.take().unwrap());
    let reap_status = wait_bounded(&mut reaper, Instant::now() + Duration::from_secs(240));
    let reap_stderr = String::from_utf8_lossy(&reap_out.join().unwrap()).to_string();
    let left_after_reap = soak.emulator.live_pods().len();
    let outside = std::fs::read_dir(&victim).unwrap().count();

    // One job streaming `stream_mb` MiB: bytes exact, memory bounded (peak RSS sampled).
    let stream_bytes = stream_mb * 1024 * 1024;
    let mut cmd = soak.gpucloud();
    cmd.args(["run", "--gpu", "H100_80GB", "--provider", "runpod", "--ttl", "10m", "--ssh-key"])
        .arg(soak.key())
        .args(["--", "head", "-c", &stream_bytes.to_string(), "/dev/zero"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stream_started = Instant::now();
    let mut streamer = cmd.spawn().unwrap();
    let mut stream_out = streamer.stdout.take().unwrap();
    let counted = std::thread::spawn(move || {
        let (mut total, mut buffer, mut all_zero) = (0u64, vec![0u8; 1 << 16], true);
        loop {
            match stream_out.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    all_zero &= buffer[..n].iter().all(|b| *b == 0);
                    total += n as u64;
                }
            }
        }
        (total, all_zero)
    });
    let stream_err = drain(streamer.stderr.take().unwrap());
    let mut peak_rss_kib = 0u64;
    let stream_status = loop {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", streamer.id())) {
            let hwm = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak_rss_kib = peak_rss_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = streamer.try_wait().unwrap() {
            break Some(status);
        }
        if stream_started.elapsed() > Duration::from_secs(600) {
            let _ = streamer.kill();
            let _ = streamer.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stream_time = stream_started.elapsed();
    let (streamed, all_zero) = counted.join().unwrap();
    let stream_stderr = String::from_utf8_lossy(&stream_err.join().unwrap()).to_string();

    // `gpucloud exec` against plain `ssh` (the same pod, the same bytes), alternating.
    let mut up = soak.gpucloud();
    up.args(["up", "--gpu", "H100_80GB", "--provider", "runpod", "--json", "--ttl", "10m", "--ssh-key"])
        .arg(soak.key());
    let up = up.output().unwrap();
    assert!(up.status.success(), "up: {}", String::from_utf8_lossy(&up.stderr));
    let pod: serde_json::Value = serde_json::from_slice(&up.stdout).unwrap();
    let id = pod["id"].as_str().unwrap().to_string();
    let config = soak.gpucloud().args(["ssh-config", &id]).output().unwrap();
    let config_text = String::from_utf8_lossy(&config.stdout).to_string();
    std::fs::write(dir.join("ssh_config"), &config_text).unwrap();
    let host = config_text.lines().next().unwrap_or("").trim_start_matches("Host ").to_string();
    let timed = |mut cmd: Command| -> (Duration, u64) {
        let started = Instant::now();
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
        let mut out = child.stdout.take().unwrap();
        let (mut total, mut buffer) = (0u64, vec![0u8; 1 << 16]);
        while let Ok(n) = out.read(&mut buffer) {
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        let status = wait_bounded(&mut child, Instant::now() + Duration::from_secs(600));
        assert!(status.is_some_and(|s| s.success()), "a streaming command failed or hung");
        (started.elapsed(), total)
    };
    let head = ["head", "-c", &stream_bytes.to_string(), "/dev/zero"].map(str::to_string);
    let (mut via_exec, mut via_ssh) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let mut exec = soak.gpucloud();
        exec.args(["exec", &id, "--"]).args(&head);
        let (time, total) = timed(exec);
        assert_eq!(total, stream_bytes, "exec streamed every byte");
        via_exec.push(time);
        let mut ssh = Command::new("ssh");
        ssh.arg("-F").arg(dir.join("ssh_config")).args(["-o", "BatchMode=yes", &host]).arg(head.join(" "));
        let (time, total) = timed(ssh);
        assert_eq!(total, stream_bytes, "ssh streamed every byte");
        via_ssh.push(time);
    }
    via_exec.sort();
    via_ssh.sort();
    let down = soak.gpucloud().args(["down", &id]).output().unwrap();
    assert!(down.status.success(), "down: {}", String::from_utf8_lossy(&down.stderr));

    let report = format!(
        "job soak: {jobs} jobs ({killed} launchers killed), SSH fault rate {fault_rate}, deadline {deadline:?}\n\
         - all runs returned in {returned_in:.1?}; late (past deadline + 60 s): {late}\n\
         - exit codes by kind: {codes:?}\n\
         - pods live after the runs: {left_before_reap}; after one reap: {left_after_reap}\n\
         - files written outside the download directories: {outside}\n\
         - streaming {stream_mb} MiB through `run`: {streamed} bytes in {stream_time:.1?} (launch and teardown included), peak RSS {peak_rss_kib} KiB\n\
         - streaming {stream_mb} MiB from one pod, median of 3: `gpucloud exec` {exec:.2?}, plain `ssh` {ssh:.2?}: ratio {ratio:.2}\n",
        late = late.len(),
        exec = via_exec[1],
        ssh = via_ssh[1],
        ratio = via_exec[1].as_secs_f64() / via_ssh[1].as_secs_f64(),
    );
    eprintln!("{report}");
    if let Ok(path) = std::env::var("GPUCLOUD_JOB_SOAK_REPORT") {
        std::fs::write(path, &report).unwrap();
    }

    assert!(late.is_empty(), "runs past their deadline + 60 s: {late:#?}");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(reap_status.is_some_and(|s| s.success()), "reap failed or hung: {reap_stderr}");
    assert_eq!(left_after_reap, 0, "pods left after the reap: {reap_stderr}");
    assert_eq!(outside, 0, "the hostile tar wrote outside the download directory");
    assert!(stream_status.is_some_and(|s| s.success()), "the streaming run: {stream_stderr}");
    assert_eq!((streamed, all_zero), (stream_bytes, true), "the streaming run's output, byte for byte");
    assert!(soak.emulator.live_pods().is_empty());
    drop(soak);
    runtime.shutdown_timeout(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
}
