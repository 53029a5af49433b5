//! RunPod clusters (`/v2/clusters`, document 953afcc): offers from the catalog's `CLUSTER`
//! product, create, read, list and delete, and the [`Cluster`] value read from the documented
//! fields. A cluster has no status field: its state is `pods {total, byStatus}`, `primary` and
//! the members' `cluster {id, rank, ip}` (see [`crate::model::cluster`]).

use super::{RunPod, to_offers, to_pod};
use crate::model::cluster::{Cluster, ClusterId, ClusterNode, ClusterOffer};
use crate::model::error::{Error, Result};
use crate::model::gpu;
use crate::model::time::parse_timestamp;
use crate::model::{OfferDetails, Pod, PodId, Provider};
use crate::providers::clusters::{ClusterSpec, check_nodes};
use crate::providers::provisioner::{DEFAULT_RUNPOD_IMAGE, LAUNCH_TAG_ENV, OfferQuery, new_launch_tag};
use crate::transport::caller::gone_is_ok;
use crate::transport::retry::Safety;
use runpod_api::types;
use serde_json::json;
use std::collections::BTreeMap;

/// The cluster `type` gpucloud creates: "TRAINING is the generic distributed-training cluster".
pub const CLUSTER_TYPE: &str = "TRAINING";

fn check_cluster_id(id: &ClusterId) -> Result<&str> {
    if id.provider() != Provider::RunPod {
        return Err(Error::invalid("cluster id", format!("{id} is not a RunPod cluster")));
    }
    Ok(id.id())
}

/// A RunPod cluster summary and its members (empty when not read) as a [`Cluster`].
pub(crate) fn to_cluster(raw: &types::Cluster, members: Vec<Pod>) -> Cluster {
    let (launch_tag, lease_expires_at) = crate::model::lease::tag_and_expiry(&raw.name);
    let mut nodes: Vec<ClusterNode> = members
        .into_iter()
        .map(|pod| {
            let membership = pod.membership();
            ClusterNode {
                rank: membership.as_ref().and_then(|m| m.rank),
                private_address: membership.and_then(|m| m.private_address),
                pod,
            }
        })
        .collect();
    nodes.sort_by_key(|n| (n.rank.is_none(), n.rank));
    let node_count = u32::try_from(raw.compute.pod_count).unwrap_or(0);
    let gpus_per_node = u32::try_from(raw.compute.gpu_count_per_pod.get()).unwrap_or(u32::MAX);
    let members_rate: Option<f64> =
        if nodes.is_empty() { None } else { nodes.iter().map(|n| n.pod.price_per_hour).sum::<Option<f64>>() };
    Cluster {
        id: ClusterId::new(Provider::RunPod, raw.id.clone()),
        provider: Provider::RunPod,
        name: raw.name.clone(),
        launch_tag,
        lease_expires_at,
        gpu_type: gpu::canonical_name(&raw.compute.gpu_type_id),
        gpu_type_id: raw.compute.gpu_type_id.to_string(),
        gpus_per_node,
        node_count,
        data_center: raw.data_center_id.clone(),
        price_per_hour: members_rate,
        pods_by_status: raw
            .pods
            .by_status
            .iter()
            .map(|(status, n)| (status.clone(), u32::try_from(*n).unwrap_or(0)))
            .collect(),
        pods_total: u32::try_from(raw.pods.total).unwrap_or(0),
        primary: raw.primary.as_ref().map(|p| PodId::new(Provider::RunPod, p.pod_id.clone())),
        primary_ssh_endpoint: raw.primary.as_ref().and_then(|p| p.ssh_endpoint.clone()),
        nodes,
        single_pod: None,
        created_at: parse_timestamp(&raw.created_at),
    }
}

impl RunPod {
    /// `GET /v2/clusters/{id}`: the summary alone.
    async fn raw_cluster(&self, id: &ClusterId) -> Result<types::Cluster> {
        let cluster_id = check_cluster_id(id)?;
        self.caller.call("get_cluster", Safety::Idempotent, || self.raw().get_cluster().id(cluster_id).send()).await
    }

