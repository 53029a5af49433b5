//! [`RunPod`]: the [`Provisioner`] for RunPod REST v2 (`api.runpod.io/v2`).

mod billing;
pub mod clusters;

use crate::model::error::{Error, Result};
use crate::model::gpu;
use crate::model::time::parse_timestamp;
use crate::model::{
    Offer, OfferDetails, Pod, PodId, PodRecord, PodStatus, Provider, SshEndpoint, Stock, Volume, VolumeSpec,
};
use crate::providers::provisioner::{
    Capabilities, DEFAULT_RUNPOD_IMAGE, LAUNCH_TAG_ENV, LaunchSpec, OfferQuery, Provisioner, new_launch_tag,
};
use crate::providers::reconcile::{ReconcilePolicy, reconcile_create};
use crate::transport::caller::{Caller, gone_is_ok, key_from_env, nonempty_env};
use crate::transport::retry::{RetryPolicy, Safety};
use async_trait::async_trait;
use futures::stream::BoxStream;
use runpod_api::types;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "RUNPOD_API_KEY";
/// Environment variable overriding the server root (default `https://api.runpod.io`).
pub const BASE_URL_ENV: &str = "RUNPOD_API_BASE_URL";

/// Each data center id and its continent, RunPod's `DataCenterRegion` (`EUROPE`, ...).
type DataCenterRegions = std::collections::HashMap<String, String>;

/// The cloud tiers RunPod sells on.
const CLOUDS: [&str; 2] = ["SECURE", "COMMUNITY"];

/// RunPod v2: pods with stop/start, network volumes, a GPU catalog with prices and live stock.
///
/// v2's create places one GPU type and does not fall back; [`crate::Fleet`] tries candidates
/// in order (the conveniences of RunPod v1's `gpuTypeIds`/`dataCenterIds` lists).
#[derive(Debug, Clone)]
pub struct RunPod {
    client: runpod_api::Client,
    caller: Caller,
    poll_interval: Duration,
    reconcile: ReconcilePolicy,
    readiness: crate::Readiness,
    watcher: crate::providers::watch::Watcher,
    pagination: crate::Pagination,
    /// RunPod's data centers and the continent (`DataCenterRegion`) each lies on, read once per
    /// client from `GET /v2/catalog/datacenters` (shared by clones); `None` until read.
    data_center_regions: Arc<std::sync::Mutex<Option<Arc<DataCenterRegions>>>>,
    /// Set once the account is seen to hold an SSH key; a missing key is never cached, so one
    /// registered later (e.g. in the console) is found on the next create.
    ssh_key_seen: Arc<AtomicBool>,
}

impl RunPod {
    /// A client for `base_url` (default: the real service) authenticating with `api_key`.
    pub fn new(api_key: SecretString, base_url: Option<&str>) -> Result<Self> {
        let client = runpod_api::Client::with_api_key(&api_key, base_url)
            .map_err(|e| Error::Config { provider: Provider::RunPod, message: e.to_string() })?;
        Ok(Self {
            client,
            caller: Caller::new(Provider::RunPod, api_key, RetryPolicy::default()),
            poll_interval: Duration::from_secs(5),
            reconcile: ReconcilePolicy::default(),
            readiness: crate::Readiness::default(),
            watcher: crate::providers::watch::Watcher::default(),
            pagination: crate::Pagination::runpod(),
            ssh_key_seen: Arc::default(),
            data_center_regions: Arc::default(),
        })
    }

    /// A client configured from `RUNPOD_API_KEY` and, if set, `RUNPOD_API_BASE_URL`.
    pub fn from_env() -> Result<Self> {
        let key = key_from_env(Provider::RunPod, API_KEY_ENV)?;
        Self::new(key, nonempty_env(BASE_URL_ENV).as_deref())
    }

    crate::providers::settings::client_settings!();

    /// Replaces the pagination settings of pod lists (default [`crate::Pagination::runpod`]:
    /// `limit` 1,000, at most 1,000 pages). `page_size` must lie in 1–1000.
    pub fn with_pagination(mut self, pagination: crate::Pagination) -> Self {
        self.pagination = pagination;
        self
    }

    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The generated client, for operations the facade does not wrap.
    pub fn raw(&self) -> &runpod_api::Client {
        &self.client
    }

    async fn catalog(&self, cloud: &str, count: u32) -> Result<Vec<types::GpuType>> {
        self.catalog_of("POD", cloud, count).await
    }

