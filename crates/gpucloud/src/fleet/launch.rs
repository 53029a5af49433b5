//! The launch pipeline: [`Fleet::launch`] as named steps.
//!
//! 1. `Fleet::validate_request`: everything checkable before a request is sent.
//! 2. `Fleet::candidates`: live offers (narrowed by placement), filtered, cheapest first.
//! 3. For each candidate, in `Launch::try_candidates`: `check_spend` (the budget),
//!    `register_ssh_key` (once per provider), `create` (one attempt under the burn cap; an
//!    ambiguous failure is reconciled by the provider, never re-sent) and `confirm_ready` (the
//!    bounded wait); a pod that fails is terminated and confirmed and the next candidate tried.
//! 4. `Fleet::finish_launch`: whatever was started and is not handed back is terminated and
//!    confirmed (`cleanup.rs`; also when the launch's future is dropped).

use super::Fleet;
use super::cleanup::LaunchCleanup;
use super::spend::Price;
use crate::model::error::{Error, LaunchAttempt, Result};
use crate::model::{Offer, Pod, Provider};
use crate::providers::provisioner::{LaunchSpec, OfferQuery, Provisioner, new_launch_tag};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What [`Fleet::launch`] should start.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Offers in these places are tried after every other candidate (each group cheapest
    /// first): where a job's spot pod was just interrupted, capacity is likely to be taken back
    /// again (the spot recovery of `gpucloud::jobs`, feature `remote`). Empty: price order alone.
    pub try_last: Vec<crate::model::spot::Place>,
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
            try_last: Vec::new(),
        }
    }

    pub(crate) fn spec_for(&self, offer: &Offer) -> LaunchSpec {
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

/// `offers` (cheapest first) with those in `places` moved after the others, each group keeping
/// its order.
fn places_last(offers: Vec<Offer>, places: &[crate::model::spot::Place]) -> Vec<Offer> {
    let (last, first): (Vec<Offer>, Vec<Offer>) =
        offers.into_iter().partition(|o| places.iter().any(|p| p.contains(o.provider, o.data_center.as_deref())));
    first.into_iter().chain(last).collect()
}

/// What a failed create means for the rest of a launch.
pub(super) enum Next {
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

pub(super) fn after_create_failure(error: &Error) -> Next {
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
pub(super) fn no_offer_started(attempts: Vec<LaunchAttempt>) -> Error {
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

/// Per provider: the registered SSH key's id (PrimeIntellect), or `Err` when it could not be
/// registered (that provider's offers are skipped).
type RegisteredKeys = BTreeMap<Provider, std::result::Result<Option<String>, ()>>;

/// One launch walking its candidates: the state the steps share.
struct Launch<'a> {
    fleet: &'a Fleet,
    request: &'a LaunchRequest,
    cleanup: &'a LaunchCleanup,
    started: Instant,
    deadline: Instant,
    attempts: Vec<LaunchAttempt>,
    ssh_keys: RegisteredKeys,
    skipped: Vec<Provider>,
}

/// What one create attempt leaves the launch with.
enum Created {
    /// A pod (tracked for cleanup by its id) and its launch tag.
    Pod(Box<Pod>, String),
    /// Nothing; try the next candidate.
    Next,
    /// The launch ends with this error.
    End(Error),
}

impl Fleet {
    /// Launches one pod: walks matching offers cheapest-first, creates, waits until it is
    /// ready, and returns it. See [the fleet module](crate::fleet) for the cleanup rules.
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
        self.validate_request(request)?;
        let started = Instant::now();
        let cleanup = LaunchCleanup::new(self.cleanup_timeout, self.sweep);
        let (candidates, attempts) = self.candidates(request).await?;
        let mut launch = Launch {
            fleet: self,
            request,
            cleanup: &cleanup,
            started,
            deadline: started + request.ready_timeout,
            attempts,
            ssh_keys: BTreeMap::new(),
            skipped: Vec::new(),
        };
        let steps = async {
            let outcome = launch.try_candidates(candidates, &mut progress).await;
            (outcome, progress)
        };
        let (outcome, mut progress) = tokio::select! {
            (outcome, progress) = steps => (outcome, Some(progress)),
            () = cancel => (Err(Error::Cancelled), None),
        };
        if let Some(progress) = progress.as_mut() {
            progress(LaunchEvent::CleaningUp);
        }
        Self::finish_launch(outcome, &cleanup).await
    }

    /// Like [`Fleet::launch`], returning a [`PodGuard`](super::PodGuard) that terminates the pod
    /// when dropped.
    pub async fn launch_guarded(&self, request: &LaunchRequest) -> Result<super::PodGuard> {
        let pod = self.launch(request).await?;
        self.guard(pod)
    }

    /// Step 1: what can be refused before any request is sent.
    fn validate_request(&self, request: &LaunchRequest) -> Result<()> {
        if let Some(key) = &request.ssh_public_key {
            crate::providers::ssh::parse_public_key(key)?;
        }
        crate::providers::validate::check_cuda_floor(request.min_cuda_version.as_deref())?;
        request.query.validate()?;
        self.check_limits(request.budget_usd)
    }

    /// Step 2: the offers to try, cheapest first, and the providers whose offers could not be
    /// read (as attempts, so that a launch which starts nothing says why).
    async fn candidates(&self, request: &LaunchRequest) -> Result<(Vec<Offer>, Vec<LaunchAttempt>)> {
        // The volume decides the provider and where the pod can land (crate::fleet::placement); the
        // offers are narrowed by the first, and every other must be on the same provider.
        if request.volume_ids.len() > 1 {
            crate::fleet::placement::volume_provider(&self.provisioners, &request.volume_ids).await?;
        }
        let mut query = request.query.clone();
        if query.volume_id.is_none() {
            query.volume_id = request.volume_ids.first().cloned();
        }
        let results = self.offers(&query).await;
        if let Some((_, error)) = results.errors.iter().find(|(_, e)| matches!(e, Error::InvalidInput { .. })) {
            return Err(error.clone());
        }
        let attempts = results
            .errors
            .into_iter()
            .map(|(provider, error)| LaunchAttempt {
                provider,
                gpu_type: "(offers)".into(),
                price_per_hour: 0.0,
                error,
            })
            .collect();
        let candidates = results
            .offers
            .into_iter()
            .filter(|o| offer_accepts_image(o, request.image.as_deref()))
            .filter(|o| offer_meets_cuda_floor(o, request))
            .collect();
        let candidates =
            places_last(candidates, &request.try_last).into_iter().take(request.max_candidates.max(1)).collect();
        Ok((candidates, attempts))
    }

    /// Step 4: the launch's leftovers terminated and confirmed; the outcome as it was.
    async fn finish_launch(outcome: Result<Pod>, cleanup: &LaunchCleanup) -> Result<Pod> {
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
}

impl Launch<'_> {
    /// Step 3: each candidate in turn until one is ready, the deadline passes, or a failure
    /// ends the launch.
    async fn try_candidates(
        &mut self,
        candidates: Vec<Offer>,
        progress: &mut (impl FnMut(LaunchEvent<'_>) + Send),
    ) -> Result<Pod> {
        for offer in candidates {
            if Instant::now() >= self.deadline {
                return Err(Error::Timeout { what: "a ready pod".into(), waited: self.started.elapsed() });
            }
            if self.skipped.contains(&offer.provider) {
                continue;
            }
            let Ok(provisioner) = self.fleet.provisioner(offer.provider).map(Arc::clone) else { continue };
            let mut spec = self.request.spec_for(&offer);
            let Some(price) = self.check_spend(&offer, &mut spec) else { continue };
            if !self.register_ssh_key(&provisioner, &offer, &mut spec).await {
                continue;
            }
            let (pod, tag) = match self.create(&provisioner, &offer, spec, &price, progress).await {
                Created::Pod(pod, tag) => (*pod, tag),
                Created::Next => continue,
                Created::End(error) => return Err(error),
            };
            if let Some(outcome) = self.confirm_ready(&provisioner, &offer, pod, &tag, progress).await {
                return outcome;
            }
        }
        Err(no_offer_started(std::mem::take(&mut self.attempts)))
    }

    /// Records why `offer` was not launched.
    fn record(&mut self, offer: &Offer, error: Error) {
        self.attempts.push(LaunchAttempt {
            provider: offer.provider,
            gpu_type: offer.gpu_type.clone(),
            price_per_hour: offer.price_per_hour,
            error,
        });
    }

    /// The worst the pod may bill per hour (a variable price up to its `maxPrice`), with the
    /// lease the budget buys set on `spec`; `None` (the refusal recorded) when the budget rules
    /// the offer out.
    fn check_spend(&mut self, offer: &Offer, spec: &mut LaunchSpec) -> Option<Price> {
        let (worst, basis) = crate::providers::validate::worst_price(spec);
        let price = Price::of(offer, worst, basis);
        if let Some(budget) = self.request.budget_usd {
            match crate::fleet::spend::lease_for_budget(
                budget,
                self.request.ttl,
                offer,
                &price,
                self.fleet.burn.rates(),
            ) {
                Ok(ttl) => spec.ttl = ttl,
                Err(error) => {
                    self.record(offer, error);
                    return None;
                }
            }
        }
        Some(price)
    }

    /// The caller's SSH key registered with the offer's provider (once per provider) and named
    /// in `spec`; `false` when it cannot be, and that provider's offers are skipped.
    async fn register_ssh_key(
        &mut self,
        provisioner: &Arc<dyn Provisioner>,
        offer: &Offer,
        spec: &mut LaunchSpec,
    ) -> bool {
        let Some(public_key) = &self.request.ssh_public_key else { return true };
        if let std::collections::btree_map::Entry::Vacant(slot) = self.ssh_keys.entry(offer.provider) {
            let registered = match provisioner.ensure_ssh_key(public_key).await {
                Ok(key) => Ok(key.id),
                Err(error) => {
                    tracing::warn!(provider = %offer.provider, %error, "cannot register the SSH key; skipping this provider");
                    self.attempts.push(LaunchAttempt {
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
        match &self.ssh_keys[&offer.provider] {
            Ok(id) => {
                spec.ssh_key_id = id.clone();
                true
            }
            Err(()) => false,
        }
    }

    /// One create, under a fresh launch tag and the fleet's burn cap (counted at `price`). A failure says what the
    /// launch does next ([`after_create_failure`]); only an ambiguous one keeps its tag for the
    /// cleanup's search.
    async fn create(
        &mut self,
        provisioner: &Arc<dyn Provisioner>,
        offer: &Offer,
        mut spec: LaunchSpec,
        price: &Price,
        progress: &mut (impl FnMut(LaunchEvent<'_>) + Send),
    ) -> Created {
        let tag =
            if self.request.idle_exempt { crate::model::lease::new_idle_exempt_launch_tag() } else { new_launch_tag() };
        spec.launch_tag = Some(tag.clone());
        self.cleanup.track_tag(provisioner, &tag);
        progress(LaunchEvent::Creating { offer });
        let creating = async {
            let pod = provisioner.create(&spec).await?;
            let id = pod.id.clone();
            Ok((pod, id))
        };
        match self.fleet.burn.guarded(&self.fleet.watched, offer.provider, price, creating).await {
            Ok(pod) => {
                // From here the pod itself is tracked; its tag needs no sweep.
                self.cleanup.track_pod(provisioner, &pod.id);
                self.cleanup.forget_tag(&tag);
                progress(LaunchEvent::Created { pod: &pod });
                Created::Pod(Box::new(pod), tag)
            }
            Err(error) => {
                // Only an ambiguous create may have left a pod behind under this tag.
                if !matches!(error, Error::CreateUnconfirmed { .. }) {
                    self.cleanup.forget_tag(&tag);
                }
                let next = after_create_failure(&error);
                if matches!(next, Next::SkipProvider) {
                    tracing::warn!(provider = %offer.provider, %error, "skipping this provider's offers");
                    self.skipped.push(offer.provider);
                } else {
                    tracing::warn!(provider = %offer.provider, gpu = %offer.gpu_type, %error, "create failed; trying the next offer");
                }
                match next {
                    Next::Fail => Created::End(error),
                    Next::Stop => {
                        self.record(offer, error);
                        Created::End(Error::NoCapacity { attempts: std::mem::take(&mut self.attempts) })
                    }
                    Next::Continue | Next::SkipProvider => {
                        self.record(offer, error);
                        Created::Next
                    }
                }
            }
        }
    }

    /// The bounded wait for `pod` to be ready: `Some` ends the launch (the ready pod handed
    /// back, or the deadline passed); `None`: the pod failed, was terminated and confirmed, and
    /// the next candidate is tried.
    async fn confirm_ready(
        &mut self,
        provisioner: &Arc<dyn Provisioner>,
        offer: &Offer,
        pod: Pod,
        tag: &str,
        progress: &mut (impl FnMut(LaunchEvent<'_>) + Send),
    ) -> Option<Result<Pod>> {
        if !self.request.wait {
            self.cleanup.release(&pod.id, tag);
            return Some(Ok(pod));
        }
        progress(LaunchEvent::Waiting { pod: &pod });
        let waited = provisioner
            .wait_until_ready_reporting(&pod.id, self.deadline, &mut |pod| progress(LaunchEvent::Observed { pod }))
            .await;
        match waited {
            Ok(ready) => {
                self.cleanup.release(&pod.id, tag);
                Some(Ok(ready))
            }
            Err(error @ Error::Timeout { .. }) => Some(Err(error)),
            Err(error) => {
                tracing::warn!(pod = %pod.id, %error, "pod did not become ready; terminating it and trying the next offer");
                if let Err(e) = self.cleanup.discard(provisioner, &pod.id).await {
                    tracing::error!(pod = %pod.id, error = %e, "could not confirm termination yet; cleanup will retry");
                }
                self.record(offer, error);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spot::Place;

    fn offer(provider: Provider, data_center: &str, price: f64) -> Offer {
        Offer {
            provider,
            via: None,
            gpu_type: "H100_80GB".into(),
            gpu_count: 1,
            gpu_memory_gb: Some(80),
            price_per_hour: price,
            currency: "USD".into(),
            prepaid_hours: None,
            spot: true,
            region: None,
            data_center: Some(data_center.into()),
            country: None,
            stock: crate::model::Stock::parse("High"),
            images: Vec::new(),
            disk: None,
            vcpu: None,
            memory: None,
            details: crate::model::OfferDetails::RunPod {
                gpu_type_id: "x".into(),
                cloud: "SECURE".into(),
                data_center_ids: Vec::new(),
                max_gpu_count: None,
                cuda_versions: Vec::new(),
            },
        }
    }

    #[test]
    fn an_interrupted_place_is_tried_last_and_each_group_keeps_price_order() {
        let pi = Provider::PrimeIntellect;
        let offers =
            vec![offer(pi, "FIN-01", 1.0), offer(pi, "CANADA-1", 1.5), offer(pi, "FIN-01", 1.7), offer(pi, "US", 2.0)];
        let fin = Place { provider: pi, data_center: Some("FIN-01".into()) };
        let order: Vec<(String, f64)> = places_last(offers.clone(), std::slice::from_ref(&fin))
            .into_iter()
            .map(|o| (o.data_center.unwrap(), o.price_per_hour))
            .collect();
        assert_eq!(
            order,
            [("CANADA-1".into(), 1.5), ("US".into(), 2.0), ("FIN-01".into(), 1.0), ("FIN-01".into(), 1.7)]
        );
        assert_eq!(places_last(offers.clone(), &[]), offers, "no places: price order alone");
    }
}
