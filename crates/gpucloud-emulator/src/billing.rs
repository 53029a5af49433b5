//! What the emulator bills, and the two providers' billing reads over it.
//!
//! Each rule as the providers document it:
//!
//! - A pod bills its hourly price from its create while it runs, provisioning included: the
//!   emulated PrimeIntellect pod record leaves `provisioningPriceHr` out, and the document says
//!   "If empty then `priceHr` is used". A RunPod pod bills until stopped or terminated.
//! - A stopped RunPod pod bills its volume disk (`mounts.persistent.size`) at
//!   [`crate::RUNPOD_STOPPED_VOLUME_USD_PER_GB_MONTH`] ("Volume disk … $0.20/GB/month (stopped)", RunPod's
//!   storage page) and nothing for its container disk ("You only pay for the container disk when
//!   the pod is running"; it is "Lost on stop/restart"). Its `cost` is 0.0 "when EXITED": the API
//!   field is the compute rate. These amounts are the record's `diskAmount`; running time is
//!   `gpuAmount`.
//! - Every RunPod network volume bills its size at [`crate::RUNPOD_VOLUME_USD_PER_GB_MONTH`] from create
//!   to delete; every PrimeIntellect disk bills its `priceHr`
//!   ([`crate::PRIMEINTELLECT_DISK_USD_PER_GB_HOUR`] per GB) "continuously from creation until
//!   termination, regardless of whether they're attached to an instance" (Managing Disks).
//!
//! Each stretch is a [`crate::Charge`]: closed ones are kept, open ones are priced up to the moment of
//! the read.
//! [`crate::Emulator::charges`] returns them, so a test knows the numbers the reads must add up
//! to, and [`crate::Emulator::backdate`] makes a pod look as if it had run longer.
//!
//! - RunPod `GET /v2/billing/pods` and `/v2/billing/network-volumes`: records per resource per
//!   bucket of `bucketSize`, in the window the document resolves (`startTime` snapped down to its
//!   bucket, `endTime` exclusive and snapped up, `lastN` buckets ending with the current one,
//!   exclusive with the other two), with the document's `metadata`. The in-progress bucket is
//!   billed up to the read. `/v2/billing/clusters` answers the same per cluster: its members'
//!   running time is the cluster's `gpuAmount` (not in `/v2/billing/pods`; no disk or networking
//!   amounts). `/v2/billing/serverless` and `/endpoints` answer the same window with no records
//!   (the emulator runs no serverless), `/v2/billing` summing the pod, volume and cluster amounts.
//! - PrimeIntellect `GET /api/v1/pods/history`: terminated pods (`type` Instance) and deleted disks
//!   (`type` Disk) with `totalBilledPrice` (their charges' sum) and `priceHr`, sorted and paged as
//!   its parameters say, timestamps without a UTC offset as on every other PrimeIntellect route.

use crate::errors;
use crate::shared::Shared;
use crate::state::{Api, Charge, ChargeKind};
use crate::wire::{query_pairs, wire};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Datelike, Duration as Span, TimeZone, Timelike, Utc};
use serde_json::{Value, json};

pub(crate) fn runpod_routes() -> Router<Shared> {
    Router::new()
        .route("/v2/billing", get(account_billing))
        .route("/v2/billing/pods", get(pod_billing))
        .route("/v2/billing/network-volumes", get(volume_billing))
        .route(
            "/v2/billing/serverless",
            get(|q| {
                empty_billing(
                    q,
                    "serverlessId",
                    "uniqueServerlessCount",
                    &["gpuAmount", "cpuAmount", "diskAmount", "feeAmount"],
                )
            }),
        )
        .route("/v2/billing/endpoints", get(|q| empty_billing(q, "", "", &[])))
        .route("/v2/billing/clusters", get(cluster_billing))
}

pub(crate) fn primeintellect_routes() -> Router<Shared> {
    Router::new().route("/api/v1/pods/history", get(pod_history))
}

