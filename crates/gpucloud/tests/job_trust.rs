//! A job you can trust (issue 26): real output, real files and a dying connection. Nothing
//! hangs (each step has a bound that names it), nothing is lost, nothing is written outside a
//! download directory, and every pod ends.

mod common;

use common::bounded;
use gpucloud::jobs::{Job, JobEvent};
use gpucloud::remote::{OutputLine, OutputSink, RemoteCommand, RemoteSession, SessionOptions, Stream};
use gpucloud::{Error, Fleet, LaunchRequest};
use gpucloud_emulator::{FaultConfig, FaultKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(60);

/// A hostile pod's `tar`: whatever it is asked, it sends a link to `victim` named `results`,
/// then `results/authorized_keys` (the audit's R6).
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
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Collects lines and raw bytes.
#[derive(Default)]
struct Collect {
    lines: Vec<OutputLine>,
    stdout: Vec<u8>,
}

impl OutputSink for Collect {
    fn line(&mut self, line: OutputLine) {
        self.lines.push(line);
    }

    fn bytes(&mut self, stream: Stream, bytes: &[u8]) {
        if stream == Stream::Stdout {
            self.stdout.extend_from_slice(bytes);
        }
    }
}

#[test]
fn a_job_survives_bad_bytes_bad_paths_hostile_pods_and_dead_connections() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    // GPUCLOUD_LOG=gpucloud=debug shows each step when a bound trips.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("GPUCLOUD_LOG"))
        .with_test_writer()
        .try_init();
    let (scratch, public) = common::scratch_with_key("trust");
    // The global git excludes file (R4), before any thread exists.
    common::write_file(&scratch.join("config/git/ignore"), "secret.txt\n");
    // SAFETY: the binary's only test, before its runtime's threads start.
    unsafe { std::env::set_var("XDG_CONFIG_HOME", scratch.join("config")) };
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(bounded("the whole test", Duration::from_secs(420), async {
        let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let options = SessionOptions {
            identity_file: Some(scratch.join("key")),
            keepalive_interval: Some(Duration::from_secs(1)),
            ..SessionOptions::default()
        };
        let job = |command: &[&str]| {
            let launch =
                LaunchRequest { ssh_public_key: Some(public.clone()), ..LaunchRequest::new("H100_80GB", 1, "trust") };
            let mut job = Job::new(launch, command.iter().copied());
            job.session = options.clone();
            job
        };

        // R1: a non-UTF-8 byte ends nothing: every line comes (lossy), the bytes come exactly,
        // and the job ends with the command's status.
        let mut bytes = Vec::new();
        let mut lines = Vec::new();
        let script = "echo before; printf 'bad\\377byte\\n'; sleep 1; echo after; printf 'no newline'; exit 3";
        let outcome = bounded(
            "R1 non-UTF-8 output",
            STEP,
            fleet.run(
                &job(&["sh", "-c", script]),
                |event| match event {
                    JobEvent::OutputBytes(Stream::Stdout, chunk) => bytes.extend_from_slice(chunk),
                    JobEvent::Output(line) => lines.push(line.clone()),
                    _ => {}
                },
                std::future::pending(),
            ),
        )
        .await
        .unwrap();
        assert_eq!(outcome.exit_code, 3);
        assert_eq!(bytes, b"before\nbad\xffbyte\nafter\nno newline");
        assert_eq!(lines, ["before", "bad\u{fffd}byte", "after", "no newline"].map(|l| OutputLine::Stdout(l.into())),);
        assert!(emulator.live_pods().is_empty());

        // R3: 127 is an exit status: the downloads still run.
        let mut exits_127 = job(&["sh", "-c", "mkdir -p out && echo done > out/r && exit 127"]);
        exits_127.downloads = vec![("out".into(), scratch.join("dl127"))];
        let outcome =
            bounded("R3 exit 127", STEP, fleet.run(&exits_127, |_| {}, std::future::pending())).await.unwrap();
        assert_eq!(outcome.exit_code, 127);
        assert_eq!(std::fs::read_to_string(scratch.join("dl127/out/r")).unwrap(), "done\n");
        assert!(emulator.live_pods().is_empty());

        // R2: --keep and a bad download: every download attempted, failures collected, the pod
        // kept because the command ran.
        let mut kept = job(&["sh", "-c", "mkdir -p results && echo valuable > results/model.bin"]);
        kept.keep = true;
        kept.downloads = vec![("typo".into(), scratch.join("dl1")), ("results".into(), scratch.join("dl2"))];
        let outcome = bounded("R2 keep and a bad download", STEP, fleet.run(&kept, |_| {}, std::future::pending()))
            .await
            .unwrap();
        assert!(outcome.kept, "the command ran: the pod is kept");
        assert_eq!(outcome.download_errors.len(), 1, "{:?}", outcome.download_errors);
        assert_eq!(outcome.download_errors[0].remote, "typo");
        assert!(!scratch.join("dl1").exists(), "a failed download leaves no empty directory behind");
        assert_eq!(std::fs::read_to_string(scratch.join("dl2/results/model.bin")).unwrap(), "valuable\n");
        assert_eq!(emulator.live_pods().len(), 1);
        bounded("terminating the kept pod", STEP, fleet.terminate(&outcome.pod.id)).await.unwrap();

        // R6: a hostile pod's tar stream (a link out, then a file through it) writes nothing
        // outside the download directory, and says so.
        let victim = scratch.join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        let evil = hostile_tar(&scratch, &victim);
        let mut hostile = job(&["true"]);
        hostile.launch.env.insert("PATH".into(), format!("{}:/usr/bin:/bin", evil.display()));
        let out = scratch.join("out");
        hostile.downloads = vec![("results".into(), out.clone()), ("results".into(), out.clone())];
        let outcome =
            bounded("R6 hostile tar", STEP, fleet.run(&hostile, |_| {}, std::future::pending())).await.unwrap();
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(outcome.download_errors.len(), 2, "{:?}", outcome.download_errors);
        assert!(outcome.download_errors[0].error.contains("refused"), "{:?}", outcome.download_errors);
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "nothing written outside the download");
        assert!(!out.exists(), "nothing of a refused stream is kept, not even the directory it made");
        assert!(emulator.live_pods().is_empty());

        // R8: a cancel (the CLI's Ctrl-C) reaches the remote command: it does not run on.
        let marker = scratch.join("cancelled-marker");
        let script = format!("sleep 4; touch '{}'", marker.display());
        let cancelled = bounded(
            "R8 cancel",
            STEP,
            fleet.run(&job(&["sh", "-c", &script]), |_| {}, tokio::time::sleep(Duration::from_millis(2500))),
        )
        .await;
        assert!(matches!(cancelled, Err(Error::Cancelled)), "{cancelled:?}");
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!marker.exists(), "the remote command ran on after the cancel");
        assert!(emulator.live_pods().is_empty());

        // R7: a deadline is also the pod's lease, so a reaper ends it if this process dies.
        let mut leased = job(&["true"]);
        leased.deadline = Some(Duration::from_secs(120));
        let before = chrono::Utc::now();
        let outcome = bounded("R7 lease", STEP, fleet.run(&leased, |_| {}, std::future::pending())).await.unwrap();
        let lease = gpucloud::model::lease::parse(&outcome.pod.name).and_then(|p| p.lease_expires_at);
        let lease = lease.unwrap_or_else(|| panic!("no lease in {:?}", outcome.pod.name));
        let expected = before + chrono::Duration::seconds(120 + 600);
        assert!((lease - expected).num_seconds().abs() < 30, "lease {lease}, expected about {expected}");

        // A connection that stays open and goes silent is detected by keepalives and is a lost
        // connection, within seconds; the pod ends.
        emulator.set_faults(FaultConfig { rate: 1.0, kinds: vec![FaultKind::SshStall], ..FaultConfig::default() });
        let started = std::time::Instant::now();
        let stalled = bounded(
            "a stalled connection",
            Duration::from_secs(30),
            fleet.run(&job(&["sleep", "60"]), |_| {}, std::future::pending()),
        )
        .await;
        emulator.set_faults(FaultConfig::default());
        assert!(matches!(stalled, Err(Error::SshConnectionLost { .. })), "{stalled:?}");
        assert!(started.elapsed() < Duration::from_secs(25), "took {:?}", started.elapsed());
        common::eventually_live_pods(&emulator, 0).await;

        // Sessions: a close the connection never answers is bounded and its ControlMaster ends;
        // terminating a pod cuts a running command (the emulator, as a real cloud).
        let pod = bounded("launch", STEP, fleet.launch(&job(&["true"]).launch)).await.unwrap();
        emulator.set_faults(FaultConfig { rate: 1.0, kinds: vec![FaultKind::SshMasterHang], ..FaultConfig::default() });
        let session = bounded("connect", STEP, RemoteSession::connect(&pod, &options)).await.unwrap();
        let master = session.master_pid().expect("the ControlMaster's pid");
        let socket = session.control_socket().to_path_buf();
        let mut collect = Collect::default();
        let result = bounded(
            "a command whose close hangs",
            STEP,
            session.run(&RemoteCommand::new(["echo", "hi"]), &mut collect),
        )
        .await
        .unwrap();
        emulator.set_faults(FaultConfig::default());
        assert_eq!((result.exit_code, collect.stdout.as_slice()), (0, &b"hi\n"[..]));
        let started = std::time::Instant::now();
        let _ = bounded("closing a hung master", Duration::from_secs(20), session.close()).await;
        assert!(started.elapsed() <= gpucloud::remote::CLOSE_TIMEOUT + Duration::from_secs(3));
        assert!(!master_alive(master, &socket), "the master was ended");

        // R10: the recorded key is the pod's, whatever port it answers on now.
        let known = gpucloud::remote::known_hosts_file(&pod.id);
        let recorded = std::fs::read_to_string(&known).unwrap();
        let key = recorded.split_once(' ').unwrap().1;
        std::fs::write(&known, format!("[127.0.0.1]:1 {key}")).unwrap();
        let session =
            bounded("connect after a port change", STEP, RemoteSession::connect(&pod, &options)).await.unwrap();

        // R4, R5: what git ignores globally stays home; a link inside arrives as a link, one that
        // leaves is reported.
        let work = scratch.join("work");
        common::write_file(&work.join("train.py"), "print(1)\n");
        common::write_file(&work.join("secret.txt"), "hunter2");
        common::write_file(&work.join(".env"), "TOKEN=1");
        std::os::unix::fs::symlink("train.py", work.join("latest")).unwrap();
        std::os::unix::fs::symlink("/mnt/datasets", work.join("data")).unwrap();
        let first = bounded("sync", STEP, gpucloud::remote::sync::sync(&session, &work, "job")).await.unwrap();
        assert_eq!(first.sent, ["latest", "train.py"]);
        let left: Vec<&str> = first.left_out.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(left, [".env", "data"], "{:?}", first.left_out);
        let (_, listing, _) =
            bounded("listing", STEP, session.output("readlink job/latest; ls -A job | sort | tr '\\n' ' '"))
                .await
                .unwrap();
        assert_eq!(listing, "train.py\n.gpucloud-sync latest train.py ");
        // R12: the pod lost its files (a restart wiped its disk): the next sync sends them again.
        bounded("wiping", STEP, session.output("rm -rf job")).await.unwrap();
        let again =
            bounded("sync after a wipe", STEP, gpucloud::remote::sync::sync(&session, &work, "job")).await.unwrap();
        assert_eq!(again.sent, first.sent, "a wiped directory is sent whole again");
        let unchanged =
            bounded("sync again", STEP, gpucloud::remote::sync::sync(&session, &work, "job")).await.unwrap();
        assert_eq!((unchanged.sent.len(), unchanged.unchanged), (0, 2));

        // E5: terminating the pod cuts the running command and kills it.
        let marker = scratch.join("marker");
        let script = format!("sleep 4; touch '{}'", marker.display());
        let command = RemoteCommand::script(script);
        let mut ignore = |_: OutputLine| {};
        let running = session.run(&command, &mut ignore);
        let terminate = async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            fleet.terminate(&pod.id).await
        };
        let (ran, terminated) =
            bounded("a command on a terminated pod", STEP, async { tokio::join!(running, terminate) }).await;
        terminated.unwrap();
        assert!(matches!(ran, Err(Error::SshConnectionLost { .. })), "{ran:?}");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!marker.exists(), "the command was killed with its pod");
        drop(session);
        assert!(emulator.live_pods().is_empty());
    }));
    let _ = std::fs::remove_dir_all(&scratch);
}

/// Whether the ControlMaster `pid` of `socket` still runs (no zombie; and still that master:
/// on a busy machine a process id is reused within seconds).
fn master_alive(pid: u32, socket: &Path) -> bool {
    let running = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')))
        .unwrap_or(false);
    let socket = socket.as_os_str().as_encoded_bytes();
    let same = std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| cmdline.windows(socket.len()).any(|w| w == socket));
    running && same
}
