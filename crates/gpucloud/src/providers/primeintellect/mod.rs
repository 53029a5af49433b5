//! [`PrimeIntellect`]: the [`Provisioner`] for `api.primeintellect.ai`.

mod billing;
mod clusters;

use crate::model::PodRecord;
use crate::model::error::{Error, Result};
use crate::model::gpu;
use crate::model::time::parse_timestamp;
use crate::model::{
    Offer, OfferDetails, Pod, PodId, PodStatus, Provider, ResourceSpec, SshEndpoint, Stock, Volume, VolumeSpec,
};
use crate::providers::provisioner::{Capabilities, LaunchSpec, OfferQuery, Provisioner, new_launch_tag};
use crate::providers::reconcile::{ReconcilePolicy, reconcile_create};
use crate::transport::caller::{Caller, gone_is_ok, key_from_env, nonempty_env};
use crate::transport::paginate::{self, Page, Pagination};
use crate::transport::retry::{RetryPolicy, Safety};
use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use primeintellect_api::types;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Environment variable holding the API key.
pub const API_KEY_ENV: &str = "PRIME_API_KEY";
/// Environment variable overriding the server root (default `https://api.primeintellect.ai`).
pub const BASE_URL_ENV: &str = "PRIME_API_BASE_URL";
/// Environment variable naming the team to act for (as PrimeIntellect's own CLI reads it).
pub const TEAM_ID_ENV: &str = "PRIME_TEAM_ID";

/// PrimeIntellect: GPU offers from ~24 underlying clouds, pods created from an offer, network
/// disks. No stop/start.
///
/// **Team accounts**: with a team ([`PrimeIntellect::with_team`], or `PRIME_TEAM_ID` in
/// [`PrimeIntellect::from_env`]) every pod and disk create names it (`team: {teamId}`), so the
/// team's wallet pays. PrimeIntellect's pod and disk lists take no team parameter: they return
/// every resource the key can see, team resources included (each pod says its `teamId`), which is
/// how reconciliation and the reaper find team pods again.
#[derive(Debug, Clone)]
pub struct PrimeIntellect {
    client: primeintellect_api::Client,
    caller: Caller,
    pagination: Pagination,
    poll_interval: Duration,
    reconcile: ReconcilePolicy,
    readiness: crate::Readiness,
    team_id: Option<String>,
    watcher: crate::providers::watch::Watcher,
    known: KnownPods,
    multi_node: clusters::MultiNodePods,
}

/// Full records of pods this client created or read alone, which PrimeIntellect's status
/// answers (state and SSH only) are merged into; shared by clones. Bounded: past
/// [`KnownPods::LIMIT`] it starts over, and forgotten pods are read alone once more.
#[derive(Debug, Clone, Default)]
struct KnownPods {
    records: Arc<Mutex<HashMap<String, types::ApiPodConfig>>>,
    /// Set when the server refused a batched status request (some mocks reject `pod_ids`):
    /// from then on this client reads pods alone.
    batch_refused: Arc<AtomicBool>,
}

impl KnownPods {
    const LIMIT: usize = 10_000;

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, types::ApiPodConfig>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `pod`'s record while it may still be waited on.
    fn remember(&self, pod: &Pod) {
        let PodRecord::PrimeIntellect(raw) = &pod.raw else { return };
        if pod.status.is_final() {
            return self.forget(pod.id.id());
        }
        let mut records = self.records();
        if records.len() >= Self::LIMIT {
            records.clear();
        }
        records.insert(pod.id.id().to_string(), (**raw).clone());
    }

    /// Drops the record of a pod that ended or is gone.
    fn forget(&self, id: &str) {
        self.records().remove(id);
    }

    /// Brings the known record of `entry`'s pod up to date with it and returns a copy; `None`
    /// for a pod never seen in full.
    fn update(&self, entry: types::ApiPodStatusResponse) -> Option<types::ApiPodConfig> {
        let mut records = self.records();
        let record = records.get_mut(&entry.pod_id)?;
        record.status = Some(entry.status);
        record.provider_type = entry.provider_type;
        record.ssh_connection = entry.ssh_connection.map(|ssh| match ssh {
            types::ApiPodStatusResponseSshConnection::String(s) => types::ApiPodConfigSshConnection::String(s),
            types::ApiPodStatusResponseSshConnection::Array(a) => types::ApiPodConfigSshConnection::Array(a),
        });
        record.ip = entry.ip.map(|ip| match ip {
            types::ApiPodStatusResponseIp::String(s) => types::ApiPodConfigIp::String(s),
            types::ApiPodStatusResponseIp::Array(a) => types::ApiPodConfigIp::Array(a),
        });
        record.installation_status = entry.installation_status;
        record.installation_failure = entry.installation_failure;
        record.installation_progress = entry.installation_progress;
        Some(record.clone())
    }
}

