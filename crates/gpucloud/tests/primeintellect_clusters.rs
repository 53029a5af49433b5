//! PrimeIntellect multi-node offers as clusters, against the emulator's multi-node pods: one pod
//! whose `sshConnection`/`ip` lists are the nodes. `Fleet::launch_cluster` creates it from the
//! offer, waits until every node answers, and writes the environment contract on each over the
//! system ssh (no `NCCL_SOCKET_IFNAME`: RunPod's rule); every node is its own host; the burn cap
//! counts the pod once; `clusters()` lists it, `delete_cluster` ends it and forgets every node's
//! host key; a job runs on every node with its rank; an offer that splits into other nodes than
//! asked fails and leaves nothing.

mod common;

use gpucloud::jobs::cluster::ClusterJob;
use gpucloud::remote::{OutputLine, RemoteSession, SessionOptions};
use gpucloud::{ClusterRequest, Error, Fleet, Provider};
use gpucloud_emulator::{Api, Emulator, EmulatorConfig, FaultConfig};
use std::time::Duration;

#[test]
fn a_multi_node_offer_launches_as_a_cluster_with_one_contract_on_every_node() {
    if !common::have_ssh() {
        eprintln!("skipped: no ssh client on this machine");
        return;
    }
    let (scratch, public) = common::scratch_with_key("pi-clusters");
    let runtime = common::runtime_with_state_dir(&scratch.join("state"));
    runtime.block_on(common::bounded(
        "a_multi_node_offer_launches_as_a_cluster_with_one_contract_on_every_node",
        Duration::from_secs(180),
        async {
            let emulator = common::keyless_emulator(Duration::from_millis(100), FaultConfig::none()).await;
            let fleet = Fleet::new()
                .with(common::primeintellect(&emulator))
                .with_cleanup_timeout(Duration::from_secs(10))
                .with_max_burn(5.0);
            let options = SessionOptions { identity_file: Some(scratch.join("key")), ..SessionOptions::default() };
            let request = ClusterRequest {
                ssh_public_key: Some(public.clone()),
                session: Some(options.clone()),
                ready_timeout: Duration::from_secs(60),
                ttl: Some(Duration::from_secs(3600)),
                ..ClusterRequest::new("A100_80GB", 1, 2, "pi-env")
            };

            // The offer: 2 nodes of 1 A100 from one multi-node item, launchable.
            let (offers, errors) = fleet.cluster_offers(&request.query, 2).await;
            assert!(errors.is_empty(), "{errors:?}");
            let offer = offers.iter().find(|o| o.node.provider == Provider::PrimeIntellect).expect("a multi-node offer");
            assert!(offer.launchable && offer.interconnect_gbps.is_some());

            let cluster = fleet.launch_cluster(&request).await.unwrap();
            assert_eq!((cluster.node_count, cluster.gpus_per_node, cluster.nodes.len()), (2, 1, 2));
            let pod = cluster.single_pod.clone().expect("one pod is the whole cluster");
            assert_eq!(cluster.nodes[0].pod.id, pod, "node 0 is the pod itself");
            assert_eq!(cluster.nodes[1].pod.id.to_string(), format!("{pod}#1"));
            assert!(cluster.lease_expires_at.is_some(), "the lease is in the pod's name");
            assert_eq!(emulator.live_pods().len(), 1, "one pod for both nodes");

            // Every node: its own host, the contract, the same hostfile; no NCCL interface.
            let mut homes = Vec::new();
            for node in &cluster.nodes {
                let session = RemoteSession::connect(&node.pod, &options).await.unwrap();
                let script = ". ~/.gpucloud/env && echo \"$NODE_RANK $WORLD_SIZE $NNODES $GPUS_PER_NODE \
                              $MASTER_PORT ${NCCL_SOCKET_IFNAME:-none}\" && echo \"$HOME\" && cat \"$GPUCLOUD_HOSTFILE\"";
                let (code, out, err) = session.output(script).await.unwrap();
                session.close().await.unwrap();
                assert_eq!(code, 0, "{err}");
                let mut lines = out.lines();
                let rank = node.rank.unwrap().to_string();
                assert_eq!(
                    lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
                    vec![rank.as_str(), "2", "2", "1", "29500", "none"],
                    "node {}",
                    node.pod.id
                );
                homes.push(lines.next().unwrap().to_string());
                assert_eq!(lines.count(), 2, "a hostfile line per node");
            }
            assert_ne!(homes[0], homes[1], "each node is its own host");

            // The burn cap counts the pod once, at the whole price: another 2-node cluster
            // (3.58/h) would pass the 5.00 cap.
            match fleet.launch_cluster(&ClusterRequest { session: None, ..request.clone() }).await {
                Err(Error::BurnCapExceeded { current, .. }) => {
                    assert!((current - 3.58).abs() < 0.01, "the pod counted once: {current}");
                }
                other => panic!("expected the burn cap to refuse: {other:?}"),
            }

            let (clusters, errors) = fleet.clusters().await;
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(clusters.len(), 1);
            assert_eq!(clusters[0].id, cluster.id);
            assert_eq!(clusters[0].nodes.len(), 2);

            let node_key = gpucloud::remote::known_hosts_file(&cluster.nodes[1].pod.id);
            assert!(node_key.exists(), "node 1's host key is kept under its own id");
            fleet.delete_cluster(&cluster.id).await.unwrap();
            assert!(emulator.live_pods().is_empty());
            assert!(!node_key.exists(), "forgotten with the pod");
            assert!(fleet.get_cluster(&cluster.id).await.unwrap_err().is_not_found());

            // A job on every node, each line with its rank; deleted after.
            let lines = std::sync::Mutex::new(Vec::new());
            let output = |rank: u32, line: OutputLine| lines.lock().unwrap().push((rank, line));
            let check = "test \"$(sed -n \"$((NODE_RANK + 1))p\" \"$GPUCLOUD_HOSTFILE\")\" = \"$NODE_ADDR slots=1\" && \
                         echo \"$NODE_RANK/$WORLD_SIZE\"";
            let job = ClusterJob::new(request.clone(), ["sh", "-c", check]);
            let outcome = fleet.run_on_cluster(&job, &output, std::future::pending()).await.unwrap();
            assert_eq!(outcome.exit_code, 0, "{:?}", lines.lock().unwrap());
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
            assert_eq!(seen, vec![(0, "0/2".into()), (1, "1/2".into())]);
            assert!(outcome.deletion_error.is_none() && emulator.live_pods().is_empty());

            // The pod fails mid-job: every node's command is stopped, the cluster deleted.
            let job = ClusterJob::new(request.clone(), ["sh", "-c", "touch \"$HOME/started\"; sleep 60"]);
            let started = std::time::Instant::now();
            let failing = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let Some(pod) = emulator.live_pods().into_iter().next() else { continue };
                    let running = (0..2).all(|n| emulator.node_dir(Api::PrimeIntellect, &pod.id, n).join("started").exists());
                    if running {
                        assert!(emulator.fail_pod(Api::PrimeIntellect, &pod.id));
                        return;
                    }
                }
            };
            let (outcome, ()) = tokio::join!(fleet.run_on_cluster(&job, &|_, _| {}, std::future::pending()), failing);
            let outcome = outcome.unwrap();
            assert_eq!(outcome.exit_code, 1);
            assert!(outcome.member_left.as_deref().is_some_and(|m| m.contains("ERROR")), "{:?}", outcome.member_left);
            assert!(started.elapsed() < Duration::from_secs(45), "{:?}", started.elapsed());
            assert!(emulator.live_pods().is_empty());
        },
    ));
}

