//! **Layer 3, remote**: sessions on running pods over SSH (feature `remote`, Unix).
//!
//! Owns: one OpenSSH ControlMaster per pod, commands streamed with their exit status and
//! the per-pod known-hosts and state files ([`session`]), copies ([`transfer`]) and workdir syncs
//! ([`sync`]), copies from pod to pod ([`relay`]), and the environment contract written on every
//! node of a cluster ([`cluster`]).
//!
//! May use: [`crate::model`], and [`crate::providers::hooks`] to forget a pod's host keys when its
//! termination is confirmed. Knows nothing of fleets or launches: it is handed a [`Pod`](crate::Pod).

pub mod cluster;
mod extract;
pub mod relay;
pub mod session;
pub mod sync;
pub mod transfer;

pub use session::*;
