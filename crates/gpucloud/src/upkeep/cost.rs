//! What was spent in a window: [`crate::Fleet::costs`] reads what each provider billed in it and
//! adds, marked as an estimate, what running pods and live disks have accrued since.
//!
//! - **RunPod** ([`crate::providers::runpod`]'s billing read): `GET /v2/billing/pods`,
//!   `/network-volumes` and `/clusters` itemised, and the rest of the account-wide total
//!   (`GET /v2/billing`: serverless, public endpoints) as [`Billable::Other`]. Hourly buckets for
//!   windows up to [`HOURLY_UP_TO`], daily beyond; the window is sent aligned to bucket
//!   boundaries and each record clipped back to it, a cut bucket counting by its share of time
//!   ([`CostEntry::share_of`] names the bucket). Amounts are USD, as the document says. A running
//!   pod whose last record ends before now gets `price × (now − that end)` as an estimate; the
//!   in-progress bucket is taken to be billed up to the read.
//! - **PrimeIntellect** ([`crate::providers::primeintellect`]'s billing read):
//!   `GET /api/v1/pods/history`, whose records are ended resources, labelled by their `type`, with
//!   `totalBilledPrice` over the whole life: each counts by the share of its life inside the
//!   window, per UTC day ([`CostEntry::share_of`] names the life). Live disks accrue `priceHr` ×
//!   time ("billed continuously from creation until termination"), estimated. The history carries
//!   no currency: its amounts are read as USD, PrimeIntellect's default. A running pod is not in
//!   the history: it is estimated at `price × time running within the window`.
//! - A running pod the report cannot price (no price reported, or no creation time) is listed in
//!   [`CostReport::unpriced`], never counted as zero.
//!
//! A provider whose billing cannot be read fails the report (an error naming it): a total that
//! silently leaves a provider out would understate what was spent.

use crate::model::error::{Error, Result};
use crate::model::{Pod, PodStatus, Provider};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

pub use crate::model::billing::{Basis, Billable, CostEntry, HOURLY_UP_TO};

/// A running pod the report could not price.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unpriced {
    /// `provider:id`.
    pub id: crate::PodId,
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Totals of a group of entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    /// What the providers billed.
    pub billed_usd: f64,
    /// What running pods accrued since, estimated.
    pub estimated_usd: f64,
}

impl Totals {
    /// Billed plus estimated.
    pub fn total_usd(&self) -> f64 {
        self.billed_usd + self.estimated_usd
    }

    fn add(&mut self, entry: &CostEntry) {
        match entry.basis {
            Basis::Billed => self.billed_usd += entry.usd,
            Basis::Estimate => self.estimated_usd += entry.usd,
        }
    }
}

/// How [`CostReport::group`] groups entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Per cloud.
    Provider,
    /// Per pod or volume (`provider:id`).
    Resource,
    /// Per UTC day an entry starts in.
    Day,
}

/// What [`crate::Fleet::costs`] found. See the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    /// Start of the window asked for.
    pub since: DateTime<Utc>,
    /// End of the window asked for.
    pub until: DateTime<Utc>,
    /// Every amount, billed and estimated.
    pub entries: Vec<CostEntry>,
    /// Running pods that could not be priced.
    pub unpriced: Vec<Unpriced>,
}

impl CostReport {
    /// Totals over every entry.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        self.entries.iter().for_each(|e| totals.add(e));
        totals
    }

    /// Totals per provider.
    pub fn by_provider(&self) -> BTreeMap<Provider, Totals> {
        let mut by = BTreeMap::new();
        for entry in &self.entries {
            by.entry(entry.provider).or_insert_with(Totals::default).add(entry);
        }
        by
    }

    /// Totals per group, keyed by `provider`, `provider:id` or `YYYY-MM-DD`, in key order.
    pub fn group(&self, by: GroupBy) -> Vec<(String, Totals)> {
        let mut groups: BTreeMap<String, Totals> = BTreeMap::new();
        for entry in &self.entries {
            let key = match by {
                GroupBy::Provider => entry.provider.to_string(),
                GroupBy::Resource => format!("{}:{}", entry.provider, entry.id),
                GroupBy::Day => entry.start.format("%Y-%m-%d").to_string(),
            };
            groups.entry(key).or_default().add(entry);
        }
        groups.into_iter().collect()
    }

    /// What each of `pods` cost within the window (billed and estimated), for those the report
    /// has amounts for: e.g. the interrupted attempts of spot jobs
    /// (`gpucloud::jobs::JobRecords::interrupted`, feature `remote`).
    pub fn spent_on<'a>(&self, pods: impl IntoIterator<Item = &'a crate::PodId>) -> Vec<(crate::PodId, Totals)> {
        pods.into_iter()
            .filter_map(|pod| {
                let mut totals = Totals::default();
                let mut found = false;
                for entry in self.entries.iter().filter(|e| e.provider == pod.provider() && e.id == pod.id()) {
                    totals.add(entry);
                    found = true;
                }
                found.then(|| (pod.clone(), totals))
            })
            .collect()
    }
}

