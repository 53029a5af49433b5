//! RunPod's billing read: `GET /v2/billing/pods` and `GET /v2/billing/network-volumes` for
//! [`Provisioner::billing`](crate::Provisioner::billing).

use crate::model::billing::{Basis, Billable, CostEntry, HOURLY_UP_TO, parse_billed_time};
use crate::model::error::Result;
use crate::model::ids::Provider;
use chrono::{DateTime, Utc};

/// The bucket size for a window.
fn bucket_for(since: DateTime<Utc>, until: DateTime<Utc>) -> &'static str {
    if (until - since).to_std().is_ok_and(|span| span <= HOURLY_UP_TO) { "hour" } else { "day" }
}

/// RunPod's pod and network-volume billing in `[since, until)`.
pub(crate) async fn read(client: &crate::RunPod, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<CostEntry>> {
    use crate::transport::retry::Safety;
    let (caller, raw) = (client.caller(), client.raw());
    let bucket = runpod_api::types::BillingBucketSize(bucket_for(since, until).into());
    let start = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let pods = caller.call("list_pod_billing", Safety::Idempotent, || {
        raw.list_pod_billing().start_time(start.clone()).end_time(end.clone()).bucket_size(bucket.clone()).send()
    });
    let volumes = caller.call("list_network_volume_billing", Safety::Idempotent, || {
        raw.list_network_volume_billing()
            .start_time(start.clone())
            .end_time(end.clone())
            .bucket_size(bucket.clone())
            .send()
    });
    let (pods, volumes) = futures::try_join!(pods, volumes)?;
    let provider = Provider::RunPod;
    let entry = |billable, id: String, start: &str, end: &str, usd: f64, operation| -> Result<CostEntry> {
        Ok(CostEntry {
            provider,
            billable,
            id,
            name: None,
            start: parse_billed_time(provider, operation, start)?,
            end: parse_billed_time(provider, operation, end)?,
            usd,
            basis: Basis::Billed,
        })
    };
    let mut entries = Vec::new();
    for r in pods.records {
        entries.push(entry(Billable::Pod, r.pod_id, &r.start_time, &r.end_time, r.total_amount, "list_pod_billing")?);
    }
    for r in volumes.records {
        let operation = "list_network_volume_billing";
        entries.push(entry(
            Billable::Volume,
            r.network_volume_id,
            &r.start_time,
            &r.end_time,
            r.total_amount,
            operation,
        )?);
    }
    Ok(entries)
}