/// A bucket length (`BillingBucketSize`).
#[derive(Debug, Clone, Copy)]
enum Bucket {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Bucket {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "hour" => Self::Hour,
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            "year" => Self::Year,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// The start of the bucket `t` lies in (weeks start on Monday, UTC).
    fn floor(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let midnight = |y, m, d| Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).single().unwrap_or(t);
        match self {
            Self::Hour => Utc.with_ymd_and_hms(t.year(), t.month(), t.day(), t.hour(), 0, 0).single().unwrap_or(t),
            Self::Day => midnight(t.year(), t.month(), t.day()),
            Self::Week => {
                midnight(t.year(), t.month(), t.day()) - Span::days(i64::from(t.weekday().num_days_from_monday()))
            }
            Self::Month => midnight(t.year(), t.month(), 1),
            Self::Year => midnight(t.year(), 1, 1),
        }
    }

    /// The start of the bucket after the one starting at `start`.
    fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Hour => start + Span::hours(1),
            Self::Day => start + Span::days(1),
            Self::Week => start + Span::weeks(1),
            Self::Month => {
                let (y, m) =
                    if start.month() == 12 { (start.year() + 1, 1) } else { (start.year(), start.month() + 1) };
                Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0).single().unwrap_or(start)
            }
            Self::Year => Utc.with_ymd_and_hms(start.year() + 1, 1, 1, 0, 0, 0).single().unwrap_or(start),
        }
    }

    /// The end of the bucket `t` lies in, or `t` itself on a boundary.
    fn ceil(self, t: DateTime<Utc>) -> DateTime<Utc> {
        let floor = self.floor(t);
        if floor == t { t } else { self.next(floor) }
    }
}

/// The window and bucket a billing query resolves to, as the document's parameters describe.
struct Window {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    bucket: Bucket,
}

/// At most this many buckets in one answer: a year of hours (the document states no bound; an
/// unbounded `lastN` must not make the emulator build millions of records).
const MAX_BUCKETS: usize = 24 * 366;

/// Why a query is refused: status and detail.
type Refusal = (StatusCode, String);

fn refuse((status, detail): Refusal) -> Response {
    errors::runpod::problem(status, &detail)
}

fn resolve(pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Window, Refusal> {
    let bad = |detail: String| (StatusCode::BAD_REQUEST, detail);
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let bucket = match value("bucketSize") {
        None => Bucket::Day,
        Some(v) => Bucket::parse(v)
            .ok_or_else(|| bad(format!("bucketSize {v:?} is not one of hour, day, week, month, year")))?,
    };
    let time = |key: &str| -> Result<Option<DateTime<Utc>>, Refusal> {
        value(key)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    // Outside the parameter's `format: date-time`: the validation status.
                    .map_err(|_| (StatusCode::UNPROCESSABLE_ENTITY, format!("{key} {v:?} is not an RFC 3339 time")))
            })
            .transpose()
    };
    let (start, end) = (time("startTime")?, time("endTime")?);
    let window = if let Some(n) = value("lastN") {
        // "Mutually exclusive with startTime/endTime; provide one or the other, not both."
        if start.is_some() || end.is_some() {
            return Err(bad("lastN is mutually exclusive with startTime/endTime".into()));
        }
        let n: usize =
            n.parse().ok().filter(|n| *n >= 1).ok_or_else(|| bad(format!("lastN {n:?} must be at least 1")))?;
        if n > MAX_BUCKETS {
            return Err(bad(format!("lastN {n} is more buckets than the emulator answers ({MAX_BUCKETS})")));
        }
        let current = bucket.floor(now);
        let mut first = current;
        for _ in 1..n {
            first = bucket.floor(first - Span::seconds(1));
        }
        Window { start: first, end: bucket.next(current), bucket }
    } else {
        // Defaults: "30 days ago" and "now", snapped to bucket boundaries.
        let start = bucket.floor(start.unwrap_or(now - Span::days(30)));
        let end = bucket.ceil(end.unwrap_or(now));
        if end <= start {
            return Err(bad("endTime must be after startTime".into()));
        }
        Window { start, end, bucket }
    };
    let mut count = 0;
    let mut at = window.start;
    while at < window.end {
        count += 1;
        if count > MAX_BUCKETS {
            return Err(bad(format!("the window spans more than {MAX_BUCKETS} buckets of {}", window.bucket.name())));
        }
        at = window.bucket.next(at);
    }
    Ok(window)
}

