//! Clusters as one: [`Fleet::launch_cluster`], all or nothing.
//!
//! The launch walks cluster offers ([`crate::Provisioner::cluster_offers`]) cheapest first, as
//! [`Fleet::launch`] walks pod offers, in named steps:
//!
//! 1. `validate_cluster_request`: the node count within 2..=250 (RunPod's `podCount`), name,
//!    lease, key and spend limits, before any request.
//! 2. `cluster_candidates`: every provider's cluster offers, by total price per hour.
//! 3. For each candidate: the budget and the burn cap checked **for all nodes** (the offer's
//!    price per node times the node count) before the create; the create under the burn cap, the
//!    lease stamped in the cluster's name; `confirm_cluster_ready`, the bounded wait on what the
//!    document gives (a cluster has no status): `pods.byStatus` all `RUNNING`,
//!    `primary.sshEndpoint` published, every member ranked with a private address and an SSH
//!    endpoint, then every node's SSH answering with a banner. One cluster read per poll while
//!    nodes start (two once they run), however many nodes.
//! 4. With `ClusterRequest::session` (feature `remote`): the environment contract written on
//!    every node over SSH (`gpucloud::remote::cluster`).
//!
//! **All or nothing**: a member in `ERROR` (or ended), a partial placement that never completes,
//! the deadline, a cancel, a dropped future or a failed environment write deletes the **whole**
//! cluster and confirms the deletion (the provider no longer has the cluster and no member is
//! live) before the launch returns; an ambiguous create is reconciled by its launch tag and
//! swept for again before returning. A failed member moves on to the next offer; the deadline
//! ends the launch.

use super::Fleet;
use super::spend::Price;
use crate::model::cluster::{Cluster, ClusterId, ClusterOffer, Readiness};
use crate::model::error::{Error, LaunchAttempt, Result};
use crate::model::{PodId, Provider};
use crate::providers::clusters::{ClusterSpec, check_nodes};
use crate::providers::provisioner::{OfferQuery, Provisioner, new_launch_tag};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What [`Fleet::launch_cluster`] should start.
#[derive(Debug, Clone)]
pub struct ClusterRequest {
    /// Which single-node shapes qualify: `query.gpu` and `query.gpu_count` (GPUs **per node**).
    pub query: OfferQuery,
    /// How many nodes: 2..=250.
    pub nodes: u32,
    /// Cluster name (the SDK appends the lease stamp and a launch tag).
    pub name: String,
    /// Image on every node; `None`: the provider's default.
    pub image: Option<String>,
    /// Container disk per node, GB.
    pub disk_gb: Option<u32>,
    /// Environment on every node, besides the cluster contract.
    pub env: BTreeMap<String, String>,
    /// Ports to expose besides `22/tcp`.
    pub ports: Vec<String>,
    /// Lease, stamped in the cluster's name: [`Fleet::reap`] deletes the cluster once it is over.
    pub ttl: Option<Duration>,
    /// The most the whole cluster may cost, USD: with `ttl`, offers whose worst case for all
    /// nodes passes it are not tried; without, it sets the lease.
    pub budget_usd: Option<f64>,
    /// Highest price per hour for **all nodes together**.
    pub max_price_per_hour: Option<f64>,
    /// An OpenSSH public key registered with the provider before the create, so every node
    /// trusts it.
    pub ssh_public_key: Option<String>,
    /// How long to wait, from the start of the launch, for every node to be ready.
    pub ready_timeout: Duration,
    /// At most this many offers are tried.
    pub max_candidates: usize,
    /// With a session: the environment contract is written on every node over SSH once it is
    /// ready ([`crate::remote::cluster`]); a failure deletes the cluster. `None`: only what the
    /// create carries (RunPod's own variables, `NNODES`, `GPUS_PER_NODE`, `NCCL_SOCKET_IFNAME`).
    #[cfg(feature = "remote")]
    pub session: Option<crate::remote::SessionOptions>,
}