/// Checks a report window before any request.
pub(crate) fn check_window(since: DateTime<Utc>, until: DateTime<Utc>) -> Result<()> {
    if until <= since {
        return Err(Error::invalid("since", format!("{since} is not before the window's end {until}")));
    }
    Ok(())
}

/// What the report needs of a pod.
#[derive(Debug, Clone)]
pub(crate) struct PodView {
    pub id: crate::PodId,
    pub name: String,
    pub running: bool,
    pub price: Option<f64>,
    pub created: Option<DateTime<Utc>>,
}

impl From<&Pod> for PodView {
    fn from(pod: &Pod) -> Self {
        Self {
            id: pod.id.clone(),
            name: pod.name.clone(),
            // Billing runs from the create: a pod still provisioning or starting is billed too.
            running: matches!(pod.status, PodStatus::Running | PodStatus::Starting | PodStatus::Provisioning),
            price: pod.price_per_hour,
            created: pod.created_at,
        }
    }
}

/// The estimate for a running `pod` from `billed_until` (or its creation, or the window's start,
/// whichever is latest) to the end of the window or now; `Err` with the reason when it cannot be
/// priced.
fn accrued(
    pod: &PodView,
    billed_until: Option<DateTime<Utc>>,
    window: (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> std::result::Result<Option<CostEntry>, String> {
    if !pod.running {
        return Ok(None);
    }
    let price = pod.price.ok_or("the provider reports no price for it")?;
    let created = pod.created.ok_or("the provider reports no creation time for it")?;
    let start = [window.0, created].into_iter().chain(billed_until).max().unwrap_or(window.0);
    let end = window.1.min(now);
    if end <= start {
        return Ok(None);
    }
    let hours = (end - start).num_milliseconds() as f64 / 3.6e6;
    Ok(Some(CostEntry {
        provider: pod.id.provider(),
        billable: Billable::Pod,
        id: pod.id.id().to_string(),
        name: Some(pod.name.clone()),
        start,
        end,
        usd: price * hours,
        basis: Basis::Estimate,
        share_of: None,
    }))
}

/// The whole report from each provider's billed entries and pods.
pub(crate) fn assemble(
    window: (DateTime<Utc>, DateTime<Utc>),
    billed: Vec<CostEntry>,
    pods: &[PodView],
    now: DateTime<Utc>,
) -> CostReport {
    let mut report = CostReport { since: window.0, until: window.1, entries: Vec::new(), unpriced: Vec::new() };
    let names: BTreeMap<(Provider, &str), &str> =
        pods.iter().map(|p| ((p.id.provider(), p.id.id()), p.name.as_str())).collect();
    let mut billed_until: BTreeMap<(Provider, String), DateTime<Utc>> = BTreeMap::new();
    for entry in billed.iter().filter(|e| e.billable == Billable::Pod) {
        let end = entry.end.min(now);
        let until = billed_until.entry((entry.provider, entry.id.clone())).or_insert(end);
        *until = (*until).max(end);
    }
    for mut entry in billed {
        if entry.name.is_none() {
            entry.name = names.get(&(entry.provider, entry.id.as_str())).map(|n| n.to_string());
        }
        report.entries.push(entry);
    }
    for pod in pods {
        let last = billed_until.get(&(pod.id.provider(), pod.id.id().to_string())).copied();
        match accrued(pod, last, window, now) {
            Ok(Some(entry)) => report.entries.push(entry),
            Ok(None) => {}
            Err(reason) => report.unpriced.push(Unpriced { id: pod.id.clone(), name: pod.name.clone(), reason }),
        }
    }
    report.entries.sort_by(|a, b| (a.start, a.provider, &a.id).cmp(&(b.start, b.provider, &b.id)));
    report
}

impl crate::Fleet {
    /// What every provider billed between `since` and `until`, plus what running pods have
    /// accrued since their last billed record (marked [`Basis::Estimate`]). See [`crate::upkeep::cost`]
    /// for what each provider reports and how.
    ///
    /// Errors: [`Error::InvalidInput`] naming `since` when the window is empty (before any
    /// request); a provider's error when its billing or pods cannot be read.
    pub async fn costs(&self, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<CostReport> {
        check_window(since, until)?;
        let reads = self.provisioners().iter().map(|p| async move {
            use futures::TryStreamExt as _;
            let (billed, pods) = futures::try_join!(p.billing(since, until), p.list().try_collect::<Vec<_>>())?;
            Ok::<_, Error>((billed, pods))
        });
        let mut billed = Vec::new();
        let mut pods = Vec::new();
        for read in futures::future::try_join_all(reads).await? {
            billed.extend(read.0);
            pods.extend(read.1);
        }
        let pods: Vec<PodView> = pods.iter().map(PodView::from).collect();
        Ok(assemble((since, until), billed, &pods, Utc::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PodId;

    fn at(text: &str) -> DateTime<Utc> {
        crate::model::time::parse_timestamp(text).unwrap()
    }

    fn running_pod(price: Option<f64>, created: Option<&str>) -> PodView {
        PodView {
            id: PodId::new(Provider::RunPod, "abc"),
            name: "job".into(),
            running: true,
            price,
            created: created.map(at),
        }
    }

    #[test]
    fn a_running_pod_accrues_from_its_last_billed_record_to_the_window_end() {
        let now = at("2026-06-01T12:00:00Z");
        let window = (at("2026-06-01T00:00:00Z"), at("2026-06-02T00:00:00Z"));
        let pod = running_pod(Some(2.0), Some("2026-06-01T08:00:00Z"));
        let billed = vec![CostEntry {
            provider: Provider::RunPod,
            billable: Billable::Pod,
            id: "abc".into(),
            name: None,
            start: at("2026-06-01T08:00:00Z"),
            end: at("2026-06-01T10:00:00Z"),
            usd: 4.0,
            basis: Basis::Billed,
            share_of: None,
        }];
        let report = assemble(window, billed, &[pod], now);
        let totals = report.totals();
        assert_eq!(totals.billed_usd, 4.0);
        // 10:00 to now (12:00) at $2/h: the window's end is in the future.
        assert!((totals.estimated_usd - 4.0).abs() < 1e-9, "{totals:?}");
        assert_eq!(report.entries[0].name.as_deref(), Some("job"), "the billed record is named from the pod list");
    }

    #[test]
    fn a_bucket_billed_to_now_adds_no_estimate_and_an_unpriced_pod_is_listed() {
        let now = at("2026-06-01T12:30:00Z");
        let window = (at("2026-06-01T00:00:00Z"), now);
        let in_progress = CostEntry {
            provider: Provider::RunPod,
            billable: Billable::Pod,
            id: "abc".into(),
            name: None,
            start: at("2026-06-01T12:00:00Z"),
            end: at("2026-06-01T13:00:00Z"),
            usd: 1.0,
            basis: Basis::Billed,
            share_of: None,
        };
        let mut unpriced = running_pod(None, Some("2026-06-01T08:00:00Z"));
        unpriced.id = PodId::new(Provider::RunPod, "def");
        let report =
            assemble(window, vec![in_progress], &[running_pod(Some(2.0), Some("2026-06-01T08:00:00Z")), unpriced], now);
        assert_eq!(report.totals().estimated_usd, 0.0);
        assert_eq!(report.unpriced.len(), 1);
        assert_eq!(report.unpriced[0].id.id(), "def");
        assert!(report.unpriced[0].reason.contains("no price"));
    }

    #[test]
    fn groups_add_up_to_the_totals() {
        let now = at("2026-06-03T00:00:00Z");
        let entry = |provider, id: &str, start: &str, usd| CostEntry {
            provider,
            billable: Billable::Pod,
            id: id.into(),
            name: None,
            start: at(start),
            end: at(start) + chrono::Duration::hours(1),
            usd,
            basis: Basis::Billed,
            share_of: None,
        };
        let billed = vec![
            entry(Provider::RunPod, "a", "2026-06-01T01:00:00Z", 1.25),
            entry(Provider::RunPod, "a", "2026-06-02T01:00:00Z", 2.5),
            entry(Provider::PrimeIntellect, "b", "2026-06-02T05:00:00Z", 4.0),
        ];
        let report = assemble((at("2026-06-01T00:00:00Z"), now), billed, &[], now);
        let days = report.group(GroupBy::Day);
        assert_eq!(days.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["2026-06-01", "2026-06-02"]);
        assert_eq!(days[1].1.billed_usd, 6.5);
        assert_eq!(report.by_provider()[&Provider::RunPod].billed_usd, 3.75);
        assert_eq!(report.group(GroupBy::Resource).len(), 2);
        assert_eq!(report.totals().total_usd(), 7.75);
    }

    #[test]
    fn an_empty_window_is_refused_naming_since() {
        let t = at("2026-06-01T00:00:00Z");
        let error = check_window(t, t).unwrap_err();
        assert!(error.to_string().contains("since"), "{error}");
    }
}
