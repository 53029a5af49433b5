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

/// What an amount pays for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Billable {
    /// A pod (GPU, CPU and disk).
    Pod,
    /// A network volume / disk.
    Volume,
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
