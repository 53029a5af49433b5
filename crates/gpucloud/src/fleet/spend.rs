//! Spending limits a launch checks before any create: a budget per launch, and a cap on what
//! all live pods of the account burn per hour.
//!
//! **Budget** ([`crate::LaunchRequest::budget_usd`]): with a TTL, an offer whose worst case
//! (prepaid charge, then the worst hourly price for the rest of the TTL) exceeds the budget is
//! not tried; without one, the budget *sets* the lease: prepaid hours plus what the rest buys at
//! the worst hourly price, so the reaper ([`crate::Fleet::reap`]) enforces it from the pod's name
//! alone. The worst hourly price of a variable-price offer is the `maxPrice` it is created with
//! (the caller's, or [`crate::providers::validate::VARIABLE_PRICE_HEADROOM`] over the
//! estimate): "rates may fluctuate throughout the instance's lifetime" up to it
//! (PrimeIntellect's "Dynamic pricing"). Any other offer's is its estimate. The error names the
//! price it used. When no offer fits, the launch is [`Error::OverBudget`], and nothing was
//! created.
//!
//! **Burn cap** ([`crate::Fleet::with_max_burn`]): before each create, and before each
//! [`crate::Fleet::start`], the fleet lists every pod of every provider it *watches* (every
//! provider it was built with, whatever [`crate::Fleet::only`] narrowed launches to; RunPod
//! cluster members included, which `GET /v2/pods` leaves out by default) and sums what each
//! will bill ([`burn_rate`]):
//!
//! - a live pod that is not stopped counts at its running rate ([`crate::Pod::price_per_hour`]),
//!   also while provisioning or starting: whatever provisioning costs, seconds later it bills
//!   its running rate;
//! - a stopped pod counts at the rate in force while stopped
//!   ([`crate::Pod::price_now_per_hour`]: PrimeIntellect's `stoppedPriceHr`, RunPod's disk rate).
//!
//! It adds the pods this fleet created that a lagging list does not show yet, and refuses a
//! create that would pass the cap ([`Error::BurnCapExceeded`], naming the burn, the offer's
//! price and the cap). When the burn cannot be known the create is refused too
//! ([`Error::BurnUnknown`], naming the provider): a provider whose pods cannot be read, a pod
//! that reports no rate, or an amount in a currency the caller gave no exchange rate for
//! ([`crate::Fleet::with_exchange_rate`]). An unknown burn is not under the cap. Within one
//! `Fleet` the check and the create are serialized, so its own concurrent launches cannot pass
//! the cap together. **Separate processes** on one machine are serialized the same way when
//! they share a ledger file ([`crate::Fleet::with_burn_ledger`]; the CLI's is
//! `burn-ledger` in its state directory): the check and the create run under an exclusive lock
//! of the file, which also records each create for a minute, so the next process counts a pod
//! its list does not show yet. Processes on other machines, or without the ledger, can still
//! race by one create each.
//!
//! **Currencies**: both limits are in US dollars. An amount in another currency is converted
//! only with a rate the caller gave; without one, an offer in that currency is not compared
//! (the budget skips it, saying so; the cap refuses its create). RunPod prices are USD by its
//! document ("Current cost in USD per hour"). PrimeIntellect's pod record names no currency: a
//! pod this fleet created from an offer in another currency is known to be in it; any other
//! PrimeIntellect pod is read in USD, PrimeIntellect's default.

use crate::model::error::{Error, Result};
use crate::model::{Offer, Pod, PodId, PodStatus, Provider};
use crate::providers::provisioner::Provisioner;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an amount per hour is, for a budget or cap check: the amount, its currency, and which
/// price it is (said in errors).
#[derive(Debug, Clone)]
pub(crate) struct Price {
    pub per_hour: f64,
    pub currency: String,
    pub basis: String,
}

impl Price {
    /// `per_hour` in the offer's currency, described as `basis`.
    pub(crate) fn of(offer: &Offer, per_hour: f64, basis: impl Into<String>) -> Self {
        Self { per_hour, currency: offer.currency.clone(), basis: basis.into() }
    }
}