    /// The GPU catalog with availability for `product` (`POD` or `CLUSTER`: "availability is
    /// per product").
    async fn catalog_of(&self, product: &str, cloud: &str, count: u32) -> Result<Vec<types::GpuType>> {
        let include: Vec<types::CatalogInclude> = self.caller.build("include", json!(["AVAILABILITY"]))?;
        let product: Vec<types::Product> = self.caller.build("product", json!([product]))?;
        let cloud_filter: types::GpuCloudFilter = self.caller.build("cloud", json!(cloud))?;
        let count = std::num::NonZeroU64::new(u64::from(count.max(1))).unwrap_or(std::num::NonZeroU64::MIN);
        let list = self
            .caller
            .call("list_gpu_types", Safety::Idempotent, || {
                self.client
                    .list_gpu_types()
                    .include(include.clone())
                    .product(product.clone())
                    .cloud(cloud_filter)
                    .count(count)
                    .send()
            })
            .await?;
        Ok(list.gpus)
    }

    async fn action(&self, id: &PodId, action: &str) -> Result<()> {
        let pod_id = check_pod_id(id)?;
        let body: types::PodActionRequest = self.caller.build("action", json!({"action": action}))?;
        let sent = self
            .caller
            .call("pod_action", Safety::Idempotent, || self.client.pod_action().id(pod_id).body(body.clone()).send())
            .await;
        match sent {
            Ok(_) => Ok(()),
            // 409: "not valid for the pod's current status". A retried stop whose first attempt
            // landed finds the pod stopped already: that is the asked state, so it succeeded.
            Err(e) if e.status() == Some(409) => {
                let pod = self.get(id).await?;
                let done = match action {
                    "stop" => pod.status == PodStatus::Stopped,
                    "start" => matches!(pod.status, PodStatus::Running | PodStatus::Starting | PodStatus::Provisioning),
                    _ => false,
                };
                if done {
                    tracing::debug!(pod = %id, action, status = %pod.status, "already in the asked state");
                    Ok(())
                } else {
                    Err(e)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// The data center network volume `id` lives in; an id the account does not have is
    /// [`Error::InvalidInput`] naming it.
    async fn volume_data_center(&self, id: &str) -> Result<String> {
        let found = self
            .caller
            .call("get_network_volume", Safety::Idempotent, || self.client.get_network_volume().id(id).send())
            .await;
        match found {
            Ok(volume) => Ok(volume.data_center.clone()),
            Err(e) if e.is_not_found() => {
                Err(Error::invalid("volume_id", format!("RunPod has no network volume {id:?} on this account")))
            }
            Err(e) => Err(e),
        }
    }

    /// Fails with [`Error::NoSshKey`] unless the account holds an SSH key. The document's
    /// `startSsh` "**Requires registered keys** — with none registered the flag does nothing
    /// and the pod has no SSH access": a create without one would bill through a wait for an
    /// SSH answer that never comes. One `GET /v2/account/ssh-keys` until a key is seen.
    async fn require_ssh_key(&self) -> Result<()> {
        if self.ssh_key_seen.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.list_ssh_keys().await?.is_empty() {
            return Err(Error::NoSshKey { provider: Provider::RunPod });
        }
        Ok(())
    }
}

impl RunPod {
    /// Each data center's continent as RunPod's catalog states it (`DataCenter.region`, "Continental
    /// region containing the data center"), read once per client; `None`, with a warning, when
    /// the catalog cannot be read, and continents are then told by the data center's id.
    async fn data_center_regions(&self) -> Option<Arc<DataCenterRegions>> {
        if let Some(known) = self.data_center_regions.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Some(known);
        }
        let read =
            self.caller.call("list_data_centers", Safety::Idempotent, || self.client.list_data_centers().send()).await;
        match read {
            Ok(list) => {
                let regions: DataCenterRegions =
                    list.data_centers.iter().map(|dc| (dc.id.clone(), dc.region.0.clone())).collect();
                let regions = Arc::new(regions);
                *self.data_center_regions.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(&regions));
                Some(regions)
            }
            Err(error) => {
                tracing::warn!(%error, "RunPod's data center catalog could not be read: continents are told by the data center's id");
                None
            }
        }
    }

    /// Feeds `lines` from the pod's SSE log stream, reconnecting with `Last-Event-ID` after a
    /// drop (see [`crate::providers::logs`]). Returns when done, when `lines` is closed, or on an error.
    async fn stream_logs(
        &self,
        id: &PodId,
        options: crate::LogOptions,
        lines: &tokio::sync::mpsc::Sender<Result<String>>,
    ) -> Result<()> {
        use futures::StreamExt as _;
        options.validate()?;
        let pod_id = check_pod_id(id)?;
        let (mut last_event, mut delivered, mut failures) = (None::<String>, 0u32, 0u32);
        loop {
            let opened = self
                .caller
                .call("get_pod_logs", Safety::Idempotent, || {
                    let request = self.client.get_pod_logs().id(pod_id);
                    match &last_event {
                        Some(resume) => request.last_event_id(resume.clone()).send(),
                        None => request.tail(i64::from(options.tail)).send(),
                    }
                })
                .await;
            let mut body = match opened {
                Ok(body) => body.into_inner(),
                Err(e) if e.is_not_found() && last_event.is_some() => return Ok(()), // the pod is gone
                Err(e) if options.follow && e.is_retryable() && failures < crate::providers::logs::MAX_RECONNECTS => {
                    failures += 1;
                    tokio::time::sleep(Duration::from_secs(u64::from(failures))).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut parser = crate::providers::logs::SseParser::default();
            loop {
                let next = if options.follow {
                    body.next().await
                } else {
                    match tokio::time::timeout(crate::providers::logs::BACKFILL_IDLE, body.next()).await {
                        Ok(next) => next,
                        Err(_) => return Ok(()), // the backfill is delivered
                    }
                };
                let end_of_stream = next.is_none();
                let events = match next {
                    Some(Ok(chunk)) => parser.feed(&chunk),
                    Some(Err(e)) => {
                        tracing::debug!(pod = %id, error = %e, "log stream dropped; resuming");
                        break;
                    }
                    None => parser.finish().into_iter().collect(),
                };
                failures = 0;
                for event in events {
                    // Resumed streams may replay the event they resume from: skip what was seen.
                    if let (Some(id), Some(last)) = (&event.id, &last_event)
                        && id <= last
                    {
                        continue;
                    }
                    if event.id.is_some() {
                        last_event.clone_from(&event.id);
                    }
                    if lines.send(Ok(crate::providers::logs::runpod_line(&event))).await.is_err() {
                        return Ok(()); // nobody is reading any more
                    }
                    delivered += 1;
                    if !options.follow && delivered >= options.tail {
                        return Ok(());
                    }
                }
                if end_of_stream {
                    break;
                }
            }
            if !options.follow && last_event.is_none() {
                return Ok(());
            }
            failures += 1;
            if failures > crate::providers::logs::MAX_RECONNECTS {
                return Err(Error::Transport {
                    provider: Provider::RunPod,
                    operation: "get_pod_logs",
                    message: "the log stream kept dropping".into(),
                    maybe_sent: false,
                });
            }
        }
    }
}

impl RunPod {
    /// Every pod of the account (cluster members excluded: `includeClusterPods` is left at its
    /// default, false), as a stream of cursor pages, newest first.
    pub fn pod_pages(&self) -> BoxStream<'static, Result<crate::Page<Pod>>> {
        self.pod_pages_with(false)
    }

    /// Every pod of the account, cluster members included (`includeClusterPods=true`: they
    /// "are excluded from `GET /v2/pods` by default" and bill like any pod), newest first.
    pub fn pod_pages_with_cluster_members(&self) -> BoxStream<'static, Result<crate::Page<Pod>>> {
        self.pod_pages_with(true)
    }

    fn pod_pages_with(&self, include_cluster_pods: bool) -> BoxStream<'static, Result<crate::Page<Pod>>> {
        let this = self.clone();
        let limit = self.pagination.page_size;
        let Some(limit) =
            std::num::NonZeroU64::new(limit).filter(|l| l.get() <= crate::transport::paginate::RUNPOD_MAX_LIMIT)
        else {
            let error = Error::invalid("page_size", format!("{limit} is outside RunPod's limit range 1-1000"));
            return futures::StreamExt::boxed(futures::stream::once(async move { Err(error) }));
        };
        crate::transport::paginate::cursor_pages(
            Provider::RunPod,
            "list_pods",
            self.pagination.max_pages,
            move |cursor| {
                let this = this.clone();
                async move {
                    let cursor: Option<types::ListPodsCursor> =
                        cursor.map(|c| this.caller.build("cursor", json!(c))).transpose()?;
                    let page = this
                        .caller
                        .call("list_pods", Safety::Idempotent, || {
                            let mut request = this.client.list_pods().limit(limit);
                            if include_cluster_pods {
                                request = request.include_cluster_pods(true);
                            }
                            match &cursor {
                                Some(cursor) => request.cursor(cursor.clone()).send(),
                                None => request.send(),
                            }
                        })
                        .await?;
                    Ok(crate::transport::paginate::CursorPage {
                        items: page.pods.into_iter().map(to_pod).collect(),
                        next_cursor: page.pagination.next_cursor,
                        has_next_page: page.pagination.has_next_page,
                    })
                }
            },
        )
    }

    /// Every pod of the account, every page read.
    async fn all_pods(&self) -> Result<Vec<Pod>> {
        use futures::TryStreamExt as _;
        crate::transport::paginate::items(self.pod_pages()).try_collect().await
    }
}

/// RunPod's status sweep: one `GET /v2/pods` returns every pod of the account.
#[async_trait]
impl crate::providers::watch::StatusSource for RunPod {
    async fn batch(&self, _ids: &[PodId]) -> Result<Vec<Pod>> {
        self.all_pods().await
    }
}

fn check_pod_id(id: &PodId) -> Result<&str> {
    if id.provider() != Provider::RunPod {
        return Err(Error::invalid("pod id", format!("{id} is not a RunPod pod")));
    }
    Ok(id.id())
}

fn to_offers(gpu: &types::GpuType, cloud: &str, count: u32) -> Option<Offer> {
    let (offered, unit_price, max) = match cloud {
        "SECURE" => (gpu.secure, gpu.price.secure, gpu.max_count.secure),
        _ => (gpu.community, gpu.price.community, gpu.max_count.community),
    };
    if !offered || unit_price <= 0.0 || (max > 0 && i64::from(count) > max) {
        return None;
    }
    let mut data_centers: Vec<&types::DataCenterAvailability> = gpu.data_centers.iter().collect();
    let rank = |level: &str| match Stock::parse(level) {
        Stock::High => 0,
        Stock::Medium => 1,
        Stock::Low => 2,
        Stock::Unavailable => 4,
        _ => 3,
    };
    data_centers.sort_by_key(|dc| rank(&dc.availability.0));
    let stock = gpu.availability.as_ref().map(|a| Stock::parse(&a.0)).unwrap_or(Stock::Unknown("unreported".into()));
    Some(Offer {
        provider: Provider::RunPod,
        via: None,
        gpu_type: gpu::canonical_name(&gpu.id),
        gpu_count: count,
        gpu_memory_gb: u32::try_from(gpu.memory).ok(),
        // List price is per GPU; f32 on the wire, rounded back to cents' precision.
        price_per_hour: ((f64::from(unit_price) * f64::from(count)) * 10_000.0).round() / 10_000.0,
        currency: "USD".into(),
        prepaid_hours: None,
        spot: false,
        region: None,
        data_center: data_centers.first().map(|dc| dc.id.clone()),
        country: None,
        stock,
        images: Vec::new(),
        disk: None,
        vcpu: None,
        memory: None,
        details: OfferDetails::RunPod {
            gpu_type_id: gpu.id.clone(),
            cloud: cloud.to_string(),
            data_center_ids: data_centers
                .iter()
                .filter(|dc| Stock::parse(&dc.availability.0).is_available())
                .map(|dc| dc.id.clone())
                .collect(),
            max_gpu_count: u32::try_from(max).ok(),
            cuda_versions: gpu.cuda_versions.iter().filter(|v| v.available).map(|v| v.version.clone()).collect(),
        },
    })
}

fn ssh_of(pod: &types::Pod) -> Option<SshEndpoint> {
    let endpoint = pod.ssh.direct.as_ref().or(pod.ssh.proxy.as_ref())?;
    Some(SshEndpoint {
        host: endpoint.host.clone(),
        port: u16::try_from(endpoint.port).unwrap_or(22),
        user: endpoint.username.clone(),
    })
}

/// Whether a `400`'s detail is a capacity answer. RunPod's document: "`400` covers both 'your
/// request breaks a rule' and 'no capacity', because capacity exhaustion currently carries no
/// machine-readable code of its own — only a human-readable `detail`". So only the wordings
/// RunPod gives for capacity count ("There are no instances currently available …", "There are
/// not enough free GPUs on the host machine …", "no capacity"); any other `400` is the error as
/// it came, never [`Error::HostFull`], so nothing is redeployed on it.
pub(crate) fn is_stock_out(detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    ["no instances currently available", "not enough free gpus", "no capacity", "no longer any instances available"]
        .iter()
        .any(|wording| detail.contains(wording))
}

/// A RunPod price (f32 on the wire) as the decimal it was quoted in: four places.
fn wire_price(price: f32) -> f64 {
    (f64::from(price) * 10_000.0).round() / 10_000.0
}

/// What RunPod bills per GB of a pod's volume disk per month while the pod is stopped: "Volume
/// disk … $0.20/GB/month (stopped)" (RunPod's storage page, docs.runpod.io/pods/storage/types).
/// The container disk is "Lost on stop/restart" and paid "only … when the pod is running", and
/// the API document states no rate, so this published one is used.
pub const RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH: f64 = 0.20;
/// Hours in the month of RunPod's per-month storage prices (365 × 24 / 12).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What asking RunPod for spot capacity is: RunPod removed spot (interruptible) pods from its
/// documents in 2026 and REST v2 has no field for them, so there is nothing to ask for, and an
/// on-demand pod in its place would be a silent change of price and terms.
pub const SPOT_REMOVED: &str = "spot (interruptible) pods: RunPod removed them in 2026 and its REST v2 API has no field for them (use PrimeIntellect's spot offers, or on-demand)";

/// The typed error for a spot request to RunPod ([`SPOT_REMOVED`]).
pub fn spot_removed() -> Error {
    Error::Unsupported { provider: Provider::RunPod, operation: SPOT_REMOVED }
}

/// What a stopped pod bills per hour: its persistent volume at
/// [`RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH`]; nothing for a pod with only a container disk
/// (a network volume bills on its own, whatever the pod does).
fn stopped_rate(pod: &types::Pod) -> f64 {
    let gb = pod.mounts.persistent.as_ref().map_or(0, |m| m.size.max(0));
    gb as f64 * RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH / HOURS_PER_MONTH
}

pub(crate) fn to_pod(pod: types::Pod) -> Pod {
    let provider_status = pod.status.0.clone();
    let (launch_tag, lease_expires_at) = crate::model::lease::tag_and_expiry(&pod.name);
    let status = PodStatus::from_runpod(&provider_status);
    // `cost` is the current rate ("0.0 when EXITED or TERMINATED"), f32 on the wire: rounded
    // back to the cents' precision it was quoted in, not 1.9900000095367432. While the pod is
    // stopped or ended it says nothing about the running rate.
    let cost = wire_price(pod.cost);
    let (running_rate, rate_now) = match status {
        PodStatus::Stopped => (None, stopped_rate(&pod)),
        PodStatus::Terminated => (None, 0.0),
        _ => (Some(cost), cost),
    };
    Pod {
        id: PodId::new(Provider::RunPod, pod.id.clone()),
        provider: Provider::RunPod,
        name: pod.name.clone(),
        launch_tag,
        lease_expires_at,
        status,
        provider_status,
        installation_status: None,
        installation_progress: None,
        team_id: None,
        gpu_type: pod.gpu.as_ref().map(|g| gpu::canonical_name(&g.id)).unwrap_or_else(|| "CPU".into()),
        gpu_count: pod.gpu.as_ref().map(|g| u32::try_from(g.count.get()).unwrap_or(u32::MAX)).unwrap_or(0),
        price_per_hour: running_rate,
        price_now_per_hour: Some(rate_now),
        data_center: pod.data_center_id.clone(),
        // "Live utilization metrics. Null when the pod is not RUNNING." A GPU without a `util`
        // makes the whole reading unknown: an idle judgement must not rest on a guess.
        gpu_utilization: pod
            .runtime
            .as_ref()
            .filter(|r| !r.gpus.is_empty())
            .and_then(|r| r.gpus.iter().map(|g| g.util.map(|u| u.clamp(0, 100) as u8)).collect()),
        ssh: ssh_of(&pod),
        created_at: parse_timestamp(&pod.created_at),
        started_at: pod.started_at.as_deref().and_then(parse_timestamp),
        raw: PodRecord::RunPod(Box::new(pod)),
    }
}

fn ssh_key(public_key: String) -> crate::providers::ssh::SshKey {
    crate::providers::ssh::SshKey { provider: Provider::RunPod, id: None, name: None, public_key }
}

fn to_volume(volume: &types::NetworkVolume) -> Volume {
    Volume {
        id: volume.id.clone(),
        provider: Provider::RunPod,
        name: volume.name.clone(),
        size_gb: u64::try_from(volume.size).unwrap_or(0),
        status: None,
        data_center: Some(volume.data_center.clone()),
        price_per_hour: None,
        raw: serde_json::to_value(volume).unwrap_or(Value::Null),
    }
}

#[async_trait]
impl Provisioner for RunPod {
    fn provider(&self) -> Provider {
        Provider::RunPod
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { stop_start: true, spot: false, custom_resources: false, volumes: true, extend_lease: true }
    }

