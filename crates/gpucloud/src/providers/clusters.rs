//! What a cluster create sends, whichever cloud takes it: [`ClusterSpec`]. The operations are
//! [`Provisioner`](crate::Provisioner)'s cluster methods ([`Provisioner::create_cluster`] and
//! the rest), implemented by RunPod (`/v2/clusters`) and PrimeIntellect (a multi-node offer
//! is one pod); other providers answer [`crate::Error::Unsupported`].
//!
//! [`Provisioner::create_cluster`]: crate::Provisioner::create_cluster

use crate::model::Offer;
use crate::model::cluster::{MAX_NODES, MIN_NODES};
use crate::model::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// What to create: `nodes` nodes of the single-node shape `offer`, every node with the same
/// container settings.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// One node's shape (GPU type, GPUs per node, data centers, price).
    pub offer: Offer,
    /// How many nodes: 2..=250 (RunPod's `compute.podCount`).
    pub nodes: u32,
    /// Cluster name; the SDK appends the lease stamp and launch tag as for pods
    /// ([`crate::model::lease`]).
    pub name: String,
    /// Image; `None`: the provider's default.
    pub image: Option<String>,
    /// Environment on every node (the cluster contract's fixed part is added by the fleet).
    pub env: BTreeMap<String, String>,
    /// Container disk per node, GB.
    pub disk_gb: Option<u32>,
    /// Ports to expose besides `22/tcp`, which every node gets.
    pub ports: Vec<String>,
    /// Unique tag in the name, to find the cluster after an ambiguous create.
    pub launch_tag: Option<String>,
    /// Lease stamped in the name.
    pub ttl: Option<Duration>,
    /// The provider's id of an SSH key to install on every node, where the create names keys
    /// (PrimeIntellect's `sshKeyId`; RunPod installs the account's keys).
    pub ssh_key_id: Option<String>,
}

impl ClusterSpec {
    /// A spec for `nodes` nodes of `offer`, named `name`.
    pub fn new(offer: Offer, nodes: u32, name: impl Into<String>) -> Self {
        Self {
            offer,
            nodes,
            name: name.into(),
            image: None,
            env: BTreeMap::new(),
            disk_gb: None,
            ports: Vec::new(),
            launch_tag: None,
            ttl: None,
            ssh_key_id: None,
        }
    }

    /// The name the cluster is created with: `name[-exp<expiry>]-gc<tag>`.
    pub fn cluster_name(&self, tag: &str) -> String {
        let expiry = self.ttl.map(|ttl| crate::model::lease::expiry_after(chrono::Utc::now(), ttl));
        crate::model::lease::compose(&self.name, expiry, tag)
    }
}

/// `nodes` within RunPod's `compute.podCount` range, checked before any request.
pub fn check_nodes(nodes: u32) -> Result<()> {
    if !(MIN_NODES..=MAX_NODES).contains(&nodes) {
        return Err(Error::invalid(
            "nodes",
            format!("{nodes} is outside {MIN_NODES}..={MAX_NODES} (RunPod's compute.podCount range)"),
        ));
    }
    Ok(())
}