/// Exchange rates the caller gave: US dollars per unit of each currency (upper case).
#[derive(Debug, Clone, Default)]
pub(crate) struct ExchangeRates(BTreeMap<String, f64>);

impl ExchangeRates {
    pub(crate) fn set(&mut self, currency: &str, usd_per_unit: f64) {
        self.0.insert(currency.trim().to_ascii_uppercase(), usd_per_unit);
    }

    /// Every rate must be a positive, finite number: checked before any request.
    pub(crate) fn validate(&self) -> Result<()> {
        match self.0.iter().find(|(currency, rate)| currency.is_empty() || !(rate.is_finite() && **rate > 0.0)) {
            Some((currency, rate)) => Err(Error::invalid(
                "exchange_rate",
                format!("{rate} USD per {currency:?} is not a positive rate for a named currency"),
            )),
            None => Ok(()),
        }
    }

    /// `amount` of `currency` in USD, or why it cannot be converted.
    pub(crate) fn to_usd(&self, amount: f64, currency: &str) -> std::result::Result<f64, String> {
        if currency.eq_ignore_ascii_case("USD") {
            return Ok(amount);
        }
        match self.0.get(&currency.to_ascii_uppercase()) {
            Some(rate) => Ok(amount * rate),
            None => Err(format!(
                "it is priced in {currency}, and no exchange rate to USD was given (Fleet::with_exchange_rate, gpucloud --usd-per-eur)"
            )),
        }
    }
}

/// The lease a budget allows on `offer` at `price` (its worst hourly price), or why it allows
/// none. `ttl`: the caller's own lease, checked against the budget instead.
pub(crate) fn lease_for_budget(
    budget: f64,
    ttl: Option<Duration>,
    offer: &Offer,
    price: &Price,
    rates: &ExchangeRates,
) -> Result<Option<Duration>> {
    let basis = &price.basis;
    let price = match rates.to_usd(price.per_hour, &price.currency) {
        Ok(usd) => usd,
        Err(reason) => return Err(Error::OverBudget { budget, needed: None, reason: format!("the offer: {reason}") }),
    };
    let prepaid_hours = offer.prepaid_hours.unwrap_or(0.0);
    let prepaid = prepaid_hours * price;
    if let Some(ttl) = ttl {
        let hours = ttl.as_secs_f64() / 3600.0;
        let worst = prepaid + price * (hours - prepaid_hours).max(0.0);
        if worst > budget + 1e-9 {
            return Err(Error::OverBudget {
                budget,
                needed: Some(worst),
                reason: format!(
                    "${price:.2}/h ({basis}) for the {hours:.2} h lease (prepaid hours included) is ${worst:.2}"
                ),
            });
        }
        return Ok(Some(ttl));
    }
    if prepaid > budget + 1e-9 {
        return Err(Error::OverBudget {
            budget,
            needed: Some(prepaid),
            reason: format!("the offer charges ${prepaid:.2} up front for {prepaid_hours} prepaid hours ({basis})"),
        });
    }
    let hours = prepaid_hours + (budget - prepaid) / price;
    let lease = Duration::from_secs_f64((hours * 3600.0).min(crate::model::lease::MAX_TTL.as_secs_f64()));
    if lease < crate::model::lease::MIN_TTL {
        return Err(Error::OverBudget {
            budget,
            needed: Some(price * crate::model::lease::MIN_TTL.as_secs_f64() / 3600.0),
            reason: format!("${budget:.2} buys less than a second at ${price:.2}/h ({basis})"),
        });
    }
    Ok(Some(lease))
}

/// What `pod` counts for in the burn, per hour in its own currency: nothing once it is ending
/// or ended; its running rate while it is not stopped (a pod provisioning or starting bills its
/// running rate seconds later); its stopped rate while stopped. `None`: the pod reports no rate
/// for that.
pub fn burn_rate(pod: &Pod) -> Option<f64> {
    match pod.status {
        PodStatus::Terminated | PodStatus::Terminating => Some(0.0),
        PodStatus::Stopped => pod.price_now_per_hour,
        _ => pod.price_per_hour,
    }
}

