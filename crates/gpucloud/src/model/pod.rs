//! Pods, statuses, offers, volumes and teams: plain data, `serde`-serializable, with the
//! provider's own record kept in `raw` for whatever the unified view leaves out.

use crate::model::ids::{PodId, Provider};
use serde::Serialize;
use std::fmt;

/// Where a pod is in its life, mapped from both providers' statuses.
///
/// | gpucloud | PrimeIntellect | RunPod v2 |
/// |---|---|---|
/// | `Provisioning` | `PROVISIONING`, `PENDING` | `PROVISIONING` |
/// | `Starting` | (`ACTIVE` before its SSH endpoint is known) | `STARTING` |
/// | `Running` | `ACTIVE` | `RUNNING` |
/// | `Stopped` | `STOPPED` | `EXITED` |
/// | `Terminating` | `DELETING` | — |
/// | `Terminated` | `TERMINATED` | `TERMINATED` |
/// | `Failed` | `ERROR` | `ERROR` |
/// | `Unknown(raw)` | `UNKNOWN` and anything new | anything new |
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PodStatus {
    /// Capacity is being allocated.
    Provisioning,
    /// The machine exists and its container or OS is starting.
    Starting,
    /// Up and reachable.
    Running,
    /// Stopped (RunPod only); not billed for GPU time.
    Stopped,
    /// Being torn down.
    Terminating,
    /// Gone for good.
    Terminated,
    /// The provider reports an unrecoverable error.
    Failed,
    /// A status the SDK does not know, kept as the provider sent it.
    Unknown(String),
}

impl PodStatus {
    /// The lowercase name used in JSON output: `provisioning`, ..., `unknown`.
    pub fn as_str(&self) -> &str {
        match self {
            PodStatus::Provisioning => "provisioning",
            PodStatus::Starting => "starting",
            PodStatus::Running => "running",
            PodStatus::Stopped => "stopped",
            PodStatus::Terminating => "terminating",
            PodStatus::Terminated => "terminated",
            PodStatus::Failed => "failed",
            PodStatus::Unknown(_) => "unknown",
        }
    }

    /// Terminated or failed: waiting longer will not make it run.
    pub fn is_final(&self) -> bool {
        matches!(self, PodStatus::Terminated | PodStatus::Failed)
    }

    /// Maps a PrimeIntellect `PodStatusEnum` value.
    pub fn from_primeintellect(raw: &str) -> Self {
        match raw {
            "PROVISIONING" | "PENDING" => PodStatus::Provisioning,
            "ACTIVE" => PodStatus::Running,
            "STOPPED" => PodStatus::Stopped,
            "DELETING" => PodStatus::Terminating,
            "TERMINATED" => PodStatus::Terminated,
            "ERROR" => PodStatus::Failed,
            other => PodStatus::Unknown(other.to_string()),
        }
    }

    /// Maps a RunPod v2 `PodStatus` value.
    pub fn from_runpod(raw: &str) -> Self {
        match raw {
            "PROVISIONING" => PodStatus::Provisioning,
            "STARTING" => PodStatus::Starting,
            "RUNNING" => PodStatus::Running,
            "EXITED" => PodStatus::Stopped,
            "TERMINATED" => PodStatus::Terminated,
            "ERROR" => PodStatus::Failed,
            other => PodStatus::Unknown(other.to_string()),
        }
    }
}

