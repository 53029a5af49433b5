//! What a provider billed, as both providers' billing reads return it ([`CostEntry`]); the report
//! over them is [`crate::upkeep::cost`].

use crate::model::error::{Error, Result};
use crate::model::ids::Provider;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;

/// Windows up to this long are read in hourly buckets; longer ones in daily buckets.
pub const HOURLY_UP_TO: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether an amount was billed by the provider or estimated here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The provider's own billing record.
    Billed,
    /// Price × time since the last billed record, for a running pod.
    Estimate,
}

/// What an amount pays for, as the provider labels it (PrimeIntellect's history `type`, a
/// `ResourceType`: Instance, Cluster, Disk, Sandbox, Inference, Image; RunPod's billing route).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Billable {
    /// A pod (GPU, CPU and disk): RunPod's pod billing, PrimeIntellect's `Instance`.
    Pod,
    /// A network volume or disk: RunPod's network-volume billing, PrimeIntellect's `Disk`.
    Volume,
    /// A cluster: RunPod's cluster billing, PrimeIntellect's `Cluster`.
    Cluster,
    /// PrimeIntellect's `Sandbox`.
    Sandbox,
    /// PrimeIntellect's `Inference`.
    Inference,
    /// PrimeIntellect's `Image`.
    Image,
    /// Everything else the provider billed: on RunPod, the account-wide total (`GET /v2/billing`)
    /// less the pods, volumes and clusters itemised (serverless, public endpoints); on
    /// PrimeIntellect, a history `type` newer than its document.
    Other,
}

impl Billable {
    /// PrimeIntellect's history `type` (`ResourceType`) as a label.
    pub fn from_primeintellect_type(resource_type: &str) -> Self {
        match resource_type {
            "Instance" => Billable::Pod,
            "Disk" => Billable::Volume,
            "Cluster" => Billable::Cluster,
            "Sandbox" => Billable::Sandbox,
            "Inference" => Billable::Inference,
            "Image" => Billable::Image,
            _ => Billable::Other,
        }
    }
}

/// One amount: a resource over a period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostEntry {
    /// Which cloud.
    pub provider: Provider,
    /// What it pays for.
    pub billable: Billable,
    /// The provider's id of the pod or volume.
    pub id: String,
    /// Its name, where known (running pods, PrimeIntellect history).
    pub name: Option<String>,
    /// Start of the period, inclusive.
    pub start: DateTime<Utc>,
    /// End of the period, exclusive.
    pub end: DateTime<Utc>,
    /// US dollars.
    pub usd: f64,
    /// Billed or estimated.
    pub basis: Basis,
    /// When the amount is a share of a longer billed period, that period: a RunPod bucket the
    /// window's edge cuts, or a PrimeIntellect resource's whole life (its history bills a life,
    /// not a period). The share is by time, as if the period billed evenly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_of: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// `amount`, billed evenly over `[start, end)`, as the pieces of it within `[from, to)` split at
/// UTC midnights: `(piece start, piece end, amount)`. A zero-length period within the window is
/// one piece with the whole amount.
#[cfg(feature = "primeintellect")]
pub(crate) fn spread_by_day(
    amount: f64,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    (from, to): (DateTime<Utc>, DateTime<Utc>),
) -> Vec<(DateTime<Utc>, DateTime<Utc>, f64)> {
    let life = (end - start).num_microseconds().unwrap_or(i64::MAX) as f64;
    if life <= 0.0 {
        return if start >= from && start < to { vec![(start, end, amount)] } else { Vec::new() };
    }
    let (mut at, stop) = (start.max(from), end.min(to));
    let mut pieces = Vec::new();
    while at < stop {
        let midnight = at.date_naive().succ_opt().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc());
        let next = midnight.map_or(stop, |m| m.min(stop));
        let share = (next - at).num_microseconds().unwrap_or(0) as f64 / life;
        pieces.push((at, next, amount * share));
        at = next;
    }
    pieces
}

/// A billing record's timestamp; one that does not parse is the provider's decode error.
pub(crate) fn parse_billed_time(provider: Provider, operation: &'static str, text: &str) -> Result<DateTime<Utc>> {
    crate::model::time::parse_timestamp(text).ok_or_else(|| Error::Decode {
        provider,
        operation,
        status: 200,
        message: format!("{text:?} is not a timestamp"),
    })
}