    async fn billing(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<crate::model::billing::CostEntry>> {
        billing::read(self, since, until).await
    }

    async fn offers(&self, query: &OfferQuery) -> Result<Vec<Offer>> {
        query.validate()?;
        if query.spot == Some(true) {
            return Err(spot_removed());
        }
        let count = query.gpu_count.unwrap_or(1);
        // A network volume attaches only "in the same data center as the pod", on Secure Cloud.
        let volume_home = match &query.volume_id {
            Some(id) => Some(self.volume_data_center(id).await?),
            None => None,
        };
        let catalogs = futures::future::try_join_all(CLOUDS.iter().map(|cloud| self.catalog(cloud, count))).await?;
        let mut offers = Vec::new();
        for (cloud, gpus) in CLOUDS.iter().zip(catalogs) {
            offers.extend(gpus.iter().filter_map(|g| to_offers(g, cloud, count)));
        }
        // A region keeps only the data centers inside it: the offer shows one of them and its
        // create's `dataCenterIds` ("preferred data centers for placement") holds only them.
        let places = crate::model::region::parse_all(&query.regions)?;
        let catalog =
            if places.iter().any(|p| p.continent.is_some()) { self.data_center_regions().await } else { None };
        Ok(offers
            .into_iter()
            .filter(|o| query.matches(o))
            .filter_map(|mut offer| {
                if places.is_empty() && volume_home.is_none() {
                    return Some(offer);
                }
                let OfferDetails::RunPod { data_center_ids, cloud, .. } = &mut offer.details else { return None };
                if volume_home.is_some() && cloud != "SECURE" {
                    return None;
                }
                data_center_ids.retain(|dc| {
                    (places.is_empty() || places.iter().any(|p| p.has_runpod_data_center_in(dc, catalog.as_deref())))
                        && volume_home.as_ref().is_none_or(|home| home == dc)
                });
                let first = data_center_ids.first()?.clone();
                offer.data_center = Some(first);
                Some(offer)
            })
            .collect())
    }

    async fn create(&self, spec: &LaunchSpec) -> Result<Pod> {
        crate::providers::validate::validate_launch(spec)?;
        let OfferDetails::RunPod { gpu_type_id, cloud, data_center_ids, .. } = &spec.offer.details else {
            return Err(Error::invalid("offer", "is not a RunPod offer"));
        };
        if self.readiness != crate::Readiness::Status {
            self.require_ssh_key().await?;
        }
        let tag = spec.launch_tag.clone().unwrap_or_else(new_launch_tag);
        let mut env = spec.env.clone();
        env.insert(LAUNCH_TAG_ENV.to_string(), tag.clone());
        let mut gpu = json!({"id": gpu_type_id, "count": spec.offer.gpu_count});
        if let Some(ram) = spec.min_ram_per_gpu_gb {
            gpu["minRamPerGpu"] = json!(ram);
        }
        if let Some(vcpus) = spec.min_vcpus_per_gpu {
            gpu["minVcpuCountPerGpu"] = json!(vcpus);
        }
        if let Some(floor) =
            crate::providers::provisioner::cuda_floor(spec.min_cuda_version.as_deref(), spec.image.as_deref())
        {
            gpu["minCudaVersion"] = json!(floor);
        }
        // Every pod exposes 22/tcp for SSH; the caller's other ports follow.
        let mut ports = vec!["22/tcp".to_string()];
        ports.extend(spec.ports.iter().filter(|p| p.as_str() != "22/tcp").cloned());
        let mut body = json!({
            "name": spec.pod_name(&tag),
            "image": spec.image.clone().unwrap_or_else(|| DEFAULT_RUNPOD_IMAGE.to_string()),
            "gpu": gpu,
            "cloud": cloud,
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
        if let Some(cmd) = &spec.command {
            body["cmd"] = json!(cmd);
        }
        if let Some(entrypoint) = &spec.entrypoint {
            body["entrypoint"] = json!(entrypoint);
        }
        if let Some(volume) = spec.volume_ids.first() {
            let path = spec.volume_mount_path.as_deref().unwrap_or("/workspace");
            body["mounts"] = json!({"network": [{"volumeId": volume, "path": path}]});
        }
        if let Some(registry) = &spec.registry {
            body["registry"] = json!(registry);
        }
        let body: types::CreatePodRequest = self.caller.build("launch spec", body)?;
        let limit = crate::providers::validate::RUNPOD_MAX_CREATE_BODY;
        let size = crate::providers::validate::check_body_size(Provider::RunPod, "create_pod", &body, limit)?;
        tracing::info!(provider = "runpod", launch_tag = %tag, gpu = %gpu_type_id, "creating pod");
        let created =
            self.caller.call("create_pod", Safety::Create, || self.client.create_pod().body(body.clone()).send()).await;
        match created {
            Ok(pod) => Ok(to_pod(pod)),
            Err(e) if e.status() == Some(413) => Err(Error::RequestTooLarge {
                provider: Provider::RunPod,
                operation: "create_pod",
                size: Some(size),
                limit,
                sent: true,
            }),
            Err(e) if e.is_ambiguous_for_create() => {
                reconcile_create(self, &tag, e, self.reconcile, &self.caller.stats).await
            }
            Err(e) => Err(e),
        }
    }

    async fn get(&self, id: &PodId) -> Result<Pod> {
        let pod_id = check_pod_id(id)?;
        let pod = self.caller.call("get_pod", Safety::Idempotent, || self.client.get_pod().id(pod_id).send()).await?;
        Ok(to_pod(pod))
    }

    fn list(&self) -> BoxStream<'_, Result<Pod>> {
        crate::transport::paginate::items(self.pod_pages())
    }

    fn list_billing_pods(&self) -> BoxStream<'_, Result<Pod>> {
        crate::transport::paginate::items(self.pod_pages_with_cluster_members())
    }

    /// A running pod's `cost`; a stopped one's is not in its record ("0.0 when EXITED"), so it is
    /// its GPU type's list price on its cloud tier, per GPU times its count, from the catalog.
    async fn running_rate(&self, pod: &Pod) -> Result<Option<f64>> {
        if pod.price_per_hour.is_some() {
            return Ok(pod.price_per_hour);
        }
        let raw = match &pod.raw {
            PodRecord::RunPod(raw) => raw,
            // Unreachable only when RunPod is the one cloud compiled in.
            #[allow(unreachable_patterns)]
            _ => return Ok(None),
        };
        let Some(gpu) = &raw.gpu else { return Ok(None) };
        let count = u32::try_from(gpu.count.get()).unwrap_or(u32::MAX);
        let cloud = raw.cloud.0.as_str();
        let catalog = self.catalog(cloud, count).await?;
        Ok(catalog.iter().find(|g| g.id == gpu.id).and_then(|g| {
            let unit = if cloud == "SECURE" { g.price.secure } else { g.price.community };
            (unit > 0.0).then(|| wire_price(unit) * f64::from(count))
        }))
    }

    async fn terminate(&self, id: &PodId) -> Result<()> {
        let pod_id = check_pod_id(id)?;
        gone_is_ok(
            self.caller.call("delete_pod", Safety::Idempotent, || self.client.delete_pod().id(pod_id).send()).await,
        )
    }

    async fn extend_lease(&self, id: &PodId, ttl: Duration) -> Result<Pod> {
        crate::model::lease::check_ttl(ttl)?;
        let pod_id = check_pod_id(id)?;
        let current = self.get(id).await?;
        let expiry = crate::model::lease::expiry_after(chrono::Utc::now(), ttl);
        // A pod launched without a lease keeps its tag and gains a stamp; a pod gpucloud did not
        // launch has no tag, and inventing one would make it look like ours.
        let name = crate::model::lease::restamp(&current.name, expiry).ok_or_else(|| {
            Error::invalid("pod", format!("{id} ({:?}) was not launched by gpucloud, so it has no lease", current.name))
        })?;
        let body: types::UpdatePodRequest = self.caller.build("name", json!({ "name": name }))?;
        // Renaming twice to the same name is harmless, so the update is retried like a read.
        let pod = self
            .caller
            .call("update_pod", Safety::Idempotent, || self.client.update_pod().id(pod_id).body(body.clone()).send())
            .await?;
        tracing::info!(pod = %id, lease_expires_at = %expiry, "lease extended");
        Ok(to_pod(pod))
    }

    async fn stop(&self, id: &PodId) -> Result<()> {
        self.action(id, "stop").await
    }

    async fn start(&self, id: &PodId) -> Result<()> {
        match self.action(id, "start").await {
            Err(Error::Api { status: 400, message, .. }) if is_stock_out(&message) => {
                Err(Error::HostFull { id: id.clone(), message })
            }
            other => other,
        }
    }

    fn logs(&self, id: &PodId, options: crate::LogOptions) -> BoxStream<'static, Result<String>> {
        let (this, id) = (self.clone(), id.clone());
        crate::providers::logs::from_task(move |lines| async move { this.stream_logs(&id, options, &lines).await })
    }

