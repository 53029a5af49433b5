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

/// The SSH state of every test of this binary (one per process: see `runtime_with_state_dir`).
fn state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("gpucloud-test-{}-cluster-relay-state", std::process::id()))
}

#[test]
fn a_workdir_is_relayed_from_rank_0_and_a_node_it_cannot_reach_is_synced_from_here() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-relay");
    let runtime = common::runtime_with_state_dir(&state_dir());
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
                gpucloud::remote::relay::relay(&sessions[0], "job", &listing(&work), &targets, std::future::pending()),
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

/// An emulator of its own seed (the tests of this binary share one state dir: pod ids must not
/// meet), a 4-node cluster on it and a session to each node, with each node's home.
async fn four_nodes(
    scratch: &std::path::Path,
    public: &str,
    seed: u64,
) -> (gpucloud_emulator::Emulator, Fleet, gpucloud::Cluster, Vec<RemoteSession>, Vec<std::path::PathBuf>) {
    let emulator = gpucloud_emulator::Emulator::start(gpucloud_emulator::EmulatorConfig {
        ready_delay: Duration::from_millis(100),
        seed,
        ..gpucloud_emulator::EmulatorConfig::default()
    })
    .await
    .unwrap();
    let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
    let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
    let request = ClusterRequest {
        ssh_public_key: Some(public.to_string()),
        session: Some(options.clone()),
        ready_timeout: Duration::from_secs(60),
        ..ClusterRequest::new("H100_80GB", 1, 4, "relay")
    };
    let cluster = bounded("launch", STEP, fleet.launch_cluster(&request)).await.unwrap();
    let mut nodes = cluster.nodes.clone();
    nodes.sort_by_key(|n| n.rank);
    let sessions: Vec<RemoteSession> =
        futures::future::try_join_all(nodes.iter().map(|node| RemoteSession::connect(&node.pod, &options)))
            .await
            .unwrap();
    let homes = nodes.iter().map(|node| emulator.node_dir(Api::RunPod, node.pod.id.id(), 0)).collect();
    (emulator, fleet, cluster, sessions, homes)
}

/// What a sync of `work` leaves in the remote directory: what a relay of it copies.
fn listing(work: &std::path::Path) -> Vec<String> {
    let files = gpucloud::remote::sync::files_to_sync(work).unwrap();
    files.into_keys().chain([gpucloud::remote::sync::MARKER_FILE.to_string()]).collect()
}

fn relay_dirs(home: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(home)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".gpucloud-relay"))
        .collect()
}

/// A node's `authorized_keys` is the user's: a last line without its newline keeps its key (the
/// relay's line is not glued to it, and its removal does not take the user's line along), and a
/// link stays a link (the relay's line is taken out of the file it points to).
#[test]
fn the_relay_leaves_a_nodes_own_authorized_keys_as_it_found_them() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-relay-authorized");
    let runtime = common::runtime_with_state_dir(&state_dir());
    runtime.block_on(bounded(
        "the_relay_leaves_a_nodes_own_authorized_keys_as_it_found_them",
        Duration::from_secs(240),
        async {
            let (_emulator, fleet, cluster, sessions, homes) = four_nodes(&scratch, &public, 11).await;
            // Rank 1: the user's key on a last line with no newline.
            std::fs::create_dir_all(homes[1].join(".ssh")).unwrap();
            std::fs::write(homes[1].join(".ssh/authorized_keys"), common::ACCOUNT_KEY).unwrap();
            // Rank 2: authorized_keys a link to a file of the user's.
            std::fs::create_dir_all(homes[2].join(".ssh")).unwrap();
            common::write_file(&homes[2].join("keys/authorized"), &format!("{}\n", common::ACCOUNT_KEY));
            std::os::unix::fs::symlink("../keys/authorized", homes[2].join(".ssh/authorized_keys")).unwrap();
            let work = scratch.join("work");
            common::write_file(&work.join("a.txt"), "a\n");
            gpucloud::remote::sync::sync(&sessions[0], &work, "job").await.unwrap();
            let targets: Vec<&RemoteSession> = sessions[1..].iter().collect();
            let results = bounded(
                "relay",
                STEP,
                gpucloud::remote::relay::relay(&sessions[0], "job", &listing(&work), &targets, std::future::pending()),
            )
            .await
            .unwrap();
            assert!(results.iter().all(Result::is_ok), "every node reached: {results:?}");
            let kept = std::fs::read_to_string(homes[1].join(".ssh/authorized_keys")).unwrap();
            assert!(kept.lines().any(|l| l.trim() == common::ACCOUNT_KEY), "rank 1's own key kept: {kept:?}");
            assert!(!kept.contains("gpucloud-relay"), "{kept:?}");
            let link = homes[2].join(".ssh/authorized_keys");
            assert!(
                std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
                "rank 2's link is still a link"
            );
            let pointed = std::fs::read_to_string(homes[2].join("keys/authorized")).unwrap();
            assert_eq!(pointed, format!("{}\n", common::ACCOUNT_KEY), "rank 2's file: the relay's line out");
            for session in sessions {
                session.close().await.unwrap();
            }
            fleet.delete_cluster(&cluster.id).await.unwrap();
        },
    ));
}