impl fmt::Display for PodStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodStatus::Unknown(raw) => write!(f, "unknown ({raw})"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl Serialize for PodStatus {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// How to reach a pod over SSH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshEndpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name (for RunPod's proxy, an opaque routing token).
    pub user: String,
}

impl SshEndpoint {
    /// Parses the forms providers use: `user@host -p port`, `ssh user@host -p port`,
    /// `user@host:port`, `user@host`, or a bare host (user `root`, port 22).
    pub fn parse(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace().filter(|w| *w != "ssh").peekable();
        let mut target = None;
        let mut port = None;
        while let Some(word) = words.next() {
            if word == "-p" {
                port = words.next().and_then(|p| p.parse().ok());
            } else if word == "-i" || word == "-o" {
                words.next();
            } else if !word.starts_with('-') && target.is_none() {
                target = Some(word);
            }
        }
        let target = target?;
        let (user, host) = target.split_once('@').unwrap_or(("root", target));
        let (host, inline_port) = match host.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty() => (h, p.parse().ok()),
            _ => (host, None),
        };
        if host.is_empty() || user.is_empty() {
            return None;
        }
        Some(Self { host: host.to_string(), port: port.or(inline_port).unwrap_or(22), user: user.to_string() })
    }
}

impl fmt::Display for SshEndpoint {
    /// As an `ssh` command line: `ssh root@1.2.3.4 -p 22`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ssh {}@{} -p {}", self.user, self.host, self.port)
    }
}

/// A machine on either cloud.
#[derive(Debug, Clone, Serialize)]
pub struct Pod {
    /// `provider:id`.
    pub id: PodId,
    /// Which cloud it runs on.
    pub provider: Provider,
    /// The name it was created with (launches add a `-gc<tag>` suffix and, with a lease, an
    /// expiry stamp before it; see [`crate::model::lease`]).
    pub name: String,
    /// The launch tag in its name, for pods gpucloud created; `None` for others.
    pub launch_tag: Option<String>,
    /// When its lease expires ([`crate::model::lease`]); `None` for pods without one, and for pods
    /// gpucloud did not create. [`crate::Fleet::reap`] terminates pods past this time.
    pub lease_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The unified status.
    pub status: PodStatus,
    /// The provider's own status string.
    pub provider_status: String,
    /// PrimeIntellect's `installationStatus` as sent (`PENDING`, `ACTIVE`, `FINISHED`, `ERROR`,
    /// `TERMINATED`, or anything newer); `None` on RunPod. `ERROR` makes the pod
    /// [`PodStatus::Failed`] whatever its `status` says; `PENDING` or `ACTIVE` (the image is
    /// still being installed) keeps a running pod [`PodStatus::Starting`], so not ready.
    pub installation_status: Option<String>,
    /// PrimeIntellect's `installationProgress`: percent of the image installation done (0-100);
    /// `None` on RunPod and when not reported.
    pub installation_progress: Option<u8>,
    /// The team that owns it (PrimeIntellect team accounts); `None` for personal pods and on RunPod.
    pub team_id: Option<String>,
    /// Canonical GPU name (see [`crate::model::gpu`]), or the provider's name when unknown.
    pub gpu_type: String,
    /// Number of GPUs.
    pub gpu_count: u32,
    /// The rate the pod bills per hour **while it runs**, when the provider reports it:
    /// PrimeIntellect's `priceHr` ("Hourly price for running the pod"), RunPod's `cost` while
    /// the pod is not stopped. `None` for a stopped RunPod pod, whose `cost` is "0.0 when
    /// EXITED" and so says nothing about its running rate. A pod still provisioning or starting
    /// shows its running rate here, not what it bills this minute: that is
    /// [`Pod::price_now_per_hour`]. USD for RunPod ("Current cost in USD per hour"); a
    /// PrimeIntellect pod bills in the currency of the offer it came from, which its record
    /// does not name.
    pub price_per_hour: Option<f64>,
    /// The rate in force now, per hour: PrimeIntellect's `provisioningPriceHr` while
    /// provisioning (an empty one means `priceHr`, as the document says), `stoppedPriceHr` while
    /// stopped; a stopped RunPod pod's disk rate (RunPod's pricing, "Volume disk … $0.20/GB/month
    /// (stopped)", for its persistent volume; its container disk is "Lost on stop/restart" and
    /// billed "only … when the pod is running"); 0 once terminated; otherwise the running rate.
    pub price_now_per_hour: Option<f64>,
    /// The data center it was placed in, where the provider reports it (RunPod's
    /// `dataCenterId`; PrimeIntellect's pod record names none).
    pub data_center: Option<String>,
    /// GPU utilization in percent, one value per GPU, where the provider reports it (RunPod's
    /// `runtime.gpus[].util` for a running pod); `None` when it does not (PrimeIntellect, and a
    /// RunPod pod that is not running). [`crate::upkeep::idle`] reaps on it.
    pub gpu_utilization: Option<Vec<u8>>,
    /// SSH endpoint, once the provider reports one.
    pub ssh: Option<SshEndpoint>,
    /// Creation time, when reported (PrimeIntellect's offset-less timestamps are read as UTC).
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When its container last started, where the provider says (RunPod's `startedAt`, null
    /// unless running); PrimeIntellect pods, which cannot be stopped, started at their create.
    /// The idle rule's grace counts from it ([`crate::upkeep::idle`]).
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The provider's own record, as its generated client decoded it.
    #[serde(skip)]
    pub raw: PodRecord,
}

/// A provider's own record of a pod: everything the unified [`Pod`] leaves out.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PodRecord {
    /// PrimeIntellect's `APIPodConfig`.
    #[cfg(feature = "primeintellect")]
    PrimeIntellect(Box<primeintellect_api::types::ApiPodConfig>),
    /// RunPod v2's `Pod`.
    #[cfg(feature = "runpod")]
    RunPod(Box<runpod_api::types::Pod>),
}