    async fn list_ssh_keys(&self) -> Result<Vec<crate::providers::ssh::SshKey>> {
        let keys = self.caller.call("get_ssh_keys", Safety::Idempotent, || self.client.get_ssh_keys().send()).await?;
        if !keys.keys.is_empty() {
            self.ssh_key_seen.store(true, Ordering::Relaxed);
        }
        Ok(keys.keys.into_iter().map(ssh_key).collect())
    }

    async fn ensure_ssh_key(&self, public_key: &str) -> Result<crate::providers::ssh::SshKey> {
        let public_key = crate::providers::ssh::parse_public_key(public_key)?;
        let mut keys =
            self.caller.call("get_ssh_keys", Safety::Idempotent, || self.client.get_ssh_keys().send()).await?.keys;
        if let Some(known) = keys.iter().find(|k| crate::providers::ssh::same_key(k, &public_key)) {
            self.ssh_key_seen.store(true, Ordering::Relaxed);
            return Ok(ssh_key(known.clone()));
        }
        // The PUT replaces the whole set: every key already there is sent back with the new one.
        keys.push(public_key.clone());
        let body: types::UpdateSshKeysRequest = self.caller.build("ssh_public_key", json!({ "keys": keys }))?;
        // The same full set sent twice is the same result, so it is retried like a read.
        self.caller
            .call("update_ssh_keys", Safety::Idempotent, || self.client.update_ssh_keys().body(body.clone()).send())
            .await?;
        self.ssh_key_seen.store(true, Ordering::Relaxed);
        tracing::info!(provider = "runpod", "SSH key added to the account");
        Ok(ssh_key(public_key))
    }