/// Other nodes get what a sync from here would have sent them, not whatever rank 0's remote
/// directory holds: not a file left there before (an earlier run's), and not the relay's own
/// key when the remote directory is the login directory.
#[test]
fn a_job_relays_the_synced_files_only() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-relay-only");
    let runtime = common::runtime_with_state_dir(&state_dir());
    runtime.block_on(bounded("a_job_relays_the_synced_files_only", Duration::from_secs(240), async {
        let emulator = gpucloud_emulator::Emulator::start(gpucloud_emulator::EmulatorConfig {
            ready_delay: Duration::from_millis(100),
            seed: 12,
            ..gpucloud_emulator::EmulatorConfig::default()
        })
        .await
        .unwrap();
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
        let request = ClusterRequest {
            ssh_public_key: Some(public.clone()),
            session: Some(options),
            ready_timeout: Duration::from_secs(60),
            ..ClusterRequest::new("H100_80GB", 1, 4, "relay")
        };
        let work = scratch.join("work");
        common::write_file(&work.join("train.sh"), "echo trained\n");
        let mut job = ClusterJob::new(request, ["sh", "train.sh"]);
        job.workdir = Some(work);
        job.remote_dir = ".".into();
        job.keep = true;
        // A file of rank 0's own in its remote directory before the job's sync.
        let leave_a_file_on_rank_0 = async {
            loop {
                if let Some(cluster) = emulator.clusters().first() {
                    let home = emulator.node_dir(Api::RunPod, &cluster.members[0], 0);
                    common::write_file(&home.join("rank-0-only.txt"), "mine\n");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        let (outcome, ()) = bounded("4-node job", STEP, async {
            tokio::join!(fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()), leave_a_file_on_rank_0)
        })
        .await;
        let outcome = outcome.unwrap();
        assert_eq!(outcome.exit_code, 0, "{:?}", outcome.nodes);
        for node in &outcome.cluster.nodes {
            let rank = node.rank.unwrap();
            let home = emulator.node_dir(Api::RunPod, node.pod.id.id(), 0);
            assert!(home.join("train.sh").exists(), "rank {rank}");
            assert!(relay_dirs(&home).is_empty(), "rank {rank}: the relay's key left: {:?}", relay_dirs(&home));
            if rank != 0 {
                assert_eq!(outcome.nodes[&rank].sync.as_ref().unwrap().method, SyncMethod::Relay, "rank {rank}");
                assert!(!home.join("rank-0-only.txt").exists(), "rank {rank} got rank 0's own file");
            }
        }
        fleet.delete_cluster(&outcome.cluster.id).await.unwrap();
    }));
}

/// A rank 0 whose `ssh-keygen` never returns does not hold the relay past a stop; nor past the
/// relay's own bound for its key when nothing stops it: the nodes are synced from here.
#[test]
fn a_rank_0_that_hangs_making_the_key_does_not_hold_the_relay() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-relay-hang");
    let runtime = common::runtime_with_state_dir(&state_dir());
    runtime.block_on(bounded(
        "a_rank_0_that_hangs_making_the_key_does_not_hold_the_relay",
        Duration::from_secs(240),
        async {
            let (_emulator, fleet, cluster, sessions, homes) = four_nodes(&scratch, &public, 13).await;
            let fake = homes[0].join("bin/ssh-keygen");
            common::write_file(&fake, "#!/bin/sh\nexec sleep 120\n");
            std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let work = scratch.join("work");
            common::write_file(&work.join("a.txt"), "a\n");
            gpucloud::remote::sync::sync(&sessions[0], &work, "job").await.unwrap();
            let targets: Vec<&RemoteSession> = sessions[1..].iter().collect();
            let started = std::time::Instant::now();
            let relayed = bounded(
                "relay stopped while rank 0 makes its key",
                Duration::from_secs(40),
                gpucloud::remote::relay::relay(
                    &sessions[0],
                    "job",
                    &listing(&work),
                    &targets,
                    tokio::time::sleep(Duration::from_secs(1)),
                ),
            )
            .await;
            assert!(started.elapsed() < Duration::from_secs(35), "{:?}", started.elapsed());
            match relayed {
                Ok(results) => {
                    assert!(results.iter().all(|r| matches!(r, Err(gpucloud::Error::Cancelled))), "{results:?}")
                }
                Err(why) => panic!("a stop is a stop, not an unavailable relay: {why}"),
            }
            for session in sessions {
                session.close().await.unwrap();
            }
            fleet.delete_cluster(&cluster.id).await.unwrap();
        },
    ));
}

