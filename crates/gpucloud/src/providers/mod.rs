//! **Layer 2, providers**: one cloud behind the [`Provisioner`](provisioner::Provisioner) trait.
//!
//! Owns: the trait and what every implementation shares (the request rules checked before a
//! create, [`validate`]; reconciliation of an ambiguous create, [`reconcile`]; the one status sweep
//! all waits share, [`watch`]; readiness over SSH, [`ssh`]; log streams, [`logs`]; hooks the
//! layers above register, [`hooks`]), and one folder per cloud holding *everything* about that
//! cloud ([`primeintellect`], [`runpod`]: pods, offers, disks, keys, billing reads).
//!
//! May use: [`crate::model`], [`crate::transport`].

pub mod clusters;
pub mod hooks;
pub mod logs;
#[cfg(feature = "primeintellect")]
pub mod primeintellect;
pub mod provisioner;
pub mod reconcile;
#[cfg(feature = "runpod")]
pub mod runpod;
pub(crate) mod settings;
pub mod ssh;
pub mod validate;
pub mod watch;
