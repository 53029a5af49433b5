//! PrimeIntellect multi-node offers as clusters.
//!
//! PrimeIntellect sells a multi-node machine as **one pod**: a multi-node offer
//! (`GET /api/v1/availability/multi-node`) is created with the ordinary `POST /api/v1/pods/`
//! and its `cloudId`, the pod carries a `clusterId`, and its `sshConnection` and `ip` become
//! lists, one entry per node. No rank, node count or environment is documented, so gpucloud
//! reads them as follows:
//!
//! - **Nodes and ranks**: the n-th entry of `sshConnection` is node n, rank n (the list's order is
//!   the only order the answer has); its address (`NODE_ADDR`, the hostfile's line) is the n-th
//!   entry of `ip`, else the SSH host. PrimeIntellect documents no private network: these are
//!   the addresses the pod answers with.
//! - **Node count**: the `nodes` the cluster was created with where this client created it,
//!   otherwise the length of the lists (a multi-node pod still provisioning, listed by another
//!   process, counts its nodes once they are listed).
//! - **Identity**: the cluster's id is the pod's; node 0 is the pod itself and node n is
//!   `<pod>#n` ([`node_pod_id`]), so every node keeps its own host key and sync manifest. The
//!   provider knows only the pod: a node cannot be ended alone, and deleting the cluster ends
//!   the pod. [`Cluster::single_pod`] names it: it is what is listed and billed.
//! - **Status**: every node has the pod's status (`pods.byStatus` counts all nodes under it,
//!   as `RUNNING`, `ERROR`, `EXITED` or `TERMINATED` where a RunPod cluster would).
//! - **Environment**: none is provided; `Fleet::launch_cluster` with a session writes the
//!   contract over SSH on every node, without `NCCL_SOCKET_IFNAME` (RunPod's `ens1` rule names
//!   RunPod's interfaces, not PrimeIntellect's).

use super::{PrimeIntellect, check_pod_id, types};
use crate::model::PodRecord;
use crate::model::cluster::{Cluster, ClusterId, ClusterNode, node_pod_id};
use crate::model::error::{Error, Result};
use crate::model::{Pod, PodId, PodStatus, Provider, SshEndpoint};
use crate::providers::clusters::ClusterSpec;
use crate::providers::provisioner::{LaunchSpec, Provisioner as _};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What this client knows of the multi-node pods it created: the node count and data center
/// the pod record does not state. Shared by clones; bounded like the pod records.
#[derive(Debug, Clone, Default)]
pub(super) struct MultiNodePods {
    created: Arc<Mutex<HashMap<String, CreatedCluster>>>,
}

#[derive(Debug, Clone)]
struct CreatedCluster {
    nodes: u32,
    /// GPUs per node as the offer split them: the pod's `gpuCount` is documented as "Number of
    /// GPUs allocated to the node", which may be read either way for a multi-node pod.
    gpus_per_node: u32,
    data_center: Option<String>,
}

impl MultiNodePods {
    const LIMIT: usize = 1024;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CreatedCluster>> {
        self.created.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remember(&self, pod: &PodId, created: CreatedCluster) {
        let mut known = self.lock();
        if known.len() >= Self::LIMIT {
            known.clear();
        }
        known.insert(pod.id().to_string(), created);
    }

    fn get(&self, pod: &PodId) -> Option<CreatedCluster> {
        self.lock().get(pod.id()).cloned()
    }
}

fn check_cluster_id(id: &ClusterId) -> Result<PodId> {
    if id.provider() != Provider::PrimeIntellect {
        return Err(Error::invalid("cluster id", format!("{id} is not a PrimeIntellect cluster")));
    }
    let pod = PodId::new(Provider::PrimeIntellect, id.id());
    check_pod_id(&pod)?;
    Ok(pod)
}

/// The entries of a string-or-list field: one `None` for an absent field, the string alone,
/// or the list as it is.
fn entries(ssh: Option<&types::ApiPodConfigSshConnection>, ip: Option<&types::ApiPodConfigIp>) -> NodeFields {
    let ssh = match ssh {
        Some(types::ApiPodConfigSshConnection::Array(items)) => Some(items.clone()),
        Some(types::ApiPodConfigSshConnection::String(s)) => Some(vec![Some(s.clone())]),
        None => None,
    };
    let ip = match ip {
        Some(types::ApiPodConfigIp::Array(items)) => Some(items.clone()),
        Some(types::ApiPodConfigIp::String(s)) => Some(vec![Some(s.clone())]),
        None => None,
    };
    NodeFields { ssh, ip }
}

struct NodeFields {
    ssh: Option<Vec<Option<String>>>,
    ip: Option<Vec<Option<String>>>,
}

impl NodeFields {
    /// How many nodes the lists name (the longer of the two).
    fn listed(&self) -> usize {
        self.ssh.as_ref().map_or(0, Vec::len).max(self.ip.as_ref().map_or(0, Vec::len))
    }