impl Pod {
    /// Why the pod is [`PodStatus::Failed`], for errors: the provider's status, and for a failed
    /// PrimeIntellect installation, its `installationFailure` message.
    pub fn failure_reason(&self) -> String {
        let installation_failure: Option<&str> = match &self.raw {
            #[cfg(feature = "primeintellect")]
            PodRecord::PrimeIntellect(raw) => raw.installation_failure.as_deref(),
            // Unreachable only when PrimeIntellect is the one cloud compiled in.
            #[allow(unreachable_patterns)]
            _ => None,
        };
        match (self.installation_status.as_deref(), installation_failure) {
            (Some("ERROR"), Some(message)) => format!("{}, installation ERROR: {message}", self.provider_status),
            (Some("ERROR"), None) => format!("{}, installation ERROR", self.provider_status),
            _ => self.provider_status.clone(),
        }
    }

    /// Whether the provider marks the pod locked: RunPod's `locked`, "Whether the pod is locked
    /// (prevents stopping or resetting)". The reaper never stops or terminates a locked pod
    /// ([`crate::upkeep::reap`]). PrimeIntellect has no such flag.
    pub fn locked(&self) -> bool {
        match &self.raw {
            #[cfg(feature = "runpod")]
            PodRecord::RunPod(raw) => raw.locked,
            // Unreachable only when RunPod is the one cloud compiled in.
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether it runs on interruptible (spot) capacity, as its provider reports it:
    /// PrimeIntellect's `isSpot`. RunPod has no spot pods any more (removed in 2026), so `false`
    /// there. A spot pod may be taken back at any time, with no notice
    /// ([`crate::model::spot`]).
    pub fn is_spot(&self) -> bool {
        match &self.raw {
            #[cfg(feature = "primeintellect")]
            PodRecord::PrimeIntellect(raw) => raw.is_spot.unwrap_or(false),
            // Unreachable only when PrimeIntellect is the one cloud compiled in.
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Whether the idle rule leaves the pod alone: it was launched with
    /// [`crate::LaunchRequest::idle_exempt`] (a `gpucloud run` job's pod, or `up --no-idle-reap`),
    /// which its launch tag records ([`crate::model::lease::is_idle_exempt_tag`]).
    pub fn idle_exempt(&self) -> bool {
        self.launch_tag.as_deref().is_some_and(crate::model::lease::is_idle_exempt_tag)
    }

    /// Whether what the pod writes outside a volume survives a stop and start: `false` for a
    /// RunPod pod without a persistent or network mount, whose only storage is its container
    /// disk, "ephemeral, wiped on restart" (`BaseContainerConfig.disk`). `true` where the pod
    /// has such a volume (files on it survive), and for PrimeIntellect, which has no stop.
    pub fn keeps_files_across_restart(&self) -> bool {
        match &self.raw {
            #[cfg(feature = "runpod")]
            PodRecord::RunPod(raw) => raw.mounts.persistent.is_some() || !raw.mounts.network.is_empty(),
            #[allow(unreachable_patterns)]
            _ => true,
        }
    }

    /// The status for people: `starting`, or `starting (image installing: 40%)` while a
    /// PrimeIntellect pod's image is installed.
    pub fn progress_text(&self) -> String {
        match (self.installation_status.as_deref(), self.installation_progress) {
            (Some("PENDING" | "ACTIVE"), Some(percent)) => format!("{} (image installing: {percent}%)", self.status),
            (Some("PENDING" | "ACTIVE"), None) => format!("{} (image installing)", self.status),
            _ => self.status.to_string(),
        }
    }

    /// Running with a known SSH endpoint, as the provider reports it. [`Provisioner::wait_until_ready`](crate::Provisioner::wait_until_ready)
    /// also waits, by default, until that endpoint answers ([`crate::providers::ssh`]).
    pub fn is_ready(&self) -> bool {
        self.status == PodStatus::Running && self.ssh.is_some()
    }
}

/// A PrimeIntellect team the API key's user belongs to ([`crate::PrimeIntellect::teams`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Team {
    /// The team id, as `PRIME_TEAM_ID` and [`crate::PrimeIntellect::with_team`] take it.
    pub id: String,
    /// Display name.
    pub name: String,
    /// URL slug, when it has one.
    pub slug: Option<String>,
    /// The user's role in it (`ADMIN`, `MEMBER`, or anything newer, as sent).
    pub role: String,
}

/// How much stock an offer has.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Stock {
    /// None left.
    Unavailable,
    /// A few.
    Low,
    /// Some.
    Medium,
    /// Plenty.
    High,
    /// Available, amount not stated.
    Available,
    /// A value the SDK does not know, kept as sent.
    Unknown(String),
}

impl Stock {
    /// Maps PrimeIntellect `stockStatus` and RunPod `availability` values.
    pub fn parse(raw: &str) -> Self {
        match raw.to_ascii_lowercase().as_str() {
            "none" | "unavailable" | "out_of_stock" | "outofstock" => Stock::Unavailable,
            "low" => Stock::Low,
            "medium" => Stock::Medium,
            "high" => Stock::High,
            "available" => Stock::Available,
            _ => Stock::Unknown(raw.to_string()),
        }
    }

    /// Lowercase name used in JSON output.
    pub fn as_str(&self) -> &str {
        match self {
            Stock::Unavailable => "unavailable",
            Stock::Low => "low",
            Stock::Medium => "medium",
            Stock::High => "high",
            Stock::Available => "available",
            Stock::Unknown(raw) => raw,
        }
    }

    /// Whether a launch can be attempted at all.
    pub fn is_available(&self) -> bool {
        *self != Stock::Unavailable
    }
}

impl Serialize for Stock {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A customizable resource of an offer (disk GB, vCPUs, memory GB), as PrimeIntellect describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceSpec {
    /// Smallest amount allowed.
    pub min: u32,
    /// Amount used when none is chosen.
    pub default: u32,
    /// Largest amount allowed.
    pub max: u32,
    /// Amounts must be `min + k * step`.
    pub step: u32,
    /// USD per unit per hour.
    pub price_per_unit: f64,
    /// Whether the default amount is already in the GPU price.
    pub default_included_in_price: bool,
}

impl ResourceSpec {
    /// The hourly cost of `amount` units under PrimeIntellect's rule: nothing for the default
    /// amount when it is included in the price, otherwise `amount * price_per_unit`.
    pub fn cost(&self, amount: u32) -> f64 {
        if amount == self.default && self.default_included_in_price {
            0.0
        } else {
            f64::from(amount) * self.price_per_unit
        }
    }
}

/// What a provider needs to create a pod from an offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
#[non_exhaustive]
pub enum OfferDetails {
    /// A PrimeIntellect availability entry.
    PrimeIntellect {
        /// `cloudId`, opaque, copied into the create request.
        cloud_id: String,
        /// PI `GPUType` name.
        gpu_type: String,
        /// `socket` (PCIe, SXM5, ...).
        socket: String,
        /// The underlying provider type (`runpod`, `hyperstack`, ...).
        provider_type: String,
        /// `secure_cloud` or `community_cloud`.
        security: String,
        /// Data center id, when stated.
        data_center: Option<String>,
        /// Country code, when stated.
        country: Option<String>,
        /// Whether the price varies (create with a `maxPrice` cap).
        variable_price: bool,
    },
    /// A RunPod catalog GPU type on one cloud tier.
    RunPod {
        /// RunPod GPU type id, e.g. `NVIDIA H100 80GB HBM3`.
        gpu_type_id: String,
        /// `SECURE` or `COMMUNITY`.
        cloud: String,
        /// Data centers that reported stock, best first.
        data_center_ids: Vec<String>,
        /// Largest GPU count this type allows per pod on this tier.
        max_gpu_count: Option<u32>,
        /// CUDA versions its hosts offer (`major.minor`, the catalog's `cudaVersions` with
        /// free capacity); empty when not reported ("treat a missing `cudaVersions` the same as
        /// an empty one").
        cuda_versions: Vec<String>,
    },
}

impl Offer {
    /// Whether its prices are in US dollars (the unit of every cap and budget).
    pub fn is_usd(&self) -> bool {
        self.currency.eq_ignore_ascii_case("USD")
    }

    /// What creating it charges up front: prepaid hours at the hourly price, in
    /// [`Offer::currency`]; `None` for pay-as-you-go offers.
    pub fn upfront_charge(&self) -> Option<f64> {
        self.prepaid_hours.map(|hours| hours * self.price_per_hour)
    }
}

/// A live offer: a GPU configuration one provider will rent now, at a price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Offer {
    /// The provider to create it through.
    pub provider: Provider,
    /// For PrimeIntellect's resold capacity, the cloud underneath (`hyperstack`, `runpod`, ...).
    pub via: Option<String>,
    /// Canonical GPU name (see [`crate::model::gpu`]).
    pub gpu_type: String,
    /// GPUs per pod.
    pub gpu_count: u32,
    /// Memory per GPU, in GB.
    pub gpu_memory_gb: Option<u32>,
    /// Price per hour for the whole pod at default resources (charged defaults included), in
    /// [`Offer::currency`]; from the price the document gives the offer's security type
    /// (PrimeIntellect: `onDemand` for secure cloud, `communityPrice` for community cloud).
    pub price_per_hour: f64,
    /// The currency of every price of the offer: `USD`, or `EUR` (PrimeIntellect's `Currency`).
    pub currency: String,
    /// Hours charged in full when the pod is created, "regardless of actual usage"
    /// (PrimeIntellect's `prepaidTime`); the hourly rate applies after them. Listed and
    /// launched only with [`crate::OfferQuery::allow_prepaid`].
    pub prepaid_hours: Option<f64>,
    /// Interruptible (spot) capacity.
    pub spot: bool,
    /// Region, when stated.
    pub region: Option<String>,
    /// Data center, when stated.
    pub data_center: Option<String>,
    /// Country code, when stated.
    pub country: Option<String>,
    /// How much is left.
    pub stock: Stock,
    /// Images the offer can boot (PrimeIntellect); empty means any image (RunPod).
    pub images: Vec<String>,
    /// Disk customization, GB.
    pub disk: Option<ResourceSpec>,
    /// vCPU customization.
    pub vcpu: Option<ResourceSpec>,
    /// Memory customization, GB.
    pub memory: Option<ResourceSpec>,
    /// What the provider needs to create a pod from this offer.
    pub details: OfferDetails,
}

/// A network disk (PrimeIntellect) or network volume (RunPod).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Volume {
    /// The provider's id.
    pub id: String,
    /// Which cloud.
    pub provider: Provider,
    /// Its name.
    pub name: String,
    /// Size in GB.
    pub size_gb: u64,
    /// Provider status (`ACTIVE`, ...), when reported.
    pub status: Option<String>,
    /// Data center, when reported.
    pub data_center: Option<String>,
    /// USD per hour, when reported.
    pub price_per_hour: Option<f64>,
    /// The provider's record as it came.
    #[serde(skip)]
    pub raw: serde_json::Value,
}

/// What to create a volume with.
#[derive(Debug, Clone, Default)]
pub struct VolumeSpec {
    /// Name (required by RunPod, optional for PrimeIntellect).
    pub name: String,
    /// Size in GB.
    pub size_gb: u32,
    /// Data center (required by RunPod).
    pub data_center: Option<String>,
    /// PrimeIntellect only: the underlying provider type (e.g. `runpod`, `hyperstack`).
    pub provider_type: Option<String>,
    /// PrimeIntellect only: the disk offer's `cloudId`.
    pub cloud_id: Option<String>,
    /// PrimeIntellect only: country code.
    pub country: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_ids_round_trip_and_reject_garbage() {
        let id: PodId = "runpod:xedezhzb9la3ye".parse().unwrap();
        assert_eq!(id.provider(), Provider::RunPod);
        assert_eq!(id.to_string(), "runpod:xedezhzb9la3ye");
        for bad in ["", "runpod", "runpod:", "aws:abc", ":abc", "runpod:a b"] {
            let err = bad.parse::<PodId>().unwrap_err().to_string();
            assert!(err.contains("pod id") && err.contains("provider:id"), "{err}");
        }
    }

