//! Spot capacity: where a pod ran, and what an interruption leaves to report.
//!
//! PrimeIntellect sells spot capacity (`isSpot`) but documents no preemption notice and no
//! "preempted" status: an interruption is only seen in provider state, as a pod that leaves
//! `ACTIVE` without being asked, a pod its provider no longer has, or a lost SSH connection to
//! a pod that is no longer `ACTIVE`. [`Interruption`] is what the jobs layer records of one.

use crate::model::{PodId, Provider};
use std::time::Duration;

/// A provider and data center: where a pod ran, or where an offer would place one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Place {
    /// The cloud.
    pub provider: Provider,
    /// The data center, when known (`None` matches every data center of the provider).
    pub data_center: Option<String>,
}

impl Place {
    /// Whether an offer in `provider` and `data_center` lies here.
    pub fn contains(&self, provider: Provider, data_center: Option<&str>) -> bool {
        self.provider == provider && self.data_center.as_deref().is_none_or(|dc| Some(dc) == data_center)
    }
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.data_center {
            Some(dc) => write!(f, "{} {dc}", self.provider),
            None => write!(f, "{}", self.provider),
        }
    }
}

/// What showed that a pod was interrupted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "sign", rename_all = "snake_case")]
pub enum InterruptionSign {
    /// The provider reports it no longer running (its own status given), and nobody asked.
    LeftRunning {
        /// The provider's status (`TERMINATED`, `STOPPED`, ...).
        status: String,
    },
    /// The provider no longer has it (404).
    Gone,
    /// The SSH connection was lost and the provider reports it no longer running.
    SshLost {
        /// The provider's status, or `gone` when it no longer has the pod.
        status: String,
    },
}

impl std::fmt::Display for InterruptionSign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LeftRunning { status } => write!(f, "its provider reports it {status}, unasked"),
            Self::Gone => write!(f, "its provider no longer has it"),
            Self::SshLost { status } => write!(f, "its SSH connection was lost and it is {status}"),
        }
    }
}

/// One interrupted attempt of a job: which pod, where, how it was seen, and what it cost.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interruption {
    /// The pod that was interrupted.
    pub pod: PodId,
    /// Where it ran (its offer's data center, when the offer named one).
    pub place: Place,
    /// Whether it was spot capacity.
    pub spot: bool,
    /// What showed it.
    pub sign: InterruptionSign,
    /// From the create being accepted until the interruption was detected (seconds in JSON).
    #[serde(rename = "ran_for_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub ran_for: Duration,
    /// From the last provider read that still showed it running (or the command's last sign of
    /// life) until the interruption was detected: at most about one poll interval (seconds in
    /// JSON).
    #[serde(rename = "detected_within_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub detected_within: Duration,
    /// Its hourly rate as the provider reported it, when it did.
    pub price_per_hour: Option<f64>,
    /// What it cost, estimated: its hourly rate over [`Interruption::ran_for`] (the provider's
    /// bill, `gpucloud cost`, is the authority). `None` when the rate is unknown.
    pub cost: Option<f64>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn from_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = <f64 as serde::Deserialize>::deserialize(d)?;
    Duration::try_from_secs_f64(s).map_err(serde::de::Error::custom)
}

impl Interruption {
    /// The estimated cost of `ran_for` at `price_per_hour`.
    pub fn estimate_cost(price_per_hour: Option<f64>, ran_for: Duration) -> Option<f64> {
        price_per_hour.map(|rate| rate * ran_for.as_secs_f64() / 3600.0)
    }
}

impl std::fmt::Display for Interruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}) was interrupted after {:.1} s: {}",
            self.pod,
            self.place,
            self.ran_for.as_secs_f64(),
            self.sign
        )?;
        if let Some(cost) = self.cost {
            write!(f, "; it cost about {cost:.4}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_without_a_data_center_holds_all_of_its_provider() {
        let fin = Place { provider: Provider::PrimeIntellect, data_center: Some("FIN-01".into()) };
        assert!(fin.contains(Provider::PrimeIntellect, Some("FIN-01")));
        assert!(!fin.contains(Provider::PrimeIntellect, Some("CANADA-1")));
        assert!(!fin.contains(Provider::PrimeIntellect, None));
        let any = Place { provider: Provider::PrimeIntellect, data_center: None };
        assert!(any.contains(Provider::PrimeIntellect, Some("CANADA-1")) && !any.contains(Provider::RunPod, None));
        let cost = Interruption::estimate_cost(Some(1.8), Duration::from_secs(1800)).unwrap();
        assert!((cost - 0.9).abs() < 1e-9);
    }
}