    fn ip(&self, n: usize) -> Option<String> {
        self.ip.as_ref()?.get(n)?.clone().filter(|ip| !ip.trim().is_empty())
    }

    /// Node `n`'s SSH endpoint: its `sshConnection` entry, else its `ip` on port 22.
    fn endpoint(&self, n: usize) -> Option<SshEndpoint> {
        let text = self.ssh.as_ref().and_then(|list| list.get(n).cloned().flatten());
        text.filter(|s| !s.trim().is_empty())
            .and_then(|s| SshEndpoint::parse(&s))
            .or_else(|| self.ip(n).map(|host| SshEndpoint { host, port: 22, user: "root".into() }))
    }
}

/// Whether the pod record is a multi-node pod: it names a cluster, or lists more than one node.
pub(super) fn is_multi_node(raw: &types::ApiPodConfig) -> bool {
    raw.cluster_id.as_deref().is_some_and(|c| !c.is_empty())
        || entries(raw.ssh_connection.as_ref(), raw.ip.as_ref()).listed() > 1
}

/// The key `pods.byStatus` counts a node of `status` under, as a RunPod cluster would, so that
/// one readiness rule reads both.
fn status_key(pod: &Pod) -> String {
    match pod.status {
        PodStatus::Running => "RUNNING".into(),
        PodStatus::Failed => "ERROR".into(),
        PodStatus::Stopped => "EXITED".into(),
        PodStatus::Terminated => "TERMINATED".into(),
        PodStatus::Starting => "STARTING".into(),
        _ => pod.provider_status.clone(),
    }
}

/// A multi-node pod as a [`Cluster`]; `known` is what the create said (node count, data
/// center), where this client created it.
fn to_cluster(pod: &Pod, known: Option<&CreatedCluster>) -> Cluster {
    let fields = match &pod.raw {
        PodRecord::PrimeIntellect(raw) => entries(raw.ssh_connection.as_ref(), raw.ip.as_ref()),
        #[allow(unreachable_patterns)]
        _ => NodeFields { ssh: None, ip: None },
    };
    let listed = fields.listed();
    let node_count = known.map(|k| k.nodes).unwrap_or_else(|| u32::try_from(listed).unwrap_or(u32::MAX));
    let gpus_per_node = known.map_or_else(|| pod.gpu_count.checked_div(node_count).unwrap_or(0), |k| k.gpus_per_node);
    // The nodes are known once every one is listed; until then the pod is still coming up.
    let nodes: Vec<ClusterNode> = if listed > 0 && listed == node_count as usize {
        (0..listed)
            .map(|n| {
                let rank = u32::try_from(n).unwrap_or(u32::MAX);
                let endpoint = fields.endpoint(n);
                let mut node = pod.clone();
                node.id = node_pod_id(&pod.id, rank);
                node.ssh.clone_from(&endpoint);
                if node.status == PodStatus::Running && endpoint.is_none() {
                    node.status = PodStatus::Starting;
                }
                node.price_per_hour = pod.price_per_hour.map(|p| p / f64::from(node_count.max(1)));
                node.price_now_per_hour = pod.price_now_per_hour.map(|p| p / f64::from(node_count.max(1)));
                node.gpu_count = gpus_per_node;
                ClusterNode {
                    rank: Some(rank),
                    private_address: fields.ip(n).or_else(|| endpoint.map(|e| e.host)),
                    pod: node,
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut pods_by_status = BTreeMap::new();
    let every_entry = |list: &Option<Vec<Option<String>>>| list.as_ref().is_some_and(|l| l.iter().all(Option::is_some));
    if pod.status == PodStatus::Running && listed > 0 && listed != node_count as usize && every_entry(&fields.ssh) {
        // Running with every listed node addressed, but not the nodes asked for: the offer's
        // split was not the one gpucloud read from it (none is documented). It will not become
        // the cluster asked for; the nodes that are not there count as failed.
        let listed = u32::try_from(listed).unwrap_or(u32::MAX);
        pods_by_status.insert("RUNNING".into(), listed.min(node_count));
        pods_by_status.insert("ERROR".into(), node_count.abs_diff(listed).max(1));
    } else if node_count > 0 {
        pods_by_status.insert(status_key(pod), node_count);
    }
    let gpu_type_id = match &pod.raw {
        PodRecord::PrimeIntellect(raw) => raw.gpu_name.0.clone(),
        #[allow(unreachable_patterns)]
        _ => pod.gpu_type.clone(),
    };
    let primary_ssh_endpoint = nodes
        .first()
        .and_then(|n| n.pod.ssh.as_ref())
        .filter(|_| pod.status == PodStatus::Running)
        .map(|e| format!("{}:{}", e.host, e.port));
    Cluster {
        id: ClusterId::new(Provider::PrimeIntellect, pod.id.id()),
        provider: Provider::PrimeIntellect,
        name: pod.name.clone(),
        launch_tag: pod.launch_tag.clone(),
        lease_expires_at: pod.lease_expires_at,
        gpu_type: pod.gpu_type.clone(),
        gpu_type_id,
        gpus_per_node,
        node_count,
        data_center: known.and_then(|k| k.data_center.clone()),
        price_per_hour: pod.price_per_hour,
        pods_by_status,
        pods_total: node_count,
        primary: Some(pod.id.clone()),
        primary_ssh_endpoint,
        nodes,
        single_pod: Some(pod.id.clone()),
        created_at: pod.created_at,
    }
}

impl PrimeIntellect {
    /// Creates the multi-node pod of `spec` (`nodes` x the node shape, the offer's `cloudId`)
    /// through the ordinary pod create, which reconciles an ambiguous answer by the launch tag.
    pub(super) async fn create_multi_node(&self, spec: &ClusterSpec) -> Result<Cluster> {
        crate::providers::clusters::check_nodes(spec.nodes)?;
        let mut offer = spec.offer.clone();
        offer.gpu_count = offer.gpu_count.saturating_mul(spec.nodes);
        offer.price_per_hour *= f64::from(spec.nodes);
        let mut launch = LaunchSpec::new(offer, spec.name.clone());
        launch.image.clone_from(&spec.image);
        launch.disk_gb = spec.disk_gb;
        launch.env.clone_from(&spec.env);
        launch.ssh_key_id.clone_from(&spec.ssh_key_id);
        launch.launch_tag.clone_from(&spec.launch_tag);
        launch.ttl = spec.ttl;
        let pod = self.create(&launch).await?;
        let created = CreatedCluster {
            nodes: spec.nodes,
            gpus_per_node: spec.offer.gpu_count,
            data_center: spec.offer.data_center.clone(),
        };
        self.multi_node.remember(&pod.id, created.clone());
        Ok(to_cluster(&pod, Some(&created)))
    }

    /// The multi-node pod `id` as a cluster: one pod read. A pod that ended, or that is not a
    /// multi-node pod, is not a cluster (404, as a deleted RunPod cluster answers).
    pub(super) async fn multi_node_cluster(&self, id: &ClusterId) -> Result<Cluster> {
        let pod_id = check_cluster_id(id)?;
        let pod = self.get(&pod_id).await?;
        let known = self.multi_node.get(&pod_id);
        let multi = matches!(&pod.raw, PodRecord::PrimeIntellect(raw) if is_multi_node(raw));
        if pod.status == PodStatus::Terminated || (known.is_none() && !multi) {
            return Err(Error::Api {
                provider: Provider::PrimeIntellect,
                operation: "get_cluster",
                status: 404,
                message: format!(
                    "{id} is {}",
                    if pod.status == PodStatus::Terminated { "terminated" } else { "not a multi-node pod" }
                ),
                retry_after: None,
            });
        }
        Ok(to_cluster(&pod, known.as_ref()))
    }

    /// Every live multi-node pod of the account, as clusters.
    pub(super) async fn multi_node_clusters(&self) -> Result<Vec<Cluster>> {
        use futures::TryStreamExt as _;
        let pods: Vec<Pod> = self.list().try_collect().await?;
        Ok(pods
            .iter()
            .filter(|pod| pod.status != PodStatus::Terminated)
            .filter_map(|pod| {
                let known = self.multi_node.get(&pod.id);
                let multi = matches!(&pod.raw, PodRecord::PrimeIntellect(raw) if is_multi_node(raw));
                (known.is_some() || multi).then(|| to_cluster(pod, known.as_ref()))
            })
            .collect())
    }

    /// Every live pod carrying the launch tag `tag`, as a cluster: what an ambiguous (or
    /// dropped) create left. Such a pod is the launch's whether or not it reads as multi-node
    /// yet (no `clusterId` or node lists may be set while it provisions), and this client never
    /// learnt its node count: found only by [`Self::multi_node_clusters`], it would be left
    /// running.
    pub(super) async fn tagged_clusters(&self, tag: &str) -> Result<Vec<Cluster>> {
        let pods = self.find_by_launch_tag(tag).await?;
        Ok(pods.iter().map(|pod| to_cluster(pod, self.multi_node.get(&pod.id).as_ref())).collect())
    }

    /// Ends the multi-node pod and confirms it (the pod's own termination confirmation), then
    /// forgets what was kept for every node (`members`, the nodes' ids).
    pub(super) async fn end_multi_node(
        &self,
        id: &ClusterId,
        members: &[PodId],
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        let pod_id = check_cluster_id(id)?;
        self.terminate_and_confirm(&pod_id, deadline).await?;
        for member in members.iter().filter(|m| **m != pod_id) {
            crate::providers::hooks::termination_confirmed(member);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A cluster create of fewer than 2 (or more than 250) nodes is refused before any request,
    /// as RunPod's is: one node of a multi-node `cloudId` is not an order the offer names.
    #[tokio::test]
    async fn a_cluster_of_too_few_or_too_many_nodes_is_refused_before_any_request() {
        let item: types::GpuAvailability = serde_json::from_value(json!({
            "cloudId": "c", "gpuType": "H100_80GB", "socket": "SXM5", "provider": "datacrunch", "gpuCount": 16,
            "gpuMemory": 80, "stockStatus": "Available", "security": "secure_cloud", "images": ["ubuntu_22_cuda_12"],
            "prices": {"onDemand": 40.0, "currency": "USD"},
        }))
        .unwrap();
        let offer = super::super::multi_node_offer(&item, 2).unwrap();
        // Nothing listens there: a request would fail otherwise than on `nodes`.
        let pi = PrimeIntellect::new(secrecy::SecretString::from("k"), Some("http://127.0.0.1:9"))
            .unwrap()
            .with_retry_policy(crate::RetryPolicy::none());
        for nodes in [0, 1, 251] {
            let spec = ClusterSpec::new(offer.node.clone(), nodes, "few");
            match pi.create_multi_node(&spec).await {
                Err(Error::InvalidInput { field: "nodes", .. }) => {}
                other => panic!("{nodes} nodes: expected the count refused, got {other:?}"),
            }
        }
    }

    fn multi_node_pod(status: &str, ssh: serde_json::Value, ip: serde_json::Value) -> Pod {
        let record = json!({
            "id": "pod1", "name": "train-gcabc", "status": status, "gpuName": "H100_80GB", "gpuCount": 16,
            "priceHr": 40.0, "providerType": "hyperstack", "socket": "SXM5", "userId": "u1",
            "clusterId": "c1", "sshConnection": ssh, "ip": ip, "installationStatus": "FINISHED",
        });
        super::super::to_pod(serde_json::from_value(record).unwrap()).unwrap()
    }

    #[test]
    fn a_multi_node_pod_is_a_cluster_whose_nodes_are_its_listed_hosts() {
        let pod = multi_node_pod(
            "ACTIVE",
            json!(["root@10.0.0.1 -p 22", "root@10.0.0.2 -p 2222"]),
            json!(["10.0.0.1", "10.0.0.2"]),
        );
        let cluster = to_cluster(&pod, None);
        assert_eq!((cluster.node_count, cluster.gpus_per_node, cluster.total_gpus()), (2, 8, 16));
        assert_eq!(cluster.single_pod.as_ref(), Some(&pod.id));
        assert_eq!(cluster.nodes[0].pod.id, pod.id, "node 0 is the pod itself");
        assert_eq!(cluster.nodes[1].pod.id.to_string(), "primeintellect:pod1#1");
        assert_eq!(cluster.nodes[1].pod.ssh.as_ref().map(|e| e.port), Some(2222));
        assert_eq!(cluster.nodes[1].private_address.as_deref(), Some("10.0.0.2"));
        assert_eq!(cluster.nodes[1].pod.price_per_hour, Some(20.0));
        assert_eq!(cluster.hostfile(), "10.0.0.1 slots=8\n10.0.0.2 slots=8\n");
        assert_eq!(cluster.readiness(), crate::model::cluster::Readiness::Ready);
    }

    #[test]
    fn a_provisioning_or_failed_multi_node_pod_is_waited_on_or_failed() {
        let known = CreatedCluster { nodes: 2, gpus_per_node: 8, data_center: Some("US-1".into()) };
        let provisioning = to_cluster(&multi_node_pod("PROVISIONING", json!(null), json!([null, null])), Some(&known));
        assert!(provisioning.nodes.iter().all(|n| n.pod.ssh.is_none() && n.private_address.is_none()));
        assert_eq!(provisioning.pods_by_status.get("PROVISIONING"), Some(&2));
        assert!(matches!(provisioning.readiness(), crate::model::cluster::Readiness::Waiting(_)));
        // Two of three nodes addressed: not ready, whatever the status says.
        let partial = CreatedCluster { nodes: 3, gpus_per_node: 8, data_center: None };
        let short = to_cluster(
            &multi_node_pod("ACTIVE", json!(["root@h -p 1", "root@h -p 2", null]), json!(null)),
            Some(&partial),
        );
        assert!(matches!(short.readiness(), crate::model::cluster::Readiness::Waiting(_)));
        // Two nodes running where four were asked: the offer split otherwise; it fails.
        let four = CreatedCluster { nodes: 4, gpus_per_node: 4, data_center: None };
        let split =
            to_cluster(&multi_node_pod("ACTIVE", json!(["root@h -p 1", "root@h -p 2"]), json!(null)), Some(&four));
        assert!(matches!(split.readiness(), crate::model::cluster::Readiness::Failed(r) if r.contains("ERROR")));
        let failed = to_cluster(&multi_node_pod("ERROR", json!(null), json!(null)), Some(&known));
        assert!(matches!(failed.readiness(), crate::model::cluster::Readiness::Failed(r) if r.contains("ERROR")));
    }
}
