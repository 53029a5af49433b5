//! The workdir relayed from rank 0 to the other nodes (`gpucloud::remote::relay`), against an
//! emulated 4-node RunPod cluster: the bytes leave this machine once. Every reachable node gets
//! rank 0's copy; a node the relay cannot reach (its `~/.ssh` is a file, so the relay's key cannot
//! be authorized there) comes back as an error of its own, and a cluster job syncs that node from
//! here instead (tested on the relay and in a job); the relay's key is taken out of every node's
//! `authorized_keys` and off rank 0 afterwards.

mod common;

use common::bounded;
use gpucloud::jobs::cluster::ClusterJob;
use gpucloud::remote::sync::SyncMethod;
use gpucloud::remote::{RemoteSession, SessionOptions};
use gpucloud::{ClusterRequest, Fleet};
use gpucloud_emulator::{Api, FaultConfig};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(90);

#[test]
fn a_workdir_is_relayed_from_rank_0_and_a_node_it_cannot_reach_is_synced_from_here() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-relay");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(bounded(
        "a_workdir_is_relayed_from_rank_0_and_a_node_it_cannot_reach_is_synced_from_here",
        Duration::from_secs(240),
        async {
            let emulator = common::keyless_emulator(Duration::from_millis(100), FaultConfig::none()).await;
            let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
            let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            let request = ClusterRequest {
                ssh_public_key: Some(public.clone()),
                session: Some(options.clone()),
                ready_timeout: Duration::from_secs(60),
                ..ClusterRequest::new("H100_80GB", 1, 4, "relay")
            };
            let work = scratch.join("work");
            common::write_file(&work.join("data/input.txt"), "hello from the workdir\n");
            common::write_file(&work.join("train.sh"), "echo trained\n");

            // The relay itself, on a cluster of 4 whose rank 2 cannot take the relay's key.
            let cluster = bounded("launch", STEP, fleet.launch_cluster(&request)).await.unwrap();
            let sessions: Vec<RemoteSession> = futures::future::try_join_all(
                cluster.nodes.iter().map(|node| RemoteSession::connect(&node.pod, &options)),
            )
            .await
            .unwrap();
            let homes: Vec<_> =
                cluster.nodes.iter().map(|node| emulator.node_dir(Api::RunPod, node.pod.id.id(), 0)).collect();
            std::fs::write(homes[2].join(".ssh"), "not a directory").unwrap();
            // Rank 1's authorized_keys is a link to a file with a key of the user's own: after
            // the relay it is still a link, and the file holds that key alone.
            let theirs = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeepMeKeepMeKeepMeKeepMeKeepMeKeepMeKeep0 user@laptop\n";
            std::fs::create_dir_all(homes[1].join(".ssh")).unwrap();
            std::fs::write(homes[1].join(".ssh/managed_keys"), theirs).unwrap();
            std::os::unix::fs::symlink("managed_keys", homes[1].join(".ssh/authorized_keys")).unwrap();
            gpucloud::remote::sync::sync(&sessions[0], &work, "job").await.unwrap();
            let targets: Vec<&RemoteSession> = sessions[1..].iter().collect();
            let results = bounded(
                "relay",
                STEP,
                gpucloud::remote::relay::relay(&sessions[0], "job", &targets, std::future::pending()),
            )
            .await
            .unwrap();
            assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
            assert!(results[1].is_err(), "rank 2 could not be reached: {results:?}");
            for rank in [1, 3] {
                let copied = std::fs::read_to_string(homes[rank].join("job/data/input.txt")).unwrap();
                assert_eq!(copied, "hello from the workdir\n", "rank {rank}");
                let authorized = std::fs::read_to_string(homes[rank].join(".ssh/authorized_keys")).unwrap();
                assert!(!authorized.contains("gpucloud-relay"), "rank {rank}'s key removed: {authorized}");
            }
            assert!(!homes[2].join("job").exists(), "nothing reached rank 2");
            let link = std::fs::symlink_metadata(homes[1].join(".ssh/authorized_keys")).unwrap();
            assert!(link.file_type().is_symlink(), "rank 1's authorized_keys is still a link");
            assert_eq!(std::fs::read_to_string(homes[1].join(".ssh/managed_keys")).unwrap(), theirs);
            let leftovers: Vec<_> =
                std::fs::read_dir(homes[1].join(".ssh")).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(leftovers.len(), 2, "no temporary file left: {leftovers:?}");
            let left: Vec<_> = std::fs::read_dir(&homes[0])
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(".gpucloud-relay"))
                .collect();
            assert!(left.is_empty(), "the relay's key is gone from rank 0: {left:?}");
            for session in sessions {
                session.close().await.unwrap();
            }
            fleet.delete_cluster(&cluster.id).await.unwrap();

            // A cluster job: rank 0 synced from here, the others relayed, except rank 3, which the
            // relay cannot reach (its `~/.ssh` made a file as soon as the cluster exists, before
            // the job's sync): it is synced from here; every node has the files and runs.
            let mut job = ClusterJob::new(request.clone(), ["sh", "-c", "cat data/input.txt && sh train.sh"]);
            job.workdir = Some(work.clone());
            let break_rank_3 = async {
                loop {
                    if let Some(cluster) = emulator.clusters().first() {
                        let home = emulator.node_dir(Api::RunPod, &cluster.members[3], 0);
                        std::fs::create_dir_all(&home).unwrap();
                        std::fs::write(home.join(".ssh"), "not a directory").unwrap();
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            let (outcome, ()) = bounded("4-node job", STEP, async {
                tokio::join!(fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()), break_rank_3)
            })
            .await;
            let outcome = outcome.unwrap();
            assert_eq!(outcome.exit_code, 0, "{:?}", outcome.nodes);
            for (rank, node) in &outcome.nodes {
                let sync = node.sync.as_ref().unwrap_or_else(|| panic!("rank {rank} was synced"));
                assert_eq!(sync.sent, ["data/input.txt", "train.sh"], "rank {rank}");
                let relayed = sync.method == SyncMethod::Relay;
                assert_eq!(relayed, *rank == 1 || *rank == 2, "rank {rank}: {:?}", sync.method);
                assert_eq!(node.exit_code, Some(0), "rank {rank}");
            }
            assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty(), "deleted after the job");
        },
    ));
}
