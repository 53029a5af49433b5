//! Spending limits a launch checks before any create: a budget per launch, and a cap on what
//! all running pods of the fleet's providers burn per hour.
//!
//! **Budget** ([`crate::LaunchRequest::budget_usd`]): with a TTL, an offer whose worst case
//! (prepaid charge, then the hourly price for the rest of the TTL) exceeds the budget is not
//! tried; without one, the budget *sets* the lease: prepaid hours plus what the rest buys at the
//! offer's price, so the reaper ([`crate::Fleet::reap`]) enforces it from the pod's name alone.
//! When no offer fits, the launch is [`Error::OverBudget`], and nothing was created.
//!
//! **Burn cap** ([`crate::Fleet::with_max_burn`]): before each create the fleet lists every pod
//! of its providers (those other processes started too), sums their current rates
//! ([`crate::Pod::price_per_hour`]: RunPod's `cost`, 0 when stopped; PrimeIntellect's rate per
//! status), adds the pods this fleet created that a lagging list does not show yet, and refuses
//! a create that would pass the cap ([`Error::BurnCapExceeded`], naming the burn, the offer's
//! price and the cap). A provider that cannot be listed refuses the create too: an unknown burn
//! is not under the cap. Within one `Fleet` the check and the create are serialized, so its own
//! concurrent launches cannot pass the cap together; separate processes can race by one create.
//!
//! Both limits are in US dollars: an offer priced in another currency is never compared with
//! them (it is skipped, and said so), and neither are pods whose rate the provider does not
//! report.

use crate::model::error::{Error, Result};
use crate::model::{Offer, PodId, PodStatus};
use crate::providers::provisioner::Provisioner;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease a budget allows on `offer` at `price` USD per hour, or why it allows none.
/// `ttl`: the caller's own lease, checked against the budget instead.
pub(crate) fn lease_for_budget(
    budget: f64,
    ttl: Option<Duration>,
    offer: &Offer,
    price: f64,
) -> Result<Option<Duration>> {
    if !offer.is_usd() {
        return Err(Error::OverBudget {
            budget,
            needed: None,
            reason: format!("the offer is priced in {}, which a USD budget cannot be compared with", offer.currency),
        });
    }
    let prepaid_hours = offer.prepaid_hours.unwrap_or(0.0);
    let prepaid = prepaid_hours * price;
    if let Some(ttl) = ttl {
        let hours = ttl.as_secs_f64() / 3600.0;
        let worst = prepaid + price * (hours - prepaid_hours).max(0.0);
        if worst > budget + 1e-9 {
            return Err(Error::OverBudget {
                budget,
                needed: Some(worst),
                reason: format!("${price:.2}/h for the {hours:.2} h lease (prepaid hours included) is ${worst:.2}"),
            });
        }
        return Ok(Some(ttl));
    }
    if prepaid > budget + 1e-9 {
        return Err(Error::OverBudget {
            budget,
            needed: Some(prepaid),
            reason: format!("the offer charges ${prepaid:.2} up front for {prepaid_hours} prepaid hours"),
        });
    }
    let hours = prepaid_hours + (budget - prepaid) / price;
    let lease = Duration::from_secs_f64((hours * 3600.0).min(crate::model::lease::MAX_TTL.as_secs_f64()));
    if lease < crate::model::lease::MIN_TTL {
        return Err(Error::OverBudget {
            budget,
            needed: Some(price * crate::model::lease::MIN_TTL.as_secs_f64() / 3600.0),
            reason: format!("${budget:.2} buys less than a second at ${price:.2}/h"),
        });
    }
    Ok(Some(lease))
}

/// How long a pod this fleet created is counted from its create, if a list does not show it:
/// long enough for a lagging list to catch up (seconds, in practice), short enough that a pod
/// terminated elsewhere, and so gone from the lists, soon stops counting. Pods this fleet
/// terminates stop counting at once ([`BurnCap::forget`]).
const UNLISTED_GRACE: Duration = Duration::from_secs(60);

