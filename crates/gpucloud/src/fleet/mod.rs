//! **Layer 4, the fleet**: several provisioners as one — [`Fleet`], merged offers, launch with
//! failover and cleanup.
//!
//! Owns: the fleet and its launch ([`Fleet::launch`]), where a pod may be placed ([`placement`])
//! and the spend rules checked before a create ([`spend`]: budget, burn cap).
//!
//! May use: [`crate::providers`], [`crate::transport`], [`crate::model`]. Upkeep and jobs add their
//! own `impl Fleet` blocks in their layers; nothing here calls up into them.
//!
//! # Cleanup rules
//!
//! [`Fleet::launch`] hands back exactly one running pod, or nothing. Every pod it created and is
//! not handing back — its readiness deadline passed, it failed, a later step errored, or the
//! caller dropped the launch future — is terminated, and the termination is confirmed (the
//! provider reports it terminated or gone) within [`Fleet::with_cleanup_timeout`]. Creates whose
//! outcome was ambiguous carry a unique launch tag; before `launch` returns, the provider's pods
//! are searched for those tags once more and anything found is terminated too, so one launch
//! rents at most one machine. When the future is dropped, the same cleanup runs on a spawned
//! task (it needs a Tokio runtime; without one it is logged at `ERROR`).
//!
//! [`PodGuard`] gives callers the same guarantee for their own work: the pod is terminated when
//! the guard is dropped, unless [`PodGuard::into_pod`] takes it over.
//!
//! No cleanup runs in a process that is killed (SIGKILL, a crash, a lost machine). For that, set
//! [`LaunchRequest::ttl`]: the pod's name then carries its expiry ([`crate::model::lease`]), and
//! [`Fleet::reap`], run from anywhere on a schedule, terminates it once the lease is over.

pub mod placement;
pub mod spend;

use crate::model::error::{Error, LaunchAttempt, Result};
use crate::model::{Offer, Pod, PodId, Provider};
use crate::providers::provisioner::{LaunchSpec, OfferQuery, Provisioner, new_launch_tag};
use crate::providers::reconcile::ReconcilePolicy;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Several provisioners used together.
#[derive(Debug, Clone)]
pub struct Fleet {
    provisioners: Vec<Arc<dyn Provisioner>>,
    /// Every provider whose pods the burn cap counts: all it was built with, whatever
    /// [`Fleet::only`] narrowed launches to, plus [`Fleet::watching`]'s.
    watched: Vec<Arc<dyn Provisioner>>,
    offer_timeout: Duration,
    cleanup_timeout: Duration,
    sweep: ReconcilePolicy,
    burn: Arc<crate::fleet::spend::BurnCap>,
}

impl Default for Fleet {
    fn default() -> Self {
        Self::new()
    }
}

/// Offers from every provider, cheapest first, and the providers that failed to answer.
#[derive(Debug, Default)]
pub struct OfferResults {
    /// Matching offers: USD offers cheapest first (ties: more stock first), then offers in other
    /// currencies, cheapest first per currency.
    pub offers: Vec<Offer>,
    /// Providers whose offers could not be read, with why.
    pub errors: Vec<(Provider, Error)>,
}

/// What [`Fleet::launch`] should start.
#[derive(Debug, Clone)]
pub struct LaunchRequest {
    /// Which offers qualify.
    pub query: OfferQuery,
    /// Pod name (the SDK appends a launch tag; see [`LaunchSpec::name`]).
    pub name: String,
    /// Image; offers that cannot boot it are skipped (PrimeIntellect lists its images per offer).
    pub image: Option<String>,
    /// Disk in GB.
    pub disk_gb: Option<u32>,
    /// Price cap per hour, checked against each offer's estimate.
    pub max_price_per_hour: Option<f64>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Volumes to attach.
    pub volume_ids: Vec<String>,
    /// Lease: how long the pod may live before [`Fleet::reap`] terminates it, counted from its
    /// create (see [`crate::model::lease`]). `None`: no lease.
    pub ttl: Option<Duration>,
    /// An OpenSSH public key (`ssh-ed25519 AAAA... comment`) to log in with: before the first
    /// create on each provider it is registered there if it is not yet
    /// ([`Provisioner::ensure_ssh_key`]), and PrimeIntellect pods are created with it.
    pub ssh_public_key: Option<String>,
    /// How long to wait, from the start of the launch, for a pod to be ready.
    pub ready_timeout: Duration,
    /// At most this many offers are tried.
    pub max_candidates: usize,
    /// `false` returns the pod as soon as it is created, without waiting for readiness.
    pub wait: bool,
    /// The container's command, exec form ([`LaunchSpec::command`]; RunPod only).
    pub command: Option<Vec<String>>,
    /// The container's entrypoint, exec form ([`LaunchSpec::entrypoint`]; RunPod only).
    pub entrypoint: Option<Vec<String>>,
    /// Minimum host RAM per GPU in GB ([`LaunchSpec::min_ram_per_gpu_gb`]; RunPod only).
    pub min_ram_per_gpu_gb: Option<u32>,
    /// Minimum host vCPUs per GPU ([`LaunchSpec::min_vcpus_per_gpu`]; RunPod only).
    pub min_vcpus_per_gpu: Option<u32>,
    /// Lowest CUDA version of the host's driver ([`LaunchSpec::min_cuda_version`]; RunPod only).
    pub min_cuda_version: Option<String>,
    /// RunPod: the container registry credential id a private image is pulled with
    /// (`registry`, "Container registry credential ID (for private images)").
    /// PrimeIntellect: unsupported.
    pub registry: Option<String>,
    /// RunPod: ports to expose besides `22/tcp`, which every pod gets (`8888/http`, ...).
    /// PrimeIntellect: unsupported.
    pub ports: Vec<String>,
    /// RunPod: where the network volume is mounted ("No default — must be specified
    /// explicitly"); `None` mounts it at `/workspace`. PrimeIntellect: unsupported.
    pub volume_mount_path: Option<String>,
    /// The most the pod may cost in all, USD ([`crate::fleet::spend`]): with `ttl`, offers whose
    /// worst case passes it are not tried; without, it sets the lease (what it buys at the
    /// offer's worst hourly price: a variable price's `maxPrice`), which [`Fleet::reap`] enforces.
    pub budget_usd: Option<f64>,
    /// Never judged by the idle rule ([`crate::upkeep::idle`]): the pod's launch tag records it
    /// ([`crate::model::lease::new_idle_exempt_launch_tag`]), so every reaper sees it. For pods
    /// that do work the GPU does not show (a job's setup, sync and downloads, an interactive
    /// session): `gpucloud run` sets it for its job's pod, `up --no-idle-reap` on request. The
    /// lease still applies.
    pub idle_exempt: bool,
}