impl PrimeIntellect {
    /// A client for `base_url` (default: the real service) authenticating with `api_key`.
    pub fn new(api_key: SecretString, base_url: Option<&str>) -> Result<Self> {
        let client = primeintellect_api::Client::with_api_key(&api_key, base_url)
            .map_err(|e| Error::Config { provider: Provider::PrimeIntellect, message: e.to_string() })?;
        Ok(Self {
            client,
            caller: Caller::new(Provider::PrimeIntellect, api_key, RetryPolicy::default()),
            pagination: Pagination::default(),
            poll_interval: Duration::from_secs(5),
            reconcile: ReconcilePolicy::default(),
            readiness: crate::Readiness::default(),
            team_id: None,
            watcher: crate::providers::watch::Watcher::default(),
            known: KnownPods::default(),
            multi_node: clusters::MultiNodePods::default(),
        })
    }

    /// A client configured from `PRIME_API_KEY` and, if set, `PRIME_API_BASE_URL` and
    /// `PRIME_TEAM_ID`.
    pub fn from_env() -> Result<Self> {
        let key = key_from_env(Provider::PrimeIntellect, API_KEY_ENV)?;
        let client = Self::new(key, nonempty_env(BASE_URL_ENV).as_deref())?;
        match nonempty_env(TEAM_ID_ENV) {
            Some(team) => client.with_team(team),
            None => Ok(client),
        }
    }

    /// Acts for the team `team_id` (see [`PrimeIntellect::teams`]): pods and disks are created
    /// for it and paid from its wallet. An empty or blank id is refused.
    pub fn with_team(mut self, team_id: impl Into<String>) -> Result<Self> {
        let team_id = team_id.into();
        let trimmed = team_id.trim();
        if trimmed.is_empty() || trimmed.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "team_id",
                format!("{team_id:?} is not a team id; list yours with `gpucloud teams`"),
            ));
        }
        self.team_id = Some(trimmed.to_string());
        Ok(self)
    }

    /// The team this client acts for, if any.
    pub fn team_id(&self) -> Option<&str> {
        self.team_id.as_deref()
    }

    /// The teams the API key's user belongs to (`GET /api/v1/user/teams`).
    pub async fn teams(&self) -> Result<Vec<crate::model::Team>> {
        let response =
            self.caller.call("list_my_teams", Safety::Idempotent, || self.client.list_my_teams().send()).await?;
        Ok(response
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|t| crate::model::Team { id: t.team_id, name: t.name, slug: t.slug, role: t.role.0 })
            .collect())
    }

    /// `{"teamId": ...}` for create bodies, when acting for a team.
    fn team_json(&self) -> Option<Value> {
        self.team_id.as_ref().map(|id| json!({ "teamId": id }))
    }

    crate::providers::settings::client_settings!();

    /// Replaces the pagination settings.
    pub fn with_pagination(mut self, pagination: Pagination) -> Self {
        self.pagination = pagination;
        self
    }

    pub(crate) fn caller(&self) -> &Caller {
        &self.caller
    }

    pub(crate) fn pagination(&self) -> Pagination {
        self.pagination
    }

    /// The generated client, for operations the facade does not wrap.
    pub fn raw(&self) -> &primeintellect_api::Client {
        &self.client
    }

    /// Every pod, as a stream of pages (offset/limit) under this client's pagination settings.
    pub fn pod_pages(&self) -> BoxStream<'static, Result<Page<Pod>>> {
        let this = self.clone();
        paginate::pages(Provider::PrimeIntellect, "list_pods", self.pagination, move |req| {
            let this = this.clone();
            async move {
                let page = this
                    .caller
                    .call("list_pods", Safety::Idempotent, || {
                        this.client.list_pods().offset(req.offset() as i64).limit(req.size as i64).send()
                    })
                    .await?;
                let items = page.data.into_iter().map(to_pod).collect::<Result<Vec<_>>>()?;
                Ok(Page::new(items, positive(page.total_count)))
            }
        })
    }

    fn create_body(&self, spec: &LaunchSpec, tag: &str) -> Result<types::BodyCreatePodApiV1PodsPost> {
        let OfferDetails::PrimeIntellect {
            cloud_id,
            gpu_type,
            socket,
            provider_type,
            security,
            data_center,
            country,
            variable_price: _,
        } = &spec.offer.details
        else {
            return Err(Error::invalid("offer", "is not a PrimeIntellect offer"));
        };
        let image = match (&spec.image, &spec.custom_template_id) {
            (Some(image), _) => image.clone(),
            (None, Some(_)) => "custom_template".into(),
            (None, None) => spec.offer.images.first().cloned().unwrap_or_else(|| "ubuntu_22_cuda_12".into()),
        };
        // A variable price can tick up between listing and create: with no cap from the
        // caller, `maxPrice` leaves VARIABLE_PRICE_HEADROOM over the estimate (the caller's own
        // cap always wins). The budget checks the same number (validate::worst_price).
        let max_price = crate::providers::validate::max_price(spec);
        // A fixed resource (min == max) is not sized in the request.
        let sized = |amount: Option<u32>, resource: &Option<crate::ResourceSpec>| {
            amount.filter(|_| resource.as_ref().is_none_or(|r| r.min != r.max)).map(Value::from)
        };
        let mut pod = json!({
            "name": spec.pod_name(tag),
            "cloudId": cloud_id,
            "gpuType": gpu_type,
            "socket": socket,
            "gpuCount": spec.offer.gpu_count,
            "image": image,
            "security": security,
        });
        let optional = [
            ("dataCenterId", data_center.clone().map(Value::from)),
            ("country", country.clone().map(Value::from)),
            ("diskSize", sized(spec.disk_gb, &spec.offer.disk)),
            ("vcpus", sized(spec.vcpus, &spec.offer.vcpu)),
            ("memory", sized(spec.memory_gb, &spec.offer.memory)),
            ("maxPrice", max_price.map(Value::from)),
            // "pre-charged for the total number of hours ... at the time of ordering".
            ("prepaidForHr", spec.offer.prepaid_hours.map(Value::from)),
            ("customTemplateId", spec.custom_template_id.clone().map(Value::from)),
            ("sshKeyId", spec.ssh_key_id.clone().map(Value::from)),
        ];
        for (key, value) in optional {
            if let Some(value) = value {
                pod[key] = value;
            }
        }
        if !spec.env.is_empty() {
            pod["envVars"] = spec.env.iter().map(|(k, v)| json!({"key": k, "value": v})).collect();
        }
        let mut body = json!({"pod": pod, "provider": {"type": provider_type}});
        if !spec.volume_ids.is_empty() {
            body["disks"] = json!(spec.volume_ids);
        }
        if let Some(team) = self.team_json() {
            body["team"] = team;
        }
        self.caller.build("offer", body)
    }
}

