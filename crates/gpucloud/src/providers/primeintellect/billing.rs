//! PrimeIntellect's billing read: `GET /api/v1/pods/history` for
//! [`Provisioner::billing`](crate::Provisioner::billing).

use crate::model::billing::{Basis, Billable, CostEntry, parse_billed_time, spread_by_day};
use crate::model::error::Result;
use crate::model::ids::Provider;
use chrono::{DateTime, Utc};

/// PrimeIntellect's history (`GET /api/v1/pods/history`): what each ended resource billed, as
/// its share of `[since, until)`.
///
/// A record's `totalBilledPrice` is "Total amount billed for this resource" over its whole life,
/// not per period, so it counts in the window by the share of its life inside the window
/// (`totalBilledPrice × overlap / life`), one entry per UTC day of the overlap, each marked with
/// the life it is a share of ([`CostEntry::share_of`]): a pod that ran 30 days counts 1/30 of its
/// bill per day, on the day it was spent. Each record is labelled by its `type` (`ResourceType`).
/// A page's total count is trusted only when positive: a missing one decodes as 0, which is not a
/// stop signal.
pub(crate) async fn read(
    client: &crate::PrimeIntellect,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<CostEntry>> {
    use crate::transport::retry::Safety;
    use futures::StreamExt as _;
    let provider = Provider::PrimeIntellect;
    let operation = "list_pods_history";
    let (caller, raw) = (client.caller().clone(), client.raw().clone());
    // Newest terminations first: once a whole page ended before `since`, no later page matters.
    let mut pages = crate::transport::paginate::pages(provider, operation, client.pagination(), move |req| {
        let (caller, raw) = (caller.clone(), raw.clone());
        async move {
            let page = caller
                .call(operation, Safety::Idempotent, || {
                    raw.list_pods_history().offset(req.offset() as i64).limit(req.size as i64).send()
                })
                .await?;
            // As every other PrimeIntellect page read: only a positive count is trusted.
            let total = u64::try_from(page.total_count).ok().filter(|n| *n > 0);
            Ok(crate::Page::new(page.data, total))
        }
    });
    let mut entries = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page?;
        let mut any_recent = false;
        for record in page.items {
            let start = parse_billed_time(provider, operation, &record.created_at)?;
            let end = match &record.terminated_at {
                Some(t) => parse_billed_time(provider, operation, t)?,
                None => Utc::now(),
            };
            any_recent |= end >= since;
            let billable = Billable::from_primeintellect_type(&record.type_.0);
            for (from, to, usd) in spread_by_day(record.total_billed_price, (start, end), (since, until)) {
                entries.push(CostEntry {
                    provider,
                    billable,
                    id: record.id.clone(),
                    name: Some(record.name.clone()),
                    start: from,
                    end: to,
                    usd,
                    basis: Basis::Billed,
                    share_of: Some((start, end)),
                });
            }
        }
        if !any_recent {
            break;
        }
    }
    entries.extend(live_disks(client, since, until).await?);
    Ok(entries)
}

/// What live disks accrued in `[since, until)`: "Disks are billed continuously from creation
/// until termination, regardless of whether they're attached to an instance" (Managing Disks),
/// at their `priceHr`, and a live disk is in no history. Each is `priceHr` × its time in the
/// window, per UTC day, marked [`Basis::Estimate`]; a disk without a price or creation time is
/// left out with a warning rather than counted as zero.
async fn live_disks(
    client: &crate::PrimeIntellect,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Vec<CostEntry>> {
    use crate::Provisioner as _;
    let now = Utc::now();
    let mut entries = Vec::new();
    for disk in client.list_volumes().await? {
        if matches!(disk.status.as_deref(), Some("TERMINATED" | "DELETING")) {
            continue;
        }
        let created = disk.raw["createdAt"].as_str().and_then(crate::model::time::parse_timestamp);
        let (Some(price), Some(created)) = (disk.price_per_hour, created) else {
            tracing::warn!(disk = %disk.id, "a PrimeIntellect disk reports no price or creation time: not in the report");
            continue;
        };
        let (from, to) = (created.max(since), until.min(now));
        if to <= from {
            continue;
        }
        let hours = (to - from).num_microseconds().unwrap_or(0) as f64 / 3.6e9;
        for (start, end, usd) in spread_by_day(price * hours, (from, to), (from, to)) {
            entries.push(CostEntry {
                provider: Provider::PrimeIntellect,
                billable: Billable::Volume,
                id: disk.id.clone(),
                name: Some(disk.name.clone()),
                start,
                end,
                usd,
                basis: Basis::Estimate,
                share_of: None,
            });
        }
    }
    Ok(entries)
}
