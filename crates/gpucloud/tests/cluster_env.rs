//! One environment contract on every node: a cluster launched with a session has, on each node,
//! RunPod's documented variables, `NNODES`, `GPUS_PER_NODE`, `NCCL_SOCKET_IFNAME=ens1`, and a
//! hostfile named by `GPUCLOUD_HOSTFILE`, consistent across nodes (checked over the system ssh,
//! as a user's job would see them); a job on every node, fail fast (`Fleet::run_on_cluster`).

mod common;

use gpucloud::jobs::cluster::ClusterJob;
use gpucloud::remote::{OutputLine, RemoteSession, SessionOptions};
use gpucloud::{ClusterRequest, Fleet};
use gpucloud_emulator::FaultConfig;
use std::time::Duration;

#[test]
fn every_node_agrees_on_rank_world_size_and_hostfile() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-env");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(common::bounded("every_node_agrees_on_rank_world_size_and_hostfile", Duration::from_secs(180), async {
        let emulator = common::keyless_emulator(Duration::from_millis(100), FaultConfig::none()).await;
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
        let request = ClusterRequest {
            ssh_public_key: Some(public.clone()),
            session: Some(options.clone()),
            ready_timeout: Duration::from_secs(60),
            ..ClusterRequest::new("H100_80GB", 2, 3, "env")
        };
        let cluster = fleet.launch_cluster(&request).await.unwrap();
        assert_eq!(cluster.nodes.len(), 3);
        let mut hostfiles = Vec::new();
        for node in &cluster.nodes {
            let session = RemoteSession::connect(&node.pod, &options).await.unwrap();
            let script = ". ~/.gpucloud/env && echo \"$NODE_RANK $WORLD_SIZE $NNODES $NUM_NODES $GPUS_PER_NODE \
                          $NUM_TRAINERS $MASTER_ADDR $MASTER_PORT $NCCL_SOCKET_IFNAME $NODE_ADDR\" && cat \"$GPUCLOUD_HOSTFILE\"";
            let (code, out, err) = session.output(script).await.unwrap();
            session.close().await.unwrap();
            assert_eq!(code, 0, "{err}");
            let mut lines = out.lines();
            let vars: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
            let rank = node.rank.unwrap().to_string();
            let address = node.private_address.clone().unwrap();
            let primary = cluster.primary_node().unwrap().private_address.clone().unwrap();
            assert_eq!(
                vars,
                vec![rank.as_str(), "6", "3", "3", "2", "2", primary.as_str(), "29500", "ens1", address.as_str()],
                "node {}",
                node.pod.id
            );
            let hostfile: Vec<String> = lines.map(str::to_string).collect();
            assert_eq!(hostfile.len(), 3);
            assert_eq!(hostfile[node.rank.unwrap() as usize], format!("{address} slots=2"), "line N is rank N");
            hostfiles.push(hostfile);
        }
        assert!(hostfiles.windows(2).all(|w| w[0] == w[1]), "every node has the same hostfile");
        fleet.delete_cluster(&cluster.id).await.unwrap();
        assert!(emulator.live_pods().is_empty());

        // A job on every node: each line comes with its rank; every node agrees.
        let lines = std::sync::Mutex::new(Vec::new());
        let output = |rank: u32, line: OutputLine| lines.lock().unwrap().push((rank, line));
        let check = "test \"$(sed -n \"$((NODE_RANK + 1))p\" \"$GPUCLOUD_HOSTFILE\")\" = \"$NODE_ADDR slots=$GPUS_PER_NODE\" && \
                     echo \"$NODE_RANK/$WORLD_SIZE/$(wc -l < \"$GPUCLOUD_HOSTFILE\")\"";
        let job = ClusterJob::new(request.clone(), ["sh", "-c", check]);
        let outcome = fleet.run_on_cluster(&job, &output, std::future::pending()).await.unwrap();
        assert_eq!(outcome.exit_code, 0, "{:?}", lines.lock().unwrap());
        assert!(outcome.first_failure.is_none() && outcome.deletion_error.is_none() && !outcome.kept);
        let mut seen: Vec<(u32, String)> = lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(rank, line)| match line {
                OutputLine::Stdout(text) => Some((*rank, text.clone())),
                OutputLine::Stderr(_) => None,
            })
            .collect();
        seen.sort();
        assert_eq!(seen, vec![(0, "0/6/3".into()), (1, "1/6/3".into()), (2, "2/6/3".into())]);
        assert!(emulator.live_pods().is_empty(), "deleted after the job");

        // Fail fast: rank 1 fails at once; the others, sleeping, are stopped; its status is the job's.
        let started = std::time::Instant::now();
        let failing = "if [ \"$NODE_RANK\" = 1 ]; then exit 3; fi; sleep 60";
        let job = ClusterJob { keep: true, ..ClusterJob::new(request.clone(), ["sh", "-c", failing]) };
        let outcome = fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()).await.unwrap();
        assert_eq!(outcome.exit_code, 3);
        assert_eq!(outcome.first_failure, Some((1, Some(3))));
        assert_eq!(outcome.exit_codes.get(&0), Some(&None), "rank 0 was stopped: {:?}", outcome.exit_codes);
        assert!(started.elapsed() < Duration::from_secs(45), "stopped, not waited out: {:?}", started.elapsed());
        assert!(!outcome.kept, "a failed job's cluster is deleted even with keep");
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());

        // A member that leaves RUNNING mid-job (its machine died) stops the job on every node.
        let started = std::time::Instant::now();
        let job = ClusterJob::new(request.clone(), ["sh", "-c", "touch \"$HOME/job-started\"; sleep 60"]);
        let dying = async {
            // Once the job's command runs on every node, a member dies.
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let members: Vec<_> = emulator.live_pods().into_iter().filter(|p| p.cluster.is_some()).collect();
                let running = |id: &str| emulator.pod_dir(gpucloud_emulator::Api::RunPod, id).join("job-started").exists();
                if members.len() == 3 && members.iter().all(|m| running(&m.id)) {
                    assert!(emulator.fail_pod(gpucloud_emulator::Api::RunPod, &members[2].id));
                    return;
                }
            }
        };
        let (outcome, ()) = tokio::join!(fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()), dying);
        let outcome = outcome.unwrap();
        assert!(outcome.member_left.as_deref().is_some_and(|m| m.contains("ERROR")), "{:?}", outcome.member_left);
        assert_eq!(outcome.exit_code, 1);
        assert!(outcome.exit_codes.values().all(Option::is_none), "every node was stopped: {:?}", outcome.exit_codes);
        assert!(started.elapsed() < Duration::from_secs(45), "{:?}", started.elapsed());
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());
    }));
}