    async fn list_volumes(&self) -> Result<Vec<Volume>> {
        let list = self
            .caller
            .call("list_network_volumes", Safety::Idempotent, || self.client.list_network_volumes().send())
            .await?;
        Ok(list.network_volumes.iter().map(to_volume).collect())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        if spec.size_gb == 0 {
            return Err(Error::invalid("size_gb", "must be at least 1"));
        }
        if spec.name.is_empty() {
            return Err(Error::invalid("name", "RunPod network volumes need a name"));
        }
        let data_center = spec.data_center.clone().ok_or_else(|| {
            Error::invalid("data_center", "RunPod network volumes need a data center id (e.g. US-KS-2)")
        })?;
        let body: types::CreateNetworkVolumeRequest =
            self.caller.build("volume", json!({"name": spec.name, "size": spec.size_gb, "dataCenter": data_center}))?;
        let volume = self
            .caller
            .call("create_network_volume", Safety::Create, || {
                self.client.create_network_volume().body(body.clone()).send()
            })
            .await?;
        Ok(to_volume(&volume))
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        gone_is_ok(
            self.caller
                .call("delete_network_volume", Safety::Idempotent, || self.client.delete_network_volume().id(id).send())
                .await,
        )
    }

    async fn observe(&self, id: &PodId) -> Result<Option<Pod>> {
        check_pod_id(id)?;
        self.watcher.observe(self, id, self.poll_interval).await
    }

    fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    fn readiness(&self) -> crate::Readiness {
        self.readiness
    }

    async fn cluster_offers(&self, query: &OfferQuery, nodes: u32) -> Result<Vec<crate::model::cluster::ClusterOffer>> {
        self.cluster_offers_impl(query, nodes).await
    }

    async fn create_cluster(
        &self,
        spec: &crate::providers::clusters::ClusterSpec,
    ) -> Result<crate::model::cluster::Cluster> {
        self.create_cluster_impl(spec).await
    }

    async fn get_cluster(&self, id: &crate::model::cluster::ClusterId) -> Result<crate::model::cluster::Cluster> {
        self.get_cluster_impl(id).await
    }

    async fn cluster_summary(&self, id: &crate::model::cluster::ClusterId) -> Result<crate::model::cluster::Cluster> {
        self.cluster_summary_impl(id).await
    }

    async fn list_clusters(&self) -> Result<Vec<crate::model::cluster::Cluster>> {
        self.list_clusters_impl().await
    }

    async fn delete_cluster(&self, id: &crate::model::cluster::ClusterId) -> Result<()> {
        self.delete_cluster_impl(id).await
    }
}

#[cfg(test)]
mod stock_out_tests {
    #[test]
    fn only_capacity_wordings_are_a_full_host() {
        for full in [
            "There are no instances currently available on this pod's host",
            "There are not enough free GPUs on the host machine to start this pod.",
            "no capacity",
        ] {
            assert!(super::is_stock_out(full), "{full}");
        }
        for rule in ["gpu.minCudaVersion must be major.minor", "This pod is locked", ""] {
            assert!(!super::is_stock_out(rule), "{rule}");
        }
    }
}
