//! A whole job on a cluster (`Fleet::run_on_cluster`): the workdir synced to every node, the
//! setup on each, the command, downloads from rank 0 or from every node (a hostile node's tar
//! refused while the others' results are kept), per-node log files; a setup failing on one node
//! fails fast; the deadline deletes the cluster. Each step has a time bound that names it, and
//! every cluster is deleted (checked against the emulator).

mod common;

use common::bounded;
use gpucloud::jobs::cluster::{ClusterJob, ClusterPhase, DownloadFrom};
use gpucloud::remote::{OutputLine, SessionOptions};
use gpucloud::{ClusterRequest, Error, Fleet};
use gpucloud_emulator::FaultConfig;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(90);

/// A hostile node's `tar` (installed by the setup on one node only): whatever it is asked, it
/// sends a link to `victim` named `out`, then `out/authorized_keys`.
fn hostile_tar_stream(dir: &Path, victim: &Path) -> PathBuf {
    let mut builder = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    builder.append_link(&mut link, "out", victim).unwrap();
    let body = b"ssh-ed25519 AAAA attacker\n";
    let mut file = tar::Header::new_gnu();
    file.set_size(body.len() as u64);
    file.set_mode(0o644);
    builder.append_data(&mut file, "out/authorized_keys", &body[..]).unwrap();
    let stream = dir.join("evil.tar");
    std::fs::write(&stream, builder.into_inner().unwrap()).unwrap();
    stream
}