impl LaunchRequest {
    /// A request for `count` on-demand GPUs of `gpu` (in stock), named `name`, waiting up to
    /// 10 minutes. Set `query.spot` to `None` or `Some(true)` to allow interruptible capacity.
    pub fn new(gpu: impl Into<String>, count: u32, name: impl Into<String>) -> Self {
        Self {
            query: OfferQuery { spot: Some(false), ..OfferQuery::gpu(gpu, count) },
            name: name.into(),
            image: None,
            disk_gb: None,
            max_price_per_hour: None,
            env: BTreeMap::new(),
            volume_ids: Vec::new(),
            ttl: None,
            ssh_public_key: None,
            ready_timeout: Duration::from_secs(600),
            max_candidates: 8,
            wait: true,
            command: None,
            entrypoint: None,
            min_ram_per_gpu_gb: None,
            min_vcpus_per_gpu: None,
            min_cuda_version: None,
            registry: None,
            ports: Vec::new(),
            volume_mount_path: None,
            budget_usd: None,
            idle_exempt: false,
        }
    }

    fn spec_for(&self, offer: &Offer) -> LaunchSpec {
        let mut spec = LaunchSpec::new(offer.clone(), self.name.clone());
        spec.image = self.image.clone();
        spec.disk_gb = self.disk_gb;
        spec.max_price_per_hour = self.max_price_per_hour;
        spec.env = self.env.clone();
        spec.volume_ids = self.volume_ids.clone();
        spec.ttl = self.ttl;
        spec.command = self.command.clone();
        spec.entrypoint = self.entrypoint.clone();
        spec.min_ram_per_gpu_gb = self.min_ram_per_gpu_gb;
        spec.min_vcpus_per_gpu = self.min_vcpus_per_gpu;
        spec.min_cuda_version.clone_from(&self.min_cuda_version);
        spec.registry.clone_from(&self.registry);
        spec.ports.clone_from(&self.ports);
        spec.volume_mount_path.clone_from(&self.volume_mount_path);
        spec
    }
}

/// What to undo if a launch does not hand its pod back.
#[derive(Default)]
struct Pending {
    pods: Vec<(Arc<dyn Provisioner>, PodId)>,
    tags: Vec<(Arc<dyn Provisioner>, String)>,
}

/// Cleans up a launch's leftovers: awaited on every normal exit, spawned when dropped.
struct LaunchCleanup {
    pending: Arc<Mutex<Pending>>,
    timeout: Duration,
    sweep: ReconcilePolicy,
}

impl LaunchCleanup {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn track_tag(&self, provisioner: &Arc<dyn Provisioner>, tag: &str) {
        self.lock().tags.push((Arc::clone(provisioner), tag.to_string()));
    }

    fn track_pod(&self, provisioner: &Arc<dyn Provisioner>, id: &PodId) {
        self.lock().pods.push((Arc::clone(provisioner), id.clone()));
    }

    /// Stops tracking `tag`: its create was rejected outright, or its pod is tracked by id.
    fn forget_tag(&self, tag: &str) {
        self.lock().tags.retain(|(_, t)| t != tag);
    }

