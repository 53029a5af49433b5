//! A member that dies while a cluster job runs (`ClusterJob::on_member_failure`): with `Abort`
//! (the default) every node is stopped, the cluster deleted and confirmed, and the job fails
//! fast with exit status 1; with `Recreate { max }` the cluster is deleted and confirmed and the
//! whole job run again on a new cluster, at most `max` times, then it ends as `Abort` does
//! (`max: 0` is `Abort`); a node's command failing always aborts. Members die by the emulator's
//! member fault (`Emulator::set_member_lifetime`) or by `Emulator::fail_pod` mid-command. Each
//! step has a time bound that names it, and no cluster or member is left (checked against the
//! emulator).

mod common;

use common::bounded;
use gpucloud::jobs::cluster::{ClusterJob, MemberFailurePolicy};
use gpucloud::remote::{OutputLine, SessionOptions};
use gpucloud::{ClusterRequest, Fleet};
use gpucloud_emulator::{Api, FaultConfig};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_secs(120);

#[test]
fn a_member_that_dies_aborts_or_recreates_the_cluster_job() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-member-failure");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(async {
        let emulator = common::keyless_emulator(Duration::from_millis(100), FaultConfig::none()).await;
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
        let request = |nodes| ClusterRequest {
            ssh_public_key: Some(public.clone()),
            session: Some(options.clone()),
            ready_timeout: Duration::from_secs(60),
            ..ClusterRequest::new("H100_80GB", 1, nodes, "members")
        };
        let nothing_left = || emulator.live_pods().is_empty() && emulator.clusters().is_empty();

        // Abort, under the member fault: rank 1 dies mid-command; the job fails fast with 1,
        // the cluster deleted and confirmed.
        // Long enough that no launch (SSH readiness, the environment written) outlives it on a
        // loaded machine: a member that died during the launch would fail that launch instead.
        emulator.set_member_lifetime(Some(Duration::from_secs(10)));
        let job = ClusterJob::new(request(2), ["sleep", "90"]);
        let started = Instant::now();
        let outcome = bounded(
            "abort under the member fault",
            STEP,
            fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()),
        )
        .await
        .unwrap();
        assert_eq!(outcome.exit_code, 1, "{outcome:?}");
        assert!(outcome.first_failure.is_none_or(|(_, code)| code.is_none()), "no command's own status: {outcome:?}");
        assert!(outcome.recreations.is_empty() && outcome.deletion_error.is_none());
        assert!(started.elapsed() < Duration::from_secs(60), "failed fast, not waited out: {:?}", started.elapsed());
        assert!(nothing_left(), "deleted after the member died");

        // Recreate with max 0 is Abort.
        let mut job = ClusterJob::new(request(2), ["sleep", "90"]);
        job.on_member_failure = MemberFailurePolicy::Recreate { max: 0 };
        let outcome = bounded("recreate max 0", STEP, fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()))
            .await
            .unwrap();
        assert_eq!(outcome.exit_code, 1, "{outcome:?}");
        assert!(outcome.recreations.is_empty(), "{:?}", outcome.recreations);
        assert!(nothing_left());

        // Recreate with max 1 under the fault: the second cluster's member dies too; past the
        // limit it ends as Abort, with the one recreation listed.
        let mut job = ClusterJob::new(request(2), ["sleep", "90"]);
        job.on_member_failure = MemberFailurePolicy::Recreate { max: 1 };
        let outcome =
            bounded("recreate past its limit", STEP, fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()))
                .await
                .unwrap();
        assert_eq!(outcome.exit_code, 1, "{outcome:?}");
        assert_eq!(outcome.recreations.len(), 1, "{:?}", outcome.recreations);
        let first = &outcome.recreations[0];
        assert_ne!(first.cluster, outcome.cluster.id, "a new cluster");
        assert!(first.reason.contains("ERROR"), "{first:?}");
        assert_eq!(first.members.iter().map(|m| m.0).collect::<Vec<_>>(), [Some(1)], "the highest rank: {first:?}");
        assert!(nothing_left());
        emulator.set_member_lifetime(None);

        // Recreate: a member put in ERROR mid-command (once); the job runs again from the start on
        // a new cluster and finishes there; nothing left behind.
        let work = scratch.join("work");
        common::write_file(
            &work.join("job.sh"),
            "echo \"started on $NODE_RANK\"; sleep 5; echo \"done on $NODE_RANK\"\n",
        );
        let mut job = ClusterJob::new(request(3), ["sh", "job.sh"]);
        job.workdir = Some(work.clone());
        job.setup = Some("echo \"setup on $NODE_RANK\"".into());
        job.log_dir = Some(scratch.join("logs"));
        job.on_member_failure = MemberFailurePolicy::Recreate { max: 2 };
        let failed_one = AtomicBool::new(false);
        let lines = std::sync::Mutex::new(Vec::new());
        let output = |rank: u32, line: OutputLine| {
            if line == OutputLine::Stdout("started on 0".into()) && !failed_one.swap(true, Ordering::SeqCst) {
                let cluster = emulator.clusters().pop().expect("the job's cluster");
                assert!(emulator.fail_pod(Api::RunPod, cluster.members.last().unwrap()));
            }
            lines.lock().unwrap().push((rank, line));
        };
        let outcome = bounded(
            "recreate after a failed member",
            STEP,
            fleet.run_on_cluster(&job, &output, std::future::pending()),
        )
        .await
        .unwrap();
        assert_eq!(outcome.exit_code, 0, "{outcome:?}\n{:?}", lines.lock().unwrap());
        assert_eq!(outcome.recreations.len(), 1, "{:?}", outcome.recreations);
        let recreation = &outcome.recreations[0];
        assert_eq!(recreation.members.iter().map(|m| m.0).collect::<Vec<_>>(), [Some(2)], "{recreation:?}");
        assert!(recreation.ran_for > Duration::ZERO);
        assert_ne!(recreation.cluster, outcome.cluster.id);
        for (rank, node) in &outcome.nodes {
            assert_eq!((node.setup_exit_code, node.exit_code), (Some(0), Some(0)), "rank {rank}");
            assert!(node.sync.is_some(), "rank {rank} synced again");
            let log = std::fs::read_to_string(node.log.as_ref().unwrap()).unwrap();
            assert!(log.contains(&format!("done on {rank}")), "rank {rank}: {log}");
            let earlier = scratch.join(format!("logs/node-{rank}.attempt-1.log"));
            let earlier = std::fs::read_to_string(&earlier).unwrap();
            assert!(earlier.contains(&format!("setup on {rank}")) && !earlier.contains("done on"), "{earlier}");
        }
        assert!(nothing_left(), "both clusters deleted");

        // A node's command failing is the job's own failure: no recreation.
        let mut job = ClusterJob::new(request(2), ["sh", "-c", "if [ \"$NODE_RANK\" = 1 ]; then exit 3; fi; sleep 60"]);
        job.on_member_failure = MemberFailurePolicy::Recreate { max: 2 };
        let outcome = bounded("command failure", STEP, fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()))
            .await
            .unwrap();
        assert_eq!((outcome.exit_code, outcome.first_failure), (3, Some((1, Some(3)))), "{outcome:?}");
        assert!(outcome.recreations.is_empty());
        assert!(nothing_left());
    });
    let _ = std::fs::remove_dir_all(&scratch);
}