#[test]
fn cluster_jobs_sync_set_up_download_log_fail_fast_and_meet_their_deadline() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-jobs");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(async {
        let emulator = common::keyless_emulator(Duration::from_millis(100), FaultConfig::none()).await;
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
        let request = |nodes| ClusterRequest {
            ssh_public_key: Some(public.clone()),
            session: Some(options.clone()),
            ready_timeout: Duration::from_secs(60),
            ..ClusterRequest::new("H100_80GB", 1, nodes, "jobs")
        };
        let work = scratch.join("work");
        common::write_file(&work.join("data/input.txt"), "hello from the workdir\n");
        common::write_file(&work.join("train.sh"), "echo \"training on $NODE_RANK\"\n");
        common::write_file(&work.join(".env"), "TOKEN=secret\n");
        let victim = scratch.join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        let evil = hostile_tar_stream(&scratch, &victim);

        // 4 nodes: every node gets the files (not the secret), its setup's effect, runs the
        // command; results come back from every node, rank 2's tar is hostile and refused, the
        // others' are kept; each node's log holds its own lines.
        let setup = format!(
            "echo \"setup on $NODE_RANK\" && test ! -e .env && cp data/input.txt prepared.txt && \
             if [ \"$NODE_RANK\" = 2 ]; then mkdir -p \"$HOME/bin\" && \
             printf '#!/bin/sh\\ncat %s\\n' '{}' > \"$HOME/bin/tar\" && chmod +x \"$HOME/bin/tar\"; fi",
            evil.display()
        );
        let command = "cat prepared.txt && sh train.sh && mkdir -p out && echo \"result of $NODE_RANK\" > out/r.txt";
        let results = scratch.join("results");
        let logs = scratch.join("logs");
        let mut job = ClusterJob::new(request(4), ["sh", "-c", command]);
        job.workdir = Some(work.clone());
        job.setup = Some(setup);
        job.downloads = vec![("out".into(), results.clone())];
        job.download_from = DownloadFrom::All;
        job.log_dir = Some(logs.clone());
        let lines = std::sync::Mutex::new(Vec::new());
        let output = |rank: u32, line: OutputLine| lines.lock().unwrap().push((rank, line));
        let outcome =
            bounded("4-node job", STEP, fleet.run_on_cluster(&job, &output, std::future::pending())).await.unwrap();
        assert_eq!(outcome.exit_code, 0, "{:?}\n{:?}", outcome.nodes, lines.lock().unwrap());
        assert!(outcome.first_failure.is_none() && outcome.deletion_error.is_none() && !outcome.kept);
        assert_eq!(outcome.nodes.len(), 4);
        for (rank, node) in &outcome.nodes {
            let sync = node.sync.as_ref().unwrap_or_else(|| panic!("rank {rank} was synced"));
            assert_eq!(sync.sent, ["data/input.txt", "train.sh"], "rank {rank}: the secret stays home");
            assert_eq!(sync.left_out.len(), 1, "rank {rank}: .env reported");
            assert_eq!((node.setup_exit_code, node.exit_code), (Some(0), Some(0)), "rank {rank}");
            let log = std::fs::read_to_string(node.log.as_ref().unwrap()).unwrap();
            assert_eq!(node.log.as_deref(), Some(logs.join(format!("node-{rank}.log")).as_path()));
            assert!(
                log.contains(&format!("setup on {rank}\n"))
                    && log.contains("hello from the workdir\n")
                    && log.contains(&format!("training on {rank}\n")),
                "rank {rank}'s log: {log}"
            );
            for other in (0..4).filter(|o| o != rank) {
                assert!(!log.contains(&format!("on {other}\n")), "rank {rank}'s log has only its lines: {log}");
            }
            if *rank == 2 {
                assert_eq!(node.download_errors.len(), 1, "{:?}", node.download_errors);
                assert!(node.download_errors[0].error.contains("refused"), "{:?}", node.download_errors);
                assert!(!results.join("node-2").exists(), "nothing of the refused stream is kept");
            } else {
                assert!(node.download_errors.is_empty(), "rank {rank}: {:?}", node.download_errors);
                let result = std::fs::read_to_string(results.join(format!("node-{rank}/out/r.txt"))).unwrap();
                assert_eq!(result, format!("result of {rank}\n"));
            }
        }
        assert_eq!(outcome.download_errors().len(), 1);
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "nothing written outside the download");
        let seen = lines.lock().unwrap().clone();
        for rank in 0..4 {
            assert!(
                seen.contains(&(rank, OutputLine::Stdout(format!("training on {rank}")))),
                "rank {rank}'s lines come with its rank"
            );
        }
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "deleted after the job");

        // Downloads from rank 0 (the default): into the local directory as given.
        let primary = scratch.join("primary");
        let mut job = ClusterJob::new(request(2), ["sh", "-c", "mkdir -p out && echo \"rank $NODE_RANK\" > out/r.txt"]);
        job.downloads = vec![("out".into(), primary.clone()), ("missing".into(), primary.clone())];
        let outcome = bounded("rank-0 downloads", STEP, fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()))
            .await
            .unwrap();
        assert_eq!(outcome.exit_code, 0);
        assert_eq!(std::fs::read_to_string(primary.join("out/r.txt")).unwrap(), "rank 0\n");
        assert!(!primary.join("node-0").exists() && !primary.join("node-1").exists());
        let failures = outcome.download_errors();
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!((failures[0].0, failures[0].1.remote.as_str()), (0, "missing"), "every download attempted");
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());

        // A setup failing on one node fails fast: the others' setups are stopped, no command runs,
        // the status is the failing setup's, the cluster is deleted.
        let logs = scratch.join("failing-logs");
        let mut job = ClusterJob::new(request(3), ["sh", "-c", "echo command ran"]);
        job.setup = Some("if [ \"$NODE_RANK\" = 1 ]; then echo broken >&2; exit 4; fi; sleep 60".into());
        job.log_dir = Some(logs.clone());
        job.keep = true;
        let started = Instant::now();
        let outcome = bounded("failing setup", STEP, fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()))
            .await
            .unwrap();
        assert_eq!(outcome.exit_code, 4);
        assert_eq!(outcome.first_failure, Some((1, Some(4))));
        assert_eq!(outcome.failed_phase, Some(ClusterPhase::Setup));
        assert!(outcome.exit_codes.values().all(Option::is_none), "no command ran: {:?}", outcome.exit_codes);
        assert!(started.elapsed() < Duration::from_secs(45), "stopped, not waited out: {:?}", started.elapsed());
        assert!(!outcome.kept && outcome.deletion_error.is_none());
        assert!(std::fs::read_to_string(logs.join("node-1.log")).unwrap().contains("broken"));
        for rank in 0..3 {
            let log = std::fs::read_to_string(logs.join(format!("node-{rank}.log"))).unwrap();
            assert!(!log.contains("command ran"), "rank {rank}: {log}");
        }
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());

        // The deadline bounds the whole job: every node stopped, the cluster deleted, a timeout.
        let mut job = ClusterJob::new(request(2), ["sleep", "120"]);
        job.deadline = Some(Duration::from_secs(6));
        let started = Instant::now();
        let ended = bounded("deadline", STEP, fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending())).await;
        assert!(matches!(ended, Err(Error::Timeout { .. })), "{ended:?}");
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(6) && took < Duration::from_secs(30), "took {took:?}");
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "deleted at the deadline");

        // A cancel during the command: every node stopped, the cluster deleted.
        let job = ClusterJob::new(request(2), ["sleep", "120"]);
        let cancelled =
            bounded("cancel", STEP, fleet.run_on_cluster(&job, &|_, _| {}, tokio::time::sleep(Duration::from_secs(5))))
                .await;
        assert!(matches!(cancelled, Err(Error::Cancelled)), "{cancelled:?}");
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());

        // Bad input is refused before any request, naming the field.
        let creates = emulator.stats().creates;
        let mut job = ClusterJob::new(request(2), ["true"]);
        job.workdir = Some(scratch.join("no-such-dir"));
        let refused = fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()).await;
        assert!(matches!(refused, Err(Error::InvalidInput { field: "workdir", .. })), "{refused:?}");
        let mut job = ClusterJob::new(request(2), ["true"]);
        job.deadline = Some(Duration::ZERO);
        let refused = fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()).await;
        assert!(matches!(refused, Err(Error::InvalidInput { field: "deadline", .. })), "{refused:?}");
        assert_eq!(emulator.stats().creates, creates);
        assert!(emulator.clusters().is_empty());
    });
    let _ = std::fs::remove_dir_all(&scratch);
}