    /// `GET /v2/clusters/{id}/pods`: every member as a full pod.
    async fn cluster_members(&self, id: &ClusterId) -> Result<Vec<Pod>> {
        let cluster_id = check_cluster_id(id)?;
        let list = self
            .caller
            .call("list_cluster_pods", Safety::Idempotent, || self.raw().list_cluster_pods().id(cluster_id).send())
            .await?;
        Ok(list.pods.into_iter().map(to_pod).collect())
    }

    /// After an ambiguous create: the cluster whose name carries `tag`, looked for as the
    /// reconcile policy says; [`Error::CreateUnconfirmed`] when it is not found.
    async fn reconcile_cluster(&self, tag: &str, cause: Error) -> Result<Cluster> {
        use crate::providers::provisioner::Provisioner as _;
        tracing::warn!(launch_tag = tag, error = %cause, "cluster create outcome ambiguous; reconciling by listing clusters");
        let policy = self.reconcile;
        for attempt in 1..=policy.attempts.max(1) {
            match self.find_clusters_by_launch_tag(tag).await {
                Ok(mut found) if !found.is_empty() => return Ok(found.swap_remove(0)),
                Ok(_) => {}
                Err(e) => tracing::warn!(launch_tag = tag, error = %e, "listing clusters while reconciling failed"),
            }
            if attempt < policy.attempts {
                tokio::time::sleep(policy.delay).await;
            }
        }
        Err(Error::CreateUnconfirmed {
            provider: Provider::RunPod,
            launch_tag: tag.to_string(),
            cause: Box::new(cause),
        })
    }

    pub(super) async fn cluster_offers_impl(&self, query: &OfferQuery, nodes: u32) -> Result<Vec<ClusterOffer>> {
        query.validate()?;
        check_nodes(nodes)?;
        if query.spot == Some(true) || query.volume_id.is_some() {
            return Ok(Vec::new());
        }
        let per_node = query.gpu_count.unwrap_or(1);
        // A cluster create names no cloud tier; its members are Secure Cloud ("Runpod-owned
        // datacenter hardware"), priced at the Secure price.
        let gpus = self.catalog_of("CLUSTER", "SECURE", per_node).await?;
        let places = crate::model::region::parse_all(&query.regions)?;
        Ok(gpus
            .iter()
            .filter_map(|g| to_offers(g, "SECURE", per_node))
            .filter(|o| query.matches(o))
            .filter_map(|mut offer| {
                if !places.is_empty() {
                    let OfferDetails::RunPod { data_center_ids, .. } = &mut offer.details else { return None };
                    data_center_ids.retain(|dc| places.iter().any(|p| p.has_runpod_data_center_in(dc, None)));
                    offer.data_center = Some(data_center_ids.first()?.clone());
                }
                Some(ClusterOffer::new(offer, nodes))
            })
            .collect())
    }

