//! **Layer 5, upkeep**: keeping an account tidy and its spend known, run by hand or on a timer.
//!
//! Owns: the reaper of expired leases and stale prefixes ([`reap`]), idle rules ([`idle`]), the
//! cost report ([`cost`]) and start-or-redeploy of stopped pods ([`redeploy`]). Each adds its
//! methods to [`Fleet`](crate::Fleet) from its own file.
//!
//! May use: every layer below: [`crate::fleet`], `crate::remote` (idle measured over SSH, feature `remote`),
//! [`crate::providers`], [`crate::transport`], [`crate::model`].

pub mod cost;
pub mod idle;
pub mod reap;
pub mod redeploy;
