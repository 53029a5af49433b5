//! What every handler shares: the emulator's configuration and state behind one `Arc`
//! ([`Shared`]), and the markers the fault middleware hands a handler in the request's
//! extensions.

use crate::config::EmulatorConfig;
use crate::faults::FaultInjector;
use crate::strict::ResponseChecks;
use crate::{quota, state};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The emulator's configuration and state.
pub(crate) struct Inner {
    pub config: EmulatorConfig,
    pub state: Mutex<state::State>,
    pub faults: Mutex<FaultInjector>,
    pub quota: Mutex<quota::QuotaState>,
    pub response_checks: Mutex<ResponseChecks>,
    /// The request log, when configured.
    pub request_log: Option<crate::request_log::RequestLog>,
    /// `http://127.0.0.1:PORT`, told to RunPod pods (`RUNPOD_API_BASE_URL`) so that a pod can
    /// call the API with its pod-scoped key.
    pub base_url: String,
}

/// Shared state handed to every handler.
pub(crate) type Shared = Arc<Inner>;

impl Inner {
    pub fn state(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultInjector> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn quota(&self) -> MutexGuard<'_, quota::QuotaState> {
        self.quota.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Marks a PrimeIntellect create whose pod's installation is to fail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstallationFails;

/// Marks a create whose pod's SSH answers only this long after it runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BannerDelay(pub Duration);

/// Marks a log stream that drops after this many events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogDrop(pub u64);

/// Marks a list request that should hide pods younger than the lag.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ListLag(pub Duration);

/// Marks a cluster create of which this many nodes are never placed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartialPlacement(pub u32);
