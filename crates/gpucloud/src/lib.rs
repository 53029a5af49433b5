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
//! - [`watch`]: every wait on a client's pods shares one status sweep per poll interval;
//!   [`pace`]: requests paced by RunPod's `RateLimit` headers, creates and terminates first.
//! - [`gpu`]: one GPU naming across providers.
//!
//! Cargo features `primeintellect` and `runpod` (both on by default) each bring one cloud's
//! generated client; a one-cloud user can turn the other off (`default-features = false`).
//!
//! Errors are one enum, [`Error`], carrying provider, operation, HTTP status and the provider's
//! own message. API keys are [`secrecy::SecretString`] and never appear in Debug output, logs or
//! errors.

#![warn(missing_docs)]

mod api_error;
mod caller;
pub mod cost;
pub mod error;
pub mod fleet;
pub mod gpu;
pub mod idle;
#[cfg(all(unix, feature = "remote"))]
pub mod job;
pub mod lease;
pub mod logs;
pub mod model;
pub mod pace;
pub mod paginate;
pub mod placement;
#[cfg(feature = "primeintellect")]
pub mod primeintellect;
#[cfg(all(test, feature = "primeintellect", feature = "runpod"))]
mod properties;
pub mod provisioner;
pub mod reap;
mod reconcile;
pub mod redeploy;
pub mod region;
#[cfg(all(unix, feature = "remote"))]
pub mod remote;
pub mod retry;
#[cfg(feature = "runpod")]
pub mod runpod;
pub mod spend;
pub mod ssh;
#[cfg(all(unix, feature = "remote"))]
pub mod sync;
pub mod time;
pub mod validate;
pub mod watch;

pub use cost::CostReport;
pub use error::{Error, LaunchAttempt, Result};
pub use fleet::{Fleet, LaunchRequest, OfferResults, PodGuard};
pub use logs::LogOptions;
pub use model::{
    Offer, OfferDetails, Pod, PodId, PodStatus, Provider, ResourceSpec, SshEndpoint, Stock, Team, Volume, VolumeSpec,
};
pub use paginate::{Page, PageShape, Pagination};
#[cfg(feature = "primeintellect")]
pub use primeintellect::PrimeIntellect;
pub use provisioner::{Capabilities, LaunchSpec, OfferQuery, Provisioner};
pub use reap::{ReapPolicy, ReapReport};
pub use reconcile::ReconcilePolicy;
pub use retry::RetryPolicy;
#[cfg(feature = "runpod")]
pub use runpod::RunPod;
pub use secrecy::SecretString;
pub use ssh::Readiness;

/// The README's Rust examples, compiled as doctests.
#[cfg(all(doctest, feature = "primeintellect", feature = "runpod"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