/// The headroom `maxPrice` leaves over a variable price's estimate (shared with the budget check).
pub use crate::providers::validate::VARIABLE_PRICE_HEADROOM;

impl PrimeIntellect {
    /// Feeds `lines` from the pod's log, polling for new lines when following.
    async fn poll_logs(
        &self,
        id: &PodId,
        options: crate::LogOptions,
        lines: &tokio::sync::mpsc::Sender<Result<String>>,
    ) -> Result<()> {
        options.validate()?;
        let pod_id = check_pod_id(id)?;
        let mut previous: Vec<String> = Vec::new();
        // Following asks for a wider window than the tail, so lines between polls are not missed.
        let mut window = options.tail;
        loop {
            let body = match self
                .caller
                .call("get_pod_logs", Safety::Idempotent, || {
                    self.client.get_pod_logs().pod_id(pod_id).tail(i64::from(window)).send()
                })
                .await
            {
                Ok(body) => body,
                Err(e) if e.is_not_found() && !previous.is_empty() => return Ok(()), // the pod is gone
                Err(e) => return Err(e),
            };
            let current = crate::providers::logs::primeintellect_lines(&body);
            for line in crate::providers::logs::new_lines(&previous, &current) {
                if lines.send(Ok(line.clone())).await.is_err() {
                    return Ok(());
                }
            }
            if !options.follow {
                return Ok(());
            }
            previous = current;
            window = window.max(1000);
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

fn positive(total: i64) -> Option<u64> {
    // A missing totalCount decodes as 0; only a positive count is trusted as a stop signal.
    (total > 0).then_some(total as u64)
}

/// A disk/vCPU/memory spec. One with `minCount`/`maxCount` null is fixed at its default
/// (`min == max == default`): it cannot be sized, and a default not included in the price is
/// still charged.
fn resource(spec: &Option<types::CustomSpecValue>) -> Option<ResourceSpec> {
    let spec = spec.as_ref()?;
    let to_u32 = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
    let default = to_u32(spec.default_count.or(spec.min_count).or(spec.max_count)?);
    let (min, max) = match (spec.min_count, spec.max_count) {
        (Some(min), Some(max)) => (to_u32(min), to_u32(max)),
        _ => (default, default),
    };
    Some(ResourceSpec {
        min,
        default,
        max,
        step: to_u32(spec.step.unwrap_or(1).max(1)),
        price_per_unit: spec.price_per_unit.unwrap_or(0.0),
        default_included_in_price: spec.default_included_in_price.unwrap_or(false),
    })
}

/// A multi-node availability item as `nodes` nodes: GPUs and price split evenly (the split is
/// not documented), interconnect and provisioning time as stated; launched as one multi-node
/// pod (see the `clusters` module).
pub(crate) fn multi_node_offer(
    item: &types::GpuAvailability,
    nodes: u32,
) -> Option<crate::model::cluster::ClusterOffer> {
    let mut node = to_offer(item)?;
    if nodes == 0 || node.gpu_count % nodes != 0 {
        return None;
    }
    node.gpu_count /= nodes;
    node.price_per_hour /= f64::from(nodes);
    let minutes = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
    Some(crate::model::cluster::ClusterOffer {
        node,
        nodes,
        interconnect_gbps: minutes(item.interconnect),
        interconnect_type: item.interconnect_type.clone(),
        provisioning_minutes: minutes(item.provisioning_time),
        launchable: true,
    })
}

pub(crate) fn to_offer(item: &types::GpuAvailability) -> Option<Offer> {
    // `onDemand` is "specified for secure_cloud", `communityPrice` "for community_cloud": the
    // offer's security decides which one it is priced by; without it, it has no price.
    let gpu_price = match item.security.0.as_str() {
        "community_cloud" => item.prices.community_price,
        _ => item.prices.on_demand,
    }?;
    let (disk, vcpu, memory) = (resource(&item.disk), resource(&item.vcpu), resource(&item.memory));
    let defaults: f64 = [&disk, &vcpu, &memory].iter().filter_map(|r| r.as_ref()).map(|r| r.cost(r.default)).sum();
    Some(Offer {
        provider: Provider::PrimeIntellect,
        via: Some(item.provider.0.clone()),
        gpu_type: gpu::canonical_name(&item.gpu_type.0),
        gpu_count: u32::try_from(item.gpu_count.max(0)).unwrap_or(0),
        gpu_memory_gb: u32::try_from(item.gpu_memory).ok(),
        price_per_hour: gpu_price + defaults,
        currency: item.prices.currency.0.clone(),
        prepaid_hours: item.prepaid_time.filter(|h| *h > 0.0),
        spot: item.is_spot.unwrap_or(false),
        region: item.region.as_ref().map(|r| r.0.clone()),
        data_center: item.data_center.clone(),
        country: item.country.clone(),
        stock: Stock::parse(&item.stock_status),
        images: item.images.iter().map(|i| i.0.clone()).collect(),
        disk,
        vcpu,
        memory,
        details: OfferDetails::PrimeIntellect {
            cloud_id: item.cloud_id.clone(),
            gpu_type: item.gpu_type.0.clone(),
            socket: item.socket.0.clone(),
            provider_type: item.provider.0.clone(),
            security: item.security.0.clone(),
            data_center: item.data_center.clone(),
            country: item.country.clone(),
            variable_price: item.prices.is_variable.unwrap_or(false),
        },
    })
}

pub(crate) fn to_pod(pod: types::ApiPodConfig) -> Result<Pod> {
    let id = pod.id.clone().filter(|id| !id.is_empty()).ok_or_else(|| Error::Decode {
        provider: Provider::PrimeIntellect,
        operation: "pod",
        status: 200,
        message: "a pod record has no id".into(),
    })?;
    // Both come as a string, a list (possibly `[null]`) or null.
    let ssh_text = match &pod.ssh_connection {
        Some(types::ApiPodConfigSshConnection::String(s)) => Some(s.as_str()),
        Some(types::ApiPodConfigSshConnection::Array(items)) => items.iter().flatten().map(String::as_str).next(),
        None => None,
    };
    let ip = match &pod.ip {
        Some(types::ApiPodConfigIp::String(s)) => Some(s.as_str()),
        Some(types::ApiPodConfigIp::Array(items)) => items.iter().flatten().map(String::as_str).next(),
        None => None,
    };
    let ssh = ssh_text.filter(|s| !s.trim().is_empty()).and_then(SshEndpoint::parse).or_else(|| {
        ip.filter(|ip| !ip.trim().is_empty()).map(|ip| SshEndpoint {
            host: ip.to_string(),
            port: 22,
            user: "root".into(),
        })
    });
    let provider_status = pod.status.as_ref().map(|s| s.0.clone()).unwrap_or_else(|| "UNKNOWN".into());
    let installation_status = pod.installation_status.as_ref().map(|s| s.0.clone());
    let mut status = PodStatus::from_primeintellect(&provider_status);
    if status == PodStatus::Running && ssh.is_none() {
        status = PodStatus::Starting;
    }
    // A failed installation is a failed pod, whatever `status` says (often still ACTIVE).
    if installation_status.as_deref() == Some("ERROR") && status != PodStatus::Terminated {
        status = PodStatus::Failed;
    }
    // ACTIVE with the image still installing (`InstallationStatusEnum` PENDING or ACTIVE) is
    // not yet a machine to work on. A pod that sends no installation status is judged by its
    // status alone (a missing field must not make a pod wait forever).
    if status == PodStatus::Running && matches!(installation_status.as_deref(), Some("PENDING" | "ACTIVE")) {
        status = PodStatus::Starting;
    }
    // The rate in force now: APIPodConfig has one per phase where they differ, each "If empty
    // then `priceHr` is used". A missing `provisioningPriceHr` decodes as its schema default,
    // 0.0, which cannot be told from a stated 0: it reads as `priceHr`, so a provisioning pod
    // is never shown (or counted) cheaper than what it may bill.
    let price_now = match status {
        PodStatus::Provisioning => pod.provisioning_price_hr.filter(|p| *p > 0.0).unwrap_or(pod.price_hr),
        PodStatus::Stopped => pod.stopped_price_hr.unwrap_or(pod.price_hr),
        PodStatus::Terminated => 0.0,
        _ => pod.price_hr,
    };
    let created_at = pod.created_at.as_deref().and_then(parse_timestamp);
    let (launch_tag, lease_expires_at) = crate::model::lease::tag_and_expiry(&pod.name);
    Ok(Pod {
        id: PodId::new(Provider::PrimeIntellect, id),
        provider: Provider::PrimeIntellect,
        name: pod.name.clone(),
        launch_tag,
        lease_expires_at,
        status,
        provider_status,
        installation_status,
        installation_progress: pod.installation_progress.and_then(|p| u8::try_from(p.clamp(0, 100)).ok()),
        team_id: pod.team_id.clone(),
        gpu_type: gpu::canonical_name(&pod.gpu_name.0),
        gpu_count: u32::try_from(pod.gpu_count.max(0)).unwrap_or(0),
        // "Hourly price for running the pod", whatever the phase: one meaning per field.
        price_per_hour: Some(pod.price_hr),
        price_now_per_hour: Some(price_now),
        data_center: None,
        // PrimeIntellect's pod record reports no utilization.
        gpu_utilization: None,
        ssh,
        created_at,
        // PrimeIntellect pods cannot be stopped: they started at their create.
        started_at: created_at,
        raw: PodRecord::PrimeIntellect(Box::new(pod)),
    })
}

fn to_volume(disk: &types::ApiDiskConfig) -> Volume {
    Volume {
        id: disk.id.clone().unwrap_or_default(),
        provider: Provider::PrimeIntellect,
        name: disk.name.to_string(),
        size_gb: u64::try_from(disk.size).unwrap_or(0),
        status: disk.status.as_ref().map(|s| s.0.clone()),
        data_center: disk
            .info
            .as_ref()
            .and_then(|i| serde_json::to_value(i).ok())
            .and_then(|v| v["dataCenterId"].as_str().map(String::from)),
        price_per_hour: disk.price_hr,
        raw: serde_json::to_value(disk).unwrap_or(Value::Null),
    }
}

/// PrimeIntellect's status sweep: `GET /api/v1/pods/status?pod_ids=...`, split only when the
/// query would be too long ([`crate::providers::watch::MAX_STATUS_QUERY_BYTES`]).
#[async_trait]
impl crate::providers::watch::StatusSource for PrimeIntellect {
    async fn batch(&self, ids: &[PodId]) -> Result<Vec<Pod>> {
        if self.known.batch_refused.load(Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(PodId::id).collect();
        let mut pods = Vec::with_capacity(ids.len());
        for chunk in crate::providers::watch::status_query_chunks(&ids) {
            let answer = self
                .caller
                .call("get_pods_status", Safety::Idempotent, || {
                    self.client.get_pods_status().pod_ids(chunk.clone()).send()
                })
                .await;
            let entries = match answer {
                Ok(answer) => answer.data.unwrap_or_default(),
                Err(Error::Api { status, message, .. }) if matches!(status, 400 | 404 | 405 | 414 | 422) => {
                    tracing::warn!(status, %message, "the server refused a batched pod status request; reading pods one by one");
                    self.known.batch_refused.store(true, Ordering::Relaxed);
                    return Ok(Vec::new());
                }
                Err(e) => return Err(e),
            };
            for entry in entries {
                // Pods never seen in full are left to a single read, which remembers them.
                if let Some(record) = self.known.update(entry) {
                    let pod = to_pod(record)?;
                    if pod.status.is_final() {
                        self.known.forget(pod.id.id());
                    }
                    pods.push(pod);
                }
            }
        }
        Ok(pods)
    }

    async fn single(&self, id: &PodId) -> Result<Option<Pod>> {
        let pod = crate::transport::caller::gone_is_none(self.get(id).await)?;
        match &pod {
            Some(pod) => self.known.remember(pod),
            None => self.known.forget(id.id()),
        }
        Ok(pod)
    }
}

fn check_pod_id(id: &PodId) -> Result<&str> {
    if id.provider() != Provider::PrimeIntellect {
        return Err(Error::invalid("pod id", format!("{id} is not a PrimeIntellect pod")));
    }
    // A node of a multi-node pod is an SSH host, not a pod the API knows.
    if let Some((pod, rank)) = crate::model::cluster::split_node_pod_id(id) {
        return Err(Error::invalid(
            "pod id",
            format!(
                "{id} is node {rank} of the multi-node pod {pod}: PrimeIntellect reads and ends only the whole pod"
            ),
        ));
    }
    Ok(id.id())
}

#[async_trait]
impl Provisioner for PrimeIntellect {
    fn provider(&self) -> Provider {
        Provider::PrimeIntellect
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { stop_start: false, spot: true, custom_resources: true, volumes: true, extend_lease: false }
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
        let gpu_type =
            query.gpu.as_deref().map(|g| gpu::lookup(g).map(|m| m.name.to_string()).unwrap_or_else(|| g.to_string()));
        // The API answers 422 for a `gpu_type` or `regions` value outside its enums: a GPU or
        // region PrimeIntellect has no name for simply has no PrimeIntellect offers.
        let outside = |schema: &str, value: &str| {
            primeintellect_api::known_values(schema).is_some_and(|known| !known.contains(&value))
        };
        if let Some(gpu) = gpu_type.as_deref().filter(|g| outside("GPUType", g)) {
            // Said once per query, so an empty listing is explained rather than silent.
            tracing::warn!(
                gpu,
                "PrimeIntellect has no such GPUType (its document's enum); no PrimeIntellect offers for it"
            );
            return Ok(Vec::new());
        }
        // Every accepted region form translates to PrimeIntellect's `Regions` ([`crate::model::region`]);
        // each offer is then checked to lie inside (a country or data center is finer than a
        // PrimeIntellect region).
        let places = crate::model::region::parse_all(&query.regions)?;
        let mut wanted: Vec<&str> = places.iter().flat_map(|p| p.prime_regions.iter().copied()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        if let Some(region) = wanted.iter().find(|r| outside("Regions", r)) {
            tracing::warn!(%region, "PrimeIntellect has no such region (its document's enum); no PrimeIntellect offers for it");
            return Ok(Vec::new());
        }
        if !places.is_empty() && wanted.is_empty() {
            return Ok(Vec::new());
        }
        let regions: Vec<types::Regions> = wanted.iter().map(|r| types::Regions::from(r.to_string())).collect();
        let disks: Vec<String> = query.volume_id.iter().cloned().collect();
        let this = self.clone();
        let gpu_count = query.gpu_count;
        let settings = Pagination { page_size: 100, ..self.pagination };
        let pages = paginate::pages(Provider::PrimeIntellect, "get_gpu_availability", settings, move |req| {
            let (this, gpu_type, regions, disks) = (this.clone(), gpu_type.clone(), regions.clone(), disks.clone());
            async move {
                let page = this
                    .caller
                    .call("get_gpu_availability", Safety::Idempotent, || {
                        let mut call = this
                            .client
                            .get_gpu_availability()
                            .page(nonzero(req.page_number()))
                            .page_size(nonzero(req.size));
                        if let Some(gpu) = &gpu_type {
                            call = call.gpu_type(types::GpuType::from(gpu.clone()));
                        }
                        if let Some(count) = gpu_count {
                            call = call.gpu_count(i64::from(count));
                        }
                        if !regions.is_empty() {
                            call = call.regions(regions.clone());
                        }
                        if !disks.is_empty() {
                            call = call.disks(disks.clone());
                        }
                        call.send()
                    })
                    .await?;
                // Offers without a price are dropped, but the page's length as served decides
                // whether another page follows.
                let served = page.items.len();
                let items = page.items.iter().filter_map(to_offer).collect();
                Ok(Page { items, total: positive(page.total_count), served })
            }
        });
        let offers: Vec<Offer> = paginate::items(pages).try_collect().await?;
        let inside = |o: &Offer| {
            places.is_empty() || places.iter().any(|p| p.has_prime_offer(o.region.as_deref(), o.country.as_deref()))
        };
        Ok(offers.into_iter().filter(|o| query.matches(o) && inside(o)).collect())
    }

    /// Multi-node offers (`GET /api/v1/availability/multi-node`) of `nodes` x `query.gpu_count`
    /// GPUs in all, as cluster offers: PrimeIntellect documents no node split, so the node
    /// shape is the query's (`gpuCount` / `nodes` GPUs per node, the price split evenly).
    async fn cluster_offers(&self, query: &OfferQuery, nodes: u32) -> Result<Vec<crate::model::cluster::ClusterOffer>> {
        query.validate()?;
        crate::providers::clusters::check_nodes(nodes)?;
        let per_node = query.gpu_count.unwrap_or(1).max(1);
        let gpu_type =
            query.gpu.as_deref().map(|g| gpu::lookup(g).map(|m| m.name.to_string()).unwrap_or_else(|| g.to_string()));
        if let Some(gpu) = gpu_type.as_deref()
            && primeintellect_api::known_values("GPUType").is_some_and(|known| !known.contains(&gpu))
        {
            return Ok(Vec::new());
        }
        let total = per_node * nodes;
        let this = self.clone();
        let settings = Pagination { page_size: 100, ..self.pagination };
        let pages = paginate::pages(Provider::PrimeIntellect, "get_multinode_availability", settings, move |req| {
            let (this, gpu_type) = (this.clone(), gpu_type.clone());
            async move {
                let page = this
                    .caller
                    .call("get_multinode_availability", Safety::Idempotent, || {
                        let mut call = this
                            .client
                            .get_multinode_availability()
                            .page(nonzero(req.page_number()))
                            .page_size(nonzero(req.size))
                            .gpu_count(i64::from(total));
                        if let Some(gpu) = &gpu_type {
                            call = call.gpu_type(types::GpuType::from(gpu.clone()));
                        }
                        call.send()
                    })
                    .await?;
                let served = page.items.len();
                let items = page.items.iter().filter_map(|item| multi_node_offer(item, nodes)).collect();
                Ok(Page { items, total: positive(page.total_count), served })
            }
        });
        let offers: Vec<crate::model::cluster::ClusterOffer> = paginate::items(pages).try_collect().await?;
        Ok(offers.into_iter().filter(|o| query.matches(&o.node)).collect())
    }

    /// One multi-node pod (see the `clusters` module).
    async fn create_cluster(
        &self,
        spec: &crate::providers::clusters::ClusterSpec,
    ) -> Result<crate::model::cluster::Cluster> {
        self.create_multi_node(spec).await
    }

    async fn get_cluster(&self, id: &crate::model::cluster::ClusterId) -> Result<crate::model::cluster::Cluster> {
        self.multi_node_cluster(id).await
    }

    async fn list_clusters(&self) -> Result<Vec<crate::model::cluster::Cluster>> {
        self.multi_node_clusters().await
    }

    /// Every pod carrying `tag`, multi-node or not yet read as such (see the `clusters` module).
    async fn find_clusters_by_launch_tag(&self, tag: &str) -> Result<Vec<crate::model::cluster::Cluster>> {
        self.tagged_clusters(tag).await
    }

    /// Terminates the multi-node pod (every node ends with it).
    async fn delete_cluster(&self, id: &crate::model::cluster::ClusterId) -> Result<()> {
        self.terminate(&PodId::new(Provider::PrimeIntellect, id.id())).await
    }

    async fn delete_cluster_and_confirm(
        &self,
        id: &crate::model::cluster::ClusterId,
        members: &[PodId],
        deadline: tokio::time::Instant,
    ) -> Result<()> {
        self.end_multi_node(id, members, deadline).await
    }

    async fn create(&self, spec: &LaunchSpec) -> Result<Pod> {
        crate::providers::validate::validate_launch(spec)?;
        let tag = spec.launch_tag.clone().unwrap_or_else(new_launch_tag);
        let body = self.create_body(spec, &tag)?;
        tracing::info!(provider = "primeintellect", launch_tag = %tag, gpu = %spec.offer.gpu_type, "creating pod");
        let created =
            self.caller.call("create_pod", Safety::Create, || self.client.create_pod().body(body.clone()).send()).await;
        let pod = match created {
            Ok(pod) => to_pod(pod)?,
            Err(e) if e.is_ambiguous_for_create() => {
                reconcile_create(self, &tag, e, self.reconcile, &self.caller.stats).await?
            }
            Err(e) => return Err(e),
        };
        // Its status sweeps carry state only; the rest of the record comes from here.
        self.known.remember(&pod);
        Ok(pod)
    }

    async fn get(&self, id: &PodId) -> Result<Pod> {
        let pod_id = check_pod_id(id)?;
        let pod =
            self.caller.call("get_pod", Safety::Idempotent, || self.client.get_pod().pod_id(pod_id).send()).await?;
        to_pod(pod)
    }

    fn list(&self) -> BoxStream<'_, Result<Pod>> {
        paginate::items(self.pod_pages()).boxed()
    }

    async fn terminate(&self, id: &PodId) -> Result<()> {
        let pod_id = check_pod_id(id)?;
        gone_is_ok(
            self.caller.call("delete_pod", Safety::Idempotent, || self.client.delete_pod().pod_id(pod_id).send()).await,
        )
    }

    fn logs(&self, id: &PodId, options: crate::LogOptions) -> BoxStream<'static, Result<String>> {
        let (this, id) = (self.clone(), id.clone());
        crate::providers::logs::from_task(move |lines| async move { this.poll_logs(&id, options, &lines).await })
    }

    /// Every page of the account's keys (offset/limit, 100 by default): `ensure_ssh_key` must
    /// see a key on the second page before deciding to upload it again.
    async fn list_ssh_keys(&self) -> Result<Vec<crate::providers::ssh::SshKey>> {
        let this = self.clone();
        let pages = paginate::pages(Provider::PrimeIntellect, "list_ssh_keys", self.pagination, move |req| {
            let this = this.clone();
            async move {
                let page = this
                    .caller
                    .call("list_ssh_keys", Safety::Idempotent, || {
                        this.client.list_ssh_keys().offset(req.offset() as i64).limit(req.size as i64).send()
                    })
                    .await?;
                let keys = page.data.iter().map(|k| crate::providers::ssh::SshKey {
                    provider: Provider::PrimeIntellect,
                    id: Some(k.id.clone()),
                    name: Some(k.name.clone()),
                    public_key: k.public_key.clone(),
                });
                Ok(Page::new(keys.collect(), positive(page.total_count)))
            }
        });
        paginate::items(pages).try_collect().await
    }

    async fn ensure_ssh_key(&self, public_key: &str) -> Result<crate::providers::ssh::SshKey> {
        let public_key = crate::providers::ssh::parse_public_key(public_key)?;
        if let Some(known) = self
            .list_ssh_keys()
            .await?
            .into_iter()
            .find(|k| crate::providers::ssh::same_key(&k.public_key, &public_key))
        {
            return Ok(known);
        }
        // Named after the key's comment (usually user@host), as `ssh-add -L` shows it.
        let comment = public_key.split_whitespace().nth(2).unwrap_or("key");
        let body: types::ApisshKeyUploadRequestConfig = self
            .caller
            .build("ssh_public_key", json!({"name": format!("gpucloud {comment}"), "publicKey": public_key}))?;
        // An upload that failed ambiguously is not sent again: the next ensure finds it or uploads it.
        let key = self
            .caller
            .call("create_ssh_key", Safety::Create, || self.client.create_ssh_key().body(body.clone()).send())
            .await?;
        tracing::info!(provider = "primeintellect", key = %key.id, "SSH key registered");
        Ok(crate::providers::ssh::SshKey {
            provider: Provider::PrimeIntellect,
            id: Some(key.id),
            name: Some(key.name),
            public_key: key.public_key,
        })
    }

    async fn list_volumes(&self) -> Result<Vec<Volume>> {
        let this = self.clone();
        let settings = Pagination { page_size: 200.min(self.pagination.page_size.max(1)), ..self.pagination };
        let pages = paginate::pages(Provider::PrimeIntellect, "list_disks", settings, move |req| {
            let this = this.clone();
            async move {
                let page = this
                    .caller
                    .call("list_disks", Safety::Idempotent, || {
                        this.client.list_disks().offset(req.offset() as i64).limit(req.size as i64).send()
                    })
                    .await?;
                Ok(Page::new(page.data.iter().map(to_volume).collect(), positive(page.total_count)))
            }
        });
        paginate::items(pages).try_collect().await
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume> {
        if spec.size_gb == 0 {
            return Err(Error::invalid("size_gb", "must be at least 1"));
        }
        let provider_type = spec.provider_type.clone().ok_or_else(|| {
            Error::invalid("provider_type", "PrimeIntellect disks are created on an underlying provider (e.g. runpod, hyperstack); see get_disk_availability")
        })?;
        let mut disk = json!({"size": spec.size_gb});
        if !spec.name.is_empty() {
            disk["name"] = json!(spec.name);
        }
        for (key, value) in
            [("dataCenterId", &spec.data_center), ("cloudId", &spec.cloud_id), ("country", &spec.country)]
        {
            if let Some(value) = value {
                disk[key] = json!(value);
            }
        }
        let mut body = json!({"disk": disk, "provider": {"type": provider_type}});
        if let Some(team) = self.team_json() {
            body["team"] = team;
        }
        let body: types::BodyCreateDiskApiV1DisksPost = self.caller.build("volume", body)?;
        // A disk create is not retried on ambiguous failures either: a duplicate disk bills too.
        let disk = self
            .caller
            .call("create_disk", Safety::Create, || self.client.create_disk().body(body.clone()).send())
            .await?;
        Ok(to_volume(&disk))
    }

    async fn delete_volume(&self, id: &str) -> Result<()> {
        gone_is_ok(
            self.caller.call("delete_disk", Safety::Idempotent, || self.client.delete_disk().disk_id(id).send()).await,
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
}

fn nonzero(n: u64) -> std::num::NonZeroU64 {
    std::num::NonZeroU64::new(n).unwrap_or(std::num::NonZeroU64::MIN)
}

#[cfg(test)]
mod multi_node_tests {
    use serde_json::json;

    #[test]
    fn a_multi_node_offer_is_split_into_nodes() {
        let item: super::types::GpuAvailability = serde_json::from_value(json!({
            "cloudId": "c", "gpuType": "H100_80GB", "socket": "SXM5", "provider": "datacrunch", "gpuCount": 16,
            "gpuMemory": 80, "stockStatus": "Available", "security": "secure_cloud", "images": ["ubuntu_22_cuda_12"],
            "interconnect": 3200, "interconnectType": "Infiniband", "provisioningTime": 30,
            "prices": {"onDemand": 40.0, "isVariable": false, "currency": "USD"}
        }))
        .unwrap();
        let offer = super::multi_node_offer(&item, 2).unwrap();
        assert_eq!((offer.nodes, offer.node.gpu_count, offer.total_gpus()), (2, 8, 16));
        assert!((offer.price_per_hour() - 40.0).abs() < 1e-9 && (offer.node.price_per_hour - 20.0).abs() < 1e-9);
        assert!((offer.price_per_gpu_hour() - 2.5).abs() < 1e-9);
        assert_eq!(offer.interconnect_gbps, Some(3200));
        assert_eq!(offer.interconnect_type.as_deref(), Some("Infiniband"));
        assert_eq!(offer.provisioning_minutes, Some(30));
        assert!(offer.launchable, "launched as one multi-node pod");
        assert!(super::multi_node_offer(&item, 3).is_none(), "16 GPUs do not split into 3 nodes");
    }
}