    #[test]
    fn ssh_endpoints_parse_in_every_form() {
        let e = SshEndpoint::parse("root@1.2.3.4 -p 2222").unwrap();
        assert_eq!((e.user.as_str(), e.host.as_str(), e.port), ("root", "1.2.3.4", 2222));
        let e = SshEndpoint::parse("ssh 7h9k-64411eb2@ssh.runpod.io -i ~/.ssh/id").unwrap();
        assert_eq!((e.user.as_str(), e.port), ("7h9k-64411eb2", 22));
        let e = SshEndpoint::parse("ubuntu@10.0.0.1:2200").unwrap();
        assert_eq!(e.port, 2200);
        assert!(SshEndpoint::parse("").is_none());
        assert_eq!(SshEndpoint::parse("1.2.3.4").unwrap().user, "root");
    }

    #[test]
    fn statuses_map_and_keep_unknown_values() {
        assert_eq!(PodStatus::from_primeintellect("ACTIVE"), PodStatus::Running);
        assert_eq!(PodStatus::from_runpod("EXITED"), PodStatus::Stopped);
        assert_eq!(PodStatus::from_runpod("MIGRATING"), PodStatus::Unknown("MIGRATING".into()));
        assert_eq!(serde_json::to_value(PodStatus::Unknown("X".into())).unwrap(), "unknown");
    }

    #[test]
    fn default_resources_included_in_price_cost_nothing() {
        let spec = ResourceSpec {
            min: 10,
            default: 50,
            max: 100,
            step: 10,
            price_per_unit: 0.01,
            default_included_in_price: true,
        };
        assert_eq!(spec.cost(50), 0.0);
        assert!((spec.cost(60) - 0.6).abs() < 1e-9);
    }
}