/// The most GPUs [`Fleet::offer_shapes`] splits into shapes.
pub const MAX_SHAPE_GPUS: u32 = 2048;

/// The most nodes of a shape [`Fleet::offer_shapes`] asks for (RunPod allows 250 pods in a
/// cluster; beyond 64 a search would ask every provider for every divisor).
pub const MAX_SHAPE_NODES: u32 = 64;

impl ClusterRequest {
    /// `nodes` nodes of `gpus_per_node` on-demand GPUs of `gpu` each, named `name`, waiting up
    /// to 15 minutes.
    pub fn new(gpu: impl Into<String>, gpus_per_node: u32, nodes: u32, name: impl Into<String>) -> Self {
        Self {
            query: OfferQuery { spot: Some(false), ..OfferQuery::gpu(gpu, gpus_per_node) },
            nodes,
            name: name.into(),
            image: None,
            disk_gb: None,
            env: BTreeMap::new(),
            ports: Vec::new(),
            ttl: None,
            budget_usd: None,
            max_price_per_hour: None,
            ssh_public_key: None,
            ready_timeout: Duration::from_secs(900),
            max_candidates: 8,
            #[cfg(feature = "remote")]
            session: None,
        }
    }

    /// The variables every node's create carries besides the caller's: the contract's parts
    /// that are the same on every node.
    fn fixed_env(&self, offer: &ClusterOffer) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        env.insert("NNODES".into(), self.nodes.to_string());
        env.insert("GPUS_PER_NODE".into(), offer.node.gpu_count.to_string());
        // RunPod's guides name RunPod's interface; PrimeIntellect documents none.
        if offer.node.provider == Provider::RunPod {
            env.insert("NCCL_SOCKET_IFNAME".into(), crate::model::cluster::RUNPOD_CLUSTER_INTERFACE.into());
        }
        env
    }
}

/// Steps of a cluster launch, for progress displays.
#[derive(Debug)]
#[non_exhaustive]
pub enum ClusterEvent<'a> {
    /// Creating a cluster from this offer.
    Creating {
        /// The offer.
        offer: &'a ClusterOffer,
    },
    /// The create succeeded.
    Created {
        /// The new cluster.
        cluster: &'a Cluster,
    },
    /// A state read while waiting ([`Cluster::progress_text`] says it for people).
    Observed {
        /// The cluster as last read.
        cluster: &'a Cluster,
    },
    /// Writing the environment contract on every node.
    WritingEnvironment,
    /// Deleting what the launch is not handing back (if anything) before returning.
    CleaningUp,
}

/// What a cluster launch must undo if it does not hand its cluster back: clusters it created
/// (with the members it saw) and the launch tags of ambiguous creates. Awaited on every normal
/// exit, spawned when the launch's future is dropped.
struct ClusterCleanup {
    pending: Arc<Mutex<PendingClusters>>,
    timeout: Duration,
    burn: Arc<super::spend::BurnCap>,
    /// How often the tags of ambiguous creates are looked for (lists can lag behind creates).
    sweep: crate::providers::reconcile::ReconcilePolicy,
}

#[derive(Default)]
struct PendingClusters {
    clusters: Vec<(Arc<dyn Provisioner>, ClusterId, Vec<PodId>)>,
    tags: Vec<(Arc<dyn Provisioner>, String)>,
}

impl ClusterCleanup {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingClusters> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn track(&self, provisioner: &Arc<dyn Provisioner>, cluster: &Cluster) {
        let members = cluster.member_ids();
        let mut pending = self.lock();
        pending.clusters.retain(|(_, id, _)| id != &cluster.id);
        pending.clusters.push((Arc::clone(provisioner), cluster.id.clone(), members));
    }

    fn release(&self, id: &ClusterId, tag: &str) {
        let mut pending = self.lock();
        pending.clusters.retain(|(_, known, _)| known != id);
        pending.tags.retain(|(_, t)| t != tag);
    }

