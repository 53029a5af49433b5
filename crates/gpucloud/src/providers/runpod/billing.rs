//! RunPod's billing read: `GET /v2/billing/pods` and `GET /v2/billing/network-volumes` for
//! [`Provisioner::billing`](crate::Provisioner::billing).

use crate::model::billing::{Basis, Billable, CostEntry, HOURLY_UP_TO, parse_billed_time};
use crate::model::error::Result;
use crate::model::ids::Provider;
use chrono::{DateTime, Utc};

/// One record as RunPod billed it: what, its id, its bucket's start and end, the amount.
type Bucketed = (Billable, String, DateTime<Utc>, DateTime<Utc>, f64);

/// The bucket size for a window.
fn bucket_for(since: DateTime<Utc>, until: DateTime<Utc>) -> chrono::Duration {
    if (until - since).to_std().is_ok_and(|span| span <= HOURLY_UP_TO) {
        chrono::Duration::hours(1)
    } else {
        chrono::Duration::days(1)
    }
}

/// `t` snapped down to a multiple of `bucket` since the epoch: for hours and days, the hour or
/// the UTC midnight it lies in, as RunPod's buckets are.
fn floor_to(t: DateTime<Utc>, bucket: chrono::Duration) -> DateTime<Utc> {
    let step = bucket.num_seconds().max(1);
    DateTime::from_timestamp(t.timestamp().div_euclid(step) * step, 0).unwrap_or(t)
}

/// RunPod's billing in `[since, until)`: pods, network volumes and clusters itemised, and the
/// rest of the account-wide total (serverless, public endpoints, whatever RunPod adds) as one
/// [`Billable::Other`] amount per bucket.
///
/// The window is sent aligned to bucket boundaries (`BillingStartTime`: "Snapped down to the
/// start of its bucketSize bucket … provide a boundary-aligned value … to avoid widening"), and
/// each record is clipped back to `[since, until)`: a bucket the window's edge cuts counts by the
/// share of its billed time inside the window, and says so ([`CostEntry::share_of`]). The bucket
/// in progress is billed up to the read (its record's end is clipped to now), so a window ending
/// now takes all of it.
pub(crate) async fn read(client: &crate::RunPod, since: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<CostEntry>> {
    use crate::transport::retry::Safety;
    let (caller, raw) = (client.caller(), client.raw());
    let size = bucket_for(since, until);
    let bucket =
        runpod_api::types::BillingBucketSize(if size == chrono::Duration::hours(1) { "hour" } else { "day" }.into());
    let aligned_end = {
        let floor = floor_to(until, size);
        if floor == until { until } else { floor + size }
    };
    let start = floor_to(since, size).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = aligned_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
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
    let clusters = caller.call("list_cluster_billing", Safety::Idempotent, || {
        raw.list_cluster_billing().start_time(start.clone()).end_time(end.clone()).bucket_size(bucket.clone()).send()
    });
    let account = caller.call("list_billing", Safety::Idempotent, || {
        raw.list_billing().start_time(start.clone()).end_time(end.clone()).bucket_size(bucket.clone()).send()
    });
    let (pods, volumes, clusters, account) = futures::try_join!(pods, volumes, clusters, account)?;
    let provider = Provider::RunPod;
    let now = Utc::now();
    // Whole buckets as RunPod billed them: (what, id, start, end, amount).
    let mut billed: Vec<Bucketed> = Vec::new();
    let time = |operation, text: &str| parse_billed_time(provider, operation, text);
    for r in pods.records {
        let operation = "list_pod_billing";
        billed.push((
            Billable::Pod,
            r.pod_id,
            time(operation, &r.start_time)?,
            time(operation, &r.end_time)?,
            r.total_amount,
        ));
    }
    for r in volumes.records {
        let operation = "list_network_volume_billing";
        let (from, to) = (time(operation, &r.start_time)?, time(operation, &r.end_time)?);
        billed.push((Billable::Volume, r.network_volume_id, from, to, r.total_amount));
    }
    for r in clusters.records {
        let operation = "list_cluster_billing";
        let (from, to) = (time(operation, &r.start_time)?, time(operation, &r.end_time)?);
        billed.push((Billable::Cluster, r.cluster_id, from, to, r.total_amount));
    }
    // "Time-bucketed total spend across all billable Runpod resources": what the itemised reads
    // do not cover is the rest (serverless, endpoints), one amount per bucket.
    for r in account.records {
        let operation = "list_billing";
        let (from, to) = (time(operation, &r.start_time)?, time(operation, &r.end_time)?);
        let itemised: f64 = billed.iter().filter(|b| b.2 == from && b.3 == to).map(|b| b.4).sum();
        let rest = r.total_amount - itemised;
        // Sub-cent differences are the sums' rounding, not spend.
        if rest > 0.005 {
            billed.push((Billable::Other, "other".into(), from, to, rest));
        }
    }
    let mut entries = Vec::new();
    for (billable, id, from, to, usd) in billed {
        // The bucket in progress is billed up to the read.
        let billed_to = to.min(now).max(from);
        let (clip_from, clip_to) = (from.max(since), billed_to.min(until));
        if clip_to <= clip_from && !(from == billed_to && from >= since && from < until) {
            continue;
        }
        let length = (billed_to - from).num_microseconds().unwrap_or(i64::MAX) as f64;
        let inside = (clip_to - clip_from).num_microseconds().unwrap_or(0) as f64;
        let whole = clip_from == from && clip_to == billed_to;
        let share = if whole || length <= 0.0 { 1.0 } else { inside / length };
        entries.push(CostEntry {
            provider,
            billable,
            id,
            name: None,
            start: clip_from,
            end: if whole { to } else { clip_to },
            usd: usd * share,
            basis: Basis::Billed,
            share_of: (!whole).then_some((from, to)),
        });
    }
    Ok(entries)
}