fn rfc3339_millis(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One record's amounts: the route's main component and its second one (a pod's disk).
type Split = (f64, f64);

/// Per resource per bucket: `(bucket start, bucket end, id, (main, second))`, for charges of
/// `kinds.0` (main) and `kinds.1` (second) matching `filter`, ordered by bucket then id.
fn bucketed(
    charges: &[Charge],
    kinds: (ChargeKind, Option<ChargeKind>),
    filter: Option<&str>,
    window: &Window,
) -> Vec<(DateTime<Utc>, DateTime<Utc>, String, Split)> {
    let relevant: Vec<&Charge> = charges
        .iter()
        .filter(|c| (c.kind == kinds.0 || Some(c.kind) == kinds.1) && filter.is_none_or(|id| c.id == id))
        .filter(|c| c.end > window.start && c.start < window.end)
        .collect();
    let mut records = Vec::new();
    let mut at = window.start;
    while at < window.end {
        let next = window.bucket.next(at);
        let mut per_id: std::collections::BTreeMap<&str, Split> = Default::default();
        for charge in relevant.iter().filter(|c| c.end > at && c.start < next) {
            let split = per_id.entry(&charge.id).or_default();
            if charge.kind == kinds.0 {
                split.0 += charge.amount_within(at, next);
            } else {
                split.1 += charge.amount_within(at, next);
            }
        }
        records.extend(per_id.into_iter().map(|(id, split)| (at, next, id.to_string(), split)));
        at = next;
    }
    records
}

fn query_echo(window: &Window, filter_key: &str, filter: Option<&str>) -> Value {
    let mut query =
        json!({"startTime": rfc3339(window.start), "endTime": rfc3339(window.end), "bucketSize": window.bucket.name()});
    if !filter_key.is_empty() {
        query[filter_key] = json!(filter);
    }
    query
}

/// How one per-resource billing route names things: its filter parameter and record id key, its
/// metadata count key, and the amount split of a record (`kind` to `main`, `second`'s kind to its
/// key, the rest zero).
struct ResourceRoute {
    kind: ChargeKind,
    id_key: &'static str,
    unique_key: &'static str,
    main: &'static str,
    second: Option<(ChargeKind, &'static str)>,
    zero: &'static [&'static str],
}

const POD_ROUTE: ResourceRoute = ResourceRoute {
    kind: ChargeKind::Pod,
    id_key: "podId",
    unique_key: "uniquePodCount",
    main: "gpuAmount",
    // A stopped pod's volume disk: "Pod disk cost in USD for the bucket" (PodBillingAmounts).
    second: Some((ChargeKind::PodDisk, "diskAmount")),
    zero: &["cpuAmount"],
};

const VOLUME_ROUTE: ResourceRoute = ResourceRoute {
    kind: ChargeKind::Volume,
    id_key: "networkVolumeId",
    unique_key: "uniqueNetworkVolumeCount",
    main: "standardAmount",
    second: None,
    zero: &["highPerformanceAmount"],
};

impl ResourceRoute {
    fn amounts(&self, (main, second): Split) -> serde_json::Map<String, Value> {
        let mut fields = serde_json::Map::new();
        fields.insert("totalAmount".into(), json!(main + second));
        fields.insert(self.main.into(), json!(main));
        if let Some((_, key)) = self.second {
            fields.insert(key.into(), json!(second));
        }
        for key in self.zero {
            fields.insert((*key).into(), json!(0.0));
        }
        fields
    }

    /// The route's answer: records per resource per bucket, and the document's metadata.
    fn answer(&self, shared: &Shared, query: Option<String>) -> Result<Value, Refusal> {
        let pairs = query_pairs(query);
        let now = Utc::now();
        let window = resolve(&pairs, now)?;
        let filter = pairs.iter().find(|(k, _)| k == self.id_key).map(|(_, v)| v.as_str());
        let charges = shared.state().charges_until(Api::RunPod, now);
        let rows = bucketed(&charges, (self.kind, self.second.map(|(kind, _)| kind)), filter, &window);
        let unique: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.2.as_str()).collect();
        let total: Split = rows.iter().fold((0.0, 0.0), |sum, r| (sum.0 + r.3.0, sum.1 + r.3.1));
        let records: Vec<Value> = rows
            .iter()
            .map(|(start, end, id, amount)| {
                let mut record = self.amounts(*amount);
                record.insert("startTime".into(), json!(rfc3339(*start)));
                record.insert("endTime".into(), json!(rfc3339(*end)));
                record.insert(self.id_key.into(), json!(id));
                Value::Object(record)
            })
            .collect();
        let mut metadata = json!({"query": query_echo(&window, self.id_key, filter), "recordCount": rows.len(),
                                  "totals": self.amounts(total)});
        metadata[self.unique_key] = json!(unique.len());
        Ok(json!({"records": records, "metadata": metadata}))
    }
}

/// Cluster members' running time, per cluster: `gpuAmount`; the emulator bills no cluster disk
/// or networking.
const CLUSTER_ROUTE: ResourceRoute = ResourceRoute {
    kind: ChargeKind::Cluster,
    id_key: "clusterId",
    unique_key: "uniqueClusterCount",
    main: "gpuAmount",
    second: None,
    zero: &["diskAmount", "networkingAmount"],
};

async fn cluster_billing(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    match CLUSTER_ROUTE.answer(&shared, query) {
        Ok(body) => axum::Json(wire::<runpod_api::types::ListClusterBillingResponse>(body)).into_response(),
        Err(e) => refuse(e),
    }
}

async fn pod_billing(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    match POD_ROUTE.answer(&shared, query) {
        Ok(body) => axum::Json(wire::<runpod_api::types::ListPodBillingResponse>(body)).into_response(),
        Err(e) => refuse(e),
    }
}

async fn volume_billing(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    match VOLUME_ROUTE.answer(&shared, query) {
        Ok(body) => axum::Json(wire::<runpod_api::types::ListNetworkVolumeBillingResponse>(body)).into_response(),
        Err(e) => refuse(e),
    }
}

/// `GET /v2/billing`: the account's spend per bucket across resource families.
async fn account_billing(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let now = Utc::now();
    let window = match resolve(&pairs, now) {
        Ok(w) => w,
        Err(e) => return refuse(e),
    };
    let charges = shared.state().charges_until(Api::RunPod, now);
    let mut records = Vec::new();
    let mut at = window.start;
    let mut total = [0.0; 4];
    while at < window.end {
        let next = window.bucket.next(at);
        let sum = |kind| charges.iter().filter(|c| c.kind == kind).map(|c| c.amount_within(at, next)).sum::<f64>();
        let bucket =
            [sum(ChargeKind::Pod), sum(ChargeKind::PodDisk), sum(ChargeKind::Volume), sum(ChargeKind::Cluster)];
        total = [total[0] + bucket[0], total[1] + bucket[1], total[2] + bucket[2], total[3] + bucket[3]];
        records.push(amounts(at, next, bucket));
        at = next;
    }
    let mut totals = amounts(window.start, window.end, total);
    let object = totals.as_object_mut().expect("amounts are an object");
    object.remove("startTime");
    object.remove("endTime");
    let body = json!({"records": records, "metadata": {
        "query": query_echo(&window, "", None), "recordCount": records.len(), "totals": totals}});
    axum::Json(wire::<runpod_api::types::ListBillingResponse>(body)).into_response()
}

/// `BillingAmounts` of pods' running time, pods' disks, network volumes and clusters' GPUs.
fn amounts(start: DateTime<Utc>, end: DateTime<Utc>, [pods, disks, volumes, clusters]: [f64; 4]) -> Value {
    json!({"startTime": rfc3339(start), "endTime": rfc3339(end), "totalAmount": pods + disks + volumes + clusters,
           "podGpuAmount": pods, "podCpuAmount": 0.0, "podDiskAmount": disks,
           "serverlessGpuAmount": 0.0, "serverlessCpuAmount": 0.0, "serverlessDiskAmount": 0.0,
           "serverlessFeeAmount": 0.0, "storageStandardAmount": volumes, "storageHighPerformanceAmount": 0.0,
           "endpointAmount": 0.0, "clusterGpuAmount": clusters, "clusterDiskAmount": 0.0, "clusterNetworkingAmount": 0.0})
}

/// Billing routes for resources the emulator never runs: the resolved window and no records.
async fn empty_billing(
    RawQuery(query): RawQuery,
    filter_key: &'static str,
    unique_key: &'static str,
    amount_keys: &'static [&'static str],
) -> Response {
    let pairs = query_pairs(query);
    let window = match resolve(&pairs, Utc::now()) {
        Ok(w) => w,
        Err(e) => return refuse(e),
    };
    let filter = pairs.iter().find(|(k, _)| k == filter_key).map(|(_, v)| v.as_str());
    let mut totals = json!({"totalAmount": 0.0});
    for key in amount_keys {
        totals[*key] = json!(0.0);
    }
    let mut metadata = json!({"query": query_echo(&window, filter_key, filter), "recordCount": 0, "totals": totals});
    if !unique_key.is_empty() {
        metadata[unique_key] = json!(0);
    }
    (StatusCode::OK, axum::Json(json!({"records": [], "metadata": metadata}))).into_response()
}

