//! The [`Provisioner`] trait: what every cloud can do, behind one object-safe interface.

use crate::model::error::{Error, Result};
use crate::model::{Offer, Pod, PodId, PodStatus, Provider, Volume, VolumeSpec};
use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt as _};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// What a provider supports beyond the common core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// Pods can be stopped and started again (RunPod yes, PrimeIntellect no).
    pub stop_start: bool,
    /// Offers can be interruptible (spot).
    pub spot: bool,
    /// Offers can customize disk, vCPU and memory.
    pub custom_resources: bool,
    /// Network volumes can be attached at creation.
    pub volumes: bool,
    /// A pod's lease can be extended ([`Provisioner::extend_lease`]): the provider can rename pods.
    pub extend_lease: bool,
}

/// Which offers to list. Every field is optional; an empty query lists everything.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct OfferQuery {
    /// GPU model, any spelling ([`crate::model::gpu::lookup`]).
    pub gpu: Option<String>,
    /// GPUs per pod.
    pub gpu_count: Option<u32>,
    /// Regions, in any form [`crate::model::region`] accepts (PrimeIntellect region names, RunPod
    /// data centers and prefixes, countries, continents).
    pub regions: Vec<String>,
    /// Highest acceptable price per hour, in USD. Offers priced in another currency never
    /// match a cap (there is no exchange rate to compare by).
    pub max_price_per_hour: Option<f64>,
    /// Also list offers with prepaid hours ([`Offer::prepaid_hours`]: charged in full when the
    /// pod is created, "regardless of actual usage"). Off by default.
    pub allow_prepaid: bool,
    /// `Some(true)` only spot, `Some(false)` only on-demand.
    pub spot: Option<bool>,
    /// Only offers that can attach this volume (PrimeIntellect `disks=` filter).
    pub volume_id: Option<String>,
    /// Leave out offers reported as out of stock (default true in [`crate::Fleet`]).
    pub in_stock_only: bool,
    /// Only offers on this RunPod cloud tier (`SECURE`: "Runpod-owned datacenter hardware",
    /// `COMMUNITY`: "community-hosted hardware"); no PrimeIntellect offer matches it.
    pub cloud: Option<String>,
}

impl OfferQuery {
    /// A query for `gpu`, `count` GPUs, in-stock only.
    pub fn gpu(gpu: impl Into<String>, count: u32) -> Self {
        Self { gpu: Some(gpu.into()), gpu_count: Some(count), in_stock_only: true, ..Self::default() }
    }

    /// Whether `offer` satisfies the filters the providers cannot apply server-side.
    pub fn matches(&self, offer: &Offer) -> bool {
        let gpu_ok = match &self.gpu {
            Some(wanted) => crate::model::gpu::canonical_name(wanted) == offer.gpu_type,
            None => true,
        };
        gpu_ok
            && self.gpu_count.is_none_or(|n| n == offer.gpu_count)
            && self.max_price_per_hour.is_none_or(|max| offer.is_usd() && offer.price_per_hour <= max)
            && (self.allow_prepaid || offer.prepaid_hours.is_none())
            && self.spot.is_none_or(|spot| spot == offer.spot)
            && (!self.in_stock_only || offer.stock.is_available())
            && self.cloud.as_ref().is_none_or(|wanted| {
                matches!(&offer.details, crate::model::OfferDetails::RunPod { cloud, .. } if cloud.eq_ignore_ascii_case(wanted))
            })
    }

    /// Checks the query before any request: a GPU count of at least 1, a positive price cap,
    /// and regions in one of the accepted forms ([`crate::model::region`]).
    pub fn validate(&self) -> Result<()> {
        crate::model::region::parse_all(&self.regions)?;
        if self.gpu_count == Some(0) {
            return Err(Error::invalid("gpu_count", "must be at least 1"));
        }
        if let Some(max) = self.max_price_per_hour
            && !(max.is_finite() && max > 0.0)
        {
            return Err(Error::invalid("max_price_per_hour", format!("{max} is not a positive price")));
        }
        Ok(())
    }
}