    /// Deletes `id` now, confirms it, and stops tracking it.
    async fn discard(&self, provisioner: &Arc<dyn Provisioner>, id: &ClusterId) -> Result<()> {
        let members = self.lock().clusters.iter().find(|(_, c, _)| c == id).map(|(_, _, m)| m.clone());
        let members = members.unwrap_or_default();
        let result = provisioner.delete_cluster_and_confirm(id, &members, Instant::now() + self.timeout).await;
        if result.is_ok() {
            self.lock().clusters.retain(|(_, c, _)| c != id);
            for member in &members {
                self.burn.forget(member);
            }
        }
        result
    }

    async fn run(
        pending: PendingClusters,
        timeout: Duration,
        burn: Arc<super::spend::BurnCap>,
        sweep: crate::providers::reconcile::ReconcilePolicy,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut first_error = None;
        let delete = |targets: Vec<(Arc<dyn Provisioner>, ClusterId, Vec<PodId>)>| {
            let burn = Arc::clone(&burn);
            async move {
                let mut failed = None;
                for (provisioner, id, members) in &targets {
                    tracing::warn!(cluster = %id, "deleting a cluster the launch is not handing back");
                    match provisioner.delete_cluster_and_confirm(id, members, deadline).await {
                        Ok(()) => members.iter().for_each(|m| burn.forget(m)),
                        Err(e) => {
                            tracing::error!(cluster = %id, error = %e, "cleanup could not confirm the cluster's deletion");
                            failed.get_or_insert(e);
                        }
                    }
                }
                failed
            }
        };
        if let Some(e) = delete(pending.clusters).await {
            first_error.get_or_insert(e);
        }
        // Ambiguous creates: their tags looked for several times (lists may lag behind creates).
        for look in 1..=sweep.attempts.max(1) {
            if pending.tags.is_empty() {
                break;
            }
            let mut found = Vec::new();
            for (provisioner, tag) in &pending.tags {
                match provisioner.find_clusters_by_launch_tag(tag).await {
                    Ok(clusters) => found.extend(clusters.into_iter().map(|c| {
                        let members = c.member_ids();
                        (Arc::clone(provisioner), c.id, members)
                    })),
                    Err(e) => {
                        tracing::error!(launch_tag = %tag, error = %e, "cleanup could not list clusters");
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = delete(found).await {
                first_error.get_or_insert(e);
            }
            if look == sweep.attempts || Instant::now() + sweep.delay >= deadline {
                break;
            }
            tokio::time::sleep(sweep.delay).await;
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn finish(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.lock());
        Self::run(pending, self.timeout, Arc::clone(&self.burn), self.sweep).await
    }
}

impl Drop for ClusterCleanup {
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *self.lock());
        if pending.clusters.is_empty() && pending.tags.is_empty() {
            return;
        }
        let (timeout, burn, sweep) = (self.timeout, Arc::clone(&self.burn), self.sweep);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                tracing::warn!(clusters = pending.clusters.len(), "cluster launch dropped; deleting in the background");
                handle.spawn(async move {
                    let _ = Self::run(pending, timeout, burn, sweep).await;
                });
            }
            Err(_) => tracing::error!(
                clusters = ?pending.clusters.iter().map(|(_, id, _)| id.to_string()).collect::<Vec<_>>(),
                "cluster launch dropped outside a Tokio runtime: these clusters may still be billing"
            ),
        }
    }
}

/// One cluster launch walking its candidates.
struct ClusterLaunch<'a> {
    fleet: &'a Fleet,
    request: &'a ClusterRequest,
    cleanup: &'a ClusterCleanup,
    started: Instant,
    deadline: Instant,
    attempts: Vec<LaunchAttempt>,
    /// Each provider's registered key id (`Some(None)`: registered, no id), `None` once it failed.
    ssh_keys: BTreeMap<Provider, Option<Option<String>>>,
}

