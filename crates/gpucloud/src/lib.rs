//! # gpucloud
//!
//! Rent GPU machines on PrimeIntellect and RunPod through one typed interface.
//!
//! - [`Provisioner`]: the trait both clouds implement ([`PrimeIntellect`], [`RunPod`]);
//!   object-safe, so `Box<dyn Provisioner>` and [`Fleet`]s of them work.
//! - [`Fleet`]: offers from every provider merged cheapest-first, and [`Fleet::launch`]: failover
//!   across offers, a bounded wait for readiness, and cleanup of anything started but not handed
//!   back.
//! - [`retry`]: the retry policy (jittered backoff, `Retry-After`, a retry budget; creates never
//!   blindly re-sent). [`paginate`]: streaming pagination over both PrimeIntellect page shapes.
//! - [`gpu`]: one GPU naming across providers.
//!
//! Errors are one enum, [`Error`], carrying provider, operation, HTTP status and the provider's
//! own message. API keys are [`secrecy::SecretString`] and never appear in Debug output, logs or
//! errors.

#![warn(missing_docs)]

mod api_error;
mod caller;
pub mod error;
pub mod fleet;
pub mod gpu;
pub mod lease;
pub mod model;
pub mod paginate;
pub mod primeintellect;
#[cfg(test)]
mod properties;
pub mod provisioner;
pub mod reap;
mod reconcile;
pub mod retry;
pub mod runpod;
pub mod time;
pub mod validate;

pub use error::{Error, LaunchAttempt, Result};
pub use fleet::{Fleet, LaunchRequest, OfferResults, PodGuard};
pub use model::{
    Offer, OfferDetails, Pod, PodId, PodStatus, Provider, ResourceSpec, SshEndpoint, Stock, Team, Volume, VolumeSpec,
};
pub use paginate::{Page, PageShape, Pagination};
pub use primeintellect::PrimeIntellect;
pub use provisioner::{Capabilities, LaunchSpec, OfferQuery, Provisioner};
pub use reap::{ReapPolicy, ReapReport};
pub use reconcile::ReconcilePolicy;
pub use retry::RetryPolicy;
pub use runpod::RunPod;
pub use secrecy::SecretString;

/// The README's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
