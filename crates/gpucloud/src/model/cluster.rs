//! Clusters: several pods (nodes) launched, billed and ended as one.
//!
//! RunPod's `/v2/clusters` (document 953afcc) places `podCount` identical pods in one data
//! center on a private overlay network; a cluster has **no status field**, so its state is read
//! from what the document gives: `pods {total, byStatus}`, `primary {podId, status, sshEndpoint}`
//! and every member's `cluster {id, rank, ip}` ([`Cluster::readiness`]). A [`Cluster`] names its
//! nodes by rank with their private addresses and SSH endpoints, its primary, its data center and
//! its price.
//!
//! The environment every node gets is [`ENV_CONTRACT`] (see [`crate::fleet::cluster`]).

use crate::model::ids::{PodId, Provider};
use crate::model::pod::{Offer, Pod, PodStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The fewest nodes a RunPod cluster has (`compute.podCount` minimum).
pub const MIN_NODES: u32 = 2;
/// The most nodes a RunPod cluster has (`compute.podCount` maximum).
pub const MAX_NODES: u32 = 250;

/// Where every node's hostfile is written, relative to the node's home directory
/// (`$HOME/.gpucloud/hostfile`, `/root/.gpucloud/hostfile` on RunPod): one line per node, in
/// rank order, `<private address> slots=<GPUs per node>` (the form DeepSpeed and Open MPI read).
/// `GPUCLOUD_HOSTFILE` names its absolute path.
pub const HOSTFILE_PATH: &str = ".gpucloud/hostfile";

/// Where every node's environment file is written, relative to its home directory: `export`
/// lines for the whole contract ([`ENV_CONTRACT`]); `. ~/.gpucloud/env` loads it.
pub const ENV_FILE_PATH: &str = ".gpucloud/env";

/// The variables every node of a cluster launched by gpucloud carries: RunPod's documented
/// cluster variables (`PRIMARY_ADDR`, `PRIMARY_PORT`, `NODE_ADDR`, `NUM_NODES`, `NUM_TRAINERS`,
/// `HOST_NODE_ADDR`), the names torchrun and common launchers read, the hostfile's path, and
/// `NCCL_SOCKET_IFNAME=ens1`, as RunPod's Instant Clusters guides tell users to set (node-to-node
/// traffic runs on `ens1`; on `eth0` NCCL times out).
pub const ENV_CONTRACT: [&str; 14] = [
    "PRIMARY_ADDR",
    "PRIMARY_PORT",
    "MASTER_ADDR",
    "MASTER_PORT",
    "NODE_ADDR",
    "NODE_RANK",
    "NUM_NODES",
    "NNODES",
    "NUM_TRAINERS",
    "GPUS_PER_NODE",
    "HOST_NODE_ADDR",
    "WORLD_SIZE",
    "GPUCLOUD_HOSTFILE",
    "NCCL_SOCKET_IFNAME",
];

/// The interface RunPod's guides name for node-to-node traffic (`NCCL_SOCKET_IFNAME`).
pub const RUNPOD_CLUSTER_INTERFACE: &str = "ens1";

/// What separates a multi-node pod's id from a node's rank in the node's own id
/// ([`node_pod_id`]): `primeintellect:abc123#1` is node 1 of pod `abc123`.
pub const NODE_SEPARATOR: char = '#';

/// The id a node of a one-pod cluster ([`Cluster::single_pod`]) is known by: the pod's own id
/// for rank 0, `<pod>#<rank>` for the others. Each node is its own SSH host (its own host key,
/// sync manifest and connection), and those are kept per id; the provider knows only the pod.
pub fn node_pod_id(pod: &PodId, rank: u32) -> PodId {
    if rank == 0 { pod.clone() } else { PodId::new(pod.provider(), format!("{}{NODE_SEPARATOR}{rank}", pod.id())) }
}

/// The pod and rank a node id of [`node_pod_id`] names; `None` for any other id (rank 0's id
/// is the pod's own, and is not told apart here).
pub fn split_node_pod_id(id: &PodId) -> Option<(PodId, u32)> {
    let (pod, rank) = id.id().rsplit_once(NODE_SEPARATOR)?;
    let rank: u32 = rank.parse().ok().filter(|r| *r > 0)?;
    (!pod.is_empty()).then(|| (PodId::new(id.provider(), pod), rank))
}

/// A cluster's identity across providers, written `provider:id` like a pod's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterId {
    provider: Provider,
    id: String,
}

impl ClusterId {
    /// A cluster id; `id` is the provider's own identifier.
    pub fn new(provider: Provider, id: impl Into<String>) -> Self {
        Self { provider, id: id.into() }
    }

    /// Which cloud the cluster lives on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The provider's own identifier.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for ClusterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.id)
    }
}