impl Fleet {
    /// Launches a cluster of `request.nodes` nodes: walks cluster offers cheapest first,
    /// creates, waits until every node is ready (and, with a session, writes the environment
    /// contract on each), and returns it. All or nothing: see [the module](crate::fleet::cluster).
    pub async fn launch_cluster(&self, request: &ClusterRequest) -> Result<Cluster> {
        self.launch_cluster_with_progress(request, |_| {}, std::future::pending()).await
    }

    /// Like [`Fleet::launch_cluster`], reporting each step to `progress`, and stopping when
    /// `cancel` completes: the cluster is then deleted and the deletion confirmed before
    /// [`Error::Cancelled`] is returned.
    pub async fn launch_cluster_with_progress(
        &self,
        request: &ClusterRequest,
        mut progress: impl FnMut(ClusterEvent<'_>) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Cluster> {
        self.validate_cluster_request(request)?;
        let started = Instant::now();
        let cleanup = ClusterCleanup {
            pending: Arc::default(),
            timeout: self.cleanup_timeout,
            burn: Arc::clone(&self.burn),
            sweep: self.sweep,
        };
        let (candidates, attempts) = self.cluster_candidates(request).await?;
        let mut launch = ClusterLaunch {
            fleet: self,
            request,
            cleanup: &cleanup,
            started,
            deadline: started + request.ready_timeout,
            attempts,
            ssh_keys: BTreeMap::new(),
        };
        let steps = async {
            let outcome = launch.try_candidates(candidates, &mut progress).await;
            (outcome, progress)
        };
        let (outcome, progress) = tokio::select! {
            (outcome, progress) = steps => (outcome, Some(progress)),
            () = cancel => (Err(Error::Cancelled), None),
        };
        if let Some(mut progress) = progress {
            progress(ClusterEvent::CleaningUp);
        }
        let cleaned = cleanup.finish().await;
        match (outcome, cleaned) {
            (Ok(cluster), Err(e)) => {
                tracing::error!(cluster = %cluster.id, error = %e, "cluster ready, but an earlier attempt's cleanup failed");
                Ok(cluster)
            }
            (outcome, _) => outcome,
        }
    }

    /// Step 1: what can be refused before any request.
    fn validate_cluster_request(&self, request: &ClusterRequest) -> Result<()> {
        check_nodes(request.nodes)?;
        crate::providers::validate::check_name(&request.name, request.ttl.is_some())?;
        if let Some(ttl) = request.ttl {
            crate::model::lease::check_ttl(ttl)?;
        }
        if let Some(key) = &request.ssh_public_key {
            crate::providers::ssh::parse_public_key(key)?;
        }
        if let Some(cap) = request.max_price_per_hour.filter(|p| !(p.is_finite() && *p > 0.0)) {
            return Err(Error::invalid("max_price_per_hour", format!("{cap} is not a positive amount of USD")));
        }
        request.query.validate()?;
        self.check_limits(request.budget_usd)
    }

    /// Cluster offers of every provider for `nodes` nodes matching `query` (GPUs per node),
    /// cheapest in total first, and the providers that could not offer any (without clusters:
    /// [`Error::Unsupported`]).
    pub async fn cluster_offers(&self, query: &OfferQuery, nodes: u32) -> (Vec<ClusterOffer>, Vec<(Provider, Error)>) {
        let fetches = self.provisioners.iter().map(|p| async move {
            let result = match tokio::time::timeout(self.offer_timeout, p.cluster_offers(query, nodes)).await {
                Ok(result) => result,
                Err(_) => {
                    Err(Error::Timeout { what: format!("{} cluster offers", p.provider()), waited: self.offer_timeout })
                }
            };
            (p.provider(), result)
        });
        let (mut offers, mut errors) = (Vec::new(), Vec::new());
        for (provider, result) in futures::future::join_all(fetches).await {
            match result {
                Ok(found) => offers.extend(found),
                Err(e) => errors.push((provider, e)),
            }
        }
        offers.sort_by(|a: &ClusterOffer, b: &ClusterOffer| {
            (!a.node.is_usd(), &a.node.currency)
                .cmp(&(!b.node.is_usd(), &b.node.currency))
                .then(a.price_per_hour().total_cmp(&b.price_per_hour()))
        });
        (offers, errors)
    }

    /// One search over every shape of `total_gpus` GPUs matching `query` (its `gpu_count` is
    /// each shape's own): single-node offers with that many GPUs (as one-node shapes) and every
    /// provider's cluster offers for each node count that divides it (2 to
    /// [`MAX_SHAPE_NODES`] nodes), cheapest per GPU-hour first (amounts in USD before others);
    /// 1x8 beside 2x4 and 4x2 for 8 GPUs. Providers that could not offer a shape are returned
    /// beside them, each error once; a provider without clusters is not among them.
    ///
    /// Errors: [`Error::InvalidInput`] naming `total_gpus` when it is 0 or over
    /// [`MAX_SHAPE_GPUS`], or the query's own.
    pub async fn offer_shapes(
        &self,
        query: &OfferQuery,
        total_gpus: u32,
    ) -> Result<(Vec<ClusterOffer>, Vec<(Provider, Error)>)> {
        if total_gpus == 0 || total_gpus > MAX_SHAPE_GPUS {
            return Err(Error::invalid("total_gpus", format!("must be 1 to {MAX_SHAPE_GPUS}, got {total_gpus}")));
        }
        query.validate()?;
        let single = async {
            let query = OfferQuery { gpu_count: Some(total_gpus), ..query.clone() };
            let found = self.offers(&query).await;
            let shapes: Vec<ClusterOffer> = found
                .offers
                .into_iter()
                .filter(|o| o.gpu_count == total_gpus)
                .map(|node| ClusterOffer {
                    node,
                    nodes: 1,
                    interconnect_gbps: None,
                    interconnect_type: None,
                    provisioning_minutes: None,
                    launchable: true,
                })
                .collect();
            (shapes, found.errors)
        };
        let splits = (2..=total_gpus.min(MAX_SHAPE_NODES)).filter(|nodes| total_gpus.is_multiple_of(*nodes));
        let multi = futures::future::join_all(splits.map(|nodes| {
            let query = OfferQuery { gpu_count: Some(total_gpus / nodes), ..query.clone() };
            async move { self.cluster_offers(&query, nodes).await }
        }));
        let ((mut shapes, single_errors), multi) = tokio::join!(single, multi);
        let mut errors: Vec<(Provider, Error)> = single_errors;
        for (found, failed) in multi {
            shapes.extend(found);
            errors.extend(failed.into_iter().filter(|(_, e)| !matches!(e, Error::Unsupported { .. })));
        }
        let mut seen = std::collections::HashSet::new();
        errors.retain(|(provider, e)| seen.insert((*provider, e.to_string())));
        shapes.sort_by(|a, b| {
            (!a.node.is_usd(), &a.node.currency)
                .cmp(&(!b.node.is_usd(), &b.node.currency))
                .then(a.price_per_gpu_hour().total_cmp(&b.price_per_gpu_hour()))
        });
        Ok((shapes, errors))
    }

    /// Step 2: the candidates, and the providers that offered none (as attempts).
    async fn cluster_candidates(&self, request: &ClusterRequest) -> Result<(Vec<ClusterOffer>, Vec<LaunchAttempt>)> {
        let (offers, mut errors) = self.cluster_offers(&request.query, request.nodes).await;
        if let Some((_, error)) = errors.iter().find(|(_, e)| matches!(e, Error::InvalidInput { .. })) {
            return Err(error.clone());
        }
        // A provider without clusters is no attempt; a fleet of only such providers says so.
        let unsupported = |e: &Error| matches!(e, Error::Unsupported { .. });
        if offers.is_empty() && !errors.is_empty() && errors.iter().all(|(_, e)| unsupported(e)) {
            return Err(errors.swap_remove(0).1);
        }
        let attempts = errors
            .into_iter()
            .filter(|(_, e)| !unsupported(e))
            .map(|(provider, error)| LaunchAttempt {
                provider,
                gpu_type: "(cluster offers)".into(),
                price_per_hour: 0.0,
                error,
            })
            .collect();
        let candidates = offers
            .into_iter()
            .filter(|o| o.launchable)
            .filter(|o| request.max_price_per_hour.is_none_or(|cap| o.price_per_hour() <= cap + 1e-9))
            .take(request.max_candidates.max(1))
            .collect();
        Ok((candidates, attempts))
    }

    /// Every cluster of every provider that has clusters; providers that fail are reported
    /// beside them (providers without clusters are left out).
    pub async fn clusters(&self) -> (Vec<Cluster>, Vec<(Provider, Error)>) {
        let lists = self.provisioners.iter().map(|p| async move { (p.provider(), p.list_clusters().await) });
        let (mut clusters, mut errors) = (Vec::new(), Vec::new());
        for (provider, result) in futures::future::join_all(lists).await {
            match result {
                Ok(found) => clusters.extend(found),
                Err(Error::Unsupported { .. }) => {}
                Err(e) => errors.push((provider, e)),
            }
        }
        (clusters, errors)
    }

    /// What SSH reaches as `id`: the pod, or, for a node of a one-pod cluster
    /// (`<pod>#<rank>`, [`crate::model::cluster::node_pod_id`]), that node as its cluster reads
    /// it. [`Error::InvalidInput`] naming `pod` when the pod lists no such node (yet).
    pub async fn get_host(&self, id: &PodId) -> Result<crate::model::Pod> {
        let Some((pod, rank)) = crate::model::cluster::split_node_pod_id(id) else { return self.get(id).await };
        let cluster = self.get_cluster(&ClusterId::new(pod.provider(), pod.id())).await?;
        cluster.node(id).map(|node| node.pod.clone()).ok_or_else(|| {
            Error::invalid("pod", format!("{id}: {pod} lists no node {rank} (yet): {}", cluster.progress_text()))
        })
    }

    /// The cluster and its nodes.
    pub async fn get_cluster(&self, id: &ClusterId) -> Result<Cluster> {
        self.provisioner(id.provider())?.get_cluster(id).await
    }

    /// Deletes the cluster (every member ends with it) and confirms the deletion within the
    /// cleanup timeout.
    pub async fn delete_cluster(&self, id: &ClusterId) -> Result<()> {
        let provisioner = self.provisioner(id.provider())?;
        let members: Vec<PodId> = match provisioner.get_cluster(id).await {
            Ok(cluster) => cluster.member_ids(),
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        provisioner.delete_cluster_and_confirm(id, &members, Instant::now() + self.cleanup_timeout).await?;
        for member in &members {
            self.burn.forget(member);
        }
        Ok(())
    }
}

impl ClusterLaunch<'_> {
    /// Step 3: each candidate in turn until one is ready, the deadline passes, or a failure
    /// ends the launch.
    async fn try_candidates(
        &mut self,
        candidates: Vec<ClusterOffer>,
        progress: &mut (impl FnMut(ClusterEvent<'_>) + Send),
    ) -> Result<Cluster> {
        for offer in candidates {
            if Instant::now() >= self.deadline {
                return Err(Error::Timeout { what: "a ready cluster".into(), waited: self.started.elapsed() });
            }
            let Ok(provisioner) = self.fleet.provisioner(offer.node.provider).map(Arc::clone) else { continue };
            let Some((price, ttl)) = self.check_spend(&offer) else { continue };
            let Some(ssh_key_id) = self.register_ssh_key(&provisioner, &offer).await else { continue };
            let tag = new_launch_tag();
            let mut spec = ClusterSpec::new(offer.node.clone(), self.request.nodes, self.request.name.clone());
            spec.image.clone_from(&self.request.image);
            spec.disk_gb = self.request.disk_gb;
            spec.env = self.request.fixed_env(&offer);
            spec.ports.clone_from(&self.request.ports);
            spec.ttl = ttl;
            spec.launch_tag = Some(tag.clone());
            spec.ssh_key_id = ssh_key_id;
            self.cleanup.lock().tags.push((Arc::clone(&provisioner), tag.clone()));
            progress(ClusterEvent::Creating { offer: &offer });
            let creating = async {
                let cluster = provisioner.create_cluster(&spec).await?;
                let ids = cluster.billed_pods();
                let placeholder = PodId::new(cluster.provider, format!("cluster:{}", cluster.id.id()));
                Ok((cluster, ids, placeholder))
            };
            let created =
                self.fleet.burn.guarded_many(&self.fleet.watched, offer.node.provider, &price, creating).await;
            let cluster = match created {
                Ok(cluster) => cluster,
                Err(error) => {
                    if !matches!(error, Error::CreateUnconfirmed { .. }) {
                        self.cleanup.lock().tags.retain(|(_, t)| t != &tag);
                    }
                    match super::launch::after_create_failure(&error) {
                        super::launch::Next::Fail => return Err(error),
                        super::launch::Next::Stop => {
                            self.record(&offer, error);
                            return Err(Error::NoCapacity { attempts: std::mem::take(&mut self.attempts) });
                        }
                        super::launch::Next::Continue | super::launch::Next::SkipProvider => {
                            tracing::warn!(provider = %offer.node.provider, %error, "cluster create failed; trying the next offer");
                            self.record(&offer, error);
                            continue;
                        }
                    }
                }
            };
            self.cleanup.track(&provisioner, &cluster);
            self.cleanup.lock().tags.retain(|(_, t)| t != &tag);
            progress(ClusterEvent::Created { cluster: &cluster });
            let id = cluster.id.clone();
            match self.confirm_ready(&provisioner, cluster, progress).await {
                Ok(ready) => {
                    #[cfg(feature = "remote")]
                    if let Some(options) = &self.request.session {
                        progress(ClusterEvent::WritingEnvironment);
                        crate::remote::cluster::write_environment(&ready, options).await?;
                    }
                    self.cleanup.release(&id, &tag);
                    return Ok(ready);
                }
                Err(error @ Error::ClusterFailed { .. }) => {
                    tracing::warn!(cluster = %id, %error, "cluster failed; deleting it and trying the next offer");
                    if let Err(e) = self.cleanup.discard(&provisioner, &id).await {
                        tracing::error!(cluster = %id, error = %e, "could not confirm the deletion yet; cleanup will retry");
                    }
                    self.record(&offer, error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(super::launch::no_offer_started(std::mem::take(&mut self.attempts)))
    }

    fn record(&mut self, offer: &ClusterOffer, error: Error) {
        self.attempts.push(LaunchAttempt {
            provider: offer.node.provider,
            gpu_type: format!("{} x {}", offer.nodes, offer.node.gpu_type),
            price_per_hour: offer.price_per_hour(),
            error,
        });
    }

    /// The price of all nodes and the lease the budget buys; `None` (the refusal recorded) when
    /// the budget rules the offer out.
    fn check_spend(&mut self, offer: &ClusterOffer) -> Option<(Price, Option<Duration>)> {
        let basis = format!("{} nodes at {:.2}/h each", offer.nodes, offer.node.price_per_hour);
        let price = Price::of(&offer.node, offer.price_per_hour(), basis);
        let mut ttl = self.request.ttl;
        if let Some(budget) = self.request.budget_usd {
            match super::spend::lease_for_budget(budget, ttl, &offer.node, &price, self.fleet.burn.rates()) {
                Ok(lease) => ttl = lease,
                Err(error) => {
                    self.record(offer, error);
                    return None;
                }
            }
        }
        Some((price, ttl))
    }

    /// The caller's key registered with the offer's provider (once per provider): `Some` with
    /// its id where the provider keeps one, `None` (the failure recorded) when it could not be.
    async fn register_ssh_key(
        &mut self,
        provisioner: &Arc<dyn Provisioner>,
        offer: &ClusterOffer,
    ) -> Option<Option<String>> {
        let Some(public_key) = &self.request.ssh_public_key else { return Some(None) };
        let provider = offer.node.provider;
        if let Some(known) = self.ssh_keys.get(&provider) {
            return known.clone();
        }
        let registered = match provisioner.ensure_ssh_key(public_key).await {
            Ok(key) => Some(key.id),
            Err(error) => {
                self.attempts.push(LaunchAttempt {
                    provider,
                    gpu_type: "(ssh key)".into(),
                    price_per_hour: 0.0,
                    error,
                });
                None
            }
        };
        self.ssh_keys.insert(provider, registered.clone());
        registered
    }

    /// The bounded wait: one summary read per poll until every node runs and the primary's
    /// endpoint is published, then the members read, then each node's SSH probed.
    /// [`Error::ClusterFailed`] when a member fails; [`Error::Timeout`] at the deadline.
    async fn confirm_ready(
        &mut self,
        provisioner: &Arc<dyn Provisioner>,
        cluster: Cluster,
        progress: &mut (impl FnMut(ClusterEvent<'_>) + Send),
    ) -> Result<Cluster> {
        let id = cluster.id.clone();
        let (started, deadline) = (self.started, self.deadline);
        let mut last = cluster.progress_text();
        let timeout = |last: &str| Error::Timeout {
            what: format!("cluster {id} to be ready (last seen: {last})"),
            waited: started.elapsed(),
        };
        loop {
            let next = Instant::now() + provisioner.poll_interval();
            if next >= deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(timeout(&last));
            }
            tokio::time::sleep_until(next).await;
            let summary = match tokio::time::timeout_at(deadline, provisioner.cluster_summary(&id)).await {
                Err(_) => return Err(timeout(&last)),
                Ok(Err(e)) if e.is_not_found() => {
                    return Err(Error::ClusterFailed {
                        id: id.to_string(),
                        reason: "the provider no longer has it".into(),
                    });
                }
                Ok(Err(e)) if e.is_retryable() => {
                    tracing::warn!(cluster = %id, error = %e, "reading the cluster failed; trying again");
                    continue;
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(summary)) => summary,
            };
            progress(ClusterEvent::Observed { cluster: &summary });
            last = summary.progress_text();
            if let Readiness::Failed(reason) = summary.readiness() {
                return Err(Error::ClusterFailed { id: id.to_string(), reason });
            }
            if !summary.all_running() || summary.primary_ssh_endpoint.is_none() {
                continue;
            }
            let full = match tokio::time::timeout_at(deadline, provisioner.get_cluster(&id)).await {
                Err(_) => return Err(timeout(&last)),
                Ok(Err(e)) if e.is_retryable() => continue,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(full)) => full,
            };
            self.cleanup.track(provisioner, &full);
            match full.readiness() {
                Readiness::Failed(reason) => return Err(Error::ClusterFailed { id: id.to_string(), reason }),
                Readiness::Waiting(why) => {
                    last = why;
                    continue;
                }
                Readiness::Ready => {}
            }
            if provisioner.readiness() == crate::Readiness::Status {
                return Ok(full);
            }
            let probes = full.nodes.iter().filter_map(|node| node.pod.ssh.as_ref().map(|e| (node, e))).map(
                |(node, endpoint)| async move {
                    let budget =
                        deadline.saturating_duration_since(Instant::now()).min(crate::providers::ssh::PROBE_TIMEOUT);
                    crate::providers::ssh::probe_banner(endpoint, budget)
                        .await
                        .map_err(|why| format!("{}: {why}", node.pod.id))
                },
            );
            match futures::future::join_all(probes).await.into_iter().find_map(|r| r.err()) {
                None => return Ok(full),
                Some(why) => last = format!("every node runs; SSH not answering yet ({why})"),
            }
        }
    }
}