/// Everything needed to create a pod from an offer.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The offer to create from (from [`Provisioner::offers`]).
    pub offer: Offer,
    /// Pod name, 1-[`MAX_NAME_LEN`] characters of `[A-Za-z0-9._-]`. The SDK appends
    /// `-gc<10 chars>`, a per-attempt tag it uses to find the pod again if the create's answer
    /// is lost (see [`Provisioner::create`]), and before it the lease stamp when
    /// [`LaunchSpec::ttl`] is set (see [`crate::model::lease`]).
    pub name: String,
    /// Image: for PrimeIntellect one of the offer's `images` (or `custom_template` with
    /// `custom_template_id`); for RunPod a container image reference. `None` picks the offer's
    /// first image (PrimeIntellect) or [`DEFAULT_RUNPOD_IMAGE`].
    pub image: Option<String>,
    /// PrimeIntellect custom template id, with `image = "custom_template"`.
    pub custom_template_id: Option<String>,
    /// Disk in GB (PrimeIntellect: within the offer's disk spec; RunPod: container disk).
    pub disk_gb: Option<u32>,
    /// vCPUs (PrimeIntellect, within the offer's spec).
    pub vcpus: Option<u32>,
    /// Memory in GB (PrimeIntellect, within the offer's spec).
    pub memory_gb: Option<u32>,
    /// Refuse to create if the estimated price exceeds this; also sent as PrimeIntellect's `maxPrice`.
    pub max_price_per_hour: Option<f64>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Volumes to attach (PrimeIntellect disk ids; RunPod: at most one network volume).
    pub volume_ids: Vec<String>,
    /// PrimeIntellect SSH key id.
    pub ssh_key_id: Option<String>,
    /// The attempt's tag; set by [`Provisioner::create`] when `None`.
    pub launch_tag: Option<String>,
    /// Lease: the pod may be terminated by [`crate::Fleet::reap`] once this long has passed
    /// since its create (1 s to 366 days). The expiry is written into the pod's name.
    pub ttl: Option<Duration>,
    /// The container's command (RunPod `cmd`, exec form: the image's CMD, or the arguments of
    /// its ENTRYPOINT). PrimeIntellect pods run their image's own: [`crate::Error::Unsupported`].
    pub command: Option<Vec<String>>,
    /// The container's entrypoint (RunPod `entrypoint`, exec form, overriding the image's).
    /// PrimeIntellect: [`crate::Error::Unsupported`].
    pub entrypoint: Option<Vec<String>>,
    /// RunPod placement filter: only hosts with at least this much system RAM per GPU, in GB
    /// (`gpu.minRamPerGpu`; the pod may get more). PrimeIntellect: size `memory_gb` instead.
    pub min_ram_per_gpu_gb: Option<u32>,
    /// RunPod placement filter: only hosts with at least this many vCPUs per GPU
    /// (`gpu.minVcpuCountPerGpu`). PrimeIntellect: size `vcpus` instead.
    pub min_vcpus_per_gpu: Option<u32>,
    /// RunPod placement filter: only hosts whose driver offers at least this CUDA version,
    /// `major.minor` (`gpu.minCudaVersion`, compared numerically: 12.11 is above 12.2). Unset
    /// with the default image, [`DEFAULT_RUNPOD_IMAGE_CUDA`] is sent, the image's own need.
    /// PrimeIntellect chooses CUDA by image: [`crate::Error::Unsupported`].
    pub min_cuda_version: Option<String>,
    /// RunPod: the container registry credential id a private image is pulled with
    /// (`registry`, "Container registry credential ID (for private images)").
    /// PrimeIntellect: [`crate::Error::Unsupported`].
    pub registry: Option<String>,
    /// RunPod: ports to expose besides `22/tcp`, which every pod gets (`8888/http`, ...).
    /// PrimeIntellect: [`crate::Error::Unsupported`].
    pub ports: Vec<String>,
    /// RunPod: where the network volume is mounted ("No default — must be specified
    /// explicitly"); `None` mounts it at `/workspace`. PrimeIntellect: [`crate::Error::Unsupported`].
    pub volume_mount_path: Option<String>,
}

