//! Who and what: the [`Provider`] enum and the cross-provider [`PodId`] (`provider:id`).
//!
//! Their text forms are read in `model/parse.rs`, which needs [`super::error`]; this file needs
//! nothing, so the error type can name providers and pods without a circle.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A GPU cloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// PrimeIntellect (`api.primeintellect.ai`), an aggregator reselling ~24 underlying clouds.
    PrimeIntellect,
    /// RunPod (`api.runpod.io/v2`).
    RunPod,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 2] = [Provider::PrimeIntellect, Provider::RunPod];

    /// The short name used in pod ids and on the command line: `primeintellect`, `runpod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::PrimeIntellect => "primeintellect",
            Provider::RunPod => "runpod",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pod's identity across providers, written `provider:id` (e.g. `runpod:xedezhzb9la3ye`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodId {
    provider: Provider,
    id: String,
}

impl PodId {
    /// A pod id; `id` is the provider's own identifier and must not be empty.
    pub fn new(provider: Provider, id: impl Into<String>) -> Self {
        Self { provider, id: id.into() }
    }

    /// Which cloud the pod lives on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The provider's own identifier.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for PodId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.provider, self.id)
    }
}

impl Serialize for PodId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}