    /// Stops tracking `id`, which is being handed to the caller (its tag is covered by the pod).
    fn release(&self, id: &PodId, tag: &str) {
        let mut pending = self.lock();
        pending.pods.retain(|(_, p)| p != id);
        pending.tags.retain(|(_, t)| t != tag);
    }

    /// Terminates `id` now and stops tracking it.
    async fn discard(&self, provisioner: &Arc<dyn Provisioner>, id: &PodId) -> Result<()> {
        let result = provisioner.terminate_and_confirm(id, Instant::now() + self.timeout).await;
        if result.is_ok() {
            self.lock().pods.retain(|(_, p)| p != id);
        }
        result
    }

    async fn run(pending: Pending, timeout: Duration, sweep: ReconcilePolicy) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut first_error = None;
        for (provisioner, id) in &pending.pods {
            tracing::warn!(pod = %id, "terminating a pod the launch is not handing back");
            if let Err(e) = provisioner.terminate_and_confirm(id, deadline).await {
                tracing::error!(pod = %id, error = %e, "cleanup could not confirm termination");
                first_error.get_or_insert(e);
            }
        }
        // Ambiguous creates: look for their tags (lists may lag), terminate anything found.
        for look in 1..=sweep.attempts.max(1) {
            for (provisioner, tag) in &pending.tags {
                match provisioner.find_by_launch_tag(tag).await {
                    Ok(found) => {
                        for pod in found {
                            tracing::warn!(pod = %pod.id, launch_tag = %tag, "terminating a pod created by an ambiguous attempt");
                            if let Err(e) = provisioner.terminate_and_confirm(&pod.id, deadline).await {
                                first_error.get_or_insert(e);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(launch_tag = %tag, error = %e, "cleanup could not list pods");
                        first_error.get_or_insert(e);
                    }
                }
            }
            if pending.tags.is_empty() || look == sweep.attempts || Instant::now() + sweep.delay >= deadline {
                break;
            }
            tokio::time::sleep(sweep.delay).await;
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs the cleanup now (normal exits).
    async fn finish(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.lock());
        Self::run(pending, self.timeout, self.sweep).await
    }
}

impl Drop for LaunchCleanup {
    fn drop(&mut self) {
        let pending = std::mem::take(&mut *self.lock());
        if pending.pods.is_empty() && pending.tags.is_empty() {
            return;
        }
        let (timeout, sweep) = (self.timeout, self.sweep);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                tracing::warn!(
                    pods = pending.pods.len(),
                    tags = pending.tags.len(),
                    "launch dropped; cleaning up in the background"
                );
                handle.spawn(async move {
                    let _ = Self::run(pending, timeout, sweep).await;
                });
            }
            Err(_) => tracing::error!(
                pods = ?pending.pods.iter().map(|(_, id)| id.to_string()).collect::<Vec<_>>(),
                "launch dropped outside a Tokio runtime: these pods may still be billing"
            ),
        }
    }
}

/// What a failed create means for the rest of a launch.
enum Next {
    /// Try the next offer.
    Continue,
    /// Give up: no other offer will do better (payment required, bad credentials).
    Stop,
    /// Give up with this error itself: the request has to change, not the offer.
    Fail,
    /// No offer of this provider can work (its account lacks what the launch needs); try
    /// the other providers' offers.
    SkipProvider,
}

fn after_create_failure(error: &Error) -> Next {
    match error {
        // Cheapest first: a later offer would burn more still.
        // An unknown burn stays unknown for every offer.
        Error::RequestTooLarge { .. } | Error::BurnCapExceeded { .. } | Error::BurnUnknown { .. } => {
            return Next::Fail;
        }
        Error::NoSshKey { .. } => return Next::SkipProvider,
        _ => {}
    }
    match error.status() {
        // RunPod: 402 insufficient funds; 401 credentials. Neither improves with another offer.
        Some(401 | 402) => Next::Stop,
        // 422: the request breaks the document's schema (RunPod: "never retry"; PrimeIntellect:
        // FastAPI's validation). Another offer gets the same request: say what is wrong with it
        // rather than report missing capacity.
        Some(422) => Next::Fail,
        // 400 next candidate (a rule or no capacity), 403 skip, 404/409 this offer is unusable,
        // 429 already waited per Retry-After in the retry layer, 5xx reconciled: all move on.
        _ => Next::Continue,
    }
}

/// Why a launch started nothing: missing capacity, unless every attempt failed for the same
/// reason on the caller's side (no SSH key anywhere, a budget no offer fits), which is then
/// the answer itself.
fn no_offer_started(attempts: Vec<LaunchAttempt>) -> Error {
    let same_kind = |a: &LaunchAttempt, b: &Error| std::mem::discriminant(&a.error) == std::mem::discriminant(b);
    match attempts.first() {
        Some(LaunchAttempt { error: first @ (Error::NoSshKey { .. } | Error::OverBudget { .. }), .. })
            if attempts.iter().all(|a| same_kind(a, first)) =>
        {
            first.clone()
        }
        _ => Error::NoCapacity { attempts },
    }
}

