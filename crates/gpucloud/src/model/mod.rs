//! **Layer 0, the model**: the provider-neutral vocabulary every other layer speaks.
//!
//! Owns: providers and pod ids ([`ids`]), pods, offers, volumes and teams ([`pod`]), the one
//! [`Error`](error::Error) type, GPU names ([`gpu`]), regions ([`region`]), provider timestamps
//! ([`time`]), the lease written into a pod's name ([`lease`]), what a spot interruption leaves
//! to report ([`spot`]) and clusters ([`cluster`]).
//!
//! May use: nothing else in the crate. Plain data and pure functions; no I/O.

pub mod billing;
pub mod cluster;
pub mod error;
pub mod gpu;
pub mod ids;
pub mod lease;
mod parse;
pub mod pod;
pub mod region;
pub mod spot;
pub mod time;

pub use ids::{PodId, Provider};
pub use pod::*;
