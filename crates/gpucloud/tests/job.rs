//! A whole job: launch, sync, setup, run, download, teardown, and the pod ended on every way out.

mod common;

use gpucloud::jobs::Job;
use gpucloud::remote::{OutputLine, SessionOptions};
use gpucloud::{Error, Fleet, LaunchRequest};
use gpucloud_emulator::{FaultConfig, FaultKind};
use std::time::Duration;

#[test]
fn a_job_runs_end_to_end_and_its_pod_ends_on_every_way_out() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("job");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(common::bounded("a_job_runs_end_to_end_and_its_pod_ends_on_every_way_out", std::time::Duration::from_secs(300), async {
        let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let work = scratch.join("work");
        common::write_file(&work.join("run.sh"), "echo training on $(nvidia-smi | wc -l) GPU\nmkdir -p out\necho 0.93 > out/accuracy\necho warn >&2\nexit ${EXIT:-0}\n");
        common::write_file(&work.join("notes.tmp"), "scratch");
        common::write_file(&work.join(".gpucloudignore"), "*.tmp\n");
        let job = |command: &[&str]| {
            let launch = LaunchRequest { ssh_public_key: Some(public.clone()), ..LaunchRequest::new("H100_80GB", 1, "job") };
            let mut job = Job::new(launch, command.iter().copied());
            job.workdir = Some(work.clone());
            job.session = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            job
        };

        // The whole job: output streamed, results back, the pod gone.
        let mut full = job(&["sh", "run.sh"]);
        full.setup = Some("echo setting up; test -f run.sh".into());
        full.downloads = vec![("out".into(), scratch.join("results"))];
        let mut lines = Vec::new();
        let outcome = fleet
            .run(&full, |event| if let gpucloud::jobs::JobEvent::Output(line) = event { lines.push(line.clone()) }, std::future::pending())
            .await
            .unwrap();
        assert_eq!(outcome.exit_code, 0, "{:?}", outcome.tail);
        assert!(lines.contains(&OutputLine::Stdout("setting up".into())));
        assert!(lines.contains(&OutputLine::Stdout("training on 1 GPU".into())), "{lines:?}");
        assert!(lines.contains(&OutputLine::Stderr("warn".into())));
        assert_eq!(std::fs::read_to_string(scratch.join("results/out/accuracy")).unwrap(), "0.93\n");
        let sync = outcome.sync.as_ref().unwrap();
        assert_eq!(sync.sent, [".gpucloudignore", "run.sh"], "ignored files stay home");
        let t = outcome.timings;
        for (phase, took) in [("create", t.create_accepted), ("running", t.provider_running), ("ssh", t.ssh_answering), ("sync", t.sync), ("setup", t.setup), ("run", t.run), ("download", t.download), ("teardown", t.teardown)] {
            assert!(took.is_some(), "no timing for {phase}: {t:?}");
        }
        assert!(!outcome.kept && outcome.teardown_error.is_none());
        assert!(emulator.live_pods().is_empty(), "the job's pod was terminated");

        // A failing command is an outcome; its pod goes too.
        let mut failing = job(&["sh", "run.sh"]);
        failing.launch.env.insert("EXIT".into(), "3".into());
        let outcome = fleet.run(&failing, |_| {}, std::future::pending()).await.unwrap();
        assert_eq!(outcome.exit_code, 3);
        assert!(emulator.live_pods().is_empty());

        // A failing setup: the command never runs, the pod goes.
        let mut bad_setup = job(&["sh", "run.sh"]);
        bad_setup.setup = Some("exit 9".into());
        let error = fleet.run(&bad_setup, |_| {}, std::future::pending()).await.unwrap_err();
        assert!(error.to_string().contains("setup script exited 9"), "{error}");
        assert!(emulator.live_pods().is_empty());

        // Cancelled mid-command (the CLI's signals), and past the job's deadline.
        let long = job(&["sleep", "60"]);
        let started = std::time::Instant::now();
        let error = fleet.run(&long, |_| {}, tokio::time::sleep(Duration::from_secs(2))).await.unwrap_err();
        assert!(matches!(error, Error::Cancelled), "{error}");
        let mut timed = job(&["sleep", "60"]);
        timed.deadline = Some(Duration::from_secs(2));
        let error = fleet.run(&timed, |_| {}, std::future::pending()).await.unwrap_err();
        assert!(matches!(error, Error::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(40), "neither waited for the command");
        assert!(emulator.live_pods().is_empty());

        // A dropped future: the guard ends the pod in the background.
        let dropped = tokio::time::timeout(Duration::from_secs(3), fleet.run(&long, |_| {}, std::future::pending())).await;
        assert!(dropped.is_err());
        common::eventually_live_pods(&emulator, 0).await;

        // Kept when asked: the caller owns it then.
        let mut kept = job(&["true"]);
        kept.keep = true;
        let outcome = fleet.run(&kept, |_| {}, std::future::pending()).await.unwrap();
        assert!(outcome.kept && emulator.live_pods().len() == 1);
        fleet.terminate(&outcome.pod.id).await.unwrap();

        // The connection drops mid-command: the command's fate is unknown, said so; pod ended.
        emulator.set_faults(FaultConfig { rate: 1.0, kinds: vec![FaultKind::SshDropMidCommand], ..FaultConfig::default() });
        let error = fleet.run(&job(&["sleep", "30"]), |_| {}, std::future::pending()).await.unwrap_err();
        assert!(matches!(error, Error::SshConnectionLost { .. }), "{error}");
        emulator.set_faults(FaultConfig::default());
        assert!(emulator.live_pods().is_empty());

        // Nothing to run is refused before any request.
        let creates = emulator.stats().creates;
        assert!(matches!(fleet.run(&job(&[]), |_| {}, std::future::pending()).await, Err(Error::InvalidInput { field: "command", .. })));
        assert_eq!(emulator.stats().creates, creates);
    }));
    let _ = std::fs::remove_dir_all(&scratch);
}