/// How long a pod this fleet created (or started) is counted from then at the rate it was
/// checked at, if a list shows it lower or not at all: long enough for a lagging list to catch
/// up (seconds, in practice), short enough that a pod terminated elsewhere, and so gone from the
/// lists, soon stops counting. Pods this fleet terminates stop counting at once
/// ([`BurnCap::forget`]).
const UNLISTED_GRACE: Duration = Duration::from_secs(60);

/// The fleet's burn cap and what it knows that the providers' lists may not show yet.
#[derive(Debug, Default)]
pub(crate) struct BurnCap {
    cap: Option<f64>,
    rates: ExchangeRates,
    /// Held across one launch's check and create.
    serial: tokio::sync::Mutex<()>,
    /// Pods this fleet created or started: id, USD rate, when.
    created: Mutex<Vec<(PodId, f64, Instant)>>,
    /// The currency of pods this fleet created from offers not in USD (PrimeIntellect's pod
    /// record names none).
    currencies: Mutex<BTreeMap<PodId, String>>,
    /// The file shared with other processes (see the module documentation).
    ledger: Option<PathBuf>,
}

impl BurnCap {
    pub(crate) fn new(cap: Option<f64>, rates: ExchangeRates, ledger: Option<PathBuf>) -> Self {
        Self { cap, rates, ledger, ..Self::default() }
    }

    pub(crate) fn ledger(&self) -> Option<&PathBuf> {
        self.ledger.as_ref()
    }

    pub(crate) fn cap(&self) -> Option<f64> {
        self.cap
    }

    pub(crate) fn rates(&self) -> &ExchangeRates {
        &self.rates
    }