/// `GET /api/v1/pods/history`: the key's terminated pods, with what each billed.
async fn pod_history(State(shared): State<Shared>, RawQuery(query): RawQuery) -> Response {
    let pairs = query_pairs(query);
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let sort_by = value("sort_by").unwrap_or("terminatedAt");
    let descending = match value("sort_order").unwrap_or("desc") {
        "desc" => true,
        "asc" => false,
        other => {
            return errors::primeintellect::error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sort_order",
                &format!("{other:?} is not asc or desc"),
            );
        }
    };
    if !matches!(sort_by, "terminatedAt" | "createdAt") {
        return errors::primeintellect::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "sort_by",
            &format!("{sort_by:?} is not terminatedAt or createdAt"),
        );
    }
    let number = |key: &str, default: u64| value(key).map_or(Some(default), |v| v.parse().ok());
    let (Some(offset), Some(limit)) = (number("offset", 0), number("limit", 100)) else {
        return errors::primeintellect::error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "offset",
            "offset and limit must be integers",
        );
    };
    let state = shared.state();
    let charges = state.charges_until(Api::PrimeIntellect, Utc::now());
    // PrimeIntellect's timestamps carry no UTC offset on every other route (SOURCES.md: "timestamps
    // without a UTC offset"); the history is no exception.
    let bare = |t: &str| t.trim_end_matches('Z').to_string();
    // (createdAt, terminatedAt, record): terminated pods ("Instance") and deleted disks ("Disk",
    // a `ResourceType` of HistoryObj), each with what it billed.
    let mut ended: Vec<(String, String, Value)> = state
        .pods
        .iter()
        .filter(|p| p.api == Api::PrimeIntellect && p.terminated)
        .map(|pod| {
            let billed: f64 = charges.iter().filter(|c| c.id == pod.id).map(Charge::amount).sum();
            let terminated = pod.terminated_at.clone().unwrap_or_default();
            let record = json!({"id": pod.id, "name": pod.name, "providerType": pod.provider_type,
                   "provisionedBy": "emulator-user", "type": "Instance", "createdAt": bare(&pod.created_at),
                   "terminatedAt": bare(&terminated), "gpuName": pod.gpu_type, "gpuCount": pod.gpu_count,
                   "socket": pod.socket, "priceHr": pod.price, "userId": "emulator-user", "teamId": pod.team_id,
                   "totalBilledPrice": billed});
            (pod.created_at.clone(), terminated, record)
        })
        .collect();
    for disk in state.deleted_volumes.iter().filter(|v| v.api == Api::PrimeIntellect) {
        let Some(charge) = charges.iter().find(|c| c.kind == ChargeKind::Volume && c.id == disk.id) else { continue };
        let (created, terminated) = (rfc3339_millis(charge.start), rfc3339_millis(charge.end));
        let record = json!({"id": disk.id, "name": disk.name, "providerType": disk.provider_type,
               "provisionedBy": "emulator-user", "type": "Disk", "createdAt": bare(&created),
               "terminatedAt": bare(&terminated), "gpuName": "", "gpuCount": 0, "socket": null,
               "priceHr": charge.rate, "userId": "emulator-user", "teamId": disk.team_id,
               "totalBilledPrice": charge.amount()});
        ended.push((created, terminated, record));
    }
    ended.sort_by(|a, b| {
        let key = |e: &(String, String, Value)| if sort_by == "createdAt" { e.0.clone() } else { e.1.clone() };
        let order = key(a).cmp(&key(b));
        if descending { order.reverse() } else { order }
    });
    let total = ended.len();
    let data: Vec<Value> =
        ended.into_iter().skip(offset as usize).take(limit as usize).map(|(_, _, record)| record).collect();
    drop(state);
    let body = json!({"total_count": total, "offset": offset, "limit": limit, "data": data});
    axum::Json(wire::<primeintellect_api::types::GenericPaginationResponseListHistoryObj>(body)).into_response()
}