impl Fleet {
    /// An empty fleet.
    pub fn new() -> Self {
        Self {
            provisioners: Vec::new(),
            watched: Vec::new(),
            offer_timeout: Duration::from_secs(30),
            cleanup_timeout: Duration::from_secs(180),
            sweep: ReconcilePolicy::default(),
            burn: Arc::default(),
        }
    }

    /// Adds a provisioner.
    pub fn with(self, provisioner: impl Provisioner + 'static) -> Self {
        self.with_arc(Arc::new(provisioner))
    }

    /// Counts `provisioner`'s pods toward the burn cap ([`Fleet::with_max_burn`]) without
    /// launching on it: a provider the account uses elsewhere.
    pub fn watching(mut self, provisioner: Arc<dyn Provisioner>) -> Self {
        self.watched.push(provisioner);
        self
    }

    /// The providers whose pods the burn cap counts ([`crate::fleet::spend`]).
    pub fn watched(&self) -> &[Arc<dyn Provisioner>] {
        &self.watched
    }

    /// This fleet launching only on the providers in `providers`, with the same settings and
    /// burn cap. The cap still counts every provider the fleet was built with: narrowing where
    /// a pod may land does not make the others' pods stop billing.
    pub fn only(&self, providers: &[Provider]) -> Self {
        let mut fleet = self.clone();
        fleet.provisioners.retain(|p| providers.contains(&p.provider()));
        fleet
    }

    /// Adds a shared provisioner.
    pub fn with_arc(mut self, provisioner: Arc<dyn Provisioner>) -> Self {
        self.watched.push(Arc::clone(&provisioner));
        self.provisioners.push(provisioner);
        self
    }

    /// Each provider whose API key is set (`PRIME_API_KEY`, `RUNPOD_API_KEY`); an error naming
    /// both variables when neither is.
    pub fn from_env() -> Result<Self> {
        let mut fleet = Self::new();
        #[cfg(feature = "primeintellect")]
        if let Ok(pi) = crate::PrimeIntellect::from_env() {
            fleet = fleet.with(pi);
        }
        #[cfg(feature = "runpod")]
        if let Ok(rp) = crate::RunPod::from_env() {
            fleet = fleet.with(rp);
        }
        if fleet.provisioners.is_empty() {
            return Err(Error::MissingCredentials {
                provider: Provider::RunPod,
                variable: "PRIME_API_KEY or RUNPOD_API_KEY",
            });
        }
        Ok(fleet)
    }

    /// How long one provider may take to list offers before it is reported as failed.
    pub fn with_offer_timeout(mut self, timeout: Duration) -> Self {
        self.offer_timeout = timeout;
        self
    }

    /// Caps what all live pods of this fleet's providers may burn together, in USD per hour
    /// (pods other processes started included): a create that would pass it is refused with
    /// [`Error::BurnCapExceeded`]. See [`crate::fleet::spend`]. Not finite or not positive:
    /// [`Error::InvalidInput`] at the next launch.
    pub fn with_max_burn(mut self, usd_per_hour: f64) -> Self {
        let rates = self.burn.rates().clone();
        self.burn = Arc::new(crate::fleet::spend::BurnCap::new(Some(usd_per_hour), rates));
        self
    }

    /// Converts amounts in `currency` (e.g. `EUR`) to US dollars at `usd_per_unit` for the
    /// budget and the burn cap ([`crate::fleet::spend`]); without a rate, an amount in another
    /// currency is never compared with them. Not finite or not positive:
    /// [`Error::InvalidInput`] naming `exchange_rate` at the next launch or start.
    pub fn with_exchange_rate(mut self, currency: &str, usd_per_unit: f64) -> Self {
        let mut rates = self.burn.rates().clone();
        rates.set(currency, usd_per_unit);
        self.burn = Arc::new(crate::fleet::spend::BurnCap::new(self.burn.cap(), rates));
        self
    }

    /// Checks the cap and exchange rates before any request.
    fn check_limits(&self, budget: Option<f64>) -> Result<()> {
        for (field, limit) in [("budget_usd", budget), ("max_burn", self.burn.cap())] {
            if let Some(limit) = limit.filter(|l| !(l.is_finite() && *l > 0.0)) {
                return Err(Error::invalid(field, format!("{limit} is not a positive amount of USD")));
            }
        }
        self.burn.rates().validate()
    }

    /// How long cleanup may take to confirm terminations.
    pub fn with_cleanup_timeout(mut self, timeout: Duration) -> Self {
        self.cleanup_timeout = timeout;
        self
    }

    /// How often leftover launch tags are searched for before a launch returns.
    pub fn with_sweep_policy(mut self, policy: ReconcilePolicy) -> Self {
        self.sweep = policy;
        self
    }

    /// The provisioners, in the order added.
    pub fn provisioners(&self) -> &[Arc<dyn Provisioner>] {
        &self.provisioners
    }

    /// How long confirming a termination may take ([`Fleet::with_cleanup_timeout`]).
    pub fn cleanup_timeout(&self) -> Duration {
        self.cleanup_timeout
    }