    /// Runs `create` (a create or a start, on `provider`) if the current burn of `watched` plus
    /// `price` stays within the cap (always, without a cap), and remembers what it created.
    pub(crate) async fn guarded<T>(
        &self,
        watched: &[Arc<dyn Provisioner>],
        provider: Provider,
        price: &Price,
        create: impl std::future::Future<Output = Result<(T, PodId)>>,
    ) -> Result<T> {
        let Some(cap) = self.cap else { return create.await.map(|(value, _)| value) };
        let offer = self.rates.to_usd(price.per_hour, &price.currency).map_err(|reason| Error::BurnUnknown {
            provider,
            reason: format!("the offer at {} {:.2}/h ({}): {reason}", price.currency, price.per_hour, price.basis),
        })?;
        let _serial = self.serial.lock().await;
        let ledger = match &self.ledger {
            Some(path) => Some(SharedLedger::lock(path, provider).await?),
            None => None,
        };
        let shared = ledger.as_ref().map(SharedLedger::recent).unwrap_or_default();
        let current = self.current_burn(watched, &shared).await?;
        if current + offer > cap + 1e-9 {
            return Err(Error::BurnCapExceeded { cap, current, offer });
        }
        let (value, id) = create.await?;
        if let Some(ledger) = &ledger
            && let Err(e) = ledger.record(&id, offer)
        {
            tracing::warn!(pod = %id, error = %e, "the burn ledger could not record a create");
        }
        if !price.currency.eq_ignore_ascii_case("USD") {
            self.currencies.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone(), price.currency.clone());
        }
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.retain(|(known, ..)| known != &id);
        created.push((id, offer, Instant::now()));
        Ok(value)
    }

    /// [`BurnCap::guarded`] for a create that starts several pods at `price` together (a
    /// cluster): each pod it reports is remembered at its share; with none reported yet,
    /// `placeholder` is remembered at the whole price until a list shows the pods or the fleet
    /// forgets it.
    pub(crate) async fn guarded_many<T>(
        &self,
        watched: &[Arc<dyn Provisioner>],
        provider: Provider,
        price: &Price,
        create: impl std::future::Future<Output = Result<(T, Vec<PodId>, PodId)>>,
    ) -> Result<T> {
        let Some(cap) = self.cap else { return create.await.map(|(value, ..)| value) };
        let offer = self.rates.to_usd(price.per_hour, &price.currency).map_err(|reason| Error::BurnUnknown {
            provider,
            reason: format!("the offer at {} {:.2}/h ({}): {reason}", price.currency, price.per_hour, price.basis),
        })?;
        let _serial = self.serial.lock().await;
        let ledger = match &self.ledger {
            Some(path) => Some(SharedLedger::lock(path, provider).await?),
            None => None,
        };
        let shared = ledger.as_ref().map(SharedLedger::recent).unwrap_or_default();
        let current = self.current_burn(watched, &shared).await?;
        if current + offer > cap + 1e-9 {
            return Err(Error::BurnCapExceeded { cap, current, offer });
        }
        let (value, ids, placeholder) = create.await?;
        let remembered: Vec<(PodId, f64)> = if ids.is_empty() {
            vec![(placeholder, offer)]
        } else {
            let share = offer / ids.len() as f64;
            ids.into_iter().map(|id| (id, share)).collect()
        };
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        for (id, rate) in remembered {
            if let Some(ledger) = &ledger
                && let Err(e) = ledger.record(&id, rate)
            {
                tracing::warn!(pod = %id, error = %e, "the burn ledger could not record a create");
            }
            created.retain(|(known, ..)| known != &id);
            created.push((id, rate, Instant::now()));
        }
        Ok(value)
    }

    /// Stops counting `id`: the fleet terminated it.
    pub(crate) fn forget(&self, id: &PodId) {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).retain(|(created, ..)| created != id);
        self.currencies.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        if let Some(path) = &self.ledger {
            // Best effort, never waiting: a pod left in the ledger counts for a minute at most.
            SharedLedger::forget(path, id);
        }
    }

    /// What every pod of `watched` will bill per hour, in USD; `shared` is what other processes
    /// created in the last minute (id, USD rate).
    async fn current_burn(&self, watched: &[Arc<dyn Provisioner>], shared: &[(String, f64)]) -> Result<f64> {
        use futures::TryStreamExt as _;
        let lists =
            watched.iter().map(|p| async move { (p.provider(), p.list_billing_pods().try_collect::<Vec<_>>().await) });
        let mut listed = Vec::new();
        for (provider, list) in futures::future::join_all(lists).await {
            let pods = list.map_err(|e| Error::BurnUnknown {
                provider,
                reason: format!("its pods cannot be read ({e}), so what they burn is unknown"),
            })?;
            listed.extend(pods);
        }
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.retain(|(_, _, at)| at.elapsed() < UNLISTED_GRACE);
        // Pods created lately (here or by another process), at the rate they were checked at.
        let mut remembered = BTreeMap::<String, f64>::new();
        for (id, rate) in created.iter().map(|(id, rate, _)| (id.to_string(), *rate)).chain(shared.iter().cloned()) {
            let known = remembered.entry(id).or_insert(0.0);
            *known = known.max(rate);
        }
        let currencies = self.currencies.lock().unwrap_or_else(|e| e.into_inner());
        let mut burn = 0.0;
        for pod in &listed {
            let rate = burn_rate(pod).ok_or_else(|| Error::BurnUnknown {
                provider: pod.provider,
                reason: format!("pod {} ({}) reports no hourly rate", pod.id, pod.status),
            })?;
            let currency = currencies.get(&pod.id).map_or("USD", String::as_str);
            let usd = self.rates.to_usd(rate, currency).map_err(|reason| Error::BurnUnknown {
                provider: pod.provider,
                reason: format!("pod {}: {reason}", pod.id),
            })?;
            // A pod created lately counts at least at the rate it was checked at: a lagging
            // list may still show it provisioning or stopped.
            let at_least = remembered.remove(&pod.id.to_string()).unwrap_or(0.0);
            let ending = matches!(pod.status, PodStatus::Terminated | PodStatus::Terminating);
            burn += if ending { 0.0 } else { usd.max(at_least) };
        }
        // What is left was not listed at all yet.
        burn += remembered.values().sum::<f64>();
        Ok(burn)
    }
}