    pub(super) async fn create_cluster_impl(&self, spec: &ClusterSpec) -> Result<Cluster> {
        check_nodes(spec.nodes)?;
        let OfferDetails::RunPod { gpu_type_id, data_center_ids, max_gpu_count, .. } = &spec.offer.details else {
            return Err(Error::invalid("offer", "is not a RunPod offer"));
        };
        if spec.offer.gpu_count == 0 {
            return Err(Error::invalid("gpu_count", "a cluster node needs at least 1 GPU"));
        }
        if let Some(max) = max_gpu_count.filter(|max| *max > 0 && spec.offer.gpu_count > *max) {
            return Err(Error::invalid(
                "gpu_count",
                format!("{} GPUs per node is more than {gpu_type_id}'s maximum of {max}", spec.offer.gpu_count),
            ));
        }
        crate::providers::validate::check_name(&spec.name, spec.ttl.is_some())?;
        if let Some(ttl) = spec.ttl {
            crate::model::lease::check_ttl(ttl)?;
        }
        if self.readiness != crate::Readiness::Status {
            self.require_ssh_key().await?;
        }
        let tag = spec.launch_tag.clone().unwrap_or_else(new_launch_tag);
        let mut env = spec.env.clone();
        env.insert(LAUNCH_TAG_ENV.to_string(), tag.clone());
        let mut ports = vec!["22/tcp".to_string()];
        ports.extend(spec.ports.iter().filter(|p| p.as_str() != "22/tcp").cloned());
        let mut body = json!({
            "name": spec.cluster_name(&tag),
            "type": CLUSTER_TYPE,
            "compute": {"gpuTypeId": gpu_type_id, "gpuCountPerPod": spec.offer.gpu_count, "podCount": spec.nodes},
            "image": spec.image.clone().unwrap_or_else(|| DEFAULT_RUNPOD_IMAGE.to_string()),
            "env": env,
            "ports": ports,
            "startSsh": true,
        });
        if !data_center_ids.is_empty() {
            body["dataCenterIds"] = json!(data_center_ids);
        }
        if let Some(disk) = spec.disk_gb {
            body["disk"] = json!(disk);
        }
        let body: types::CreateClusterRequest = self.caller.build("cluster spec", body)?;
        tracing::info!(provider = "runpod", launch_tag = %tag, gpu = %gpu_type_id, nodes = spec.nodes, "creating cluster");
        let created = self
            .caller
            .call("create_cluster", Safety::Create, || self.raw().create_cluster().body(body.clone()).send())
            .await;
        let raw = match created {
            Ok(raw) => raw,
            Err(e) if e.is_ambiguous_for_create() => return self.reconcile_cluster(&tag, e).await,
            Err(e) => return Err(e),
        };
        let id = ClusterId::new(Provider::RunPod, raw.id.clone());
        // The cluster exists from here: a failed read of its members is not a failed create.
        let members = match self.cluster_members(&id).await {
            Ok(members) => members,
            Err(error) => {
                tracing::warn!(cluster = %id, %error, "cluster created; its members could not be read yet");
                Vec::new()
            }
        };
        Ok(to_cluster(&raw, members))
    }

    pub(super) async fn get_cluster_impl(&self, id: &ClusterId) -> Result<Cluster> {
        let raw = self.raw_cluster(id).await?;
        let members = self.cluster_members(id).await?;
        Ok(to_cluster(&raw, members))
    }

    pub(super) async fn cluster_summary_impl(&self, id: &ClusterId) -> Result<Cluster> {
        Ok(to_cluster(&self.raw_cluster(id).await?, Vec::new()))
    }

    /// `GET /v2/clusters` ("no pagination") and one listing of every pod with cluster members
    /// (`includeClusterPods=true`), grouped: two requests (and the pod list's pages) however
    /// many clusters there are.
    pub(super) async fn list_clusters_impl(&self) -> Result<Vec<Cluster>> {
        use futures::TryStreamExt as _;
        let list = self.caller.call("list_clusters", Safety::Idempotent, || self.raw().list_clusters().send()).await?;
        if list.clusters.is_empty() {
            return Ok(Vec::new());
        }
        let pods: Vec<Pod> =
            crate::transport::paginate::items(self.pod_pages_with_cluster_members()).try_collect().await?;
        let mut by_cluster: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        for pod in pods {
            if let Some(membership) = pod.membership() {
                by_cluster.entry(membership.cluster.id().to_string()).or_default().push(pod);
            }
        }
        Ok(list.clusters.iter().map(|raw| to_cluster(raw, by_cluster.remove(&raw.id).unwrap_or_default())).collect())
    }

    pub(super) async fn delete_cluster_impl(&self, id: &ClusterId) -> Result<()> {
        let cluster_id = check_cluster_id(id)?;
        gone_is_ok(
            self.caller
                .call("delete_cluster", Safety::Idempotent, || self.raw().delete_cluster().id(cluster_id).send())
                .await,
        )
    }
}