/// A target whose `tar` hangs mid-copy: a stop ends the relay, and its key is gone from every
/// node and from rank 0 all the same.
#[test]
fn a_stop_during_the_copy_still_takes_the_key_away() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("cluster-relay-stop");
    let runtime = common::runtime_with_state_dir(&state_dir());
    runtime.block_on(bounded("a_stop_during_the_copy_still_takes_the_key_away", Duration::from_secs(240), async {
        let (_emulator, fleet, cluster, sessions, homes) = four_nodes(&scratch, &public, 14).await;
        let fake = homes[2].join("bin/tar");
        common::write_file(&fake, "#!/bin/sh\nexec sleep 60\n");
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let work = scratch.join("work");
        common::write_file(&work.join("a.txt"), "a\n");
        gpucloud::remote::sync::sync(&sessions[0], &work, "job").await.unwrap();
        let targets: Vec<&RemoteSession> = sessions[1..].iter().collect();
        let results = bounded(
            "relay stopped mid-copy",
            Duration::from_secs(40),
            gpucloud::remote::relay::relay(
                &sessions[0],
                "job",
                &listing(&work),
                &targets,
                tokio::time::sleep(Duration::from_secs(3)),
            ),
        )
        .await
        .unwrap();
        assert!(results.iter().all(|r| matches!(r, Err(gpucloud::Error::Cancelled))), "{results:?}");
        for (rank, home) in homes.iter().enumerate().skip(1) {
            let authorized = std::fs::read_to_string(home.join(".ssh/authorized_keys")).unwrap_or_default();
            assert!(!authorized.contains("gpucloud-relay"), "rank {rank}: {authorized}");
        }
        assert!(relay_dirs(&homes[0]).is_empty(), "{:?}", relay_dirs(&homes[0]));
        for session in sessions {
            session.close().await.unwrap();
        }
        fleet.delete_cluster(&cluster.id).await.unwrap();
    }));
}