/// How long [`SharedLedger::lock`] waits for another process's check and create.
const LEDGER_WAIT: Duration = Duration::from_secs(120);

/// The burn ledger shared by processes on one machine, locked (an exclusive advisory lock on
/// the file, released when dropped) across one check and create. Each line: pod id, USD per
/// hour, Unix seconds of the create.
struct SharedLedger {
    file: std::fs::File,
}

impl SharedLedger {
    async fn lock(path: &Path, provider: Provider) -> Result<Self> {
        let unknown = |reason: String| Error::BurnUnknown { provider, reason };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| unknown(format!("the burn ledger {} cannot be opened: {e}", path.display())))?;
        let deadline = Instant::now() + LEDGER_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(unknown(format!(
                        "another process has held the burn ledger {} for {} s",
                        path.display(),
                        LEDGER_WAIT.as_secs()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(unknown(format!("the burn ledger {} cannot be locked: {e}", path.display())));
                }
            }
        }
    }

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    /// The entries of the last [`UNLISTED_GRACE`]; a line that does not parse is skipped.
    fn recent(&self) -> Vec<(String, f64)> {
        self.entries().into_iter().map(|(id, rate, _)| (id, rate)).collect()
    }

    /// [`Self::recent`] with each entry's time.
    fn entries(&self) -> Vec<(String, f64, u64)> {
        use std::io::{Read as _, Seek as _};
        let mut text = String::new();
        let mut file = &self.file;
        if file.rewind().and_then(|()| file.read_to_string(&mut text)).is_err() {
            return Vec::new();
        }
        let now = Self::now();
        let since = now.saturating_sub(UNLISTED_GRACE.as_secs());
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let (id, rate, at) =
                    (fields.next()?, fields.next()?.parse::<f64>().ok()?, fields.next()?.parse::<u64>().ok()?);
                // A time ahead of now (a planted line, a clock set back) or a rate that is not
                // positive would skew the cap for as long as it lasted: ignored.
                (at >= since && at <= now + 60 && rate.is_finite() && rate > 0.0).then(|| (id.to_string(), rate, at))
            })
            .collect()
    }

    fn write(&self, entries: &[(String, f64, u64)]) -> std::io::Result<()> {
        use std::io::{Seek as _, Write as _};
        let mut file = &self.file;
        let text: String = entries.iter().map(|(id, rate, at)| format!("{id}\t{rate}\t{at}\n")).collect();
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(text.as_bytes())
    }

    fn record(&self, id: &PodId, usd_per_hour: f64) -> std::io::Result<()> {
        let mut entries = self.entries();
        entries.push((id.to_string(), usd_per_hour, Self::now()));
        self.write(&entries)
    }

    fn forget(path: &Path, id: &PodId) {
        let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(path) else { return };
        if file.try_lock().is_err() {
            return;
        }
        let ledger = Self { file };
        let id = id.to_string();
        let entries: Vec<_> = ledger.entries().into_iter().filter(|(known, ..)| known != &id).collect();
        let _ = ledger.write(&entries);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burn_ledger_counts_only_recent_positive_past_entries() {
        let path = std::env::temp_dir().join(format!("gpucloud-burn-ledger-test-{}", std::process::id()));
        let now = SharedLedger::now();
        let lines = [
            format!("runpod:a\t1.5\t{now}"),
            format!("runpod:old\t2\t{}", now - 3600),
            format!("runpod:future\t1000\t{}", now + 3600),
            format!("runpod:negative\t-1000\t{now}"),
            "not a line".to_string(),
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let ledger = SharedLedger { file: std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap() };
        assert_eq!(ledger.recent(), [("runpod:a".to_string(), 1.5)]);
        let _ = std::fs::remove_file(&path);
    }

    fn offer(price: f64, currency: &str, prepaid_hours: Option<f64>) -> Offer {
        let mut offer = crate::providers::validate::tests::offer();
        offer.price_per_hour = price;
        offer.currency = currency.into();
        offer.prepaid_hours = prepaid_hours;
        offer
    }

    fn at(offer: &Offer, per_hour: f64) -> Price {
        Price::of(offer, per_hour, "the offer's price")
    }

    #[test]
    fn a_budget_checks_a_lease_or_sets_one() {
        let hour = Duration::from_secs(3600);
        let rates = ExchangeRates::default();
        let h100 = offer(2.0, "USD", None);
        assert_eq!(lease_for_budget(10.0, Some(5 * hour), &h100, &at(&h100, 2.0), &rates).unwrap(), Some(5 * hour));
        let over = lease_for_budget(10.0, Some(6 * hour), &h100, &at(&h100, 2.0), &rates).unwrap_err();
        assert!(matches!(over, Error::OverBudget { needed: Some(n), .. } if (n - 12.0).abs() < 1e-9), "{over}");
        assert!(over.to_string().contains("the offer's price"), "the error says which price: {over}");
        // Without a TTL, $10 at $2/h is a 5 h lease.
        assert_eq!(lease_for_budget(10.0, None, &h100, &at(&h100, 2.0), &rates).unwrap(), Some(5 * hour));
        // Prepaid: 24 h charged up front is $48; $50 buys one more hour.
        let prepaid = offer(2.0, "USD", Some(24.0));
        assert!(lease_for_budget(40.0, None, &prepaid, &at(&prepaid, 2.0), &rates).is_err());
        assert_eq!(lease_for_budget(50.0, None, &prepaid, &at(&prepaid, 2.0), &rates).unwrap(), Some(25 * hour));
        assert!(
            lease_for_budget(47.0, Some(hour), &prepaid, &at(&prepaid, 2.0), &rates).is_err(),
            "prepaid hours are charged whatever the lease"
        );
        // Euros are never compared with dollars without a rate; with one they are converted.
        let euros = offer(1.0, "EUR", None);
        assert!(lease_for_budget(1000.0, None, &euros, &at(&euros, 1.0), &rates).is_err());
        let mut rates = ExchangeRates::default();
        rates.set("eur", 1.5);
        assert_eq!(lease_for_budget(3.0, None, &euros, &at(&euros, 1.0), &rates).unwrap(), Some(2 * hour));
    }

    #[tokio::test]
    async fn a_capped_create_in_another_currency_needs_a_rate() {
        let euros = offer(1.79, "EUR", None);
        let price = at(&euros, 1.79);
        let created = || async { Ok(((), PodId::new(Provider::PrimeIntellect, "p1"))) };
        let blind = BurnCap::new(Some(10.0), ExchangeRates::default(), None);
        let error = blind.guarded(&[], Provider::PrimeIntellect, &price, created()).await.unwrap_err();
        assert!(matches!(&error, Error::BurnUnknown { provider: Provider::PrimeIntellect, .. }), "{error}");
        assert!(error.to_string().contains("EUR"), "{error}");
        let mut rates = ExchangeRates::default();
        rates.set("EUR", 2.0);
        let tight = BurnCap::new(Some(3.0), rates.clone(), None);
        let error = tight.guarded(&[], Provider::PrimeIntellect, &price, created()).await.unwrap_err();
        assert!(matches!(error, Error::BurnCapExceeded { offer, .. } if (offer - 3.58).abs() < 1e-9), "converted");
        let roomy = BurnCap::new(Some(4.0), rates, None);
        roomy.guarded(&[], Provider::PrimeIntellect, &price, created()).await.unwrap();
        // The pod it created counts, in dollars, until a list shows it.
        let error = roomy.guarded(&[], Provider::PrimeIntellect, &price, created()).await.unwrap_err();
        assert!(matches!(error, Error::BurnCapExceeded { current, .. } if (current - 3.58).abs() < 1e-9));
    }

    #[test]
    fn exchange_rates_must_be_positive() {
        let mut rates = ExchangeRates::default();
        rates.set("EUR", 0.0);
        assert!(matches!(rates.validate(), Err(Error::InvalidInput { field: "exchange_rate", .. })));
        rates.set("EUR", f64::NAN);
        assert!(rates.validate().is_err());
        rates.set("EUR", 1.08);
        assert!(rates.validate().is_ok());
    }
}