impl Serialize for ClusterId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::str::FromStr for ClusterId {
    type Err = crate::model::error::Error;

    /// `provider:id`, as pod ids are written.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let pod: PodId = s.parse()?;
        Ok(Self::new(pod.provider(), pod.id()))
    }
}

/// A pod's membership in a cluster, as its record states it (RunPod's `Pod.cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// The cluster.
    pub cluster: ClusterId,
    /// Its node rank (`NODE_RANK`); `None` until the provider assigns it. Rank 0 is the primary.
    pub rank: Option<u32>,
    /// Its address on the cluster's private network; `None` until assigned.
    pub private_address: Option<String>,
}

impl Pod {
    /// The cluster this pod belongs to, where the provider's record says (RunPod's
    /// `Pod.cluster`); `None` for a standalone pod.
    pub fn membership(&self) -> Option<Membership> {
        match &self.raw {
            #[cfg(feature = "runpod")]
            crate::model::pod::PodRecord::RunPod(raw) => raw.cluster.as_ref().map(|c| Membership {
                cluster: ClusterId::new(Provider::RunPod, c.id.clone()),
                rank: c.rank.and_then(|r| u32::try_from(r).ok()),
                private_address: c.ip.clone(),
            }),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

/// One node of a cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterNode {
    /// Its rank (`NODE_RANK`); `None` until the provider assigns it.
    pub rank: Option<u32>,
    /// Its address on the cluster's private network (`NODE_ADDR`); `None` until assigned.
    pub private_address: Option<String>,
    /// The member pod: its id, status and SSH endpoint.
    pub pod: Pod,
}

/// A cluster: its nodes, primary, data center and price.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// `provider:id`.
    pub id: ClusterId,
    /// Which cloud.
    pub provider: Provider,
    /// Its name (launches stamp the launch tag and lease in it, as in a pod's name).
    pub name: String,
    /// The launch tag in its name, for clusters gpucloud created.
    pub launch_tag: Option<String>,
    /// When its lease expires ([`crate::model::lease`]); [`crate::Fleet::reap`] deletes it then.
    pub lease_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Canonical GPU name of every node.
    pub gpu_type: String,
    /// The provider's GPU type id (`compute.gpuTypeId`).
    pub gpu_type_id: String,
    /// GPUs on each node.
    pub gpus_per_node: u32,
    /// Nodes asked for (`compute.podCount`).
    pub node_count: u32,
    /// The one data center its nodes are in; `None` until placed.
    pub data_center: Option<String>,
    /// What all its nodes bill per hour together, USD, when known: the members' rates once they
    /// are read, otherwise the offer's price times the node count.
    pub price_per_hour: Option<f64>,
    /// Member pod counts by the provider's status (`pods.byStatus`: `RUNNING`, ...).
    pub pods_by_status: BTreeMap<String, u32>,
    /// Member pods the provider counts (`pods.total`).
    pub pods_total: u32,
    /// The primary (rank 0) pod, once placed (`primary.podId`).
    pub primary: Option<PodId>,
    /// The primary's public SSH endpoint (`primary.sshEndpoint`, `host:port`), once it runs.
    pub primary_ssh_endpoint: Option<String>,
    /// The members, by rank (unranked ones last); empty until they are read.
    pub nodes: Vec<ClusterNode>,
    /// Where the provider sells the whole cluster as one pod (a PrimeIntellect multi-node
    /// offer): that pod, which is listed, billed and ended for every node at once (its nodes'
    /// ids come from [`node_pod_id`]). `None` where every node is a pod of its own (RunPod).
    pub single_pod: Option<PodId>,
    /// Creation time.
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Whether `ranks` are 0 to `count - 1`, each once; why not otherwise.
fn ranks_are_complete(ranks: impl Iterator<Item = u32>, count: u32) -> std::result::Result<(), String> {
    let mut ranks: Vec<u32> = ranks.collect();
    ranks.sort_unstable();
    if ranks.iter().copied().eq(0..count) {
        Ok(())
    } else {
        Err(format!("the members' ranks are {ranks:?}, not 0 to {} each once", count.saturating_sub(1)))
    }
}

/// What a cluster's state says about waiting on it ([`Cluster::readiness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Every node runs, is ranked, has a private address and an SSH endpoint, and the primary's
    /// endpoint is published: ready for SSH checks.
    Ready,
    /// Not yet; why, for progress displays and timeouts.
    Waiting(String),
    /// It will not become ready: a member failed or ended.
    Failed(String),
}

impl Cluster {
    /// The node of rank 0.
    pub fn primary_node(&self) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| n.rank == Some(0))
    }

    /// The node whose member pod is `id`.
    pub fn node(&self, id: &PodId) -> Option<&ClusterNode> {
        self.nodes.iter().find(|n| &n.pod.id == id)
    }

    /// Every member's pod id, as far as known: the nodes' ids, and the one pod of a one-pod
    /// cluster ([`Cluster::single_pod`]) even before its nodes are listed.
    pub fn member_ids(&self) -> Vec<PodId> {
        let mut ids: Vec<PodId> = self.nodes.iter().map(|n| n.pod.id.clone()).collect();
        if let Some(pod) = self.single_pod.as_ref().filter(|pod| !ids.contains(pod)) {
            ids.insert(0, pod.clone());
        }
        ids
    }

    /// The pods the provider bills for this cluster: its one pod where it is one
    /// ([`Cluster::single_pod`]), else every node's.
    pub fn billed_pods(&self) -> Vec<PodId> {
        match &self.single_pod {
            Some(pod) => vec![pod.clone()],
            None => self.nodes.iter().map(|n| n.pod.id.clone()).collect(),
        }
    }

    /// GPUs across every node.
    pub fn total_gpus(&self) -> u32 {
        self.gpus_per_node * self.node_count
    }

    /// Whether every member counted runs (`pods.byStatus.RUNNING == podCount`).
    pub fn all_running(&self) -> bool {
        self.pods_by_status.get("RUNNING").copied().unwrap_or(0) == self.node_count
            && self.pods_total == self.node_count
    }

    /// The state read from the documented fields alone: `pods.byStatus` (a member `ERROR`,
    /// `EXITED` or `TERMINATED` fails the cluster), `primary.sshEndpoint`, and, once members are
    /// read, each member's rank, private address, status and SSH endpoint.
    pub fn readiness(&self) -> Readiness {
        for bad in ["ERROR", "EXITED", "TERMINATED"] {
            if let Some(n) = self.pods_by_status.get(bad).filter(|n| **n > 0) {
                return Readiness::Failed(format!("{n} of {} nodes are {bad}", self.node_count));
            }
        }
        if let Some(node) = self.nodes.iter().find(|n| n.pod.status.is_final()) {
            return Readiness::Failed(format!("node {} is {}", node.pod.id, node.pod.status));
        }
        if !self.all_running() {
            return Readiness::Waiting(format!("nodes by status: {}", self.progress_text()));
        }
        if self.primary_ssh_endpoint.is_none() {
            return Readiness::Waiting("the primary has no SSH endpoint yet".into());
        }
        if self.nodes.len() != self.node_count as usize {
            return Readiness::Waiting(format!("{} of {} members read", self.nodes.len(), self.node_count));
        }
        if let Some(node) = self.nodes.iter().find(|n| n.rank.is_none() || n.private_address.is_none()) {
            return Readiness::Waiting(format!("node {} has no rank or private address yet", node.pod.id));
        }
        // Ranks name each node's logs, downloads and place in the hostfile: two nodes of one
        // rank, or none of rank 0, would silently mix them up.
        if let Err(why) = ranks_are_complete(self.nodes.iter().filter_map(|n| n.rank), self.node_count) {
            return Readiness::Failed(why);
        }
        if let Some(node) = self.nodes.iter().find(|n| n.pod.status != PodStatus::Running || n.pod.ssh.is_none()) {
            return Readiness::Waiting(format!("node {} is {} without an SSH endpoint", node.pod.id, node.pod.status));
        }
        Readiness::Ready
    }

    /// `3 RUNNING, 1 PROVISIONING of 4`, for progress displays.
    pub fn progress_text(&self) -> String {
        let counts: Vec<String> = self.pods_by_status.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let counts = if counts.is_empty() { "none placed".to_string() } else { counts.join(", ") };
        format!("{counts} of {}", self.node_count)
    }

    /// The hostfile's lines: `<private address> slots=<GPUs per node>`, in rank order.
    pub fn hostfile(&self) -> String {
        let mut ranked: Vec<&ClusterNode> = self.nodes.iter().filter(|n| n.rank.is_some()).collect();
        ranked.sort_by_key(|n| n.rank);
        ranked
            .iter()
            .filter_map(|n| n.private_address.as_ref())
            .map(|address| format!("{address} slots={}\n", self.gpus_per_node))
            .collect()
    }
}

