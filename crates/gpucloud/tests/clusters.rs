//! `Fleet::launch_cluster` against the emulator's RunPod clusters: a ready cluster names its
//! nodes (rank, private address, SSH endpoint), primary, data center and price; all or nothing
//! (a partial placement, a timeout or a cancel deletes the whole cluster and confirms it); the
//! node count is refused before any request outside 2..=250; the budget and the burn cap count
//! every node; members stay out of pod lists but in the burn.

mod common;

use gpucloud::{ClusterRequest, Error, Fleet, LaunchRequest};
use gpucloud_emulator::{FaultConfig, FaultKind};
use std::time::Duration;

const READY: Duration = Duration::from_millis(150);

fn request(nodes: u32) -> ClusterRequest {
    ClusterRequest { ready_timeout: Duration::from_secs(20), ..ClusterRequest::new("H100_80GB", 2, nodes, "train") }
}

#[tokio::test]
async fn a_cluster_launches_ready_with_every_node_named() {
    common::bounded("a_cluster_launches_ready_with_every_node_named", Duration::from_secs(60), async {
        let emulator = common::emulator(READY, FaultConfig::none()).await;
        let fleet = common::fleet(&emulator);
        let mut events = Vec::new();
        let cluster = fleet
            .launch_cluster_with_progress(
                &ClusterRequest { ttl: Some(Duration::from_secs(3600)), ..request(3) },
                |e| events.push(format!("{e:?}").split_whitespace().next().unwrap_or_default().to_string()),
                std::future::pending(),
            )
            .await
            .unwrap();
        assert_eq!(cluster.node_count, 3);
        assert_eq!(cluster.nodes.len(), 3);
        let ranks: Vec<Option<u32>> = cluster.nodes.iter().map(|n| n.rank).collect();
        assert_eq!(ranks, vec![Some(0), Some(1), Some(2)], "nodes by rank");
        assert!(cluster.nodes.iter().all(|n| n.private_address.is_some() && n.pod.ssh.is_some()));
        assert_eq!(cluster.primary.as_ref(), Some(&cluster.nodes[0].pod.id), "rank 0 is the primary");
        assert!(cluster.primary_ssh_endpoint.is_some());
        assert!(cluster.data_center.is_some());
        assert!(cluster.nodes.iter().all(|n| n.pod.data_center == cluster.data_center), "one data center");
        // The cheapest H100 cluster shape: 3 nodes of 2 H100 PCIe at the emulator's Secure
        // price, 2.39 per GPU-hour.
        let price = cluster.price_per_hour.unwrap();
        assert!((price - 3.0 * 2.0 * 2.39).abs() < 0.01, "{price}");
        assert!(cluster.lease_expires_at.is_some() && cluster.launch_tag.is_some(), "the lease is in the name");
        assert_eq!(cluster.hostfile().lines().count(), 3);
        assert!(events.iter().any(|e| e.starts_with("Created")), "{events:?}");
        // The environment every node's create carried.
        for pod in emulator.live_pods() {
            assert_eq!(pod.env["NNODES"], "3");
            assert_eq!(pod.env["GPUS_PER_NODE"], "2");
            assert_eq!(pod.env["NCCL_SOCKET_IFNAME"], "ens1");
        }

        // Members are not pods of `list` (RunPod leaves them out of /v2/pods) but the cluster is.
        let (pods, errors) = fleet.list().await;
        assert!(errors.is_empty() && pods.is_empty(), "{pods:?}");
        let (clusters, errors) = fleet.clusters().await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(clusters.len(), 1);
        assert_eq!(clusters[0].nodes.len(), 3, "listed with its members");

        // A member cannot be terminated as a pod: RunPod answers 409.
        let member = cluster.nodes[1].pod.id.clone();
        let refused = fleet.terminate(&member).await.unwrap_err();
        assert_eq!(refused.status(), Some(409), "{refused}");

        // The cost report reads RunPod's cluster billing: the members' time, billed to the cluster.
        let now = chrono::Utc::now();
        let costs = fleet.costs(now - chrono::Duration::hours(1), now + chrono::Duration::seconds(1)).await.unwrap();
        let billed = costs.entries.iter().find(|e| e.billable == gpucloud::model::billing::Billable::Cluster);
        assert!(billed.is_some_and(|e| e.id == cluster.id.id() && e.usd > 0.0), "{:?}", costs.entries);

        fleet.delete_cluster(&cluster.id).await.unwrap();
        assert!(emulator.live_pods().is_empty(), "the delete ended every member");
        assert!(emulator.clusters().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_partial_placement_deletes_the_whole_cluster_and_confirms_it() {
    common::bounded("a_partial_placement_deletes_the_whole_cluster_and_confirms_it", Duration::from_secs(60), async {
        let faults = FaultConfig {
            rate: 1.0,
            kinds: vec![FaultKind::PartialPlacement],
            creates_only: true,
            unplaced_nodes: 1,
            ..FaultConfig::default()
        };
        let emulator = common::emulator(READY, faults).await;
        let fleet = common::fleet(&emulator);
        let started = std::time::Instant::now();
        let error = fleet
            .launch_cluster(&ClusterRequest { ready_timeout: Duration::from_secs(2), ..request(4) })
            .await
            .unwrap_err();
        assert!(matches!(&error, Error::Timeout { what, .. } if what.contains("3 RUNNING")), "{error}");
        assert!(started.elapsed() < Duration::from_secs(20), "bounded: {:?}", started.elapsed());
        assert_eq!(emulator.stats().faults.get("partial-placement"), Some(&1));
        // Deleted and confirmed before the launch returned: nothing live, no cluster left.
        assert!(emulator.clusters().is_empty(), "{:?}", emulator.clusters());
        assert!(emulator.live_pods().is_empty(), "{:?}", emulator.live_pods());
        assert_eq!(emulator.all_pods().len(), 4, "all four nodes were created, and all ended");
    })
    .await;
}

#[tokio::test]
async fn a_cancelled_cluster_launch_deletes_the_cluster() {
    common::bounded("a_cancelled_cluster_launch_deletes_the_cluster", Duration::from_secs(60), async {
        // Nodes that never run, so the launch is still waiting when it is cancelled.
        let emulator = common::emulator(Duration::from_secs(3600), FaultConfig::none()).await;
        let fleet = common::fleet(&emulator);
        let created = std::sync::Arc::new(tokio::sync::Notify::new());
        let signal = std::sync::Arc::clone(&created);
        let error = fleet
            .launch_cluster_with_progress(
                &request(2),
                move |event| {
                    if matches!(event, gpucloud::ClusterEvent::Created { .. }) {
                        signal.notify_one();
                    }
                },
                async move { created.notified().await },
            )
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Cancelled), "{error}");
        assert!(emulator.clusters().is_empty() && emulator.live_pods().is_empty(), "deleted before returning");
    })
    .await;
}

#[tokio::test]
async fn node_counts_outside_the_documented_range_are_refused_before_any_request() {
    common::bounded("node_counts_outside_the_documented_range", Duration::from_secs(30), async {
        let emulator = common::emulator(READY, FaultConfig::none()).await;
        let fleet = common::fleet(&emulator);
        for nodes in [0, 1, 251] {
            let error = fleet.launch_cluster(&request(nodes)).await.unwrap_err();
            assert!(
                matches!(&error, Error::InvalidInput { field: "nodes", message } if message.contains("2..=250")),
                "{nodes}: {error}"
            );
        }
        assert_eq!(emulator.stats().requests, 0, "nothing was sent");
    })
    .await;
}

#[tokio::test]
async fn the_budget_and_the_burn_cap_count_every_node() {
    common::bounded("the_budget_and_the_burn_cap_count_every_node", Duration::from_secs(60), async {
        let emulator = common::emulator(READY, FaultConfig::none()).await;
        // 2 nodes x 1 H100 PCIe at 2.39: 4.78/h. A 2 h lease is 9.56, over a 9 USD budget.
        let fleet = common::fleet(&emulator);
        let small = |nodes| ClusterRequest { ready_timeout: Duration::from_secs(20), ..ClusterRequest::new("H100_80GB", 1, nodes, "b") };
        let over = fleet
            .launch_cluster(&ClusterRequest {
                budget_usd: Some(9.0),
                ttl: Some(Duration::from_secs(7200)),
                ..small(2)
            })
            .await
            .unwrap_err();
        assert!(matches!(over, Error::OverBudget { .. }), "{over}");
        // A cap of 4/h refuses the 4.78/h cluster before its create.
        let capped = common::fleet(&emulator).with_max_burn(4.0);
        let refused = capped.launch_cluster(&small(2)).await.unwrap_err();
        assert!(
            matches!(&refused, Error::NoCapacity { attempts } if attempts.iter().any(|a| matches!(a.error, Error::BurnCapExceeded { .. })))
                || matches!(refused, Error::BurnCapExceeded { .. }),
            "{refused}"
        );
        assert_eq!(emulator.stats().creates, 0, "nothing was created");
        // Under a 6/h cap the cluster fits; then its members (hidden from /v2/pods) count: any
        // H100 pod (1.99/h at least) would pass the cap.
        let roomy = common::fleet(&emulator).with_max_burn(6.0);
        let cluster = roomy.launch_cluster(&small(2)).await.unwrap();
        let fresh = Fleet::new().with(common::runpod(&emulator)).with_max_burn(6.0);
        let pod = fresh.launch(&LaunchRequest::new("H100_80GB", 1, "extra")).await.unwrap_err();
        assert!(format!("{pod}").contains("burn"), "members count in another fleet's burn: {pod}");
        roomy.delete_cluster(&cluster.id).await.unwrap();
        assert!(emulator.live_pods().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_member_in_error_deletes_that_cluster_and_the_launch_fails_over_to_the_next_offer() {
    common::bounded("a_member_in_error_deletes_that_cluster", Duration::from_secs(60), async {
        let emulator = common::emulator(READY, FaultConfig::none()).await;
        let fleet = common::fleet(&emulator);
        let mut first = None;
        let cluster = fleet
            .launch_cluster_with_progress(
                &request(2),
                |event| {
                    // The first cluster's rank-1 node dies as soon as the cluster exists.
                    if let gpucloud::ClusterEvent::Created { cluster } = event
                        && first.is_none()
                    {
                        first = Some(cluster.id.clone());
                        let member =
                            cluster.nodes.iter().find(|n| n.rank == Some(1)).expect("members are read at create");
                        assert!(emulator.fail_pod(gpucloud_emulator::Api::RunPod, member.pod.id.id()));
                    }
                },
                std::future::pending(),
            )
            .await
            .unwrap();
        let first = first.expect("a first cluster was created");
        assert_ne!(cluster.id, first, "the launch moved on to another offer");
        assert_eq!(cluster.gpu_type_id, "NVIDIA H100 80GB HBM3", "the next cheapest shape: H100 SXM");
        // The failed cluster is gone, every member ended; only the ready one is live.
        let clusters = emulator.clusters();
        assert_eq!(clusters.len(), 1);
        assert_eq!(clusters[0].id, cluster.id.id());
        assert_eq!(emulator.live_pods().len(), 2);
        assert!(
            emulator.live_pods().iter().all(|p| p.cluster.as_ref().is_some_and(|m| m.cluster_id == cluster.id.id()))
        );
        fleet.delete_cluster(&cluster.id).await.unwrap();
        assert!(emulator.live_pods().is_empty());
    })
    .await;
}

#[tokio::test]
async fn waiting_on_a_16_node_cluster_costs_one_request_per_poll() {
    common::bounded("waiting_on_a_16_node_cluster_costs_one_request_per_poll", Duration::from_secs(60), async {
        // Nodes run after 1 s; the client polls every 50 ms: about 20 polls before they run.
        let emulator = common::emulator(Duration::from_secs(1), FaultConfig::none()).await;
        let fleet = Fleet::new().with(common::runpod(&emulator)).with_cleanup_timeout(Duration::from_secs(10));
        let cluster = fleet
            .launch_cluster(&ClusterRequest {
                ready_timeout: Duration::from_secs(30),
                ..ClusterRequest::new("H100_80GB", 1, 16, "big")
            })
            .await
            .unwrap();
        assert_eq!(cluster.nodes.len(), 16);
        let routes = emulator.stats().requests_by_route;
        let count = |route: &str| routes.get(route).copied().unwrap_or(0);
        let summaries = count("GET /v2/clusters/{id}");
        let member_reads = count("GET /v2/clusters/{id}/pods");
        println!("16 nodes: {summaries} summary reads, {member_reads} member reads, {routes:?}");
        assert!(summaries >= 5, "it waited: {summaries}");
        // One summary per poll, however many nodes; members read once at create and once ready
        // (never per node, never per poll while nodes start).
        assert!(member_reads <= 3, "{member_reads}");
        assert_eq!(count("GET /v2/pods/{id}"), 0, "no node is read on its own");
        assert_eq!(count("GET /v2/pods"), 0, "no pod list is read to wait");
        fleet.delete_cluster(&cluster.id).await.unwrap();
        assert!(emulator.live_pods().is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_cluster_create_that_bills_and_answers_500_is_reconciled_never_sent_again() {
    common::bounded("a_cluster_create_that_bills_and_answers_500", Duration::from_secs(60), async {
        let faults = FaultConfig {
            rate: 1.0,
            kinds: vec![FaultKind::CreateThen500],
            creates_only: true,
            ..FaultConfig::default()
        };
        let emulator = common::emulator(READY, faults).await;
        let fleet = common::fleet(&emulator);
        let cluster = fleet.launch_cluster(&request(2)).await.unwrap();
        assert_eq!(emulator.stats().faults.get("create-then-500"), Some(&1));
        assert_eq!(emulator.stats().requests_by_route.get("POST /v2/clusters"), Some(&1), "sent once");
        assert_eq!(emulator.clusters().len(), 1, "found by its launch tag, not created twice");
        assert_eq!(emulator.clusters()[0].id, cluster.id.id());
        fleet.delete_cluster(&cluster.id).await.unwrap();
        assert!(emulator.live_pods().is_empty());
    })
    .await;
}

#[tokio::test]
async fn the_idle_rule_judges_a_cluster_by_all_its_nodes() {
    common::bounded("the_idle_rule_judges_a_cluster_by_all_its_nodes", Duration::from_secs(60), async {
        let emulator = common::emulator(READY, FaultConfig::none()).await;
        let fleet = common::fleet(&emulator);
        let cluster = fleet.launch_cluster(&request(2)).await.unwrap();
        let rule = gpucloud::upkeep::idle::IdleRule::new(10, Duration::from_millis(800)).with_grace(Duration::ZERO);
        let policy = gpucloud::ReapPolicy { idle: Some(rule), ..gpucloud::ReapPolicy::default() };
        let busy = cluster.nodes[1].pod.id.id().to_string();
        // One node busy: the whole cluster is kept, however long the other idles.
        assert!(emulator.set_gpu_utilization(&busy, 60));
        for _ in 0..3 {
            let report = fleet.reap(&policy).await.unwrap();
            assert!(report.reaped_clusters.is_empty(), "{:?}", report.reaped_clusters);
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        // Every node idle for the whole window: deleted as one.
        assert!(emulator.set_gpu_utilization(&busy, 0));
        assert!(fleet.reap(&policy).await.unwrap().reaped_clusters.is_empty(), "the window starts now");
        tokio::time::sleep(Duration::from_millis(900)).await;
        let report = fleet.reap(&policy).await.unwrap();
        assert_eq!(report.reaped_clusters.len(), 1, "{report:?}");
        assert!(matches!(report.reaped_clusters[0].reason, gpucloud::upkeep::reap::ReapReason::Idle { .. }));
        assert!(emulator.live_pods().is_empty() && emulator.clusters().is_empty());
    })
    .await;
}
