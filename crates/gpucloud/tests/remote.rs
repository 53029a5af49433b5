//! Sessions on ready pods over the system ssh: commands, copies, syncs, host keys, typed errors.

mod common;

use gpucloud::remote::sync::SyncMethod;
use gpucloud::remote::{OutputLine, RemoteCommand, RemoteSession, SessionOptions};
use gpucloud::{Error, Fleet, LaunchRequest};
use gpucloud_emulator::FaultConfig;
use std::process::Command;
use std::time::Duration;

#[test]
fn a_session_runs_commands_copies_and_syncs_over_one_connection() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("session");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(common::bounded(
        "a_session_runs_commands_copies_and_syncs_over_one_connection",
        std::time::Duration::from_secs(300),
        async {
            let emulator = common::keyless_emulator(Duration::ZERO, FaultConfig::default()).await;
            let runpod = Fleet::new().with(common::runpod(&emulator));
            let request =
                LaunchRequest { ssh_public_key: Some(public.clone()), ..LaunchRequest::new("H100_80GB", 1, "job") };
            let pod = runpod.launch(&request).await.unwrap();
            let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            let session = RemoteSession::connect(&pod, &options).await.unwrap();
            assert!(session.known_hosts().exists(), "the host key is recorded in the pod's own file");

            // Output streamed line by line, both streams, the exit status returned.
            let mut lines = Vec::new();
            let mut command = RemoteCommand::script("echo one; echo two >&2; echo $STAGE; exit 7");
            command.env.insert("STAGE".into(), "three".into());
            let result = session.run(&command, &mut |line| lines.push(line)).await.unwrap();
            assert_eq!(result.exit_code, 7);
            assert!(
                lines.contains(&OutputLine::Stdout("one".into())) && lines.contains(&OutputLine::Stderr("two".into()))
            );
            assert!(lines.contains(&OutputLine::Stdout("three".into())), "{lines:?}");
            assert_eq!(result.tail, lines);
            // 127 is an exit status (the shell's "not found"), with a hint, never an error.
            let missing = session.run(&RemoteCommand::new(["no-such-program-xyz"]), &mut |_| {}).await.unwrap();
            assert_eq!(missing.exit_code, 127);
            assert!(missing.hint().is_some_and(|h| h.contains("cannot find a program")));

            // Upload and download, files and directories.
            let work = scratch.join("work");
            common::write_file(&work.join("train.py"), "print('hi')\n");
            common::write_file(&work.join("data/keep.txt"), "keep");
            common::write_file(&work.join("data/big.bin"), "0000");
            common::write_file(&work.join(".git/HEAD"), "ref");
            common::write_file(&work.join(".gpucloudignore"), "*.bin\n");
            session.upload(&work.join("train.py"), "copied").await.unwrap();
            let (code, out, _) = session.output("cat copied/train.py").await.unwrap();
            assert_eq!((code, out.as_str()), (0, "print('hi')\n"));
            session.download("copied", &scratch.join("back")).await.unwrap();
            assert_eq!(std::fs::read_to_string(scratch.join("back/copied/train.py")).unwrap(), "print('hi')\n");

            // Sync: ignored files stay home, a second sync sends only what changed.
            let first = gpucloud::remote::sync::sync(&session, &work, "job").await.unwrap();
            assert_eq!(first.sent, [".gpucloudignore", "data/keep.txt", "train.py"]);
            if Command::new("rsync").arg("--version").output().is_ok_and(|o| o.status.success()) {
                assert_eq!(first.method, SyncMethod::Rsync);
            }
            std::thread::sleep(Duration::from_millis(20));
            common::write_file(&work.join("train.py"), "print('changed')\n");
            let second = gpucloud::remote::sync::sync(&session, &work, "job").await.unwrap();
            assert_eq!((second.sent.as_slice(), second.unchanged), (&["train.py".to_string()][..], 2));
            let (_, out, _) =
                session.output("cat job/train.py; ls job/data; test -e job/.git && echo git").await.unwrap();
            assert_eq!(out, "print('changed')\nkeep.txt\n");
            session.close().await.unwrap();

            // A pod that keeps its connection alive but trickles its tar stream is given up as
            // stalled (here within a 1 s window), and leaves nothing behind.
            let stalling = SessionOptions { download_stall_window: Some(Duration::from_secs(1)), ..options.clone() };
            let session = RemoteSession::connect(&pod, &stalling).await.unwrap();
            // An emulated pod's $HOME/bin comes first on its PATH: its `tar` is the pod's.
            let plant = "printf '#!/bin/sh\\nwhile :; do printf x; sleep 0.3; done\\n' > bin/tar && chmod +x bin/tar";
            assert_eq!(session.output(plant).await.unwrap().0, 0);
            let started = std::time::Instant::now();
            let stalled =
                tokio::time::timeout(Duration::from_secs(30), session.download("copied", &scratch.join("stalled")))
                    .await
                    .expect("a stalled download is given up, never waited on forever");
            let error = stalled.unwrap_err().to_string();
            assert!(error.contains("stalled"), "{error}");
            assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
            assert!(!scratch.join("stalled").exists(), "a failed download leaves nothing");
            assert_eq!(session.output("rm bin/tar").await.unwrap().0, 0);
            session.close().await.unwrap();

            // Another key is refused, typed, naming the key tried.
            let (other, other_public) = common::scratch_with_key("other");
            let refused = RemoteSession::connect(
                &pod,
                &SessionOptions { identity_file: Some(other.join("key")), ..SessionOptions::default() },
            )
            .await;
            assert!(matches!(&refused, Err(Error::SshAuth { tried, .. }) if tried.contains("other")), "{refused:?}");

            // A host key that differs from the one recorded for this pod: refused.
            let known = gpucloud::remote::known_hosts_file(&pod.id);
            let recorded = std::fs::read_to_string(&known).unwrap();
            let host = recorded.split_whitespace().next().unwrap().to_string();
            // Another valid Ed25519 key stands in for the pod's recorded one.
            let impostor = other_public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            std::fs::write(&known, format!("{host} {impostor}\n")).unwrap();
            let changed = RemoteSession::connect(&pod, &options).await;
            assert!(matches!(changed, Err(Error::SshHostKeyChanged { .. })), "{changed:?}");

            // Terminated by gpucloud: the pod's host key is forgotten.
            runpod.terminate(&pod.id).await.unwrap();
            assert!(!known.exists(), "the known-hosts file outlived the pod");

            // A RunPod pod without 22/tcp has only the proxy: no session, typed, before connecting.
            let mut proxied = pod.clone();
            if let gpucloud::model::PodRecord::RunPod(raw) = &mut proxied.raw {
                raw.ssh.direct = None;
            }
            let refused = RemoteSession::connect(&proxied, &options).await;
            assert!(
                matches!(&refused, Err(Error::NoDirectSsh { reason, .. }) if reason.contains("proxy")),
                "{refused:?}"
            );

            // PrimeIntellect reports no utilization: the idle rule reads it over SSH (nvidia-smi).
            let pi = Fleet::new().with(common::primeintellect(&emulator));
            let pi_pod = pi.launch(&request).await.unwrap();
            // Past the idle rule's grace after start: started an hour ago.
            emulator.backdate(gpucloud_emulator::Api::PrimeIntellect, pi_pod.id.id(), Duration::from_secs(3600));
            emulator.set_gpu_utilization(pi_pod.id.id(), 2);
            let session = RemoteSession::connect(&pi_pod, &options).await.unwrap();
            assert_eq!(session.gpu_utilization().await.unwrap(), [2]);
            session.close().await.unwrap();
            let window = Duration::from_millis(800);
            let blind = gpucloud::ReapPolicy::expired_leases().with_idle(10, window);
            assert_eq!(
                pi.reap(&blind).await.unwrap().unmeasured,
                std::slice::from_ref(&pi_pod.id),
                "no SSH: not measurable"
            );
            let mut policy = gpucloud::ReapPolicy::expired_leases();
            policy.idle = Some(gpucloud::upkeep::idle::IdleRule::new(10, window).over_ssh(options.clone()));
            let first = pi.reap(&policy).await.unwrap();
            assert!(first.reaped.is_empty() && first.unmeasured.is_empty(), "{first:?}");
            // Sleeps never end early: the next sweep sees the whole window.
            tokio::time::sleep(window + Duration::from_millis(400)).await;
            let second = pi.reap(&policy).await.unwrap();
            assert_eq!(
                second.reaped.iter().map(|r| r.id.clone()).collect::<Vec<_>>(),
                std::slice::from_ref(&pi_pod.id),
                "{second:?}"
            );
            let _ = std::fs::remove_dir_all(&other);
        },
    ));
    let _ = std::fs::remove_dir_all(&scratch);
}