/// A cluster offer: `nodes` nodes of one single-node shape.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterOffer {
    /// One node: GPU type, GPUs per node, the price of one node, where.
    pub node: Offer,
    /// How many nodes.
    pub nodes: u32,
    /// Interconnect between nodes, Gbps, where the provider states it (PrimeIntellect's
    /// `interconnect`).
    pub interconnect_gbps: Option<u32>,
    /// Interconnect technology (PrimeIntellect's `interconnectType`, e.g. `Infiniband`).
    pub interconnect_type: Option<String>,
    /// Estimated provisioning time, minutes (PrimeIntellect's `provisioningTime`).
    pub provisioning_minutes: Option<u32>,
    /// Whether [`crate::Fleet::launch_cluster`] can launch it (RunPod clusters and
    /// PrimeIntellect multi-node offers can; a provider may list shapes it cannot create).
    pub launchable: bool,
}

impl ClusterOffer {
    /// `nodes` nodes of `node`, launchable, with no interconnect figures.
    pub fn new(node: Offer, nodes: u32) -> Self {
        Self {
            node,
            nodes,
            interconnect_gbps: None,
            interconnect_type: None,
            provisioning_minutes: None,
            launchable: true,
        }
    }

    /// What all nodes bill per hour together.
    pub fn price_per_hour(&self) -> f64 {
        self.node.price_per_hour * f64::from(self.nodes)
    }