/// The fleet's burn cap and what it knows that the providers' lists may not show yet.
#[derive(Debug, Default)]
pub(crate) struct BurnCap {
    cap: Option<f64>,
    /// Held across one launch's check and create.
    serial: tokio::sync::Mutex<()>,
    /// Pods this fleet created: id, rate, when.
    created: Mutex<Vec<(PodId, f64, Instant)>>,
}

impl BurnCap {
    pub(crate) fn new(cap: Option<f64>) -> Self {
        Self { cap, ..Self::default() }
    }

    pub(crate) fn cap(&self) -> Option<f64> {
        self.cap
    }

    /// Runs `create` if the current burn plus `price` stays within the cap (always, without a
    /// cap), and remembers what it created.
    pub(crate) async fn guarded<T>(
        &self,
        provisioners: &[Arc<dyn Provisioner>],
        price: f64,
        create: impl std::future::Future<Output = Result<(T, PodId)>>,
    ) -> Result<T> {
        let Some(cap) = self.cap else { return create.await.map(|(value, _)| value) };
        let _serial = self.serial.lock().await;
        let current = self.current_burn(provisioners).await?;
        if current + price > cap + 1e-9 {
            return Err(Error::BurnCapExceeded { cap, current, offer: price });
        }
        let (value, id) = create.await?;
        self.created.lock().unwrap_or_else(|e| e.into_inner()).push((id, price, Instant::now()));
        Ok(value)
    }

    /// Stops counting `id`: the fleet terminated it.
    pub(crate) fn forget(&self, id: &PodId) {
        self.created.lock().unwrap_or_else(|e| e.into_inner()).retain(|(created, ..)| created != id);
    }

    /// What every live pod of the providers burns per hour now, in USD.
    async fn current_burn(&self, provisioners: &[Arc<dyn Provisioner>]) -> Result<f64> {
        use futures::TryStreamExt as _;
        let lists = provisioners.iter().map(|p| async move { p.list().try_collect::<Vec<_>>().await });
        let mut listed = Vec::new();
        for list in futures::future::join_all(lists).await {
            listed.extend(list?);
        }
        let live = |status: &PodStatus| !matches!(status, PodStatus::Terminated | PodStatus::Terminating);
        let mut burn: f64 = listed.iter().filter(|p| live(&p.status)).filter_map(|p| p.price_per_hour).sum();
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.retain(|(_, _, at)| at.elapsed() < UNLISTED_GRACE);
        burn += created
            .iter()
            .filter(|(id, ..)| !listed.iter().any(|p| &p.id == id))
            .map(|(_, price, _)| price)
            .sum::<f64>();
        Ok(burn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(price: f64, currency: &str, prepaid_hours: Option<f64>) -> Offer {
        let mut offer = crate::providers::validate::tests::offer();
        offer.price_per_hour = price;
        offer.currency = currency.into();
        offer.prepaid_hours = prepaid_hours;
        offer
    }

    #[test]
    fn a_budget_checks_a_lease_or_sets_one() {
        let hour = Duration::from_secs(3600);
        let h100 = offer(2.0, "USD", None);
        assert_eq!(lease_for_budget(10.0, Some(5 * hour), &h100, 2.0).unwrap(), Some(5 * hour));
        let over = lease_for_budget(10.0, Some(6 * hour), &h100, 2.0).unwrap_err();
        assert!(matches!(over, Error::OverBudget { needed: Some(n), .. } if (n - 12.0).abs() < 1e-9), "{over}");
        // Without a TTL, $10 at $2/h is a 5 h lease.
        assert_eq!(lease_for_budget(10.0, None, &h100, 2.0).unwrap(), Some(5 * hour));
        // Prepaid: 24 h charged up front is $48; $50 buys one more hour.
        let prepaid = offer(2.0, "USD", Some(24.0));
        assert!(lease_for_budget(40.0, None, &prepaid, 2.0).is_err());
        assert_eq!(lease_for_budget(50.0, None, &prepaid, 2.0).unwrap(), Some(25 * hour));
        assert!(
            lease_for_budget(47.0, Some(hour), &prepaid, 2.0).is_err(),
            "prepaid hours are charged whatever the lease"
        );
        // Euros are never compared with dollars.
        assert!(lease_for_budget(1000.0, None, &offer(1.0, "EUR", None), 1.0).is_err());
    }
}