/// The CUDA version [`DEFAULT_RUNPOD_IMAGE`] is built for: a host with an older driver cannot
/// run it, so creates with the default image send it as `gpu.minCudaVersion`.
pub const DEFAULT_RUNPOD_IMAGE_CUDA: &str = "12.4";

/// The CUDA floor a RunPod pod needs: the caller's `min_cuda_version`, else the default
/// image's own ([`DEFAULT_RUNPOD_IMAGE_CUDA`]); `None` for an image of the caller's with no
/// floor stated.
pub(crate) fn cuda_floor<'a>(min_cuda_version: Option<&'a str>, image: Option<&str>) -> Option<&'a str> {
    match (min_cuda_version, image) {
        (Some(floor), _) => Some(floor),
        (None, None) => Some(DEFAULT_RUNPOD_IMAGE_CUDA),
        (None, Some(_)) => None,
    }
}

/// The shortest poll interval a client accepts (`with_poll_interval` clamps to it).
pub const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// The longest poll interval a client accepts.
pub const MAX_POLL_INTERVAL: Duration = Duration::from_secs(600);

/// Longest `LaunchSpec::name` accepted (the tag suffix makes room within providers' limits).
pub const MAX_NAME_LEN: usize = 48;
/// Image used for RunPod when none is given.
pub const DEFAULT_RUNPOD_IMAGE: &str = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04";
/// Environment variable carrying the launch tag on providers that keep env vars.
pub const LAUNCH_TAG_ENV: &str = "GPUCLOUD_LAUNCH_TAG";

impl LaunchSpec {
    /// A spec for `offer` with `name` and defaults for everything else.
    pub fn new(offer: Offer, name: impl Into<String>) -> Self {
        Self {
            offer,
            name: name.into(),
            image: None,
            custom_template_id: None,
            disk_gb: None,
            vcpus: None,
            memory_gb: None,
            max_price_per_hour: None,
            env: BTreeMap::new(),
            volume_ids: Vec::new(),
            ssh_key_id: None,
            launch_tag: None,
            ttl: None,
            command: None,
            entrypoint: None,
            min_ram_per_gpu_gb: None,
            min_vcpus_per_gpu: None,
            min_cuda_version: None,
            registry: None,
            ports: Vec::new(),
            volume_mount_path: None,
        }
    }

    /// The name the pod is created with now: `name[-exp<expiry>]-gc<tag>` ([`crate::model::lease`]).
    pub fn pod_name(&self, tag: &str) -> String {
        let expiry = self.ttl.map(|ttl| crate::model::lease::expiry_after(chrono::Utc::now(), ttl));
        crate::model::lease::compose(&self.name, expiry, tag)
    }
}

pub use crate::model::lease::new_launch_tag;

/// The one interface over every cloud. Object-safe: use it as `Box<dyn Provisioner>` or
/// `Arc<dyn Provisioner>`, or put several in a [`crate::Fleet`].
///
/// Reads and deletes are retried per [`crate::RetryPolicy`]; creates never blindly (see
/// [`Provisioner::create`]).
#[async_trait]
pub trait Provisioner: Send + Sync + std::fmt::Debug {
    /// Which cloud this is.
    fn provider(&self) -> Provider;

    /// What it supports.
    fn capabilities(&self) -> Capabilities;

    /// Live offers matching `query`, in the provider's order.
    async fn offers(&self, query: &OfferQuery) -> Result<Vec<Offer>>;

    /// Creates a pod from `spec.offer`. The input is validated first (no request is sent for
    /// bad input). The pod's name carries a unique launch tag; if the create's outcome is
    /// ambiguous (timeout, dropped connection, 5xx, unreadable answer) the request is **not**
    /// sent again: the provider's pods are listed and the tagged pod, if any, is returned.
    /// [`Error::CreateUnconfirmed`] means none was found yet; [`crate::Fleet`] cleans up
    /// anything that appears later under that tag.
    async fn create(&self, spec: &LaunchSpec) -> Result<Pod>;

