//! PrimeIntellect's billing read: `GET /api/v1/pods/history` for
//! [`Provisioner::billing`](crate::Provisioner::billing).

use crate::model::billing::{Basis, Billable, CostEntry, parse_billed_time};
use crate::model::error::Result;
use crate::model::ids::Provider;
use chrono::{DateTime, Utc};

/// PrimeIntellect's pod history: terminated pods whose life overlaps `[since, until)`.
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
            let total = u64::try_from(page.total_count).ok();
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
            if end < since || start >= until {
                continue;
            }
            entries.push(CostEntry {
                provider,
                billable: Billable::Pod,
                id: record.id,
                name: Some(record.name),
                start,
                end,
                usd: record.total_billed_price,
                basis: Basis::Billed,
            });
        }
        if !any_recent {
            break;
        }
    }
    Ok(entries)
}
