//! # gpucloud
//!
//! Rent GPU machines on PrimeIntellect and RunPod through one typed interface.
//!
//! - [`Provisioner`]: the trait both clouds implement ([`PrimeIntellect`], [`RunPod`]);
//!   object-safe, so `Box<dyn Provisioner>` and [`Fleet`]s of them work.
//! - [`Fleet`]: offers from every provider merged cheapest-first, and [`Fleet::launch`]: failover
//!   across offers, a bounded wait for readiness, and cleanup of anything started but not handed
//!   back.
//! - [`transport::retry`]: the retry policy (jittered backoff, `Retry-After`, a retry budget;
//!   creates never blindly re-sent). [`transport::paginate`]: streaming pagination over both
//!   PrimeIntellect page shapes and RunPod's cursors.
//! - [`providers::watch`]: every wait on a client's pods shares one status sweep per poll
//!   interval; [`transport::pace`]: requests paced by RunPod's `RateLimit` headers, creates and
//!   terminates first.
//! - [`model::gpu`]: one GPU naming across providers.
//!
//! ## Layers
//!
//! One folder per layer, lowest first; each uses only the layers below it (`ARCHITECTURE.md`):
//! [`model`] (plain data, the error type), [`transport`] (one request: retry, pacing, pages),
//! [`providers`] (the trait and one folder per cloud), `remote` (SSH sessions on pods),
//! [`fleet`] (several providers as one: launch, placement, spend rules), [`upkeep`] (reaper,
//! idle rules, cost report, redeploy) and `jobs` (`Fleet::run`: the job, not just the pod).
//!
//! ## Cargo features
//!
//! - `primeintellect`, `runpod` (both default): one cloud's generated client each; a one-cloud
//!   user turns the other off (`default-features = false, features = ["runpod"]`).
//! - `remote` (off by default; Unix): the SSH layer and jobs: `remote::RemoteSession` (commands,
//!   copies, workdir sync over the user's own OpenSSH) and `Fleet::run`, plus idle rules measured
//!   over SSH. It adds `openssh` and `ignore` and heavier features of shared crates, so a program
//!   that only provisions does not compile it. The `gpucloud` CLI turns it on.
//!
//! Errors are one enum, [`Error`], carrying provider, operation, HTTP status and the provider's
//! own message. API keys are [`secrecy::SecretString`] and never appear in Debug output, logs or
//! errors.

#![warn(missing_docs)]

// The layers, lowest first; each may use only those above it in this list (ARCHITECTURE.md,
// checked by `cargo xtask layers`).
pub mod fleet;
#[cfg(all(unix, feature = "remote"))]
pub mod jobs;
pub mod model;
pub mod providers;
#[cfg(all(unix, feature = "remote"))]
pub mod remote;
pub mod transport;
pub mod upkeep;

#[cfg(all(test, feature = "primeintellect", feature = "runpod"))]
mod properties;

pub use fleet::{ClusterEvent, ClusterRequest, Fleet, LaunchRequest, OfferResults, PodGuard};
pub use model::cluster::{Cluster, ClusterId, ClusterNode, ClusterOffer};
pub use model::error::{Error, LaunchAttempt, Result};
pub use model::{
    Offer, OfferDetails, Pod, PodId, PodStatus, Provider, ResourceSpec, SshEndpoint, Stock, Team, Volume, VolumeSpec,
};
pub use providers::logs::LogOptions;
#[cfg(feature = "primeintellect")]
pub use providers::primeintellect::PrimeIntellect;
pub use providers::provisioner::{Capabilities, LaunchSpec, OfferQuery, Provisioner};
pub use providers::reconcile::ReconcilePolicy;
#[cfg(feature = "runpod")]
pub use providers::runpod::RunPod;
pub use providers::ssh::Readiness;
pub use secrecy::SecretString;
pub use transport::paginate::{Page, PageShape, Pagination};
pub use transport::retry::RetryPolicy;
pub use upkeep::cost::CostReport;
pub use upkeep::reap::{ReapPolicy, ReapReport};

/// The README's Rust examples, compiled as doctests.
#[cfg(all(doctest, feature = "primeintellect", feature = "runpod", feature = "remote"))]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