    /// GPUs across all nodes.
    pub fn total_gpus(&self) -> u32 {
        self.node.gpu_count * self.nodes
    }

    /// Price per GPU-hour, for ranking shapes against each other.
    pub fn price_per_gpu_hour(&self) -> f64 {
        self.price_per_hour() / f64::from(self.total_gpus().max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_read_and_print_like_pod_ids() {
        let id: ClusterId = "runpod:abc123".parse().unwrap();
        assert_eq!((id.provider(), id.id()), (Provider::RunPod, "abc123"));
        assert_eq!(id.to_string(), "runpod:abc123");
        assert!("abc".parse::<ClusterId>().is_err());
    }

    fn summary(by_status: &[(&str, u32)], endpoint: bool) -> Cluster {
        Cluster {
            id: ClusterId::new(Provider::RunPod, "c1"),
            provider: Provider::RunPod,
            name: "c".into(),
            launch_tag: None,
            lease_expires_at: None,
            gpu_type: "H100_80GB".into(),
            gpu_type_id: "NVIDIA H100 80GB HBM3".into(),
            gpus_per_node: 8,
            node_count: 4,
            data_center: Some("US-TX-3".into()),
            price_per_hour: None,
            pods_by_status: by_status.iter().map(|(s, n)| (s.to_string(), *n)).collect(),
            pods_total: by_status.iter().map(|(_, n)| n).sum(),
            primary: None,
            primary_ssh_endpoint: endpoint.then(|| "1.2.3.4:22001".into()),
            nodes: Vec::new(),
            single_pod: None,
            created_at: None,
        }
    }

    #[test]
    fn node_ids_name_their_pod_and_rank() {
        let pod = PodId::new(Provider::PrimeIntellect, "abc123");
        assert_eq!(node_pod_id(&pod, 0), pod);
        let one = node_pod_id(&pod, 1);
        assert_eq!(one.to_string(), "primeintellect:abc123#1");
        assert_eq!(split_node_pod_id(&one), Some((pod.clone(), 1)));
        for other in ["abc123", "abc#0", "#1", "abc#x", "abc#-1"] {
            assert_eq!(split_node_pod_id(&PodId::new(Provider::PrimeIntellect, other)), None, "{other}");
        }
    }

    #[test]
    fn ranks_must_be_0_to_n_each_once() {
        assert!(ranks_are_complete([2, 0, 1].into_iter(), 3).is_ok());
        for bad in [&[0, 0, 1][..], &[1, 2, 3], &[0, 1], &[0, 1, 2, 3]] {
            let why = ranks_are_complete(bad.iter().copied(), 3).unwrap_err();
            assert!(why.contains("0 to 2"), "{bad:?}: {why}");
        }
    }

    #[test]
    fn readiness_is_read_from_the_documented_fields() {
        assert!(
            matches!(summary(&[("RUNNING", 3), ("ERROR", 1)], true).readiness(), Readiness::Failed(r) if r.contains("ERROR"))
        );
        assert!(matches!(summary(&[("RUNNING", 3), ("EXITED", 1)], true).readiness(), Readiness::Failed(_)));
        assert!(matches!(summary(&[("RUNNING", 3), ("PROVISIONING", 1)], true).readiness(), Readiness::Waiting(_)));
        assert!(matches!(summary(&[("RUNNING", 3)], true).readiness(), Readiness::Waiting(_)), "3 of 4 placed");
        let primary_unpublished = summary(&[("RUNNING", 4)], false);
        assert!(matches!(primary_unpublished.readiness(), Readiness::Waiting(w) if w.contains("primary")));
        // All running, primary published, members not read yet: still waiting on them.
        assert!(matches!(summary(&[("RUNNING", 4)], true).readiness(), Readiness::Waiting(w) if w.contains("members")));
        assert_eq!(
            summary(&[("RUNNING", 3), ("PROVISIONING", 1)], true).progress_text(),
            "1 PROVISIONING, 3 RUNNING of 4"
        );
    }
}