    /// The provisioner for `provider`.
    pub fn provisioner(&self, provider: Provider) -> Result<&Arc<dyn Provisioner>> {
        self.provisioners
            .iter()
            .find(|p| p.provider() == provider)
            .ok_or_else(|| Error::invalid("provider", format!("{provider} is not configured in this fleet")))
    }

    /// Offers from every provider, fetched concurrently and merged cheapest-first. A provider
    /// that fails or takes longer than the offer timeout is reported in `errors`; the others'
    /// offers are still returned. With [`OfferQuery::volume_id`], only the provider holding
    /// that volume is asked, for offers that can attach it ([`crate::fleet::placement`]); a volume no
    /// provider has is reported in `errors`.
    pub async fn offers(&self, query: &OfferQuery) -> OfferResults {
        let only = match crate::fleet::placement::volume_provider(&self.provisioners, query.volume_id.as_slice()).await
        {
            Ok(only) => only,
            Err(e) => {
                let errors = self.provisioners.iter().map(|p| (p.provider(), e.clone())).collect();
                return OfferResults { offers: Vec::new(), errors };
            }
        };
        let asked = self.provisioners.iter().filter(|p| only.is_none_or(|o| p.provider() == o));
        let fetches = asked.map(|p| async move {
            let result = match tokio::time::timeout(self.offer_timeout, p.offers(query)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout { what: format!("{} offers", p.provider()), waited: self.offer_timeout }),
            };
            (p.provider(), result)
        });
        let mut results = OfferResults::default();
        for (provider, result) in futures::future::join_all(fetches).await {
            match result {
                Ok(offers) => results.offers.extend(offers),
                Err(e) => {
                    tracing::warn!(%provider, error = %e, "offers unavailable from this provider");
                    results.errors.push((provider, e));
                }
            }
        }
        let stock_rank = |o: &Offer| match o.stock {
            crate::Stock::High => 0,
            crate::Stock::Medium | crate::Stock::Available => 1,
            crate::Stock::Low => 2,
            _ => 3,
        };
        results.offers.sort_by(|a, b| {
            // Prices in another currency are not ranked against USD as if they were USD:
            // they follow every USD offer, cheapest first among their own.
            (!a.is_usd(), &a.currency)
                .cmp(&(!b.is_usd(), &b.currency))
                .then(a.price_per_hour.total_cmp(&b.price_per_hour))
                .then(stock_rank(a).cmp(&stock_rank(b)))
        });
        results
    }

    /// Launches one pod: walks matching offers cheapest-first, creates, waits until it is
    /// ready, and returns it. See the [module documentation](self) for the cleanup rules.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use gpucloud::{Fleet, LaunchRequest, PrimeIntellect, RunPod, SecretString};
    /// # let emulator = gpucloud_emulator::Emulator::start(gpucloud_emulator::EmulatorConfig {
    /// #     ready_delay: std::time::Duration::from_millis(100), ..Default::default() }).await?;
    /// # let (key, url) = (SecretString::from(emulator.api_key().to_string()), emulator.base_url());
    /// # let poll = std::time::Duration::from_millis(50);
    /// // Against the real clouds: `Fleet::from_env()?` (PRIME_API_KEY, RUNPOD_API_KEY).
    /// // Here, against the emulator at `url`:
    /// let fleet = Fleet::new()
    ///     .with(PrimeIntellect::new(key.clone(), Some(&url))?.with_poll_interval(poll))
    ///     .with(RunPod::new(key, Some(&url))?.with_poll_interval(poll));
    /// let pod = fleet.launch(&LaunchRequest::new("H100_80GB", 1, "train")).await?;
    /// println!("{} is up: {}", pod.id, pod.ssh.as_ref().map(ToString::to_string).unwrap_or_default());
    /// fleet.terminate(&pod.id).await?;
    /// # assert!(emulator.live_pods().is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn launch(&self, request: &LaunchRequest) -> Result<Pod> {
        self.launch_with_progress(request, |_| {}, std::future::pending()).await
    }

    /// Like [`Fleet::launch`], reporting each step to `progress` (for progress displays), and
    /// stopping when `cancel` completes (e.g. on Ctrl-C): then everything the launch started is
    /// terminated and confirmed before [`Error::Cancelled`] is returned.
    pub async fn launch_with_progress(
        &self,
        request: &LaunchRequest,
        mut progress: impl FnMut(LaunchEvent<'_>) + Send,
        cancel: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Pod> {
        if let Some(key) = &request.ssh_public_key {
            crate::providers::ssh::parse_public_key(key)?;
        }
        crate::providers::validate::check_cuda_floor(request.min_cuda_version.as_deref())?;
        request.query.validate()?;
        self.check_limits(request.budget_usd)?;
        // The volume decides the provider and where the pod can land (crate::fleet::placement); the
        // offers are narrowed by the first, and every other must be on the same provider.
        if request.volume_ids.len() > 1 {
            crate::fleet::placement::volume_provider(&self.provisioners, &request.volume_ids).await?;
        }
        let mut query = request.query.clone();
        if query.volume_id.is_none() {
            query.volume_id = request.volume_ids.first().cloned();
        }
        let started = Instant::now();
        let deadline = started + request.ready_timeout;
        let cleanup = LaunchCleanup { pending: Arc::default(), timeout: self.cleanup_timeout, sweep: self.sweep };
        let results = self.offers(&query).await;
        if let Some((_, error)) = results.errors.iter().find(|(_, e)| matches!(e, Error::InvalidInput { .. })) {
            return Err(error.clone());
        }
        let mut attempts: Vec<LaunchAttempt> = Vec::new();
        for (provider, error) in results.errors {
            attempts.push(LaunchAttempt { provider, gpu_type: "(offers)".into(), price_per_hour: 0.0, error });
        }
        let candidates = results
            .offers
            .into_iter()
            .filter(|o| offer_accepts_image(o, request.image.as_deref()))
            .filter(|o| offer_meets_cuda_floor(o, request))
            .take(request.max_candidates.max(1));
        let steps = async {
            // Per provider: the registered key's id (PrimeIntellect), or why it could not be registered.
            let mut ssh_keys: BTreeMap<Provider, std::result::Result<Option<String>, ()>> = BTreeMap::new();
            let mut skipped: Vec<Provider> = Vec::new();
            let outcome: Result<Pod> = 'launch: {
                for offer in candidates {
                    if Instant::now() >= deadline {
                        break 'launch Err(Error::Timeout { what: "a ready pod".into(), waited: started.elapsed() });
                    }
                    if skipped.contains(&offer.provider) {
                        continue;
                    }
                    let provisioner = match self.provisioner(offer.provider) {
                        Ok(p) => Arc::clone(p),
                        Err(_) => continue,
                    };
                    let mut spec = request.spec_for(&offer);
                    // The worst the pod may bill per hour: a variable price up to its maxPrice.
                    let (worst, basis) = crate::providers::validate::worst_price(&spec);
                    let price = crate::fleet::spend::Price::of(&offer, worst, basis);
                    if let Some(budget) = request.budget_usd {
                        match crate::fleet::spend::lease_for_budget(
                            budget,
                            request.ttl,
                            &offer,
                            &price,
                            self.burn.rates(),
                        ) {
                            Ok(ttl) => spec.ttl = ttl,
                            Err(error) => {
                                attempts.push(LaunchAttempt {
                                    provider: offer.provider,
                                    gpu_type: offer.gpu_type.clone(),
                                    price_per_hour: offer.price_per_hour,
                                    error,
                                });
                                continue;
                            }
                        }
                    }
                    if let Some(public_key) = &request.ssh_public_key {
                        if let std::collections::btree_map::Entry::Vacant(slot) = ssh_keys.entry(offer.provider) {
                            let registered = match provisioner.ensure_ssh_key(public_key).await {
                                Ok(key) => Ok(key.id),
                                Err(error) => {
                                    tracing::warn!(provider = %offer.provider, %error, "cannot register the SSH key; skipping this provider");
                                    attempts.push(LaunchAttempt {
                                        provider: offer.provider,
                                        gpu_type: "(ssh key)".into(),
                                        price_per_hour: 0.0,
                                        error,
                                    });
                                    Err(())
                                }
                            };
                            slot.insert(registered);
                        }
                        match &ssh_keys[&offer.provider] {
                            Ok(id) => spec.ssh_key_id = id.clone(),
                            Err(()) => continue,
                        }
                    }
                    let tag = if request.idle_exempt {
                        crate::model::lease::new_idle_exempt_launch_tag()
                    } else {
                        new_launch_tag()
                    };
                    spec.launch_tag = Some(tag.clone());
                    cleanup.track_tag(&provisioner, &tag);
                    progress(LaunchEvent::Creating { offer: &offer });
                    let creating = async {
                        let pod = provisioner.create(&spec).await?;
                        let id = pod.id.clone();
                        Ok((pod, id))
                    };
                    let pod = match self.burn.guarded(&self.watched, offer.provider, &price, creating).await {
                        Ok(pod) => pod,
                        Err(error) => {
                            // Only an ambiguous create may have left a pod behind under this tag.
                            if !matches!(error, Error::CreateUnconfirmed { .. }) {
                                cleanup.forget_tag(&tag);
                            }
                            let next = after_create_failure(&error);
                            if matches!(next, Next::SkipProvider) {
                                tracing::warn!(provider = %offer.provider, %error, "skipping this provider's offers");
                                skipped.push(offer.provider);
                            } else {
                                tracing::warn!(provider = %offer.provider, gpu = %offer.gpu_type, %error, "create failed; trying the next offer");
                            }
                            if matches!(next, Next::Fail) {
                                break 'launch Err(error);
                            }
                            let stop = matches!(next, Next::Stop);
                            attempts.push(LaunchAttempt {
                                provider: offer.provider,
                                gpu_type: offer.gpu_type.clone(),
                                price_per_hour: offer.price_per_hour,
                                error,
                            });
                            if stop {
                                break 'launch Err(Error::NoCapacity { attempts: std::mem::take(&mut attempts) });
                            }
                            continue;
                        }
                    };
                    // From here the pod itself is tracked; its tag needs no sweep.
                    cleanup.track_pod(&provisioner, &pod.id);
                    cleanup.forget_tag(&tag);
                    progress(LaunchEvent::Created { pod: &pod });
                    if !request.wait {
                        cleanup.release(&pod.id, &tag);
                        break 'launch Ok(pod);
                    }
                    progress(LaunchEvent::Waiting { pod: &pod });
                    let waited = provisioner
                        .wait_until_ready_reporting(&pod.id, deadline, &mut |pod| {
                            progress(LaunchEvent::Observed { pod })
                        })
                        .await;
                    match waited {
                        Ok(ready) => {
                            cleanup.release(&pod.id, &tag);
                            break 'launch Ok(ready);
                        }
                        Err(error @ Error::Timeout { .. }) => break 'launch Err(error),
                        Err(error) => {
                            tracing::warn!(pod = %pod.id, %error, "pod did not become ready; terminating it and trying the next offer");
                            if let Err(e) = cleanup.discard(&provisioner, &pod.id).await {
                                tracing::error!(pod = %pod.id, error = %e, "could not confirm termination yet; cleanup will retry");
                            }
                            attempts.push(LaunchAttempt {
                                provider: offer.provider,
                                gpu_type: offer.gpu_type.clone(),
                                price_per_hour: offer.price_per_hour,
                                error,
                            });
                        }
                    }
                }
                Err(no_offer_started(std::mem::take(&mut attempts)))
            };
            (outcome, progress)
        };
        let (outcome, mut progress) = tokio::select! {
            (outcome, progress) = steps => (outcome, Some(progress)),
            () = cancel => (Err(Error::Cancelled), None),
        };
        if let Some(progress) = progress.as_mut() {
            progress(LaunchEvent::CleaningUp);
        }
        let cleaned = cleanup.finish().await;
        match (outcome, cleaned) {
            (Ok(pod), Ok(())) => Ok(pod),
            (Ok(pod), Err(e)) => {
                // The pod is fine; a leftover of an earlier attempt could not be confirmed gone.
                tracing::error!(pod = %pod.id, error = %e, "launch succeeded but cleanup of an earlier attempt failed");
                Ok(pod)
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Like [`Fleet::launch`], returning a [`PodGuard`] that terminates the pod when dropped.
    pub async fn launch_guarded(&self, request: &LaunchRequest) -> Result<PodGuard> {
        let pod = self.launch(request).await?;
        self.guard(pod)
    }

    /// `pod` in a guard that terminates it unless handed back.
    pub(crate) fn guard(&self, pod: Pod) -> Result<PodGuard> {
        let provisioner = Arc::clone(self.provisioner(pod.provider)?);
        Ok(PodGuard::new(provisioner, pod, self.cleanup_timeout))
    }

    /// Every pod of every provider; providers that fail are reported beside the pods.
    pub async fn list(&self) -> (Vec<Pod>, Vec<(Provider, Error)>) {
        use futures::TryStreamExt;
        let lists =
            self.provisioners.iter().map(|p| async move { (p.provider(), p.list().try_collect::<Vec<Pod>>().await) });
        let mut pods = Vec::new();
        let mut errors = Vec::new();
        for (provider, result) in futures::future::join_all(lists).await {
            match result {
                Ok(list) => pods.extend(list),
                Err(e) => errors.push((provider, e)),
            }
        }
        (pods, errors)
    }

    /// The pod's current state.
    pub async fn get(&self, id: &PodId) -> Result<Pod> {
        self.provisioner(id.provider())?.get(id).await
    }

    /// Terminates the pod and confirms it within the cleanup timeout.
    pub async fn terminate(&self, id: &PodId) -> Result<()> {
        self.provisioner(id.provider())?.terminate_and_confirm(id, Instant::now() + self.cleanup_timeout).await?;
        self.burn.forget(id);
        Ok(())
    }

    /// Stops the pod ([`Provisioner::stop`]; PrimeIntellect: [`Error::Unsupported`]). Its
    /// compute stops billing; **its container disk is wiped when it starts again** (RunPod:
    /// "ephemeral, wiped on restart"): only files on a volume survive
    /// ([`Pod::keeps_files_across_restart`]). A stopped pod bills its volume disk, if any.
    pub async fn stop(&self, id: &PodId) -> Result<()> {
        self.provisioner(id.provider())?.stop(id).await
    }

    /// Starts a stopped pod ([`Provisioner::start`]); on its old host, so it can fail with
    /// [`Error::HostFull`]. With a burn cap ([`Fleet::with_max_burn`]) the start is checked like
    /// a create: refused ([`Error::BurnCapExceeded`]) if the pod's running rate
    /// ([`Provisioner::running_rate`]) would take the watched providers' pods past the cap, or
    /// ([`Error::BurnUnknown`]) if that rate or the burn cannot be known.
    pub async fn start(&self, id: &PodId) -> Result<()> {
        self.check_limits(None)?;
        let provisioner = Arc::clone(self.provisioner(id.provider())?);
        if self.burn.cap().is_none() {
            return provisioner.start(id).await;
        }
        let pod = provisioner.get(id).await?;
        let rate = provisioner.running_rate(&pod).await?.ok_or_else(|| Error::BurnUnknown {
            provider: id.provider(),
            reason: format!("{id} reports no running rate, so what starting it adds is unknown"),
        })?;
        // RunPod prices are USD ("Current cost in USD per hour"); a PrimeIntellect pod cannot
        // be stopped, so no other currency reaches here.
        let price = crate::fleet::spend::Price {
            per_hour: rate,
            currency: "USD".into(),
            basis: "the pod's running rate".into(),
        };
        let starting = async { provisioner.start(id).await.map(|()| ((), id.clone())) };
        self.burn.guarded(&self.watched, id.provider(), &price, starting).await
    }

    /// Sets the pod's lease to expire `ttl` from now ([`Provisioner::extend_lease`]).
    pub async fn extend_lease(&self, id: &PodId, ttl: Duration) -> Result<Pod> {
        self.provisioner(id.provider())?.extend_lease(id, ttl).await
    }
}

/// Steps of a launch, for progress displays.
#[derive(Debug)]
#[non_exhaustive]
pub enum LaunchEvent<'a> {
    /// Creating a pod from this offer.
    Creating {
        /// The offer.
        offer: &'a Offer,
    },
    /// The create succeeded.
    Created {
        /// The new pod.
        pod: &'a Pod,
    },
    /// Waiting for the pod to become ready.
    Waiting {
        /// The pod.
        pod: &'a Pod,
    },
    /// A state read while waiting ([`Pod::progress_text`] says it for people).
    Observed {
        /// The pod as last read.
        pod: &'a Pod,
    },
    /// Terminating leftovers (if any) before returning.
    CleaningUp,
}

fn offer_accepts_image(offer: &Offer, image: Option<&str>) -> bool {
    match image {
        Some(image) if offer.provider == Provider::PrimeIntellect && !offer.images.is_empty() => {
            image == "custom_template" || offer.images.iter().any(|i| i == image)
        }
        _ => true,
    }
}

/// A RunPod offer whose hosts report CUDA versions, none of them at the launch's floor (the
/// caller's `min_cuda_version`, or the default image's own), cannot run the pod: its create
/// would be refused for capacity, so it is not tried. An offer that reports none is tried.
fn offer_meets_cuda_floor(offer: &Offer, request: &LaunchRequest) -> bool {
    let crate::OfferDetails::RunPod { cuda_versions, .. } = &offer.details else { return true };
    let Some(floor) =
        crate::providers::provisioner::cuda_floor(request.min_cuda_version.as_deref(), request.image.as_deref())
    else {
        return true;
    };
    cuda_versions.is_empty() || cuda_versions.iter().any(|v| crate::providers::validate::cuda_at_least(v, floor))
}

/// A pod that is terminated (and the termination confirmed) when the guard is dropped, unless
/// [`PodGuard::into_pod`] takes ownership of it.
#[derive(Debug)]
pub struct PodGuard {
    provisioner: Arc<dyn Provisioner>,
    pod: Option<Pod>,
    timeout: Duration,
}

impl PodGuard {
    /// Guards `pod`, created through `provisioner`.
    pub fn new(provisioner: Arc<dyn Provisioner>, pod: Pod, cleanup_timeout: Duration) -> Self {
        Self { provisioner, pod: Some(pod), timeout: cleanup_timeout }
    }

    /// The pod.
    pub fn pod(&self) -> &Pod {
        self.pod.as_ref().expect("a PodGuard holds its pod until consumed")
    }

    /// Keeps the pod running: the caller now owns its lifetime.
    pub fn into_pod(mut self) -> Pod {
        self.pod.take().expect("a PodGuard holds its pod until consumed")
    }

    /// Terminates the pod now and waits for the confirmation.
    pub async fn terminate(mut self) -> Result<()> {
        let pod = self.pod.take().expect("a PodGuard holds its pod until consumed");
        self.provisioner.terminate_and_confirm(&pod.id, Instant::now() + self.timeout).await
    }
}

impl Drop for PodGuard {
    fn drop(&mut self) {
        let Some(pod) = self.pod.take() else { return };
        let provisioner = Arc::clone(&self.provisioner);
        let timeout = self.timeout;
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = provisioner.terminate_and_confirm(&pod.id, Instant::now() + timeout).await {
                        tracing::error!(pod = %pod.id, error = %e, "PodGuard could not confirm termination");
                    }
                });
            }
            Err(_) => {
                tracing::error!(pod = %pod.id, "PodGuard dropped outside a Tokio runtime: the pod may still be billing")
            }
        }
    }
}
