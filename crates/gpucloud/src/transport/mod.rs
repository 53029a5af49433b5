//! **Layer 1, transport**: how one request reaches a provider and what comes back.
//!
//! Owns: the call wrapper every generated-client request goes through (`caller`), the retry
//! policy ([`retry`]), pacing by RunPod's rate-limit headers ([`pace`]), the providers' error
//! bodies (`api_error`) and the page streams over both APIs' list shapes ([`paginate`]).
//!
//! May use: [`crate::model`]. Knows nothing of pods' lifecycles or of the `Provisioner` trait.

pub(crate) mod api_error;
pub(crate) mod caller;
pub mod pace;
pub mod paginate;
pub mod retry;