    /// The pod's current state.
    async fn get(&self, id: &PodId) -> Result<Pod>;

    /// Every pod of the account, streamed page by page (errors end the stream).
    fn list(&self) -> BoxStream<'_, Result<Pod>>;

    /// Every pod of the account that bills, for the burn cap ([`crate::fleet::spend`]): as
    /// [`Provisioner::list`], plus pods a plain list leaves out (RunPod cluster members, which
    /// are "excluded from `GET /v2/pods` by default").
    fn list_billing_pods(&self) -> BoxStream<'_, Result<Pod>> {
        self.list()
    }

    /// What `pod` bills per hour once running ([`Pod::price_per_hour`]), read from the provider
    /// when the pod's record does not say (a stopped RunPod pod: its GPU type's catalog price on
    /// its cloud tier); `None` when it cannot be known.
    async fn running_rate(&self, pod: &Pod) -> Result<Option<f64>> {
        Ok(pod.price_per_hour)
    }

    /// Terminates the pod. Idempotent: a pod that is already gone is success.
    async fn terminate(&self, id: &PodId) -> Result<()>;

    /// Stops a pod: its compute stops billing. RunPod keeps its volume disk, but its container
    /// disk is "ephemeral, wiped on restart" ([`Pod::keeps_files_across_restart`]).
    /// [`Error::Unsupported`] where the provider cannot.
    async fn stop(&self, id: &PodId) -> Result<()> {
        let _ = id;
        Err(Error::Unsupported { provider: self.provider(), operation: "stop" })
    }

    /// What the provider billed in `[since, until)`, per resource and period (see
    /// [`crate::upkeep::cost`]; [`crate::Fleet::costs`] adds running pods' estimates).
    /// [`Error::Unsupported`] where the provider reports no billing.
    async fn billing(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::model::billing::CostEntry>> {
        let _ = (since, until);
        Err(Error::Unsupported { provider: self.provider(), operation: "billing" })
    }

    /// Starts a stopped pod. [`Error::Unsupported`] where the provider cannot.
    async fn start(&self, id: &PodId) -> Result<()> {
        let _ = id;
        Err(Error::Unsupported { provider: self.provider(), operation: "start" })
    }

    /// Sets the pod's lease to expire `ttl` from now, by rewriting the expiry in its name
    /// ([`crate::model::lease`]), and returns the renamed pod. Only pods gpucloud launched (their name
    /// carries a launch tag) have leases; a pod launched without one gets one. Where the provider
    /// cannot rename pods (PrimeIntellect), [`Error::Unsupported`].
    async fn extend_lease(&self, id: &PodId, ttl: Duration) -> Result<Pod> {
        let _ = (id, ttl);
        Err(Error::Unsupported {
            provider: self.provider(),
            operation: "extending a lease (its pods cannot be renamed after creation)",
        })
    }

    /// The pod's log, line by line ([`crate::providers::logs`]): the last `options.tail` lines, then, with
    /// `options.follow`, new lines as they come until the stream is dropped. Errors end the
    /// stream. Needs a Tokio runtime (a task feeds the stream).
    fn logs(&self, id: &PodId, options: crate::LogOptions) -> BoxStream<'static, Result<String>> {
        let _ = (id, options);
        let error = Error::Unsupported { provider: self.provider(), operation: "pod logs" };
        futures::stream::once(async move { Err(error) }).boxed()
    }

    /// The SSH public keys registered with the provider. [`Error::Unsupported`] where it keeps none.
    async fn list_ssh_keys(&self) -> Result<Vec<crate::providers::ssh::SshKey>> {
        Err(Error::Unsupported { provider: self.provider(), operation: "SSH keys" })
    }

    /// Makes sure `public_key` (an `authorized_keys` line) is registered, keeping every key
    /// already there; registering a key that is already there (comments aside) changes nothing.
    /// Returns the registered key (with PrimeIntellect's id, for [`LaunchSpec::ssh_key_id`]).
    async fn ensure_ssh_key(&self, public_key: &str) -> Result<crate::providers::ssh::SshKey> {
        let _ = public_key;
        Err(Error::Unsupported { provider: self.provider(), operation: "SSH keys" })
    }

    /// Network volumes / disks of the account.
    async fn list_volumes(&self) -> Result<Vec<Volume>>;

    /// Creates a volume.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume>;

    /// Deletes a volume (permanently). A volume already gone is success.
    async fn delete_volume(&self, id: &str) -> Result<()>;

    /// How often [`Provisioner::wait_until_ready`] polls.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(3)
    }

    /// What [`Provisioner::wait_until_ready`] waits for ([`crate::Readiness`]).
    fn readiness(&self) -> crate::Readiness {
        crate::Readiness::SshBanner
    }

    /// The pod's state from the next status read, at most about one
    /// [`Provisioner::poll_interval`] from now; `None` when the provider no longer has the pod.
    /// Every wait reads states through this. The built-in clients answer all callers from one
    /// shared sweep per interval ([`crate::providers::watch`]), so waiting on many pods costs one request per
    /// interval; this default waits one interval and reads the pod alone.
    async fn observe(&self, id: &PodId) -> Result<Option<Pod>> {
        tokio::time::sleep(self.poll_interval()).await;
        crate::transport::caller::gone_is_none(self.get(id).await)
    }

    /// Waits until the pod is ready, or `deadline` passes ([`Error::Timeout`]), or the pod fails
    /// or disappears ([`Error::PodFailed`]; on PrimeIntellect also when its installation failed,
    /// whatever its status says). Ready means running with a known SSH endpoint that answers
    /// with an SSH banner ([`crate::providers::ssh`]), unless [`Provisioner::readiness`] says status alone.
    /// States come from [`Provisioner::observe`] (one shared sweep per interval); a sweep that
    /// fails after the retry policy's attempts ends the wait with its error. The deadline is
    /// never exceeded by more than one probe's timeout.
    async fn wait_until_ready(&self, id: &PodId, deadline: Instant) -> Result<Pod> {
        self.wait_until_ready_reporting(id, deadline, &mut |_| {}).await
    }

    /// [`Provisioner::wait_until_ready`], handing each state it reads to `observed` (for
    /// progress displays: status, PrimeIntellect's `installation_progress`).
    async fn wait_until_ready_reporting(
        &self,
        id: &PodId,
        deadline: Instant,
        observed: &mut (dyn for<'p> FnMut(&'p Pod) + Send),
    ) -> Result<Pod> {
        let started = Instant::now();
        let mut last: Option<(String, Option<String>)> = None;
        loop {
            let Ok(observed_state) = tokio::time::timeout_at(deadline, self.observe(id)).await else {
                let what = match last {
                    Some((status, Some(why))) => format!("pod {id} to answer SSH (it is {status}; last probe: {why})"),
                    Some((status, None)) => format!("pod {id} to become ready (last status {status})"),
                    None => format!("pod {id} to become ready"),
                };
                return Err(Error::Timeout { what, waited: started.elapsed() });
            };
            let Some(pod) = observed_state? else {
                return Err(Error::PodFailed { id: id.clone(), status: "gone: the provider no longer has it".into() });
            };
            observed(&pod);
            let mut last_probe = None;
            match (&pod.ssh, self.readiness()) {
                (Some(_), crate::Readiness::Status) if pod.is_ready() => return Ok(pod),
                (Some(endpoint), crate::Readiness::SshBanner) if pod.is_ready() => {
                    let budget =
                        deadline.saturating_duration_since(Instant::now()).min(crate::providers::ssh::PROBE_TIMEOUT);
                    match crate::providers::ssh::probe_banner(endpoint, budget).await {
                        Ok(banner) => {
                            tracing::debug!(pod = %id, %banner, "SSH answers; pod ready");
                            return Ok(pod);
                        }
                        Err(why) => {
                            tracing::debug!(pod = %id, %why, "pod running, SSH not answering yet");
                            last_probe = Some(why);
                        }
                    }
                }
                _ => {}
            }
            if pod.status.is_final() {
                return Err(Error::PodFailed { id: id.clone(), status: pod.failure_reason() });
            }
            tracing::debug!(pod = %id, status = %pod.status, "waiting for pod");
            last = Some((pod.progress_text(), last_probe));
        }
    }

    /// Terminates and then waits until the provider reports the pod terminated or gone, or
    /// `deadline` passes. Transient failures (after the retry policy's own attempts) do not end
    /// the effort: a pod we mean to remove keeps billing, so it keeps trying until the deadline.
    /// The terminate is sent again only if the pod still shows no sign of it three status reads
    /// later.
    async fn terminate_and_confirm(&self, id: &PodId, deadline: Instant) -> Result<()> {
        const READS_BEFORE_RESENDING: u32 = 3;
        let started = Instant::now();
        let timeout = || Error::Timeout { what: format!("pod {id} to terminate"), waited: started.elapsed() };
        let mut unaffected_reads = READS_BEFORE_RESENDING;
        loop {
            if unaffected_reads >= READS_BEFORE_RESENDING {
                match tokio::time::timeout_at(deadline, self.terminate(id)).await {
                    Err(_) => return Err(timeout()),
                    Ok(Err(e)) if !e.is_retryable() => return Err(e),
                    Ok(Err(e)) => {
                        tracing::warn!(pod = %id, error = %e, "terminate failed; trying again");
                        let next = Instant::now() + self.poll_interval().min(Duration::from_secs(2));
                        if next >= deadline {
                            return Err(timeout());
                        }
                        tokio::time::sleep_until(next).await;
                        continue;
                    }
                    Ok(Ok(())) => unaffected_reads = 0,
                }
            }
            let gone = || {
                // What the layers above kept for the pod (its host key) goes with it.
                crate::providers::hooks::termination_confirmed(id);
                Ok(())
            };
            match tokio::time::timeout_at(deadline, self.observe(id)).await {
                Err(_) => return Err(timeout()),
                Ok(Ok(None)) => return gone(),
                Ok(Ok(Some(pod))) if pod.status == PodStatus::Terminated => return gone(),
                Ok(Ok(Some(pod))) if pod.status == PodStatus::Terminating => {}
                Ok(Ok(Some(_))) => unaffected_reads += 1,
                Ok(Err(e)) if !e.is_retryable() => return Err(e),
                Ok(Err(e)) => tracing::warn!(pod = %id, error = %e, "reading the pod's state failed; trying again"),
            }
        }
    }

    /// Cluster offers: `nodes` nodes of each single-node shape that matches `query`
    /// (`query.gpu_count` is GPUs per node), as the provider sells them for clusters.
    /// [`Error::Unsupported`] where the provider has no clusters.
    async fn cluster_offers(&self, query: &OfferQuery, nodes: u32) -> Result<Vec<crate::model::cluster::ClusterOffer>> {
        let _ = (query, nodes);
        Err(Error::Unsupported { provider: self.provider(), operation: "clusters" })
    }

    /// Creates a cluster (one attempt; an ambiguous failure is reconciled by the launch tag in
    /// its name, never re-sent). The answer's nodes are read when the provider lists them at
    /// once; an empty `nodes` is not an error. [`Error::Unsupported`] without clusters.
    async fn create_cluster(
        &self,
        spec: &crate::providers::clusters::ClusterSpec,
    ) -> Result<crate::model::cluster::Cluster> {
        let _ = spec;
        Err(Error::Unsupported { provider: self.provider(), operation: "clusters" })
    }

    /// The cluster and its member pods. A cluster the provider no longer has is an error for
    /// which [`Error::is_not_found`] holds.
    async fn get_cluster(&self, id: &crate::model::cluster::ClusterId) -> Result<crate::model::cluster::Cluster> {
        let _ = id;
        Err(Error::Unsupported { provider: self.provider(), operation: "clusters" })
    }

    /// The cluster's summary alone (no member pods): one request, for waits.
    async fn cluster_summary(&self, id: &crate::model::cluster::ClusterId) -> Result<crate::model::cluster::Cluster> {
        self.get_cluster(id).await
    }

    /// Every cluster of the account, with its members.
    async fn list_clusters(&self) -> Result<Vec<crate::model::cluster::Cluster>> {
        Err(Error::Unsupported { provider: self.provider(), operation: "clusters" })
    }

    /// Deletes the cluster, ending every member. Idempotent: a cluster already gone is success.
    async fn delete_cluster(&self, id: &crate::model::cluster::ClusterId) -> Result<()> {
        let _ = id;
        Err(Error::Unsupported { provider: self.provider(), operation: "clusters" })
    }

    /// Deletes the cluster and waits until the provider no longer has it and none of
    /// `members` is live (each terminated or gone), or `deadline` passes ([`Error::Timeout`]).
    /// Transient failures do not end the effort before the deadline.
    async fn delete_cluster_and_confirm(
        &self,
        id: &crate::model::cluster::ClusterId,
        members: &[PodId],
        deadline: Instant,
    ) -> Result<()> {
        let started = Instant::now();
        let timeout = || Error::Timeout { what: format!("cluster {id} to be deleted"), waited: started.elapsed() };
        loop {
            match tokio::time::timeout_at(deadline, self.delete_cluster(id)).await {
                Err(_) => return Err(timeout()),
                Ok(Err(e)) if !e.is_retryable() => return Err(e),
                Ok(Err(e)) => tracing::warn!(cluster = %id, error = %e, "cluster delete failed; trying again"),
                Ok(Ok(())) => {
                    let gone = match tokio::time::timeout_at(deadline, self.cluster_summary(id)).await {
                        Err(_) => return Err(timeout()),
                        Ok(Err(e)) if e.is_not_found() => true,
                        Ok(Err(e)) if !e.is_retryable() => return Err(e),
                        Ok(_) => false,
                    };
                    let mut live = Vec::new();
                    for member in members {
                        match tokio::time::timeout_at(deadline, self.get(member)).await {
                            Err(_) => return Err(timeout()),
                            Ok(Ok(pod)) if pod.status != PodStatus::Terminated => live.push(member.clone()),
                            Ok(Err(e)) if !e.is_not_found() && !e.is_retryable() => return Err(e),
                            Ok(Err(e)) if !e.is_not_found() => live.push(member.clone()),
                            Ok(_) => {}
                        }
                    }
                    if gone && live.is_empty() {
                        for member in members {
                            crate::providers::hooks::termination_confirmed(member);
                        }
                        return Ok(());
                    }
                    tracing::debug!(cluster = %id, gone, live = live.len(), "cluster not confirmed deleted yet");
                }
            }
            let next = Instant::now() + self.poll_interval().min(Duration::from_secs(2));
            if next >= deadline {
                return Err(timeout());
            }
            tokio::time::sleep_until(next).await;
        }
    }

    /// Clusters whose name carries `tag` (to reconcile an ambiguous cluster create and to clean
    /// up after it).
    async fn find_clusters_by_launch_tag(&self, tag: &str) -> Result<Vec<crate::model::cluster::Cluster>> {
        Ok(self.list_clusters().await?.into_iter().filter(|c| c.launch_tag.as_deref() == Some(tag)).collect())
    }

    /// Pods whose name carries `tag` (used to reconcile creates and to clean up).
    async fn find_by_launch_tag(&self, tag: &str) -> Result<Vec<Pod>> {
        use futures::TryStreamExt;
        let pods: Vec<Pod> = self.list().try_collect().await?;
        Ok(pods
            .into_iter()
            .filter(|p| p.launch_tag.as_deref() == Some(tag) && p.status != PodStatus::Terminated)
            .collect())
    }
}
