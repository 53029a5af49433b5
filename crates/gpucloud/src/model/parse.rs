//! Provider names and pod ids from text (`FromStr`, and `Deserialize` for [`PodId`]): a bad
//! one is [`Error::InvalidInput`](crate::Error::InvalidInput) naming what was expected.

use crate::model::error::Error;
use crate::model::ids::{PodId, Provider};
use serde::Deserialize;
use std::str::FromStr;

impl FromStr for Provider {
    type Err = Error;

    /// Accepts `primeintellect` (or `prime`, `pi`) and `runpod`, in any case.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "primeintellect" | "prime" | "pi" | "prime-intellect" => Ok(Provider::PrimeIntellect),
            "runpod" | "rp" => Ok(Provider::RunPod),
            _ => Err(Error::invalid("provider", format!("{s:?} is not a provider; expected primeintellect or runpod"))),
        }
    }
}

impl FromStr for PodId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |why: &str| {
            Error::invalid("pod id", format!("{s:?} {why}; expected provider:id, e.g. runpod:xedezhzb9la3ye"))
        };
        let (provider, id) = s.split_once(':').ok_or_else(|| invalid("has no provider prefix"))?;
        let provider: Provider = provider.parse().map_err(|_| invalid("names an unknown provider"))?;
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            return Err(invalid("has an empty or malformed id"));
        }
        Ok(PodId::new(provider, id))
    }
}

impl<'de> Deserialize<'de> for PodId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
