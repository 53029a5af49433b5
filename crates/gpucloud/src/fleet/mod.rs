//! **Layer 4, the fleet**: several provisioners as one — [`Fleet`], merged offers, launch with
//! failover and cleanup.
//!
//! Owns: the fleet and its launches ([`Fleet::launch`]; clusters, all or nothing:
//! [`Fleet::launch_cluster`] in [`cluster`]), where a pod may be placed ([`placement`])
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

mod cleanup;
pub mod cluster;
mod launch;
pub mod placement;
pub mod spend;

pub use cluster::{ClusterEvent, ClusterRequest};
pub use launch::{LaunchEvent, LaunchRequest};

use crate::model::error::{Error, Result};
use crate::model::{Offer, Pod, PodId, Provider};
use crate::providers::provisioner::{OfferQuery, Provisioner};
use crate::providers::reconcile::ReconcilePolicy;
use std::sync::Arc;
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
        let ledger = self.burn.ledger().cloned();
        self.burn = Arc::new(crate::fleet::spend::BurnCap::new(Some(usd_per_hour), rates, ledger));
        self
    }

    /// Shares the burn cap's check with other processes on this machine through the file at
    /// `path` (created if missing): their checks and creates take turns, and each sees the
    /// pods the others created in the last minute, which a lagging list may not show yet. Without
    /// it, separate processes can pass the cap together by one create each. See
    /// [`crate::fleet::spend`].
    pub fn with_burn_ledger(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        let rates = self.burn.rates().clone();
        self.burn = Arc::new(crate::fleet::spend::BurnCap::new(self.burn.cap(), rates, Some(path.into())));
        self
    }

    /// Converts amounts in `currency` (e.g. `EUR`) to US dollars at `usd_per_unit` for the
    /// budget and the burn cap ([`crate::fleet::spend`]); without a rate, an amount in another
    /// currency is never compared with them. Not finite or not positive:
    /// [`Error::InvalidInput`] naming `exchange_rate` at the next launch or start.
    pub fn with_exchange_rate(mut self, currency: &str, usd_per_unit: f64) -> Self {
        let mut rates = self.burn.rates().clone();
        rates.set(currency, usd_per_unit);
        let ledger = self.burn.ledger().cloned();
        self.burn = Arc::new(crate::fleet::spend::BurnCap::new(self.burn.cap(), rates, ledger));
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