#[tokio::test]
async fn an_offer_that_starts_other_nodes_than_asked_fails_and_leaves_nothing() {
    common::bounded(
        "an_offer_that_starts_other_nodes_than_asked_fails_and_leaves_nothing",
        Duration::from_secs(60),
        async {
            // A seed of its own: the other test's emulator makes seed 1's pod ids, and a confirmed
            // termination forgets the files of its pod id process-wide.
            let config =
                EmulatorConfig { ready_delay: Duration::from_millis(100), seed: 2, ..EmulatorConfig::default() };
            let emulator = Emulator::start(config).await.unwrap();
            let fleet =
                Fleet::new().with(common::primeintellect(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
            // The emulator's 4-GPU RTX 4090 item is 2 nodes of 2; PrimeIntellect states no split,
            // so it is offered as 4 nodes of 1 too. Launched so, it starts 2 nodes: a failure.
            let request = ClusterRequest {
                ready_timeout: Duration::from_secs(20),
                ..ClusterRequest::new("RTX4090_24GB", 1, 4, "split")
            };
            match fleet.launch_cluster(&request).await {
                Err(Error::NoCapacity { attempts }) => assert!(
                    attempts
                        .iter()
                        .any(|a| matches!(&a.error, Error::ClusterFailed { reason, .. } if reason.contains("ERROR"))),
                    "{attempts:?}"
                ),
                other => panic!("expected the launch to fail: {other:?}"),
            }
            assert!(emulator.live_pods().is_empty(), "the pod was deleted");
        },
    )
    .await;
}
